//! What happens to a source once its bytes are in: assembly of chunked uploads, fetching `source`
//! URLs and copying clones, probing with ffprobe, and resuming all of these after a restart.

use vidi_core::CoreError;
use vidi_core::blobs::ChunkRef;
use vidi_core::encoding::record_failure;
use vidi_core::id::{VideoId, WorkspaceId};
use vidi_core::jobs::{self, Growing, JobKind};
use vidi_core::keys::source_key;
use vidi_core::model::{Chunk, IngestState, ProbeOutcome, SourceKind};
use vidi_core::scratch::Scratch;
use vidi_core::time::now_ms;

use crate::{ApiResult, AppState};

/// Joins a complete set of chunks into the source and marks it uploaded.
pub async fn assemble(state: &AppState, ws: &WorkspaceId, id: &VideoId, chunks: &[Chunk], size: u64) -> ApiResult<()> {
    let video = state.repo.get_video(ws, id).await?;
    let session =
        video.ingest.session.clone().ok_or_else(|| CoreError::Database("complete upload without a session".into()))?;
    let refs: Vec<ChunkRef> = chunks
        .iter()
        .filter_map(|c| Some(ChunkRef { idx: c.idx, size: c.size?, receipt: c.receipt.clone()? }))
        .collect();
    let dest = source_key(id.as_str());
    state.blobs.assemble(&dest, &session, video.ingest.mode, &refs).await?;
    state.repo.source_ready(ws, id, &dest, size, now_ms()).await?;
    tracing::info!(video = %id, bytes = size, parts = refs.len(), "source assembled");
    Ok(())
}

/// Retries a failed assembly with growing pauses (2 s … 64 s), then leaves it to the next start.
pub fn spawn_assembly_retry(state: AppState, ws: WorkspaceId, id: VideoId) {
    tokio::spawn(async move {
        for attempt in 1..=6u32 {
            tokio::time::sleep(std::time::Duration::from_secs(1 << attempt)).await;
            let Ok(video) = state.repo.get_video(&ws, &id).await else { return };
            if video.ingest.state != IngestState::Assembling {
                return;
            }
            let Ok(chunks) = state.repo.chunks(&ws, &id).await else { continue };
            match assemble(&state, &ws, &id, &chunks, video.ingest.filesize.unwrap_or(0)).await {
                Ok(()) => return probe(&state, &ws, &id).await,
                Err(e) => tracing::warn!(video = %id, attempt, error = ?e, "assembly failed again"),
            }
        }
    });
}

/// After the first chunk of an upload: when the bytes received so far already describe the whole
/// video (a container whose index comes first: MP4 with `moov` ahead of the media, Matroska or
/// WebM) and the store keeps them as one growing file, queues the encoding at once, so the video
/// becomes playable while the rest of it is still on its way.
pub fn spawn_early_encode(state: AppState, ws: WorkspaceId, id: VideoId, session: String) {
    tokio::spawn(async move {
        let Ok(Some(path)) = state.blobs.growing_input(&session).await else {
            return;
        };
        let Ok(Ok(probe)) = vidi_media::probe(&state.media, &path).await else {
            return; // e.g. an MP4 whose index is at its end: nothing to start from yet
        };
        let streamable = probe.format.contains("mp4") || probe.format.contains("matroska");
        if !streamable || probe.video.is_none() || probe.duration_s.is_none() {
            return;
        }
        // The upload's completion then finds this job and queues nothing more.
        let job =
            JobKind::Encode { video_id: id.clone(), workspace_id: Some(ws), growing: Some(Growing { path, probe }) };
        match jobs::enqueue(state.repo.as_ref(), &state.waker, &job, now_ms(), 3).await {
            Ok(true) => tracing::info!(video = %id, "encoding starts while the upload continues"),
            Ok(false) => {}
            Err(e) => tracing::warn!(video = %id, error = %e, "could not queue the early encoding"),
        }
    });
}

/// Queues the encoding of a video's whole source (a no-op when one is already queued or running).
async fn enqueue_encode(state: &AppState, ws: &WorkspaceId, id: &VideoId) -> Result<bool, CoreError> {
    let job = JobKind::Encode { video_id: id.clone(), workspace_id: Some(ws.clone()), growing: None };
    jobs::enqueue(state.repo.as_ref(), &state.waker, &job, now_ms(), 3).await
}

/// Probes the source in the background.
pub fn spawn_probe(state: AppState, ws: WorkspaceId, id: VideoId) {
    tokio::spawn(async move { probe(&state, &ws, &id).await });
}

