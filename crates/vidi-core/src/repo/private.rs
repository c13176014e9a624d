//! Private videos: the single-use tokens their URLs carry and the playback sessions they open
//! (contract §6).

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::id::{VideoId, WorkspaceId};

#[async_trait]
pub trait PrivateRepo: Send + Sync + 'static {
    /// Stores new private tokens, `(video, token)` pairs, in one statement (a page of private
    /// videos mints one per video), all of videos of `ws`: `NotFound`, and none stored, when one
    /// is not. Expired tokens are swept now and then.
    async fn mint_private_tokens(
        &self,
        ws: &WorkspaceId,
        tokens: &[(&VideoId, &str)],
        now: i64,
        expires_at: i64,
    ) -> CoreResult<()>;
    /// Admits a request under a private token: a token not used yet is bound to `session` (the
    /// playback session of the first browser that opens it) for `session_ttl` ms; a used one
    /// admits only the session it is bound to. Returns whether the request is admitted;
    /// `NotFound` when the video is not one of `ws`.
    async fn admit_private(
        &self,
        ws: &WorkspaceId,
        id: &VideoId,
        token: &str,
        session: &str,
        now: i64,
        session_ttl: i64,
    ) -> CoreResult<bool>;
}
