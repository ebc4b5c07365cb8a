//! Authorize interaction and Valet's pages: login, consent, logout, error pages, CSRF and
//! throttling, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

fn authorize_url(app: &TestApp, extra: &[(&str, &str)]) -> String {
    let mut q: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", &app.app.consumer_key),
        ("redirect_uri", CALLBACK),
        ("state", "s1"),
    ];
    q.extend_from_slice(extra);
    app.url(&format!("/services/oauth2/authorize?{}", serde_urlencoded::to_string(&q).unwrap()))
}

async fn location(r: reqwest::Response) -> String {
    assert!(r.status() == 302 || r.status() == 303, "status {}", r.status());
    r.headers()["location"].to_str().unwrap().to_string()
}

both_backends!(untrusted_requests_get_an_error_page_never_a_redirect, |app: &TestApp| async move {
    let b = app.browser();
    let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
        (vec![("response_type", "code"), ("client_id", "3MVG9nope"), ("redirect_uri", CALLBACK)], "invalid_client_id"),
        (vec![("response_type", "code"), ("redirect_uri", CALLBACK)], "invalid_client_id"),
        (vec![("response_type", "code"), ("client_id", &app.app.consumer_key)], "redirect_uri_missing"),
        (
            vec![
                ("response_type", "code"),
                ("client_id", &app.app.consumer_key),
                ("redirect_uri", "https://evil.example/cb"),
            ],
            "redirect_uri_mismatch",
        ),
        (
            vec![("response_type", "code"), ("client_id", &app.app.consumer_key), ("redirect_uri", "oob")],
            "invalid_request",
        ),
    ];
    for (q, code) in cases {
        let r = b
            .get(app.url(&format!("/services/oauth2/authorize?{}", serde_urlencoded::to_string(&q).unwrap())))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{q:?}");
        assert!(r.headers().get("location").is_none());
        assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
        let html = r.text().await.unwrap();
        assert!(html.contains(code), "{code} in {html}");
    }
    // Normalisation tricks never match (exact string comparison).
    for evil in [
        "http://localhost:1717/OauthRedirect/",
        "HTTP://localhost:1717/OauthRedirect",
        "http://localhost:1717/oauthredirect",
        "http://localhost:1717/OauthRedirect?x=1",
        "http://localhost:1717/OauthRedirect#x",
        "http://localhost:1717/%4FauthRedirect",
        "http://localhost:1717/OauthRedirect ",
    ] {
        let q = [("response_type", "code"), ("client_id", app.app.consumer_key.as_str()), ("redirect_uri", evil)];
        let r = b
            .get(app.url(&format!("/services/oauth2/authorize?{}", serde_urlencoded::to_string(q).unwrap())))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{evil}");
        assert!(r.headers().get("location").is_none());
    }
    // Hostile values are escaped on the error page.
    let r = b
        .get(app.url(
            "/services/oauth2/authorize?response_type=code&client_id=%3Cscript%3Ealert(1)%3C/script%3E&redirect_uri=x",
        ))
        .send()
        .await
        .unwrap();
    assert!(!r.text().await.unwrap().contains("<script>alert"));
});

both_backends!(trusted_requests_get_errors_by_redirect, |app: &TestApp| async move {
    let b = app.browser();
    let loc = location(b.get(authorize_url(app, &[("scope", "api bogus_scope")])).send().await.unwrap()).await;
    assert!(loc.starts_with(&format!("{CALLBACK}?error=invalid_scope")), "{loc}");
    assert!(loc.ends_with("&state=s1"));
    let q = [
        ("response_type", "magic"),
        ("client_id", app.app.consumer_key.as_str()),
        ("redirect_uri", CALLBACK),
        ("state", "s1"),
    ];
    let loc = location(
        b.get(app.url(&format!("/services/oauth2/authorize?{}", serde_urlencoded::to_string(q).unwrap())))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(loc.contains("error=unsupported_response_type") && loc.contains("state=s1"), "{loc}");
    for bad in [
        vec![("code_challenge", "abc")],
        vec![("code_challenge_method", "S256")],
        vec![("code_challenge", &"a".repeat(43)), ("code_challenge_method", "S512")],
    ] {
        let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, *v)).collect();
        let loc = location(b.get(authorize_url(app, &bad)).send().await.unwrap()).await;
        assert!(loc.contains("error=invalid_request"), "{bad:?} -> {loc}");
    }
    // prompt=none without a session: login_required, no page.
    let loc = location(b.get(authorize_url(app, &[("prompt", "none")])).send().await.unwrap()).await;
    assert!(loc.contains("error=login_required"), "{loc}");
    // The registered query string is kept when the code is appended.
    let q = [
        ("response_type", "code"),
        ("client_id", app.app.consumer_key.as_str()),
        ("redirect_uri", "https://app.example.com/cb?foo=bar"),
    ];
    let loc = app.authorize(&b, &q).await;
    assert!(loc.starts_with("https://app.example.com/cb?foo=bar&code=aPrx"), "{loc}");
});

