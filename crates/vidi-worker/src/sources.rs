//! One copy per node of each source kept in S3, shared by the jobs of its video.
//!
//! ffmpeg and ffprobe are only given local files (see `vidi_media::input`). A video is probed,
//! its head encoded, then its pieces (see `pieces`), each an ffmpeg run of its own that reads one
//! time range of the source. When each of those jobs copied the whole source from the bucket, a
//! 1.5 GB video in 20 pieces read some 33 GB. Here a node keeps one copy of a source while its
//! jobs need it:
//!
//! - Jobs of the same source share the copy, and a download still in progress: the second job
//!   waits for the first one's download rather than starting its own. A download outlives the
//!   job that started it for as long as another job waits for it; when nobody does any more
//!   (every job waiting for it stopped), it stops and what it wrote goes.
//! - A copy is of one version of the source, its key with its size and ETag, checked against the
//!   store (a `HEAD`) each time a job asks: a source stored anew under the same key is copied
//!   again, never read from the old copy; a download that did not bring exactly the size the
//!   store announced is no copy.
//! - A copy goes when its video's encoding ends (finished, or failed for good: [`SourceCopies::
//!   forget`]), or once no job has used it for `linger`: a piece handed back by a stopping node,
//!   or a retry, may still come, and finds it. Idle copies also go first when a download needs
//!   their room, and when a job was stopped by a full disk (see `crate::execute`).
//! - Each process keeps its copies in a folder of its own, `<data>/.inputs/copies-<id>/`, locked
//!   while the process lives (`copies-<id>.lock`, an advisory `flock` the kernel drops when the
//!   process dies, however it dies). A process killed mid-download (or mid-encode) leaves its
//!   folder behind; the next one to start on the data folder removes it, unread (see
//!   [`sweep_dead`]): no copy is ever taken over from another process, so none half-written is
//!   ever read as whole.
//!
//! A local media store needs none of this: its objects are files, which the media tools read in
//! place (see `Blobs::local_input`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::{BoxFuture, WeakShared};
use vidi_core::blobs::{LocalInput, ObjectVersion};
use vidi_core::metric_names as names;
use vidi_core::{Blobs, CoreError, CoreResult};

type Download = BoxFuture<'static, Result<Arc<CopyFile>, String>>;

/// This process's copies of sources kept elsewhere (cheap to clone: one set per process).
#[derive(Clone)]
pub struct SourceCopies {
    inner: Arc<Inner>,
}

struct Inner {
    /// `<data>/.inputs`, where every process on the data folder keeps its copies' folder.
    inputs: PathBuf,
    /// Names this process's folder and lock file.
    id: String,
    linger: Duration,
    state: Mutex<State>,
    /// Cancelled when the process is done with its copies: the timers of idle copies end with it
    /// (a stopped node leaves no task behind).
    closed: tokio_util::sync::CancellationToken,
}

#[derive(Default)]
struct State {
    /// The lock held while this process lives, taken when its folder is first made.
    lock: Option<std::fs::File>,
    /// By source key.
    entries: HashMap<String, Entry>,
    /// Numbers the entries, so that a job letting go of a copy replaced since leaves the new one be.
    next: u64,
}

struct Entry {
    generation: u64,
    version: ObjectVersion,
    slot: Slot,
    /// Jobs holding this copy, or waiting for its download.
    users: usize,
    last_used: Instant,
    /// Its video's encoding has ended: it goes as soon as nobody uses it.
    forgotten: bool,
}

enum Slot {
    /// Being downloaded: the download itself is held by the jobs waiting for it.
    Fetching(WeakShared<Download>),
    Ready(Arc<CopyFile>),
}

/// A copy on disk, removed when the last of its holders lets it go (or when its download stops).
struct CopyFile {
    path: PathBuf,
    size: u64,
}

impl Drop for CopyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A local file holding a source, for the media tools, held while a job reads it.
pub struct SourceInput {
    held: Held,
}

