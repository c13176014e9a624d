//! [`WebhookRepo`] for [`Db`]: webhooks, the dispatcher's cursor, deliveries and their log.

use std::collections::HashMap;

use async_trait::async_trait;
use vidi_core::event::{Event, EventBody, EventKind};
use vidi_core::id::{DeliveryId, EventId, WebhookId, WorkspaceId};
use vidi_core::model::PageRequest;
use vidi_core::repo::{Dispatched, WebhookRepo};
use vidi_core::webhook::{Attempt, Delivery, DeliveryState, DueDelivery, Outcome, Webhook};
use vidi_core::{CoreError, CoreResult};

use crate::{Db, db_err, with_pool};

const HOOK_COLUMNS: &str = "id, workspace_id, url, events, secret, created_at";
type HookRow = (String, String, String, String, String, i64);

fn hook_from(r: HookRow) -> CoreResult<Webhook> {
    let (id, ws, url, events, secret, created_at) = r;
    let names: Vec<String> = serde_json::from_str(&events)
        .map_err(|e| CoreError::Database(format!("corrupt events of webhook {id}: {e}").into()))?;
    Ok(Webhook {
        id: WebhookId::from_trusted(id),
        workspace_id: WorkspaceId::from_trusted(ws),
        url,
        // A kind this build does not know (written by a newer one) is skipped, not fatal.
        events: names.iter().filter_map(|n| EventKind::parse(n)).collect(),
        secret,
        created_at,
    })
}

/// `LIKE` pattern matching one kind in the stored JSON array: exact, because kinds are fixed
/// names of letters, dots and dashes (no `%`, `_` or quote to escape) and stored quoted.
fn kind_pattern(kind: EventKind) -> String {
    format!("%\"{}\"%", kind.as_str())
}

const DELIVERY_COLUMNS: &str =
    "d.id, d.webhook_id, d.event_id, d.kind, d.body, d.state, d.attempts, d.last_status, d.created_at, d.next_at";
type DeliveryRow = (String, String, String, String, String, String, i64, Option<i64>, i64, i64);

fn delivery_from(r: DeliveryRow) -> Delivery {
    let (id, webhook, event, kind, body, state, attempts, last_status, created_at, next_at) = r;
    Delivery {
        id: DeliveryId::from_trusted(id),
        webhook_id: WebhookId::from_trusted(webhook),
        event_id: EventId::from_trusted(event),
        kind,
        body,
        state: DeliveryState::parse(&state),
        attempts: attempts as u32,
        last_status: last_status.map(|s| s as u16),
        created_at,
        next_at,
    }
}

