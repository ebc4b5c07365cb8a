//! Valet's data API engine: what `/services/data` serves.
//!
//! - [`schema`]: object metadata. Standard objects (Account, Contact, Lead, Opportunity, Case,
//!   and the read-only User and Organization that reflect Valet's own users and org) are code;
//!   custom objects and fields are rows in `data_objects`/`data_fields` ([`registry`]).
//! - Storage: one real SQL table per object (`obj_account`, `obj_widget__c`) with typed columns
//!   ([`ddl`]). Custom objects and fields become `CREATE TABLE` / `ALTER TABLE ADD COLUMN`.
//!   Every table holds every org's rows, keyed by `org_id`, and every statement filters on it.
//! - Records: create, retrieve, update, soft delete ([`records`]).
//! - SOQL: parsed by `valet-soql`, checked against the schema and compiled to SQL ([`soql`]),
//!   executed by the database with bound parameters; pages beyond the first through server-side
//!   query locators ([`query`]).
//!
//! The caller (the HTTP layer) has already authenticated the token; it passes the org and user
//! as a [`Caller`]. Errors are [`DataError`]s that carry Salesforce's status and `errorCode`.

pub mod ddl;
pub mod describe;
pub mod error;
pub mod query;
pub mod record_json;
pub mod records;
pub mod registry;
pub mod schema;
pub mod soql;
pub mod value;

use std::sync::Arc;

use sqlx::AnyPool;
use valet_core::clock::Clock;
use valet_core::ids::SfId;
use valet_core::rand::Random;
use valet_store::SqliteReader;

use value::{Cell, Params};

pub use ddl::Dialect;
pub use error::{DataError, DataResult};
pub use registry::{NewField, NewObject, ObjectSummary, Schema};

/// How long a read may take, for [`DataApi::read_cells`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cost {
    /// A row by its key.
    Point,
    /// Anything else (a SOQL page, a count).
    Scan,
}

/// Who is calling: the org whose records are visible and the user who writes.
#[derive(Debug, Clone)]
pub struct Caller {
    pub org_id: SfId,
    pub user_id: SfId,
}

/// The data API over one database. Cheap to share behind an `Arc`.
pub struct DataApi {
    pub(crate) pool: AnyPool,
    /// Reads on a SQLite file without the pool's hand-offs (see `valet_store::sqlite_reader`).
    pub(crate) reader: Option<Arc<SqliteReader>>,
    pub(crate) dialect: Dialect,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: Arc<dyn Random>,
    pub(crate) schemas: registry::SchemaCache,
}

impl DataApi {
    /// Uses the store's pool; call [`DataApi::migrate`] before serving.
    pub fn new(store: &valet_store::SqlStore, clock: Arc<dyn Clock>, rng: Arc<dyn Random>) -> DataApi {
        DataApi {
            pool: store.pool().clone(),
            reader: store.sqlite_reader().cloned(),
            dialect: store.backend().into(),
            clock,
            rng,
            schemas: Default::default(),
        }
    }

    /// [`DataApi::new`] then [`DataApi::migrate`].
    pub async fn open(
        store: &valet_store::SqlStore,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Random>,
    ) -> DataResult<DataApi> {
        let api = DataApi::new(store, clock, rng);
        api.migrate().await?;
        Ok(api)
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Creates the registry tables and the standard objects' tables and indexes if missing.
    ///
    /// Idempotent `CREATE ... IF NOT EXISTS` in one DDL transaction rather than sqlx migrations,
    /// because valet-store's migrator owns `_sqlx_migrations` and the data tables are generated
    /// from the same [`schema`] definitions that custom objects use.
    pub async fn migrate(&self) -> DataResult<()> {
        let mut tx = self.begin_ddl().await?;
        for stmt in ddl::registry_tables(self.dialect) {
            sqlx::query(&stmt).execute(&mut *tx).await?;
        }
        for o in schema::standard_objects().iter().filter(|o| !o.read_only()) {
            for stmt in ddl::create_object(o, self.dialect) {
                sqlx::query(&stmt).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// The rows a read returns, as cells. On a SQLite file it runs on the store's read
    /// connections on this thread: `Cost::Point` for a read by key (microseconds, inline on the
    /// async worker), `Cost::Scan` for one whose cost depends on the data (inline within a
    /// budget, else off the worker: `SqliteReader::read_bounded`). Elsewhere, and when every
    /// read connection is busy, through the pool.
    pub(crate) async fn read_cells(&self, sql: &str, params: &Params, cost: Cost) -> DataResult<Vec<Vec<Cell>>> {
        if let Some(reader) = &self.reader {
            let run = |c: &rusqlite::Connection| -> rusqlite::Result<Vec<Vec<Cell>>> {
                let mut stmt = c.prepare_cached(sql)?;
                valet_store::sqlite_reader::bind(&mut stmt, params.values())?;
                let n = stmt.column_count();
                let mut rows = stmt.raw_query();
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(
                        (0..n)
                            .map(|i| row.get_ref(i).map(Cell::from_sqlite))
                            .collect::<rusqlite::Result<Vec<Cell>>>()?,
                    );
                }
                Ok(out)
            };
            let done = match cost {
                Cost::Point => reader.read(run).map(|r| r.and_then(|rows| rows)),
                Cost::Scan => reader.read_bounded(run),
            };
            // `None`: every read connection is busy; the pool below waits for one of its own.
            if let Some(done) = done {
                return done.map_err(DataError::internal);
            }
        }
        let rows = sqlx::query_with(sql, params.to_args()?).fetch_all(&self.pool).await?;
        rows.iter().map(|row| (0..sqlx::Row::len(row)).map(|i| value::cell(row, i)).collect()).collect()
    }

    /// A new record ID: key prefix, pod `0`, 11 random base-62 characters, checksum.
    pub(crate) fn new_id(&self, prefix: &str) -> DataResult<SfId> {
        SfId::random(prefix, self.rng.as_ref())
            .map_err(|_| DataError::internal(format!("key prefix {prefix:?} is not three alphanumerics")))
    }

    /// Today's date in UTC, for SOQL date literals.
    pub(crate) fn today(&self) -> (i32, u32, u32) {
        let days = self.clock.now_ms().div_euclid(86_400_000);
        valet_soql::CivilDate::from_days_since_epoch(days).as_tuple()
    }
}
