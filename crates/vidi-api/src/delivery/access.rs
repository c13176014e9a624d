//! Who may see a video or a live stream (a [`MediaId`]): anyone when it is public; with a
//! private token otherwise, which opens a playback session that later requests must present
//! (contract §6; live streams follow the same pattern, contract §7).
//!
//! A delivery handler takes an [`Access`] as an extractor: the subject named by the path
//! (`videoId` or `liveStreamId`), looked up (the whole row, or only its [`Visibility`] for the
//! routes a player repeats every second), and admitted, with the session it was admitted under.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use vidi_core::id::{LiveStreamId, MediaId, VideoId, WorkspaceId};
use vidi_core::model::Video;

use super::respond;
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

/// A video or live stream the caller may see (for a video, the whole row, or only its
/// [`Visibility`] for the segment route), with the playback session it was admitted under
/// (private only).
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

    /// What every delivery response of a subject goes out through: a private one's caching is
    /// made `private` (below), and a new session is set as a cookie.
    pub(super) fn finish(&self, mut r: Response) -> Response {
        if self.session.is_some()
            && let Some(cache) = r.headers().get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok())
            && let Ok(v) = HeaderValue::from_str(&private_cache(cache))
        {
            r.headers_mut().insert(header::CACHE_CONTROL, v);
        }
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

/// The `Cache-Control` of a private subject's response: what its public twin says, but for the
/// viewer's own cache only. A shared cache (a CDN, a corporate proxy) must never keep it: the
/// answer was admitted by a single-use token and a session (a shared copy would let anyone holding
/// the URL in without either), and its playlists carry the viewer's session in every URI. The
/// lifetime stays (a segment never changes, so `immutable` stays true in the browser's own
/// cache); `no-store` stays as it is.
pub(super) fn private_cache(cache: &str) -> String {
    if cache.split(',').any(|d| d.trim() == "no-store") {
        return cache.to_string();
    }
    let rest = cache.split(',').map(str::trim).filter(|d| !d.is_empty() && *d != "public" && *d != "private");
    std::iter::once("private").chain(rest).collect::<Vec<_>>().join(", ")
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
    let MediaId::Video(id) = media_id(params)? else {
        return Err(ApiError::not_found("videoId"));
    };
    let ticket = state.visibility.ticket();
    let v = state.repo.video_for_delivery(&id).await.map_err(|e| ApiError::from_core(e, "videoId"))?;
    let seen = Visibility { id: MediaId::Video(v.id.clone()), workspace_id: v.workspace_id.clone(), public: v.public };
    // What was just read serves the next segment requests too.
    state.visibility.insert(ticket, seen.clone());
    let session = admit(state, &seen, params, headers, query).await?;
    Ok(Access { video: v, session })
}

/// Like [`video`], for any subject, for the requests a player repeats every second or two
/// (segments and rendition playlists), which need only whose the subject is and whether it is
/// public: answered from this node's [`crate::visibility::VisibilityCache`] when it knows it, so
/// that a segment costs no database read. A private subject's token and session are still
/// checked in the database on every request.
pub(super) async fn visible(
    state: &AppState,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> ApiResult<Access<Visibility>> {
    let id = media_id(params)?;
    let v = match state.visibility.get(&id) {
        Some(v) => v,
        None => {
            let ticket = state.visibility.ticket();
            let v = look_up(state, &id).await?;
            state.visibility.insert(ticket, v.clone());
            v
        }
    };
    let session = admit(state, &v, params, headers, query).await?;
    Ok(Access { video: v, session })
}

/// Whose a subject is and whether it is public, from the database.
async fn look_up(state: &AppState, id: &MediaId) -> ApiResult<Visibility> {
    match id {
        MediaId::Video(vid) => {
            let v = state.repo.video_for_delivery(vid).await.map_err(|e| ApiError::from_core(e, "videoId"))?;
            Ok(Visibility { id: id.clone(), workspace_id: v.workspace_id, public: v.public })
        }
        MediaId::LiveStream(lid) => {
            let l =
                state.repo.live_stream_for_delivery(lid).await.map_err(|e| ApiError::from_core(e, "liveStreamId"))?;
            Ok(Visibility { id: id.clone(), workspace_id: l.workspace_id, public: l.public })
        }
    }
}

/// The subject the path names: `videoId` or `liveStreamId`. A malformed id is a 404, as an
/// unknown one is.
fn media_id(params: &HashMap<String, String>) -> ApiResult<MediaId> {
    if let Some(raw) = params.get("liveStreamId") {
        return LiveStreamId::parse(raw).map(MediaId::LiveStream).ok_or_else(|| ApiError::not_found("liveStreamId"));
    }
    let raw = params.get("videoId").map(String::as_str).unwrap_or("");
    VideoId::parse(raw).map(MediaId::Video).ok_or_else(|| ApiError::not_found("videoId"))
}

/// The path parameters and the query of a delivery request, read once for the extractors.
async fn path_and_query(
    parts: &mut Parts,
    state: &AppState,
) -> ApiResult<(HashMap<String, String>, HashMap<String, String>)> {
    let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
        .await
        .map_err(|_| ApiError::not_found("videoId"))?;
    // A query that is not `k=v` pairs is treated as none: delivery URLs are pasted by hand.
    let query =
        Query::<HashMap<String, String>>::from_request_parts(parts, state).await.map(|q| q.0).unwrap_or_default();
    Ok((params, query))
}

/// A video's whole row, admitted: what the MP4, thumbnail, master, tracks and player need.
impl FromRequestParts<AppState> for Access<Video> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (params, query) = path_and_query(parts, state).await?;
        video(state, &params, &parts.headers, &query).await
    }
}

