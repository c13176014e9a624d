//! Webhooks (contract §9): where a workspace wants its events POSTed, and the log of every
//! delivery and attempt (a Vidi extension). Delivery itself lives in `vidi-hooks`.

use crate::event::EventKind;
use crate::id::{DeliveryId, EventId, WebhookId, WorkspaceId};

/// A webhook. `secret` signs its deliveries; it never appears in the 2023 webhook body (Python
/// 1.3.0 rejects unknown keys), only on the Vidi extension path that reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Webhook {
    pub id: WebhookId,
    pub workspace_id: WorkspaceId,
    pub url: String,
    /// The subscribed kinds, in the order given, without repeats.
    pub events: Vec<EventKind>,
    pub secret: String,
    /// Unix ms. A webhook receives the events emitted after it was created, not older ones.
    pub created_at: i64,
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not answered with a 2xx yet; retried until its window is over.
    Pending,
    Delivered,
    /// Given up: the retry window ended, or the receiver refused it for good (410 Gone).
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> DeliveryState {
        match s {
            "delivered" => DeliveryState::Delivered,
            "failed" => DeliveryState::Failed,
            _ => DeliveryState::Pending,
        }
    }
}

/// One delivery of one event to one webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub event_id: EventId,
    /// The event's wire name.
    pub kind: String,
    /// The exact bytes sent (and signed): the event's §9 body.
    pub body: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub last_status: Option<u16>,
    /// Unix ms.
    pub created_at: i64,
    /// When the next attempt is due (unix ms; meaningful while pending).
    pub next_at: i64,
}

/// One attempt of a delivery, as the log shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// 1-based.
    pub n: u32,
    /// Unix ms when the request started.
    pub at: i64,
    /// The answer's status; `None` when no answer came (refused address, timeout, connection).
    pub status: Option<u16>,
    pub latency_ms: i64,
    /// Why there was no answer.
    pub error: Option<String>,
    /// The start of the answer's body, at most [`EXCERPT_BYTES`] (lossy UTF-8).
    pub excerpt: String,
}

/// How much of an answer the log keeps.
pub const EXCERPT_BYTES: usize = 1024;

/// A delivery leased for sending, with what sending needs.
#[derive(Clone, Debug)]
pub struct DueDelivery {
    pub id: DeliveryId,
    pub webhook_id: WebhookId,
    pub url: String,
    pub secret: String,
    pub body: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// Unix ms the retry window started (creation, or the last replay).
    pub first_at: i64,
}

/// What an attempt leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Try again at this unix ms.
    RetryAt(i64),
    Failed,
}

/// A fresh webhook secret: `whsec_` and 32 random bytes in hex (256 bits, HMAC-SHA256's size).
pub fn new_secret() -> String {
    let bytes: [u8; 32] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("whsec_{hex}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_are_fresh() {
        let (a, b) = (super::new_secret(), super::new_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), 6 + 64);
    }
}
