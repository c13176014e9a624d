//! How a job kind is run: its [`JobHandler`] (the work, the wait before each retry, what giving up
//! does), registered in a [`Registry`] by the crate that owns the kind, and the [`Lane`] whose
//! workers take it. The job loop (`vidi-worker`) claims from one lane, finds the handler by the
//! row's `kind`, and records the outcome; it knows no kind by name.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::JobKind;
use crate::error::CoreError;

/// A set of workers of their own, with their own count, so that one kind of work never waits
/// behind another: a probe queued while every encode slot is busy starts at once on a short
/// worker. Stored in the `lane` column; a worker claims only jobs of its lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lane {
    /// Seconds of work that stands between a user and their video: probes, assemblies, URL
    /// imports (`VIDI_SHORT_WORKERS`).
    Short,
    /// The first seconds of each video's ladder, which make it playable (`VIDI_HEAD_WORKERS`):
    /// a video's head never waits behind the rest of other videos' ladders.
    Head,
    /// Minutes of CPU: the rest of the ladders, in pieces, at a lower CPU priority than heads
    /// (`VIDI_WORKERS`).
    Encode,
}

impl Lane {
    pub const ALL: [Lane; 3] = [Lane::Short, Lane::Head, Lane::Encode];

    /// The `lane` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Short => "short",
            Lane::Head => "head",
            Lane::Encode => "encode",
        }
    }
}

impl std::fmt::Display for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a job did not finish.
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

impl From<CoreError> for JobError {
    fn from(e: CoreError) -> Self {
        match e {
            CoreError::NotFound => JobError::Gone,
            e => JobError::Retry(e.to_string()),
        }
    }
}

/// What runs one kind of job. A handler holds what its work needs (stores, settings); the job
/// loop gives it the claimed job's typed kind and keeps its heartbeat while it runs.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// Does the work. Dropping the future must stop it (a stopping worker drops it and hands the
    /// job back; a job the reaper took away is dropped too), so child processes are killed on
    /// drop and partial output is written where a later attempt overwrites it.
    async fn run(&self, job: &JobKind) -> Result<(), JobError>;

    /// How long after failed attempt number `attempt` (1 for the first) the job runs again,
    /// while it has attempts left. By default 10 s, then four times longer each time.
    fn retry_after(&self, attempt: u32) -> Duration {
        Duration::from_secs(10) * 4u32.pow(attempt.saturating_sub(1).min(6))
    }

    /// Called once when the job has failed for good (out of attempts, or a permanent error),
    /// before the failure is recorded: says so wherever users look (a video's status).
    async fn give_up(&self, _job: &JobKind, _error: &str) {}
}

/// The handlers of every kind this process runs, by `kind` column. Filled at start-up by the
/// binary, from each crate that owns kinds (`vidi_worker::register`).
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<&'static str, Arc<dyn JobHandler>>,
}

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }

    /// Registers `handler` for the kind whose `kind` column is `kind` (one of the constants in
    /// `vidi_core::jobs`). Registering a kind twice is a wiring mistake, caught at start-up.
    pub fn register(&mut self, kind: &'static str, handler: Arc<dyn JobHandler>) {
        let previous = self.handlers.insert(kind, handler);
        assert!(previous.is_none(), "two handlers for job kind {kind}");
    }

    pub fn handler(&self, kind: &str) -> Option<&Arc<dyn JobHandler>> {
        self.handlers.get(kind)
    }

    /// The kinds registered, sorted (for logs and tests).
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k: Vec<_> = self.handlers.keys().copied().collect();
        k.sort_unstable();
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;

    #[async_trait]
    impl JobHandler for Nothing {
        async fn run(&self, _job: &JobKind) -> Result<(), JobError> {
            Ok(())
        }
    }

    #[test]
    fn default_backoff_grows_fourfold() {
        let secs: Vec<u64> = (1..=4).map(|a| Nothing.retry_after(a).as_secs()).collect();
        assert_eq!(secs, [10, 40, 160, 640]);
        assert_eq!(Nothing.retry_after(50), Nothing.retry_after(7), "capped, never overflows");
    }

    #[test]
    #[should_panic(expected = "two handlers for job kind probe")]
    fn a_kind_has_one_handler() {
        let mut r = Registry::new();
        r.register(super::super::PROBE, Arc::new(Nothing));
        r.register(super::super::PROBE, Arc::new(Nothing));
    }
}
