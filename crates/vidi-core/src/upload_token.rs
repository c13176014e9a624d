//! Delegated upload tokens (contract §5): a bearer secret that lets whoever holds it create and
//! upload videos in one workspace through `POST /upload?token=`, and nothing else.

use crate::id::{UploadTokenId, WorkspaceId};

/// A stored upload token.
#[derive(Clone, Debug, PartialEq)]
pub struct UploadToken {
    pub token: UploadTokenId,
    pub workspace_id: WorkspaceId,
    /// Seconds from creation; 0: never expires.
    pub ttl: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms; `None` when `ttl` is 0.
    pub expires_at: Option<i64>,
}

/// The largest `ttl` the creation payload allows (a signed 32-bit integer).
pub const MAX_TTL_SECS: i64 = i32::MAX as i64;

impl UploadToken {
    pub fn new(workspace_id: WorkspaceId, ttl: i64, now: i64) -> Self {
        UploadToken {
            token: UploadTokenId::generate_secret(),
            workspace_id,
            ttl,
            created_at: now,
            expires_at: (ttl > 0).then(|| now + ttl * 1000),
        }
    }
}
