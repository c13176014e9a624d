//! Recording: with `record: true`, each broadcast becomes one video, made when the broadcast ends
//! from the broadcast's own segments in the media store (no re-encoding: the init segment and the
//! segments, in order, are one fragmented MP4), then probed and encoded like any upload and
//! announced by `video.source.recorded`. A `record` job (short lane, its subject the live stream)
//! does it, so any worker can, and a broadcast whose node died is recorded from what reached the
//! store: the manifest lists only segments already stored.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use vidi_core::id::{BroadcastId, LiveStreamId};
use vidi_core::jobs::{self, JobError, JobHandler, JobKind, JobSpec, Lane, Registry, StoredJob, Subject, Waker};
use vidi_core::keys::source_key;
use vidi_core::live::{Broadcast, broadcast_prefix};
use vidi_core::model::{EncodingState, Ingest, IngestState, Job, SourceKind, UploadMode, Video};
use vidi_core::time::now_ms;
use vidi_core::{Blobs, CoreError, Repo};

use crate::broadcast::Shared;
use crate::playlist::{init_name, segment_name};

/// The name of a broadcast's manifest in its folder.
pub(crate) const MANIFEST: &str = "manifest.json";

/// The segments of a broadcast that reached the media store, in order.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub segments: Vec<StoredSegment>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StoredSegment {
    pub msn: u64,
    pub init: u32,
    pub duration_ms: u64,
    #[serde(default)]
    pub discontinuity: bool,
}

impl Manifest {
    pub(crate) fn push(&mut self, msn: u64, init: u32, duration: Duration, discontinuity: bool) {
        self.segments.push(StoredSegment { msn, init, duration_ms: duration.as_millis() as u64, discontinuity });
    }
}

pub const RECORD: &str = "record";

/// The live kinds of job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveJob {
    /// Make broadcast `broadcast_id` of `live_stream_id` a video.
    Record { live_stream_id: LiveStreamId, broadcast_id: BroadcastId },
}

impl JobSpec for LiveJob {
    fn name(&self) -> &'static str {
        RECORD
    }
    fn payload(&self) -> serde_json::Value {
        let LiveJob::Record { live_stream_id, broadcast_id } = self;
        serde_json::json!({ "liveStreamId": live_stream_id, "broadcastId": broadcast_id })
    }
    fn unique_key(&self) -> String {
        let LiveJob::Record { broadcast_id, .. } = self;
        format!("record:{broadcast_id}")
    }
    fn lane(&self) -> Lane {
        // Reads and writes the whole broadcast, but encodes nothing: seconds of I/O.
        Lane::SHORT
    }
    fn subject(&self) -> Subject {
        let LiveJob::Record { live_stream_id, .. } = self;
        Subject::LiveStream(live_stream_id.clone())
    }
}

impl StoredJob for LiveJob {
    fn of(job: &Job) -> Result<Self, String> {
        let field = |k: &str| job.payload[k].as_str().map(str::to_string);
        match job.kind.as_str() {
            RECORD => Ok(LiveJob::Record {
                live_stream_id: field("liveStreamId")
                    .and_then(|s| LiveStreamId::parse(&s))
                    .ok_or("the record job names no live stream")?,
                broadcast_id: field("broadcastId")
                    .and_then(|s| BroadcastId::parse(&s))
                    .ok_or("the record job names no broadcast")?,
            }),
            k => Err(format!("unknown live job kind {k}")),
        }
    }
}

/// Queues the recording of `b` (a no-op when it is already queued).
pub(crate) async fn queue(shared: &Shared, b: &Broadcast) {
    let job = LiveJob::Record { live_stream_id: b.live_stream_id.clone(), broadcast_id: b.id.clone() };
    match jobs::enqueue(shared.repo.as_ref(), &shared.waker, &job, now_ms(), shared.cfg.max_attempts).await {
        Ok(_) => tracing::info!(broadcast = %b.id, video = %b.video_id, "recording queued"),
        Err(e) => tracing::error!(broadcast = %b.id, error = %e, "the recording could not be queued"),
    }
}

/// Runs the `record` jobs.
pub struct Recorder {
    pub repo: Arc<dyn Repo>,
    pub blobs: Arc<dyn Blobs>,
    pub waker: Waker,
    pub max_attempts: u32,
}

/// Registers the live kinds' handlers (in every process that runs a short lane).
pub fn register(registry: &mut Registry, recorder: Recorder) {
    registry.register::<LiveJob>(RECORD, recorder);
}

