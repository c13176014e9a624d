//! Background work. Jobs live in the database (see `Repo::claim_job`), so any number of worker
//! processes sharing the database and the media store split them: `vidi serve` runs workers in
//! process, `vidi worker` runs only workers. A running job heartbeats; a reaper re-queues the jobs
//! of workers that stopped (crashed, killed, partitioned), with bounded attempts and backoff.
//!
//! Workers run in lanes (`vidi_core::jobs::Lane`), each with its own count, and claim only their
//! lane's jobs, so a probe never waits behind a ladder. What a job does is its kind's
//! `JobHandler`, found in the `Registry` the binary filled ([`register`] adds this crate's:
//! heads, pieces and finishes, probes, assemblies, imports); the loop here knows no kind by name.
//!
//! Each lane is a service of its own ([`lane_service`]), run by the binary beside the others of
//! its process. A lane that is asked to stop (the process got SIGTERM) does not leave its jobs to
//! the reaper: its workers drop them at once (which kills their ffmpeg) and it hands each back to
//! the queue (`Repo::release_job`), so another worker resumes them within moments, not after the
//! staleness window.

pub mod encode;
mod handlers;
pub mod ingest;
pub mod pieces;
pub mod sources;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use vidi_core::jobs::{Lane, Registry, RowHandler, Waker};
use vidi_core::service::Service;

use vidi_core::metric_names as names;
use vidi_core::model::Job;
use vidi_core::time::now_ms;
use vidi_core::{Blobs, Repo};
use vidi_media::Media;

pub use handlers::register;
pub use sources::SourceCopies;
pub use vidi_core::jobs::JobError;

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
    /// After its head, a video longer than 5 s is encoded in pieces of about this many seconds,
    /// by several processes at once (0: never split, not even the head).
    pub piece_secs: u32,
    /// How many pieces of its own video one finish job runs at once.
    pub parallel_pieces: usize,
    /// The longest any job's ffmpeg may run; each job bounds its own runs by what it encodes
    /// (see [`time_bound`]), within this.
    pub job_timeout: Duration,
    /// `source` URL imports: their size, how long one may take, and the rate it must keep up
    /// (bytes per second over each window).
    pub import_max_bytes: u64,
    pub import_timeout: Duration,
    pub import_min_rate: u64,
    pub import_rate_window: Duration,
    /// The CPU time each of a job's ffmpeg runs may use (`VIDI_ENCODE_CPU_SECS`); `None`: the
    /// job's own time bound, in CPU seconds (see [`time_bound`]).
    pub encode_cpu: Option<Duration>,
    /// How long a node keeps its copy of a source kept in S3 once no job uses it (see
    /// [`sources`]): a piece handed back, or retried, within it reads the copy again. Five
    /// times `retry_base` as `vidi` configures it (50 s by default).
    pub source_linger: Duration,
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
            job_timeout: Duration::from_secs(6 * 3600),
            import_max_bytes: 200 * 1024 * 1024,
            import_timeout: Duration::from_secs(3600),
            import_min_rate: 16 * 1024,
            import_rate_window: Duration::from_secs(30),
            encode_cpu: None,
            source_linger: Duration::from_secs(50),
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
    /// The jobs this lane's workers hold, and the token that stops them: each lane service
    /// gives its workers a set of their own (see [`lane_service`]).
    pub held: HeldJobs,
    /// Every request made on a user's behalf (URL imports) goes through this guard.
    pub outbound: vidi_outbound::Guard,
    /// This process's copies of sources kept in S3, shared by the jobs of each video (see
    /// [`sources`]).
    pub sources: SourceCopies,
}

