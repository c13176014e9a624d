//! A video in pieces reads its source from S3 once per node (issue 23): the probe, the head and
//! every piece that a node runs share one copy (see `vidi_worker::sources`), and the copy goes
//! once its video is encoded. A local store's source is read in place, never copied. What each
//! node reads is counted by a media store wrapper that the node is started with.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::TryStreamExt;
use serde_json::Value;
use vidi_core::blobs::{ByteStream, ChunkRef, ChunkTarget, LocalInput, ObjectVersion};
use vidi_core::model::UploadMode;
use vidi_core::{Blobs, CoreResult};

use crate::common::{Backend, TestServer, av_clip, backend_test, config_for, ffprobe_duration, test_client};

/// A media store that counts the reads (`get`) of each key, and their bytes.
struct Counting {
    inner: Arc<dyn Blobs>,
    reads: Mutex<HashMap<String, (u32, Arc<AtomicU64>)>>,
}

impl Counting {
    fn new(inner: Arc<dyn Blobs>) -> Arc<Counting> {
        Arc::new(Counting { inner, reads: Mutex::default() })
    }

    /// How many times `key` was read, and how many of its bytes.
    fn reads_of(&self, key: &str) -> (u32, u64) {
        let reads = self.reads.lock().unwrap();
        reads.get(key).map_or((0, 0), |(n, bytes)| (*n, bytes.load(Ordering::SeqCst)))
    }
}

#[async_trait]
impl Blobs for Counting {
    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
    async fn put_stream(&self, key: &str, body: ByteStream) -> CoreResult<u64> {
        self.inner.put_stream(key, body).await
    }
    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> CoreResult<()> {
        self.inner.put_bytes(key, bytes).await
    }
    async fn put_file(&self, key: &str, path: &Path) -> CoreResult<()> {
        self.inner.put_file(key, path).await
    }
    async fn get(&self, key: &str, range: Option<(u64, u64)>) -> CoreResult<ByteStream> {
        let bytes = {
            let mut reads = self.reads.lock().unwrap();
            let e = reads.entry(key.to_string()).or_default();
            e.0 += 1;
            e.1.clone()
        };
        let body = self.inner.get(key, range).await?;
        Ok(Box::pin(body.inspect_ok(move |b| {
            bytes.fetch_add(b.len() as u64, Ordering::SeqCst);
        })))
    }
    async fn size(&self, key: &str) -> CoreResult<Option<u64>> {
        self.inner.size(key).await
    }
    async fn version(&self, key: &str) -> CoreResult<Option<ObjectVersion>> {
        self.inner.version(key).await
    }
    async fn delete(&self, key: &str) -> CoreResult<()> {
        self.inner.delete(key).await
    }
    async fn delete_prefix(&self, prefix: &str) -> CoreResult<()> {
        self.inner.delete_prefix(prefix).await
    }
    async fn copy(&self, from: &str, to: &str) -> CoreResult<()> {
        self.inner.copy(from, to).await
    }
    /// The store's own file where it has one; else a copy read through [`Counting::get`], as
    /// `Blobs::local_input` makes it (what each job of a video did before its node shared one
    /// copy: the figure before, in docs/performance.md, was counted so).
    async fn local_input(&self, key: &str, scratch: &Path) -> CoreResult<LocalInput> {
        use futures::StreamExt;
        if self.inner.local_path(key).is_some() {
            return self.inner.local_input(key, scratch).await;
        }
        std::fs::create_dir_all(scratch).unwrap();
        let copy = LocalInput { path: scratch.join(uuid::Uuid::new_v4().to_string()), owned: true };
        let mut body = self.get(key, None).await?;
        let mut out = Vec::new();
        while let Some(b) = body.next().await {
            out.extend_from_slice(&b?);
        }
        std::fs::write(&copy.path, out).unwrap();
        Ok(copy)
    }
    fn local_path(&self, key: &str) -> Option<PathBuf> {
        self.inner.local_path(key)
    }
    async fn growing_input(&self, session: &str) -> CoreResult<Option<String>> {
        self.inner.growing_input(session).await
    }
    async fn begin_chunks(&self, dest: &str, mode: UploadMode) -> CoreResult<String> {
        self.inner.begin_chunks(dest, mode).await
    }
    async fn write_chunk(&self, at: &ChunkTarget<'_>, body: ByteStream) -> CoreResult<(u64, String)> {
        self.inner.write_chunk(at, body).await
    }
    async fn assemble(&self, dest: &str, session: &str, mode: UploadMode, chunks: &[ChunkRef]) -> CoreResult<()> {
        self.inner.assemble(dest, session, mode, chunks).await
    }
    async fn abort_chunks(&self, dest: &str, session: &str) -> CoreResult<()> {
        self.inner.abort_chunks(dest, session).await
    }
}

/// Starts a node on `cfg` whose media store reads are counted.
async fn counted_node(cfg: vidi::Config) -> (vidi::Server, Arc<Counting>) {
    let counting = Arc::new(Mutex::new(None));
    let slot = counting.clone();
    let server = vidi::start_wrapping_blobs(cfg, move |inner| {
        let c = Counting::new(inner);
        *slot.lock().unwrap() = Some(c.clone());
        c
    })
    .await
    .expect("node starts");
    let c = counting.lock().unwrap().take().expect("wrapped");
    (server, c)
}

/// The source copies left on disk under the data folder `dir` (every process's).
fn copies_on_disk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir.join(".inputs")) else { return vec![] };
    entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten().map(|f| f.path()))
        .collect()
}

