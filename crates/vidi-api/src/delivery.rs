//! The delivery side (api.video's `vod.` and `embed.` hosts): HLS playlists and segments, the MP4
//! with byte ranges, the thumbnail, and an embeddable player page that plays with hls.js served
//! from this binary (no CDN). These routes take no API credentials, like api.video's.

use axum::Router;
use axum::body::Body;
use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use vidi_core::id::VideoId;
use vidi_core::keys::{master_key, mp4_key, rendition_key};
use vidi_core::model::Video;

use crate::{ApiError, ApiResult, AppState};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const SHORT: &str = "public, max-age=60";
const GROWING: &str = "no-cache";
const HLS_JS: &[u8] = include_bytes!("../assets/hls.min.js");

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/vod/{videoId}/hls/manifest.m3u8", get(master))
        .route("/vod/{videoId}/hls/{quality}/{file}", get(hls_file))
        .route("/vod/{videoId}/mp4/source.mp4", get(mp4))
        .route("/vod/{videoId}/thumbnail.jpg", get(thumbnail))
        // Private videos: the same files under a private token (contract §6).
        .route("/vod/{videoId}/token/{token}/hls/manifest.m3u8", get(master))
        .route("/vod/{videoId}/token/{token}/hls/{quality}/{file}", get(hls_file))
        .route("/vod/{videoId}/token/{token}/mp4/source.mp4", get(mp4))
        .route("/vod/{videoId}/token/{token}/thumbnail.jpg", get(thumbnail))
        .route("/vod/{videoId}/token/{token}/session", get(session))
        .route("/embed/vod/{videoId}", get(player))
        .route("/assets/hls.min.js", get(hls_js))
}

type Params = Path<HashMap<String, String>>;
type QueryMap = Query<HashMap<String, String>>;

/// How long a playback session opened with a private token lasts (contract §6).
const SESSION_TTL_MS: i64 = 24 * 3600 * 1000;
/// The cookie that carries a browser's playback session between requests.
///
/// Only the same-origin player page (`/embed/vod/…`, whose hls.js loads `/vod/…` from the same
/// host) needs it, to be let in again on a reload of the same private link. A player on another
/// origin never gets it, by design: CORS here is `*` without credentials, so browsers send no
/// cookies cross-origin, and every URI our private playlists and player page hand out carries the
/// session as `?avh=` instead (`with_session`, `Access::avh`), which is how such players stay in
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

/// A video the caller may see, with the playback session it was admitted under (private only).
struct Access {
    video: Video,
    session: Option<Session>,
}

struct Session {
    id: String,
    /// The browser did not present it as a cookie yet: the response sets one.
    set_cookie: bool,
    /// The public URL is https: the cookie is `Secure`.
    secure: bool,
}

impl Access {
    /// `?avh=<session>` for the URLs a private response hands out, so players that keep no
    /// cookies (native HLS stacks, embeds whose third-party cookies are blocked) stay in session.
    fn avh(&self) -> String {
        self.session.as_ref().map(|s| format!("?avh={}", s.id)).unwrap_or_default()
    }

