//! Who may see a video: anyone when it is public; with a private token otherwise, which opens a
//! playback session that later requests must present (contract §6).

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use vidi_core::id::{VideoId, WorkspaceId};
use vidi_core::model::Video;

use super::{Params, QueryMap, respond};
use crate::visibility::Visibility;
use crate::{ApiError, ApiResult, AppState};

/// How long a playback session opened with a private token lasts (contract §6).
const SESSION_TTL_MS: i64 = 24 * 3600 * 1000;
/// The cookie that carries a browser's playback session between requests.
///
/// Only the same-origin player page (`/embed/vod/…`, whose hls.js loads `/vod/…` from the same
/// host) needs it, to be let in again on a reload of the same private link. A player on another
/// origin never gets it, by design: CORS here is `*` without credentials, so browsers send no
/// cookies cross-origin, and every URI our private playlists and player page hand out carries the
/// session as `?avh=` instead (`vidi_media::playlist::with_session`, `Access::avh`), which is how such players stay in
/// session. Its attributes:
/// - `HttpOnly`: the page's script never reads it (the session is already in the URLs it uses),
///   so no script injected anywhere on the origin may either;
/// - `SameSite=Lax`, not `Strict`: a visitor following a link to the player page from another
///   site must present it, or their reload of an already-used private link is refused; every
///   delivery route is a read (GET), so the cross-site navigations Lax allows change nothing;
/// - `Path=/`: the player page and the media live under two different prefixes (`/embed/vod`,
///   `/vod`), and a cookie names one path;
/// - `Secure` when the public URL is https, so the session (a bearer credential for 24 h) is
///   never sent over plain http.
const SESSION_COOKIE: &str = "vidi_playback";

/// A video the caller may see (the whole row, or only its [`Visibility`] for the segment route),
/// with the playback session it was admitted under (private only).
pub(super) struct Access<V = Video> {
    pub(super) video: V,
    pub(super) session: Option<Session>,
}

pub(super) struct Session {
    pub(super) id: String,
    /// The browser did not present it as a cookie yet: the response sets one.
    set_cookie: bool,
    /// The public URL is https: the cookie is `Secure`.
    secure: bool,
}

impl<V> Access<V> {
    /// `?avh=<session>` for the URLs a private response hands out, so players that keep no
    /// cookies (native HLS stacks, embeds whose third-party cookies are blocked) stay in session.
    pub(super) fn avh(&self) -> String {
        self.session.as_ref().map(|s| format!("?avh={}", s.id)).unwrap_or_default()
    }

    pub(super) fn finish(&self, mut r: Response) -> Response {
        if let Some(s) = self.session.as_ref().filter(|s| s.set_cookie) {
            let secure = if s.secure { "; Secure" } else { "" };
            let cookie = format!("{SESSION_COOKIE}={}; Path=/; Max-Age=86400; HttpOnly; SameSite=Lax{secure}", s.id);
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        r
    }
}

/// The playback session a request presents: `?avh=` first (what our own URLs carry), then the
/// cookie.
fn presented_session(headers: &HeaderMap, query: &HashMap<String, String>) -> Option<(String, bool)> {
    let valid = |s: &str| !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if let Some(s) = query.get("avh").filter(|s| valid(s)) {
        return Some((s.clone(), false));
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, v)| *k == SESSION_COOKIE && valid(v))
        .map(|(_, v)| (v.to_string(), true))
}

/// The video named in the path, if the caller may see it: public, or private with its token.
/// A private token is single-use: the first request opens a playback session bound to it, and
/// later requests must present that session (cookie or `avh`). Checked on every request, so
/// switching a video to private takes effect at once.
pub(super) async fn video(
    state: &AppState,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> ApiResult<Access> {
    let id = path_id(params)?;
    let ticket = state.visibility.ticket();
    let v = state.repo.video_for_delivery(&id).await.map_err(|e| ApiError::from_core(e, "videoId"))?;
    // What was just read serves the next segment requests too.
    state
        .visibility
        .insert(ticket, Visibility { id: v.id.clone(), workspace_id: v.workspace_id.clone(), public: v.public });
    let session = admit(state, &v.workspace_id, &v.id, v.public, params, headers, query).await?;
    Ok(Access { video: v, session })
}

/// Like [`video`], for the requests a player repeats every second or two (segments and rendition
/// playlists), which need only whose the video is and whether it is public: answered from this
/// node's [`crate::visibility::VisibilityCache`] when it knows the video, so that a segment costs
/// no database read. A private video's token and session are still checked in the database on
/// every request.
pub(super) async fn visible(
    state: &AppState,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> ApiResult<Access<Visibility>> {
    let id = path_id(params)?;
    let v = match state.visibility.get(&id) {
        Some(v) => v,
        None => {
            let ticket = state.visibility.ticket();
            let v = state.repo.video_for_delivery(&id).await.map_err(|e| ApiError::from_core(e, "videoId"))?;
            let v = Visibility { id: v.id, workspace_id: v.workspace_id, public: v.public };
            state.visibility.insert(ticket, v.clone());
            v
        }
    };
    let session = admit(state, &v.workspace_id, &v.id, v.public, params, headers, query).await?;
    Ok(Access { video: v, session })
}

fn path_id(params: &HashMap<String, String>) -> ApiResult<VideoId> {
    let raw = params.get("videoId").map(String::as_str).unwrap_or("");
    VideoId::parse(raw).ok_or_else(|| ApiError::not_found("videoId"))
}

/// Whether the caller may see a video of `ws` that is `public` or not; the playback session it is
/// admitted under when the video is private.
async fn admit(
    state: &AppState,
    ws: &WorkspaceId,
    id: &VideoId,
    public: bool,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> ApiResult<Option<Session>> {
    if public {
        return Ok(None);
    }
    if let Some(t) = params.get("token") {
        let (session, had_cookie) = match presented_session(headers, query) {
            Some((s, cookie)) => (s, cookie),
            None => (uuid::Uuid::new_v4().simple().to_string(), false),
        };
        if state.repo.admit_private(ws, id, t, &session, vidi_core::time::now_ms(), SESSION_TTL_MS).await? {
            let secure = state.cfg.public_url.starts_with("https://");
            return Ok(Some(Session { id: session, set_cookie: !had_cookie, secure }));
        }
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "video-private-token-invalid",
        "This video is private: its media needs a valid private token, used in the playback session it opened.",
        "token",
    ))
}

/// `GET /vod/{id}/token/{token}/session`: opens (or continues) the playback session of a private
/// token and names it, for clients that add `?avh=` to their requests themselves (contract §6).
pub(super) async fn session(
    State(state): State<AppState>,
    Path(p): Params,
    q: QueryMap,
    h: HeaderMap,
) -> ApiResult<Response> {
    let a = video(&state, &p, &h, &q).await?;
    let token = a.session.as_ref().map(|s| s.id.clone()).unwrap_or_default();
    let body = serde_json::json!({ "session_token": token }).to_string();
    Ok(a.finish(respond(StatusCode::OK, "application/json", "no-store", body.into())))
}
