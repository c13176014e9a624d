//! The analytics collector (a Vidi extension, contract §12: "the data source is outside the REST
//! API"): players mint a viewing session (`ps…`) and report its events in batches. It takes no API
//! key, as the player page it serves takes none, so it trusts nothing it is sent:
//!
//! - every request first takes a token from its client address's bucket ([`limit::Limiter`]);
//!   behind a reverse proxy the address is the proxy's `X-Forwarded-For` entry only when that
//!   proxy is configured as trusted (`VIDI_TRUSTED_PROXY`), since anyone can write the header;
//! - bodies are bounded before they are read, parsed strictly, and every field bounded;
//! - a session is minted only for a video or live stream that exists, and for a private one only
//!   within the playback session its private token opened (the one the player page runs in);
//! - events go only to a session that exists and is still open, each batch answered once
//!   the transaction that holds it (with the batches that arrived meanwhile) is committed;
//! - every refusal is a problem body and is counted by reason ([`limit::Counts`]).
//!
//! The protocol, also in `/openapi.json` and `docs/analytics.md`:
//! `POST /collect/sessions` `{videoId | liveStreamId, avh?, referrer?, metadata?, viewerId?}` →
//! 201 `{sessionId}`; `POST /collect/sessions/{sessionId}/events` `{events: [{seq, type, ts, at? |
//! from?, to?, value?, height?, bitrate?}]}` → 204, where `ts` is milliseconds since the session was minted, as the
//! player measured it (so a viewer's wrong clock does not matter).

pub mod enrich;
pub mod limit;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::{Deserialize, Serialize};
use vidi_core::analytics::{
    EventKind, FUTURE_SKEW_MS, MAX_BATCH_EVENTS, MAX_PLAYHEAD_S, PlayerEvent, PlayerSession, SESSION_OPEN_MS, UNKNOWN,
};
use vidi_core::id::{LiveStreamId, MediaId, PlayerSessionId, VideoId};
use vidi_core::repo::SessionHead;
use vidi_core::time::now_ms;

use crate::{ApiError, ApiResult, AppState};
use limit::{Counts, Limiter, Refusal};

/// The largest session request, in bytes.
const MAX_SESSION_BODY: usize = 8 * 1024;
/// The largest batch, in bytes (what `navigator.sendBeacon` may send in all is 64 KiB).
const MAX_EVENTS_BODY: usize = 64 * 1024;
/// At most this many `metadata` pairs, each part at most [`MAX_METADATA_CHARS`] (as the player
/// page takes them from its URL).
pub const MAX_METADATA: usize = 32;
pub const MAX_METADATA_CHARS: usize = 255;
/// The largest `seq` (a session of a day with an event a second stays far below).
const MAX_SEQ: i64 = 1_000_000;
/// The largest measure of a quality-of-experience event: an hour, in ms.
const MAX_VALUE_MS: i64 = 3_600_000;
/// The tallest rendition (16384 pixels: a portrait 16K is 15360) and the largest bitrate
/// (1 Gb/s) a `qoe.rendition` may report.
const MAX_HEIGHT: i64 = 16_384;
const MAX_BITRATE: i64 = 1_000_000_000;

/// At most this many sessions' heads are kept in memory; past it, those of closed sessions are
/// forgotten (and all of them if every one is open: they are read again, once each).
const MAX_HEADS: usize = 100_000;

/// The collector's state, one per process.
pub struct Collector {
    limiter: Limiter,
    counts: Counts,
    geoip: Option<enrich::GeoIp>,
    trusted_proxy: bool,
    /// The heads of sessions seen lately. A head never changes once minted, and every batch
    /// needs its session's: read once, not once a batch (a player sends one every few seconds
    /// for as long as it plays). A session pruned by the retention sweep is closed long before
    /// (the sweep keeps at least a day, a session takes events for a day), so a remembered head
    /// admits nothing the database would not.
    heads: std::sync::Mutex<std::collections::HashMap<PlayerSessionId, SessionHead>>,
}