    fn finish(&self, mut r: Response) -> Response {
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
async fn video(
    state: &AppState,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> ApiResult<Access> {
    let raw = params.get("videoId").map(String::as_str).unwrap_or("");
    let id = VideoId::parse(raw).ok_or_else(|| ApiError::not_found("videoId"))?;
    let v = state.repo.video_for_delivery(&id).await.map_err(|e| ApiError::from_core(e, "videoId"))?;
    if v.public {
        return Ok(Access { video: v, session: None });
    }
    if let Some(t) = params.get("token") {
        let (session, had_cookie) = match presented_session(headers, query) {
            Some((s, cookie)) => (s, cookie),
            None => (uuid::Uuid::new_v4().simple().to_string(), false),
        };
        if state
            .repo
            .admit_private(&v.workspace_id, &v.id, t, &session, vidi_core::time::now_ms(), SESSION_TTL_MS)
            .await?
        {
            let secure = state.cfg.public_url.starts_with("https://");
            return Ok(Access { video: v, session: Some(Session { id: session, set_cookie: !had_cookie, secure }) });
        }
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "video-private-token-invalid",
        "This video is private: its media needs a valid private token, used in the playback session it opened.",
        "token",
    ))
}

/// Appends `?avh=…` to every URI line of a playlist served in a private session.
fn with_session(playlist: Vec<u8>, avh: &str) -> Vec<u8> {
    if avh.is_empty() {
        return playlist;
    }
    let text = String::from_utf8_lossy(&playlist);
    let mut out = String::with_capacity(text.len() + 64 * text.lines().count());
    for line in text.lines() {
        out.push_str(line);
        if !line.is_empty() && !line.starts_with('#') && !line.contains('?') {
            out.push_str(avh);
        }
        out.push('\n');
    }
    out.into_bytes()
}

fn respond(status: StatusCode, content_type: &str, cache: &str, body: Body) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).expect("static"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_str(cache).expect("static"));
    r
}

/// Reads a small object whole (playlists).
async fn read_small(state: &AppState, key: &str) -> ApiResult<Option<Vec<u8>>> {
    let mut s = match state.blobs.get(key, None).await {
        Ok(s) => s,
        Err(vidi_core::CoreError::NotFound) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    while let Some(piece) = s.next().await {
        out.extend_from_slice(&piece.map_err(|e| ApiError::from(vidi_core::CoreError::Storage(e.to_string())))?);
    }
    Ok(Some(out))
}

/// The master playlist; 202 with an empty body while the video exists but is not playable yet
/// (the browser uploader polls for exactly that).
async fn master(State(state): State<AppState>, Path(p): Params, q: QueryMap, h: HeaderMap) -> ApiResult<Response> {
    let a = video(&state, &p, &h, &q).await?;
    let r = match read_small(&state, &master_key(a.video.id.as_str())).await? {
        Some(body) => {
            respond(StatusCode::OK, "application/vnd.apple.mpegurl", SHORT, with_session(body, &a.avh()).into())
        }
        // A source that failed will never play: 404, so uploaders polling for 202 stop.
        None if a.video.failed() => return Err(ApiError::not_found("videoId")),
        None => respond(StatusCode::ACCEPTED, "application/vnd.apple.mpegurl", GROWING, Body::empty()),
    };
    Ok(a.finish(r))
}

/// `GET /vod/{id}/token/{token}/session`: opens (or continues) the playback session of a private
/// token and names it, for clients that add `?avh=` to their requests themselves (contract §6).
async fn session(State(state): State<AppState>, Path(p): Params, q: QueryMap, h: HeaderMap) -> ApiResult<Response> {
    let a = video(&state, &p, &h, &q).await?;
    let token = a.session.as_ref().map(|s| s.id.clone()).unwrap_or_default();
    let body = serde_json::json!({ "session_token": token }).to_string();
    Ok(a.finish(respond(StatusCode::OK, "application/json", "no-store", body.into())))
}

async fn hls_file(State(state): State<AppState>, Path(p): Params, q: QueryMap, h: HeaderMap) -> ApiResult<Response> {
    let a = video(&state, &p, &h, &q).await?;
    let v = &a.video;
    let (quality, file) = (p.get("quality").cloned().unwrap_or_default(), p.get("file").cloned().unwrap_or_default());
    let safe = |s: &str| {
        // Short, plain names only: anything else names no file Vidi writes (and a segment over
        // 255 bytes would otherwise reach the file system as an error).
        !s.is_empty()
            && s.len() <= 64
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
            && !s.starts_with('.')
    };
    if !safe(&quality) || !safe(&file) {
        return Err(ApiError::not_found("file"));
    }
    let key = rendition_key(v.id.as_str(), &quality, &file);
    if file.ends_with(".m3u8") {
        let body = read_small(&state, &key).await?.ok_or_else(|| ApiError::not_found("file"))?;
        // A playlist still growing must not be cached; a finished one may be.
        let cache = if body.windows(14).any(|w| w == b"#EXT-X-ENDLIST") { SHORT } else { GROWING };
        let body = with_session(body, &a.avh());
        return Ok(a.finish(respond(StatusCode::OK, "application/vnd.apple.mpegurl", cache, body.into())));
    }
    let ct = if file.ends_with(".ts") {
        "video/mp2t"
    } else if file.ends_with(".m4s") || file.ends_with(".mp4") {
        "video/mp4"
    } else {
        "application/octet-stream"
    };
    Ok(a.finish(segment(&state, &key, ct, &h).await?))
}

async fn mp4(State(state): State<AppState>, Path(p): Params, q: QueryMap, h: HeaderMap) -> ApiResult<Response> {
    let a = video(&state, &p, &h, &q).await?;
    if !a.video.mp4_support {
        return Err(ApiError::not_found("videoId"));
    }
    Ok(a.finish(ranged(&state, &mp4_key(a.video.id.as_str()), "video/mp4", SHORT, &h).await?))
}

async fn thumbnail(State(state): State<AppState>, Path(p): Params, q: QueryMap, h: HeaderMap) -> ApiResult<Response> {
    let a = video(&state, &p, &h, &q).await?;
    let key = a.video.encoding.thumbnail_key.clone().ok_or_else(|| ApiError::not_found("videoId"))?;
    Ok(a.finish(ranged(&state, &key, "image/jpeg", SHORT, &h).await?))
}

/// Parses a single `bytes=` range against `size`: `Ok(None)` for the whole object, `Err` when it
/// cannot be satisfied.
fn parse_range(h: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let spec = h.trim().strip_prefix("bytes=").ok_or(())?;
    if spec.contains(',') {
        return Ok(None); // multiple ranges: answer with the whole object, which is allowed
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (from, to) = match (a.is_empty(), b.is_empty()) {
        (true, false) => {
            let n: u64 = b.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (size.saturating_sub(n), size.saturating_sub(1))
        }
        (false, _) => {
            let from: u64 = a.parse().map_err(|_| ())?;
            let to: u64 = if b.is_empty() {
                size.saturating_sub(1)
            } else {
                b.parse::<u64>().map_err(|_| ())?.min(size.saturating_sub(1))
            };
            (from, to)
        }
        _ => return Err(()),
    };
    if size == 0 || from >= size || from > to {
        return Err(());
    }
    Ok(Some((from, to)))
}

/// The range a request asks of an object of `size` bytes; `Err` when it cannot be satisfied.
fn requested_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => Ok(None),
        Some(h) => parse_range(h, size),
    }
}

