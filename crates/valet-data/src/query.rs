//! Running SOQL: `/query`, `/queryAll` and `/query/<locator>`.
//!
//! Paging: the first request reads the first batch and, only when that does not already hold
//! every row the query returns, counts them (`totalSize`; under a LIMIT the count stops at the
//! limit). When more remain, a **query locator** row is stored server-side
//! (`data_query_locators`: the SOQL text, queryAll or not, batch size, total, org, user, expiry
//! 15 minutes after its last use) and `nextRecordsUrl` is
//! `/services/data/vNN.0/query/<01g…18 chars>-<offset>`. A later request re-parses the stored
//! text and reads the page at that offset with the same deterministic `ORDER BY` (the query's
//! own, then the record ID). Only the org and user that made a locator can use it. The text
//! rather than compiled SQL is stored so a schema change between pages is checked again, and
//! nothing from the table is ever spliced into SQL.
//!
//! Consistency: pages are read at their offset, not from a snapshot, so rows inserted or
//! deleted between two pages may shift what the later page contains (Salesforce's cursors are
//! snapshots). `totalSize` is the count taken for the first page.

use serde::Serialize;
use serde_json::{json, Value as Json};
use sqlx::Row;
use valet_soql::Query;

use crate::error::{DataError, DataResult};
use crate::record_json::{self, RecordJson};
use crate::registry::Schema;
use crate::soql::{self, AggregateFn2, Compiled, Env, Shape};
use crate::value::{cell, Cell, Params};
use crate::{Caller, Cost, DataApi};

pub const DEFAULT_BATCH: u32 = 2000;
pub const MIN_BATCH: u32 = 200;
pub const MAX_BATCH: u32 = 2000;
/// Locators expire 15 minutes after they were last used.
pub const LOCATOR_TTL_MS: i64 = 15 * 60 * 1000;

/// One page of results.
#[derive(Debug)]
pub struct Page {
    pub total_size: u64,
    pub records: Vec<RecordJson>,
    /// `(locator id, offset of the next page)` when more remain.
    pub next: Option<(String, u64)>,
}

impl Page {
    /// The body of `/query`, in Salesforce's key order.
    pub fn body<'a>(&'a self, version: &'a str) -> PageBody<'a> {
        PageBody {
            total_size: self.total_size,
            done: self.next.is_none(),
            next_records_url: self.next.as_ref().map(|(id, off)| NextUrl { version, id, offset: *off }),
            records: &self.records,
        }
    }
}

/// `{"totalSize", "done", "nextRecordsUrl"?, "records"}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageBody<'a> {
    total_size: u64,
    done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_records_url: Option<NextUrl<'a>>,
    records: &'a [RecordJson],
}

/// `/services/data/v62.0/query/<locator>-<offset>`.
#[derive(Debug)]
struct NextUrl<'a> {
    version: &'a str,
    id: &'a str,
    offset: u64,
}

impl Serialize for NextUrl<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("/services/data/v{}/query/{}-{}", self.version, self.id, self.offset))
    }
}

/// `Sforce-Query-Options: batchSize=N` (N is clamped to 200..=2000, as Salesforce treats it as
/// a hint).
pub fn batch_size_from_header(h: Option<&str>) -> Option<u32> {
    let h = h?;
    for part in h.split([',', ';']) {
        let (k, v) = part.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("batchSize") {
            let n: u64 = v.trim().parse().ok()?;
            return Some(u32::try_from(n.clamp(u64::from(MIN_BATCH), u64::from(MAX_BATCH))).unwrap_or(MAX_BATCH));
        }
    }
    None
}

fn parse(text: &str) -> DataResult<Query> {
    valet_soql::parse(text).map_err(|e| DataError::soql(text, &e))
}

impl DataApi {
    /// `GET /query?q=` (or `/queryAll` when `all`).
    pub async fn query(
        &self,
        caller: &Caller,
        text: &str,
        all: bool,
        batch: Option<u32>,
        version: &str,
    ) -> DataResult<Page> {
        let schema = self.schema(&caller.org_id).await?;
        let batch = batch.unwrap_or(DEFAULT_BATCH);
        let page = self.run_query_text(caller, &schema, text, all, batch, version).await?;
        if let Some((_, next)) = &page.next {
            let id = self.store_locator(caller, text, all, batch, page.total_size).await?;
            return Ok(Page { next: Some((id, *next)), ..page });
        }
        Ok(page)
    }

