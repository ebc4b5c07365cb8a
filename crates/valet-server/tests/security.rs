//! What an outside attack run found, each as a class: every test here failed before its fix,
//! on SQLite and PostgreSQL (the catalogue case ids are in `docs/security.md`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};
use valet_core::model::{AppPolicy, AssetTokenSettings, OrgSettings};
use valet_core::store::{AppPatch, Store};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

async fn set_policy(app: &TestApp, key: &str, policy: AppPolicy) {
    app.engine.update_app(key, AppPatch { policy: Some(policy), ..Default::default() }).await.unwrap();
}

async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = app.client().post(app.url(path)).form(form).send().await.unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (s, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

async fn jwt_bearer(app: &TestApp, assertion: &str) -> (u16, Value) {
    post_form(
        app,
        "/services/oauth2/token",
        &[("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", assertion)],
    )
    .await
}

/// The client credentials grant of the test app with a `scope` parameter.
async fn client_credentials(app: &TestApp, scope: &str) -> (u16, Value) {
    post_form(
        app,
        "/services/oauth2/token",
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &app.app.consumer_key),
            ("client_secret", &app.secret),
            ("scope", scope),
        ],
    )
    .await
}

/// The password grant of the test app for Jane.
async fn password_grant(app: &TestApp, password: &str) -> (u16, Value) {
    post_form(
        app,
        "/services/oauth2/token",
        &[
            ("grant_type", "password"),
            ("client_id", &app.app.consumer_key),
            ("client_secret", &app.secret),
            ("username", "jane@example.com"),
            ("password", password),
        ],
    )
    .await
}

fn now_secs(app: &TestApp) -> i64 {
    valet_core::clock::Clock::now_secs(&app.clock)
}

// GP-01, JB-01: the JWT bearer grant acts only when its flag is on, and an assertion buys one
// token (with or without a `jti`).
both_backends!(jwt_bearer_needs_its_flag_and_cannot_be_replayed, |app: &TestApp| async move {
    let (pem, sign) = jwt_signer();
    // A certificate for private_key_jwt, but the JWT bearer flow switched off.
    let policy = AppPolicy { jwt_certificate_pem: Some(pem), ..AppPolicy::default() };
    set_policy(app, &app.app.consumer_key, policy.clone()).await;
    app.tokens("api").await; // the user approves the app
    let claims = |jti: Option<&str>| {
        let mut c = json!({"iss": app.app.consumer_key, "sub": "jane@example.com", "aud": app.base, "exp": now_secs(app) + 300});
        if let Some(j) = jti {
            c["jti"] = j.into();
        }
        c
    };
    let (s, e) = jwt_bearer(app, &sign(&claims(None))).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("oauth_flow_disabled")), "{e}");
    set_policy(app, &app.app.consumer_key, AppPolicy { enable_jwt_bearer_flow: true, ..policy }).await;
    for jti in [None, Some("jti-1")] {
        let assertion = sign(&claims(jti));
        let (s, t) = jwt_bearer(app, &assertion).await;
        assert_eq!(s, 200, "{t}");
        let (s, e) = jwt_bearer(app, &assertion).await;
        assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")), "replay of {jti:?}: {e}");
    }
    // Ten copies at once: exactly one token.
    let assertion = sign(&claims(Some("jti-2")));
    let results = futures::future::join_all((0..10).map(|_| jwt_bearer(app, &assertion))).await;
    assert_eq!(results.iter().filter(|(s, _)| *s == 200).count(), 1, "{results:?}");
    // `nbf` ahead is refused.
    let mut c = claims(None);
    c["nbf"] = (now_secs(app) + 600).into();
    assert_eq!(jwt_bearer(app, &sign(&c)).await.0, 400);
    // RL-03: an account locked by failed passwords cannot log in with an assertion either.
    for _ in 0..5 {
        let _ = app.engine.login("jane@example.com", "wrong", None).await.unwrap();
    }
    let (s, e) = jwt_bearer(app, &sign(&claims(Some("jti-3")))).await;
    assert_eq!((s, e["error_description"].as_str()), (400, Some("authentication failure")), "{e}");
});