/// The 416 answer for an object of `size` bytes.
fn unsatisfiable(size: u64) -> Response {
    let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
    r.headers_mut().insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"));
    r
}

/// The 200 or 206 answer for `body`, the requested part of an object of `size` bytes.
fn partial(ct: &str, cache: &str, body: Body, range: Option<(u64, u64)>, size: u64) -> Response {
    let (status, len) = match range {
        Some((f, t)) => (StatusCode::PARTIAL_CONTENT, t - f + 1),
        None => (StatusCode::OK, size),
    };
    let mut r = respond(status, ct, cache, body);
    let h = r.headers_mut();
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Some((f, t)) = range {
        h.insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes {f}-{t}/{size}")).expect("ascii"));
    }
    r
}

/// Streams an object with byte-range support (200, 206 or 416).
async fn ranged(state: &AppState, key: &str, ct: &str, cache: &str, headers: &HeaderMap) -> ApiResult<Response> {
    let size = state.blobs.size(key).await?.ok_or_else(|| ApiError::not_found("file"))?;
    let Ok(range) = requested_range(headers, size) else {
        return Ok(unsatisfiable(size));
    };
    let stream = state.blobs.get(key, range).await?;
    Ok(partial(ct, cache, Body::from_stream(stream), range, size))
}

