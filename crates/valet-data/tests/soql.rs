//! SOQL executed by the database: every construct of the grammar, with the same expected
//! results on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;

/// Five accounts, contacts and opportunities with nulls, mixed case and dates around NOW
/// (2024-03-15T12:00Z).
async fn seed(db: &Db) {
    let day = 86_400_000;
    let accounts = [
        ("Acme", Some("Banking"), Some(100), Some(1_000_000.0)),
        ("acme labs", Some("Technology"), Some(20), None),
        ("Globex", None, Some(5000), Some(25.5)),
        ("Initech", Some("Technology"), None, Some(99.99)),
        ("O'Brien & Sons", Some("Retail"), Some(7), Some(0.0)),
    ];
    let mut ids = Vec::new();
    for (i, (name, industry, emp, rev)) in accounts.iter().enumerate() {
        // Created a day apart, the last one now.
        db.clock.set_ms(NOW - (4 - i as i64) * day);
        ids.push(
            db.create(
                "Account",
                json!({"Name": name, "Industry": industry, "NumberOfEmployees": emp, "AnnualRevenue": rev}),
            )
            .await,
        );
    }
    db.clock.set_ms(NOW);
    for (last, first, acc, email) in [
        ("Doe", Some("John"), Some(0), Some("john@acme.com")),
        ("doe", Some("jane"), Some(1), None),
        ("Smith", None, None, Some("smith@x.org")),
        ("Zed", Some("Zoe"), Some(2), None),
    ] {
        db.create("Contact", json!({"LastName": last, "FirstName": first, "AccountId": acc.map(|i: usize| ids[i].clone()), "Email": email})).await;
    }
    for (name, stage, close, amount, acc) in [
        ("Deal A", "Prospecting", "2024-03-15", Some(100.0), 0),
        ("Deal B", "Closed Won", "2024-03-14", Some(2500.0), 0),
        ("Deal C", "Closed Lost", "2024-02-01", None, 2),
        ("Deal D", "Prospecting", "2024-04-10", Some(50.25), 3),
        ("Deal E", "Qualification", "2023-12-31", Some(75.0), 4),
    ] {
        db.create(
            "Opportunity",
            json!({"Name": name, "StageName": stage, "CloseDate": close, "Amount": amount, "AccountId": ids[acc]}),
        )
        .await;
    }
}

