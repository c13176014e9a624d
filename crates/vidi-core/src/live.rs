//! Live streams as Vidi keeps them (contract §2 LiveStream, §7): their settings, restream
//! destinations and uploaded thumbnail, and the broadcasts the ingest (crate `vidi-live`) makes
//! of them.

use serde::{Deserialize, Serialize};

use crate::id::{BroadcastId, LiveStreamId, VideoId, WorkspaceId};

/// At most this many restream destinations per live stream (contract §7).
pub const MAX_RESTREAMS: usize = 5;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveStream {
    pub id: LiveStreamId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// The secret an encoder publishes with (a UUID v4), made by the server and never rotated.
    pub stream_key: String,
    pub record: bool,
    pub public: bool,
    pub player_id: Option<String>,
    pub restreams: Vec<Restream>,
    /// The uploaded thumbnail's key in the media store.
    pub thumbnail_key: Option<String>,
    /// Media is flowing from a publisher now (the wire's `broadcasting`). Written only by the
    /// broadcasts, never by an update.
    pub broadcasting: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A destination the broadcast is pushed to. Stored as given: the outbound guard checks it when
/// a pusher connects, not here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Restream {
    pub name: String,
    pub server_url: String,
    pub stream_key: String,
}

/// One broadcast of a live stream: from a publisher's first media to the end of its reconnect
/// grace (a publisher that comes back within it continues the same broadcast and recording).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Broadcast {
    pub id: BroadcastId,
    pub live_stream_id: LiveStreamId,
    pub workspace_id: WorkspaceId,
    /// The instance holding it (its ingest node), which heartbeats it.
    pub node: String,
    /// Whether it becomes a video when it ends (the live stream's `record` when it started).
    pub record: bool,
    /// The video the recording makes, chosen when the broadcast opens so that recording it again
    /// (a retried job) makes the same video.
    pub video_id: VideoId,
    pub started_at: i64,
    pub heartbeat_at: i64,
    pub ended_at: Option<i64>,
}

/// Where a broadcast's files go in the media store: `live/{liveStreamId}/{broadcastId}/`.
pub fn broadcast_prefix(live: &LiveStreamId, broadcast: &BroadcastId) -> String {
    format!("live/{live}/{broadcast}/")
}

/// Why a live playlist or file is not answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveRefusal {
    /// Not broadcasting in this process (idle, ended, or held by another node): 404.
    NotHere,
    /// A blocking-reload directive the rules refuse: 400 with the reason.
    BadRequest(&'static str),
    /// A blocking reload waited longer than the rules allow: 503.
    Timeout,
}

/// What delivery asks of the broadcasts this process holds (implemented by crate `vidi-live`).
/// Live playlists change several times a second and low-latency players ask for the next version
/// before it exists, so they are answered from the packager's memory, never from storage.
#[async_trait::async_trait]
pub trait LiveOutput: Send + Sync + 'static {
    /// The multivariant playlist of a broadcasting live stream: the source rendition and, with
    /// the optional ladder, its transcoded rungs. `uri` makes the URI a media playlist is listed
    /// under from its name (`index.m3u8`, `240p.m3u8`): relative, with the session query of a
    /// private one.
    fn master(&self, id: &LiveStreamId, uri: &dyn Fn(&str) -> String) -> Option<String>;

    /// The media playlist `playlist` (`index.m3u8` for the source, a rung's name otherwise), once
    /// the blocking-reload directives (`_HLS_msn`, `_HLS_part`) are met.
    async fn media(
        &self,
        id: &LiveStreamId,
        playlist: &str,
        msn: Option<u64>,
        part: Option<u32>,
    ) -> Result<String, LiveRefusal>;

    /// A file of the current broadcast (init segment, part or segment). A part the playlist hints
    /// at is waited for (draft-pantos-hls-rfc8216bis: a hinted part must be requestable at once).
    async fn file(&self, id: &LiveStreamId, name: &str) -> Option<bytes::Bytes>;

    /// The live stream was deleted: its publisher here, if any, is disconnected at once (other
    /// nodes notice at their next heartbeat).
    fn cut(&self, id: &LiveStreamId);

    /// Someone asked this node for the live stream's own thumbnail: a broadcast held here
    /// refreshes it every few seconds for a while (unasked, only every minute: each picture is
    /// an ffmpeg run).
    fn thumbnail_asked(&self, _id: &LiveStreamId) {}
}

/// A process without live ingest (a worker, or tests of the VOD half): nothing broadcasts here.
pub struct NoLive;

#[async_trait::async_trait]
impl LiveOutput for NoLive {
    fn master(&self, _: &LiveStreamId, _: &dyn Fn(&str) -> String) -> Option<String> {
        None
    }
    async fn media(&self, _: &LiveStreamId, _: &str, _: Option<u64>, _: Option<u32>) -> Result<String, LiveRefusal> {
        Err(LiveRefusal::NotHere)
    }
    async fn file(&self, _: &LiveStreamId, _: &str) -> Option<bytes::Bytes> {
        None
    }
    fn cut(&self, _: &LiveStreamId) {}
}
