//! Videos: the rows the API creates, reads, lists, edits and deletes. Every method that takes a
//! workspace answers `NotFound` for a video of another one.

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
    /// Reads a video by its id alone, whatever its workspace: for media delivery only, whose URLs
    /// (`/vod/{id}/…`) name no workspace and whose access is decided by the video itself (public,
    /// or private with a token). Everything else reads through [`VideoRepo::get_video`].
    async fn video_for_delivery(&self, id: &VideoId) -> CoreResult<Video>;
}
