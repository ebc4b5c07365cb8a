//! Token rows and the group commit that writes them.
//!
//! Issuing a token is the hot write path: one family, one access token, maybe one refresh
//! token, per request. Written one request at a time that is a write transaction (and, on
//! SQLite, a trip to the connection's worker thread per statement) per token. Instead every
//! [`Issuance`] goes to one writer task, which takes everything that queued up while it was
//! busy and writes it in one transaction with multi-row INSERTs. A caller still waits for its
//! own commit, so a token is never handed out before it is durable; under load many callers
//! share a commit, at low load a batch is a single issuance and nothing waits for a timer.

use serde_json::json;
use sqlx::{AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};
use valet_core::model::{AccessToken, RefreshToken, TokenFamily};
use valet_core::secret::TokenHash;
use valet_core::store::{Issuance, StoreError, StoreResult};

use crate::sqlite_writer::{self, Msg};
use crate::{begin_write_on, db_err, write_err, Backend};

/// One table's INSERT: its columns with their PostgreSQL types, and how a row becomes a JSON
/// array of those columns' values.
///
/// Rows travel as one JSON array bound to one parameter and are unpacked by the database
/// (`json_each` on SQLite, `jsonb_array_elements` on PostgreSQL), so a batch of any size is a
/// single statement with a fixed text: prepared once per connection, one round trip (on
/// SQLite, one hop to the connection's worker thread) per table per batch.
pub(crate) struct RowInsert<T> {
    table: &'static str,
    columns: &'static [(&'static str, &'static str)],
    row: fn(&T) -> serde_json::Value,
    what: &'static str,
}

pub(crate) const FAMILIES: RowInsert<TokenFamily> = RowInsert {
    table: "token_families",
    columns: &[
        ("id", "text"),
        ("org_id", "text"),
        ("app_id", "text"),
        ("user_id", "text"),
        ("scopes", "text"),
        ("grant_type", "text"),
        ("auth_time", "bigint"),
        ("created_at", "bigint"),
        ("revoked_at", "bigint"),
    ],
    row: |f| {
        json!([
            f.id,
            f.org_id.as_str(),
            f.app_id.as_str(),
            f.user_id.as_str(),
            f.scopes.to_string(),
            f.grant,
            f.auth_time,
            f.created_at,
            f.revoked_at
        ])
    },
    what: "token family",
};

pub(crate) const ACCESS_TOKENS: RowInsert<AccessToken> = RowInsert {
    table: "access_tokens",
    columns: &[
        ("token_hash", "text"),
        ("family_id", "text"),
        ("org_id", "text"),
        ("app_id", "text"),
        ("user_id", "text"),
        ("scopes", "text"),
        ("created_at", "bigint"),
        ("expires_at", "bigint"),
        ("revoked_at", "bigint"),
    ],
    row: |t| {
        json!([
            t.token_hash.as_str(),
            t.family_id,
            t.org_id.as_str(),
            t.app_id.as_str(),
            t.user_id.as_str(),
            t.scopes.to_string(),
            t.created_at,
            t.expires_at,
            t.revoked_at
        ])
    },
    what: "access token",
};

pub(crate) const REFRESH_TOKENS: RowInsert<RefreshToken> = RowInsert {
    table: "refresh_tokens",
    columns: &[
        ("token_hash", "text"),
        ("family_id", "text"),
        ("org_id", "text"),
        ("app_id", "text"),
        ("user_id", "text"),
        ("scopes", "text"),
        ("created_at", "bigint"),
        ("last_used_at", "bigint"),
        ("expires_at", "bigint"),
        ("revoked_at", "bigint"),
        ("replaced_by", "text"),
    ],
    row: |t| {
        json!([
            t.token_hash.as_str(),
            t.family_id,
            t.org_id.as_str(),
            t.app_id.as_str(),
            t.user_id.as_str(),
            t.scopes.to_string(),
            t.created_at,
            t.last_used_at,
            t.expires_at,
            t.revoked_at,
            t.replaced_by.as_ref().map(TokenHash::as_str)
        ])
    },
    what: "refresh token",
};