// RL-02: the counters live in the database, so every node shares them: failures counted by
// one engine lock the account on another engine over the same database.
both_backends!(login_throttle_is_shared_by_every_node, |app: &TestApp| async move {
    let other = valet_core::Engine::start(
        std::sync::Arc::new(app.sql_store().clone()),
        std::sync::Arc::new(app.clock.clone()),
        std::sync::Arc::new(valet_core::rand::OsRandom),
        app.master.clone(),
        valet_core::EngineConfig::new(&app.base),
    )
    .await
    .unwrap();
    for engine in [&*app.engine, &other, &*app.engine] {
        assert!(engine.login("jane@example.com", "wrong", None).await.unwrap().is_err());
    }
    assert!(!other.locked_out("jane@example.com").await.unwrap());
    for _ in 0..2 {
        assert!(other.login("jane@example.com", "wrong", None).await.unwrap().is_err());
    }
    assert!(app.engine.locked_out("jane@example.com").await.unwrap(), "five failures over two nodes lock");
    let outcome = other.login("jane@example.com", PASSWORD, None).await.unwrap();
    assert!(
        matches!(outcome, Err(valet_core::engine::resource::LoginFailure::Throttled { .. })),
        "the right password is not even checked: {outcome:?}"
    );
});

// JB-02, JB-05: client assertions with `nbf` ahead or a `crit` header are refused.
both_backends!(client_assertions_check_nbf_and_crit, |app: &TestApp| async move {
    let (pem, _) = jwt_signer();
    let policy = AppPolicy {
        jwt_certificate_pem: Some(pem),
        enable_client_credentials_flow: true,
        client_credentials_user: Some("jane@example.com".into()),
        ..AppPolicy::default()
    };
    set_policy(app, &app.app.consumer_key, policy).await;
    let hs = |header: &str, claims: &Value| {
        let input = format!("{}.{}", B64.encode(header), B64.encode(claims.to_string()));
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, app.secret.as_bytes());
        format!("{input}.{}", B64.encode(aws_lc_rs::hmac::sign(&key, input.as_bytes())))
    };
    let now = now_secs(app);
    let claims = |jti: &str| {
        json!({"iss": app.app.consumer_key, "sub": app.app.consumer_key,
               "aud": app.url("/services/oauth2/token"), "exp": now + 120, "jti": jti})
    };
    let cc = |assertion: String| async move {
        post_form(
            app,
            "/services/oauth2/token",
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &app.app.consumer_key),
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ("client_assertion", &assertion),
            ],
        )
        .await
    };
    let (s, t) = cc(hs(r#"{"alg":"HS256"}"#, &claims("a1"))).await;
    assert_eq!(s, 200, "a good assertion works: {t}");
    let mut ahead = claims("a2");
    ahead["nbf"] = (now + 600).into();
    assert_eq!(cc(hs(r#"{"alg":"HS256"}"#, &ahead)).await.1["error"], "invalid_client");
    assert_eq!(cc(hs(r#"{"alg":"HS256","crit":["exp-ext"]}"#, &claims("a3"))).await.1["error"], "invalid_client");
});

// TX-01, item 23, RFC 7519 §4.1.5: asset tokens only for the subject token's own app, also
// without client credentials; external subject tokens with `nbf` ahead are refused.
both_backends!(asset_tokens_and_token_exchange_times, |app: &TestApp| async move {
    let assets =
        AppPolicy { asset_tokens: AssetTokenSettings { enabled: true, ..Default::default() }, ..AppPolicy::default() };
    set_policy(app, &app.app.consumer_key, assets.clone()).await;
    let other = app.new_app("Other", false, assets).await;
    let subject = app.tokens("api openid").await["access_token"].as_str().unwrap().to_string();
    let actor = format!("{}.{}.", B64.encode(r#"{"alg":"none"}"#), B64.encode(r#"{"did":"d1"}"#));
    let exchange = |extra: Vec<(&'static str, String)>| {
        let mut form = vec![
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange".to_string()),
            ("subject_token", subject.clone()),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token".to_string()),
            ("actor_token", actor.clone()),
            ("actor_token_type", "urn:ietf:params:oauth:token-type:jwt".to_string()),
        ];
        form.extend(extra);
        async move {
            let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(app, "/services/oauth2/token", &f).await
        }
    };
    // Another app's credentials with this app's token: refused.
    let (s, e) = exchange(vec![
        ("client_id", other.app.consumer_key.clone()),
        ("client_secret", other.consumer_secret.as_ref().unwrap().expose().to_string()),
    ])
    .await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")), "{e}");
    // As Salesforce documents it: no client credentials at all.
    let (s, t) = exchange(vec![]).await;
    assert_eq!(s, 200, "{t}");
    let claims = verify_jwt(app, t["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["client_id"], app.app.consumer_key.as_str());

    // Token exchange from an external issuer: `nbf` an hour ahead is refused.
    let (jwks, sign) = external_issuer();
    let policy = AppPolicy {
        enable_token_exchange_flow: true,
        token_exchange_issuers: vec![valet_core::model::TrustedIssuer {
            issuer: "https://idp.example".into(),
            audience: None,
            user_claim: "sub".into(),
            jwks_url: None,
            jwks: Some(jwks),
            certificate_pem: None,
        }],
        ..AppPolicy::default()
    };
    set_policy(app, &app.app.consumer_key, policy).await;
    let now = now_secs(app);
    let ext = |nbf: i64| {
        sign(&json!({"iss": "https://idp.example", "sub": "jane@example.com", "exp": now + 7200, "nbf": nbf}))
    };
    let form = |subject: String| {
        vec![
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange".to_string()),
            ("subject_token", subject),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt".to_string()),
            ("client_id", app.app.consumer_key.clone()),
            ("client_secret", app.secret.clone()),
        ]
    };
    for (nbf, want) in [(now + 3600, 400), (now - 10, 200)] {
        let f = form(ext(nbf));
        let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (s, body) = post_form(app, "/services/oauth2/token", &f).await;
        assert_eq!(s, want, "nbf {nbf}: {body}");
    }
});

// DR-03, item 2: a registered client never gets `full`, and `full` alone never reaches the
// admin API; the consent page says what `full` grants and that a registered app is unverified.
both_backends!(registration_scopes_and_the_admin_api, |app: &TestApp| async move {
    let iat = app.engine.create_initial_access_token(&app.app.consumer_key, Some(60)).await.unwrap();
    let register = |scope: &str| {
        let body = json!({"client_name": "Registered", "redirect_uris": [CALLBACK], "scope": scope,
                          "token_endpoint_auth_method": "client_secret_post"});
        let c = app.client();
        let url = app.url("/services/oauth2/register");
        let token = iat.expose().to_string();
        async move {
            let r = c.post(url).bearer_auth(token).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    for privileged in ["api full", "valet_admin", "api id visualforce"] {
        let (s, e) = register(privileged).await;
        assert_eq!((s, e["error"].as_str()), (400, Some("invalid_client_metadata")), "{privileged}: {e}");
    }
    let (s, reg) = register("api openid refresh_token").await;
    assert_eq!(s, 201, "{reg}");
    // Its consent page warns.
    let browser = app.browser();
    let loc = format!(
        "/services/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}",
        reg["client_id"].as_str().unwrap(),
        urlencode(CALLBACK)
    );
    let login = app.login(&browser, &loc).await;
    let page = browser.get(app.url(login.headers()["location"].to_str().unwrap())).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("Unverified application"), "{html}");

    // An admin user's OAuth token with `full` is not an admin credential.
    app.engine
        .store()
        .update_user(&app.user.id, &valet_core::store::UserPatch { is_admin: Some(true), ..Default::default() }, 0)
        .await
        .unwrap();
    let full = app.new_app("Full", false, AppPolicy::default()).await;
    app.engine
        .update_app(
            &full.app.consumer_key,
            AppPatch { scopes: Some(valet_core::scope::ScopeSet::parse("api full").unwrap()), ..Default::default() },
        )
        .await
        .unwrap();
    let secret = full.consumer_secret.as_ref().unwrap().expose().to_string();
    let (s, t) = app.code_flow(&full.app.consumer_key, &secret, "full").await;
    assert_eq!(s, 200, "{t}");
    let r = app
        .client()
        .get(app.url("/admin/api/v1/users"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "full alone is not an admin credential");
    let admin = app.engine.mint_admin_token(None).await.unwrap();
    let r = app.client().get(app.url("/admin/api/v1/users")).bearer_auth(admin.token.expose()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // The consent page names what `full` grants.
    let browser = app.browser();
    let html = consent_page(app, &browser, &full.app.consumer_key, "full").await;
    assert!(html.contains("scope-warning"), "{html}");
});

/// The consent page for a fresh authorize request of `client_id`, logging in first.
async fn consent_page(app: &TestApp, browser: &reqwest::Client, client_id: &str, scope: &str) -> String {
    let path = format!(
        "/services/oauth2/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope={}&prompt=consent",
        urlencode(CALLBACK),
        urlencode(scope)
    );
    let r = browser.get(app.url(&path)).send().await.unwrap();
    let r = if r.status() == 302 { app.login(browser, &path).await } else { r };
    let r = if r.status() == 303 {
        browser.get(app.url(r.headers()["location"].to_str().unwrap())).send().await.unwrap()
    } else {
        r
    };
    r.text().await.unwrap()
}

// DR-04: back-channel logout URLs on loopback, private or link-local addresses are refused
// at registration, by the admin, and (for one stored before) at send time.
both_backends!(backchannel_logout_urls_cannot_reach_internal_addresses, |app: &TestApp| async move {
    let iat = app.engine.create_initial_access_token(&app.app.consumer_key, Some(60)).await.unwrap();
    for bad in [
        "http://127.0.0.1:5432/",
        "https://127.0.0.1/logout",
        "https://169.254.169.254/latest",
        "https://10.0.0.1/x",
        "https://[::1]/x",
        "https://127.0.0.1@evil.example/x",
        "https://localhost/x",
    ] {
        let body = json!({"client_name": "RP", "redirect_uris": [CALLBACK], "backchannel_logout_uri": bad});
        let r = app
            .client()
            .post(app.url("/services/oauth2/register"))
            .bearer_auth(iat.expose())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let policy = AppPolicy { backchannel_logout_url: Some(bad.into()), ..AppPolicy::default() };
        let e =
            app.engine.update_app(&app.app.consumer_key, AppPatch { policy: Some(policy), ..Default::default() }).await;
        assert!(e.is_err(), "admin: {bad}");
    }
    // One stored before these rules (written to the database directly) is not sent to.
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    let router = axum::Router::new().route(
        "/logout",
        axum::routing::post(move || {
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async { "ok" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/logout", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let mut stored = app.app.clone();
    stored.policy.backchannel_logout_url = Some(url);
    app.sql_store()
        .update_app(
            &stored.id,
            &AppPatch { policy: Some(stored.policy.clone()), ..Default::default() },
            valet_core::clock::Clock::now_ms(&app.clock),
        )
        .await
        .unwrap();
    app.engine.store().update_app(&stored.id, &AppPatch::default(), 0).await.ok();
    let browser = app.browser();
    let v = verifier();
    app.code_with_pkce(&browser, "api refresh_token", &v).await;
    let t = app.tokens("api refresh_token").await;
    assert!(t["access_token"].is_string());
    let html = browser.get(app.url("/logout")).send().await.unwrap().text().await.unwrap();
    let r = browser.post(app.url("/logout")).form(&[("csrf", hidden(&html, "csrf").as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing was POSTed to loopback");
});

// RU-09: the login page continues only to same-origin paths.
both_backends!(login_continue_is_a_same_origin_path, |app: &TestApp| async move {
    for bad in [
        "/\t/evil.example/",
        "/%09/evil.example/",
        "//evil.example",
        "/\\evil.example",
        "/%5Cevil.example",
        "/%2F/evil.example",
        "https://evil.example",
    ] {
        let b = app.browser();
        let html =
            b.get(app.url(&format!("/login?continue={}", urlencode(bad)))).send().await.unwrap().text().await.unwrap();
        assert_eq!(hidden(&html, "continue"), "/", "{bad:?}");
        let r = app.login(&b, bad).await;
        assert_eq!(r.headers()["location"], "/", "{bad:?}");
    }
    let r = app.login(&app.browser(), "/services/oauth2/authorize?x=1").await;
    assert_eq!(r.headers()["location"], "/services/oauth2/authorize?x=1");
});

// RL-02: 50 concurrent wrong passwords: all counted, at most five checked.
both_backends!(concurrent_wrong_passwords_are_counted_before_they_are_checked, |app: &TestApp| async move {
    let b = app.browser();
    let html = b.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&html, "csrf");
    let attempts = (0..50).map(|_| {
        let b = b.clone();
        let csrf = csrf.clone();
        async move {
            b.post(app.url("/login"))
                .form(&[("username", "jane@example.com"), ("password", "wrong"), ("csrf", &csrf), ("continue", "/")])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert!(checked <= 5, "{checked} passwords were checked: {statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 50 - checked);
    let now = valet_core::clock::Clock::now_ms(&app.clock);
    assert_eq!(app.engine.store().attempts("login:user:jane@example.com", now).await.unwrap(), 50);
    // The locked account: the right password, the password grant, JWT bearer all refused.
    assert!(app.engine.locked_out("jane@example.com").await.unwrap());
    app.engine
        .set_org_settings(OrgSettings { allow_username_password_flow: true, ..Default::default() })
        .await
        .unwrap();
    let (s, e) = password_grant(app, PASSWORD).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")), "{e}");
});

// RL-03, RL-04: the password grant is throttled like the login page.
both_backends!(password_grant_is_throttled, |app: &TestApp| async move {
    app.engine
        .set_org_settings(OrgSettings { allow_username_password_flow: true, ..Default::default() })
        .await
        .unwrap();
    let grant = |password: &'static str| password_grant(app, password);
    assert_eq!(grant(PASSWORD).await.0, 200);
    for _ in 0..5 {
        assert_eq!(grant("wrong").await.0, 400);
    }
    assert_eq!(grant(PASSWORD).await.0, 400, "locked after five failures");
    app.clock.advance_ms(16 * 60 * 1000);
    assert_eq!(grant(PASSWORD).await.0, 200, "the window passed");
});

// DF-04: the device approval form cannot be used to guess user codes.
both_backends!(device_code_guessing_is_throttled_on_every_form, |app: &TestApp| async move {
    let b = app.browser();
    app.login(&b, "/").await;
    let html = b.get(app.url("/setup/connect")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&html, "csrf");
    let mut statuses = vec![];
    for i in 0..15 {
        let code = format!("BCDF{:04}", i);
        let r = b
            .post(app.url("/setup/connect/approve"))
            .form(&[("csrf", csrf.as_str()), ("user_code", &code), ("decision", "allow")])
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(statuses.iter().filter(|s| **s == 400).count() <= 5, "{statuses:?}");
});

// RL-06, item 21: X-Forwarded-For counts only from trusted proxies, for IP ranges on every
// bearer call as for throttling.
both_backends!(forwarded_addresses_are_ignored_from_untrusted_peers, |app: &TestApp| async move {
    let policy = AppPolicy {
        enable_client_credentials_flow: true,
        client_credentials_user: Some("jane@example.com".into()),
        ..AppPolicy::default()
    };
    set_policy(app, &app.app.consumer_key, policy.clone()).await;
    let cc = [
        ("grant_type", "client_credentials"),
        ("client_id", app.app.consumer_key.as_str()),
        ("client_secret", app.secret.as_str()),
    ];
    let (s, t) = post_form(app, "/services/oauth2/token", &cc).await;
    assert_eq!(s, 200, "{t}");
    let at = t["access_token"].as_str().unwrap().to_string();
    // The app is now restricted to 10.0.0.0/8; the test client is 127.0.0.1.
    set_policy(app, &app.app.consumer_key, AppPolicy { ip_ranges: vec!["10.0.0.0/8".into()], ..policy }).await;
    let with_xff = |path: &str| app.client().get(app.url(path)).bearer_auth(&at).header("x-forwarded-for", "10.1.2.3");
    assert_eq!(with_xff("/services/data/v62.0/limits").send().await.unwrap().status(), 401, "REST");
    assert_eq!(with_xff("/services/oauth2/userinfo").send().await.unwrap().status(), 403, "userinfo");
    let r = app
        .client()
        .post(app.url("/services/oauth2/token"))
        .header("x-forwarded-for", "10.1.2.3")
        .form(&cc)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "token endpoint");
});

both_backends_with!(
    forwarded_addresses_count_from_trusted_proxies,
    |c: &mut valet_core::EngineConfig| c.trusted_proxies = vec!["127.0.0.1".into()],
    |app: &TestApp| async move {
        let policy = AppPolicy {
            enable_client_credentials_flow: true,
            client_credentials_user: Some("jane@example.com".into()),
            ip_ranges: vec!["10.0.0.0/8".into()],
            ..AppPolicy::default()
        };
        set_policy(app, &app.app.consumer_key, policy).await;
        let cc = [
            ("grant_type", "client_credentials"),
            ("client_id", app.app.consumer_key.as_str()),
            ("client_secret", app.secret.as_str()),
        ];
        let token = |xff: &'static str| {
            app.client().post(app.url("/services/oauth2/token")).header("x-forwarded-for", xff).form(&cc)
        };
        let r = token("10.1.2.3").send().await.unwrap();
        assert_eq!(r.status(), 200);
        let at = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
        assert_eq!(token("8.8.8.8").send().await.unwrap().status(), 400);
        let rest = |xff: &'static str| {
            app.client().get(app.url("/services/data/v62.0/limits")).bearer_auth(&at).header("x-forwarded-for", xff)
        };
        assert_eq!(rest("10.9.9.9").send().await.unwrap().status(), 200);
        assert_eq!(rest("8.8.8.8").send().await.unwrap().status(), 401);
    }
);

// CS-06: `max_age` sends an older session back to the login page.
both_backends!(max_age_forces_a_new_login, |app: &TestApp| async move {
    let b = app.browser();
    app.tokens("api").await;
    app.login(&b, "/").await;
    app.clock.advance_ms(60_000);
    let path = |max_age: &str| {
        format!(
            "/services/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope=api&max_age={max_age}",
            app.app.consumer_key,
            urlencode(CALLBACK)
        )
    };
    let r = b.get(app.url(&path("30"))).send().await.unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with("/login"), "{loc}");
    let r = b.get(app.url(&path("10000"))).send().await.unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(!loc.starts_with("/login"), "{loc}");
    let r = b.get(app.url(&path("soon"))).send().await.unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("error=invalid_request"));
});

// IN-05, AR-03, item 27, CS-02: reflected input, request objects, the headless response type on
// a browser GET, and a tampered consent form.
both_backends!(authorize_refuses_what_it_does_not_support, |app: &TestApp| async move {
    let b = app.browser();
    app.login(&b, "/").await;
    let get = |extra: &str| {
        let url = app.url(&format!(
            "/services/oauth2/authorize?client_id={}&redirect_uri={}{extra}",
            app.app.consumer_key,
            urlencode(CALLBACK)
        ));
        let b = b.clone();
        async move { b.get(url).send().await.unwrap().headers()["location"].to_str().unwrap().to_string() }
    };
    let loc = get("&response_type=code&request=eyJhbGciOiJub25lIn0.e30.").await;
    assert!(loc.contains("error=request_not_supported"), "{loc}");
    let loc = get("&response_type=code&request_uri=https%3A%2F%2Fx.example%2Fr").await;
    assert!(loc.contains("error=request_uri_not_supported"), "{loc}");
    let loc = get("&response_type=code_credentials").await;
    assert!(loc.contains("error=unsupported_response_type"), "{loc}");
    let loc = get("&response_type=code&scope=api%20%3Cscript%3E%22%0D%0A").await;
    let u = reqwest::Url::parse(&loc).unwrap();
    let desc = query_param(&u, "error_description").unwrap_or_default();
    assert!(!desc.contains('<') && !desc.contains('"') && !desc.contains('\r'), "{desc:?}");
    let (_, e) = client_credentials(app, "api <b>\"x\"\r\n").await;
    let desc = e["error_description"].as_str().unwrap_or_default();
    assert!(!desc.contains('<') && !desc.contains('"') && !desc.contains('\n'), "{desc:?}");

    // Consent: the form's request, widened, is refused.
    let html = consent_page(app, &b, &app.app.consumer_key, "api").await;
    let csrf = hidden(&html, "csrf");
    let request = hidden(&html, "request");
    let tag = hidden(&html, "request_tag");
    let widened = request.replace("scope=api", "scope=api+refresh_token+web");
    assert_ne!(widened, request);
    let post = |request: String| {
        let b = b.clone();
        let form = vec![
            ("csrf", csrf.clone()),
            ("request", request),
            ("request_tag", tag.clone()),
            ("decision", "allow".to_string()),
        ];
        async move { b.post(app.url("/services/oauth2/authorize/consent")).form(&form).send().await.unwrap() }
    };
    assert_eq!(post(widened).await.status(), 400);
    let r = post(request).await;
    assert_eq!(r.status(), 302);
    assert!(r.headers()["location"].to_str().unwrap().contains("code="));
});

// CS-07: a public client's remembered consent is asked again.
both_backends!(public_clients_always_ask_for_consent, |app: &TestApp| async move {
    let public = app
        .new_app("Public", true, AppPolicy { require_secret_for_web_server_flow: false, ..AppPolicy::default() })
        .await;
    let b = app.browser();
    for round in 0..2 {
        let html = consent_page_no_prompt(app, &b, &public.app.consumer_key).await;
        assert!(html.contains("Allow Access?"), "round {round}: {html}");
        assert_eq!(allow(app, &b, &html).await.status(), 302);
    }
    // A confidential app's approval is remembered.
    let html = consent_page_no_prompt(app, &b, &app.app.consumer_key).await;
    allow(app, &b, &html).await;
    let path = format!(
        "/services/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}&scope=api",
        app.app.consumer_key,
        urlencode(CALLBACK)
    );
    let r = b.get(app.url(&path)).send().await.unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("code="));
});

/// Clicks Allow on a consent page.
async fn allow(app: &TestApp, b: &reqwest::Client, html: &str) -> reqwest::Response {
    let form = [
        ("csrf", hidden(html, "csrf")),
        ("request", hidden(html, "request")),
        ("request_tag", hidden(html, "request_tag")),
        ("decision", "allow".to_string()),
    ];
    b.post(app.url("/services/oauth2/authorize/consent")).form(&form).send().await.unwrap()
}

async fn consent_page_no_prompt(app: &TestApp, b: &reqwest::Client, client_id: &str) -> String {
    let path = format!(
        "/services/oauth2/authorize?response_type=code&client_id={client_id}&redirect_uri={}&scope=api",
        urlencode(CALLBACK)
    );
    let r = b.get(app.url(&path)).send().await.unwrap();
    if r.status() == 302 {
        let r = app.login(b, &path).await;
        return b.get(app.url(r.headers()["location"].to_str().unwrap())).send().await.unwrap().text().await.unwrap();
    }
    r.text().await.unwrap()
}

// RU-06, RU-07: loopback redirect URIs on any port only for apps that opt in; custom schemes
// only for public apps.
both_backends!(loopback_any_port_and_custom_schemes, |app: &TestApp| async move {
    let native = app.new_app("Native", true, AppPolicy::default()).await;
    app.engine
        .update_app(
            &native.app.consumer_key,
            AppPatch {
                callback_urls: Some(vec!["http://127.0.0.1/cb".into(), "http://[::1]/cb".into()]),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let status = |redirect: &'static str| {
        let url = app.url(&format!(
            "/services/oauth2/authorize?response_type=code&client_id={}&redirect_uri={}",
            native.app.consumer_key,
            urlencode(redirect)
        ));
        async move { app.client().get(url).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status("http://127.0.0.1:51004/cb").await, 400, "off by default");
    set_policy(app, &native.app.consumer_key, AppPolicy { loopback_redirect_any_port: true, ..AppPolicy::default() })
        .await;
    assert_eq!(status("http://127.0.0.1:51004/cb").await, 302);
    assert_eq!(status("http://[::1]:6000/cb").await, 302);
    for bad in [
        "http://127.0.0.1:51004/cb?x=1",
        "http://127.0.0.1:51004/other",
        "http://localhost:51004/cb",
        "http://127.0.0.1:80@evil.example/cb",
        "http://127.0.0.1.evil.example/cb",
    ] {
        assert_eq!(status(bad).await, 400, "{bad}");
    }
    // A confidential app cannot register a custom scheme.
    let e = app
        .engine
        .update_app(
            &app.app.consumer_key,
            AppPatch { callback_urls: Some(vec!["com.example.app:/cb".into()]), ..Default::default() },
        )
        .await;
    assert!(e.is_err());
});

// Item 19: the org's idle refresh-token TTL expires refresh tokens unused for that long.
both_backends!(org_idle_refresh_token_ttl_acts, |app: &TestApp| async move {
    app.engine
        .set_org_settings(OrgSettings { idle_refresh_token_ttl_days: Some(1), ..Default::default() })
        .await
        .unwrap();
    let rt = app.tokens("api refresh_token").await["refresh_token"].as_str().unwrap().to_string();
    let refresh = || async {
        post_form(
            app,
            "/services/oauth2/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", &app.app.consumer_key),
                ("client_secret", &app.secret),
            ],
        )
        .await
    };
    app.clock.advance_ms(20 * 3600 * 1000);
    assert_eq!(refresh().await.0, 200, "used within a day");
    app.clock.advance_ms(20 * 3600 * 1000);
    assert_eq!(refresh().await.0, 200, "the last use reset the idle clock");
    app.clock.advance_ms(25 * 3600 * 1000);
    let (s, e) = refresh().await;
    assert_eq!((s, e["error_description"].as_str()), (400, Some("expired access/refresh token")));
});

// Item 25: the user-agent fragment's `signature` is HMAC-SHA256(consumer secret, id + issued_at).
both_backends!(user_agent_signature_uses_the_consumer_secret, |app: &TestApp| async move {
    let loc = app
        .authorize(
            &app.browser(),
            &[
                ("response_type", "token"),
                ("client_id", &app.app.consumer_key),
                ("redirect_uri", CALLBACK),
                ("scope", "api"),
            ],
        )
        .await;
    let fragment = loc.split_once('#').unwrap().1;
    let pairs: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(fragment.as_bytes()).into_owned().collect();
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, app.secret.as_bytes());
    let tag = aws_lc_rs::hmac::sign(&key, format!("{}{}", pairs["id"], pairs["issued_at"]).as_bytes());
    assert_eq!(pairs["signature"], base64::engine::general_purpose::STANDARD.encode(tag.as_ref()));
});

// Items 22, 26: discovery says what Valet supports.
both_backends!(discovery_lists_token_exchange_and_logout_support, |app: &TestApp| async move {
    let d: Value =
        app.client().get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert!(d["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g == "urn:ietf:params:oauth:grant-type:token-exchange"));
    assert_eq!(d["backchannel_logout_supported"], true);
    assert_eq!(d["frontchannel_logout_supported"], true);
    assert_eq!(d["request_parameter_supported"], false);
});

// IN-04, CA-04, IN-06: oversized headers, NUL bytes anywhere: clear 4xx, never a 500.
both_backends!(oversized_and_nul_inputs_are_client_errors, |app: &TestApp| async move {
    let r = app
        .client()
        .get(app.url("/services/oauth2/userinfo"))
        .header("x-big", "a".repeat(200 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 431);
    let r = app
        .client()
        .get(app.url(&format!("/services/oauth2/authorize?x={}", "a".repeat(20_000))))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 414);
    let (s, _) = post_form(
        app,
        "/services/oauth2/token",
        &[("grant_type", "client_credentials"), ("client_id", "abc\0def"), ("client_secret", "x")],
    )
    .await;
    assert_eq!(s, 400);
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("a%00b:secret"));
    let r = app
        .client()
        .post(app.url("/services/oauth2/token"))
        .header("authorization", basic)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let r = app
        .client()
        .get(app.url("/services/oauth2/authorize?response_type=code&client_id=a%00b"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let iat = app.engine.create_initial_access_token(&app.app.consumer_key, Some(60)).await.unwrap();
    let r = app
        .client()
        .post(app.url("/services/oauth2/register"))
        .bearer_auth(iat.expose())
        .header("content-type", "application/json")
        .body(r#"{"client_name": "a\u0000b", "redirect_uris": ["https://rp.example/cb"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app.client().get(app.url("/services/oauth2/register/abc%00def")).bearer_auth("vrt_x").send().await.unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
});

// A token whose only scope is `chatter_api` reaches Connect REST but not userinfo or the
// identity URL (one rule for every bearer call: `Engine::admit_bearer`).
both_backends!(identity_needs_an_identity_scope, |app: &TestApp| async move {
    let policy = AppPolicy {
        enable_client_credentials_flow: true,
        client_credentials_user: Some("jane@example.com".into()),
        ..AppPolicy::default()
    };
    app.engine
        .update_app(
            &app.app.consumer_key,
            AppPatch {
                policy: Some(policy),
                scopes: Some(valet_core::scope::ScopeSet::parse("api chatter_api").unwrap()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let (s, t) = client_credentials(app, "chatter_api").await;
    assert_eq!(s, 200, "{t}");
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo_status(at).await, 403);
    let id = t["id"].as_str().unwrap();
    let r = app.client().get(id).bearer_auth(at).send().await.unwrap();
    assert_eq!(r.status(), 403, "identity URL");
    let r = app.client().get(app.url("/services/data/v62.0/chatter/users/me")).bearer_auth(at).send().await.unwrap();
    assert_eq!(r.status(), 200, "Connect REST");
    let r = app.client().get(app.url("/services/data/v62.0/limits")).bearer_auth(at).send().await.unwrap();
    assert_eq!(r.status(), 401, "the data API needs api");
});

// SE-01: served over https, cookies carry the `__Host-` prefix and responses HSTS.
both_backends!(over_https_cookies_are_host_prefixed_and_hsts_is_sent, |app: &TestApp| async move {
    // The same engine behind a router configured as Valet is over TLS (the transport itself
    // does not change what the handlers write).
    let router = valet_server::app(
        app.engine.clone(),
        app.data.clone(),
        valet_server::HttpOptions { public_url: app.base.clone(), secure_cookies: true },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(valet_server::serve::serve(listener, router, None, std::future::pending()));
    let client = app.client();
    let r = client.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    let csrf_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(csrf_cookie.starts_with("__Host-valet_csrf="), "{csrf_cookie}");
    assert!(csrf_cookie.contains("Secure") && csrf_cookie.contains("Path=/") && !csrf_cookie.contains("Domain"));
    let html = r.text().await.unwrap();
    let token = csrf_cookie.split(';').next().unwrap().to_string();
    let r = client
        .post(format!("{base}/login"))
        .header("cookie", &token)
        .form(&[
            ("username", "jane@example.com"),
            ("password", PASSWORD),
            ("csrf", &hidden(&html, "csrf")),
            ("continue", "/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let session = r.headers()["set-cookie"].to_str().unwrap();
    assert!(session.starts_with("__Host-valet_sid="), "{session}");
    assert!(session.contains("Secure") && session.contains("HttpOnly") && session.contains("SameSite=Lax"));
    // Plain http (the test harness) has neither.
    let r = client.get(app.url("/login")).send().await.unwrap();
    assert!(r.headers().get("strict-transport-security").is_none());
    assert!(r.headers()["set-cookie"].to_str().unwrap().starts_with("valet_csrf="));
});

// A refresh may narrow its grant's scopes, never widen them; the client credentials grant
// runs only as an active Run-As user of the app's org.
both_backends!(refresh_never_widens_and_run_as_must_be_active, |app: &TestApp| async move {
    let rt = app.tokens("api refresh_token").await["refresh_token"].as_str().unwrap().to_string();
    let refresh = |scope: &'static str| {
        let rt = rt.clone();
        async move {
            post_form(
                app,
                "/services/oauth2/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &rt),
                    ("client_id", &app.app.consumer_key),
                    ("client_secret", &app.secret),
                    ("scope", scope),
                ],
            )
            .await
        }
    };
    let (s, e) = refresh("api web").await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_scope")), "{e}");
    let (s, t) = refresh("api").await;
    assert_eq!((s, t["scope"].as_str()), (200, Some("api")), "{t}");

    let policy = AppPolicy {
        enable_client_credentials_flow: true,
        client_credentials_user: Some("jane@example.com".into()),
        ..AppPolicy::default()
    };
    set_policy(app, &app.app.consumer_key, policy).await;
    assert_eq!(client_credentials(app, "api").await.0, 200);
    app.engine.set_user_active(&app.user.username, false).await.unwrap();
    let (s, e) = client_credentials(app, "api").await;
    assert_eq!((s, e["error_description"].as_str()), (400, Some("no client credentials user enabled")), "{e}");
});
