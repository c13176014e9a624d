//! [`AnalyticsRepo`]: viewing sessions and their raw events. Writes are appends (a session is one
//! row, the collector's batches are committed in groups: see `appends`), so the collector never
//! reads a row in order to rewrite it: a session's `endedAt` is the time of its last event, found
//! through the (session, time) index when read.

use async_trait::async_trait;
use vidi_core::analytics::{
    Agent, EventKind, ExportRow, Period, PlayerEvent, PlayerSession, QoeSummary, Referrer, month_of, quantile_rank,
};
use vidi_core::id::{LiveStreamId, MediaId, PlayerSessionId, VideoId, WorkspaceId};
use vidi_core::model::PageRequest;
use vidi_core::repo::{AnalyticsRepo, SessionHead};
use vidi_core::{CoreError, CoreResult};

use crate::videos::{json, to_json};
use crate::{Arg, Db, Pool, bind_args, db_err, with_pool};

const COLUMNS: &str = "s.id, s.workspace_id, s.media_id, s.loaded_at, s.metadata, s.referrer_url, \
     s.referrer_medium, s.referrer_source, s.search_term, s.device_type, s.device_vendor, s.device_model, \
     s.os_name, s.os_shortname, s.os_version, s.client_name, s.client_version, s.client_type, s.country, s.city, \
     s.viewer, COALESCE((SELECT MAX(e.emitted_at) FROM player_events e WHERE e.session_id = s.id), s.loaded_at) AS ended_at";

/// The seven types `/analytics/sessions/{id}/events` lists, as SQL literals (constants, never
/// input).
const STANDARD: &str = "'ready', 'play', 'pause', 'resume', 'seek.backward', 'seek.forward', 'end'";

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: String,
    workspace_id: String,
    media_id: String,
    loaded_at: i64,
    metadata: String,
    referrer_url: Option<String>,
    referrer_medium: String,
    referrer_source: String,
    search_term: String,
    device_type: String,
    device_vendor: String,
    device_model: String,
    os_name: String,
    os_shortname: String,
    os_version: String,
    client_name: String,
    client_version: String,
    client_type: String,
    country: String,
    city: Option<String>,
    viewer: Option<String>,
    ended_at: i64,
}

fn media(id: String) -> MediaId {
    if id.starts_with(LiveStreamId::PREFIX) {
        MediaId::LiveStream(LiveStreamId::from_trusted(id))
    } else {
        MediaId::Video(VideoId::from_trusted(id))
    }
}

impl SessionRow {
    fn into_session(self) -> CoreResult<PlayerSession> {
        Ok(PlayerSession {
            id: PlayerSessionId::from_trusted(self.id),
            workspace_id: WorkspaceId::from_trusted(self.workspace_id),
            media: media(self.media_id),
            loaded_at: self.loaded_at,
            ended_at: self.ended_at,
            metadata: json(&self.metadata)?,
            referrer: Referrer {
                url: self.referrer_url,
                medium: self.referrer_medium,
                source: self.referrer_source,
                search_term: self.search_term,
            },
            agent: Agent {
                device_type: self.device_type,
                device_vendor: self.device_vendor,
                device_model: self.device_model,
                os_name: self.os_name,
                os_shortname: self.os_shortname,
                os_version: self.os_version,
                client_name: self.client_name,
                client_version: self.client_version,
                client_type: self.client_type,
            },
            country: self.country,
            city: self.city,
            viewer: self.viewer,
        })
    }
}

#[derive(sqlx::FromRow)]
struct EventRow {
    session_id: String,
    seq: i64,
    emitted_at: i64,
    #[sqlx(rename = "type")]
    kind: String,
    at: Option<i64>,
    from_s: Option<i64>,
    to_s: Option<i64>,
    value: Option<i64>,
    height: Option<i64>,
    bitrate: Option<i64>,
}