/// Any subject's visibility, admitted: what segments and rendition playlists need.
impl FromRequestParts<AppState> for Access<Visibility> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (params, query) = path_and_query(parts, state).await?;
        visible(state, &params, &parts.headers, &query).await
    }
}

/// Whether the caller may see `subject`; the playback session it is admitted under when the
/// subject is private.
async fn admit(
    state: &AppState,
    subject: &Visibility,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> ApiResult<Option<Session>> {
    if subject.public {
        return Ok(None);
    }
    if let Some(t) = params.get("token") {
        let (session, had_cookie) = match presented_session(headers, query) {
            Some((s, cookie)) => (s, cookie),
            None => (uuid::Uuid::new_v4().simple().to_string(), false),
        };
        if admit_private(state, &subject.workspace_id, &subject.id, t, &session).await? {
            let secure = state.cfg.public_url.starts_with("https://");
            return Ok(Some(Session { id: session, set_cookie: !had_cookie, secure }));
        }
    }
    let title = match subject.id {
        MediaId::Video(_) => {
            "This video is private: its media needs a valid private token, used in the playback session it opened."
        }
        MediaId::LiveStream(_) => {
            "This live stream is private: its media needs a valid private token, used in the playback session it opened."
        }
    };
    Err(ApiError::new(StatusCode::FORBIDDEN, "video-private-token-invalid", title, "token"))
}

/// Binds or checks a private token's playback session.
async fn admit_private(
    state: &AppState,
    ws: &WorkspaceId,
    id: &MediaId,
    token: &str,
    session: &str,
) -> ApiResult<bool> {
    match id {
        MediaId::Video(vid) => {
            Ok(state.repo.admit_private(ws, vid, token, session, vidi_core::time::now_ms(), SESSION_TTL_MS).await?)
        }
        // A table of their own (`LiveStreamRepo`), with the same single-use rule.
        MediaId::LiveStream(lid) => Ok(state
            .repo
            .admit_live_private(ws, lid, token, session, vidi_core::time::now_ms(), SESSION_TTL_MS)
            .await?),
    }
}

/// `GET /vod/{id}/token/{token}/session`: opens (or continues) the playback session of a private
/// token and names it, for clients that add `?avh=` to their requests themselves (contract §6).
pub(super) async fn session(a: Access) -> ApiResult<Response> {
    let token = a.session.as_ref().map(|s| s.id.clone()).unwrap_or_default();
    let body = serde_json::json!({ "session_token": token }).to_string();
    Ok(a.finish(respond(StatusCode::OK, "application/json", "no-store", body.into())))
}

#[cfg(test)]
mod tests {
    use super::private_cache;

    #[test]
    fn a_private_answer_keeps_its_lifetime_for_the_viewers_cache_only() {
        assert_eq!(private_cache("public, max-age=31536000, immutable"), "private, max-age=31536000, immutable");
        assert_eq!(private_cache("public, max-age=60"), "private, max-age=60");
        assert_eq!(private_cache("no-cache"), "private, no-cache");
        assert_eq!(private_cache("no-store"), "no-store");
        assert_eq!(private_cache("private, max-age=5"), "private, max-age=5");
    }
}
