//! `/videos/{videoId}/chapters/{language}`: a video's chapters (contract rows 30–33, §2 Chapter,
//! §10): upload a WebVTT file (a second upload replaces it), list, show, delete. The language
//! rules, the file checks and the `src` URLs are the captions' (`captions.rs`).

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use vidi_core::keys::TrackKind;
use vidi_core::model::Video;
use vidi_core::repo::TextTrack;

use super::captions::{drop_file, language, private_token, read_vtt, store_track, track_src};
use super::source::Form;
use super::videos::video_id;
use crate::auth::Auth;
use crate::error::OrNotFound;
use crate::extract::Query;
use crate::page::{Page, page, page_request};
use crate::{ApiResult, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/videos/{videoId}/chapters", get(list))
        .route("/videos/{videoId}/chapters/{language}", get(show).post(upload).delete(delete))
}

/// A chapter file as api.video returns it: exactly the 2023 schema's fields (contract §2).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ChapterOut {
    /// `/videos/{videoId}/chapters/{language}`
    pub uri: String,
    /// The WebVTT file's URL.
    pub src: String,
    pub language: String,
}

impl ChapterOut {
    fn build(state: &AppState, v: &Video, token: Option<&str>, c: &TextTrack) -> Self {
        ChapterOut {
            uri: format!("/videos/{}/chapters/{}", v.id, c.language),
            src: track_src(state, v, token, TrackKind::Chapters, &c.language),
            language: c.language.to_string(),
        }
    }
}

/// Upload the chapters of one language (a WebVTT file, one cue per chapter); a second upload
/// replaces the first.
#[utoipa::path(post, path = "/videos/{videoId}/chapters/{language}", tag = "Chapters", operation_id = "POST_videos-videoId-chapters-language",
    params(("videoId" = String, Path), ("language" = String, Path, description = "A BCP 47 language tag, such as en or fr-ca")),
    request_body(content_type = "multipart/form-data", content = String, description = "file: a WebVTT file (≤ 2 MiB)"),
    responses((status = 200, body = ChapterOut), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, lang)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<ChapterOut>> {
    let mut form = Form::open(&headers, body)?;
    let result = async {
        let vid = video_id(&id)?;
        let language = language(&lang)?;
        let v = state.repo.get_video(auth.ws(), &vid).await.or_404("videoId")?;
        let (bytes, _) = read_vtt(&mut form).await?;
        let row = store_track(&state, &v, TrackKind::Chapters, &language, bytes).await?;
        let token = private_token(&state, &v).await?;
        Ok(Json(ChapterOut::build(&state, &v, token.as_deref(), &row)))
    }
    .await;
    if result.is_err() {
        form.drain(state.cfg.max_request_bytes).await;
    }
    result
}

/// List a video's chapter files.
#[utoipa::path(get, path = "/videos/{videoId}/chapters", tag = "Chapters", operation_id = "LIST-videos-videoId-chapters",
    params(("videoId" = String, Path), ("currentPage" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, description = "{data: Chapter[], pagination}", body = crate::page::Pagination), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Page<ChapterOut>>> {
    let q = Query::parse(raw.as_deref());
    let req = page_request(&q)?;
    let v = state.repo.get_video(auth.ws(), &video_id(&id)?).await.or_404("videoId")?;
    let (rows, total) = state.repo.list_chapters(auth.ws(), &v.id, req).await.or_404("videoId")?;
    let token = if rows.is_empty() { None } else { private_token(&state, &v).await? };
    let data = rows.iter().map(|c| ChapterOut::build(&state, &v, token.as_deref(), c)).collect();
    Ok(Json(page(&format!("/videos/{}/chapters", v.id), &q, req, total, data)))
}

/// Show the chapters of one language.
#[utoipa::path(get, path = "/videos/{videoId}/chapters/{language}", tag = "Chapters", operation_id = "GET_videos-videoId-chapters-language",
    params(("videoId" = String, Path), ("language" = String, Path)),
    responses((status = 200, body = ChapterOut), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn show(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, lang)): Path<(String, String)>,
) -> ApiResult<Json<ChapterOut>> {
    let language = language(&lang)?;
    let v = state.repo.get_video(auth.ws(), &video_id(&id)?).await.or_404("videoId")?;
    let c = state.repo.get_chapter(auth.ws(), &v.id, &language).await.or_404("language")?;
    let token = private_token(&state, &v).await?;
    Ok(Json(ChapterOut::build(&state, &v, token.as_deref(), &c)))
}

/// Delete the chapters of one language.
#[utoipa::path(delete, path = "/videos/{videoId}/chapters/{language}", tag = "Chapters", operation_id = "DELETE_videos-videoId-chapters-language",
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
    let key = state.repo.delete_chapter(auth.ws(), &vid, &language).await.or_404("language")?;
    drop_file(&state, Some(key)).await;
    Ok(StatusCode::NO_CONTENT)
}
