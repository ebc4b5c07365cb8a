//! Valet e2e: the Rust `openidconnect` crate (unmodified, 4.x, blocking reqwest) against a running
//! Valet. Discovery, authorization code flow with PKCE S256 and nonce (browser step done by
//! `node e2e/node/browser.js`), code exchange, ID token verification (signature, iss, aud, exp,
//! nonce) plus the `at_hash` check, userinfo, refresh. Prints `oidc-rs: ok` and exits 0, or
//! prints the failing step and exits 1.
//!
//! Configuration: flags or env (flags win)
//!   --base URL            VALET_BASE                 issuer, e.g. http://127.0.0.1:PORT (no trailing slash)
//!   --client-id ID        VALET_E2E_RS_CLIENT_ID     (falls back to VALET_E2E_CLIENT_ID)
//!   --client-secret S     VALET_E2E_RS_CLIENT_SECRET (falls back to VALET_E2E_CLIENT_SECRET)
//!   --username U          VALET_E2E_USERNAME
//!   --password P          VALET_E2E_PASSWORD
//!   --redirect-uri URL    VALET_E2E_REDIRECT_URI     default http://localhost:1717/OauthRedirect
//!   --node PATH           VALET_E2E_NODE             default node
//!   --browser-js PATH     VALET_E2E_BROWSER_JS       default <crate>/../node/browser.js

use std::collections::HashMap;
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreProviderMetadata};
use openidconnect::reqwest;
use openidconnect::url::Url;
use openidconnect::{
    AccessTokenHash, AdditionalClaims, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};

/// Salesforce's non-standard userinfo members that the test checks.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SalesforceClaims {
    user_id: Option<String>,
    organization_id: Option<String>,
}
impl AdditionalClaims for SalesforceClaims {}

struct Config {
    base: String,
    client_id: String,
    client_secret: String,
    username: String,
    password: String,
    redirect_uri: String,
    node: String,
    browser_js: String,
}

fn config() -> Result<Config> {
    let mut flags: HashMap<String, String> = HashMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let Some(name) = a.strip_prefix("--") else {
            bail!("unexpected argument {a:?} (see the header of e2e/oidc-rs/src/main.rs)");
        };
        let (k, v) = match name.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (name.to_string(), args.next().with_context(|| format!("--{name} needs a value"))?),
        };
        flags.insert(k, v);
    }
    let get = |flag: &str, envs: &[&str], default: Option<&str>| -> Result<String> {
        if let Some(v) = flags.get(flag) {
            return Ok(v.clone());
        }
        for e in envs {
            if let Ok(v) = std::env::var(e) {
                if !v.is_empty() {
                    return Ok(v);
                }
            }
        }
        default.map(str::to_string).with_context(|| format!("missing --{flag} (or env {})", envs.join(" / ")))
    };
    let default_js = concat!(env!("CARGO_MANIFEST_DIR"), "/../node/browser.js");
    Ok(Config {
        base: get("base", &["VALET_BASE"], None)?.trim_end_matches('/').to_string(),
        client_id: get("client-id", &["VALET_E2E_RS_CLIENT_ID", "VALET_E2E_CLIENT_ID"], None)?,
        client_secret: get("client-secret", &["VALET_E2E_RS_CLIENT_SECRET", "VALET_E2E_CLIENT_SECRET"], None)?,
        username: get("username", &["VALET_E2E_USERNAME"], None)?,
        password: get("password", &["VALET_E2E_PASSWORD"], None)?,
        redirect_uri: get("redirect-uri", &["VALET_E2E_REDIRECT_URI"], Some("http://localhost:1717/OauthRedirect"))?,
        node: get("node", &["VALET_E2E_NODE"], Some("node"))?,
        browser_js: get("browser-js", &["VALET_E2E_BROWSER_JS"], Some(default_js))?,
    })
}

