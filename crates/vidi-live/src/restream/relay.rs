//! The pusher's one way out: ffmpeg pushes plain RTMP to a loopback port of the pusher, and the
//! relay behind it makes the real connection. Doing the connection here rather than in ffmpeg:
//! - the outbound guard checks the address that is actually connected to: the name is resolved
//!   once, forbidden addresses dropped, and the connection made to an address that passed, so a
//!   name re-bound between the check and the connection (DNS rebinding) cannot reach anything
//!   the guard refuses;
//! - `rtmps://` is TLS made by rustls with the name of the URL (SNI and certificate checked
//!   against it, the platform's roots) while connecting to the checked address: ffmpeg's own
//!   TLS, given an address, would send no SNI and check the certificate against the address;
//! - the pusher's state comes from the real connection: connecting, connected, bytes sent.
//!
//! ffmpeg is told the destination's own app and tcUrl (`-rtmp_app`, `-rtmp_tcurl`), so the
//! receiver sees the URL the user gave, not the loopback port.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Bytes sent to a destination on one connection past which it counts as taking media: the RTMP
/// handshake, `connect` and `publish` take under 5 KB.
pub const PUSHING_AFTER: u64 = 16 * 1024;

/// How long a connection (TCP, then TLS) to a destination may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A restream destination's server, from its `serverUrl`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub tls: bool,
    /// The name or address of the URL (no brackets), for the TLS name and the logs.
    pub host: String,
    pub port: u16,
    /// The RTMP application: the URL's path (and query) without the leading slash.
    pub app: String,
    /// What ffmpeg announces as `tcUrl`: the server URL as the user gave it.
    pub tc_url: String,
}

impl Server {
    /// Parses `rtmp://host[:port]/app` or `rtmps://…`.
    pub fn parse(server_url: &str) -> Result<Server, String> {
        let url = url::Url::parse(server_url.trim()).map_err(|e| format!("the server URL is not a URL: {e}"))?;
        let (tls, default_port) = match url.scheme() {
            "rtmp" => (false, 1935),
            "rtmps" => (true, 443),
            other => return Err(format!("the server URL's scheme is {other}, not rtmp or rtmps")),
        };
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or("the server URL has no host")?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let mut app = url.path().trim_matches('/').to_string();
        if let Some(query) = url.query() {
            app = format!("{app}?{query}");
        }
        if app.is_empty() {
            return Err("the server URL has no application (rtmp://host/app)".into());
        }
        let tc_url = server_url.trim().trim_end_matches('/').to_string();
        Ok(Server { tls, host, port: url.port().unwrap_or(default_port), app, tc_url })
    }

    /// The address written in the URL, if it is one.
    pub fn literal(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

/// Where the current (or last) connection of a pusher is.
#[derive(Clone, Debug, Default)]
pub struct Link {
    /// Connections ffmpeg made to the relay.
    pub attempts: u64,
    pub connected: bool,
    /// Bytes sent to the destination by the current connection.
    pub sent: u64,
    /// Why the last connection failed or ended, in the relay's words.
    pub error: Option<String>,
}

pub struct Relay {
    pub listener: TcpListener,
    pub server: Server,
    pub guard: vidi_outbound::Guard,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub link: Arc<Mutex<Link>>,
}

impl Relay {
    /// Relays ffmpeg's connections, one at a time (a pusher runs one ffmpeg at a time), until
    /// `done` fires. A connection under way when it does is relayed to its end (the end of a
    /// broadcast: what ffmpeg wrote before it exited must reach the destination), unless `stop`
    /// fires too (a destination that stopped reading must not hold the pusher).
    pub async fn serve(self, done: CancellationToken, stop: CancellationToken) {
        loop {
            let client = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((client, _)) => client,
                    Err(e) => {
                        tracing::warn!(error = %e, "restream relay: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = done.cancelled() => return,
            };
            let mut attempt = 0;
            self.update(|l| {
                *l = Link { attempts: l.attempts + 1, ..Link::default() };
                attempt = l.attempts;
            });
            tracing::info!(attempt, "restream: connecting");
            let outcome = tokio::select! {
                r = self.relay(client) => r,
                () = stop.cancelled() => return,
            };
            match &outcome {
                Ok(()) => tracing::info!(attempt, "restream: ffmpeg ended the stream"),
                Err(error) => tracing::warn!(attempt, %error, "restream: failed; retrying with backoff"),
            }
            self.update(|l| {
                l.connected = false;
                l.error = outcome.err();
            });
        }
    }

    fn update(&self, f: impl FnOnce(&mut Link)) {
        f(&mut self.link.lock().unwrap_or_else(|p| p.into_inner()));
    }

    async fn relay(&self, client: TcpStream) -> Result<(), String> {
        let upstream = connect(&self.server, &self.guard).await?;
        let _ = upstream.set_nodelay(true);
        let _ = client.set_nodelay(true);
        match &self.tls {
            None => self.pump(client, upstream).await,
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(self.server.host.clone())
                    .map_err(|_| "the server URL's host is not a valid TLS name".to_string())?;
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, upstream))
                    .await
                    .map_err(|_| "the TLS handshake timed out".to_string())?
                    .map_err(|e| format!("the TLS handshake failed: {e}"))?;
                self.pump(client, tls).await
            }
        }
    }

