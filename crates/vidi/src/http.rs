//! Vidi's own accept loop, in place of `axum::serve`, which has no timeouts and no connection cap:
//! a client that never finishes its headers, or announces a huge body and then stalls, would hold
//! its connection (and its buffers) for as long as it likes, and enough of them exhaust the node.
//!
//! Here every connection is HTTP/1.1 served by hyper with
//! - a header read timeout: complete request headers must arrive within it, counted from the
//!   moment hyper starts waiting for them, so it also closes keep-alive connections left idle;
//! - a request-body idle timeout: a body that delivers no bytes for that long fails, so the
//!   handler answers (or the connection ends) instead of waiting on it;
//! - a cap on open connections: past it, new ones are answered 503 and closed at once;
//! - once a burst of connections has ended, the memory it used is handed back to the OS;
//! - a graceful stop: when the shutdown token is cancelled the listener closes (new connections
//!   are refused by the kernel), every open connection finishes the request it is serving and
//!   closes, and whatever is still open after the grace period is dropped.
//!
//! Only HTTP/1.1: no browser speaks cleartext HTTP/2 (h2c), every api.video client uses
//! HTTP/1.1, and hyper-util's protocol sniffing (`conn::auto`) waits for the first 24 bytes with
//! no timeout at all, while hyper's HTTP/2 server has no header timeout either; offering h2c would
//! reopen exactly the hole this module closes. HTTP/2 belongs to a proxy in front; TLS may be
//! terminated here (`tls.rs`), and its handshake is bounded by the header timeout, so a client
//! that opens a connection and never finishes its handshake is closed like one that never sends
//! its headers.

#[cfg(target_os = "linux")]
pub mod sendfile;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower_http::timeout::RequestBodyTimeout;
use vidi_api::ratelimit::ClientAddr;

/// The edges of the HTTP server (see the module comment).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_idle: Duration,
    pub max_connections: usize,
    /// After a shutdown, how long requests in flight have to finish before their connections
    /// are dropped.
    pub shutdown_grace: Duration,
}

/// Connections the kernel completes before we accept them. `TcpListener::bind` uses 128, which a
/// burst of connects overflows before the accept loop (fast as it is) catches up: past it Linux
/// answers with SYN cookies and drops or resets handshakes, so legitimate clients caught in an
/// attacker's burst would fail. The kernel caps this at `net.core.somaxconn` (4096 by default).
const BACKLOG: u32 = 1024;

/// How often the loop looks at whether a burst of connections has ended.
const TRIM_CHECK: Duration = Duration::from_secs(1);
/// A burst is over once this many fewer connections are open than at its peak.
const TRIM_AFTER_CLOSED: usize = 256;

/// Hands memory freed by a burst of connections back to the OS.
///
/// Each connection's buffers are small allocations, which glibc serves from its per-thread
/// arenas and, once freed, keeps for reuse instead of returning them: after 3,000 slowloris
/// connections (16 KiB into their headers) were closed, `vidi serve` stayed near its peak RSS
/// (measured: 22 MiB before, 113 at the peak, 105 fifteen seconds after the last one closed).
/// That memory is lost to the segment cache and to ffmpeg until the process restarts.
/// `malloc_trim(0)` releases the free pages of every arena (measured: back to 22 MiB within a
/// second); it walks the arenas under their locks (~5 ms here), so it runs only when a burst
/// ends, on a blocking thread, never per connection.
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let start = std::time::Instant::now();
        // SAFETY: malloc_trim only releases free memory; it takes glibc's own locks.
        let released = unsafe { libc::malloc_trim(0) };
        tracing::debug!(released = released != 0, took = ?start.elapsed(), "returned freed memory to the OS");
    }
}

/// Binds `addr` (port 0 picks a free one) with a backlog that absorbs bursts.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    // As `TcpListener::bind` does: a restarted server rebinds at once despite old connections
    // lingering in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Refused connections are counted in one warning per this interval at most: a flood must not
/// turn into a flood of log lines.
const WARN_EVERY: Duration = Duration::from_secs(1);

