//! Token rows and the group commit that writes them.
//!
//! Issuing a token is the hot write path: one family, one access token, maybe one refresh
//! token, per request. Written one request at a time that is a write transaction (and, on
//! SQLite, a trip to the connection's worker thread per statement) per token. Instead every
//! [`Issuance`] goes to one writer task, which takes everything that queued up while it was
//! busy and writes it in one transaction with multi-row INSERTs. A caller still waits for its
//! own commit, so a token is never handed out before it is durable; under load many callers
//! share a commit, at low load a batch is a single issuance and nothing waits for a timer.

use std::collections::HashMap;

use sqlx::any::AnyArguments;
use sqlx::{Any, AnyConnection, AnyPool};
use tokio::sync::{mpsc, oneshot};
use valet_core::model::{AccessToken, RefreshToken, TokenFamily};
use valet_core::secret::TokenHash;
use valet_core::store::{Issuance, StoreError, StoreResult};

use crate::{begin_write, db_err, unique_violation, Backend};

type AnyQuery<'q> = sqlx::query::Query<'q, Any, AnyArguments<'q>>;

/// One table's INSERT: its head, how many columns a row binds, and how a row binds them.
pub(crate) struct RowInsert<T> {
    head: &'static str,
    cols: usize,
    bind: for<'q> fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
    what: &'static str,
}

pub(crate) const FAMILIES: RowInsert<TokenFamily> = RowInsert {
    head: "INSERT INTO token_families (id, org_id, app_id, user_id, scopes, grant_type, auth_time, created_at, revoked_at) VALUES ",
    cols: 9,
    bind: |q, f| {
        q.bind(f.id.as_str())
            .bind(f.org_id.as_str())
            .bind(f.app_id.as_str())
            .bind(f.user_id.as_str())
            .bind(f.scopes.to_string())
            .bind(f.grant.as_str())
            .bind(f.auth_time)
            .bind(f.created_at)
            .bind(f.revoked_at)
    },
    what: "token family",
};

pub(crate) const ACCESS_TOKENS: RowInsert<AccessToken> = RowInsert {
    head: "INSERT INTO access_tokens (token_hash, family_id, org_id, app_id, user_id, scopes, created_at, expires_at, revoked_at) VALUES ",
    cols: 9,
    bind: |q, t| {
        q.bind(t.token_hash.as_str())
            .bind(t.family_id.as_str())
            .bind(t.org_id.as_str())
            .bind(t.app_id.as_str())
            .bind(t.user_id.as_str())
            .bind(t.scopes.to_string())
            .bind(t.created_at)
            .bind(t.expires_at)
            .bind(t.revoked_at)
    },
    what: "access token",
};

pub(crate) const REFRESH_TOKENS: RowInsert<RefreshToken> = RowInsert {
    head: "INSERT INTO refresh_tokens (token_hash, family_id, org_id, app_id, user_id, scopes, created_at, last_used_at, expires_at, revoked_at, replaced_by) VALUES ",
    cols: 11,
    bind: |q, t| {
        q.bind(t.token_hash.as_str())
            .bind(t.family_id.as_str())
            .bind(t.org_id.as_str())
            .bind(t.app_id.as_str())
            .bind(t.user_id.as_str())
            .bind(t.scopes.to_string())
            .bind(t.created_at)
            .bind(t.last_used_at)
            .bind(t.expires_at)
            .bind(t.revoked_at)
            .bind(t.replaced_by.as_ref().map(TokenHash::as_str))
    },
    what: "refresh token",
};

/// Rows per INSERT statement. A batch is cut into these sizes so that only a handful of
/// distinct statements exist (each is prepared once per connection and cached).
const CHUNKS: [usize; 4] = [64, 16, 4, 1];

