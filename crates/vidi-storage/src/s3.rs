//! Media in an S3-compatible bucket. Ranged uploads in part mode map one api.video part onto one
//! S3 multipart part, so chunks may land on any API node and assembly is a single
//! CompleteMultipartUpload. Bytes mode cannot (object_store numbers parts by position, and a range's
//! position is unknown until all have arrived), so its ranges are staged as objects and streamed
//! into place at the end.

use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;

use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayloadMut, WriteMultipart};
use vidi_core::blobs::{ByteStream, ChunkRef, ChunkTarget, ObjectVersion, is_safe_key};
use vidi_core::model::UploadMode;
use vidi_core::{Blobs, CoreError, CoreResult};

use crate::next_piece;

/// Connection settings; each field falls back to the usual `AWS_*` variable.
#[derive(Clone, Debug, Default)]
pub struct S3Config {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

/// The region requests are signed for: `VIDI_S3_REGION`, else the operator's `AWS_REGION`, else
/// `AWS_DEFAULT_REGION` (the AWS CLI's name), else `us-east-1`. Signing for the wrong region makes
/// every request to a bucket elsewhere fail, so an unset setting must not hide the AWS variables.
/// Empty values count as unset (`AWS_REGION=` in a unit file).
pub fn region(setting: Option<&str>, env: impl Fn(&str) -> Option<String>) -> String {
    let given = |v: Option<String>| v.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    given(setting.map(str::to_string))
        .or_else(|| given(env("AWS_REGION")))
        .or_else(|| given(env("AWS_DEFAULT_REGION")))
        .unwrap_or_else(|| "us-east-1".into())
}

/// Addressing: path style (`<endpoint>/<bucket>/<key>`) unless
/// `AWS_VIRTUAL_HOSTED_STYLE_REQUEST=true` (object_store's own variable) asks for virtual-hosted
/// style (`<bucket>.s3.<region>.amazonaws.com/<key>`). Path style is the default because every
/// S3-compatible server (MinIO, SeaweedFS, Ceph, Garage) answers it without wildcard DNS, and AWS
/// still answers it; with virtual-hosted style and a custom endpoint, the endpoint must name the
/// bucket itself (`https://bucket.host`).
pub fn virtual_hosted(env: impl Fn(&str) -> Option<String>) -> bool {
    env("AWS_VIRTUAL_HOSTED_STYLE_REQUEST")
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "on" | "yes" | "y"))
}

/// Everything Vidi decides on top of what `AmazonS3Builder::from_env` read.
fn configure(
    b: AmazonS3Builder,
    bucket: &str,
    cfg: &S3Config,
    env: impl Fn(&str) -> Option<String>,
) -> AmazonS3Builder {
    let mut b = b
        .with_bucket_name(bucket)
        .with_virtual_hosted_style_request(virtual_hosted(&env))
        .with_region(region(cfg.region.as_deref(), &env));
    if let Some(e) = &cfg.endpoint {
        b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
    }
    if let Some(k) = &cfg.access_key_id {
        b = b.with_access_key_id(k);
    }
    if let Some(s) = &cfg.secret_access_key {
        b = b.with_secret_access_key(s);
    }
    b
}

pub struct S3Blobs {
    store: Arc<AmazonS3>,
    prefix: String,
}

fn err(e: object_store::Error) -> CoreError {
    match e {
        object_store::Error::NotFound { .. } => CoreError::NotFound,
        e => CoreError::Storage(e.to_string()),
    }
}

const STAGED: &str = "staged:";

impl S3Blobs {
    /// `url` is `s3://bucket` or `s3://bucket/prefix`.
    pub fn open(url: &str, cfg: &S3Config) -> CoreResult<Self> {
        let rest = url.trim_start_matches("s3://");
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let env = |name: &str| std::env::var(name).ok();
        let store = configure(AmazonS3Builder::from_env(), bucket, cfg, env).build().map_err(err)?;
        let prefix = prefix.trim_matches('/').to_string();
        Ok(S3Blobs { store: Arc::new(store), prefix })
    }

    fn path(&self, key: &str) -> CoreResult<Path> {
        if !is_safe_key(key.trim_end_matches('/')) {
            return Err(CoreError::Storage(format!("unsafe key {key:?}")));
        }
        Ok(if self.prefix.is_empty() { Path::from(key) } else { Path::from(format!("{}/{key}", self.prefix)) })
    }

    fn staged(&self, session: &str, idx: u32) -> CoreResult<Path> {
        self.path(&format!(".uploads/{session}/{idx}"))
    }

