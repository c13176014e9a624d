//! Group commit of the analytics collector's batches (issue 22, part 5).
//!
//! A player sends a batch every few seconds, so a busy node takes hundreds of small batches a
//! second, each once its own transaction. What a batch costs the database is mostly per commit
//! and per statement, not per row: on SQLite, writing the WAL frames of every page the batch
//! dirtied, the statement built, prepared and run through sqlx's connection thread; on
//! PostgreSQL, a round trip and a WAL flush. Here the batches that arrive while one group is
//! being written wait, and are then written together, in one transaction: the busier the
//! collector, the larger the groups, so its cost per event falls as its load rises, and it
//! takes the one SQLite writer that uploads and jobs also need once a group rather than once a
//! batch. Nothing is answered before the commit that holds its rows: a 204 still means stored.
//!
//! - SQLite (a database in a file): one thread of this process owns a connection of its own
//!   (rusqlite, as the inline reads) and writes each group in one `BEGIN IMMEDIATE` transaction,
//!   a prepared one-row INSERT per event: no SQL is built or parsed per batch, no hand-off to
//!   sqlx's thread per statement. A group is at most [`SQLITE_GROUP_ROWS`] rows, so that it
//!   holds the writer for a few milliseconds at most. If a group fails, each of its batches is
//!   tried again alone, so that one bad batch fails alone.
//! - PostgreSQL: the first batch to find no group being written writes everything queued as
//!   one INSERT of arrays (`UNNEST`), on a task of its own (a client hanging up does not cancel
//!   the others' write); the batches that arrive meanwhile form the next group.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use sqlx::PgPool;
use tokio::sync::oneshot;
use vidi_core::analytics::PlayerEvent;
use vidi_core::error::{DbError, DbErrorKind};
use vidi_core::{CoreError, CoreResult};

/// At most this many rows in one SQLite transaction (a few ms of the writer: uploads and jobs
/// wait for it).
const SQLITE_GROUP_ROWS: usize = 1000;
/// At most this many rows in one PostgreSQL statement.
const PG_GROUP_ROWS: usize = 5000;

const INSERT: &str = "INSERT INTO player_events (session_id, seq, emitted_at, media_id, type, at, from_s, to_s, \
     value, height, bitrate) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT DO NOTHING";

/// One request's batch, waiting for the commit that stores it.
struct Job {
    media: String,
    events: Vec<PlayerEvent>,
    done: oneshot::Sender<CoreResult<u64>>,
}

async fn outcome(rx: oneshot::Receiver<CoreResult<u64>>) -> CoreResult<u64> {
    rx.await.unwrap_or_else(|_| Err(stopped()))
}

/// The SQLite writer thread, started on the first batch.
pub(crate) struct SqliteAppends {
    path: PathBuf,
    queue: OnceLock<mpsc::Sender<Job>>,
}

impl SqliteAppends {
    pub(crate) fn new(path: &Path) -> Self {
        SqliteAppends { path: path.to_path_buf(), queue: OnceLock::new() }
    }

    /// Stores `events` (one session's) with the group that takes them; how many were new.
    pub(crate) async fn append(&self, media: &str, events: Vec<PlayerEvent>) -> CoreResult<u64> {
        let (done, rx) = oneshot::channel();
        let job = Job { media: media.to_string(), events, done };
        let queue = self.queue.get_or_init(|| {
            let (tx, rx) = mpsc::channel();
            let path = self.path.clone();
            // The thread ends when the queue's sender goes, with this `Db`.
            if let Err(e) = std::thread::Builder::new().name("vidi-events".into()).spawn(move || write_loop(&path, rx))
            {
                tracing::error!(error = %e, "could not start the player events writer");
            }
            tx
        });
        // A send fails only if the thread is gone: `job` (and its `done`) is dropped with the
        // error, which `outcome` reports.
        let _ = queue.send(job);
        outcome(rx).await
    }
}

/// A SQLite failure, as a value every job of a failed group can be given a copy of.
fn sqlite_err(e: rusqlite::Error) -> DbError {
    let kind = match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => DbErrorKind::Unavailable,
        _ => DbErrorKind::Other,
    };
    DbError { kind, message: e.to_string() }
}