enum Held {
    /// The local store's own file (or whatever `Blobs::local_input` gave).
    InPlace(LocalInput),
    Shared {
        copy: Arc<CopyFile>,
        _use: Use,
    },
}

impl SourceInput {
    pub fn path(&self) -> &Path {
        match &self.held {
            Held::InPlace(l) => &l.path,
            Held::Shared { copy, .. } => &copy.path,
        }
    }

    pub fn as_str(&self) -> &str {
        self.path().to_str().unwrap_or_default()
    }
}

/// One job's use of an entry: counted from the moment it asks, let go on drop (also when the
/// job is dropped while it waits for the download).
struct Use {
    inner: Arc<Inner>,
    key: String,
    generation: u64,
}

impl Drop for Use {
    fn drop(&mut self) {
        self.inner.let_go(&self.key, self.generation);
    }
}

impl SourceCopies {
    /// Copies under `inputs` (`<data>/.inputs`), each kept `linger` after its last use.
    pub fn new(inputs: PathBuf, linger: Duration) -> Self {
        let inner = Inner {
            inputs,
            id: vidi_core::id::random_body(),
            linger,
            state: Mutex::new(State::default()),
            closed: tokio_util::sync::CancellationToken::new(),
        };
        SourceCopies { inner: Arc::new(inner) }
    }

    /// A local file holding `key` of `blobs`, for as long as the returned value is held: the
    /// store's own file when it keeps objects as files, else this node's copy, downloaded now
    /// unless this node has one of the same version already (or is downloading it).
    pub async fn input(&self, blobs: &Arc<dyn Blobs>, key: &str) -> CoreResult<SourceInput> {
        if blobs.local_path(key).is_some() {
            let l = blobs.local_input(key, &self.inner.inputs).await?;
            return Ok(SourceInput { held: Held::InPlace(l) });
        }
        let version = blobs.version(key).await?.ok_or(CoreError::NotFound)?;
        self.inner.expire();
        let (download, u) = {
            let mut st = self.inner.lock();
            let now = Instant::now();
            let found = match st.entries.get_mut(key) {
                Some(e) if e.version == version => match &e.slot {
                    Slot::Ready(copy) => Some(Ok(copy.clone())),
                    Slot::Fetching(weak) => weak.upgrade().map(Err),
                },
                _ => None,
            };
            match found {
                Some(shared) => {
                    let e = st.entries.get_mut(key).expect("just found");
                    e.users += 1;
                    e.last_used = now;
                    e.forgotten = false;
                    let u = Use { inner: self.inner.clone(), key: key.to_string(), generation: e.generation };
                    match shared {
                        Ok(copy) => {
                            metrics::counter!(names::SOURCE_COPIES, "outcome" => "shared").increment(1);
                            return Ok(SourceInput { held: Held::Shared { copy, _use: u } });
                        }
                        Err(download) => {
                            metrics::counter!(names::SOURCE_COPIES, "outcome" => "shared").increment(1);
                            (download, u)
                        }
                    }
                }
                None => {
                    st.next += 1;
                    let generation = st.next;
                    let download: Download =
                        fetch(self.inner.clone(), blobs.clone(), key.to_string(), version.size, generation).boxed();
                    let download = download.shared();
                    let weak = download.downgrade().expect("not polled yet");
                    // A version replaced here stays on disk for the jobs still reading it.
                    st.entries.insert(
                        key.to_string(),
                        Entry {
                            generation,
                            version,
                            slot: Slot::Fetching(weak),
                            users: 1,
                            last_used: now,
                            forgotten: false,
                        },
                    );
                    metrics::counter!(names::SOURCE_COPIES, "outcome" => "downloaded").increment(1);
                    (download, Use { inner: self.inner.clone(), key: key.to_string(), generation })
                }
            }
        };
        let r = download.await;
        let mut st = self.inner.lock();
        let current = st.entries.get_mut(key).filter(|e| e.generation == u.generation);
        match r {
            Ok(copy) => {
                if let Some(e) = current
                    && matches!(e.slot, Slot::Fetching(_))
                {
                    e.slot = Slot::Ready(copy.clone());
                }
                drop(st);
                Ok(SourceInput { held: Held::Shared { copy, _use: u } })
            }
            Err(e) => {
                // The next job to ask downloads it again.
                if current.is_some() {
                    st.entries.remove(key);
                }
                drop(st);
                Err(CoreError::Storage(e))
            }
        }
    }

