//! Bad input on every endpoint gets the protocol's error, never a 5xx: malformed, missing,
//! repeated, oversized and mis-encoded parameters, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

const PATHS_POST: &[&str] = &[
    "/services/oauth2/token",
    "/services/oauth2/revoke",
    "/services/oauth2/introspect",
    "/services/oauth2/userinfo",
    "/services/oauth2/authorize",
    "/services/oauth2/authorize/consent",
    "/services/oauth2/device_authorization",
    "/services/oauth2/register",
    "/login",
    "/logout",
    "/setup/connect",
    "/setup/connect/approve",
];

const PATHS_GET: &[&str] = &[
    "/services/oauth2/authorize",
    "/services/oauth2/revoke",
    "/services/oauth2/userinfo",
    "/services/oauth2/register/3MVG9nope",
    "/id/00D000000000000AAA/005000000000000AAA",
    "/id/bad/ids",
    "/login",
    "/logout",
    "/setup/connect",
    "/services/auth/idp/oidc/logout",
    "/.well-known/openid-configuration",
    "/id/keys",
];

fn bodies(app: &TestApp) -> Vec<(String, Vec<u8>)> {
    let form = "application/x-www-form-urlencoded".to_string();
    let key = app.app.consumer_key.clone();
    vec![
        (form.clone(), b"".to_vec()),
        (form.clone(), b"%%%&&&===".to_vec()),
        (form.clone(), b"grant_type=authorization_code&code=%FF%FE&client_id=\xff\xfe".to_vec()),
        (form.clone(), format!("grant_type=authorization_code&grant_type=refresh_token&client_id={key}").into_bytes()),
        (
            form.clone(),
            format!("grant_type=refresh_token&refresh_token={}&client_id={key}", "A".repeat(60_000)).into_bytes(),
        ),
        (form.clone(), format!("token={}&callback=a(b)", "x".repeat(10_000)).into_bytes()),
        (form.clone(), b"response_type=code_credentials&client_id=x&redirect_uri=y".to_vec()),
        (form.clone(), b"csrf=&request=%00&decision=allow&user_code=%00".to_vec()),
        ("application/json".into(), b"{\"grant_type\": [1,2,3], \"redirect_uris\": 7}".to_vec()),
        ("application/json".into(), b"{not json".to_vec()),
        (
            "multipart/form-data; boundary=zz".into(),
            b"--zz\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\ndevice\r\n--zz--\r\n".to_vec(),
        ),
        ("multipart/form-data; boundary=zz".into(), b"garbage without boundaries".to_vec()),
        ("multipart/form-data".into(), b"--\r\n".to_vec()),
        ("text/xml".into(), b"<a/>".to_vec()),
        (form, vec![b'a'; 200_000]),
    ]
}

both_backends!(no_endpoint_answers_bad_input_with_a_server_error, |app: &TestApp| async move {
    // A connection per request: the server closes a connection whose oversized body it refused
    // before reading it, and a pooled client could send the next request on that connection
    // as it closes (a client-side race, not an answer of the server's).
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let headers: Vec<Vec<(&str, String)>> = vec![
        vec![],
        vec![("authorization", "Basic !!!!".into())],
        vec![("authorization", "Bearer ".into())],
        vec![("authorization", format!("Bearer {}", "y".repeat(9000)))],
        vec![("authorization", "OAuth 00Dxxxxxxxxxxxx!abc".into())],
        vec![("cookie", "valet_sid=%%%; valet_csrf=;;==".into())],
        vec![("auth-request-type", "Named-User".into()), ("authorization", "Basic Og==".into())],
    ];
    for path in PATHS_POST {
        for (ctype, body) in bodies(app) {
            for h in &headers {
                let mut req = c.post(app.url(path)).header("content-type", ctype.as_str()).body(body.clone());
                for (k, v) in h {
                    req = req.header(*k, v.as_str());
                }
                match req.send().await {
                    Ok(r) => assert!(r.status().as_u16() < 500, "POST {path} ({ctype}, {h:?}) -> {}", r.status()),
                    // An oversized body may be refused (413) before the client has finished
                    // sending it; the client then sees the connection close. That is a refusal,
                    // not a failure, and only allowed for bodies over the limit.
                    Err(e) => {
                        assert!(body.len() > valet_server::http::MAX_BODY, "POST {path} ({ctype}, {h:?}) failed: {e}")
                    }
                }
            }
        }
    }
    let queries = [
        "",
        "?response_type=code&client_id=&redirect_uri=",
        "?client_id=%FF&redirect_uri=%00&state=%",
        "?response_type=code&response_type=token&client_id=PlatformCLI&redirect_uri=http%3A%2F%2Flocalhost%3A1717%2FOauthRedirect",
        "?response_type=code&client_id=PlatformCLI&redirect_uri=http%3A%2F%2Flocalhost%3A1717%2FOauthRedirect&scope=%00%01&code_challenge=%FF&prompt=none%20login",
        "?id_token_hint=a.b.c&post_logout_redirect_uri=javascript:alert(1)",
        "?token=&callback=%3Cscript%3E",
        "?format=xml&version=%00&oauth_token=00D!x&callback=a",
    ];
    let long = format!("?state={}", "s".repeat(6000));
    for path in PATHS_GET {
        for q in queries.iter().copied().chain(std::iter::once(long.as_str())) {
            for h in &headers {
                let mut req = c.get(app.url(&format!("{path}{q}")));
                for (k, v) in h {
                    req = req.header(*k, v.as_str());
                }
                let r = req.send().await.unwrap();
                assert!(r.status().as_u16() < 500, "GET {path}{q} ({h:?}) -> {}", r.status());
            }
        }
    }
});