/// A segment, from the memory cache when it is there (segments never change once published).
async fn segment(state: &AppState, key: &str, ct: &str, headers: &HeaderMap) -> ApiResult<Response> {
    if !state.segments.enabled() {
        return ranged(state, key, ct, IMMUTABLE, headers).await;
    }
    // Segments are small: one GET (no size query first, which on S3 is a second round trip); the
    // cache itself refuses anything over its entry limit.
    let bytes = state
        .segments
        .get_or_load(key, || async { Ok::<_, ApiError>(read_small(state, key).await?.map(bytes::Bytes::from)) })
        .await?
        .ok_or_else(|| ApiError::not_found("file"))?;
    let size = bytes.len() as u64;
    let Ok(range) = requested_range(headers, size) else {
        return Ok(unsatisfiable(size));
    };
    let body = match range {
        Some((f, t)) => bytes.slice(f as usize..=t as usize),
        None => bytes,
    };
    Ok(partial(ct, IMMUTABLE, body.into(), range, size))
}

async fn hls_js() -> Response {
    respond(StatusCode::OK, "text/javascript", IMMUTABLE, HLS_JS.into())
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The embeddable player: a full-window video element, hls.js where the browser has no native
/// HLS, starting from the beginning even while the playlist is still growing.
async fn player(State(state): State<AppState>, Path(mut p): Params, q: QueryMap, h: HeaderMap) -> ApiResult<Response> {
    if let Some(t) = q.get("token") {
        p.insert("token".into(), t.clone());
    }
    // Opening the player uses the private token: the page's media requests carry the session.
    let a = video(&state, &p, &h, &q).await?;
    let v = &a.video;
    let base = match p.get("token") {
        Some(t) if !v.public => format!("/vod/{}/token/{}", v.id, escape(t)),
        _ => format!("/vod/{}", v.id),
    };
    let avh = a.avh();
    let hls = format!("{base}/hls/manifest.m3u8{avh}");
    let poster = if v.encoding.thumbnail_key.is_some() {
        format!(" poster=\"{base}/thumbnail.jpg{avh}\"")
    } else {
        String::new()
    };
    let page = Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{title}</title><link rel="icon" href="data:,">
<style>html,body{{margin:0;height:100%;background:#000}}video{{width:100%;height:100%;display:block}}</style>
</head><body>
<video id="v" controls playsinline muted autoplay{poster}></video>
<script src="/assets/hls.min.js"></script>
<script>
const video = document.getElementById("v");
const src = "{hls}";
function fail(text) {{
  document.body.insertAdjacentHTML("beforeend", '<p style="color:#fff;font:16px sans-serif;position:absolute;top:40%;width:100%;text-align:center">' + text + "</p>");
}}
function start() {{
  if (window.Hls && Hls.isSupported()) {{
    const hls = new Hls({{ startPosition: 0 }});
    let retries = 0;
    hls.on(Hls.Events.FRAG_LOADED, () => {{ retries = 0; }});
    // Recover in place (never back to the start), a bounded number of times.
    hls.on(Hls.Events.ERROR, (_, d) => {{
      if (!d.fatal) return;
      if (++retries > 10) {{ hls.destroy(); return fail("This video cannot be played right now."); }}
      if (d.type === Hls.ErrorTypes.MEDIA_ERROR) hls.recoverMediaError();
      else setTimeout(() => hls.startLoad(video.currentTime || -1), 1000 * retries);
    }});
    hls.loadSource(src);
    hls.attachMedia(video);
  }} else if (video.canPlayType("application/vnd.apple.mpegurl")) {{
    video.src = src;
  }}
}}
// Until the first rendition exists the manifest answers 202: wait for it, and only for that.
(async function wait(attempt) {{
  const r = await fetch(src).catch(() => null);
  if (r && r.status === 200) return start();
  if (r && r.status !== 202) return fail(r.status === 403 ? "This video is private." : "This video is not available.");
  setTimeout(() => wait(attempt + 1), Math.min(500 * (attempt + 1), 3000));
}})(0);
</script>
</body></html>
"#,
        title = escape(&v.title),
    ));
    let mut r = page.into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(a.finish(r))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=5-1", 100), Err(()));
        assert_eq!(parse_range("items=1-2", 100), Err(()));
    }
}
