//! The events outbox (see `vidi_core::event`): appended inside the transaction of the change that
//! causes each event, read back in id order.

use async_trait::async_trait;
use vidi_core::event::{Event, EventBody, EventKind};
use vidi_core::id::{EventId, WorkspaceId};
use vidi_core::repo::EventRepo;
use vidi_core::{CoreError, CoreResult};

use crate::{Db, db_err, with_pool};

/// Appends the event `$body` (an `EventBody`) of workspace `$ws` (a `&str`) to the outbox inside
/// `$tx`, the transaction of the change that causes it, so both are written or neither is.
/// Evaluates to whether the event is new: one whose `dedup_key` is already recorded (the same
/// rendition encoded again) is not recorded twice. `$occurrence` tells apart events of one
/// subject that may happen again (see `EventBody::dedup_key`).
macro_rules! append_event {
    ($tx:expr, $ws:expr, $body:expr, $now_ns:expr) => {
        $crate::events::append_event!($tx, $ws, $body, $now_ns, "")
    };
    ($tx:expr, $ws:expr, $body:expr, $now_ns:expr, $occurrence:expr) => {{
        let body: &vidi_core::event::EventBody = &$body;
        sqlx::query(
            "INSERT INTO events (id, workspace_id, kind, subject, dedup_key, fields, emitted_at_ns) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dedup_key) DO NOTHING",
        )
        .bind(vidi_core::id::EventId::generate().as_str())
        .bind($ws)
        .bind(body.kind().as_str())
        .bind(body.subject())
        .bind(body.dedup_key($occurrence))
        .bind(body.fields().to_string())
        .bind($now_ns)
        .execute(&mut *$tx)
        .await
        .map_err($crate::db_err)?
        .rows_affected()
            == 1
    }};
}
pub(crate) use append_event;

#[async_trait]
impl EventRepo for Db {
    async fn events_after(
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
