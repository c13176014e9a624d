//! Encoding state: planned outputs and their status, playable, thumbnail, encode error. Marking
//! an output encoded records its event in the same transaction (see `events`). Outputs have no
//! workspace column: they are reached through their video, whose workspace every statement checks.

use async_trait::async_trait;
use vidi_core::event::{Encoding, EventBody};
use vidi_core::id::{VideoId, WorkspaceId};
use vidi_core::model::Quality;
use vidi_core::repo::EncodingRepo;
use vidi_core::{CoreError, CoreResult};

use crate::events::append_event;
use crate::{Db, db_err, found, with_pool};

/// The condition that the video of a `video_qualities` row is workspace `$n`'s.
macro_rules! of_workspace {
    ($n:literal) => {
        concat!("EXISTS (SELECT 1 FROM videos v WHERE v.id = video_qualities.video_id AND v.workspace_id = $", $n, ")")
    };
}

#[async_trait]
impl EncodingRepo for Db {
    async fn plan_qualities(&self, ws: &WorkspaceId, id: &VideoId, qualities: &[Quality]) -> CoreResult<()> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            // A write first, not a read: on SQLite a transaction that reads and then writes fails
            // at once (SQLITE_BUSY_SNAPSHOT) when another write committed in between, where one
            // that starts by writing waits for the lock. Bumping `lock_seq` is that write (as in
            // `uploads`), and checks the workspace.
            let locked = sqlx::query("UPDATE videos SET lock_seq = lock_seq + 1 WHERE id = $1 AND workspace_id = $2")
                .bind(id.as_str()).bind(ws.as_str()).execute(&mut *tx).await.map_err(db_err)?;
            found(locked.rows_affected())?;
            sqlx::query("DELETE FROM video_qualities WHERE video_id = $1").bind(id.as_str()).execute(&mut *tx).await.map_err(db_err)?;
            for q in qualities {
                sqlx::query("INSERT INTO video_qualities (video_id, kind, quality, status) VALUES ($1, $2, $3, $4)")
                    .bind(id.as_str()).bind(&q.kind).bind(&q.quality).bind(&q.status)
                    .execute(&mut *tx).await.map_err(db_err)?;
            }
            tx.commit().await.map_err(db_err)
        })
    }

    async fn set_quality_status(
        &self,
        ws: &WorkspaceId,
        id: &VideoId,
        kind: &str,
        quality: &str,
        status: &str,
    ) -> CoreResult<()> {
        let n = with_pool!(self, p => sqlx::query(concat!(
            "UPDATE video_qualities SET status = $4 WHERE video_id = $1 AND kind = $2 AND quality = $3 AND ",
            of_workspace!("5")))
            .bind(id.as_str()).bind(kind).bind(quality).bind(status).bind(ws.as_str())
            .execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
        found(n)
    }

    async fn complete_quality(
        &self,
        ws: &WorkspaceId,
        id: &VideoId,
        encoding: Encoding,
        quality: &str,
        now_ns: i64,
    ) -> CoreResult<bool> {
        let body = EventBody::QualityCompleted { video_id: id.clone(), encoding, quality: quality.to_string() };
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            let changed = sqlx::query(concat!(
                "UPDATE video_qualities SET status = 'encoded' WHERE video_id = $1 AND kind = $2 AND quality = $3 AND ",
                of_workspace!("4")))
                .bind(id.as_str()).bind(encoding.as_str()).bind(quality).bind(ws.as_str())
                .execute(&mut *tx).await.map_err(db_err)?.rows_affected();
            if changed == 0 {
                // Not planned, another workspace's, or gone: neither the change nor its event.
                return Err(CoreError::NotFound);
            }
            let added = append_event!(tx, ws.as_str(), body, now_ns);
            tx.commit().await.map_err(db_err)?;
            Ok(added)
        })
    }

    async fn qualities(&self, ws: &WorkspaceId, id: &VideoId) -> CoreResult<Vec<Quality>> {
        // Joined from the video, so another workspace's video is no rows at all (NotFound) and a
        // video of this one without outputs is one row of NULLs. Ordered by kind, then by height
        // (the quality names sort wrongly as text: 1080p < 240p).
        type Row = (Option<String>, Option<String>, Option<String>);
        let rows: Vec<Row> = with_pool!(self, p => sqlx::query_as(
            "SELECT q.kind, q.quality, q.status FROM videos v LEFT JOIN video_qualities q ON q.video_id = v.id \
             WHERE v.id = $1 AND v.workspace_id = $2 ORDER BY q.kind, LENGTH(q.quality), q.quality")
            .bind(id.as_str()).bind(ws.as_str()).fetch_all(p).await.map_err(db_err))?;
        if rows.is_empty() {
            return Err(CoreError::NotFound);
        }
        Ok(rows
            .into_iter()
            .filter_map(|(kind, quality, status)| Some(Quality { kind: kind?, quality: quality?, status: status? }))
            .collect())
    }

    async fn set_playable(&self, ws: &WorkspaceId, id: &VideoId, playable: bool) -> CoreResult<()> {
        let n = with_pool!(self, p => sqlx::query("UPDATE videos SET playable = $2 WHERE id = $1 AND workspace_id = $3")
            .bind(id.as_str()).bind(playable).bind(ws.as_str())
            .execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
        found(n)
    }

    async fn set_mp4_pending(&self, ws: &WorkspaceId, id: &VideoId, pending: bool) -> CoreResult<()> {
        let n = with_pool!(self, p => sqlx::query("UPDATE videos SET mp4_pending = $2 WHERE id = $1 AND workspace_id = $3")
            .bind(id.as_str()).bind(pending).bind(ws.as_str())
            .execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
        found(n)
    }

    async fn set_thumbnail(&self, ws: &WorkspaceId, id: &VideoId, key: &str) -> CoreResult<()> {
        self.set_video_field(
            ws,
            id,
            "UPDATE videos SET thumbnail_key = $2 WHERE id = $1 AND workspace_id = $3",
            Some(key),
        )
        .await
    }

    async fn set_encode_error(&self, ws: &WorkspaceId, id: &VideoId, error: Option<&str>) -> CoreResult<()> {
        self.set_video_field(ws, id, "UPDATE videos SET encode_error = $2 WHERE id = $1 AND workspace_id = $3", error)
            .await
    }
}

impl Db {
    /// Runs `sql`, an UPDATE of one text column of video `$1` of workspace `$3` to `$2`.
    async fn set_video_field(
        &self,
        ws: &WorkspaceId,
        id: &VideoId,
        sql: &'static str,
        value: Option<&str>,
    ) -> CoreResult<()> {
        let n = with_pool!(self, p => sqlx::query(sql).bind(id.as_str()).bind(value).bind(ws.as_str())
            .execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
        found(n)
    }
}
