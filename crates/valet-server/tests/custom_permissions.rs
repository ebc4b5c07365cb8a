//! Custom permissions: an app lists the ones it uses, permission sets grant them to users, and
//! with the app's `include_custom_permissions` switches its ID tokens, identity and userinfo
//! answers and asset tokens say which of them the user holds. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use common::*;
use reqwest::Method;
use serde_json::{json, Value};
use valet_core::model::AppPolicy;
use valet_core::store::AppPatch;

const V1: &str = "/admin/api/v1";

async fn set_policy(app: &TestApp, policy: AppPolicy) {
    app.engine
        .update_app(&app.app.consumer_key, AppPatch { policy: Some(policy), ..Default::default() })
        .await
        .unwrap();
}

/// The app lists Can_Approve and Can_Export; `on` is its ID token switch.
fn policy(on: bool) -> AppPolicy {
    let mut p = AppPolicy { custom_permissions: vec!["Can_Approve".into(), "Can_Export".into()], ..Default::default() };
    p.id_token.include_custom_permissions = on;
    p
}

async fn get_json(app: &TestApp, url: &str, token: &str) -> Value {
    let r = app.client().get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.json().await.unwrap()
}

/// The `custom_permissions` of a fresh ID token, of the identity URL and of userinfo.
async fn reported(app: &TestApp) -> [Value; 3] {
    let t = app.tokens("api openid id").await;
    let claims = verify_jwt(app, t["id_token"].as_str().unwrap()).await;
    let access = t["access_token"].as_str().unwrap();
    let identity = get_json(app, t["id"].as_str().unwrap(), access).await;
    let userinfo = get_json(app, &app.url("/services/oauth2/userinfo"), access).await;
    assert_eq!(identity["username"], "jane@example.com");
    assert_eq!(userinfo["preferred_username"], "jane@example.com");
    [
        claims["custom_permissions"].clone(),
        identity["custom_permissions"].clone(),
        userinfo["custom_permissions"].clone(),
    ]
}

