//! Videos: the rows the API creates, reads, lists, edits and deletes.

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::id::{VideoId, WorkspaceId};
use crate::model::{PageRequest, Video, VideoFilter};

#[async_trait]
pub trait VideoRepo: Send + Sync + 'static {
    async fn insert_video(&self, video: &Video) -> CoreResult<()>;
    async fn get_video(&self, ws: &WorkspaceId, id: &VideoId) -> CoreResult<Video>;
    async fn list_videos(
        &self,
        ws: &WorkspaceId,
        filter: &VideoFilter,
        page: PageRequest,
    ) -> CoreResult<(Vec<Video>, u64)>;
    /// Stores the editable fields (title, description, flags, player, tags, metadata, updatedAt).
    async fn update_video(&self, video: &Video) -> CoreResult<()>;
    async fn delete_video(&self, ws: &WorkspaceId, id: &VideoId) -> CoreResult<()>;
    /// Total bytes of complete sources in a workspace (the account's quota use).
    async fn stored_bytes(&self, ws: &WorkspaceId) -> CoreResult<u64>;
    /// Reads a video without its workspace (workers act on behalf of every workspace).
    async fn video_by_id(&self, id: &VideoId) -> CoreResult<Video>;
}
