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

    /// Applies the migrations up to `last` only: a test writes rows as an older schema stored
    /// them, then runs the rest (`migrate`).
    #[cfg(test)]
    pub(crate) async fn migrate_to(&self, last: i64) -> CoreResult<()> {
        fn upto(mut m: sqlx::migrate::Migrator, last: i64) -> sqlx::migrate::Migrator {
            m.migrations = m.migrations.iter().filter(|m| m.version <= last).cloned().collect::<Vec<_>>().into();
            m
        }
        let r = match &self.pool {
            Pool::Sqlite(p) => upto(sqlx::migrate!("migrations/sqlite"), last).run(p).await,
            Pool::Postgres(p) => upto(sqlx::migrate!("migrations/postgres"), last).run(p).await,
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

/// The databases a unit test runs on: SQLite in a file of a fresh folder, and PostgreSQL in a
/// fresh schema when `VIDI_TEST_PG_URL` is set (as the integration tests).
#[cfg(test)]
pub(crate) mod test_db {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::Db;

    pub(crate) struct TestDb {
        pub(crate) db: Db,
        pub(crate) label: &'static str,
        dir: Option<PathBuf>,
        pg: Option<(String, String)>,
    }

    /// Each database, not yet migrated. `name`: letters, digits and `_`.
    pub(crate) async fn all(name: &str) -> Vec<TestDb> {
        static N: AtomicU32 = AtomicU32::new(0);
        let unique = format!("vidi_db_{name}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
        let dir = std::env::temp_dir().join(&unique);
        let _ = std::fs::remove_dir_all(&dir);
        let sqlite = Db::open(None, &dir, None).await.expect("SQLite opens");
        let mut all = vec![TestDb { db: sqlite, label: "sqlite", dir: Some(dir), pg: None }];
        if let Some(url) = std::env::var("VIDI_TEST_PG_URL").ok().filter(|u| !u.is_empty()) {
            let schema = format!("t_{unique}");
            let db = Db::open(Some(&url), &std::env::temp_dir(), Some(&schema)).await.expect("PostgreSQL opens");
            all.push(TestDb { db, label: "postgres", dir: None, pg: Some((url, schema)) });
        } else {
            eprintln!("SKIPPED on PostgreSQL: VIDI_TEST_PG_URL is not set");
        }
        all
    }

    impl TestDb {
        /// SQLite's file (the writer thread's and the pool's).
        pub(crate) fn sqlite_file(&self) -> Option<PathBuf> {
            self.dir.as_ref().map(|d| d.join("vidi.db"))
        }

        /// Closes the database and removes its folder or schema.
        pub(crate) async fn remove(self) {
            self.db.close().await;
            if let Some(dir) = self.dir {
                let _ = std::fs::remove_dir_all(dir);
            }
            if let Some((url, schema)) = self.pg {
                let pool = sqlx::PgPool::connect(&url).await.expect("PostgreSQL answers");
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
                    .execute(&pool)
                    .await
                    .expect("the test's schema is dropped");
                pool.close().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use vidi_core::analytics::{Agent, EventKind, PlayerEvent, PlayerSession, Referrer};
    use vidi_core::id::{MediaId, PlayerSessionId, VideoId, WorkspaceId};
    use vidi_core::model::PageRequest;
    use vidi_core::repo::AnalyticsRepo;

    use super::{Pool, test_db};

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

    fn session(id: &str, video: &str, loaded_at: i64) -> PlayerSession {
        let unknown = || "unknown".to_string();
        PlayerSession {
            id: PlayerSessionId::from_trusted(id.into()),
            workspace_id: WorkspaceId::from_trusted("wsmigration".into()),
            media: MediaId::Video(VideoId::from_trusted(video.into())),
            loaded_at,
            ended_at: loaded_at,
            metadata: vec![],
            referrer: Referrer { url: None, medium: unknown(), source: unknown(), search_term: unknown() },
            agent: Agent {
                device_type: unknown(),
                device_vendor: unknown(),
                device_model: unknown(),
                os_name: unknown(),
                os_shortname: unknown(),
                os_version: unknown(),
                client_name: unknown(),
                client_version: unknown(),
                client_type: unknown(),
            },
            country: unknown(),
            city: None,
            viewer: None,
        }
    }

    fn event(session: &str, seq: i64, kind: EventKind, emitted_at: i64) -> PlayerEvent {
        PlayerEvent {
            session_id: PlayerSessionId::from_trusted(session.into()),
            seq,
            kind,
            emitted_at,
            at: Some(seq * 10),
            from: None,
            to: None,
            value: (kind == EventKind::Rebuffer).then_some(250),
            height: None,
            bitrate: None,
        }
    }

    /// Migration 0021 gives `player_events` the key (session_id, emitted_at, seq) and drops the
    /// index that duplicated it (on SQLite, a table rebuilt WITHOUT ROWID): the events written
    /// under the old key, through the collector's own path, are all read back after it, in
    /// order, and a batch sent again is still stored once.
    #[tokio::test]
    async fn player_events_written_before_the_key_migration_are_read_after_it() {
        // 2026-11-30 23:59:59 and 2026-12-01 00:00:01 UTC: on PostgreSQL, two monthly partitions.
        let (nov, dec) = (1_796_083_199_000, 1_796_083_201_000);
        for t in test_db::all("events_key").await {
            let (db, label) = (&t.db, t.label);
            db.migrate_to(20).await.unwrap();
            let video = MediaId::Video(VideoId::from_trusted("vimigration".into()));
            let (a, b) = ("psmigrationa", "psmigrationb");
            db.insert_player_session(&session(a, video.as_str(), nov - 60_000)).await.unwrap();
            db.insert_player_session(&session(b, video.as_str(), nov - 30_000)).await.unwrap();
            // The player's numbering is not the order of time (a beacon's seq restarts after a
            // reload); the old key allowed one seq at two times, so must the new one.
            let before_a = vec![
                event(a, 0, EventKind::Ready, nov - 50_000),
                event(a, 1, EventKind::Play, nov),
                event(a, 2, EventKind::Rebuffer, nov + 500),
                event(a, 3, EventKind::Pause, dec),
                event(a, 1, EventKind::Resume, dec + 1000),
            ];
            let before_b = vec![event(b, 0, EventKind::Play, nov - 20_000), event(b, 1, EventKind::End, dec)];
            assert_eq!(db.append_player_events(&video, before_a.clone()).await.unwrap(), 5, "{label}");
            assert_eq!(db.append_player_events(&video, before_b.clone()).await.unwrap(), 2, "{label}");

            db.migrate().await.unwrap();

            let ws = WorkspaceId::from_trusted("wsmigration".into());
            let page = PageRequest { page: 1, size: 100 };
            let id = |s: &str| PlayerSessionId::from_trusted(s.into());
            let (events, total) = db.list_player_events(&ws, &id(a), page).await.unwrap();
            // The standard events in time order (the rebuffer is a quality-of-experience one).
            let standard: Vec<_> = before_a.iter().filter(|e| e.kind != EventKind::Rebuffer).cloned().collect();
            assert_eq!((events, total), (standard, 4), "{label}");
            assert_eq!(db.list_player_events(&ws, &id(b), page).await.unwrap(), (before_b.clone(), 2), "{label}");
            // Every row, every column (`endedAt`, the last event's time, comes from them too).
            let (sessions, _) = db
                .list_player_sessions(
                    &ws,
                    &video,
                    vidi_core::analytics::Period::parse("2026-11", false).unwrap(),
                    &[],
                    page,
                )
                .await
                .unwrap();
            let ended: Vec<_> = sessions.iter().map(|s| (s.id.as_str().to_string(), s.ended_at)).collect();
            assert_eq!(ended, vec![(b.to_string(), dec), (a.to_string(), dec + 1000)], "{label}");
            let summary = db
                .qoe_summary(&ws, &video, vidi_core::analytics::Period::parse("2026-11", false).unwrap())
                .await
                .unwrap();
            assert_eq!((summary.sessions, summary.rebuffers, summary.rebuffer_ms), (2, 1, 250), "{label}");

            // The same batch again is stored once; a new event after it is stored.
            assert_eq!(db.append_player_events(&video, before_a.clone()).await.unwrap(), 0, "{label}");
            let later = event(a, 4, EventKind::End, dec + 2000);
            assert_eq!(db.append_player_events(&video, vec![before_a[0].clone(), later]).await.unwrap(), 1, "{label}");
            assert_eq!(db.list_player_events(&ws, &id(a), page).await.unwrap().1, 5, "{label}");

            // The key's new order, and the duplicate index gone.
            let (key, indexes): (String, Vec<String>) = match &db.pool {
                Pool::Sqlite(p) => {
                    let (sql,): (String,) =
                        sqlx::query_as("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'player_events'")
                            .fetch_one(p)
                            .await
                            .unwrap();
                    let idx: Vec<(String,)> = sqlx::query_as(
                        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'player_events' \
                         AND sql IS NOT NULL ORDER BY name",
                    )
                    .fetch_all(p)
                    .await
                    .unwrap();
                    (sql, idx.into_iter().map(|(n,)| n).collect())
                }
                Pool::Postgres(p) => {
                    let (def,): (String,) = sqlx::query_as(
                        "SELECT pg_get_constraintdef(oid) FROM pg_constraint \
                         WHERE conrelid = 'player_events'::regclass AND contype = 'p'",
                    )
                    .fetch_one(p)
                    .await
                    .unwrap();
                    let idx: Vec<(String,)> = sqlx::query_as(
                        "SELECT indexname::text FROM pg_indexes WHERE tablename = 'player_events' \
                         AND schemaname = current_schema() AND indexname <> 'player_events_pkey' ORDER BY 1",
                    )
                    .fetch_all(p)
                    .await
                    .unwrap();
                    (def, idx.into_iter().map(|(n,)| n).collect())
                }
            };
            assert!(key.contains("PRIMARY KEY (session_id, emitted_at, seq)"), "{label}: {key}");
            assert_eq!(indexes, vec!["player_events_by_media".to_string()], "{label}");
            t.remove().await;
        }
    }
}
