//! `/videos/{videoId}/captions/{language}` and `/videos/{videoId}/chapters/{language}`: a video's
//! text tracks (contract rows 25–33, §2 Caption and Chapter, §10). Both kinds are one resource
//! told apart by [`TrackKind`]: upload a WebVTT file (a second upload replaces it), list, show,
//! delete; captions alone have a `default` (at most one per video) that PATCH sets. The handlers
//! are written once, generic over the kind's wire type ([`TrackOut`]); [`captions`] and
//! [`chapters`] hold the documented operations, each a call into them.

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::{Json, Router};
use serde::Serialize;
use vidi_core::id::random_body;
use vidi_core::keys::track_key;
use vidi_core::language::Language;
use vidi_core::model::Video;
use vidi_core::repo::{TextTrack, TrackKind};
use vidi_core::time::now_ms;
use vidi_core::webvtt;

use super::source::Form;
use super::videos::{PRIVATE_TOKEN_TTL_MS, video_id};
use crate::auth::Auth;
use crate::error::OrNotFound;
use crate::extract::Query;
use crate::page::{Page, page, page_request};
use crate::{ApiError, ApiResult, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().merge(captions::routes()).merge(chapters::routes())
}

// ---- what both kinds share -------------------------------------------------------------------

/// The `{language}` of the path (contract §10): a BCP 47 tag naming a known language, else 400
/// `invalid-attribute` named `language`.
fn language(raw: &str) -> ApiResult<Language> {
    Language::parse(raw).map_err(|e| ApiError::invalid_attribute("language", e.to_string()))
}

/// Reads the form's one file and keeps it only if it is a valid WebVTT file (`vidi_core::webvtt`):
/// too large → `uploaded-file-too-large`, empty → `uploaded-file-empty`, not WebVTT →
/// `uploaded-file-invalid-file` with the reason (and its line) in `detail`.
async fn read_vtt(form: &mut Form) -> ApiResult<(Vec<u8>, Vec<webvtt::Cue>)> {
    let bytes = form.small_file(webvtt::MAX_BYTES).await?;
    let cues = webvtt::parse(&bytes).map_err(|e| {
        ApiError::bad_request("uploaded-file-invalid-file", "The uploaded file is invalid.", "file").detail(e.0)
    })?;
    Ok((bytes, cues))
}

