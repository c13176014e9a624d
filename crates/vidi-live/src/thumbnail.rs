//! The live thumbnail: a picture of each broadcast, refreshed every few seconds while it is on
//! air, unless one was uploaded.
//!
//! Each one is an ffmpeg run: a fork of this process, an exec, ffmpeg loading its two hundred
//! shared libraries (~80 ms of CPU on the 2-core node, most of the ~100 ms a thumbnail costs),
//! a keyframe decode and a JPEG encode. A node holds many broadcasts: fifty streams each
//! asking every five seconds were ten ffmpeg starts a second, over a core of CPU, taken from
//! the segmenters and the viewers. So:
//! - the node takes them **one at a time, in turn**: a broadcast due for one queues for the
//!   node's single turn (a fair semaphore: first queued, first served, so the streams take
//!   turns round-robin), and whoever holds the turn keeps it for a rest after its run: at most
//!   [`PER_SECOND`] a second node-wide, whatever the number of streams (the refresh interval
//!   stretches instead of the CPU);
//! - a broadcast's picture is refreshed every `thumbnail_every` while someone **asked** for
//!   it (`/live/{id}/thumbnail.jpg` through this node) in the last [`WATCHED`], and every
//!   [`UNWATCHED`] otherwise (so it is never older than that when someone first asks). The
//!   first is taken as soon as the broadcast has a part.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;
use vidi_core::time::now_ms;

use crate::broadcast::{Held, Shared, lock};

/// At most this many live thumbnails a second on a node, all broadcasts together: with ~100 ms
/// of CPU each, a fifth of one core at most.
pub(crate) const PER_SECOND: u32 = 2;
/// A thumbnail asked for within this long is watched: refreshed every `thumbnail_every`.
pub(crate) const WATCHED: Duration = Duration::from_secs(60);
/// How often an unwatched broadcast's thumbnail is refreshed.
pub(crate) const UNWATCHED: Duration = Duration::from_secs(60);

/// A broadcast's thumbnail state.
#[derive(Default)]
pub(crate) struct Thumb {
    /// A run is queued for the node's turn or under way.
    queued: AtomicBool,
    /// Unix ms of the last run that had a picture to take (0: none yet).
    last: AtomicI64,
    /// Unix ms of the last request for the thumbnail through this node (0: none).
    asked: AtomicI64,
}

impl Thumb {
    /// Someone asked for the thumbnail: refresh it every `thumbnail_every` for a while.
    pub(crate) fn asked(&self) {
        self.asked.store(now_ms(), Ordering::Relaxed);
    }

    /// Whether a run is due at `now` (unix ms), `every` apart while watched.
    pub(crate) fn due(&self, every: Duration, now: i64) -> bool {
        if self.queued.load(Ordering::Acquire) {
            return false;
        }
        let last = self.last.load(Ordering::Relaxed);
        if last == 0 {
            return true;
        }
        let watched = now - self.asked.load(Ordering::Relaxed) < WATCHED.as_millis() as i64;
        let every = if watched { every } else { UNWATCHED.max(every) };
        now - last >= every.as_millis() as i64
    }
}

/// The node's turn to take a live thumbnail (one at a time).
pub(crate) struct Turn(Semaphore);

impl Default for Turn {
    fn default() -> Self {
        Turn(Semaphore::new(1))
    }
}

/// Queues a thumbnail of `held` for the node's turn, unless one is already queued or under
/// way. The picture is the newest keyframe when its turn comes, not when it queued.
pub(crate) fn queue(shared: &Arc<Shared>, held: &Arc<Held>) {
    if held.thumbnail.queued.swap(true, Ordering::AcqRel) {
        return;
    }
    let (shared2, held) = (shared.clone(), held.clone());
    shared.tasks.spawn(async move {
        let thumb = &held.thumbnail;
        // `cut` is a child of the node's stop: either ends the wait.
        let turn = tokio::select! {
            turn = shared2.thumbnails.0.acquire() => turn,
            () = held.cut.cancelled() => {
                thumb.queued.store(false, Ordering::Release);
                return;
            }
        };
        let started = tokio::time::Instant::now();
        let taken = take(&shared2, &held).await;
        let took = started.elapsed();
        match taken {
            Ok(false) => {} // no part yet: due again at the next tick
            Ok(true) => {
                thumb.last.store(now_ms(), Ordering::Relaxed);
                tracing::debug!(live_stream = %held.live.id, took_ms = took.as_millis() as u64, "live thumbnail taken");
            }
            Err(e) => {
                // Tried again at the next refresh, not at the next tick.
                thumb.last.store(now_ms(), Ordering::Relaxed);
                tracing::warn!(live_stream = %held.live.id, error = %e, "the live thumbnail could not be taken");
            }
        }
        thumb.queued.store(false, Ordering::Release);
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
}

/// Takes the thumbnail of the broadcast's newest keyframe and stores it; `false` when there is
/// no part to take it from yet.
async fn take(shared: &Shared, held: &Held) -> anyhow::Result<bool> {
    let Some(input) = lock(&held.view).newest_keyframe() else {
        return Ok(false);
    };
    let jpeg = vidi_media::encode::thumbnail_of_fmp4(&shared.media, input).await?;
    let key = vidi_core::keys::live_auto_thumbnail_key(held.live.id.as_str());
    shared.blobs.put_bytes(&key, jpeg).await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refreshed_often_while_asked_for_and_rarely_otherwise() {
        let every = Duration::from_secs(5);
        let t = Thumb::default();
        let now = now_ms();
        assert!(t.due(every, now), "the first at once");
        t.last.store(now, Ordering::Relaxed);
        // Nobody asked: a minute apart.
        assert!(!t.due(every, now + 6_000));
        assert!(t.due(every, now + UNWATCHED.as_millis() as i64));
        // Asked for: `every` apart, for WATCHED after the last ask.
        t.asked.store(now, Ordering::Relaxed);
        assert!(!t.due(every, now + 4_000));
        assert!(t.due(every, now + 5_000));
        t.last.store(now + 70_000, Ordering::Relaxed);
        assert!(!t.due(every, now + 76_000), "the ask is older than WATCHED by then");
        // A run queued or under way: not again.
        t.queued.store(true, Ordering::Relaxed);
        assert!(!t.due(every, now + 500_000));
    }
}