impl Collector {
    pub fn new(rate: u32, trusted_proxy: bool, geoip_db: Option<&std::path::Path>) -> anyhow::Result<Collector> {
        let geoip = geoip_db.map(enrich::GeoIp::open).transpose()?;
        Ok(Collector {
            limiter: Limiter::new(rate),
            counts: Counts::default(),
            geoip,
            trusted_proxy,
            heads: Default::default(),
        })
    }

    fn remembered(&self, id: &PlayerSessionId) -> Option<SessionHead> {
        self.heads.lock().expect("not poisoned").get(id).cloned()
    }

    fn remember(&self, id: PlayerSessionId, head: SessionHead, now: i64) {
        let mut heads = self.heads.lock().expect("not poisoned");
        if heads.len() >= MAX_HEADS {
            heads.retain(|_, h| now - h.loaded_at <= SESSION_OPEN_MS);
            if heads.len() >= MAX_HEADS {
                heads.clear();
            }
        }
        heads.insert(id, head);
    }

    /// What was accepted and refused since start.
    pub fn stats(&self) -> limit::CollectorStats {
        self.counts.snapshot()
    }

    fn refuse(&self, r: Refusal, e: ApiError) -> ApiError {
        self.counts.refuse(r);
        e
    }

    /// The client's address: the peer's, or, when the peer is a trusted proxy, the last address
    /// of `X-Forwarded-For` (the one that proxy appended; earlier ones are the client's word).
    fn client(&self, headers: &HeaderMap, peer: Option<SocketAddr>) -> IpAddr {
        let peer = peer.map(|p| p.ip()).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if !self.trusted_proxy {
            return peer;
        }
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .next_back()
            .unwrap_or(peer)
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/collect/sessions", post(create_session))
        .route("/collect/sessions/{sessionId}/events", post(append_events))
}

/// A session request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SessionRequest {
    /// The video watched (one of `videoId` and `liveStreamId`).
    pub video_id: Option<String>,
    /// The live stream watched.
    pub live_stream_id: Option<String>,
    /// A private subject's playback session (the `avh` its private token opened).
    pub avh: Option<String>,
    /// The page that embeds the player, or that the viewer came from (`document.referrer`).
    pub referrer: Option<String>,
    /// A video's `metadata[k]=v` of the player URL, as `{key, value}` pairs (api.video's
    /// metadata shape); a key given twice keeps its last value.
    #[serde(default)]
    #[schema(value_type = Vec<crate::resources::videos::MetadataOut>)]
    pub metadata: Vec<vidi_core::model::MetadataPair>,
    /// Who watches, for unique viewers: a random id the player keeps in the browser's storage
    /// (8 to 64 letters, digits, `-` and `_`). Without one, the viewer is a hash of the client
    /// address, User-Agent and day.
    #[schema(pattern = r"^[A-Za-z0-9_-]{8,64}$")]
    pub viewer_id: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionCreated {
    pub session_id: String,
}

/// One reported event.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// The event's rank in the session (0, 1, 2… as the player numbers them).
    #[serde(deserialize_with = "whole")]
    pub seq: i64,
    /// `ready`, `play`, `pause`, `resume`, `seek.backward`, `seek.forward`, `end`, or Vidi's
    /// `qoe.ttff` (time to first frame), `qoe.rebuffer` (a stall), `qoe.error` (a fatal error),
    /// `qoe.watch` (time played since the last one), `qoe.rendition` (the rendition now playing).
    #[serde(rename = "type")]
    #[schema(
        value_type = String,
        pattern = r"^(ready|play|pause|resume|seek\.backward|seek\.forward|end|qoe\.ttff|qoe\.rebuffer|qoe\.error|qoe\.watch|qoe\.rendition)$"
    )]
    pub kind: KindIn,
    /// Milliseconds since the session was minted, as the player measured them.
    #[serde(deserialize_with = "whole")]
    pub ts: i64,
    /// The playhead, in seconds (all but seeks).
    pub at: Option<f64>,
    /// A seek's start and end playheads, in seconds.
    pub from: Option<f64>,
    pub to: Option<f64>,
    /// A quality-of-experience event's measure, in milliseconds (`qoe.watch`: the time played,
    /// at most the time since the session was minted).
    #[serde(default, deserialize_with = "whole_or_none")]
    pub value: Option<i64>,
    /// `qoe.rendition`: the rendition's height, in pixels.
    #[serde(default, deserialize_with = "whole_or_none")]
    pub height: Option<i64>,
    /// `qoe.rendition`, and optionally `qoe.watch`: the rendition's bitrate, in bits per second.
    #[serde(default, deserialize_with = "whole_or_none")]
    pub bitrate: Option<i64>,
}