both_backends!(comparisons, |db| async move {
    seed(db).await;
    let names = |q: &'static str| async move { db.column(q, "Name").await };
    // Text equality and LIKE are case-insensitive; ORDER BY on text too (then by Id).
    assert_eq!(names("SELECT Name FROM Account WHERE Name = 'ACME'").await, ["Acme"]);
    assert_eq!(names("SELECT Name FROM Account WHERE Name LIKE 'acme%' ORDER BY Name").await, ["Acme", "acme labs"]);
    assert_eq!(names("SELECT Name FROM Account WHERE Name LIKE '%o\\'b%'").await, ["O'Brien & Sons"]);
    assert_eq!(names("SELECT Name FROM Account WHERE Name LIKE '_lobex'").await, ["Globex"]);
    assert_eq!(names("SELECT Name FROM Account WHERE Name LIKE 'acme\\_%'").await, Vec::<String>::new());
    assert_eq!(
        names("SELECT Name FROM Account ORDER BY Name").await,
        ["Acme", "acme labs", "Globex", "Initech", "O'Brien & Sons"]
    );
    // != and NOT IN include nulls, as in SOQL; = null / != null.
    assert_eq!(
        names("SELECT Name FROM Account WHERE Industry != 'Technology' ORDER BY Name").await,
        ["Acme", "Globex", "O'Brien & Sons"]
    );
    assert_eq!(
        names("SELECT Name FROM Account WHERE Industry NOT IN ('Technology', 'Retail') ORDER BY Name").await,
        ["Acme", "Globex"]
    );
    assert_eq!(
        names("SELECT Name FROM Account WHERE Industry IN ('technology', 'RETAIL') ORDER BY Name").await,
        ["acme labs", "Initech", "O'Brien & Sons"]
    );
    assert_eq!(names("SELECT Name FROM Account WHERE Industry = null").await, ["Globex"]);
    assert_eq!(
        names("SELECT Name FROM Account WHERE Industry IN (null, 'Retail') ORDER BY Name").await,
        ["Globex", "O'Brien & Sons"]
    );
    assert_eq!(names("SELECT Name FROM Account WHERE NumberOfEmployees != null ORDER BY Name").await.len(), 4);
    // Numbers: int and decimal literals against int and currency columns.
    assert_eq!(
        names("SELECT Name FROM Account WHERE NumberOfEmployees > 20 ORDER BY NumberOfEmployees").await,
        ["Acme", "Globex"]
    );
    assert_eq!(
        names("SELECT Name FROM Account WHERE NumberOfEmployees >= 20 AND NumberOfEmployees <= 100 ORDER BY Name")
            .await,
        ["Acme", "acme labs"]
    );
    assert_eq!(names("SELECT Name FROM Account WHERE NumberOfEmployees < 7.5").await, ["O'Brien & Sons"]);
    assert_eq!(names("SELECT Name FROM Account WHERE AnnualRevenue = 99.99").await, ["Initech"]);
    assert_eq!(
        names("SELECT Name FROM Account WHERE AnnualRevenue < 30 ORDER BY AnnualRevenue DESC").await,
        ["Globex", "O'Brien & Sons"]
    );
    assert_eq!(
        names("SELECT Name FROM Account WHERE AnnualRevenue IN (0, 25.5) ORDER BY Name").await,
        ["Globex", "O'Brien & Sons"]
    );
    // Booleans.
    assert_eq!(db.query("SELECT Id FROM Contact WHERE HasOptedOutOfEmail = false").await["totalSize"], 4);
    assert_eq!(db.query("SELECT Id FROM Contact WHERE HasOptedOutOfEmail = TRUE").await["totalSize"], 0);
});

both_backends!(logic, |db| async move {
    seed(db).await;
    let names = |q: &'static str| async move { db.column(q, "Name").await };
    assert_eq!(
        names("SELECT Name FROM Account WHERE Industry = 'Technology' AND NumberOfEmployees > 10").await,
        ["acme labs"]
    );
    assert_eq!(
        names("SELECT Name FROM Account WHERE Industry = 'Banking' OR Industry = 'Retail' ORDER BY Name").await,
        ["Acme", "O'Brien & Sons"]
    );
    assert_eq!(names("SELECT Name FROM Account WHERE (Industry = 'Technology' OR Industry = null) AND (NumberOfEmployees > 1000 OR NumberOfEmployees = null) ORDER BY Name").await, ["Globex", "Initech"]);
    // NOT is two-valued: rows whose Industry is null are "not Technology".
    assert_eq!(
        names("SELECT Name FROM Account WHERE NOT Industry = 'Technology' ORDER BY Name").await,
        ["Acme", "Globex", "O'Brien & Sons"]
    );
    assert_eq!(
        names("SELECT Name FROM Account WHERE NOT (NumberOfEmployees > 50 OR Name LIKE 'o%') ORDER BY Name").await,
        ["acme labs", "Initech"]
    );
    assert_eq!(names("SELECT Name FROM Account WHERE NOT Name IN ('Acme', 'Globex') ORDER BY Name").await.len(), 3);
});