/// Runs `node browser.js <authUrl> <username> - <redirectPrefix>` (password via env) with a
/// deadline, returns the redirect URL it prints.
fn browser_step(cfg: &Config, auth_url: &str) -> Result<Url> {
    let mut child = Command::new(&cfg.node)
        .arg(&cfg.browser_js)
        .arg(auth_url)
        .arg(&cfg.username)
        .arg("-")
        .arg(&cfg.redirect_uri)
        .env("VALET_E2E_PASSWORD", &cfg.password)
        .env("VALET_E2E_LABEL", "oidc-rs")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("spawning {} {}", cfg.node, cfg.browser_js))?;
    let deadline = Instant::now() + Duration::from_secs(150);
    let status = loop {
        if let Some(st) = child.try_wait()? {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("browser step timed out");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    if let Some(mut so) = child.stdout.take() {
        so.read_to_string(&mut out)?;
    }
    ensure!(status.success(), "browser step failed ({status})");
    let line = out.lines().rev().find(|l| !l.trim().is_empty()).context("browser step printed no redirect URL")?;
    Url::parse(line.trim()).with_context(|| format!("bad redirect URL {line:?}"))
}

fn step<T>(name: &str, r: Result<T>) -> Result<T> {
    match &r {
        Ok(_) => eprintln!("oidc-rs: ok   {name}"),
        Err(e) => eprintln!("oidc-rs: FAIL {name}: {e:#}"),
    }
    r.with_context(|| name.to_string())
}

fn run() -> Result<()> {
    let cfg = config()?;
    let http = reqwest::blocking::ClientBuilder::new()
        // As the openidconnect docs advise (SSRF): never follow redirects.
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .context("building the reqwest client")?;

    let issuer = IssuerUrl::new(cfg.base.clone())?;
    let metadata = step(
        "discovery (/.well-known/openid-configuration + jwks)",
        CoreProviderMetadata::discover(&issuer, &http).map_err(|e| anyhow!("{e:?}")),
    )?;
    ensure!(metadata.issuer().as_str() == cfg.base, "issuer mismatch: {} vs {}", metadata.issuer().as_str(), cfg.base);

    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(cfg.client_id.clone()),
        Some(ClientSecret::new(cfg.client_secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(cfg.redirect_uri.clone())?);

    let (pkce_challenge, pkce_verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf, nonce) = client
        .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
        .add_scope(Scope::new("api".to_string()))
        .add_scope(Scope::new("refresh_token".to_string()))
        .set_pkce_challenge(pkce_challenge)
        .url();
    ensure!(
        auth_url.as_str().starts_with(&format!("{}/services/oauth2/authorize?", cfg.base)),
        "unexpected authorize URL {auth_url}"
    );

    let redirect = step("browser login + consent", browser_step(&cfg, auth_url.as_str()))?;
    let q: HashMap<String, String> = redirect.query_pairs().into_owned().collect();
    if let Some(err) = q.get("error") {
        bail!("authorize redirected with error={err} {}", q.get("error_description").map(String::as_str).unwrap_or(""));
    }
    ensure!(q.get("state").map(String::as_str) == Some(csrf.secret().as_str()), "state mismatch: {q:?}");
    let code = q.get("code").context("no code in redirect")?.clone();

    let token = step(
        "code exchange (client_secret_basic, PKCE verifier)",
        client
            .exchange_code(AuthorizationCode::new(code))
            .map_err(|e| anyhow!("{e:?}"))
            .and_then(|req| req.set_pkce_verifier(pkce_verifier).request(&http).map_err(|e| anyhow!("{e:?}"))),
    )?;
    ensure!(
        token.scopes().is_none_or(|s| s.iter().any(|s| s.as_str() == "openid")),
        "granted scope lacks openid: {:?}",
        token.scopes()
    );

    let verifier = client.id_token_verifier();
    let id_token = token.id_token().context("token response has no id_token")?;
    let claims = step(
        "id_token verification (RS256 signature, iss, aud, exp, nonce)",
        id_token.claims(&verifier, &nonce).map_err(|e| anyhow!("{e:?}")),
    )?;
    step(
        "id_token at_hash present and equal to the access token's hash",
        (|| -> Result<()> {
            let expected = claims.access_token_hash().context("id_token has no at_hash claim")?;
            let actual = AccessTokenHash::from_token(
                token.access_token(),
                id_token.signing_alg().map_err(|e| anyhow!("{e:?}"))?,
                id_token.signing_key(&verifier).map_err(|e| anyhow!("{e:?}"))?,
            )
            .map_err(|e| anyhow!("{e:?}"))?;
            ensure!(&actual == expected, "at_hash {expected:?} != computed {actual:?}");
            Ok(())
        })(),
    )?;
    step(
        "id_token claims shape (aud = client_id only, sub = identity URL)",
        (|| -> Result<()> {
            let auds: Vec<&str> = claims.audiences().iter().map(|a| a.as_str()).collect();
            ensure!(auds == [cfg.client_id.as_str()], "aud {auds:?}");
            let sub = claims.subject().as_str();
            ensure!(sub.starts_with(&format!("{}/id/00D", cfg.base)), "sub should be the identity URL, got {sub}");
            Ok(())
        })(),
    )?;
    step(
        "id_token refused with a different nonce",
        match id_token.claims(&verifier, &Nonce::new("not-the-nonce".to_string())) {
            Ok(_) => Err(anyhow!("accepted with the wrong nonce")),
            Err(_) => Ok(()),
        },
    )?;

    let userinfo: UserInfoClaims<SalesforceClaims, CoreGenderClaim> = step(
        "userinfo (typed, ISO updated_at accepted)",
        client
            .user_info(token.access_token().clone(), Some(claims.subject().clone()))
            .map_err(|e| anyhow!("{e:?}"))
            .and_then(|req| req.request(&http).map_err(|e| anyhow!("{e:?}"))),
    )?;
    step(
        "userinfo claims (preferred_username, user_id, organization_id)",
        (|| -> Result<()> {
            let pu = userinfo.preferred_username().map(|u| u.as_str().to_string());
            ensure!(pu.as_deref() == Some(cfg.username.as_str()), "preferred_username {pu:?}");
            let sub = claims.subject().as_str();
            let extra = userinfo.additional_claims();
            let uid = extra.user_id.as_deref().context("no user_id")?;
            let oid = extra.organization_id.as_deref().context("no organization_id")?;
            ensure!(sub.ends_with(&format!("/id/{oid}/{uid}")), "sub {sub} vs org {oid} user {uid}");
            Ok(())
        })(),
    )?;

    let rt = token.refresh_token().context("no refresh_token although scope refresh_token")?;
    let refreshed = step(
        "refresh_token grant",
        client
            .exchange_refresh_token(rt)
            .map_err(|e| anyhow!("{e:?}"))
            .and_then(|req| req.request(&http).map_err(|e| anyhow!("{e:?}"))),
    )?;
    ensure!(
        refreshed.access_token().secret() != token.access_token().secret(),
        "refresh returned the same access token"
    );
    if let Some(idt) = refreshed.id_token() {
        step(
            "refreshed id_token verification",
            idt.claims(&verifier, |_: Option<&Nonce>| Ok::<(), String>(())).map(|_| ()).map_err(|e| anyhow!("{e:?}")),
        )?;
    }
    step(
        "userinfo with the refreshed access token",
        client
            .user_info(refreshed.access_token().clone(), Some(claims.subject().clone()))
            .map_err(|e| anyhow!("{e:?}"))
            .and_then(|req| req.request::<SalesforceClaims, CoreGenderClaim, _>(&http).map_err(|e| anyhow!("{e:?}")))
            .map(|_| ()),
    )?;
    Ok(())
}

fn main() {
    match run() {
        Ok(()) => println!("oidc-rs: ok"),
        Err(e) => {
            eprintln!("oidc-rs: FAILED: {e:#}");
            std::process::exit(1);
        }
    }
}
