//! The events outbox (see `vidi_core::event`): appended inside the transaction of the change that
//! causes each event, read back in id order.

use vidi_core::event::{Encoding, Event, EventBody, EventKind};
use vidi_core::id::{EventId, VideoId, WorkspaceId};
use vidi_core::{CoreError, CoreResult};

use crate::{Db, db_err, with_pool};

impl Db {
    pub(crate) async fn complete_quality_impl(
        &self,
        id: &VideoId,
        encoding: Encoding,
        quality: &str,
        now_ns: i64,
    ) -> CoreResult<bool> {
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
            let added = sqlx::query(
                "INSERT INTO events (id, workspace_id, kind, subject, dedup_key, fields, emitted_at_ns) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedup_key) DO NOTHING")
                .bind(EventId::generate().as_str()).bind(&ws).bind(body.kind().as_str()).bind(body.subject())
                .bind(body.dedup_key("")).bind(body.fields().to_string()).bind(now_ns)
                .execute(&mut *tx).await.map_err(db_err)?.rows_affected();
            tx.commit().await.map_err(db_err)?;
            Ok(added == 1)
        })
    }

    pub(crate) async fn events_after_impl(
        &self,
        ws: Option<&WorkspaceId>,
        after: Option<&EventId>,
        limit: u32,
    ) -> CoreResult<Vec<Event>> {
        type Row = (String, String, String, String, i64);
        let rows: Vec<Row> = with_pool!(self, p => sqlx::query_as(
            "SELECT id, workspace_id, kind, fields, emitted_at_ns FROM events \
             WHERE ($1 IS NULL OR workspace_id = $1) AND id > $2 ORDER BY id LIMIT $3")
            .bind(ws.map(WorkspaceId::as_str)).bind(after.map_or("", EventId::as_str)).bind(limit as i64)
            .fetch_all(p).await.map_err(db_err))?;
        rows.into_iter()
            .map(|(id, ws, kind, fields, at)| {
                let body = EventKind::parse(&kind)
                    .zip(serde_json::from_str(&fields).ok())
                    .and_then(|(k, f)| EventBody::from_fields(k, &f))
                    .ok_or_else(|| CoreError::Database(format!("unreadable event {id} ({kind})").into()))?;
                Ok(Event {
                    id: EventId::from_trusted(id),
                    workspace_id: WorkspaceId::from_trusted(ws),
                    emitted_at_ns: at,
                    body,
                })
            })
            .collect()
    }
}