fn stopped() -> CoreError {
    CoreError::Database("the player events writer stopped".into())
}

fn open(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    // No create: the pool made and migrated the file. The same durability as the pool's
    // connections (WAL, synchronous NORMAL) and the same patience for the writer lock.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let c = rusqlite::Connection::open_with_flags(path, flags)?;
    c.busy_timeout(std::time::Duration::from_secs(10))?;
    c.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(c)
}

fn write_loop(path: &Path, rx: mpsc::Receiver<Job>) {
    let mut conn: Option<rusqlite::Connection> = None;
    while let Ok(first) = rx.recv() {
        // Everything queued while the last group was written, up to the bound.
        let mut rows = first.events.len();
        let mut jobs = vec![first];
        while rows < SQLITE_GROUP_ROWS {
            match rx.try_recv() {
                Ok(j) => {
                    rows += j.events.len();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match open(path) {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    let e = sqlite_err(e);
                    for j in jobs {
                        let _ = j.done.send(Err(CoreError::Database(e.clone())));
                    }
                    continue;
                }
            },
        };
        commit(c, jobs);
    }
}

/// Writes `jobs` as one group and answers each. A group that fails was rolled back whole: each
/// batch is then written alone, so that only a bad one fails and the others are stored.
fn commit(c: &mut rusqlite::Connection, mut jobs: Vec<Job>) {
    match write_group(c, &jobs) {
        Ok(counts) => {
            for (j, n) in jobs.into_iter().zip(counts) {
                let _ = j.done.send(Ok(n));
            }
        }
        Err(e) if jobs.len() == 1 => {
            let _ = jobs.pop().expect("one job").done.send(Err(CoreError::Database(sqlite_err(e))));
        }
        Err(_) => {
            for j in jobs {
                let r = write_group(c, std::slice::from_ref(&j))
                    .map(|n| n[0])
                    .map_err(|e| CoreError::Database(sqlite_err(e)));
                let _ = j.done.send(r);
            }
        }
    }
}

/// One transaction; the number of new rows of each job.
fn write_group(c: &mut rusqlite::Connection, jobs: &[Job]) -> rusqlite::Result<Vec<u64>> {
    let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut counts = Vec::with_capacity(jobs.len());
    {
        let mut st = tx.prepare_cached(INSERT)?;
        for j in jobs {
            let mut n = 0;
            for e in &j.events {
                n += st.execute(rusqlite::params![
                    e.session_id.as_str(),
                    e.seq,
                    e.emitted_at,
                    j.media,
                    e.kind.as_str(),
                    e.at,
                    e.from,
                    e.to,
                    e.value,
                    e.height,
                    e.bitrate
                ])? as u64;
            }
            counts.push(n);
        }
    }
    tx.commit()?;
    Ok(counts)
}

/// PostgreSQL's groups: the queue and the turn to write it.
#[derive(Default)]
pub(crate) struct PgAppends {
    queue: Mutex<Vec<Job>>,
    turn: tokio::sync::Mutex<()>,
}

impl PgAppends {
    pub(crate) async fn append(&self, pool: &PgPool, media: &str, events: Vec<PlayerEvent>) -> CoreResult<u64> {
        let (done, mut rx) = oneshot::channel();
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).push(Job { media: media.to_string(), events, done });
        loop {
            tokio::select! {
                biased;
                r = &mut rx => return r.unwrap_or_else(|_| Err(stopped())),
                turn = self.turn.lock() => {
                    // The group written while this waited for its turn may have held this batch.
                    match rx.try_recv() {
                        Ok(r) => return r,
                        Err(oneshot::error::TryRecvError::Closed) => return Err(stopped()),
                        Err(oneshot::error::TryRecvError::Empty) => {}
                    }
                    let jobs = {
                        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                        let mut rows = 0;
                        let n = q
                            .iter()
                            .take_while(|j| {
                                rows += j.events.len();
                                rows - j.events.len() < PG_GROUP_ROWS
                            })
                            .count();
                        q.drain(..n).collect::<Vec<_>>()
                    };
                    if jobs.is_empty() {
                        // Taken by a write still running, whose request went away.
                        drop(turn);
                        return outcome(rx).await;
                    }
                    // A task of its own: this request's client hanging up must not drop the
                    // write of the others' batches half done. Past the bound, this batch may
                    // be left for the next group: the loop waits again.
                    let _ = tokio::spawn(write_pg(pool.clone(), jobs)).await;
                }
            }
        }
    }
}

