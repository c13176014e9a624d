//! The delivery side (api.video's `vod.` and `embed.` hosts): HLS playlists and segments, the MP4
//! with byte ranges, the thumbnail, and an embeddable player page (media-chrome controls over
//! hls.js, both served from this binary: no CDN). These routes take no API credentials, like
//! api.video's.
//!
//! - `access`: who may see a video (public, or a private token and its playback session);
//! - `ranges`: byte ranges, and the files served with them (MP4, thumbnail);
//! - `hls`: the master playlist, rendition playlists and segments;
//! - `live`: a broadcast's playlists (low-latency HLS) and files, from the ingest node's memory;
//! - `player`: the embeddable player page (its files are under `assets/player/`);
//! - `live_player`: the same page for a live stream (`assets/player/live.js`);
//! - `tracks`: caption and chapter files, the master's subtitle group, the player's tracks.

mod access;
mod hls;
mod live;
mod live_player;
mod player;
mod ranges;
mod tracks;

use axum::Router;
use axum::body::Body;
use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;

use crate::{ApiError, ApiResult, AppState};
use access::session;
use hls::{hls_file, master};
use player::{asset, hls_js, player};
use ranges::{live_thumbnail, mp4, thumbnail};
use tracks::{caption_file, chapter_file};

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const SHORT: &str = "public, max-age=60";
const GROWING: &str = "no-cache";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/vod/{videoId}/hls/manifest.m3u8", get(master))
        .route("/vod/{videoId}/hls/{quality}/{file}", get(hls_file))
        .route("/vod/{videoId}/mp4/source.mp4", get(mp4))
        .route("/vod/{videoId}/thumbnail.jpg", get(thumbnail))
        .route("/vod/{videoId}/captions/{file}", get(caption_file))
        .route("/vod/{videoId}/chapters/{file}", get(chapter_file))
        // Private videos: the same files under a private token (contract §6).
        .route("/vod/{videoId}/token/{token}/hls/manifest.m3u8", get(master))
        .route("/vod/{videoId}/token/{token}/hls/{quality}/{file}", get(hls_file))
        .route("/vod/{videoId}/token/{token}/mp4/source.mp4", get(mp4))
        .route("/vod/{videoId}/token/{token}/thumbnail.jpg", get(thumbnail))
        .route("/vod/{videoId}/token/{token}/captions/{file}", get(caption_file))
        .route("/vod/{videoId}/token/{token}/chapters/{file}", get(chapter_file))
        .route("/vod/{videoId}/token/{token}/session", get(session))
        // A live stream's uploaded thumbnail, public or under a private token (contract §7).
        .route("/live/{liveStreamId}/thumbnail.jpg", get(live_thumbnail))
        .route("/live/{liveStreamId}/token/{token}/thumbnail.jpg", get(live_thumbnail))
        // Live HLS (`live`): the multivariant playlist is `{id}.m3u8` (private `token/{t}.m3u8`),
        // its media playlist and files are in the folder of that name.
        .route("/live/{file}", get(live::master))
        .route("/live/{liveStreamId}/token/{file}", get(live::master))
        .route("/live/{liveStreamId}/{file}", get(live::file))
        .route("/live/{liveStreamId}/token/{token}/{file}", get(live::file))
        .route("/embed/vod/{videoId}", get(player))
        .route("/embed/live/{liveStreamId}", get(live_player::live_player))
        .route("/assets/hls.min.js", get(hls_js))
        .route("/assets/player/{file}", get(asset))
}

pub(super) type Params = Path<HashMap<String, String>>;
pub(super) type QueryMap = Query<HashMap<String, String>>;

pub(super) fn respond(status: StatusCode, content_type: &str, cache: &str, body: Body) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_str(content_type).expect("static"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_str(cache).expect("static"));
    r
}

/// Reads a small object whole (playlists).
pub(super) async fn read_small(state: &AppState, key: &str) -> ApiResult<Option<Vec<u8>>> {
    read_range(state, key, None).await
}

/// [`read_small`] of the inclusive byte range `range` only (a store clamps it to the object).
pub(super) async fn read_range(state: &AppState, key: &str, range: Option<(u64, u64)>) -> ApiResult<Option<Vec<u8>>> {
    let mut s = match state.blobs.get(key, range).await {
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
