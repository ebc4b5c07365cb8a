//! The admin JSON API over HTTP, on SQLite and PostgreSQL: authentication (AD-01), every route's
//! success and errors, partial policy updates, changes taking effect at the OAuth endpoints,
//! the OpenAPI document, and a seeded random-input run that must never produce a 5xx.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::Method;
use serde_json::{json, Value};

const V1: &str = "/admin/api/v1";

/// One admin API call: status, JSON body (Null when empty) and headers.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = app.client().request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status} not JSON: {text}"))
    };
    (status, v, headers)
}

async fn admin_token(app: &TestApp) -> String {
    app.engine.mint_admin_token(None).await.unwrap().token.expose().to_string()
}

/// Every error body has the documented shape.
fn assert_error(v: &Value, code: &str) {
    assert_eq!(v["error"], code, "{v}");
    assert!(v["message"].is_string(), "{v}");
}

both_backends!(authentication_and_authorization, |app: &TestApp| async move {
    let apps = format!("{V1}/apps");
    // No token: 401 with a Bearer challenge and no data.
    let (s, v, h) = call(app, Method::GET, &apps, None, None).await;
    assert_eq!(s, 401);
    assert_error(&v, "unauthorized");
    assert!(h["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    assert_eq!(h["cache-control"], "no-store");
    // Garbage, a Basic header, an unknown token shaped like a real one: 401.
    for bad in ["nope", "00Dxx!AQ.unknown"] {
        let (s, v, h) = call(app, Method::GET, &apps, Some(bad), None).await;
        assert_eq!(s, 401, "{bad}");
        assert_error(&v, "unauthorized");
        assert!(h["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    }
    let r = app
        .client()
        .get(app.url(&apps))
        .basic_auth("admin@valet.local", Some("admin-password-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // A normal user's token: 403 on every route, reads and writes alike.
    let jane = app.tokens("api refresh_token").await["access_token"].as_str().unwrap().to_string();
    for (m, p) in [
        (Method::GET, apps.clone()),
        (Method::POST, apps.clone()),
        (Method::GET, format!("{V1}/users")),
        (Method::PATCH, format!("{V1}/org/settings")),
    ] {
        let (s, v, _) = call(app, m.clone(), &p, Some(&jane), Some(json!({}))).await;
        assert_eq!(s, 403, "{m} {p}");
        assert_error(&v, "forbidden");
    }
    // Path tricks reach the same handlers (or none), never data without a token.
    for p in [
        "//admin/api/v1/apps",
        "/admin/../admin/api/v1/apps",
        "/x/%2e%2e/admin/api/v1/apps",
        "/admin/api/v1/apps/",
        "/ADMIN/api/v1/apps",
    ] {
        let r = app.client().get(app.url(p)).send().await.unwrap();
        assert!([401, 404].contains(&r.status().as_u16()), "{p}: {}", r.status());
    }
    // The minted admin token works.
    let admin = admin_token(app).await;
    let (s, v, h) = call(app, Method::GET, &apps, Some(&admin), None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(h["cache-control"], "no-store");
    assert!(v["items"].as_array().unwrap().iter().any(|a| a["consumer_key"] == "ValetAdmin"));
    // An admin user's ordinary token is refused, with `full` too; with `valet_admin` accepted.
    let store = app.engine.store();
    store
        .update_user(&app.user.id, &valet_core::store::UserPatch { is_admin: Some(true), ..Default::default() }, 0)
        .await
        .unwrap();
    let (s, _, _) = call(app, Method::GET, &apps, Some(&jane), None).await;
    assert_eq!(s, 403, "admin user, no full scope");
    let (s, created, _) = call(
        app,
        Method::POST,
        &apps,
        Some(&admin),
        Some(json!({"name": "Full", "callback_urls": [CALLBACK], "scopes": ["full", "api"]})),
    )
    .await;
    assert_eq!(s, 201, "{created}");
    let key = created["consumer_key"].as_str().unwrap();
    let secret = created["consumer_secret"].as_str().unwrap();
    let (s, t) = app.code_flow(key, secret, "full").await;
    assert_eq!(s, 200, "{t}");
    let (s, _, _) = call(app, Method::GET, &apps, t["access_token"].as_str(), None).await;
    assert_eq!(s, 403, "full alone is not an admin credential");
    // An app an admin gave `valet_admin`: its token for an admin user is one.
    let (s, _, _) = call(
        app,
        Method::PATCH,
        &format!("{apps}/{key}"),
        Some(&admin),
        Some(json!({"scopes": ["full", "api", "valet_admin"]})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, t) = app.code_flow(key, secret, "valet_admin").await;
    assert_eq!(s, 200, "{t}");
    let (s, _, _) = call(app, Method::GET, &apps, t["access_token"].as_str(), None).await;
    assert_eq!(s, 200, "an admin's OAuth token with valet_admin is an admin credential");
    // Disabling the admin ends their admin tokens at once.
    store
        .update_user(&app.user.id, &valet_core::store::UserPatch { is_admin: Some(false), ..Default::default() }, 0)
        .await
        .unwrap();
    let (s, _, _) = call(app, Method::GET, &apps, t["access_token"].as_str(), None).await;
    assert_eq!(s, 403, "no longer an admin");
    // An expired admin token: 401.
    app.clock.advance_ms(366 * 24 * 3600 * 1000);
    let (s, _, _) = call(app, Method::GET, &apps, Some(&admin), None).await;
    assert_eq!(s, 401);
    // The document is public.
    let (s, doc, _) = call(app, Method::GET, "/admin/api/openapi.json", None, None).await;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
});

both_backends!(admin_token_minting_refuses_non_admins, |app: &TestApp| async move {
    let e = app.engine.mint_admin_token(Some("jane@example.com")).await.unwrap_err();
    assert!(e.to_string().contains("not an administrator"), "{e}");
    assert!(app.engine.mint_admin_token(Some("nobody@example.com")).await.is_err());
    // Two tokens, one built-in app.
    let a = app.engine.mint_admin_token(None).await.unwrap();
    let b = app.engine.mint_admin_token(Some("admin@valet.local")).await.unwrap();
    assert_ne!(a.token.expose(), b.token.expose());
    assert_eq!(a.scopes.to_string(), "api full valet_admin");
    // The built-in app cannot be used for browser flows.
    let r = app
        .browser()
        .get(app.url(&format!(
            "/services/oauth2/authorize?response_type=code&client_id=ValetAdmin&redirect_uri={}",
            urlencode("http://localhost/valet-admin")
        )))
        .send()
        .await
        .unwrap();
    let loc = r.headers().get("location").map(|l| l.to_str().unwrap().to_string()).unwrap_or_default();
    assert!(!loc.contains("code="), "{loc}");
});

both_backends!(apps_crud_policy_merge_and_secrets, |app: &TestApp| async move {
    let token = admin_token(app).await;
    let t = Some(token.as_str());
    let apps = format!("{V1}/apps");
    // Create: 201 with the secret once; defaults like the CLI.
    let (s, a, _) = call(app, Method::POST, &apps, t, Some(json!({"name": " Billing ", "callback_urls": ["https://billing.example/cb"], "policy": {"require_pkce": true, "id_token": {"valid_minutes": 5}}}))).await;
    assert_eq!(s, 201, "{a}");
    assert_eq!(a["name"], "Billing");
    assert_eq!(a["scopes"], json!(["api", "openid", "refresh_token"]));
    assert_eq!(a["policy"]["require_pkce"], true);
    assert_eq!(a["policy"]["id_token"]["valid_minutes"], 5);
    assert_eq!(a["policy"]["session_timeout_minutes"], 120, "absent keys keep their defaults");
    let secret = a["consumer_secret"].as_str().unwrap().to_string();
    let id = a["id"].as_str().unwrap().to_string();
    let key = a["consumer_key"].as_str().unwrap().to_string();
    // Get by id and by consumer key: never a secret.
    for k in [&id, &key] {
        let (s, g, _) = call(app, Method::GET, &format!("{apps}/{k}"), t, None).await;
        assert_eq!(s, 200);
        assert_eq!(g["id"], id.as_str());
        assert!(g.get("consumer_secret").is_none());
        assert!(!g.to_string().contains(&secret));
    }
    let (_, list, _) = call(app, Method::GET, &apps, t, None).await;
    assert!(list["items"].as_array().unwrap().iter().any(|x| x["id"] == id.as_str()));
    assert!(!list.to_string().contains(&secret));
    // A public app: no secret.
    let (s, p, _) = call(
        app,
        Method::POST,
        &apps,
        t,
        Some(json!({"name": "Mobile", "callback_urls": ["com.example.app:/cb"], "is_public": true, "scopes": ["api"]})),
    )
    .await;
    assert_eq!(s, 201, "{p}");
    assert!(p["consumer_secret"].is_null());
    assert_eq!(p["policy"]["require_secret_for_web_server_flow"], false);

    // PATCH: a partial policy is merged; nested objects merge; null resets; other fields stay.
    let url = format!("{apps}/{id}");
    let (s, u, _) = call(app, Method::PATCH, &url, t, Some(json!({"policy": {"id_token": {"audiences": ["x"]}, "refresh_token_policy": {"kind": "expire_after", "minutes": 60}}}))).await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["policy"]["require_pkce"], true);
    assert_eq!(
        u["policy"]["id_token"],
        json!({"valid_minutes": 5, "audiences": ["x"], "include_standard_claims": false, "include_custom_attributes": false, "include_custom_permissions": false})
    );
    assert_eq!(u["policy"]["refresh_token_policy"], json!({"kind": "expire_after", "minutes": 60}));
    let (_, u, _) = call(app, Method::PATCH, &url, t, Some(json!({"policy": {"refresh_token_policy": "valid_until_revoked", "require_pkce": null}, "name": "Billing 2", "scopes": ["api", "id"], "callback_urls": ["https://b.example/cb"]}))).await;
    assert_eq!(u["policy"]["refresh_token_policy"], json!({"kind": "valid_until_revoked"}));
    assert_eq!(u["policy"]["require_pkce"], false);
    assert_eq!(
        (u["name"].as_str(), u["scopes"].clone(), u["callback_urls"].clone()),
        (Some("Billing 2"), json!(["api", "id"]), json!(["https://b.example/cb"]))
    );
    let (s, u, _) = call(
        app,
        Method::PATCH,
        &url,
        t,
        Some(json!({"policy": {"jwt_access_tokens": true, "jwt_access_token_alg": "ES256"}})),
    )
    .await;
    assert_eq!((s, &u["policy"]["jwt_access_token_alg"]), (200, &json!("ES256")), "{u}");
    let (s, same, _) = call(app, Method::PATCH, &url, t, Some(json!({}))).await;
    assert_eq!((s, &same["policy"]), (200, &u["policy"]), "an empty patch changes nothing");
    // Unknown keys are 400 naming the key; wrong types too; engine refusals are 422.
    let cases: Vec<(Value, u16, &str, Option<&str>)> = vec![
        (json!({"policy": {"requre_pkce": true}}), 400, "invalid_request", Some("policy.requre_pkce")),
        (json!({"policy": {"id_token": {"bogus": 1}}}), 400, "invalid_request", Some("policy.id_token.bogus")),
        (
            json!({"policy": {"session_timeout_minutes": "long"}}),
            400,
            "invalid_request",
            Some("policy.session_timeout_minutes"),
        ),
        (json!({"policy": {"permitted_users": "Everyone"}}), 400, "invalid_request", Some("policy.permitted_users")),
        (
            json!({"policy": {"jwt_access_token_alg": "HS256"}}),
            400,
            "invalid_request",
            Some("policy.jwt_access_token_alg"),
        ),
        (
            json!({"policy": {"jwt_access_token_alg": "es256"}}),
            400,
            "invalid_request",
            Some("policy.jwt_access_token_alg"),
        ),
        (json!({"policy": [1]}), 400, "invalid_request", Some("policy")),
        (json!({"colour": "red"}), 400, "invalid_request", Some("colour")),
        (json!([]), 400, "invalid_request", None),
        (json!(null), 400, "invalid_request", None),
        (json!({"scopes": ["api", "root"]}), 400, "invalid_request", Some("scopes[1]")),
        (json!({"name": ""}), 400, "invalid_request", Some("name")),
        (json!({"name": "a\u{0}b"}), 400, "invalid_request", Some("name")),
        (json!({"policy": {"session_timeout_minutes": 0}}), 422, "validation_failed", None),
        (
            json!({"policy": {"refresh_token_policy": {"kind": "expire_after", "minutes": 9_000_000_000_000_000_000u64}}}),
            422,
            "validation_failed",
            Some("policy.refresh_token_policy.minutes"),
        ),
        (json!({"callback_urls": ["http://evil.example/cb"]}), 422, "validation_failed", None),
        (json!({"callback_urls": []}), 422, "validation_failed", None),
        (json!({"scopes": []}), 422, "validation_failed", None),
    ];
    for (body, status, code, field) in cases {
        let (s, e, _) = call(app, Method::PATCH, &url, t, Some(body.clone())).await;
        assert_eq!(s, status, "{body}: {e}");
        assert_error(&e, code);
        assert_eq!(e["field"].as_str(), field, "{body}: {e}");
    }
    // Bodies that are not JSON objects, not JSON, or too large.
    let r = app
        .client()
        .patch(app.url(&url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_error(&r.json().await.unwrap(), "invalid_json");
    let r = app.client().patch(app.url(&url)).bearer_auth(&token).form(&[("name", "x")]).send().await.unwrap();
    assert_eq!(r.status(), 415);
    let big = json!({"name": "x".repeat(70 * 1024)});
    let (s, e, _) = call(app, Method::PATCH, &url, t, Some(big)).await;
    assert_eq!(s, 413);
    assert_error(&e, "payload_too_large");
    let (s, e, _) = call(app, Method::PATCH, &url, t, None).await;
    assert_eq!(s, 400, "a PATCH needs a body: {e}");
    let (s, e, _) = call(app, Method::POST, &apps, t, Some(json!({"name": "No callbacks"}))).await;
    assert_eq!((s, e["field"].as_str()), (400, None), "{e}");
    assert!(e["message"].as_str().unwrap().contains("callback_urls"), "{e}");
    // Unknown app: 404 for every per-app route; a control character in the key: 400.
    for (m, p) in [
        (Method::GET, ""),
        (Method::PATCH, ""),
        (Method::DELETE, ""),
        (Method::POST, "/rotate-secret"),
        (Method::POST, "/retire-old-secrets"),
    ] {
        let (s, e, _) = call(app, m.clone(), &format!("{apps}/0H4000000000000{p}"), t, Some(json!({}))).await;
        assert_eq!(s, 404, "{m} {p}: {e}");
        assert_error(&e, "not_found");
    }
    let (s, _, _) = call(app, Method::GET, &format!("{apps}/a%00b"), t, None).await;
    assert_eq!(s, 400);

    // Secrets: rotate keeps the old one valid until retired; the secret works at /token.
    let cc = |secret: String| {
        let key = key.clone();
        async move {
            app.token(&[
                ("grant_type", "client_credentials"),
                ("client_id", key.as_str()),
                ("client_secret", secret.as_str()),
            ])
            .await
        }
    };
    let (s, _, _) = call(
        app,
        Method::PATCH,
        &url,
        t,
        Some(
            json!({"policy": {"enable_client_credentials_flow": true, "client_credentials_user": "jane@example.com"}}),
        ),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(cc(secret.clone()).await.0, 200);
    let (s, r, _) = call(app, Method::POST, &format!("{url}/rotate-secret"), t, None).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["retired_old"], false);
    let second = r["consumer_secret"].as_str().unwrap().to_string();
    assert_eq!(cc(secret.clone()).await.0, 200);
    assert_eq!(cc(second.clone()).await.0, 200);
    let (s, r, _) = call(app, Method::POST, &format!("{url}/retire-old-secrets"), t, None).await;
    assert_eq!((s, r["retired"].as_u64()), (200, Some(1)));
    assert_eq!(cc(secret.clone()).await.0, 400);
    let (s, r, _) =
        call(app, Method::POST, &format!("{url}/rotate-secret"), t, Some(json!({"retire_old": true}))).await;
    assert_eq!((s, &r["retired_old"]), (200, &json!(true)));
    assert_eq!(cc(second).await.0, 400);
    assert_eq!(cc(r["consumer_secret"].as_str().unwrap().to_string()).await.0, 200);
    let (s, e, _) =
        call(app, Method::POST, &format!("{url}/rotate-secret"), t, Some(json!({"retire_old": "yes"}))).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("retire_old")));
    let (s, _, _) =
        call(app, Method::POST, &format!("{apps}/{}/rotate-secret", p["id"].as_str().unwrap()), t, None).await;
    assert_eq!(s, 422, "a public app has no secret");

    // Delete: 204, then 404; its tokens stop working. The built-in admin app is protected.
    let tok =
        cc(r["consumer_secret"].as_str().unwrap().to_string()).await.1["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.userinfo_status(&tok).await, 200);
    let (s, v, _) = call(app, Method::DELETE, &url, t, None).await;
    assert_eq!((s, v), (204, Value::Null));
    assert_eq!(app.userinfo_status(&tok).await, 403);
    let (s, _, _) = call(app, Method::GET, &url, t, None).await;
    assert_eq!(s, 404);
    let (s, e, _) = call(app, Method::DELETE, &format!("{apps}/ValetAdmin"), t, None).await;
    assert_eq!(s, 409);
    assert_error(&e, "conflict");
});

both_backends!(users_passwords_and_permission_sets, |app: &TestApp| async move {
    let t = admin_token(app).await;
    let t = Some(t.as_str());
    let users = format!("{V1}/users");
    let pw = "a perfectly long password 1";
    let (s, u, _) = call(
        app,
        Method::POST,
        &users,
        t,
        Some(json!({"username": "sam@example.com", "password": pw, "first_name": "Sam", "last_name": "Lee"})),
    )
    .await;
    assert_eq!(s, 201, "{u}");
    assert_eq!(
        (u["username"].as_str(), u["email"].as_str(), u["active"].as_bool(), u["is_admin"].as_bool()),
        (Some("sam@example.com"), Some("sam@example.com"), Some(true), Some(false))
    );
    assert!(!u.to_string().contains(pw) && u.get("password").is_none() && u.get("password_hash").is_none());
    let id = u["id"].as_str().unwrap().to_string();
    // Errors: duplicate 409, weak password 422 (not echoed), bad shapes 400.
    let (s, e, _) =
        call(app, Method::POST, &users, t, Some(json!({"username": "SAM@example.com", "password": pw}))).await;
    assert_eq!(s, 409, "{e}");
    let (s, e, _) =
        call(app, Method::POST, &users, t, Some(json!({"username": "weak@example.com", "password": "abc"}))).await;
    assert_eq!(s, 422, "{e}");
    assert!(!e.to_string().contains("\"abc\""));
    let (s, e, _) =
        call(app, Method::POST, &users, t, Some(json!({"username": "x@example.com", "password": 12345678901u64})))
            .await;
    assert_eq!((s, e["field"].as_str()), (400, Some("password")));
    assert!(!e.to_string().contains("12345678901"), "{e}");
    let (s, _, _) = call(app, Method::POST, &users, t, Some(json!({"username": "no-at-sign", "password": pw}))).await;
    assert_eq!(s, 422);
    let (s, e, _) =
        call(app, Method::POST, &users, t, Some(json!({"username": "y@example.com", "password": pw, "email": "bad"})))
            .await;
    assert_eq!((s, e["field"].as_str()), (422, Some("email")));
    let (s, e, _) =
        call(app, Method::POST, &users, t, Some(json!({"username": "y@example.com", "password": pw, "role": "admin"})))
            .await;
    assert_eq!((s, e["field"].as_str()), (400, Some("role")));
    // Get by id and username; list.
    for k in [id.as_str(), "sam@example.com"] {
        let (s, g, _) = call(app, Method::GET, &format!("{users}/{k}"), t, None).await;
        assert_eq!((s, g["id"].as_str()), (200, Some(id.as_str())));
    }
    let (_, list, _) = call(app, Method::GET, &users, t, None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 3);
    let (s, _, _) = call(app, Method::GET, &format!("{users}/nobody@example.com"), t, None).await;
    assert_eq!(s, 404);
    // PATCH profile.
    let url = format!("{users}/{id}");
    let (s, p, _) =
        call(app, Method::PATCH, &url, t, Some(json!({"email": "sam.lee@example.com", "first_name": "Samuel"}))).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(
        (p["email"].as_str(), p["first_name"].as_str(), p["last_name"].as_str()),
        (Some("sam.lee@example.com"), Some("Samuel"), Some("Lee"))
    );
    let (s, e, _) = call(app, Method::PATCH, &url, t, Some(json!({"first_name": "x".repeat(41)}))).await;
    assert_eq!((s, e["field"].as_str()), (422, Some("first_name")));
    let (s, e, _) = call(app, Method::PATCH, &url, t, Some(json!({"active": "no"}))).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("active")));
    let (s, e, _) = call(app, Method::PATCH, &url, t, Some(json!({"username": "other@example.com"}))).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("username")), "the username is not editable");
    // Password: 204; weak 422; unknown user 404.
    let (s, v, _) =
        call(app, Method::POST, &format!("{url}/password"), t, Some(json!({"password": "another long password 2"})))
            .await;
    assert_eq!((s, v), (204, Value::Null));
    let (s, _, _) = call(app, Method::POST, &format!("{url}/password"), t, Some(json!({"password": "short"}))).await;
    assert_eq!(s, 422);
    let (s, _, _) = call(
        app,
        Method::POST,
        &format!("{users}/nobody@example.com/password"),
        t,
        Some(json!({"password": "another long password 2"})),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _, _) = call(app, Method::POST, &format!("{url}/password"), t, Some(json!({}))).await;
    assert_eq!(s, 400);

    // Permission sets.
    let sets = format!("{V1}/permission-sets");
    let (s, ps, _) =
        call(app, Method::POST, &sets, t, Some(json!({"name": "Billing_Users", "label": "Billing users"}))).await;
    assert_eq!(s, 201, "{ps}");
    assert_eq!((ps["name"].as_str(), ps["label"].as_str()), (Some("Billing_Users"), Some("Billing users")));
    let (s, _, _) = call(app, Method::POST, &sets, t, Some(json!({"name": "Billing_Users"}))).await;
    assert_eq!(s, 409);
    let (s, _, _) = call(app, Method::POST, &sets, t, Some(json!({"name": "has space"}))).await;
    assert_eq!(s, 422);
    let (_, l, _) = call(app, Method::GET, &sets, t, None).await;
    assert_eq!(l["items"].as_array().unwrap().len(), 1);
    let (s, g, _) = call(app, Method::GET, &format!("{sets}/Billing_Users"), t, None).await;
    assert_eq!((s, g["id"].clone()), (200, ps["id"].clone()));
    let a = format!("{url}/permission-sets/Billing_Users");
    let (s, _, _) = call(app, Method::GET, &a, t, None).await;
    assert_eq!(s, 404, "not assigned yet");
    for _ in 0..2 {
        let (s, v, _) = call(app, Method::PUT, &a, t, None).await;
        assert_eq!((s, v["permission_sets"].clone()), (200, json!(["Billing_Users"])), "idempotent");
    }
    let (s, v, _) = call(app, Method::GET, &a, t, None).await;
    assert_eq!((s, v["user_id"].as_str()), (200, Some(id.as_str())));
    let (_, v, _) = call(app, Method::GET, &format!("{url}/permission-sets"), t, None).await;
    assert_eq!(v["permission_sets"], json!(["Billing_Users"]));
    let (s, v, _) = call(app, Method::DELETE, &a, t, None).await;
    assert_eq!((s, v["permission_sets"].clone()), (200, json!([])));
    let (s, _, _) = call(app, Method::PUT, &format!("{url}/permission-sets/Nope"), t, None).await;
    assert_eq!(s, 404);
    let (s, _, _) = call(app, Method::DELETE, &format!("{sets}/Billing_Users"), t, None).await;
    assert_eq!(s, 204);
    let (s, _, _) = call(app, Method::DELETE, &format!("{sets}/Billing_Users"), t, None).await;
    assert_eq!(s, 404);
});

both_backends!(api_changes_take_effect_at_the_oauth_endpoints, |app: &TestApp| async move {
    let t = admin_token(app).await;
    let t = Some(t.as_str());
    let access = app.tokens("api refresh_token").await["access_token"].as_str().unwrap().to_string();
    assert_eq!(app.userinfo_status(&access).await, 200);
    let url = format!("{V1}/users/{}", app.user.username);
    let (s, u, _) = call(app, Method::PATCH, &url, t, Some(json!({"active": false}))).await;
    assert_eq!((s, u["active"].as_bool()), (200, Some(false)));
    assert_eq!(app.userinfo_status(&access).await, 403, "disabling revokes the user's tokens");
    let (s, u, _) = call(app, Method::PATCH, &url, t, Some(json!({"active": true}))).await;
    assert_eq!((s, u["active"].as_bool()), (200, Some(true)));
    assert_eq!(app.userinfo_status(&access).await, 403, "re-enabling does not revive revoked tokens");
    // An admin cannot lock themselves out.
    let (s, e, _) =
        call(app, Method::PATCH, &format!("{V1}/users/admin@valet.local"), t, Some(json!({"active": false}))).await;
    assert_eq!((s, e["field"].as_str()), (409, Some("active")));
    let (s, _, _) = call(app, Method::GET, &format!("{V1}/users/admin@valet.local"), t, None).await;
    assert_eq!(s, 200);
    // An org setting changed through the API: the username-password flow opens and closes.
    let form = [
        ("grant_type", "password"),
        ("client_id", app.app.consumer_key.as_str()),
        ("client_secret", app.secret.as_str()),
        ("username", "jane@example.com"),
        ("password", PASSWORD),
    ];
    assert_eq!(app.token(&form).await.0, 400);
    let (s, o, _) =
        call(app, Method::PATCH, &format!("{V1}/org/settings"), t, Some(json!({"allow_username_password_flow": true})))
            .await;
    assert_eq!((s, o["allow_username_password_flow"].as_bool()), (200, Some(true)), "{o}");
    assert_eq!(app.token(&form).await.0, 200);
    // An app policy changed through the API: the flow is switched off.
    let (s, _, _) = call(
        app,
        Method::PATCH,
        &format!("{V1}/apps/{}", app.app.consumer_key),
        t,
        Some(json!({"policy": {"enable_authorization_code_flow": false}})),
    )
    .await;
    assert_eq!(s, 200);
    let loc = app
        .authorize(
            &app.browser(),
            &[
                ("response_type", "code"),
                ("client_id", &app.app.consumer_key),
                ("redirect_uri", CALLBACK),
                ("scope", "api"),
                ("code_challenge", &s256(&verifier())),
            ],
        )
        .await;
    let u = reqwest::Url::parse(&loc).unwrap();
    assert!(query_param(&u, "code").is_none() && query_param(&u, "error").is_some(), "{loc}");
});

both_backends!(org_settings_get_put_patch, |app: &TestApp| async move {
    let t = admin_token(app).await;
    let t = Some(t.as_str());
    let url = format!("{V1}/org/settings");
    let (s, o, _) = call(app, Method::GET, &url, t, None).await;
    assert_eq!(s, 200);
    assert_eq!(o, serde_json::to_value(valet_core::model::OrgSettings::default()).unwrap());
    let (_, o, _) =
        call(app, Method::PATCH, &url, t, Some(json!({"require_pkce": true, "idle_refresh_token_ttl_days": 30}))).await;
    assert_eq!(
        (o["require_pkce"].as_bool(), o["idle_refresh_token_ttl_days"].as_u64(), o["allow_user_agent_flow"].as_bool()),
        (Some(true), Some(30), Some(true))
    );
    let (_, o, _) = call(app, Method::PATCH, &url, t, Some(json!({"idle_refresh_token_ttl_days": null}))).await;
    assert!(o["idle_refresh_token_ttl_days"].is_null() && o["require_pkce"] == true);
    let (_, o, _) = call(app, Method::PUT, &url, t, Some(json!({"allow_user_agent_flow": false}))).await;
    assert_eq!(
        (o["require_pkce"].as_bool(), o["allow_user_agent_flow"].as_bool()),
        (Some(false), Some(false)),
        "PUT replaces"
    );
    for (body, field) in [
        (json!({"require_pkc": true}), Some("require_pkc")),
        (json!({"require_pkce": 1}), Some("require_pkce")),
        (json!([true]), None),
        (json!("x"), None),
    ] {
        for m in [Method::PUT, Method::PATCH] {
            let (s, e, _) = call(app, m.clone(), &url, t, Some(body.clone())).await;
            assert_eq!((s, e["field"].as_str()), (400, field), "{m} {body}: {e}");
        }
    }
});

both_backends!(custom_objects_and_fields, |app: &TestApp| async move {
    let t = admin_token(app).await;
    let t = Some(t.as_str());
    let objects = format!("{V1}/objects");
    // Nothing custom yet; all=true lists the standard objects.
    let (s, l, h) = call(app, Method::GET, &objects, t, None).await;
    assert_eq!((s, &l["items"]), (200, &json!([])), "{l}");
    assert_eq!(h["cache-control"], "no-store");
    let (s, l, _) = call(app, Method::GET, &format!("{objects}?all=true"), t, None).await;
    assert_eq!(s, 200);
    let account = l["items"].as_array().unwrap().iter().find(|o| o["name"] == "Account").unwrap().clone();
    assert_eq!(account["custom"], false);
    assert!(account["fields"].as_array().unwrap().iter().any(|f| f["name"] == "Name"), "{account}");
    let (s, l, _) = call(app, Method::GET, &format!("{objects}?all=false"), t, None).await;
    assert_eq!((s, &l["items"]), (200, &json!([])));
    for (q, field) in [("all=yes", "all"), ("colour=red", "colour")] {
        let (s, e, _) = call(app, Method::GET, &format!("{objects}?{q}"), t, None).await;
        assert_eq!((s, e["field"].as_str()), (400, Some(field)), "{q}: {e}");
        assert_error(&e, "invalid_request");
    }

    // Create: 201 with the object as the data layer defined it.
    let (s, o, _) = call(
        app,
        Method::POST,
        &objects,
        t,
        Some(json!({"name": "Widget__c", "label": "Widget", "label_plural": "Widgets"})),
    )
    .await;
    assert_eq!(s, 201, "{o}");
    assert_eq!(
        (
            o["name"].as_str(),
            o["label"].as_str(),
            o["label_plural"].as_str(),
            o["custom"].as_bool(),
            o["read_only"].as_bool()
        ),
        (Some("Widget__c"), Some("Widget"), Some("Widgets"), Some(true), Some(false))
    );
    let prefix = o["key_prefix"].as_str().unwrap().to_string();
    assert!(prefix.starts_with("a0"), "{o}");
    assert!(o["fields"].as_array().unwrap().iter().any(|f| f["name"] == "Name" && f["required"] == true), "{o}");
    let (s, o2, _) = call(app, Method::POST, &objects, t, Some(json!({"name": "Gadget_Part__c"}))).await;
    assert_eq!(
        (s, o2["label"].as_str(), o2["label_plural"].as_str()),
        (201, Some("Gadget Part"), Some("Gadget Parts")),
        "defaults like the CLI: {o2}"
    );
    // Create errors: a name taken (in any case) 409; a bad name 422 naming it; shape 400.
    for name in ["Widget__c", "widget__c"] {
        let (s, e, _) = call(app, Method::POST, &objects, t, Some(json!({ "name": name }))).await;
        assert_eq!(s, 409, "{name}: {e}");
        assert_error(&e, "conflict");
    }
    let cases: Vec<(Value, u16, &str, Option<&str>)> = vec![
        (json!({"name": "Widget"}), 422, "validation_failed", Some("name")),
        (json!({"name": "1Widget__c"}), 422, "validation_failed", Some("name")),
        (json!({"name": "Bad__Name__c"}), 422, "validation_failed", Some("name")),
        (json!({"name": format!("{}__c", "a".repeat(38))}), 422, "validation_failed", Some("name")),
        (json!({"name": "Caf\u{e9}_Label__c", "label": "\u{e9}".repeat(30)}), 422, "validation_failed", Some("name")),
        (json!({"name": "Long__c", "label": "x".repeat(41)}), 400, "invalid_request", Some("label")),
        (json!({"name": "Long__c", "label": "\u{e9}".repeat(30)}), 422, "validation_failed", None),
        (json!({"name": "Nul__c", "label_plural": "a\u{0}b"}), 400, "invalid_request", Some("label_plural")),
        (json!({"name": "Nul__c", "label": ""}), 400, "invalid_request", Some("label")),
        (json!({"name": ""}), 400, "invalid_request", Some("name")),
        (json!({"name": 5}), 400, "invalid_request", Some("name")),
        (json!({"name": "Ok__c", "plural": "x"}), 400, "invalid_request", Some("plural")),
        (json!({}), 400, "invalid_request", None),
        (json!([]), 400, "invalid_request", None),
    ];
    for (body, status, code, field) in cases {
        let (s, e, _) = call(app, Method::POST, &objects, t, Some(body.clone())).await;
        assert_eq!(s, status, "{body}: {e}");
        assert_error(&e, code);
        assert_eq!(e["field"].as_str(), field, "{body}: {e}");
    }
    let (s, e, _) = call(app, Method::POST, &objects, t, None).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_json")));

    // Get: custom or standard, case-insensitively; unknown 404.
    let (s, g, _) = call(app, Method::GET, &format!("{objects}/widget__c"), t, None).await;
    assert_eq!(
        (s, g["name"].as_str(), g["key_prefix"].as_str()),
        (200, Some("Widget__c"), Some(prefix.as_str())),
        "{g}"
    );
    let (s, g, _) = call(app, Method::GET, &format!("{objects}/User"), t, None).await;
    assert_eq!((s, g["custom"].as_bool(), g["read_only"].as_bool()), (200, Some(false), Some(true)));
    let (s, e, _) = call(app, Method::GET, &format!("{objects}/Nope__c"), t, None).await;
    assert_eq!(s, 404);
    assert_error(&e, "not_found");
    let (s, _, _) = call(app, Method::GET, &format!("{objects}/a%00b"), t, None).await;
    assert_eq!(s, 400);

    // Fields.
    let fields = format!("{objects}/Widget__c/fields");
    let (s, f, _) = call(
        app,
        Method::POST,
        &fields,
        t,
        Some(json!({"name": "Code__c", "type": "text", "length": 10, "required": true})),
    )
    .await;
    assert_eq!(s, 201, "{f}");
    assert_eq!(
        (
            f["object"].as_str(),
            f["type"].as_str(),
            f["length"].as_u64(),
            f["required"].as_bool(),
            f["custom"].as_bool()
        ),
        (Some("Widget__c"), Some("text"), Some(10), Some(true), Some(true))
    );
    let (s, f, _) = call(
        app,
        Method::POST,
        &format!("{objects}/WIDGET__C/fields"),
        t,
        Some(json!({"name": "Price__c", "type": "currency"})),
    )
    .await;
    assert_eq!(
        (s, f["object"].as_str(), f["precision"].as_u64(), f["scale"].as_u64()),
        (201, Some("Widget__c"), Some(18), Some(2)),
        "{f}"
    );
    let (s, f, _) = call(
        app,
        Method::POST,
        &fields,
        t,
        Some(json!({"name": "Color__c", "type": "picklist", "values": ["Red", " Blue "], "label": "Colour"})),
    )
    .await;
    assert_eq!((s, f["values"].clone(), f["label"].as_str()), (201, json!(["Red", "Blue"]), Some("Colour")), "{f}");
    let (s, f, _) = call(
        app,
        Method::POST,
        &fields,
        t,
        Some(json!({"name": "Account__c", "type": "lookup", "reference_to": "account"})),
    )
    .await;
    assert_eq!(
        (s, f["reference_to"].as_str(), f["relationship_name"].as_str()),
        (201, Some("Account"), Some("Account__r")),
        "{f}"
    );
    let (s, f, _) = call(
        app,
        Method::POST,
        &fields,
        t,
        Some(json!({"name": "Active__c", "type": "checkbox", "values": null, "label": null})),
    )
    .await;
    assert_eq!((s, f["required"].as_bool()), (201, Some(true)), "checkboxes are never null: {f}");
    let (s, f, _) = call(
        app,
        Method::POST,
        &format!("{objects}/Account/fields"),
        t,
        Some(json!({"name": "Tier__c", "type": "number"})),
    )
    .await;
    assert_eq!((s, f["object"].as_str()), (201, Some("Account")), "{f}");
    let cases: Vec<(&str, Value, u16, &str, Option<&str>)> = vec![
        ("Widget__c", json!({"name": "Price__c", "type": "text"}), 409, "conflict", None),
        ("Widget__c", json!({"name": "price__c", "type": "number"}), 409, "conflict", None),
        ("Nope__c", json!({"name": "X__c", "type": "text"}), 404, "not_found", None),
        ("Widget__c", json!({"name": "Blob__c", "type": "blob"}), 422, "validation_failed", Some("type")),
        ("Widget__c", json!({"name": "Plain", "type": "text"}), 422, "validation_failed", Some("name")),
        ("Widget__c", json!({"name": "Size__c", "type": "picklist"}), 422, "validation_failed", None),
        ("Widget__c", json!({"name": "Size__c", "type": "picklist", "values": []}), 422, "validation_failed", None),
        ("Widget__c", json!({"name": "Owner2__c", "type": "lookup"}), 422, "validation_failed", None),
        (
            "Widget__c",
            json!({"name": "Owner2__c", "type": "lookup", "reference_to": "Nope__c"}),
            422,
            "validation_failed",
            None,
        ),
        (
            "Widget__c",
            json!({"name": "Org__c", "type": "lookup", "reference_to": "Organization"}),
            422,
            "validation_failed",
            None,
        ),
        ("Widget__c", json!({"name": "Short__c", "type": "text", "length": 0}), 422, "validation_failed", None),
        ("Widget__c", json!({"name": "Short__c", "type": "text", "length": 256}), 422, "validation_failed", None),
        ("Widget__c", json!({"name": "Big__c", "type": "number", "precision": 19}), 422, "validation_failed", None),
        (
            "Widget__c",
            json!({"name": "Big__c", "type": "number", "precision": 4, "scale": 5}),
            422,
            "validation_failed",
            None,
        ),
        ("User", json!({"name": "Nick__c", "type": "text"}), 422, "validation_failed", None),
        (
            "Widget__c",
            json!({"name": "Big__c", "type": "number", "precision": -1}),
            400,
            "invalid_request",
            Some("precision"),
        ),
        (
            "Widget__c",
            json!({"name": "Big__c", "type": "number", "length": 5_000_000_000u64}),
            400,
            "invalid_request",
            Some("length"),
        ),
        (
            "Widget__c",
            json!({"name": "Big__c", "type": "text", "required": "yes"}),
            400,
            "invalid_request",
            Some("required"),
        ),
        (
            "Widget__c",
            json!({"name": "Size__c", "type": "picklist", "values": ["S", "M\u{0}"]}),
            400,
            "invalid_request",
            Some("values[1]"),
        ),
        (
            "Widget__c",
            json!({"name": "Size__c", "type": "picklist", "values": "S,M"}),
            400,
            "invalid_request",
            Some("values"),
        ),
        (
            "Widget__c",
            json!({"name": "Owner2__c", "type": "lookup", "reference_to": "\u{0}"}),
            400,
            "invalid_request",
            Some("reference_to"),
        ),
        (
            "Widget__c",
            json!({"name": "Size__c", "type": "text", "label": "y".repeat(41)}),
            400,
            "invalid_request",
            Some("label"),
        ),
        (
            "Widget__c",
            json!({"name": "Size__c", "type": "text", "default": "x"}),
            400,
            "invalid_request",
            Some("default"),
        ),
        ("Widget__c", json!({"name": "Size__c"}), 400, "invalid_request", None),
    ];
    for (object, body, status, code, field) in cases {
        let (s, e, _) = call(app, Method::POST, &format!("{objects}/{object}/fields"), t, Some(body.clone())).await;
        assert_eq!(s, status, "{object} {body}: {e}");
        assert_error(&e, code);
        assert_eq!(e["field"].as_str(), field, "{object} {body}: {e}");
    }
    // The list now shows both custom objects and Account with its custom field, like the CLI.
    let (_, l, _) = call(app, Method::GET, &objects, t, None).await;
    let names: Vec<&str> = l["items"].as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Account", "Gadget_Part__c", "Widget__c"], "{l}");
    let widget = &l["items"][2];
    let mut wf: Vec<(&str, &str)> = widget["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["type"].as_str().unwrap()))
        .collect();
    wf.sort();
    assert_eq!(
        wf,
        [
            ("Account__c", "lookup"),
            ("Active__c", "checkbox"),
            ("Code__c", "text"),
            ("Color__c", "picklist"),
            ("Name", "text"),
            ("Price__c", "currency")
        ]
    );
    assert_eq!(
        l["items"][0]["fields"],
        json!([{"name": "Tier__c", "type": "number", "required": false, "reference_to": null}])
    );

    // The object is live at the REST data API for an ordinary `api` token.
    let api = app.tokens("api").await["access_token"].as_str().unwrap().to_string();
    let data = |p: &str| app.url(&format!("/services/data/v62.0/sobjects/{p}"));
    let r = app
        .client()
        .post(data("Account"))
        .bearer_auth(&api)
        .json(&json!({"Name": "Parent", "Tier__c": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let acc = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let r = app
        .client()
        .post(data("Widget__c"))
        .bearer_auth(&api)
        .json(&json!({"Name": "W1", "Code__c": "abc", "Price__c": 9.99, "Color__c": "Red", "Account__c": acc}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let w = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    assert_eq!(&w[..3], prefix);
    let r: Value =
        app.client().get(data(&format!("Widget__c/{w}"))).bearer_auth(&api).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (r["Name"].as_str(), r["Price__c"].as_f64(), r["Active__c"].as_bool(), r["Account__c"].as_str()),
        (Some("W1"), Some(9.99), Some(false), Some(acc.as_str())),
        "{r}"
    );
    let r = app.client().post(data("Widget__c")).bearer_auth(&api).json(&json!({"Name": "W2"})).send().await.unwrap();
    assert_eq!(r.status(), 400, "Code__c is required");
    assert_eq!(r.json::<Value>().await.unwrap()[0]["errorCode"], "REQUIRED_FIELD_MISSING");
    let r: Value =
        app.client().get(data("Widget__c/describe")).bearer_auth(&api).send().await.unwrap().json().await.unwrap();
    assert_eq!((r["custom"].as_bool(), r["keyPrefix"].as_str()), (Some(true), Some(prefix.as_str())), "{r}");
    let r = app.client().get(data("Gadget_Part__c/describe")).bearer_auth(&api).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Authorization: nothing without a token, 403 with a normal one (and no definition made).
    let jane = app.tokens("api refresh_token").await["access_token"].as_str().unwrap().to_string();
    for (m, p) in [
        (Method::GET, objects.clone()),
        (Method::POST, objects.clone()),
        (Method::GET, format!("{objects}/Widget__c")),
        (Method::POST, fields.clone()),
    ] {
        let body = json!({"name": "Sneaky__c", "type": "text"});
        let (s, e, h) = call(app, m.clone(), &p, None, Some(body.clone())).await;
        assert_eq!(s, 401, "{m} {p}");
        assert_error(&e, "unauthorized");
        assert!(h["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
        let (s, e, _) = call(app, m.clone(), &p, Some(&jane), Some(body)).await;
        assert_eq!(s, 403, "{m} {p}");
        assert_error(&e, "forbidden");
    }
    let (_, g, _) = call(app, Method::GET, &format!("{objects}/Widget__c"), t, None).await;
    assert!(!g.to_string().contains("Sneaky"), "{g}");
    let (s, _, _) = call(app, Method::GET, &format!("{objects}/Sneaky__c"), t, None).await;
    assert_eq!(s, 404);
});

both_backends!(consumer_key_rotation_and_registration_tokens, |app: &TestApp| async move {
    let admin = admin_token(app).await;
    let t = Some(admin.as_str());
    let apps = format!("{V1}/apps");
    let (s, a, _) = call(app, Method::POST, &apps, t, Some(json!({"name": "Keys", "callback_urls": ["https://keys.example/cb"], "policy": {"enable_client_credentials_flow": true, "client_credentials_user": "jane@example.com"}}))).await;
    assert_eq!(s, 201, "{a}");
    assert!(a["previous_consumer_key"].is_null(), "{a}");
    let id = a["id"].as_str().unwrap().to_string();
    let old = a["consumer_key"].as_str().unwrap().to_string();
    let secret = a["consumer_secret"].as_str().unwrap().to_string();
    let cc = |key: String| {
        let secret = secret.clone();
        async move {
            app.token(&[
                ("grant_type", "client_credentials"),
                ("client_id", key.as_str()),
                ("client_secret", secret.as_str()),
            ])
            .await
            .0
        }
    };
    assert_eq!(cc(old.clone()).await, 200);
    // Rotate: a new key; the old one stays accepted (and finds the app) until retired.
    let (s, r, _) = call(app, Method::POST, &format!("{apps}/{old}/rotate-key"), t, None).await;
    assert_eq!(s, 200, "{r}");
    let new = r["consumer_key"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!((r["id"].as_str(), r["previous_consumer_key"].as_str()), (Some(id.as_str()), Some(old.as_str())));
    assert!(r.get("consumer_secret").is_none());
    assert_eq!(cc(old.clone()).await, 200);
    assert_eq!(cc(new.clone()).await, 200);
    let (s, g, _) = call(app, Method::GET, &format!("{apps}/{old}"), t, None).await;
    assert_eq!(
        (s, g["consumer_key"].as_str(), g["previous_consumer_key"].as_str()),
        (200, Some(new.as_str()), Some(old.as_str()))
    );
    // A second rotation while one is staged: 409, nothing changes.
    let (s, e, _) = call(app, Method::POST, &format!("{apps}/{id}/rotate-key"), t, Some(json!({}))).await;
    assert_eq!(s, 409, "{e}");
    assert_error(&e, "conflict");
    // Retire: only the new key works; retiring again is harmless.
    for _ in 0..2 {
        let (s, r, _) = call(app, Method::POST, &format!("{apps}/{id}/retire-old-key"), t, None).await;
        assert_eq!(
            (s, r["consumer_key"].as_str(), r["previous_consumer_key"].is_null()),
            (200, Some(new.as_str()), true),
            "{r}"
        );
    }
    assert_ne!(cc(old.clone()).await, 200);
    assert_eq!(cc(new.clone()).await, 200);
    let (s, _, _) = call(app, Method::GET, &format!("{apps}/{old}"), t, None).await;
    assert_eq!(s, 404, "the retired key no longer names the app");
    let (_, l, _) = call(app, Method::GET, &apps, t, None).await;
    assert!(l["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a.as_object().unwrap().contains_key("previous_consumer_key")));
    // The built-in apps keep their keys; unknown apps 404; no admin token 401; normal token 403.
    for builtin in ["ValetAdmin", "PlatformCLI"] {
        let (s, e, _) = call(app, Method::POST, &format!("{apps}/{builtin}/rotate-key"), t, None).await;
        assert_eq!(s, 409, "{builtin}: {e}");
    }
    let (s, _, _) = call(app, Method::GET, &apps, t, None).await;
    assert_eq!(s, 200, "the admin token still works");
    let jane = app.tokens("api refresh_token").await["access_token"].as_str().unwrap().to_string();
    for p in ["rotate-key", "retire-old-key", "registration-tokens"] {
        let (s, e, _) = call(app, Method::POST, &format!("{apps}/0H4000000000000/{p}"), t, Some(json!({}))).await;
        assert_eq!(s, 404, "{p}: {e}");
        assert_error(&e, "not_found");
        let (s, _, _) = call(app, Method::POST, &format!("{apps}/{id}/{p}"), None, None).await;
        assert_eq!(s, 401, "{p}");
        let (s, _, _) = call(app, Method::POST, &format!("{apps}/{id}/{p}"), Some(&jane), None).await;
        assert_eq!(s, 403, "{p}");
    }
    let (_, g, _) = call(app, Method::GET, &format!("{apps}/{id}"), t, None).await;
    assert_eq!(g["consumer_key"].as_str(), Some(new.as_str()), "refused calls changed nothing");

    // Initial access tokens: returned once, usable at /services/oauth2/register, expiring.
    let url = format!("{apps}/{id}/registration-tokens");
    let (s, r, _) = call(app, Method::POST, &url, t, None).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(
        (r["registrar_id"].as_str(), r["registrar_consumer_key"].as_str(), r["valid_minutes"].clone()),
        (Some(id.as_str()), Some(new.as_str()), Value::Null)
    );
    let forever = r["initial_access_token"].as_str().unwrap().to_string();
    assert!(forever.starts_with("vit_"), "{r}");
    let (s, r, _) = call(app, Method::POST, &url, t, Some(json!({"valid_minutes": 5}))).await;
    assert_eq!((s, r["valid_minutes"].as_i64()), (201, Some(5)), "{r}");
    let brief = r["initial_access_token"].as_str().unwrap().to_string();
    assert_ne!(brief, forever);
    let (_, g, _) = call(app, Method::GET, &format!("{apps}/{id}"), t, None).await;
    assert!(!g.to_string().contains(&brief));
    let register = |iat: String, name: &'static str| async move {
        let meta = json!({"client_name": name, "redirect_uris": ["https://rp.example.com/cb"], "token_endpoint_auth_method": "client_secret_post", "scope": "api"});
        let r =
            app.client().post(app.url("/services/oauth2/register")).bearer_auth(iat).json(&meta).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
    };
    let (s, info) = register(brief.clone(), "Registered A").await;
    assert_eq!(s, 201, "{info}");
    let (_, reg, _) = call(app, Method::GET, &format!("{apps}/{}", info["client_id"].as_str().unwrap()), t, None).await;
    assert_eq!(reg["policy"]["registered_by"].as_str(), Some(id.as_str()), "{reg}");
    app.clock.advance_ms(6 * 60_000);
    assert_eq!(register(brief, "Registered B").await.0, 401, "expired after valid_minutes");
    assert_eq!(register(forever, "Registered C").await.0, 201);
    let cases: Vec<(Value, u16, Option<&str>)> = vec![
        (json!({"valid_minutes": 0}), 422, Some("valid_minutes")),
        (json!({"valid_minutes": -5}), 422, Some("valid_minutes")),
        (json!({"valid_minutes": i64::MAX}), 422, Some("valid_minutes")),
        (json!({"valid_minutes": u64::MAX}), 400, Some("valid_minutes")),
        (json!({"valid_minutes": "5"}), 400, Some("valid_minutes")),
        (json!({"valid_minutes": 1.5}), 400, Some("valid_minutes")),
        (json!({"minutes": 5}), 400, Some("minutes")),
        (json!([5]), 400, None),
    ];
    for (body, status, field) in cases {
        let (s, e, _) = call(app, Method::POST, &url, t, Some(body.clone())).await;
        assert_eq!((s, e["field"].as_str()), (status, field), "{body}: {e}");
    }
    let r = app
        .client()
        .post(app.url(&url))
        .bearer_auth(&admin)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
});

both_backends!(openapi_document_snapshot, |app: &TestApp| async move {
    let (s, doc, h) = call(app, Method::GET, "/admin/api/openapi.json", None, None).await;
    assert_eq!(s, 200);
    assert!(h["content-type"].to_str().unwrap().starts_with("application/json"));
    insta::assert_json_snapshot!("admin_openapi", doc);
});

/// A tiny deterministic generator (xorshift64*), so that a failing case replays from its seed
/// without a new dependency.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    fn string(&mut self) -> String {
        const PIECES: &[&str] = &[
            "Widget",
            "__c",
            "_",
            "text",
            "picklist",
            "lookup",
            "currency",
            "checkbox",
            "Account",
            "",
            "a",
            "0H4",
            "005",
            "admin@valet.local",
            "jane@example.com",
            "ValetAdmin",
            "PlatformCLI",
            "\u{0}",
            "\u{202e}",
            "é",
            "'",
            "\"",
            "%",
            "/",
            "..",
            " ",
            "\n",
            "https://x.example/cb",
            "http://evil.example",
            "javascript:alert(1)",
            "api",
            "full",
            "-1",
            "9999999999999999999999",
            "null",
            "{}",
            "kind",
            "expire_after",
        ];
        let n = self.below(4);
        let mut s: String = (0..n).map(|_| *self.pick(PIECES)).collect();
        if self.below(20) == 0 {
            s.push_str(&"x".repeat(self.below(5000) as usize));
        }
        s
    }
    fn number(&mut self) -> Value {
        match self.below(6) {
            0 => json!(0),
            1 => json!(-1),
            2 => json!(u64::MAX),
            3 => json!(i64::MIN),
            4 => json!(1.5e300),
            _ => json!(self.below(1000)),
        }
    }
    /// A JSON value, biased toward the keys and shapes the API knows.
    fn value(&mut self, depth: u32) -> Value {
        const KEYS: &[&str] = &[
            "name",
            "callback_urls",
            "scopes",
            "is_public",
            "policy",
            "retire_old",
            "username",
            "password",
            "email",
            "first_name",
            "last_name",
            "active",
            "is_admin",
            "label",
            "require_pkce",
            "session_timeout_minutes",
            "refresh_token_policy",
            "minutes",
            "kind",
            "id_token",
            "valid_minutes",
            "permitted_users",
            "custom_attributes",
            "allow_username_password_flow",
            "idle_refresh_token_ttl_days",
            "jwt_access_token_minutes",
            "jwt_access_token_alg",
            "single_logout_url",
            "bogus",
            "label_plural",
            "type",
            "length",
            "precision",
            "scale",
            "required",
            "values",
            "reference_to",
            "all",
        ];
        match if depth > 3 { self.below(4) } else { self.below(7) } {
            0 => Value::Null,
            1 => Value::Bool(self.below(2) == 0),
            2 => self.number(),
            3 => Value::String(self.string()),
            4 => Value::Array((0..self.below(4)).map(|_| self.value(depth + 1)).collect()),
            _ => {
                let mut m = serde_json::Map::new();
                for _ in 0..self.below(5) {
                    m.insert(self.pick(KEYS).to_string(), self.value(depth + 1));
                }
                Value::Object(m)
            }
        }
    }
}

// Random bodies and path parameters against every operation of the document, authenticated
// as an admin: nothing may answer 5xx, and every error has the documented shape.
// VALET_FUZZ_SEED and VALET_FUZZ_ROUNDS replay or lengthen a run.
both_backends!(random_inputs_never_produce_a_server_error, |app: &TestApp| async move {
    let mut token = admin_token(app).await;
    let seed = std::env::var("VALET_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5EED_AD01u64);
    let rounds: usize = std::env::var("VALET_FUZZ_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(12);
    let mut g = Gen(seed);
    let client = app.client();
    for round in 0..rounds {
        for (method, path) in valet_server::admin::openapi::OPERATIONS {
            let id = match g.below(4) {
                0 => app.app.consumer_key.clone(),
                1 => app.user.username.clone(),
                _ => urlencode(&g.string()),
            };
            let name = match g.below(4) {
                0 => "Billing_Users".to_string(),
                1 => g.pick(&["Widget__c", "Account", "User", "Organization", "widget__C", "Can_Approve"]).to_string(),
                _ => urlencode(&g.string()),
            };
            let permission = match g.below(3) {
                0 => "Can_Approve".to_string(),
                _ => urlencode(&g.string()),
            };
            // Empty and dot segments would be normalized away by the client, reaching no route.
            let seg = |s: &str| if ["", ".", ".."].contains(&s) { "x".to_string() } else { s.to_string() };
            let path = path
                .replace("{id}", &seg(&id))
                .replace("{name}", &seg(&name))
                .replace("{permission}", &seg(&permission));
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let mut req = client.request(m.clone(), app.url(&path)).bearer_auth(&token);
            let body = g.value(0);
            req = match g.below(8) {
                0 => req,
                1 => req.header("content-type", "application/json").body(g.string()),
                2 => req.header("content-type", "text/plain").body(body.to_string()),
                _ => req.json(&body),
            };
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            assert!(status < 500, "seed {seed} round {round}: {m} {path} {body} -> {status} {text}");
            if status >= 400 && status != 405 {
                let v: Value =
                    serde_json::from_str(&text).unwrap_or_else(|_| panic!("{m} {path}: {status} not JSON: {text}"));
                assert!(v["error"].is_string() && v["message"].is_string(), "{m} {path}: {text}");
            }
            // A random `PATCH /users/admin@valet.local {"active": false}` is legitimate and
            // revokes the token in use: re-enable the admin and carry on with a new token.
            if status == 401 {
                app.engine.set_user_active("admin@valet.local", true).await.unwrap();
                token = admin_token(app).await;
            }
        }
        // The harness's own objects exist for the next round (a random DELETE may remove them).
        let _ = app.engine.create_permission_set("Billing_Users", None).await;
        let _ = app.engine.create_custom_permission("Can_Approve", None, None).await;
        if round == 0 {
            let org = valet_core::ids::SfId::parse(&app.org_id).unwrap();
            let _ = app
                .data
                .create_object(
                    &org,
                    valet_data::NewObject { name: "Widget__c".into(), label: None, label_plural: None },
                )
                .await;
        }
    }
});