async fn probe(state: &AppState, ws: &WorkspaceId, id: &VideoId) {
    let outcome = async {
        let video = state.repo.get_video(ws, id).await?;
        let key = video.ingest.source_key.ok_or_else(|| CoreError::Storage("no source".into()))?;
        let scratch = Scratch::create(&state.cfg.work_dir, "api")?;
        let input = state.blobs.local_input(&key, scratch.path()).await?;
        match vidi_media::probe(&state.media, input.as_str()).await {
            Ok(Ok(p)) => Ok(ProbeOutcome::Probed(p)),
            Ok(Err(reason)) => Ok(ProbeOutcome::Failed(reason)),
            Err(e) => Err(CoreError::Storage(format!("ffprobe did not run: {e}"))),
        }
    }
    .await;
    match outcome {
        // Deleted while it was being probed.
        Err(CoreError::NotFound) => {}
        Ok(_) if state.repo.get_video(ws, id).await.is_err() => {}
        Ok(o) => {
            if let Err(e) = state.repo.set_probe(ws, id, &o).await {
                return tracing::error!(video = %id, error = %e, "could not store the probe");
            }
            match &o {
                ProbeOutcome::Probed(_) => {
                    tracing::info!(video = %id, "source probed");
                    // An encoding that followed the upload may already have finished it all.
                    let qs = state.repo.qualities(ws, id).await.unwrap_or_default();
                    if !qs.is_empty() && qs.iter().all(|q| q.status == "encoded") {
                        return;
                    }
                    if let Err(e) = enqueue_encode(state, ws, id).await {
                        tracing::error!(video = %id, error = %e, "could not queue the encoding");
                    }
                }
                ProbeOutcome::Failed(r) => {
                    tracing::warn!(video = %id, reason = %r, "source is not playable media");
                    record_failure(state.repo.as_ref(), ws, id, &format!("not a video: {r}")).await;
                }
            }
        }
        // Left unprobed: the next start tries again.
        Err(e) => tracing::error!(video = %id, error = %e, "probe failed"),
    }
}

/// Fetches a `source` URL or copies a cloned video's source, then probes it.
pub async fn fetch_source(state: AppState, ws: WorkspaceId, id: VideoId) {
    let result = async {
        let video = state.repo.get_video(&ws, &id).await?;
        let reference = video.source_ref.clone().unwrap_or_default();
        let dest = source_key(id.as_str());
        let size = match video.source_kind {
            SourceKind::Clone => {
                let orig = state.repo.get_video(&ws, &VideoId::from_trusted(reference)).await?;
                let from =
                    orig.ingest.source_key.ok_or_else(|| CoreError::Storage("the original has no source".into()))?;
                state.blobs.copy(&from, &dest).await?;
                state.blobs.size(&dest).await?.unwrap_or(0)
            }
            SourceKind::Download => download(&state, &reference, &dest).await?,
            SourceKind::Upload => return Ok(()),
        };
        state.repo.source_ready(&ws, &id, &dest, size, now_ms()).await?;
        Ok::<_, CoreError>(())
    }
    .await;
    match result {
        Ok(()) => probe(&state, &ws, &id).await,
        Err(CoreError::NotFound) => {} // deleted meanwhile
        Err(e) => {
            tracing::warn!(video = %id, error = %e, "could not get the source");
            let reason = match e {
                CoreError::Refused(why) => why,
                e => e.to_string(),
            };
            let _ = state.repo.set_probe(&ws, &id, &ProbeOutcome::Failed(reason.clone())).await;
            record_failure(state.repo.as_ref(), &ws, &id, &reason).await;
        }
    }
}

/// Downloads a user's `source` URL into `dest` through the outbound guard, within the upload size
/// limit, a total time and a minimum rate. A refusal is `CoreError::Refused` with the reason the
/// user may read (it never says what answered at a refused address).
async fn download(state: &AppState, url: &str, dest: &str) -> Result<u64, CoreError> {
    let refused = |e: vidi_outbound::OutboundError| CoreError::Refused(format!("source URL: {e}"));
    let url = state.outbound.check(url).map_err(refused)?;
    let limits = vidi_outbound::Limits {
        max_bytes: state.cfg.max_request_bytes,
        total: state.cfg.import_timeout,
        min_rate: state.cfg.import_min_rate,
        window: state.cfg.import_rate_window,
    };
    let body = state.outbound.download(&url, limits).await.map_err(refused)?;
    // The guard's error travels through the store as an io::Error and is read back here.
    let failure = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = failure.clone();
    let body = futures::StreamExt::map(body, move |r| {
        r.map_err(|e| {
            *seen.lock().expect("not poisoned") = Some(e.clone());
            std::io::Error::other(e)
        })
    });
    match state.blobs.put_stream(dest, Box::pin(body)).await {
        Ok(n) => Ok(n),
        Err(e) => match failure.lock().expect("not poisoned").take() {
            Some(why) => Err(refused(why)),
            None => Err(e),
        },
    }
}

/// Resumes what a previous process left: assemblies, fetches and probes.
pub async fn recover(state: AppState) {
    let todo = match state.repo.videos_to_recover().await {
        Ok(t) => t,
        Err(e) => return tracing::error!(error = %e, "could not list unfinished ingests"),
    };
    for (ws, id) in todo {
        let Ok(video) = state.repo.get_video(&ws, &id).await else {
            continue;
        };
        match (video.ingest.state, video.source_kind) {
            (IngestState::Assembling, _) => {
                let done = async {
                    let chunks = state.repo.chunks(&ws, &id).await?;
                    let size = video.ingest.filesize.unwrap_or(0);
                    assemble(&state, &ws, &id, &chunks, size).await.map_err(|e| CoreError::Storage(format!("{e:?}")))
                }
                .await;
                match done {
                    Ok(()) => probe(&state, &ws, &id).await,
                    Err(e) => tracing::error!(video = %id, error = %e, "could not resume assembly"),
                }
            }
            (IngestState::Uploaded, _) if video.ingest.probe.is_none() => probe(&state, &ws, &id).await,
            // Probed, but the process died before the encoding was queued (a queued or running
            // job makes this a no-op).
            (IngestState::Uploaded, _) => {
                if let Err(e) = enqueue_encode(&state, &ws, &id).await {
                    tracing::error!(video = %id, error = %e, "could not queue the encoding");
                }
            }
            (_, SourceKind::Download | SourceKind::Clone) => fetch_source(state.clone(), ws, id).await,
            _ => {}
        }
    }
}
