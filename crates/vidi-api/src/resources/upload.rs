//! `POST /upload?token=…` (contract row 13, §4, §5): delegated uploads. No credential but the
//! token in the query string (any `Authorization` is ignored); the upload goes into a new video of
//! the token's workspace, titled after the file, or into the video named by the form's `videoId`.
//! Whole files and every `Content-Range` mode work as on `/videos/{id}/source`, whose upload code
//! this shares.
//!
//! The form is read whole, the file part spooled to local scratch (bounded like any upload
//! request, never held in memory), before anything is decided: Node and Go send `videoId` after
//! the file. Beyond api.video, a part `n/N` (N > 1) without `videoId`, which the one-call methods of
//! the Node and Python clients send for every part of a large file, joins the upload in progress
//! on the same token for the same file name and part total that is still missing part `n`
//! ([`TokenUploadRepo`](vidi_core::repo::TokenUploadRepo)), so those methods make one video.

use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use tokio::io::AsyncWriteExt;
use vidi_core::CoreError;
use vidi_core::id::{UploadTokenId, VideoId, WorkspaceId};
use vidi_core::model::{EncodingState, Ingest, SourceKind, Video};
use vidi_core::repo::{TokenUploadKey, TokenUploadSlot};
use vidi_core::scratch::Scratch;
use vidi_core::time::now_ms;
use vidi_core::upload::{self, ContentRange, RangeError};
use vidi_core::upload_token::UploadToken;

use super::source::{FilePart, Form, drain_raw, upload_chunk, upload_whole};
use super::videos::{VideoOut, video_id};
use crate::error::OrNotFound;
use crate::extract::Query;
use crate::{ApiError, ApiResult, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/upload", post(upload))
}

/// The longest file name kept (for the title and the key of an upload in progress), in
/// characters: names come from the network.
const MAX_FILE_NAME_CHARS: usize = 255;

/// How many times a part without `videoId` looks again after losing a race for its upload.
const SLOT_ATTEMPTS: usize = 5;

fn missing_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "authentication-missing-upload-token",
        "The upload token is missing.",
        "token",
    )
}

fn invalid_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "authentication-invalid-upload-token",
        "The upload token is invalid or expired.",
        "token",
    )
}

/// The form of `POST /upload` (api.video's `token-upload-payload`), for the OpenAPI document: the
/// handler reads the multipart body itself.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct TokenUploadPayload {
    /// The file, or one chunk of it; any field name is accepted, the first part with a file name
    /// is the file.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// Continue an upload, or upload into a video made beforehand; before or after the file.
    #[serde(rename = "videoId")]
    video_id: Option<String>,
}

/// Upload with a delegated upload token: a new video, or the one named by `videoId`.
#[utoipa::path(post, path = "/upload", tag = "Videos", operation_id = "POST_upload",
    params(("token" = String, Query, description = "an upload token (to…)"),
           ("Content-Range" = Option<String>, Header, description = "part n/N, part n/* or bytes from-to/total")),
    request_body(content_type = "multipart/form-data", content = TokenUploadPayload),
    responses((status = 201, description = "the Video when the upload is complete, else {videoId}", body = VideoOut),
              (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem),
              (status = 404, body = crate::error::Problem)))]
pub async fn upload(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    // Every refusal before the form is read still reads the body (bounded), as on
    // `/videos/{id}/source`: a client still sending only sees the answer if it may finish.
    let early = async {
        let q = Query::parse(raw.as_deref());
        let raw_token = q.get("token").map(str::trim).filter(|t| !t.is_empty()).ok_or_else(missing_token)?;
        let token = find_token(&state, raw_token).await?;
        let range = match headers.get("content-range") {
            None => None,
            Some(h) => Some(upload::parse_content_range(h.to_str().unwrap_or("")).map_err(ApiError::upload)?),
        };
        Ok::<_, ApiError>((token, range))
    }
    .await;
    let (token, range) = match early {
        Ok(x) => x,
        Err(e) => {
            drain_raw(body, state.cfg.max_request_bytes).await;
            return Err(e);
        }
    };
    let mut form = Form::open(&headers, body)?;
    let scratch = Scratch::create(&state.cfg.work_dir, "upload")?;
    let spooled = match spool(&mut form, scratch.path(), state.cfg.max_request_bytes, range).await {
        Ok(s) => s,
        Err(e) => {
            form.drain(state.cfg.max_request_bytes).await;
            return Err(e);
        }
    };
    let result = async {
        // Reading the form may take long: a token deleted meanwhile stops this part too.
        let token = find_token(&state, token.token.as_str()).await?;
        let video = form.fields.iter().rev().find(|(k, _)| k == "videoId").map(|(_, v)| v.trim().to_string());
        let file = FilePart::Spooled(&spooled.path);
        match video.filter(|v| !v.is_empty()) {
            Some(v) => into_named_video(&state, &token, &v, range, file).await,
            None => into_new_video(&state, &token, &spooled.file_name, range, file).await,
        }
    }
    .await;
    scratch.remove().await;
    result
}

