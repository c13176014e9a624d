//! `/live-streams`: create, list, show, update, delete, and the uploaded thumbnail (contract
//! rows 18–24, §2 LiveStream, §7). Broadcasts are crate `vidi-live`'s; their playlists, files and
//! thumbnails are served by `delivery::live`.

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use vidi_core::id::{LiveStreamId, random_body};
use vidi_core::keys::live_thumbnail_key;
use vidi_core::live::{LiveStream, MAX_RESTREAMS, Restream};
use vidi_core::repo::{LiveStreamFilter, LiveStreamSort};
use vidi_core::time::{Rfc3339Ms, now_ms};

use super::players::check_player_of;
use super::source::Form;
use super::thumbnail::uploaded_jpeg;
use super::videos::PRIVATE_TOKEN_TTL_MS;
use crate::auth::Auth;
use crate::error::OrNotFound;
use crate::extract::{JsonBody, Nullable, Query, de};
use crate::page::{Page, page, page_request, sort};
use crate::{ApiError, ApiResult, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/live-streams", get(list).post(create))
        .route("/live-streams/{liveStreamId}", get(show).patch(update).delete(delete))
        .route("/live-streams/{liveStreamId}/thumbnail", post(upload_thumbnail).delete(delete_thumbnail))
}

// ---- wire types ------------------------------------------------------------------------------

/// A live stream as api.video returns it: the 2023 schema's fields only (the Python client
/// refuses any other), `restreams` always present.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveStreamOut {
    pub live_stream_id: String,
    pub name: String,
    pub stream_key: String,
    pub record: bool,
    pub public: bool,
    pub assets: LiveStreamAssets,
    /// Omitted when no player is attached (it may not be null).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub player_id: Option<String>,
    pub broadcasting: bool,
    pub restreams: Vec<RestreamOut>,
    #[schema(value_type = String)]
    pub created_at: Rfc3339Ms,
    #[schema(value_type = String)]
    pub updated_at: Rfc3339Ms,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LiveStreamAssets {
    pub hls: String,
    pub iframe: String,
    pub player: String,
    pub thumbnail: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestreamOut {
    pub name: String,
    pub server_url: String,
    pub stream_key: String,
}

/// A restream destination in a request.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct RestreamsRequestObject {
    /// A name for the destination.
    name: String,
    /// `rtmp://host/app` or `rtmps://host/app`.
    server_url: String,
    /// The key the destination expects.
    stream_key: String,
}

/// `POST /live-streams`. Read field by field (so `null` is told apart from absent, and each
/// error names its attribute); this type documents it.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct LiveStreamCreationPayload {
    name: String,
    /// Whether each broadcast becomes a video (default false).
    record: Option<bool>,
    /// false: the assets' URLs carry a private token (default true).
    public: Option<bool>,
    /// A player theme of the same workspace.
    player_id: Option<String>,
    /// At most 5 destinations.
    restreams: Option<Vec<RestreamsRequestObject>>,
}

/// What the two bodies carry, as read: `null` told apart from absent where §7 answers it
/// differently (`name: null` is refused, `playerId: null` detaches), `restreams` kept as JSON
/// for [`restreams_of`], which names each item's errors as §7 spells them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveBody {
    #[serde(default, deserialize_with = "de::nullable_string")]
    name: Nullable<String>,
    #[serde(default, deserialize_with = "de::boolean")]
    record: Option<bool>,
    #[serde(default, deserialize_with = "de::boolean")]
    public: Option<bool>,
    #[serde(default, deserialize_with = "de::nullable_string")]
    player_id: Nullable<String>,
    #[serde(default)]
    restreams: Option<Value>,
}

/// `PATCH /live-streams/{liveStreamId}`: all optional; `restreams` replaces the whole list and
/// `playerId: null` detaches the player.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
#[schema(rename_all = "camelCase")]
pub struct LiveStreamUpdatePayload {
    name: Option<String>,
    record: Option<bool>,
    public: Option<bool>,
    player_id: Option<String>,
    restreams: Option<Vec<RestreamsRequestObject>>,
}