/// An event's `type`, read without copying the name (a batch holds up to 200): `None` for a name
/// Vidi does not know, which [`event`] refuses naming the event, not as a malformed body.
pub struct KindIn(Option<EventKind>);

impl<'de> Deserialize<'de> for KindIn {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<KindIn, D::Error> {
        struct Name;
        impl serde::de::Visitor<'_> for Name {
            type Value = KindIn;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an event type")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<KindIn, E> {
                Ok(KindIn(EventKind::parse(s)))
            }
        }
        d.deserialize_str(Name)
    }
}

/// An integer as JSON Schema means it: a number without a fraction, so `285.0` is one (some
/// clients, and JavaScript's JSON of a computed number, write it so).
fn whole<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_i64()
        .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
        .ok_or_else(|| serde::de::Error::custom(format!("expected a whole number, found {n}")))
}

fn whole_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "whole")] i64);
    Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    pub events: Vec<EventIn>,
}

fn too_many(retry_after: u64) -> Response {
    let mut r = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too-many-requests",
        "Too many analytics requests from this address.",
        "",
    )
    .into_response();
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    r
}

/// The rate limit, then the body, bounded: the common prologue of both routes.
async fn admit(state: &AppState, req: Request, limit: usize) -> Result<bytes::Bytes, Response> {
    let c = &state.collector;
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ci| ci.0);
    let ip = c.client(req.headers(), peer);
    if let Err(wait) = c.limiter.take(ip, Instant::now()) {
        c.counts.refuse(Refusal::RateLimited);
        return Err(too_many(wait));
    }
    let large = || {
        c.refuse(
            Refusal::TooLarge,
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "The payload is too large.", "")
                .detail(format!("At most {limit} bytes.")),
        )
        .into_response()
    };
    let announced = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(large());
    }
    axum::body::to_bytes(req.into_body(), limit).await.map_err(|_| large())
}

fn parse<T: serde::de::DeserializeOwned>(c: &Collector, body: &[u8]) -> ApiResult<T> {
    // Tracking the path costs every value of every body; only a refusal needs it, so a body
    // that parses is parsed once without it, and one that does not is parsed again with it.
    if let Ok(v) = serde_json::from_slice(body) {
        return Ok(v);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let at = e.path().to_string();
        c.refuse(Refusal::Malformed, ApiError::invalid_payload(format!("{at}: {}", e.into_inner())))
    })
}