both_backends!(dates, |db| async move {
    seed(db).await;
    let names = |q: &'static str| async move { db.column(q, "Name").await };
    // CloseDate (date) with date literals; today is 2024-03-15 (a Friday).
    assert_eq!(names("SELECT Name FROM Opportunity WHERE CloseDate = TODAY").await, ["Deal A"]);
    assert_eq!(names("SELECT Name FROM Opportunity WHERE CloseDate = YESTERDAY").await, ["Deal B"]);
    assert_eq!(
        names("SELECT Name FROM Opportunity WHERE CloseDate = THIS_MONTH ORDER BY Name").await,
        ["Deal A", "Deal B"]
    );
    assert_eq!(
        names("SELECT Name FROM Opportunity WHERE CloseDate = LAST_N_DAYS:45 ORDER BY Name").await,
        ["Deal A", "Deal B", "Deal C"]
    );
    assert_eq!(names("SELECT Name FROM Opportunity WHERE CloseDate > TODAY").await, ["Deal D"]);
    assert_eq!(names("SELECT Name FROM Opportunity WHERE CloseDate < THIS_YEAR").await, ["Deal E"]);
    assert_eq!(
        names("SELECT Name FROM Opportunity WHERE CloseDate != THIS_MONTH ORDER BY CloseDate").await,
        ["Deal E", "Deal C", "Deal D"]
    );
    assert_eq!(
        names("SELECT Name FROM Opportunity WHERE CloseDate IN (TODAY, LAST_YEAR) ORDER BY Name").await,
        ["Deal A", "Deal E"]
    );
    assert_eq!(names("SELECT Name FROM Opportunity WHERE CloseDate >= 2024-03-01 AND CloseDate <= 2024-03-31 ORDER BY CloseDate DESC").await, ["Deal A", "Deal B"]);
    assert_eq!(names("SELECT Name FROM Opportunity WHERE CloseDate = NEXT_MONTH").await, ["Deal D"]);
    // CreatedDate (datetime): accounts were created 4..0 days before now.
    assert_eq!(names("SELECT Name FROM Account WHERE CreatedDate = TODAY").await, ["O'Brien & Sons"]);
    assert_eq!(
        names("SELECT Name FROM Account WHERE CreatedDate = LAST_N_DAYS:2 ORDER BY CreatedDate").await,
        ["Globex", "Initech", "O'Brien & Sons"]
    );
    assert_eq!(
        names("SELECT Name FROM Account WHERE CreatedDate > 2024-03-13T00:00:00Z ORDER BY CreatedDate DESC").await,
        ["O'Brien & Sons", "Initech", "Globex"]
    );
    assert_eq!(names("SELECT Name FROM Account WHERE CreatedDate <= 2024-03-11T12:00:00.000+00:00").await, ["Acme"]);
    assert_eq!(
        names("SELECT Name FROM Account WHERE CreatedDate >= 2024-03-14T13:00:00+01:00 ORDER BY Name").await,
        ["Initech", "O'Brien & Sons"]
    );
    let rec = db.query("SELECT CreatedDate, LastModifiedDate FROM Account WHERE Name = 'Acme'").await;
    assert_eq!(rec["records"][0]["CreatedDate"], "2024-03-11T12:00:00.000+0000");
});

both_backends!(order_limit_offset, |db| async move {
    seed(db).await;
    let names = |q: &'static str| async move { db.column(q, "Name").await };
    // SOQL defaults: ASC puts nulls first, DESC puts them last; explicit NULLS overrides.
    assert_eq!(
        names("SELECT Name FROM Account ORDER BY Industry, Name").await,
        ["Globex", "Acme", "O'Brien & Sons", "acme labs", "Initech"]
    );
    assert_eq!(
        names("SELECT Name FROM Account ORDER BY Industry DESC, Name").await,
        ["acme labs", "Initech", "O'Brien & Sons", "Acme", "Globex"]
    );
    assert_eq!(
        names("SELECT Name FROM Account ORDER BY Industry ASC NULLS LAST, Name DESC").await,
        ["Acme", "O'Brien & Sons", "Initech", "acme labs", "Globex"]
    );
    assert_eq!(
        names("SELECT Name FROM Account ORDER BY NumberOfEmployees DESC NULLS FIRST").await,
        ["Initech", "Globex", "Acme", "acme labs", "O'Brien & Sons"]
    );
    assert_eq!(names("SELECT Name FROM Account ORDER BY Name LIMIT 2").await, ["Acme", "acme labs"]);
    assert_eq!(names("SELECT Name FROM Account ORDER BY Name LIMIT 2 OFFSET 2").await, ["Globex", "Initech"]);
    assert_eq!(names("SELECT Name FROM Account ORDER BY Name OFFSET 4").await, ["O'Brien & Sons"]);
    let v = db.query("SELECT Name FROM Account ORDER BY Name LIMIT 2 OFFSET 2").await;
    assert_eq!(v["totalSize"], 2);
    assert_eq!(db.query("SELECT Name FROM Account LIMIT 0").await["totalSize"], 0);
    assert_eq!(db.query("SELECT COUNT() FROM Account").await, json!({"totalSize": 5, "done": true, "records": []}));
    assert_eq!(db.query("SELECT COUNT() FROM Account WHERE Industry = 'Technology'").await["totalSize"], 2);
    assert_eq!(db.query("SELECT COUNT() FROM Account LIMIT 3").await["totalSize"], 3);
    // Order by a parent's field.
    assert_eq!(
        db.column("SELECT Name FROM Opportunity ORDER BY Account.Name DESC, Name", "Name").await,
        ["Deal E", "Deal D", "Deal C", "Deal A", "Deal B"]
    );
});

