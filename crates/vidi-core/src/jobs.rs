//! Background work, typed. A job is stored as a `kind` and a JSON `payload` (see
//! [`Repo::enqueue_job`]); a [`JobSpec`] is what those two columns mean, so the crate that queues
//! a job and the crate that runs it agree on one definition. Whoever queues goes through
//! [`enqueue`], which derives the job's unique key and lane and wakes this process's workers.
//!
//! Every job has a [`Subject`]: the video or live stream it works on, or nothing (upkeep). The
//! job loop knows no subject: what a job that failed for good does to its subject (a video's
//! status says it failed; a live stream's recording is marked lost; nothing at all) is its
//! handler's [`JobHandler::give_up`].
//!
//! [`JobKind`] holds the kinds of video work (ingest and encoding), all of which have a video as
//! their subject. Another subsystem declares its kinds in its own crate, as another type
//! implementing [`JobSpec`], and its [`JobHandler`]s beside them; the binary adds every crate's
//! handlers to the [`Registry`] at start-up.

mod handler;

pub use handler::{JobError, JobHandler, Lane, Registry, RowHandler, StoredJob, row_handler};

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::Repo;
use crate::error::CoreResult;
use crate::id::{LiveStreamId, VideoId, WorkspaceId};
use crate::model::Job;
use crate::probe::Probe;

/// What a job works on: whatever giving up on the job affects, and what its logs name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Video(VideoId),
    LiveStream(LiveStreamId),
    /// Upkeep that belongs to no resource (sweeps, reports).
    Nothing,
}

impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Subject::Video(id) => write!(f, "video {id}"),
            Subject::LiveStream(id) => write!(f, "live stream {id}"),
            Subject::Nothing => f.write_str("no subject"),
        }
    }
}

/// A job as it is queued: the two stored columns, its unique key, its lane and its subject.
/// Implemented by each crate's kinds ([`JobKind`] for video work).
pub trait JobSpec: Send + Sync {
    /// The `kind` column (the [`Registry`] finds the handler by it).
    fn name(&self) -> &'static str;
    /// The `payload` column.
    fn payload(&self) -> serde_json::Value;
    /// While a job with this key is queued or running, queueing the same work again is a no-op.
    fn unique_key(&self) -> String;
    /// The lane whose workers run this kind. Decided with the kind rather than by its handler:
    /// the lane is written with the row when the job is queued, often by an API node that runs
    /// no handler at all.
    fn lane(&self) -> Lane;
    fn subject(&self) -> Subject;
}

/// One kind of job and its payload. Serialised as `{"kind": …, "payload": …}`, the two columns;
/// the payload's JSON shape is what existing databases hold: field names may not change, and new
/// fields need a default.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "lowercase")]
pub enum JobKind {
    /// What makes a video playable: its head (the first seconds of the ladder, published while
    /// they grow), its sound and its thumbnail; then it queues the rest of the ladder as pieces and
    /// a [`JobKind::Finish`]. A video too short to split, sound alone, or an upload still arriving
    /// is encoded whole by this job (MP4 included).
    #[serde(rename_all = "camelCase")]
    Encode {
        video_id: VideoId,
        /// The video's workspace. `None` only in payloads queued before they carried it (see
        /// [`workspace_of`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workspace_id: Option<WorkspaceId>,
        /// Queued while a chunked upload was still arriving (see [`Growing`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        growing: Option<Growing>,
    },
    /// One time range of a video's ladder, after the head (which the encode job runs).
    #[serde(rename_all = "camelCase")]
    Piece {
        video_id: VideoId,
        /// As in [`JobKind::Encode`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        workspace_id: Option<WorkspaceId>,
        index: u32,
        /// Seconds into the source.
        #[serde(default)]
        start: f64,
        /// `None`: to the end of the source.
        duration: Option<f64>,
        /// Seconds added to the piece's timestamps, so it continues the piece before.
        #[serde(default)]
        ts_offset: f64,
        /// Without sound (a video in pieces has its sound encoded once, beside the first).
        #[serde(default = "yes")]
        video_only: bool,
    },
    /// Joins a video's pieces into its playlists as they complete (running those nobody took),
    /// ends them, marks every quality encoded and makes the MP4.
    #[serde(rename_all = "camelCase")]
    Finish {
        video_id: VideoId,
        /// Required: no payload of this kind predates payloads carrying the workspace.
        workspace_id: WorkspaceId,
        /// How many pieces the video was split into, the head included.
        pieces: u32,
    },
    /// Makes the MP4 of a video encoded without one, from its stored ladder (`mp4Support` turned
    /// on afterwards), then lists it.
    #[serde(rename_all = "camelCase")]
    Mp4 { video_id: VideoId, workspace_id: WorkspaceId },
    /// Reads a complete source with ffprobe, stores what it found, then queues its encoding.
    #[serde(rename_all = "camelCase")]
    Probe { video_id: VideoId, workspace_id: WorkspaceId },
    /// Joins the chunks of a complete chunked upload into the source, then queues its probe.
    #[serde(rename_all = "camelCase")]
    Assemble { video_id: VideoId, workspace_id: WorkspaceId },
    /// Fetches a `source` URL, or copies the source of the video cloned, then queues its probe.
    #[serde(rename_all = "camelCase")]
    Import { video_id: VideoId, workspace_id: WorkspaceId },
}