async fn find_token(state: &AppState, raw: &str) -> ApiResult<UploadToken> {
    let id = UploadTokenId::parse(raw).ok_or_else(invalid_token)?;
    state.repo.find_upload_token(&id, now_ms()).await?.ok_or_else(invalid_token)
}

/// The file part, read to `dir`, with what the form said beside it.
struct Spooled {
    path: PathBuf,
    file_name: String,
}

/// Reads the whole form: its one file part to a file in `dir` (at most `max` bytes; empty,
/// missing or doubled files refused), its text fields into `form.fields`.
async fn spool(form: &mut Form, dir: &Path, max: u64, range: Option<ContentRange>) -> ApiResult<Spooled> {
    let Some(mut field) = form.next_file().await? else { return Err(ApiError::no_file()) };
    let file_name = clean_file_name(field.file_name().unwrap_or(""));
    let path = dir.join("part");
    let mut out = tokio::fs::File::create(&path).await.map_err(CoreError::from)?;
    let mut size = 0u64;
    while let Some(piece) =
        field.chunk().await.map_err(|e| ApiError::invalid_payload(format!("The upload could not be read: {e}")))?
    {
        size += piece.len() as u64;
        if size > max {
            return Err(ApiError::upload(match range {
                Some(ContentRange::Bytes { .. }) => RangeError::RangeTooLarge,
                _ => RangeError::FileTooLarge,
            }));
        }
        out.write_all(&piece).await.map_err(CoreError::from)?;
    }
    out.flush().await.map_err(CoreError::from)?;
    drop(out);
    // multer allows one live field at a time; the rest of the form may hold `videoId`.
    drop(field);
    form.finish().await?;
    if size == 0 {
        return Err(ApiError::upload(RangeError::FileEmpty));
    }
    Ok(Spooled { path, file_name })
}

/// The file's own name: browsers may send a path (`C:\fakepath\a.mp4`), and it is bounded.
fn clean_file_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or("").trim();
    base.chars().filter(|c| !c.is_control()).take(MAX_FILE_NAME_CHARS).collect()
}

/// A new video's title: the file name without its extension (contract row 13, decision).
fn title_of(file_name: &str) -> String {
    let stem = match file_name.rfind('.') {
        Some(i) if i > 0 => &file_name[..i],
        _ => file_name,
    };
    let stem = stem.trim();
    if !stem.is_empty() {
        stem.to_string()
    } else if !file_name.trim().is_empty() {
        file_name.trim().to_string()
    } else {
        "video".to_string()
    }
}

fn new_video(ws: &WorkspaceId, file_name: &str) -> Video {
    let now = now_ms();
    Video {
        id: VideoId::generate(),
        workspace_id: ws.clone(),
        title: title_of(file_name),
        description: None,
        public: true,
        panoramic: false,
        mp4_support: true,
        player_id: None,
        tags: Vec::new(),
        metadata: Vec::new(),
        source_kind: SourceKind::Upload,
        source_ref: None,
        created_at: now,
        updated_at: now,
        published_at: Some(now),
        ingest: Ingest::empty(),
        encoding: EncodingState::default(),
        clip: None,
    }
}

/// Into the token's workspace's video `raw`: the next part of an upload whose client kept its
/// `videoId`, or the first upload into a video created beforehand. The upload rules refuse a
/// video whose source is complete or came from a URL or a clone.
async fn into_named_video(
    state: &AppState,
    token: &UploadToken,
    raw: &str,
    range: Option<ContentRange>,
    mut file: FilePart<'_>,
) -> ApiResult<Response> {
    let ws = &token.workspace_id;
    let id = video_id(raw)?;
    // Another workspace's video is not found, as any video the token cannot see.
    state.repo.get_video(ws, &id).await.or_404("videoId")?;
    match range {
        None => upload_whole(state, ws, &id, &mut file).await,
        Some(r) => upload_chunk(state, ws, &id, r, &mut file).await,
    }
}

