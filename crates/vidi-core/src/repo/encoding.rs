//! Encoding state: the outputs a video is planned to have and how far each got, whether it is
//! playable, its thumbnail, and why its encoding failed.

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::event::Encoding;
use crate::id::VideoId;
use crate::model::Quality;

#[async_trait]
pub trait EncodingRepo: Send + Sync + 'static {
    /// Replaces the list of expected outputs (all `waiting`).
    async fn plan_qualities(&self, id: &VideoId, qualities: &[Quality]) -> CoreResult<()>;
    async fn set_quality_status(&self, id: &VideoId, kind: &str, quality: &str, status: &str) -> CoreResult<()>;
    /// Marks one planned output encoded and, in the same transaction, records its
    /// `video.encoding.quality.completed` event (once per output, however often it is encoded
    /// again). Returns whether the event is new. `NotFound` when the output is not planned: then
    /// neither is written.
    async fn complete_quality(&self, id: &VideoId, encoding: Encoding, quality: &str, now_ns: i64) -> CoreResult<bool>;
    async fn qualities(&self, id: &VideoId) -> CoreResult<Vec<Quality>>;
    async fn set_playable(&self, id: &VideoId, playable: bool) -> CoreResult<()>;
    async fn set_thumbnail(&self, id: &VideoId, key: &str) -> CoreResult<()>;
    async fn set_encode_error(&self, id: &VideoId, error: Option<&str>) -> CoreResult<()>;
}
