//! One publisher's connection: the sans-IO [`Conn`] (bytes in, bytes out and [`Action`]s), and
//! [`run`], which drives it over a socket with the deadlines of [`Limits`].
//!
//! The order is the point: the RTMP handshake, `connect` to app `s`, `publish` of a stream key,
//! then [`Publish::begin`] decides, and only an admitted publisher's media becomes events (rml_rtmp
//! drops media on a stream it has not accepted).

use std::net::SocketAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{Instant, sleep_until, timeout_at};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Limits;
use super::chunks::ChunkGuard;
use super::flv::{self, Clock, Tag};
use crate::ingest::{Feed, Publish};
use crate::media::MediaEvent;

/// The one RTMP application: `rtmp://HOST/s/{streamKey}`.
pub(super) const APP: &str = "s";

/// The longest message before a publisher is admitted. Until then a peer sends only commands
/// (`connect`, `publish`: a few hundred bytes), and anyone can connect: keeping this small
/// bounds what unadmitted connections can make the node hold.
const MAX_MESSAGE_BEFORE_ADMISSION: u32 = 64 << 10;

/// What the driver must do after some input.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// The peer asked to publish this key: call [`Publish::begin`], then [`Conn::accept`] or
    /// [`Conn::refuse`]. No media is taken before.
    Publish(String),
    Media(MediaEvent),
}

/// Why a connection closes. Every variant is logged with the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Closed {
    #[error("the publisher finished")]
    Finished,
    #[error("{0}")]
    Refused(String),
    /// Media the segmenter cannot take (another codec, a malformed configuration): the
    /// publisher's operator has to change a setting, so this is logged as a warning.
    #[error("{0}")]
    Media(String),
    #[error("protocol error: {0}")]
    Protocol(String),
    /// rml_rtmp panicked on the input. The guard exists so that this never happens; the
    /// property tests assert it.
    #[error("the RTMP parser panicked on the input")]
    ParserPanic,
}

impl Closed {
    /// The `outcome` label of `vidi_rtmp_connections_closed_total`.
    fn label(&self) -> &'static str {
        match self {
            Closed::Finished => "finished",
            Closed::Refused(_) => "refused",
            Closed::Media(_) => "media",
            Closed::Protocol(_) => "protocol",
            Closed::ParserPanic => "parser_panic",
        }
    }
}

enum Phase {
    Handshake(Box<Handshake>),
    Session(Box<ServerSession>),
}

/// A connection's protocol state, without a socket.
pub(crate) struct Conn {
    phase: Phase,
    guard: ChunkGuard,
    /// The longest message once admitted.
    max_message: u32,
    clock: Clock,
    /// The `publish` request waiting for [`Publish::begin`]'s answer.
    pending_publish: Option<u32>,
    publishing: bool,
    out: Vec<u8>,
}

impl Conn {
    pub(crate) fn new(max_message: u32) -> Self {
        Conn {
            phase: Phase::Handshake(Box::new(Handshake::new(PeerType::Server))),
            guard: ChunkGuard::new(max_message.min(MAX_MESSAGE_BEFORE_ADMISSION)),
            max_message,
            clock: Clock::default(),
            pending_publish: None,
            publishing: false,
            out: Vec::new(),
        }
    }

    pub(crate) fn handshaken(&self) -> bool {
        matches!(self.phase, Phase::Session(_))
    }

    /// The bytes to send, in order.
    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// What the guard holds as the bound of this connection's parser memory.
    #[cfg(test)]
    pub(crate) fn pending_bytes(&self) -> usize {
        self.guard.pending()
    }

    /// Feeds bytes from the peer. `Err` means: send [`Conn::take_output`] if you like, then
    /// close.
    pub(crate) fn input(&mut self, bytes: &[u8]) -> Result<Vec<Action>, Closed> {
        let mut actions = Vec::new();
        let Phase::Handshake(h) = &mut self.phase else {
            self.chunks(bytes, &mut actions)?;
            return Ok(actions);
        };
        match h.process_bytes(bytes) {
            Ok(HandshakeProcessResult::InProgress { response_bytes }) => {
                self.out.extend_from_slice(&response_bytes);
            }
            Ok(HandshakeProcessResult::Completed { response_bytes, remaining_bytes }) => {
                self.out.extend_from_slice(&response_bytes);
                let (session, results) =
                    ServerSession::new(ServerSessionConfig::new()).map_err(|e| Closed::Protocol(e.to_string()))?;
                self.phase = Phase::Session(Box::new(session));
                self.results(results, &mut actions)?;
                self.chunks(&remaining_bytes, &mut actions)?;
            }
            Err(e) => return Err(Closed::Protocol(format!("handshake: {e:?}"))),
        }
        Ok(actions)
    }