/// What a connection past the cap gets before it is closed: a client sees why, instead of a
/// bare reset. Written without waiting (a full socket buffer just means a reset instead).
const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\nretry-after: 1\r\n\r\n";

/// Accepts connections on `listener` and serves `app` on each, until `shutdown` is cancelled;
/// then lets the requests in flight finish (within `limits.shutdown_grace`) and returns.
///
/// Past `max_connections`, a new connection is accepted and closed at once rather than left
/// waiting for a slot (a semaphore in front of `accept`): connections nobody accepts pile up in
/// the kernel's backlog, where clients hang with no answer until their own timeouts, legitimate
/// ones behind the attacker's; and when the backlog is full the kernel drops new handshakes
/// silently. An immediate 503 tells a client (or a load balancer) to retry, possibly elsewhere,
/// and costs us one accept.
///
/// With `tls`, each connection's handshake runs in its own task (never in the accept loop) within
/// `limits.header_timeout`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<TlsAcceptor>,
    shutdown: CancellationToken,
) -> io::Result<()> {
    // The body timeout wraps the router, outside every route: whatever a handler does with its
    // body (stream it to storage, parse a form, drain it after a refusal) stops on a stall.
    let service = RequestBodyTimeout::new(app, limits.body_idle);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    // Plain connections send large segments by sendfile, which needs hyper's vectored (queue)
    // write strategy: its body buffers reach the socket as they are (see `sendfile`). The socket
    // type asks for it too; this forces it, whatever hyper's auto-detection may become.
    let mut plain = http.clone();
    plain.writev(true);
    let max = limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let mut refused: u64 = 0;
    let mut last_warn: Option<Instant> = None;
    // Most connections open at once since memory was last handed back (see `trim`).
    let mut peak = 0;
    // Cancelled when the grace period after a shutdown is over: connections still open close.
    let expired = CancellationToken::new();
    let mut check = tokio::time::interval(TRIM_CHECK);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let next_warn = last_warn.map_or_else(Instant::now, |t| t + WARN_EVERY);
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            r = listener.accept() => r,
            _ = check.tick() => {
                let open = max - slots.available_permits();
                if peak >= open + TRIM_AFTER_CLOSED {
                    peak = open;
                    tokio::task::spawn_blocking(trim);
                }
                continue;
            }
            // A burst that ended between two warnings still gets its count logged.
            _ = tokio::time::sleep_until(next_warn), if refused > 0 => {
                warn_refused(&mut refused, &mut last_warn, limits.max_connections);
                continue;
            }
        };
        let (stream, peer) = match accepted {
            Ok((stream, peer)) => (stream, peer),
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                // Out of file descriptors or memory: accepting again at once would spin.
                tracing::error!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            refuse(stream);
            refused += 1;
            if last_warn.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
                warn_refused(&mut refused, &mut last_warn, limits.max_connections);
            }
            continue;
        };
        peak = peak.max(max - slots.available_permits());
        // Small responses (playlists, JSON) must not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let (http, plain, service, tls) = (http.clone(), plain.clone(), service.clone(), tls.clone());
        let (shutdown, expired) = (shutdown.clone(), expired.clone());
        let handshake_limit = limits.header_timeout;
        tokio::spawn(async move {
            match tls {
                None => plain_connection(stream, peer, plain, service, shutdown, expired).await,
                // TLS encrypts in user space: there is no file to hand to the kernel, so no slot.
                Some(tls) => match tokio::time::timeout(handshake_limit, tls.accept(stream)).await {
                    Ok(Ok(stream)) => connection(stream, peer, http, service, None, shutdown, expired).await,
                    // A failed or stalled handshake is a client's problem, not the server's.
                    Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!("TLS handshake timed out"),
                },
            }
            drop(slot);
        });
    }
    // No new connections from here: the kernel refuses them once the listener is closed.
    drop(listener);
    let open = max - slots.available_permits();
    if open > 0 {
        tracing::info!(connections = open, grace = ?limits.shutdown_grace, "stopping: letting requests in flight finish");
    }
    // Every connection task holds a slot until it ends: all slots free means all have ended.
    let every_slot = u32::try_from(max).unwrap_or(u32::MAX);
    let all_closed = slots.acquire_many(every_slot);
    if tokio::time::timeout(limits.shutdown_grace, all_closed).await.is_err() {
        tracing::warn!(
            connections = max - slots.available_permits(),
            "stopping: grace period over; dropping connections"
        );
        expired.cancel();
        // Dropping a connection is immediate; this only waits for the tasks to notice.
        let _ = tokio::time::timeout(Duration::from_secs(1), slots.acquire_many(every_slot)).await;
    }
    Ok(())
}

