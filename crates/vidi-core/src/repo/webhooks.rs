//! The webhook part of the metadata store: webhooks, the dispatcher's cursor over the events
//! outbox, deliveries (leased one node at a time, in order per webhook and subject) and their log.

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::event::EventKind;
use crate::id::{DeliveryId, EventId, WebhookId, WorkspaceId};
use crate::model::PageRequest;
use crate::webhook::{Attempt, Delivery, DueDelivery, Outcome, Webhook};

/// What one dispatch pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Dispatched {
    /// The events read, in id order, with their `emitted_at_ns`.
    pub events: Vec<(EventId, i64)>,
    /// Deliveries created (re-reading an event creates none).
    pub created: u64,
}

#[async_trait]
pub trait WebhookRepo: Send + Sync + 'static {
    /// Stores `hook` unless its workspace already has `limit` webhooks; returns whether it did.
    async fn create_webhook(&self, hook: &Webhook, limit: u32) -> CoreResult<bool>;
    async fn get_webhook(&self, ws: &WorkspaceId, id: &WebhookId) -> CoreResult<Webhook>;
    /// Oldest first; `event` keeps those subscribed to it.
    async fn list_webhooks(
        &self,
        ws: &WorkspaceId,
        event: Option<EventKind>,
        page: PageRequest,
    ) -> CoreResult<(Vec<Webhook>, u64)>;
    /// Deletes the webhook and its deliveries.
    async fn delete_webhook(&self, ws: &WorkspaceId, id: &WebhookId) -> CoreResult<()>;

    /// Where dispatcher `name` has read up to (`None`: from the start).
    async fn webhook_cursor(&self, name: &str) -> CoreResult<Option<EventId>>;
    /// Moves the cursor forward to `to` (never back: two dispatchers may race).
    async fn advance_webhook_cursor(&self, name: &str, to: &EventId) -> CoreResult<()>;
    /// Reads up to `limit` events after `after` and creates, for each, one pending delivery (due
    /// at `now`) per webhook of its workspace that subscribes to its kind and existed when it
    /// was emitted. Idempotent: an (event, webhook) pair gets one delivery however often read.
    async fn dispatch_events(&self, after: Option<&EventId>, limit: u32, now: i64) -> CoreResult<Dispatched>;

    /// Deliveries that may be sent now: pending, due, not leased, and with no earlier pending
    /// delivery for the same webhook and subject (order per video); at most `per_webhook` of
    /// each webhook and `limit` in all, earliest due first.
    async fn due_deliveries(&self, now: i64, per_webhook: u32, limit: u32) -> CoreResult<Vec<(DeliveryId, WebhookId)>>;
    /// Leases a due delivery to `owner` until `until`; `None` when another node got it first or
    /// it is no longer due.
    async fn lease_delivery(
        &self,
        id: &DeliveryId,
        owner: &str,
        now: i64,
        until: i64,
    ) -> CoreResult<Option<DueDelivery>>;
    /// Logs an attempt and applies its outcome (if `owner` still holds the lease; the attempt is
    /// logged either way, since it was made).
    async fn record_attempt(&self, id: &DeliveryId, owner: &str, attempt: &Attempt, outcome: Outcome)
    -> CoreResult<()>;
    /// A webhook's deliveries, newest first.
    async fn list_deliveries(
        &self,
        ws: &WorkspaceId,
        webhook: &WebhookId,
        page: PageRequest,
    ) -> CoreResult<(Vec<Delivery>, u64)>;
    /// One delivery and its attempts, oldest first.
    async fn get_delivery(
        &self,
        ws: &WorkspaceId,
        webhook: &WebhookId,
        id: &DeliveryId,
    ) -> CoreResult<(Delivery, Vec<Attempt>)>;
    /// Sends a delivery again: pending, due at `now`, with a new retry window from `now`. Its
    /// earlier attempts stay in the log.
    async fn replay_delivery(
        &self,
        ws: &WorkspaceId,
        webhook: &WebhookId,
        id: &DeliveryId,
        now: i64,
    ) -> CoreResult<Delivery>;
}
