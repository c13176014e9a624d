//! Live streaming, a subsystem of its own that the binary registers as services.
//!
//! The path of a broadcast, and the module of each step:
//! - [`rtmp`]: the RTMP and RTMPS listeners. A publisher's connection is parsed (sans-IO), its
//!   stream key checked at `publish` before any media is accepted, its FLV tags turned into
//!   [`media::MediaEvent`]s and handed to a [`ingest::Feed`].
//! - [`ingest`]: the seam between a connection and the rest: [`ingest::Publish`] admits or
//!   refuses a publisher, and each admitted one gets a [`ingest::Feed`].
//! - [`avc`]: reads the publisher's H.264 and AAC configurations (picture size, codec strings).
//! - [`fmp4`]: the segmenter, which repackages those events (no re-encoding) into a CMAF init
//!   segment, parts of 200–333 ms and segments cut on keyframes.
//! - [`playlist`]: the low-latency HLS media playlist, written by hand (m3u8-rs drops the LL
//!   tags), and the blocking-reload rules of draft-pantos-hls-rfc8216bis.
//!
//! - [`broadcast`]: the broadcasts this node holds (the one-publisher rule, the reconnect grace)
//!   and what delivery reads of them; each broadcast runs in its own task (`session`).
//! - `ladder`: the optional transcoded lower renditions (`VIDI_LIVE_LADDER`), one supervised
//!   ffmpeg per rung, cut by the same segmenter at the source's segment boundaries.
//! - `thumbnail`: the live thumbnail, taken one at a time node-wide, the streams in turn.
//! - [`record`]: each broadcast of a live stream with `record: true` becomes a video.
//!
//! Why one crate: the ingest node holds the whole path in memory (a live playlist is answered
//! from memory, never from storage), and none of it is needed by the API or the encoders.

pub mod avc;
pub mod broadcast;
pub mod config;
pub mod fmp4;
pub mod ingest;
mod ladder;
pub mod media;
mod metrics;
pub mod playlist;
pub mod record;
pub mod restream;
pub mod rtmp;
pub mod service;
mod session;
#[cfg(test)]
mod testing;
mod thumbnail;

pub use broadcast::Broadcasts;
pub use config::LiveConfig;
