//! Live streams, by workspace, and the private tokens of the private ones (contract §6, §7).

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::id::{LiveStreamId, WorkspaceId};
use crate::live::LiveStream;
use crate::model::PageRequest;

/// How a list of live streams is ordered (`sortBy`). A live stream has no publication date of
/// its own: `publishedAt` orders by creation, which is when it becomes usable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LiveStreamSort {
    #[default]
    CreatedAt,
    Name,
    UpdatedAt,
}

/// The filters of `GET /live-streams`.
#[derive(Clone, Debug, Default)]
pub struct LiveStreamFilter {
    /// Exact match.
    pub stream_key: Option<String>,
    /// Case-insensitive substring.
    pub name: Option<String>,
    pub sort: LiveStreamSort,
    pub descending: bool,
}

#[async_trait]
pub trait LiveStreamRepo: Send + Sync {
    async fn insert_live_stream(&self, live: &LiveStream) -> CoreResult<()>;
    async fn get_live_stream(&self, ws: &WorkspaceId, id: &LiveStreamId) -> CoreResult<LiveStream>;
    async fn list_live_streams(
        &self,
        ws: &WorkspaceId,
        filter: &LiveStreamFilter,
        page: PageRequest,
    ) -> CoreResult<(Vec<LiveStream>, u64)>;
    /// Stores the name, `record`, `public`, the player, the restreams and `updated_at`.
    async fn update_live_stream(&self, live: &LiveStream) -> CoreResult<()>;
    /// Deletes the live stream (its private tokens go with it); returns its thumbnail's key, for
    /// the caller to delete from the media store.
    async fn delete_live_stream(&self, ws: &WorkspaceId, id: &LiveStreamId) -> CoreResult<Option<String>>;
    /// Sets (or with `None`, clears) the uploaded thumbnail; returns the key it replaced.
    async fn set_live_thumbnail(
        &self,
        ws: &WorkspaceId,
        id: &LiveStreamId,
        key: Option<&str>,
        now: i64,
    ) -> CoreResult<Option<String>>;
    /// The live stream whatever its workspace: delivery routes are named by id alone.
    async fn live_stream_for_delivery(&self, id: &LiveStreamId) -> CoreResult<LiveStream>;
    /// Stores new private tokens, `(live stream, token)` pairs, all of live streams of `ws`:
    /// `NotFound`, and none stored, when one is not.
    async fn mint_live_tokens(
        &self,
        ws: &WorkspaceId,
        tokens: &[(&LiveStreamId, &str)],
        now: i64,
        expires_at: i64,
    ) -> CoreResult<()>;
    /// As `PrivateRepo::admit_private`, for a live stream's token.
    async fn admit_live_private(
        &self,
        ws: &WorkspaceId,
        id: &LiveStreamId,
        token: &str,
        session: &str,
        now: i64,
        session_ttl: i64,
    ) -> CoreResult<bool>;
}
