//! HLS: the master playlist, the rendition playlists (served in a private session with the
//! session in every URI) and the segments (from the memory cache when they are there).

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use vidi_core::keys::{master_key, rendition_key};

use vidi_media::playlist::{self, MasterParts};

use super::access::{video, visible};
use super::ranges::{partial, ranged, requested_range, unsatisfiable};
use super::tracks;
use super::{GROWING, IMMUTABLE, Params, QueryMap, SHORT, read_small, respond};
use crate::{ApiError, ApiResult, AppState};

const M3U8: &str = "application/vnd.apple.mpegurl";

/// The master playlist, built from the renditions the encode stored; 202 with an empty body while
/// the video exists but is not playable yet (the browser uploader polls for exactly that).
pub(super) async fn master(
    State(state): State<AppState>,
    Path(p): Params,
    q: QueryMap,
    h: HeaderMap,
) -> ApiResult<Response> {
    let a = video(&state, &p, &h, &q).await?;
    let v = &a.video;
    if !v.encoding.playable {
        // A source that failed will never play: 404, so uploaders polling for 202 stop.
        if v.failed() {
            return Err(ApiError::not_found("videoId"));
        }
        return Ok(a.finish(respond(StatusCode::ACCEPTED, M3U8, GROWING, Body::empty())));
    }
    let renditions = state.repo.renditions(&v.workspace_id, &v.id).await?;
    let body = if renditions.is_empty() {
        // Encoded before masters were built from state: its master was stored as a file.
        let stored =
            read_small(&state, &master_key(v.id.as_str())).await?.ok_or_else(|| ApiError::not_found("videoId"))?;
        playlist::with_session(stored, &a.avh())
    } else {
        // Groups join here from their own tables (docs/architecture.md): captions as subtitles.
        let avh = a.avh();
        let subtitles = tracks::subtitle_tracks(&state, v).await?;
        playlist::master(MasterParts { renditions: &renditions, subtitles: &subtitles, uri_suffix: &avh }).into_bytes()
    };
    Ok(a.finish(respond(StatusCode::OK, M3U8, SHORT, body.into())))
}

pub(super) async fn hls_file(
    State(state): State<AppState>,
    Path(p): Params,
    q: QueryMap,
    h: HeaderMap,
) -> ApiResult<Response> {
    let (quality, file) = (p.get("quality").cloned().unwrap_or_default(), p.get("file").cloned().unwrap_or_default());
    if quality == tracks::HLS_FOLDER {
        // Subtitles need the video's row (its duration, its tracks): not the segments' hot path.
        let a = video(&state, &p, &h, &q).await?;
        return tracks::hls_captions(&state, &a, &file).await;
    }
    let a = visible(&state, &p, &h, &q).await?;
    let v = &a.video;
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
        let cache = if playlist::is_ended(&body) { SHORT } else { GROWING };
        let body = playlist::with_session(body, &a.avh());
        return Ok(a.finish(respond(StatusCode::OK, M3U8, cache, body.into())));
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
