//! The flows beyond the web server flow: user-agent, client credentials, username-password and
//! JWT bearer, each with its policy switched on and off, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use common::*;
use serde_json::Value;
use valet_core::model::{AppPolicy, OrgSettings, PermittedUsers};
use valet_core::store::AppPatch;

fn fragment(loc: &str) -> Vec<(String, String)> {
    let f = loc.split_once('#').map(|(_, f)| f).unwrap_or("");
    serde_urlencoded::from_str(f).unwrap()
}

fn get<'a>(pairs: &'a [(String, String)], k: &str) -> Option<&'a str> {
    pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

both_backends!(user_agent_flow_puts_tokens_in_the_fragment, |app: &TestApp| async move {
    let b = app.browser();
    let loc = app
        .authorize(
            &b,
            &[
                ("response_type", "token"),
                ("client_id", &app.app.consumer_key),
                ("redirect_uri", CALLBACK),
                ("scope", "api refresh_token"),
                ("state", "xyz"),
            ],
        )
        .await;
    assert!(loc.starts_with(&format!("{CALLBACK}#")), "{loc}");
    let f = fragment(&loc);
    let at = get(&f, "access_token").unwrap();
    assert!(at.contains('!'));
    assert_eq!(get(&f, "token_type"), Some("Bearer"));
    assert_eq!(get(&f, "state"), Some("xyz"));
    assert!(get(&f, "refresh_token").is_none(), "no refresh token for an http callback");
    assert!(get(&f, "id_token").is_none());
    assert_eq!(app.userinfo_status(at).await, 200);
    // `token id_token` needs a nonce, and returns an ID token with it.
    let loc = app
        .authorize(
            &b,
            &[
                ("response_type", "token id_token"),
                ("client_id", &app.app.consumer_key),
                ("redirect_uri", CALLBACK),
                ("scope", "api openid"),
                ("nonce", "abc"),
            ],
        )
        .await;
    let f = fragment(&loc);
    let claims = verify_jwt(app, get(&f, "id_token").unwrap()).await;
    assert_eq!(claims["nonce"], "abc");
    let q =
        [("response_type", "token id_token"), ("client_id", app.app.consumer_key.as_str()), ("redirect_uri", CALLBACK)];
    let r = b
        .get(app.url(&format!("/services/oauth2/authorize?{}", serde_urlencoded::to_string(q).unwrap())))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.contains("#error=invalid_request"), "errors go in the fragment: {loc}");
    // Blocked org-wide: the same request is refused.
    app.engine.set_org_settings(OrgSettings { allow_user_agent_flow: false, ..Default::default() }).await.unwrap();
    let q = [("response_type", "token"), ("client_id", app.app.consumer_key.as_str()), ("redirect_uri", CALLBACK)];
    let r = b
        .get(app.url(&format!("/services/oauth2/authorize?{}", serde_urlencoded::to_string(q).unwrap())))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("#error=oauth_flow_disabled"));
});

both_backends!(client_credentials_runs_as_the_configured_user, |app: &TestApp| async move {
    let form = |id: &str, secret: &str| {
        vec![
            ("grant_type".to_string(), "client_credentials".to_string()),
            ("client_id".into(), id.into()),
            ("client_secret".into(), secret.into()),
        ]
    };
    let post = |f: Vec<(String, String)>| {
        let c = app.client();
        let url = app.url("/services/oauth2/token");
        async move {
            let r = c.post(url).form(&f).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // Off by default.
    let (s, e) = post(form(&app.app.consumer_key, &app.secret)).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("unsupported_grant_type")));
    // On, but no Run-As user.
    let policy = AppPolicy { enable_client_credentials_flow: true, ..AppPolicy::default() };
    app.engine
        .update_app(&app.app.consumer_key, AppPatch { policy: Some(policy.clone()), ..Default::default() })
        .await
        .unwrap();
    let (_, e) = post(form(&app.app.consumer_key, &app.secret)).await;
    assert_eq!(e["error_description"], "no client credentials user enabled");
    // With a Run-As user: a token for that user, no refresh token, Basic works too.
    let policy = AppPolicy { client_credentials_user: Some("jane@example.com".into()), ..policy };
    app.engine
        .update_app(&app.app.consumer_key, AppPatch { policy: Some(policy), ..Default::default() })
        .await
        .unwrap();
    let (s, t) = post(form(&app.app.consumer_key, &app.secret)).await;
    assert_eq!(s, 200, "{t}");
    assert!(t.get("refresh_token").is_none());
    assert_eq!(t["scope"], "api id openid web");
    assert!(t["id"].as_str().unwrap().ends_with(app.user.id.as_str()));
    assert!(t["signature"].is_string() && t["issued_at"].is_string() && t["api_instance_url"].is_string());
    let r = app
        .client()
        .post(app.url("/services/oauth2/token"))
        .basic_auth(&app.app.consumer_key, Some(&app.secret))
        .form(&[("grant_type", "client_credentials"), ("scope", "api")])
        .send()
        .await
        .unwrap();
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["scope"], "api");
    // Wrong secret, and no secret at all.
    let (_, e) = post(form(&app.app.consumer_key, "nope")).await;
    assert_eq!(e["error"], "invalid_client");
    let (_, e) = post(vec![
        ("grant_type".into(), "client_credentials".into()),
        ("client_id".into(), app.app.consumer_key.clone()),
    ])
    .await;
    assert_eq!(e["error"], "invalid_client");
});

