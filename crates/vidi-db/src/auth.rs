//! Workspaces, API keys, refresh tokens, settings and instance heartbeats.

use async_trait::async_trait;
use vidi_core::CoreResult;
use vidi_core::id::{ApiKeyId, WorkspaceId};
use vidi_core::model::{ApiKeyInfo, KeyOwner};
use vidi_core::repo::AuthRepo;
use vidi_core::time::now_ms;

use crate::{Db, Pool, db_err, with_pool};

#[async_trait]
impl AuthRepo for Db {
    fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    async fn create_workspace(&self, name: &str) -> CoreResult<WorkspaceId> {
        let id = WorkspaceId::generate();
        with_pool!(self, p => sqlx::query("INSERT INTO workspaces (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(id.as_str()).bind(name).bind(now_ms())
            .execute(p).await.map(|_| ()).map_err(db_err))?;
        Ok(id)
    }

    async fn default_workspace(&self) -> CoreResult<Option<WorkspaceId>> {
        let row: Option<(String,)> = with_pool!(self, p => sqlx::query_as("SELECT id FROM workspaces ORDER BY created_at, id LIMIT 1")
            .fetch_optional(p).await.map_err(db_err))?;
        Ok(row.map(|(id,)| WorkspaceId::from_trusted(id)))
    }

    async fn workspace_exists(&self, ws: &WorkspaceId) -> CoreResult<bool> {
        let row: Option<(String,)> = with_pool!(self, p => sqlx::query_as("SELECT id FROM workspaces WHERE id = $1")
            .bind(ws.as_str()).fetch_optional(p).await.map_err(db_err))?;
        Ok(row.is_some())
    }

    async fn count_api_keys(&self) -> CoreResult<u64> {
        let (n,): (i64,) =
            with_pool!(self, p => sqlx::query_as("SELECT COUNT(*) FROM api_keys").fetch_one(p).await.map_err(db_err))?;
        Ok(n as u64)
    }

    async fn create_api_key(&self, ws: &WorkspaceId, name: &str, hash: &str) -> CoreResult<ApiKeyId> {
        let id = ApiKeyId::generate();
        with_pool!(self, p => sqlx::query("INSERT INTO api_keys (id, workspace_id, name, key_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id.as_str()).bind(ws.as_str()).bind(name).bind(hash).bind(now_ms())
            .execute(p).await.map(|_| ()).map_err(db_err))?;
        Ok(id)
    }

    async fn find_api_key(&self, hash: &str) -> CoreResult<Option<KeyOwner>> {
        let row: Option<(String, String)> = with_pool!(self, p => sqlx::query_as(
            "SELECT id, workspace_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL")
            .bind(hash).fetch_optional(p).await.map_err(db_err))?;
        Ok(row.map(|(k, w)| KeyOwner { key_id: ApiKeyId::from_trusted(k), workspace_id: WorkspaceId::from_trusted(w) }))
    }

    async fn list_api_keys(&self) -> CoreResult<Vec<ApiKeyInfo>> {
        let rows: Vec<(String, String, String, i64, Option<i64>)> = with_pool!(self, p => sqlx::query_as(
            "SELECT id, workspace_id, name, created_at, revoked_at FROM api_keys ORDER BY created_at, id")
            .fetch_all(p).await.map_err(db_err))?;
        Ok(rows
            .into_iter()
            .map(|(id, ws, name, created_at, revoked_at)| ApiKeyInfo {
                id: ApiKeyId::from_trusted(id),
                workspace_id: WorkspaceId::from_trusted(ws),
                name,
                created_at,
                revoked_at,
            })
            .collect())
    }

    async fn revoke_api_key(&self, id_or_hash: &str, now: i64) -> CoreResult<Option<ApiKeyId>> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            let row: Option<(String,)> = sqlx::query_as(
                "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 OR key_hash = $1 RETURNING id")
                .bind(id_or_hash).bind(now).fetch_optional(&mut *tx).await.map_err(db_err)?;
            let Some((id,)) = row else { return Ok(None) };
            // Refresh tokens are of no use once their key is revoked (rotation checks the key
            // anyway, which also covers one a refresh racing this transaction stores).
            sqlx::query("DELETE FROM refresh_tokens WHERE key_id = $1")
                .bind(&id).execute(&mut *tx).await.map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(Some(ApiKeyId::from_trusted(id)))
        })
    }

    async fn api_key_active(&self, key_id: &ApiKeyId) -> CoreResult<bool> {
        let row: Option<(String,)> = with_pool!(self, p => sqlx::query_as(
            "SELECT id FROM api_keys WHERE id = $1 AND revoked_at IS NULL")
            .bind(key_id.as_str()).fetch_optional(p).await.map_err(db_err))?;
        Ok(row.is_some())
    }

    async fn insert_refresh_token(&self, owner: &KeyOwner, hash: &str, expires_at: i64) -> CoreResult<()> {
        with_pool!(self, p => sqlx::query("INSERT INTO refresh_tokens (token_hash, key_id, workspace_id, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(hash).bind(owner.key_id.as_str()).bind(owner.workspace_id.as_str()).bind(expires_at)
            .execute(p).await.map(|_| ()).map_err(db_err))?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        old: &str,
        new: &str,
        now: i64,
        grace_ms: i64,
        expires_at: i64,
    ) -> CoreResult<Option<KeyOwner>> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            // Retire first: the UPDATE takes the row lock, so two concurrent refreshes of the same
            // token serialise here. A revoked key's tokens match nothing, so they are refused.
            let row: Option<(String, String, i64, Option<i64>)> = sqlx::query_as(
                "UPDATE refresh_tokens SET retired_at = COALESCE(retired_at, $2) WHERE token_hash = $1 \
                 AND EXISTS (SELECT 1 FROM api_keys k WHERE k.id = refresh_tokens.key_id AND k.revoked_at IS NULL) \
                 RETURNING key_id, workspace_id, expires_at, retired_at")
                .bind(old).bind(now).fetch_optional(&mut *tx).await.map_err(db_err)?;
            let Some((key_id, ws, exp, retired)) = row else { return Ok(None) };
            if exp < now || retired.is_some_and(|r| r < now - grace_ms) {
                return Ok(None);
            }
            sqlx::query("INSERT INTO refresh_tokens (token_hash, key_id, workspace_id, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(new).bind(&key_id).bind(&ws).bind(expires_at)
                .execute(&mut *tx).await.map_err(db_err)?;
            // Expired tokens are of no use to anyone; sweep them while we hold a transaction.
            sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1 OR retired_at < $2")
                .bind(now).bind(now - grace_ms).execute(&mut *tx).await.map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(Some(KeyOwner { key_id: ApiKeyId::from_trusted(key_id), workspace_id: WorkspaceId::from_trusted(ws) }))
        })
    }

    async fn setting_or_init(&self, name: &str, init: &str) -> CoreResult<String> {
        with_pool!(self, p => {
            sqlx::query("INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
                .bind(name).bind(init).execute(p).await.map_err(db_err)?;
            let (v,): (String,) = sqlx::query_as("SELECT value FROM settings WHERE name = $1")
                .bind(name).fetch_one(p).await.map_err(db_err)?;
            Ok(v)
        })
    }

    async fn heartbeat(&self, instance: &str, now: i64) -> CoreResult<()> {
        with_pool!(self, p => sqlx::query(
            "INSERT INTO instances (id, heartbeat_at) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET heartbeat_at = $2")
            .bind(instance).bind(now).execute(p).await.map(|_| ()).map_err(db_err))?;
        Ok(())
    }
}