    /// The encoding of the video of source `key` has ended: its copy goes as soon as no job
    /// uses it.
    pub fn forget(&self, key: &str) {
        let removed = {
            let mut st = self.inner.lock();
            match st.entries.get_mut(key) {
                Some(e) if e.users == 0 => st.entries.remove(key),
                Some(e) => {
                    e.forgotten = true;
                    None
                }
                None => None,
            }
        };
        drop(removed); // the file goes with it, outside the lock
    }

    /// Removes every copy no job uses now (a job was stopped by a full disk: the disk's room
    /// goes to the jobs before any copy kept in case).
    pub fn evict_idle(&self) {
        let idle = self.inner.take_idle(|_| true);
        drop(idle);
    }

    /// This process's folder of copies (for tests and logs).
    pub fn folder(&self) -> PathBuf {
        self.inner.folder_path()
    }

    /// How many sources this process holds a copy of, or is downloading.
    pub fn len(&self) -> usize {
        self.inner.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn folder_path(&self) -> PathBuf {
        self.inputs.join(format!("copies-{}", self.id))
    }

    fn lock_path(&self) -> PathBuf {
        self.inputs.join(format!("copies-{}.lock", self.id))
    }

    /// This process's folder, made (with its lock taken first) on first use.
    fn folder(&self) -> std::io::Result<PathBuf> {
        let dir = self.folder_path();
        let mut st = self.lock();
        if st.lock.is_none() {
            std::fs::create_dir_all(&self.inputs)?;
            let f = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(self.lock_path())?;
            f.try_lock().map_err(std::io::Error::other)?;
            st.lock = Some(f);
        }
        std::fs::create_dir_all(&dir)?;
        Ok(dir)
    }

    /// A job let go of entry `generation` of `key`.
    fn let_go(self: &Arc<Self>, key: &str, generation: u64) {
        let removed = {
            let mut st = self.lock();
            let Some(e) = st.entries.get_mut(key).filter(|e| e.generation == generation) else { return };
            e.users -= 1;
            e.last_used = Instant::now();
            if e.users > 0 {
                return;
            }
            // A download nobody waits for has stopped (its future dropped with its last waiter).
            if e.forgotten || matches!(e.slot, Slot::Fetching(_)) { st.entries.remove(key) } else { None }
        };
        if removed.is_some() {
            return;
        }
        // Idle now: it goes after `linger` unless a job takes it again meanwhile.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (weak, linger, closed) = (Arc::downgrade(self), self.linger, self.closed.clone());
            rt.spawn(async move {
                tokio::select! {
                    () = tokio::time::sleep(linger) => {}
                    () = closed.cancelled() => return,
                }
                if let Some(inner) = weak.upgrade() {
                    inner.expire();
                }
            });
        }
    }

    /// Removes the copies idle for `linger`.
    fn expire(&self) {
        let linger = self.linger;
        let expired = self.take_idle(|e| e.last_used.elapsed() >= linger);
        drop(expired);
    }

    /// Takes out the whole copies no job uses that `which` picks; they are removed from disk
    /// when the caller drops them, outside the lock.
    fn take_idle(&self, which: impl Fn(&Entry) -> bool) -> Vec<Entry> {
        let mut st = self.lock();
        let keys: Vec<String> = st
            .entries
            .iter()
            .filter(|(_, e)| e.users == 0 && matches!(e.slot, Slot::Ready(_)) && which(e))
            .map(|(k, _)| k.clone())
            .collect();
        keys.iter().filter_map(|k| st.entries.remove(k)).collect()
    }

