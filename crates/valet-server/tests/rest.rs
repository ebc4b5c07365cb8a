//! The REST data API (`/services/data`) over HTTP, on SQLite and PostgreSQL: discovery, token
//! checks, records and their errors, describe, query and paging, org isolation, custom objects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use valet_core::ids::SfId;
use valet_data::{Caller, NewField, NewObject};

/// An HTTP answer: status, headers, JSON body (Null when empty).
struct Resp {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn call(app: &TestApp, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
    let mut rb = app.client().request(method, app.url(path));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.header("content-type", "application/json").body(b.to_string());
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status} not JSON: {text}"))
    };
    Resp { status, headers, body }
}

async fn get(app: &TestApp, path: &str, token: &str) -> Resp {
    call(app, Method::GET, path, Some(token), None).await
}

async fn token(app: &TestApp) -> String {
    app.tokens("api refresh_token").await["access_token"].as_str().unwrap().to_string()
}

fn err_code(r: &Resp) -> &str {
    r.body[0]["errorCode"].as_str().unwrap_or_else(|| panic!("not an error array: {}", r.body))
}

fn err_msg(r: &Resp) -> &str {
    r.body[0]["message"].as_str().unwrap()
}

fn enc(q: &str) -> String {
    common::urlencode(q)
}

async fn create(app: &TestApp, t: &str, object: &str, body: Value) -> String {
    let r =
        call(app, Method::POST, &format!("/services/data/v62.0/sobjects/{object}"), Some(t), Some(body.clone())).await;
    assert_eq!(r.status, 201, "{body} → {}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

both_backends!(discovery, |app: &TestApp| async move {
    // The versions list needs no token, with or without the slash (sf CLI / others).
    for path in ["/services/data", "/services/data/"] {
        let r = call(app, Method::GET, path, None, None).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["content-type"], "application/json;charset=UTF-8");
        let list = r.body.as_array().unwrap();
        assert!(list.len() >= 13);
        assert!(list.iter().all(|v| {
            let s = v["version"].as_str().unwrap();
            s.len() == 4 && s.ends_with(".0") && v["url"] == format!("/services/data/v{s}")
        }));
        assert_eq!(list.last().unwrap()["version"], valet_core::API_VERSION_LATEST);
        assert_eq!(list.last().unwrap()["label"], "Winter '25");
        assert!(list.iter().any(|v| v["version"] == "50.0"));
    }
    let t = token(app).await;
    for path in ["/services/data/v62.0", "/services/data/v62.0/", "/services/data/v50.0/"] {
        let r = get(app, path, &t).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.body["sobjects"].as_str().unwrap().ends_with("/sobjects"));
        assert_eq!(r.body["identity"], format!("{}/id/{}/{}", app.base, app.org_id, app.user.id));
    }
    let r = get(app, "/services/data/v99.0/", &t).await;
    assert_eq!((r.status, err_code(&r)), (404, "NOT_FOUND"));
    assert_eq!(err_msg(&r), "The requested resource does not exist");
    let r = get(app, "/services/data/v62.0/nope", &t).await;
    assert_eq!((r.status, err_code(&r)), (404, "NOT_FOUND"));
    for path in ["/services/data/v62.0/limits", "/services/data/v62.0/limits/"] {
        let r = get(app, path, &t).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body["DailyApiRequests"]["Max"], 15000);
    }
    let r = call(app, Method::POST, "/services/data/v62.0/limits", Some(&t), Some(json!({}))).await;
    assert_eq!((r.status, err_code(&r)), (405, "METHOD_NOT_ALLOWED"));
    assert_eq!(r.headers["allow"], "GET,HEAD");
    let r = get(app, "/services/data/v62.0/chatter/users/me", &t).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["id"], app.user.id.as_str());
    assert_eq!(r.body["username"], app.user.username);
});

