//! Valet's storage: one [`SqlStore`] that implements [`valet_core::store::Store`] for SQLite
//! (the embedded default) and PostgreSQL.
//!
//! Both backends go through sqlx's `Any` driver so that every query is written once. That
//! works because the schema keeps to the types `Any` maps identically on both sides: BIGINT
//! (times in epoch milliseconds, booleans as 0/1), TEXT (ids, hex hashes, scope strings, JSON)
//! and one binary column. Placeholders are `$1, $2, ...`: PostgreSQL needs them, and SQLite
//! reads `$N` as "argument N", so a parameter may appear twice in a statement.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::{Any, Executor, Transaction};
use valet_core::store::{StoreError, StoreResult};

pub use sqlite_reader::SqliteReader;

mod rows;
pub mod sqlite_reader;
mod sqlite_writer;
mod store_impl;
pub mod testing;
mod tokens;

/// Which database a [`SqlStore`] talks to. Public so the server can show it on its status
/// page, and so callers can tell when they need backend-specific SQL of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a connection URL names; anything else is refused up front rather than
    /// failing later with a less helpful driver error.
    pub fn from_url(url: &str) -> StoreResult<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            // The URL itself may carry a password, so it is not echoed.
            Err(StoreError::Backend("unsupported database URL: expected sqlite:// or postgres://".into()))
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Set on every SQLite connection. `busy_timeout` comes first so that switching to WAL waits
/// for other connections instead of failing; WAL lets readers run beside the one writer;
/// `synchronous=NORMAL` is durable enough under WAL (a power cut may lose the last commits,
/// never corrupt); foreign keys are off by default in SQLite and the schema relies on them;
/// statement journals (a multi-row INSERT inside a transaction has one) stay in memory
/// instead of being a temporary file created and deleted per statement. Checkpoints are the
/// background checkpointer's job (`sqlite_writer`): a connection checkpoints by itself only
/// once the WAL holds 8,192 pages (32 MiB), the bound under sustained load, rather than at
/// SQLite's default 1,000, where a request that happened to commit paid for copying the WAL
/// and an fsync (at a fixed 2,000 token requests/s the p99 was 5 ms that way, 1.2 ms now).
/// After a checkpoint the WAL file is truncated to at most 64 MiB.
pub(crate) const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA busy_timeout = 5000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA temp_store = MEMORY",
    "PRAGMA wal_autocheckpoint = 8192",
    "PRAGMA journal_size_limit = 67108864",
];

/// SQLite has one writer at a time, so more connections only add readers; eight covers the
/// server's concurrency without holding many file handles.
const SQLITE_POOL_SIZE: u32 = 8;
const POSTGRES_POOL_SIZE: u32 = 10;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The SQL store. Cheap to clone (the pool and the token writer are shared).
#[derive(Clone, Debug)]
pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    tokens: tokens::GroupCommit,
    /// Point reads on a SQLite file without sqlx's hand-offs; `None` on PostgreSQL and for an
    /// in-memory SQLite database (which only the pool's connections can see).
    reader: Option<Arc<SqliteReader>>,
}