impl Ctx {
    /// The same context with every ffmpeg run bounded by `timeout` (one job's bound) in wall
    /// time, and in CPU time by the same number of seconds unless `VIDI_ENCODE_CPU_SECS` says
    /// otherwise. Twenty CPU seconds per second of video (the bound's rule) is several times what
    /// x264's ladder needs at `veryfast`; a run that spends it is stuck or fed a hostile file, and
    /// unlike the wall bound it does not run out sooner on a busy node, nor later on one with
    /// many cores.
    pub(crate) fn with_ffmpeg_timeout(&self, timeout: Duration) -> Ctx {
        let mut ctx = self.clone();
        ctx.media.ffmpeg.timeout = timeout;
        ctx.media.ffmpeg.max_cpu = Some(self.cfg.encode_cpu.unwrap_or(timeout));
        ctx
    }
}

/// Records an encode's speed: seconds of video made per second of wall time (pauses for other
/// videos' heads included: it is what a viewer waiting for the ladder sees).
pub(crate) fn record_speed(stage: &'static str, media_s: Option<f64>, wall: Duration) {
    if let Some(m) = media_s.filter(|m| m.is_finite() && *m > 0.0)
        && !wall.is_zero()
    {
        metrics::histogram!(names::ENCODE_SPEED, "stage" => stage).record(m / wall.as_secs_f64());
    }
}

/// The time one job's ffmpeg runs may take: twenty times the duration of what it encodes (x264
/// at the slowest presets on a busy machine stays well within), ten minutes at least (start-up,
/// copies, a short clip on a loaded node), and never more than `cap`. Without a known duration
/// (a source probed without one, an upload still arriving, whose pace nobody knows): `cap`.
/// A fixed bound for every job would either cut long films short or let a stuck encoder of a
/// short clip hold a worker for hours; live encodes, which run for days, will set their own.
pub fn time_bound(duration_s: Option<f64>, cap: Duration) -> Duration {
    const FLOOR: Duration = Duration::from_secs(600);
    match duration_s {
        Some(d) if d.is_finite() && d > 0.0 => {
            Duration::from_secs_f64((d * 20.0).min(cap.as_secs_f64())).max(FLOOR).min(cap)
        }
        _ => cap,
    }
}

/// Running jobs by id, with the worker name that holds each, shared by the workers of one
/// process, and the token that stops them. A job leaves the set when its outcome is recorded;
/// when the workers stop, the jobs still in it are those they dropped, and they are released.
/// (Tracked here rather than by each worker loop because a finish job runs the pieces it helps
/// with as jobs of their own, nested in its own future: stopping the finish drops them too.)
#[derive(Clone, Default)]
pub struct HeldJobs {
    jobs: Arc<Mutex<HashMap<String, String>>>,
    shutdown: CancellationToken,
}

impl HeldJobs {
    /// An empty set whose workers stop when `shutdown` is cancelled.
    pub fn new(shutdown: CancellationToken) -> Self {
        HeldJobs { jobs: Arc::default(), shutdown }
    }

    fn hold(&self, job: &str, worker: &str) {
        self.jobs.lock().expect("not poisoned").insert(job.to_string(), worker.to_string());
    }
    fn drop_job(&self, job: &str) {
        self.jobs.lock().expect("not poisoned").remove(job);
    }
    pub(crate) fn is_stopping(&self) -> bool {
        self.shutdown.is_cancelled()
    }
    fn take_all(&self) -> Vec<(String, String)> {
        self.jobs.lock().expect("not poisoned").drain().collect()
    }
}