    /// Room on disk for `size` more bytes: idle copies go, oldest use first, until they fit. A
    /// source larger than all there is fails the download at once, as a full disk (see
    /// `vidi_core::error::is_disk_full`), rather than filling the disk with a partial copy.
    fn make_room(&self, dir: &Path, size: u64) -> Result<(), String> {
        loop {
            let Ok((available, _)) = vidi_media::encode::available_bytes(dir) else { return Ok(()) };
            if available >= size {
                return Ok(());
            }
            let oldest = {
                let mut st = self.lock();
                let key = st
                    .entries
                    .iter()
                    .filter(|(_, e)| e.users == 0 && matches!(e.slot, Slot::Ready(_)))
                    .min_by_key(|(_, e)| e.last_used)
                    .map(|(k, _)| k.clone());
                key.and_then(|k| st.entries.remove(&k))
            };
            match oldest {
                Some(e) => drop(e), // its file goes: measure again
                None => {
                    return Err(format!(
                        "copying the source: no space left on device ({size} bytes needed, {available} free)"
                    ));
                }
            }
        }
    }
}

impl Drop for Inner {
    /// The process is done with its copies (its last worker context is gone).
    fn drop(&mut self) {
        self.closed.cancel();
        let st = self.state.get_mut().unwrap_or_else(|p| p.into_inner());
        st.entries.clear();
        if let Some(lock) = st.lock.take() {
            let _ = std::fs::remove_dir_all(self.folder_path());
            let _ = std::fs::remove_file(self.lock_path());
            drop(lock);
        }
    }
}

/// Downloads `key` into this process's folder.
async fn fetch(
    inner: Arc<Inner>,
    blobs: Arc<dyn Blobs>,
    key: String,
    size: u64,
    generation: u64,
) -> Result<Arc<CopyFile>, String> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let scratch = |e: std::io::Error| format!("copying the source: {e}");
    let dir = inner.folder().map_err(scratch)?;
    inner.make_room(&dir, size)?;
    // Removed if this stops half-way (an error, or every waiting job gone).
    let copy = CopyFile { path: dir.join(format!("source-{generation}")), size };
    let mut file = tokio::fs::File::create(&copy.path).await.map_err(scratch)?;
    let mut body = blobs.get(&key, None).await.map_err(|e| e.to_string())?;
    let mut got = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| format!("read {key}: {e}"))?;
        got += chunk.len() as u64;
        file.write_all(&chunk).await.map_err(scratch)?;
    }
    file.flush().await.map_err(scratch)?;
    if got != copy.size {
        return Err(format!("read {key}: {got} bytes where the store said {size}: it changed while it was read"));
    }
    metrics::counter!(names::SOURCE_COPY_BYTES).increment(got);
    Ok(Arc::new(copy))
}