fn yes() -> bool {
    true
}

/// An encoding that follows an upload still arriving: the bytes received so far are at `path`
/// (see `Blobs::growing_input`), and `probe` is the probe of that prefix.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Growing {
    pub path: String,
    pub probe: Probe,
}

/// The `kind` column of each variant.
pub const ENCODE: &str = "encode";
pub const PIECE: &str = "piece";
pub const FINISH: &str = "finish";
pub const PROBE: &str = "probe";
pub const ASSEMBLE: &str = "assemble";
pub const IMPORT: &str = "import";
pub const MP4: &str = "mp4";
const KINDS: [&str; 7] = [ENCODE, PIECE, FINISH, PROBE, ASSEMBLE, IMPORT, MP4];

impl JobSpec for JobKind {
    fn name(&self) -> &'static str {
        match self {
            JobKind::Encode { .. } => ENCODE,
            JobKind::Piece { .. } => PIECE,
            JobKind::Finish { .. } => FINISH,
            JobKind::Probe { .. } => PROBE,
            JobKind::Assemble { .. } => ASSEMBLE,
            JobKind::Import { .. } => IMPORT,
            JobKind::Mp4 { .. } => MP4,
        }
    }

    fn lane(&self) -> Lane {
        match self {
            // The head of a whole source: a few seconds of CPU between a user and playback, which
            // must not wait behind other videos' ladders.
            JobKind::Encode { growing: None, .. } => Lane::HEAD,
            // An encode that follows an upload still arriving holds its worker as long as the
            // upload takes: not in the head lane, where it would hold up every other video.
            JobKind::Encode { growing: Some(_), .. } | JobKind::Piece { .. } | JobKind::Finish { .. } => Lane::ENCODE,
            // A remux of a stored ladder: no encoding, but it reads and writes a whole video.
            JobKind::Mp4 { .. } => Lane::ENCODE,
            // Seconds of work (or a download, which waits on the network, not the CPU): none of
            // it may queue behind a ladder.
            JobKind::Probe { .. } | JobKind::Assemble { .. } | JobKind::Import { .. } => Lane::SHORT,
        }
    }

    fn payload(&self) -> serde_json::Value {
        let mut row = serde_json::to_value(self).expect("plain data");
        row["payload"].take()
    }

    fn unique_key(&self) -> String {
        match self {
            JobKind::Encode { video_id, .. } => format!("encode:{video_id}"),
            JobKind::Piece { video_id, index, .. } => format!("{}{index}", pieces_key_prefix(video_id)),
            JobKind::Finish { video_id, .. } => format!("finish:{video_id}"),
            JobKind::Probe { video_id, .. } => format!("probe:{video_id}"),
            JobKind::Assemble { video_id, .. } => format!("assemble:{video_id}"),
            JobKind::Import { video_id, .. } => format!("import:{video_id}"),
            JobKind::Mp4 { video_id, .. } => format!("mp4:{video_id}"),
        }
    }

    fn subject(&self) -> Subject {
        Subject::Video(self.video_id().clone())
    }
}