both_backends!(token_checks, |app: &TestApp| async move {
    let path = "/services/data/v62.0/query?q=SELECT+Id+FROM+Account";
    let check_401 = |r: &Resp, msg: &str| {
        assert_eq!(r.status, 401, "{}", r.body);
        assert_eq!(r.headers["www-authenticate"], "Token");
        assert_eq!(r.body, json!([{"message": msg, "errorCode": "INVALID_SESSION_ID"}]));
    };
    check_401(&call(app, Method::GET, path, None, None).await, "Session expired or invalid");
    check_401(&get(app, path, "garbage").await, "Session expired or invalid");
    check_401(&get(app, path, &format!("{}!AQ.nottoken", &app.org_id[..15])).await, "Session expired or invalid");
    // A fresh token works at once, under both schemes; OAuth is what old clients send.
    let tokens = app.tokens("api refresh_token").await;
    let t = tokens["access_token"].as_str().unwrap();
    assert_eq!(get(app, path, t).await.status, 200);
    let r = app.client().get(app.url(path)).header("authorization", format!("OAuth {t}")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Without api scope: the message jsforce does not refresh on.
    let narrow = app.tokens("id web refresh_token").await;
    check_401(
        &get(app, path, narrow["access_token"].as_str().unwrap()).await,
        "This session is not valid for use with the REST API",
    );
    // Expired, then refreshed: the new token is accepted (jsforce's retry path).
    app.clock.advance_ms(3 * 24 * 3600 * 1000);
    check_401(&get(app, path, t).await, "Session expired or invalid");
    let (status, refreshed) = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("client_id", &app.app.consumer_key),
            ("client_secret", &app.secret),
        ])
        .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(get(app, path, refreshed["access_token"].as_str().unwrap()).await.status, 200);
    // Revoked.
    let t2 = token(app).await;
    let r = app.client().post(app.url("/services/oauth2/revoke")).form(&[("token", t2.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    check_401(&get(app, path, &t2).await, "Session expired or invalid");
});

both_backends!(records_crud, |app: &TestApp| async move {
    let t = token(app).await;
    // simple-salesforce's trailing slash on create.
    let r = call(app, Method::POST, "/services/data/v59.0/sobjects/Account/", Some(&t), Some(json!({"Name": "Express Logistics", "NumberOfEmployees": 12, "AnnualRevenue": "1500.456", "Website": "https://x.example"}))).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body, json!({"id": id, "success": true, "errors": []}));
    assert!(id.starts_with("001") && id.len() == 18);
    assert_eq!(SfId::parse(&id).unwrap().as_str(), id);

    let r = get(app, &format!("/services/data/v59.0/sobjects/Account/{id}"), &t).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["attributes"],
        json!({"type": "Account", "url": format!("/services/data/v59.0/sobjects/Account/{id}")})
    );
    assert_eq!(r.body["Name"], "Express Logistics");
    assert_eq!(r.body["NumberOfEmployees"], 12);
    assert_eq!(r.body["AnnualRevenue"], 1500.46);
    assert_eq!(r.body["Industry"], Value::Null);
    assert_eq!(r.body["IsDeleted"], false);
    assert_eq!(r.body["OwnerId"], app.user.id.as_str());
    assert_eq!(r.body["CreatedById"], app.user.id.as_str());
    assert!(r.body["CreatedDate"].as_str().unwrap().ends_with("+0000"));
    assert_eq!(r.body["CreatedDate"], r.body["SystemModstamp"]);
    // The 15-character form is accepted; 18 comes back.
    let r = get(app, &format!("/services/data/v62.0/sobjects/Account/{}?fields=Name,Industry", &id[..15]), &t).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 4, "{keys:?}");
    assert_eq!(r.body["Id"], id.as_str());
    let r = get(app, &format!("/services/data/v62.0/sobjects/Account/{id}?fields=Nope"), &t).await;
    assert_eq!((r.status, err_code(&r)), (400, "INVALID_FIELD"));

    app.clock.advance_ms(1000);
    let r = call(
        app,
        Method::PATCH,
        &format!("/services/data/v62.0/sobjects/Account/{id}"),
        Some(&t),
        Some(json!({"Name": "Acme 2", "Industry": "Banking", "Website": null})),
    )
    .await;
    assert_eq!((r.status, &r.body), (204, &Value::Null));
    let r = get(app, &format!("/services/data/v62.0/sobjects/Account/{id}"), &t).await;
    assert_eq!(
        (r.body["Name"].as_str(), r.body["Industry"].as_str(), &r.body["Website"]),
        (Some("Acme 2"), Some("Banking"), &Value::Null)
    );
    assert_ne!(r.body["LastModifiedDate"], r.body["CreatedDate"]);

    // A contact under the account: Name is derived, the lookup is checked.
    let cid = create(app, &t, "Contact", json!({"FirstName": "Ada", "LastName": "Lovelace", "AccountId": id, "Email": "ada@example.com", "Birthdate": "1815-12-10"})).await;
    let r = get(app, &format!("/services/data/v62.0/sobjects/Contact/{cid}"), &t).await;
    assert_eq!((r.body["Name"].as_str(), r.body["Birthdate"].as_str()), (Some("Ada Lovelace"), Some("1815-12-10")));
    let r = call(
        app,
        Method::PATCH,
        &format!("/services/data/v62.0/sobjects/Contact/{cid}"),
        Some(&t),
        Some(json!({"LastName": "King"})),
    )
    .await;
    assert_eq!(r.status, 204);
    assert_eq!(get(app, &format!("/services/data/v62.0/sobjects/Contact/{cid}"), &t).await.body["Name"], "Ada King");

    let r = call(app, Method::DELETE, &format!("/services/data/v62.0/sobjects/Account/{id}"), Some(&t), None).await;
    assert_eq!(r.status, 204);
    let r = get(app, &format!("/services/data/v62.0/sobjects/Account/{id}"), &t).await;
    assert_eq!((r.status, err_code(&r), err_msg(&r)), (404, "ENTITY_IS_DELETED", "entity is deleted"));
    let r = call(app, Method::DELETE, &format!("/services/data/v62.0/sobjects/Account/{id}"), Some(&t), None).await;
    assert_eq!((r.status, err_code(&r)), (404, "ENTITY_IS_DELETED"));
    let r = call(
        app,
        Method::PATCH,
        &format!("/services/data/v62.0/sobjects/Account/{id}"),
        Some(&t),
        Some(json!({"Name": "x"})),
    )
    .await;
    assert_eq!((r.status, err_code(&r)), (404, "ENTITY_IS_DELETED"));

    // Every standard object can be created with its required fields.
    create(app, &t, "Lead", json!({"LastName": "Smith", "Company": "Initech"})).await;
    create(
        app,
        &t,
        "Opportunity",
        json!({"Name": "Big deal", "StageName": "Prospecting", "CloseDate": "2024-06-30", "Amount": 5000}),
    )
    .await;
    let case = create(app, &t, "Case", json!({"Subject": "Broken"})).await;
    assert!(case.starts_with("500"));
    let r = get(app, &format!("/services/data/v62.0/sobjects/Case/{case}"), &t).await;
    assert_eq!(
        (r.body["CaseNumber"].as_str(), r.body["Status"].as_str(), r.body["Priority"].as_str()),
        (Some("00001001"), Some("New"), Some("Medium"))
    );
    let case2 = create(app, &t, "Case", json!({"Subject": "Again"})).await;
    assert_eq!(
        get(app, &format!("/services/data/v62.0/sobjects/Case/{case2}"), &t).await.body["CaseNumber"],
        "00001002"
    );

    // The sf CLI's post-login read of the user.
    let r = get(app, &format!("/services/data/v51.0/sobjects/User/{}", app.user.id), &t).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["Username"], app.user.username);
    assert_eq!(r.body["IsActive"], true);
    let r = call(
        app,
        Method::PATCH,
        &format!("/services/data/v62.0/sobjects/User/{}", app.user.id),
        Some(&t),
        Some(json!({"LastName": "x"})),
    )
    .await;
    assert_eq!((r.status, err_code(&r)), (405, "METHOD_NOT_ALLOWED"));
});