/// The service of one lane: `count` worker loops that claim `lane`'s jobs and run them with the
/// handlers of `registry`, until the process's shutdown token fires; it then waits for each loop
/// to have dropped its job and hands those jobs back to the queue, due now and without counting
/// the attempt.
pub fn lane_service(ctx: &Ctx, registry: Arc<Registry>, lane: Lane, count: usize) -> Service {
    let ctx = ctx.clone();
    Service::new(format!("lane-{lane}"), move |shutdown| async move {
        let ctx = Ctx { held: HeldJobs::new(shutdown.clone()), ..ctx };
        let mut loops = tokio::task::JoinSet::new();
        for i in 0..count {
            let (ctx, registry, lane) = (ctx.clone(), registry.clone(), lane.clone());
            let name = worker_name(&format!("{lane}-{i}"));
            loops.spawn(run(ctx, registry, lane, name));
        }
        let mut failed = None;
        while let Some(r) = loops.join_next().await {
            if let Err(e) = r {
                // A loop only ends on the token; one that panicked stops the process, after the
                // others have handed their jobs back.
                shutdown.cancel();
                failed.get_or_insert(e);
            }
        }
        hand_back(&ctx).await;
        match failed {
            Some(e) => Err(anyhow::anyhow!("a worker loop failed: {e}")),
            None => Ok(()),
        }
    })
}

/// Hands the jobs a stopped lane's workers still hold back to the queue.
async fn hand_back(ctx: &Ctx) {
    let now = now_ms();
    for (job, worker) in ctx.held.take_all() {
        match ctx.repo.release_job(&job, &worker, now).await {
            Ok(()) => tracing::info!(%job, "stopping: job handed back to the queue"),
            // The reaper takes it back after the staleness window instead.
            Err(e) => tracing::warn!(%job, error = %e, "stopping: could not hand the job back"),
        }
    }
}

/// At start, in a process that runs workers: a killed process (SIGKILL, power loss) leaves its
/// jobs' scratch folders and source copies behind. Nothing older than twice the longest an ffmpeg
/// run may take (a folder's time is its creation's, and a job does more than one run) can still
/// be in use by any process sharing this data folder, so those go.
pub fn sweep_service(ctx: &Ctx) -> Service {
    let dirs = [ctx.cfg.work_dir.clone(), inputs_dir(ctx)];
    let older_than = ctx.cfg.job_timeout * 2;
    Service::new("scratch-sweep", move |_| async move {
        tokio::task::spawn_blocking(move || {
            // Source copies by whether their process lives, not by age (see `sources`).
            sources::sweep_dead(&dirs[1]);
            for d in dirs {
                sweep_stale(&d, older_than);
            }
        })
        .await?;
        Ok(())
    })
}

/// The name a worker claims jobs under (the jobs table keeps it as `locked_by`, also once the
/// job has ended): unique (a random part, since several servers may share one process in tests),
/// what it is (`role`: a lane's loop and its index, or a finish job's helper), and the node it
/// runs on, `@host:pid`, so that an operator, or `bench/workers.sh`, can tell from the table which
/// machine and process ran each job (a piece of a long video, a job that failed).
pub(crate) fn worker_name(role: &str) -> String {
    format!("wk{}-{role}@{}", vidi_core::id::random_body(), node())
}

/// `host:pid` of this process (the host from the kernel; `localhost` where it cannot be read).
fn node() -> &'static str {
    static NODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NODE.get_or_init(|| {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        format!("{host}:{}", std::process::id())
    })
}

tokio::task_local! {
    /// The lane slot of the job a worker loop runs: see [`release_lane`].
    static LANE_SLOT: LaneSlot;
}

struct LaneSlot(Mutex<Option<tokio::sync::oneshot::Sender<()>>>);

/// Gives the calling job's lane slot back to its worker loop while the job goes on: the loop
/// takes the next job of its lane at once, and this one ends in the background, still held and
/// heartbeating (a stop hands it back like any other). A head calls it once its video plays, so
/// the next video's head does not wait for the rest of this one's sound; a finish job once all
/// that is left of its video runs elsewhere, so its worker does not idle while it waits. Lane
/// counts bound the jobs in their first part, then. No-op outside a worker loop, and after the
/// first call.
pub(crate) fn release_lane() {
    let _ = LANE_SLOT.try_with(|slot| {
        if let Some(tx) = slot.0.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(());
        }
    });
}

