//! Delegated upload tokens, and which uploads each one has in progress.

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::id::{UploadTokenId, VideoId, WorkspaceId};
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
    /// What `POST /upload?token=` acts under: the token, whatever its workspace (the token is
    /// the credential), unless it is unknown, deleted or expired at `now`.
    async fn find_upload_token(&self, token: &UploadTokenId, now: i64) -> CoreResult<Option<UploadToken>>;
    /// Records that `video` was created by an upload on `token` of a file named `file_name` in
    /// `parts_total` parts (when known), so the later parts of a one-call upload, which carry
    /// no `videoId`, find it.
    async fn record_token_upload(
        &self,
        token: &UploadTokenId,
        video: &VideoId,
        file_name: &str,
        parts_total: Option<u32>,
        now: i64,
    ) -> CoreResult<()>;
    /// The newest upload in progress on `token` for `file_name` in `parts_total` parts that has
    /// not received part `part` yet (contract §4.5, decision revised).
    async fn find_token_upload(
        &self,
        token: &UploadTokenId,
        file_name: &str,
        parts_total: u32,
        part: u32,
    ) -> CoreResult<Option<VideoId>>;
    /// Whether `video` was created through `token`.
    async fn is_token_upload(&self, token: &UploadTokenId, video: &VideoId) -> CoreResult<bool>;
}
