//! The metadata store, as the rest of Vidi sees it. One implementation runs on SQLite and on
//! PostgreSQL (crate `vidi-db`); every method is scoped to a workspace where a tenant is involved,
//! so "forgot the tenant filter" cannot be written by a caller.

mod renditions;

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::event::{Encoding, Event};
use crate::id::{ApiKeyId, EventId, VideoId, WorkspaceId};
use crate::model::{ApiKeyInfo, Chunk, Job, KeyOwner, PageRequest, ProbeOutcome, Quality, Video, VideoFilter};
use crate::upload::{ChunkPlan, ContentRange};
pub use renditions::{Rendition, RenditionRepo, RenditionRole};

/// The result of accepting a chunk's bytes.
#[derive(Clone, Debug, PartialEq)]
pub enum ChunkCommit {
    /// More chunks are needed.
    Pending,
    /// This chunk completed the set: the caller must assemble these chunks (in `idx` order) into
    /// the source and then call [`Repo::source_ready`].
    Complete { chunks: Vec<Chunk>, size: u64 },
}

/// What claiming a chunk gives the caller: the plan and the storage session to write into.
#[derive(Clone, Debug)]
pub struct ChunkClaim {
    pub plan: ChunkPlan,
    pub session: Option<String>,
}

#[async_trait]
pub trait Repo: RenditionRepo + Send + Sync + 'static {
    /// `sqlite` or `postgres`, for logs and test names.
    fn backend(&self) -> &'static str;

    // --- tenancy and credentials -------------------------------------------------------------
    async fn create_workspace(&self, name: &str) -> CoreResult<WorkspaceId>;
    /// The oldest workspace, if any (the CLI adds keys to it).
    async fn default_workspace(&self) -> CoreResult<Option<WorkspaceId>>;
    async fn workspace_exists(&self, ws: &WorkspaceId) -> CoreResult<bool>;
    /// Every key, revoked ones included (counted too: an installation whose keys were all revoked
    /// is not a fresh one).
    async fn count_api_keys(&self) -> CoreResult<u64>;
    async fn create_api_key(&self, ws: &WorkspaceId, name: &str, key_hash: &str) -> CoreResult<ApiKeyId>;
    /// The owner of the key whose secret hashes to `key_hash`, unless it is revoked.
    async fn find_api_key(&self, key_hash: &str) -> CoreResult<Option<KeyOwner>>;
    /// Every key of every workspace, revoked ones included, oldest first (for the operator).
    async fn list_api_keys(&self) -> CoreResult<Vec<ApiKeyInfo>>;
    /// Revokes the key whose id is `id_or_hash`, or whose secret hashes to it (an id starts with
    /// `ak`, a hash is hex, so at most one key matches), and deletes its refresh tokens. Returns
    /// the key's id, or `None` when no key matches. Revoking a revoked key keeps its first time.
    async fn revoke_api_key(&self, id_or_hash: &str, now: i64) -> CoreResult<Option<ApiKeyId>>;
    /// Whether the key exists and is not revoked (access tokens name their key; each use checks it).
    async fn api_key_active(&self, key_id: &ApiKeyId) -> CoreResult<bool>;
    async fn insert_refresh_token(&self, owner: &KeyOwner, token_hash: &str, expires_at: i64) -> CoreResult<()>;
    /// Atomically retires `old_hash` and stores `new_hash`. A token retired less than `grace_ms`
    /// ago is still accepted once more (clients that retry a refresh must not be locked out).
    /// A token whose key is revoked is refused.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: i64,
        grace_ms: i64,
        expires_at: i64,
    ) -> CoreResult<Option<KeyOwner>>;
    /// A process-wide setting, created with `init` the first time it is read (e.g. the JWT secret,
    /// so every API node signs with the same one).
    async fn setting_or_init(&self, name: &str, init: &str) -> CoreResult<String>;
    /// Records that this process is alive (uploads use it to tell live claims from dead ones).
    async fn heartbeat(&self, instance: &str, now: i64) -> CoreResult<()>;

    // --- videos -------------------------------------------------------------------------------
    async fn insert_video(&self, video: &Video) -> CoreResult<()>;
    async fn get_video(&self, ws: &WorkspaceId, id: &VideoId) -> CoreResult<Video>;
    async fn list_videos(
        &self,
        ws: &WorkspaceId,
        filter: &VideoFilter,
        page: PageRequest,
    ) -> CoreResult<(Vec<Video>, u64)>;
    /// Stores the editable fields (title, description, flags, player, tags, metadata, updatedAt).
    async fn update_video(&self, video: &Video) -> CoreResult<()>;
    async fn delete_video(&self, ws: &WorkspaceId, id: &VideoId) -> CoreResult<()>;
    /// Total bytes of complete sources in a workspace (the account's quota use).
    async fn stored_bytes(&self, ws: &WorkspaceId) -> CoreResult<u64>;

    // --- uploads ------------------------------------------------------------------------------
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
    async fn set_upload_session(&self, id: &VideoId, session: &str) -> CoreResult<String>;
    /// Forgets a claim whose bytes never made it (the request failed).
    async fn release_chunk(&self, id: &VideoId, idx: u32, instance: &str) -> CoreResult<()>;
    /// Records a durable chunk; tells whether the source is now complete.
    async fn commit_chunk(&self, id: &VideoId, idx: u32, size: u64, receipt: &str) -> CoreResult<ChunkCommit>;
    /// Checks that a whole-file upload (no Content-Range) may start; returns the video.
    async fn check_whole(&self, ws: &WorkspaceId, id: &VideoId) -> CoreResult<Video>;
    /// Records a whole-file upload stored at `key`, if no other upload completed or started a
    /// ranged upload meanwhile (then it fails with the rule broken, and the caller drops `key`).
    async fn finish_whole(&self, id: &VideoId, key: &str, size: u64, now: i64) -> CoreResult<()>;
    async fn chunks(&self, id: &VideoId) -> CoreResult<Vec<Chunk>>;
    /// The source is complete and stored at `key`.
    async fn source_ready(&self, id: &VideoId, key: &str, size: u64, now: i64) -> CoreResult<()>;
    async fn set_probe(&self, id: &VideoId, probe: &ProbeOutcome) -> CoreResult<()>;
    /// Videos whose ingest must be resumed after a restart: assembling, or complete but not probed.
    async fn videos_to_recover(&self) -> CoreResult<Vec<(WorkspaceId, VideoId)>>;
    /// Reads a video without its workspace (workers act on behalf of every workspace).
    async fn video_by_id(&self, id: &VideoId) -> CoreResult<Video>;

    // --- encoding state -----------------------------------------------------------------------
    /// Replaces the list of expected outputs (all `waiting`).
    async fn plan_qualities(&self, id: &VideoId, qualities: &[Quality]) -> CoreResult<()>;
    async fn set_quality_status(&self, id: &VideoId, kind: &str, quality: &str, status: &str) -> CoreResult<()>;
    /// Marks one planned output encoded and, in the same transaction, records its
    /// `video.encoding.quality.completed` event (once per output, however often it is encoded
    /// again). Returns whether the event is new. `NotFound` when the output is not planned: then
    /// neither is written.
    async fn complete_quality(&self, id: &VideoId, encoding: Encoding, quality: &str, now_ns: i64) -> CoreResult<bool>;

    // --- events -------------------------------------------------------------------------------
    /// Recorded events after `after` (all when `None`), in id order, of one workspace or of all.
    async fn events_after(
        &self,
        ws: Option<&WorkspaceId>,
        after: Option<&EventId>,
        limit: u32,
    ) -> CoreResult<Vec<Event>>;
    async fn qualities(&self, id: &VideoId) -> CoreResult<Vec<Quality>>;
    async fn set_playable(&self, id: &VideoId, playable: bool) -> CoreResult<()>;
    async fn set_thumbnail(&self, id: &VideoId, key: &str) -> CoreResult<()>;
    async fn set_encode_error(&self, id: &VideoId, error: Option<&str>) -> CoreResult<()>;

    // --- private videos -----------------------------------------------------------------------
    /// Stores new private tokens, `(video, token)` pairs, in one statement (a page of private
    /// videos mints one per video). Expired tokens are swept now and then.
    async fn mint_private_tokens(&self, tokens: &[(&VideoId, &str)], now: i64, expires_at: i64) -> CoreResult<()>;
    /// Admits a request under a private token (contract §6): a token not used yet is bound to
    /// `session` (the playback session of the first browser that opens it) for `session_ttl` ms;
    /// a used one admits only the session it is bound to. Returns whether the request is admitted.
    async fn admit_private(
        &self,
        id: &VideoId,
        token: &str,
        session: &str,
        now: i64,
        session_ttl: i64,
    ) -> CoreResult<bool>;

    // --- jobs ---------------------------------------------------------------------------------
    /// Queues a job unless one with the same `unique_key` is queued or running. Returns whether
    /// it was queued.
    async fn enqueue_job(
        &self,
        kind: &str,
        payload: &serde_json::Value,
        unique_key: &str,
        run_at: i64,
        max_attempts: u32,
    ) -> CoreResult<bool>;
    /// Takes the oldest due job (never one another worker holds).
    async fn claim_job(&self, worker: &str, now: i64) -> CoreResult<Option<Job>>;
    /// Takes the oldest due job whose `unique_key` starts with `key_prefix` (a worker helping
    /// with the pieces of the video it leads).
    async fn claim_job_keyed(&self, worker: &str, key_prefix: &str, now: i64) -> CoreResult<Option<Job>>;
    /// Refreshes a running job's heartbeat; false when the job is no longer this worker's.
    async fn heartbeat_job(&self, id: &str, worker: &str, now: i64) -> CoreResult<bool>;
    async fn complete_job(&self, id: &str, worker: &str, now: i64) -> CoreResult<()>;
    /// Records a failure; `retry_at` re-queues it, `None` fails it for good.
    async fn fail_job(&self, id: &str, worker: &str, error: &str, retry_at: Option<i64>, now: i64) -> CoreResult<()>;
    /// Hands a running job back to the queue, due at `now`, without counting its attempt: its
    /// worker is stopping (SIGTERM), not failing, so another takes it at once rather than after
    /// the reaper's staleness window. A no-op when the job is no longer this worker's.
    async fn release_job(&self, id: &str, worker: &str, now: i64) -> CoreResult<()>;
    /// Re-queues running jobs whose worker stopped heartbeating before `stale_before`.
    async fn reap_jobs(&self, stale_before: i64, now: i64) -> CoreResult<u64>;
    /// A job's status and error, by unique key of its last run (for tests and the operator).
    async fn job_state(&self, id: &str) -> CoreResult<Option<(String, u32, Option<String>)>>;
}
