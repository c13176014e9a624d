//! The two media stores behind [`vidi_core::Blobs`]: a local folder (the embedded default) and an
//! S3-compatible bucket (for many stateless nodes).

mod local;
mod s3;

use std::sync::Arc;

use futures::StreamExt;
use vidi_core::blobs::ByteStream;
use vidi_core::{Blobs, CoreError, CoreResult};

pub use local::LocalBlobs;
pub use s3::{S3Blobs, S3Config, region as s3_region, virtual_hosted as s3_virtual_hosted};

/// Opens the store named by `VIDI_STORAGE_URL`: empty for the data folder, `s3://bucket[/prefix]`
/// for S3 (credentials and endpoint come from `s3`).
pub async fn open(url: Option<&str>, data_dir: &std::path::Path, s3: &S3Config) -> CoreResult<Arc<dyn Blobs>> {
    match url.filter(|u| !u.is_empty()) {
        None => Ok(Arc::new(LocalBlobs::open(data_dir.join("media")).await?)),
        Some(u) if u.starts_with("s3://") => Ok(Arc::new(S3Blobs::open(u, s3)?)),
        Some(u) if u.starts_with("file://") => {
            Ok(Arc::new(LocalBlobs::open(u.trim_start_matches("file://").into()).await?))
        }
        Some(u) => Err(CoreError::Storage(format!("unsupported storage URL {u:?}: use s3://bucket or file:///path"))),
    }
}

/// The next piece of an upload body, counting bytes into `total`. Errors with
/// [`CoreError::Body`] on a broken stream and with `uploaded-file-too-large` past `max`.
pub(crate) async fn next_piece(body: &mut ByteStream, total: &mut u64, max: u64) -> CoreResult<Option<bytes::Bytes>> {
    match body.next().await {
        None => Ok(None),
        Some(Err(e)) => Err(CoreError::Body(e.to_string())),
        Some(Ok(piece)) => {
            *total += piece.len() as u64;
            if *total > max {
                return Err(CoreError::Upload(vidi_core::upload::RangeError::FileTooLarge));
            }
            Ok(Some(piece))
        }
    }
}
