//! `/webhooks` (contract rows 41–44, §9): create, list, show, delete. And Vidi extensions that
//! no official client calls: the signing secret (`/webhooks/{id}/secret`, kept out of the 2023
//! body, which Python 1.3.0 reads strictly), the delivery log and replays.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use vidi_core::event::EventKind;
use vidi_core::id::{DeliveryId, WebhookId};
use vidi_core::time::{now_ms, to_rfc3339};
use vidi_core::webhook::{Attempt, Delivery, DeliveryState, Webhook, new_secret};

use crate::auth::Auth;
use crate::error::OrNotFound;
use crate::extract::{JsonBody, Query, de};
use crate::page::{Page, page, page_request};
use crate::{ApiError, ApiResult, AppState};

// ---- wire types ------------------------------------------------------------------------------

/// The 2023 Webhook: exactly these four fields (never `signatureSecret`).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookOut {
    pub webhook_id: String,
    pub created_at: String,
    pub events: Vec<String>,
    pub url: String,
}

impl From<&Webhook> for WebhookOut {
    fn from(h: &Webhook) -> Self {
        WebhookOut {
            webhook_id: h.id.to_string(),
            created_at: to_rfc3339(h.created_at),
            events: h.events.iter().map(|k| k.as_str().to_string()).collect(),
            url: h.url.clone(),
        }
    }
}

/// Vidi extension: the key of a webhook's signatures (see docs/webhooks.md).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookSecret {
    pub webhook_id: String,
    pub signature_secret: String,
}

/// Vidi extension: one delivery of one event to one webhook.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryOut {
    pub delivery_id: String,
    pub webhook_id: String,
    pub event_id: String,
    /// The event's name.
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending` (not answered with a 2xx yet), `delivered` or `failed` (given up).
    pub state: String,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_status: Option<u16>,
    pub created_at: String,
    /// When the next attempt is due, while pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    /// The body sent, as sent (contract §9).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl From<&Delivery> for DeliveryOut {
    fn from(d: &Delivery) -> Self {
        DeliveryOut {
            delivery_id: d.id.to_string(),
            webhook_id: d.webhook_id.to_string(),
            event_id: d.event_id.to_string(),
            kind: d.kind.clone(),
            state: d.state.as_str().to_string(),
            attempts: d.attempts,
            last_status: d.last_status,
            created_at: to_rfc3339(d.created_at),
            next_attempt_at: (d.state == DeliveryState::Pending).then(|| to_rfc3339(d.next_at)),
            payload: serde_json::from_str(&d.body).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Vidi extension: one attempt of a delivery.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptOut {
    pub attempt: u32,
    pub at: String,
    /// The answer's status; absent when no answer came (see `error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub latency_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// At most the first KiB of the answer's body.
    pub excerpt: String,
}

impl From<Attempt> for AttemptOut {
    fn from(a: Attempt) -> Self {
        AttemptOut {
            attempt: a.n,
            // Milliseconds matter in a log of retries a few hundred ms apart.
            at: vidi_core::time::to_rfc3339_nanos(a.at.saturating_mul(1_000_000)),
            status: a.status,
            latency_ms: a.latency_ms,
            error: a.error,
            excerpt: a.excerpt,
        }
    }
}

/// Vidi extension: a delivery and every attempt made.
#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryDetail {
    #[serde(flatten)]
    pub delivery: DeliveryOut,
    pub log: Vec<AttemptOut>,
}

// ---- routes ----------------------------------------------------------------------------------

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks", get(list).post(create))
        .route("/webhooks/{webhookId}", get(show).delete(delete))
        .route("/webhooks/{webhookId}/secret", get(secret))
        .route("/webhooks/{webhookId}/deliveries", get(deliveries))
        .route("/webhooks/{webhookId}/deliveries/{deliveryId}", get(delivery))
        .route("/webhooks/{webhookId}/deliveries/{deliveryId}/replay", post(replay))
}

fn webhook_id(raw: &str) -> ApiResult<WebhookId> {
    WebhookId::parse(raw).ok_or_else(|| ApiError::not_found("webhookId"))
}

fn delivery_id(raw: &str) -> ApiResult<DeliveryId> {
    DeliveryId::parse(raw).ok_or_else(|| ApiError::not_found("deliveryId"))
}

/// The longest URL accepted (browsers' practical limit; keeps a list page bounded).
pub const MAX_URL_CHARS: usize = 2048;