impl EventRow {
    fn into_event(self) -> CoreResult<PlayerEvent> {
        let kind = EventKind::parse(&self.kind)
            .ok_or_else(|| CoreError::Database(format!("unknown player event type {:?}", self.kind).into()))?;
        Ok(PlayerEvent {
            session_id: PlayerSessionId::from_trusted(self.session_id),
            seq: self.seq,
            kind,
            emitted_at: self.emitted_at,
            at: self.at,
            from: self.from_s,
            to: self.to_s,
            value: self.value,
            height: self.height,
            bitrate: self.bitrate,
        })
    }
}

impl Db {
    /// On PostgreSQL, creates the monthly partition of raw events that holds `ms`, once per
    /// process and month. Two nodes racing both succeed (`IF NOT EXISTS`; a lost race's error is
    /// only logged: the other node made the partition). A month whose events already went to the
    /// default partition cannot get its own (PostgreSQL refuses): they stay there, still indexed.
    ///
    /// Returns the month's bounds (unix ms, end excluded), so that a batch asks once per month.
    async fn ensure_event_partition(&self, ms: i64) -> Option<(i64, i64)> {
        let Pool::Postgres(p) = &self.pool else { return None };
        let (name, span) = month_of(ms)?;
        let bounds = Some((span.start_ms, span.end_ms));
        if self.event_partitions.lock().expect("not poisoned").contains(&name) {
            return bounds;
        }
        // `name` is digits we formatted, the bounds are integers: nothing here is input.
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS player_events_{name} PARTITION OF player_events \
             FOR VALUES FROM ({}) TO ({})",
            span.start_ms, span.end_ms
        );
        match sqlx::query(sqlx::AssertSqlSafe(sql)).execute(p).await {
            Ok(_) => {
                self.event_partitions.lock().expect("not poisoned").insert(name);
            }
            Err(e) => {
                tracing::warn!(error = %e, month = %name, "could not create the month's partition of player events")
            }
        }
        bounds
    }

    /// SQLite in memory (tests), which the writer thread cannot open: one INSERT per batch.
    async fn append_in_memory(&self, media: &MediaId, events: &[PlayerEvent]) -> CoreResult<u64> {
        const COLS: usize = 11;
        let mut values = String::new();
        for i in 0..events.len() {
            if i > 0 {
                values.push_str(", ");
            }
            let b = i * COLS;
            values.push('(');
            for c in 1..=COLS {
                values.push_str(&format!("{}${}", if c > 1 { ", " } else { "" }, b + c));
            }
            values.push(')');
        }
        // One statement for the whole batch; a row already there (a batch retried) is skipped.
        let sql = format!(
            "INSERT INTO player_events (session_id, seq, emitted_at, media_id, type, at, from_s, to_s, value, \
             height, bitrate) \
             VALUES {values} ON CONFLICT DO NOTHING"
        );
        let _turn = self.player_appends.lock().await;
        with_pool!(self, p => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
            for e in events {
                q = q.bind(e.session_id.as_str()).bind(e.seq).bind(e.emitted_at).bind(media.as_str())
                    .bind(e.kind.as_str()).bind(e.at).bind(e.from).bind(e.to).bind(e.value)
                    .bind(e.height).bind(e.bitrate);
            }
            q.execute(p).await.map(|r| r.rows_affected()).map_err(db_err)
        })
    }
}

