//! What the segment route needs to know about a video or a live stream (a [`MediaId`]) before it
//! serves one of its files: that it exists, whose it is, and whether it is public. A player fetches a segment every 0.5–2 s per
//! viewer, and reading the video's row for each (the whole row, its probe parsed from JSON) was
//! the largest fixed cost of a segment request (docs/performance.md). These facts change only
//! through this API (`PATCH public`, `DELETE`), so this node forgets them the moment it changes
//! them, and other nodes (which share the database, not this memory) act on what they read for at
//! most [`MAX_VISIBILITY_TTL`].
//!
//! Only videos that exist are remembered: an unknown one is asked for again every time (so a video
//! created on another node is served at once, and ids sent by the network fill nothing). A private
//! video still has its token and session checked in the database on every request; what is
//! remembered of it is only that it is private.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vidi_core::id::{MediaId, WorkspaceId};

/// The longest a node serves a video's files on what it read about the video: a video made
/// private or deleted through another node stops being served here within this. The node that
/// makes the change stops at once.
pub const MAX_VISIBILITY_TTL: Duration = Duration::from_secs(1);

/// Entries kept at most. Video ids come from the network; only videos that exist are kept, but a
/// catalogue can be large, so the map is bounded all the same.
const CAP: usize = 50_000;

/// A video's or live stream's owner and visibility, as read from the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Visibility {
    pub id: MediaId,
    pub workspace_id: WorkspaceId,
    pub public: bool,
}

pub struct VisibilityCache {
    ttl: Duration,
    map: Mutex<HashMap<MediaId, (Visibility, Instant)>>,
    /// Bumped by every `forget`: a read that started before a change must not store what it read
    /// after the change has been made (it could put back the visibility the change replaced).
    epoch: AtomicU64,
}

/// Taken before the database is asked; [`VisibilityCache::insert`] stores only if nothing was
/// forgotten since.
pub struct Ticket {
    epoch: u64,
    read_at: Instant,
}

impl VisibilityCache {
    /// A cache whose entries live `ttl` (capped at [`MAX_VISIBILITY_TTL`]); zero disables it.
    pub fn new(ttl: Duration) -> Self {
        VisibilityCache { ttl: ttl.min(MAX_VISIBILITY_TTL), map: Mutex::new(HashMap::new()), epoch: AtomicU64::new(0) }
    }

    pub fn get(&self, id: &MediaId) -> Option<Visibility> {
        if self.ttl.is_zero() {
            return None;
        }
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id).filter(|(_, at)| at.elapsed() < self.ttl).map(|(v, _)| v.clone())
    }

    pub fn ticket(&self) -> Ticket {
        Ticket { epoch: self.epoch.load(Ordering::Acquire), read_at: Instant::now() }
    }

    /// Keeps what a read begun at `ticket` found, unless something was forgotten since it began.
    /// Its age counts from the ticket, so an entry never outlives the fact it records by more than
    /// the TTL.
    pub fn insert(&self, ticket: Ticket, v: Visibility) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // Checked under the lock that `forget` takes too: no forget can slip between the check
        // and the insert.
        if self.epoch.load(Ordering::Acquire) != ticket.epoch {
            return;
        }
        if map.len() >= CAP && !map.contains_key(&v.id) {
            map.retain(|_, (_, at)| at.elapsed() < self.ttl);
            if map.len() >= CAP {
                map.clear();
            }
        }
        map.insert(v.id.clone(), (v, ticket.read_at));
    }

    /// Forgets a video or live stream whose visibility changed or which was deleted. Call it
    /// once the change is in the database: a read that starts later sees the change, and one
    /// that started earlier stores nothing.
    pub fn forget_media(&self, id: &MediaId) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        map.remove(id);
    }
}

impl VisibilityCache {
    /// [`forget_media`](Self::forget_media) of a video.
    pub fn forget(&self, id: &vidi_core::id::VideoId) {
        self.forget_media(&MediaId::Video(id.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use vidi_core::id::{LiveStreamId, VideoId};

    fn video(id: &str) -> MediaId {
        MediaId::Video(VideoId::from_trusted(id.into()))
    }

    fn vis(id: &str, public: bool) -> Visibility {
        Visibility { id: video(id), workspace_id: WorkspaceId::from_trusted("ws1".into()), public }
    }

    #[test]
    fn answers_while_fresh_and_forgets_on_change() {
        let c = VisibilityCache::new(Duration::from_secs(1));
        let id = video("vi1");
        assert_eq!(c.get(&id), None);
        c.insert(c.ticket(), vis("vi1", true));
        assert_eq!(c.get(&id), Some(vis("vi1", true)));
        c.forget_media(&id);
        assert_eq!(c.get(&id), None);
        // Read from the database longer ago than the TTL: not acted on.
        c.insert(
            Ticket { epoch: c.epoch.load(Ordering::Acquire), read_at: Instant::now() - Duration::from_secs(2) },
            vis("vi1", true),
        );
        assert_eq!(c.get(&id), None);
    }

    #[test]
    fn a_read_that_straddles_a_change_is_not_stored() {
        let c = VisibilityCache::new(Duration::from_secs(1));
        let id = video("vi1");
        let t = c.ticket(); // a request starts reading: the video is public
        c.forget_media(&id); // meanwhile it is made private
        c.insert(t, vis("vi1", true)); // the stale answer arrives
        assert_eq!(c.get(&id), None);
    }

    #[test]
    fn videos_and_live_streams_share_the_memory_apart() {
        let c = VisibilityCache::new(Duration::from_secs(1));
        let live = MediaId::LiveStream(LiveStreamId::from_trusted("li1".into()));
        let ws = WorkspaceId::from_trusted("ws1".into());
        c.insert(c.ticket(), Visibility { id: live.clone(), workspace_id: ws, public: false });
        c.insert(c.ticket(), vis("vi1", true));
        assert!(c.get(&live).is_some_and(|v| !v.public));
        c.forget_media(&live);
        assert_eq!((c.get(&live), c.get(&video("vi1"))), (None, Some(vis("vi1", true))));
    }

    #[test]
    fn ttl_is_capped_and_zero_disables() {
        assert_eq!(VisibilityCache::new(Duration::from_secs(60)).ttl, MAX_VISIBILITY_TTL);
        let c = VisibilityCache::new(Duration::ZERO);
        c.insert(c.ticket(), vis("vi1", true));
        assert_eq!(c.get(&video("vi1")), None);
    }
}
