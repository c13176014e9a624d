//! The dispatcher: reads the events outbox in id order and creates the deliveries.
//!
//! Event ids are time-ordered, drawn when the event is written, but transactions commit in their
//! own order: an event with a smaller id can become visible after a larger one was read. So two
//! cursors: one in memory, read after at every poll (fast), and the stored one, moved only past
//! events older than [`SETTLE`] (by then every transaction that drew a smaller id has committed
//! or failed). Every [`SETTLE_EVERY`] the stretch between the two is read again; deliveries are
//! unique per (event, webhook), so reading an event again creates nothing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use vidi_core::id::EventId;
use vidi_core::time::{now_ms, now_ns};

use crate::Ctx;

/// The stored cursor's name (one dispatcher role; several processes may run it at once).
pub(crate) const CURSOR: &str = "webhooks";
const BATCH: u32 = 500;
/// Far longer than any transaction that records an event takes between drawing its id and
/// committing.
const SETTLE: Duration = Duration::from_secs(10);
const SETTLE_EVERY: Duration = Duration::from_secs(2);

pub(crate) async fn run(ctx: Arc<Ctx>, shutdown: CancellationToken) {
    // Until the stored cursor can be read, nothing is dispatched (starting from the beginning
    // would only re-read, but from the end would skip).
    let mut stored = loop {
        match ctx.repo.webhook_cursor(CURSOR).await {
            Ok(c) => break c,
            Err(e) => tracing::warn!(error = %e, "webhook dispatcher: cannot read its cursor"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    };
    let mut seen = stored.clone();
    let mut settled_at = Instant::now();
    while !shutdown.is_cancelled() {
        let full = match pass(&ctx, &mut seen).await {
            Ok(full) => full,
            Err(e) => {
                tracing::warn!(error = %e, "webhook dispatch failed");
                false
            }
        };
        if settled_at.elapsed() >= SETTLE_EVERY {
            settled_at = Instant::now();
            if let Err(e) = settle(&ctx, &mut stored).await {
                tracing::warn!(error = %e, "webhook dispatcher: settling failed");
            }
        }
        if full {
            continue; // a backlog: no pause between batches
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(ctx.cfg.poll) => {}
        }
    }
}

/// Dispatches the events after `seen`; returns whether a whole batch came (more may wait).
async fn pass(ctx: &Ctx, seen: &mut Option<EventId>) -> vidi_core::CoreResult<bool> {
    let d = ctx.repo.dispatch_events(seen.as_ref(), BATCH, now_ms()).await?;
    if let Some((last, _)) = d.events.last() {
        *seen = Some(last.clone());
    }
    if d.created > 0 {
        ctx.wake.notify_one();
    }
    Ok(d.events.len() as u32 == BATCH)
}

/// Reads again from the stored cursor and moves it past the events that have settled.
async fn settle(ctx: &Ctx, stored: &mut Option<EventId>) -> vidi_core::CoreResult<()> {
    loop {
        let cutoff = now_ns() - SETTLE.as_nanos() as i64;
        let d = ctx.repo.dispatch_events(stored.as_ref(), BATCH, now_ms()).await?;
        if d.created > 0 {
            // A late commit the fast path missed (or the first pass after a restart).
            ctx.wake.notify_one();
        }
        let settled = d.events.iter().take_while(|(_, at)| *at < cutoff).last().map(|(id, _)| id.clone());
        let whole = d.events.len() as u32 == BATCH && d.events.iter().all(|(_, at)| *at < cutoff);
        if let Some(id) = settled {
            ctx.repo.advance_webhook_cursor(CURSOR, &id).await?;
            *stored = Some(id);
        }
        if !whole {
            return Ok(());
        }
    }
}