#[async_trait]
impl AnalyticsRepo for Db {
    async fn insert_player_session(&self, s: &PlayerSession) -> CoreResult<()> {
        let a = &s.agent;
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            sqlx::query(
                "INSERT INTO player_sessions (id, workspace_id, media_id, loaded_at, metadata, referrer_url, \
                 referrer_medium, referrer_source, search_term, device_type, device_vendor, device_model, os_name, \
                 os_shortname, os_version, client_name, client_version, client_type, country, city, viewer) VALUES \
                 ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)")
                .bind(s.id.as_str()).bind(s.workspace_id.as_str()).bind(s.media.as_str()).bind(s.loaded_at)
                .bind(to_json(&s.metadata)).bind(&s.referrer.url).bind(&s.referrer.medium).bind(&s.referrer.source)
                .bind(&s.referrer.search_term).bind(&a.device_type).bind(&a.device_vendor).bind(&a.device_model)
                .bind(&a.os_name).bind(&a.os_shortname).bind(&a.os_version).bind(&a.client_name)
                .bind(&a.client_version).bind(&a.client_type).bind(&s.country).bind(&s.city).bind(&s.viewer)
                .execute(&mut *tx).await.map_err(db_err)?;
            if !s.metadata.is_empty() {
                let mut values = String::new();
                for i in 0..s.metadata.len() {
                    if i > 0 {
                        values.push_str(", ");
                    }
                    values.push_str(&format!("($1, ${}, ${})", 2 * i + 2, 2 * i + 3));
                }
                let sql = format!("INSERT INTO player_session_metadata (session_id, key, value) VALUES {values}");
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(s.id.as_str());
                for (k, v) in &s.metadata {
                    q = q.bind(k).bind(v);
                }
                q.execute(&mut *tx).await.map_err(db_err)?;
            }
            tx.commit().await.map_err(db_err)
        })
    }

    async fn player_session_head(&self, id: &PlayerSessionId) -> CoreResult<SessionHead> {
        let (ws, m, loaded_at): (String, String, i64) = with_pool!(self, p => sqlx::query_as(
            "SELECT workspace_id, media_id, loaded_at FROM player_sessions WHERE id = $1")
            .bind(id.as_str()).fetch_one(p).await.map_err(db_err))?;
        Ok(SessionHead { workspace_id: WorkspaceId::from_trusted(ws), media: media(m), loaded_at })
    }

    async fn append_player_events(&self, media: &MediaId, events: Vec<PlayerEvent>) -> CoreResult<u64> {
        if events.is_empty() {
            return Ok(0);
        }
        if events.iter().any(|e| e.session_id != events[0].session_id) {
            return Err(CoreError::Refused("a batch holds the events of one session".into()));
        }
        match &self.pool {
            Pool::Postgres(p) => {
                // Each month the batch touches (one, but at a month's turn), once.
                let mut checked: Option<(i64, i64)> = None;
                for e in &events {
                    if checked.is_some_and(|(from, to)| (from..to).contains(&e.emitted_at)) {
                        continue;
                    }
                    checked = self.ensure_event_partition(e.emitted_at).await;
                }
                self.pg_appends.append(p, media.as_str(), events).await
            }
            Pool::Sqlite(_) => match &self.sqlite_appends {
                Some(w) => w.append(media.as_str(), events).await,
                None => self.append_in_memory(media, &events).await,
            },
        }
    }

    async fn list_player_sessions(
        &self,
        ws: &WorkspaceId,
        media: &MediaId,
        period: Period,
        metadata: &[(String, String)],
        page: PageRequest,
    ) -> CoreResult<(Vec<PlayerSession>, u64)> {
        let mut args = vec![
            Arg::Text(ws.as_str().to_string()),
            Arg::Text(media.as_str().to_string()),
            Arg::Int(period.start_ms),
            Arg::Int(period.end_ms),
        ];
        let mut wh = String::from("s.workspace_id = $1 AND s.media_id = $2 AND s.loaded_at >= $3 AND s.loaded_at < $4");
        for (k, v) in metadata {
            args.push(Arg::Text(k.clone()));
            args.push(Arg::Text(v.clone()));
            wh += &format!(
                " AND EXISTS (SELECT 1 FROM player_session_metadata m WHERE m.session_id = s.id \
                 AND m.key = ${} AND m.value = ${})",
                args.len() - 1,
                args.len()
            );
        }
        let count_sql = format!("SELECT COUNT(*) FROM player_sessions s WHERE {wh}");
        let lim = args.len() + 1;
        // Newest first (contract §12's decision); the id breaks ties so pages never overlap. The
        // page is cut first and `endedAt` (a lookup in the events) found for its rows alone:
        // otherwise both databases compute it for every row OFFSET skips too (170 ms for the last
        // page of 20,000 sessions on PostgreSQL; bench/query.sh).
        let list_sql = format!(
            "SELECT {COLUMNS} FROM (SELECT * FROM player_sessions s WHERE {wh} \
             ORDER BY s.loaded_at DESC, s.id DESC LIMIT ${lim} OFFSET ${}) s \
             ORDER BY s.loaded_at DESC, s.id DESC",
            lim + 1
        );
        let mut list_args = args;
        let (total, rows): (i64, Vec<SessionRow>) = with_pool!(self, p => {
            let (n,): (i64,) = bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(count_sql.as_str())), &list_args)
                .fetch_one(p).await.map_err(db_err)?;
            list_args.push(Arg::Int(page.size as i64));
            list_args.push(Arg::Int(page.offset() as i64));
            let rows = bind_args!(sqlx::query_as(sqlx::AssertSqlSafe(list_sql.as_str())), &list_args)
                .fetch_all(p).await.map_err(db_err)?;
            (n, rows)
        });
        let sessions = rows.into_iter().map(SessionRow::into_session).collect::<CoreResult<Vec<_>>>()?;
        Ok((sessions, total as u64))
    }

    async fn list_player_events(
        &self,
        ws: &WorkspaceId,
        id: &PlayerSessionId,
        page: PageRequest,
    ) -> CoreResult<(Vec<PlayerEvent>, u64)> {
        let count_sql = format!(
            "SELECT COUNT(e.seq) FROM player_sessions s LEFT JOIN player_events e ON e.session_id = s.id \
             AND e.type IN ({STANDARD}) WHERE s.id = $1 AND s.workspace_id = $2"
        );
        let list_sql = format!(
            "SELECT e.session_id, e.seq, e.emitted_at, e.type, e.at, e.from_s, e.to_s, e.value, e.height, e.bitrate \
             FROM player_events e WHERE e.session_id = $1 AND e.type IN ({STANDARD}) \
             ORDER BY e.emitted_at, e.seq LIMIT $2 OFFSET $3"
        );
        with_pool!(self, p => {
            // No row at all (not even one of NULLs) when the session is not `ws`'s.
            let found: Option<(String,)> = sqlx::query_as(
                "SELECT id FROM player_sessions WHERE id = $1 AND workspace_id = $2")
                .bind(id.as_str()).bind(ws.as_str()).fetch_optional(p).await.map_err(db_err)?;
            if found.is_none() {
                return Err(CoreError::NotFound);
            }
            let (n,): (i64,) = sqlx::query_as(sqlx::AssertSqlSafe(count_sql.as_str()))
                .bind(id.as_str()).bind(ws.as_str()).fetch_one(p).await.map_err(db_err)?;
            let rows: Vec<EventRow> = sqlx::query_as(sqlx::AssertSqlSafe(list_sql.as_str()))
                .bind(id.as_str()).bind(page.size as i64).bind(page.offset() as i64)
                .fetch_all(p).await.map_err(db_err)?;
            let events = rows.into_iter().map(EventRow::into_event).collect::<CoreResult<Vec<_>>>()?;
            Ok((events, n as u64))
        })
    }

    async fn qoe_summary(&self, ws: &WorkspaceId, media: &MediaId, period: Period) -> CoreResult<QoeSummary> {
        // The sessions of the period, through the (media, loaded_at) index; their events through
        // the (session, time) one.
        const OF: &str = "e.session_id IN (SELECT id FROM player_sessions WHERE workspace_id = $1 AND media_id = $2 \
                          AND loaded_at >= $3 AND loaded_at < $4)";
        // Every measure in one pass over the period's sessions and their events: first per
        // session (the views, the cap on its watch time, its first rendition apart from its
        // switches), then summed. Products of time and bitrate are summed as floating point: a
        // month of a busy video's would overflow 64-bit integers.
        let counts = "SELECT COUNT(*), \
             CAST(COALESCE(SUM(played), 0) AS BIGINT), \
             CAST(COALESCE(SUM(errored), 0) AS BIGINT), \
             CAST(COALESCE(SUM(ttff), 0) AS BIGINT), \
             CAST(COALESCE(SUM(rebuffers), 0) AS BIGINT), \
             CAST(COALESCE(SUM(rebuffer_ms), 0) AS BIGINT), \
             COUNT(DISTINCT CASE WHEN played = 1 THEN viewer END), \
             CAST(COALESCE(SUM(CASE WHEN watched > last_at - loaded_at THEN last_at - loaded_at ELSE watched END), 0) \
                  AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN renditions > 1 THEN renditions - 1 ELSE 0 END), 0) AS BIGINT), \
             COALESCE(SUM(rated_ms), 0.0), COALESCE(SUM(bit_ms), 0.0) \
             FROM (SELECT s.viewer AS viewer, s.loaded_at AS loaded_at, MAX(e.emitted_at) AS last_at, \
                   MAX(CASE WHEN e.type = 'play' THEN 1 ELSE 0 END) AS played, \
                   MAX(CASE WHEN e.type = 'qoe.error' THEN 1 ELSE 0 END) AS errored, \
                   SUM(CASE WHEN e.type = 'qoe.ttff' THEN 1 ELSE 0 END) AS ttff, \
                   SUM(CASE WHEN e.type = 'qoe.rebuffer' THEN 1 ELSE 0 END) AS rebuffers, \
                   SUM(CASE WHEN e.type = 'qoe.rebuffer' THEN e.value ELSE 0 END) AS rebuffer_ms, \
                   SUM(CASE WHEN e.type = 'qoe.watch' THEN e.value ELSE 0 END) AS watched, \
                   SUM(CASE WHEN e.type = 'qoe.rendition' THEN 1 ELSE 0 END) AS renditions, \
                   SUM(CASE WHEN e.type = 'qoe.watch' AND e.bitrate IS NOT NULL \
                       THEN CAST(e.value AS DOUBLE PRECISION) ELSE 0.0 END) AS rated_ms, \
                   SUM(CASE WHEN e.type = 'qoe.watch' AND e.bitrate IS NOT NULL \
                       THEN CAST(e.value AS DOUBLE PRECISION) * e.bitrate ELSE 0.0 END) AS bit_ms \
                   FROM player_sessions s LEFT JOIN player_events e ON e.session_id = s.id \
                   WHERE s.workspace_id = $1 AND s.media_id = $2 AND s.loaded_at >= $3 AND s.loaded_at < $4 \
                   GROUP BY s.id, s.viewer, s.loaded_at) t";
        // One value of the sorted times to first frame, by rank: the database sorts, nothing is
        // brought over but the value.
        let ranked = format!(
            "SELECT e.value FROM player_events e WHERE {OF} AND e.type = 'qoe.ttff' ORDER BY e.value LIMIT 1 OFFSET $5"
        );
        let (ws, m) = (ws.as_str(), media.as_str());
        type Counts = (i64, i64, i64, i64, i64, i64, i64, i64, i64, f64, f64);
        let (sessions, views, errored, ttff_count, rebuffers, rebuffer_ms, viewers, watch_ms, switches, rated, bits): Counts =
            with_pool!(self, p => sqlx::query_as(counts)
                .bind(ws).bind(m).bind(period.start_ms).bind(period.end_ms).fetch_one(p).await.map_err(db_err))?;
        let mut quantiles = [None, None];
        for (slot, q) in quantiles.iter_mut().zip([0.5, 0.95]) {
            let Some(rank) = quantile_rank(ttff_count as u64, q) else { continue };
            let v: Option<(Option<i64>,)> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(ranked.as_str()))
                .bind(ws).bind(m).bind(period.start_ms).bind(period.end_ms).bind(rank as i64)
                .fetch_optional(p).await.map_err(db_err))?;
            *slot = v.and_then(|(v,)| v);
        }
        let [ttff_median, ttff_p95] = quantiles;
        Ok(QoeSummary {
            sessions: sessions as u64,
            views: views as u64,
            errored: errored as u64,
            ttff_count: ttff_count as u64,
            ttff_median,
            ttff_p95,
            rebuffers: rebuffers as u64,
            rebuffer_ms,
            unique_viewers: viewers as u64,
            watch_ms,
            rendition_switches: switches as u64,
            bitrate_avg: (rated > 0.0).then(|| (bits / rated).round() as i64),
        })
    }

    async fn export_player_events(
        &self,
        period: Period,
        after: Option<(i64, PlayerSessionId, i64)>,
        limit: u32,
    ) -> CoreResult<Vec<ExportRow>> {
        // Keyset paging: each page starts after the last row of the one before, through the
        // partition key (PostgreSQL reads only the period's months).
        let (t, sid, seq) = after.map_or((i64::MIN, String::new(), -1), |(t, s, q)| (t, s.into_string(), q));
        let sql = "SELECT e.session_id, e.seq, e.emitted_at, e.type, e.at, e.from_s, e.to_s, e.value, \
                   e.height, e.bitrate, s.workspace_id, s.media_id \
                   FROM player_events e JOIN player_sessions s ON s.id = e.session_id \
                   WHERE e.emitted_at >= $1 AND e.emitted_at < $2 \
                   AND (e.emitted_at > $3 OR (e.emitted_at = $3 AND (e.session_id > $4 OR (e.session_id = $4 AND e.seq > $5)))) \
                   ORDER BY e.emitted_at, e.session_id, e.seq LIMIT $6";
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            event: EventRow,
            workspace_id: String,
            media_id: String,
        }
        let rows: Vec<Row> = with_pool!(self, p => sqlx::query_as(sql)
            .bind(period.start_ms).bind(period.end_ms).bind(t).bind(&sid).bind(seq).bind(i64::from(limit))
            .fetch_all(p).await.map_err(db_err))?;
        rows.into_iter()
            .map(|r| {
                Ok(ExportRow {
                    workspace_id: WorkspaceId::from_trusted(r.workspace_id),
                    media: media(r.media_id),
                    event: r.event.into_event()?,
                })
            })
            .collect()
    }

    async fn prune_player_sessions(&self, before: i64, limit: u32) -> CoreResult<u64> {
        // The oldest sessions through the `loaded_at` index, then their rows by session id.
        const OLD: &str = "SELECT id FROM player_sessions WHERE loaded_at < $1 ORDER BY loaded_at LIMIT $2";
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            for table in ["player_events", "player_session_metadata"] {
                let sql = format!("DELETE FROM {table} WHERE session_id IN ({OLD})");
                sqlx::query(sqlx::AssertSqlSafe(sql)).bind(before).bind(i64::from(limit))
                    .execute(&mut *tx).await.map_err(db_err)?;
            }
            let sql = format!("DELETE FROM player_sessions WHERE id IN ({OLD})");
            let n = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(before).bind(i64::from(limit))
                .execute(&mut *tx).await.map(|r| r.rows_affected()).map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(n)
        })
    }

    async fn in_playback_session(&self, media: &MediaId, session: &str, now: i64) -> CoreResult<bool> {
        let sql = match media {
            MediaId::Video(_) => {
                "SELECT COUNT(*) FROM private_tokens WHERE video_id = $1 AND session = $2 AND expires_at >= $3"
            }
            MediaId::LiveStream(_) => {
                "SELECT COUNT(*) FROM live_private_tokens WHERE live_stream_id = $1 AND session = $2 \
                 AND expires_at >= $3"
            }
        };
        let (n,): (i64,) = with_pool!(self, p => sqlx::query_as(sql)
            .bind(media.as_str()).bind(session).bind(now).fetch_one(p).await.map_err(db_err))?;
        Ok(n > 0)
    }
}