both_backends!(record_errors, |app: &TestApp| async move {
    let t = token(app).await;
    let post = |body: Value| {
        let t = t.clone();
        async move { call(app, Method::POST, "/services/data/v62.0/sobjects/Account", Some(&t), Some(body)).await }
    };
    let r = post(json!({"Industry": "Banking"})).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body,
        json!([{"message": "Required fields are missing: [Name]", "errorCode": "REQUIRED_FIELD_MISSING", "fields": ["Name"]}])
    );
    let r = post(json!({"Name": "x", "Foo": 1})).await;
    assert_eq!((err_code(&r), err_msg(&r)), ("INVALID_FIELD", "No such column 'Foo' on sobject of type Account"));
    let r = post(json!({"Id": "001000000000001AAA", "Name": "x"})).await;
    assert_eq!(
        (err_code(&r), err_msg(&r)),
        ("INVALID_FIELD", "The Id field should not be specified in the sobject data.")
    );
    let r = post(json!({"Name": "x".repeat(256)})).await;
    assert_eq!((r.status, err_code(&r)), (400, "STRING_TOO_LONG"));
    assert_eq!(r.body[0]["fields"], json!(["Name"]));
    let r = post(json!({"Name": "x", "NumberOfEmployees": "many"})).await;
    assert_eq!(
        (err_code(&r), err_msg(&r)),
        ("INVALID_TYPE_ON_FIELD_IN_RECORD", "Employees: value not of required type: many")
    );
    let r = post(json!({"Name": "x", "NumberOfEmployees": [1]})).await;
    assert_eq!(err_code(&r), "INVALID_TYPE_ON_FIELD_IN_RECORD");
    let r = post(json!({"Name": "x", "CreatedDate": "2024-01-01T00:00:00Z"})).await;
    assert_eq!(err_code(&r), "INVALID_FIELD_FOR_INSERT_UPDATE");
    let r = post(json!({"Name": "x", "ParentId": "not-an-id"})).await;
    assert_eq!(err_code(&r), "MALFORMED_ID");
    let r = post(json!({"Name": "x", "ParentId": app.user.id.as_str()})).await;
    assert_eq!(err_code(&r), "FIELD_INTEGRITY_EXCEPTION");
    let r = post(json!({"Name": "x", "ParentId": "001000000000001AAA"})).await;
    assert_eq!(err_code(&r), "INVALID_CROSS_REFERENCE_KEY");
    let r = call(
        app,
        Method::POST,
        "/services/data/v62.0/sobjects/Contact",
        Some(&t),
        Some(json!({"LastName": "x", "Email": "nope"})),
    )
    .await;
    assert_eq!(err_code(&r), "INVALID_EMAIL_ADDRESS");
    let r = call(
        app,
        Method::POST,
        "/services/data/v62.0/sobjects/Opportunity",
        Some(&t),
        Some(json!({"Name": "x", "StageName": "Prospecting", "CloseDate": "30/06/2024"})),
    )
    .await;
    assert_eq!(err_code(&r), "INVALID_TYPE_ON_FIELD_IN_RECORD");
    let r = post(json!([{"Name": "x"}])).await;
    assert_eq!((r.status, err_code(&r)), (400, "JSON_PARSER_ERROR"));
    let r = app
        .client()
        .post(app.url("/services/data/v62.0/sobjects/Account"))
        .bearer_auth(&t)
        .body("{\"Name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v[0]["errorCode"], "JSON_PARSER_ERROR");
    // The server may answer 413 and close before the whole body is sent; the client then sees
    // the connection close, which is the same refusal.
    if let Ok(r) = app
        .client()
        .post(app.url("/services/data/v62.0/sobjects/Account"))
        .bearer_auth(&t)
        .body(format!("{{\"Name\": \"{}\"}}", "x".repeat(300 * 1024)))
        .send()
        .await
    {
        assert_eq!(r.status(), 413);
    }
    // Unknown objects, malformed and unknown IDs.
    let r = post(json!({"Name": "x"})).await;
    assert_eq!(r.status, 201);
    let r =
        call(app, Method::POST, "/services/data/v62.0/sobjects/Nope__c", Some(&t), Some(json!({"Name": "x"}))).await;
    assert_eq!((r.status, err_code(&r)), (404, "NOT_FOUND"));
    let r = get(app, "/services/data/v62.0/sobjects/Account/001xx", &t).await;
    assert_eq!((r.status, err_code(&r)), (400, "MALFORMED_ID"));
    assert_eq!(r.body[0]["fields"], json!(["Id"]));
    let r = get(app, "/services/data/v62.0/sobjects/Account/001000000000001AAA", &t).await;
    assert_eq!(r.status, 404);
    assert_eq!(err_msg(&r), "Provided external ID field does not exist or is not accessible: 001000000000001AAA");
    let r =
        call(app, Method::PUT, "/services/data/v62.0/sobjects/Account/001000000000001AAA", Some(&t), Some(json!({})))
            .await;
    assert_eq!((r.status, err_msg(&r)), (405, "Method 'PUT' not allowed. Allowed are GET,HEAD,PATCH,DELETE"));
    let r = call(app, Method::POST, "/services/data/v62.0/sobjects/Organization", Some(&t), Some(json!({"Name": "x"})))
        .await;
    assert_eq!(r.status, 405);
});

