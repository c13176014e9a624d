//! Vidi's metadata store: each capability trait of [`vidi_core::Repo`] implemented once for [`Db`],
//! in a module of its own (`auth`, `videos`, `uploads`, `encoding`, `events`, `private`, `jobs`),
//! with the same portable SQL on SQLite (the embedded default) or PostgreSQL (for many nodes).
//! Each dialect has its own migrations folder with identical version numbers. The few places where
//! the dialects differ are marked where they occur.

mod analytics;
mod appends;
mod auth;
mod broadcasts;
mod encoding;
mod events;
mod inline;
mod jobs;
mod lanes;
mod live_streams;
mod players;
mod private;
mod renditions;
mod token_uploads;
mod tracks;
mod upload_tokens;
mod uploads;
mod videos;
mod webhooks;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use vidi_core::error::{DbError, DbErrorKind};
use vidi_core::{CoreError, CoreResult};

pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The repository. Cheap to share behind an `Arc`.
pub struct Db {
    pool: Pool,
    /// When this process last swept expired private tokens (unix ms).
    token_sweep_at: std::sync::atomic::AtomicI64,
    /// SQLite in a file: the hottest point reads run on the calling task (see `inline`).
    inline: Option<inline::InlineReader>,
    /// The months whose partition of player events this process made sure of (PostgreSQL).
    event_partitions: std::sync::Mutex<std::collections::HashSet<String>>,
    /// The collector's batches, written in groups (see `appends`): SQLite in a file has a writer
    /// thread, PostgreSQL a queue.
    sqlite_appends: Option<appends::SqliteAppends>,
    pg_appends: appends::PgAppends,
    /// SQLite in memory (no file for the writer thread to open): the collector's batches take
    /// turns here before they write, rather than in SQLite's busy handler, which sleeps (1, 2,
    /// 5, 10… ms) and retries while the one writer lock is held.
    player_appends: tokio::sync::Mutex<()>,
}

/// Runs the same body against whichever pool is configured. The body is compiled once per
/// dialect, so a query that does not type-check on both does not compile.
macro_rules! with_pool {
    ($db:expr, $p:ident => $body:expr) => {
        match &$db.pool {
            $crate::Pool::Sqlite($p) => $body,
            $crate::Pool::Postgres($p) => $body,
        }
    };
}
pub(crate) use with_pool;

pub(crate) fn db_err(e: sqlx::Error) -> CoreError {
    match e {
        sqlx::Error::RowNotFound => CoreError::NotFound,
        // The database's disk is full: SQLITE_FULL (13, also the primary code of any extended
        // one), or PostgreSQL's `disk_full` (53100). Not an outage: it lasts until the operator
        // frees space, and the API says so (507).
        sqlx::Error::Database(d) if is_full(d.as_ref()) => CoreError::Full(d.message().to_string()),
        e => {
            let kind = match &e {
                sqlx::Error::Database(d) if d.is_unique_violation() => DbErrorKind::UniqueViolation,
                sqlx::Error::Database(d) if d.is_foreign_key_violation() => DbErrorKind::ForeignKeyViolation,
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => DbErrorKind::Unavailable,
                _ => DbErrorKind::Other,
            };
            CoreError::Database(DbError { kind, message: e.to_string() })
        }
    }
}

/// Whether a database error is a full disk. SQLite's extended codes carry the primary one in
/// their low byte; PostgreSQL's are SQLSTATEs, which only look numeric.
fn is_full(d: &(dyn sqlx::error::DatabaseError + 'static)) -> bool {
    let code = d.code();
    if d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some() {
        return code.as_deref() == Some("53100");
    }
    d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
        && code.and_then(|c| c.parse::<i64>().ok()).is_some_and(|n| n & 0xff == 13)
}

/// `NotFound` when a statement scoped to a workspace changed no row: the row is another
/// workspace's, or gone.
pub(crate) fn found(rows_affected: u64) -> CoreResult<()> {
    if rows_affected == 0 { Err(CoreError::NotFound) } else { Ok(()) }
}

/// A value bound into a dynamically built query.
pub(crate) enum Arg {
    Text(String),
    Int(i64),
}

macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                $crate::Arg::Text(s) => q.bind(s.clone()),
                $crate::Arg::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}
pub(crate) use bind_args;