/// Serves a plain TCP connection: on Linux, through a socket that sends large segments by
/// sendfile, with its slot in every request (see `sendfile`).
async fn plain_connection(
    stream: TcpStream,
    peer: SocketAddr,
    http: http1::Builder,
    service: RequestBodyTimeout<Router>,
    shutdown: CancellationToken,
    expired: CancellationToken,
) {
    #[cfg(target_os = "linux")]
    {
        let slot = vidi_api::sendfile::Slot::new();
        let io = sendfile::SendfileStream::new(stream, slot.clone());
        connection(io, peer, http, service, Some(slot), shutdown, expired).await
    }
    #[cfg(not(target_os = "linux"))]
    connection(stream, peer, http, service, None, shutdown, expired).await
}

/// Serves one connection (plain or TLS) until it ends, or, after a shutdown, until the request it
/// is serving is answered or the grace period expires. With `slot`, every request carries it as
/// an extension: the handlers that send files by sendfile find it there.
async fn connection<I>(
    io: I,
    peer: SocketAddr,
    http: http1::Builder,
    service: RequestBodyTimeout<Router>,
    slot: Option<vidi_api::sendfile::Slot>,
    shutdown: CancellationToken,
    expired: CancellationToken,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = WithSlot { inner: TowerToHyperService::new(service), slot, peer };
    let conn = http.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let ended = tokio::select! {
        r = conn.as_mut() => Some(r),
        () = shutdown.cancelled() => None,
    };
    let ended = match ended {
        Some(r) => r,
        None => {
            // Finish the request being served (an idle connection closes at once), then close
            // instead of keeping the connection alive.
            conn.as_mut().graceful_shutdown();
            tokio::select! {
                r = conn.as_mut() => r,
                () = expired.cancelled() => Ok(()),
            }
        }
    };
    if let Err(e) = ended {
        // Timeouts and resets are the normal end of a misbehaving or vanished client.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// A connection's service: the router, with the connection's sendfile slot (if any) and its
/// peer's address (axum's `ConnectInfo`, which the analytics collector limits by; and as
/// `ClientAddr`, which the rate limits key by) put into each request.
struct WithSlot<S> {
    inner: S,
    slot: Option<vidi_api::sendfile::Slot>,
    peer: SocketAddr,
}

impl<S, B> hyper::service::Service<hyper::Request<B>> for WithSlot<S>
where
    S: hyper::service::Service<hyper::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut req: hyper::Request<B>) -> Self::Future {
        if let Some(slot) = &self.slot {
            req.extensions_mut().insert(slot.clone());
        }
        req.extensions_mut().insert(axum::extract::ConnectInfo(self.peer));
        req.extensions_mut().insert(ClientAddr(self.peer.ip()));
        self.inner.call(req)
    }
}

fn refuse(stream: TcpStream) {
    let _ = stream.try_write(BUSY);
}

fn warn_refused(refused: &mut u64, last_warn: &mut Option<Instant>, max: usize) {
    tracing::warn!(refused = *refused, max_connections = max, "connection limit reached: closed new connections");
    *refused = 0;
    *last_warn = Some(Instant::now());
}

/// Errors that concern only the connection being accepted (it was reset before we took it);
/// anything else is about the listener or the process.
fn is_per_connection(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionRefused
    )
}