both_backends!(password_flow_is_blocked_until_the_org_allows_it, |app: &TestApp| async move {
    let form = |pw: &str| {
        vec![
            ("grant_type", "password".to_string()),
            ("client_id", app.app.consumer_key.clone()),
            ("client_secret", app.secret.clone()),
            ("username", "jane@example.com".to_string()),
            ("password", pw.to_string()),
        ]
    };
    let post = |f: Vec<(&'static str, String)>| {
        let c = app.client();
        let url = app.url("/services/oauth2/token");
        async move {
            let r = c.post(url).form(&f).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, e) = post(form(PASSWORD)).await;
    assert_eq!(
        (s, e["error"].as_str(), e["error_description"].as_str()),
        (400, Some("invalid_grant"), Some("authentication failure"))
    );
    app.engine
        .set_org_settings(OrgSettings { allow_username_password_flow: true, ..Default::default() })
        .await
        .unwrap();
    let (s, t) = post(form(PASSWORD)).await;
    assert_eq!(s, 200, "{t}");
    assert!(t.get("refresh_token").is_none() && t.get("scope").is_none());
    assert_eq!(app.userinfo_status(t["access_token"].as_str().unwrap()).await, 200);
    let (_, e) = post(form("wrong password")).await;
    assert_eq!(e["error_description"], "authentication failure");
});

both_backends!(jwt_bearer_needs_certificate_audience_and_approval, |app: &TestApp| async move {
    let (pem, sign) = jwt_signer();
    let policy = AppPolicy { enable_jwt_bearer_flow: true, jwt_certificate_pem: Some(pem), ..AppPolicy::default() };
    app.engine
        .update_app(&app.app.consumer_key, AppPatch { policy: Some(policy.clone()), ..Default::default() })
        .await
        .unwrap();
    let now = valet_core::clock::Clock::now_secs(&app.clock);
    let claims = |aud: &str, exp: Value| serde_json::json!({"iss": app.app.consumer_key, "sub": "jane@example.com", "aud": aud, "exp": exp});
    let post = |assertion: String| {
        let c = app.client();
        let url = app.url("/services/oauth2/token");
        async move {
            let r = c
                .post(url)
                .form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", assertion.as_str()),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // Not yet approved by the user.
    let (s, e) = post(sign(&claims(&app.base, (now + 300).into()))).await;
    assert_eq!((s, e["error_description"].as_str()), (400, Some("user hasn't approved this consumer")));
    // Approve through the web flow, then every client's exp shape works.
    app.tokens("api refresh_token").await;
    for exp in [Value::from(now + 300), Value::from((now + 300).to_string()), Value::from((now + 300) * 1000)] {
        let (s, t) = post(sign(&claims(&app.base, exp.clone()))).await;
        assert_eq!(s, 200, "{exp}: {t}");
        let keys: Vec<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, ["access_token", "id", "instance_url", "scope", "token_type"]);
        assert_eq!(app.userinfo_status(t["access_token"].as_str().unwrap()).await, 200);
    }
    let (_, t) = post(sign(&claims("https://login.salesforce.com/", (now + 300).into()))).await;
    assert!(t["access_token"].is_string(), "Salesforce's login host is an accepted audience");
    // Wrong audience, expired, bad signature, alg none, unknown issuer.
    let (_, e) = post(sign(&claims("https://evil.example", (now + 300).into()))).await;
    assert_eq!(e["error_description"], "audience is invalid");
    let (_, e) = post(sign(&claims(&app.base, (now - 600).into()))).await;
    assert_eq!(e["error"], "invalid_grant");
    let (_, other) = jwt_signer();
    let (_, e) = post(other(&claims(&app.base, (now + 300).into()))).await;
    assert_eq!(e["error_description"], "invalid assertion");
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none"}"#),
        b64.encode(claims(&app.base, (now + 300).into()).to_string())
    );
    let (_, e) = post(none).await;
    assert_eq!(e["error_description"], "invalid assertion");
    let (_, e) = post(sign(
        &serde_json::json!({"iss": "3MVG9nobody", "sub": "jane@example.com", "aud": app.base, "exp": now + 300}),
    ))
    .await;
    assert_eq!(e["error"], "invalid_client_id");
    // Admin-approved apps admit only pre-authorized users.
    let policy = AppPolicy { permitted_users: PermittedUsers::AdminApprovedPreAuthorized, ..policy };
    app.engine
        .update_app(&app.app.consumer_key, AppPatch { policy: Some(policy), ..Default::default() })
        .await
        .unwrap();
    let (_, e) = post(sign(&claims(&app.base, (now + 300).into()))).await;
    assert_eq!(e["error"], "invalid_app_access");
});

both_backends!(device_flow_salesforce_and_rfc8628, |app: &TestApp| async move {
    // Salesforce's variant with the sf CLI's client: multipart start at the token endpoint.
    let form = reqwest::multipart::Form::new()
        .text("response_type", "device_code")
        .text("client_id", "PlatformCLI")
        .text("scope", "refresh_token web api");
    let r = app.client().post(app.url("/services/oauth2/token")).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let d: Value = r.json().await.unwrap();
    let user_code = d["user_code"].as_str().unwrap().to_string();
    assert_eq!(user_code.len(), 8);
    assert_eq!(d["verification_uri"], app.url("/setup/connect"));
    assert_eq!(d["interval"], 5);
    let device_code = d["device_code"].as_str().unwrap().to_string();
    let poll = |code: String| {
        let c = app.client();
        let url = app.url("/services/oauth2/token");
        async move {
            let r = c
                .post(url)
                .form(&[("grant_type", "device"), ("client_id", "PlatformCLI"), ("code", code.as_str())])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, e) = poll(device_code.clone()).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("authorization_pending")));
    let (_, e) = poll(device_code.clone()).await;
    assert_eq!(e["error"], "slow_down", "polled again at once");
    // The person signs in, types the code (lower case, with a hyphen) and approves.
    let b = app.browser();
    let r = b.get(app.url("/setup/connect")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    app.login(&b, "/setup/connect").await;
    let html = b.get(app.url("/setup/connect")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&html, "csrf");
    let typed = format!("{}-{}", &user_code[..4], &user_code[4..]).to_lowercase();
    let r = b
        .post(app.url("/setup/connect"))
        .form(&[("csrf", csrf.as_str()), ("user_code", typed.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Salesforce CLI"), "{html}");
    let r = b
        .post(app.url("/setup/connect/approve"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("user_code", hidden(&html, "user_code").as_str()),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("Your device is connected"));
    app.clock.advance_ms(5_000);
    let (s, t) = poll(device_code.clone()).await;
    assert_eq!(s, 200, "{t}");
    assert!(t["refresh_token"].is_string());
    assert_eq!(app.userinfo_status(t["access_token"].as_str().unwrap()).await, 200);
    app.clock.advance_ms(5_000);
    let (_, e) = poll(device_code).await;
    assert_eq!(e["error"], "invalid_grant", "a device code is used once");

    // RFC 8628: its own endpoint, the URN grant, denial and expiry.
    let r = app
        .client()
        .post(app.url("/services/oauth2/device_authorization"))
        .form(&[("client_id", "PlatformCLI")])
        .send()
        .await
        .unwrap();
    let d: Value = r.json().await.unwrap();
    assert!(d["verification_uri_complete"].as_str().unwrap().contains("user_code="));
    let html = b.get(app.url("/setup/connect")).send().await.unwrap().text().await.unwrap();
    let r = b
        .post(app.url("/setup/connect"))
        .form(&[("csrf", hidden(&html, "csrf").as_str()), ("user_code", d["user_code"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    b.post(app.url("/setup/connect/approve"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("user_code", hidden(&html, "user_code").as_str()),
            ("decision", "deny"),
        ])
        .send()
        .await
        .unwrap();
    let r = app
        .client()
        .post(app.url("/services/oauth2/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", "PlatformCLI"),
            ("device_code", d["device_code"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "access_denied");
    let r = app
        .client()
        .post(app.url("/services/oauth2/device_authorization"))
        .form(&[("client_id", "PlatformCLI")])
        .send()
        .await
        .unwrap();
    let d: Value = r.json().await.unwrap();
    app.clock.advance_ms(11 * 60 * 1000);
    let r = app
        .client()
        .post(app.url("/services/oauth2/token"))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", "PlatformCLI"),
            ("device_code", d["device_code"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "expired_token");
    // Wrong codes are throttled on the page.
    let html = b.get(app.url("/setup/connect")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&html, "csrf");
    let mut last = 0;
    for _ in 0..6 {
        last = b
            .post(app.url("/setup/connect"))
            .form(&[("csrf", csrf.as_str()), ("user_code", "BBBBBBBB")])
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
    }
    assert_eq!(last, 429);
    // An app without the device flow enabled is refused.
    let r = app
        .client()
        .post(app.url("/services/oauth2/device_authorization"))
        .form(&[("client_id", app.app.consumer_key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "oauth_flow_disabled");
});

both_backends!(admin_approved_apps_need_a_permission_set, |app: &TestApp| async move {
    let policy = AppPolicy {
        permitted_users: PermittedUsers::AdminApprovedPreAuthorized,
        permission_sets: vec!["Integrations".into()],
        ..AppPolicy::default()
    };
    app.engine
        .update_app(&app.app.consumer_key, AppPatch { policy: Some(policy), ..Default::default() })
        .await
        .unwrap();
    let b = app.browser();
    let q = [
        ("response_type", "code"),
        ("client_id", app.app.consumer_key.as_str()),
        ("redirect_uri", CALLBACK),
        ("scope", "api"),
    ];
    let loc = app.authorize(&b, &q).await;
    assert!(loc.contains("error=OAUTH_APP_ACCESS_DENIED"), "{loc}");
    app.engine.create_permission_set("Integrations", None).await.unwrap();
    app.engine.assign_permission_set("jane@example.com", "Integrations", true).await.unwrap();
    // Pre-authorized: no approval page, straight to the code.
    let r = b
        .get(app.url(&format!("/services/oauth2/authorize?{}", serde_urlencoded::to_string(q).unwrap())))
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.contains("code="), "{loc}");
    app.engine.assign_permission_set("jane@example.com", "Integrations", false).await.unwrap();
    let r = b
        .get(app.url(&format!("/services/oauth2/authorize?{}", serde_urlencoded::to_string(q).unwrap())))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("OAUTH_APP_ACCESS_DENIED"));
});

fn hs256(key: &[u8], claims: &Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let input = format!("{}.{}", b64.encode(r#"{"alg":"HS256","typ":"JWT"}"#), b64.encode(claims.to_string()));
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    format!("{input}.{}", b64.encode(aws_lc_rs::hmac::sign(&k, input.as_bytes()).as_ref()))
}

both_backends!(client_assertions_private_key_jwt_and_client_secret_jwt, |app: &TestApp| async move {
    let (pem, sign) = jwt_signer();
    let policy = AppPolicy {
        enable_client_credentials_flow: true,
        client_credentials_user: Some("jane@example.com".into()),
        jwt_certificate_pem: Some(pem),
        ..AppPolicy::default()
    };
    app.engine
        .update_app(&app.app.consumer_key, AppPatch { policy: Some(policy), ..Default::default() })
        .await
        .unwrap();
    let now = valet_core::clock::Clock::now_secs(&app.clock);
    let key = app.app.consumer_key.clone();
    let claims = |jti: &str| serde_json::json!({"iss": key, "sub": key, "aud": app.url("/services/oauth2/token"), "exp": now + 60, "jti": jti});
    let post = |assertion: String| {
        let c = app.client();
        let url = app.url("/services/oauth2/token");
        async move {
            let r = c
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                    ("client_assertion", assertion.as_str()),
                ])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, t) = post(sign(&claims("a1"))).await;
    assert_eq!(s, 200, "private_key_jwt: {t}");
    let (_, e) = post(sign(&claims("a1"))).await;
    assert_eq!(e["error"], "invalid_client", "a jti is accepted once");
    let (s, t) = post(hs256(app.secret.as_bytes(), &claims("b1"))).await;
    assert_eq!(s, 200, "client_secret_jwt: {t}");
    let (_, e) = post(hs256(b"not the secret", &claims("b2"))).await;
    assert_eq!(e["error"], "invalid_client");
    let mut wrong_aud = claims("c1");
    wrong_aud["aud"] = "https://evil.example/token".into();
    let (_, e) = post(sign(&wrong_aud)).await;
    assert_eq!(e["error"], "invalid_client");
    let mut far = claims("c2");
    far["exp"] = (now + 86_400).into();
    let (_, e) = post(sign(&far)).await;
    assert_eq!(e["error"], "invalid_client", "assertions may not live for a day");
});

both_backends!(jwt_access_tokens_work_and_revoke, |app: &TestApp| async move {
    let policy = AppPolicy { jwt_access_tokens: true, jwt_access_token_minutes: 5, ..AppPolicy::default() };
    app.engine
        .update_app(&app.app.consumer_key, AppPatch { policy: Some(policy), ..Default::default() })
        .await
        .unwrap();
    let t = app.tokens("api refresh_token").await;
    let at = t["access_token"].as_str().unwrap().to_string();
    let header: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(at.split('.').next().unwrap()).unwrap(),
    )
    .unwrap();
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["tty"], "sfdc-core-token");
    assert_eq!(header["kid"], app.engine.keys().active.kid, "RS256 with the RSA key by default");
    let claims = verify_jwt(app, &at).await;
    assert_eq!(claims["scp"], "api refresh_token");
    assert_eq!(claims["client_id"], app.app.consumer_key);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 300);
    assert_eq!(app.userinfo_status(&at).await, 200);
    app.client().post(app.url("/services/oauth2/revoke")).form(&[("token", at.as_str())]).send().await.unwrap();
    assert_eq!(app.userinfo_status(&at).await, 403);
});

both_backends!(es256_jwt_access_tokens, |app: &TestApp| async move {
    use valet_core::model::{AssetTokenSettings, JwsAlg};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header =
        |jwt: &str| -> Value { serde_json::from_slice(&b64.decode(jwt.split('.').next().unwrap()).unwrap()).unwrap() };
    let policy = AppPolicy {
        jwt_access_tokens: true,
        jwt_access_token_alg: JwsAlg::Es256,
        enable_client_credentials_flow: true,
        client_credentials_user: Some("jane@example.com".into()),
        asset_tokens: AssetTokenSettings { enabled: true, ..Default::default() },
        ..AppPolicy::default()
    };
    app.engine
        .update_app(&app.app.consumer_key, AppPatch { policy: Some(policy.clone()), ..Default::default() })
        .await
        .unwrap();
    let t = app.tokens("api openid refresh_token").await;
    let r = app
        .client()
        .post(app.url("/services/oauth2/token"))
        .basic_auth(&app.app.consumer_key, Some(&app.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let cc: Value = r.json().await.unwrap();
    let r = app
        .client()
        .post(app.url("/services/oauth2/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", &app.app.consumer_key),
            ("client_secret", &app.secret),
        ])
        .send()
        .await
        .unwrap();
    let refreshed: Value = r.json().await.unwrap();
    let introspect = |token: String| {
        let c = app.client();
        let url = app.url("/services/oauth2/introspect");
        let form =
            [("token", token), ("client_id", app.app.consumer_key.clone()), ("client_secret", app.secret.clone())];
        async move { c.post(url).form(&form).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let me = |token: String| {
        let c = app.client();
        let url = app.url("/services/data/v62.0/chatter/users/me");
        async move { c.get(url).bearer_auth(token).send().await.unwrap() }
    };
    for (flow, resp) in [("web server", &t), ("client credentials", &cc), ("refresh", &refreshed)] {
        let at = resp["access_token"].as_str().unwrap_or_else(|| panic!("{flow}: {resp}")).to_string();
        let h = header(&at);
        assert_eq!((h["typ"].as_str(), h["tty"].as_str()), (Some("JWT"), Some("sfdc-core-token")), "{flow}");
        assert_ne!(h["kid"], app.engine.keys().active.kid, "{flow}: not the RSA key");
        let claims = verify_jwt_alg(app, &at, "ES256").await;
        assert_eq!(claims["client_id"], app.app.consumer_key, "{flow}");
        assert_eq!(claims["sub"], format!("uid:{}", app.user.id), "{flow}");
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 30 * 60, "{flow}");
        let r = me(at.clone()).await;
        assert_eq!(r.status(), 200, "{flow}: a Bearer on the REST API");
        assert_eq!(r.json::<Value>().await.unwrap()["id"], app.user.id.as_str());
        let i = introspect(at.clone()).await;
        assert_eq!(
            (i["active"].as_bool(), i["token_type"].as_str()),
            (Some(true), Some("access_token")),
            "{flow}: {i}"
        );
        assert_eq!(app.userinfo_status(&at).await, 200, "{flow}");
    }
    // ID tokens stay RS256.
    verify_jwt(app, t["id_token"].as_str().unwrap()).await;
    // A forged signature is no token, whatever its claims.
    let at = t["access_token"].as_str().unwrap();
    let (input, sig) = at.rsplit_once('.').unwrap();
    let mut sig = b64.decode(sig).unwrap();
    sig[10] ^= 1;
    let forged = format!("{input}.{}", b64.encode(&sig));
    assert_eq!(me(forged.clone()).await.status(), 401);
    assert_eq!(introspect(forged).await["active"], false);
    // An ES256 access token is a subject token for asset tokens; the asset token is RS256.
    let actor = format!("{}.{}.", b64.encode(r#"{"alg":"none"}"#), b64.encode(r#"{"did":"device-7"}"#));
    let asset = asset_token(app, at, &actor).await;
    assert_eq!(verify_jwt(app, asset["access_token"].as_str().unwrap()).await["did"], "device-7", "{asset}");
    // Revocation works as for any token.
    app.client().post(app.url("/services/oauth2/revoke")).form(&[("token", at)]).send().await.unwrap();
    assert_eq!(me(at.to_string()).await.status(), 401);
    // Back to RS256: the next token is Salesforce's again.
    let policy = AppPolicy { jwt_access_token_alg: JwsAlg::Rs256, ..policy };
    app.engine
        .update_app(&app.app.consumer_key, AppPatch { policy: Some(policy), ..Default::default() })
        .await
        .unwrap();
    let r = app
        .client()
        .post(app.url("/services/oauth2/token"))
        .basic_auth(&app.app.consumer_key, Some(&app.secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let at = r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string();
    assert_eq!(header(&at)["kid"], app.engine.keys().active.kid);
    verify_jwt(app, &at).await;
    assert_eq!(me(at).await.status(), 200);
});

both_backends!(headless_code_and_credentials_flow, |app: &TestApp| async move {
    let v = verifier();
    let form = [
        ("response_type", "code_credentials".to_string()),
        ("client_id", app.app.consumer_key.clone()),
        ("redirect_uri", CALLBACK.to_string()),
        ("code_challenge", s256(&v)),
        ("state", "hs".to_string()),
    ];
    let basic =
        |u: &str, p: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")));
    let post = |auth: String| {
        let c = app.client();
        let url = app.url("/services/oauth2/authorize");
        let form = form.clone();
        async move {
            let r = c
                .post(url)
                .header("Auth-Request-Type", "Named-User")
                .header("Authorization", auth)
                .form(&form)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // Blocked until the org and the app allow it.
    let (s, e) = post(basic("jane@example.com", PASSWORD)).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("oauth_flow_disabled")));
    app.engine.set_org_settings(OrgSettings { allow_code_credentials_flow: true, ..Default::default() }).await.unwrap();
    let policy = AppPolicy { enable_code_credentials_flow: true, ..AppPolicy::default() };
    app.engine
        .update_app(&app.app.consumer_key, AppPatch { policy: Some(policy), ..Default::default() })
        .await
        .unwrap();
    let (_, e) = post(basic("jane@example.com", "wrong")).await;
    assert_eq!(e["error"], "login_error");
    let (s, body) = post(basic("jane@example.com", PASSWORD)).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["state"], "hs");
    let (s, t) = app.exchange(body["code"].as_str().unwrap(), &v).await;
    assert_eq!(s, 200, "{t}");
    // A browser POST to authorize is still refused.
    let r = app
        .client()
        .post(app.url("/services/oauth2/authorize"))
        .form(&[("response_type", "code")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
});

both_backends!(dynamic_client_registration_and_management, |app: &TestApp| async move {
    let iat = app.engine.create_initial_access_token(&app.app.consumer_key, Some(60)).await.unwrap();
    let c = app.client();
    let reg = app.url("/services/oauth2/register");
    let body = serde_json::json!({
        "client_name": "Registered RP",
        "redirect_uris": ["https://rp.example.com/cb"],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_post",
        "scope": "api openid",
        "unknown_member": true
    });
    // No or a wrong initial access token: 401.
    assert_eq!(c.post(&reg).json(&body).send().await.unwrap().status(), 401);
    assert_eq!(c.post(&reg).bearer_auth("vit_wrong").json(&body).send().await.unwrap().status(), 401);
    // Bad metadata: refused, nothing stored.
    let bad = serde_json::json!({"redirect_uris": ["http://rp.example.com/cb"]});
    let r = c.post(&reg).bearer_auth(iat.expose()).json(&bad).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_redirect_uri");
    let r = c.post(&reg).bearer_auth(iat.expose()).body("not json").send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client_metadata");
    // Success: 201 with credentials and a registration access token.
    let r = c.post(&reg).bearer_auth(iat.expose()).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let info: Value = r.json().await.unwrap();
    let client_id = info["client_id"].as_str().unwrap().to_string();
    assert!(client_id.starts_with("3MVG9"));
    assert_eq!(info["client_secret"].as_str().unwrap().len(), 64);
    assert_eq!(info["scope"], "api openid refresh_token");
    let rat = info["registration_access_token"].as_str().unwrap().to_string();
    let uri = info["registration_client_uri"].as_str().unwrap().to_string();
    // The registrar may introspect the new app's tokens... (checked by reading the config here)
    let r = c.get(&uri).bearer_auth(&rat).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let read: Value = r.json().await.unwrap();
    assert_eq!(read["redirect_uris"][0], "https://rp.example.com/cb");
    assert!(read.get("client_secret").is_none());
    assert_eq!(c.get(&uri).bearer_auth("vrt_wrong").send().await.unwrap().status(), 401);
    // Update and delete.
    let mut upd = body.clone();
    upd["redirect_uris"] = serde_json::json!(["https://rp.example.com/cb2"]);
    upd["client_id"] = client_id.clone().into();
    let r = c.put(&uri).bearer_auth(&rat).json(&upd).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["redirect_uris"][0], "https://rp.example.com/cb2");
    assert_eq!(c.delete(&uri).bearer_auth(&rat).send().await.unwrap().status(), 204);
    assert_eq!(c.get(&uri).bearer_auth(&rat).send().await.unwrap().status(), 401);
    // The discovery document advertises the endpoint.
    let d: Value = c.get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(d["registration_endpoint"], reg);
});

/// Exchanges a Valet access token and a device's actor token for an asset token.
async fn asset_token(app: &TestApp, subject: &str, actor: &str) -> Value {
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange"),
        ("subject_token", subject),
        ("subject_token_type", "urn:ietf:params:oauth:token-type:access_token"),
        ("actor_token", actor),
        ("actor_token_type", "urn:ietf:params:oauth:token-type:jwt"),
        ("client_id", app.app.consumer_key.as_str()),
        ("client_secret", app.secret.as_str()),
    ];
    app.client().post(app.url("/services/oauth2/token")).form(&form).send().await.unwrap().json().await.unwrap()
}

both_backends!(token_exchange_with_trusted_issuers_and_asset_tokens, |app: &TestApp| async move {
    use valet_core::model::{AssetTokenSettings, TrustedIssuer};
    let (jwks, sign) = external_issuer();
    // The issuer publishes its JWKS on loopback.
    let served = jwks.clone();
    let router = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let j = served.clone();
            async move { axum::Json(j) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks_url = format!("http://{}/jwks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let policy = AppPolicy {
        enable_token_exchange_flow: true,
        token_exchange_issuers: vec![
            TrustedIssuer {
                issuer: "https://idp.example".into(),
                audience: Some("valet".into()),
                user_claim: "email".into(),
                jwks_url: Some(jwks_url),
                jwks: None,
                certificate_pem: None,
            },
            TrustedIssuer {
                issuer: "https://static.example".into(),
                audience: None,
                user_claim: "sub".into(),
                jwks_url: None,
                jwks: Some(jwks),
                certificate_pem: None,
            },
        ],
        asset_tokens: AssetTokenSettings {
            enabled: true,
            valid_minutes: 1,
            audiences: vec!["https://assets.example".into()],
            ..Default::default()
        },
        ..AppPolicy::default()
    };
    app.engine
        .update_app(&app.app.consumer_key, AppPatch { policy: Some(policy), ..Default::default() })
        .await
        .unwrap();
    let now = valet_core::clock::Clock::now_secs(&app.clock);
    let exchange = |subject: String, extra: Vec<(&'static str, String)>| {
        let c = app.client();
        let url = app.url("/services/oauth2/token");
        let mut form = vec![
            ("grant_type", "urn:ietf:params:oauth:grant-type:token-exchange".to_string()),
            ("subject_token", subject),
            ("subject_token_type", "urn:ietf:params:oauth:token-type:jwt".to_string()),
            ("client_id", app.app.consumer_key.clone()),
            ("client_secret", app.secret.clone()),
        ];
        form.extend(extra);
        async move {
            let r = c.post(url).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let ext = |iss: &str, who: Value| {
        let mut c = serde_json::json!({"iss": iss, "aud": "valet", "exp": now + 300});
        for (k, v) in who.as_object().unwrap() {
            c[k] = v.clone();
        }
        sign(&c)
    };
    // The user has not approved the app yet.
    let (_, e) = exchange(ext("https://idp.example", serde_json::json!({"email": "jane@example.com"})), vec![]).await;
    assert_eq!(e["error_description"], "user hasn't approved this consumer");
    app.tokens("api openid refresh_token").await;
    let (s, t) = exchange(ext("https://idp.example", serde_json::json!({"email": "jane@example.com"})), vec![]).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["issued_token_type"], "urn:ietf:params:oauth:token-type:access_token");
    assert!(t["id"].as_str().unwrap().ends_with(app.user.id.as_str()));
    assert_eq!(app.userinfo_status(t["access_token"].as_str().unwrap()).await, 200);
    let (s, _) = exchange(ext("https://static.example", serde_json::json!({"sub": "jane@example.com"})), vec![]).await;
    assert_eq!(s, 200, "a static JWKS works too");
    // Untrusted issuer, wrong audience, unknown user, forged signature.
    let (_, e) = exchange(ext("https://other.example", serde_json::json!({"email": "jane@example.com"})), vec![]).await;
    assert_eq!(e["error"], "invalid_grant");
    let mut c = serde_json::json!({"iss": "https://idp.example", "aud": "someone-else", "exp": now + 300, "email": "jane@example.com"});
    let (_, e) = exchange(sign(&c), vec![]).await;
    assert_eq!(e["error_description"], "audience is invalid");
    c["aud"] = "valet".into();
    c["email"] = "nobody@example.com".into();
    let (_, e) = exchange(sign(&c), vec![]).await;
    assert_eq!(e["error"], "invalid_grant");
    let (_, forged) = external_issuer();
    let (_, e) = exchange(forged(&serde_json::json!({"iss": "https://idp.example", "aud": "valet", "exp": now + 300, "email": "jane@example.com"})), vec![]).await;
    assert_eq!(e["error"], "invalid_grant");

    // Asset token: a Valet access token with api + openid, and a device actor token.
    let t = app.tokens("api openid").await;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let actor =
        format!("{}.{}.", b64.encode(r#"{"alg":"none"}"#), b64.encode(r#"{"did":"device-42","Name":"Thermostat"}"#));
    let (s, a) = exchange(
        t["access_token"].as_str().unwrap().to_string(),
        vec![("actor_token", actor.clone()), ("actor_token_type", "urn:ietf:params:oauth:token-type:jwt".into())],
    )
    .await;
    // The subject token type must be an access token for asset tokens.
    assert_eq!((s, a["error"].as_str()), (400, Some("invalid_request")));
    let a = asset_token(app, t["access_token"].as_str().unwrap(), &actor).await;
    assert_eq!(a["issued_token_type"], "urn:ietf:params:oauth:token-type:jwt");
    assert_eq!(a["expires_in"], 60);
    let claims = verify_jwt(app, a["access_token"].as_str().unwrap()).await;
    assert_eq!(claims["did"], "device-42");
    assert_eq!(claims["aud"][0], "https://assets.example");
});

both_backends!(ip_restrictions_and_relaxation, |app: &TestApp| async move {
    use valet_core::model::IpRelaxation;
    let t = app.tokens("api refresh_token").await;
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let set = |ranges: Vec<&str>, relax: IpRelaxation| {
        let policy = AppPolicy {
            ip_ranges: ranges.into_iter().map(String::from).collect(),
            ip_relaxation: relax,
            ..AppPolicy::default()
        };
        app.engine.update_app(&app.app.consumer_key, AppPatch { policy: Some(policy), ..Default::default() })
    };
    let refresh = || {
        let c = app.client();
        let url = app.url("/services/oauth2/token");
        let form = [
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", rt.clone()),
            ("client_id", app.app.consumer_key.clone()),
            ("client_secret", app.secret.clone()),
        ];
        async move {
            let r = c.post(url).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // The tests connect from 127.0.0.1.
    set(vec!["10.0.0.0/8"], IpRelaxation::Enforce).await.unwrap();
    let (s, e) = refresh().await;
    assert_eq!((s, e["error_description"].as_str()), (400, Some("IP restricted or invalid login hours")));
    let b = app.browser();
    let q = [("response_type", "code"), ("client_id", app.app.consumer_key.as_str()), ("redirect_uri", CALLBACK)];
    let r = b
        .get(app.url(&format!("/services/oauth2/authorize?{}", serde_urlencoded::to_string(q).unwrap())))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["location"].to_str().unwrap().contains("error=invalid_grant"), "authorize refuses too");
    set(vec!["10.0.0.0/8"], IpRelaxation::EnforceRelaxRefresh).await.unwrap();
    assert_eq!(refresh().await.0, 200, "refresh is relaxed");
    set(vec!["10.0.0.0/8"], IpRelaxation::Bypass).await.unwrap();
    assert_eq!(refresh().await.0, 200);
    set(vec!["127.0.0.0/8"], IpRelaxation::Enforce).await.unwrap();
    assert_eq!(refresh().await.0, 200, "inside the range");
    assert!(set(vec!["not-an-ip"], IpRelaxation::Enforce).await.is_err());
});

both_backends!(refresh_rotation_with_reuse_detection_and_grace, |app: &TestApp| async move {
    let policy = AppPolicy { refresh_token_rotation: true, refresh_token_grace_seconds: 30, ..AppPolicy::default() };
    app.engine
        .update_app(&app.app.consumer_key, AppPatch { policy: Some(policy), ..Default::default() })
        .await
        .unwrap();
    let t = app.tokens("api refresh_token").await;
    let rt1 = t["refresh_token"].as_str().unwrap().to_string();
    let refresh = |rt: String| {
        let c = app.client();
        let url = app.url("/services/oauth2/token");
        let form = [
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", rt),
            ("client_id", app.app.consumer_key.clone()),
            ("client_secret", app.secret.clone()),
        ];
        async move {
            let r = c.post(url).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // 20 parallel refreshes with the same token: one rotation, everyone gets the same successor.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        tasks.push(refresh(rt1.clone()));
    }
    let results = futures::future::join_all(tasks).await;
    let successors: std::collections::BTreeSet<String> = results
        .iter()
        .map(|(s, b)| {
            assert_eq!(*s, 200, "{b}");
            b["refresh_token"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(successors.len(), 1, "one family, one successor: {successors:?}");
    let rt2 = successors.into_iter().next().unwrap();
    assert_ne!(rt2, rt1);
    // After the grace window, the old token is reuse: the whole family dies.
    app.clock.advance_ms(31_000);
    let (s, e) = refresh(rt1.clone()).await;
    assert_eq!((s, e["error_description"].as_str()), (400, Some("expired access/refresh token")));
    let (s, _) = refresh(rt2).await;
    assert_eq!(s, 400, "the successor was revoked with its family");
    assert_eq!(app.userinfo_status(t["access_token"].as_str().unwrap()).await, 403);
});

both_backends!(staged_rotation_of_consumer_key_and_secret, |app: &TestApp| async move {
    let t = app.tokens("api refresh_token").await;
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let refresh = |id: String, secret: String| {
        let c = app.client();
        let url = app.url("/services/oauth2/token");
        let form = [
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", rt.clone()),
            ("client_id", id),
            ("client_secret", secret),
        ];
        async move {
            let r = c.post(url).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let old_key = app.app.consumer_key.clone();
    let old_secret = app.secret.clone();
    // Stage a new secret and a new key: old and new both work.
    let (_, new_secret) = app.engine.rotate_secret(&old_key, false).await.unwrap();
    let rotated = app.engine.rotate_consumer_key(&old_key).await.unwrap();
    let new_key = rotated.consumer_key.clone();
    assert_ne!(new_key, old_key);
    for (id, secret) in [
        (&old_key, &old_secret),
        (&new_key, &old_secret),
        (&old_key, &new_secret.expose().to_string()),
        (&new_key, &new_secret.expose().to_string()),
    ] {
        assert_eq!(refresh(id.clone(), secret.clone()).await.0, 200, "{id} / secret");
    }
    // Retire the old ones: only the new pair works; issued tokens survive.
    app.engine.retire_old_secrets(&new_key).await.unwrap();
    app.engine.retire_previous_consumer_key(&new_key).await.unwrap();
    assert_eq!(refresh(new_key.clone(), old_secret.clone()).await.1["error"], "invalid_client");
    assert_eq!(refresh(old_key.clone(), new_secret.expose().to_string()).await.1["error"], "invalid_client_id");
    assert_eq!(refresh(new_key.clone(), new_secret.expose().to_string()).await.0, 200);
    assert_eq!(app.userinfo_status(t["access_token"].as_str().unwrap()).await, 200);
});

both_backends!(hybrid_app_flows_add_session_fields, |app: &TestApp| async move {
    let b = app.browser();
    let v = verifier();
    let code = app.code_with_pkce(&b, "api refresh_token", &v).await;
    let (s, t) = app
        .token(&[
            ("grant_type", "hybrid_auth_code"),
            ("code", &code),
            ("client_id", &app.app.consumer_key),
            ("client_secret", &app.secret),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &v),
            ("format", "json"),
        ])
        .await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["lightning_sid"], t["access_token"]);
    assert_eq!(t["sidCookieName"], "sid");
    assert!(t["csrf_token"].is_string());
    let (s, r) = app
        .token(&[
            ("grant_type", "hybrid_refresh"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", &app.app.consumer_key),
            ("client_secret", &app.secret),
        ])
        .await;
    assert_eq!(s, 200);
    assert_eq!(r["visualforce_sid"], r["access_token"]);
    let loc = app
        .authorize(
            &b,
            &[
                ("response_type", "hybrid_token"),
                ("client_id", &app.app.consumer_key),
                ("redirect_uri", CALLBACK),
                ("scope", "api"),
            ],
        )
        .await;
    let f = fragment(&loc);
    assert_eq!(get(&f, "lightning_sid"), get(&f, "access_token"));
});
