//! The job queue by lane (`LaneRepo`). The claim is the queue's claim (see `encoding.rs`) with the
//! lane as one more filter, served by the `(lane, status, run_at)` index.
//!
//! Waking other nodes: on PostgreSQL, queueing a job also sends a notification on a channel of
//! the schema, and every process running workers listens on it ([`Db::spawn_job_listener`]), so
//! an idle worker on another machine starts within milliseconds. SQLite has no such thing (and
//! its processes share one machine): their workers find jobs queued elsewhere by polling.

use async_trait::async_trait;
use vidi_core::model::Job;
use vidi_core::repo::{JobCount, JobTiming, LaneRepo};
use vidi_core::service::Service;
use vidi_core::{CoreError, CoreResult};

use crate::{Db, Pool, db_err, with_pool};

fn payload_of(text: &str) -> CoreResult<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| CoreError::Database(format!("job payload: {e}").into()))
}

#[async_trait]
impl LaneRepo for Db {
    async fn enqueue_job_in(
        &self,
        lane: &str,
        kind: &str,
        payload: &serde_json::Value,
        unique_key: &str,
        run_at: i64,
        max_attempts: u32,
    ) -> CoreResult<bool> {
        let id = format!("jb{}", vidi_core::id::ordered_body());
        let r = with_pool!(self, p => sqlx::query(
            "INSERT INTO jobs (id, lane, kind, payload, unique_key, status, run_at, max_attempts, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $6, $6) ON CONFLICT (unique_key) DO NOTHING")
            .bind(&id).bind(lane).bind(kind).bind(payload.to_string()).bind(unique_key).bind(run_at)
            .bind(max_attempts as i64)
            .execute(p).await.map(|r| r.rows_affected()).map_err(db_err))?;
        if r == 1
            && let Pool::Postgres(p) = &self.pool
        {
            // Best effort: a lost notification costs one poll interval, not the job.
            let sent =
                sqlx::query("SELECT pg_notify('vidi_jobs_' || current_schema(), $1)").bind(lane).execute(p).await;
            if let Err(e) = sent {
                tracing::warn!(error = %e, "could not notify other nodes of a queued job");
            }
        }
        Ok(r == 1)
    }

    async fn claim_job_in(&self, worker: &str, lane: &str, now: i64) -> CoreResult<Option<Job>> {
        // PostgreSQL skips rows other workers hold; SQLite has one writer at a time.
        let lock = match self.pool {
            Pool::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Pool::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE jobs SET status = 'running', locked_by = $1, attempts = attempts + 1, heartbeat_at = $2, \
             started_at = $2, updated_at = $2 WHERE id = (SELECT id FROM jobs WHERE lane = $3 AND status = 'queued' \
             AND run_at <= $2 ORDER BY run_at, id LIMIT 1{lock}) \
             RETURNING id, kind, payload, attempts, max_attempts, started_at, run_at"
        );
        let row: Option<(String, String, String, i64, i64, i64, i64)> = with_pool!(self, p =>
            sqlx::query_as(sqlx::AssertSqlSafe(sql.as_str())).bind(worker).bind(now).bind(lane)
                .fetch_optional(p).await.map_err(db_err))?;
        row.map(|(id, kind, payload, attempts, max, started_at, run_at)| {
            Ok(Job {
                id,
                kind,
                payload: payload_of(&payload)?,
                attempts: attempts as u32,
                max_attempts: max as u32,
                started_at,
                run_at,
            })
        })
        .transpose()
    }

    async fn job_timings(&self, lane: &str, since: i64) -> CoreResult<Vec<JobTiming>> {
        type Row = (String, String, String, String, i64, Option<i64>, String, Option<String>, i64);
        let rows: Vec<Row> = with_pool!(self, p => sqlx::query_as(
            "SELECT id, kind, lane, payload, run_at, started_at, status, locked_by, updated_at FROM jobs \
             WHERE lane = $1 AND created_at >= $2 ORDER BY created_at, id")
            .bind(lane).bind(since).fetch_all(p).await.map_err(db_err))?;
        rows.into_iter()
            .map(|(id, kind, lane, payload, run_at, started_at, status, worker, updated_at)| {
                // A job's last update is its end once it is done or failed for good.
                let ended_at = matches!(status.as_str(), "done" | "failed").then_some(updated_at);
                Ok(JobTiming {
                    id,
                    kind,
                    lane,
                    payload: payload_of(&payload)?,
                    run_at,
                    started_at,
                    status,
                    worker,
                    ended_at,
                })
            })
            .collect()
    }

    async fn job_counts(&self) -> CoreResult<Vec<JobCount>> {
        // Served by the `(lane, status, run_at)` index; finished jobs (most rows) are not read.
        let rows: Vec<(String, String, i64)> = with_pool!(self, p => sqlx::query_as(
            "SELECT lane, status, COUNT(*) FROM jobs WHERE status IN ('queued', 'running') GROUP BY lane, status \
             ORDER BY lane, status")
            .fetch_all(p).await.map_err(db_err))?;
        Ok(rows.into_iter().map(|(lane, status, n)| JobCount { lane, status, jobs: n.max(0) as u64 }).collect())
    }
}

impl Db {
    /// PostgreSQL: the service that calls `wake` whenever any node queues a job in this schema
    /// (LISTEN/NOTIFY), and once after each (re)connection, since notifications sent while it was
    /// away are lost. SQLite: `None` (workers poll).
    pub fn job_listener(&self, wake: impl Fn() + Send + Sync + 'static) -> Option<Service> {
        let Pool::Postgres(pool) = &self.pool else { return None };
        let pool = pool.clone();
        Some(Service::new("job-wakeups", move |shutdown| async move {
            while !shutdown.is_cancelled() {
                tokio::select! {
                    r = listen(&pool, &wake) => if let Err(e) = r {
                        tracing::warn!(error = %e, "job notifications lost; listening again in a second");
                    },
                    () = shutdown.cancelled() => break,
                }
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    () = shutdown.cancelled() => {}
                }
            }
            Ok(())
        }))
    }
}

async fn listen(pool: &sqlx::PgPool, wake: &(impl Fn() + Send + Sync)) -> Result<(), sqlx::Error> {
    let (schema,): (String,) = sqlx::query_as("SELECT current_schema()").fetch_one(pool).await?;
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(&format!("vidi_jobs_{schema}")).await?;
    wake();
    loop {
        listener.recv().await?;
        wake();
    }
}
