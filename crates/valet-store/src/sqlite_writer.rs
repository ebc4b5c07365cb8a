//! The SQLite token writer: the group commit of [`crate::tokens`] on a plain OS thread with a
//! connection of its own, driven synchronously.
//!
//! Through sqlx every statement is a message to the connection's worker thread and every
//! result a message back to the async task, so a batch's wall time was about three times the
//! CPU SQLite spent on it, and the batches queued behind those hand-offs. Here the thread
//! blocks on the job channel, takes everything queued, writes it in one `BEGIN IMMEDIATE`
//! transaction with cached prepared statements (one row per execution: no JSON to build and
//! parse), commits, and answers each caller through its oneshot. Both libraries link the one
//! SQLite (libsqlite3-sys), so its locking sees every connection of the process.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use sqlx::AnyPool;

use rusqlite::{Connection, ErrorCode, TransactionBehavior};
use valet_core::clock::Millis;
use valet_core::model::{AuthCode, PkceMethod, TokenFamily};
use valet_core::secret::TokenHash;
use valet_core::store::{Issuance, StoreError, StoreResult};

use crate::store_impl::{CONSUME_CODE, INSERT_CODE};
use crate::tokens::{Job, RowInsert, ACCESS_TOKENS, FAMILIES, MAX_BATCH, REFRESH_TOKENS};
use crate::SQLITE_PRAGMAS;

/// A write run on the writer's connection; it answers its caller itself.
pub(crate) type Write = Box<dyn FnOnce(&mut Connection) + Send>;

/// What the writer thread is asked to do.
#[allow(clippy::large_enum_variant)] // boxing the job would allocate once per issuance, the hot path
pub(crate) enum Msg {
    Job(Job),
    /// A write of its own (its own transaction), run before the batch that drained it: the
    /// hot writes besides issuances (codes made and redeemed) go here, so that they never wait
    /// for the write lock against the writer, which SQLite's busy handler does by sleeping.
    Write(Write),
    /// Close the connection (the store is closing); a later job opens it again.
    Close,
}

/// Records a refresh token's use; a time never moves backwards.
const TOUCH: &str = "UPDATE refresh_tokens SET last_used_at = max(last_used_at, ?2) WHERE token_hash = ?1";

/// How often the checkpointer looks for new commits to copy into the database file. A
/// checkpoint delays the commits that overlap it in proportion to its size (its fsync most of
/// all), so many small ones beat a few big ones: measured at a fixed 2,000 token requests/s,
/// p99 1.2 ms at 10 ms, 1.7 ms at 50 ms, 8 ms at 250 ms, 30 ms at 1 s; at saturation 10 ms
/// also gave the most tokens/s.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(10);

/// Starts the writer thread for the database file at `path`, and its checkpointer on the
/// current tokio runtime. The thread ends when every sender is gone, the checkpointer when
/// the pool closes.
pub(crate) fn start(path: PathBuf, pool: AnyPool) -> StoreResult<mpsc::Sender<Msg>> {
    let (tx, rx) = mpsc::channel();
    let commits = Arc::new(AtomicU64::new(0));
    let counted = commits.clone();
    std::thread::Builder::new()
        .name("valet-token-writer".into())
        .spawn(move || run(&path, &rx, &counted))
        .map_err(|e| StoreError::Backend(format!("cannot start the token writer: {e}")))?;
    tokio::spawn(checkpointer(pool, commits));
    Ok(tx)
}

