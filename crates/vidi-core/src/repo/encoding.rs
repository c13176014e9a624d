//! Encoding state: the outputs a video is planned to have and how far each got, whether it is
//! playable, its thumbnail, and why its encoding failed. A video of another workspace than the
//! one given is `NotFound`, and nothing is written.

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::event::Encoding;
use crate::id::{VideoId, WorkspaceId};
use crate::model::Quality;

#[async_trait]
pub trait EncodingRepo: Send + Sync + 'static {
    /// Replaces the list of expected outputs (all `waiting`).
    async fn plan_qualities(&self, ws: &WorkspaceId, id: &VideoId, qualities: &[Quality]) -> CoreResult<()>;
    async fn set_quality_status(
        &self,
        ws: &WorkspaceId,
        id: &VideoId,
        kind: &str,
        quality: &str,
        status: &str,
    ) -> CoreResult<()>;
    /// Marks one planned output encoded and, in the same transaction, records its
    /// `video.encoding.quality.completed` event (once per output, however often it is encoded
    /// again). Returns whether the event is new. `NotFound` when the output is not planned: then
    /// neither is written.
    async fn complete_quality(
        &self,
        ws: &WorkspaceId,
        id: &VideoId,
        encoding: Encoding,
        quality: &str,
        now_ns: i64,
    ) -> CoreResult<bool>;
    async fn qualities(&self, ws: &WorkspaceId, id: &VideoId) -> CoreResult<Vec<Quality>>;
    async fn set_playable(&self, ws: &WorkspaceId, id: &VideoId, playable: bool) -> CoreResult<()>;
    /// Marks the MP4 as being made after the fact (`mp4Support` turned on once the video was
    /// encoded), or made.
    async fn set_mp4_pending(&self, ws: &WorkspaceId, id: &VideoId, pending: bool) -> CoreResult<()>;
    async fn set_thumbnail(&self, ws: &WorkspaceId, id: &VideoId, key: &str) -> CoreResult<()>;
    async fn set_encode_error(&self, ws: &WorkspaceId, id: &VideoId, error: Option<&str>) -> CoreResult<()>;
}