impl<T> RowInsert<T> {
    /// One row's `INSERT INTO table (...) VALUES (?1, ...)` (the SQLite writer's statement).
    pub(crate) fn values_sql(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|(n, _)| *n).collect();
        let params: Vec<String> = (1..=self.columns.len()).map(|i| format!("?{i}")).collect();
        format!("INSERT INTO {} ({}) VALUES ({})", self.table, names.join(", "), params.join(", "))
    }

    /// The row's values, in column order, as a JSON array.
    pub(crate) fn row(&self, row: &T) -> serde_json::Value {
        (self.row)(row)
    }

    /// The kind of row, for a conflict's message.
    pub(crate) fn what(&self) -> &'static str {
        self.what
    }

    /// `INSERT INTO table (...) SELECT <each column of the JSON row> FROM <the rows in $1>`.
    fn sql(&self, backend: Backend) -> String {
        self.sql_with(backend, 1)
    }

    /// [`RowInsert::sql`] with the rows in parameter `$param`.
    fn sql_with(&self, backend: Backend, param: usize) -> String {
        let names: Vec<&str> = self.columns.iter().map(|(n, _)| *n).collect();
        let values: Vec<String> = match backend {
            Backend::Sqlite => (0..self.columns.len()).map(|i| format!("value->>{i}")).collect(),
            Backend::Postgres => {
                self.columns.iter().enumerate().map(|(i, (_, ty))| format!("(r->>{i})::{ty}")).collect()
            }
        };
        let source = match backend {
            Backend::Sqlite => format!("json_each(${param})"),
            Backend::Postgres => format!("jsonb_array_elements(${param}::jsonb) AS r"),
        };
        format!("INSERT INTO {} ({}) SELECT {} FROM {}", self.table, names.join(", "), values.join(", "), source)
    }

    /// The rows as the JSON array the statement unpacks.
    fn json(&self, rows: &[&T]) -> String {
        serde_json::Value::Array(rows.iter().map(|r| (self.row)(r)).collect()).to_string()
    }

    /// Inserts `rows` in one statement. A unique violation is a `Conflict` naming the kind of
    /// row; a foreign-key violation (the app or family is gone) is `NotFound`.
    pub(crate) async fn insert(&self, conn: &mut AnyConnection, backend: Backend, rows: &[&T]) -> StoreResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query(&self.sql(backend))
            .bind(self.json(rows))
            .execute(&mut *conn)
            .await
            .map_err(|e| write_err(e, self.what))?;
        Ok(())
    }
}

/// Records refresh-token uses: `$N` holds `[[token_hash, used_at], ...]`; a token used several
/// times in one batch gets the latest time, and a time never moves backwards.
fn touch_sql(backend: Backend, param: usize) -> String {
    match backend {
        Backend::Sqlite => format!(
            "UPDATE refresh_tokens SET last_used_at = max(last_used_at, \
             (SELECT max(value->>1) FROM json_each(${param}) WHERE value->>0 = refresh_tokens.token_hash)) \
             WHERE token_hash IN (SELECT value->>0 FROM json_each(${param}))"
        ),
        Backend::Postgres => format!(
            "UPDATE refresh_tokens t SET last_used_at = GREATEST(t.last_used_at, u.at) \
             FROM (SELECT r->>0 AS hash, max((r->>1)::bigint) AS at FROM jsonb_array_elements(${param}::jsonb) AS r GROUP BY 1) u \
             WHERE t.token_hash = u.hash"
        ),
    }
}