impl SqlStore {
    /// Connects to `sqlite://PATH?mode=rwc` or `postgres://...` (PostgreSQL URLs may carry
    /// `?options=-c%20search_path%3Dschema`, which the driver passes through as a startup
    /// option). Does not migrate: call [`valet_core::store::Store::migrate`].
    pub async fn connect(url: &str) -> StoreResult<SqlStore> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let options = AnyPoolOptions::new().acquire_timeout(Duration::from_secs(30));
        let options = match backend {
            Backend::Sqlite => options.max_connections(SQLITE_POOL_SIZE).after_connect(|conn, _meta| {
                Box::pin(async move {
                    for pragma in SQLITE_PRAGMAS {
                        conn.execute(*pragma).await?;
                    }
                    Ok(())
                })
            }),
            Backend::Postgres => options.max_connections(POSTGRES_POOL_SIZE),
        };
        let pool = options
            .connect(url)
            .await
            .map_err(|e| StoreError::Backend(format!("cannot connect to the {backend} database: {e}")))?;
        let tokens = tokens::GroupCommit::start(pool.clone(), backend, url)?;
        let reader = match backend {
            Backend::Sqlite => sqlite_writer::file_of(url).map(|f| Arc::new(SqliteReader::new(f))),
            Backend::Postgres => None,
        };
        Ok(SqlStore { pool, backend, tokens, reader })
    }

    /// The embedded default: `valet.db` in `dir`, created if missing.
    pub async fn sqlite_in_dir(dir: &Path) -> StoreResult<SqlStore> {
        SqlStore::connect(&sqlite_url(&dir.join("valet.db"))?).await
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool, for queries the `Store` trait does not (yet) cover.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The SQLite read connections, when the database is a SQLite file: for reads by key that
    /// should not pay the pool's hand-offs (see [`sqlite_reader`]).
    pub fn sqlite_reader(&self) -> Option<&Arc<SqliteReader>> {
        self.reader.as_ref()
    }

    /// Closes every connection (waiting for those in use), e.g. before dropping a test schema.
    pub async fn close(&self) {
        self.tokens.close();
        if let Some(r) = &self.reader {
            r.close();
        }
        self.pool.close().await;
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock up front
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and writes later fails
    /// with SQLITE_BUSY when another writer got in between, and `busy_timeout` cannot help.
    async fn begin_write(&self) -> StoreResult<Transaction<'static, Any>> {
        begin_write(&self.pool, self.backend).await
    }

    /// Runs the embedded migrations. The PostgreSQL migrator serialises concurrent runs with an
    /// advisory lock; SQLite's has no lock, so a process that loses the race to another one
    /// starting at the same moment fails on the duplicate bookkeeping row, and simply retrying
    /// then finds everything applied.
    async fn run_migrations(&self) -> StoreResult<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATOR,
            Backend::Postgres => &POSTGRES_MIGRATOR,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            match migrator.run(&self.pool).await {
                Ok(()) => return Ok(()),
                Err(
                    e @ (sqlx::migrate::MigrateError::Execute(_) | sqlx::migrate::MigrateError::ExecuteMigration(..)),
                ) if attempt < 5 => {
                    tracing::warn!(error = %e, attempt, "migration failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => return Err(StoreError::Backend(format!("migration failed: {e}"))),
            }
        }
    }
}

/// See [`SqlStore::begin_write`].
pub(crate) async fn begin_write(pool: &AnyPool, backend: Backend) -> StoreResult<Transaction<'static, Any>> {
    let tx = match backend {
        Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
        Backend::Postgres => pool.begin().await,
    };
    tx.map_err(db_err)
}

/// [`begin_write`] on one connection rather than on the pool.
pub(crate) async fn begin_write_on(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
) -> StoreResult<Transaction<'_, Any>> {
    let tx = match backend {
        Backend::Sqlite => sqlx::Connection::begin_with(conn, "BEGIN IMMEDIATE").await,
        Backend::Postgres => sqlx::Connection::begin(conn).await,
    };
    tx.map_err(db_err)
}

/// Builds a `sqlite://` URL for a path. The driver percent-decodes the path, so the characters
/// that would otherwise end it (`?`, `#`) or start an escape (`%`) are escaped.
pub fn sqlite_url(path: &Path) -> StoreResult<String> {
    let path = path.to_str().ok_or_else(|| StoreError::Backend("database path is not valid UTF-8".into()))?;
    let escaped = path.replace('%', "%25").replace('?', "%3F").replace('#', "%23");
    Ok(format!("sqlite://{escaped}?mode=rwc"))
}

/// Any database error that is not a constraint the caller can act on. The driver's message is
/// kept for the log; queries only ever bind hashes, never raw secrets, so none can leak here.
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Whether an error is a foreign-key violation: a row refers to one that is gone (an app
/// deleted while a token, code or family of it was being written).
pub(crate) fn foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}

/// Whether a PostgreSQL transaction failed only because of concurrent ones and may simply be
/// run again: a deadlock (40P01) or a serialization failure (40001).
pub(crate) fn transient(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("40P01" | "40001")))
}

/// A write's error: a unique violation is `Conflict(what)`, a foreign-key violation
/// `NotFound` (what the row refers to is gone), anything else a backend error.
pub(crate) fn write_err(e: sqlx::Error, what: &str) -> StoreError {
    if unique_violation(&e).is_some() {
        StoreError::Conflict(what.to_string())
    } else if foreign_key_violation(&e) {
        StoreError::NotFound
    } else {
        db_err(e)
    }
}

/// The name of the unique constraint an error violated, if it is a unique violation.
/// PostgreSQL reports the constraint name; SQLite only a message naming `table.column`.
pub(crate) fn unique_violation(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            Some(d.constraint().map(str::to_string).unwrap_or_else(|| d.message().to_string()))
        }
        _ => None,
    }
}
