//! Webhook delivery. Events are recorded in the `events` outbox by the transaction of the change
//! that causes them; here a dispatcher turns each into one delivery per matching webhook, and a
//! delivery loop sends them, signed, through the outbound guard, retrying for a day. Both run in
//! every process that runs workers, on tasks of their own: a delivery never waits behind an
//! encode, and several processes share the work through leases in the database.
//!
//! Guarantees, and where they come from:
//! - nothing skipped across restarts: the dispatcher's cursor is stored, and only moved past
//!   events old enough that no transaction can still commit one before them (`dispatch`);
//! - nothing created twice: one delivery per (event, webhook), a unique key;
//! - nothing sent twice once answered: a delivery's outcome is recorded with its attempt, and a
//!   leased delivery is sent by one node at a time (a node that dies mid-request can only cause
//!   the at-least-once repeat every webhook system has: receivers dedupe on `X-Vidi-Delivery`);
//! - order per (webhook, video): a delivery is not due while an earlier one of the pair is
//!   pending;
//! - one slow or dead endpoint never delays the others: at most `per_endpoint` requests to one
//!   webhook at a time, within a global bound, each bounded by `timeout`.

mod deliver;
mod dispatch;
pub mod retry;
pub mod sign;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use vidi_core::Repo;

/// Settings of webhook delivery.
#[derive(Clone, Debug)]
pub struct HooksConfig {
    /// Requests in flight at most, all webhooks together.
    pub concurrency: usize,
    /// Requests in flight at most to one webhook.
    pub per_endpoint: usize,
    /// One attempt, from connecting to the last byte of the answer kept.
    pub timeout: Duration,
    pub schedule: retry::Schedule,
    /// How often the outbox and the due deliveries are looked at when nothing wakes the loops.
    pub poll: Duration,
    /// `VIDI_OUTBOUND_ALLOW_PRIVATE`.
    pub allow_private: bool,
}

impl Default for HooksConfig {
    fn default() -> Self {
        HooksConfig {
            concurrency: 64,
            per_endpoint: 4,
            timeout: Duration::from_secs(10),
            schedule: retry::Schedule {
                base: Duration::from_secs(5),
                max: Duration::from_secs(3600),
                window: Duration::from_secs(24 * 3600),
            },
            poll: Duration::from_millis(200),
            allow_private: false,
        }
    }
}

/// What both loops share.
struct Ctx {
    repo: Arc<dyn Repo>,
    cfg: HooksConfig,
    guard: vidi_outbound::Guard,
    /// The lease owner name of this process.
    owner: String,
    /// Wakes the delivery loop: deliveries were created, or a send ended (its successor in the
    /// same (webhook, video) order may now go).
    wake: Notify,
    /// Free request slots (the global bound).
    slots: Arc<Semaphore>,
}

/// Webhook delivery as a service of its process: the dispatcher and the delivery loop until the
/// shutdown token fires, then the requests in flight until they end (each is bounded by the
/// attempt timeout), so their outcomes are recorded rather than re-sent.
pub fn service(repo: Arc<dyn Repo>, cfg: HooksConfig) -> anyhow::Result<vidi_core::service::Service> {
    let connect = cfg.timeout.min(Duration::from_secs(10));
    let guard = vidi_outbound::Guard::new(cfg.allow_private, connect)?;
    let ctx = Arc::new(Ctx {
        repo,
        slots: Arc::new(Semaphore::new(cfg.concurrency.max(1))),
        cfg,
        guard,
        owner: format!("hk{}", vidi_core::id::random_body()),
        wake: Notify::new(),
    });
    Ok(vidi_core::service::Service::new("webhooks", move |shutdown: CancellationToken| async move {
        // Tasks of their own, as before they were a service: the runtime may run the two loops
        // on two threads at once. Held in a set the service awaits, so neither outlives it.
        let mut loops = tokio::task::JoinSet::new();
        loops.spawn(dispatch::run(ctx.clone(), shutdown.clone()));
        loops.spawn(deliver::run(ctx.clone(), shutdown));
        while let Some(r) = loops.join_next().await {
            r?;
        }
        let all = ctx.cfg.concurrency.max(1) as u32;
        let _ = ctx.slots.acquire_many(all).await;
        Ok(())
    }))
}
