//! Tenancy and credentials: workspaces, API keys, refresh tokens; and what is shared by the whole
//! installation rather than by a tenant: process-wide settings, instance heartbeats.

use async_trait::async_trait;

use crate::error::CoreResult;
use crate::id::{ApiKeyId, WorkspaceId};
use crate::model::{ApiKeyInfo, KeyOwner};

#[async_trait]
pub trait AuthRepo: Send + Sync + 'static {
    /// `sqlite` or `postgres`, for logs and test names.
    fn backend(&self) -> &'static str;

    async fn create_workspace(&self, name: &str) -> CoreResult<WorkspaceId>;
    /// The oldest workspace, if any (the CLI adds keys to it).
    async fn default_workspace(&self) -> CoreResult<Option<WorkspaceId>>;
    async fn workspace_exists(&self, ws: &WorkspaceId) -> CoreResult<bool>;
    /// Every key, revoked ones included (counted too: an installation whose keys were all revoked
    /// is not a fresh one).
    async fn count_api_keys(&self) -> CoreResult<u64>;
    async fn create_api_key(&self, ws: &WorkspaceId, name: &str, key_hash: &str) -> CoreResult<ApiKeyId>;
    /// The owner of the key whose secret hashes to `key_hash`, unless it is revoked.
    async fn find_api_key(&self, key_hash: &str) -> CoreResult<Option<KeyOwner>>;
    /// Every key of every workspace, revoked ones included, oldest first (for the operator).
    async fn list_api_keys(&self) -> CoreResult<Vec<ApiKeyInfo>>;
    /// Revokes the key whose id is `id_or_hash`, or whose secret hashes to it (an id starts with
    /// `ak`, a hash is hex, so at most one key matches), and deletes its refresh tokens. Returns
    /// the key's id, or `None` when no key matches. Revoking a revoked key keeps its first time.
    async fn revoke_api_key(&self, id_or_hash: &str, now: i64) -> CoreResult<Option<ApiKeyId>>;
    /// Whether the key exists and is not revoked (access tokens name their key; each use checks it).
    async fn api_key_active(&self, key_id: &ApiKeyId) -> CoreResult<bool>;
    async fn insert_refresh_token(&self, owner: &KeyOwner, token_hash: &str, expires_at: i64) -> CoreResult<()>;
    /// Atomically retires `old_hash` and stores `new_hash`. A token retired less than `grace_ms`
    /// ago is still accepted once more (clients that retry a refresh must not be locked out).
    /// A token whose key is revoked is refused.
    async fn rotate_refresh_token(
        &self,
        old_hash: &str,
        new_hash: &str,
        now: i64,
        grace_ms: i64,
        expires_at: i64,
    ) -> CoreResult<Option<KeyOwner>>;
    /// A process-wide setting, created with `init` the first time it is read (e.g. the JWT secret,
    /// so every API node signs with the same one).
    async fn setting_or_init(&self, name: &str, init: &str) -> CoreResult<String>;
    /// Records that this process is alive (uploads use it to tell live claims from dead ones).
    async fn heartbeat(&self, instance: &str, now: i64) -> CoreResult<()>;
}