/// Copies committed WAL frames into the database file (PASSIVE: it never waits for, nor
/// blocks, the writer or readers) a few times a second while tokens are being written, on a
/// pooled connection, so neither the copy nor its fsync delays a request.
async fn checkpointer(pool: AnyPool, commits: Arc<AtomicU64>) {
    let mut seen = 0;
    loop {
        tokio::select! {
            () = tokio::time::sleep(CHECKPOINT_EVERY) => {}
            () = pool.close_event() => return,
        }
        let now = commits.load(Ordering::Relaxed);
        if now == seen {
            continue;
        }
        seen = now;
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(&pool).await {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

fn run(path: &Path, rx: &mpsc::Receiver<Msg>, commits: &AtomicU64) {
    let mut conn: Option<Connection> = None;
    let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = rx.recv() {
        let mut close = false;
        let mut writes: Vec<Write> = Vec::new();
        let mut next = Some(first);
        while let Some(m) = next.take() {
            match m {
                Msg::Job(j) => jobs.push(j),
                Msg::Write(w) => writes.push(w),
                Msg::Close => close = true,
            }
            if jobs.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !jobs.is_empty() || !writes.is_empty() {
            let mut c = match conn.take().map_or_else(|| open(path), Ok) {
                Ok(c) => c,
                Err(e) => {
                    let message = e.to_string();
                    for j in jobs.drain(..) {
                        let _ = j.done.send(Err(StoreError::Backend(message.clone())));
                    }
                    // Dropped unrun, a write's caller sees the writer gone.
                    writes.clear();
                    continue;
                }
            };
            for w in writes {
                w(&mut c);
            }
            if jobs.is_empty() || write(&mut c, &mut jobs) {
                conn = Some(c);
            }
            commits.fetch_add(1, Ordering::Relaxed);
        }
        if close {
            conn = None;
        }
    }
}

/// Writes the batch and answers every job; false when the connection should not be reused.
fn write(conn: &mut Connection, jobs: &mut Vec<Job>) -> bool {
    let items: Vec<&Issuance> = jobs.iter().map(|j| &j.issuance).collect();
    let result = commit(conn, &items);
    drop(items);
    match result {
        Ok(()) => {
            for j in jobs.drain(..) {
                let _ = j.done.send(Ok(()));
            }
            true
        }
        // One bad issuance (a conflict, a family deleted meanwhile) must not fail the others
        // that shared its transaction: each is retried alone and gets its own answer.
        Err(e) if jobs.len() == 1 => {
            let healthy = !matches!(e, StoreError::Backend(_));
            if let Some(j) = jobs.pop() {
                let _ = j.done.send(Err(e));
            }
            healthy
        }
        Err(_) => {
            let mut healthy = true;
            for j in jobs.drain(..) {
                let r = commit(conn, &[&j.issuance]);
                healthy &= !matches!(r, Err(StoreError::Backend(_)));
                let _ = j.done.send(r);
            }
            healthy
        }
    }
}

/// The token tables' INSERTs, built once per process.
struct Statements {
    families: String,
    access: String,
    refresh: String,
}

fn statements() -> &'static Statements {
    static STATEMENTS: std::sync::OnceLock<Statements> = std::sync::OnceLock::new();
    STATEMENTS.get_or_init(|| Statements {
        families: FAMILIES.values_sql(),
        access: ACCESS_TOKENS.values_sql(),
        refresh: REFRESH_TOKENS.values_sql(),
    })
}

/// One transaction for the batch: families first (the token rows refer to them), then access
/// tokens, refresh tokens and the uses of refresh tokens. Dropping the transaction on an error
/// rolls it back.
fn commit(conn: &mut Connection, items: &[&Issuance]) -> StoreResult<()> {
    let statements = statements();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    for family in items.iter().filter_map(|i| i.family.as_ref()) {
        insert(&tx, &statements.families, &FAMILIES, family)?;
    }
    for item in items {
        insert(&tx, &statements.access, &ACCESS_TOKENS, &item.access)?;
    }
    for refresh in items.iter().filter_map(|i| i.refresh.as_ref()) {
        insert(&tx, &statements.refresh, &REFRESH_TOKENS, refresh)?;
    }
    for item in items {
        if let Some(hash) = &item.touch_refresh {
            let mut stmt = tx.prepare_cached(TOUCH).map_err(backend)?;
            stmt.execute(rusqlite::params![hash.as_str(), item.access.created_at]).map_err(backend)?;
        }
    }
    tx.commit().map_err(backend)
}

fn insert<T>(tx: &rusqlite::Transaction<'_>, sql: &str, table: &RowInsert<T>, row: &T) -> StoreResult<()> {
    let mut stmt = tx.prepare_cached(sql).map_err(backend)?;
    let values = match table.row(row) {
        serde_json::Value::Array(values) => values,
        _ => return Err(StoreError::Backend("a token row is not an array".into())),
    };
    stmt.execute(rusqlite::params_from_iter(values.into_iter().map(sql_value)))
        .map_err(|e| conflict_or_backend(e, table.what()))?;
    Ok(())
}

/// `Store::insert_code` on the writer's connection.
pub(crate) fn insert_code(conn: &mut Connection, code: &AuthCode) -> StoreResult<()> {
    let mut stmt = conn.prepare_cached(INSERT_CODE).map_err(backend)?;
    stmt.execute(rusqlite::params![
        code.code_hash.as_str(),
        code.org_id.as_str(),
        code.app_id.as_str(),
        code.user_id.as_str(),
        code.redirect_uri,
        code.scopes.to_string(),
        code.code_challenge,
        code.code_challenge_method.map(PkceMethod::as_str),
        code.nonce,
        code.auth_time,
        code.created_at,
        code.expires_at,
        code.consumed_at,
        code.family_id,
    ])
    .map_err(|e| conflict_or_backend(e, "authorization code"))?;
    Ok(())
}

/// `Store::consume_code` on the writer's connection: the family and the conditional UPDATE in
/// one transaction (see the pooled version in `store_impl` for why in that order).
pub(crate) fn consume_code(
    conn: &mut Connection,
    hash: &TokenHash,
    family: &TokenFamily,
    now: Millis,
) -> StoreResult<bool> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
    insert(&tx, &statements().families, &FAMILIES, family)?;
    let consumed = tx
        .prepare_cached(CONSUME_CODE)
        .and_then(|mut stmt| stmt.execute(rusqlite::params![now, family.id, hash.as_str()]))
        .map_err(backend)?;
    if consumed != 1 {
        return Ok(false); // dropping the transaction rolls the family back
    }
    tx.commit().map_err(backend)?;
    Ok(true)
}

/// A unique violation is a `Conflict` naming the kind of row; a foreign-key violation (the
/// app or family the row belongs to was deleted meanwhile) is `NotFound`.
fn conflict_or_backend(e: rusqlite::Error, what: &str) -> StoreError {
    match e.sqlite_error() {
        Some(f) if f.code == ErrorCode::ConstraintViolation && is_unique(f.extended_code) => {
            StoreError::Conflict(what.to_string())
        }
        Some(f) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => StoreError::NotFound,
        _ => backend(e),
    }
}

/// SQLITE_CONSTRAINT_PRIMARYKEY or SQLITE_CONSTRAINT_UNIQUE.
fn is_unique(extended_code: i32) -> bool {
    matches!(extended_code, 1555 | 2067)
}

/// A row value as SQLite stores it: the rows hold only text, integers and NULL.
fn sql_value(v: serde_json::Value) -> rusqlite::types::Value {
    use rusqlite::types::Value;
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Integer(b.into()),
        serde_json::Value::Number(n) => {
            n.as_i64().map_or_else(|| Value::Real(n.as_f64().unwrap_or_default()), Value::Integer)
        }
        serde_json::Value::String(s) => Value::Text(s),
        other => Value::Text(other.to_string()),
    }
}

fn open(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::Backend(format!("the token writer cannot open the database: {e}")))?;
    for pragma in SQLITE_PRAGMAS {
        conn.execute_batch(pragma).map_err(backend)?;
    }
    Ok(conn)
}

fn backend(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The database file a `sqlite:` URL names, or `None` for an in-memory database (which another
/// connection cannot open: its tokens go through the pooled writer instead).
pub(crate) fn file_of(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.split('&').any(|kv| kv == "mode=memory") {
        return None;
    }
    percent_decode(path).map(PathBuf::from)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn files_of_urls() {
        assert_eq!(file_of("sqlite:///tmp/a%3Fb/valet.db?mode=rwc"), Some(PathBuf::from("/tmp/a?b/valet.db")));
        assert_eq!(file_of("sqlite://data/valet.db"), Some(PathBuf::from("data/valet.db")));
        assert_eq!(file_of("sqlite::memory:"), None);
        assert_eq!(file_of("sqlite://x.db?mode=memory&cache=shared"), None);
        assert_eq!(file_of("postgres://x"), None);
        let url = crate::sqlite_url(Path::new("/tmp/we%ird#dir?/valet.db")).unwrap();
        assert_eq!(file_of(&url), Some(PathBuf::from("/tmp/we%ird#dir?/valet.db")));
    }

    #[test]
    fn unique_codes() {
        assert!(is_unique(rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY));
        assert!(is_unique(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE));
        assert!(!is_unique(rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY));
    }
}
