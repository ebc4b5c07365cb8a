//! The OAuth endpoints end to end over HTTP, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine as _;
use common::*;
use serde_json::Value;

both_backends!(web_server_flow_with_pkce_userinfo_identity_refresh_revoke, |app: &TestApp| async move {
    let browser = app.browser();
    let verifier = verifier();
    assert_eq!(verifier.len(), 171, "jsforce-sized verifier");
    let code = app.code_with_pkce(&browser, "api refresh_token openid id", &verifier).await;
    let (status, t) = app.exchange(&code, &verifier).await;
    assert_eq!(status, 200, "{t}");
    // Salesforce's shape: issued_at is a millisecond string, no expires_in, id is the identity URL.
    let keys: Vec<&str> = t.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "access_token",
            "id",
            "id_token",
            "instance_url",
            "issued_at",
            "refresh_token",
            "scope",
            "signature",
            "token_type"
        ]
    );
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["instance_url"], app.base);
    assert_eq!(t["scope"], "api id openid refresh_token");
    let issued_at = t["issued_at"].as_str().unwrap();
    assert_eq!(issued_at.len(), 13);
    let at = t["access_token"].as_str().unwrap();
    assert!(at.starts_with(&format!("{}!", &app.org_id[..15])), "{at}");
    let id = t["id"].as_str().unwrap();
    assert_eq!(id, format!("{}/id/{}/{}", app.base, app.org_id, app.user.id));
    // signature = Base64(HMAC-SHA256(secret, id + issued_at))
    assert_eq!(t["signature"], valet_core::secret::hmac_sha256_b64(app.secret.as_bytes(), &format!("{id}{issued_at}")));
    // The ID token verifies against the JWKS and carries nonce and at_hash.
    let claims = verify_jwt(app, t["id_token"].as_str().unwrap()).await;
    assert_eq!(claims["iss"], app.base);
    assert_eq!(claims["aud"], app.app.consumer_key);
    assert_eq!(claims["sub"], id);
    assert_eq!(claims["nonce"], "n0nce");
    assert_eq!(claims["at_hash"], valet_core::keys::half_hash(at));
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() == 120);

    // userinfo accepts the token; identity too, with the literal {version} unless asked.
    let ui: Value = app
        .client()
        .get(app.url("/services/oauth2/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ui["user_id"], app.user.id.as_str());
    assert_eq!(ui["organization_id"], app.org_id);
    assert_eq!(ui["preferred_username"], "jane@example.com");
    assert_eq!(ui["sub"], id);
    assert!(ui["updated_at"].as_str().unwrap().ends_with('Z'));
    let ident: Value =
        app.client().get(format!("{id}?format=json&oauth_token={at}")).send().await.unwrap().json().await.unwrap();
    assert_eq!(ident["username"], "jane@example.com");
    assert_eq!(ident["urls"]["rest"], format!("{}/services/data/v{{version}}/", app.base));
    assert!(ident["urls"]["partner"].as_str().unwrap().ends_with(&app.org_id[..15]));
    assert!(ident["first_name"].is_string() && ident["addr_street"].is_null());
    let ident: Value =
        app.client().get(format!("{id}?version=latest")).bearer_auth(at).send().await.unwrap().json().await.unwrap();
    assert_eq!(ident["urls"]["rest"], format!("{}/services/data/v62.0/", app.base));
    let jsonp =
        app.client().get(format!("{id}?callback=cb1")).bearer_auth(at).send().await.unwrap().text().await.unwrap();
    assert!(jsonp.starts_with("cb1({"), "{jsonp}");

    // Refresh: a new access token, no refresh_token (rotation off), `id` present.
    let rt = t["refresh_token"].as_str().unwrap();
    let (status, r) = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", &app.app.consumer_key),
            ("client_secret", &app.secret),
            ("code_verifier", &verifier),
        ])
        .await;
    assert_eq!(status, 200, "{r}");
    assert!(r.get("refresh_token").is_none());
    assert_eq!(r["id"], id);
    assert!(r["id_token"].is_string());
    let at2 = r["access_token"].as_str().unwrap().to_string();
    assert_ne!(at2, at);
    assert_eq!(app.userinfo_status(&at2).await, 200);

    // Revoking the access token ends only it; revoking the refresh token ends the family.
    let rv = app.client().post(app.url("/services/oauth2/revoke")).form(&[("token", at)]).send().await.unwrap();
    assert_eq!(rv.status(), 200);
    assert_eq!(rv.text().await.unwrap(), "");
    assert_eq!(app.userinfo_status(at).await, 403);
    assert_eq!(app.userinfo_status(&at2).await, 200);
    let rv =
        app.client().get(app.url(&format!("/services/oauth2/revoke?token={}", urlencode(rt)))).send().await.unwrap();
    assert_eq!(rv.status(), 200);
    assert_eq!(app.userinfo_status(&at2).await, 403);
    let (status, e) = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", &app.app.consumer_key),
            ("client_secret", &app.secret),
        ])
        .await;
    assert_eq!(
        (status, e["error"].as_str(), e["error_description"].as_str()),
        (400, Some("invalid_grant"), Some("expired access/refresh token"))
    );
});