/// One worker loop, until the shutdown token is cancelled. It stops only between database calls:
/// a claim cut off after its commit would leave a job running with nobody to hand it back.
async fn run(ctx: Ctx, registry: Arc<Registry>, lane: Lane, name: String) {
    tracing::info!(worker = %name, %lane, "worker started");
    let shutdown = ctx.held.shutdown.clone();
    let mut last_reap = 0i64;
    // This loop's jobs: the one it runs and those that gave their lane slot back and still run
    // (see `release_lane`). A set rather than detached tasks, so that nothing outlives the loop:
    // dropping it (the process aborted) drops them, and their ffmpeg with them.
    let mut jobs = tokio::task::JoinSet::new();
    while !shutdown.is_cancelled() {
        while let Some(r) = jobs.try_join_next() {
            log_job_task(&name, r.err());
        }
        let now = now_ms();
        if now - last_reap > ctx.cfg.heartbeat.as_millis() as i64 {
            last_reap = now;
            match ctx.repo.reap_jobs(now - ctx.cfg.stale_after.as_millis() as i64, now).await {
                Ok(0) => {}
                Ok(n) => tracing::warn!(jobs = n, "re-queued the jobs of a lost worker"),
                Err(e) => tracing::warn!(error = %e, "reaper failed"),
            }
        }
        // Armed before the claim: a job queued while the claim runs wakes this worker at once.
        let woken = ctx.waker.armed();
        match ctx.repo.claim_job_in(&name, lane.name(), now).await {
            Ok(Some(job)) => {
                let queued_s = (job.started_at - job.run_at).max(0) as f64 / 1000.0;
                metrics::histogram!(names::QUEUE_LATENCY, "lane" => lane.name().to_string()).record(queued_s);
                let handler = registry.handler(&job.kind).cloned();
                let (tx, mut slot_back) = tokio::sync::oneshot::channel();
                let (c, worker) = (ctx.clone(), name.clone());
                let current = jobs
                    .spawn(LANE_SLOT.scope(LaneSlot(Mutex::new(Some(tx))), async move {
                        execute(&c, handler.as_deref(), &worker, job).await
                    }))
                    .id();
                // Until this job ends or gives its slot back (a released one may end meanwhile).
                loop {
                    tokio::select! {
                        Some(r) = jobs.join_next_with_id() => {
                            let id = r.as_ref().map_or_else(|e| e.id(), |(id, ())| *id);
                            log_job_task(&name, r.err());
                            if id == current {
                                break;
                            }
                        }
                        Ok(()) = &mut slot_back => break,
                    }
                }
            }
            Ok(None) => {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                    () = woken => {}
                    () = shutdown.cancelled() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not claim a job");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = shutdown.cancelled() => {}
                }
            }
        }
    }
    // They stop on the same token; the lane service hands their jobs back once they have.
    while let Some(r) = jobs.join_next().await {
        log_job_task(&name, r.err());
    }
}

fn log_job_task(worker: &str, failed: Option<tokio::task::JoinError>) {
    if let Some(e) = failed {
        // The reaper re-queues its job after the staleness window.
        tracing::error!(%worker, error = %e, "a job's task failed");
    }
}

/// Runs one job with `handler` (`None`: no handler for its kind in this process) beside its
/// heartbeat. Losing the job (the reaper gave it to another worker) cancels the work, which kills
/// its ffmpeg.
pub(crate) async fn execute(ctx: &Ctx, handler: Option<&dyn RowHandler>, worker: &str, job: Job) {
    let id = job.id.clone();
    ctx.held.hold(&id, worker);
    if execute_held(ctx, handler, worker, job).await == Ended::Stopped {
        // Still held: the lane service hands it back.
        return;
    }
    ctx.held.drop_job(&id);
}

#[derive(PartialEq)]
enum Ended {
    /// The outcome is recorded, or the job is no longer this worker's.
    Done,
    /// The process is stopping: the work was dropped (its ffmpeg killed), nothing recorded.
    Stopped,
}

