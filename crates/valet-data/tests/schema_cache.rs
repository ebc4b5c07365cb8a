//! The schema cache: a definition made through this `DataApi` is visible at once; one made by
//! another process (here: a second `DataApi` on the same database) within the recheck.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use valet_core::rand::OsRandom;
use valet_data::{DataApi, NewObject};

both_backends!(definitions_from_elsewhere_reach_the_cache, |db| async move {
    let other = DataApi::new(&db.store, Arc::new(db.clock.clone()), Arc::new(OsRandom));
    let org = &db.caller.org_id;
    assert!(db.api.schema(org).await.unwrap().object("Gadget__c").is_none());

    // Defined through this API: the very next read has it.
    db.api.create_object(org, NewObject { name: "Widget__c".into(), label: None, label_plural: None }).await.unwrap();
    assert!(db.api.schema(org).await.unwrap().object("Widget__c").is_some());

    // Defined by "another process": the cached schema is replaced within the recheck.
    other.create_object(org, NewObject { name: "Gadget__c".into(), label: None, label_plural: None }).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while db.api.schema(org).await.unwrap().object("Gadget__c").is_none() {
        assert!(Instant::now() < deadline, "the cache never saw the other definition");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
});

// The record GET's select list is made once per schema: a field added later is in the next
// GET all the same (the schema it lived in is replaced), and a GET of chosen fields is not
// served the cached list.
both_backends!(the_record_get_sees_a_field_added_after_it, |db| async move {
    let org = &db.caller.org_id;
    let id = db.api.create(&db.caller, "Account", &serde_json::json!({"Name": "Acme"})).await.unwrap();
    for _ in 0..2 {
        let rec = common::record(&db.api.retrieve(&db.caller, "Account", id.as_str(), None, "62.0").await.unwrap());
        assert_eq!(rec["Name"], "Acme");
        assert!(rec.get("Tier__c").is_none(), "{rec}");
    }
    let only =
        common::record(&db.api.retrieve(&db.caller, "Account", id.as_str(), Some("Name"), "62.0").await.unwrap());
    assert_eq!(only.as_object().unwrap().keys().filter(|k| *k != "attributes").collect::<Vec<_>>(), ["Id", "Name"]);

    let field = valet_data::NewField {
        object: "Account".into(),
        name: "Tier__c".into(),
        field_type: "text".into(),
        length: Some(20),
        ..Default::default()
    };
    db.api.add_field(org, field).await.unwrap();
    db.api.update(&db.caller, "Account", id.as_str(), &serde_json::json!({"Tier__c": "Gold"})).await.unwrap();
    let rec = common::record(&db.api.retrieve(&db.caller, "Account", id.as_str(), None, "62.0").await.unwrap());
    assert_eq!(rec["Tier__c"], "Gold", "{rec}");
    assert_eq!(rec["Name"], "Acme");
});