both_backends!(bad_tokens_get_salesforce_answers, |app: &TestApp| async move {
    let r = app.client().get(app.url("/services/oauth2/userinfo")).bearer_auth("00Dxx!nope").send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.text().await.unwrap(), "Bad_OAuth_Token");
    let r = app.client().get(app.url("/services/oauth2/userinfo")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = app.client().get(app.url(&format!("/id/{}/{}", app.org_id, app.user.id))).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // Revoke: an unknown token is an error, form-encoded (jsforce parses it as a query string).
    let r = app.client().post(app.url("/services/oauth2/revoke")).form(&[("token", "nope")]).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/x-www-form-urlencoded"));
    assert_eq!(r.text().await.unwrap(), "error=invalid_token&error_description=invalid+token");
    let r = app.client().get(app.url("/services/oauth2/revoke?token=nope&callback=fn")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "fn({\"error\":\"invalid_token\"})");
    let r = app.client().get(app.url("/services/oauth2/revoke?token=nope&callback=alert(1)")).send().await.unwrap();
    assert_eq!(r.status(), 400, "a bad callback name is ignored, not reflected");
});

both_backends!(code_reuse_revokes_what_it_issued, |app: &TestApp| async move {
    let browser = app.browser();
    let v = verifier();
    let code = app.code_with_pkce(&browser, "api refresh_token", &v).await;
    let (s1, t) = app.exchange(&code, &v).await;
    assert_eq!(s1, 200);
    let (s2, e) = app.exchange(&code, &v).await;
    assert_eq!(
        (s2, e["error"].as_str(), e["error_description"].as_str()),
        (400, Some("invalid_grant"), Some("expired authorization code"))
    );
    assert_eq!(app.userinfo_status(t["access_token"].as_str().unwrap()).await, 403);
    let (s3, _) = app
        .token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", &app.app.consumer_key),
            ("client_secret", &app.secret),
        ])
        .await;
    assert_eq!(s3, 400);
});

both_backends!(concurrent_redemptions_have_one_winner, |app: &TestApp| async move {
    let browser = app.browser();
    let v = verifier();
    let code = app.code_with_pkce(&browser, "api refresh_token", &v).await;
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let client = app.client();
        let url = app.url("/services/oauth2/token");
        let form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.clone()),
            ("client_id", app.app.consumer_key.clone()),
            ("client_secret", app.secret.clone()),
            ("redirect_uri", CALLBACK.to_string()),
            ("code_verifier", v.clone()),
        ];
        tasks.push(tokio::spawn(async move { client.post(url).form(&form).send().await.unwrap().status().as_u16() }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            200 => ok += 1,
            400 => {}
            s => panic!("unexpected {s}"),
        }
    }
    assert_eq!(ok, 1);
});