    /// Copies both ways until either side ends, counting what goes to the destination.
    async fn pump<S: AsyncRead + AsyncWrite>(&self, client: TcpStream, upstream: S) -> Result<(), String> {
        self.update(|l| l.connected = true);
        tracing::info!(tls = self.server.tls, "restream: connected");
        let mut sent = 0u64;
        let (mut from_client, mut to_client) = client.into_split();
        let (mut from_up, mut to_up) = tokio::io::split(upstream);
        let out = async {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = from_client.read(&mut buf).await.map_err(|e| format!("ffmpeg's side failed: {e}"))?;
                if n == 0 {
                    let _ = to_up.shutdown().await;
                    return Ok(());
                }
                to_up.write_all(&buf[..n]).await.map_err(|e| format!("the destination stopped taking data: {e}"))?;
                self.update(|l| l.sent += n as u64);
                if sent <= PUSHING_AFTER && sent + n as u64 > PUSHING_AFTER {
                    tracing::info!("restream: pushing");
                }
                sent += n as u64;
            }
        };
        let back = async {
            match tokio::io::copy(&mut from_up, &mut to_client).await {
                Ok(_) => Err("the destination closed the connection".to_string()),
                Err(e) => Err(format!("the destination's connection failed: {e}")),
            }
        };
        tokio::select! {
            r = out => r,
            r = back => r,
        }
    }
}

/// Resolves the destination once, keeps the addresses the guard allows, and connects to the
/// first that answers.
pub async fn connect(server: &Server, guard: &vidi_outbound::Guard) -> Result<TcpStream, String> {
    let found: Vec<SocketAddr> = match server.literal() {
        Some(ip) => vec![SocketAddr::new(ip, server.port)],
        None => tokio::net::lookup_host((server.host.as_str(), server.port))
            .await
            .map_err(|e| format!("{} could not be resolved: {e}", server.host))?
            .collect(),
    };
    let allowed: Vec<SocketAddr> = found.iter().copied().filter(|a| guard.allows(a.ip())).collect();
    if allowed.is_empty() {
        return Err(if found.is_empty() {
            format!("{} has no address", server.host)
        } else {
            format!("{}: {}", server.host, vidi_outbound::OutboundError::Forbidden)
        });
    }
    let mut last = String::new();
    for addr in allowed {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => last = format!("{addr}: the connection timed out"),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_give_app_port_and_tc_url() {
        let s = Server::parse("rtmp://a.rtmp.youtube.com/live2").unwrap();
        assert_eq!(
            s,
            Server {
                tls: false,
                host: "a.rtmp.youtube.com".into(),
                port: 1935,
                app: "live2".into(),
                tc_url: "rtmp://a.rtmp.youtube.com/live2".into()
            }
        );
        let s = Server::parse("rtmps://live-api-s.facebook.com:443/rtmp/").unwrap();
        assert_eq!((s.tls, s.port, s.app.as_str()), (true, 443, "rtmp"));
        assert_eq!(s.tc_url, "rtmps://live-api-s.facebook.com:443/rtmp");
        let s = Server::parse("rtmp://[::1]:1936/app/inst").unwrap();
        assert_eq!((s.host.as_str(), s.port, s.app.as_str()), ("::1", 1936, "app/inst"));
        assert_eq!(s.literal(), Some("::1".parse().unwrap()));
        assert_eq!(Server::parse("rtmp://127.0.0.1/live").unwrap().literal(), Some([127, 0, 0, 1].into()));
        for bad in ["http://example.com/live", "rtmp://example.com", "rtmp://example.com/", "not a url"] {
            assert!(Server::parse(bad).is_err(), "{bad}");
        }
    }
}
