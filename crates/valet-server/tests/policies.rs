//! Each app policy and org setting changes the server's behaviour: the same request succeeds
//! or fails as the setting is switched, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::Value;
use valet_core::model::{AppPolicy, OrgSettings, RefreshTokenPolicy};
use valet_core::store::AppPatch;

async fn set_policy(app: &TestApp, policy: AppPolicy) {
    app.engine
        .update_app(&app.app.consumer_key, AppPatch { policy: Some(policy), ..Default::default() })
        .await
        .unwrap();
}

async fn refresh(app: &TestApp, rt: &str, secret: Option<&str>) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token".to_string()),
        ("refresh_token", rt.to_string()),
        ("client_id", app.app.consumer_key.clone()),
    ];
    if let Some(s) = secret {
        form.push(("client_secret", s.to_string()));
    }
    let r = app.client().post(app.url("/services/oauth2/token")).form(&form).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

both_backends!(refresh_token_policies, |app: &TestApp| async move {
    let minute = 60_000;
    // Expire if unused for 10 minutes: used at 9 minutes is fine, then unused for 11 is not.
    set_policy(
        app,
        AppPolicy { refresh_token_policy: RefreshTokenPolicy::ExpireIfUnused { minutes: 10 }, ..AppPolicy::default() },
    )
    .await;
    let t = app.tokens("api refresh_token").await;
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    app.clock.advance_ms(9 * minute);
    assert_eq!(refresh(app, &rt, Some(&app.secret)).await.0, 200);
    app.clock.advance_ms(9 * minute);
    assert_eq!(refresh(app, &rt, Some(&app.secret)).await.0, 200, "the last use reset the idle clock");
    app.clock.advance_ms(11 * minute);
    assert_eq!(refresh(app, &rt, Some(&app.secret)).await.1["error_description"], "expired access/refresh token");
    // Expire after 30 minutes, however often it is used.
    set_policy(
        app,
        AppPolicy { refresh_token_policy: RefreshTokenPolicy::ExpireAfter { minutes: 30 }, ..AppPolicy::default() },
    )
    .await;
    let t = app.tokens("api refresh_token").await;
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    for _ in 0..2 {
        app.clock.advance_ms(14 * minute);
        assert_eq!(refresh(app, &rt, Some(&app.secret)).await.0, 200);
    }
    app.clock.advance_ms(3 * minute);
    assert_eq!(refresh(app, &rt, Some(&app.secret)).await.0, 400, "absolute lifetime reached");
    // Expire immediately: no usable refresh token is issued at all.
    set_policy(app, AppPolicy { refresh_token_policy: RefreshTokenPolicy::ExpireImmediately, ..AppPolicy::default() })
        .await;
    let t = app.tokens("api refresh_token").await;
    assert!(t.get("refresh_token").is_none(), "{t}");
});

both_backends!(session_timeout_sets_access_token_lifetime, |app: &TestApp| async move {
    set_policy(app, AppPolicy { session_timeout_minutes: 15, ..AppPolicy::default() }).await;
    let t = app.tokens("api").await;
    let at = t["access_token"].as_str().unwrap();
    app.clock.advance_ms(14 * 60_000);
    assert_eq!(app.userinfo_status(at).await, 200);
    app.clock.advance_ms(2 * 60_000);
    assert_eq!(app.userinfo_status(at).await, 403, "expired after the session timeout");
});

both_backends!(require_secret_switches, |app: &TestApp| async move {
    let browser = app.browser();
    let v = verifier();
    // Web server flow without the secret: refused while required, accepted once relaxed.
    let code = app.code_with_pkce(&browser, "api refresh_token", &v).await;
    let form = |code: &str| {
        vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("client_id", app.app.consumer_key.clone()),
            ("redirect_uri", CALLBACK.to_string()),
            ("code_verifier", v.clone()),
        ]
    };
    let (s, e) = app.token(&form(&code).iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_client")));
    set_policy(
        app,
        AppPolicy {
            require_secret_for_web_server_flow: false,
            require_secret_for_refresh_token_flow: false,
            ..AppPolicy::default()
        },
    )
    .await;
    let (s, t) = app.token(&form(&code).iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>()).await;
    assert_eq!(s, 200, "{t}");
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    // Refresh without the secret works while relaxed; a wrong secret is still checked.
    assert_eq!(refresh(app, &rt, None).await.0, 200);
    assert_eq!(refresh(app, &rt, Some("wrong")).await.1["error"], "invalid_client");
    set_policy(app, AppPolicy::default()).await;
    assert_eq!(refresh(app, &rt, None).await.1["error"], "invalid_client");
});

