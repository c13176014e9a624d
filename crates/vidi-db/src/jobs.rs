//! The job queue: one table on both databases; only the claim differs: PostgreSQL skips rows
//! other workers hold (`FOR UPDATE SKIP LOCKED`), SQLite needs no such clause because it has one
//! writer at a time.

use async_trait::async_trait;
use vidi_core::id::{VideoId, WorkspaceId};
use vidi_core::model::Job;
use vidi_core::repo::JobRepo;
use vidi_core::{CoreError, CoreResult};

use crate::{Db, Pool, db_err, with_pool};

#[async_trait]
impl JobRepo for Db {
    async fn enqueue_job(
        &self,
        kind: &str,
        payload: &serde_json::Value,
        unique_key: &str,
        run_at: i64,
        max_attempts: u32,
    ) -> CoreResult<bool> {
        let id = format!("jb{}", vidi_core::id::ordered_body());
        let r = with_pool!(self, p => sqlx::query(
            "INSERT INTO jobs (id, kind, payload, unique_key, status, run_at, max_attempts, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, 'queued', $5, $6, $5, $5) ON CONFLICT (unique_key) DO NOTHING")
            .bind(&id).bind(kind).bind(payload.to_string()).bind(unique_key).bind(run_at).bind(max_attempts as i64)
            .execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
        Ok(r == 1)
    }

    async fn claim_job(&self, worker: &str, now: i64) -> CoreResult<Option<Job>> {
        self.claim(worker, now, None).await
    }

    async fn claim_job_keyed(&self, worker: &str, key_prefix: &str, now: i64) -> CoreResult<Option<Job>> {
        self.claim(worker, now, Some(key_prefix)).await
    }

    async fn heartbeat_job(&self, id: &str, worker: &str, now: i64) -> CoreResult<bool> {
        let n = with_pool!(self, p => sqlx::query("UPDATE jobs SET heartbeat_at = $3 WHERE id = $1 AND locked_by = $2 AND status = 'running'")
            .bind(id).bind(worker).bind(now).execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
        Ok(n == 1)
    }

    // A job that ended (done, or failed for good) keeps `locked_by`: the worker that ran its last
    // attempt, whose name says on which node (`vidi_worker::worker_name`). Only `status` says
    // whether a job is held; nothing claims, beats or reaps a job that is not queued or running.
    async fn complete_job(&self, id: &str, worker: &str, now: i64) -> CoreResult<()> {
        with_pool!(self, p => sqlx::query(
            "UPDATE jobs SET status = 'done', unique_key = NULL, updated_at = $3 WHERE id = $1 AND locked_by = $2")
            .bind(id).bind(worker).bind(now).execute(p).await.map(|_| ()).map_err(db_err))
    }

    async fn fail_job(&self, id: &str, worker: &str, error: &str, retry_at: Option<i64>, now: i64) -> CoreResult<()> {
        with_pool!(self, p => match retry_at {
            Some(at) => sqlx::query("UPDATE jobs SET status = 'queued', run_at = $4, last_error = $3, locked_by = NULL, updated_at = $5 \
                                     WHERE id = $1 AND locked_by = $2")
                .bind(id).bind(worker).bind(error).bind(at).bind(now).execute(p).await,
            None => sqlx::query("UPDATE jobs SET status = 'failed', unique_key = NULL, last_error = $3, updated_at = $4 \
                                 WHERE id = $1 AND locked_by = $2")
                .bind(id).bind(worker).bind(error).bind(now).execute(p).await,
        }.map(|_| ()).map_err(db_err))
    }

    async fn release_job(&self, id: &str, worker: &str, now: i64) -> CoreResult<()> {
        // The claim counted an attempt; a job stopped by a shutdown did not fail, so it is taken
        // back, and a job released by every deploy never runs out of attempts.
        with_pool!(self, p => sqlx::query(
            "UPDATE jobs SET status = 'queued', locked_by = NULL, run_at = $3, updated_at = $3, \
             attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
             WHERE id = $1 AND locked_by = $2 AND status = 'running'")
            .bind(id).bind(worker).bind(now).execute(p).await.map(|_| ()).map_err(db_err))
    }

    async fn postpone_job(&self, id: &str, worker: &str, error: &str, run_at: i64, now: i64) -> CoreResult<()> {
        with_pool!(self, p => sqlx::query(
            "UPDATE jobs SET status = 'queued', locked_by = NULL, run_at = $4, last_error = $3, updated_at = $5, \
             attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
             WHERE id = $1 AND locked_by = $2 AND status = 'running'")
            .bind(id).bind(worker).bind(error).bind(run_at).bind(now).execute(p).await.map(|_| ()).map_err(db_err))
    }

    async fn reap_jobs(&self, stale_before: i64, now: i64) -> CoreResult<u64> {
        with_pool!(self, p => {
            let mut tx = p.begin().await.map_err(db_err)?;
            // Out of attempts: failed for good, so a poison job cannot loop forever.
            sqlx::query("UPDATE jobs SET status = 'failed', unique_key = NULL, locked_by = NULL, \
                         last_error = COALESCE(last_error, 'worker lost'), updated_at = $2 \
                         WHERE status = 'running' AND heartbeat_at < $1 AND attempts >= max_attempts")
                .bind(stale_before).bind(now).execute(&mut *tx).await.map_err(db_err)?;
            let r = sqlx::query("UPDATE jobs SET status = 'queued', locked_by = NULL, run_at = $2, updated_at = $2 \
                                 WHERE status = 'running' AND heartbeat_at < $1")
                .bind(stale_before).bind(now).execute(&mut *tx).await.map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(r.rows_affected())
        })
    }

    async fn job_state(&self, id: &str) -> CoreResult<Option<(String, u32, Option<String>)>> {
        let row: Option<(String, i64, Option<String>)> = with_pool!(self, p => sqlx::query_as(
            "SELECT status, attempts, last_error FROM jobs WHERE id = $1 OR unique_key = $1 ORDER BY created_at DESC LIMIT 1")
            .bind(id).fetch_optional(p).await.map_err(db_err))?;
        Ok(row.map(|(s, a, e)| (s, a as u32, e)))
    }

    async fn workspace_of_video(&self, id: &VideoId) -> CoreResult<WorkspaceId> {
        let (ws,): (String,) = with_pool!(self, p => sqlx::query_as("SELECT workspace_id FROM videos WHERE id = $1")
            .bind(id.as_str()).fetch_one(p).await.map_err(db_err))?;
        Ok(WorkspaceId::from_trusted(ws))
    }
}

impl Db {
    /// Takes the oldest due job, of those whose unique key starts with `key_prefix` if given.
    async fn claim(&self, worker: &str, now: i64, key_prefix: Option<&str>) -> CoreResult<Option<Job>> {
        // Keys are made of ids and ':' (no LIKE wildcards), so a prefix is matched literally.
        let keyed = if key_prefix.is_some() { " AND unique_key LIKE $3" } else { "" };
        let pick = match self.pool {
            Pool::Postgres(_) => format!(
                "SELECT id FROM jobs WHERE status = 'queued' AND run_at <= $2{keyed} ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
            ),
            Pool::Sqlite(_) => {
                format!(
                    "SELECT id FROM jobs WHERE status = 'queued' AND run_at <= $2{keyed} ORDER BY run_at, id LIMIT 1"
                )
            }
        };
        let sql = format!(
            "UPDATE jobs SET status = 'running', locked_by = $1, attempts = attempts + 1, heartbeat_at = $2, started_at = $2, \
             updated_at = $2 WHERE id = ({pick}) RETURNING id, kind, payload, attempts, max_attempts, started_at, run_at"
        );
        let like = key_prefix.map(|k| format!("{k}%"));
        let row: Option<(String, String, String, i64, i64, i64, i64)> = with_pool!(self, p => {
            let q = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(worker).bind(now);
            let q = match &like { Some(l) => q.bind(l.clone()), None => q };
            q.fetch_optional(p).await.map_err(db_err)
        })?;
        row.map(|(id, kind, payload, attempts, max, started_at, run_at)| {
            Ok(Job {
                id,
                kind,
                payload: serde_json::from_str(&payload)
                    .map_err(|e| CoreError::Database(format!("job payload: {e}").into()))?,
                attempts: attempts as u32,
                max_attempts: max as u32,
                started_at,
                run_at,
            })
        })
        .transpose()
    }
}