async fn execute_held(ctx: &Ctx, handler: Option<&dyn RowHandler>, worker: &str, job: Job) -> Ended {
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
    let work = async {
        match handler {
            Some(h) => h.run(&job).await,
            None => Err(JobError::Permanent(format!("no handler for job kind {} here", job.kind))),
        }
    };
    let outcome = tokio::select! {
        r = work => r,
        () = beat => {
            tracing::warn!(job = %job.id, "job taken back by the reaper; abandoning it");
            return Ended::Done;
        }
        () = ctx.held.shutdown.cancelled() => {
            tracing::info!(job = %job.id, "stopping: job interrupted");
            return Ended::Stopped;
        }
    };
    let now = now_ms();
    // A full disk (the data folder's or the database's) is the machine's failure, not the job's:
    // it must not use up the job's attempts and fail a video for good while the operator frees
    // space.
    // A job that alone fills the disk (its ladder is larger than all the room there is) is not
    // the machine's failure: once its scratch is gone the disk is mostly free again, and it
    // spends its attempts and fails with its reason rather than being postponed for ever.
    let disk_full = matches!(&outcome, Err(JobError::Retry(e)) if vidi_core::error::is_disk_full(e));
    if disk_full {
        // Copies of sources kept in case a job wants them again give their room to the jobs
        // first; then the disk is full only if it is full without them.
        ctx.sources.evict_idle();
    }
    let full = disk_full && disk_still_full(&ctx.cfg.work_dir);
    let ended = match &outcome {
        Ok(()) => "completed",
        Err(JobError::Gone) => "gone",
        Err(_) if full => "postponed",
        Err(JobError::Retry(_)) if job.attempts < job.max_attempts => "retried",
        Err(_) => "failed",
    };
    metrics::counter!(names::JOBS_ENDED, "kind" => job.kind.clone(), "outcome" => ended).increment(1);
    let r = match outcome {
        Ok(()) => ctx.repo.complete_job(&job.id, worker, now).await,
        // Deleted while queued or running: nothing left to do, nothing went wrong.
        Err(JobError::Gone) => {
            let subject = handler.and_then(|h| h.subject(&job)).map(|s| s.to_string()).unwrap_or_default();
            tracing::info!(job = %job.id, %subject, "the job's subject was deleted; job dropped");
            ctx.repo.complete_job(&job.id, worker, now).await
        }
        Err(JobError::Retry(e)) if full => {
            let at = now + ctx.cfg.retry_base.as_millis() as i64;
            tracing::error!(job = %job.id, error = %e, retry_in = ?ctx.cfg.retry_base,
                "job stopped by a full disk; it runs again once there is space, its attempt not counted");
            ctx.repo.postpone_job(&job.id, worker, &e, at, now).await
        }
        Err(JobError::Retry(e)) if job.attempts < job.max_attempts => {
            let delay = handler.map_or(ctx.cfg.retry_base, |h| h.retry_after(job.attempts)).as_millis() as i64;
            tracing::warn!(job = %job.id, attempt = job.attempts, error = %e, "job failed; will retry");
            ctx.repo.fail_job(&job.id, worker, &e, Some(now + delay), now).await
        }
        Err(e @ (JobError::Retry(_) | JobError::Permanent(_))) => {
            let e = e.to_string();
            tracing::error!(job = %job.id, error = %e, "job failed for good");
            if let Some(h) = handler {
                h.give_up(&job, &e).await;
            }
            ctx.repo.fail_job(&job.id, worker, &e, None, now).await
        }
    };
    if let Err(e) = r {
        tracing::error!(job = %job.id, error = %e, "could not record the job's outcome");
    }
    Ended::Done
}

