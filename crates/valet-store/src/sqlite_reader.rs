//! Reads on SQLite without a hand-off: a few rusqlite connections, each used on the thread
//! that asks.
//!
//! Through sqlx every query is a message to the connection's worker thread, a result message
//! back, and a task spawned to return the connection to the pool: for a point read that SQLite
//! answers in a few microseconds from its page cache, those hand-offs (and the two context
//! switches they cost on a small machine) were most of the time. Here a read takes an idle
//! connection (or opens one), runs on the calling thread, and puts the connection back.
//!
//! Point reads (a row by its key) run inline on the async worker: they take microseconds.
//! Reads whose cost depends on the data (a SOQL page) go through
//! [`SqliteReader::read_bounded`]: inline too, but SQLite interrupts them after a budget of
//! virtual-machine steps (about a millisecond), and then they run again with tokio told that
//! the thread will block (`block_in_place`), so other tasks move to another worker. Measured on
//! a 10-row SOQL query: 15.0k req/s, p99 4.4 ms inline; 9.9k req/s, p99 19 ms when every
//! such read went through `block_in_place`.
//!
//! The connections are `query_only`: nothing can write through them. Each read sees every
//! transaction committed before it started (WAL readers never wait for the writer).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, Statement, ToSql};

use crate::SQLITE_PRAGMAS;

/// Idle connections kept: the runtime's workers plus the blocking threads that read at the
/// same time; more would only hold file handles.
const MAX_IDLE: usize = 8;

/// Connections alive at most. Each caches up to 2 MiB of pages; a burst of slow SOQL queries
/// (each holding one connection under `block_in_place`) beyond this reads through the pool.
pub const MAX_OPEN: usize = 16;

/// The VM steps a bounded read may take inline (SQLite counts roughly one per opcode; about a
/// millisecond of work on this project's 2-vCPU bench machine) before it is moved off the
/// async worker.
pub const INLINE_STEPS: std::os::raw::c_int = 200_000;

/// Prepared statements kept per connection (rusqlite's cache is an LRU keyed by the SQL).
const STATEMENT_CACHE: usize = 128;

/// The read connections of one SQLite database file.
#[derive(Debug)]
pub struct SqliteReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Connections alive, idle or in use (at most [`MAX_OPEN`]).
    open: AtomicUsize,
}

impl SqliteReader {
    pub(crate) fn new(path: PathBuf) -> SqliteReader {
        SqliteReader { path, idle: Mutex::new(Vec::new()), open: AtomicUsize::new(0) }
    }