both_backends!(relationships_and_aggregates, |db| async move {
    seed(db).await;
    let v = db
        .query("SELECT Name, Account.Name, Account.Industry, Owner.Name FROM Contact ORDER BY LastName, FirstName")
        .await;
    let recs = v["records"].as_array().unwrap();
    assert_eq!(recs.len(), 4);
    assert_eq!((pick(&recs[0], "Name"), pick(&recs[0], "Account.Name")), ("jane doe".into(), "acme labs".into()));
    assert_eq!(pick(&recs[1], "Account.Industry"), "Banking");
    assert_eq!(recs[2]["Account"], serde_json::Value::Null);
    assert_eq!(pick(&recs[3], "Owner.Name"), "Jane Doe");
    assert_eq!(
        db.column("SELECT LastName FROM Contact WHERE Account.Industry = 'Technology'", "LastName").await,
        ["doe"]
    );
    assert_eq!(
        db.column("SELECT LastName FROM Contact WHERE Account.Name LIKE 'acme%' ORDER BY LastName", "LastName")
            .await
            .len(),
        2
    );
    assert_eq!(
        db.column(
            "SELECT Name FROM Opportunity WHERE Account.Owner.Username = 'jane@example.com' AND Amount > 1000",
            "Name"
        )
        .await,
        ["Deal B"]
    );
    // `Account.Name` written with the object's own name.
    assert_eq!(db.column("SELECT Account.Name FROM Account WHERE Account.Name = 'globex'", "Name").await, ["Globex"]);
    let a = db.query("SELECT COUNT(Id), SUM(Amount), MAX(CloseDate), MIN(Name), COUNT_DISTINCT(StageName), AVG(Amount) FROM Opportunity").await;
    let r = &a["records"][0];
    assert_eq!(r["attributes"]["type"], "AggregateResult");
    assert_eq!(
        (r["expr0"].as_i64(), r["expr1"].as_f64(), r["expr2"].as_str(), r["expr3"].as_str(), r["expr4"].as_i64()),
        (Some(5), Some(2725.25), Some("2024-04-10"), Some("Deal A"), Some(4))
    );
    assert!((r["expr5"].as_f64().unwrap() - 681.3125).abs() < 1e-9);
});

