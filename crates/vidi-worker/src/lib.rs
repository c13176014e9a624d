//! Background work. Jobs live in the database (see `Repo::claim_job`), so any number of worker
//! processes sharing the database and the media store split them: `vidi serve` runs workers in
//! process, `vidi worker` runs only workers. A running job heartbeats; a reaper re-queues the jobs
//! of workers that stopped (crashed, killed, partitioned), with bounded attempts and backoff.

pub mod encode;
pub mod pieces;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use vidi_core::jobs::{JobKind, Waker};
use vidi_core::model::Job;
use vidi_core::time::now_ms;
use vidi_core::{Blobs, Repo};
use vidi_media::Media;
use vidi_media::encode::Piece;

#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Scratch space for encoders (on the same filesystem as a local media store, so finished
    /// files are linked into place rather than copied).
    pub work_dir: PathBuf,
    pub heartbeat: Duration,
    /// A running job whose heartbeat is older than this is taken back.
    pub stale_after: Duration,
    /// x264 preset of the ladder.
    pub preset: String,
    pub max_attempts: u32,
    /// The wait before a failed job's first retry; each later one waits four times longer.
    pub retry_base: Duration,
    /// How long an encoder following an upload still arriving waits for its next bytes.
    pub follow_timeout: Duration,
    /// Videos longer than about 1.5 pieces are encoded in pieces of this many seconds, by
    /// several processes at once (0: never).
    pub piece_secs: u32,
    /// How many pieces one encode job runs at once (the first and its helpers).
    pub parallel_pieces: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            work_dir: PathBuf::from("./vidi-data/.work"),
            heartbeat: Duration::from_secs(5),
            stale_after: Duration::from_secs(30),
            preset: "veryfast".into(),
            max_attempts: 3,
            retry_base: Duration::from_secs(10),
            follow_timeout: Duration::from_secs(60),
            piece_secs: 30,
            parallel_pieces: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        }
    }
}

/// What a worker needs.
#[derive(Clone)]
pub struct Ctx {
    pub repo: Arc<dyn Repo>,
    pub blobs: Arc<dyn Blobs>,
    pub media: Media,
    pub cfg: WorkerConfig,
    /// Woken when this process queues a job (the API shares it through its state); workers
    /// elsewhere find the job by polling.
    pub waker: Waker,
}

/// Starts `n` worker loops; they run until the process ends.
pub fn spawn(ctx: Ctx, n: usize) {
    for i in 0..n {
        let ctx = ctx.clone();
        let name = format!("wk{}-{i}", vidi_core::id::random_body());
        tokio::spawn(async move { run(ctx, name).await });
    }
}

async fn run(ctx: Ctx, name: String) {
    tracing::info!(worker = %name, "worker started");
    let mut last_reap = 0i64;
    loop {
        let now = now_ms();
        if now - last_reap > ctx.cfg.heartbeat.as_millis() as i64 {
            last_reap = now;
            match ctx.repo.reap_jobs(now - ctx.cfg.stale_after.as_millis() as i64, now).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(jobs = n, "re-queued the jobs of a lost worker"),
                Err(e) => tracing::warn!(error = %e, "reaper failed"),
            }
        }
        match ctx.repo.claim_job(&name, now).await {
            Ok(Some(job)) => execute(&ctx, &name, job).await,
            Ok(None) => {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    () = ctx.waker.woken() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not claim a job");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Runs one job beside its heartbeat. Losing the job (the reaper gave it to another worker)
/// cancels the work, which kills its ffmpeg.
pub(crate) async fn execute(ctx: &Ctx, worker: &str, job: Job) {
    let beat = async {
        loop {
            tokio::time::sleep(ctx.cfg.heartbeat).await;
            match ctx.repo.heartbeat_job(&job.id, worker, now_ms()).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(job = %job.id, error = %e, "heartbeat failed"),
            }
        }
    };
    let kind = JobKind::of(&job);
    let work = async {
        match &kind {
            Ok(JobKind::Encode { video_id, growing }) => encode::run(ctx, video_id, growing.as_ref()).await,
            &Ok(JobKind::Piece { ref video_id, index, start, duration, ts_offset, video_only }) => {
                let piece = Piece { index, start_s: start, duration_s: duration, ts_offset_s: ts_offset, video_only };
                pieces::run(ctx, video_id, &piece).await
            }
            Err(why) => Err(JobError::Permanent(why.clone())),
        }
    };
    let outcome = tokio::select! {
        r = work => r,
        () = beat => {
            tracing::warn!(job = %job.id, "job taken back by the reaper; abandoning it");
            return;
        }
    };
    let now = now_ms();
    let r = match outcome {
        Ok(()) => ctx.repo.complete_job(&job.id, worker, now).await,
        // Deleted while queued or running: nothing left to do, nothing went wrong.
        Err(JobError::Gone) => {
            tracing::info!(job = %job.id, "the video was deleted; job dropped");
            ctx.repo.complete_job(&job.id, worker, now).await
        }
        Err(JobError::Retry(e)) if job.attempts < job.max_attempts => {
            // 10 s, 40 s, 160 s … (by default)
            let delay = ctx.cfg.retry_base.as_millis() as i64 * 4i64.pow(job.attempts.saturating_sub(1).min(6));
            tracing::warn!(job = %job.id, attempt = job.attempts, error = %e, "job failed; will retry");
            ctx.repo.fail_job(&job.id, worker, &e, Some(now + delay), now).await
        }
        Err(e @ (JobError::Retry(_) | JobError::Permanent(_))) => {
            let e = e.to_string();
            tracing::error!(job = %job.id, error = %e, "job failed for good");
            if let Ok(kind) = &kind {
                vidi_core::encoding::record_failure(ctx.repo.as_ref(), kind.video_id(), &e).await;
            }
            ctx.repo.fail_job(&job.id, worker, &e, None, now).await
        }
    };
    if let Err(e) = r {
        tracing::error!(job = %job.id, error = %e, "could not record the job's outcome");
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Might work next time (storage hiccup, a killed encoder).
    #[error("{0}")]
    Retry(String),
    /// Will never work (the source is not a video).
    #[error("{0}")]
    Permanent(String),
    /// The video was deleted meanwhile.
    #[error("the video no longer exists")]
    Gone,
}

impl From<vidi_core::CoreError> for JobError {
    fn from(e: vidi_core::CoreError) -> Self {
        match e {
            vidi_core::CoreError::NotFound => JobError::Gone,
            e => JobError::Retry(e.to_string()),
        }
    }
}

/// Where copies of sources kept elsewhere (S3) are made for the media tools: beside the jobs'
/// scratch, not in it, so a full scratch fails the encode (with its reason) and not the copy.
pub(crate) fn inputs_dir(ctx: &Ctx) -> std::path::PathBuf {
    ctx.cfg.work_dir.with_file_name(".inputs")
}