    /// `GET /query/<locator>-<offset>`.
    pub async fn query_more(
        &self,
        caller: &Caller,
        locator: &str,
        batch: Option<u32>,
        version: &str,
    ) -> DataResult<Page> {
        let invalid = || DataError::bad_request("INVALID_QUERY_LOCATOR", "invalid query locator");
        let (id, offset) = locator.rsplit_once('-').ok_or_else(invalid)?;
        let offset: u64 = offset.parse().map_err(|_| invalid())?;
        if id.len() != 18 || !id.starts_with("01g") || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(invalid());
        }
        let now = self.clock.now_ms();
        let row = sqlx::query("SELECT query_text, query_all, batch_size, total_size FROM data_query_locators WHERE id = $1 AND org_id = $2 AND user_id = $3 AND expires_at > $4")
            .bind(id)
            .bind(caller.org_id.as_str())
            .bind(caller.user_id.as_str())
            .bind(now)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(invalid)?;
        let text: String = row.try_get(0)?;
        let all = cell(&row, 1)?.as_i64() == Some(1);
        let stored_batch = u32::try_from(cell(&row, 2)?.as_i64().unwrap_or(2000)).unwrap_or(DEFAULT_BATCH);
        let total = u64::try_from(cell(&row, 3)?.as_i64().unwrap_or(0)).unwrap_or(0);
        if offset >= total {
            return Err(invalid());
        }
        let batch = batch.unwrap_or(stored_batch);
        let schema = self.schema(&caller.org_id).await?;
        let q = parse(&text)?;
        let env = self.env(caller, all);
        let c = soql::compile(&text, &q, &schema, &env)?;
        let take = u64::from(batch).min(total - offset);
        let records = self.fetch_records(&c, c.offset + offset, take, version, Cost::Scan).await?;
        let next_off = offset + records.len() as u64;
        let done = records.is_empty() || next_off >= total;
        sqlx::query("UPDATE data_query_locators SET expires_at = $1 WHERE id = $2")
            .bind(now + LOCATOR_TTL_MS)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(Page { total_size: total, records, next: (!done).then(|| (id.to_string(), next_off)) })
    }

    fn env<'a>(&self, caller: &'a Caller, all: bool) -> Env<'a> {
        Env { org_id: caller.org_id.as_str(), today: self.today(), query_all: all, dialect: self.dialect }
    }

    /// Parses, compiles and runs the first page of a query (no locator is stored here).
    pub(crate) async fn run_query_text(
        &self,
        caller: &Caller,
        schema: &Schema,
        text: &str,
        all: bool,
        batch: u32,
        version: &str,
    ) -> DataResult<Page> {
        let q = parse(text)?;
        let env = self.env(caller, all);
        let c = soql::compile(text, &q, schema, &env)?;
        match &c.shape {
            Shape::Count => {
                let n = self.count(&c).await?;
                Ok(Page { total_size: n, records: vec![], next: None })
            }
            Shape::Aggregate(aggs) => {
                let sql = format!("SELECT {} FROM {} WHERE {}", c.select, c.from, c.where_);
                let row = self.read_cells(&sql, &c.params, Cost::Scan).await?.into_iter().next().unwrap_or_default();
                let mut rec = serde_json::Map::new();
                rec.insert("attributes".into(), json!({"type": "AggregateResult"}));
                for (i, (func, _, f)) in aggs.iter().enumerate() {
                    let v = row.get(i).cloned().unwrap_or(Cell::Null);
                    let j = match func {
                        AggregateFn2::Count | AggregateFn2::Other(valet_soql::AggregateFn::CountDistinct) => {
                            json!(v.as_i64().unwrap_or(0))
                        }
                        AggregateFn2::Other(valet_soql::AggregateFn::Sum | valet_soql::AggregateFn::Avg) => {
                            v.as_f64().map_or(Json::Null, |x| json!(x))
                        }
                        AggregateFn2::Other(_) => v.to_json(f.ftype),
                    };
                    rec.insert(format!("expr{i}"), j);
                }
                let rows = if c.limit == Some(0) || c.offset > 0 {
                    vec![]
                } else {
                    vec![serde_json::value::to_raw_value(&rec).map_err(DataError::internal)?]
                };
                Ok(Page { total_size: rows.len() as u64, records: rows, next: None })
            }
            Shape::Records { .. } => {
                // The first page is read before anything is counted: when it holds every row
                // the query returns (fewer than asked for, or the LIMIT reached), its length is
                // `totalSize` and no COUNT runs. One row more than the page is asked for when
                // only that tells whether more remain.
                let page = u64::from(batch).min(c.limit.unwrap_or(u64::MAX));
                if page == 0 {
                    return Ok(Page { total_size: 0, records: vec![], next: None });
                }
                let ask = if c.limit.is_some_and(|l| l <= page) { page } else { page + 1 };
                let mut records = self.fetch_records(&c, c.offset, ask, version, Cost::Scan).await?;
                let total = if (records.len() as u64) < ask || ask == page {
                    records.len() as u64
                } else {
                    records.truncate(usize::try_from(page).unwrap_or(usize::MAX));
                    // Rows deleted since the page was read may make the count smaller.
                    self.count(&c).await?.max(page)
                };
                let n = records.len() as u64;
                let next = (n > 0 && n < total).then(|| (String::new(), n));
                Ok(Page { total_size: total, records, next })
            }
        }
    }

    /// How many rows the query returns in all: those matching, after its OFFSET, at most its
    /// LIMIT. With a LIMIT the count stops there (`COUNT(*)` of a `LIMIT`ed subquery), so
    /// `LIMIT 10` over a million matching rows counts ten.
    async fn count(&self, c: &Compiled<'_>) -> DataResult<u64> {
        let (sql, p) = match c.limit {
            Some(limit) => {
                let mut p = c.params.clone();
                let lim = p.int(i64::try_from(limit).unwrap_or(i64::MAX));
                let off = p.int(i64::try_from(c.offset).unwrap_or(i64::MAX));
                (
                    format!(
                        "SELECT COUNT(*) FROM (SELECT 1 AS one FROM {} WHERE {} LIMIT {lim} OFFSET {off}) AS returned",
                        c.from, c.where_
                    ),
                    p,
                )
            }
            None => (format!("SELECT COUNT(*) FROM {} WHERE {}", c.from, c.where_), c.params.clone()),
        };
        let rows = self.read_cells(&sql, &p, Cost::Scan).await?;
        let n = rows.first().and_then(|r| r.first()).and_then(Cell::as_i64).unwrap_or(0);
        let n = u64::try_from(n).unwrap_or(0);
        // Under a LIMIT the subquery has skipped the OFFSET already.
        let skipped = if c.limit.is_some() { 0 } else { c.offset };
        Ok(clamp_total(n, skipped, c.limit))
    }

    /// The SQL of one page and its parameters.
    fn page_sql(c: &Compiled<'_>, offset: u64, take: u64) -> (String, Params) {
        let mut p = c.params.clone();
        let lim = p.int(i64::try_from(take).unwrap_or(i64::MAX));
        let off = p.int(i64::try_from(offset).unwrap_or(i64::MAX));
        (
            format!(
                "SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT {lim} OFFSET {off}",
                c.select, c.from, c.where_, c.order_by
            ),
            p,
        )
    }

    pub(crate) async fn fetch_records(
        &self,
        c: &Compiled<'_>,
        offset: u64,
        take: u64,
        version: &str,
        cost: Cost,
    ) -> DataResult<Vec<RecordJson>> {
        let (sql, p) = Self::page_sql(c, offset, take);
        let rows = self.read_cells(&sql, &p, cost).await?;
        rows.into_iter().map(|cells| record_json::write(c, cells, version)).collect()
    }

    async fn store_locator(
        &self,
        caller: &Caller,
        text: &str,
        all: bool,
        batch: u32,
        total: u64,
    ) -> DataResult<String> {
        let id = self.new_id("01g")?.to_string();
        let now = self.clock.now_ms();
        // Expired locators go as new ones come (an index on expires_at keeps this cheap).
        sqlx::query("DELETE FROM data_query_locators WHERE expires_at <= $1").bind(now).execute(&self.pool).await?;
        sqlx::query("INSERT INTO data_query_locators (id, org_id, user_id, query_text, query_all, batch_size, total_size, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(&id)
            .bind(caller.org_id.as_str())
            .bind(caller.user_id.as_str())
            .bind(text)
            .bind(i64::from(all))
            .bind(i64::from(batch))
            .bind(i64::try_from(total).unwrap_or(i64::MAX))
            .bind(now)
            .bind(now + LOCATOR_TTL_MS)
            .execute(&self.pool)
            .await?;
        Ok(id)
    }

    /// The database's plan for a query's first page (`EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN`
    /// on PostgreSQL), with the SQL it explains: evidence that a selective query is served by an
    /// index.
    pub async fn explain(&self, caller: &Caller, text: &str) -> DataResult<(String, Vec<String>)> {
        let schema = self.schema(&caller.org_id).await?;
        let q = parse(text)?;
        let env = self.env(caller, false);
        let c = soql::compile(text, &q, &schema, &env)?;
        let (sql, p) = Self::page_sql(&c, c.offset, u64::from(DEFAULT_BATCH));
        let (prefix, col) = match self.dialect {
            crate::Dialect::Sqlite => ("EXPLAIN QUERY PLAN ", 3),
            crate::Dialect::Postgres => ("EXPLAIN ", 0),
        };
        let rows = sqlx::query_with(&format!("{prefix}{sql}"), p.to_args()?).fetch_all(&self.pool).await?;
        let mut lines = Vec::new();
        for r in rows {
            lines.push(cell(&r, col)?.into_text().unwrap_or_default());
        }
        Ok((sql, lines))
    }
}

/// `totalSize`: the matching rows after `OFFSET`, at most `LIMIT`.
fn clamp_total(count: u64, offset: u64, limit: Option<u64>) -> u64 {
    let n = count.saturating_sub(offset);
    limit.map_or(n, |l| n.min(l))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn batch_header() {
        assert_eq!(batch_size_from_header(Some("batchSize=500")), Some(500));
        assert_eq!(batch_size_from_header(Some("batchSize=5")), Some(200));
        assert_eq!(batch_size_from_header(Some("batchSize=50000")), Some(2000));
        assert_eq!(batch_size_from_header(Some("batchSize=x")), None);
        assert_eq!(batch_size_from_header(None), None);
    }

    #[test]
    fn totals() {
        assert_eq!(clamp_total(10, 3, None), 7);
        assert_eq!(clamp_total(10, 3, Some(5)), 5);
        assert_eq!(clamp_total(10, 30, Some(5)), 0);
    }
}