#[async_trait]
impl WebhookRepo for Db {
    async fn create_webhook(&self, hook: &Webhook, limit: u32) -> CoreResult<bool> {
        let events: Vec<&str> = hook.events.iter().map(|k| k.as_str()).collect();
        let events = serde_json::to_string(&events).expect("strings serialise");
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            // A no-op write on the workspace row: the portable way to serialise the creations of
            // one workspace (a row lock on PostgreSQL, the write lock on SQLite), so two at once
            // cannot both pass the count below.
            let ws = sqlx::query("UPDATE workspaces SET name = name WHERE id = $1")
                .bind(hook.workspace_id.as_str()).execute(&mut *tx).await.map_err(db_err)?.rows_affected();
            if ws == 0 {
                return Err(CoreError::NotFound);
            }
            let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM webhooks WHERE workspace_id = $1")
                .bind(hook.workspace_id.as_str()).fetch_one(&mut *tx).await.map_err(db_err)?;
            if n >= limit as i64 {
                return Ok(false);
            }
            sqlx::query("INSERT INTO webhooks (id, workspace_id, url, events, secret, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(hook.id.as_str()).bind(hook.workspace_id.as_str()).bind(&hook.url).bind(&events)
                .bind(&hook.secret).bind(hook.created_at)
                .execute(&mut *tx).await.map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(true)
        })
    }

    async fn get_webhook(&self, ws: &WorkspaceId, id: &WebhookId) -> CoreResult<Webhook> {
        let sql = format!("SELECT {HOOK_COLUMNS} FROM webhooks WHERE workspace_id = $1 AND id = $2");
        let row: Option<HookRow> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(ws.as_str()).bind(id.as_str()).fetch_optional(p).await.map_err(db_err))?;
        hook_from(row.ok_or(CoreError::NotFound)?)
    }

    async fn list_webhooks(
        &self,
        ws: &WorkspaceId,
        event: Option<EventKind>,
        page: PageRequest,
    ) -> CoreResult<(Vec<Webhook>, u64)> {
        let pattern = event.map(kind_pattern);
        let filter = "workspace_id = $1 AND ($2 IS NULL OR events LIKE $2)";
        let count = format!("SELECT COUNT(*) FROM webhooks WHERE {filter}");
        let select =
            format!("SELECT {HOOK_COLUMNS} FROM webhooks WHERE {filter} ORDER BY created_at, id LIMIT $3 OFFSET $4");
        let (total, rows): ((i64,), Vec<HookRow>) = with_pool!(self, p => {
            let total = sqlx::query_as(sqlx::AssertSqlSafe(count))
                .bind(ws.as_str()).bind(&pattern).fetch_one(p).await.map_err(db_err)?;
            let rows = sqlx::query_as(sqlx::AssertSqlSafe(select))
                .bind(ws.as_str()).bind(&pattern).bind(page.size as i64).bind(page.offset() as i64)
                .fetch_all(p).await.map_err(db_err)?;
            (total, rows)
        });
        Ok((rows.into_iter().map(hook_from).collect::<CoreResult<_>>()?, total.0 as u64))
    }

    async fn delete_webhook(&self, ws: &WorkspaceId, id: &WebhookId) -> CoreResult<()> {
        let n = with_pool!(self, p => sqlx::query("DELETE FROM webhooks WHERE workspace_id = $1 AND id = $2")
            .bind(ws.as_str()).bind(id.as_str()).execute(p).await.map_err(db_err)?.rows_affected());
        if n == 0 { Err(CoreError::NotFound) } else { Ok(()) }
    }

    async fn webhook_cursor(&self, name: &str) -> CoreResult<Option<EventId>> {
        let row: Option<(String,)> = with_pool!(self, p => sqlx::query_as(
            "SELECT event_id FROM webhook_cursors WHERE name = $1")
            .bind(name).fetch_optional(p).await.map_err(db_err))?;
        Ok(row.map(|(id,)| EventId::from_trusted(id)))
    }

    async fn advance_webhook_cursor(&self, name: &str, to: &EventId) -> CoreResult<()> {
        with_pool!(self, p => {
            sqlx::query(
                "INSERT INTO webhook_cursors (name, event_id) VALUES ($1, $2) ON CONFLICT (name) \
                 DO UPDATE SET event_id = excluded.event_id WHERE webhook_cursors.event_id < excluded.event_id")
                .bind(name).bind(to.as_str()).execute(p).await.map_err(db_err)?;
        });
        Ok(())
    }

    async fn dispatch_events(&self, after: Option<&EventId>, limit: u32, now: i64) -> CoreResult<Dispatched> {
        type Row = (String, String, String, String, i64, String);
        let events: Vec<Row> = with_pool!(self, p => sqlx::query_as(
            "SELECT id, workspace_id, kind, fields, emitted_at_ns, subject FROM events WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(after.map_or("", EventId::as_str)).bind(limit as i64).fetch_all(p).await.map_err(db_err))?;
        let mut out = Dispatched::default();
        if events.is_empty() {
            return Ok(out);
        }
        // The webhooks of each workspace seen in this batch, read once.
        let mut hooks: HashMap<String, Vec<Webhook>> = HashMap::new();
        let sql = format!("SELECT {HOOK_COLUMNS} FROM webhooks WHERE workspace_id = $1");
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            for (id, ws, kind, fields, at, subject) in &events {
                out.events.push((EventId::from_trusted(id.clone()), *at));
                let Some((kind, body)) = EventKind::parse(kind)
                    .zip(serde_json::from_str(fields).ok())
                    .and_then(|(k, f)| Some((k, EventBody::from_fields(k, &f)?)))
                else {
                    tracing::warn!(event = %id, "unreadable event: not delivered");
                    continue;
                };
                if !hooks.contains_key(ws) {
                    let rows: Vec<HookRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                        .bind(ws).fetch_all(&mut *tx).await.map_err(db_err)?;
                    hooks.insert(ws.clone(), rows.into_iter().map(hook_from).collect::<CoreResult<_>>()?);
                }
                let event = Event {
                    id: EventId::from_trusted(id.clone()),
                    workspace_id: WorkspaceId::from_trusted(ws.clone()),
                    emitted_at_ns: *at,
                    body,
                };
                let wire = event.wire().to_string();
                for h in &hooks[ws] {
                    // Subscribed, and existed when the event happened (a new webhook does not
                    // receive the history of its workspace).
                    if !h.events.contains(&kind) || h.created_at.saturating_mul(1_000_000) > *at {
                        continue;
                    }
                    out.created += sqlx::query(
                        "INSERT INTO webhook_deliveries (id, webhook_id, event_id, kind, subject, body, state, \
                         created_at, first_at, next_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7, $7) \
                         ON CONFLICT (event_id, webhook_id) DO NOTHING")
                        .bind(DeliveryId::generate().as_str()).bind(h.id.as_str()).bind(id).bind(kind.as_str())
                        .bind(subject).bind(&wire).bind(now)
                        .execute(&mut *tx).await.map_err(db_err)?.rows_affected();
                }
            }
            tx.commit().await.map_err(db_err)?;
        });
        Ok(out)
    }

    async fn due_deliveries(&self, now: i64, per_webhook: u32, limit: u32) -> CoreResult<Vec<(DeliveryId, WebhookId)>> {
        // The NOT EXISTS keeps the order per (webhook, subject): while an earlier delivery of the
        // pair is pending (waiting for a retry, or in flight), the later ones wait. The window
        // caps what one webhook may take of a pass, so a webhook with a long backlog does not
        // crowd the others out of `limit`.
        let rows: Vec<(String, String)> = with_pool!(self, p => sqlx::query_as(
            "SELECT id, webhook_id FROM (\
               SELECT d.id, d.webhook_id, d.next_at, \
                      ROW_NUMBER() OVER (PARTITION BY d.webhook_id ORDER BY d.next_at, d.event_id) AS rn \
               FROM webhook_deliveries d \
               WHERE d.state = 'pending' AND d.next_at <= $1 AND d.lease_until <= $1 \
                 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries e WHERE e.webhook_id = d.webhook_id \
                   AND e.subject = d.subject AND e.state = 'pending' AND e.event_id < d.event_id)\
             ) c WHERE rn <= $2 ORDER BY next_at, id LIMIT $3")
            .bind(now).bind(per_webhook as i64).bind(limit as i64).fetch_all(p).await.map_err(db_err))?;
        Ok(rows.into_iter().map(|(d, w)| (DeliveryId::from_trusted(d), WebhookId::from_trusted(w))).collect())
    }

    async fn lease_delivery(
        &self,
        id: &DeliveryId,
        owner: &str,
        now: i64,
        until: i64,
    ) -> CoreResult<Option<DueDelivery>> {
        type Row = (String, String, String, String, String, i64, i64);
        let row: Option<Row> = with_pool!(self, p => {
            let got = sqlx::query(
                "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2 \
                 WHERE id = $3 AND state = 'pending' AND next_at <= $4 AND lease_until <= $4")
                .bind(owner).bind(until).bind(id.as_str()).bind(now)
                .execute(p).await.map_err(db_err)?.rows_affected();
            if got == 0 {
                return Ok(None);
            }
            sqlx::query_as(
                "SELECT d.id, d.webhook_id, w.url, w.secret, d.body, d.attempts, d.first_at \
                 FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = $1")
                .bind(id.as_str()).fetch_optional(p).await.map_err(db_err)?
        });
        Ok(row.map(|(id, webhook, url, secret, body, attempts, first_at)| DueDelivery {
            id: DeliveryId::from_trusted(id),
            webhook_id: WebhookId::from_trusted(webhook),
            url,
            secret,
            body,
            attempts: attempts as u32,
            first_at,
        }))
    }

    async fn record_attempt(&self, id: &DeliveryId, owner: &str, a: &Attempt, outcome: Outcome) -> CoreResult<()> {
        let (state, next_at) = match outcome {
            Outcome::Delivered => (DeliveryState::Delivered, None),
            Outcome::RetryAt(t) => (DeliveryState::Pending, Some(t)),
            Outcome::Failed => (DeliveryState::Failed, None),
        };
        let status = a.status.map(i64::from);
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            // The delivery may be gone (its webhook deleted mid-attempt): nothing to log then.
            let inserted = sqlx::query(
                "INSERT INTO webhook_attempts (delivery_id, n, at, status, latency_ms, error, excerpt) \
                 SELECT $1, COALESCE(MAX(a.n), 0) + 1, $2, $3, $4, $5, $6 FROM webhook_deliveries d \
                 LEFT JOIN webhook_attempts a ON a.delivery_id = d.id WHERE d.id = $1 GROUP BY d.id")
                .bind(id.as_str()).bind(a.at).bind(status).bind(a.latency_ms).bind(&a.error).bind(&a.excerpt)
                .execute(&mut *tx).await.map_err(db_err)?.rows_affected();
            if inserted == 1 {
                sqlx::query(
                    "UPDATE webhook_deliveries SET state = $1, next_at = COALESCE($2, next_at), attempts = attempts + 1, \
                     last_status = $3, lease_owner = NULL, lease_until = 0 WHERE id = $4 AND lease_owner = $5")
                    .bind(state.as_str()).bind(next_at).bind(status).bind(id.as_str()).bind(owner)
                    .execute(&mut *tx).await.map_err(db_err)?;
            }
            tx.commit().await.map_err(db_err)?;
        });
        Ok(())
    }

    async fn list_deliveries(
        &self,
        ws: &WorkspaceId,
        webhook: &WebhookId,
        page: PageRequest,
    ) -> CoreResult<(Vec<Delivery>, u64)> {
        let from = "FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
                    WHERE w.workspace_id = $1 AND d.webhook_id = $2";
        let count = format!("SELECT COUNT(*) {from}");
        let select = format!("SELECT {DELIVERY_COLUMNS} {from} ORDER BY d.id DESC LIMIT $3 OFFSET $4");
        let (total, rows): ((i64,), Vec<DeliveryRow>) = with_pool!(self, p => {
            let total = sqlx::query_as(sqlx::AssertSqlSafe(count))
                .bind(ws.as_str()).bind(webhook.as_str()).fetch_one(p).await.map_err(db_err)?;
            let rows = sqlx::query_as(sqlx::AssertSqlSafe(select))
                .bind(ws.as_str()).bind(webhook.as_str()).bind(page.size as i64).bind(page.offset() as i64)
                .fetch_all(p).await.map_err(db_err)?;
            (total, rows)
        });
        Ok((rows.into_iter().map(delivery_from).collect(), total.0 as u64))
    }

    async fn get_delivery(
        &self,
        ws: &WorkspaceId,
        webhook: &WebhookId,
        id: &DeliveryId,
    ) -> CoreResult<(Delivery, Vec<Attempt>)> {
        let select = format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
             WHERE w.workspace_id = $1 AND d.webhook_id = $2 AND d.id = $3"
        );
        type AttemptRow = (i64, i64, Option<i64>, i64, Option<String>, String);
        let (row, attempts): (Option<DeliveryRow>, Vec<AttemptRow>) = with_pool!(self, p => {
            let row = sqlx::query_as(sqlx::AssertSqlSafe(select))
                .bind(ws.as_str()).bind(webhook.as_str()).bind(id.as_str())
                .fetch_optional(p).await.map_err(db_err)?;
            let attempts = sqlx::query_as(
                "SELECT n, at, status, latency_ms, error, excerpt FROM webhook_attempts WHERE delivery_id = $1 ORDER BY n")
                .bind(id.as_str()).fetch_all(p).await.map_err(db_err)?;
            (row, attempts)
        });
        let delivery = delivery_from(row.ok_or(CoreError::NotFound)?);
        let attempts = attempts
            .into_iter()
            .map(|(n, at, status, latency_ms, error, excerpt)| Attempt {
                n: n as u32,
                at,
                status: status.map(|s| s as u16),
                latency_ms,
                error,
                excerpt,
            })
            .collect();
        Ok((delivery, attempts))
    }

    async fn replay_delivery(
        &self,
        ws: &WorkspaceId,
        webhook: &WebhookId,
        id: &DeliveryId,
        now: i64,
    ) -> CoreResult<Delivery> {
        let n = with_pool!(self, p => sqlx::query(
            "UPDATE webhook_deliveries SET state = 'pending', next_at = $1, first_at = $1 \
             WHERE id = $2 AND webhook_id = $3 AND webhook_id IN (SELECT id FROM webhooks WHERE workspace_id = $4)")
            .bind(now).bind(id.as_str()).bind(webhook.as_str()).bind(ws.as_str())
            .execute(p).await.map_err(db_err)?.rows_affected());
        if n == 0 {
            return Err(CoreError::NotFound);
        }
        Ok(self.get_delivery(ws, webhook, id).await?.0)
    }
}