    /// Streams into a multipart upload; aborts it on failure so nothing half-written is visible.
    async fn stream_into(&self, path: &Path, mut body: ByteStream) -> CoreResult<u64> {
        let upload = self.store.put_multipart(path).await.map_err(err)?;
        let mut w = WriteMultipart::new(upload);
        let mut total = 0u64;
        let r = async {
            while let Some(piece) = next_piece(&mut body, &mut total, u64::MAX).await? {
                // Bounded concurrency keeps memory at a few parts whatever the object's size.
                w.wait_for_capacity(2).await.map_err(err)?;
                w.put(piece);
            }
            Ok::<_, CoreError>(())
        }
        .await;
        match r {
            Ok(()) => {
                w.finish().await.map_err(err)?;
                Ok(total)
            }
            Err(e) => {
                let _ = w.abort().await;
                Err(e)
            }
        }
    }
}

#[async_trait]
impl Blobs for S3Blobs {
    fn backend(&self) -> &'static str {
        "s3"
    }

    async fn put_stream(&self, key: &str, body: ByteStream) -> CoreResult<u64> {
        let path = self.path(key)?;
        self.stream_into(&path, body).await
    }

    async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> CoreResult<()> {
        self.store.put(&self.path(key)?, bytes.into()).await.map(|_| ()).map_err(err)
    }

    async fn put_shared(&self, key: &str, bytes: bytes::Bytes) -> CoreResult<()> {
        self.store.put(&self.path(key)?, bytes.into()).await.map(|_| ()).map_err(err)
    }

    async fn put_file(&self, key: &str, path: &std::path::Path) -> CoreResult<()> {
        let len = tokio::fs::metadata(path).await?.len();
        if len <= 8 * 1024 * 1024 {
            return self.put_bytes(key, tokio::fs::read(path).await?).await;
        }
        let file = tokio::fs::File::open(path).await?;
        let body = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20);
        self.stream_into(&self.path(key)?, Box::pin(body)).await.map(|_| ())
    }

    async fn get(&self, key: &str, range: Option<(u64, u64)>) -> CoreResult<ByteStream> {
        // A key no store could hold names nothing: not found, not a storage failure.
        if !is_safe_key(key) {
            return Err(CoreError::NotFound);
        }
        let opts = GetOptions { range: range.map(|(f, t)| GetRange::Bounded(f..t + 1)), ..Default::default() };
        let r = self.store.get_opts(&self.path(key)?, opts).await.map_err(err)?;
        Ok(Box::pin(r.into_stream().map_err(std::io::Error::other)))
    }

    async fn size(&self, key: &str) -> CoreResult<Option<u64>> {
        if !is_safe_key(key) {
            return Ok(None);
        }
        match self.store.head(&self.path(key)?).await {
            Ok(m) => Ok(Some(m.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    async fn version(&self, key: &str) -> CoreResult<Option<ObjectVersion>> {
        if !is_safe_key(key) {
            return Ok(None);
        }
        match self.store.head(&self.path(key)?).await {
            Ok(m) => Ok(Some(ObjectVersion { size: m.size, tag: m.e_tag })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    async fn delete(&self, key: &str) -> CoreResult<()> {
        match self.store.delete(&self.path(key)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> CoreResult<()> {
        // An empty prefix is the whole store: everything under this installation's prefix.
        let p = if prefix.is_empty() { Path::from(self.prefix.as_str()) } else { self.path(prefix)? };
        let mut listing = self.store.list(Some(&p));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(err)?;
            match self.store.delete(&meta.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(err(e)),
            }
        }
        Ok(())
    }

    async fn copy(&self, from: &str, to: &str) -> CoreResult<()> {
        self.store.copy(&self.path(from)?, &self.path(to)?).await.map_err(err)
    }

    async fn begin_chunks(&self, dest: &str, mode: UploadMode) -> CoreResult<String> {
        match mode {
            UploadMode::Bytes => Ok(format!("{STAGED}{}", uuid::Uuid::new_v4())),
            _ => self.store.create_multipart(&self.path(dest)?).await.map_err(err),
        }
    }

    async fn write_chunk(&self, at: &ChunkTarget<'_>, mut body: ByteStream) -> CoreResult<(u64, String)> {
        // An S3 part must be sent whole with its length, so the chunk is buffered (bounded by the
        // per-request limit).
        let mut buf = PutPayloadMut::new();
        let mut total = 0u64;
        while let Some(piece) = next_piece(&mut body, &mut total, at.max_bytes).await? {
            buf.push(piece);
        }
        if let Some(staged) = at.session.strip_prefix(STAGED) {
            self.store.put(&self.staged(staged, at.idx)?, buf.freeze()).await.map_err(err)?;
            return Ok((total, "staged".into()));
        }
        let part = self
            .store
            .put_part(&self.path(at.dest)?, &at.session.to_string(), at.idx as usize - 1, buf.freeze())
            .await
            .map_err(err)?;
        Ok((total, part.content_id))
    }

    async fn assemble(&self, dest: &str, session: &str, _mode: UploadMode, chunks: &[ChunkRef]) -> CoreResult<()> {
        let mut sorted: Vec<&ChunkRef> = chunks.iter().collect();
        sorted.sort_by_key(|c| c.idx);
        let path = self.path(dest)?;
        if let Some(staged) = session.strip_prefix(STAGED) {
            let mut parts = Vec::new();
            for c in &sorted {
                parts.push(self.staged(staged, c.idx)?);
            }
            let store = self.store.clone();
            let body = futures::stream::iter(parts)
                .then(move |p| {
                    let store = store.clone();
                    async move { store.get(&p).await.map(|r| r.into_stream()) }
                })
                .try_flatten()
                .map_err(std::io::Error::other);
            self.stream_into(&path, Box::pin(body)).await?;
            return self.delete_prefix(&format!(".uploads/{staged}/")).await;
        }
        if sorted.iter().enumerate().any(|(i, c)| c.idx as usize != i + 1) {
            return Err(CoreError::Storage("parts are not contiguous".into()));
        }
        let parts = sorted.iter().map(|c| PartId { content_id: c.receipt.clone() }).collect();
        match self.store.complete_multipart(&path, &session.to_string(), parts).await {
            Ok(_) => Ok(()),
            // Completed already by an earlier attempt that died before recording it.
            Err(e) if self.store.head(&path).await.is_ok() => {
                tracing::warn!(error = %e, "multipart completion failed but the object exists");
                Ok(())
            }
            Err(e) => Err(err(e)),
        }
    }

    async fn abort_chunks(&self, dest: &str, session: &str) -> CoreResult<()> {
        if let Some(staged) = session.strip_prefix(STAGED) {
            return self.delete_prefix(&format!(".uploads/{staged}/")).await;
        }
        match self.store.abort_multipart(&self.path(dest)?, &session.to_string()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    #[test]
    fn the_region_is_the_setting_then_aws_region_then_aws_default_region_then_us_east_1() {
        let all = env(&[("AWS_REGION", "eu-west-3"), ("AWS_DEFAULT_REGION", "ap-south-1")]);
        assert_eq!(region(Some("eu-central-1"), &all), "eu-central-1");
        assert_eq!(region(None, &all), "eu-west-3");
        assert_eq!(region(None, env(&[("AWS_DEFAULT_REGION", "ap-south-1")])), "ap-south-1");
        assert_eq!(region(None, env(&[])), "us-east-1");
        // Empty values are unset, at every step.
        assert_eq!(region(Some(""), &all), "eu-west-3");
        assert_eq!(region(None, env(&[("AWS_REGION", " "), ("AWS_DEFAULT_REGION", "ap-south-1")])), "ap-south-1");
        assert_eq!(region(None, env(&[("AWS_REGION", ""), ("AWS_DEFAULT_REGION", "")])), "us-east-1");
    }

    #[test]
    fn addressing_is_path_style_unless_virtual_hosted_is_asked_for() {
        assert!(!virtual_hosted(env(&[])));
        assert!(!virtual_hosted(env(&[("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "false")])));
        assert!(virtual_hosted(env(&[("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "true")])));
        assert!(virtual_hosted(env(&[("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "TRUE")])));
    }

    #[test]
    fn a_store_configured_without_a_region_setting_signs_for_aws_region_path_style() {
        use object_store::aws::AmazonS3ConfigKey as K;
        let cfg = S3Config::default();
        let b = configure(AmazonS3Builder::new(), "b", &cfg, env(&[("AWS_REGION", "eu-west-3")]));
        assert_eq!(b.get_config_value(&K::Region).as_deref(), Some("eu-west-3"));
        assert_eq!(b.get_config_value(&K::VirtualHostedStyleRequest).as_deref(), Some("false"));
        let cfg = S3Config { region: Some("sa-east-1".into()), ..S3Config::default() };
        let b = configure(
            AmazonS3Builder::new(),
            "b",
            &cfg,
            env(&[("AWS_REGION", "eu-west-3"), ("AWS_VIRTUAL_HOSTED_STYLE_REQUEST", "true")]),
        );
        assert_eq!(b.get_config_value(&K::Region).as_deref(), Some("sa-east-1"));
        assert_eq!(b.get_config_value(&K::VirtualHostedStyleRequest).as_deref(), Some("true"));
    }
}
