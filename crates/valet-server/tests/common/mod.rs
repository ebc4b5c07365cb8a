//! The test harness: a real Valet on a loopback port with its own database (a fresh SQLite
//! file, or a fresh PostgreSQL schema), an injected clock, and an HTTP client that walks the
//! real login and consent pages.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine as _;
use reqwest::redirect::Policy;
use serde_json::Value;
use valet_core::clock::{Clock, ManualClock, SystemClock};
use valet_core::engine::admin::{CreatedApp, NewApp, NewUser};
use valet_core::keys::MasterKey;
use valet_core::model::{App, AppPolicy, User};
use valet_core::rand::OsRandom;
use valet_core::scope::ScopeSet;
use valet_core::{Engine, EngineConfig};
use valet_store::SqlStore;

pub const PASSWORD: &str = "correct horse battery staple";
pub const CALLBACK: &str = "http://localhost:1717/OauthRedirect";

#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base: String,
    pub engine: Arc<Engine>,
    /// The data API behind `/services/data` (to define custom objects, seed rows).
    pub data: Arc<valet_data::DataApi>,
    pub clock: ManualClock,
    /// The master key the engine was started with (to start another engine on the database).
    pub master: MasterKey,
    pub org_id: String,
    pub user: User,
    pub app: App,
    pub secret: String,
    _dir: tempfile::TempDir,
    schema: Option<String>,
    store: SqlStore,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Runs a test body against both backends as two `#[tokio::test]`s.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, |$app:ident: &TestApp| async move $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($app: &common::TestApp) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = common::TestApp::spawn(common::Backend::Sqlite).await;
                let outcome = valet_store::testing::catch_panic(run(&app)).await;
                app.stop().await;
                valet_store::testing::resume(outcome);
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app = common::TestApp::spawn(common::Backend::Postgres).await;
                let outcome = valet_store::testing::catch_panic(run(&app)).await;
                app.stop().await;
                valet_store::testing::resume(outcome);
            }
        }
    };
}

