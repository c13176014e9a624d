//! `/videos/{videoId}/captions/{language}`: a video's captions (contract rows 25–29, §2 Caption,
//! §10): upload a WebVTT file (a second upload replaces it), list, show, set `default` (at most
//! one per video), delete. Also what chapters share with captions: the language in the path,
//! reading and checking an uploaded WebVTT file, and the `src` URL of a stored one.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use vidi_core::id::random_body;
use vidi_core::keys::{TrackKind, track_key};
use vidi_core::language::Language;
use vidi_core::model::Video;
use vidi_core::repo::TextTrack;
use vidi_core::time::now_ms;
use vidi_core::webvtt;

use super::source::Form;
use super::videos::{PRIVATE_TOKEN_TTL_MS, video_id};
use crate::auth::Auth;
use crate::error::OrNotFound;
use crate::extract::{Fields, JsonObject, Query};
use crate::page::{Page, page, page_request};
use crate::{ApiError, ApiResult, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/videos/{videoId}/captions", get(list))
        .route("/videos/{videoId}/captions/{language}", get(show).post(upload).patch(update).delete(delete))
}

// ---- what chapters share ---------------------------------------------------------------------

/// The `{language}` of the path (contract §10): a BCP 47 tag naming a known language, else 400
/// `invalid-attribute` named `language`.
pub(crate) fn language(raw: &str) -> ApiResult<Language> {
    Language::parse(raw).map_err(|e| ApiError::invalid_attribute("language", e.to_string()))
}

/// Reads the form's one file and keeps it only if it is a valid WebVTT file (`vidi_core::webvtt`):
/// too large → `uploaded-file-too-large`, empty → `uploaded-file-empty`, not WebVTT →
/// `uploaded-file-invalid-file` with the reason (and its line) in `detail`.
pub(crate) async fn read_vtt(form: &mut Form) -> ApiResult<(Vec<u8>, Vec<webvtt::Cue>)> {
    let bytes = form.small_file(webvtt::MAX_BYTES).await?;
    let cues = webvtt::parse(&bytes).map_err(|e| {
        ApiError::bad_request("uploaded-file-invalid-file", "The uploaded file is invalid.", "file").detail(e.0)
    })?;
    Ok((bytes, cues))
}

/// Stores a checked WebVTT file under a fresh key and records it; the file it replaced (or this
/// one, when recording fails) is deleted afterwards.
pub(crate) async fn store_track(
    state: &AppState,
    v: &Video,
    kind: TrackKind,
    language: &Language,
    bytes: Vec<u8>,
) -> ApiResult<TextTrack> {
    let key = track_key(v.id.as_str(), kind, language.as_str(), &random_body()[..12]);
    state.blobs.put_bytes(&key, bytes).await?;
    let (ws, now) = (&v.workspace_id, now_ms());
    let recorded = match kind {
        TrackKind::Captions => state.repo.put_caption(ws, &v.id, language, &key, now).await,
        TrackKind::Chapters => state.repo.put_chapter(ws, &v.id, language, &key, now).await,
    };
    match recorded {
        Ok((row, replaced)) => {
            drop_file(state, replaced).await;
            Ok(row)
        }
        Err(e) => {
            drop_file(state, Some(key)).await;
            Err(ApiError::from_core(e, "videoId"))
        }
    }
}

/// Deletes a file nothing refers to any more. A failure leaves garbage (under the video's
/// prefix, so it goes with the video), never a broken track.
pub(crate) async fn drop_file(state: &AppState, key: Option<String>) {
    if let Some(key) = key
        && let Err(e) = state.blobs.delete(&key).await
    {
        tracing::warn!(key, error = %e, "could not delete a replaced caption or chapter file");
    }
}

/// A private token for the `src` URLs of one response, when the video is private (contract §6:
/// every read of a private video's assets mints a fresh one).
pub(crate) async fn private_token(state: &AppState, v: &Video) -> ApiResult<Option<String>> {
    if v.public {
        return Ok(None);
    }
    let token = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    state
        .repo
        .mint_private_tokens(&v.workspace_id, &[(&v.id, token.as_str())], now, now + PRIVATE_TOKEN_TTL_MS)
        .await?;
    Ok(Some(token))
}

/// Where a stored file is served: `{public}/vod/{id}[/token/{t}]/{captions|chapters}/{lang}.vtt`
/// (the shape of the spec's examples on `cdn.api.video`).
pub(crate) fn track_src(state: &AppState, v: &Video, token: Option<&str>, kind: TrackKind, lang: &Language) -> String {
    let public = &state.cfg.public_url;
    let id = &v.id;
    let kind = kind.as_str();
    match token {
        None => format!("{public}/vod/{id}/{kind}/{lang}.vtt"),
        Some(t) => format!("{public}/vod/{id}/token/{t}/{kind}/{lang}.vtt"),
    }
}

// ---- wire types ------------------------------------------------------------------------------

/// A caption as api.video returns it: exactly the 2023 schema's fields (contract §2).
#[derive(Serialize, utoipa::ToSchema)]
pub struct CaptionOut {
    /// `/videos/{videoId}/captions/{language}`
    pub uri: String,
    /// The WebVTT file's URL.
    pub src: String,
    pub srclang: String,
    pub default: bool,
}

