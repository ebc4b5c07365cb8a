//! 100,000 accounts: a selective SOQL query with ORDER BY gets its first page through an
//! index, on both backends. The plans are printed (`cargo test -p valet-data --test plan --
//! --nocapture`) and quoted in docs/data-api.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Instant;

use common::*;
use sqlx::Arguments;

const ROWS: usize = 100_000;
const CHUNK: usize = 1000;
const MINUTE: i64 = 60_000;
/// 2024-01-01T00:00:00Z: row i is created i minutes later (about 69 days in all).
const BASE: i64 = 1_704_067_200_000;

/// Bulk-loads accounts straight into the table (the API would take minutes for 100k rows).
async fn load(db: &Db) {
    let org = db.caller.org_id.as_str().to_string();
    let user = db.caller.user_id.as_str().to_string();
    let mut tx = db.store.pool().begin().await.unwrap();
    for chunk in 0..ROWS / CHUNK {
        let mut args = sqlx::any::AnyArguments::default();
        args.add(org.clone()).unwrap();
        args.add(user.clone()).unwrap();
        let mut values = Vec::with_capacity(CHUNK);
        for k in 0..CHUNK {
            let i = chunk * CHUNK + k;
            let id = valet_core::ids::to18(&format!("0010{i:011}"));
            let n = args.len();
            args.add(id).unwrap();
            args.add(format!("Account {i:06}")).unwrap();
            args.add(["Banking", "Retail", "Technology", "Energy", "Media"][i % 5].to_string()).unwrap();
            args.add(BASE + i as i64 * MINUTE).unwrap();
            values.push(format!(
                "(${}, $1, 0, ${}, $2, ${}, $2, ${}, $2, ${}, ${})",
                n + 1,
                n + 4,
                n + 4,
                n + 4,
                n + 2,
                n + 3
            ));
        }
        let sql = format!(
            "INSERT INTO obj_account (id, org_id, is_deleted, created_date, created_by_id, last_modified_date, last_modified_by_id, system_modstamp, owner_id, name, industry) VALUES {}",
            values.join(", ")
        );
        sqlx::query_with(&sql, args).execute(&mut *tx).await.unwrap();
    }
    tx.commit().await.unwrap();
    // Planner statistics, as a production database would have them.
    sqlx::query("ANALYZE").execute(db.store.pool()).await.unwrap();
}

async fn explain(db: &Db, q: &str) -> String {
    let (sql, plan) = db.api.explain(&db.caller, q).await.unwrap();
    let plan = plan.join("\n");
    println!("--- {:?}: {q}\n{sql}\n{plan}\n", db.backend);
    plan
}

async fn timed_first_page(db: &Db, q: &str) -> (u128, serde_json::Value) {
    let start = Instant::now();
    let v = db.query(q).await;
    (start.elapsed().as_millis(), v)
}

both_backends!(hundred_thousand_rows, |db| async move {
    let start = Instant::now();
    load(db).await;
    println!("loaded {ROWS} accounts in {} ms", start.elapsed().as_millis());

    // 1. A day of CreatedDate, newest first: a range scan of (org_id, created_date, id), read
    //    backwards, with no sort step.
    let by_date = "SELECT Id, Name, CreatedDate FROM Account WHERE CreatedDate >= 2024-02-01T00:00:00Z AND CreatedDate < 2024-02-02T00:00:00Z ORDER BY CreatedDate DESC";
    let plan = explain(db, by_date).await;
    assert!(plan.contains("obj_account_created_date_idx"), "{plan}");
    match db.backend {
        Backend::Sqlite => assert!(!plan.contains("TEMP B-TREE") && !plan.contains("SCAN t0"), "{plan}"),
        Backend::Postgres => assert!(!plan.contains("Seq Scan"), "{plan}"),
    }
    let (ms, v) = timed_first_page(db, by_date).await;
    println!("first page by date: {ms} ms");
    assert_eq!(v["totalSize"], 1440);
    assert_eq!(v["records"][0]["CreatedDate"], "2024-02-01T23:59:00.000+0000");

    // 2. Case-insensitive equality on Name: the LOWER(name) expression index.
    let by_name = "SELECT Id, Name, Industry FROM Account WHERE Name = 'ACCOUNT 054321' ORDER BY CreatedDate";
    let plan = explain(db, by_name).await;
    assert!(plan.contains("obj_account_name_idx"), "{plan}");
    assert!(!plan.contains("SCAN t0") && !plan.contains("Seq Scan"), "{plan}");
    let (ms, v) = timed_first_page(db, by_name).await;
    println!("first page by name: {ms} ms");
    assert_eq!(v["records"][0]["Name"], "Account 054321");

    // 3. Ordered by Name with a LIMIT: the first page comes off the name index in order.
    let ordered = "SELECT Id, Name FROM Account ORDER BY Name LIMIT 10";
    let plan = explain(db, ordered).await;
    assert!(plan.contains("obj_account_name_idx"), "{plan}");
    match db.backend {
        Backend::Sqlite => assert!(!plan.contains("TEMP B-TREE"), "{plan}"),
        Backend::Postgres => assert!(!plan.contains("Sort"), "{plan}"),
    }
    let (ms, v) = timed_first_page(db, ordered).await;
    println!("first page ordered by name: {ms} ms");
    assert_eq!(v["records"][0]["Name"], "Account 000000");
    // The page is all the query returns: totalSize is its length, without counting the
    // 100,000 matching rows.
    assert_eq!(
        (v["totalSize"].as_u64(), v["done"].as_bool(), v["records"].as_array().unwrap().len()),
        (Some(10), Some(true), 10)
    );

    // 4. A LIMIT beyond one batch: the count stops at the limit.
    let (ms, v) = timed_first_page(db, "SELECT Id, Name FROM Account ORDER BY Name LIMIT 2500").await;
    println!("first page of LIMIT 2500 ordered by name: {ms} ms");
    assert_eq!(
        (v["totalSize"].as_u64(), v["done"].as_bool(), v["records"].as_array().unwrap().len()),
        (Some(2500), Some(false), 2000)
    );
});