/// `head ($1, …, $cols), ($cols+1, …), …` for `rows` rows.
fn values_sql(head: &str, cols: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(head.len() + rows * cols * 5);
    sql.push_str(head);
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(r * cols + c + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

impl<T> RowInsert<T> {
    /// Inserts `rows` with as few statements as [`CHUNKS`] allows. A unique violation is a
    /// `Conflict` naming the kind of row.
    pub(crate) async fn insert(&self, conn: &mut AnyConnection, rows: &[&T]) -> StoreResult<()> {
        let mut rest = rows;
        while !rest.is_empty() {
            let size = CHUNKS.into_iter().find(|&c| c <= rest.len()).unwrap_or(1);
            let (chunk, tail) = rest.split_at(size);
            let sql = values_sql(self.head, self.cols, size);
            let mut q = sqlx::query(&sql);
            for row in chunk {
                q = (self.bind)(q, row);
            }
            q.execute(&mut *conn).await.map_err(|e| match unique_violation(&e) {
                Some(_) => StoreError::Conflict(self.what.to_string()),
                None => db_err(e),
            })?;
            rest = tail;
        }
        Ok(())
    }
}

/// Writes issuances inside the caller's transaction.
async fn write_issuances(conn: &mut AnyConnection, items: &[&Issuance]) -> StoreResult<()> {
    let families: Vec<&TokenFamily> = items.iter().filter_map(|i| i.family.as_ref()).collect();
    let access: Vec<&AccessToken> = items.iter().map(|i| &i.access).collect();
    let refresh: Vec<&RefreshToken> = items.iter().filter_map(|i| i.refresh.as_ref()).collect();
    // Families first: the token rows refer to them.
    FAMILIES.insert(&mut *conn, &families).await?;
    ACCESS_TOKENS.insert(&mut *conn, &access).await?;
    REFRESH_TOKENS.insert(&mut *conn, &refresh).await?;
    // A busy client refreshes with the same token many times per batch: one UPDATE per token.
    let mut touched: HashMap<&str, i64> = HashMap::new();
    for i in items {
        if let Some(h) = &i.touch_refresh {
            let at = touched.entry(h.as_str()).or_insert(i.access.created_at);
            *at = (*at).max(i.access.created_at);
        }
    }
    for (hash, at) in touched {
        sqlx::query("UPDATE refresh_tokens SET last_used_at = $1 WHERE token_hash = $2 AND last_used_at < $1")
            .bind(at)
            .bind(hash)
            .execute(&mut *conn)
            .await
            .map_err(db_err)?;
    }
    Ok(())
}

/// One batch, one transaction.
async fn commit_batch(pool: &AnyPool, backend: Backend, items: &[&Issuance]) -> StoreResult<()> {
    let mut tx = begin_write(pool, backend).await?;
    write_issuances(&mut tx, items).await?;
    tx.commit().await.map_err(db_err)
}

/// The most issuances one transaction takes.
const MAX_BATCH: usize = 256;
/// Requests waiting for the writer beyond this make callers wait to enqueue (back-pressure).
const QUEUE: usize = 4096;

struct Job {
    issuance: Issuance,
    done: oneshot::Sender<StoreResult<()>>,
}

/// The handle to the writer task; dropping every handle stops it.
#[derive(Debug, Clone)]
pub(crate) struct GroupCommit {
    jobs: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the writer on the current tokio runtime.
    pub(crate) fn start(pool: AnyPool, backend: Backend) -> GroupCommit {
        let (jobs, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(pool, backend, rx));
        GroupCommit { jobs }
    }

    /// Stores one issuance; returns once the transaction that holds it has committed.
    pub(crate) async fn submit(&self, issuance: Issuance) -> StoreResult<()> {
        let (done, wait) = oneshot::channel();
        let stopped = || StoreError::Backend("the token writer has stopped".into());
        self.jobs.send(Job { issuance, done }).await.map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }
}

async fn writer(pool: AnyPool, backend: Backend, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let jobs = std::mem::take(&mut batch);
        let items: Vec<&Issuance> = jobs.iter().map(|j| &j.issuance).collect();
        let result = commit_batch(&pool, backend, &items).await;
        drop(items);
        match result {
            Ok(()) => {
                for j in jobs {
                    let _ = j.done.send(Ok(()));
                }
            }
            // One bad issuance (a conflict, a family deleted meanwhile) must not fail the
            // others that shared its transaction: retry each alone, and each gets its own answer.
            Err(e) if jobs.len() == 1 => {
                if let Some(j) = jobs.into_iter().next() {
                    let _ = j.done.send(Err(e));
                }
            }
            Err(_) => {
                for j in jobs {
                    let r = commit_batch(&pool, backend, &[&j.issuance]).await;
                    let _ = j.done.send(r);
                }
            }
        }
        batch = Vec::with_capacity(MAX_BATCH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_numbered_across_rows() {
        assert_eq!(values_sql("INSERT INTO t (a, b) VALUES ", 2, 1), "INSERT INTO t (a, b) VALUES ($1, $2)");
        assert_eq!(values_sql("V ", 2, 2), "V ($1, $2), ($3, $4)");
    }
}
