//! Ranged and whole uploads. Every transaction starts by bumping the video's `lock_seq`, which
//! takes the row lock on PostgreSQL and the write lock on SQLite, so the rules in
//! `vidi_core::upload` see a state no concurrent request can change under them.

use std::collections::HashSet;

use async_trait::async_trait;
use vidi_core::id::{VideoId, WorkspaceId};
use vidi_core::model::{Chunk, IngestState, ProbeOutcome, UploadMode, Video};
use vidi_core::repo::{ChunkClaim, ChunkCommit, UploadRepo, VideoRepo};
use vidi_core::upload::{self, ContentRange, RangeError};
use vidi_core::{CoreError, CoreResult};

use crate::videos::{VIDEO_COLUMNS, VideoRow, to_json};
use crate::{Db, db_err, found, with_pool};

#[derive(sqlx::FromRow)]
struct ChunkRow {
    idx: i64,
    range_from: Option<i64>,
    range_to: Option<i64>,
    size: Option<i64>,
    receipt: Option<String>,
    claimed_by: Option<String>,
    claimed_at: i64,
}

impl From<ChunkRow> for Chunk {
    fn from(r: ChunkRow) -> Chunk {
        Chunk {
            idx: r.idx as u32,
            range: r.range_from.zip(r.range_to).map(|(f, t)| (f as u64, t as u64)),
            size: r.size.map(|s| s as u64),
            receipt: r.receipt,
            claimed_by: r.claimed_by,
            claimed_at: r.claimed_at,
        }
    }
}

/// A chunk row joined to its video: all `None` for a video without chunks.
#[derive(sqlx::FromRow)]
struct OptionalChunkRow {
    idx: Option<i64>,
    range_from: Option<i64>,
    range_to: Option<i64>,
    size: Option<i64>,
    receipt: Option<String>,
    claimed_by: Option<String>,
    claimed_at: Option<i64>,
}

impl OptionalChunkRow {
    fn chunk(self) -> Option<Chunk> {
        let r = self;
        Some(Chunk::from(ChunkRow {
            idx: r.idx?,
            range_from: r.range_from,
            range_to: r.range_to,
            size: r.size,
            receipt: r.receipt,
            claimed_by: r.claimed_by,
            claimed_at: r.claimed_at.unwrap_or(0),
        }))
    }
}

const CHUNK_COLUMNS: &str = "idx, range_from, range_to, size, receipt, claimed_by, claimed_at";

/// Locks the video of workspace `$ws` (see the module comment) and reads it with its chunks,
/// inside `$tx`; `NotFound` when `$ws` has no such video. The statements after it in the
/// transaction may name the video by id alone: it is locked and known to be `$ws`'s.
macro_rules! lock_and_load {
    ($tx:expr, $id:expr, $ws:expr) => {{
        let locked = sqlx::query("UPDATE videos SET lock_seq = lock_seq + 1 WHERE id = $1 AND workspace_id = $2")
            .bind($id.as_str())
            .bind($ws.as_str())
            .execute(&mut *$tx)
            .await
            .map_err(db_err)?;
        if locked.rows_affected() == 0 {
            return Err(CoreError::NotFound);
        }
        let sql = format!("SELECT {VIDEO_COLUMNS} FROM videos WHERE id = $1");
        let row: VideoRow = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind($id.as_str())
            .fetch_one(&mut *$tx)
            .await
            .map_err(db_err)?;
        let video = row.into_video()?;
        let sql = format!("SELECT {CHUNK_COLUMNS} FROM upload_chunks WHERE video_id = $1 ORDER BY idx");
        let chunks: Vec<ChunkRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind($id.as_str())
            .fetch_all(&mut *$tx)
            .await
            .map_err(db_err)?;
        (video, chunks.into_iter().map(Chunk::from).collect::<Vec<Chunk>>())
    }};
}