/// Whether the filesystem of `dir` is still at least 90 % used (or cannot be read): a full disk
/// that the operator, not the job, has to free.
fn disk_still_full(dir: &std::path::Path) -> bool {
    match vidi_media::encode::available_bytes(dir) {
        Ok((available, total)) if total > 0 => available.saturating_mul(10) < total,
        _ => true,
    }
}

/// Removes the entries of `dir` last modified more than `older_than` ago.
fn sweep_stale(dir: &std::path::Path, older_than: Duration) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with("copies-") {
            continue; // a process's source copies: see `sources::sweep_dead`
        }
        let stale = e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|a| a > older_than));
        if stale {
            let p = e.path();
            let r = if p.is_dir() { std::fs::remove_dir_all(&p) } else { std::fs::remove_file(&p) };
            match r {
                Ok(()) => tracing::info!(path = %p.display(), "removed what a stopped process left"),
                Err(e) => tracing::warn!(path = %p.display(), error = %e, "could not remove a stale scratch entry"),
            }
        }
    }
}

/// Where copies of sources kept elsewhere (S3) are made for the media tools: beside the jobs'
/// scratch, not in it, so a full scratch fails the encode (with its reason) and not the copy.
pub(crate) fn inputs_dir(ctx: &Ctx) -> std::path::PathBuf {
    ctx.cfg.inputs_dir()
}

impl WorkerConfig {
    /// See [`inputs_dir`]: `<data>/.inputs`.
    pub fn inputs_dir(&self) -> PathBuf {
        self.work_dir.with_file_name(".inputs")
    }

    /// A process's set of source copies under these settings (one per process: see [`sources`]).
    pub fn source_copies(&self) -> SourceCopies {
        SourceCopies::new(self.inputs_dir(), self.source_linger)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_scratch_is_swept_and_fresh_kept() {
        let d = std::env::temp_dir().join(format!("vidi-sweep-{}", vidi_core::id::random_body()));
        std::fs::create_dir_all(d.join("job-dir")).unwrap();
        std::fs::write(d.join("job-dir/seg.ts"), b"x").unwrap();
        std::fs::write(d.join("input-copy"), b"x").unwrap();
        sweep_stale(&d, Duration::from_secs(3600));
        assert!(d.join("job-dir/seg.ts").exists() && d.join("input-copy").exists(), "fresh entries kept");
        std::thread::sleep(Duration::from_millis(20));
        sweep_stale(&d, Duration::from_millis(10));
        assert_eq!(std::fs::read_dir(&d).unwrap().count(), 0, "stale entries removed");
        std::fs::remove_dir_all(&d).unwrap();
        sweep_stale(&d, Duration::ZERO); // a missing folder is nothing to do
    }

    #[test]
    fn a_worker_name_is_unique_and_says_its_node() {
        let (a, b) = (worker_name("encode-0"), worker_name("encode-0"));
        assert_ne!(a, b, "two servers in one process never share a name");
        let (role, node) = a.split_once('@').unwrap();
        assert!(role.starts_with("wk") && role.ends_with("-encode-0"), "{a}");
        let (host, pid) = node.rsplit_once(':').unwrap();
        assert!(!host.is_empty(), "{a}");
        assert_eq!(pid, std::process::id().to_string(), "{a}");
    }

    #[test]
    fn a_job_is_bounded_by_what_it_encodes_within_the_cap() {
        let cap = Duration::from_secs(6 * 3600);
        assert_eq!(time_bound(Some(5.0), cap), Duration::from_secs(600), "ten minutes at least");
        assert_eq!(time_bound(Some(3600.0), cap), Duration::from_secs(20 * 3600).min(cap));
        assert_eq!(time_bound(Some(60.0), cap), Duration::from_secs(1200));
        assert_eq!(time_bound(None, cap), cap, "unknown duration: the cap");
        assert_eq!(time_bound(Some(f64::NAN), cap), cap);
        let small = Duration::from_secs(120);
        assert_eq!(time_bound(Some(5.0), small), small, "the cap wins over the floor");
    }
}