impl LiveStreamOut {
    /// The wire form of one live stream; a private one gets a fresh private token.
    pub async fn build(state: &AppState, l: LiveStream) -> ApiResult<Self> {
        Ok(Self::build_all(state, vec![l]).await?.pop().expect("one in, one out"))
    }

    /// The wire form of several live streams (one workspace's), minting the private ones'
    /// tokens in one statement, as videos do (contract §6, §7).
    pub async fn build_all(state: &AppState, lives: Vec<LiveStream>) -> ApiResult<Vec<Self>> {
        let tokens: Vec<Option<String>> =
            lives.iter().map(|l| (!l.public).then(|| uuid::Uuid::new_v4().to_string())).collect();
        let minted: Vec<(&LiveStreamId, &str)> =
            lives.iter().zip(&tokens).filter_map(|(l, t)| Some((&l.id, t.as_deref()?))).collect();
        if let Some(l) = lives.first() {
            let now = now_ms();
            state.repo.mint_live_tokens(&l.workspace_id, &minted, now, now + PRIVATE_TOKEN_TTL_MS).await?;
        }
        let public_url = state.cfg.public_url.as_str();
        Ok(lives.into_iter().zip(&tokens).map(|(l, t)| Self::from_live(l, public_url, t.as_deref())).collect())
    }

    fn from_live(l: LiveStream, public_url: &str, token: Option<&str>) -> Self {
        let id = l.id.as_str();
        // §7's shapes, with the VOD pattern for private ones: `?token=` on the player, a
        // `/token/{t}` path segment on the media.
        let (hls, thumbnail, player) = match token {
            None => (
                format!("{public_url}/live/{id}.m3u8"),
                format!("{public_url}/live/{id}/thumbnail.jpg"),
                format!("{public_url}/embed/live/{id}"),
            ),
            Some(t) => (
                format!("{public_url}/live/{id}/token/{t}.m3u8"),
                format!("{public_url}/live/{id}/token/{t}/thumbnail.jpg"),
                format!("{public_url}/embed/live/{id}?token={t}"),
            ),
        };
        LiveStreamOut {
            assets: LiveStreamAssets {
                iframe: format!(
                    "<iframe src=\"{player}\" width=\"100%\" height=\"100%\" frameborder=\"0\" scrolling=\"no\" allowfullscreen=\"\"></iframe>"
                ),
                hls,
                thumbnail,
                player,
            },
            live_stream_id: l.id.into_string(),
            name: l.name,
            stream_key: l.stream_key,
            record: l.record,
            public: l.public,
            player_id: l.player_id,
            broadcasting: l.broadcasting,
            restreams: l
                .restreams
                .into_iter()
                .map(|r| RestreamOut { name: r.name, server_url: r.server_url, stream_key: r.stream_key })
                .collect(),
            created_at: Rfc3339Ms(l.created_at),
            updated_at: Rfc3339Ms(l.updated_at),
        }
    }
}

pub(crate) fn live_stream_id(raw: &str) -> ApiResult<LiveStreamId> {
    LiveStreamId::parse(raw).ok_or_else(|| ApiError::not_found("liveStreamId"))
}

// ---- validation ------------------------------------------------------------------------------

const NOT_NULL: &str = "This value should not be null.";
const NOT_BLANK: &str = "This value should not be blank.";
const MISSING_APP: &str = "Missing app name: rtmp://[host]/[app name].";
const BAD_RTMP_URL: &str = "RTMP URL should have the following format: rtmp://[host]/[app name].";

/// A live stream's name: a non-blank string (`None`: not given).
fn name_of(name: Nullable<String>) -> ApiResult<Option<String>> {
    match name.given() {
        None => Ok(None),
        Some(None) => Err(ApiError::invalid_attribute("name", NOT_NULL)),
        Some(Some(n)) if n.trim().is_empty() => Err(ApiError::invalid_attribute("name", NOT_BLANK)),
        Some(n) => Ok(n),
    }
}

