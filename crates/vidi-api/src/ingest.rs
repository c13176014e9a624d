//! What happens to a source once its bytes are in. The work itself (assembling chunks, fetching
//! `source` URLs and copying clones, probing) is done by jobs of the short lane (see
//! `vidi_worker::ingest`): the API queues them and answers, so a node that dies right after
//! answering loses nothing. Beside that: the early encode of an upload still arriving, and at
//! start, queueing whatever a node older than these jobs left unfinished.

use vidi_core::id::{VideoId, WorkspaceId};
use vidi_core::jobs::{self, Growing, JobKind, JobSpec};
use vidi_core::model::{IngestState, SourceKind};
use vidi_core::time::now_ms;

use crate::AppState;

/// Attempts of the short lane's jobs; an assembly gets more (it only waits for the store).
const ATTEMPTS: u32 = 3;
const ASSEMBLY_ATTEMPTS: u32 = 6;

/// Queues `job` and wakes this process's workers. A failure is logged, not returned: what the
/// request stored is durable, and the next start queues the job (see [`recover`]).
pub async fn queue(state: &AppState, job: JobKind) {
    let attempts = if matches!(job, JobKind::Assemble { .. }) { ASSEMBLY_ATTEMPTS } else { ATTEMPTS };
    if let Err(e) = jobs::enqueue(state.repo.as_ref(), &state.waker, &job, now_ms(), attempts).await {
        tracing::error!(video = %job.video_id(), kind = job.name(), error = %e, "could not queue a job");
    }
}

/// Queues the probe of a complete source.
pub async fn queue_probe(state: &AppState, ws: &WorkspaceId, id: &VideoId) {
    queue(state, JobKind::Probe { video_id: id.clone(), workspace_id: ws.clone() }).await
}

/// Queues the assembly of a complete set of chunks (then its probe).
pub async fn queue_assembly(state: &AppState, ws: &WorkspaceId, id: &VideoId) {
    queue(state, JobKind::Assemble { video_id: id.clone(), workspace_id: ws.clone() }).await
}

/// Queues the fetch of a `source` URL or the copy of a clone's source (then its probe).
pub async fn queue_import(state: &AppState, ws: &WorkspaceId, id: &VideoId) {
    queue(state, JobKind::Import { video_id: id.clone(), workspace_id: ws.clone() }).await
}

/// After the first chunk of an upload: when the bytes received so far already describe the whole
/// video (a container whose index comes first: MP4 with `moov` ahead of the media, Matroska or
/// WebM) and the store keeps them as one growing file, queues the encoding at once, so the video
/// becomes playable while the rest of it is still on its way.
pub fn spawn_early_encode(state: AppState, ws: WorkspaceId, id: VideoId, session: String) {
    let tasks = state.clone();
    tasks.tasks.spawn(async move {
        // A clip is encoded from the whole source: seeking into one still arriving would wait.
        if state.repo.get_video(&ws, &id).await.is_ok_and(|v| v.clip.is_some()) {
            return;
        }
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

/// Queues what a previous process left unfinished: assemblies, fetches, probes and encodings.
/// Jobs are durable, so this only matters for work a node older than them left, or a job that
/// could not be queued; queueing work already queued or running is a no-op.
pub async fn recover(state: AppState) {
    let todo = match state.repo.videos_to_recover().await {
        Ok(t) => t,
        Err(e) => return tracing::error!(error = %e, "could not list unfinished ingests"),
    };
    for (ws, id) in todo {
        let Ok(video) = state.repo.get_video(&ws, &id).await else {
            continue;
        };
        let (video_id, workspace_id) = (id.clone(), ws.clone());
        let job = match (video.ingest.state, video.source_kind) {
            (IngestState::Assembling, _) => JobKind::Assemble { video_id, workspace_id },
            (IngestState::Uploaded, _) if video.ingest.probe.is_none() => JobKind::Probe { video_id, workspace_id },
            // Probed, but the process died before the encoding was queued.
            (IngestState::Uploaded, _) => JobKind::Encode { video_id, workspace_id: Some(workspace_id), growing: None },
            (_, SourceKind::Download | SourceKind::Clone) => JobKind::Import { video_id, workspace_id },
            _ => continue,
        };
        queue(&state, job).await;
    }
}