both_backends!(token_endpoint_errors, |app: &TestApp| async move {
    let browser = app.browser();
    let v = verifier();
    let code = app.code_with_pkce(&browser, "api", &v).await;
    let key = app.app.consumer_key.clone();
    let err = |(s, b): (u16, Value)| {
        (s, b["error"].as_str().unwrap_or("").to_string(), b["error_description"].as_str().unwrap_or("").to_string())
    };
    let base = |extra: &[(&'static str, String)]| {
        let mut f: Vec<(&str, String)> = vec![
            ("grant_type", "authorization_code".into()),
            ("code", code.clone()),
            ("client_id", key.clone()),
            ("redirect_uri", CALLBACK.into()),
        ];
        f.extend(extra.iter().cloned());
        f
    };
    let post = |form: Vec<(&'static str, String)>| {
        let c = app.client();
        let url = app.url("/services/oauth2/token");
        async move {
            let r = c.post(url).form(&form).send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap())
        }
    };
    // Wrong secret, unknown client, no secret although required.
    assert_eq!(
        err(post(base(&[("client_secret", "WRONG".into()), ("code_verifier", v.clone())])).await),
        (400, "invalid_client".into(), "invalid client credentials".into())
    );
    let mut f = base(&[("client_secret", app.secret.clone())]);
    f[2].1 = "3MVG9unknown".into();
    assert_eq!(err(post(f).await), (400, "invalid_client_id".into(), "client identifier invalid".into()));
    assert_eq!(err(post(base(&[("code_verifier", v.clone())])).await).1, "invalid_client");
    // PKCE: missing verifier, wrong verifier, malformed verifier.
    assert_eq!(err(post(base(&[("client_secret", app.secret.clone())])).await).1, "invalid_grant");
    assert_eq!(
        err(post(base(&[("client_secret", app.secret.clone()), ("code_verifier", verifier())])).await).1,
        "invalid_request"
    );
    assert_eq!(
        err(post(base(&[("client_secret", app.secret.clone()), ("code_verifier", "short".into())])).await).1,
        "invalid_request"
    );
    // redirect_uri mismatch at the token endpoint.
    let mut f = base(&[("client_secret", app.secret.clone()), ("code_verifier", v.clone())]);
    f[3].1 = "https://app.example.com/cb?foo=bar".into();
    assert_eq!(err(post(f).await).1, "redirect_uri_mismatch");
    // None of those failures consumed the code.
    assert_eq!(post(base(&[("client_secret", app.secret.clone()), ("code_verifier", v.clone())])).await.0, 200);
    // Unknown and oversized codes.
    let mut f = base(&[("client_secret", app.secret.clone())]);
    f[1].1 = "aPrxnope==".into();
    assert_eq!(err(post(f).await), (400, "invalid_grant".into(), "invalid authorization code".into()));
    let mut f = base(&[("client_secret", app.secret.clone())]);
    f[1].1 = "x".repeat(20_000);
    assert_eq!(err(post(f).await).1, "invalid_grant");
    // Unknown grant, no grant, repeated parameters.
    assert_eq!(
        err(post(vec![("grant_type", "magic".into())]).await),
        (400, "unsupported_grant_type".into(), "grant type not supported".into())
    );
    assert_eq!(err(post(vec![]).await).1, "unsupported_grant_type");
    assert_eq!(
        err(post(vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", "a".into()),
            ("refresh_token", "b".into())
        ])
        .await)
        .1,
        "invalid_request"
    );
    // A JSON body reads as no grant_type, as on Salesforce.
    let r = app
        .client()
        .post(app.url("/services/oauth2/token"))
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unsupported_grant_type");
    // GET is refused.
    let r = app.client().get(app.url("/services/oauth2/token")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // Error responses are not cacheable.
    let r = app.client().post(app.url("/services/oauth2/token")).form(&[("grant_type", "x")]).send().await.unwrap();
    assert_eq!(r.headers()["cache-control"], "no-store");
    // Oversized bodies are refused without a 500.
    let big = "a=".to_string() + &"x".repeat(100_000);
    // (The server may answer 413 and close before the whole body is sent; then the client sees
    // the connection close, which is a refusal too.)
    if let Ok(r) = app
        .client()
        .post(app.url("/services/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
    {
        assert!(r.status().is_client_error(), "{}", r.status());
    }
    assert_eq!(app.client().get(app.url("/healthz")).send().await.unwrap().status(), 200, "the server is still up");
    // Malformed Basic headers.
    for h in ["Basic !!!", "Basic", "Basic Og==", "Basic bm9jb2xvbg=="] {
        let r = app
            .client()
            .post(app.url("/services/oauth2/token"))
            .header("authorization", h)
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{h}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_client", "{h}");
    }
});

both_backends!(expired_code_is_refused, |app: &TestApp| async move {
    let browser = app.browser();
    let v = verifier();
    let code = app.code_with_pkce(&browser, "api", &v).await;
    app.clock.advance_ms(15 * 60 * 1000 + 1000);
    let (s, e) = app.exchange(&code, &v).await;
    assert_eq!((s, e["error_description"].as_str()), (400, Some("expired authorization code")));
});

both_backends!(basic_auth_multipart_chunked_and_formats, |app: &TestApp| async move {
    let browser = app.browser();
    // Basic auth with a multipart body.
    let v = verifier();
    let code = app.code_with_pkce(&browser, "api refresh_token", &v).await;
    let form = reqwest::multipart::Form::new()
        .text("grant_type", "authorization_code")
        .text("code", code)
        .text("redirect_uri", CALLBACK)
        .text("code_verifier", v.clone());
    let r = app
        .client()
        .post(app.url("/services/oauth2/token"))
        .basic_auth(&app.app.consumer_key, Some(&app.secret))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: Value = r.json().await.unwrap();
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    // A chunked urlencoded body (jsforce sends no Content-Length), answered as urlencoded.
    let body = serde_urlencoded::to_string([
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
        ("client_id", &app.app.consumer_key),
        ("client_secret", &app.secret),
        ("format", "urlencoded"),
    ])
    .unwrap();
    let stream =
        futures::stream::iter(vec![Ok::<_, std::io::Error>(body[..10].to_string()), Ok(body[10..].to_string())]);
    let r = app
        .client()
        .post(app.url("/services/oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/x-www-form-urlencoded"));
    let text = r.text().await.unwrap();
    assert!(text.starts_with("access_token=00D"), "{text}");
    // XML by Accept header.
    let r = app
        .client()
        .post(app.url("/services/oauth2/token"))
        .header("accept", "application/xml")
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
            ("client_id", &app.app.consumer_key),
            ("client_secret", &app.secret),
        ])
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(text.contains("<OAuth><access_token>00D"), "{text}");
    // Basic plus a body secret is two methods at once.
    let r = app
        .client()
        .post(app.url("/services/oauth2/token"))
        .basic_auth(&app.app.consumer_key, Some(&app.secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", rt.as_str()), ("client_secret", &app.secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "invalid_request");
});

both_backends!(introspection, |app: &TestApp| async move {
    let t = app.tokens("api refresh_token").await;
    let at = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    let intro = |token: String, id: String, secret: String| {
        let c = app.client();
        let url = app.url("/services/oauth2/introspect");
        async move {
            let r = c
                .post(url)
                .form(&[("token", token), ("client_id", id), ("client_secret", secret)])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (s, i) = intro(at.into(), app.app.consumer_key.clone(), app.secret.clone()).await;
    assert_eq!(s, 200);
    assert_eq!(i["active"], true);
    assert_eq!(i["token_type"], "access_token");
    assert_eq!(i["username"], "jane@example.com");
    assert_eq!(i["client_id"], app.app.consumer_key);
    assert!(i["sub"].as_str().unwrap().contains("/id/"));
    assert!(i["exp"].as_i64().unwrap() > i["iat"].as_i64().unwrap());
    let (_, i) = intro(rt.into(), app.app.consumer_key.clone(), app.secret.clone()).await;
    assert_eq!(i["token_type"], "refresh_token");
    let (_, i) = intro("garbage".into(), app.app.consumer_key.clone(), app.secret.clone()).await;
    assert_eq!(i, serde_json::json!({"active": false}));
    let (s, i) = intro(at.into(), app.app.consumer_key.clone(), "WRONG".into()).await;
    assert_eq!((s, i["error"].as_str()), (401, Some("invalid_client")));
    // Another app sees the token as inactive unless it may introspect all tokens.
    let other = app.new_app("Other", false, Default::default()).await;
    let (_, i) =
        intro(at.into(), other.app.consumer_key.clone(), other.consumer_secret.as_ref().unwrap().expose().into()).await;
    assert_eq!(i["active"], false);
});

both_backends!(discovery_and_jwks, |app: &TestApp| async move {
    let d: Value =
        app.client().get(app.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(d["issuer"], app.base);
    assert_eq!(d["token_endpoint"], app.url("/services/oauth2/token"));
    assert_eq!(d["jwks_uri"], app.url("/id/keys"));
    let mut redacted = d.clone();
    for (_, v) in redacted.as_object_mut().unwrap().iter_mut() {
        if let Some(s) = v.as_str() {
            *v = Value::String(s.replace(&app.base, "[BASE]"));
        }
    }
    insta::assert_json_snapshot!("discovery", redacted);
    let jwks: Value = app.client().get(app.url("/id/keys")).send().await.unwrap().json().await.unwrap();
    let k = &jwks["keys"][0];
    assert_eq!(
        (k["kty"].as_str(), k["alg"].as_str(), k["use"].as_str(), k["e"].as_str()),
        (Some("RSA"), Some("RS256"), Some("sig"), Some("AQAB"))
    );
    assert!(k["kid"].as_str().unwrap().chars().all(|c| c.is_ascii_digit()));
    // The ES256 key of JWT access tokens follows: x and y only, each a 32-byte coordinate.
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "{jwks}");
    let ec = &jwks["keys"][1];
    let names: Vec<&str> = ec.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(names, ["alg", "crv", "kid", "kty", "use", "x", "y"], "{ec}");
    assert_eq!(
        (ec["kty"].as_str(), ec["crv"].as_str(), ec["alg"].as_str(), ec["use"].as_str()),
        (Some("EC"), Some("P-256"), Some("ES256"), Some("sig"))
    );
    for c in ["x", "y"] {
        assert_eq!(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(ec[c].as_str().unwrap()).unwrap().len(), 32);
    }
    assert!(ec["kid"].as_str().unwrap().chars().all(|c| c.is_ascii_digit()) && ec["kid"] != k["kid"]);
});

// A database from before ES256 access tokens holds only the RSA key: the next start adds the EC
// key, once however many processes start at the same moment, and keeps the RSA key.
both_backends!(a_missing_signing_key_is_created_once_at_start, |app: &TestApp| async move {
    use std::sync::Arc;
    use valet_core::{Engine, EngineConfig};
    let rsa_kid = app.engine.keys().active.kid.clone();
    sqlx::query("DELETE FROM signing_keys WHERE alg = 'ES256'").execute(app.sql_store().pool()).await.unwrap();
    let start = || {
        let store: Arc<dyn valet_core::store::Store> = Arc::new(app.sql_store().clone());
        Engine::start(
            store,
            Arc::new(app.clock.clone()),
            Arc::new(valet_core::rand::OsRandom),
            app.master.clone(),
            EngineConfig::new(&app.base),
        )
    };
    let (a, b, c, d) = tokio::join!(start(), start(), start(), start());
    let rings: Vec<_> = [a, b, c, d].into_iter().map(|e| e.unwrap().keys()).collect();
    for ring in &rings {
        assert_eq!(ring.active.kid, rsa_kid);
        assert_eq!(ring.active_es256.kid, rings[0].active_es256.kid, "every process uses the same EC key");
        assert_eq!(ring.all.len(), 2);
    }
    let stored = valet_core::store::Store::list_signing_keys(app.sql_store()).await.unwrap();
    let mut algs: Vec<&str> = stored.iter().map(|r| r.alg.as_str()).collect();
    algs.sort();
    assert_eq!(algs, ["ES256", "RS256"], "one key per algorithm");
});
