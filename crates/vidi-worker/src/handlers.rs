//! This crate's job kinds and their handlers, registered by [`register`]. Each handler holds the
//! worker context; what a kind does lives in its module (`encode`, `pieces`, `ingest`).

use std::time::Duration;

use async_trait::async_trait;
use vidi_core::encoding::record_failure;
use vidi_core::jobs::{self, JobError, JobHandler, JobKind, JobSpec, Registry};
use vidi_core::model::ProbeOutcome;
use vidi_media::encode::Piece;

use crate::{Ctx, encode, ingest, pieces};

/// Adds the handlers of every kind this crate owns: `encode` (head lane, or encode lane when it
/// follows an upload still arriving), `piece` and `finish` (encode lane), `probe`, `assemble` and
/// `import` (short lane).
pub fn register(registry: &mut Registry, ctx: &Ctx) {
    registry.register::<JobKind>(jobs::ENCODE, Encode(ctx.clone()));
    registry.register::<JobKind>(jobs::PIECE, PieceJob(ctx.clone()));
    registry.register::<JobKind>(jobs::FINISH, Finish(ctx.clone()));
    registry.register::<JobKind>(jobs::PROBE, ProbeJob(ctx.clone()));
    registry.register::<JobKind>(jobs::ASSEMBLE, Assemble(ctx.clone()));
    registry.register::<JobKind>(jobs::IMPORT, Import(ctx.clone()));
    registry.register::<JobKind>(jobs::MP4, Mp4Job(ctx.clone()));
}

/// `retry_base`, then four times longer each time: 10 s, 40 s, 160 s … by default.
fn backoff(ctx: &Ctx, attempt: u32) -> Duration {
    ctx.cfg.retry_base * 4u32.pow(attempt.saturating_sub(1).min(6))
}

fn wrong_kind(job: &JobKind) -> JobError {
    JobError::Permanent(format!("a {} job given to another kind's handler", job.name()))
}

/// Every kind here works on one video: giving up fails its encoding, with the reason.
async fn fail_video(ctx: &Ctx, job: &JobKind, error: &str) {
    // Its encoding has ended: this node's copy of its source goes (see `crate::sources`).
    ctx.sources.forget(&vidi_core::keys::source_key(job.video_id().as_str()));
    match jobs::workspace_of(ctx.repo.as_ref(), job).await {
        Ok(ws) => record_failure(ctx.repo.as_ref(), &ws, job.video_id(), error).await,
        Err(e) => tracing::warn!(video = %job.video_id(), error = %e, "gave up on a job whose video is gone"),
    }
}

struct Encode(Ctx);

#[async_trait]
impl JobHandler<JobKind> for Encode {
    async fn run(&self, job: &JobKind) -> Result<(), JobError> {
        let JobKind::Encode { video_id, growing, .. } = job else { return Err(wrong_kind(job)) };
        // Every repository call of the job is scoped to the video's workspace.
        let ws = jobs::workspace_of(self.0.repo.as_ref(), job).await?;
        encode::run(&self.0, &ws, video_id, growing.as_ref()).await
    }
    fn retry_after(&self, attempt: u32) -> Duration {
        backoff(&self.0, attempt)
    }
    async fn give_up(&self, job: &JobKind, error: &str) {
        fail_video(&self.0, job, error).await
    }
}

/// Also run by a finish job itself, for the pieces of its own video (see `pieces::help`).
pub(crate) struct PieceJob(pub(crate) Ctx);

#[async_trait]
impl JobHandler<JobKind> for PieceJob {
    async fn run(&self, job: &JobKind) -> Result<(), JobError> {
        let &JobKind::Piece { ref video_id, index, start, duration, ts_offset, video_only, .. } = job else {
            return Err(wrong_kind(job));
        };
        let ws = jobs::workspace_of(self.0.repo.as_ref(), job).await?;
        let piece = Piece { index, start_s: start, duration_s: duration, ts_offset_s: ts_offset, video_only };
        pieces::run(&self.0, &ws, video_id, &piece).await
    }
    fn retry_after(&self, attempt: u32) -> Duration {
        backoff(&self.0, attempt)
    }
    async fn give_up(&self, job: &JobKind, error: &str) {
        fail_video(&self.0, job, error).await
    }
}

