//! Encoding state: planned outputs and their status, playable, thumbnail, encode error. Marking
//! an output encoded records its event in the same transaction (see `events`).

use async_trait::async_trait;
use vidi_core::event::{Encoding, EventBody};
use vidi_core::id::VideoId;
use vidi_core::model::Quality;
use vidi_core::repo::EncodingRepo;
use vidi_core::{CoreError, CoreResult};

use crate::events::append_event;
use crate::{Db, db_err, with_pool};

#[async_trait]
impl EncodingRepo for Db {
    async fn plan_qualities(&self, id: &VideoId, qualities: &[Quality]) -> CoreResult<()> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            sqlx::query("DELETE FROM video_qualities WHERE video_id = $1").bind(id.as_str()).execute(&mut *tx).await.map_err(db_err)?;
            for q in qualities {
                sqlx::query("INSERT INTO video_qualities (video_id, kind, quality, status) VALUES ($1, $2, $3, $4)")
                    .bind(id.as_str()).bind(&q.kind).bind(&q.quality).bind(&q.status)
                    .execute(&mut *tx).await.map_err(db_err)?;
            }
            tx.commit().await.map_err(db_err)
        })
    }

    async fn set_quality_status(&self, id: &VideoId, kind: &str, quality: &str, status: &str) -> CoreResult<()> {
        with_pool!(self, p => sqlx::query("UPDATE video_qualities SET status = $4 WHERE video_id = $1 AND kind = $2 AND quality = $3")
            .bind(id.as_str()).bind(kind).bind(quality).bind(status).execute(p).await.map(|_| ()).map_err(db_err))
    }

    async fn complete_quality(&self, id: &VideoId, encoding: Encoding, quality: &str, now_ns: i64) -> CoreResult<bool> {
        let body = EventBody::QualityCompleted { video_id: id.clone(), encoding, quality: quality.to_string() };
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            let changed = sqlx::query(
                "UPDATE video_qualities SET status = 'encoded' WHERE video_id = $1 AND kind = $2 AND quality = $3")
                .bind(id.as_str()).bind(encoding.as_str()).bind(quality)
                .execute(&mut *tx).await.map_err(db_err)?.rows_affected();
            if changed == 0 {
                // Not planned (or the video is gone): neither the change nor its event.
                return Err(CoreError::NotFound);
            }
            let (ws,): (String,) = sqlx::query_as("SELECT workspace_id FROM videos WHERE id = $1")
                .bind(id.as_str()).fetch_one(&mut *tx).await.map_err(db_err)?;
            let added = append_event!(tx, &ws, body, now_ns);
            tx.commit().await.map_err(db_err)?;
            Ok(added)
        })
    }

    async fn qualities(&self, id: &VideoId) -> CoreResult<Vec<Quality>> {
        // Ordered by kind, then by height (the quality names sort wrongly as text: 1080p < 240p).
        let rows: Vec<(String, String, String)> = with_pool!(self, p => sqlx::query_as(
            "SELECT kind, quality, status FROM video_qualities WHERE video_id = $1 \
             ORDER BY kind, LENGTH(quality), quality")
            .bind(id.as_str()).fetch_all(p).await.map_err(db_err))?;
        Ok(rows.into_iter().map(|(kind, quality, status)| Quality { kind, quality, status }).collect())
    }

    async fn set_playable(&self, id: &VideoId, playable: bool) -> CoreResult<()> {
        with_pool!(self, p => sqlx::query("UPDATE videos SET playable = $2 WHERE id = $1")
            .bind(id.as_str()).bind(playable).execute(p).await.map(|_| ()).map_err(db_err))
    }

    async fn set_thumbnail(&self, id: &VideoId, key: &str) -> CoreResult<()> {
        self.set_video_field(id, "UPDATE videos SET thumbnail_key = $2 WHERE id = $1", Some(key)).await
    }

    async fn set_encode_error(&self, id: &VideoId, error: Option<&str>) -> CoreResult<()> {
        self.set_video_field(id, "UPDATE videos SET encode_error = $2 WHERE id = $1", error).await
    }
}

impl Db {
    async fn set_video_field(&self, id: &VideoId, sql: &'static str, value: Option<&str>) -> CoreResult<()> {
        with_pool!(self, p => sqlx::query(sql).bind(id.as_str()).bind(value).execute(p).await.map(|_| ()).map_err(db_err))
    }
}