#[async_trait]
impl JobHandler<LiveJob> for Recorder {
    async fn run(&self, job: &LiveJob) -> Result<(), JobError> {
        let LiveJob::Record { broadcast_id, .. } = job;
        let b = self.repo.get_broadcast(broadcast_id).await?.ok_or(JobError::Gone)?;
        let video_id = b.video_id.clone();
        let ws = b.workspace_id.clone();
        let probe = JobKind::Probe { video_id: video_id.clone(), workspace_id: ws.clone() };
        // Already made by an earlier attempt: only its probe may be missing.
        if self.repo.get_video(&ws, &video_id).await.is_ok() {
            jobs::enqueue(self.repo.as_ref(), &self.waker, &probe, now_ms(), self.max_attempts).await?;
            return Ok(());
        }
        let live = self.repo.live_stream_for_delivery(&b.live_stream_id).await?;
        let prefix = broadcast_prefix(&b.live_stream_id, &b.id);
        let manifest: Manifest = match read_all(self.blobs.as_ref(), &format!("{prefix}{MANIFEST}")).await {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| JobError::Permanent(format!("bad manifest: {e}")))?
            }
            Err(CoreError::NotFound) => return Err(JobError::Permanent("the broadcast stored no segment".into())),
            Err(e) => return Err(e.into()),
        };
        let keys = source_keys(&prefix, &manifest)?;
        let dest = source_key(video_id.as_str());
        let blobs = self.blobs.clone();
        // One stream through the store: a long broadcast never sits in memory.
        let body = futures::stream::iter(keys)
            .then(move |k| {
                let blobs = blobs.clone();
                async move { blobs.get(&k, None).await.map_err(|e| std::io::Error::other(e.to_string())) }
            })
            .map(|s| match s {
                Ok(s) => s,
                Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
            })
            .flatten()
            .boxed();
        let size = self.blobs.put_stream(&dest, body).await?;
        let now = now_ms();
        let video = Video {
            id: video_id.clone(),
            workspace_id: ws.clone(),
            title: live.name.clone(),
            description: None,
            public: live.public,
            panoramic: false,
            mp4_support: true,
            player_id: live.player_id.clone(),
            tags: vec![],
            metadata: vec![],
            source_kind: SourceKind::Live,
            source_ref: Some(live.id.to_string()),
            created_at: now,
            updated_at: now,
            published_at: Some(now),
            ingest: Ingest {
                state: IngestState::Uploaded,
                mode: UploadMode::None,
                filesize: Some(size),
                parts_total: None,
                session: None,
                source_key: Some(dest),
                probe: None,
            },
            encoding: EncodingState::default(),
            clip: None,
        };
        self.repo.insert_recording(&b, &video, now * 1_000_000).await?;
        tracing::info!(broadcast = %b.id, video = %video_id, bytes = size, segments = manifest.segments.len(), "broadcast recorded");
        jobs::enqueue(self.repo.as_ref(), &self.waker, &probe, now_ms(), self.max_attempts).await?;
        Ok(())
    }
}

/// The store keys that make the recording: the init segment, then every segment, in order. A
/// broadcast whose publisher changed its encoder's settings midway has several inits, which one
/// MP4 cannot hold: it is recorded up to the first change (logged).
fn source_keys(prefix: &str, m: &Manifest) -> Result<Vec<String>, JobError> {
    let first = m.segments.first().ok_or_else(|| JobError::Permanent("the broadcast stored no segment".into()))?;
    let mut keys = vec![format!("{prefix}{}", init_name(first.init))];
    for s in &m.segments {
        if s.init != first.init {
            tracing::warn!(prefix, at = s.msn, "the publisher changed its settings: recorded up to the change");
            break;
        }
        keys.push(format!("{prefix}{}", segment_name(s.msn)));
    }
    Ok(keys)
}

async fn read_all(blobs: &dyn Blobs, key: &str) -> vidi_core::CoreResult<Vec<u8>> {
    let mut s = blobs.get(key, None).await?;
    let mut out = Vec::new();
    while let Some(piece) = s.next().await {
        out.extend_from_slice(&piece.map_err(|e| CoreError::Storage(e.to_string()))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_is_its_init_and_segments_in_order_up_to_a_change_of_settings() {
        let mut m = Manifest::default();
        for (msn, init) in [(0, 0), (1, 0), (2, 0), (3, 1)] {
            m.push(msn, init, Duration::from_secs(2), false);
        }
        assert_eq!(
            source_keys("live/li1/bc1/", &m).unwrap(),
            ["live/li1/bc1/init0.mp4", "live/li1/bc1/0.m4s", "live/li1/bc1/1.m4s", "live/li1/bc1/2.m4s"]
        );
        assert!(source_keys("p/", &Manifest::default()).is_err());
    }

    #[test]
    fn the_job_round_trips_through_its_row() {
        let job = LiveJob::Record {
            live_stream_id: LiveStreamId::parse("li1").unwrap(),
            broadcast_id: BroadcastId::parse("bc1").unwrap(),
        };
        let row = Job {
            id: "jb1".into(),
            kind: job.name().into(),
            payload: job.payload(),
            attempts: 1,
            max_attempts: 3,
            started_at: 0,
            run_at: 0,
        };
        assert_eq!(LiveJob::of(&row).unwrap(), job);
        assert_eq!((job.unique_key().as_str(), job.lane()), ("record:bc1", Lane::SHORT));
    }
}
