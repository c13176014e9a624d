//! Live HLS (contract §7): the multivariant playlist at `/live/{liveStreamId}.m3u8` (private:
//! `/live/{liveStreamId}/token/{token}.m3u8`), and beside it, under `/live/{liveStreamId}/`
//! (private: `…/token/{token}/`), the media playlist `index.m3u8` with low-latency HLS's blocking
//! reloads, and the broadcast's init segments, parts and segments.
//!
//! All of it is answered from the memory of the node that holds the broadcast (`AppState::live`,
//! crate `vidi-live`): a live playlist changes several times a second, and a blocking reload asks
//! for a version that does not exist yet. Playlists are never cached by intermediaries; files are
//! immutable once listed (names carry the media sequence number, which a reconnect continues).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use vidi_core::id::{LiveStreamId, MediaId};
use vidi_core::live::LiveRefusal;

use super::access::{Access, visible};
use super::{Params, QueryMap, respond};
use crate::visibility::Visibility;
use crate::{ApiError, ApiResult, AppState};

const M3U8: &str = "application/vnd.apple.mpegurl";
/// A live playlist is out of date within a part's duration: no shared cache may keep it.
const PLAYLIST_CACHE: &str = "no-cache, no-store";

/// `GET /live/{liveStreamId}.m3u8` and `GET /live/{liveStreamId}/token/{token}.m3u8`.
pub(super) async fn master(
    State(state): State<AppState>,
    Path(mut params): Params,
    Query(query): QueryMap,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // The id (or the token) is the path segment's name without `.m3u8`: rename the parameter to
    // what the access check reads.
    let (key, file) = if params.contains_key("liveStreamId") { ("token", "file") } else { ("liveStreamId", "file") };
    let stem = params
        .remove(file)
        .and_then(|f| f.strip_suffix(".m3u8").map(str::to_string))
        .ok_or_else(|| ApiError::not_found("liveStreamId"))?;
    params.insert(key.to_string(), stem.clone());
    let a = visible(&state, &params, &headers, &query).await?;
    let id = live_id(&a)?;
    // Relative to the master's URL: `{id}/index.m3u8` public, `{token}/index.m3u8` private (and
    // a rung's playlist beside it).
    let dir = if key == "token" { stem } else { id.to_string() };
    let avh = a.avh();
    let body = state.live.master(id, &|name| format!("{dir}/{name}{avh}")).ok_or_else(not_live)?;
    Ok(a.finish(respond(StatusCode::OK, M3U8, cache(&a, PLAYLIST_CACHE).as_str(), Body::from(body))))
}

/// `GET /live/{liveStreamId}/{file}` and `GET /live/{liveStreamId}/token/{token}/{file}`: the
/// media playlist (`index.m3u8`) or one of its files.
pub(super) async fn file(
    State(state): State<AppState>,
    a: Access<Visibility>,
    Path(params): Params,
    Query(query): QueryMap,
) -> ApiResult<Response> {
    let id = live_id(&a)?;
    let name = params.get("file").map(String::as_str).unwrap_or("");
    let content_type = match kind(name) {
        Some(FileKind::Playlist) => return media_playlist(&state, &a, id, name, &query).await,
        Some(FileKind::Init) => "video/mp4",
        Some(FileKind::Media) => "video/iso.segment",
        None => return Err(ApiError::not_found("file")),
    };
    let body = state.live.file(id, name).await.ok_or_else(|| ApiError::not_found("file"))?;
    // Immutable: a name is never given to other bytes.
    let c = cache(&a, "max-age=31536000, immutable");
    Ok(a.finish(respond(StatusCode::OK, content_type, &c, Body::from(body))))
}

async fn media_playlist(
    state: &AppState,
    a: &Access<Visibility>,
    id: &LiveStreamId,
    playlist: &str,
    query: &HashMap<String, String>,
) -> ApiResult<Response> {
    let number = |k: &str| -> ApiResult<Option<u64>> {
        query
            .get(k)
            .map(|v| v.parse::<u64>().map_err(|_| bad_directive(format!("{k} must be a whole number."))))
            .transpose()
    };
    let msn = number("_HLS_msn")?;
    let part = number("_HLS_part")?
        .map(|p| u32::try_from(p).map_err(|_| bad_directive("_HLS_part is too large.".into())))
        .transpose()?;
    let text = match state.live.media(id, playlist, msn, part).await {
        Ok(t) => t,
        Err(LiveRefusal::NotHere) => return Err(not_live()),
        Err(LiveRefusal::BadRequest(why)) => return Err(bad_directive(why.to_string())),
        Err(LiveRefusal::Timeout) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "live-playlist-timeout",
                "The requested part did not appear in time.",
                "_HLS_msn",
            ));
        }
    };
    // A private playlist's URIs carry the playback session, for players that keep no cookie.
    let text = match &a.session {
        Some(s) => with_session(&text, &format!("avh={}", s.id)),
        None => text,
    };
    Ok(a.finish(respond(StatusCode::OK, M3U8, &cache(a, PLAYLIST_CACHE), Body::from(text))))
}

