//! The live services a node runs: `live-broadcasts` (the heartbeat of the broadcasts this node
//! holds, the end of those whose node died, and the clean end of this node's own at shutdown),
//! and the RTMP and RTMPS listeners (`rtmp`, `rtmps`).

use vidi_core::live::Broadcast;
use vidi_core::service::Service;
use vidi_core::time::now_ms;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::broadcast::{Broadcasts, Shared};
use crate::ingest::Publish;
use crate::rtmp::Limits;

/// An RTMP listener (`rtmp`), or RTMPS with `tls` (`rtmps`), feeding `broadcasts`.
pub fn rtmp_service(listener: TcpListener, tls: Option<TlsAcceptor>, broadcasts: &Broadcasts) -> Service {
    let name = if tls.is_some() { "rtmps" } else { "rtmp" };
    let publish: Arc<dyn Publish> = Arc::new(broadcasts.clone());
    Service::new(name, move |shutdown| crate::rtmp::serve(listener, tls, publish, Limits::default(), shutdown))
}

/// The `live-broadcasts` service of `broadcasts`.
pub fn broadcasts_service(broadcasts: &Broadcasts) -> Service {
    let b = broadcasts.clone();
    Service::new("live-broadcasts", move |shutdown| async move {
        let every = b.0.cfg.heartbeat;
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => upkeep(&b).await,
                () = shutdown.cancelled() => break,
            }
        }
        // Every broadcast of this node ends cleanly: playlist ended, flag flipped, recording
        // queued. Their publishers are cut.
        b.shut_down().await;
        Ok(())
    })
}

async fn upkeep(b: &Broadcasts) {
    let s = &b.0;
    let now = now_ms();
    if let Err(e) = s.repo.heartbeat_broadcasts(&s.node, now).await {
        tracing::warn!(error = %e, "could not heartbeat this node's broadcasts");
    }
    // A live stream deleted through another node: its broadcast here is cut. One query for all
    // the streams held, whatever their number.
    let held = b.held();
    if !held.is_empty() {
        match s.repo.existing_live_streams(&held).await {
            Ok(existing) => {
                for id in held.iter().filter(|id| !existing.contains(id)) {
                    vidi_core::live::LiveOutput::cut(b, id);
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not check this node's live streams still exist"),
        }
    }
    let stale_before = now - s.cfg.stale_after.as_millis() as i64;
    match s.repo.stale_broadcasts(stale_before).await {
        Ok(stale) => {
            for dead in stale.into_iter().filter(|d| d.node != s.node) {
                end_orphan(s, &dead).await;
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not look for broadcasts of dead nodes"),
    }
}

/// Ends a broadcast whose node stopped heartbeating: `broadcasting` false (unless the stream
/// broadcasts again elsewhere), and its recording made from what reached the media store.
async fn end_orphan(s: &Shared, dead: &Broadcast) {
    tracing::warn!(broadcast = %dead.id, live_stream = %dead.live_stream_id, node = dead.node,
        "the node holding a broadcast is gone: ending it");
    let occurrence = format!("{}:orphaned", dead.id);
    match s.repo.end_orphan(dead, &occurrence, now_ms()).await {
        Ok((Some(b), _)) if b.record => crate::record::queue(s, &b).await,
        Ok(_) => {}
        Err(e) => tracing::warn!(broadcast = %dead.id, error = %e, "could not end an orphaned broadcast"),
    }
}