both_backends!(describe, |app: &TestApp| async move {
    let t = token(app).await;
    let r = get(app, "/services/data/v62.0/sobjects/", &t).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["encoding"], "UTF-8");
    let objs = r.body["sobjects"].as_array().unwrap();
    let acc = objs.iter().find(|o| o["name"] == "Account").unwrap();
    assert_eq!(acc["keyPrefix"], "001");
    assert_eq!(acc["urls"]["rowTemplate"], "/services/data/v62.0/sobjects/Account/{ID}");
    for (name, prefix) in [
        ("Contact", "003"),
        ("Lead", "00Q"),
        ("Opportunity", "006"),
        ("Case", "500"),
        ("User", "005"),
        ("Organization", "00D"),
    ] {
        assert!(objs.iter().any(|o| o["name"] == name && o["keyPrefix"] == prefix), "{name}");
    }
    let r = get(app, "/services/data/v62.0/sobjects/Account/describe/", &t).await;
    assert_eq!(r.status, 200);
    let fields = r.body["fields"].as_array().unwrap();
    let name = fields.iter().find(|f| f["name"] == "Name").unwrap();
    assert_eq!(
        (name["type"].as_str(), name["length"].as_u64(), name["nillable"].as_bool(), name["createable"].as_bool()),
        (Some("string"), Some(255), Some(false), Some(true))
    );
    let owner = fields.iter().find(|f| f["name"] == "OwnerId").unwrap();
    assert_eq!(
        (owner["type"].as_str(), &owner["referenceTo"], owner["relationshipName"].as_str()),
        (Some("reference"), &json!(["User"]), Some("Owner"))
    );
    let industry = fields.iter().find(|f| f["name"] == "Industry").unwrap();
    assert!(industry["picklistValues"].as_array().unwrap().iter().any(|p| p["value"] == "Banking"));
    assert!(r.body["childRelationships"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["childSObject"] == "Contact" && c["field"] == "AccountId"));
    create(app, &t, "Account", json!({"Name": "Recent"})).await;
    let r = get(app, "/services/data/v59.0/sobjects/Account/", &t).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["objectDescribe"]["name"], "Account");
    assert_eq!(r.body["recentItems"][0]["Name"], "Recent");
    let r = get(app, "/services/data/v62.0/sobjects/Nope/describe", &t).await;
    assert_eq!((r.status, err_code(&r)), (404, "NOT_FOUND"));
});