impl JobKind {
    /// The video every kind of video work works on (a job that gives up fails it).
    pub fn video_id(&self) -> &VideoId {
        match self {
            JobKind::Encode { video_id, .. }
            | JobKind::Piece { video_id, .. }
            | JobKind::Finish { video_id, .. }
            | JobKind::Probe { video_id, .. }
            | JobKind::Assemble { video_id, .. }
            | JobKind::Import { video_id, .. }
            | JobKind::Mp4 { video_id, .. } => video_id,
        }
    }

    /// The workspace the payload names (see [`workspace_of`] for payloads without one).
    pub fn workspace_id(&self) -> Option<&WorkspaceId> {
        match self {
            JobKind::Encode { workspace_id, .. } | JobKind::Piece { workspace_id, .. } => workspace_id.as_ref(),
            JobKind::Finish { workspace_id, .. }
            | JobKind::Probe { workspace_id, .. }
            | JobKind::Assemble { workspace_id, .. }
            | JobKind::Import { workspace_id, .. }
            | JobKind::Mp4 { workspace_id, .. } => Some(workspace_id),
        }
    }
}

impl StoredJob for JobKind {
    fn of(job: &Job) -> Result<JobKind, String> {
        let bad = |e: &dyn std::fmt::Display| format!("bad payload {}: {e}", job.payload);
        if !KINDS.contains(&job.kind.as_str()) {
            return Err(format!("unknown job kind {}", job.kind));
        }
        let row = serde_json::json!({ "kind": job.kind, "payload": job.payload });
        let kind: JobKind = serde_json::from_value(row).map_err(|e| bad(&e))?;
        // Ids come from our own queue, but a malformed one would name a store key nobody expects.
        if VideoId::parse(kind.video_id().as_str()).is_none() {
            return Err(bad(&"not a video id"));
        }
        if kind.workspace_id().is_some_and(|ws| WorkspaceId::parse(ws.as_str()).is_none()) {
            return Err(bad(&"not a workspace id"));
        }
        Ok(kind)
    }
}

/// The workspace a job acts in: its payload's, or, for a payload queued before payloads carried
/// it, the video's, looked up once through the one cross-tenant read of the job queue
/// (`JobRepo::workspace_of_video`). Every repository call the job then makes is scoped to it.
pub async fn workspace_of(repo: &dyn Repo, job: &JobKind) -> CoreResult<WorkspaceId> {
    match job.workspace_id() {
        Some(ws) => Ok(ws.clone()),
        None => repo.workspace_of_video(job.video_id()).await,
    }
}

/// The unique keys of a video's piece jobs start with this (a finish job claims its own pieces by it).
pub fn pieces_key_prefix(video_id: &VideoId) -> String {
    format!("piece:{video_id}:")
}

/// Wakes this process's idle workers when a job is queued here (workers elsewhere find it by
/// polling). One is made at start-up and shared by the API and the workers of the process.
#[derive(Clone, Debug, Default)]
pub struct Waker(Arc<Notify>);

impl Waker {
    pub fn new() -> Self {
        Waker::default()
    }

    /// Wakes every worker waiting in [`Waker::woken`] now.
    pub fn wake(&self) {
        self.0.notify_waiters();
    }

    /// Resolves at the first [`Waker::wake`] after this call, even one that comes before it is
    /// first polled. A worker arms it *before* asking the database for a job: a job queued while
    /// that query runs (its notification arriving before the worker waits) then wakes it at once,
    /// where a plain `notified().await` after the query would miss the wake-up and leave the job
    /// to the next poll, half a second later.
    pub fn armed(&self) -> std::pin::Pin<Box<tokio::sync::futures::Notified<'_>>> {
        let mut n = Box::pin(self.0.notified());
        n.as_mut().enable();
        n
    }
}