    /// Chunk stream bytes: through the guard, then rml_rtmp's session.
    fn chunks(&mut self, bytes: &[u8], actions: &mut Vec<Action>) -> Result<(), Closed> {
        if bytes.is_empty() {
            return Ok(());
        }
        let Phase::Session(session) = &mut self.phase else { unreachable!("chunks follow the handshake") };
        let guard = &mut self.guard;
        // The guard is there so that rml_rtmp never panics; should a case slip past it, the
        // panic closes this connection only.
        let results = catch_unwind(AssertUnwindSafe(|| {
            guard.check(bytes).map_err(|e| Closed::Protocol(e.to_string()))?;
            session.handle_input(bytes).map_err(|e| Closed::Protocol(e.to_string()))
        }))
        .map_err(|_| Closed::ParserPanic)??;
        self.results(results, actions)
    }

    /// Admits the pending publisher (after [`Publish::begin`] said yes).
    pub(crate) fn accept(&mut self) -> Result<(), Closed> {
        let id = self.pending_publish.take().expect("a publish request is pending");
        let results = self.session()?.accept_request(id).map_err(|e| Closed::Protocol(e.to_string()))?;
        self.publishing = true;
        self.guard.set_max_message(self.max_message);
        self.results(results, &mut Vec::new())
    }

    /// Answers the pending `publish` with an error status (the reason is not sent: a key
    /// guesser learns nothing).
    pub(crate) fn refuse(&mut self) {
        if let Some(id) = self.pending_publish.take()
            && let Ok(session) = self.session()
            && let Ok(results) = session.reject_request(id, "NetStream.Publish.BadName", "publish refused")
        {
            let _ = self.results(results, &mut Vec::new());
        }
    }

    fn session(&mut self) -> Result<&mut ServerSession, Closed> {
        match &mut self.phase {
            Phase::Session(s) => Ok(s),
            Phase::Handshake(_) => Err(Closed::Protocol("no session yet".into())),
        }
    }

    fn results(&mut self, results: Vec<ServerSessionResult>, actions: &mut Vec<Action>) -> Result<(), Closed> {
        for result in results {
            match result {
                ServerSessionResult::OutboundResponse(packet) => self.out.extend_from_slice(&packet.bytes),
                ServerSessionResult::RaisedEvent(event) => self.event(event, actions)?,
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
            }
        }
        Ok(())
    }

    fn event(&mut self, event: ServerSessionEvent, actions: &mut Vec<Action>) -> Result<(), Closed> {
        match event {
            ServerSessionEvent::ConnectionRequested { request_id, app_name } => {
                if app_name != APP {
                    let results = self
                        .session()?
                        .reject_request(request_id, "NetConnection.Connect.Rejected", "unknown app")
                        .map_err(|e| Closed::Protocol(e.to_string()))?;
                    self.results(results, actions)?;
                    return Err(Closed::Refused(format!(
                        "app {:?} refused: the ingest URL is rtmp://HOST/{APP}/STREAM_KEY",
                        prefix(&app_name, 16)
                    )));
                }
                let results =
                    self.session()?.accept_request(request_id).map_err(|e| Closed::Protocol(e.to_string()))?;
                self.results(results, actions)?;
            }
            ServerSessionEvent::PublishStreamRequested { request_id, stream_key, .. } => {
                if self.publishing || self.pending_publish.is_some() {
                    return Err(Closed::Refused("a second publish on one connection".into()));
                }
                self.pending_publish = Some(request_id);
                actions.push(Action::Publish(stream_key));
            }
            ServerSessionEvent::PlayStreamRequested { request_id, .. } => {
                if let Ok(results) =
                    self.session()?.reject_request(request_id, "NetStream.Play.Failed", "this server only ingests")
                {
                    self.results(results, actions)?;
                }
                return Err(Closed::Refused("play refused: this is an ingest".into()));
            }
            ServerSessionEvent::PublishStreamFinished { .. } => return Err(Closed::Finished),
            ServerSessionEvent::VideoDataReceived { data, timestamp, .. } => {
                let dts = self.clock.unwrap(timestamp.value);
                self.media(flv::video(&data, dts), actions)?
            }
            ServerSessionEvent::AudioDataReceived { data, timestamp, .. } => {
                let dts = self.clock.unwrap(timestamp.value);
                self.media(flv::audio(&data, dts), actions)?
            }
            ServerSessionEvent::StreamMetadataChanged { metadata, .. } => {
                debug!(?metadata, "rtmp: publisher metadata");
            }
            _ => {}
        }
        Ok(())
    }