async fn admin(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let token = app.engine.mint_admin_token(None).await.unwrap().token.expose().to_string();
    let mut req = app.client().request(method, app.url(&format!("{V1}{path}"))).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

both_backends!(tokens_identity_and_userinfo_report_the_users_custom_permissions, |app: &TestApp| async move {
    let e = &app.engine;
    e.create_custom_permission("Can_Approve", Some("Approve invoices"), None).await.unwrap();
    e.create_custom_permission("Can_Export", None, Some("Export reports")).await.unwrap();
    e.create_custom_permission("Unlisted", None, None).await.unwrap();
    e.create_permission_set("Approvers", None).await.unwrap();
    e.grant_custom_permission("Approvers", "Can_Approve", true).await.unwrap();
    e.grant_custom_permission("Approvers", "Unlisted", true).await.unwrap();

    // Switch on: every permission the app lists, none held yet.
    set_policy(app, policy(true)).await;
    let none = json!({"Can_Approve": false, "Can_Export": false});
    assert_eq!(reported(app).await, [none.clone(), none.clone(), none.clone()]);

    // Assigning a set that grants one turns it true at once; what the app does not list
    // (Unlisted) never shows.
    e.assign_permission_set("jane@example.com", "Approvers", true).await.unwrap();
    let approve = json!({"Can_Approve": true, "Can_Export": false});
    assert_eq!(reported(app).await, [approve.clone(), approve.clone(), approve.clone()]);

    // Granting through the same set, and revoking, apply to the next token too.
    e.grant_custom_permission("Approvers", "Can_Export", true).await.unwrap();
    let both = json!({"Can_Approve": true, "Can_Export": true});
    assert_eq!(reported(app).await, [both.clone(), both.clone(), both.clone()]);
    e.grant_custom_permission("Approvers", "Can_Approve", false).await.unwrap();
    let export = json!({"Can_Approve": false, "Can_Export": true});
    assert_eq!(reported(app).await, [export.clone(), export.clone(), export.clone()]);
    e.assign_permission_set("jane@example.com", "Approvers", false).await.unwrap();
    assert_eq!(reported(app).await, [none.clone(), none.clone(), none.clone()]);
    e.assign_permission_set("jane@example.com", "Approvers", true).await.unwrap();

    // Switch off: no claim anywhere, whatever the user holds.
    set_policy(app, policy(false)).await;
    assert_eq!(reported(app).await, [Value::Null, Value::Null, Value::Null]);

    // Switch on but nothing listed: nothing to report.
    let mut empty = AppPolicy::default();
    empty.id_token.include_custom_permissions = true;
    set_policy(app, empty).await;
    assert_eq!(reported(app).await, [Value::Null, Value::Null, Value::Null]);

    // A name the org does not define is refused; known names are spelled as defined, once.
    let mut unknown = policy(true);
    unknown.custom_permissions.push("Can_Fly".into());
    let err = e
        .update_app(&app.app.consumer_key, AppPatch { policy: Some(unknown), ..Default::default() })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Can_Fly"), "{err}");
    let mut spelled = policy(true);
    spelled.custom_permissions = vec!["can_export".into(), "CAN_EXPORT".into()];
    let updated =
        e.update_app(&app.app.consumer_key, AppPatch { policy: Some(spelled), ..Default::default() }).await.unwrap();
    assert_eq!(updated.policy.custom_permissions, vec!["Can_Export".to_string()]);
});

both_backends!(asset_tokens_follow_their_own_switch, |app: &TestApp| async move {
    let e = &app.engine;
    e.create_custom_permission("Can_Approve", None, None).await.unwrap();
    e.create_custom_permission("Can_Export", None, None).await.unwrap();
    e.create_permission_set("Approvers", None).await.unwrap();
    e.grant_custom_permission("Approvers", "Can_Approve", true).await.unwrap();
    e.assign_permission_set("jane@example.com", "Approvers", true).await.unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let actor = format!("{}.{}.", b64.encode(r#"{"alg":"none"}"#), b64.encode(r#"{"did":"device-42"}"#));
    let actor = actor.as_str();
    let asset = |on: bool| async move {
        let mut p = policy(false);
        p.asset_tokens.enabled = true;
        p.asset_tokens.include_custom_permissions = on;
        set_policy(app, p).await;
        let t = app.tokens("api openid").await;
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
            ("subject_token", t["access_token"].as_str().unwrap()),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
            ("actor_token", actor),
            ("actor_token_type", "urn:ietf:params:oauth:token-type:jwt"),
            ("client_id", app.app.consumer_key.as_str()),
            ("client_secret", app.secret.as_str()),
        ];
        let r: Value = app
            .client()
            .post(app.url("/services/oauth2/token"))
            .form(&form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let claims = verify_jwt(app, r["access_token"].as_str().expect("an asset token")).await;
        assert_eq!(claims["did"], "device-42");
        claims["custom_permissions"].clone()
    };
    assert_eq!(asset(true).await, json!({"Can_Approve": true, "Can_Export": false}));
    assert_eq!(asset(false).await, Value::Null, "the ID token switch does not turn asset tokens on");
});

both_backends!(admin_api_defines_grants_and_deletes_custom_permissions, |app: &TestApp| async move {
    // Define.
    let (s, cp) = admin(
        app,
        Method::POST,
        "/custom-permissions",
        Some(json!({"name": "Can_Approve", "label": "Approve invoices", "description": "Finance only"})),
    )
    .await;
    assert_eq!(s, 201, "{cp}");
    assert!(cp["id"].as_str().unwrap().starts_with("0CP"), "{cp}");
    assert_eq!((cp["label"].as_str(), cp["description"].as_str()), (Some("Approve invoices"), Some("Finance only")));
    let (s, e) = admin(app, Method::POST, "/custom-permissions", Some(json!({"name": "can_approve"}))).await;
    assert_eq!((s, e["error"].as_str()), (409, Some("conflict")), "names are unique whatever their case");
    for bad in ["Can Approve", "9lives", "a__b", "trailing_"] {
        let (s, e) = admin(app, Method::POST, "/custom-permissions", Some(json!({"name": bad}))).await;
        assert_eq!(s, 422, "{bad}: {e}");
    }
    let (s, e) = admin(app, Method::POST, "/custom-permissions", Some(json!({"name": "X", "bogus": 1}))).await;
    assert_eq!((s, e["field"].as_str()), (400, Some("bogus")));
    let (s, cp) =
        admin(app, Method::PATCH, "/custom-permissions/can_approve", Some(json!({"description": null}))).await;
    assert_eq!((s, cp["description"].clone(), cp["label"].as_str()), (200, Value::Null, Some("Approve invoices")));
    let (s, list) = admin(app, Method::GET, "/custom-permissions", None).await;
    assert_eq!((s, list["items"].as_array().unwrap().len()), (200, 1));

    // The app lists it (spelled as defined) and turns the switch on.
    let key = app.app.consumer_key.clone();
    let patch =
        json!({"policy": {"custom_permissions": ["CAN_APPROVE"], "id_token": {"include_custom_permissions": true}}});
    let (s, a) = admin(app, Method::PATCH, &format!("/apps/{key}"), Some(patch)).await;
    assert_eq!((s, a["policy"]["custom_permissions"].clone()), (200, json!(["Can_Approve"])), "{a}");
    let (s, e) =
        admin(app, Method::PATCH, &format!("/apps/{key}"), Some(json!({"policy": {"custom_permissions": ["Nope"]}})))
            .await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(reported(app).await[0], json!({"Can_Approve": false}));

    // A permission set grants it; the user holds the set.
    let (s, _) = admin(app, Method::POST, "/permission-sets", Some(json!({"name": "Approvers"}))).await;
    assert_eq!(s, 201);
    let (s, _) = admin(app, Method::PUT, "/users/jane@example.com/permission-sets/Approvers", None).await;
    assert_eq!(s, 200);
    let granted = "/permission-sets/Approvers/custom-permissions/Can_Approve";
    let (s, e) = admin(app, Method::GET, granted, None).await;
    assert_eq!(s, 404, "not granted yet: {e}");
    for _ in 0..2 {
        let (s, g) = admin(app, Method::PUT, granted, None).await;
        assert_eq!((s, g), (200, json!({"permission_set": "Approvers", "custom_permissions": ["Can_Approve"]})));
    }
    let (s, _) = admin(app, Method::GET, granted, None).await;
    assert_eq!(s, 200);
    let (s, g) = admin(app, Method::GET, "/permission-sets/Approvers/custom-permissions", None).await;
    assert_eq!((s, g["custom_permissions"].clone()), (200, json!(["Can_Approve"])));
    let (s, _) = admin(app, Method::PUT, "/permission-sets/Approvers/custom-permissions/Can_Fly", None).await;
    assert_eq!(s, 404);
    assert_eq!(
        reported(app).await,
        [json!({"Can_Approve": true}), json!({"Can_Approve": true}), json!({"Can_Approve": true})]
    );

    // Revoked through the API: false on the next token.
    let (s, g) = admin(app, Method::DELETE, granted, None).await;
    assert_eq!((s, g["custom_permissions"].clone()), (200, json!([])));
    assert_eq!(reported(app).await[0], json!({"Can_Approve": false}));

    // Deleting the permission removes it from the app's list and from the set.
    admin(app, Method::PUT, granted, None).await;
    let (s, _) = admin(app, Method::DELETE, "/custom-permissions/Can_Approve", None).await;
    assert_eq!(s, 204);
    let (s, a) = admin(app, Method::GET, &format!("/apps/{key}"), None).await;
    assert_eq!((s, a["policy"]["custom_permissions"].clone()), (200, json!([])));
    let (_, g) = admin(app, Method::GET, "/permission-sets/Approvers/custom-permissions", None).await;
    assert_eq!(g["custom_permissions"], json!([]));
    assert_eq!(reported(app).await[0], Value::Null);
    let (s, _) = admin(app, Method::GET, "/custom-permissions/Can_Approve", None).await;
    assert_eq!(s, 404);
});