impl Db {
    /// Opens `url` (`postgres://…`), or the SQLite file `vidi.db` in `data_dir` when `url` is empty.
    /// `schema` (PostgreSQL only) puts every table in that schema, created if missing, so several
    /// Vidi instances or test runs can share one database.
    pub async fn open(url: Option<&str>, data_dir: &Path, schema: Option<&str>) -> CoreResult<Db> {
        match url.filter(|u| !u.is_empty()) {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                let mut opts = PgConnectOptions::from_str(u).map_err(db_err)?;
                if let Some(s) = schema {
                    if !s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                        return Err(CoreError::Database(format!("bad schema name {s:?}").into()));
                    }
                    let boot = PgPool::connect_with(opts.clone()).await.map_err(db_err)?;
                    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA IF NOT EXISTS {s}")))
                        .execute(&boot)
                        .await
                        .map_err(db_err)?;
                    boot.close().await;
                    opts = opts.options([("search_path", s)]);
                }
                let pool = PgPoolOptions::new()
                    .max_connections(16)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await
                    .map_err(db_err)?;
                Ok(Db {
                    pool: Pool::Postgres(pool),
                    token_sweep_at: Default::default(),
                    inline: None,
                    event_partitions: Default::default(),
                    sqlite_appends: None,
                    pg_appends: Default::default(),
                    player_appends: Default::default(),
                })
            }
            Some(u) if u.starts_with("sqlite:") => {
                Self::open_sqlite(SqliteConnectOptions::from_str(u).map_err(db_err)?).await
            }
            Some(u) => Err(CoreError::Database(format!("unsupported database URL {u:?}").into())),
            None => {
                std::fs::create_dir_all(data_dir)?;
                Self::open_sqlite(SqliteConnectOptions::new().filename(data_dir.join("vidi.db"))).await
            }
        }
    }

    async fn open_sqlite(opts: SqliteConnectOptions) -> CoreResult<Db> {
        // WAL lets readers run beside the one writer; the busy timeout makes writers queue instead
        // of failing; NORMAL sync is durable across process crashes (WAL is fsynced at checkpoints
        // and on commit of the WAL frame), which is the failure our upload guarantees cover.
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let file = opts.get_filename().to_path_buf();
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            // A write that meets a full disk (SQLITE_FULL) inside a transaction makes SQLite roll
            // the whole transaction back itself; sqlx's ROLLBACK on drop then fails, and the
            // connection still counts itself inside one. Its next `begin` would be a SAVEPOINT
            // that a rollback leaves open, holding the write lock: every other writer would wait
            // out its busy timeout ("database is locked") long after space was freed. Such a
            // connection is closed rather than reused. The check costs nothing on the usual path:
            // only a connection released inside a transaction waits for its rollback to run.
            .after_release(|conn, _| {
                Box::pin(async move {
                    use sqlx::Connection;
                    if !conn.is_in_transaction() {
                        return Ok(true);
                    }
                    conn.ping().await?;
                    Ok(!conn.is_in_transaction())
                })
            })
            .connect_with(opts)
            .await
            .map_err(db_err)?;
        // Connecting created the file; an in-memory database has none, and no inline reads.
        let inline = file.is_file().then(|| inline::InlineReader::new(&file));
        let sqlite_appends = file.is_file().then(|| appends::SqliteAppends::new(&file));
        Ok(Db {
            pool: Pool::Sqlite(pool),
            token_sweep_at: Default::default(),
            inline,
            event_partitions: Default::default(),
            sqlite_appends,
            pg_appends: Default::default(),
            player_appends: Default::default(),
        })
    }

    /// Applies pending migrations (idempotent; every start does it).
    pub async fn migrate(&self) -> CoreResult<()> {
        let r = match &self.pool {
            Pool::Sqlite(p) => sqlx::migrate!("migrations/sqlite").run(p).await,
            Pool::Postgres(p) => sqlx::migrate!("migrations/postgres").run(p).await,
        };
        r.map_err(|e| CoreError::Database(format!("migration failed: {e}").into()))
    }

    /// The database server's clock (unix ms), PostgreSQL only: `vidi doctor` compares it with this
    /// machine's, since nodes that disagree on time disagree on leases, heartbeats and expiries.
    /// `None` on SQLite, whose clock is this machine's.
    pub async fn server_time_ms(&self) -> CoreResult<Option<i64>> {
        let Pool::Postgres(p) = &self.pool else { return Ok(None) };
        let (ms,): (i64,) = sqlx::query_as("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint")
            .fetch_one(p)
            .await
            .map_err(db_err)?;
        Ok(Some(ms))
    }

    pub async fn close(&self) {
        with_pool!(self, p => p.close().await)
    }
}

#[cfg(test)]
mod tests {
    /// Both dialects must define the same migrations, version for version.
    #[test]
    fn migration_sets_match() {
        let list = |d: &str| {
            let mut v: Vec<String> = std::fs::read_dir(format!("{}/migrations/{d}", env!("CARGO_MANIFEST_DIR")))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(list("sqlite"), list("postgres"));
    }
}
