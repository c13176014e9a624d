//! Byte ranges (a single `bytes=` range, 200/206/416), and the files served with them: the MP4
//! and the thumbnail.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use vidi_core::id::MediaId;
use vidi_core::keys::mp4_key;

use super::access::Access;
use super::{SHORT, respond};
use crate::visibility::Visibility;
use crate::{ApiError, ApiResult, AppState};

pub(super) async fn mp4(State(state): State<AppState>, a: Access, h: HeaderMap) -> ApiResult<Response> {
    // Turned off, or being made after it was turned on: not served (nor listed).
    if !a.video.mp4_support || a.video.encoding.mp4_pending {
        return Err(ApiError::not_found("videoId"));
    }
    Ok(a.finish(ranged(&state, &mp4_key(a.video.id.as_str()), "video/mp4", SHORT, &h).await?))
}

pub(super) async fn thumbnail(State(state): State<AppState>, a: Access, h: HeaderMap) -> ApiResult<Response> {
    let key = a.video.encoding.thumbnail_key.clone().ok_or_else(|| ApiError::not_found("videoId"))?;
    Ok(a.finish(ranged(&state, &key, "image/jpeg", SHORT, &h).await?))
}

/// A live stream's uploaded thumbnail (`/live/{liveStreamId}/thumbnail.jpg`); 404 when none.
pub(super) async fn live_thumbnail(
    State(state): State<AppState>,
    a: Access<Visibility>,
    h: HeaderMap,
) -> ApiResult<Response> {
    let MediaId::LiveStream(id) = &a.video.id else { return Err(ApiError::not_found("liveStreamId")) };
    let l = state.repo.live_stream_for_delivery(id).await.map_err(|e| ApiError::from_core(e, "liveStreamId"))?;
    // The uploaded one, else the one the broadcast refreshes while it runs (the last one stays),
    // more often while it is asked for.
    let key = l.thumbnail_key.unwrap_or_else(|| {
        state.live.thumbnail_asked(id);
        vidi_core::keys::live_auto_thumbnail_key(id.as_str())
    });
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
pub(super) fn requested_range(headers: &HeaderMap, size: u64) -> Result<Option<(u64, u64)>, ()> {
    match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => Ok(None),
        Some(h) => parse_range(h, size),
    }
}

/// The 416 answer for an object of `size` bytes.
pub(super) fn unsatisfiable(size: u64) -> Response {
    let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
    r.headers_mut().insert(header::CONTENT_RANGE, HeaderValue::from_str(&format!("bytes */{size}")).expect("ascii"));
    r
}

/// The 200 or 206 answer for `body`, the requested part of an object of `size` bytes.
pub(super) fn partial(ct: &str, cache: &str, body: Body, range: Option<(u64, u64)>, size: u64) -> Response {
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
pub(super) async fn ranged(
    state: &AppState,
    key: &str,
    ct: &str,
    cache: &str,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let size = state.blobs.size(key).await?.ok_or_else(|| ApiError::not_found("file"))?;
    let Ok(range) = requested_range(headers, size) else {
        return Ok(unsatisfiable(size));
    };
    let stream = state.blobs.get(key, range).await?;
    Ok(partial(ct, cache, Body::from_stream(stream), range, size))
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
