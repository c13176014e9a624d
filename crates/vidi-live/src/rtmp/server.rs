//! The accept loop: one tracked task per connection, a cap on open connections, TLS for RTMPS.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout_at};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::{Limits, conn};
use crate::ingest::Publish;

/// Serves RTMP (or RTMPS, with `tls`) on `listener` until `shutdown` fires, then waits for its
/// connections to close (they close on the same token). Each connection is a task of its own;
/// none outlives this function.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    publish: Arc<dyn Publish>,
    limits: Limits,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let scheme = if tls.is_some() { "rtmps" } else { "rtmp" };
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "{scheme}: listening");
    }
    let tracker = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, mostly: let connections close before trying again
                // rather than spinning on the error.
                warn!("{scheme}: accept failed: {e}");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                }
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "{scheme}: connection limit reached; closed unread");
            crate::metrics::over_capacity();
            drop(tcp);
            continue;
        };
        let start = Instant::now();
        let (tls, publish, limits, shutdown) = (tls.clone(), publish.clone(), limits.clone(), shutdown.clone());
        let open = crate::metrics::connection(scheme);
        tracker.spawn(async move {
            let (_slot, _open) = (slot, open);
            connection(tcp, peer, start, tls, publish, limits, shutdown).await;
        });
    }
    tracker.close();
    tracker.wait().await;
    info!("{scheme}: stopped");
    Ok(())
}

async fn connection(
    tcp: TcpStream,
    peer: std::net::SocketAddr,
    start: Instant,
    tls: Option<TlsAcceptor>,
    publish: Arc<dyn Publish>,
    limits: Limits,
    shutdown: CancellationToken,
) {
    // Media is many small writes of replies and acknowledgements; Nagle would delay them.
    let _ = tcp.set_nodelay(true);
    let Some(tls) = tls else {
        return conn::run(tcp, peer, start, publish, limits, shutdown, "rtmp").await;
    };
    let deadline = start + limits.handshake_timeout;
    let stream = tokio::select! {
        _ = shutdown.cancelled() => return,
        r = timeout_at(deadline, tls.accept(tcp)) => match r {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                crate::metrics::closed("rtmps", "protocol");
                return debug!(%peer, "rtmps: TLS handshake failed: {e}");
            }
            Err(_) => {
                crate::metrics::closed("rtmps", "protocol");
                return debug!(%peer, "rtmps: no TLS handshake within the handshake timeout");
            }
        },
    };
    conn::run(stream, peer, start, publish, limits, shutdown, "rtmps").await;
}
