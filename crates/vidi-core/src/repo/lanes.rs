//! The job queue by lane: each lane's workers claim only its jobs (see `jobs::Lane`), and the
//! time each job waited between being due and being started is kept, so a lane's queue latency
//! can be measured.

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::model::Job;

/// When a job was due and when its current attempt started (for latency figures and tests).
#[derive(Clone, Debug, PartialEq)]
pub struct JobTiming {
    pub id: String,
    pub kind: String,
    pub lane: String,
    pub payload: serde_json::Value,
    /// Unix ms the job was (last) due.
    pub run_at: i64,
    /// Unix ms its current (or last) attempt was claimed; `None` while it has never started.
    pub started_at: Option<i64>,
    /// `queued`, `running`, `done` or `failed`.
    pub status: String,
    /// The worker running it, or that ran its last attempt once it has ended (`None` while it
    /// waits in the queue): `wk<random>-<role>@<host>:<pid>`, so the node is the part after `@`.
    pub worker: Option<String>,
    /// Unix ms it ended (done, or failed for good); `None` while queued or running.
    pub ended_at: Option<i64>,
}

#[async_trait]
pub trait LaneRepo: Send + Sync {
    /// [`Repo::enqueue_job`](crate::Repo::enqueue_job) into `lane`.
    async fn enqueue_job_in(
        &self,
        lane: &str,
        kind: &str,
        payload: &serde_json::Value,
        unique_key: &str,
        run_at: i64,
        max_attempts: u32,
    ) -> CoreResult<bool>;
    /// Takes the oldest due job of `lane` (never one another worker holds).
    async fn claim_job_in(&self, worker: &str, lane: &str, now: i64) -> CoreResult<Option<Job>>;
    /// The jobs of `lane` queued at or after `since` (unix ms), oldest first.
    async fn job_timings(&self, lane: &str, since: i64) -> CoreResult<Vec<JobTiming>>;
    /// How many jobs are queued and running, by lane and status (`/metrics`; finished jobs are
    /// counted by the processes that ran them).
    async fn job_counts(&self) -> CoreResult<Vec<JobCount>>;
}

/// Jobs of one lane in one status.
#[derive(Clone, Debug, PartialEq)]
pub struct JobCount {
    pub lane: String,
    /// `queued` or `running`.
    pub status: String,
    pub jobs: u64,
}