enum FileKind {
    Playlist,
    Init,
    Media,
}

/// The names a broadcast gives its files (`vidi_live::playlist`): the media playlist
/// `index.m3u8`, `init{n}.mp4`, `{msn}.m4s`, `{msn}.{part}.m4s`; with the optional ladder, a
/// rung's playlist `{height}p.m3u8` and its files under the same names after `{height}p-`.
/// Anything else is not asked of the broadcast at all.
fn kind(name: &str) -> Option<FileKind> {
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    let rung = |s: &str| s.strip_suffix('p').is_some_and(|h| digits(h) && h.len() <= 5);
    if name == "index.m3u8" || name.strip_suffix(".m3u8").is_some_and(rung) {
        return Some(FileKind::Playlist);
    }
    let name = match name.split_once('-') {
        Some((r, rest)) if rung(r) => rest,
        Some(_) => return None,
        None => name,
    };
    if let Some(n) = name.strip_prefix("init").and_then(|r| r.strip_suffix(".mp4")) {
        return digits(n).then_some(FileKind::Init);
    }
    let stem = name.strip_suffix(".m4s")?;
    let ok = match stem.split_once('.') {
        Some((msn, part)) => digits(msn) && digits(part),
        None => digits(stem),
    };
    ok.then_some(FileKind::Media)
}

/// Appends `q` to every URI of a playlist: the lines that are not tags, and `URI="…"` attributes
/// (`EXT-X-MAP`, `EXT-X-PART`, `EXT-X-PRELOAD-HINT`).
pub(super) fn with_session(text: &str, q: &str) -> String {
    let add = |uri: &str| if uri.contains('?') { format!("{uri}&{q}") } else { format!("{uri}?{q}") };
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        if line.is_empty() {
        } else if !line.starts_with('#') {
            out.push_str(&add(line));
        } else if let Some(start) = line.find("URI=\"") {
            let from = start + 5;
            match line[from..].find('"') {
                Some(len) => {
                    out.push_str(&line[..from]);
                    out.push_str(&add(&line[from..from + len]));
                    out.push_str(&line[from + len..]);
                }
                None => out.push_str(line),
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn live_id(a: &Access<Visibility>) -> ApiResult<&LiveStreamId> {
    match &a.video.id {
        MediaId::LiveStream(id) => Ok(id),
        MediaId::Video(_) => Err(ApiError::not_found("liveStreamId")),
    }
}

/// A private subject's responses stay out of shared caches.
fn cache(a: &Access<Visibility>, public: &str) -> String {
    if a.session.is_some() { format!("private, {public}") } else { format!("public, {public}") }
}

fn not_live() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "live-stream-not-broadcasting",
        "This live stream is not broadcasting.",
        "liveStreamId",
    )
}

fn bad_directive(detail: String) -> ApiError {
    ApiError::invalid_query("_HLS_msn", detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_the_broadcasts_own_and_nothing_else() {
        for ok in [
            "init0.mp4",
            "12.m4s",
            "12.3.m4s",
            "index.m3u8",
            "240p.m3u8",
            "240p-init0.mp4",
            "480p-12.m4s",
            "480p-12.3.m4s",
        ] {
            assert!(kind(ok).is_some(), "{ok}");
        }
        for bad in [
            "init.mp4",
            "../0.m4s",
            "1.2.3.m4s",
            "a.m4s",
            "12.m4s.m4s",
            "init0.mp4x",
            ".m4s",
            "x.m3u8",
            "p.m3u8",
            "240.m3u8",
            "240p-index.m3u8",
            "240p-240p-1.m4s",
            "a-1.m4s",
            "240p-",
        ] {
            assert!(kind(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_session_reaches_every_uri_of_a_low_latency_playlist() {
        let text = "#EXTM3U\n#EXT-X-MAP:URI=\"init0.mp4\"\n#EXT-X-PART:DURATION=0.333,URI=\"4.0.m4s\",INDEPENDENT=YES\n#EXTINF:2.000,\n3.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"4.1.m4s\"\n";
        assert_eq!(
            with_session(text, "avh=s1"),
            "#EXTM3U\n#EXT-X-MAP:URI=\"init0.mp4?avh=s1\"\n#EXT-X-PART:DURATION=0.333,URI=\"4.0.m4s?avh=s1\",INDEPENDENT=YES\n#EXTINF:2.000,\n3.m4s?avh=s1\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"4.1.m4s?avh=s1\"\n"
        );
    }
}