/// [`both_backends!`] with the engine's configuration changed first (`|c| { ... }` gets a
/// `&mut EngineConfig`).
#[macro_export]
macro_rules! both_backends_with {
    ($name:ident, $configure:expr, |$app:ident: &TestApp| async move $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn run($app: &common::TestApp) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = common::TestApp::spawn_with(common::Backend::Sqlite, $configure).await;
                let outcome = valet_store::testing::catch_panic(run(&app)).await;
                app.stop().await;
                valet_store::testing::resume(outcome);
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let app = common::TestApp::spawn_with(common::Backend::Postgres, $configure).await;
                let outcome = valet_store::testing::catch_panic(run(&app)).await;
                app.stop().await;
                valet_store::testing::resume(outcome);
            }
        }
    };
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut EngineConfig)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let (store, schema) = match backend {
            Backend::Sqlite => (valet_store::testing::fresh_sqlite(dir.path()).await.unwrap(), None),
            Backend::Postgres => {
                let (s, schema) = valet_store::testing::fresh_postgres().await.unwrap();
                (s, Some(schema))
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let clock = ManualClock::new(SystemClock.now_ms());
        let master = MasterKey::generate(&OsRandom);
        let mut config = EngineConfig::new(&base);
        configure(&mut config);
        let engine = Arc::new(
            Engine::start(Arc::new(store.clone()), Arc::new(clock.clone()), Arc::new(OsRandom), master.clone(), config)
                .await
                .unwrap(),
        );
        let boot = engine.bootstrap(Some("admin-password-1".into())).await.unwrap();
        let org = boot.org.unwrap();
        let user = engine
            .create_user(
                &org.id,
                NewUser {
                    username: "jane@example.com".into(),
                    password: PASSWORD.into(),
                    email: None,
                    first_name: "Jane".into(),
                    last_name: "Doe".into(),
                    is_admin: false,
                },
            )
            .await
            .unwrap();
        let created = engine
            .create_app(
                &org.id,
                NewApp {
                    name: "Test App".into(),
                    callback_urls: vec![CALLBACK.into(), "https://app.example.com/cb?foo=bar".into()],
                    scopes: ScopeSet::parse("api refresh_token openid id web").unwrap(),
                    is_public: false,
                    policy: AppPolicy::default(),
                    consumer_key: None,
                },
            )
            .await
            .unwrap();
        let data =
            Arc::new(valet_data::DataApi::open(&store, engine.clock().clone(), Arc::new(OsRandom)).await.unwrap());
        let router = valet_server::app(
            engine.clone(),
            data.clone(),
            valet_server::HttpOptions { public_url: base.clone(), secure_cookies: false },
        );
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(valet_server::serve::serve(listener, router, None, async move {
            let _ = rx.await;
        }));
        TestApp {
            base,
            engine,
            data,
            clock,
            master,
            org_id: org.id.to_string(),
            user,
            secret: created.consumer_secret.as_ref().unwrap().expose().to_string(),
            app: created.app,
            _dir: dir,
            schema,
            store,
            shutdown: Some(tx),
        }
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.store.close().await;
        if let Some(s) = &self.schema {
            valet_store::testing::drop_postgres_schema(s).await.unwrap();
        }
    }

    /// The database itself, under the engine's cache.
    pub fn sql_store(&self) -> &SqlStore {
        &self.store
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A browser-like client: cookies kept, redirects not followed (tests inspect them).
    pub fn browser(&self) -> reqwest::Client {
        reqwest::Client::builder().cookie_store(true).redirect(Policy::none()).build().unwrap()
    }

    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder().redirect(Policy::none()).build().unwrap()
    }

    pub async fn new_app(&self, name: &str, public: bool, policy: AppPolicy) -> CreatedApp {
        let org = valet_core::ids::SfId::parse(&self.org_id).unwrap();
        self.engine
            .create_app(
                &org,
                NewApp {
                    name: name.into(),
                    callback_urls: vec![CALLBACK.into()],
                    scopes: ScopeSet::parse("api refresh_token openid id web").unwrap(),
                    is_public: public,
                    policy,
                    consumer_key: None,
                },
            )
            .await
            .unwrap()
    }

    /// Logs `browser` in as the test user through the real login page.
    pub async fn login(&self, browser: &reqwest::Client, continue_to: &str) -> reqwest::Response {
        let page = browser.get(self.url(&format!("/login?continue={}", urlencode(continue_to)))).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let html = page.text().await.unwrap();
        let csrf = hidden(&html, "csrf");
        browser
            .post(self.url("/login"))
            .form(&[
                ("username", self.user.username.as_str()),
                ("password", PASSWORD),
                ("csrf", csrf.as_str()),
                ("continue", continue_to),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Walks authorize -> login -> consent (Allow) and returns the final redirect `Location`.
    pub async fn authorize(&self, browser: &reqwest::Client, query: &[(&str, &str)]) -> String {
        let qs = serde_urlencoded::to_string(query).unwrap();
        let mut resp = browser.get(self.url(&format!("/services/oauth2/authorize?{qs}"))).send().await.unwrap();
        for _ in 0..6 {
            match resp.status().as_u16() {
                302 | 303 => {
                    let loc = resp.headers()["location"].to_str().unwrap().to_string();
                    if !loc.starts_with('/') {
                        return loc;
                    }
                    if loc.starts_with("/login") {
                        let cont = reqwest::Url::parse(&self.url(&loc))
                            .unwrap()
                            .query_pairs()
                            .find(|(k, _)| k == "continue")
                            .unwrap()
                            .1
                            .to_string();
                        resp = self.login(browser, &cont).await;
                    } else {
                        resp = browser.get(self.url(&loc)).send().await.unwrap();
                    }
                }
                200 => {
                    let html = resp.text().await.unwrap();
                    assert!(html.contains("Allow Access?"), "expected the consent page, got {html}");
                    let csrf = hidden(&html, "csrf");
                    let request = hidden(&html, "request");
                    let tag = hidden(&html, "request_tag");
                    resp = browser
                        .post(self.url("/services/oauth2/authorize/consent"))
                        .form(&[
                            ("csrf", csrf.as_str()),
                            ("request", request.as_str()),
                            ("request_tag", tag.as_str()),
                            ("decision", "allow"),
                        ])
                        .send()
                        .await
                        .unwrap();
                }
                s => panic!("unexpected status {s}: {}", resp.text().await.unwrap()),
            }
        }
        panic!("too many steps");
    }

    /// A code for the test app with PKCE (S256 without a method, like jsforce).
    pub async fn code_with_pkce(&self, browser: &reqwest::Client, scope: &str, verifier: &str) -> String {
        let challenge = s256(verifier);
        let loc = self
            .authorize(
                browser,
                &[
                    ("response_type", "code"),
                    ("client_id", &self.app.consumer_key),
                    ("redirect_uri", CALLBACK),
                    ("scope", scope),
                    ("state", "st4te"),
                    ("nonce", "n0nce"),
                    ("code_challenge", &challenge),
                ],
            )
            .await;
        let u = reqwest::Url::parse(&loc).unwrap();
        assert_eq!(query_param(&u, "state").as_deref(), Some("st4te"), "{loc}");
        query_param(&u, "code").unwrap_or_else(|| panic!("no code in {loc}"))
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let r = self.client().post(self.url("/services/oauth2/token")).form(form).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")))
    }

    pub async fn exchange(&self, code: &str, verifier: &str) -> (u16, Value) {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", &self.app.consumer_key),
            ("client_secret", &self.secret),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// A complete web server flow for any confidential app (walking login and consent):
    /// returns the token endpoint's status and body.
    pub async fn code_flow(&self, client_id: &str, secret: &str, scope: &str) -> (u16, Value) {
        let verifier = verifier();
        let loc = self
            .authorize(
                &self.browser(),
                &[
                    ("response_type", "code"),
                    ("client_id", client_id),
                    ("redirect_uri", CALLBACK),
                    ("scope", scope),
                    ("code_challenge", &s256(&verifier)),
                ],
            )
            .await;
        let code = query_param(&reqwest::Url::parse(&loc).unwrap(), "code").unwrap_or_else(|| panic!("{loc}"));
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("client_id", client_id),
            ("client_secret", secret),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &verifier),
        ])
        .await
    }

    /// A complete web server flow: returns the token response.
    pub async fn tokens(&self, scope: &str) -> Value {
        let browser = self.browser();
        let verifier = verifier();
        let code = self.code_with_pkce(&browser, scope, &verifier).await;
        let (status, body) = self.exchange(&code, &verifier).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn userinfo_status(&self, token: &str) -> u16 {
        self.client()
            .get(self.url("/services/oauth2/userinfo"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

/// A 171-character verifier, as jsforce makes them (base64url of 128 random bytes).
pub fn verifier() -> String {
    let mut b = [0u8; 128];
    valet_core::rand::Random::fill(&OsRandom, &mut b);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

pub fn s256(verifier: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
}

pub fn query_param(u: &reqwest::Url, name: &str) -> Option<String> {
    u.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.to_string())
}

pub fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)]).unwrap().trim_start_matches("x=").to_string()
}

/// The value of a hidden input in a rendered page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\"");
    let at = html.find(&marker).unwrap_or_else(|| panic!("no input {name} in {html}"));
    let tag_start = html[..at].rfind('<').unwrap();
    let tag_end = at + html[at..].find('>').unwrap();
    let tag = &html[tag_start..tag_end];
    let v = tag.find("value=\"").unwrap_or_else(|| panic!("no value in {tag}")) + 7;
    let end = v + tag[v..].find('"').unwrap();
    html_unescape(&tag[v..end])
}

fn html_unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x2F;", "/")
        .replace("&amp;", "&")
}