    fn media(&mut self, tag: Result<Tag, flv::Unsupported>, actions: &mut Vec<Action>) -> Result<(), Closed> {
        if !self.publishing {
            return Ok(());
        }
        match tag {
            Ok(Tag::Event(event)) => actions.push(Action::Media(event)),
            Ok(Tag::Skip) => {}
            Err(e) => return Err(Closed::Media(e.to_string())),
        }
        Ok(())
    }
}

/// The first characters of a peer-chosen string, for logs (a stream key is a secret; an app
/// name may be anything).
pub(super) fn prefix(s: &str, n: usize) -> String {
    let p: String = s.chars().take(n).collect();
    if p.len() < s.len() { format!("{p}…") } else { p }
}

/// Drives one connection until it closes, whatever the reason; logs the reason.
pub(super) async fn run<S>(
    mut stream: S,
    peer: SocketAddr,
    start: Instant,
    publish: Arc<dyn Publish>,
    limits: Limits,
    shutdown: CancellationToken,
    scheme: &'static str,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut io = Io {
        stream: &mut stream,
        conn: Conn::new(limits.max_message_bytes),
        buf: vec![0u8; limits.read_buffer_bytes.max(1)],
        shutdown: &shutdown,
    };
    let mut key = String::new();
    let outcome = match admit(&mut io, &mut key, peer, start, &*publish, &limits).await {
        Ok(feed) => {
            info!(%peer, key = %key, "rtmp: publisher admitted");
            stream_media(&mut io, feed, &limits).await
        }
        Err(closed) => closed,
    };
    crate::metrics::closed(scheme, outcome.label());
    // A refusal's status message is worth a try; a peer that does not read gets no more time.
    let out = io.conn.take_output();
    let grace = Duration::from_secs(1).min(limits.handshake_timeout);
    if !out.is_empty() {
        let _ = tokio::time::timeout(grace, stream.write_all(&out)).await;
    }
    let _ = tokio::time::timeout(grace, stream.shutdown()).await;
    // Before a publish, a close is a scanner, a typo'd URL or a stalled client: debug, so a
    // port scan does not flood the log. A refused codec is the publisher operator's to fix.
    match outcome {
        Closed::Finished => info!(%peer, key = %key, "rtmp: publisher finished"),
        Closed::Media(reason) => warn!(%peer, key = %key, "rtmp: publisher refused: {reason}"),
        Closed::Refused(reason) => info!(%peer, key = %key, "rtmp: refused: {reason}"),
        Closed::Protocol(reason) if key.is_empty() => debug!(%peer, "rtmp: closed: {reason}"),
        Closed::Protocol(reason) => info!(%peer, key = %key, "rtmp: closed: {reason}"),
        Closed::ParserPanic => warn!(%peer, key = %key, "rtmp: closed: {}", Closed::ParserPanic),
    }
}

