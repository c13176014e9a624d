//! [`BroadcastRepo`]: broadcasts of live streams, the `broadcasting` flag and its events, and the
//! recordings they become.

use async_trait::async_trait;
use vidi_core::CoreResult;
use vidi_core::event::EventBody;
use vidi_core::id::{BroadcastId, LiveStreamId, VideoId, WorkspaceId};
use vidi_core::live::{Broadcast, LiveStream};
use vidi_core::model::Video;
use vidi_core::repo::BroadcastRepo;

use crate::events::append_event;
use crate::live_streams::{COLUMNS, LiveRow};
use crate::videos::{insert_video_row, to_json, write_filters};
use crate::{Db, db_err, with_pool};

const BROADCAST: &str = "id, live_stream_id, workspace_id, node, record, video_id, started_at, heartbeat_at, ended_at";

type Row = (String, String, String, String, bool, String, i64, i64, Option<i64>);

fn broadcast((id, live, ws, node, record, video, started_at, heartbeat_at, ended_at): Row) -> Broadcast {
    Broadcast {
        id: BroadcastId::from_trusted(id),
        live_stream_id: LiveStreamId::from_trusted(live),
        workspace_id: WorkspaceId::from_trusted(ws),
        node,
        record,
        video_id: VideoId::from_trusted(video),
        started_at,
        heartbeat_at,
        ended_at,
    }
}

