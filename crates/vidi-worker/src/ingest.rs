//! What happens to a source once its bytes are in, as jobs of the short lane: the `assemble` job
//! joins a chunked upload's parts, the `import` job fetches a `source` URL or copies a clone's
//! source, and the `probe` job reads the result with ffprobe and queues the encoding. The API
//! only queues them, so a node that dies right after answering loses nothing: any worker that
//! shares the database and the media store does the work.
//!
//! Each is safe to run again after a crash at any point: it starts by looking at what an
//! earlier attempt already did.

use std::sync::{Arc, Mutex};

use vidi_core::CoreError;
use vidi_core::blobs::ChunkRef;
use vidi_core::encoding::record_failure;
use vidi_core::id::{VideoId, WorkspaceId};
use vidi_core::jobs::{self, JobError, JobKind};
use vidi_core::keys::source_key;
use vidi_core::model::{IngestState, ProbeOutcome, SourceKind};
use vidi_core::time::now_ms;

use crate::Ctx;

/// Queues `job` (a no-op when the same work is queued or running) with the worker's attempts.
async fn then(ctx: &Ctx, job: JobKind) -> Result<(), JobError> {
    jobs::enqueue(ctx.repo.as_ref(), &ctx.waker, &job, now_ms(), ctx.cfg.max_attempts).await?;
    Ok(())
}

/// The `assemble` job: joins the chunks of a complete upload into the source, then queues its
/// probe.
pub(crate) async fn assemble(ctx: &Ctx, ws: &WorkspaceId, id: &VideoId) -> Result<(), JobError> {
    let video = ctx.repo.get_video(ws, id).await?;
    let probe = JobKind::Probe { video_id: id.clone(), workspace_id: ws.clone() };
    match video.ingest.state {
        IngestState::Assembling => {}
        // An earlier attempt assembled it before its job could say so.
        IngestState::Uploaded => return then(ctx, probe).await,
        s => return Err(JobError::Permanent(format!("nothing to assemble: the upload is {}", s.as_str()))),
    }
    let session =
        video.ingest.session.clone().ok_or_else(|| JobError::Permanent("complete upload without a session".into()))?;
    let refs: Vec<ChunkRef> = ctx
        .repo
        .chunks(ws, id)
        .await?
        .iter()
        .filter_map(|c| Some(ChunkRef { idx: c.idx, size: c.size?, receipt: c.receipt.clone()? }))
        .collect();
    let dest = source_key(id.as_str());
    let size = video.ingest.filesize.unwrap_or(0);
    ctx.blobs.assemble(&dest, &session, video.ingest.mode, &refs).await?;
    ctx.repo.source_ready(ws, id, &dest, size, now_ms()).await?;
    tracing::info!(video = %id, bytes = size, parts = refs.len(), "source assembled");
    then(ctx, probe).await
}

/// The `probe` job: reads the source with ffprobe, stores what it found, and queues the encoding
/// (or says in the status that the source is not a video).
pub(crate) async fn probe(ctx: &Ctx, ws: &WorkspaceId, id: &VideoId) -> Result<(), JobError> {
    let video = ctx.repo.get_video(ws, id).await?;
    let outcome = match video.ingest.probe {
        // An earlier attempt stored it, then died before queueing the encoding.
        Some(o) => o,
        None => {
            let key = video.ingest.source_key.ok_or_else(|| JobError::Retry("the source is not stored yet".into()))?;
            // The node's copy of a source kept in S3, which its encoding, queued next and often
            // run on this node, then finds here (see `crate::sources`).
            let input = ctx.sources.input(&ctx.blobs, &key).await?;
            let found = vidi_media::probe(&ctx.media, input.as_str()).await;
            drop(input);
            let outcome = match found {
                Ok(Ok(p)) => ProbeOutcome::Probed(p),
                Ok(Err(reason)) => ProbeOutcome::Failed(reason),
                Err(e) => return Err(JobError::Retry(format!("ffprobe did not run: {e}"))),
            };
            // Deleted while it was being probed: `Gone`.
            ctx.repo.get_video(ws, id).await?;
            ctx.repo.set_probe(ws, id, &outcome).await?;
            outcome
        }
    };
    match outcome {
        ProbeOutcome::Probed(_) => {
            tracing::info!(video = %id, "source probed");
            // An encoding that followed the upload may already have finished it all.
            let qs = ctx.repo.qualities(ws, id).await?;
            if !qs.is_empty() && qs.iter().all(|q| q.status == "encoded") {
                return Ok(());
            }
            then(ctx, JobKind::Encode { video_id: id.clone(), workspace_id: Some(ws.clone()), growing: None }).await
        }
        ProbeOutcome::Failed(r) => {
            tracing::warn!(video = %id, reason = %r, "source is not playable media");
            record_failure(ctx.repo.as_ref(), ws, id, &format!("not a video: {r}")).await;
            Ok(())
        }
    }
}