impl CaptionOut {
    fn build(state: &AppState, v: &Video, token: Option<&str>, c: &TextTrack) -> Self {
        CaptionOut {
            uri: format!("/videos/{}/captions/{}", v.id, c.language),
            src: track_src(state, v, token, TrackKind::Captions, &c.language),
            srclang: c.language.to_string(),
            default: c.is_default,
        }
    }
}

// ---- handlers --------------------------------------------------------------------------------

/// Upload the captions of one language (a WebVTT file); a second upload replaces the first.
#[utoipa::path(post, path = "/videos/{videoId}/captions/{language}", tag = "Captions", operation_id = "POST_videos-videoId-captions-language",
    params(("videoId" = String, Path), ("language" = String, Path, description = "A BCP 47 language tag, such as en or fr-ca")),
    request_body(content_type = "multipart/form-data", content = String, description = "file: a WebVTT file (≤ 2 MiB)"),
    responses((status = 200, body = CaptionOut), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, lang)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<CaptionOut>> {
    let mut form = Form::open(&headers, body)?;
    let result = async {
        let vid = video_id(&id)?;
        let language = language(&lang)?;
        let v = state.repo.get_video(auth.ws(), &vid).await.or_404("videoId")?;
        let (bytes, _) = read_vtt(&mut form).await?;
        let row = store_track(&state, &v, TrackKind::Captions, &language, bytes).await?;
        let token = private_token(&state, &v).await?;
        Ok(Json(CaptionOut::build(&state, &v, token.as_deref(), &row)))
    }
    .await;
    if result.is_err() {
        form.drain(state.cfg.max_request_bytes).await;
    }
    result
}

/// List a video's captions.
#[utoipa::path(get, path = "/videos/{videoId}/captions", tag = "Captions", operation_id = "LIST-videos-videoId-captions",
    params(("videoId" = String, Path), ("currentPage" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, description = "{data: Caption[], pagination}", body = crate::page::Pagination), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Page<CaptionOut>>> {
    let q = Query::parse(raw.as_deref());
    let req = page_request(&q)?;
    let v = state.repo.get_video(auth.ws(), &video_id(&id)?).await.or_404("videoId")?;
    let (rows, total) = state.repo.list_captions(auth.ws(), &v.id, req).await.or_404("videoId")?;
    let token = if rows.is_empty() { None } else { private_token(&state, &v).await? };
    let data = rows.iter().map(|c| CaptionOut::build(&state, &v, token.as_deref(), c)).collect();
    Ok(Json(page(&format!("/videos/{}/captions", v.id), &q, req, total, data)))
}

/// Show the captions of one language.
#[utoipa::path(get, path = "/videos/{videoId}/captions/{language}", tag = "Captions", operation_id = "GET_videos-videoId-captions-language",
    params(("videoId" = String, Path), ("language" = String, Path)),
    responses((status = 200, body = CaptionOut), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, lang)): Path<(String, String)>,
) -> ApiResult<Json<CaptionOut>> {
    let language = language(&lang)?;
    let v = state.repo.get_video(auth.ws(), &video_id(&id)?).await.or_404("videoId")?;
    let c = state.repo.get_caption(auth.ws(), &v.id, &language).await.or_404("language")?;
    let token = private_token(&state, &v).await?;
    Ok(Json(CaptionOut::build(&state, &v, token.as_deref(), &c)))
}

/// Make the captions of one language the default (shown without asking), or not. A video has at
/// most one default: setting one clears the others.
#[utoipa::path(patch, path = "/videos/{videoId}/captions/{language}", tag = "Captions", operation_id = "PATCH_videos-videoId-captions-language",
    params(("videoId" = String, Path), ("language" = String, Path)),
    request_body(content = serde_json::Value, description = "{\"default\": true}"),
    responses((status = 200, body = CaptionOut), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, lang)): Path<(String, String)>,
    JsonObject(body): JsonObject,
) -> ApiResult<Json<CaptionOut>> {
    let language = language(&lang)?;
    let v = state.repo.get_video(auth.ws(), &video_id(&id)?).await.or_404("videoId")?;
    let default = body.boolean("default")?.ok_or_else(|| ApiError::attribute_required("default"))?;
    let c = state.repo.set_caption_default(auth.ws(), &v.id, &language, default, now_ms()).await.or_404("language")?;
    let token = private_token(&state, &v).await?;
    Ok(Json(CaptionOut::build(&state, &v, token.as_deref(), &c)))
}

/// Delete the captions of one language.
#[utoipa::path(delete, path = "/videos/{videoId}/captions/{language}", tag = "Captions", operation_id = "DELETE_videos-videoId-captions-language",
    params(("videoId" = String, Path), ("language" = String, Path)),
    responses((status = 204), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, lang)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let language = language(&lang)?;
    let vid = video_id(&id)?;
    state.repo.get_video(auth.ws(), &vid).await.or_404("videoId")?;
    let key = state.repo.delete_caption(auth.ws(), &vid, &language).await.or_404("language")?;
    drop_file(&state, Some(key)).await;
    Ok(StatusCode::NO_CONTENT)
}
