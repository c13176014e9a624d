//! HLS: the master playlist, the rendition playlists (served in a private session with the
//! session in every URI) and the segments (from the memory cache when they are there).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use vidi_core::keys::{master_key, rendition_key};

use super::access::{video, with_session};
use super::ranges::{partial, ranged, requested_range, unsatisfiable};
use super::{GROWING, IMMUTABLE, Params, QueryMap, SHORT, read_small, respond};
use crate::{ApiError, ApiResult, AppState};

/// The master playlist; 202 with an empty body while the video exists but is not playable yet
/// (the browser uploader polls for exactly that).
pub(super) async fn master(
    State(state): State<AppState>,
    Path(p): Params,
    q: QueryMap,
    h: HeaderMap,
) -> ApiResult<Response> {
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

pub(super) async fn hls_file(
    State(state): State<AppState>,
    Path(p): Params,
    q: QueryMap,
    h: HeaderMap,
) -> ApiResult<Response> {
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
