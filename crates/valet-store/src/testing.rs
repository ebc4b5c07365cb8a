//! Throwaway databases for tests, shared with the server's integration tests so that every
//! suite runs against both backends the same way.
//!
//! PostgreSQL isolation is one schema per test (not one database), because creating a
//! schema is cheap and needs no privileges beyond the test database's own.

use std::path::Path;

use sqlx::{AnyConnection, Connection, Executor};
use valet_core::rand::{hex_upper, OsRandom};
use valet_core::store::{Store, StoreError, StoreResult};

use crate::{db_err, SqlStore};

/// Where the PostgreSQL tests run unless `VALET_TEST_DATABASE_URL` says otherwise.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL database the tests use.
pub fn postgres_base_url() -> String {
    std::env::var("VALET_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string())
}

/// A migrated SQLite store in `dir` (typically a `tempfile::TempDir`).
pub async fn fresh_sqlite(dir: &Path) -> StoreResult<SqlStore> {
    let store = SqlStore::sqlite_in_dir(dir).await?;
    store.migrate().await?;
    Ok(store)
}

/// Creates an empty schema `t_<random>` and returns a URL whose connections use it (through
/// the `options=-c search_path=...` startup parameter), with the schema name for
/// [`drop_postgres_schema`]. The store is neither connected nor migrated, so a test can
/// exercise exactly that.
pub async fn fresh_postgres_url() -> StoreResult<(String, String)> {
    let base = postgres_base_url();
    let schema = format!("t_{}", hex_upper(&OsRandom, 8).to_lowercase());
    admin_execute(&base, &format!("CREATE SCHEMA {schema}")).await?;
    Ok((with_search_path(&base, &schema), schema))
}

/// A connected, migrated store in a fresh schema, with the schema name to drop afterwards.
pub async fn fresh_postgres() -> StoreResult<(SqlStore, String)> {
    let (url, schema) = fresh_postgres_url().await?;
    let store = SqlStore::connect(&url).await?;
    store.migrate().await?;
    Ok((store, schema))
}

/// Drops a schema made by [`fresh_postgres_url`] with everything in it. Close the stores that
/// use it first, or their idle connections keep resolving names into a schema that is gone.
pub async fn drop_postgres_schema(schema: &str) -> StoreResult<()> {
    // The name is spliced into SQL, so only names of the shape this module makes are accepted.
    let ok = schema.starts_with("t_")
        && schema.len() > 2
        && schema.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(StoreError::Backend("not a test schema name".into()));
    }
    admin_execute(&postgres_base_url(), &format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await
}

/// Appends the search_path startup option. Spelled with `%20` rather than the `+` that form
/// encoding would produce, so that libpq-based tools (psql) read the same URL the same way.
fn with_search_path(base: &str, schema: &str) -> String {
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}options=-c%20search_path%3D{schema}")
}

async fn admin_execute(url: &str, sql: &str) -> StoreResult<()> {
    sqlx::any::install_default_drivers();
    let mut conn = AnyConnection::connect(url)
        .await
        .map_err(|e| StoreError::Backend(format!("cannot connect to the test database: {e}")))?;
    conn.execute(sql).await.map_err(db_err)?;
    conn.close().await.map_err(db_err)
}

/// Runs a test's body, catching a panic, so that its cleanup (close the store, drop the
/// PostgreSQL schema) runs either way before [`resume`] lets the panic go on: a failing test
/// leaves no schema behind.
pub async fn catch_panic(body: impl std::future::Future<Output = ()>) -> Result<(), Box<dyn std::any::Any + Send>> {
    CatchUnwind(Box::pin(body)).await
}

/// Goes on with a panic [`catch_panic`] caught, once the cleanup is done.
pub fn resume(outcome: Result<(), Box<dyn std::any::Any + Send>>) {
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A future that turns a panic while it is polled into an `Err` (as `futures`' `catch_unwind`).
struct CatchUnwind<F>(std::pin::Pin<Box<F>>);

impl<F: std::future::Future<Output = ()>> std::future::Future for CatchUnwind<F> {
    type Output = Result<(), Box<dyn std::any::Any + Send>>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        let inner = self.0.as_mut();
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Ok(std::task::Poll::Ready(())) => std::task::Poll::Ready(Ok(())),
            Err(panic) => std::task::Poll::Ready(Err(panic)),
        }
    }
}
