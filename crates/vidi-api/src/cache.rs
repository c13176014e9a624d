//! A byte-budgeted memory cache of HLS segments. Segments never change once published (their
//! keys are written once, and a re-encode writes the same bytes), so a hot segment can be served
//! from memory: one copy into the socket, no file or S3 read per request. This is what lets the
//! delivery path keep up with a static file server (docs/performance.md), and on S3 it saves a
//! round trip per viewer. Playlists, thumbnails and the MP4 are not cached here: playlists grow,
//! thumbnails can be replaced, and the MP4 is large and read by ranges.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::OnceCell;

/// Objects larger than this are streamed, never cached (a segment is 0.1–4 MB).
pub const MAX_ENTRY: u64 = 16 << 20;

pub struct SegmentCache {
    budget: u64,
    inner: Mutex<Entries>,
    /// Loads under way, so that requests missing the same segment at once share one read.
    loading: Mutex<HashMap<String, Arc<OnceCell<Option<Bytes>>>>>,
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, (Bytes, u64)>,
    bytes: u64,
    tick: u64,
}

impl SegmentCache {
    /// A cache holding at most `budget` bytes; 0 disables it.
    pub fn new(budget: u64) -> Self {
        SegmentCache { budget, inner: Mutex::new(Entries::default()), loading: Mutex::new(HashMap::new()) }
    }

    pub fn enabled(&self) -> bool {
        self.budget > 0
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        let mut e = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        e.tick += 1;
        let tick = e.tick;
        let (bytes, used) = e.map.get_mut(key)?;
        *used = tick;
        Some(bytes.clone())
    }

    /// The cached bytes of `key`, or what `load` reads (`None`: no such object), read once however
    /// many requests miss the same segment at the same time: a segment everyone starts with is
    /// one store read (on S3, one GET), not one per viewer. If the read fails, the next waiting
    /// request tries again.
    pub async fn get_or_load<E, F, Fut>(&self, key: &str, load: F) -> Result<Option<Bytes>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Bytes>, E>>,
    {
        if let Some(b) = self.get(key) {
            return Ok(Some(b));
        }
        let cell = self.loading.lock().unwrap_or_else(|p| p.into_inner()).entry(key.to_string()).or_default().clone();
        let r = cell.get_or_try_init(load).await.cloned();
        if let Ok(Some(b)) = &r {
            self.insert(key, b.clone());
        }
        let mut loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if cell.initialized() && loading.get(key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            loading.remove(key); // done: later requests find it in the cache
        }
        r
    }

    /// Keeps `bytes` under `key`, evicting the least recently used entries to stay in budget.
    pub fn insert(&self, key: &str, bytes: Bytes) {
        let len = bytes.len() as u64;
        if len > MAX_ENTRY || len > self.budget {
            return;
        }
        let mut e = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        e.tick += 1;
        let tick = e.tick;
        if let Some((old, _)) = e.map.insert(key.to_string(), (bytes, tick)) {
            e.bytes -= old.len() as u64;
        }
        e.bytes += len;
        // A linear scan per eviction: with a budget of some hundred MB of ~1 MB segments the map
        // holds a few hundred entries, and evictions happen only on misses.
        while e.bytes > self.budget {
            let Some(victim) = e.map.iter().min_by_key(|(_, (_, used))| *used).map(|(k, _)| k.clone()) else {
                break;
            };
            if let Some((b, _)) = e.map.remove(&victim) {
                e.bytes -= b.len() as u64;
            }
        }
    }

    /// Forgets every entry under `prefix` (a deleted video's media).
    pub fn remove_prefix(&self, prefix: &str) {
        let mut e = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<String> = e.map.keys().filter(|k| k.starts_with(prefix)).cloned().collect();
        for k in gone {
            if let Some((b, _)) = e.map.remove(&k) {
                e.bytes -= b.len() as u64;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_misses_share_one_read() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let c = Arc::new(SegmentCache::new(1 << 20));
        let reads = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (c, reads) = (c.clone(), reads.clone());
                tokio::spawn(async move {
                    c.get_or_load("seg", || async move {
                        reads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        Ok::<_, ()>(Some(Bytes::from_static(b"data")))
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(Some(Bytes::from_static(b"data"))));
        }
        assert_eq!(reads.load(Ordering::SeqCst), 1);
        // A failed read is not remembered.
        let r = c.get_or_load("other", || async { Err::<Option<Bytes>, _>("boom") }).await;
        assert_eq!(r, Err("boom"));
        let r = c.get_or_load("other", || async { Ok::<_, &str>(None) }).await;
        assert_eq!(r, Ok(None));
    }

    #[test]
    fn stays_within_budget_and_evicts_the_least_recently_used() {
        let c = SegmentCache::new(10);
        c.insert("a", Bytes::from_static(b"aaaa"));
        c.insert("b", Bytes::from_static(b"bbbb"));
        assert!(c.get("a").is_some()); // a is now more recent than b
        c.insert("c", Bytes::from_static(b"cccc"));
        assert!(c.get("b").is_none());
        assert_eq!(c.get("a").unwrap(), Bytes::from_static(b"aaaa"));
        assert!(c.get("c").is_some());
        c.insert("huge", Bytes::from(vec![0u8; 11]));
        assert!(c.get("huge").is_none());
        c.remove_prefix("a");
        assert!(c.get("a").is_none() && c.get("c").is_some());
        assert!(!SegmentCache::new(0).enabled());
    }
}
