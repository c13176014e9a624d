//! The records the repository stores. Wire shapes live in the API crate; these are the facts.

use serde::{Deserialize, Serialize};

use crate::id::{ApiKeyId, VideoId, WorkspaceId};
use crate::probe::Probe;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataPair {
    pub key: String,
    pub value: String,
}

/// Where a video's source comes from. Uploads may only go to `Upload` videos.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceKind {
    Upload,
    Download,
    Clone,
    /// The recording of a broadcast (`source_ref` is the live stream's id).
    Live,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Upload => "upload",
            SourceKind::Download => "download",
            SourceKind::Clone => "clone",
            SourceKind::Live => "live",
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "download" => SourceKind::Download,
            "clone" => SourceKind::Clone,
            "live" => SourceKind::Live,
            _ => SourceKind::Upload,
        }
    }
}

/// Ingest progress. The wire only knows `missing|uploading|uploaded` (Python 1.3.0 enforces the
/// enum), so `Assembling` and `Failed` are reported as `uploading` / `uploaded` there; they exist
/// so recovery after a crash knows what to resume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngestState {
    Missing,
    Uploading,
    Assembling,
    Uploaded,
}

impl IngestState {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestState::Missing => "missing",
            IngestState::Uploading => "uploading",
            IngestState::Assembling => "assembling",
            IngestState::Uploaded => "uploaded",
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "uploading" => IngestState::Uploading,
            "assembling" => IngestState::Assembling,
            "uploaded" => IngestState::Uploaded,
            _ => IngestState::Missing,
        }
    }
}

/// How the source is being sent. A video stays in the mode its first upload request chose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadMode {
    None,
    Whole,
    Part,
    Bytes,
}

impl UploadMode {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadMode::None => "none",
            UploadMode::Whole => "whole",
            UploadMode::Part => "part",
            UploadMode::Bytes => "bytes",
        }
    }
    pub fn parse(s: &str) -> Self {
        match s {
            "whole" => UploadMode::Whole,
            "part" => UploadMode::Part,
            "bytes" => UploadMode::Bytes,
            _ => UploadMode::None,
        }
    }
}

/// The outcome of probing a complete source with ffprobe.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ProbeOutcome {
    /// ffprobe's findings (parsed by the media crate).
    Probed(Probe),
    /// The source is not a playable video; the reason is kept for the operator.
    Failed(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Video {
    pub id: VideoId,
    pub workspace_id: WorkspaceId,
    pub title: String,
    pub description: Option<String>,
    pub public: bool,
    pub panoramic: bool,
    pub mp4_support: bool,
    pub player_id: Option<String>,
    pub tags: Vec<String>,
    pub metadata: Vec<MetadataPair>,
    pub source_kind: SourceKind,
    /// For `Download` (a URL), `Clone` (a video id) and `Live` (a live stream id).
    pub source_ref: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub published_at: Option<i64>,
    pub ingest: Ingest,
    pub encoding: EncodingState,
    /// The part of the source the video is made of (`clip` on create); `None`: all of it.
    pub clip: Option<crate::clip::Clip>,
}

impl Video {
    /// Its source will never play: not accepted media, not fetched, or encoding gave up. Its
    /// assets then answer 404 rather than "not yet" (202), so pollers stop.
    pub fn failed(&self) -> bool {
        matches!(self.ingest.probe, Some(ProbeOutcome::Failed(_)))
            || (self.encoding.error.is_some() && !self.encoding.playable)
    }
}

/// What encoding has produced so far (the per-quality states live beside it, see [`Quality`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EncodingState {
    /// True once a player can start: the master playlist and the first rendition's first
    /// segments are published.
    pub playable: bool,
    pub thumbnail_key: Option<String>,
    /// Why encoding failed, for the operator (the 2023 wire has no field for it).
    pub error: Option<String>,
    /// `mp4Support` was turned on after the video was encoded: its MP4 is being made, and is
    /// neither listed nor served until it is.
    pub mp4_pending: bool,
}

/// One output of the encoder, as the status reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quality {
    /// `hls` or `mp4`.
    pub kind: String,
    /// `240p` … `2160p`.
    pub quality: String,
    /// `waiting`, `encoding`, `encoded` or `failed`.
    pub status: String,
}

/// A unit of background work, claimed by one worker at a time.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: String,
    pub kind: String,
    pub payload: serde_json::Value,
    /// Including the current one.
    pub attempts: u32,
    pub max_attempts: u32,
    /// When this attempt was claimed (unix ms); against when it was due, the time it queued.
    pub started_at: i64,
    /// When this attempt was due (unix ms): `started_at - run_at` is how long it queued.
    pub run_at: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Ingest {
    pub state: IngestState,
    pub mode: UploadMode,
    /// Total size in bytes, once known.
    pub filesize: Option<u64>,
    /// Part mode: the announced number of parts, once known.
    pub parts_total: Option<u32>,
    /// Storage-side multipart session (S3 upload id, or the local staging name).
    pub session: Option<String>,
    /// Where the complete source lives in the media store.
    pub source_key: Option<String>,
    pub probe: Option<ProbeOutcome>,
}

impl Ingest {
    pub fn empty() -> Self {
        Ingest {
            state: IngestState::Missing,
            mode: UploadMode::None,
            filesize: None,
            parts_total: None,
            session: None,
            source_key: None,
            probe: None,
        }
    }
}

/// One received (or being received) chunk of a ranged upload.
#[derive(Clone, Debug, PartialEq)]
pub struct Chunk {
    /// Part number: `n` in part mode; in bytes mode `from / 5 MiB + 1`, which is strictly
    /// increasing with `from` because every range but the last is at least 5 MiB.
    pub idx: u32,
    /// Bytes mode: the inclusive range announced.
    pub range: Option<(u64, u64)>,
    /// Set once the chunk is durable.
    pub size: Option<u64>,
    /// Storage receipt (S3 part ETag, or the local placement).
    pub receipt: Option<String>,
    /// Who is writing it while it is not done yet: the instance id and when it claimed it.
    pub claimed_by: Option<String>,
    pub claimed_at: i64,
}

impl Chunk {
    pub fn done(&self) -> bool {
        self.size.is_some()
    }
}

/// Filters and order for `GET /videos`.
#[derive(Clone, Debug, Default)]
pub struct VideoFilter {
    pub title: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub metadata: Vec<MetadataPair>,
    pub live_stream_id: Option<String>,
    pub sort_by: VideoSort,
    pub descending: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VideoSort {
    #[default]
    CreatedAt,
    Title,
    PublishedAt,
    UpdatedAt,
}

#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    /// 1-based.
    pub page: u32,
    pub size: u32,
}

impl PageRequest {
    pub fn offset(&self) -> u64 {
        (self.page as u64 - 1) * self.size as u64
    }
}

/// What an API key resolves to.
#[derive(Clone, Debug)]
pub struct KeyOwner {
    pub key_id: ApiKeyId,
    pub workspace_id: WorkspaceId,
}

/// An API key as the operator sees it (`vidi api-key list`). The secret is not here: only its
/// hash is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyInfo {
    pub id: ApiKeyId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms; `None` while the key is in use.
    pub revoked_at: Option<i64>,
}
