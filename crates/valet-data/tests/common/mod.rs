//! A data API over a fresh database (SQLite file or PostgreSQL schema) with one org and user.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use serde_json::Value;
use valet_core::clock::ManualClock;
use valet_core::ids::{KeyPrefix, SfId};
use valet_core::model::{Org, OrgSettings, User};
use valet_core::rand::OsRandom;
use valet_core::store::Store;
use valet_data::{Caller, DataApi};
use valet_store::SqlStore;

/// 2024-03-15T12:00:00Z: a Friday in the middle of a month, so date literals are predictable.
pub const NOW: i64 = 1_710_504_000_000;

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Db {
    pub api: DataApi,
    pub store: SqlStore,
    pub clock: ManualClock,
    pub caller: Caller,
    pub backend: Backend,
    _dir: tempfile::TempDir,
    schema: Option<String>,
}

#[macro_export]
macro_rules! both_backends {
    ($name:ident, |$db:ident| async move $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($db: &common::Db) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = common::Db::new(common::Backend::Sqlite).await;
                let outcome = valet_store::testing::catch_panic(run(&db)).await;
                db.stop().await;
                valet_store::testing::resume(outcome);
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = common::Db::new(common::Backend::Postgres).await;
                let outcome = valet_store::testing::catch_panic(run(&db)).await;
                db.stop().await;
                valet_store::testing::resume(outcome);
            }
        }
    };
}

impl Db {
    pub async fn new(backend: Backend) -> Db {
        let dir = tempfile::tempdir().unwrap();
        let (store, schema) = match backend {
            Backend::Sqlite => (valet_store::testing::fresh_sqlite(dir.path()).await.unwrap(), None),
            Backend::Postgres => {
                let (s, n) = valet_store::testing::fresh_postgres().await.unwrap();
                (s, Some(n))
            }
        };
        let clock = ManualClock::new(NOW);
        let api = DataApi::open(&store, Arc::new(clock.clone()), Arc::new(OsRandom)).await.unwrap();
        let (org, user) = new_org(&store, "Acme Corp", "jane@example.com").await;
        Db { api, store, clock, caller: Caller { org_id: org, user_id: user }, backend, _dir: dir, schema }
    }

    pub async fn stop(self) {
        self.store.close().await;
        if let Some(s) = &self.schema {
            valet_store::testing::drop_postgres_schema(s).await.unwrap();
        }
    }

    pub async fn create(&self, object: &str, body: Value) -> String {
        self.api
            .create(&self.caller, object, &body)
            .await
            .unwrap_or_else(|e| panic!("create {object} {body}: {e}"))
            .to_string()
    }

    pub async fn query(&self, q: &str) -> Value {
        let page = self.api.query(&self.caller, q, false, None, "62.0").await.unwrap_or_else(|e| panic!("{q}: {e}"));
        serde_json::to_value(page.body("62.0")).unwrap()
    }

    pub async fn query_err(&self, q: &str) -> valet_data::DataError {
        match self.api.query(&self.caller, q, false, None, "62.0").await {
            Ok(p) => panic!("{q} succeeded: {}", serde_json::to_string(&p.body("62.0")).unwrap()),
            Err(e) => e,
        }
    }

    /// The values of one key of every record, as strings (null as "null").
    pub async fn column(&self, q: &str, key: &str) -> Vec<String> {
        let v = self.query(q).await;
        v["records"].as_array().unwrap().iter().map(|r| pick(r, key)).collect()
    }
}

/// A record's JSON text as a value.
pub fn record(r: &valet_data::record_json::RecordJson) -> Value {
    serde_json::from_str(r.get()).unwrap()
}

/// `a.b.c` inside a record, rendered as a plain string.
pub fn pick(r: &Value, path: &str) -> String {
    let mut v = r;
    for p in path.split('.') {
        v = &v[p];
    }
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Inserts an org and a user through the Store (the data API only reads them).
pub async fn new_org(store: &SqlStore, name: &str, username: &str) -> (SfId, SfId) {
    let org = SfId::generate(KeyPrefix::Organization, &OsRandom);
    store
        .insert_org(&Org { id: org.clone(), name: name.into(), settings: OrgSettings::default(), created_at: NOW })
        .await
        .unwrap();
    let user = SfId::generate(KeyPrefix::User, &OsRandom);
    store
        .insert_user(&User {
            id: user.clone(),
            org_id: org.clone(),
            username: username.into(),
            email: username.into(),
            first_name: "Jane".into(),
            last_name: "Doe".into(),
            password_hash: "x".into(),
            active: true,
            is_admin: false,
            timezone: "America/Los_Angeles".into(),
            locale: "en_US".into(),
            language: "en_US".into(),
            created_at: NOW,
            updated_at: NOW,
        })
        .await
        .unwrap();
    (org, user)
}