/// Queues `job` (a no-op when the same work is already queued or running) and wakes this
/// process's workers. Returns whether it was queued.
pub async fn enqueue(
    repo: &dyn Repo,
    waker: &Waker,
    job: &dyn JobSpec,
    run_at: i64,
    max_attempts: u32,
) -> CoreResult<bool> {
    let (kind, payload, key, lane) = (job.name(), job.payload(), job.unique_key(), job.lane());
    let queued = repo.enqueue_job_in(lane.name(), kind, &payload, &key, run_at, max_attempts).await?;
    waker.wake();
    Ok(queued)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn a_wake_between_arming_and_waiting_is_not_lost() {
        let waker = Waker::new();
        let armed = waker.armed();
        // The job is queued (and the wake sent) while the worker is still asking for one.
        waker.wake();
        tokio::time::timeout(std::time::Duration::from_secs(1), armed).await.expect("woken, not missed");
        // A wake before arming is not kept: the next wait is for the next job.
        waker.wake();
        let late = waker.armed();
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), late).await.is_err());
    }

    fn row(kind: &str, payload: serde_json::Value) -> Job {
        Job { id: "jb1".into(), kind: kind.into(), payload, attempts: 1, max_attempts: 3, started_at: 0, run_at: 0 }
    }

    /// Payloads as databases written before jobs were typed hold them.
    #[test]
    fn stored_payloads_still_read() {
        let id = VideoId::from_trusted("vi4k0jvEUuaTdRAEjQ4Jfrgz".into());
        let encode = JobKind::of(&row("encode", json!({ "videoId": id.as_str() }))).unwrap();
        assert_eq!(encode, JobKind::Encode { video_id: id.clone(), workspace_id: None, growing: None });
        assert_eq!(encode.unique_key(), format!("encode:{id}"));
        assert_eq!(encode.payload(), json!({ "videoId": id.as_str() }));

        let piece = json!({ "videoId": id.as_str(), "index": 2, "start": 30.0, "duration": null,
            "tsOffset": 30.0, "videoOnly": true });
        let kind = JobKind::of(&row("piece", piece.clone())).unwrap();
        assert_eq!(
            kind,
            JobKind::Piece {
                video_id: id.clone(),
                workspace_id: None,
                index: 2,
                start: 30.0,
                duration: None,
                ts_offset: 30.0,
                video_only: true
            }
        );
        assert_eq!((kind.name(), kind.payload()), ("piece", piece.clone()));
        assert_eq!(kind.unique_key(), format!("{}2", pieces_key_prefix(&id)));
        assert!(kind.unique_key().starts_with(&pieces_key_prefix(&id)));

        let probe = json!({ "format": "mov,mp4", "duration_s": 4.0, "bitrate_kbps": null, "video": null,
            "audio": { "codec": "aac", "sample_rate": 44100 } });
        let growing = json!({ "videoId": id.as_str(), "growing": { "path": "/up/x", "probe": probe } });
        let JobKind::Encode { growing: Some(g), .. } = JobKind::of(&row("encode", growing.clone())).unwrap() else {
            panic!("growing encode")
        };
        assert_eq!((g.path.as_str(), g.probe.duration_s), ("/up/x", Some(4.0)));
        assert_eq!(JobKind::Encode { video_id: id.clone(), workspace_id: None, growing: Some(g) }.payload(), growing);

        // Payloads queued since carry the workspace; the unique keys do not change with it.
        let ws = WorkspaceId::from_trusted("ws4k0jvEUuaTdRAEjQ4Jfrgz".into());
        let encode = json!({ "videoId": id.as_str(), "workspaceId": ws.as_str() });
        let kind = JobKind::of(&row("encode", encode.clone())).unwrap();
        assert_eq!(kind, JobKind::Encode { video_id: id.clone(), workspace_id: Some(ws.clone()), growing: None });
        assert_eq!(
            (kind.payload(), kind.unique_key(), kind.workspace_id()),
            (encode, format!("encode:{id}"), Some(&ws))
        );
        let mut piece = piece;
        piece["workspaceId"] = json!(ws.as_str());
        let kind = JobKind::of(&row("piece", piece.clone())).unwrap();
        assert_eq!((kind.payload(), kind.workspace_id()), (piece, Some(&ws)));
        assert_eq!(kind.unique_key(), format!("{}2", pieces_key_prefix(&id)));
    }

    #[test]
    fn ingest_kinds_run_in_the_short_lane_heads_in_theirs_and_ladders_in_the_encode_lane() {
        let (video_id, workspace_id) =
            (VideoId::from_trusted("vi4k0jvEUuaTdRAEjQ4Jfrgz".into()), WorkspaceId::from_trusted("ws1".into()));
        for (kind, name) in [
            (JobKind::Probe { video_id: video_id.clone(), workspace_id: workspace_id.clone() }, PROBE),
            (JobKind::Assemble { video_id: video_id.clone(), workspace_id: workspace_id.clone() }, ASSEMBLE),
            (JobKind::Import { video_id: video_id.clone(), workspace_id: workspace_id.clone() }, IMPORT),
        ] {
            assert_eq!((kind.name(), kind.lane()), (name, Lane::SHORT));
            assert_eq!(kind.unique_key(), format!("{name}:{video_id}"));
            assert_eq!(kind.payload(), json!({ "videoId": video_id.as_str(), "workspaceId": "ws1" }));
            assert_eq!(JobKind::of(&row(name, kind.payload())).unwrap(), kind);
        }
        let encode = JobKind::Encode { video_id: video_id.clone(), workspace_id: None, growing: None };
        assert_eq!(encode.lane(), Lane::HEAD);
        let probe = Probe { format: "mov".into(), duration_s: None, bitrate_kbps: None, video: None, audio: None };
        let growing = Some(Growing { path: "/up/x".into(), probe });
        assert_eq!(JobKind::Encode { video_id: video_id.clone(), workspace_id: None, growing }.lane(), Lane::ENCODE);
        let finish = JobKind::Finish { video_id: video_id.clone(), workspace_id: workspace_id.clone(), pieces: 3 };
        assert_eq!(finish.payload(), json!({ "videoId": video_id.as_str(), "workspaceId": "ws1", "pieces": 3 }));
        assert_eq!((finish.name(), finish.lane()), (FINISH, Lane::ENCODE));
        assert_eq!(finish.unique_key(), format!("finish:{video_id}"));
        assert_eq!(finish.workspace_id(), Some(&workspace_id));
        assert_eq!(JobKind::of(&row(FINISH, finish.payload())).unwrap(), finish);
    }

    #[test]
    fn jobs_that_can_never_run_say_why() {
        assert_eq!(JobKind::of(&row("test", json!({}))).unwrap_err(), "unknown job kind test");
        assert!(JobKind::of(&row("encode", json!({}))).unwrap_err().starts_with("bad payload"));
        assert!(JobKind::of(&row("encode", json!({ "videoId": "../x" }))).unwrap_err().starts_with("bad payload"));
        assert!(JobKind::of(&row("piece", json!({ "videoId": "vi1" }))).unwrap_err().starts_with("bad payload"));
        let bad_ws = json!({ "videoId": "vi1", "workspaceId": "../x" });
        assert!(JobKind::of(&row("encode", bad_ws)).unwrap_err().starts_with("bad payload"));
    }

    #[tokio::test]
    async fn a_wake_reaches_a_waiting_worker() {
        let waker = Waker::new();
        let w = waker.clone();
        let waiting = tokio::spawn(async move { w.armed().await });
        while !waiting.is_finished() {
            tokio::task::yield_now().await;
            waker.wake();
        }
        waiting.await.unwrap();
    }
}
