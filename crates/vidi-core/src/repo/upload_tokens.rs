//! Delegated upload tokens.

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::id::{UploadTokenId, WorkspaceId};
use crate::model::PageRequest;
use crate::upload_token::UploadToken;

/// How a list of tokens is ordered (`sortBy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UploadTokenSort {
    #[default]
    CreatedAt,
    Ttl,
}

#[async_trait]
pub trait UploadTokenRepo: Send + Sync {
    async fn insert_upload_token(&self, token: &UploadToken) -> CoreResult<()>;
    /// A token of the workspace, unless it expired before `now`.
    async fn get_upload_token(&self, ws: &WorkspaceId, token: &UploadTokenId, now: i64) -> CoreResult<UploadToken>;
    /// The workspace's tokens that have not expired at `now`.
    async fn list_upload_tokens(
        &self,
        ws: &WorkspaceId,
        sort: UploadTokenSort,
        descending: bool,
        page: PageRequest,
        now: i64,
    ) -> CoreResult<(Vec<UploadToken>, u64)>;
    /// Deletes the token: uploads in progress on it are refused from then on.
    async fn delete_upload_token(&self, ws: &WorkspaceId, token: &UploadTokenId) -> CoreResult<()>;
}
