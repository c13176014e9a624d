//! The job queue (what each job is: `crate::jobs`).

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::id::{VideoId, WorkspaceId};
use crate::model::Job;

#[async_trait]
pub trait JobRepo: Send + Sync + 'static {
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
    /// Marks the job done. It keeps the name of the worker that ran it (see [`JobTiming`]).
    ///
    /// [`JobTiming`]: crate::repo::JobTiming
    async fn complete_job(&self, id: &str, worker: &str, now: i64) -> CoreResult<()>;
    /// Records a failure; `retry_at` re-queues it, `None` fails it for good (keeping the name of
    /// the worker that ran its last attempt).
    async fn fail_job(&self, id: &str, worker: &str, error: &str, retry_at: Option<i64>, now: i64) -> CoreResult<()>;
    /// Hands a running job back to the queue, due at `now`, without counting its attempt: its
    /// worker is stopping (SIGTERM), not failing, so another takes it at once rather than after
    /// the reaper's staleness window. A no-op when the job is no longer this worker's.
    async fn release_job(&self, id: &str, worker: &str, now: i64) -> CoreResult<()>;
    /// Re-queues a running job due at `run_at`, recording `error`, without counting its attempt:
    /// it failed because of the machine (a full disk), not because of the job, so it waits for
    /// the operator however long that takes instead of running out of attempts. A no-op when
    /// the job is no longer this worker's.
    async fn postpone_job(&self, id: &str, worker: &str, error: &str, run_at: i64, now: i64) -> CoreResult<()>;
    /// Re-queues running jobs whose worker stopped heartbeating before `stale_before`.
    async fn reap_jobs(&self, stale_before: i64, now: i64) -> CoreResult<u64>;
    /// A job's status and error, by unique key of its last run (for tests and the operator).
    async fn job_state(&self, id: &str) -> CoreResult<Option<(String, u32, Option<String>)>>;
    /// The workspace of a video, whatever it is: the one read across tenants, for a job whose
    /// payload was queued before payloads carried the workspace (see
    /// `crate::jobs::workspace_of`, its only caller). `NotFound` when the video is gone.
    async fn workspace_of_video(&self, id: &VideoId) -> CoreResult<WorkspaceId>;
}