both_backends!(query, |app: &TestApp| async move {
    let t = token(app).await;
    let acme = create(app, &t, "Account", json!({"Name": "Acme", "Industry": "Banking"})).await;
    create(app, &t, "Account", json!({"Name": "Globex"})).await;
    let doe = create(app, &t, "Contact", json!({"LastName": "Doe", "AccountId": acme})).await;
    create(app, &t, "Contact", json!({"LastName": "Orphan"})).await;
    // jsforce: %20; simple-salesforce: + and a trailing slash.
    let r = get(
        app,
        &format!(
            "/services/data/v50.0/query?q={}",
            "SELECT%20Id%2C%20Name%20FROM%20Account%20WHERE%20Name%20%3D%20%27acme%27"
        ),
        &t,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.body["totalSize"].as_u64(), r.body["done"].as_bool()), (Some(1), Some(true)));
    assert!(r.body.get("nextRecordsUrl").is_none());
    assert_eq!(
        r.body["records"][0],
        json!({"attributes": {"type": "Account", "url": format!("/services/data/v50.0/sobjects/Account/{acme}")}, "Id": acme, "Name": "Acme"})
    );
    let r = get(app, "/services/data/v59.0/query/?q=SELECT+Name+FROM+Account+ORDER+BY+Name+DESC", &t).await;
    assert_eq!(
        r.body["records"].as_array().unwrap().iter().map(|x| x["Name"].as_str().unwrap()).collect::<Vec<_>>(),
        ["Globex", "Acme"]
    );
    // Parent relationships: a missing parent is null.
    let r = get(
        app,
        &format!(
            "/services/data/v62.0/query?q={}",
            enc("SELECT LastName, Account.Name, Account.Owner.Username FROM Contact ORDER BY LastName")
        ),
        &t,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["records"][0]["Account"]["Name"], "Acme");
    assert_eq!(r.body["records"][0]["Account"]["attributes"]["type"], "Account");
    assert_eq!(r.body["records"][0]["Account"]["Owner"]["Username"], app.user.username);
    assert_eq!(r.body["records"][1]["Account"], Value::Null);
    // `attributes.url` names the record even when its Id was not selected, as Salesforce's do.
    assert_eq!(
        r.body["records"][0]["attributes"],
        json!({"type": "Contact", "url": format!("/services/data/v62.0/sobjects/Contact/{doe}")})
    );
    assert_eq!(r.body["records"][0].get("Id"), None);
    // On the wire a record is in Salesforce's order: `attributes`, then the select list's, a
    // parent where its first field was selected.
    let q = enc("SELECT Account.Name, LastName, Account.Owner.Username, Id FROM Contact WHERE LastName = 'Doe'");
    let text = app
        .client()
        .get(app.url(&format!("/services/data/v62.0/query?q={q}")))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (owner, user) = (app.user.id.as_str(), &app.user.username);
    let expected = format!(
        r#"{{"totalSize":1,"done":true,"records":[{{"attributes":{{"type":"Contact","url":"/services/data/v62.0/sobjects/Contact/{doe}"}},"Account":{{"attributes":{{"type":"Account","url":"/services/data/v62.0/sobjects/Account/{acme}"}},"Name":"Acme","Owner":{{"attributes":{{"type":"User","url":"/services/data/v62.0/sobjects/User/{owner}"}},"Username":"{user}"}}}},"LastName":"Doe","Id":"{doe}"}}]}}"#
    );
    assert_eq!(text, expected);
    // `X-PrettyPrint` indents the records too.
    let pretty = app
        .client()
        .get(app.url(&format!("/services/data/v62.0/query?q={q}")))
        .bearer_auth(&t)
        .header("x-prettyprint", "1")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(pretty.contains("\n      \"attributes\": {\n        \"type\": \"Contact\""), "{pretty}");
    assert_eq!(serde_json::from_str::<Value>(&pretty).unwrap(), serde_json::from_str::<Value>(&text).unwrap());
    let url = app.url(&format!("/services/data/v62.0/sobjects/Contact/{doe}?fields=LastName"));
    let text = app.client().get(&url).bearer_auth(&t).send().await.unwrap().text().await.unwrap();
    assert_eq!(
        text,
        format!(
            r#"{{"attributes":{{"type":"Contact","url":"/services/data/v62.0/sobjects/Contact/{doe}"}},"Id":"{doe}","LastName":"Doe"}}"#
        )
    );
    let pretty =
        app.client().get(&url).bearer_auth(&t).header("x-prettyprint", "1").send().await.unwrap().text().await.unwrap();
    assert!(pretty.starts_with("{\n  \"Id\": "), "{pretty}");
    let r = get(app, &format!("/services/data/v62.0/query?q={}", enc("SELECT COUNT() FROM Contact")), &t).await;
    assert_eq!(r.body, json!({"totalSize": 2, "done": true, "records": []}));
    // What the sf CLI and simple-salesforce ask during login.
    let r =
        get(app, &format!("/services/data/v51.0/query?q={}", enc("SELECT Id FROM ScratchOrgInfo limit 1")), &t).await;
    assert_eq!((r.status, err_code(&r)), (400, "INVALID_TYPE"));
    assert!(err_msg(&r).contains("sObject type 'ScratchOrgInfo' is not supported."), "{}", err_msg(&r));
    assert!(err_msg(&r).contains("ERROR at Row:1:Column:16"), "{}", err_msg(&r));
    let r = get(app, &format!("/services/data/v62.0/query?q={}", enc("SELECT Name, InstanceName, IsSandbox, TrialExpirationDate, NamespacePrefix, OrganizationType FROM Organization")), &t).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!((r.body["totalSize"].as_u64(), r.body["records"][0]["IsSandbox"].as_bool()), (Some(1), Some(false)));
    assert_eq!(r.body["records"][0]["OrganizationType"], "Developer Edition");
    // Errors.
    let r = get(app, &format!("/services/data/v62.0/query?q={}", enc("SELECT Id FORM Account")), &t).await;
    assert_eq!((r.status, err_code(&r)), (400, "MALFORMED_QUERY"));
    assert!(err_msg(&r).contains("ERROR at Row:1:Column:11"));
    let r = get(app, &format!("/services/data/v62.0/query?q={}", enc("SELECT Id, Nope FROM Account")), &t).await;
    assert_eq!((r.status, err_code(&r)), (400, "INVALID_FIELD"));
    assert!(err_msg(&r).contains("No such column 'Nope' on entity 'Account'"), "{}", err_msg(&r));
    let r = get(app, "/services/data/v62.0/query", &t).await;
    assert_eq!((r.status, err_code(&r)), (400, "MALFORMED_QUERY"));
    // queryAll sees soft-deleted rows.
    let r = call(app, Method::DELETE, &format!("/services/data/v62.0/sobjects/Account/{acme}"), Some(&t), None).await;
    assert_eq!(r.status, 204);
    let q = enc("SELECT Name, IsDeleted FROM Account ORDER BY Name");
    assert_eq!(get(app, &format!("/services/data/v62.0/query?q={q}"), &t).await.body["totalSize"], 1);
    let r = get(app, &format!("/services/data/v62.0/queryAll?q={q}"), &t).await;
    assert_eq!(r.body["totalSize"], 2);
    assert_eq!(r.body["records"][0]["IsDeleted"], true);
});

