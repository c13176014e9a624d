//! Point reads on SQLite that run on the calling task.
//!
//! sqlx runs every SQLite connection on a thread of its own: a query is a message to that thread
//! and a wake-up back, two cross-thread hand-offs that cost more than the read itself (a
//! primary-key lookup in SQLite's page cache takes microseconds). Profiled under `bench/api.sh`,
//! they were over half of `GET /videos/{id}` (docs/performance.md). The hottest point reads
//! therefore go through a few connections of this process's own, used in place: a read never
//! waits here (busy timeout 0), and anything but a clean answer (busy, locked, a schema being
//! changed, an error) sends the caller to the pool, which has the authoritative answer and
//! the patience. SQLite in WAL mode lets readers run beside the writer, so a read only misses
//! in the rare moment a checkpoint resets the log.
//!
//! Every read sees the last committed transaction of any process: nothing is cached but the
//! compiled statements.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags};

/// Connections kept idle; a burst beyond this opens and drops extra ones.
const IDLE: usize = 8;

pub(crate) struct InlineReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl InlineReader {
    /// A reader of the SQLite file at `path` (opened on first use: the pool creates and migrates
    /// the file first).
    pub(crate) fn new(path: &Path) -> Self {
        InlineReader { path: path.to_path_buf(), idle: Mutex::new(Vec::new()) }
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        // Read-write flags (no create) rather than read-only: a WAL reader needs to map the
        // shared-memory index, which a read-only open cannot create when it is missing.
        // `query_only` is what keeps this connection from ever writing.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let c = Connection::open_with_flags(&self.path, flags)?;
        c.busy_timeout(std::time::Duration::ZERO)?;
        c.pragma_update(None, "query_only", true)?;
        Ok(c)
    }

    /// Runs `read` on an idle connection. `None`: the pool must answer instead (the database
    /// was busy, or anything else went wrong here, logged at debug level).
    pub(crate) fn read<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Option<rusqlite::Result<T>> {
        let taken = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match taken {
            Some(c) => c,
            None => match self.open() {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "inline SQLite reader unavailable");
                    return None;
                }
            },
        };
        let r = read(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE {
            idle.push(conn);
        }
        drop(idle);
        match r {
            Ok(v) => Some(Ok(v)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Some(Err(rusqlite::Error::QueryReturnedNoRows)),
            Err(e) => {
                tracing::debug!(error = %e, "inline SQLite read missed; asking the pool");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_another_connection_committed_and_never_writes() {
        let dir = std::env::temp_dir().join(format!("vidi-inline-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        let w = Connection::open(&path).unwrap();
        w.pragma_update(None, "journal_mode", "wal").unwrap();
        w.execute_batch("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER); INSERT INTO t VALUES ('a', 1);").unwrap();
        let r = InlineReader::new(&path);
        let get =
            |r: &InlineReader| r.read(|c| c.query_row("SELECT v FROM t WHERE k = 'a'", [], |row| row.get::<_, i64>(0)));
        assert_eq!(get(&r).unwrap().unwrap(), 1);
        // A commit by another connection is seen by the next read on the same (idle) connection.
        w.execute("UPDATE t SET v = 2", []).unwrap();
        assert_eq!(get(&r).unwrap().unwrap(), 2);
        // No row is an answer; a write is refused here and left to the pool.
        let none = r.read(|c| c.query_row("SELECT v FROM t WHERE k = 'z'", [], |row| row.get::<_, i64>(0)));
        assert!(matches!(none, Some(Err(rusqlite::Error::QueryReturnedNoRows))));
        assert!(r.read(|c| c.execute("UPDATE t SET v = 3", [])).is_none());
        // A missing database is not created: the pool answers.
        assert!(InlineReader::new(&dir.join("missing.db")).read(|c| c.execute_batch("SELECT 1")).is_none());
        assert!(!dir.join("missing.db").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
