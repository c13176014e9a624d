//! HLS: the master playlist, the rendition playlists (served in a private session with the
//! session in every URI) and the segments (by sendfile from a local store, else from the memory
//! cache when they are there).

use axum::body::Body;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use vidi_core::keys::{master_key, rendition_key};

use vidi_media::playlist::{self, MasterParts};

use super::access::{Access, video, visible};
use super::ranges::{partial, ranged, requested_range, unsatisfiable};
use super::tracks;
use super::{GROWING, IMMUTABLE, Params, QueryMap, SHORT, read_small, respond};
use crate::sendfile::{self, Job, PlaceholderBody, Slot};
use crate::{ApiError, ApiResult, AppState};

const M3U8: &str = "application/vnd.apple.mpegurl";

/// The master playlist, built from the renditions the encode stored; 202 with an empty body while
/// the video exists but is not playable yet (the browser uploader polls for exactly that).
pub(super) async fn master(State(state): State<AppState>, a: Access) -> ApiResult<Response> {
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
    method: Method,
    slot: Option<Extension<Slot>>,
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
    if file.ends_with(".m3u8")
        && let Some(current) = state.playlists.get(&v.id, &format!("{quality}/{file}"))
    {
        // Its producer runs here and answers from memory: it changes too often to be cached.
        let body = playlist::with_session(current.body.to_vec(), &a.avh());
        return Ok(a.finish(respond(StatusCode::OK, M3U8, GROWING, body.into())));
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
    // A HEAD answer has no body: nothing for sendfile to send (and hyper never polls the body).
    let slot = slot.filter(|_| method == Method::GET).map(|Extension(s)| s);
    Ok(a.finish(segment(&state, &key, ct, &h, slot.as_ref()).await?))
}

/// A segment: by sendfile when the connection can (`slot`) and the store is local, else from the
/// memory cache when it is there (segments never change once published).
async fn segment(
    state: &AppState,
    key: &str,
    ct: &str,
    headers: &HeaderMap,
    slot: Option<&Slot>,
) -> ApiResult<Response> {
    // A small segment already in memory is sent from there: no file to open (below the sendfile
    // threshold, an open and an fstat cost more than the copy they would save). A large one
    // cached by a HEAD or a TLS request still goes by sendfile where it can.
    let cached = state.segments.get(key);
    let small = cached.as_ref().is_some_and(|b| b.len() as u64 <= sendfile::THRESHOLD);
    if !small
        && let Some(slot) = slot
        && let Some(path) = state.blobs.local_path(key)
        && let Some(r) = by_sendfile(slot, &path, ct, headers)?
    {
        return Ok(r);
    }
    if !state.segments.enabled() {
        return ranged(state, key, ct, IMMUTABLE, headers).await;
    }
    // Segments are small: one GET (no size query first, which on S3 is a second round trip); the
    // cache itself refuses anything over its entry limit.
    let bytes = match cached {
        Some(b) => b,
        None => state
            .segments
            .get_or_load(key, || async { Ok::<_, ApiError>(read_small(state, key).await?.map(bytes::Bytes::from)) })
            .await?
            .ok_or_else(|| ApiError::not_found("file"))?,
    };
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

/// The answer to a GET of a segment in a local store, its body sent by sendfile from the file
/// (see `crate::sendfile`), or `None` when the body is small enough for the memory path.
///
/// For these segments this replaces the memory cache: the page cache already holds a hot
/// segment, and sending from it saves the copy that writing from our own memory costs (the
/// cache's bytes can only reach the socket by being copied into it). The cache stays for small
/// segments and for S3, where it saves a round trip.
///
/// The file is opened here, on the runtime's thread, as nginx does: opening and `fstat` of a file
/// whose directory entry is cached take microseconds, less than handing them to a blocking
/// thread would. The open file keeps its bytes even if the key is replaced meanwhile (a rename).
fn by_sendfile(slot: &Slot, path: &std::path::Path, ct: &str, headers: &HeaderMap) -> ApiResult<Option<Response>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ApiError::not_found("file")),
        Err(e) => return Err(vidi_core::CoreError::from(e).into()),
    };
    let size = file.metadata().map_err(vidi_core::CoreError::from)?.len();
    if size <= sendfile::THRESHOLD {
        return Ok(None);
    }
    let Ok(range) = requested_range(headers, size) else {
        return Ok(Some(unsatisfiable(size)));
    };
    let (offset, len) = match range {
        Some((f, t)) => (f, t - f + 1),
        None => (0, size),
    };
    if len <= sendfile::THRESHOLD {
        return Ok(None);
    }
    let body = Body::new(PlaceholderBody::new(slot.clone(), Job { file, offset, len }));
    Ok(Some(partial(ct, IMMUTABLE, body, range, size)))
}