/// Writes a group in one statement and answers its jobs; if it fails, each batch alone, so that
/// only a bad one fails.
async fn write_pg(pool: PgPool, jobs: Vec<Job>) {
    let all = match insert_pg(&pool, &jobs).await {
        Ok(n) => Ok(n),
        Err(e) if jobs.len() == 1 => Err(e),
        Err(_) => {
            for j in jobs {
                let r = insert_pg(&pool, std::slice::from_ref(&j)).await;
                let _ = j.done.send(r);
            }
            return;
        }
    };
    match all {
        // One count for the group: when some rows were already there (a batch retried), the
        // new ones are credited to the batches in order, so that the counts still add up.
        Ok(mut left) => {
            for j in jobs {
                let n = left.min(j.events.len() as u64);
                left -= n;
                let _ = j.done.send(Ok(n));
            }
        }
        Err(e) => {
            let e = match e {
                CoreError::Database(d) => d,
                e => DbError::from(e.to_string()),
            };
            for j in jobs {
                let _ = j.done.send(Err(CoreError::Database(e.clone())));
            }
        }
    }
}

/// The jobs' rows as one INSERT of arrays; how many were new.
async fn insert_pg(pool: &PgPool, jobs: &[Job]) -> CoreResult<u64> {
    let rows: usize = jobs.iter().map(|j| j.events.len()).sum();
    let (mut session, mut media, mut kind) =
        (Vec::with_capacity(rows), Vec::with_capacity(rows), Vec::with_capacity(rows));
    let (mut seq, mut emitted) = (Vec::with_capacity(rows), Vec::with_capacity(rows));
    let mut opt: [Vec<Option<i64>>; 6] = Default::default();
    for j in jobs {
        for e in &j.events {
            session.push(e.session_id.as_str());
            media.push(j.media.as_str());
            kind.push(e.kind.as_str());
            seq.push(e.seq);
            emitted.push(e.emitted_at);
            for (col, v) in opt.iter_mut().zip([e.at, e.from, e.to, e.value, e.height, e.bitrate]) {
                col.push(v);
            }
        }
    }
    let [at, from, to, value, height, bitrate] = opt;
    sqlx::query(
        "INSERT INTO player_events (session_id, seq, emitted_at, media_id, type, at, from_s, to_s, value, height, \
         bitrate) SELECT * FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::text[], $5::text[], $6::int8[], \
         $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[]) ON CONFLICT DO NOTHING",
    )
    .bind(session)
    .bind(seq)
    .bind(emitted)
    .bind(media)
    .bind(kind)
    .bind(at)
    .bind(from)
    .bind(to)
    .bind(value)
    .bind(height)
    .bind(bitrate)
    .execute(pool)
    .await
    .map(|r| r.rows_affected())
    .map_err(crate::db_err)
}

#[cfg(test)]
mod tests {
    use vidi_core::analytics::EventKind;
    use vidi_core::id::PlayerSessionId;

    use super::*;
    use crate::test_db;

    /// The subject the test's constraint refuses.
    const REFUSED: &str = "virefused";

    fn batch(session: &str, media: &str, n: i64) -> (Job, oneshot::Receiver<CoreResult<u64>>) {
        let events = (0..n)
            .map(|seq| PlayerEvent {
                session_id: PlayerSessionId::from_trusted(session.into()),
                seq,
                kind: EventKind::Play,
                emitted_at: 1_764_547_200_000 + seq,
                at: Some(seq),
                from: None,
                to: None,
                value: None,
                height: None,
                bitrate: None,
            })
            .collect();
        let (done, rx) = oneshot::channel();
        (Job { media: media.into(), events, done }, rx)
    }