/// Stores a checked WebVTT file under a fresh key and records it; the file it replaced (or this
/// one, when recording fails) is deleted afterwards.
async fn store_track(
    state: &AppState,
    v: &Video,
    kind: TrackKind,
    language: &Language,
    bytes: Vec<u8>,
) -> ApiResult<TextTrack> {
    let key = track_key(v.id.as_str(), kind, language.as_str(), &random_body()[..12]);
    state.blobs.put_bytes(&key, bytes).await?;
    let (ws, now) = (&v.workspace_id, now_ms());
    match state.repo.put_track(kind, ws, &v.id, language, &key, now).await {
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
async fn drop_file(state: &AppState, key: Option<String>) {
    if let Some(key) = key
        && let Err(e) = state.blobs.delete(&key).await
    {
        tracing::warn!(key, error = %e, "could not delete a replaced caption or chapter file");
    }
}

/// A private token for the `src` URLs of one response, when the video is private (contract §6:
/// every read of a private video's assets mints a fresh one).
async fn private_token(state: &AppState, v: &Video) -> ApiResult<Option<String>> {
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
fn track_src(state: &AppState, v: &Video, token: Option<&str>, kind: TrackKind, lang: &Language) -> String {
    let public = &state.cfg.public_url;
    let id = &v.id;
    let kind = kind.as_str();
    match token {
        None => format!("{public}/vod/{id}/{kind}/{lang}.vtt"),
        Some(t) => format!("{public}/vod/{id}/token/{t}/{kind}/{lang}.vtt"),
    }
}

// ---- the handlers, once for both kinds ---------------------------------------------------------

/// A kind's wire type: how one stored track is shown.
pub trait TrackOut: Serialize + Send + 'static {
    const KIND: TrackKind;
    fn build(state: &AppState, v: &Video, token: Option<&str>, t: &TextTrack) -> Self;
}

/// `/videos/{videoId}/{captions|chapters}/{language}`
fn track_uri(v: &Video, kind: TrackKind, language: &Language) -> String {
    format!("/videos/{}/{}/{language}", v.id, kind.as_str())
}

async fn upload<T: TrackOut>(
    state: AppState,
    auth: Auth,
    id: String,
    lang: String,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<T>> {
    let mut form = Form::open(&headers, body)?;
    let result = async {
        let vid = video_id(&id)?;
        let language = language(&lang)?;
        let v = state.repo.get_video(auth.ws(), &vid).await.or_404("videoId")?;
        let (bytes, _) = read_vtt(&mut form).await?;
        let row = store_track(&state, &v, T::KIND, &language, bytes).await?;
        let token = private_token(&state, &v).await?;
        Ok(Json(T::build(&state, &v, token.as_deref(), &row)))
    }
    .await;
    if result.is_err() {
        form.drain(state.cfg.max_request_bytes).await;
    }
    result
}

async fn list<T: TrackOut>(state: AppState, auth: Auth, id: String, raw: Option<String>) -> ApiResult<Json<Page<T>>> {
    let q = Query::parse(raw.as_deref());
    let req = page_request(&q)?;
    let v = state.repo.get_video(auth.ws(), &video_id(&id)?).await.or_404("videoId")?;
    let (rows, total) = state.repo.list_tracks(T::KIND, auth.ws(), &v.id, req).await.or_404("videoId")?;
    let token = if rows.is_empty() { None } else { private_token(&state, &v).await? };
    let data = rows.iter().map(|c| T::build(&state, &v, token.as_deref(), c)).collect();
    Ok(Json(page(&format!("/videos/{}/{}", v.id, T::KIND.as_str()), &q, req, total, data)))
}

async fn show<T: TrackOut>(state: AppState, auth: Auth, id: String, lang: String) -> ApiResult<Json<T>> {
    let language = language(&lang)?;
    let v = state.repo.get_video(auth.ws(), &video_id(&id)?).await.or_404("videoId")?;
    let c = state.repo.get_track(T::KIND, auth.ws(), &v.id, &language).await.or_404("language")?;
    let token = private_token(&state, &v).await?;
    Ok(Json(T::build(&state, &v, token.as_deref(), &c)))
}

async fn delete(state: AppState, auth: Auth, kind: TrackKind, id: String, lang: String) -> ApiResult<StatusCode> {
    let language = language(&lang)?;
    let vid = video_id(&id)?;
    state.repo.get_video(auth.ws(), &vid).await.or_404("videoId")?;
    let key = state.repo.delete_track(kind, auth.ws(), &vid, &language).await.or_404("language")?;
    drop_file(&state, Some(key)).await;
    Ok(StatusCode::NO_CONTENT)
}

// ---- the two kinds' operations ---------------------------------------------------------------

/// Captions: the operations api.video documents under "Captions", and the one only they have
/// (PATCH `default`).
pub mod captions {
    use axum::body::Body;
    use axum::extract::{Path, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;
    use axum::{Json, Router};
    use serde::{Deserialize, Serialize};
    use vidi_core::model::Video;
    use vidi_core::repo::{TextTrack, TrackKind};
    use vidi_core::time::now_ms;

    use super::{TrackOut, language, private_token, track_src, track_uri};
    use crate::auth::Auth;
    use crate::error::OrNotFound;
    use crate::extract::{JsonBody, de};
    use crate::page::Page;
    use crate::resources::videos::video_id;
    use crate::{ApiResult, AppState};

    pub fn routes() -> Router<AppState> {
        Router::new()
            .route("/videos/{videoId}/captions", get(list))
            .route("/videos/{videoId}/captions/{language}", get(show).post(upload).patch(update).delete(delete))
    }

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

    impl TrackOut for CaptionOut {
        const KIND: TrackKind = TrackKind::Captions;

        fn build(state: &AppState, v: &Video, token: Option<&str>, c: &TextTrack) -> Self {
            CaptionOut {
                uri: track_uri(v, Self::KIND, &c.language),
                src: track_src(state, v, token, Self::KIND, &c.language),
                srclang: c.language.to_string(),
                default: c.is_default,
            }
        }
    }

    /// The body of PATCH: api.video's `captions-update-payload`, whose one field is optional
    /// there: a PATCH without `default` is a valid request that changes nothing, so it answers
    /// 200 with the captions as they are (docs/contract.md), never a 400; `null` means nothing
    /// and is refused.
    #[derive(Deserialize, utoipa::ToSchema)]
    #[schema(title = "CaptionsUpdatePayload")]
    pub struct CaptionsUpdatePayload {
        /// Whether these captions are shown without the viewer asking.
        #[serde(default, deserialize_with = "de::boolean_not_null")]
        #[schema(value_type = bool, required = false)]
        pub default: Option<bool>,
    }

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
        super::upload(state, auth, id, lang, headers, body).await
    }

    /// List a video's captions.
    #[utoipa::path(get, path = "/videos/{videoId}/captions", tag = "Captions", operation_id = "LIST-videos-videoId-captions",
        params(("videoId" = String, Path), ("currentPage" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
        responses((status = 200, description = "A page of Caption objects: {data, pagination}", body = crate::page::Page<CaptionOut>), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
        security(("apiKey" = []), ("bearerAuth" = [])))]
    pub async fn list(
        State(state): State<AppState>,
        auth: Auth,
        Path(id): Path<String>,
        RawQuery(raw): RawQuery,
    ) -> ApiResult<Json<Page<CaptionOut>>> {
        super::list(state, auth, id, raw).await
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
        super::show(state, auth, id, lang).await
    }

    /// Make the captions of one language the default (shown without asking), or not. A video has
    /// at most one default: setting one clears the others.
    #[utoipa::path(patch, path = "/videos/{videoId}/captions/{language}", tag = "Captions", operation_id = "PATCH_videos-videoId-captions-language",
        params(("videoId" = String, Path), ("language" = String, Path)),
        request_body = CaptionsUpdatePayload,
        responses((status = 200, body = CaptionOut), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
        security(("apiKey" = []), ("bearerAuth" = [])))]
    pub async fn update(
        State(state): State<AppState>,
        auth: Auth,
        Path((id, lang)): Path<(String, String)>,
        body: JsonBody<CaptionsUpdatePayload>,
    ) -> ApiResult<Json<CaptionOut>> {
        let language = language(&lang)?;
        let v = state.repo.get_video(auth.ws(), &video_id(&id)?).await.or_404("videoId")?;
        let c = match body.read()?.default {
            Some(default) => state
                .repo
                .set_caption_default(auth.ws(), &v.id, &language, default, now_ms())
                .await
                .or_404("language")?,
            // Nothing to change: the unchanged captions, or 404 as any read of a missing one.
            None => state.repo.get_track(TrackKind::Captions, auth.ws(), &v.id, &language).await.or_404("language")?,
        };
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
        super::delete(state, auth, TrackKind::Captions, id, lang).await
    }
}

/// Chapters: the operations api.video documents under "Chapters".
pub mod chapters {
    use axum::body::Body;
    use axum::extract::{Path, RawQuery, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;
    use axum::{Json, Router};
    use serde::Serialize;
    use vidi_core::model::Video;
    use vidi_core::repo::{TextTrack, TrackKind};

    use super::{TrackOut, track_src, track_uri};
    use crate::auth::Auth;
    use crate::page::Page;
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

    impl TrackOut for ChapterOut {
        const KIND: TrackKind = TrackKind::Chapters;

        fn build(state: &AppState, v: &Video, token: Option<&str>, c: &TextTrack) -> Self {
            ChapterOut {
                uri: track_uri(v, Self::KIND, &c.language),
                src: track_src(state, v, token, Self::KIND, &c.language),
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
        super::upload(state, auth, id, lang, headers, body).await
    }

    /// List a video's chapter files.
    #[utoipa::path(get, path = "/videos/{videoId}/chapters", tag = "Chapters", operation_id = "LIST-videos-videoId-chapters",
        params(("videoId" = String, Path), ("currentPage" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
        responses((status = 200, description = "A page of Chapter objects: {data, pagination}", body = crate::page::Page<ChapterOut>), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
        security(("apiKey" = []), ("bearerAuth" = [])))]
    pub async fn list(
        State(state): State<AppState>,
        auth: Auth,
        Path(id): Path<String>,
        RawQuery(raw): RawQuery,
    ) -> ApiResult<Json<Page<ChapterOut>>> {
        super::list(state, auth, id, raw).await
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
        super::show(state, auth, id, lang).await
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
        super::delete(state, auth, TrackKind::Chapters, id, lang).await
    }
}
