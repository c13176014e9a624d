//! `/analytics`: the three "raw statistics" endpoints api.video removed in September 2023 and
//! Vidi keeps (contract rows 45–47, §12): a video's or a live stream's viewing sessions within a
//! `period`, and a session's events. The sessions come from the collector (`crate::collect`).

use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use vidi_core::analytics::{Period, PlayerEvent, PlayerSession, QoeSummary, UNKNOWN};
use vidi_core::id::{LiveStreamId, MediaId, PlayerSessionId, VideoId};
use vidi_core::model::MetadataPair;
use vidi_core::time::to_rfc3339_millis as to_rfc3339;

use crate::auth::Auth;
use crate::error::OrNotFound;
use crate::extract::Query;
use crate::page::{Page, page, page_request};
use crate::{ApiError, ApiResult, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/analytics/videos/{videoId}", get(video_sessions))
        .route("/analytics/live-streams/{liveStreamId}", get(live_stream_sessions))
        .route("/analytics/sessions/{sessionId}/events", get(session_events))
        .route("/analytics/videos/{videoId}/qoe", get(video_qoe))
        .route("/analytics/live-streams/{liveStreamId}/qoe", get(live_stream_qoe))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VideoSessionSession {
    pub session_id: String,
    pub loaded_at: String,
    pub ended_at: String,
    #[schema(value_type = Vec<Object>)]
    pub metadata: Vec<MetadataPair>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveStreamSessionSession {
    pub session_id: String,
    pub loaded_at: String,
    pub ended_at: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionLocation {
    pub country: String,
    /// Nullable for videos only; never null as Vidi writes it (`unknown` when not known).
    pub city: String,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionReferrer {
    /// Null (videos) or `unknown` (live streams, where it is not nullable) without a referrer.
    pub url: Option<String>,
    pub medium: String,
    pub source: String,
    pub search_term: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionDevice {
    #[serde(rename = "type")]
    pub kind: String,
    pub vendor: String,
    pub model: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionOs {
    pub name: String,
    pub shortname: String,
    pub version: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionClient {
    pub name: String,
    pub version: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// A session as api.video's `VideoSession` and `LiveStreamSession` have it; `S` is their
/// `session` part, which differs by `metadata`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionOut<S> {
    pub session: S,
    pub location: SessionLocation,
    pub referrer: SessionReferrer,
    pub device: SessionDevice,
    pub os: SessionOs,
    pub client: SessionClient,
}

fn out<S>(s: &PlayerSession, session: S, live: bool) -> SessionOut<S> {
    let a = &s.agent;
    SessionOut {
        session,
        location: SessionLocation {
            country: s.country.clone(),
            city: s.city.clone().unwrap_or_else(|| UNKNOWN.into()),
        },
        referrer: SessionReferrer {
            url: s.referrer.url.clone().or_else(|| live.then(|| UNKNOWN.into())),
            medium: s.referrer.medium.clone(),
            source: s.referrer.source.clone(),
            search_term: s.referrer.search_term.clone(),
        },
        device: SessionDevice {
            kind: a.device_type.clone(),
            vendor: a.device_vendor.clone(),
            model: a.device_model.clone(),
        },
        os: SessionOs { name: a.os_name.clone(), shortname: a.os_shortname.clone(), version: a.os_version.clone() },
        client: SessionClient {
            name: a.client_name.clone(),
            version: a.client_version.clone(),
            kind: a.client_type.clone(),
        },
    }
}

/// `PlayerSessionEvent`: `at` for ready/play/pause/resume/end, `from`/`to` for seeks.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlayerSessionEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub emitted_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
}

impl From<&PlayerEvent> for PlayerSessionEvent {
    fn from(e: &PlayerEvent) -> Self {
        PlayerSessionEvent {
            kind: e.kind.as_str().to_string(),
            emitted_at: to_rfc3339(e.emitted_at),
            at: e.at,
            from: e.from,
            to: e.to,
        }
    }
}

/// `period` (§12): required; `instant` also takes an RFC 3339 instant (the live endpoint).
fn period(q: &Query, instant: bool) -> ApiResult<Period> {
    let expected = "The period must be a day (2026-01-31), an ISO week (2026-W05), a month (2026-01), a year \
                    (2026), or a range of days (2026-01-01/2026-01-15).";
    let raw = q.get("period").filter(|p| !p.is_empty()).ok_or_else(|| ApiError::invalid_query("period", expected))?;
    Period::parse(raw, instant).ok_or_else(|| ApiError::invalid_query("period", expected))
}

/// List a video's player sessions within a period, newest first, optionally only those whose
/// metadata has every `metadata[k]=v` pair.
#[utoipa::path(get, path = "/analytics/videos/{videoId}", tag = "Raw statistics", operation_id = "GET_analytics-videos-videoId",
    params(("videoId" = String, Path), ("period" = String, Query, description = "YYYY-MM-DD, YYYY-Www, YYYY-MM, YYYY or YYYY-MM-DD/YYYY-MM-DD"),
           ("metadata" = Option<Object>, Query, description = "metadata[key]=value filters"),
           ("currentPage" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, description = "A page of VideoSession objects: {data, pagination}", body = crate::page::Page<SessionOut<VideoSessionSession>>),
              (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn video_sessions(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Page<SessionOut<VideoSessionSession>>>> {
    let id = VideoId::parse(&id).ok_or_else(|| ApiError::not_found("videoId"))?;
    state.repo.get_video(auth.ws(), &id).await.or_404("videoId")?;
    let q = Query::parse(raw.as_deref());
    let period = period(&q, false)?;
    let req = page_request(&q)?;
    let filter: Vec<(String, String)> = q.map("metadata").into_iter().map(|p| (p.key, p.value)).collect();
    let media = MediaId::Video(id.clone());
    let (sessions, total) = state.repo.list_player_sessions(auth.ws(), &media, period, &filter, req).await?;
    let data = sessions
        .iter()
        .map(|s| {
            let session = VideoSessionSession {
                session_id: s.id.to_string(),
                loaded_at: to_rfc3339(s.loaded_at),
                ended_at: to_rfc3339(s.ended_at),
                metadata: s.metadata.iter().map(|(k, v)| MetadataPair { key: k.clone(), value: v.clone() }).collect(),
            };
            out(s, session, false)
        })
        .collect();
    Ok(Json(page(&format!("/analytics/videos/{id}"), &q, req, total, data)))
}

/// List a live stream's player sessions within a period, newest first.
#[utoipa::path(get, path = "/analytics/live-streams/{liveStreamId}", tag = "Raw statistics", operation_id = "GET_analytics-live-streams-liveStreamId",
    params(("liveStreamId" = String, Path), ("period" = String, Query, description = "as for videos, or an RFC 3339 instant (its day)"),
           ("currentPage" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, description = "A page of LiveStreamSession objects: {data, pagination}", body = crate::page::Page<SessionOut<LiveStreamSessionSession>>),
              (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn live_stream_sessions(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Page<SessionOut<LiveStreamSessionSession>>>> {
    let id = LiveStreamId::parse(&id).ok_or_else(|| ApiError::not_found("liveStreamId"))?;
    state.repo.get_live_stream(auth.ws(), &id).await.or_404("liveStreamId")?;
    let q = Query::parse(raw.as_deref());
    let period = period(&q, true)?;
    let req = page_request(&q)?;
    let media = MediaId::LiveStream(id.clone());
    let (sessions, total) = state.repo.list_player_sessions(auth.ws(), &media, period, &[], req).await?;
    let data = sessions
        .iter()
        .map(|s| {
            let session = LiveStreamSessionSession {
                session_id: s.id.to_string(),
                loaded_at: to_rfc3339(s.loaded_at),
                ended_at: to_rfc3339(s.ended_at),
            };
            out(s, session, true)
        })
        .collect();
    Ok(Json(page(&format!("/analytics/live-streams/{id}"), &q, req, total, data)))
}

/// List a session's events, in the order they were emitted.
#[utoipa::path(get, path = "/analytics/sessions/{sessionId}/events", tag = "Raw statistics", operation_id = "GET_analytics-sessions-sessionId-events",
    params(("sessionId" = String, Path), ("currentPage" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, description = "A page of PlayerSessionEvent objects: {data, pagination}", body = crate::page::Page<PlayerSessionEvent>),
              (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn session_events(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Page<PlayerSessionEvent>>> {
    // §12: the spec's example names `videoId`; the parameter is `sessionId`.
    let id = PlayerSessionId::parse(&id).ok_or_else(|| ApiError::not_found("sessionId"))?;
    let q = Query::parse(raw.as_deref());
    let req = page_request(&q)?;
    let (events, total) = state.repo.list_player_events(auth.ws(), &id, req).await.or_404("sessionId")?;
    let data = events.iter().map(PlayerSessionEvent::from).collect();
    Ok(Json(page(&format!("/analytics/sessions/{id}/events"), &q, req, total, data)))
}

/// Quality of experience over a period (Vidi extension): what Mux Data measures and api.video
/// never did, from the events the player reports (`qoe.*`).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Qoe {
    /// The period's bounds: from (included) to (excluded).
    pub from: String,
    pub to: String,
    /// Viewing sessions loaded within the period.
    pub sessions: u64,
    /// Sessions that played.
    pub views: u64,
    /// Distinct viewers among the views: the id each browser's player keeps, or a daily hash of
    /// the client address and User-Agent for a player that sends none (docs/analytics.md).
    pub unique_viewers: u64,
    /// Time spent playing, in ms (wall-clock, not paused, stalled or seeking), as the players
    /// reported it, each session's at most its length.
    pub watch_time_ms: i64,
    /// The share of views that met a fatal error (0 without views).
    pub error_rate: f64,
    pub time_to_first_frame: TimeToFirstFrame,
    pub rebuffering: Rebuffering,
    pub renditions: Renditions,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Renditions {
    /// Rendition switches (each session's renditions after its first).
    pub switches: u64,
    /// Switches per view (0 without views).
    pub switches_per_view: f64,
    /// The bitrate played, in bits per second, averaged over the time played at each (absent
    /// when no player reported one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_weighted_bitrate: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TimeToFirstFrame {
    /// Sessions that measured it.
    pub count: u64,
    /// Median and 95th percentile in ms (nearest rank); absent without measures.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p95: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rebuffering {
    /// Stalls after the first frame.
    pub count: u64,
    /// Their total length, in ms.
    pub total_ms: i64,
}

fn qoe(period: Period, q: QoeSummary) -> Qoe {
    Qoe {
        from: to_rfc3339(period.start_ms),
        to: to_rfc3339(period.end_ms),
        sessions: q.sessions,
        views: q.views,
        unique_viewers: q.unique_viewers,
        watch_time_ms: q.watch_ms,
        error_rate: if q.views == 0 { 0.0 } else { q.errored as f64 / q.views as f64 },
        time_to_first_frame: TimeToFirstFrame { count: q.ttff_count, median: q.ttff_median, p95: q.ttff_p95 },
        rebuffering: Rebuffering { count: q.rebuffers, total_ms: q.rebuffer_ms },
        renditions: Renditions {
            switches: q.rendition_switches,
            switches_per_view: if q.views == 0 { 0.0 } else { q.rendition_switches as f64 / q.views as f64 },
            time_weighted_bitrate: q.bitrate_avg,
        },
    }
}

/// A video's quality of experience within a period (Vidi extension).
#[utoipa::path(get, path = "/analytics/videos/{videoId}/qoe", tag = "Analytics (Vidi)", operation_id = "GET_analytics-videos-videoId-qoe",
    params(("videoId" = String, Path), ("period" = String, Query, description = "as for the sessions")),
    responses((status = 200, body = Qoe), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn video_qoe(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Qoe>> {
    let id = VideoId::parse(&id).ok_or_else(|| ApiError::not_found("videoId"))?;
    state.repo.get_video(auth.ws(), &id).await.or_404("videoId")?;
    let period = period(&Query::parse(raw.as_deref()), false)?;
    let q = state.repo.qoe_summary(auth.ws(), &MediaId::Video(id), period).await?;
    Ok(Json(qoe(period, q)))
}

/// A live stream's quality of experience within a period (Vidi extension).
#[utoipa::path(get, path = "/analytics/live-streams/{liveStreamId}/qoe", tag = "Analytics (Vidi)", operation_id = "GET_analytics-live-streams-liveStreamId-qoe",
    params(("liveStreamId" = String, Path), ("period" = String, Query, description = "as for the sessions")),
    responses((status = 200, body = Qoe), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn live_stream_qoe(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Qoe>> {
    let id = LiveStreamId::parse(&id).ok_or_else(|| ApiError::not_found("liveStreamId"))?;
    state.repo.get_live_stream(auth.ws(), &id).await.or_404("liveStreamId")?;
    let period = period(&Query::parse(raw.as_deref()), true)?;
    let q = state.repo.qoe_summary(auth.ws(), &MediaId::LiveStream(id), period).await?;
    Ok(Json(qoe(period, q)))
}