    /// Two good batches with a bad one between them, as one group; then the bad one alone.
    fn group() -> (Vec<Job>, Vec<oneshot::Receiver<CoreResult<u64>>>) {
        let (jobs, rxs) = [batch("psgooda", "vigood", 2), batch("psbad", REFUSED, 1), batch("psgoodb", "vigood", 3)]
            .into_iter()
            .unzip();
        (jobs, rxs)
    }

    fn answers(rxs: Vec<oneshot::Receiver<CoreResult<u64>>>) -> Vec<Result<u64, String>> {
        rxs.into_iter()
            .map(|mut rx| match rx.try_recv().expect("answered") {
                Ok(n) => Ok(n),
                Err(CoreError::Database(e)) => Err(e.message),
                Err(e) => panic!("not a database error: {e}"),
            })
            .collect()
    }

    /// A group that fails is rolled back and each of its batches written alone: the good ones
    /// are stored and answered with their counts, only the bad one fails. Nothing a collector
    /// accepts can fail today (every column's value is typed and bounded before it gets here,
    /// and a row already there is skipped), so the test gives the table a constraint of its
    /// own, as a later migration might: on SQLite a trigger, on PostgreSQL a CHECK.
    #[tokio::test]
    async fn a_bad_batch_in_a_group_fails_alone_and_the_others_are_stored() {
        for t in test_db::all("bad_batch").await {
            let label = t.label;
            t.db.migrate().await.unwrap();
            let first = match &t.db.pool {
                crate::Pool::Sqlite(_) => {
                    let mut c = open(&t.sqlite_file().expect("a file")).unwrap();
                    c.execute_batch(&format!(
                        "CREATE TRIGGER refuse BEFORE INSERT ON player_events WHEN NEW.media_id = '{REFUSED}' \
                         BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                    ))
                    .unwrap();
                    let (jobs, rxs) = group();
                    commit(&mut c, jobs);
                    let first = answers(rxs);
                    // A group of the bad batch alone: its error, and nothing else written.
                    let (job, rx) = batch("psbad", REFUSED, 1);
                    commit(&mut c, vec![job]);
                    let alone = answers(vec![rx]);
                    assert!(matches!(&alone[0], Err(m) if m.contains("refused by the test")), "{label}: {alone:?}");
                    // The same good batches again: stored once, so none is new.
                    let (jobs, rxs) = group();
                    commit(&mut c, jobs);
                    assert_eq!(answers(rxs)[0], Ok(0), "{label}");
                    first
                }
                crate::Pool::Postgres(p) => {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "ALTER TABLE player_events ADD CONSTRAINT refuse CHECK (media_id <> '{REFUSED}')"
                    )))
                    .execute(p)
                    .await
                    .unwrap();
                    let (jobs, rxs) = group();
                    write_pg(p.clone(), jobs).await;
                    let first = answers(rxs);
                    let (job, rx) = batch("psbad", REFUSED, 1);
                    write_pg(p.clone(), vec![job]).await;
                    let alone = answers(vec![rx]);
                    assert!(matches!(&alone[0], Err(m) if m.contains("refuse")), "{label}: {alone:?}");
                    let (jobs, rxs) = group();
                    write_pg(p.clone(), jobs).await;
                    assert_eq!(answers(rxs)[0], Ok(0), "{label}");
                    first
                }
            };
            assert_eq!(first[0], Ok(2), "{label}");
            assert!(matches!(&first[1], Err(m) if m.contains("refuse")), "{label}: {first:?}");
            assert_eq!(first[2], Ok(3), "{label}");
            let stored: Vec<(String, i64)> = crate::with_pool!(t.db, p => {
                sqlx::query_as("SELECT session_id, seq FROM player_events ORDER BY session_id, seq")
                    .fetch_all(p)
                    .await
                    .unwrap()
            });
            let want = [("psgooda", 0), ("psgooda", 1), ("psgoodb", 0), ("psgoodb", 1), ("psgoodb", 2)];
            assert_eq!(stored, want.map(|(s, q)| (s.to_string(), q)), "{label}");
            t.remove().await;
        }
    }
}
