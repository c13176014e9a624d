//! Uploads: chunk claims and commits under the upload rules (`crate::upload`), whole-file
//! uploads, and the source's arrival (stored, probed). A video of another workspace than the
//! one given is `NotFound`.

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::id::{VideoId, WorkspaceId};
use crate::model::{Chunk, ProbeOutcome, Video};
use crate::upload::{ChunkPlan, ContentRange};

/// The result of accepting a chunk's bytes.
#[derive(Clone, Debug, PartialEq)]
pub enum ChunkCommit {
    /// More chunks are needed.
    Pending,
    /// This chunk completed the set: the caller must assemble these chunks (in `idx` order) into
    /// the source and then call [`UploadRepo::source_ready`].
    Complete { chunks: Vec<Chunk>, size: u64 },
}

/// What claiming a chunk gives the caller: the plan and the storage session to write into.
#[derive(Clone, Debug)]
pub struct ChunkClaim {
    pub plan: ChunkPlan,
    pub session: Option<String>,
}

#[async_trait]
pub trait UploadRepo: Send + Sync + 'static {
    /// Claims the right to write one chunk, applying every Content-Range rule under a lock on the
    /// video. A claim by another instance counts as live only if that instance heartbeated after
    /// `live_after`; otherwise its process died and the chunk may be sent again.
    async fn claim_chunk(
        &self,
        ws: &WorkspaceId,
        id: &VideoId,
        range: ContentRange,
        instance: &str,
        now: i64,
        live_after: i64,
    ) -> CoreResult<ChunkClaim>;
    /// Stores the storage session of a ranged upload unless one is already stored; returns the
    /// one in force (the caller drops its own if it lost the race).
    async fn set_upload_session(&self, ws: &WorkspaceId, id: &VideoId, session: &str) -> CoreResult<String>;
    /// Forgets a claim whose bytes never made it (the request failed).
    async fn release_chunk(&self, ws: &WorkspaceId, id: &VideoId, idx: u32, instance: &str) -> CoreResult<()>;
    /// Records a durable chunk; tells whether the source is now complete.
    async fn commit_chunk(
        &self,
        ws: &WorkspaceId,
        id: &VideoId,
        idx: u32,
        size: u64,
        receipt: &str,
    ) -> CoreResult<ChunkCommit>;
    /// Checks that a whole-file upload (no Content-Range) may start; returns the video.
    async fn check_whole(&self, ws: &WorkspaceId, id: &VideoId) -> CoreResult<Video>;
    /// Records a whole-file upload stored at `key`, if no other upload completed or started a
    /// ranged upload meanwhile (then it fails with the rule broken, and the caller drops `key`).
    async fn finish_whole(&self, ws: &WorkspaceId, id: &VideoId, key: &str, size: u64, now: i64) -> CoreResult<()>;
    async fn chunks(&self, ws: &WorkspaceId, id: &VideoId) -> CoreResult<Vec<Chunk>>;
    /// The source is complete and stored at `key`.
    async fn source_ready(&self, ws: &WorkspaceId, id: &VideoId, key: &str, size: u64, now: i64) -> CoreResult<()>;
    async fn set_probe(&self, ws: &WorkspaceId, id: &VideoId, probe: &ProbeOutcome) -> CoreResult<()>;
    /// Videos whose ingest must be resumed after a restart, of every workspace (each with its
    /// workspace): assembling, or complete but not probed.
    async fn videos_to_recover(&self) -> CoreResult<Vec<(WorkspaceId, VideoId)>>;
}