#[async_trait]
impl BroadcastRepo for Db {
    async fn live_stream_by_key(&self, stream_key: &str) -> CoreResult<Option<LiveStream>> {
        let sql = format!("SELECT {COLUMNS} FROM live_streams WHERE stream_key = $1");
        let row: Option<LiveRow> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(stream_key).fetch_optional(p).await.map_err(db_err))?;
        row.map(LiveRow::into_live).transpose()
    }

    async fn open_broadcast(&self, b: &Broadcast) -> CoreResult<()> {
        with_pool!(self, p => sqlx::query(
            "INSERT INTO live_broadcasts (id, live_stream_id, workspace_id, node, record, video_id, started_at, \
             heartbeat_at, ended_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(b.id.as_str()).bind(b.live_stream_id.as_str()).bind(b.workspace_id.as_str()).bind(&b.node)
            .bind(b.record).bind(b.video_id.as_str()).bind(b.started_at).bind(b.heartbeat_at).bind(b.ended_at)
            .execute(p).await.map(|_| ()).map_err(db_err))
    }

    async fn set_broadcasting(
        &self,
        ws: &WorkspaceId,
        id: &LiveStreamId,
        on: bool,
        occurrence: &str,
        now: i64,
    ) -> CoreResult<bool> {
        let live_stream_id = id.to_string();
        let body = if on {
            EventBody::BroadcastStarted { live_stream_id }
        } else {
            EventBody::BroadcastEnded { live_stream_id }
        };
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            // Only a real flip is announced: the row lock of the UPDATE orders two nodes' flips.
            let flipped = sqlx::query(
                "UPDATE live_streams SET broadcasting = $1 WHERE id = $2 AND workspace_id = $3 AND broadcasting <> $1")
                .bind(on).bind(id.as_str()).bind(ws.as_str())
                .execute(&mut *tx).await.map_err(db_err)?.rows_affected() == 1;
            if flipped {
                let _new = append_event!(tx, ws.as_str(), body, now * 1_000_000, occurrence);
            }
            tx.commit().await.map_err(db_err)?;
            Ok(flipped)
        })
    }

    async fn heartbeat_broadcasts(&self, node: &str, now: i64) -> CoreResult<()> {
        with_pool!(self, p => sqlx::query(
            "UPDATE live_broadcasts SET heartbeat_at = $1 WHERE node = $2 AND ended_at IS NULL")
            .bind(now).bind(node).execute(p).await.map(|_| ()).map_err(db_err))
    }

    async fn end_broadcast(&self, id: &BroadcastId, now: i64) -> CoreResult<Option<Broadcast>> {
        with_pool!(self, p => sqlx::query("UPDATE live_broadcasts SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
            .bind(now).bind(id.as_str()).execute(p).await.map(|_| ()).map_err(db_err))?;
        self.get_broadcast(id).await
    }

    async fn end_orphan(&self, dead: &Broadcast, occurrence: &str, now: i64) -> CoreResult<(Option<Broadcast>, bool)> {
        let body = EventBody::BroadcastEnded { live_stream_id: dead.live_stream_id.to_string() };
        let flipped = with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            sqlx::query("UPDATE live_broadcasts SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL")
                .bind(now).bind(dead.id.as_str()).execute(&mut *tx).await.map_err(db_err)?;
            // The flag belongs to whichever broadcast is open: a stream that started again on
            // another node since keeps it (that node flips it when its own broadcast ends).
            let flipped = sqlx::query(
                "UPDATE live_streams SET broadcasting = $1 WHERE id = $2 AND workspace_id = $3 AND broadcasting <> $1 \
                 AND NOT EXISTS (SELECT 1 FROM live_broadcasts WHERE live_stream_id = $2 AND ended_at IS NULL)")
                .bind(false).bind(dead.live_stream_id.as_str()).bind(dead.workspace_id.as_str())
                .execute(&mut *tx).await.map_err(db_err)?.rows_affected() == 1;
            if flipped {
                let _new = append_event!(tx, dead.workspace_id.as_str(), body, now * 1_000_000, occurrence);
            }
            tx.commit().await.map_err(db_err)?;
            Ok::<bool, vidi_core::CoreError>(flipped)
        })?;
        Ok((self.get_broadcast(&dead.id).await?, flipped))
    }

    async fn existing_live_streams(&self, ids: &[LiveStreamId]) -> CoreResult<Vec<LiveStreamId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // `IN ($1, …)` rather than `= ANY`: SQLite has no arrays. A node holds tens of streams,
        // far below either database's parameter limit.
        let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!("SELECT id FROM live_streams WHERE id IN ({})", marks.join(", "));
        let rows: Vec<(String,)> = with_pool!(self, p => {
            let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()));
            for id in ids {
                q = q.bind(id.as_str());
            }
            q.fetch_all(p).await.map_err(db_err)
        })?;
        Ok(rows.into_iter().map(|(id,)| LiveStreamId::from_trusted(id)).collect())
    }

    async fn stale_broadcasts(&self, stale_before: i64) -> CoreResult<Vec<Broadcast>> {
        let sql = format!("SELECT {BROADCAST} FROM live_broadcasts WHERE ended_at IS NULL AND heartbeat_at < $1");
        let rows: Vec<Row> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(stale_before).fetch_all(p).await.map_err(db_err))?;
        Ok(rows.into_iter().map(broadcast).collect())
    }

    async fn get_broadcast(&self, id: &BroadcastId) -> CoreResult<Option<Broadcast>> {
        let sql = format!("SELECT {BROADCAST} FROM live_broadcasts WHERE id = $1");
        let row: Option<Row> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id.as_str()).fetch_optional(p).await.map_err(db_err))?;
        Ok(row.map(broadcast))
    }

    async fn insert_recording(&self, b: &Broadcast, video: &Video, now_ns: i64) -> CoreResult<bool> {
        let body =
            EventBody::SourceRecorded { live_stream_id: b.live_stream_id.to_string(), video_id: video.id.clone() };
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            let exists: Option<(String,)> = sqlx::query_as("SELECT id FROM videos WHERE id = $1")
                .bind(video.id.as_str()).fetch_optional(&mut *tx).await.map_err(db_err)?;
            if exists.is_some() {
                return Ok(false);
            }
            insert_video_row!(tx, video);
            let _new = append_event!(tx, b.workspace_id.as_str(), body, now_ns);
            tx.commit().await.map_err(db_err)?;
            Ok(true)
        })
    }
}
