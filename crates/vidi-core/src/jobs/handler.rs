//! How a job kind is run: its [`JobHandler`] (the work, the wait before each retry, what giving up
//! does), registered in a [`Registry`] by the crate that owns the kind, and the [`Lane`] whose
//! workers take it. The job loop (`vidi-worker`) claims from one lane, finds the handler by the
//! row's `kind`, and records the outcome; it knows no kind by name.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use std::borrow::Cow;
use std::marker::PhantomData;

use super::{JobSpec, Subject};
use crate::error::CoreError;
use crate::model::Job;

/// A set of workers of their own, with their own count, so that one kind of work never waits
/// behind another: a probe queued while every encode slot is busy starts at once on a short
/// worker. Stored in the `lane` column; a worker claims only jobs of its lane. Which lanes a
/// process runs, and how many workers each has, is configuration; a kind names its lane.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Lane(Cow<'static, str>);

impl Lane {
    /// Seconds of work that stands between a user and their video: probes, assemblies, URL
    /// imports (`VIDI_SHORT_WORKERS`).
    pub const SHORT: Lane = Lane(Cow::Borrowed("short"));
    /// The first seconds of each video's ladder, which make it playable (`VIDI_HEAD_WORKERS`):
    /// a video's head never waits behind the rest of other videos' ladders.
    pub const HEAD: Lane = Lane(Cow::Borrowed("head"));
    /// Minutes of CPU: the rest of the ladders, in pieces, paused while heads run
    /// (`VIDI_WORKERS`).
    pub const ENCODE: Lane = Lane(Cow::Borrowed("encode"));

    /// A lane named in configuration or by another crate's kinds (lowercase letters, digits and
    /// `-`, so it is safe in a worker's name and a log line).
    pub fn named(name: impl Into<Cow<'static, str>>) -> Option<Lane> {
        let name = name.into();
        let ok = !name.is_empty()
            && name.len() <= 32
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        ok.then_some(Lane(name))
    }

    /// The `lane` column.
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
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
    /// The job's subject (its video, its live stream) was deleted meanwhile: nothing is left
    /// to do, and nothing went wrong.
    #[error("the job's subject no longer exists")]
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

/// A kind's stored form read back: how a claimed row becomes the typed kind its handler takes.
pub trait StoredJob: JobSpec + Sized + Send + Sync + 'static {
    /// What a claimed job is. An error says why it can never run (unknown kind, bad payload).
    fn of(job: &Job) -> Result<Self, String>;
}

/// What runs one kind of job, `K` being the crate's type of kinds. A handler holds what its work
/// needs (stores, settings); the job loop gives it the claimed job, typed, and keeps its
/// heartbeat while it runs.
#[async_trait]
pub trait JobHandler<K: StoredJob>: Send + Sync + 'static {
    /// Does the work. Dropping the future must stop it (a stopping worker drops it and hands the
    /// job back; a job the reaper took away is dropped too), so child processes are killed on
    /// drop and partial output is written where a later attempt overwrites it.
    async fn run(&self, job: &K) -> Result<(), JobError>;

    /// How long after failed attempt number `attempt` (1 for the first) the job runs again,
    /// while it has attempts left. By default 10 s, then four times longer each time.
    fn retry_after(&self, attempt: u32) -> Duration {
        Duration::from_secs(10) * 4u32.pow(attempt.saturating_sub(1).min(6))
    }

    /// Called once when the job has failed for good (out of attempts, or a permanent error),
    /// before the failure is recorded: says so wherever users look (a video's status), or does
    /// nothing. The kind's own decision: the loop never touches a subject itself.
    async fn give_up(&self, _job: &K, _error: &str) {}
}

/// A handler as the job loop sees it: given the claimed row, whatever its kind's type.
#[async_trait]
pub trait RowHandler: Send + Sync + 'static {
    async fn run(&self, job: &Job) -> Result<(), JobError>;
    fn retry_after(&self, attempt: u32) -> Duration;
    async fn give_up(&self, job: &Job, error: &str);
    /// The subject the row names, for logs (`None`: the row cannot be read).
    fn subject(&self, job: &Job) -> Option<Subject>;
}

/// `handler` as the job loop calls it (for a job that runs another kind's jobs itself, as a
/// finish job runs its own pieces).
pub fn row_handler<K: StoredJob>(handler: impl JobHandler<K>) -> Arc<dyn RowHandler> {
    Arc::new(Typed { handler, kind: PhantomData::<fn() -> K> })
}

struct Typed<K, H> {
    handler: H,
    kind: PhantomData<fn() -> K>,
}

#[async_trait]
impl<K: StoredJob, H: JobHandler<K>> RowHandler for Typed<K, H> {
    async fn run(&self, job: &Job) -> Result<(), JobError> {
        let kind = K::of(job).map_err(JobError::Permanent)?;
        self.handler.run(&kind).await
    }
    fn retry_after(&self, attempt: u32) -> Duration {
        self.handler.retry_after(attempt)
    }
    async fn give_up(&self, job: &Job, error: &str) {
        // A row that cannot be read has no subject to tell.
        if let Ok(kind) = K::of(job) {
            self.handler.give_up(&kind, error).await
        }
    }
    fn subject(&self, job: &Job) -> Option<Subject> {
        K::of(job).ok().map(|k| k.subject())
    }
}

/// The handlers of every kind this process runs, by `kind` column. Filled at start-up by the
/// binary, from each crate that owns kinds (`vidi_worker::register`).
#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<&'static str, Arc<dyn RowHandler>>,
}

impl Registry {
    pub fn new() -> Self {
        Registry::default()
    }

    /// Registers `handler` for the kind whose `kind` column is `kind`, of the kinds `K`.
    /// Registering a kind twice is a wiring mistake, caught at start-up.
    pub fn register<K: StoredJob>(&mut self, kind: &'static str, handler: impl JobHandler<K>) {
        let previous = self.handlers.insert(kind, row_handler(handler));
        assert!(previous.is_none(), "two handlers for job kind {kind}");
    }

    pub fn handler(&self, kind: &str) -> Option<&Arc<dyn RowHandler>> {
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

    use crate::jobs::JobKind;

    struct Nothing;

    #[async_trait]
    impl JobHandler<JobKind> for Nothing {
        async fn run(&self, _job: &JobKind) -> Result<(), JobError> {
            Ok(())
        }
    }

    #[test]
    fn default_backoff_grows_fourfold() {
        let secs: Vec<u64> = (1..=4).map(|a| JobHandler::<JobKind>::retry_after(&Nothing, a).as_secs()).collect();
        assert_eq!(secs, [10, 40, 160, 640]);
        let at = |a| JobHandler::<JobKind>::retry_after(&Nothing, a);
        assert_eq!(at(50), at(7), "capped, never overflows");
    }

    #[test]
    #[should_panic(expected = "two handlers for job kind probe")]
    fn a_kind_has_one_handler() {
        let mut r = Registry::new();
        r.register::<JobKind>(super::super::PROBE, Nothing);
        r.register::<JobKind>(super::super::PROBE, Nothing);
    }

    #[test]
    fn lane_names_are_safe_words() {
        assert_eq!(Lane::named("live").unwrap().name(), "live");
        assert_eq!(Lane::named("live-2").unwrap(), Lane::named(String::from("live-2")).unwrap());
        for bad in ["", "Live", "a b", "x/y", "lane\n", &"l".repeat(33)] {
            assert!(Lane::named(bad.to_string()).is_none(), "{bad:?}");
        }
    }
}