both_backends!(login_consent_and_remembered_consent, |app: &TestApp| async move {
    let b = app.browser();
    // No session: redirected to the login page, which keeps where to continue.
    let loc = location(b.get(authorize_url(app, &[("login_hint", "jane@example.com")])).send().await.unwrap()).await;
    assert!(loc.starts_with("/login?continue=%2Fservices%2Foauth2%2Fauthorize"), "{loc}");
    let page = b.get(app.url(&loc)).send().await.unwrap();
    let cookies: Vec<String> =
        page.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert!(
        cookies.iter().any(|c| c.starts_with("valet_csrf=") && c.contains("HttpOnly") && c.contains("SameSite=Strict")),
        "{cookies:?}"
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("value=\"jane@example.com\""), "login_hint prefills the username");
    // Consent page shows the app and scopes in words; Allow gives a code.
    let first = app
        .authorize(
            &b,
            &[
                ("response_type", "code"),
                ("client_id", &app.app.consumer_key),
                ("redirect_uri", CALLBACK),
                ("scope", "api id"),
            ],
        )
        .await;
    assert!(first.contains("code="));
    // Second time: consent is remembered, no page.
    let r = b.get(authorize_url(app, &[("scope", "api")])).send().await.unwrap();
    assert!(location(r).await.contains("code="));
    // prompt=consent forces the page again; Deny sends access_denied.
    let r = b.get(authorize_url(app, &[("scope", "api"), ("prompt", "consent")])).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Test App") && html.contains("Manage user data via APIs"));
    let r = b
        .post(app.url("/services/oauth2/authorize/consent"))
        .form(&[
            ("csrf", hidden(&html, "csrf").as_str()),
            ("request", hidden(&html, "request").as_str()),
            ("request_tag", hidden(&html, "request_tag").as_str()),
            ("decision", "deny"),
        ])
        .send()
        .await
        .unwrap();
    let loc = location(r).await;
    assert!(loc.contains("error=access_denied") && loc.contains("state=s1"), "{loc}");
    // A consent POST without the CSRF token is refused.
    let r = b
        .post(app.url("/services/oauth2/authorize/consent"))
        .form(&[("request", hidden(&html, "request").as_str()), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // More scopes than approved asks again.
    let r = b.get(authorize_url(app, &[("scope", "api refresh_token")])).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // prompt=login sends a signed-in user back to the login page.
    let loc = location(b.get(authorize_url(app, &[("prompt", "login")])).send().await.unwrap()).await;
    assert!(loc.starts_with("/login"), "{loc}");
    assert!(!loc.contains("prompt%3Dlogin"), "prompt=login is honoured once, not forever: {loc}");
});

both_backends!(login_failures_throttle_and_session_renewal, |app: &TestApp| async move {
    let b = app.browser();
    let html = b.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&html, "csrf");
    // Missing CSRF: refused.
    let r = b
        .post(app.url("/login"))
        .form(&[("username", "jane@example.com"), ("password", PASSWORD), ("continue", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Wrong passwords: one readable message, then throttled after five.
    for i in 0..5 {
        let r = b
            .post(app.url("/login"))
            .form(&[("username", "jane@example.com"), ("password", "wrong"), ("csrf", &csrf), ("continue", "/")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "attempt {i}");
        assert!(r.text().await.unwrap().contains("check your username and password"));
    }
    let r = b
        .post(app.url("/login"))
        .form(&[("username", "jane@example.com"), ("password", PASSWORD), ("csrf", &csrf), ("continue", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.text().await.unwrap().contains("Too many failed login attempts"));
    // After the window the right password works; the session cookie is HttpOnly and Lax.
    app.clock.advance_ms(16 * 60 * 1000);
    let r = b
        .post(app.url("/login"))
        .form(&[
            ("username", "jane@example.com"),
            ("password", PASSWORD),
            ("csrf", &csrf),
            ("continue", "//evil.example"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/", "no open redirect through continue");
    let sid = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("valet_sid="))
        .unwrap();
    assert!(sid.contains("HttpOnly") && sid.contains("SameSite=Lax"), "{sid}");
    // Logging in again issues a different session id.
    let r = b
        .post(app.url("/login"))
        .form(&[("username", "jane@example.com"), ("password", PASSWORD), ("csrf", &csrf), ("continue", "/")])
        .send()
        .await
        .unwrap();
    let sid2 = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("valet_sid="))
        .unwrap();
    assert_ne!(sid, sid2);
    let home = b.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("Jane Doe"), "{home}");
    // Logout: confirmation page, then the POST ends the session.
    let html = b.get(app.url("/logout")).send().await.unwrap().text().await.unwrap();
    let r = b.post(app.url("/logout")).form(&[("csrf", hidden(&html, "csrf").as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let loc = location(b.get(authorize_url(app, &[])).send().await.unwrap()).await;
    assert!(loc.starts_with("/login"), "logged out: {loc}");
});

both_backends!(disabled_user_loses_sessions_and_tokens, |app: &TestApp| async move {
    let t = app.tokens("api refresh_token").await;
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(app.userinfo_status(at).await, 200);
    app.engine.set_user_active("jane@example.com", false).await.unwrap();
    assert_eq!(app.userinfo_status(at).await, 403);
    app.engine.set_user_active("jane@example.com", true).await.unwrap();
    assert_eq!(app.userinfo_status(at).await, 403, "re-enabling does not revive revoked tokens");
});

both_backends!(operations_endpoints, |app: &TestApp| async move {
    let c = app.client();
    assert_eq!(c.get(app.url("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(app.url("/readyz")).send().await.unwrap().status(), 200);
    let r = c.get(app.url("/nope")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-request-id"], "abc-123");
    let m = c.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("valet_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 1"), "{m}");
    let css = c.get(app.url("/static/valet.css")).send().await.unwrap();
    assert!(css.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
});

// The receiver is on loopback: the development setting that allows it.
both_backends_with!(
    rp_initiated_front_and_back_channel_logout,
    |c: &mut valet_core::EngineConfig| c.allow_private_outbound = true,
    |app: &TestApp| async move {
        use valet_core::model::AppPolicy;
        use valet_core::store::AppPatch;
        // A loopback receiver for back-channel logout tokens.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let receiver = axum::Router::new().route(
            "/bcl",
            axum::routing::post(move |body: String| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(body);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bcl = format!("http://{}/bcl", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
        let policy = AppPolicy {
            single_logout_url: Some("https://app.example.com/slo".into()),
            backchannel_logout_url: Some(bcl),
            post_logout_redirect_uris: vec!["https://app.example.com/bye".into()],
            ..AppPolicy::default()
        };
        app.engine
            .update_app(&app.app.consumer_key, AppPatch { policy: Some(policy), ..Default::default() })
            .await
            .unwrap();
        let b = app.browser();
        let v = verifier();
        let code = app.code_with_pkce(&b, "api openid", &v).await;
        let (_, t) = app.exchange(&code, &v).await;
        let id_token = t["id_token"].as_str().unwrap();
        // An unregistered post-logout URI never redirects; without a hint the user must confirm.
        let r = b
            .get(app.url(&format!(
                "/services/auth/idp/oidc/logout?post_logout_redirect_uri={}",
                urlencode("https://evil.example/")
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("Log out of Valet?"));
        // With a valid hint and a registered URI: logged out and sent back with the state.
        let url = format!(
            "/services/auth/idp/oidc/logout?id_token_hint={}&post_logout_redirect_uri={}&state=zz",
            urlencode(id_token),
            urlencode("https://app.example.com/bye")
        );
        let r = b.get(app.url(&url)).send().await.unwrap();
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()["location"], "https://app.example.com/bye?state=zz");
        let body = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
        let token = serde_urlencoded::from_str::<Vec<(String, String)>>(&body)
            .unwrap()
            .into_iter()
            .find(|(k, _)| k == "logout_token")
            .unwrap()
            .1;
        let claims = verify_jwt(app, &token).await;
        assert_eq!(claims["aud"], app.app.consumer_key);
        assert!(claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
        assert!(claims.get("nonce").is_none());
        let r = b.get(authorize_url(app, &[])).send().await.unwrap();
        assert!(r.headers()["location"].to_str().unwrap().starts_with("/login"), "session ended");
        // Logging out through the page loads the single logout URL in a frame the CSP allows.
        let code = app.code_with_pkce(&b, "api", &v).await;
        app.exchange(&code, &v).await;
        let html = b.get(app.url("/logout")).send().await.unwrap().text().await.unwrap();
        let r = b.post(app.url("/logout")).form(&[("csrf", hidden(&html, "csrf").as_str())]).send().await.unwrap();
        assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("frame-src https://app.example.com"));
        assert!(r.text().await.unwrap().contains("src=\"https://app.example.com/slo\""));
    }
);