/// The `restreams` of a payload, checked as contract §7 says; `None` when absent (or null,
/// which clients send for "not set").
fn restreams_of(given: Option<&Value>) -> ApiResult<Option<Vec<Restream>>> {
    let items = match given {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::invalid_attribute("restreams", "The \"restreams\" attribute must be an array."));
        }
    };
    if items.len() > MAX_RESTREAMS {
        return Err(ApiError::invalid_attribute(
            "restreams",
            format!("This collection should contain {MAX_RESTREAMS} elements or less."),
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(o) = item else {
            return Err(ApiError::invalid_attribute(&format!("restreams[{i}]"), "A restream must be an object."));
        };
        let field = |f: &str| -> ApiResult<String> {
            let name = format!("restreams[{i}][{f}]");
            match o.get(f) {
                None | Some(Value::Null) => Err(ApiError::invalid_attribute(&name, NOT_NULL)),
                Some(Value::String(s)) if s.trim().is_empty() => Err(ApiError::invalid_attribute(&name, NOT_BLANK)),
                Some(Value::String(s)) => Ok(s.trim().to_string()),
                Some(_) => Err(ApiError::invalid_attribute(&name, "This value should be of type string.")),
            }
        };
        let (name, server_url, stream_key) = (field("name")?, field("serverUrl")?, field("streamKey")?);
        if let Err(detail) = check_rtmp_url(&server_url) {
            return Err(ApiError::invalid_attribute(&format!("restreams[{i}][serverUrl]"), detail));
        }
        out.push(Restream { name, server_url, stream_key });
    }
    Ok(Some(out))
}

/// `rtmp://host/app` (or `rtmps://`, which api.video's destinations such as YouTube and
/// Facebook offer too): a host, and a non-empty application name after it.
fn check_rtmp_url(raw: &str) -> Result<(), &'static str> {
    let lower = raw.to_ascii_lowercase();
    let rest = ["rtmp://", "rtmps://"]
        .iter()
        .find_map(|s| lower.starts_with(s).then(|| &raw[s.len()..]))
        .ok_or(BAD_RTMP_URL)?;
    let (host, app) = rest.split_once('/').unwrap_or((rest, ""));
    let valid_host = !host.is_empty()
        && !host.contains(['@', ' ', '?', '#'])
        && url::Url::parse(&format!("rtmp://{host}/")).is_ok_and(|u| u.host().is_some());
    if !valid_host {
        return Err(BAD_RTMP_URL);
    }
    if app.trim_matches('/').is_empty() {
        return Err(MISSING_APP);
    }
    Ok(())
}

// ---- handlers --------------------------------------------------------------------------------