both_backends!(require_pkce_per_app_and_org_wide, |app: &TestApp| async move {
    let b = app.browser();
    let q = [
        ("response_type", "code"),
        ("client_id", app.app.consumer_key.as_str()),
        ("redirect_uri", CALLBACK),
        ("scope", "api"),
    ];
    let loc = app.authorize(&b, &q).await;
    assert!(loc.contains("code="), "PKCE optional by default");
    set_policy(app, AppPolicy { require_pkce: true, ..AppPolicy::default() }).await;
    let loc = app.authorize(&b, &q).await;
    assert!(loc.contains("error=invalid_request"), "{loc}");
    set_policy(app, AppPolicy::default()).await;
    app.engine.set_org_settings(OrgSettings { require_pkce: true, ..Default::default() }).await.unwrap();
    let loc = app.authorize(&b, &q).await;
    assert!(loc.contains("error=invalid_request"), "org-wide: {loc}");
    let v = verifier();
    assert!(!app.code_with_pkce(&b, "api", &v).await.is_empty(), "with PKCE it works");
});

both_backends!(introspect_all_tokens_switch, |app: &TestApp| async move {
    let t = app.tokens("api").await;
    let at = t["access_token"].as_str().unwrap();
    let other = app.new_app("Auditor", false, AppPolicy::default()).await;
    let secret = other.consumer_secret.as_ref().unwrap().expose().to_string();
    let intro = || {
        let c = app.client();
        let url = app.url("/services/oauth2/introspect");
        let form = [
            ("token", at.to_string()),
            ("client_id", other.app.consumer_key.clone()),
            ("client_secret", secret.clone()),
        ];
        async move { c.post(url).form(&form).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    assert_eq!(intro().await["active"], false);
    app.engine
        .update_app(
            &other.app.consumer_key,
            AppPatch {
                policy: Some(AppPolicy { introspect_all_tokens: true, ..AppPolicy::default() }),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(intro().await["active"], true);
});

both_backends!(id_token_settings, |app: &TestApp| async move {
    let mut policy = AppPolicy::default();
    policy.id_token.valid_minutes = 720;
    policy.id_token.audiences = vec!["https://api.example.com".into()];
    policy.id_token.include_standard_claims = true;
    policy.id_token.include_custom_attributes = true;
    policy.custom_attributes.insert("department".into(), "Finance".into());
    set_policy(app, policy).await;
    let t = app.tokens("api openid").await;
    let claims = verify_jwt(app, t["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 720 * 60);
    assert_eq!(claims["aud"], serde_json::json!([app.app.consumer_key, "https://api.example.com"]));
    assert_eq!(claims["email"], "jane@example.com");
    assert_eq!(claims["given_name"], "Jane");
    assert_eq!(claims["custom_attributes"]["department"], "Finance");
    // Out-of-range validity is refused when set.
    let mut bad = AppPolicy::default();
    bad.id_token.valid_minutes = 721;
    assert!(app
        .engine
        .update_app(&app.app.consumer_key, AppPatch { policy: Some(bad), ..Default::default() })
        .await
        .is_err());
});

both_backends!(flows_disabled_per_app, |app: &TestApp| async move {
    let b = app.browser();
    set_policy(app, AppPolicy { enable_authorization_code_flow: false, ..AppPolicy::default() }).await;
    let q = [("response_type", "code"), ("client_id", app.app.consumer_key.as_str()), ("redirect_uri", CALLBACK)];
    let r = b
        .get(app.url(&format!("/services/oauth2/authorize?{}", serde_urlencoded::to_string(q).unwrap())))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("error=oauth_flow_disabled"));
    set_policy(app, AppPolicy { enable_user_agent_flow: false, ..AppPolicy::default() }).await;
    let q = [("response_type", "token"), ("client_id", app.app.consumer_key.as_str()), ("redirect_uri", CALLBACK)];
    let r = b
        .get(app.url(&format!("/services/oauth2/authorize?{}", serde_urlencoded::to_string(q).unwrap())))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("#error=oauth_flow_disabled"));
});