/// Decodes a JWT's payload without verifying it (tests verify separately).
pub fn jwt_claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Verifies an RS256 JWT against the server's JWKS.
pub async fn verify_jwt(app: &TestApp, jwt: &str) -> Value {
    verify_jwt_alg(app, jwt, "RS256").await
}

/// Verifies a JWT whose header says `alg` (RS256 or ES256) with the JWKS key of its `kid`,
/// from the published members alone (`n`/`e`, or `x`/`y`).
pub async fn verify_jwt_alg(app: &TestApp, jwt: &str, alg: &str) -> Value {
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let jwks: Value = app.client().get(app.url("/id/keys")).send().await.unwrap().json().await.unwrap();
    let header: Value = serde_json::from_slice(&b64.decode(jwt.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["alg"], alg);
    let key = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == header["kid"]).expect("kid in JWKS");
    assert_eq!(key["alg"], alg, "the key of the kid is of the header's algorithm");
    let member = |name: &str| b64.decode(key[name].as_str().unwrap_or_else(|| panic!("{name} in {key}"))).unwrap();
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    let sig = b64.decode(sig).unwrap();
    match alg {
        "RS256" => {
            let (n, e) = (member("n"), member("e"));
            let pk = aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &e };
            pk.verify(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256, input.as_bytes(), &sig)
                .expect("signature verifies");
        }
        "ES256" => {
            assert_eq!((key["kty"].as_str(), key["crv"].as_str()), (Some("EC"), Some("P-256")));
            let point = [vec![4u8], member("x"), member("y")].concat();
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
                .verify(input.as_bytes(), &sig)
                .expect("signature verifies");
        }
        other => panic!("unexpected alg {other}"),
    }
    jwt_claims(jwt)
}

/// Signs `claims` as an RS256 JWT with `header` (JSON text) and `pair`'s key.
fn rs256(pair: &aws_lc_rs::rsa::KeyPair, header: &str, claims: &Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let input = format!("{}.{}", b64.encode(header), b64.encode(claims.to_string()));
    let mut sig = vec![0u8; pair.public_modulus_len()];
    pair.sign(
        &aws_lc_rs::signature::RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", b64.encode(sig))
}

/// A self-signed certificate and a function that signs RS256 JWTs with its key.
pub fn jwt_signer() -> (String, impl Fn(&Value) -> String) {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair).unwrap();
    let kp = rcgen::KeyPair::try_from(der.as_ref()).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["jwt.example".into()]).unwrap().self_signed(&kp).unwrap();
    (cert.pem(), move |claims: &Value| rs256(&pair, r#"{"alg":"RS256"}"#, claims))
}

/// An external issuer's key: signs RS256 JWTs with a kid, and publishes a JWKS.
pub fn external_issuer() -> (Value, impl Fn(&Value) -> String) {
    use aws_lc_rs::signature::KeyPair as _;
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let public = pair.public_key();
    let jwks = serde_json::json!({"keys": [{"kty": "RSA", "kid": "ext1", "alg": "RS256", "use": "sig",
        "n": b64.encode(public.modulus().big_endian_without_leading_zero()),
        "e": b64.encode(public.exponent().big_endian_without_leading_zero())}]});
    (jwks, move |claims: &Value| rs256(&pair, r#"{"alg":"RS256","kid":"ext1"}"#, claims))
}