both_backends!(query_paging, |app: &TestApp| async move {
    let t = token(app).await;
    let caller = Caller { org_id: SfId::parse(&app.org_id).unwrap(), user_id: app.user.id.clone() };
    for i in 0..2345 {
        app.data
            .create(&caller, "Lead", &json!({"LastName": format!("L{i:05}"), "Company": "Paging Inc"}))
            .await
            .unwrap();
    }
    let q = enc("SELECT Id, LastName FROM Lead ORDER BY LastName");
    let first = get(app, &format!("/services/data/v62.0/query?q={q}"), &t).await;
    assert_eq!(first.status, 200);
    assert_eq!((first.body["totalSize"].as_u64(), first.body["done"].as_bool()), (Some(2345), Some(false)));
    assert_eq!(first.body["records"].as_array().unwrap().len(), 2000);
    let next = first.body["nextRecordsUrl"].as_str().unwrap().to_string();
    assert!(next.starts_with("/services/data/v62.0/query/01g") && next.ends_with("-2000"), "{next}");
    // simple-salesforce follows the URL as given.
    let second = get(app, &next, &t).await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!((second.body["done"].as_bool(), second.body["records"].as_array().unwrap().len()), (Some(true), 345));
    assert_eq!(second.body["records"][0]["LastName"], "L02000");
    assert_eq!(second.body["records"][344]["LastName"], "L02344");
    // jsforce takes the last segment under its own version.
    let locator = next.rsplit('/').next().unwrap();
    let again = get(app, &format!("/services/data/v50.0/query/{locator}"), &t).await;
    assert_eq!(again.body["records"][0]["LastName"], "L02000");
    // batchSize=500 in Sforce-Query-Options.
    let r = app
        .client()
        .get(app.url(&format!("/services/data/v62.0/query?q={q}")))
        .bearer_auth(&t)
        .header("Sforce-Query-Options", "batchSize=500")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["records"].as_array().unwrap().len(), 500);
    let mut url = v["nextRecordsUrl"].as_str().unwrap().to_string();
    let mut seen = 500;
    while !url.is_empty() {
        let page = get(app, &url, &t).await;
        assert_eq!(page.status, 200);
        seen += page.body["records"].as_array().unwrap().len();
        url = page.body["nextRecordsUrl"].as_str().unwrap_or("").to_string();
    }
    assert_eq!(seen, 2345);
    // LIMIT caps the total across pages.
    let r = get(app, &format!("/services/data/v62.0/query?q={}", enc("SELECT Id FROM Lead LIMIT 2100")), &t).await;
    assert_eq!((r.body["totalSize"].as_u64(), r.body["records"].as_array().unwrap().len()), (Some(2100), 2000));
    let tail = get(app, r.body["nextRecordsUrl"].as_str().unwrap(), &t).await;
    assert_eq!((tail.body["records"].as_array().unwrap().len(), tail.body["done"].as_bool()), (100, Some(true)));
    // Bad or foreign locators; another user's locator is not theirs to read.
    for bad in ["01gXXXXXXXXXXXXXXX-2000", "nope", &format!("{}-99999", &locator[..18])] {
        let r = get(app, &format!("/services/data/v62.0/query/{bad}"), &t).await;
        assert_eq!((r.status, err_code(&r)), (400, "INVALID_QUERY_LOCATOR"), "{bad}");
    }
    let other = app
        .engine
        .create_user(
            &caller.org_id,
            valet_core::engine::admin::NewUser {
                username: "bob@example.com".into(),
                password: common::PASSWORD.into(),
                email: None,
                first_name: "Bob".into(),
                last_name: "B".into(),
                is_admin: false,
            },
        )
        .await
        .unwrap();
    let other_caller = Caller { org_id: caller.org_id.clone(), user_id: other.id.clone() };
    let e = app.data.query_more(&other_caller, locator, None, "62.0").await.unwrap_err();
    assert_eq!(e.code, "INVALID_QUERY_LOCATOR");
    // Locators expire after 15 minutes.
    app.clock.advance_ms(16 * 60 * 1000);
    let t = token(app).await;
    let r = get(app, &next, &t).await;
    assert_eq!((r.status, err_code(&r)), (400, "INVALID_QUERY_LOCATOR"));
});

