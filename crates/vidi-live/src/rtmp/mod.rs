//! The RTMP and RTMPS ingest service.
//!
//! # Ingest URLs
//! - RTMP: `rtmp://HOST:1935/s/{streamKey}` (the listener is `VIDI_RTMP_ADDR`).
//! - RTMPS: `rtmps://HOST:PORT/s/{streamKey}` (`VIDI_RTMPS_ADDR`, with Vidi's TLS certificate).
//! - OBS: *Server* `rtmp://HOST/s` (or `rtmps://HOST:PORT/s`), *Stream Key* the live stream's
//!   `streamKey`. ffmpeg: `ffmpeg -re -i IN -c:v libx264 -c:a aac -f flv rtmp://HOST/s/KEY`.
//!
//! The application must be `s`; any other is refused at `connect`. Only publishing is served
//! (a `play` is refused): viewers watch HLS. The stream key is checked by [`Publish::begin`]
//! at `publish`, before any media is accepted; a refused publisher gets an error status and the
//! connection closes, with the reason and the key's first characters in the log (never the
//! whole key). Media must be H.264 (FLV codec id 7) and AAC (sound format 10), what OBS and
//! ffmpeg send by default; any other codec closes the connection with a log line naming it.
//!
//! # Limits (every byte is the peer's)
//! See [`Limits`]: a connection must finish the RTMP (and TLS) handshake within
//! `handshake_timeout` and be admitted as a publisher within `publish_timeout`, both from the
//! TCP accept; an admitted publisher silent for `media_timeout` is closed. A message longer
//! than `max_message_bytes` is refused when its header arrives (RTMP lets a peer announce
//! 16 MiB), and the chunk stream is checked by a guard in front of rml_rtmp (see
//! `chunks.rs`), so a connection holds at most about one message, one header and one read
//! buffer (`read_buffer_bytes`). Before admission messages are capped at 64 KiB, so an
//! unadmitted connection holds under 200 KiB at worst (an idle one measured 17 KiB, both ends
//! of the socket counted, in the test of 2000 idle connections). Beyond `max_connections`, a
//! new connection is closed at once, unread. A malformed stream closes its connection only.
//! [`crate::ingest::Feed::cut`] firing
//! closes the connection; [`crate::ingest::Feed::push`] waiting stops the reading.

mod chunks;
pub mod client;
mod conn;
pub(crate) mod flv;
mod server;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use server::serve;

#[cfg(doc)]
use crate::ingest::Publish;

/// The bounds of the ingest, per listener. The defaults suit OBS and ffmpeg on the open
/// internet; tests shorten the timeouts.
#[derive(Clone, Debug)]
pub struct Limits {
    /// From the TCP accept to the end of the TLS (for RTMPS) and RTMP handshakes.
    pub handshake_timeout: Duration,
    /// From the TCP accept to the publisher's admission (`connect`, `publish` and
    /// [`Publish::begin`]'s answer).
    pub publish_timeout: Duration,
    /// The longest silence (no audio or video message) of an admitted publisher, including
    /// before its first frame.
    pub media_timeout: Duration,
    /// The longest RTMP message accepted from an admitted publisher (a 1080p keyframe at
    /// 6 Mb/s is about 300 KiB). Before admission the limit is 64 KiB: commands only.
    pub max_message_bytes: u32,
    /// Open connections on this listener; more are closed at once, unread.
    pub max_connections: usize,
    /// The size of a connection's read buffer (16 KiB reads a 6 Mb/s stream in ~50 reads a
    /// second).
    pub read_buffer_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            handshake_timeout: Duration::from_secs(10),
            publish_timeout: Duration::from_secs(15),
            media_timeout: Duration::from_secs(10),
            max_message_bytes: 4 << 20,
            max_connections: 1024,
            read_buffer_bytes: 16 << 10,
        }
    }
}
