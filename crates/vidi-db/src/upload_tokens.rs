//! [`UploadTokenRepo`]: delegated upload tokens.

use async_trait::async_trait;
use vidi_core::id::{UploadTokenId, WorkspaceId};
use vidi_core::model::PageRequest;
use vidi_core::repo::{UploadTokenRepo, UploadTokenSort};
use vidi_core::upload_token::UploadToken;
use vidi_core::{CoreError, CoreResult};

use crate::{Db, db_err, with_pool};

const COLUMNS: &str = "token, workspace_id, ttl, created_at, expires_at";
/// Active at `$now`: never expires, or not yet.
const ACTIVE: &str = "(expires_at IS NULL OR expires_at > $now)";

type Row = (String, String, i64, i64, Option<i64>);

fn token((token, ws, ttl, created_at, expires_at): Row) -> UploadToken {
    UploadToken {
        token: UploadTokenId::from_trusted(token),
        workspace_id: WorkspaceId::from_trusted(ws),
        ttl,
        created_at,
        expires_at,
    }
}

#[async_trait]
impl UploadTokenRepo for Db {
    async fn insert_upload_token(&self, t: &UploadToken) -> CoreResult<()> {
        with_pool!(self, p => sqlx::query(
            "INSERT INTO upload_tokens (token, workspace_id, ttl, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(t.token.as_str()).bind(t.workspace_id.as_str()).bind(t.ttl).bind(t.created_at).bind(t.expires_at)
            .execute(p).await.map(|_| ()).map_err(db_err))
    }

    async fn get_upload_token(&self, ws: &WorkspaceId, id: &UploadTokenId, now: i64) -> CoreResult<UploadToken> {
        let sql = format!(
            "SELECT {COLUMNS} FROM upload_tokens WHERE token = $1 AND workspace_id = $2 AND {}",
            ACTIVE.replace("$now", "$3")
        );
        let row: Row = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id.as_str()).bind(ws.as_str()).bind(now).fetch_one(p).await.map_err(db_err))?;
        Ok(token(row))
    }

    async fn list_upload_tokens(
        &self,
        ws: &WorkspaceId,
        sort: UploadTokenSort,
        descending: bool,
        page: PageRequest,
        now: i64,
    ) -> CoreResult<(Vec<UploadToken>, u64)> {
        // Fixed strings chosen here, never user text.
        let col = match sort {
            UploadTokenSort::CreatedAt => "created_at",
            UploadTokenSort::Ttl => "ttl",
        };
        let dir = if descending { "DESC" } else { "ASC" };
        let active = ACTIVE.replace("$now", "$2");
        let count = format!("SELECT COUNT(*) FROM upload_tokens WHERE workspace_id = $1 AND {active}");
        // The token breaks ties, so pages never repeat or skip one.
        let list = format!(
            "SELECT {COLUMNS} FROM upload_tokens WHERE workspace_id = $1 AND {active} \
             ORDER BY {col} {dir}, token {dir} LIMIT $3 OFFSET $4"
        );
        let (total, rows): (i64, Vec<Row>) = with_pool!(self, p => {
            let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(count.as_str()))
                .bind(ws.as_str()).bind(now).fetch_one(p).await.map_err(db_err)?;
            let rows = sqlx::query_as(sqlx::AssertSqlSafe(list.as_str()))
                .bind(ws.as_str()).bind(now).bind(page.size as i64).bind(page.offset() as i64)
                .fetch_all(p).await.map_err(db_err)?;
            (n, rows)
        });
        Ok((rows.into_iter().map(token).collect(), total as u64))
    }

    async fn delete_upload_token(&self, ws: &WorkspaceId, id: &UploadTokenId) -> CoreResult<()> {
        let affected = with_pool!(self, p => sqlx::query("DELETE FROM upload_tokens WHERE token = $1 AND workspace_id = $2")
            .bind(id.as_str()).bind(ws.as_str()).execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
        if affected == 0 {
            return Err(CoreError::NotFound);
        }
        Ok(())
    }
}
