//! Races between issuance and administration, on SQLite and PostgreSQL (catalogue AD-02): an
//! app deleted while its clients refresh, redeem codes and use client credentials. The
//! delete must win cleanly: no 5xx on either side, and nothing issued to the app works after.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use valet_core::engine::admin::CreatedApp;
use valet_core::model::AppPolicy;

/// Refreshing clients per round, each with a family of its own.
const REFRESHERS: usize = 6;
/// Codes obtained before the delete and redeemed while it runs.
const CODES: usize = 12;
const ROUNDS: usize = 4;

/// What the racing clients saw.
#[derive(Default)]
struct Seen {
    /// Status and body of every token-endpoint answer, for the report of a failure.
    answers: Vec<(u16, String)>,
    /// Status and body of every userinfo answer during the race.
    resource_answers: Vec<(u16, String)>,
    access_tokens: Vec<String>,
    refresh_tokens: Vec<String>,
}

/// The racing clients of one round.
struct Race {
    base: String,
    key: String,
    secret: String,
    stop: AtomicBool,
    /// Successful issuances so far (the delete waits for some, so that it races real traffic).
    issued: AtomicUsize,
    seen: Mutex<Seen>,
}

impl Race {
    /// One token request; records the answer and whatever tokens it carries.
    async fn token(&self, client: &reqwest::Client, form: &[(&str, &str)]) -> Option<Value> {
        let r = client.post(format!("{}/services/oauth2/token", self.base)).form(form).send().await.unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        let body: Option<Value> = serde_json::from_str(&text).ok();
        let mut seen = self.seen.lock().unwrap();
        seen.answers.push((status, text));
        let body = body.filter(|_| status == 200)?;
        self.issued.fetch_add(1, Ordering::Relaxed);
        if let Some(at) = body["access_token"].as_str() {
            seen.access_tokens.push(at.to_string());
        }
        if let Some(rt) = body["refresh_token"].as_str() {
            seen.refresh_tokens.push(rt.to_string());
        }
        Some(body)
    }

