//! The delivery loop: leases due deliveries, within the global and per-webhook bounds, and sends
//! each on a task of its own.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;
use vidi_core::id::WebhookId;
use vidi_core::time::now_ms;
use vidi_core::webhook::{Attempt, DueDelivery, EXCERPT_BYTES, Outcome};
use vidi_outbound::OutboundError;

use crate::{Ctx, retry, sign};

/// A lease outlives the attempt by this much: a node that dies mid-request leaves its delivery
/// to another within `timeout + LEASE_MARGIN`.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// Requests in flight per webhook, in this process.
type InFlight = Arc<Mutex<HashMap<WebhookId, usize>>>;

pub(crate) async fn run(ctx: Arc<Ctx>, shutdown: CancellationToken) {
    let in_flight: InFlight = Default::default();
    let per = ctx.cfg.per_endpoint.max(1);
    while !shutdown.is_cancelled() {
        let free = ctx.slots.available_permits();
        if free > 0 {
            let now = now_ms();
            match ctx.repo.due_deliveries(now, per as u32, (free * 2).min(1000) as u32).await {
                Ok(due) => {
                    for (id, hook) in due {
                        if in_flight.lock().expect("not poisoned").get(&hook).copied().unwrap_or(0) >= per {
                            continue;
                        }
                        let Ok(permit) = ctx.slots.clone().try_acquire_owned() else { break };
                        let until = now + (ctx.cfg.timeout + LEASE_MARGIN).as_millis() as i64;
                        match ctx.repo.lease_delivery(&id, &ctx.owner, now, until).await {
                            Ok(Some(d)) => {
                                *in_flight.lock().expect("not poisoned").entry(hook).or_default() += 1;
                                tokio::spawn(send(ctx.clone(), d, permit, in_flight.clone()));
                            }
                            Ok(None) => {} // another node took it
                            Err(e) => tracing::warn!(delivery = %id, error = %e, "cannot lease a delivery"),
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read due webhook deliveries"),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ctx.wake.notified() => {}
            _ = tokio::time::sleep(ctx.cfg.poll) => {}
        }
    }
}

/// Makes one attempt and records it with its outcome.
async fn send(ctx: Arc<Ctx>, d: DueDelivery, permit: OwnedSemaphorePermit, in_flight: InFlight) {
    let (attempt, result) = attempt(&ctx, &d).await;
    let outcome = retry::outcome(&ctx.cfg.schedule, &result, d.attempts + 1, d.first_at, now_ms());
    let label = match outcome {
        Outcome::Delivered => "delivered",
        Outcome::RetryAt(_) => "retried",
        Outcome::Failed => "failed",
    };
    metrics::counter!(vidi_core::metric_names::WEBHOOK_ATTEMPTS, "outcome" => label).increment(1);
    match outcome {
        Outcome::Delivered => tracing::debug!(delivery = %d.id, "webhook delivered"),
        Outcome::RetryAt(at) => {
            tracing::info!(delivery = %d.id, status = ?attempt.status, error = ?attempt.error, retry_at = at, "webhook attempt failed")
        }
        Outcome::Failed => {
            tracing::warn!(delivery = %d.id, status = ?attempt.status, error = ?attempt.error, "webhook delivery given up")
        }
    }
    if let Err(e) = ctx.repo.record_attempt(&d.id, &ctx.owner, &attempt, outcome).await {
        // The lease expires and another attempt follows: the receiver may get it twice, which
        // beats never.
        tracing::warn!(delivery = %d.id, error = %e, "cannot record a webhook attempt");
    }
    {
        let mut map = in_flight.lock().expect("not poisoned");
        if let Some(n) = map.get_mut(&d.webhook_id) {
            *n -= 1;
            if *n == 0 {
                map.remove(&d.webhook_id);
            }
        }
    }
    drop(permit);
    ctx.wake.notify_one();
}

async fn attempt(ctx: &Ctx, d: &DueDelivery) -> (Attempt, Result<vidi_outbound::Answer, OutboundError>) {
    let at = now_ms();
    let started = Instant::now();
    let timestamp = at.div_euclid(1000);
    let body = d.body.as_bytes();
    let headers = [
        ("content-type", "application/json".to_string()),
        ("x-api-video-webhookid", d.webhook_id.to_string()),
        ("x-api-video-signature", sign::body_signature(&d.secret, body)),
        ("x-vidi-timestamp", timestamp.to_string()),
        ("x-vidi-signature", sign::timed_signature(&d.secret, timestamp, body)),
        ("x-vidi-delivery", d.id.to_string()),
        ("x-vidi-attempt", (d.attempts + 1).to_string()),
    ];
    let result = match ctx.guard.check(&d.url) {
        Ok(url) => ctx.guard.post(&url, &headers, Bytes::copy_from_slice(body), ctx.cfg.timeout, EXCERPT_BYTES).await,
        Err(e) => Err(e),
    };
    let latency_ms = started.elapsed().as_millis() as i64;
    let attempt = match &result {
        Ok(a) => Attempt {
            n: d.attempts + 1,
            at,
            status: Some(a.status),
            latency_ms,
            error: None,
            // PostgreSQL's text holds no NUL.
            excerpt: String::from_utf8_lossy(&a.excerpt).replace('\0', "\u{fffd}"),
        },
        Err(e) => Attempt {
            n: d.attempts + 1,
            at,
            status: None,
            latency_ms,
            error: Some(e.to_string()),
            excerpt: String::new(),
        },
    };
    (attempt, result)
}
