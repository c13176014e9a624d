//! The live thumbnail: a picture of each broadcast, refreshed every few seconds while it is on
//! air, unless one was uploaded.
//!
//! Each one is an ffmpeg run (a fork of this process, an exec, a keyframe decode and a JPEG
//! encode), and a node holds many broadcasts: fifty streams each asking every five seconds were
//! ten ffmpeg starts a second, enough to take a 2-core node's CPU from the segmenters and the
//! viewers. So the node takes them **one at a time, in turn**: a broadcast due for one queues
//! for the node's single turn (a fair semaphore: first queued, first served, so the streams
//! take turns round-robin), and whoever holds the turn keeps it for a rest after its run. The
//! refresh interval then stretches with the number of streams (at most [`PER_SECOND`] pictures
//! a second node-wide) instead of the runs stretching the CPU; a few streams still get theirs
//! every `thumbnail_every`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::broadcast::{Held, Shared, lock};

/// At most this many live thumbnails a second on a node, all broadcasts together.
pub(crate) const PER_SECOND: u32 = 4;

/// The node's turn to take a live thumbnail (one at a time).
pub(crate) struct Turn(Semaphore);

impl Default for Turn {
    fn default() -> Self {
        Turn(Semaphore::new(1))
    }
}

/// Queues a thumbnail of `held` for the node's turn, unless one is already queued or being
/// taken (`queued`): whether it queued one. The picture is the newest keyframe when its turn
/// comes, not when it queued.
pub(crate) fn queue(shared: &Arc<Shared>, held: &Arc<Held>, queued: &Arc<AtomicBool>) -> bool {
    if queued.swap(true, Ordering::AcqRel) {
        return false;
    }
    let (shared2, held, queued) = (shared.clone(), held.clone(), queued.clone());
    shared.tasks.spawn(async move {
        // `cut` is a child of the node's stop: either ends the wait.
        let turn = tokio::select! {
            turn = shared2.thumbnails.0.acquire() => turn,
            () = held.cut.cancelled() => {
                queued.store(false, Ordering::Release);
                return;
            }
        };
        let started = tokio::time::Instant::now();
        if let Err(e) = take(&shared2, &held).await {
            tracing::warn!(live_stream = %held.live.id, error = %e, "the live thumbnail could not be taken");
        }
        let took = started.elapsed();
        tracing::debug!(live_stream = %held.live.id, took_ms = took.as_millis() as u64, "live thumbnail taken");
        queued.store(false, Ordering::Release);
        // The rest, turn held: the spacing of PER_SECOND, and never less than the run itself
        // took (so thumbnails never take more than half of one core, even on a slow node).
        let spacing = Duration::from_secs(1) / PER_SECOND;
        let rest = spacing.saturating_sub(took).max(took);
        tokio::select! {
            () = tokio::time::sleep(rest) => {}
            () = shared2.stop.cancelled() => {}
        }
        drop(turn);
    });
    true
}

/// Takes the thumbnail of the broadcast's newest keyframe and stores it.
async fn take(shared: &Shared, held: &Held) -> anyhow::Result<()> {
    let Some(input) = lock(&held.view).newest_keyframe() else {
        return Ok(()); // no part yet: the next turn
    };
    let jpeg = vidi_media::encode::thumbnail_of_fmp4(&shared.media, input).await?;
    let key = vidi_core::keys::live_auto_thumbnail_key(held.live.id.as_str());
    shared.blobs.put_bytes(&key, jpeg).await?;
    Ok(())
}
