//! What `POST /upload?token=` needs beyond the token's own CRUD: the token as a credential, and
//! the upload in progress on a token for a file name and a part total, which the later parts of
//! the Node and Python one-call uploads (sent without `videoId`, contract §4.5) are attached to.

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::id::{UploadTokenId, VideoId, WorkspaceId};
use crate::upload_token::UploadToken;

/// The key an upload without `videoId` is found by: one upload in flight per key.
#[derive(Clone, Copy, Debug)]
pub struct TokenUploadKey<'a> {
    pub token: &'a UploadTokenId,
    pub file_name: &'a str,
    pub parts_total: u32,
}

/// What a part `n/N` without `videoId` finds under its key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenUploadSlot {
    /// No upload in progress under the key.
    Free,
    /// The upload in progress is still missing part `n`: the part belongs to it.
    Expecting(VideoId),
    /// The upload under the key already has part `n` (or is complete, or gone): the part starts
    /// a new upload, which takes the key over from this one.
    Taken(VideoId),
}

#[async_trait]
pub trait TokenUploadRepo: Send + Sync + 'static {
    /// The token, whatever its workspace (the token is the credential, like an API key), unless
    /// it is unknown, deleted, or expired at `now`.
    async fn find_upload_token(&self, token: &UploadTokenId, now: i64) -> CoreResult<Option<UploadToken>>;
    /// What part `part` of an upload under `key` would join.
    async fn token_upload_slot(
        &self,
        ws: &WorkspaceId,
        key: TokenUploadKey<'_>,
        part: u32,
    ) -> CoreResult<TokenUploadSlot>;
    /// Makes `video` the upload in progress under `key`, if the key is still free
    /// (`replacing: None`) or still names `replacing`. `false`: another request changed the key
    /// first, and the caller looks again. Fails if the token was deleted meanwhile.
    async fn take_token_upload_slot(
        &self,
        ws: &WorkspaceId,
        key: TokenUploadKey<'_>,
        video: &VideoId,
        replacing: Option<&VideoId>,
        now: i64,
    ) -> CoreResult<bool>;
}
