//! What a failed encoding does to a video's status, wherever it failed: in a job that gave up
//! (`vidi-worker`), or before any job could start (the API's probe or source fetch).

use crate::Repo;
use crate::id::{VideoId, WorkspaceId};
use crate::model::Quality;

/// Says in the status that encoding failed: every output not encoded becomes `failed`, and a
/// video that never got a ladder (not a video, no picture) shows its lowest quality as failed,
/// since the 2023 status has no other place for it. The reason is kept for the operator.
pub async fn record_failure(repo: &dyn Repo, ws: &WorkspaceId, id: &VideoId, error: &str) {
    let _ = repo.set_encode_error(ws, id, Some(error)).await;
    match repo.qualities(ws, id).await {
        Ok(qs) if !qs.is_empty() => {
            // A ladder cut short (the disk filled, the encoder died) may have been marked playable
            // while it grew; its playlists now stop part-way and never end, so it is not playable.
            // (A failed MP4 after a finished ladder leaves the video playable.) Said before the
            // qualities turn `failed`, so whoever sees them failed sees it unplayable too.
            if qs.iter().any(|q| q.kind == "hls" && q.status != "encoded") {
                let _ = repo.set_playable(ws, id, false).await;
            }
            for q in qs.iter().filter(|q| q.status != "encoded") {
                let _ = repo.set_quality_status(ws, id, &q.kind, &q.quality, "failed").await;
            }
        }
        _ => {
            let failed = Quality { kind: "hls".into(), quality: "240p".into(), status: "failed".into() };
            let _ = repo.plan_qualities(ws, id, &[failed]).await;
        }
    }
}