both_backends!(errors, |db| async move {
    seed(db).await;
    let e = db.query_err("SELECT Id FROM ScratchOrgInfo limit 1").await;
    assert_eq!((e.status, e.code), (400, "INVALID_TYPE"));
    assert!(e.message.starts_with("\nSELECT Id FROM ScratchOrgInfo limit 1\n               ^\nERROR at Row:1:Column:16\nsObject type 'ScratchOrgInfo' is not supported."), "{:?}", e.message);
    let e = db.query_err("SELECT Id, Nme FROM Account").await;
    assert_eq!(e.code, "INVALID_FIELD");
    assert!(
        e.message.contains("ERROR at Row:1:Column:12\nNo such column 'Nme' on entity 'Account'"),
        "{:?}",
        e.message
    );
    let e = db.query_err("SELECT Parent.Nope.Name FROM Account").await;
    assert!(e.message.contains("Didn't understand relationship 'Nope'"), "{:?}", e.message);
    let e = db.query_err("SELECT Id FROM Account WHERE Name = 5").await;
    assert_eq!(e.code, "MALFORMED_QUERY");
    assert!(
        e.message.ends_with(
            "value of filter criterion for field 'Name' must be of type string and should be enclosed in quotes"
        ),
        "{:?}",
        e.message
    );
    let e = db.query_err("SELECT Id FROM Account WHERE NumberOfEmployees = '5'").await;
    assert!(e.message.ends_with("must be of type integer and should not be enclosed in quotes"), "{:?}", e.message);
    let e = db.query_err("SELECT Id FROM Opportunity WHERE CloseDate = 2024-01-01T00:00:00Z").await;
    assert!(e.message.contains("must be of type date"), "{:?}", e.message);
    let e = db.query_err("SELECT Id FROM Account WHERE Id = 'nope'").await;
    assert_eq!(e.code, "INVALID_QUERY_FILTER_OPERATOR");
    let e = db.query_err("SELECT Id FROM Account WHERE NumberOfEmployees LIKE '5%'").await;
    assert_eq!(e.code, "INVALID_QUERY_FILTER_OPERATOR");
    let e = db.query_err("SELECT Id, Name, id FROM Account").await;
    assert!(e.message.ends_with("duplicate field selected: id"), "{:?}", e.message);
    let e = db.query_err("SELECT Id FROM Account OFFSET 2001").await;
    assert_eq!(e.code, "NUMBER_OUTSIDE_VALID_RANGE");
    let e = db.query_err("SELECT SUM(Name) FROM Account").await;
    assert_eq!(e.code, "MALFORMED_QUERY");
    let e = db.query_err("SELECT Id FROM Account WHERE Name > null").await;
    assert_eq!(e.code, "MALFORMED_QUERY");
    let e = db.query_err("SELECT Id FROM Account WHERE").await;
    assert_eq!(e.code, "MALFORMED_QUERY");
    // Values are bound, never spliced: quotes and SQL in literals are just text.
    assert_eq!(db.query_err("SELECT Id FROM Account WHERE Name = 'x'' OR 1=1 --'").await.code, "MALFORMED_QUERY");
    assert_eq!(db.query("SELECT Id FROM Account WHERE Name = 'x\\' OR \\'1\\'=\\'1'").await["totalSize"], 0);
    assert_eq!(
        db.query("SELECT Id FROM Account WHERE Name LIKE '%\\'; DROP TABLE obj_account; --'").await["totalSize"],
        0
    );
    assert_eq!(db.query("SELECT COUNT() FROM Account").await["totalSize"], 5);
    // Client mistakes the database would choke on are refused first.
    let many = (0..6000).map(|i| format!("'{i}'")).collect::<Vec<_>>().join(",");
    assert_eq!(db.query_err(&format!("SELECT Id FROM Account WHERE Name IN ({many})")).await.code, "MALFORMED_QUERY");
    assert_eq!(db.query_err("SELECT Id FROM Account WHERE Name = 'a\u{0}b'").await.status, 400);
    assert_eq!(db.query_err("SELECT Id FROM Account WHERE Name LIKE 'a\u{0}%'").await.status, 400);
    let e = db.api.create(&db.caller, "Account", &json!({"Name": "a\u{0}b"})).await.unwrap_err();
    assert_eq!((e.status, e.code), (400, "INVALID_TYPE_ON_FIELD_IN_RECORD"));
});

both_backends!(org_isolation, |db| async move {
    seed(db).await;
    let (org_b, user_b) = new_org(&db.store, "Other", "other@example.org").await;
    let b = valet_data::Caller { org_id: org_b, user_id: user_b };
    db.api.create(&b, "Account", &json!({"Name": "Acme"})).await.unwrap();
    let page = db.api.query(&b, "SELECT Name, Owner.Username FROM Account", true, None, "62.0").await.unwrap();
    assert_eq!(page.total_size, 1);
    assert_eq!(common::record(&page.records[0])["Owner"]["Username"], "other@example.org");
    assert_eq!(db.query("SELECT COUNT() FROM Account WHERE Name = 'Acme'").await["totalSize"], 1);
    let users = db.api.query(&b, "SELECT Username FROM User", false, None, "62.0").await.unwrap();
    assert_eq!(users.total_size, 1);
    let orgs = db.api.query(&b, "SELECT Name FROM Organization", false, None, "62.0").await.unwrap();
    assert_eq!(common::record(&orgs.records[0])["Name"], "Other");
});