/// At start: removes the copies' folders of processes that are gone (their lock is free), and
/// folders without a lock file at all. What a live process holds is left alone.
pub(crate) fn sweep_dead(inputs: &Path) {
    let Ok(entries) = std::fs::read_dir(inputs) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_prefix("copies-") else { continue };
        let (id, is_lock) = match id.strip_suffix(".lock") {
            Some(id) => (id, true),
            None => (id, false),
        };
        let lock = inputs.join(format!("copies-{id}.lock"));
        let dir = inputs.join(format!("copies-{id}"));
        let dead = if is_lock {
            match std::fs::File::open(&lock) {
                // Held while this is removed, so that nobody takes the id meanwhile.
                Ok(f) => f.try_lock().is_ok().then_some(f),
                Err(_) => None,
            }
        } else {
            // A folder is its process's while its lock file exists (made first, removed last).
            if lock.exists() {
                continue;
            }
            None
        };
        if is_lock && dead.is_none() {
            continue;
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => tracing::info!(path = %dir.display(), "removed the source copies of a stopped process"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %dir.display(), error = %e, "could not remove stale source copies"),
        }
        if is_lock {
            let _ = std::fs::remove_file(&lock);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    use async_trait::async_trait;
    use vidi_core::blobs::{ByteStream, ChunkRef, ChunkTarget};
    use vidi_core::model::UploadMode;

    const KEY: &str = "videos/vi1/source";

    /// A store kept in memory, like S3 (no local files), whose reads wait at `gate` and count.
    struct Store {
        objects: Mutex<HashMap<String, Vec<u8>>>,
        gets: AtomicU32,
        gate: Arc<tokio::sync::Semaphore>,
        /// Reads fail after their first chunk.
        broken: std::sync::atomic::AtomicBool,
    }

    impl Store {
        fn with(bytes: Vec<u8>, open: bool) -> Arc<Store> {
            let s = Store {
                objects: Mutex::default(),
                gets: AtomicU32::new(0),
                gate: Arc::new(tokio::sync::Semaphore::new(0)),
                broken: std::sync::atomic::AtomicBool::new(false),
            };
            s.objects.lock().unwrap().insert(KEY.into(), bytes);
            if open {
                s.gate.add_permits(1 << 20);
            }
            Arc::new(s)
        }
        fn gets(&self) -> u32 {
            self.gets.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl Blobs for Store {
        fn backend(&self) -> &'static str {
            "memory"
        }
        async fn put_stream(&self, _: &str, _: ByteStream) -> CoreResult<u64> {
            unimplemented!()
        }
        async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> CoreResult<()> {
            self.objects.lock().unwrap().insert(key.into(), bytes);
            Ok(())
        }
        async fn put_file(&self, _: &str, _: &Path) -> CoreResult<()> {
            unimplemented!()
        }
        async fn get(&self, key: &str, _: Option<(u64, u64)>) -> CoreResult<ByteStream> {
            let bytes = self.objects.lock().unwrap().get(key).cloned().ok_or(CoreError::NotFound)?;
            self.gets.fetch_add(1, Ordering::SeqCst);
            let (gate, broken) = (self.gate.clone(), self.broken.load(Ordering::SeqCst));
            let (first, rest) = bytes.split_at(bytes.len() / 2);
            let (first, rest) = (first.to_vec(), rest.to_vec());
            let body = async_stream(async move {
                let _ = gate.acquire().await.expect("open");
                let rest = if broken { Err(std::io::Error::other("connection reset")) } else { Ok(rest.into()) };
                vec![Ok(first.into()), rest]
            });
            Ok(body)
        }
        async fn size(&self, key: &str) -> CoreResult<Option<u64>> {
            Ok(self.objects.lock().unwrap().get(key).map(|b| b.len() as u64))
        }
        async fn delete(&self, _: &str) -> CoreResult<()> {
            unimplemented!()
        }
        async fn delete_prefix(&self, _: &str) -> CoreResult<()> {
            unimplemented!()
        }
        async fn copy(&self, _: &str, _: &str) -> CoreResult<()> {
            unimplemented!()
        }
        async fn begin_chunks(&self, _: &str, _: UploadMode) -> CoreResult<String> {
            unimplemented!()
        }
        async fn write_chunk(&self, _: &ChunkTarget<'_>, _: ByteStream) -> CoreResult<(u64, String)> {
            unimplemented!()
        }
        async fn assemble(&self, _: &str, _: &str, _: UploadMode, _: &[ChunkRef]) -> CoreResult<()> {
            unimplemented!()
        }
        async fn abort_chunks(&self, _: &str, _: &str) -> CoreResult<()> {
            unimplemented!()
        }
    }

    /// The chunks `items` gives, once it has run.
    fn async_stream(
        items: impl Future<Output = Vec<<ByteStream as futures::Stream>::Item>> + Send + 'static,
    ) -> ByteStream {
        use futures::StreamExt;
        Box::pin(futures::stream::once(items).flat_map(futures::stream::iter))
    }

    fn inputs() -> PathBuf {
        std::env::temp_dir().join(format!("vidi-copies-{}", vidi_core::id::random_body())).join(".inputs")
    }

    fn files_in(dir: &Path) -> usize {
        std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
    }

    async fn until(what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !cond() {
            assert!(Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test]
    async fn jobs_share_one_download_in_progress_and_the_copy_goes_after_its_linger() {
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let store = Store::with(data.clone(), false);
        let blobs: Arc<dyn Blobs> = store.clone();
        let copies = SourceCopies::new(inputs(), Duration::from_millis(300));
        // Two jobs ask at once: one download, which the second waits for.
        let (a, b) = (copies.clone(), copies.clone());
        let (ba, bb) = (blobs.clone(), blobs.clone());
        let first = tokio::spawn(async move { a.input(&ba, KEY).await.unwrap() });
        until("the first download starts", || store.gets() == 1).await;
        let second = tokio::spawn(async move { b.input(&bb, KEY).await.unwrap() });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.gets(), 1, "the second job waits for the first one's download");
        store.gate.add_permits(1 << 20);
        let (first, second) = (first.await.unwrap(), second.await.unwrap());
        assert_eq!(first.path(), second.path());
        assert_eq!(std::fs::read(first.path()).unwrap(), data);
        // A third, while they hold it: no download.
        let third = copies.input(&blobs, KEY).await.unwrap();
        assert_eq!((store.gets(), third.path()), (1, first.path()));
        let path = first.path().to_path_buf();
        drop((first, second, third));
        // Idle, it stays for its linger: a job back within it finds it.
        assert!(path.exists(), "kept for its linger");
        let again = copies.input(&blobs, KEY).await.unwrap();
        assert_eq!((store.gets(), again.path()), (1, path.as_path()));
        drop(again);
        until("the idle copy goes after its linger", || !path.exists()).await;
        assert!(copies.is_empty());
        assert_eq!(files_in(&copies.folder()), 0);
        // Asked again later: downloaded again.
        let later = copies.input(&blobs, KEY).await.unwrap();
        assert_eq!(store.gets(), 2);
        assert_eq!(std::fs::read(later.path()).unwrap(), data);
    }

    #[tokio::test]
    async fn a_copy_goes_when_its_video_is_done_and_its_last_job_lets_go() {
        let store = Store::with(vec![7; 1000], true);
        let blobs: Arc<dyn Blobs> = store.clone();
        let copies = SourceCopies::new(inputs(), Duration::from_secs(3600));
        let held = copies.input(&blobs, KEY).await.unwrap();
        let path = held.path().to_path_buf();
        copies.forget(KEY);
        assert!(path.exists(), "still read by a job");
        drop(held);
        assert!(!path.exists() && copies.is_empty(), "gone with its last job, not after the linger");
        // Idle when its video ends: gone at once.
        let idle = copies.input(&blobs, KEY).await.unwrap();
        let path = idle.path().to_path_buf();
        drop(idle);
        assert!(path.exists());
        copies.forget(KEY);
        assert!(!path.exists() && copies.is_empty());
        // And when a full disk wants the room.
        drop(copies.input(&blobs, KEY).await.unwrap());
        assert_eq!(copies.len(), 1);
        copies.evict_idle();
        assert!(copies.is_empty());
        assert_eq!(files_in(&copies.folder()), 0);
        assert_eq!(store.gets(), 3);
    }

    #[tokio::test]
    async fn a_source_stored_anew_is_copied_again_and_the_old_copy_stays_for_its_readers() {
        let store = Store::with(vec![1; 1000], true);
        let blobs: Arc<dyn Blobs> = store.clone();
        let copies = SourceCopies::new(inputs(), Duration::from_secs(3600));
        let old = copies.input(&blobs, KEY).await.unwrap();
        blobs.put_bytes(KEY, vec![2; 1500]).await.unwrap();
        let new = copies.input(&blobs, KEY).await.unwrap();
        assert_eq!(store.gets(), 2, "another version: another copy");
        assert_ne!(old.path(), new.path());
        assert_eq!(std::fs::read(old.path()).unwrap(), vec![1; 1000], "the old one still read as it was");
        assert_eq!(std::fs::read(new.path()).unwrap(), vec![2; 1500]);
        let old_path = old.path().to_path_buf();
        drop(old);
        assert!(!old_path.exists(), "replaced, it goes with its last reader");
        assert!(new.path().exists());
    }

    #[tokio::test]
    async fn a_download_nobody_waits_for_or_that_failed_leaves_nothing() {
        let store = Store::with(vec![3; 100_000], false);
        let blobs: Arc<dyn Blobs> = store.clone();
        let copies = SourceCopies::new(inputs(), Duration::from_secs(3600));
        let (c, b) = (copies.clone(), blobs.clone());
        let job = tokio::spawn(async move { c.input(&b, KEY).await.map(|_| ()) });
        until("the download starts", || store.gets() == 1).await;
        job.abort();
        let _ = job.await;
        assert!(copies.is_empty(), "the job that waited is gone: so is the download");
        until("its partial file goes", || files_in(&copies.folder()) == 0).await;
        // A read cut half-way: an error, no copy, and the next job downloads again.
        store.broken.store(true, Ordering::SeqCst);
        store.gate.add_permits(1 << 20);
        let e = copies.input(&blobs, KEY).await.err().expect("a broken read is no copy");
        assert!(e.to_string().contains("connection reset"), "{e}");
        assert!(copies.is_empty());
        assert_eq!(files_in(&copies.folder()), 0);
        store.broken.store(false, Ordering::SeqCst);
        let ok = copies.input(&blobs, KEY).await.unwrap();
        assert_eq!(std::fs::read(ok.path()).unwrap(), vec![3; 100_000]);
        assert_eq!(store.gets(), 3);
    }

    #[tokio::test]
    async fn the_copies_of_a_stopped_process_are_swept_and_a_live_ones_kept() {
        let store = Store::with(vec![5; 1000], true);
        let blobs: Arc<dyn Blobs> = store.clone();
        let dir = inputs();
        let live = SourceCopies::new(dir.clone(), Duration::from_secs(3600));
        let held = live.input(&blobs, KEY).await.unwrap();
        // A process killed mid-download: its folder and its lock file, no longer locked.
        std::fs::create_dir_all(dir.join("copies-dead")).unwrap();
        std::fs::write(dir.join("copies-dead/source-1"), b"half").unwrap();
        std::fs::write(dir.join("copies-dead.lock"), b"").unwrap();
        // A folder whose lock file is gone.
        std::fs::create_dir_all(dir.join("copies-orphan")).unwrap();
        sweep_dead(&dir);
        assert!(!dir.join("copies-dead").exists() && !dir.join("copies-dead.lock").exists());
        assert!(!dir.join("copies-orphan").exists());
        assert!(held.path().exists(), "a live process's copy is kept");
        assert_eq!(std::fs::read(held.path()).unwrap(), vec![5; 1000]);
        // A process that ends removes its own.
        let folder = live.folder();
        drop(held); // idle now: a timer waits out its linger (an hour)
        assert_eq!(tokio::runtime::Handle::current().metrics().num_alive_tasks(), 1);
        drop(live);
        assert!(!folder.exists());
        let rt = tokio::runtime::Handle::current();
        until("the timer ends with its process's copies", || rt.metrics().num_alive_tasks() == 0).await;
        assert_eq!(files_in(&dir), 0, "{:?}", std::fs::read_dir(&dir).unwrap().collect::<Vec<_>>());
        std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
    }
}
