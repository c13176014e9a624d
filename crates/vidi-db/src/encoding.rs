//! Encoding state and the job queue. The queue is one table on both databases; only the claim
//! differs: PostgreSQL skips rows other workers hold (`FOR UPDATE SKIP LOCKED`), SQLite needs no
//! such clause because it has one writer at a time.

use vidi_core::id::VideoId;
use vidi_core::model::{Job, Quality};
use vidi_core::{CoreError, CoreResult};

use crate::{Arg, Db, Pool, bind_args, db_err, with_pool};

impl Db {
    pub(crate) async fn plan_qualities_impl(&self, id: &VideoId, qualities: &[Quality]) -> CoreResult<()> {
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

    pub(crate) async fn set_quality_status_impl(
        &self,
        id: &VideoId,
        kind: &str,
        quality: &str,
        status: &str,
    ) -> CoreResult<()> {
        with_pool!(self, p => sqlx::query("UPDATE video_qualities SET status = $4 WHERE video_id = $1 AND kind = $2 AND quality = $3")
            .bind(id.as_str()).bind(kind).bind(quality).bind(status).execute(p).await.map(|_| ()).map_err(db_err))
    }

    pub(crate) async fn qualities_impl(&self, id: &VideoId) -> CoreResult<Vec<Quality>> {
        // Ordered by kind, then by height (the quality names sort wrongly as text: 1080p < 240p).
        let rows: Vec<(String, String, String)> = with_pool!(self, p => sqlx::query_as(
            "SELECT kind, quality, status FROM video_qualities WHERE video_id = $1 \
             ORDER BY kind, LENGTH(quality), quality")
            .bind(id.as_str()).fetch_all(p).await.map_err(db_err))?;
        Ok(rows.into_iter().map(|(kind, quality, status)| Quality { kind, quality, status }).collect())
    }

    pub(crate) async fn set_video_field_impl(
        &self,
        id: &VideoId,
        sql: &'static str,
        value: Option<&str>,
    ) -> CoreResult<()> {
        with_pool!(self, p => sqlx::query(sql).bind(id.as_str()).bind(value).execute(p).await.map(|_| ()).map_err(db_err))
    }

    pub(crate) async fn set_playable_impl(&self, id: &VideoId, playable: bool) -> CoreResult<()> {
        with_pool!(self, p => sqlx::query("UPDATE videos SET playable = $2 WHERE id = $1")
            .bind(id.as_str()).bind(playable).execute(p).await.map(|_| ()).map_err(db_err))
    }

    pub(crate) async fn mint_private_tokens_impl(
        &self,
        tokens: &[(&VideoId, &str)],
        now: i64,
        expires_at: i64,
    ) -> CoreResult<()> {
        if tokens.is_empty() {
            return Ok(());
        }
        // Sweeping expired tokens on every read doubled the statements of a private video's
        // GET; once a minute per process keeps the table as small.
        let last = self.token_sweep_at.load(std::sync::atomic::Ordering::Relaxed);
        if now - last > 60_000
            && self
                .token_sweep_at
                .compare_exchange(last, now, std::sync::atomic::Ordering::Relaxed, std::sync::atomic::Ordering::Relaxed)
                .is_ok()
        {
            with_pool!(self, p => sqlx::query("DELETE FROM private_tokens WHERE expires_at < $1")
                .bind(now).execute(p).await.map(|_| ()).map_err(db_err))?;
        }
        let mut sql = String::from("INSERT INTO private_tokens (token, video_id, expires_at) VALUES ");
        let mut args = Vec::with_capacity(tokens.len() * 2 + 1);
        args.push(Arg::Int(expires_at));
        for (i, (video, token)) in tokens.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("(${}, ${}, $1)", args.len() + 1, args.len() + 2));
            args.push(Arg::Text(token.to_string()));
            args.push(Arg::Text(video.as_str().to_string()));
        }
        // Only placeholders are built into the text; every value is bound.
        with_pool!(self, p => bind_args!(sqlx::query(sqlx::AssertSqlSafe(sql.as_str())), &args)
            .execute(p).await.map(|_| ()).map_err(db_err))
    }

    pub(crate) async fn admit_private_impl(
        &self,
        id: &VideoId,
        token: &str,
        session: &str,
        now: i64,
        session_ttl: i64,
    ) -> CoreResult<bool> {
        // The common case, a token already bound, is one read; binding is one conditional write,
        // so two first requests racing bind the token to exactly one session.
        let row: Option<(i64, Option<String>)> = with_pool!(self, p => sqlx::query_as(
            "SELECT expires_at, session FROM private_tokens WHERE token = $1 AND video_id = $2")
            .bind(token).bind(id.as_str()).fetch_optional(p).await.map_err(db_err))?;
        match row {
            None => Ok(false),
            Some((exp, _)) if exp < now => Ok(false),
            Some((_, Some(bound))) => Ok(bound == session),
            Some((_, None)) => {
                let r = with_pool!(self, p => sqlx::query(
                    "UPDATE private_tokens SET session = $3, expires_at = $4 \
                     WHERE token = $1 AND video_id = $2 AND session IS NULL")
                    .bind(token).bind(id.as_str()).bind(session).bind(now + session_ttl)
                    .execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
                if r == 1 {
                    return Ok(true);
                }
                let bound: Option<(Option<String>,)> = with_pool!(self, p => sqlx::query_as(
                    "SELECT session FROM private_tokens WHERE token = $1")
                    .bind(token).fetch_optional(p).await.map_err(db_err))?;
                Ok(bound.and_then(|(s,)| s).is_some_and(|s| s == session))
            }
        }
    }

    pub(crate) async fn enqueue_job_impl(
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

    pub(crate) async fn claim_job_impl(
        &self,
        worker: &str,
        now: i64,
        key_prefix: Option<&str>,
    ) -> CoreResult<Option<Job>> {
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
             updated_at = $2 WHERE id = ({pick}) RETURNING id, kind, payload, attempts, max_attempts, started_at"
        );
        let like = key_prefix.map(|k| format!("{k}%"));
        let row: Option<(String, String, String, i64, i64, i64)> = with_pool!(self, p => {
            let q = sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(worker).bind(now);
            let q = match &like { Some(l) => q.bind(l.clone()), None => q };
            q.fetch_optional(p).await.map_err(db_err)
        })?;
        row.map(|(id, kind, payload, attempts, max, started_at)| {
            Ok(Job {
                id,
                kind,
                payload: serde_json::from_str(&payload)
                    .map_err(|e| CoreError::Database(format!("job payload: {e}").into()))?,
                attempts: attempts as u32,
                max_attempts: max as u32,
                started_at,
            })
        })
        .transpose()
    }

    pub(crate) async fn heartbeat_job_impl(&self, id: &str, worker: &str, now: i64) -> CoreResult<bool> {
        let n = with_pool!(self, p => sqlx::query("UPDATE jobs SET heartbeat_at = $3 WHERE id = $1 AND locked_by = $2 AND status = 'running'")
            .bind(id).bind(worker).bind(now).execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
        Ok(n == 1)
    }

    pub(crate) async fn complete_job_impl(&self, id: &str, worker: &str, now: i64) -> CoreResult<()> {
        with_pool!(self, p => sqlx::query(
            "UPDATE jobs SET status = 'done', unique_key = NULL, locked_by = NULL, updated_at = $3 WHERE id = $1 AND locked_by = $2")
            .bind(id).bind(worker).bind(now).execute(p).await.map(|_| ()).map_err(db_err))
    }

    pub(crate) async fn fail_job_impl(
        &self,
        id: &str,
        worker: &str,
        error: &str,
        retry_at: Option<i64>,
        now: i64,
    ) -> CoreResult<()> {
        with_pool!(self, p => match retry_at {
            Some(at) => sqlx::query("UPDATE jobs SET status = 'queued', run_at = $4, last_error = $3, locked_by = NULL, updated_at = $5 \
                                     WHERE id = $1 AND locked_by = $2")
                .bind(id).bind(worker).bind(error).bind(at).bind(now).execute(p).await,
            None => sqlx::query("UPDATE jobs SET status = 'failed', unique_key = NULL, last_error = $3, locked_by = NULL, updated_at = $4 \
                                 WHERE id = $1 AND locked_by = $2")
                .bind(id).bind(worker).bind(error).bind(now).execute(p).await,
        }.map(|_| ()).map_err(db_err))
    }

    pub(crate) async fn release_job_impl(&self, id: &str, worker: &str, now: i64) -> CoreResult<()> {
        // The claim counted an attempt; a job stopped by a shutdown did not fail, so it is taken
        // back, and a job released by every deploy never runs out of attempts.
        with_pool!(self, p => sqlx::query(
            "UPDATE jobs SET status = 'queued', locked_by = NULL, run_at = $3, updated_at = $3, \
             attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END \
             WHERE id = $1 AND locked_by = $2 AND status = 'running'")
            .bind(id).bind(worker).bind(now).execute(p).await.map(|_| ()).map_err(db_err))
    }

    pub(crate) async fn reap_jobs_impl(&self, stale_before: i64, now: i64) -> CoreResult<u64> {
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

    pub(crate) async fn job_state_impl(&self, id: &str) -> CoreResult<Option<(String, u32, Option<String>)>> {
        let row: Option<(String, i64, Option<String>)> = with_pool!(self, p => sqlx::query_as(
            "SELECT status, attempts, last_error FROM jobs WHERE id = $1 OR unique_key = $1 ORDER BY created_at DESC LIMIT 1")
            .bind(id).fetch_optional(p).await.map_err(db_err))?;
        Ok(row.map(|(s, a, e)| (s, a as u32, e)))
    }
}
