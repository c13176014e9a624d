//! Media in a local folder. Writes go to a temporary file that is fsynced and renamed, so a crash
//! leaves either the old object or the new one. Chunked uploads write straight into the file being
//! assembled whenever the chunk's offset is known (always in bytes mode, and in part mode when the
//! parts arrive in order, as every official client sends them), so assembly is a rename; only
//! chunks that arrive ahead of a gap are spooled and copied in at the end.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use tokio::fs::{self, File, OpenOptions};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;
use vidi_core::blobs::{ByteStream, ChunkRef, ChunkTarget, LocalInput, is_safe_key};
use vidi_core::model::UploadMode;
use vidi_core::{Blobs, CoreError, CoreResult};

use crate::next_piece;

const INLINE: &str = "inline";
const SPOOL: &str = "spool";

pub struct LocalBlobs {
    root: PathBuf,
}

impl LocalBlobs {
    pub async fn open(root: PathBuf) -> CoreResult<Self> {
        fs::create_dir_all(root.join(".tmp")).await?;
        fs::create_dir_all(root.join(".uploads")).await?;
        let root = fs::canonicalize(&root).await?;
        Ok(LocalBlobs { root })
    }

    fn path(&self, key: &str) -> CoreResult<PathBuf> {
        if !is_safe_key(key.trim_end_matches('/')) {
            return Err(CoreError::Storage(format!("unsafe key {key:?}")));
        }
        Ok(self.root.join(key))
    }

    fn session_dir(&self, session: &str) -> CoreResult<PathBuf> {
        if !session.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(CoreError::Storage(format!("bad session {session:?}")));
        }
        Ok(self.root.join(".uploads").join(session))
    }

    fn temp_path(&self) -> PathBuf {
        self.root.join(".tmp").join(uuid::Uuid::new_v4().to_string())
    }

    /// Moves a derived file into place, without the fsyncs of [`LocalBlobs::publish`].
    async fn place(&self, tmp: &Path, key: &str) -> CoreResult<()> {
        let dest = self.path(key)?;
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).await?;
        }
        fs::rename(tmp, &dest).await?;
        Ok(())
    }

    /// Moves a finished, synced file into place.
    async fn publish(&self, tmp: &Path, key: &str) -> CoreResult<()> {
        let dest = self.path(key)?;
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).await?;
        }
        fs::rename(tmp, &dest).await?;
        // The rename itself must survive a power cut, not only the file's bytes.
        if let Some(parent) = dest.parent() {
            File::open(parent).await?.sync_all().await?;
        }
        Ok(())
    }
}

/// Streams `body` into `file` from a blocking thread of its own, so that receiving the next bytes
/// from the network overlaps with writing the previous ones; pieces (a few KiB each from hyper) are
/// gathered into 1 MiB writes. With `sync`, the data is on disk when this returns.
async fn write_all_from(file: File, mut body: ByteStream, max: u64, sync: bool) -> CoreResult<u64> {
    const WRITE: usize = 1 << 20;
    let mut file = file.into_std().await;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write;
        while let Some(buf) = rx.blocking_recv() {
            file.write_all(&buf)?;
        }
        if sync {
            file.sync_data()?;
        }
        Ok(())
    });
    let mut total = 0u64;
    let mut pending = bytes::BytesMut::with_capacity(WRITE);
    let fed = async {
        while let Some(piece) = next_piece(&mut body, &mut total, max).await? {
            pending.extend_from_slice(&piece);
            if pending.len() >= WRITE {
                let full = pending.split().freeze();
                pending.reserve(WRITE);
                // A closed channel means the writer failed: its error is reported below.
                if tx.send(full).await.is_err() {
                    return Ok(());
                }
            }
        }
        if !pending.is_empty() {
            let _ = tx.send(pending.split().freeze()).await;
        }
        Ok::<_, CoreError>(())
    }
    .await;
    drop(tx);
    let written = writer.await.map_err(|e| CoreError::Storage(e.to_string()))?;
    fed?;
    written?;
    Ok(total)
}