/// Into a new video, or, for a part `n/N` (N > 1), into the upload in progress on the token for
/// this file and total that still misses part `n`.
async fn into_new_video(
    state: &AppState,
    token: &UploadToken,
    file_name: &str,
    range: Option<ContentRange>,
    mut file: FilePart<'_>,
) -> ApiResult<Response> {
    let ws = &token.workspace_id;
    let (n, total) = match range {
        Some(ContentRange::Part { n, total: Some(total) }) if total > 1 && n >= 1 && n <= total => (n, total),
        // A whole file, one part, a part of unknown total or a byte range: a video of its own.
        _ => {
            let video = new_video(ws, file_name);
            state.repo.insert_video(&video).await?;
            let result = match range {
                None => upload_whole(state, ws, &video.id, &mut file).await,
                Some(r) => upload_chunk(state, ws, &video.id, r, &mut file).await,
            };
            if result.is_err() {
                // Nobody else knows this video: a refused upload leaves nothing behind.
                forget_video(state, ws, &video.id).await;
            }
            return result;
        }
    };
    let key = TokenUploadKey { token: &token.token, file_name, parts_total: total };
    let repo = state.repo.as_ref();
    for _ in 0..SLOT_ATTEMPTS {
        let slot = repo.token_upload_slot(ws, key, n).await?;
        let (id, fresh) = match slot {
            TokenUploadSlot::Expecting(id) => (id, false),
            TokenUploadSlot::Free | TokenUploadSlot::Taken(_) => {
                let video = new_video(ws, file_name);
                repo.insert_video(&video).await?;
                let replacing = match &slot {
                    TokenUploadSlot::Taken(old) => Some(old),
                    _ => None,
                };
                match repo.take_token_upload_slot(ws, key, &video.id, replacing, now_ms()).await {
                    Ok(true) => (video.id, true),
                    Ok(false) => {
                        // Another part got there first: join what it started.
                        forget_video(state, ws, &video.id).await;
                        continue;
                    }
                    Err(e) => {
                        forget_video(state, ws, &video.id).await;
                        return Err(match e {
                            CoreError::NotFound => invalid_token(),
                            e => e.into(),
                        });
                    }
                }
            }
        };
        match upload_chunk(state, ws, &id, ContentRange::Part { n, total: Some(total) }, &mut file).await {
            // A concurrent request took this part of that upload between the look-up and the
            // claim: the part belongs to another upload of the same file; look again.
            Err(e)
                if !fresh && (e.is_upload(RangeError::PartAlreadySent) || e.is_upload(RangeError::PartInProgress)) =>
            {
                continue;
            }
            Err(e) if fresh => {
                if repo.chunks(ws, &id).await.is_ok_and(|c| c.is_empty()) {
                    forget_video(state, ws, &id).await;
                }
                return Err(e);
            }
            result => return result,
        }
    }
    Err(ApiError::upload(RangeError::PartInProgress)
        .detail("Other requests kept taking this part of every upload of this file: retry."))
}

/// Drops a video this request created and nobody used.
async fn forget_video(state: &AppState, ws: &WorkspaceId, id: &VideoId) {
    if let Err(e) = state.repo.delete_video(ws, id).await {
        tracing::warn!(video = %id, error = %e, "could not delete an unused video");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_and_names() {
        assert_eq!(title_of("my video.mp4"), "my video");
        assert_eq!(title_of("archive.tar.gz"), "archive.tar");
        assert_eq!(title_of(".hidden"), ".hidden");
        assert_eq!(title_of("noext"), "noext");
        assert_eq!(title_of(""), "video");
        assert_eq!(title_of(" .mp4"), " .mp4".trim());
        assert_eq!(clean_file_name("C:\\fakepath\\clip.mov"), "clip.mov");
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("a\u{0}b\nc.mp4"), "abc.mp4");
        assert_eq!(clean_file_name(&"x".repeat(1000)).chars().count(), MAX_FILE_NAME_CHARS);
    }
}
