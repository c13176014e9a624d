//! [`TokenUploadRepo`]: upload tokens as credentials, and the upload in progress under each
//! token, file name and part total (table `token_uploads`, migration 0013).

use async_trait::async_trait;
use vidi_core::error::DbErrorKind;
use vidi_core::id::{UploadTokenId, VideoId, WorkspaceId};
use vidi_core::repo::{TokenUploadKey, TokenUploadRepo, TokenUploadSlot};
use vidi_core::upload_token::UploadToken;
use vidi_core::{CoreError, CoreResult};

use crate::{Db, db_err, with_pool};

#[async_trait]
impl TokenUploadRepo for Db {
    async fn find_upload_token(&self, id: &UploadTokenId, now: i64) -> CoreResult<Option<UploadToken>> {
        let row: Option<(String, String, i64, i64, Option<i64>)> = with_pool!(self, p => sqlx::query_as(
            "SELECT token, workspace_id, ttl, created_at, expires_at FROM upload_tokens \
             WHERE token = $1 AND (expires_at IS NULL OR expires_at > $2)")
            .bind(id.as_str()).bind(now).fetch_optional(p).await.map_err(db_err))?;
        Ok(row.map(|(token, ws, ttl, created_at, expires_at)| UploadToken {
            token: UploadTokenId::from_trusted(token),
            workspace_id: WorkspaceId::from_trusted(ws),
            ttl,
            created_at,
            expires_at,
        }))
    }

    async fn token_upload_slot(
        &self,
        ws: &WorkspaceId,
        key: TokenUploadKey<'_>,
        part: u32,
    ) -> CoreResult<TokenUploadSlot> {
        // A part is expected while the source is still arriving and no request has claimed or
        // sent that part number (chunks are stored by part number in part mode).
        let row: Option<(String, i64)> = with_pool!(self, p => sqlx::query_as(
            "SELECT u.video_id, CAST(CASE WHEN v.ingest_state IN ('missing', 'uploading') AND NOT EXISTS \
             (SELECT 1 FROM upload_chunks c WHERE c.video_id = u.video_id AND c.idx = $5) THEN 1 ELSE 0 END AS BIGINT) \
             FROM token_uploads u JOIN videos v ON v.id = u.video_id AND v.workspace_id = u.workspace_id \
             WHERE u.token = $1 AND u.file_name = $2 AND u.parts_total = $3 AND u.workspace_id = $4")
            .bind(key.token.as_str()).bind(key.file_name).bind(i64::from(key.parts_total)).bind(ws.as_str())
            .bind(i64::from(part))
            .fetch_optional(p).await.map_err(db_err))?;
        Ok(match row {
            None => TokenUploadSlot::Free,
            Some((v, 1)) => TokenUploadSlot::Expecting(VideoId::from_trusted(v)),
            Some((v, _)) => TokenUploadSlot::Taken(VideoId::from_trusted(v)),
        })
    }

    async fn take_token_upload_slot(
        &self,
        ws: &WorkspaceId,
        key: TokenUploadKey<'_>,
        video: &VideoId,
        replacing: Option<&VideoId>,
        now: i64,
    ) -> CoreResult<bool> {
        let total = i64::from(key.parts_total);
        let changed = match replacing {
            // The primary key makes two racing first parts agree: one inserts, the other looks again.
            None => with_pool!(self, p => sqlx::query(
                "INSERT INTO token_uploads (token, file_name, parts_total, workspace_id, video_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING")
                .bind(key.token.as_str()).bind(key.file_name).bind(total).bind(ws.as_str())
                .bind(video.as_str()).bind(now)
                .execute(p).await.map(|r| r.rows_affected())),
            // Compare and swap: only if the key still names the upload the caller saw.
            Some(old) => with_pool!(self, p => sqlx::query(
                "UPDATE token_uploads SET video_id = $5, created_at = $6 \
                 WHERE token = $1 AND file_name = $2 AND parts_total = $3 AND workspace_id = $4 AND video_id = $7")
                .bind(key.token.as_str()).bind(key.file_name).bind(total).bind(ws.as_str())
                .bind(video.as_str()).bind(now).bind(old.as_str())
                .execute(p).await.map(|r| r.rows_affected())),
        };
        match changed.map_err(db_err) {
            Ok(n) => Ok(n == 1),
            // The token (or the video) went meanwhile.
            Err(e) if e.db_kind() == Some(DbErrorKind::ForeignKeyViolation) => Err(CoreError::NotFound),
            Err(e) => Err(e),
        }
    }
}