#[async_trait]
impl UploadRepo for Db {
    async fn claim_chunk(
        &self,
        ws: &WorkspaceId,
        id: &VideoId,
        range: ContentRange,
        instance: &str,
        now: i64,
        live_after: i64,
    ) -> CoreResult<ChunkClaim> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            let (video, chunks): (Video, Vec<Chunk>) = lock_and_load!(tx, id, ws);
            let live_rows: Vec<(String,)> = sqlx::query_as("SELECT id FROM instances WHERE heartbeat_at >= $1")
                .bind(live_after).fetch_all(&mut *tx).await.map_err(db_err)?;
            let live: HashSet<String> = live_rows.into_iter().map(|(i,)| i).collect();
            let is_live = |c: &Chunk| c.claimed_by.as_deref().is_some_and(|by| by == instance || live.contains(by));
            let plan = upload::plan_chunk(video.source_kind, &video.ingest, &chunks, range, is_live)?;
            // Claims left by a dead process are forgotten: their bytes were never acknowledged.
            for c in chunks.iter().filter(|c| !c.done() && !is_live(c)) {
                sqlx::query("DELETE FROM upload_chunks WHERE video_id = $1 AND idx = $2 AND size IS NULL")
                    .bind(id.as_str()).bind(c.idx as i64).execute(&mut *tx).await.map_err(db_err)?;
            }
            sqlx::query("INSERT INTO upload_chunks (video_id, idx, range_from, range_to, claimed_by, claimed_at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(id.as_str()).bind(plan.idx as i64)
                .bind(plan.range.map(|r| r.0 as i64)).bind(plan.range.map(|r| r.1 as i64))
                .bind(instance).bind(now)
                .execute(&mut *tx).await.map_err(db_err)?;
            sqlx::query("UPDATE videos SET upload_mode = $2, parts_total = COALESCE($3, parts_total), \
                         filesize = COALESCE($4, filesize), ingest_state = 'uploading' WHERE id = $1")
                .bind(id.as_str()).bind(plan.mode.as_str())
                .bind(plan.parts_total.map(i64::from)).bind(plan.filesize.map(|f| f as i64))
                .execute(&mut *tx).await.map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(ChunkClaim { plan, session: video.ingest.session })
        })
    }

    async fn set_upload_session(&self, ws: &WorkspaceId, id: &VideoId, session: &str) -> CoreResult<String> {
        with_pool!(self, p => {
            sqlx::query("UPDATE videos SET upload_session = $2 WHERE id = $1 AND workspace_id = $3 AND upload_session IS NULL")
                .bind(id.as_str()).bind(session).bind(ws.as_str()).execute(p).await.map_err(db_err)?;
            let (s,): (Option<String>,) = sqlx::query_as("SELECT upload_session FROM videos WHERE id = $1 AND workspace_id = $2")
                .bind(id.as_str()).bind(ws.as_str()).fetch_one(p).await.map_err(db_err)?;
            s.ok_or_else(|| CoreError::Database("upload session vanished".into()))
        })
    }

    async fn release_chunk(&self, ws: &WorkspaceId, id: &VideoId, idx: u32, instance: &str) -> CoreResult<()> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            let (_, _) = lock_and_load!(tx, id, ws);
            sqlx::query("DELETE FROM upload_chunks WHERE video_id = $1 AND idx = $2 AND size IS NULL AND claimed_by = $3")
                .bind(id.as_str()).bind(idx as i64).bind(instance).execute(&mut *tx).await.map_err(db_err)?;
            // A refused first chunk must not lock the video into a mode or a total it never had.
            sqlx::query("UPDATE videos SET upload_mode = 'none', ingest_state = 'missing', parts_total = NULL, filesize = NULL \
                         WHERE id = $1 AND ingest_state = 'uploading' AND NOT EXISTS (SELECT 1 FROM upload_chunks WHERE video_id = $1)")
                .bind(id.as_str()).execute(&mut *tx).await.map_err(db_err)?;
            tx.commit().await.map_err(db_err)
        })
    }

    async fn commit_chunk(
        &self,
        ws: &WorkspaceId,
        id: &VideoId,
        idx: u32,
        size: u64,
        receipt: &str,
    ) -> CoreResult<ChunkCommit> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            let (_, _) = lock_and_load!(tx, id, ws);
            let r = sqlx::query("UPDATE upload_chunks SET size = $3, receipt = $4, claimed_by = NULL WHERE video_id = $1 AND idx = $2 AND size IS NULL")
                .bind(id.as_str()).bind(idx as i64).bind(size as i64).bind(receipt)
                .execute(&mut *tx).await.map_err(db_err)?;
            if r.rows_affected() == 0 {
                return Err(CoreError::Database(format!("the claim on chunk {idx} was lost").into()));
            }
            let (video, chunks): (Video, Vec<Chunk>) = lock_and_load!(tx, id, ws);
            let outcome = match upload::completed_size(&video.ingest, &chunks) {
                Some(total) if video.ingest.state == IngestState::Uploading => {
                    sqlx::query("UPDATE videos SET ingest_state = 'assembling', filesize = $2 WHERE id = $1")
                        .bind(id.as_str()).bind(total as i64).execute(&mut *tx).await.map_err(db_err)?;
                    // A complete upload expects no more parts: later parts without `videoId` on
                    // its token start a new video (TokenUploadRepo).
                    sqlx::query("DELETE FROM token_uploads WHERE video_id = $1")
                        .bind(id.as_str()).execute(&mut *tx).await.map_err(db_err)?;
                    ChunkCommit::Complete { chunks, size: total }
                }
                _ => ChunkCommit::Pending,
            };
            tx.commit().await.map_err(db_err)?;
            Ok(outcome)
        })
    }

    async fn check_whole(&self, ws: &WorkspaceId, id: &VideoId) -> CoreResult<Video> {
        let v = self.get_video(ws, id).await?;
        upload::check_source_open(v.source_kind, &v.ingest)?;
        if v.ingest.mode != UploadMode::None {
            return Err(RangeError::AlreadyInitiated.into());
        }
        Ok(v)
    }

    async fn finish_whole(&self, ws: &WorkspaceId, id: &VideoId, key: &str, size: u64, now: i64) -> CoreResult<()> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            let (video, _): (Video, Vec<Chunk>) = lock_and_load!(tx, id, ws);
            upload::check_source_open(video.source_kind, &video.ingest)?;
            if video.ingest.mode != UploadMode::None {
                return Err(RangeError::AlreadyInitiated.into());
            }
            sqlx::query("UPDATE videos SET upload_mode = 'whole', ingest_state = 'uploaded', source_key = $2, filesize = $3, \
                         updated_at = $4 WHERE id = $1")
                .bind(id.as_str()).bind(key).bind(size as i64).bind(now)
                .execute(&mut *tx).await.map_err(db_err)?;
            tx.commit().await.map_err(db_err)
        })
    }

    async fn chunks(&self, ws: &WorkspaceId, id: &VideoId) -> CoreResult<Vec<Chunk>> {
        // Joined from the video, so another workspace's video is no rows at all (NotFound) and
        // a video of this one without chunks is one row of NULLs.
        let sql = format!(
            "SELECT {} FROM videos v LEFT JOIN upload_chunks c ON c.video_id = v.id \
             WHERE v.id = $1 AND v.workspace_id = $2 ORDER BY c.idx",
            CHUNK_COLUMNS.split(", ").map(|c| format!("c.{c}")).collect::<Vec<_>>().join(", ")
        );
        let rows: Vec<OptionalChunkRow> = with_pool!(self, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(id.as_str()).bind(ws.as_str()).fetch_all(p).await.map_err(db_err))?;
        if rows.is_empty() {
            return Err(CoreError::NotFound);
        }
        Ok(rows.into_iter().filter_map(OptionalChunkRow::chunk).collect())
    }

    async fn source_ready(&self, ws: &WorkspaceId, id: &VideoId, key: &str, size: u64, now: i64) -> CoreResult<()> {
        let n = with_pool!(self, p => sqlx::query("UPDATE videos SET ingest_state = 'uploaded', source_key = $2, filesize = $3, \
                                           upload_session = NULL, updated_at = $4 WHERE id = $1 AND workspace_id = $5")
            .bind(id.as_str()).bind(key).bind(size as i64).bind(now).bind(ws.as_str())
            .execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
        found(n)
    }

    async fn set_probe(&self, ws: &WorkspaceId, id: &VideoId, probe: &ProbeOutcome) -> CoreResult<()> {
        let n = with_pool!(self, p => sqlx::query("UPDATE videos SET probe = $2 WHERE id = $1 AND workspace_id = $3")
            .bind(id.as_str()).bind(to_json(probe)).bind(ws.as_str())
            .execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
        found(n)
    }

    async fn videos_to_recover(&self) -> CoreResult<Vec<(WorkspaceId, VideoId)>> {
        let rows: Vec<(String, String)> = with_pool!(self, p => sqlx::query_as(
            "SELECT workspace_id, id FROM videos WHERE ingest_state = 'assembling' \
             OR (ingest_state = 'uploaded' AND probe IS NULL) \
             OR (ingest_state = 'uploaded' AND NOT EXISTS (SELECT 1 FROM video_qualities q WHERE q.video_id = videos.id)) OR (source_kind <> 'upload' AND ingest_state = 'missing' AND probe IS NULL)")
            .fetch_all(p).await.map_err(db_err))?;
        Ok(rows.into_iter().map(|(w, v)| (WorkspaceId::from_trusted(w), VideoId::from_trusted(v))).collect())
    }
}
