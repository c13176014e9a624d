//! [`UploadTokenRepo`]: delegated upload tokens and the uploads in progress on each.

use async_trait::async_trait;
use vidi_core::id::{UploadTokenId, VideoId, WorkspaceId};
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

    async fn find_upload_token(&self, id: &UploadTokenId, now: i64) -> CoreResult<Option<UploadToken>> {
        let sql = format!("SELECT {COLUMNS} FROM upload_tokens WHERE token = $1 AND {}", ACTIVE.replace("$now", "$2"));
        let row: Option<Row> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id.as_str()).bind(now).fetch_optional(p).await.map_err(db_err))?;
        Ok(row.map(token))
    }

    async fn record_token_upload(
        &self,
        id: &UploadTokenId,
        video: &VideoId,
        file_name: &str,
        parts_total: Option<u32>,
        now: i64,
    ) -> CoreResult<()> {
        with_pool!(self, p => sqlx::query(
            "INSERT INTO token_uploads (video_id, token, file_name, parts_total, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(video.as_str()).bind(id.as_str()).bind(file_name).bind(parts_total.map(i64::from)).bind(now)
            .execute(p).await.map(|_| ()).map_err(db_err))
    }

    async fn find_token_upload(
        &self,
        id: &UploadTokenId,
        file_name: &str,
        parts_total: u32,
        part: u32,
    ) -> CoreResult<Option<VideoId>> {
        // Chunks are stored by part number. A video whose source is complete (or assembling) is
        // never picked.
        let row: Option<(String,)> = with_pool!(self, p => sqlx::query_as(
            "SELECT u.video_id FROM token_uploads u JOIN videos v ON v.id = u.video_id \
             WHERE u.token = $1 AND u.file_name = $2 AND u.parts_total = $3 AND v.ingest_state IN ('missing', 'uploading') \
             AND NOT EXISTS (SELECT 1 FROM upload_chunks c WHERE c.video_id = u.video_id AND c.idx = $4) \
             ORDER BY u.created_at DESC, u.video_id DESC LIMIT 1")
            .bind(id.as_str()).bind(file_name).bind(i64::from(parts_total)).bind(i64::from(part))
            .fetch_optional(p).await.map_err(db_err))?;
        Ok(row.map(|(v,)| VideoId::from_trusted(v)))
    }

    async fn is_token_upload(&self, id: &UploadTokenId, video: &VideoId) -> CoreResult<bool> {
        let row: Option<(i64,)> = with_pool!(self, p => sqlx::query_as(
            "SELECT 1 FROM token_uploads WHERE token = $1 AND video_id = $2")
            .bind(id.as_str()).bind(video.as_str()).fetch_optional(p).await.map_err(db_err))?;
        Ok(row.is_some())
    }
}
