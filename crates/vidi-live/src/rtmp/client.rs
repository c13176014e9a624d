//! A minimal RTMP publisher over rml_rtmp's client session, for the tests and the load
//! generator (`examples/live_load.rs`), which both drive the ingest as OBS or ffmpeg would:
//! the handshake, `connect` to an application, `publish` of a stream key, then media. Not used
//! by the server itself.

use std::time::Duration;

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A publishing client: its socket, its session, and the events the server's answers raised.
pub struct Publisher {
    pub tcp: TcpStream,
    pub session: ClientSession,
    pub events: Vec<ClientSessionEvent>,
    /// How long [`Publisher::until`] waits for each read.
    pub wait: Duration,
}

impl Publisher {
    /// Over `tcp`: the handshake, `connect` to `app`, `publish` of `key` (live); returns once the
    /// server accepted the publishing, each answer awaited for at most `wait`.
    pub async fn start(tcp: TcpStream, app: &str, key: &str, wait: Duration) -> std::io::Result<Publisher> {
        let mut tcp = tcp;
        let mut hs = Handshake::new(PeerType::Client);
        tcp.write_all(&hs.generate_outbound_p0_and_p1().map_err(std::io::Error::other)?).await?;
        let mut buf = vec![0u8; 8192];
        let remaining = loop {
            let n = tokio::time::timeout(wait, tcp.read(&mut buf)).await??;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            match hs.process_bytes(&buf[..n]).map_err(std::io::Error::other)? {
                HandshakeProcessResult::InProgress { response_bytes } => tcp.write_all(&response_bytes).await?,
                HandshakeProcessResult::Completed { response_bytes, remaining_bytes } => {
                    tcp.write_all(&response_bytes).await?;
                    break remaining_bytes;
                }
            }
        };
        let (session, first) = ClientSession::new(ClientSessionConfig::new()).map_err(std::io::Error::other)?;
        let mut p = Publisher { tcp, session, events: Vec::new(), wait };
        p.results(first).await?;
        let r = p.session.handle_input(&remaining).map_err(std::io::Error::other)?;
        p.results(r).await?;
        let r = p.session.request_connection(app.into()).map_err(std::io::Error::other)?;
        p.results(vec![r]).await?;
        p.until(|e| matches!(e, ClientSessionEvent::ConnectionRequestAccepted)).await?;
        let r = p.session.request_publishing(key.into(), PublishRequestType::Live).map_err(std::io::Error::other)?;
        p.results(vec![r]).await?;
        p.until(|e| matches!(e, ClientSessionEvent::PublishRequestAccepted)).await?;
        Ok(p)
    }

    /// Sends the session's outbound packets and keeps its events.
    pub async fn results(&mut self, results: Vec<ClientSessionResult>) -> std::io::Result<()> {
        for r in results {
            match r {
                ClientSessionResult::OutboundResponse(p) => self.tcp.write_all(&p.bytes).await?,
                ClientSessionResult::RaisedEvent(e) => self.events.push(e),
                ClientSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(())
    }

    /// Reads the server's answers until an event `want` has been raised.
    pub async fn until(&mut self, want: impl Fn(&ClientSessionEvent) -> bool) -> std::io::Result<()> {
        let mut buf = vec![0u8; 8192];
        while !self.events.iter().any(&want) {
            let n = tokio::time::timeout(self.wait, self.tcp.read(&mut buf)).await??;
            if n == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let r = self.session.handle_input(&buf[..n]).map_err(std::io::Error::other)?;
            self.results(r).await?;
        }
        Ok(())
    }
}
