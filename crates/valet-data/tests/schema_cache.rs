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