    /// Runs `f` on a read connection, on this thread. Use for reads by key. `None` when
    /// [`MAX_OPEN`] connections are in use: the caller reads through the pool instead, which
    /// waits for a connection without blocking the thread.
    pub fn read<R>(&self, f: impl FnOnce(&Connection) -> R) -> Option<rusqlite::Result<R>> {
        let conn = match self.take()? {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        let out = f(&conn);
        self.give(conn);
        Some(Ok(out))
    }

    /// [`SqliteReader::read`] for reads that may take long. `f` runs inline with a budget of
    /// [`INLINE_STEPS`] SQLite VM steps; if SQLite interrupts it there, it runs again from the
    /// start through [`SqliteReader::read_heavy`]. `f` must only read (it may run twice).
    pub fn read_bounded<R>(&self, f: impl Fn(&Connection) -> rusqlite::Result<R>) -> Option<rusqlite::Result<R>> {
        let first = self.read(|c| {
            // Called every INLINE_STEPS steps: the first call ends the inline attempt.
            c.progress_handler(INLINE_STEPS, Some(|| true));
            let out = f(c);
            c.progress_handler(0, None::<fn() -> bool>);
            out
        })?;
        match first {
            Ok(Err(rusqlite::Error::SqliteFailure(e, _))) if e.code == rusqlite::ErrorCode::OperationInterrupted => {
                self.read_heavy(f).map(|r| r.and_then(|done| done))
            }
            other => Some(other.and_then(|done| done)),
        }
    }

    /// [`SqliteReader::read`] for reads known to take long: on tokio's multi-thread runtime the
    /// worker hands its other tasks over first (`block_in_place`); elsewhere it runs inline.
    pub fn read_heavy<R>(&self, f: impl FnOnce(&Connection) -> R) -> Option<rusqlite::Result<R>> {
        let multi = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if multi {
            tokio::task::block_in_place(|| self.read(f))
        } else {
            self.read(f)
        }
    }

    /// An idle connection, or a new one while fewer than [`MAX_OPEN`] are alive.
    fn take(&self) -> Option<rusqlite::Result<Connection>> {
        if let Some(c) = self.lock().pop() {
            return Some(Ok(c));
        }
        if self.open.fetch_add(1, Ordering::AcqRel) >= MAX_OPEN {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let conn = self.open();
        if conn.is_err() {
            self.open.fetch_sub(1, Ordering::AcqRel);
        }
        Some(conn)
    }

    fn give(&self, conn: Connection) {
        let mut idle = self.lock();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        } else {
            drop(idle);
            drop(conn);
            self.open.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// Drops the idle connections (the store is closing; a later read opens new ones).
    pub(crate) fn close(&self) {
        let closed = std::mem::take(&mut *self.lock()).len();
        self.open.fetch_sub(closed, Ordering::AcqRel);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // A panic while holding the lock cannot leave the Vec half-changed.
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        for pragma in SQLITE_PRAGMAS {
            conn.execute_batch(pragma)?;
        }
        conn.execute_batch("PRAGMA query_only = 1")?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }
}

/// Binds `args` to a statement written with `$1`, `$2`, … placeholders (the form every query
/// in Valet uses on both backends), by name, so a placeholder may appear out of order or twice.
pub fn bind<P: ToSql>(stmt: &mut Statement<'_>, args: &[P]) -> rusqlite::Result<()> {
    for i in 1..=stmt.parameter_count() {
        let n = stmt
            .parameter_name(i)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or(rusqlite::Error::InvalidParameterCount(i, args.len()))?;
        let arg = args.get(n.wrapping_sub(1)).ok_or(rusqlite::Error::InvalidParameterCount(n, args.len()))?;
        stmt.raw_bind_parameter(i, arg)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn binds_dollar_parameters_by_number() {
        let dir = tempfile::tempdir().unwrap();
        Connection::open(dir.path().join("r.db")).unwrap();
        let reader = SqliteReader::new(dir.path().join("r.db"));
        let got: (i64, String, i64) = reader
            .read(|c| {
                let mut s = c.prepare("SELECT $2, $1, $2 + 1").unwrap();
                bind::<&dyn ToSql>(&mut s, &[&"a", &41]).unwrap();
                let mut rows = s.raw_query();
                let r = rows.next().unwrap().unwrap();
                (r.get(0).unwrap(), r.get(1).unwrap(), r.get(2).unwrap())
            })
            .unwrap()
            .unwrap();
        assert_eq!(got, (41, "a".to_string(), 42));
        // A placeholder without a value is an error, not a NULL.
        let err = reader.read(|c| {
            let mut s = c.prepare("SELECT $3").unwrap();
            bind(&mut s, &[1]).is_err()
        });
        assert!(err.unwrap().unwrap());
    }

    /// A read over the inline budget is interrupted and run again in full: the answer is the
    /// whole count, on tokio's multi-thread runtime (block_in_place) and off it.
    #[test]
    fn bounded_reads_over_budget_finish() {
        let dir = tempfile::tempdir().unwrap();
        Connection::open(dir.path().join("r.db")).unwrap();
        let reader = SqliteReader::new(dir.path().join("r.db"));
        let count = |c: &Connection| -> rusqlite::Result<i64> {
            c.query_row("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 300000) SELECT count(*) FROM n", [], |r| r.get(0))
        };
        // Over budget when inline only: the interruption is real.
        let inline = reader.read(|c| {
            c.progress_handler(INLINE_STEPS, Some(|| true));
            count(c)
        });
        assert!(
            matches!(inline, Some(Ok(Err(rusqlite::Error::SqliteFailure(e, _)))) if e.code == rusqlite::ErrorCode::OperationInterrupted)
        );
        assert_eq!(reader.read_bounded(count).unwrap().unwrap(), 300_000);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
        assert_eq!(rt.block_on(async { reader.read_bounded(count) }).unwrap().unwrap(), 300_000);
        // The handler is gone afterwards: a plain read of the same size is not interrupted.
        assert_eq!(reader.read(count).unwrap().unwrap().unwrap(), 300_000);
    }

    /// At most MAX_OPEN connections are alive: one more concurrent read is told to use the
    /// pool, and once the others are done reads are served again from the idle ones.
    #[test]
    fn open_connections_are_bounded() {
        fn nest(reader: &SqliteReader, depth: usize) -> bool {
            if depth == 0 {
                // Every connection is held by the reads around this one.
                return reader.read(|_| ()).is_none();
            }
            reader.read(|_| nest(reader, depth - 1)).unwrap().unwrap()
        }
        let dir = tempfile::tempdir().unwrap();
        Connection::open(dir.path().join("r.db")).unwrap();
        let reader = SqliteReader::new(dir.path().join("r.db"));
        assert!(nest(&reader, MAX_OPEN));
        assert_eq!(reader.open.load(Ordering::Acquire), MAX_IDLE);
        assert!(reader.read(|_| ()).is_some());
        reader.close();
        assert_eq!(reader.open.load(Ordering::Acquire), 0);
    }

    #[test]
    fn connections_are_query_only() {
        let dir = tempfile::tempdir().unwrap();
        Connection::open(dir.path().join("r.db")).unwrap();
        let reader = SqliteReader::new(dir.path().join("r.db"));
        let refused = reader.read(|c| c.execute_batch("CREATE TABLE t (x INTEGER)").is_err()).unwrap().unwrap();
        assert!(refused);
    }
}