/// The `import` job: fetches a `source` URL or copies a cloned video's source, then queues its
/// probe. A refused or failed download is for good (its reason goes in the status); a store that
/// failed is retried.
pub(crate) async fn import(ctx: &Ctx, ws: &WorkspaceId, id: &VideoId) -> Result<(), JobError> {
    let video = ctx.repo.get_video(ws, id).await?;
    let probe = JobKind::Probe { video_id: id.clone(), workspace_id: ws.clone() };
    if video.ingest.state == IngestState::Uploaded {
        // An earlier attempt stored it before its job could say so.
        return then(ctx, probe).await;
    }
    let reference = video.source_ref.clone().unwrap_or_default();
    let dest = source_key(id.as_str());
    let size = match video.source_kind {
        SourceKind::Clone => {
            let orig = ctx.repo.get_video(ws, &VideoId::from_trusted(reference)).await.map_err(|e| match e {
                CoreError::NotFound => JobError::Permanent("the video to copy no longer exists".into()),
                e => e.into(),
            })?;
            let from =
                orig.ingest.source_key.ok_or_else(|| JobError::Permanent("the original has no source".into()))?;
            ctx.blobs.copy(&from, &dest).await?;
            ctx.blobs.size(&dest).await?.unwrap_or(0)
        }
        SourceKind::Download => download(ctx, &reference, &dest).await?,
        SourceKind::Upload => return Err(JobError::Permanent("an uploaded video has nothing to import".into())),
        SourceKind::Live => return Err(JobError::Permanent("a recording's source is stored by its broadcast".into())),
    };
    ctx.repo.source_ready(ws, id, &dest, size, now_ms()).await?;
    then(ctx, probe).await
}

/// Downloads a user's `source` URL into `dest` through the outbound guard, within the import
/// limits. A refusal is permanent, with the reason the user may read (it never says what answered
/// at a refused address).
async fn download(ctx: &Ctx, url: &str, dest: &str) -> Result<u64, JobError> {
    let refused = |e: vidi_outbound::OutboundError| JobError::Permanent(format!("source URL: {e}"));
    let url = ctx.outbound.check(url).map_err(refused)?;
    let limits = vidi_outbound::Limits {
        max_bytes: ctx.cfg.import_max_bytes,
        total: ctx.cfg.import_timeout,
        min_rate: ctx.cfg.import_min_rate,
        window: ctx.cfg.import_rate_window,
    };
    let body = ctx.outbound.download(&url, limits).await.map_err(refused)?;
    // The guard's error travels through the store as an io::Error and is read back here.
    let failure = Arc::new(Mutex::new(None));
    let seen = failure.clone();
    let body = futures::StreamExt::map(body, move |r| {
        r.map_err(|e| {
            *seen.lock().expect("not poisoned") = Some(e.clone());
            std::io::Error::other(e)
        })
    });
    match ctx.blobs.put_stream(dest, Box::pin(body)).await {
        Ok(n) => Ok(n),
        Err(e) => match failure.lock().expect("not poisoned").take() {
            Some(why) => Err(refused(why)),
            None => Err(e.into()),
        },
    }
}