struct Finish(Ctx);

#[async_trait]
impl JobHandler<JobKind> for Finish {
    async fn run(&self, job: &JobKind) -> Result<(), JobError> {
        let &JobKind::Finish { ref video_id, ref workspace_id, pieces: count } = job else {
            return Err(wrong_kind(job));
        };
        pieces::run_finish(&self.0, workspace_id, video_id, count).await
    }
    fn retry_after(&self, attempt: u32) -> Duration {
        backoff(&self.0, attempt)
    }
    async fn give_up(&self, job: &JobKind, error: &str) {
        fail_video(&self.0, job, error).await
    }
}

struct Mp4Job(Ctx);

#[async_trait]
impl JobHandler<JobKind> for Mp4Job {
    async fn run(&self, job: &JobKind) -> Result<(), JobError> {
        let JobKind::Mp4 { video_id, workspace_id } = job else { return Err(wrong_kind(job)) };
        pieces::run_mp4(&self.0, workspace_id, video_id).await
    }
    fn retry_after(&self, attempt: u32) -> Duration {
        backoff(&self.0, attempt)
    }
    /// The ladder still plays: only the MP4 is missing. It stays unlisted (still pending), and
    /// the reason is logged rather than failing a playable video.
    async fn give_up(&self, job: &JobKind, error: &str) {
        tracing::error!(video = %job.video_id(), error, "could not make the MP4");
    }
}

struct ProbeJob(Ctx);

#[async_trait]
impl JobHandler<JobKind> for ProbeJob {
    async fn run(&self, job: &JobKind) -> Result<(), JobError> {
        let JobKind::Probe { video_id, workspace_id } = job else { return Err(wrong_kind(job)) };
        ingest::probe(&self.0, workspace_id, video_id).await
    }
    fn retry_after(&self, attempt: u32) -> Duration {
        backoff(&self.0, attempt)
    }
    async fn give_up(&self, job: &JobKind, error: &str) {
        fail_video(&self.0, job, &format!("could not probe the source: {error}")).await
    }
}

struct Assemble(Ctx);

#[async_trait]
impl JobHandler<JobKind> for Assemble {
    async fn run(&self, job: &JobKind) -> Result<(), JobError> {
        let JobKind::Assemble { video_id, workspace_id } = job else { return Err(wrong_kind(job)) };
        ingest::assemble(&self.0, workspace_id, video_id).await
    }
    /// Every byte is durable; only the join failed (the store was unreachable): try again soon,
    /// a user is waiting. 2 s, 4 s, 8 s … (the API queues it with six attempts).
    fn retry_after(&self, attempt: u32) -> Duration {
        Duration::from_secs(1 << attempt.clamp(1, 6))
    }
    async fn give_up(&self, job: &JobKind, error: &str) {
        fail_video(&self.0, job, &format!("could not assemble the upload: {error}")).await
    }
}

struct Import(Ctx);

#[async_trait]
impl JobHandler<JobKind> for Import {
    async fn run(&self, job: &JobKind) -> Result<(), JobError> {
        let JobKind::Import { video_id, workspace_id } = job else { return Err(wrong_kind(job)) };
        ingest::import(&self.0, workspace_id, video_id).await
    }
    fn retry_after(&self, attempt: u32) -> Duration {
        backoff(&self.0, attempt)
    }
    /// The source will never come: the status says why (the URL was refused, its server failed).
    async fn give_up(&self, job: &JobKind, error: &str) {
        if let JobKind::Import { video_id, workspace_id } = job {
            let _ = self.0.repo.set_probe(workspace_id, video_id, &ProbeOutcome::Failed(error.to_string())).await;
        }
        fail_video(&self.0, job, error).await
    }
}