/// The body of a creation: api.video's `webhooks-creation-payload`.
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(title = "WebhooksCreationPayload")]
pub struct WebhooksCreationPayload {
    /// The events to be notified of: `video.encoding.quality.completed`,
    /// `live-stream.broadcast.started`, `live-stream.broadcast.ended`, `video.source.recorded`.
    #[serde(default, deserialize_with = "de::strings")]
    #[schema(required = true, value_type = Vec<String>, min_items = 1, example = json!(["video.encoding.quality.completed"]))]
    pub events: Option<Vec<String>>,
    /// Where notifications are sent: an absolute http or https URL.
    #[serde(default, deserialize_with = "de::string")]
    #[schema(required = true, value_type = String, max_length = 2048, example = "https://example.com/webhooks")]
    pub url: Option<String>,
}

/// Create a webhook.
#[utoipa::path(post, path = "/webhooks", tag = "Webhooks", operation_id = "POST_webhooks",
    request_body = WebhooksCreationPayload,
    responses((status = 201, body = WebhookOut), (status = 400, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    body: JsonBody<WebhooksCreationPayload>,
) -> ApiResult<impl IntoResponse> {
    let body = body.read()?;
    let names = body.events.ok_or_else(|| ApiError::attribute_required("events"))?;
    if names.is_empty() {
        return Err(ApiError::invalid_attribute("events", "At least one event is required."));
    }
    let mut events: Vec<EventKind> = Vec::new();
    for n in &names {
        let kind = EventKind::parse(n).ok_or_else(|| {
            ApiError::invalid_attribute(
                "events",
                format!("Unknown event {n:?}: the events are {}.", EventKind::ALL.map(EventKind::as_str).join(", ")),
            )
        })?;
        if !events.contains(&kind) {
            events.push(kind);
        }
    }
    let raw = body.url.ok_or_else(|| ApiError::attribute_required("url"))?;
    let raw = raw.trim();
    if raw.chars().count() > MAX_URL_CHARS {
        return Err(ApiError::invalid_attribute("url", format!("The URL holds at most {MAX_URL_CHARS} characters.")));
    }
    // Scheme and a literal address are checked now; a name is checked at every delivery, on the
    // addresses it resolves to then.
    let url = state.outbound.check(raw).map_err(|e| match e {
        vidi_outbound::OutboundError::BadUrl => {
            ApiError::invalid_attribute("url", "The URL must be an absolute http or https URL.")
        }
        e => ApiError::invalid_attribute("url", format!("The URL is refused: {e}.")),
    })?;
    let hook = Webhook {
        id: WebhookId::generate(),
        workspace_id: auth.ws().clone(),
        url: url.to_string(),
        events,
        secret: new_secret(),
        created_at: now_ms(),
    };
    if !state.repo.create_webhook(&hook, state.cfg.webhook_limit).await? {
        return Err(ApiError::bad_request(
            "webhook-limit-reached",
            "Your account has reached the webhook urls limit.",
            "",
        )
        .detail(format!("A workspace holds at most {} webhooks.", state.cfg.webhook_limit)));
    }
    Ok((StatusCode::CREATED, Json(WebhookOut::from(&hook))))
}

/// List the workspace's webhooks, oldest first; `events` keeps those subscribed to that event.
#[utoipa::path(get, path = "/webhooks", tag = "Webhooks", operation_id = "LIST-webhooks",
    params(("events" = Option<String>, Query), ("currentPage" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, description = "A page of Webhook objects: {data, pagination}", body = crate::page::Page<WebhookOut>), (status = 400, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Page<WebhookOut>>> {
    let q = Query::parse(raw.as_deref());
    let req = page_request(&q)?;
    let event = match q.get("events") {
        None | Some("") => None,
        Some(n) => Some(
            EventKind::parse(n).ok_or_else(|| ApiError::invalid_query("events", format!("Unknown event {n:?}.")))?,
        ),
    };
    let (hooks, total) = state.repo.list_webhooks(auth.ws(), event, req).await?;
    Ok(Json(page("/webhooks", &q, req, total, hooks.iter().map(WebhookOut::from).collect())))
}

/// Show a webhook.
#[utoipa::path(get, path = "/webhooks/{webhookId}", tag = "Webhooks", operation_id = "GET_webhook",
    params(("webhookId" = String, Path)),
    responses((status = 200, body = WebhookOut), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn show(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<Json<WebhookOut>> {
    let h = state.repo.get_webhook(auth.ws(), &webhook_id(&id)?).await.or_404("webhookId")?;
    Ok(Json(WebhookOut::from(&h)))
}

/// Delete a webhook; its pending deliveries are dropped.
#[utoipa::path(delete, path = "/webhooks/{webhookId}", tag = "Webhooks", operation_id = "DELETE_webhooks-webhookId",
    params(("webhookId" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn delete(State(state): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult<StatusCode> {
    state.repo.delete_webhook(auth.ws(), &webhook_id(&id)?).await.or_404("webhookId")?;
    Ok(StatusCode::NO_CONTENT)
}

/// Vidi extension: the secret that signs this webhook's deliveries.
#[utoipa::path(get, path = "/webhooks/{webhookId}/secret", tag = "Webhooks (Vidi extensions)", operation_id = "GET_webhooks-webhookId-secret",
    params(("webhookId" = String, Path)),
    responses((status = 200, body = WebhookSecret), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn secret(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<WebhookSecret>> {
    let h = state.repo.get_webhook(auth.ws(), &webhook_id(&id)?).await.or_404("webhookId")?;
    Ok(Json(WebhookSecret { webhook_id: h.id.to_string(), signature_secret: h.secret }))
}

/// Vidi extension: the webhook's deliveries, newest first.
#[utoipa::path(get, path = "/webhooks/{webhookId}/deliveries", tag = "Webhooks (Vidi extensions)", operation_id = "LIST-webhooks-webhookId-deliveries",
    params(("webhookId" = String, Path), ("currentPage" = Option<u32>, Query), ("pageSize" = Option<u32>, Query)),
    responses((status = 200, description = "A page of Delivery objects: {data, pagination}", body = crate::page::Page<DeliveryOut>), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn deliveries(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<Page<DeliveryOut>>> {
    let q = Query::parse(raw.as_deref());
    let req = page_request(&q)?;
    let h = state.repo.get_webhook(auth.ws(), &webhook_id(&id)?).await.or_404("webhookId")?;
    let (list, total) = state.repo.list_deliveries(auth.ws(), &h.id, req).await?;
    let path = format!("/webhooks/{}/deliveries", h.id);
    Ok(Json(page(&path, &q, req, total, list.iter().map(DeliveryOut::from).collect())))
}

/// Vidi extension: one delivery and the log of its attempts.
#[utoipa::path(get, path = "/webhooks/{webhookId}/deliveries/{deliveryId}", tag = "Webhooks (Vidi extensions)", operation_id = "GET_webhooks-webhookId-deliveries-deliveryId",
    params(("webhookId" = String, Path), ("deliveryId" = String, Path)),
    responses((status = 200, body = DeliveryDetail), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn delivery(
    State(state): State<AppState>,
    auth: Auth,
    Path((hook, id)): Path<(String, String)>,
) -> ApiResult<Json<DeliveryDetail>> {
    let (d, attempts) =
        state.repo.get_delivery(auth.ws(), &webhook_id(&hook)?, &delivery_id(&id)?).await.or_404("deliveryId")?;
    Ok(Json(DeliveryDetail { delivery: DeliveryOut::from(&d), log: attempts.into_iter().map(Into::into).collect() }))
}

/// Vidi extension: send a delivery again now, with a new day of retries. Its earlier attempts
/// stay in the log.
#[utoipa::path(post, path = "/webhooks/{webhookId}/deliveries/{deliveryId}/replay", tag = "Webhooks (Vidi extensions)", operation_id = "POST_webhooks-webhookId-deliveries-deliveryId-replay",
    params(("webhookId" = String, Path), ("deliveryId" = String, Path)),
    responses((status = 202, body = DeliveryOut), (status = 404, body = crate::error::Problem)),
    security(("apiKey" = []), ("bearerAuth" = [])))]
pub async fn replay(
    State(state): State<AppState>,
    auth: Auth,
    Path((hook, id)): Path<(String, String)>,
) -> ApiResult<impl IntoResponse> {
    let d = state
        .repo
        .replay_delivery(auth.ws(), &webhook_id(&hook)?, &delivery_id(&id)?, now_ms())
        .await
        .or_404("deliveryId")?;
    Ok((StatusCode::ACCEPTED, Json(DeliveryOut::from(&d))))
}