    /// Refreshes in a loop until told to stop, following rotation.
    async fn refresher(self: Arc<Self>, mut refresh_token: String) {
        let client = reqwest::Client::new();
        while !self.stop.load(Ordering::Relaxed) {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token.as_str()),
                ("client_id", self.key.as_str()),
                ("client_secret", self.secret.as_str()),
            ];
            if let Some(body) = self.token(&client, &form).await {
                if let Some(next) = body["refresh_token"].as_str() {
                    refresh_token = next.to_string();
                }
            }
        }
    }

    /// Client credentials in a loop until told to stop.
    async fn client_credentials(self: Arc<Self>) {
        let client = reqwest::Client::new();
        while !self.stop.load(Ordering::Relaxed) {
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", self.key.as_str()),
                ("client_secret", self.secret.as_str()),
            ];
            self.token(&client, &form).await;
        }
    }

    /// Uses the newest access token at userinfo in a loop until told to stop, so that the
    /// engine's cache holds the app's tokens when the delete comes.
    async fn user(self: Arc<Self>) {
        let client = reqwest::Client::new();
        while !self.stop.load(Ordering::Relaxed) {
            let Some(at) = self.seen.lock().unwrap().access_tokens.last().cloned() else {
                tokio::task::yield_now().await;
                continue;
            };
            let r = client.get(format!("{}/services/oauth2/userinfo", self.base)).bearer_auth(at).send().await.unwrap();
            let status = r.status().as_u16();
            let text = r.text().await.unwrap();
            self.seen.lock().unwrap().resource_answers.push((status, text));
        }
    }

    /// Redeems the codes one after the other, spread over the race.
    async fn redeemer(self: Arc<Self>, codes: Vec<(String, String)>) {
        let client = reqwest::Client::new();
        for (code, verifier) in codes {
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("client_id", self.key.as_str()),
                ("client_secret", self.secret.as_str()),
                ("redirect_uri", CALLBACK),
                ("code_verifier", verifier.as_str()),
            ];
            self.token(&client, &form).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A code for `created` through the real authorize, login and consent pages.
async fn code_for(app: &TestApp, browser: &reqwest::Client, created: &CreatedApp) -> (String, String) {
    let verifier = verifier();
    let challenge = s256(&verifier);
    let loc = app
        .authorize(
            browser,
            &[
                ("response_type", "code"),
                ("client_id", &created.app.consumer_key),
                ("redirect_uri", CALLBACK),
                ("scope", "api refresh_token openid"),
                ("code_challenge", &challenge),
            ],
        )
        .await;
    let code = query_param(&reqwest::Url::parse(&loc).unwrap(), "code").unwrap_or_else(|| panic!("no code in {loc}"));
    (code, verifier)
}

both_backends!(deleting_an_app_while_it_issues_tokens, |app: &TestApp| async move {
    let admin = app.engine.mint_admin_token(None).await.unwrap().token.expose().to_string();
    for round in 0..ROUNDS {
        let policy = AppPolicy {
            // Every other round rotates refresh tokens (an UPDATE and an INSERT per refresh)
            // rather than recording their use (an UPDATE in the token writer's batch).
            refresh_token_rotation: round % 2 == 1,
            enable_client_credentials_flow: true,
            client_credentials_user: Some(app.user.username.clone()),
            ..AppPolicy::default()
        };
        let created = app.new_app(&format!("Doomed {round}"), false, policy).await;
        let race = Arc::new(Race {
            base: app.base.clone(),
            key: created.app.consumer_key.clone(),
            secret: created.consumer_secret.as_ref().unwrap().expose().to_string(),
            stop: AtomicBool::new(false),
            issued: AtomicUsize::new(0),
            seen: Mutex::new(Seen::default()),
        });
        // Codes: one per refreshing client, redeemed now for its refresh token, and more
        // redeemed during the race.
        let browser = app.browser();
        let mut codes = Vec::new();
        for _ in 0..REFRESHERS + CODES {
            codes.push(code_for(app, &browser, &created).await);
        }
        let client = app.client();
        let mut tasks = Vec::new();
        for (code, verifier) in codes.drain(..REFRESHERS) {
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("client_id", race.key.as_str()),
                ("client_secret", race.secret.as_str()),
                ("redirect_uri", CALLBACK),
                ("code_verifier", verifier.as_str()),
            ];
            let body = race.token(&client, &form).await.expect("the code is redeemed");
            let rt = body["refresh_token"].as_str().unwrap().to_string();
            tasks.push(tokio::spawn(race.clone().refresher(rt)));
        }
        tasks.push(tokio::spawn(race.clone().client_credentials()));
        tasks.push(tokio::spawn(race.clone().redeemer(codes)));
        tasks.push(tokio::spawn(race.clone().user()));

        // Delete once the clients are in full swing.
        let deadline = Instant::now() + Duration::from_secs(2);
        while race.issued.load(Ordering::Relaxed) < REFRESHERS + 40 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let r = client
            .delete(app.url(&format!("/admin/api/v1/apps/{}", created.app.id)))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        let (status, body) = (r.status().as_u16(), r.text().await.unwrap());
        // The clients go on a little after the delete: every answer then must be a clean refusal.
        tokio::time::sleep(Duration::from_millis(100)).await;
        race.stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(status, 204, "round {round}: the delete answered {status}: {body}");

        let seen = std::mem::take(&mut *race.seen.lock().unwrap());
        let faults: Vec<_> = seen.answers.iter().filter(|(s, _)| *s >= 500).collect();
        assert!(
            faults.is_empty(),
            "round {round}: {} of {} token answers were faults: {faults:?}",
            faults.len(),
            seen.answers.len()
        );
        for (s, body) in &seen.answers {
            assert!(*s == 200 || *s == 400, "round {round}: token endpoint answered {s}: {body}");
        }
        for (s, body) in &seen.resource_answers {
            assert!(matches!(s, 200 | 401 | 403), "round {round}: userinfo answered {s}: {body}");
        }
        let ok = seen.answers.iter().filter(|(s, _)| *s == 200).count();
        assert!(ok > REFRESHERS, "round {round}: the race had no traffic before the delete ({ok} issuances)");

        // Nothing issued to the app works any more: not at userinfo, not at introspection (asked
        // by another app allowed to see all tokens), and no refresh token refreshes.
        for at in &seen.access_tokens {
            let s = app.userinfo_status(at).await;
            assert!(s == 401 || s == 403, "round {round}: an access token of the deleted app got {s} at userinfo");
        }
        let introspector = app
            .new_app(
                &format!("Introspector {round}"),
                false,
                AppPolicy { introspect_all_tokens: true, ..AppPolicy::default() },
            )
            .await;
        let (ikey, isecret) = (introspector.app.consumer_key.clone(), introspector.consumer_secret.unwrap());
        for token in seen.access_tokens.iter().chain(&seen.refresh_tokens) {
            let form = [("token", token.as_str()), ("client_id", &ikey), ("client_secret", isecret.expose())];
            let r = client.post(app.url("/services/oauth2/introspect")).form(&form).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["active"], false, "round {round}: a token of the deleted app is active: {v}");
        }
        for rt in &seen.refresh_tokens {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
                ("client_id", race.key.as_str()),
                ("client_secret", race.secret.as_str()),
            ];
            let r = client.post(app.url("/services/oauth2/token")).form(&form).send().await.unwrap();
            assert_eq!(
                r.status(),
                400,
                "round {round}: a refresh token of the deleted app: {}",
                r.text().await.unwrap()
            );
        }
        // And none of them is left in the database, under the cache.
        let left: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM access_tokens WHERE app_id = $1) \
             + (SELECT count(*) FROM refresh_tokens WHERE app_id = $1) \
             + (SELECT count(*) FROM token_families WHERE app_id = $1)",
        )
        .bind(created.app.id.as_str())
        .fetch_one(app.sql_store().pool())
        .await
        .unwrap();
        assert_eq!(left, 0, "round {round}: rows of the deleted app are left");
    }
});