/// A connection's socket, protocol state and read buffer (bounded: one read at a time).
struct Io<'a, S> {
    stream: &'a mut S,
    conn: Conn,
    buf: Vec<u8>,
    shutdown: &'a CancellationToken,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Io<'_, S> {
    /// Reads once, parses, answers; the actions the input caused. Closes at `deadline`, at
    /// shutdown, and when `cut` fires.
    async fn step(
        &mut self,
        deadline: Instant,
        late: &str,
        cut: Option<&CancellationToken>,
    ) -> Result<Vec<Action>, Closed> {
        let never = CancellationToken::new();
        let cut = cut.unwrap_or(&never);
        let n = tokio::select! {
            _ = self.shutdown.cancelled() => return Err(stopping()),
            _ = cut.cancelled() => return Err(Closed::Refused("cut by the broadcast".into())),
            _ = sleep_until(deadline) => return Err(Closed::Protocol(late.into())),
            r = self.stream.read(&mut self.buf) => match r {
                Ok(0) => return Err(Closed::Protocol("the peer closed the connection".into())),
                Ok(n) => n,
                Err(e) => return Err(Closed::Protocol(format!("read: {e}"))),
            },
        };
        let actions = self.conn.input(&self.buf[..n])?;
        self.flush(deadline).await?;
        Ok(actions)
    }

    /// Sends what the session produced, within `deadline`: a peer that does not read its
    /// replies is not waited for.
    async fn flush(&mut self, deadline: Instant) -> Result<(), Closed> {
        let out = self.conn.take_output();
        if out.is_empty() {
            return Ok(());
        }
        tokio::select! {
            _ = self.shutdown.cancelled() => Err(stopping()),
            r = timeout_at(deadline, self.stream.write_all(&out)) => match r {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(Closed::Protocol(format!("write: {e}"))),
                Err(_) => Err(Closed::Protocol("the peer does not read its replies".into())),
            },
        }
    }
}

fn stopping() -> Closed {
    Closed::Refused("the server is stopping".into())
}

/// Up to the publisher's admission: the handshake within the handshake timeout, the `publish`
/// (and [`Publish::begin`]'s answer) within the publish timeout, both counted from the accept.
async fn admit<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Io<'_, S>,
    key_prefix: &mut String,
    peer: SocketAddr,
    start: Instant,
    publish: &dyn Publish,
    limits: &Limits,
) -> Result<Box<dyn Feed>, Closed> {
    loop {
        let (deadline, late) = if io.conn.handshaken() {
            (start + limits.publish_timeout, "no publish within the publish timeout")
        } else {
            (start + limits.handshake_timeout, "no RTMP handshake within the handshake timeout")
        };
        // A publish is the only action before admission (rml_rtmp raises no media on a stream
        // it has not accepted, and a second publish closes the connection in `Conn`).
        let Some(action) = io.step(deadline, late, None).await?.into_iter().next() else {
            continue;
        };
        let Action::Publish(key) = action else {
            return Err(Closed::Protocol("media before publish".into()));
        };
        *key_prefix = prefix(&key, 6);
        let begun = tokio::select! {
            _ = io.shutdown.cancelled() => return Err(stopping()),
            r = timeout_at(deadline, publish.begin(&key, peer)) => r.map_err(|_| {
                Closed::Protocol("no publish decision within the publish timeout".into())
            })?,
        };
        return match begun {
            Ok(feed) => {
                io.conn.accept()?;
                io.flush(Instant::now() + limits.media_timeout).await?;
                Ok(feed)
            }
            Err(refusal) => {
                crate::metrics::publish_refused(&refusal);
                io.conn.refuse();
                Err(Closed::Refused(format!("publish refused: {refusal}")))
            }
        };
    }
}

/// The publishing phase: read, turn into events, push; until the peer stops, goes silent for
/// the media timeout, sends what is refused, or the feed is cut.
async fn stream_media<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut Io<'_, S>,
    mut feed: Box<dyn Feed>,
    limits: &Limits,
) -> Closed {
    // An owned clone of the feed's token: the loop waits on it while it pushes into the feed.
    let cut = feed.cut();
    let mut last_media = Instant::now();
    loop {
        let deadline = last_media + limits.media_timeout;
        let actions = match io.step(deadline, "no media within the media timeout", Some(&cut)).await {
            Ok(actions) => actions,
            Err(closed) => return closed,
        };
        for action in actions {
            let Action::Media(event) = action else {
                return Closed::Refused("a second publish on one connection".into());
            };
            // Back-pressure: while the feed waits, this connection reads nothing more.
            tokio::select! {
                _ = io.shutdown.cancelled() => return stopping(),
                _ = cut.cancelled() => return Closed::Refused("cut by the broadcast".into()),
                r = feed.push(event) => if let Err(e) = r {
                    return Closed::Refused(format!("the broadcast refused media: {e:#}"));
                },
            }
            // Counted after the push: time spent waiting on the feed is not the publisher's
            // silence.
            last_media = Instant::now();
        }
    }
}