/// Writes a batch of issuances atomically: families first (the token rows refer to them), then
/// access tokens, refresh tokens, and the uses of refresh tokens.
///
/// On SQLite the whole transaction is one script, run in one call: every call is a trip to
/// the connection's worker thread, and that trip, not SQLite, is what a small write costs.
/// A failed script leaves its transaction open, so it is rolled back here. PostgreSQL cannot
/// take several statements with parameters in one call: it runs them in a transaction.
async fn commit_batch(conn: &mut AnyConnection, sql: &BatchSql, items: &[&Issuance]) -> StoreResult<()> {
    let families: Vec<&TokenFamily> = items.iter().filter_map(|i| i.family.as_ref()).collect();
    let access: Vec<&AccessToken> = items.iter().map(|i| &i.access).collect();
    let refresh: Vec<&RefreshToken> = items.iter().filter_map(|i| i.refresh.as_ref()).collect();
    let touches: Vec<serde_json::Value> = items
        .iter()
        .filter_map(|i| i.touch_refresh.as_ref().map(|h| json!([h.as_str(), i.access.created_at])))
        .collect();
    let params = [
        FAMILIES.json(&families),
        ACCESS_TOKENS.json(&access),
        REFRESH_TOKENS.json(&refresh),
        serde_json::Value::Array(touches).to_string(),
    ];
    let conflict = |e: sqlx::Error| write_err(e, "token");
    match sql {
        BatchSql::SqliteScript(script) => {
            let mut q = sqlx::query(script);
            for p in params {
                q = q.bind(p);
            }
            if let Err(e) = q.execute(&mut *conn).await {
                let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                return Err(conflict(e));
            }
            Ok(())
        }
        BatchSql::Postgres(statements) => {
            let mut tx = begin_write_on(conn, Backend::Postgres).await?;
            for (statement, p) in statements.iter().zip(params) {
                if p != "[]" {
                    sqlx::query(statement).bind(p).execute(&mut *tx).await.map_err(conflict)?;
                }
            }
            tx.commit().await.map_err(db_err)
        }
    }
}

/// The batch statements, built once per writer: families, access tokens, refresh tokens,
/// refresh-token uses, each taking its rows as one JSON parameter.
enum BatchSql {
    /// One script (`BEGIN IMMEDIATE; …; COMMIT`) numbering the parameters `$1..$4`.
    SqliteScript(String),
    /// Four statements, each taking its rows as `$1`.
    Postgres([String; 4]),
}

impl BatchSql {
    fn new(backend: Backend) -> BatchSql {
        let n = |i: usize| if backend == Backend::Sqlite { i } else { 1 };
        let statements = [
            FAMILIES.sql_with(backend, n(1)),
            ACCESS_TOKENS.sql_with(backend, n(2)),
            REFRESH_TOKENS.sql_with(backend, n(3)),
            touch_sql(backend, n(4)),
        ];
        match backend {
            Backend::Sqlite => BatchSql::SqliteScript(format!("BEGIN IMMEDIATE; {}; COMMIT", statements.join("; "))),
            Backend::Postgres => BatchSql::Postgres(statements),
        }
    }
}

/// The most issuances one transaction takes.
pub(crate) const MAX_BATCH: usize = 256;
/// Requests waiting for the writer beyond this make callers wait to enqueue (back-pressure).
const QUEUE: usize = 4096;

pub(crate) struct Job {
    pub(crate) issuance: Issuance,
    pub(crate) done: oneshot::Sender<StoreResult<()>>,
}

/// The handle to the writer; dropping every handle stops it.
#[derive(Debug, Clone)]
pub(crate) enum GroupCommit {
    /// A task on the tokio runtime writing through a pooled connection (PostgreSQL, and an
    /// in-memory SQLite database that no second connection could open).
    Pooled(mpsc::Sender<Job>),
    /// A SQLite file: the writer thread of [`crate::sqlite_writer`].
    Sqlite(std::sync::mpsc::Sender<Msg>),
}