both_backends!(org_isolation, |app: &TestApp| async move {
    let t = token(app).await;
    // A second org with its own user and records, written through the data layer.
    let (org_b, user_b) = {
        use valet_core::ids::KeyPrefix;
        use valet_core::model::{Org, OrgSettings, User};
        let org = SfId::generate(KeyPrefix::Organization, &valet_core::rand::OsRandom);
        let store = app.engine.store();
        store
            .insert_org(&Org {
                id: org.clone(),
                name: "Other Org".into(),
                settings: OrgSettings::default(),
                created_at: 0,
            })
            .await
            .unwrap();
        let user = SfId::generate(KeyPrefix::User, &valet_core::rand::OsRandom);
        let mut u: User = app.user.clone();
        u.id = user.clone();
        u.org_id = org.clone();
        u.username = "other@example.org".into();
        store.insert_user(&u).await.unwrap();
        (org, user)
    };
    let b = Caller { org_id: org_b.clone(), user_id: user_b.clone() };
    let secret = app.data.create(&b, "Account", &json!({"Name": "Secret"})).await.unwrap().to_string();
    let mine = create(app, &t, "Account", json!({"Name": "Mine"})).await;
    let r = get(app, &format!("/services/data/v62.0/sobjects/Account/{secret}"), &t).await;
    assert_eq!(r.status, 404);
    let r = call(
        app,
        Method::PATCH,
        &format!("/services/data/v62.0/sobjects/Account/{secret}"),
        Some(&t),
        Some(json!({"Name": "pwned"})),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = call(app, Method::DELETE, &format!("/services/data/v62.0/sobjects/Account/{secret}"), Some(&t), None).await;
    assert_eq!(r.status, 404);
    // A lookup may not point into another org.
    let r = call(
        app,
        Method::POST,
        "/services/data/v62.0/sobjects/Contact",
        Some(&t),
        Some(json!({"LastName": "x", "AccountId": secret})),
    )
    .await;
    assert_eq!(err_code(&r), "INVALID_CROSS_REFERENCE_KEY");
    for q in ["SELECT Name FROM Account", "SELECT Username FROM User", "SELECT Name FROM Organization"] {
        let r = get(app, &format!("/services/data/v62.0/queryAll?q={}", enc(q)), &t).await;
        let s = r.body.to_string();
        assert!(!s.contains("Secret") && !s.contains("other@example.org") && !s.contains("Other Org"), "{q}: {s}");
    }
    let r = get(app, &format!("/services/data/v62.0/sobjects/User/{user_b}"), &t).await;
    assert_eq!(r.status, 404);
    // And the other way round.
    let e = app.data.retrieve(&b, "Account", &mine, None, "62.0").await.unwrap_err();
    assert_eq!(e.status, 404);
    let rec = app.data.retrieve(&b, "Account", &secret, None, "62.0").await.unwrap();
    assert_eq!(serde_json::from_str::<Value>(rec.get()).unwrap()["Name"], "Secret");
});

both_backends!(custom_objects, |app: &TestApp| async move {
    let org = SfId::parse(&app.org_id).unwrap();
    let obj = app
        .data
        .create_object(&org, NewObject { name: "Widget__c".into(), label: None, label_plural: None })
        .await
        .unwrap();
    assert!(obj.key_prefix.starts_with("a0"));
    let add = |name: &str, ty: &str| NewField {
        object: "Widget__c".into(),
        name: name.into(),
        field_type: ty.into(),
        ..Default::default()
    };
    app.data.add_field(&org, NewField { required: true, length: Some(10), ..add("Code__c", "text") }).await.unwrap();
    app.data.add_field(&org, add("Price__c", "currency")).await.unwrap();
    app.data.add_field(&org, add("Active__c", "checkbox")).await.unwrap();
    app.data.add_field(&org, add("Launched__c", "date")).await.unwrap();
    app.data
        .add_field(&org, NewField { picklist_values: vec!["Red".into(), "Blue".into()], ..add("Color__c", "picklist") })
        .await
        .unwrap();
    app.data
        .add_field(&org, NewField { reference_to: Some("Account".into()), ..add("Account__c", "lookup") })
        .await
        .unwrap();
    let dup = app.data.add_field(&org, add("Price__c", "text")).await.unwrap_err();
    assert!(dup.message.contains("already exists"), "{dup}");
    let t = token(app).await;
    let acc = create(app, &t, "Account", json!({"Name": "Parent"})).await;
    let w = create(app, &t, "Widget__c", json!({"Name": "W1", "Code__c": "abc", "Price__c": 9.99, "Color__c": "Red", "Account__c": acc, "Launched__c": "2024-02-01"})).await;
    assert_eq!(&w[..3], obj.key_prefix);
    let r = get(app, &format!("/services/data/v62.0/sobjects/Widget__c/{w}"), &t).await;
    assert_eq!(
        (r.body["Active__c"].as_bool(), r.body["Price__c"].as_f64(), r.body["Color__c"].as_str()),
        (Some(false), Some(9.99), Some("Red"))
    );
    let r =
        call(app, Method::POST, "/services/data/v62.0/sobjects/Widget__c", Some(&t), Some(json!({"Name": "W2"}))).await;
    assert_eq!(r.body[0]["fields"], json!(["Code__c"]));
    let r = call(
        app,
        Method::POST,
        "/services/data/v62.0/sobjects/Widget__c",
        Some(&t),
        Some(json!({"Name": "W2", "Code__c": "x", "Color__c": "Green"})),
    )
    .await;
    assert_eq!(err_code(&r), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST");
    let r = call(
        app,
        Method::POST,
        "/services/data/v62.0/sobjects/Widget__c",
        Some(&t),
        Some(json!({"Name": "W2", "Code__c": "12345678901"})),
    )
    .await;
    assert_eq!(err_code(&r), "STRING_TOO_LONG");
    let r = get(
        app,
        &format!(
            "/services/data/v62.0/query?q={}",
            enc("SELECT Name, Account__r.Name FROM Widget__c WHERE Color__c = 'red' AND Launched__c > 2024-01-01")
        ),
        &t,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["records"][0]["Account__r"]["Name"], "Parent");
    let r = get(app, "/services/data/v62.0/sobjects/Widget__c/describe", &t).await;
    let f = r.body["fields"].as_array().unwrap().iter().find(|f| f["name"] == "Account__c").unwrap().clone();
    assert_eq!(
        (f["referenceTo"].clone(), f["relationshipName"].clone(), f["custom"].clone()),
        (json!(["Account"]), json!("Account__r"), json!(true))
    );
    assert_eq!(r.body["custom"], true);
    // A custom field on a standard object.
    app.data
        .add_field(
            &org,
            NewField {
                object: "Account".into(),
                name: "Tier__c".into(),
                field_type: "number".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let r = call(
        app,
        Method::PATCH,
        &format!("/services/data/v62.0/sobjects/Account/{acc}"),
        Some(&t),
        Some(json!({"Tier__c": 3})),
    )
    .await;
    assert_eq!(r.status, 204);
    let r =
        get(app, &format!("/services/data/v62.0/query?q={}", enc("SELECT Name FROM Account WHERE Tier__c >= 2.5")), &t)
            .await;
    assert_eq!(r.body["totalSize"], 1);
});

/// A tiny deterministic generator, so a failure replays.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

both_backends!(random_inputs_never_5xx, |app: &TestApp| async move {
    let t = token(app).await;
    let acc = create(app, &t, "Account", json!({"Name": "Seed"})).await;
    let tokens = [
        "SELECT",
        "Id",
        "Name",
        "FROM",
        "Account",
        "Contact",
        "WHERE",
        "=",
        "!=",
        "<",
        ">=",
        "LIKE",
        "IN",
        "NOT",
        "AND",
        "OR",
        "(",
        ")",
        ",",
        "'x'",
        "'%a_'",
        "5",
        "-1.5",
        "99999999999999999999",
        "null",
        "true",
        "TODAY",
        "LAST_N_DAYS:3",
        "2024-01-01",
        "2024-01-01T00:00:00Z",
        "ORDER BY",
        "ASC",
        "DESC",
        "NULLS FIRST",
        "LIMIT",
        "OFFSET",
        "COUNT()",
        "Owner.Name",
        "Account.Name",
        "CreatedDate",
        "AnnualRevenue",
        "IsDeleted",
        "Industry",
        "CloseDate",
        "'\\''",
        "Parent.Parent.Name",
        "SUM(AnnualRevenue)",
        "MAX(Name)",
        ";",
        "\"",
        "\\",
    ];
    let mut rng = Lcg(42);
    for _ in 0..150 {
        let n = 1 + rng.next(14);
        let mut q = if rng.next(3) > 0 { "SELECT Id FROM Account WHERE".to_string() } else { String::new() };
        for _ in 0..n {
            q.push(' ');
            q.push_str(tokens[rng.next(tokens.len())]);
        }
        let r = get(app, &format!("/services/data/v62.0/query?q={}", enc(&q)), &t).await;
        assert!(r.status < 500, "{q} → {} {}", r.status, r.body);
    }
    let values = [
        json!(null),
        json!(""),
        json!("x"),
        json!(1.5e300),
        json!(-1),
        json!(true),
        json!([1]),
        json!({"a": 1}),
        json!("2024-02-30"),
        json!("x".repeat(300)),
        json!(acc),
        json!("001000000000001AAA"),
    ];
    let fields = [
        "Name",
        "AnnualRevenue",
        "NumberOfEmployees",
        "Industry",
        "ParentId",
        "OwnerId",
        "Website",
        "Description",
        "IsDeleted",
        "Id",
        "attributes",
        "Nope",
    ];
    for i in 0..120 {
        let mut body = serde_json::Map::new();
        for _ in 0..1 + rng.next(4) {
            body.insert(fields[rng.next(fields.len())].into(), values[rng.next(values.len())].clone());
        }
        let (method, path) = if i % 2 == 0 {
            (Method::POST, "/services/data/v62.0/sobjects/Account".to_string())
        } else {
            (Method::PATCH, format!("/services/data/v62.0/sobjects/Account/{acc}"))
        };
        let r = call(app, method, &path, Some(&t), Some(Value::Object(body.clone()))).await;
        assert!(r.status < 500, "{body:?} → {} {}", r.status, r.body);
    }
    for path in [
        "/services/data/v62.0/sobjects/Account/%00",
        "/services/data/v62.0/sobjects/%27/describe",
        "/services/data/v62.0//sobjects",
        "/services/data/v62.0/query/%",
        "/services/data/v62.0/sobjects/Account/001000000000001AAA/extra",
        "/services/data/vx/sobjects",
    ] {
        let r = app.client().get(app.url(path)).bearer_auth(&t).send().await.unwrap();
        assert!(r.status().as_u16() < 500 && r.status().as_u16() >= 400, "{path} → {}", r.status());
    }
});
