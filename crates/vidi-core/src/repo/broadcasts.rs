//! Broadcasts of live streams: what the ingest node records as publishers come and go, and what
//! any node reads to end the broadcasts of a node that died.

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::id::{BroadcastId, LiveStreamId, WorkspaceId};
use crate::live::{Broadcast, LiveStream};
use crate::model::Video;

#[async_trait]
pub trait BroadcastRepo: Send + Sync {
    /// The live stream whose publishers use `stream_key`, whatever its workspace (a publisher
    /// names nothing else).
    async fn live_stream_by_key(&self, stream_key: &str) -> CoreResult<Option<LiveStream>>;

    /// Records a new broadcast (not yet flagged: see [`BroadcastRepo::set_broadcasting`]).
    async fn open_broadcast(&self, b: &Broadcast) -> CoreResult<()>;

    /// Flips the live stream's `broadcasting` to `on` and, in the same transaction, records
    /// `live-stream.broadcast.started` (or `.ended`) in the outbox. No-op (false) when the flag
    /// already has that value, so a flip is announced once. `occurrence` tells flips of the same
    /// broadcast apart (a publisher that reconnects flips it again).
    async fn set_broadcasting(
        &self,
        ws: &WorkspaceId,
        id: &LiveStreamId,
        on: bool,
        occurrence: &str,
        now: i64,
    ) -> CoreResult<bool>;

    /// Refreshes the heartbeat of the open broadcasts `node` holds.
    async fn heartbeat_broadcasts(&self, node: &str, now: i64) -> CoreResult<()>;

    /// Marks a broadcast ended (idempotent: the first end wins). Returns it as stored, `None` if
    /// it is gone (its live stream was deleted).
    async fn end_broadcast(&self, id: &BroadcastId, now: i64) -> CoreResult<Option<Broadcast>>;

    /// Ends broadcast `dead`, whose node stopped heartbeating, and flips its live stream's
    /// `broadcasting` to false (with `live-stream.broadcast.ended`, keyed by `occurrence`) in
    /// one transaction, unless another broadcast of that live stream is still open: the stream
    /// may have started again on another node, and its flag is that broadcast's now. Returns
    /// the broadcast as stored (`None` if it is gone) and whether the flag was flipped.
    async fn end_orphan(&self, dead: &Broadcast, occurrence: &str, now: i64) -> CoreResult<(Option<Broadcast>, bool)>;

    /// Which of `ids` still exist: one query for every live stream a node holds, whose
    /// deletion through another node cuts its broadcast here.
    async fn existing_live_streams(&self, ids: &[LiveStreamId]) -> CoreResult<Vec<LiveStreamId>>;

    /// Open broadcasts whose node stopped heartbeating before `stale_before`.
    async fn stale_broadcasts(&self, stale_before: i64) -> CoreResult<Vec<Broadcast>>;

    async fn get_broadcast(&self, id: &BroadcastId) -> CoreResult<Option<Broadcast>>;

    /// Stores the recording of broadcast `b`: `video` (its source already in the media store,
    /// `ingest` uploaded) with `live_stream_id` set, and `video.source.recorded` in the outbox,
    /// in one transaction. Idempotent: false when the video already exists.
    async fn insert_recording(&self, b: &Broadcast, video: &Video, now_ns: i64) -> CoreResult<bool>;
}