// `totalSize` is the number of rows the query returns in all, across batches: after its OFFSET
// and at most its LIMIT, however many rows match, whether the first batch already holds them
// all (no count is needed then) or more remain for `nextRecordsUrl`.
both_backends!(limit_bounds_total_size, |db| async move {
    for i in 0..30 {
        db.create("Account", json!({"Name": format!("Bulk {i:02}")})).await;
    }
    let v = db.query("SELECT Id, Name FROM Account ORDER BY Name LIMIT 10").await;
    assert_eq!(
        (v["totalSize"].as_u64(), v["done"].as_bool(), v["records"].as_array().unwrap().len()),
        (Some(10), Some(true), 10)
    );
    assert!(v.get("nextRecordsUrl").is_none());
    assert_eq!((pick(&v["records"][0], "Name"), pick(&v["records"][9], "Name")), ("Bulk 00".into(), "Bulk 09".into()));
    for (q, total) in [
        ("SELECT Id FROM Account", 30),
        ("SELECT Id FROM Account LIMIT 30", 30),
        ("SELECT Id FROM Account LIMIT 40", 30),
        ("SELECT Id FROM Account ORDER BY Name LIMIT 10 OFFSET 25", 5),
        ("SELECT Id FROM Account ORDER BY Name LIMIT 3 OFFSET 25", 3),
        ("SELECT Id FROM Account ORDER BY Name OFFSET 25", 5),
        ("SELECT Id FROM Account ORDER BY Name LIMIT 10 OFFSET 40", 0),
        ("SELECT Id FROM Account WHERE Name LIKE 'Bulk 1%' LIMIT 5", 5),
        ("SELECT COUNT() FROM Account LIMIT 10", 10),
        ("SELECT COUNT() FROM Account LIMIT 40", 30),
    ] {
        let v = db.query(q).await;
        assert_eq!((v["totalSize"].as_u64(), v["done"].as_bool()), (Some(total), Some(true)), "{q}");
        if !q.contains("COUNT()") {
            assert_eq!(v["records"].as_array().unwrap().len() as u64, total, "{q}");
        }
    }

    // Batches of 10: the page sizes and `totalSize` of a query followed to its end.
    let follow = |q: &'static str| async move {
        let mut page = db.api.query(&db.caller, q, false, Some(10), "62.0").await.unwrap();
        let total = page.total_size;
        let mut sizes = vec![page.records.len()];
        while let Some((id, off)) = page.next.clone() {
            page = db.api.query_more(&db.caller, &format!("{id}-{off}"), None, "62.0").await.unwrap();
            assert_eq!(page.total_size, total, "{q}");
            sizes.push(page.records.len());
        }
        (total, sizes)
    };
    assert_eq!(follow("SELECT Id FROM Account ORDER BY Name").await, (30, vec![10, 10, 10]));
    assert_eq!(follow("SELECT Id FROM Account ORDER BY Name LIMIT 25").await, (25, vec![10, 10, 5]));
    assert_eq!(follow("SELECT Id FROM Account ORDER BY Name LIMIT 11").await, (11, vec![10, 1]));
    assert_eq!(follow("SELECT Id FROM Account ORDER BY Name LIMIT 10").await, (10, vec![10]));
    assert_eq!(follow("SELECT Id FROM Account ORDER BY Name LIMIT 15 OFFSET 20").await, (10, vec![10]));
    assert_eq!(follow("SELECT Id FROM Account ORDER BY Name LIMIT 15 OFFSET 19").await, (11, vec![10, 1]));
    // Exactly a batch's worth, no LIMIT: one page, done.
    assert_eq!(follow("SELECT Id FROM Account WHERE Name LIKE 'Bulk 0%'").await, (10, vec![10]));
    assert_eq!(follow("SELECT Id FROM Account WHERE Name LIKE 'Bulk 0%' LIMIT 10").await, (10, vec![10]));
});