/// Create a live stream; its `streamKey` is made by the server.
#[utoipa::path(post, path = "/live-streams", tag = "Live Streams", operation_id = "POST_live-streams",
    request_body = LiveStreamCreationPayload,
    responses((status = 200, body = LiveStreamOut), (status = 400, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    body: JsonBody<LiveBody>,
) -> ApiResult<Json<LiveStreamOut>> {
    let body = body.read()?;
    let name = name_of(body.name)?.ok_or_else(|| ApiError::attribute_required("name"))?;
    let restreams = restreams_of(body.restreams.as_ref())?.unwrap_or_default();
    let player_id = body.player_id.given().flatten().filter(|p| !p.is_empty());
    if let Some(p) = &player_id {
        check_player_of(&state, auth.ws(), p).await?;
    }
    let now = now_ms();
    let live = LiveStream {
        id: LiveStreamId::generate(),
        workspace_id: auth.ws().clone(),
        name,
        stream_key: uuid::Uuid::new_v4().to_string(),
        record: body.record.unwrap_or(false),
        public: body.public.unwrap_or(true),
        player_id,
        restreams,
        thumbnail_key: None,
        broadcasting: false,
        created_at: now,
        updated_at: now,
    };
    state.repo.insert_live_stream(&live).await?;
    // api.video answers 200 here, not 201 (contract row 19).
    Ok(Json(LiveStreamOut::build(&state, live).await?))
}

/// List the workspace's live streams.
#[utoipa::path(get, path = "/live-streams", tag = "Live Streams", operation_id = "LIST-live-streams",
    params(("streamKey" = Option<String>, Query, description = "exact match"), ("name" = Option<String>, Query, description = "substring"),
           ("sortBy" = Option<String>, Query, description = "createdAt, publishedAt, name or updatedAt"), ("sortOrder" = Option<String>, Query),
           ("currentPage" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, description = "A page of LiveStream objects: {data, pagination}", body = crate::page::Page<LiveStreamOut>), (status = 400, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Page<LiveStreamOut>>> {
    let q = Query::parse(raw.as_deref());
    let req = page_request(&q)?;
    // A live stream is usable, "published", from its creation.
    let fields = [
        ("createdAt", LiveStreamSort::CreatedAt),
        ("publishedAt", LiveStreamSort::CreatedAt),
        ("name", LiveStreamSort::Name),
        ("updatedAt", LiveStreamSort::UpdatedAt),
    ];
    let order = sort(&q, &fields, false)?;
    let filter = LiveStreamFilter {
        stream_key: q.get("streamKey").filter(|s| !s.is_empty()).map(str::to_string),
        name: q.get("name").filter(|s| !s.is_empty()).map(str::to_string),
        sort: order.by.unwrap_or(LiveStreamSort::CreatedAt),
        descending: order.descending,
    };
    let (lives, total) = state.repo.list_live_streams(auth.ws(), &filter, req).await?;
    let data = LiveStreamOut::build_all(&state, lives).await?;
    Ok(Json(page("/live-streams", &q, req, total, data)))
}

/// Show a live stream.
#[utoipa::path(get, path = "/live-streams/{liveStreamId}", tag = "Live Streams", operation_id = "GET_live-streams-liveStreamId",
    params(("liveStreamId" = String, Path)),
    responses((status = 200, body = LiveStreamOut), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn show(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<LiveStreamOut>> {
    let l = state.repo.get_live_stream(auth.ws(), &live_stream_id(&id)?).await.or_404("liveStreamId")?;
    Ok(Json(LiveStreamOut::build(&state, l).await?))
}

/// Update a live stream; fields not given keep their value, `restreams` replaces the list.
#[utoipa::path(patch, path = "/live-streams/{liveStreamId}", tag = "Live Streams", operation_id = "PATCH_live-streams-liveStreamId",
    params(("liveStreamId" = String, Path)),
    request_body = LiveStreamUpdatePayload,
    responses((status = 200, body = LiveStreamOut), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn update(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: JsonBody<LiveBody>,
) -> ApiResult<Json<LiveStreamOut>> {
    let mut l = state.repo.get_live_stream(auth.ws(), &live_stream_id(&id)?).await.or_404("liveStreamId")?;
    let body = body.read()?;
    if let Some(n) = name_of(body.name)? {
        l.name = n;
    }
    if let Some(r) = restreams_of(body.restreams.as_ref())? {
        l.restreams = r;
    }
    if let Some(b) = body.record {
        l.record = b;
    }
    let was_public = l.public;
    if let Some(b) = body.public {
        l.public = b;
    }
    match body.player_id.given() {
        None => {}
        Some(None) => l.player_id = None,
        Some(Some(p)) => {
            // A player of another workspace is one that does not exist (contract §8).
            if !p.is_empty() && l.player_id.as_deref() != Some(p.as_str()) {
                check_player_of(&state, auth.ws(), &p).await?;
            }
            l.player_id = Some(p).filter(|p| !p.is_empty());
        }
    }
    l.updated_at = now_ms().max(l.updated_at);
    state.repo.update_live_stream(&l).await.or_404("liveStreamId")?;
    if was_public != l.public {
        state.visibility.forget_media(&vidi_core::id::MediaId::LiveStream(l.id.clone()));
    }
    Ok(Json(LiveStreamOut::build(&state, l).await?))
}

/// Delete a live stream and its uploaded thumbnail.
#[utoipa::path(delete, path = "/live-streams/{liveStreamId}", tag = "Live Streams", operation_id = "DELETE_live-streams-liveStreamId",
    params(("liveStreamId" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn delete(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    let id = live_stream_id(&id)?;
    let thumbnail = state.repo.delete_live_stream(auth.ws(), &id).await.or_404("liveStreamId")?;
    // A broadcast of it is cut: at once when its publisher is on this node, at the holding node's
    // next heartbeat otherwise.
    state.live.cut(&id);
    state.visibility.forget_media(&vidi_core::id::MediaId::LiveStream(id));
    drop_thumbnail(&state, thumbnail).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a thumbnail nothing refers to any more. A failure leaves garbage, never a broken
/// live stream.
async fn drop_thumbnail(state: &AppState, key: Option<String>) {
    if let Some(key) = key
        && let Err(e) = state.blobs.delete(&key).await
    {
        tracing::warn!(key, error = %e, "could not delete a live stream's thumbnail");
    }
}

/// Upload a thumbnail (JPEG, PNG or WebP, at most 8 MiB), stored as a JPEG.
#[utoipa::path(post, path = "/live-streams/{liveStreamId}/thumbnail", tag = "Live Streams", operation_id = "POST_live-streams-liveStreamId-thumbnail",
    params(("liveStreamId" = String, Path)),
    request_body(content_type = "multipart/form-data", content = String, description = "file: one image (JPEG, PNG or WebP, ≤ 8 MiB)"),
    responses((status = 201, body = LiveStreamOut), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn upload_thumbnail(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, Json<LiveStreamOut>)> {
    let mut form = Form::open(&headers, body)?;
    let result = async {
        let l = state.repo.get_live_stream(auth.ws(), &live_stream_id(&id)?).await.or_404("liveStreamId")?;
        let (_scratch, jpeg) = uploaded_jpeg(&state, &mut form).await?;
        let key = live_thumbnail_key(l.id.as_str(), &random_body()[..12]);
        state.blobs.put_file(&key, &jpeg).await?;
        let replaced = match state.repo.set_live_thumbnail(auth.ws(), &l.id, Some(&key), now_ms()).await {
            Ok(replaced) => replaced,
            Err(e) => {
                drop_thumbnail(&state, Some(key)).await;
                return Err(ApiError::from_core(e, "liveStreamId"));
            }
        };
        drop_thumbnail(&state, replaced).await;
        let l = state.repo.get_live_stream(auth.ws(), &l.id).await.or_404("liveStreamId")?;
        Ok((StatusCode::CREATED, Json(LiveStreamOut::build(&state, l).await?)))
    }
    .await;
    if result.is_err() {
        form.drain(state.cfg.max_request_bytes).await;
    }
    result
}

/// Delete a live stream's uploaded thumbnail; answers with the live stream (200, not 204).
#[utoipa::path(delete, path = "/live-streams/{liveStreamId}/thumbnail", tag = "Live Streams", operation_id = "DELETE_live-streams-liveStreamId-thumbnail",
    params(("liveStreamId" = String, Path)),
    responses((status = 200, body = LiveStreamOut), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn delete_thumbnail(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<LiveStreamOut>> {
    let id = live_stream_id(&id)?;
    let replaced = state.repo.set_live_thumbnail(auth.ws(), &id, None, now_ms()).await.or_404("liveStreamId")?;
    drop_thumbnail(&state, replaced).await;
    let l = state.repo.get_live_stream(auth.ws(), &id).await.or_404("liveStreamId")?;
    Ok(Json(LiveStreamOut::build(&state, l).await?))
}

#[cfg(test)]
mod tests {
    use super::check_rtmp_url;

    #[test]
    fn rtmp_urls() {
        assert!(check_rtmp_url("rtmp://a.rtmp.youtube.com/live2").is_ok());
        assert!(check_rtmp_url("rtmps://live-api-s.facebook.com:443/rtmp/").is_ok());
        assert!(check_rtmp_url("RTMP://127.0.0.1:1935/app").is_ok());
        assert_eq!(check_rtmp_url("rtmp://host"), Err(super::MISSING_APP));
        assert_eq!(check_rtmp_url("rtmp://host/"), Err(super::MISSING_APP));
        assert_eq!(check_rtmp_url("http://host/app"), Err(super::BAD_RTMP_URL));
        assert_eq!(check_rtmp_url("rtmp:///app"), Err(super::BAD_RTMP_URL));
        assert_eq!(check_rtmp_url("not a url"), Err(super::BAD_RTMP_URL));
    }
}
