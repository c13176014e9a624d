//! Playlists answered from memory by the service that produces them. A VOD playlist is a file in
//! the media store, written once a segment is; a live playlist changes several times a second,
//! and low-latency players ask for the next version before it exists (a blocking reload), so
//! reading it back from storage on every request would be both slow and stale. The producer (a
//! live packager in this process) publishes each version here; delivery answers from here first,
//! and from storage for whatever is not here.
//!
//! Bounded by what producers publish: each keeps one entry per playlist it makes, and withdraws
//! them when its stream ends. Nothing here is filled from a request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::id::MediaId;

/// One version of a playlist: its text and its number (1 for the first published).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub body: Bytes,
    pub number: u64,
}

/// The playlists of this process's producers, by subject and name (`"720p/index.m3u8"`).
#[derive(Default)]
pub struct PlaylistBoard {
    map: Mutex<HashMap<MediaId, HashMap<String, Version>>>,
    published: Notify,
}

impl PlaylistBoard {
    /// Publishes the next version of `name` of `id`, and wakes the requests waiting for it.
    pub fn publish(&self, id: &MediaId, name: &str, body: Bytes) -> u64 {
        let number = {
            let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            let entries = map.entry(id.clone()).or_default();
            let number = entries.get(name).map_or(1, |v| v.number + 1);
            entries.insert(name.to_string(), Version { body, number });
            number
        };
        self.published.notify_waiters();
        number
    }

    /// The current version of a playlist, if its producer publishes it here.
    pub fn get(&self, id: &MediaId, name: &str) -> Option<Version> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(id)?.get(name).cloned()
    }

    /// Whether any playlist of `id` is published here (its producer runs in this process).
    pub fn holds(&self, id: &MediaId) -> bool {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).contains_key(id)
    }

    /// A version newer than `after`: at once if there is one, else the first one published within
    /// `wait` (a blocking reload). `None` when none came, or the playlist is not here.
    pub async fn newer_than(&self, id: &MediaId, name: &str, after: u64, wait: Duration) -> Option<Version> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Armed before the check: a version published between the check and the wait wakes it.
            let published = self.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            match self.get(id, name) {
                Some(v) if v.number > after => return Some(v),
                None if !self.holds(id) => return None,
                _ => {}
            }
            if tokio::time::timeout_at(deadline, published).await.is_err() {
                return None;
            }
        }
    }

    /// Removes every playlist of `id` (its stream ended, or it was deleted): later requests are
    /// answered from storage.
    pub fn withdraw(&self, id: &MediaId) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        self.published.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::LiveStreamId;

    fn live() -> MediaId {
        MediaId::LiveStream(LiveStreamId::from_trusted("li1".into()))
    }

    #[test]
    fn versions_count_per_playlist_and_withdraw_empties() {
        let b = PlaylistBoard::default();
        assert_eq!(b.get(&live(), "index.m3u8"), None);
        assert_eq!(b.publish(&live(), "index.m3u8", Bytes::from_static(b"#EXTM3U\n1")), 1);
        assert_eq!(b.publish(&live(), "index.m3u8", Bytes::from_static(b"#EXTM3U\n2")), 2);
        assert_eq!(b.publish(&live(), "720p/index.m3u8", Bytes::from_static(b"x")), 1);
        assert_eq!(b.get(&live(), "index.m3u8").unwrap().body, Bytes::from_static(b"#EXTM3U\n2"));
        b.withdraw(&live());
        assert!(!b.holds(&live()) && b.get(&live(), "720p/index.m3u8").is_none());
    }

    #[tokio::test]
    async fn a_blocking_reload_returns_the_next_version_as_soon_as_it_is_published() {
        let b = std::sync::Arc::new(PlaylistBoard::default());
        b.publish(&live(), "index.m3u8", Bytes::from_static(b"v1"));
        // A newer one exists: at once.
        let now = b.newer_than(&live(), "index.m3u8", 0, Duration::from_secs(5)).await.unwrap();
        assert_eq!(now.number, 1);
        let producer = b.clone();
        let started = std::time::Instant::now();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            producer.publish(&live(), "index.m3u8", Bytes::from_static(b"v2"));
        });
        let next = b.newer_than(&live(), "index.m3u8", 1, Duration::from_secs(5)).await.unwrap();
        assert_eq!((next.number, next.body), (2, Bytes::from_static(b"v2")));
        assert!(started.elapsed() < Duration::from_secs(2));
        // Nothing newer comes: `None` after the wait; a playlist nobody publishes: `None` at once.
        assert_eq!(b.newer_than(&live(), "index.m3u8", 2, Duration::from_millis(30)).await, None);
        let started = std::time::Instant::now();
        let other = MediaId::LiveStream(LiveStreamId::from_trusted("li2".into()));
        assert_eq!(b.newer_than(&other, "index.m3u8", 0, Duration::from_secs(5)).await, None);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
