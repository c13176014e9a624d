//! The seam between a publisher's connection (the [`crate::rtmp`] service) and the broadcast it
//! feeds. The RTMP side knows sockets, chunks and FLV; the other side knows live streams, the
//! database, the segmenter and storage. Each side is tested against the other's trait.

use std::net::SocketAddr;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::media::MediaEvent;

/// Why a publisher is refused. The RTMP side answers `publish` with an error status and closes
/// the connection; the reason goes to the log, never to the publisher (a key guesser learns
/// nothing from it).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("no live stream has this stream key")]
    UnknownKey,
    #[error("another publisher is sending media to this live stream")]
    Busy,
    #[error("the server is stopping")]
    ShuttingDown,
    #[error("{0}")]
    Other(String),
}

/// Admits publishers. Implemented by the broadcasts (the live streams in the database); the RTMP
/// tests implement it with a map.
#[async_trait]
pub trait Publish: Send + Sync + 'static {
    /// A publisher asked to publish `stream_key` (the name after `rtmp://HOST/s/`), from `peer`.
    /// Called at RTMP `publish`, before any media is accepted.
    ///
    /// The one-publisher rule is the implementor's: while a feed of this key is open and has
    /// had media within the silence limit, a second publisher is refused with
    /// [`Refusal::Busy`]; a feed that has gone silent is cut (its [`Feed::cut`] token fires) and
    /// the new publisher takes its place.
    async fn begin(&self, stream_key: &str, peer: SocketAddr) -> Result<Box<dyn Feed>, Refusal>;
}

/// The media of one admitted publisher. Dropped when its connection ends, however it ends.
#[async_trait]
pub trait Feed: Send + 'static {
    /// The next event, in the publisher's order. Back-pressure is the implementor's: it may
    /// wait (a full queue), which stops reading from the socket.
    async fn push(&mut self, event: MediaEvent) -> anyhow::Result<()>;

    /// Fired when the broadcast side wants this publisher gone (replaced by a newer one, the
    /// live stream deleted, the server stopping): the connection then closes. A token rather
    /// than a future, so the connection can wait on it while it pushes.
    fn cut(&self) -> CancellationToken;
}
