//! What the HLS master playlist lists, stored per video when the encode plans its renditions, so
//! that delivery builds the master from state when it is requested (and later adds subtitle and
//! audio groups from their own tables) instead of serving a file the encoder wrote once.

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::id::{VideoId, WorkspaceId};

/// How a rendition appears in the master playlist.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenditionRole {
    /// A variant stream (`#EXT-X-STREAM-INF`): a picture rung, or the sound of an audio-only video.
    Variant,
    /// An alternative audio rendition (`#EXT-X-MEDIA:TYPE=AUDIO`) of group `audio_group`: the
    /// sound of a video encoded in pieces, which every variant plays with.
    Audio,
}

impl RenditionRole {
    pub fn as_str(self) -> &'static str {
        match self {
            RenditionRole::Variant => "variant",
            RenditionRole::Audio => "audio",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "variant" => Some(RenditionRole::Variant),
            "audio" => Some(RenditionRole::Audio),
            _ => None,
        }
    }
}

/// One rendition as the master playlist names it. Its folder (and media playlist
/// `<name>/index.m3u8`) is its `name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendition {
    /// `240p` … `2160p`, or `audio`.
    pub name: String,
    pub role: RenditionRole,
    /// Peak bits per second (what players take `BANDWIDTH` for).
    pub bandwidth: u64,
    pub average_bandwidth: u64,
    /// RFC 6381 codec strings, comma-separated.
    pub codecs: String,
    /// Width × height of the picture; `None` for sound.
    pub resolution: Option<(u32, u32)>,
    /// A variant: the audio group it plays with. An audio rendition: the group it belongs to.
    pub audio_group: Option<String>,
    /// An audio rendition's channel count.
    pub channels: Option<u32>,
}

#[async_trait]
pub trait RenditionRepo: Send + Sync {
    /// Replaces the renditions of a video (in master playlist order); none withdraws them.
    /// `NotFound` (and nothing written) when the video is not the workspace's.
    async fn plan_renditions(&self, ws: &WorkspaceId, id: &VideoId, renditions: &[Rendition]) -> CoreResult<()>;
    /// The renditions of a video of the workspace, in the order they were planned.
    async fn renditions(&self, ws: &WorkspaceId, id: &VideoId) -> CoreResult<Vec<Rendition>>;
}