/// Mint a viewing session (Vidi extension): the player calls this once per page load.
#[utoipa::path(post, path = "/collect/sessions", tag = "Analytics collector (Vidi)", operation_id = "POST_collect-sessions",
    request_body = SessionRequest,
    responses((status = 201, body = SessionCreated), (status = 400, body = crate::error::Problem),
              (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
              (status = 413, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
pub async fn create_session(State(state): State<AppState>, req: Request) -> Response {
    let headers = req.headers().clone();
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ci| ci.0);
    let body = match admit(&state, req, MAX_SESSION_BODY).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match mint(&state, &headers, peer, &body).await {
        Ok(id) => (StatusCode::CREATED, axum::Json(SessionCreated { session_id: id.into_string() })).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn mint(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    body: &[u8],
) -> ApiResult<PlayerSessionId> {
    let c = &state.collector;
    let r: SessionRequest = parse(c, body)?;
    let media = match (r.video_id.as_deref(), r.live_stream_id.as_deref()) {
        (Some(v), None) => VideoId::parse(v)
            .map(MediaId::Video)
            .ok_or_else(|| c.refuse(Refusal::UnknownSubject, ApiError::not_found("videoId")))?,
        (None, Some(l)) => LiveStreamId::parse(l)
            .map(MediaId::LiveStream)
            .ok_or_else(|| c.refuse(Refusal::UnknownSubject, ApiError::not_found("liveStreamId")))?,
        _ => {
            return Err(c.refuse(
                Refusal::Malformed,
                ApiError::invalid_payload("Exactly one of videoId and liveStreamId names what is watched."),
            ));
        }
    };
    // Sorted by key, one value a key, as the player page's configuration has them.
    let metadata: std::collections::BTreeMap<String, String> =
        r.metadata.into_iter().map(|p| (p.key, p.value)).collect();
    if metadata.len() > MAX_METADATA
        || metadata.iter().any(|(k, v)| {
            k.is_empty() || k.chars().count() > MAX_METADATA_CHARS || v.chars().count() > MAX_METADATA_CHARS
        })
    {
        return Err(c.refuse(
            Refusal::TooLarge,
            ApiError::invalid_attribute(
                "metadata",
                format!("At most {MAX_METADATA} pairs of at most {MAX_METADATA_CHARS} characters."),
            ),
        ));
    }
    if r.viewer_id.as_deref().is_some_and(|v| !enrich::valid_viewer_id(v)) {
        return Err(c.refuse(
            Refusal::Malformed,
            ApiError::invalid_attribute(
                "viewerId",
                format!("A viewer id is 8 to {} letters, digits, - or _.", enrich::MAX_VIEWER_ID),
            ),
        ));
    }
    if r.referrer.as_ref().is_some_and(|u| u.len() > enrich::MAX_REFERRER) {
        return Err(c.refuse(Refusal::TooLarge, ApiError::invalid_attribute("referrer", "The referrer is too long.")));
    }
    let unknown = |e: vidi_core::CoreError| match e {
        vidi_core::CoreError::NotFound => c.refuse(Refusal::UnknownSubject, ApiError::not_found(media.param())),
        e => ApiError::from(e),
    };
    let (ws, public) = match &media {
        MediaId::Video(v) => {
            state.repo.video_for_delivery(v).await.map(|v| (v.workspace_id, v.public)).map_err(unknown)?
        }
        MediaId::LiveStream(l) => {
            state.repo.live_stream_for_delivery(l).await.map(|l| (l.workspace_id, l.public)).map_err(unknown)?
        }
    };
    if !public {
        let session = r.avh.as_deref().filter(|s| !s.is_empty() && s.len() <= 64);
        let open = match session {
            Some(s) => state.repo.in_playback_session(&media, s, now_ms()).await?,
            None => false,
        };
        if !open {
            return Err(c.refuse(
                Refusal::Private,
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "video-private-token-invalid",
                    "This media is private: its viewing sessions are reported only within the playback session its private token opened.",
                    "avh",
                ),
            ));
        }
    }
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let ip = c.client(headers, peer);
    let (country, city) = match &c.geoip {
        Some(g) => g.locate(ip),
        None => (None, None),
    };
    let loaded_at = now_ms();
    let viewer = enrich::viewer(r.viewer_id.as_deref(), ws.as_str(), ip, ua, loaded_at);
    let session = PlayerSession {
        id: PlayerSessionId::generate(),
        workspace_id: ws,
        loaded_at,
        ended_at: 0,
        // The 2023 schemas give live sessions no metadata.
        metadata: match media {
            MediaId::Video(_) => metadata.into_iter().collect(),
            MediaId::LiveStream(_) => Vec::new(),
        },
        media,
        referrer: enrich::referrer(r.referrer.as_deref()),
        agent: enrich::agent(ua),
        country: country.unwrap_or_else(|| UNKNOWN.into()),
        city,
        viewer: Some(viewer),
    };
    state.repo.insert_player_session(&session).await?;
    c.counts.session();
    let head = SessionHead { workspace_id: session.workspace_id, media: session.media, loaded_at: session.loaded_at };
    c.remember(session.id.clone(), head, session.loaded_at);
    Ok(session.id)
}

/// Report a batch of a session's events (Vidi extension), in one request: the player sends one
/// every few seconds, and the last with `navigator.sendBeacon` when the page is hidden. Any
/// content type is read as JSON, since a beacon cannot always set one.
#[utoipa::path(post, path = "/collect/sessions/{sessionId}/events", tag = "Analytics collector (Vidi)", operation_id = "POST_collect-sessions-sessionId-events",
    params(("sessionId" = String, Path)),
    request_body = EventBatch,
    responses((status = 204), (status = 400, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
              (status = 410, body = crate::error::Problem), (status = 413, body = crate::error::Problem),
              (status = 429, body = crate::error::Problem)))]
pub async fn append_events(State(state): State<AppState>, Path(id): Path<String>, req: Request<Body>) -> Response {
    let body = match admit(&state, req, MAX_EVENTS_BODY).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match append(&state, &id, &body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn append(state: &AppState, id: &str, body: &[u8]) -> ApiResult<()> {
    let c = &state.collector;
    let batch: EventBatch = parse(c, body)?;
    if batch.events.len() > MAX_BATCH_EVENTS {
        return Err(c.refuse(
            Refusal::TooLarge,
            ApiError::invalid_attribute("events", format!("At most {MAX_BATCH_EVENTS} events in one batch.")),
        ));
    }
    let not_found = || c.refuse(Refusal::UnknownSession, ApiError::not_found("sessionId"));
    let id = PlayerSessionId::parse(id).ok_or_else(not_found)?;
    let now = now_ms();
    let head = match c.remembered(&id) {
        Some(h) => h,
        None => match state.repo.player_session_head(&id).await {
            Ok(h) => {
                c.remember(id.clone(), h.clone(), now);
                h
            }
            Err(vidi_core::CoreError::NotFound) => return Err(not_found()),
            Err(e) => return Err(e.into()),
        },
    };
    if now - head.loaded_at > SESSION_OPEN_MS {
        return Err(c.refuse(
            Refusal::ClosedSession,
            ApiError::new(StatusCode::GONE, "player-session-closed", "This viewing session is closed.", "sessionId"),
        ));
    }
    let events = batch
        .events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            event(&id, head.loaded_at, now, e).map_err(|m| ApiError::invalid_attribute(&format!("events[{i}]"), m))
        })
        .collect::<ApiResult<Vec<_>>>()
        .map_err(|e| c.refuse(Refusal::InvalidEvent, e))?;
    let n = state.repo.append_player_events(&head.media, events).await?;
    c.counts.events(n);
    Ok(())
}

/// A playhead in whole seconds, within bounds.
fn playhead(v: Option<f64>, name: &str) -> Result<Option<i64>, String> {
    match v {
        None => Ok(None),
        Some(s) if s.is_finite() && (0.0..=MAX_PLAYHEAD_S as f64).contains(&s) => Ok(Some(s.floor() as i64)),
        Some(_) => Err(format!("\"{name}\" must be a playhead from 0 to {MAX_PLAYHEAD_S} seconds.")),
    }
}

/// One reported event, checked.
fn event(id: &PlayerSessionId, loaded_at: i64, now: i64, e: EventIn) -> Result<PlayerEvent, String> {
    let kind = e.kind.0.ok_or_else(|| {
        let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("\"type\" must be one of {}.", names.join(", "))
    })?;
    if !(0..=MAX_SEQ).contains(&e.seq) {
        return Err(format!("\"seq\" must be from 0 to {MAX_SEQ}."));
    }
    if e.ts < 0 || loaded_at + e.ts > now + FUTURE_SKEW_MS {
        return Err("\"ts\" must be the milliseconds since the session was minted, not in the future.".into());
    }
    let (at, from, to) = (playhead(e.at, "at")?, playhead(e.from, "from")?, playhead(e.to, "to")?);
    if kind.is_seek() {
        let (Some(f), Some(t)) = (from, to) else { return Err("A seek carries \"from\" and \"to\".".into()) };
        if at.is_some() || (kind == EventKind::SeekForward && t < f) || (kind == EventKind::SeekBackward && t > f) {
            return Err(format!(
                "A {} goes {} and carries no \"at\".",
                kind.as_str(),
                if kind == EventKind::SeekForward { "forward" } else { "backward" }
            ));
        }
    } else if from.is_some() || to.is_some() {
        return Err("Only seeks carry \"from\" and \"to\".".into());
    } else if kind.is_standard() && at.is_none() {
        return Err(format!("A {} event carries the playhead \"at\".", kind.as_str()));
    }
    let value = match (kind.is_standard(), e.value) {
        (true, None) => None,
        (true, Some(_)) => return Err("Only qoe.* events carry a \"value\".".into()),
        (false, None) if matches!(kind, EventKind::Error | EventKind::Rendition) => None,
        (false, Some(_)) if kind == EventKind::Rendition => return Err("A qoe.rendition carries no \"value\".".into()),
        // Time played cannot exceed the time since the session was minted (one event's share;
        // the QoE query caps each session's sum the same way).
        (false, Some(v)) if kind == EventKind::Watch && v > e.ts => {
            return Err("A qoe.watch's \"value\" is at most its \"ts\".".into());
        }
        (false, Some(v)) if (0..=MAX_VALUE_MS).contains(&v) => Some(v),
        (false, _) => return Err(format!("\"value\" must be from 0 to {MAX_VALUE_MS} milliseconds.")),
    };
    let bounded = |v: Option<i64>, name: &str, max: i64| match v {
        Some(n) if !(1..=max).contains(&n) => Err(format!("\"{name}\" must be from 1 to {max}.")),
        v => Ok(v),
    };
    let (height, bitrate) = (bounded(e.height, "height", MAX_HEIGHT)?, bounded(e.bitrate, "bitrate", MAX_BITRATE)?);
    match kind {
        EventKind::Rendition if height.is_none() || bitrate.is_none() => {
            return Err("A qoe.rendition carries \"height\" and \"bitrate\".".into());
        }
        EventKind::Rendition => {}
        EventKind::Watch if height.is_some() => return Err("A qoe.watch carries no \"height\".".into()),
        EventKind::Watch => {}
        _ if height.is_some() || bitrate.is_some() => {
            return Err("Only qoe.rendition and qoe.watch carry \"height\" or \"bitrate\".".into());
        }
        _ => {}
    }
    Ok(PlayerEvent {
        session_id: id.clone(),
        seq: e.seq,
        kind,
        emitted_at: loaded_at + e.ts,
        at,
        from,
        to,
        value,
        height,
        bitrate,
    })
}

/// Sessions deleted per statement by the retention sweep: one short transaction each.
const PRUNE_BATCH: u32 = 500;

/// The retention sweep (`VIDI_ANALYTICS_RETENTION_DAYS`): every hour, deletes the sessions loaded
/// longer than `keep` ago with their events, a batch at a time. Every API node runs it; two
/// sweeping at once delete the same old rows, which is harmless.
pub fn retention(state: AppState, keep: std::time::Duration) -> vidi_core::service::Service {
    vidi_core::service::Service::new("analytics-retention", move |shutdown| async move {
        while !shutdown.is_cancelled() {
            let before = now_ms() - keep.as_millis() as i64;
            let mut total = 0;
            loop {
                match state.repo.prune_player_sessions(before, PRUNE_BATCH).await {
                    Ok(n) => {
                        total += n;
                        if n < u64::from(PRUNE_BATCH) || shutdown.is_cancelled() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "analytics retention sweep failed");
                        break;
                    }
                }
            }
            if total > 0 {
                tracing::info!(sessions = total, "analytics retention: deleted old viewing sessions");
            }
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(3600)) => {}
                () = shutdown.cancelled() => {}
            }
        }
        Ok(())
    })
}