impl GroupCommit {
    /// Starts the writer for the database at `url` (a thread for a SQLite file, else a task on
    /// the current tokio runtime).
    pub(crate) fn start(pool: AnyPool, backend: Backend, url: &str) -> StoreResult<GroupCommit> {
        if backend == Backend::Sqlite {
            if let Some(file) = sqlite_writer::file_of(url) {
                return Ok(GroupCommit::Sqlite(sqlite_writer::start(file, pool)?));
            }
        }
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(pool, backend, rx));
        Ok(GroupCommit::Pooled(jobs))
    }

    /// Stores one issuance; returns once the transaction that holds it has committed.
    pub(crate) async fn submit(&self, issuance: Issuance) -> StoreResult<()> {
        let (done, wait) = oneshot::channel();
        let stopped = || StoreError::Backend("the token writer has stopped".into());
        let job = Job { issuance, done };
        match self {
            GroupCommit::Pooled(jobs) => jobs.send(job).await.map_err(|_| stopped())?,
            GroupCommit::Sqlite(jobs) => jobs.send(Msg::Job(job)).map_err(|_| stopped())?,
        }
        wait.await.map_err(|_| stopped())?
    }

    /// Runs `f` on the SQLite writer thread's connection, when the store has one (`None`
    /// otherwise: the caller writes through the pool).
    pub(crate) async fn on_sqlite_writer<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> StoreResult<R> + Send + 'static,
    ) -> Option<StoreResult<R>> {
        let GroupCommit::Sqlite(jobs) = self else { return None };
        let (done, wait) = oneshot::channel();
        let write: sqlite_writer::Write = Box::new(move |conn| {
            let _ = done.send(f(conn));
        });
        let stopped = || StoreError::Backend("the database writer has stopped".into());
        if jobs.send(Msg::Write(write)).is_err() {
            return Some(Err(stopped()));
        }
        Some(wait.await.unwrap_or_else(|_| Err(stopped())))
    }

    /// Lets go of the writer's connection (the store is closing).
    pub(crate) fn close(&self) {
        if let GroupCommit::Sqlite(jobs) = self {
            let _ = jobs.send(Msg::Close);
        }
    }
}

async fn writer(pool: AnyPool, backend: Backend, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    // The writer has a connection of its own, taken out of the pool: on SQLite its page cache
    // then stays valid from one batch to the next (a connection that did not make the last
    // write must re-read every page another one changed). It is dropped when the pool closes.
    let mut own: Option<AnyConnection> = None;
    let sql = BatchSql::new(backend);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, MAX_BATCH) => if n == 0 { return },
            () = pool.close_event() => return,
        }
        let jobs = std::mem::replace(&mut batch, Vec::with_capacity(MAX_BATCH));
        let mut conn = match own.take() {
            Some(c) => c,
            None => match pool.acquire().await {
                Ok(c) => c.detach(),
                Err(e) => {
                    for j in jobs {
                        let _ = j.done.send(Err(StoreError::Backend(e.to_string())));
                    }
                    continue;
                }
            },
        };
        let items: Vec<&Issuance> = jobs.iter().map(|j| &j.issuance).collect();
        let result = commit_batch(&mut conn, &sql, &items).await;
        drop(items);
        let healthy = match result {
            Ok(()) => {
                for j in jobs {
                    let _ = j.done.send(Ok(()));
                }
                true
            }
            // One bad issuance (a conflict, a family deleted meanwhile) must not fail the
            // others that shared its transaction: retry each alone, and each gets its own answer.
            Err(e) if jobs.len() == 1 => {
                let healthy = !matches!(e, StoreError::Backend(_));
                if let Some(j) = jobs.into_iter().next() {
                    let _ = j.done.send(Err(e));
                }
                healthy
            }
            Err(_) => {
                let mut healthy = true;
                for j in jobs {
                    let r = commit_batch(&mut conn, &sql, &[&j.issuance]).await;
                    healthy &= !matches!(r, Err(StoreError::Backend(_)));
                    let _ = j.done.send(r);
                }
                healthy
            }
        };
        // A connection that failed for a reason other than a constraint is not reused.
        if healthy {
            own = Some(conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_statement_per_table_and_backend() {
        assert_eq!(
            FAMILIES.sql(Backend::Sqlite),
            "INSERT INTO token_families (id, org_id, app_id, user_id, scopes, grant_type, auth_time, created_at, revoked_at) \
             SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, value->>7, value->>8 FROM json_each($1)"
        );
        assert!(ACCESS_TOKENS
            .sql(Backend::Postgres)
            .ends_with("(r->>7)::bigint, (r->>8)::bigint FROM jsonb_array_elements($1::jsonb) AS r"));
    }
}