backend_test!(a_video_in_pieces_reads_its_source_once_per_node, multi_thread = 2);
/// A 13 s video in pieces of 4 s (a head and three pieces) on two nodes sharing the database and
/// the bucket, the first with two encode workers: whatever ran where, each node read the source
/// from the store at most once (its probe, head and pieces shared one copy), every byte of it
/// once, and the video is whole. On a local store nothing reads it through the store: it is
/// encoded in place. Each node's copy is gone soon after (the node that ran the video's finish at
/// once; the other one once it has been idle for its linger).
async fn a_video_in_pieces_reads_its_source_once_per_node(b: Backend) {
    let source = av_clip("long-13s.mp4", "size=640x360:rate=25", "frequency=440:sample_rate=48000", 13, &[]);
    let bytes = std::fs::read(&source).unwrap();
    let dir_a = tempfile::tempdir().unwrap();
    let mut cfg = config_for(&b, dir_a.path());
    cfg.encoding.piece_secs = 4;
    cfg.jobs.workers = 2;
    // A copy idle for 5 × the retry wait goes: 5 s here.
    cfg.jobs.retry_base = Duration::from_secs(1);
    let (server, reads_a) = counted_node(cfg.clone()).await;
    let key = server.first_key.clone().unwrap();
    let t =
        TestServer { url: server.url.clone(), server, key, http: test_client(), backend: b.clone(), dir: dir_a, cfg };
    // Another node on S3 (a local folder is one machine's: its pair has one node).
    let dir_b = tempfile::tempdir().unwrap();
    let node_b = match b.s3_url {
        Some(_) => {
            let mut cfg = t.cfg.clone();
            cfg.storage.data_dir = dir_b.path().to_path_buf();
            cfg.jobs.workers = 1;
            Some(counted_node(cfg).await)
        }
        None => None,
    };

    let id = t.create_video("pieces").await;
    assert_eq!(t.upload(&id, None, bytes.clone()).await.status(), 201);
    let s = t
        .wait_status(&id, 240, |s| {
            let q = s["encoding"]["qualities"].as_array().cloned().unwrap_or_default();
            !q.is_empty() && q.iter().all(|q| q["status"] == "encoded" || q["status"] == "failed")
        })
        .await;
    assert!(
        s["encoding"]["qualities"].as_array().unwrap().iter().all(|q| q["status"] == "encoded"),
        "{}: {s}",
        b.label
    );

    // The output is what it always was: every rendition and the MP4 as long as the source, each
    // piece in its place.
    let video: Value = t.get(&format!("/videos/{id}")).await.json().await.unwrap();
    let hls = video["assets"]["hls"].as_str().unwrap();
    for q in ["240p", "360p"] {
        let url = hls.replace("manifest.m3u8", &format!("{q}/index.m3u8"));
        let playlist = t.http.get(&url).send().await.unwrap().text().await.unwrap();
        for piece in ["seg_00000.ts", "seg_p001_00000.ts", "seg_p002_00000.ts", "seg_p003_00000.ts"] {
            assert!(playlist.contains(piece), "{} {q}: no {piece} in\n{playlist}", b.label);
        }
        assert!(!playlist.contains("seg_p004"), "{} {q}: {playlist}", b.label);
        let d = ffprobe_duration(&url).await;
        assert!((d - 13.0).abs() < 0.3, "{} {q}: {d} s", b.label);
    }
    let d = ffprobe_duration(&hls.replace("manifest.m3u8", "audio/index.m3u8")).await;
    assert!((d - 13.0).abs() < 0.3, "{} audio: {d} s", b.label);
    let d = ffprobe_duration(video["assets"]["mp4"].as_str().unwrap()).await;
    assert!((d - 13.0).abs() < 0.3, "{} mp4: {d} s", b.label);

    // Where the upload stored it (on S3, a key of its own: see `vidi_api::resources::source`).
    let v = t.server.state.repo.get_video(&t.ws().await, &vidi_core::id::VideoId::parse(&id).unwrap()).await.unwrap();
    let source_key = v.ingest.source_key.expect("stored");
    let size = bytes.len() as u64;
    let (n_a, bytes_a) = reads_a.reads_of(&source_key);
    let (n_b, bytes_b) = node_b.as_ref().map_or((0, 0), |(_, r)| r.reads_of(&source_key));
    // The figure docs/performance.md quotes.
    eprintln!(
        "{}: source {size} bytes, 5 jobs read it (probe, head, 3 pieces); read from the store: node A {n_a} \
         times, {bytes_a} bytes; node B {n_b} times, {bytes_b} bytes",
        b.label
    );
    match b.s3_url {
        Some(_) => {
            assert!(n_a <= 1 && n_b <= 1, "{}: read {n_a} and {n_b} times", b.label);
            assert!(n_a + n_b >= 1, "{}: the source was read by someone", b.label);
            assert_eq!((bytes_a, bytes_b), (n_a as u64 * size, n_b as u64 * size), "{}", b.label);
        }
        None => {
            assert_eq!(n_a, 0, "{}: a local source is read in place", b.label);
            assert_eq!(copies_on_disk(t.dir.path()), Vec::<PathBuf>::new(), "{}: nothing copied", b.label);
        }
    }
    // No copy stays behind on either node.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left: Vec<PathBuf> = copies_on_disk(t.dir.path()).into_iter().chain(copies_on_disk(dir_b.path())).collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{}: copies left: {left:?}", b.label);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if let Some((node, _)) = node_b {
        node.abort();
    }
}
