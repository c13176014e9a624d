//! `POST /videos/{videoId}/source`: a whole file in one request, or chunks announced by
//! `Content-Range` (`part n/N`, `part n/*`, `bytes a-b/T`), concurrent and in any order (contract
//! §4). Bodies are streamed straight to the media store: memory stays flat whatever the size, and a
//! chunk is acknowledged only once it is durable.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures::{StreamExt, TryStreamExt};
use vidi_core::blobs::{ByteStream, ChunkTarget};
use vidi_core::id::{VideoId, WorkspaceId};
use vidi_core::keys::{source_key, upload_key};
use vidi_core::model::{IngestState, UploadMode};
use vidi_core::repo::ChunkCommit;
use vidi_core::time::now_ms;
use vidi_core::upload::{self, ContentRange, RangeError};
use vidi_core::{CoreError, Repo};

use super::videos::{VideoIdOnly, VideoOut, video_id};
use crate::auth::Auth;
use crate::error::OrNotFound;
use crate::{ApiError, ApiResult, AppState, ingest};

pub fn routes() -> Router<AppState> {
    Router::new().route("/videos/{videoId}/source", post(upload_source))
}

/// Upload a video's source file, whole or in chunks.
#[utoipa::path(post, path = "/videos/{videoId}/source", tag = "Videos", operation_id = "POST_videos-videoId-source",
    params(("videoId" = String, Path), ("Content-Range" = Option<String>, Header, description = "part n/N, part n/* or bytes from-to/total")),
    request_body(content_type = "multipart/form-data", content = String, description = "one file part, any field name"),
    responses((status = 201, description = "the Video when the upload is complete, else {videoId}", body = VideoOut), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn upload_source(
    State(state): State<AppState>,
    auth: Result<Auth, ApiError>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    // Refusals must still read the body: a client that is busy streaming a large file (Node's
    // form-data) only sees our answer if we let it finish sending, otherwise it gets a reset.
    let auth = match auth {
        Ok(a) => a,
        Err(e) => {
            drain_raw(body, state.cfg.max_request_bytes).await;
            return Err(e);
        }
    };
    let mut form = match Form::open(&headers, body) {
        Ok(f) => f,
        Err(e) => return Err(e),
    };
    let result = async {
        let id = video_id(&id)?;
        let range = match headers.get("content-range") {
            None => None,
            Some(h) => Some(upload::parse_content_range(h.to_str().unwrap_or("")).map_err(ApiError::upload)?),
        };
        let mut file = FilePart::Form(&mut form);
        match range {
            None => upload_whole(&state, auth.ws(), &id, &mut file).await,
            Some(r) => upload_chunk(&state, auth.ws(), &id, r, &mut file).await,
        }
    }
    .await;
    if result.is_err() {
        form.drain(state.cfg.max_request_bytes).await;
    }
    result
}

/// Keeps trying to release a chunk claim whose release failed (the database full or briefly
/// unreachable, as what made the chunk fail often is). This node's own claims never go stale
/// while it runs, so a claim left behind would answer every retry of that part with 409
/// `part-in-progress` until a restart.
fn release_later(state: &AppState, ws: &WorkspaceId, id: &VideoId, idx: u32) {
    let (repo, instance, ws, id) = (state.repo.clone(), state.instance.clone(), ws.clone(), id.clone());
    tokio::spawn(async move {
        loop {
            // One small statement a second: a retry of the part meets a 409 for a second at most
            // once the database takes writes again.
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            match repo.release_chunk(&ws, &id, idx, &instance).await {
                Ok(()) | Err(CoreError::NotFound) => {
                    tracing::info!(video = %id, part = idx, "chunk claim released");
                    return;
                }
                Err(e) => tracing::debug!(video = %id, error = %e, "chunk claim still not released"),
            }
        }
    });
}

/// Reads and drops up to `limit` bytes of an unparsed body.
pub(crate) async fn drain_raw(body: Body, limit: u64) {
    let mut s = body.into_data_stream();
    let mut seen = 0u64;
    let drain = async {
        while let Some(Ok(piece)) = s.next().await {
            seen += piece.len() as u64;
            if seen > limit {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(60), drain).await;
}

/// A multipart body whose file part is found whatever its field name (Node names it after the file).
pub struct Form {
    inner: multer::Multipart<'static>,
    /// Text fields seen so far (a token upload's `videoId` may come before or after the file).
    pub fields: Vec<(String, String)>,
}

const MAX_TEXT_FIELD: usize = 64 * 1024;

impl Form {
    pub fn open(headers: &HeaderMap, body: Body) -> ApiResult<Self> {
        let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let boundary = multer::parse_boundary(ct)
            .map_err(|_| ApiError::no_file().detail("The body must be multipart/form-data with one file part."))?;
        Ok(Form { inner: multer::Multipart::new(body.into_data_stream(), boundary), fields: Vec::new() })
    }

    /// The next file part, reading past (and keeping) text fields.
    pub async fn next_file(&mut self) -> ApiResult<Option<multer::Field<'static>>> {
        loop {
            let field = self.inner.next_field().await.map_err(bad_form)?;
            let Some(field) = field else { return Ok(None) };
            if field.file_name().is_some() {
                return Ok(Some(field));
            }
            let name = field.name().unwrap_or("").to_string();
            let mut text = Vec::new();
            let mut s = field;
            while let Some(piece) = s.chunk().await.map_err(bad_form)? {
                if text.len() + piece.len() > MAX_TEXT_FIELD {
                    return Err(ApiError::invalid_payload(format!("The form field \"{name}\" is too large.")));
                }
                text.extend_from_slice(&piece);
            }
            self.fields.push((name, String::from_utf8_lossy(&text).into_owned()));
        }
    }

    /// Reads and drops what is left of the body (bounded in bytes and time).
    pub async fn drain(&mut self, limit: u64) {
        let mut seen = 0u64;
        let drain = async {
            while let Ok(Some(mut field)) = self.inner.next_field().await {
                while let Ok(Some(piece)) = field.chunk().await {
                    seen += piece.len() as u64;
                    if seen > limit {
                        return;
                    }
                }
            }
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(60), drain).await;
    }

    /// The one file of a small upload (a thumbnail, a logo), read whole: the rest of the form is
    /// read too (no second file; text fields kept), and an empty file or one over `max` bytes is
    /// refused. Over-large bodies stop at `max`, never buffered further.
    pub async fn small_file(&mut self, max: usize) -> ApiResult<Vec<u8>> {
        let Some(mut file) = self.next_file().await? else { return Err(ApiError::no_file()) };
        let mut bytes = Vec::new();
        while let Some(piece) =
            file.chunk().await.map_err(|e| ApiError::invalid_payload(format!("The upload could not be read: {e}")))?
        {
            if bytes.len() + piece.len() > max {
                return Err(ApiError::upload(RangeError::FileTooLarge));
            }
            bytes.extend_from_slice(&piece);
        }
        // multer allows one live field at a time.
        drop(file);
        self.finish().await?;
        if bytes.is_empty() {
            return Err(ApiError::upload(RangeError::FileEmpty));
        }
        Ok(bytes)
    }

    /// After the file: the rest of the body must hold no second file.
    pub async fn finish(&mut self) -> ApiResult<()> {
        match self.next_file().await? {
            Some(_) => Err(ApiError::multiple_files()),
            None => Ok(()),
        }
    }
}

fn bad_form(e: multer::Error) -> ApiError {
    ApiError::invalid_payload(format!("The multipart body could not be read: {e}"))
}

/// Where an upload's file is read from.
pub(crate) enum FilePart<'a> {
    /// The form's file part, streamed as it arrives (the rest of the form is read after it).
    Form(&'a mut Form),
    /// A file part already read to a local file with the rest of its form (token uploads, whose
    /// `videoId` may follow the file).
    Spooled(&'a std::path::Path),
}

impl FilePart<'_> {
    /// The file's bytes; a form without a file part is refused.
    async fn open(&mut self) -> ApiResult<ByteStream> {
        match self {
            FilePart::Form(form) => {
                let Some(file) = form.next_file().await? else { return Err(ApiError::no_file()) };
                Ok(Box::pin(file.map_err(std::io::Error::other)))
            }
            FilePart::Spooled(path) => {
                let f = tokio::fs::File::open(path).await.map_err(|e| ApiError::from(vidi_core::CoreError::from(e)))?;
                Ok(Box::pin(tokio_util::io::ReaderStream::with_capacity(f, 256 * 1024)))
            }
        }
    }

    /// After the file: a form must hold no second one (a spooled form was checked whole).
    async fn finish(&mut self) -> ApiResult<()> {
        match self {
            FilePart::Form(form) => form.finish().await,
            FilePart::Spooled(_) => Ok(()),
        }
    }
}

/// The file as a stream that fails once it passes `max` bytes, noting that it did.
fn limited(file: ByteStream, max: u64, over: Arc<AtomicBool>) -> ByteStream {
    let mut seen = 0u64;
    Box::pin(file.map(move |piece| {
        let piece = piece?;
        seen += piece.len() as u64;
        if seen > max {
            over.store(true, Ordering::Relaxed);
            return Err(std::io::Error::other("upload larger than the request limit"));
        }
        Ok(piece)
    }))
}

pub(crate) async fn upload_whole(
    state: &AppState,
    ws: &WorkspaceId,
    id: &VideoId,
    form: &mut FilePart<'_>,
) -> ApiResult<Response> {
    state.repo.check_whole(ws, id).await.or_404("videoId")?;
    let file = form.open().await?;
    // A key of its own: two racing whole uploads never write the same object; the loser's is dropped.
    let key = upload_key(id.as_str(), &uuid::Uuid::new_v4().simple().to_string());
    let over = Arc::new(AtomicBool::new(false));
    let stored = state.blobs.put_stream(&key, limited(file, state.cfg.max_request_bytes, over.clone())).await;
    let size = match stored {
        Ok(n) => n,
        Err(_) if over.load(Ordering::Relaxed) => {
            return Err(ApiError::upload(RangeError::FileTooLarge));
        }
        Err(e) => return Err(e.into()),
    };
    let outcome = async {
        form.finish().await?;
        if size == 0 {
            return Err(ApiError::upload(RangeError::FileEmpty));
        }
        state.repo.finish_whole(ws, id, &key, size, now_ms()).await.or_404("videoId")
    }
    .await;
    if let Err(e) = outcome {
        drop_object(state, &key).await;
        return Err(e);
    }
    crate::metrics::upload("whole", size);
    ingest::queue_probe(state, ws, id).await;
    full_video(state, ws, id).await
}

async fn drop_object(state: &AppState, key: &str) {
    if let Err(e) = state.blobs.delete(key).await {
        tracing::warn!(key, error = %e, "could not delete an abandoned upload");
    }
}

/// One chunk into `id`: `{videoId}` while parts are missing, the Video once complete.
pub(crate) async fn upload_chunk(
    state: &AppState,
    ws: &WorkspaceId,
    id: &VideoId,
    range: ContentRange,
    form: &mut FilePart<'_>,
) -> ApiResult<Response> {
    let max = state.cfg.max_request_bytes;
    if let ContentRange::Bytes { from, to, .. } = range
        && to >= from
        && to - from + 1 > max
    {
        return Err(ApiError::upload(RangeError::RangeTooLarge));
    }
    // The operator's cap on a source (`VIDI_MAX_SOURCE_BYTES`), before anything is claimed or
    // written: the contract's own limit (50 GB) is checked with the other range rules.
    if let ContentRange::Bytes { total, .. } = range
        && total > state.cfg.max_source_bytes
    {
        return Err(ApiError::upload(RangeError::TotalBytesTooHigh));
    }
    let repo: &dyn Repo = state.repo.as_ref();
    let now = now_ms();
    let live_after = now - state.cfg.claim_stale_after.as_millis() as i64;
    let claim = repo.claim_chunk(ws, id, range, &state.instance, now, live_after).await.or_404("videoId")?;
    let plan = claim.plan.clone();
    let result = async {
        let dest = source_key(id.as_str());
        let session = match claim.session {
            Some(s) => s,
            None => {
                let mine = state.blobs.begin_chunks(&dest, plan.mode).await?;
                let kept = repo.set_upload_session(ws, id, &mine).await?;
                if kept != mine {
                    let _ = state.blobs.abort_chunks(&dest, &mine).await;
                }
                kept
            }
        };
        let body = form.open().await?;
        let (size, receipt) = state
            .blobs
            .write_chunk(
                &ChunkTarget {
                    dest: &dest,
                    session: &session,
                    mode: plan.mode,
                    idx: plan.idx,
                    offset: plan.offset,
                    max_bytes: max,
                },
                body,
            )
            .await
            .map_err(|e| match e {
                CoreError::Upload(RangeError::FileTooLarge) if plan.mode == UploadMode::Bytes => {
                    ApiError::upload(RangeError::RangeTooLarge)
                }
                e => e.into(),
            })?;
        form.finish().await?;
        upload::check_chunk_size(&plan, size).map_err(ApiError::upload)?;
        Ok((repo.commit_chunk(ws, id, plan.idx, size, &receipt).await?, session, size))
    }
    .await;
    let (commit, session, size) = match result {
        Ok(c) => c,
        Err(e) => {
            // The bytes were never acknowledged: free the part for the client's retry.
            if let Err(r) = repo.release_chunk(ws, id, plan.idx, &state.instance).await {
                tracing::warn!(video = %id, error = %r, "could not release a chunk claim; retrying in the background");
                release_later(state, ws, id, plan.idx);
            }
            return Err(e);
        }
    };
    crate::metrics::upload("chunk", size);
    match commit {
        ChunkCommit::Pending => {
            // The start of the file is in: encoding may be able to begin before the rest.
            if plan.offset == Some(0) {
                ingest::spawn_early_encode(state.clone(), ws.clone(), id.clone(), session);
            }
            Ok((StatusCode::CREATED, Json(VideoIdOnly { video_id: id.to_string() })).into_response())
        }
        // Every byte is durable: the join is a job any worker takes, so a node that dies now
        // loses nothing. The answer still waits for it (bounded): clients read the status right
        // after the last part and expect the upload complete, as api.video reports it.
        ChunkCommit::Complete { .. } => {
            ingest::queue_assembly(state, ws, id).await;
            wait_assembled(state, ws, id).await;
            full_video(state, ws, id).await
        }
    }
}

/// Waits until the video's source is assembled (or its assembly failed), polling with growing
/// pauses (10 ms doubling to 250 ms): a local worker takes the job within milliseconds, one on
/// another node within a poll or a notification.
async fn wait_assembled(state: &AppState, ws: &WorkspaceId, id: &VideoId) {
    let deadline = tokio::time::Instant::now() + state.cfg.assembly_wait;
    let mut pause = std::time::Duration::from_millis(10);
    while tokio::time::Instant::now() < deadline {
        match state.repo.get_video(ws, id).await {
            Ok(v) if !matches!(v.ingest.state, IngestState::Assembling | IngestState::Uploading) => return,
            Ok(v) if v.encoding.error.is_some() => return,
            Ok(_) => {}
            Err(_) => return,
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(250));
    }
    tracing::warn!(video = %id, "answered the last part before its assembly finished");
}

async fn full_video(state: &AppState, ws: &WorkspaceId, id: &VideoId) -> ApiResult<Response> {
    let v = state.repo.get_video(ws, id).await.or_404("videoId")?;
    Ok((StatusCode::CREATED, Json(VideoOut::build(state, v).await?)).into_response())
}