#[async_trait]
impl Blobs for LocalBlobs {
    fn backend(&self) -> &'static str {
        "local"
    }

    async fn put_stream(&self, key: &str, body: ByteStream) -> CoreResult<u64> {
        let dest = self.path(key)?;
        let tmp = self.temp_path();
        let result = async {
            let f = File::create(&tmp).await?;
            write_all_from(f, body, u64::MAX, true).await
        }
        .await;
        match result {
            Ok(n) => {
                self.publish(&tmp, key).await?;
                tracing::debug!(path = %dest.display(), bytes = n, "stored");
                Ok(n)
            }
            Err(e) => {
                let _ = fs::remove_file(&tmp).await;
                Err(e)
            }
        }
    }

    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> CoreResult<()> {
        let tmp = self.temp_path();
        fs::write(&tmp, bytes).await?;
        self.place(&tmp, key).await
    }

    async fn put_shared(&self, key: &str, bytes: bytes::Bytes) -> CoreResult<()> {
        let tmp = self.temp_path();
        let path = tmp.clone();
        // Written from the shared buffer itself (`tokio::fs::write` would copy it first).
        tokio::task::spawn_blocking(move || std::fs::write(path, &bytes))
            .await
            .map_err(|e| CoreError::Storage(e.to_string()))??;
        self.place(&tmp, key).await
    }

    async fn put_file(&self, key: &str, path: &Path) -> CoreResult<()> {
        let tmp = self.temp_path();
        // A hard link shares the bytes: publishing a segment costs no copy. Across filesystems
        // (a work folder elsewhere) it falls back to copying.
        if fs::hard_link(path, &tmp).await.is_err() {
            fs::copy(path, &tmp).await?;
        }
        self.place(&tmp, key).await
    }

    async fn get(&self, key: &str, range: Option<(u64, u64)>) -> CoreResult<ByteStream> {
        // A key no store could hold names nothing: not found, not a storage failure.
        if !is_safe_key(key) {
            return Err(CoreError::NotFound);
        }
        let mut f = match File::open(self.path(key)?).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(CoreError::NotFound),
            Err(e) => return Err(e.into()),
        };
        match range {
            None => Ok(Box::pin(ReaderStream::with_capacity(f, 1 << 20))),
            Some((from, to)) => {
                f.seek(SeekFrom::Start(from)).await?;
                Ok(Box::pin(ReaderStream::with_capacity(f.take(to - from + 1), 1 << 20)))
            }
        }
    }

    async fn size(&self, key: &str) -> CoreResult<Option<u64>> {
        if !is_safe_key(key) {
            return Ok(None);
        }
        match fs::metadata(self.path(key)?).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, key: &str) -> CoreResult<()> {
        match fs::remove_file(self.path(key)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> CoreResult<()> {
        match fs::remove_dir_all(self.path(prefix)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    async fn copy(&self, from: &str, to: &str) -> CoreResult<()> {
        let tmp = self.temp_path();
        fs::copy(self.path(from)?, &tmp).await?;
        File::open(&tmp).await?.sync_all().await?;
        self.publish(&tmp, to).await
    }

    async fn local_input(&self, key: &str, _scratch: &std::path::Path) -> CoreResult<LocalInput> {
        Ok(LocalInput::borrowed(self.path(key)?))
    }

    fn local_path(&self, key: &str) -> Option<PathBuf> {
        if !is_safe_key(key) {
            return None;
        }
        self.path(key).ok()
    }

    async fn growing_input(&self, session: &str) -> CoreResult<Option<String>> {
        // Chunks whose offset is known are written in place into `data` (in order, as the
        // clients send them), and assembly renames it: the prefix received so far, growing.
        let data = self.session_dir(session)?.join("data");
        Ok(fs::try_exists(&data).await.unwrap_or(false).then(|| data.to_string_lossy().into_owned()))
    }

    async fn begin_chunks(&self, _dest: &str, _mode: UploadMode) -> CoreResult<String> {
        let session = uuid::Uuid::new_v4().to_string();
        fs::create_dir_all(self.session_dir(&session)?).await?;
        Ok(session)
    }

    async fn write_chunk(&self, at: &ChunkTarget<'_>, body: ByteStream) -> CoreResult<(u64, String)> {
        let dir = self.session_dir(at.session)?;
        fs::create_dir_all(&dir).await?;
        // A chunk lands in place only where it continues (or rewrites) what is there: one far past
        // the end would make a sparse file as large as the offset claims (`bytes 52428799900-…`
        // on an empty upload), so it is spooled until assembly fills the gap before it.
        let data_len = fs::metadata(dir.join("data")).await.map(|m| m.len()).unwrap_or(0);
        let (f, receipt) = match at.offset.filter(|&o| o <= data_len) {
            Some(at) => {
                let mut f = OpenOptions::new().create(true).write(true).truncate(false).open(dir.join("data")).await?;
                f.seek(SeekFrom::Start(at)).await?;
                (f, INLINE)
            }
            None => (File::create(dir.join(format!("part-{}", at.idx))).await?, SPOOL),
        };
        // Durable before the chunk is acknowledged: a server killed after answering loses nothing.
        let n = write_all_from(f, body, at.max_bytes, true).await?;
        Ok((n, receipt.to_string()))
    }

    async fn assemble(&self, dest: &str, session: &str, _mode: UploadMode, chunks: &[ChunkRef]) -> CoreResult<()> {
        let dir = self.session_dir(session)?;
        let data = dir.join("data");
        let out = OpenOptions::new().create(true).write(true).truncate(false).open(&data).await?;
        let mut sorted: Vec<&ChunkRef> = chunks.iter().collect();
        sorted.sort_by_key(|c| c.idx);
        let mut offset = 0u64;
        for c in sorted {
            if c.receipt == SPOOL {
                let part = dir.join(format!("part-{}", c.idx));
                let mut target = out.try_clone().await?.into_std().await;
                // std's file-to-file copy uses copy_file_range: the kernel moves the bytes.
                let copied = tokio::task::spawn_blocking(move || {
                    use std::io::Seek;
                    target.seek(SeekFrom::Start(offset))?;
                    std::io::copy(&mut std::fs::File::open(part)?, &mut target)
                })
                .await
                .map_err(|e| CoreError::Storage(e.to_string()))??;
                if copied != c.size {
                    return Err(CoreError::Storage(format!("part {} has {copied} bytes, expected {}", c.idx, c.size)));
                }
            }
            offset += c.size;
        }
        // A chunk rewritten after a crash may have left bytes past the end.
        out.set_len(offset).await?;
        out.sync_all().await?;
        drop(out);
        self.publish(&data, dest).await?;
        let _ = fs::remove_dir_all(&dir).await;
        Ok(())
    }

    async fn abort_chunks(&self, _dest: &str, session: &str) -> CoreResult<()> {
        match fs::remove_dir_all(self.session_dir(session)?).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}
