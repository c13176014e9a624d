//! The live player page (`/embed/live/{liveStreamId}`, contract §7's `assets.player`): the same
//! page as a video's (`player`), told that it plays a live stream. Its script (`live.js`) joins
//! at the live edge with hls.js's low-latency mode, shows a LIVE badge that catches up when the
//! viewer has fallen behind, and shows the thumbnail and "not live yet" while nothing is
//! broadcast, trying the master again until a broadcast starts.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use vidi_core::id::MediaId;

use super::access::visible;
use super::player::{CollectorConfig, PlayerConfig, SEGMENT, from_query, page_response, themed};
use super::{Params, QueryMap};
use crate::{ApiError, ApiResult, AppState};

/// `GET /embed/live/{liveStreamId}` (`?token=` for a private live stream, as for a video: the
/// token opens a playback session that the page's playlist and file requests carry).
pub(super) async fn live_player(
    State(state): State<AppState>,
    Path(mut p): Params,
    q: QueryMap,
    h: HeaderMap,
) -> ApiResult<Response> {
    if let Some(t) = q.get("token") {
        p.insert("token".into(), t.clone());
    }
    let a = visible(&state, &p, &h, &q).await?;
    let MediaId::LiveStream(id) = &a.video.id else { return Err(ApiError::not_found("liveStreamId")) };
    let l = state.repo.live_stream_for_delivery(id).await.map_err(|e| ApiError::from_core(e, "liveStreamId"))?;
    let token = p.get("token").filter(|_| !l.public);
    // The same URLs as the live stream's `assets` (`resources::live_streams`), under the session.
    let (master, base) = match token {
        Some(t) => {
            let t = percent_encoding::utf8_percent_encode(t, SEGMENT);
            (format!("/live/{id}/token/{t}.m3u8"), format!("/live/{id}/token/{t}"))
        }
        None => (format!("/live/{id}.m3u8"), format!("/live/{id}")),
    };
    let avh = a.avh();
    let mut config = PlayerConfig {
        video_id: id.to_string(),
        title: l.name.clone(),
        hls: format!("{master}{avh}"),
        poster: has_thumbnail(&state, &l).await.then(|| format!("{base}/thumbnail.jpg{avh}")),
        live: true,
        // The page reports its viewing session as a video's does (analytics.js, with the
        // `liveStreamId`); a broadcast that ends is its `end`, a next one joined a `resume`.
        collector: Some(CollectorConfig {
            sessions: "/collect/sessions".into(),
            avh: a.session.as_ref().map(|s| s.id.clone()),
        }),
        ..from_query(&q)
    };
    themed(&state, &l.workspace_id, l.player_id.as_deref(), &mut config).await?;
    // A live stream has no end to loop to, whatever the query or the theme say.
    config.looped = false;
    config.forced.looped = false;
    Ok(a.finish(page_response(&config)))
}

/// Whether the live stream has a thumbnail to show: an uploaded one, or one a broadcast took (the
/// last stays after it ends). Without one the page shows a plain panel, and looks again for one
/// (at the same URL, `live.js`) each time it goes idle; a store that cannot tell now counts as
/// none, which costs only the picture.
async fn has_thumbnail(state: &AppState, l: &vidi_core::live::LiveStream) -> bool {
    if l.thumbnail_key.is_some() {
        return true;
    }
    let key = vidi_core::keys::live_auto_thumbnail_key(l.id.as_str());
    match state.blobs.size(&key).await {
        Ok(size) => size.is_some(),
        Err(e) => {
            tracing::warn!(live_stream = %l.id, error = %e, "could not look for the live thumbnail");
            false
        }
    }
}
