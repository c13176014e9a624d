//! The media store, as the rest of Vidi sees it: a local folder or an S3 bucket (crate
//! `vidi-storage`). Keys are `/`-separated relative paths such as `videos/vi…/source`.

use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

use std::path::{Path, PathBuf};

use crate::error::{CoreError, CoreResult};
use crate::model::UploadMode;

pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// Where one chunk of a ranged upload goes.
#[derive(Clone, Copy, Debug)]
pub struct ChunkTarget<'a> {
    /// The final object's key.
    pub dest: &'a str,
    /// What `begin_chunks` returned.
    pub session: &'a str,
    pub mode: UploadMode,
    /// Part number (see `vidi_core::model::Chunk::idx`).
    pub idx: u32,
    /// The chunk's place in the final file, when already known.
    pub offset: Option<u64>,
    /// Refuse the chunk past this many bytes.
    pub max_bytes: u64,
}

/// A chunk as the store received it, to be assembled later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkRef {
    pub idx: u32,
    pub size: u64,
    /// What `write_chunk` returned.
    pub receipt: String,
}

#[async_trait]
pub trait Blobs: Send + Sync + 'static {
    /// `local` or `s3`, for logs and test names.
    fn backend(&self) -> &'static str;

    /// Stores a stream under `key`, atomically (readers see the whole object or nothing).
    /// Returns the number of bytes written. Fails with the stream's error, leaving nothing.
    async fn put_stream(&self, key: &str, body: ByteStream) -> CoreResult<u64>;
    /// Stores a small derived object (a playlist) whole. Not fsynced: derived files are rebuilt
    /// by re-running their job after a crash.
    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> CoreResult<()>;
    /// [`Blobs::put_bytes`] of bytes the caller keeps a reference to (a live segment, also held
    /// in memory for delivery): a store that can write from a shared buffer does so without
    /// copying it first.
    async fn put_shared(&self, key: &str, bytes: bytes::Bytes) -> CoreResult<()> {
        self.put_bytes(key, bytes.to_vec()).await
    }
    /// Stores a copy of a local file (the local store links it, S3 uploads it). The file is left
    /// in place. Not fsynced, like [`Blobs::put_bytes`].
    async fn put_file(&self, key: &str, path: &std::path::Path) -> CoreResult<()>;
    /// Reads `key`, optionally the inclusive byte range `[from, to]`.
    async fn get(&self, key: &str, range: Option<(u64, u64)>) -> CoreResult<ByteStream>;
    /// The object's size, or `None` when it does not exist.
    async fn size(&self, key: &str) -> CoreResult<Option<u64>>;
    /// What tells this version of the object from another stored under the same key: its size,
    /// and its entity tag where the store keeps one (S3). `None` when it does not exist. A copy
    /// kept beside the encoders is reused only for the same version (see
    /// `vidi_worker::sources`).
    async fn version(&self, key: &str) -> CoreResult<Option<ObjectVersion>> {
        Ok(self.size(key).await?.map(|size| ObjectVersion { size, tag: None }))
    }
    /// Removes one object (absent is fine).
    async fn delete(&self, key: &str) -> CoreResult<()>;
    /// Removes every object under `prefix` (a folder-like prefix ending in `/`). An empty prefix
    /// is the store's whole root: S3 allows it (a test drops its bucket prefix so); the local
    /// store refuses it, its root being the operator's data folder.
    async fn delete_prefix(&self, prefix: &str) -> CoreResult<()>;
    async fn copy(&self, from: &str, to: &str) -> CoreResult<()>;
    /// A local file holding `key`, for ffmpeg/ffprobe, which are only ever given local files
    /// (`file` is the one protocol they may use; see `vidi_media::input`). The local store
    /// hands out the object's own file; the default copies the object into `scratch` (a folder
    /// of the caller's, which it removes), and the copy goes when the [`LocalInput`] is dropped.
    async fn local_input(&self, key: &str, scratch: &Path) -> CoreResult<LocalInput> {
        use futures::StreamExt;
        use tokio::io::AsyncWriteExt;
        tokio::fs::create_dir_all(scratch).await.map_err(|e| CoreError::Storage(format!("scratch: {e}")))?;
        let path = scratch.join(format!("input-{}", crate::id::random_body()));
        let copy = LocalInput { path: path.clone(), owned: true };
        let mut file = tokio::fs::File::create(&path).await.map_err(|e| CoreError::Storage(format!("scratch: {e}")))?;
        let mut body = self.get(key, None).await?;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| CoreError::Storage(format!("read {key}: {e}")))?;
            file.write_all(&chunk).await.map_err(|e| CoreError::Storage(format!("scratch: {e}")))?;
        }
        file.flush().await.map_err(|e| CoreError::Storage(format!("scratch: {e}")))?;
        Ok(copy)
    }
    /// The path of `key`'s own file when the store keeps objects as local files, for the
    /// delivery path to hand the file to the kernel (sendfile) instead of reading it into memory.
    /// No I/O: the file may not exist. `None` for stores that are not local (S3), and for keys no
    /// store could hold.
    fn local_path(&self, _key: &str) -> Option<PathBuf> {
        None
    }
    /// A local file holding the bytes of chunked upload `session` received so far, in order, and
    /// growing as more arrive (and still readable through an open handle once assembled): what
    /// lets encoding start before the last chunk. `None` when the store keeps chunks apart (S3).
    async fn growing_input(&self, _session: &str) -> CoreResult<Option<String>> {
        Ok(None)
    }

    // --- chunked uploads that any API node may receive -----------------------------------------
    /// Starts an assembly session for `dest`; the returned id is stored with the video.
    async fn begin_chunks(&self, dest: &str, mode: UploadMode) -> CoreResult<String>;
    /// Durably stores one chunk. `offset` is its place in the final file when already known.
    /// Returns the receipt to pass back at assembly.
    async fn write_chunk(&self, at: &ChunkTarget<'_>, body: ByteStream) -> CoreResult<(u64, String)>;
    /// Joins the chunks (sorted by `idx`) into `dest` and drops the session.
    async fn assemble(&self, dest: &str, session: &str, mode: UploadMode, chunks: &[ChunkRef]) -> CoreResult<()>;
    /// Drops a session and whatever it holds.
    async fn abort_chunks(&self, dest: &str, session: &str) -> CoreResult<()>;
}

/// One version of a stored object (see [`Blobs::version`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectVersion {
    pub size: u64,
    /// The store's entity tag (S3's ETag), when it has one.
    pub tag: Option<String>,
}

/// A local file for the media tools (see [`Blobs::local_input`]).
#[derive(Debug)]
pub struct LocalInput {
    pub path: PathBuf,
    /// A copy made for this use, removed on drop (the local store's own files are not).
    pub owned: bool,
}

impl LocalInput {
    /// The store's own file, not to be removed.
    pub fn borrowed(path: PathBuf) -> Self {
        LocalInput { path, owned: false }
    }

    pub fn as_str(&self) -> &str {
        self.path.to_str().unwrap_or_default()
    }
}

impl Drop for LocalInput {
    fn drop(&mut self) {
        if self.owned {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A key every store can hold: relative, no empty, `.` or `..` segment, and no segment longer
/// than a file name may be (255 bytes).
pub fn is_safe_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('/')
        && key.split('/').all(|s| !s.is_empty() && s != "." && s != ".." && s.len() <= 255)
}
