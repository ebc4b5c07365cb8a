//! The same test bodies run against SQLite (a file in a temp dir) and PostgreSQL (a fresh
//! schema in the test database), so the two backends cannot drift apart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::sync::Arc;

use valet_core::ids::{KeyPrefix, SfId};
use valet_core::model::*;
use valet_core::rand::OsRandom;
use valet_core::scope::ScopeSet;
use valet_core::secret::TokenHash;
use valet_core::store::{AppPatch, Issuance, Store, StoreError, UserPatch};
use valet_store::{testing, Backend, SqlStore};

const T0: i64 = 1_700_000_000_000;
const DAY: i64 = 86_400_000;

async fn on_sqlite<F, Fut>(body: F)
where
    F: FnOnce(Arc<SqlStore>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(testing::fresh_sqlite(dir.path()).await.unwrap());
    assert_eq!(store.backend(), Backend::Sqlite);
    body(store.clone()).await;
    store.close().await;
}

/// Runs the body in its own task so that a failing assertion still drops the schema.
async fn on_postgres<F, Fut>(body: F)
where
    F: FnOnce(Arc<SqlStore>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (store, schema) = testing::fresh_postgres().await.unwrap();
    let store = Arc::new(store);
    assert_eq!(store.backend(), Backend::Postgres);
    let outcome = tokio::spawn(body(store.clone())).await;
    store.close().await;
    testing::drop_postgres_schema(&schema).await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// One test per backend for each body; multi-threaded so the race tests really race.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::on_sqlite(super::$name).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::on_postgres(super::$name).await;
            }
        }
    )*};
}

both_backends!(
    migrate_is_idempotent,
    placeholders_bind_by_number,
    orgs_and_change_counter,
    users_crud_and_conflicts,
    apps_crud_conflicts_and_secrets,
    consents,
    codes_consume_exactly_once,
    family_revocation_folds_into_token_reads,
    rotation_has_one_winner,
    group_commit_stores_every_issuance,
    cache_follows_other_writers,
    revoke_user_families,
    delete_app_removes_everything,
    writes_for_a_deleted_app_are_not_found,
    sessions_and_signing_keys,
    sweep_expired,
    rows_stored_under_bare_digests_are_found,
    custom_permissions_and_grants,
);

// ---- fixtures ----

/// `get_refresh_token_and_family` gives what `get_refresh_token` and `get_family` give.
async fn same_as_two_reads(store: &SqlStore, hash: &TokenHash) {
    let (token, family) = store.get_refresh_token_and_family(hash).await.unwrap().expect("the token");
    let alone = store.get_refresh_token(hash).await.unwrap().unwrap();
    assert_eq!(format!("{token:?}"), format!("{alone:?}"));
    let fam = store.get_family(&alone.family_id).await.unwrap();
    assert!(fam.is_some());
    assert_eq!(format!("{family:?}"), format!("{fam:?}"));
}

fn sfid(prefix: KeyPrefix) -> SfId {
    SfId::generate(prefix, &OsRandom)
}

async fn org(store: &SqlStore) -> Org {
    let org = Org {
        id: sfid(KeyPrefix::Organization),
        name: "Acme".into(),
        settings: OrgSettings::default(),
        created_at: T0,
    };
    store.insert_org(&org).await.unwrap();
    org
}

fn user_in(org: &Org, username: &str) -> User {
    User {
        id: sfid(KeyPrefix::User),
        org_id: org.id.clone(),
        username: username.into(),
        email: format!("{}@example.com", username.to_lowercase()),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        active: true,
        is_admin: false,
        timezone: "Europe/London".into(),
        locale: "en_GB".into(),
        language: "en_US".into(),
        created_at: T0,
        updated_at: T0,
    }
}

fn app_in(org: &Org, name: &str) -> App {
    App {
        id: sfid(KeyPrefix::ConnectedApp),
        org_id: org.id.clone(),
        name: name.into(),
        consumer_key: format!("3MVG9{}", valet_core::rand::alnum(&OsRandom, 80)),
        previous_consumer_key: None,
        is_public: false,
        callback_urls: vec!["http://localhost:1717/OauthRedirect".into(), "https://example.com/cb".into()],
        scopes: ScopeSet::parse("api refresh_token openid").unwrap(),
        policy: AppPolicy::default(),
        created_at: T0,
        updated_at: T0,
    }
}

/// An org, a user and an app: what every token needs to exist.
async fn world(store: &SqlStore) -> (Org, User, App) {
    let org = org(store).await;
    let user = user_in(&org, "ada@example.com");
    store.insert_user(&user).await.unwrap();
    let app = app_in(&org, "CLI");
    store.insert_app(&app).await.unwrap();
    (org, user, app)
}

fn family_for(user: &User, app: &App, id: &str) -> TokenFamily {
    TokenFamily {
        id: id.into(),
        org_id: user.org_id.clone(),
        app_id: app.id.clone(),
        user_id: user.id.clone(),
        scopes: ScopeSet::parse("api refresh_token").unwrap(),
        grant: "authorization_code".into(),
        auth_time: T0,
        created_at: T0,
        revoked_at: None,
    }
}

fn access_for(f: &TokenFamily, value: &str, expires_at: i64) -> AccessToken {
    AccessToken {
        token_hash: TokenHash::of(value),
        family_id: f.id.clone(),
        org_id: f.org_id.clone(),
        app_id: f.app_id.clone(),
        user_id: f.user_id.clone(),
        scopes: f.scopes.clone(),
        created_at: T0,
        expires_at,
        revoked_at: None,
    }
}

fn refresh_for(f: &TokenFamily, value: &str) -> RefreshToken {
    RefreshToken {
        token_hash: TokenHash::of(value),
        family_id: f.id.clone(),
        org_id: f.org_id.clone(),
        app_id: f.app_id.clone(),
        user_id: f.user_id.clone(),
        scopes: f.scopes.clone(),
        created_at: T0,
        last_used_at: T0,
        expires_at: None,
        revoked_at: None,
        replaced_by: None,
        successor_sealed: None,
    }
}

fn code_for(user: &User, app: &App, value: &str, expires_at: i64) -> AuthCode {
    AuthCode {
        code_hash: TokenHash::of(value),
        org_id: user.org_id.clone(),
        app_id: app.id.clone(),
        user_id: user.id.clone(),
        redirect_uri: "http://localhost:1717/OauthRedirect".into(),
        scopes: ScopeSet::parse("api openid").unwrap(),
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        code_challenge_method: Some(PkceMethod::S256),
        nonce: Some("n-0S6_WzA2Mj".into()),
        auth_time: T0,
        created_at: T0,
        expires_at,
        consumed_at: None,
        family_id: None,
    }
}

// ---- bodies ----

/// Rows written before token values carried a time head are keyed by the bare digest; the
/// time-keyed lookup of the same value still finds them.
async fn rows_stored_under_bare_digests_are_found(store: Arc<SqlStore>) {
    let (_org, user, app) = world(&store).await;
    let fam = family_for(&user, &app, "fam-legacy");
    store.insert_family(&fam).await.unwrap();
    let org15 = &user.org_id.as_str()[..15];
    let (at_value, rt_value, code_value) = (
        format!("{org15}!AQ0pQ3xYz7legacyAccess"),
        "5Aep8610pQ3xYz7legacyRefresh==".to_string(),
        "aPrx0pQ3xYz7legacyCode==".to_string(),
    );
    let keyed = |v: &str| TokenHash::of(v);
    let bare = |v: &str| keyed(v).legacy().expect("a value with a time head");
    let mut at = access_for(&fam, &at_value, T0 + 7_200_000);
    at.token_hash = bare(&at_value);
    store.insert_access_token(&at).await.unwrap();
    let mut rt = refresh_for(&fam, &rt_value);
    rt.token_hash = bare(&rt_value);
    store.insert_refresh_token(&rt).await.unwrap();
    let mut code = code_for(&user, &app, &code_value, T0 + 60_000);
    code.code_hash = bare(&code_value);
    store.insert_code(&code).await.unwrap();

    let got = store.get_access_token(&keyed(&at_value)).await.unwrap().expect("legacy access token");
    assert_eq!(got.token_hash, at.token_hash);
    let got = store.get_refresh_token(&keyed(&rt_value)).await.unwrap().expect("legacy refresh token");
    assert_eq!(got.token_hash, rt.token_hash);
    let got = store.get_code(&keyed(&code_value)).await.unwrap().expect("legacy code");
    assert_eq!(got.code_hash, code.code_hash);
    // And a time-keyed row is not found by a different value's key.
    assert!(store.get_access_token(&keyed(&format!("{org15}!AQ0pQ3xYz7other"))).await.unwrap().is_none());
}

async fn migrate_is_idempotent(store: Arc<SqlStore>) {
    // Already migrated once by the fixture.
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    // Concurrent migrations (as when two processes start together) must all succeed.
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let s = store.clone();
        set.spawn(async move { s.migrate().await });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap().unwrap();
    }
    assert_eq!(store.change_counter().await.unwrap(), 0);
}

async fn placeholders_bind_by_number(store: Arc<SqlStore>) {
    // A parameter used twice, and one used before a lower-numbered one after its first use.
    let row: (i64, String, i64) = sqlx::query_as("SELECT $1 + $1, $2, $3 - $1")
        .bind(20_i64)
        .bind("two")
        .bind(100_i64)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(row, (40, "two".to_string(), 80));
}

async fn orgs_and_change_counter(store: Arc<SqlStore>) {
    assert!(store.default_org().await.unwrap().is_none());
    let c0 = store.change_counter().await.unwrap();
    let first = org(&store).await;
    assert_eq!(store.change_counter().await.unwrap(), c0 + 1);
    let mut second = Org {
        id: sfid(KeyPrefix::Organization),
        name: "Later".into(),
        settings: OrgSettings::default(),
        created_at: T0 + 5,
    };
    store.insert_org(&second).await.unwrap();
    assert!(matches!(store.insert_org(&second).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.change_counter().await.unwrap(), c0 + 2, "a failed insert does not count");

    assert_eq!(store.default_org().await.unwrap().unwrap().id, first.id);
    second.settings.allow_username_password_flow = true;
    second.settings.idle_refresh_token_ttl_days = Some(30);
    store.update_org_settings(&second.id, &second.settings, T0 + 10).await.unwrap();
    let got = store.get_org(&second.id).await.unwrap().unwrap();
    assert_eq!(got.settings, second.settings);
    assert_eq!(got.name, "Later");
    assert_eq!(got.created_at, T0 + 5);
    assert_eq!(store.change_counter().await.unwrap(), c0 + 3);
    assert!(matches!(
        store.update_org_settings(&sfid(KeyPrefix::Organization), &second.settings, T0).await,
        Err(StoreError::NotFound)
    ));
    assert!(store.get_org(&sfid(KeyPrefix::Organization)).await.unwrap().is_none());
}

async fn users_crud_and_conflicts(store: Arc<SqlStore>) {
    let org = org(&store).await;
    let ada = user_in(&org, "Ada@Example.com");
    store.insert_user(&ada).await.unwrap();
    let bob = user_in(&org, "bob@example.com");
    store.insert_user(&bob).await.unwrap();

    // Case-insensitive uniqueness and lookup; the stored spelling is kept.
    let clash = user_in(&org, "ADA@example.COM");
    match store.insert_user(&clash).await {
        Err(StoreError::Conflict(what)) => assert_eq!(what, "username"),
        other => panic!("expected a username conflict, got {other:?}"),
    }
    let mut same_id = user_in(&org, "carol@example.com");
    same_id.id = bob.id.clone();
    assert!(matches!(store.insert_user(&same_id).await, Err(StoreError::Conflict(_))));

    let got = store.get_user_by_username("ada@EXAMPLE.com").await.unwrap().unwrap();
    assert_eq!(got.id, ada.id);
    assert_eq!(got.username, "Ada@Example.com");
    assert_eq!(got.org_id, org.id);
    assert_eq!(got.password_hash, ada.password_hash);
    assert!(got.active && !got.is_admin);
    assert_eq!(
        (got.timezone.as_str(), got.locale.as_str(), got.language.as_str()),
        ("Europe/London", "en_GB", "en_US")
    );
    assert!(store.get_user_by_username("nobody@example.com").await.unwrap().is_none());

    let listed: Vec<String> = store.list_users(&org.id).await.unwrap().into_iter().map(|u| u.username).collect();
    assert_eq!(listed, vec!["Ada@Example.com", "bob@example.com"]);

    let before = store.change_counter().await.unwrap();
    let patch = UserPatch {
        email: Some("ada@new.example".into()),
        active: Some(false),
        is_admin: Some(true),
        ..Default::default()
    };
    store.update_user(&ada.id, &patch, T0 + 99).await.unwrap();
    assert_eq!(store.change_counter().await.unwrap(), before + 1);
    let got = store.get_user(&ada.id).await.unwrap().unwrap();
    assert_eq!(got.email, "ada@new.example");
    assert_eq!(got.first_name, "Ada", "unpatched fields stay");
    assert!(!got.active && got.is_admin);
    assert_eq!(got.updated_at, T0 + 99);
    assert_eq!(got.created_at, T0);
    assert!(matches!(store.update_user(&sfid(KeyPrefix::User), &patch, T0).await, Err(StoreError::NotFound)));
}

async fn apps_crud_conflicts_and_secrets(store: Arc<SqlStore>) {
    let org = org(&store).await;
    let mut app = app_in(&org, "Zeta");
    app.policy.refresh_token_policy = RefreshTokenPolicy::ExpireIfUnused { minutes: 60 };
    app.policy.custom_attributes.insert("team".into(), "platform".into());
    store.insert_app(&app).await.unwrap();
    let other = app_in(&org, "Alpha");
    store.insert_app(&other).await.unwrap();

    let mut dup = app_in(&org, "Dup");
    dup.consumer_key = app.consumer_key.clone();
    match store.insert_app(&dup).await {
        Err(StoreError::Conflict(what)) => assert_eq!(what, "consumer key"),
        other => panic!("expected a consumer key conflict, got {other:?}"),
    }

    let got = store.get_app_by_consumer_key(&app.consumer_key).await.unwrap().unwrap();
    assert_eq!(got.id, app.id);
    assert_eq!(got.callback_urls, app.callback_urls);
    assert_eq!(got.scopes, app.scopes);
    assert_eq!(got.policy, app.policy);
    assert!(!got.is_public);
    assert_eq!(store.list_apps(&org.id).await.unwrap().len(), 2);

    let patch = AppPatch {
        name: Some("Zeta 2".into()),
        scopes: Some(ScopeSet::parse("full").unwrap()),
        is_public: Some(true),
        callback_urls: Some(vec![]),
        ..Default::default()
    };
    store.update_app(&app.id, &patch, T0 + 1).await.unwrap();
    let got = store.get_app(&app.id).await.unwrap().unwrap();
    assert_eq!(got.name, "Zeta 2");
    assert_eq!(got.scopes.to_string(), "full");
    assert!(got.is_public);
    assert!(got.callback_urls.is_empty());
    assert_eq!(got.policy, app.policy, "unpatched policy stays");
    assert_eq!(got.updated_at, T0 + 1);

    // Secrets: newest first, retiring all but one.
    let c0 = store.change_counter().await.unwrap();
    let s1 = store.insert_app_secret(&app.id, &TokenHash::of("one"), b"sealed", T0).await.unwrap();
    let s2 = store.insert_app_secret(&app.id, &TokenHash::of("two"), b"sealed", T0 + 1).await.unwrap();
    let s3 = store.insert_app_secret(&app.id, &TokenHash::of("three"), b"sealed", T0 + 2).await.unwrap();
    store.insert_app_secret(&other.id, &TokenHash::of("other"), b"sealed", T0).await.unwrap();
    assert_eq!(store.change_counter().await.unwrap(), c0 + 4);
    let live: Vec<i64> = store.live_app_secrets(&app.id).await.unwrap().iter().map(|s| s.id).collect();
    assert_eq!(live, vec![s3, s2, s1]);
    assert_eq!(store.retire_app_secrets_except(&app.id, s2, T0 + 5).await.unwrap(), 2);
    let live = store.live_app_secrets(&app.id).await.unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].id, s2);
    assert!(live[0].secret_hash.ct_eq(&TokenHash::of("two")));
    assert_eq!(live[0].retired_at, None);
    assert_eq!(store.retire_app_secrets_except(&app.id, s2, T0 + 6).await.unwrap(), 0);
    assert_eq!(store.live_app_secrets(&other.id).await.unwrap().len(), 1);
}

async fn consents(store: Arc<SqlStore>) {
    let (_org, user, app) = world(&store).await;
    assert!(store.get_consent(&user.id, &app.id).await.unwrap().is_none());
    let c0 = store.change_counter().await.unwrap();
    let mut consent = Consent {
        user_id: user.id.clone(),
        app_id: app.id.clone(),
        scopes: ScopeSet::parse("api").unwrap(),
        created_at: T0,
    };
    store.upsert_consent(&consent).await.unwrap();
    consent.scopes = ScopeSet::parse("api refresh_token").unwrap();
    consent.created_at = T0 + 1;
    store.upsert_consent(&consent).await.unwrap();
    let got = store.get_consent(&user.id, &app.id).await.unwrap().unwrap();
    assert_eq!(got.scopes, consent.scopes);
    assert_eq!(got.created_at, T0 + 1);
    store.delete_consent(&user.id, &app.id).await.unwrap();
    assert!(store.get_consent(&user.id, &app.id).await.unwrap().is_none());
    store.delete_consent(&user.id, &app.id).await.unwrap();
    assert_eq!(store.change_counter().await.unwrap(), c0 + 3);
}

async fn codes_consume_exactly_once(store: Arc<SqlStore>) {
    let (_org, user, app) = world(&store).await;
    let code = code_for(&user, &app, "aPrxcode", T0 + 60_000);
    store.insert_code(&code).await.unwrap();
    assert!(matches!(store.insert_code(&code).await, Err(StoreError::Conflict(_))));
    let got = store.get_code(&code.code_hash).await.unwrap().unwrap();
    assert_eq!(got.code_challenge_method, Some(PkceMethod::S256));
    assert_eq!(got.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
    assert_eq!(got.scopes, code.scopes);
    assert_eq!(got.consumed_at, None);
    assert_eq!(got.family_id, None);

    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let s = store.clone();
        let hash = code.code_hash.clone();
        let family = family_for(&user, &app, &format!("fam-{i}"));
        set.spawn(async move { (i, s.consume_code(&hash, &family, T0 + 1000 + i).await.unwrap()) });
    }
    let mut winners = Vec::new();
    while let Some(r) = set.join_next().await {
        let (i, won) = r.unwrap();
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one redemption wins: {winners:?}");
    let got = store.get_code(&code.code_hash).await.unwrap().unwrap();
    assert_eq!(got.family_id, Some(format!("fam-{}", winners[0])));
    assert_eq!(got.consumed_at, Some(T0 + 1000 + winners[0]));
    // The winner's family is stored with the redemption, as given; the losers' are not.
    let stored = store.get_family(&format!("fam-{}", winners[0])).await.unwrap().unwrap();
    let given = family_for(&user, &app, &format!("fam-{}", winners[0]));
    assert_eq!(
        (
            stored.org_id,
            stored.app_id,
            stored.user_id,
            stored.scopes,
            stored.grant,
            stored.auth_time,
            stored.created_at,
            stored.revoked_at
        ),
        (
            given.org_id,
            given.app_id,
            given.user_id,
            given.scopes,
            given.grant,
            given.auth_time,
            given.created_at,
            given.revoked_at
        )
    );
    for i in 0..20 {
        let stored = store.get_family(&format!("fam-{i}")).await.unwrap().is_some();
        assert_eq!(stored, i == winners[0], "family fam-{i}");
    }
    assert!(!store.consume_code(&code.code_hash, &family_for(&user, &app, "late"), T0 + 5000).await.unwrap());
    assert!(!store.consume_code(&TokenHash::of("unknown"), &family_for(&user, &app, "x"), T0).await.unwrap());
    assert!(store.get_family("late").await.unwrap().is_none());

    // A code without PKCE or nonce reads back as such.
    let mut plain = code_for(&user, &app, "aPrxplain", T0 + 60_000);
    plain.code_challenge = None;
    plain.code_challenge_method = None;
    plain.nonce = None;
    store.insert_code(&plain).await.unwrap();
    let got = store.get_code(&plain.code_hash).await.unwrap().unwrap();
    assert_eq!((got.code_challenge, got.code_challenge_method, got.nonce), (None, None, None));
}

async fn family_revocation_folds_into_token_reads(store: Arc<SqlStore>) {
    let (_org, user, app) = world(&store).await;
    let fam = family_for(&user, &app, "fam-1");
    store.insert_family(&fam).await.unwrap();
    let got = store.get_family("fam-1").await.unwrap().unwrap();
    assert_eq!(got.grant, "authorization_code");
    assert_eq!(got.revoked_at, None);
    let at = access_for(&fam, "at-1", T0 + 7_200_000);
    store.insert_access_token(&at).await.unwrap();
    let rt = refresh_for(&fam, "rt-1");
    store.insert_refresh_token(&rt).await.unwrap();
    assert!(matches!(store.insert_access_token(&at).await, Err(StoreError::Conflict(_))));

    let got = store.get_access_token(&at.token_hash).await.unwrap().unwrap();
    assert_eq!(got.revoked_at, None);
    assert_eq!(got.expires_at, T0 + 7_200_000);
    assert_eq!(got.family_id, "fam-1");
    let got = store.get_refresh_token(&rt.token_hash).await.unwrap().unwrap();
    assert_eq!((got.revoked_at, got.expires_at, got.replaced_by), (None, None, None));

    // A refresh records its use with the access token it issues.
    let mut at_used = access_for(&fam, "at-used", T0 + 7_200_000);
    at_used.created_at = T0 + 42;
    store
        .store_issuance(Issuance {
            family: None,
            access: at_used,
            refresh: None,
            touch_refresh: Some(rt.token_hash.clone()),
        })
        .await
        .unwrap();
    assert_eq!(store.get_refresh_token(&rt.token_hash).await.unwrap().unwrap().last_used_at, T0 + 42);

    // Revoking one access token.
    let at2 = access_for(&fam, "at-2", T0 + 7_200_000);
    store.insert_access_token(&at2).await.unwrap();
    assert!(store.revoke_access_token(&at2.token_hash, T0 + 5).await.unwrap());
    assert!(!store.revoke_access_token(&at2.token_hash, T0 + 6).await.unwrap());
    assert_eq!(store.get_access_token(&at2.token_hash).await.unwrap().unwrap().revoked_at, Some(T0 + 5));

    // The refresh grant's one read: the token as `get_refresh_token` reads it and the family as
    // `get_family` does, field for field (before the family's revocation and after, below).
    same_as_two_reads(&store, &rt.token_hash).await;

    // A token added to the family after it was revoked still reads as revoked (the fold).
    store.revoke_family("fam-1", T0 + 100).await.unwrap();
    same_as_two_reads(&store, &rt.token_hash).await;
    let late = access_for(&fam, "at-late", T0 + 7_200_000);
    store.insert_access_token(&late).await.unwrap();
    let late_rt = refresh_for(&fam, "rt-late");
    store.insert_refresh_token(&late_rt).await.unwrap();
    same_as_two_reads(&store, &late_rt.token_hash).await;
    assert_eq!(store.get_access_token(&at.token_hash).await.unwrap().unwrap().revoked_at, Some(T0 + 100));
    assert_eq!(
        store.get_access_token(&at2.token_hash).await.unwrap().unwrap().revoked_at,
        Some(T0 + 5),
        "own revocation wins"
    );
    assert_eq!(store.get_refresh_token(&rt.token_hash).await.unwrap().unwrap().revoked_at, Some(T0 + 100));
    assert_eq!(store.get_access_token(&late.token_hash).await.unwrap().unwrap().revoked_at, Some(T0 + 100));
    assert_eq!(store.get_refresh_token(&late_rt.token_hash).await.unwrap().unwrap().revoked_at, Some(T0 + 100));
    assert_eq!(store.get_family("fam-1").await.unwrap().unwrap().revoked_at, Some(T0 + 100));
    // Revoking again keeps the first time.
    store.revoke_family("fam-1", T0 + 200).await.unwrap();
    assert_eq!(store.get_family("fam-1").await.unwrap().unwrap().revoked_at, Some(T0 + 100));
    assert!(store.get_access_token(&TokenHash::of("nope")).await.unwrap().is_none());
    assert!(store.get_refresh_token(&TokenHash::of("nope")).await.unwrap().is_none());
}

/// Concurrent issuances share transactions; one that cannot be stored (its access token
/// already exists) fails alone and takes nothing of the others with it.
async fn group_commit_stores_every_issuance(store: Arc<SqlStore>) {
    let (_org, user, app) = world(&store).await;
    let taken = family_for(&user, &app, "fam-taken");
    store.insert_family(&taken).await.unwrap();
    store.insert_access_token(&access_for(&taken, "at-taken", T0 + 1)).await.unwrap();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..200 {
        let s = store.clone();
        let family = family_for(&user, &app, &format!("fam-gc-{i}"));
        let value = if i == 77 { "at-taken".to_string() } else { format!("at-gc-{i}") };
        let issuance = Issuance {
            access: access_for(&family, &value, T0 + 60_000),
            refresh: (i % 2 == 0).then(|| refresh_for(&family, &format!("rt-gc-{i}"))),
            family: Some(family),
            touch_refresh: None,
        };
        set.spawn(async move { (i, s.store_issuance(issuance).await) });
    }
    while let Some(r) = set.join_next().await {
        let (i, outcome) = r.unwrap();
        if i == 77 {
            assert!(matches!(outcome, Err(StoreError::Conflict(_))), "{outcome:?}");
            assert!(store.get_family("fam-gc-77").await.unwrap().is_none(), "no half-written grant");
        } else {
            outcome.unwrap();
        }
    }
    for i in (0..200).filter(|&i| i != 77) {
        let at = store.get_access_token(&TokenHash::of(&format!("at-gc-{i}"))).await.unwrap().unwrap();
        assert_eq!(at.family_id, format!("fam-gc-{i}"));
        assert_eq!(store.get_refresh_token(&TokenHash::of(&format!("rt-gc-{i}"))).await.unwrap().is_some(), i % 2 == 0);
    }
}

/// The engine's cache over a real store: its own writes apply at once, another process's
/// (here: the same database through an uncached handle) once the change poll sees them.
async fn cache_follows_other_writers(store: Arc<SqlStore>) {
    use valet_core::cache::CachedStore;
    let (_org, user, app) = world(&store).await;
    let cached = Arc::new(CachedStore::new(store.clone()));
    cached.watch(std::time::Duration::from_millis(20));
    let fam = family_for(&user, &app, "fam-cache");
    store.insert_family(&fam).await.unwrap();
    let at = access_for(&fam, "at-cache", T0 + 60_000);
    store.insert_access_token(&at).await.unwrap();
    assert!(cached.get_user(&user.id).await.unwrap().unwrap().active);
    assert_eq!(cached.get_access_token(&at.token_hash).await.unwrap().unwrap().revoked_at, None);
    // Let the poller see the counter once before the outside changes.
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;

    let off = UserPatch { active: Some(false), ..Default::default() };
    store.update_user(&user.id, &off, T0).await.unwrap();
    store.revoke_family("fam-cache", T0 + 5).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let active = cached.get_user(&user.id).await.unwrap().unwrap().active;
        let revoked = cached.get_access_token(&at.token_hash).await.unwrap().unwrap().revoked_at;
        if !active && revoked == Some(T0 + 5) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the cache never saw the other writer's changes");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }

    // Through the cache: visible on the very next read, no poll needed.
    let on = UserPatch { active: Some(true), ..Default::default() };
    cached.update_user(&user.id, &on, T0).await.unwrap();
    assert!(cached.get_user(&user.id).await.unwrap().unwrap().active);
    let by_name = cached.get_user_by_username(&user.username.to_uppercase()).await.unwrap().unwrap();
    assert_eq!(by_name.id, user.id);
}

async fn rotation_has_one_winner(store: Arc<SqlStore>) {
    let (_org, user, app) = world(&store).await;
    let fam = family_for(&user, &app, "fam-rot");
    store.insert_family(&fam).await.unwrap();
    let old = refresh_for(&fam, "rt-old");
    store.insert_refresh_token(&old).await.unwrap();

    let mut set = tokio::task::JoinSet::new();
    for i in 0..20 {
        let s = store.clone();
        let new = refresh_for(&fam, &format!("rt-new-{i}"));
        let old_hash = old.token_hash.clone();
        set.spawn(async move { (i, s.rotate_refresh_token(&old_hash, &new, b"sealed", T0 + 10).await.unwrap()) });
    }
    let mut winners = Vec::new();
    while let Some(r) = set.join_next().await {
        let (i, won) = r.unwrap();
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one rotation wins: {winners:?}");
    let winner_hash = TokenHash::of(&format!("rt-new-{}", winners[0]));
    let got_old = store.get_refresh_token(&old.token_hash).await.unwrap().unwrap();
    assert_eq!(got_old.replaced_by.as_ref(), Some(&winner_hash));
    assert_eq!(got_old.revoked_at, Some(T0 + 10));
    let got_new = store.get_refresh_token(&winner_hash).await.unwrap().unwrap();
    assert_eq!(got_new.revoked_at, None);
    for i in 0..20 {
        if i != winners[0] {
            let loser = TokenHash::of(&format!("rt-new-{i}"));
            assert!(store.get_refresh_token(&loser).await.unwrap().is_none(), "losers insert nothing");
        }
    }

    // The new token rotates onward; once the family is revoked nothing rotates.
    let next = refresh_for(&fam, "rt-next");
    assert!(store.rotate_refresh_token(&winner_hash, &next, b"sealed", T0 + 20).await.unwrap());
    store.revoke_family("fam-rot", T0 + 30).await.unwrap();
    let after = refresh_for(&fam, "rt-after");
    assert!(!store.rotate_refresh_token(&next.token_hash, &after, b"sealed", T0 + 40).await.unwrap());
    assert!(!store.rotate_refresh_token(&TokenHash::of("unknown"), &after, b"sealed", T0 + 40).await.unwrap());
}

async fn revoke_user_families(store: Arc<SqlStore>) {
    let (org, user, app) = world(&store).await;
    let app2 = app_in(&org, "Other");
    store.insert_app(&app2).await.unwrap();
    let bob = user_in(&org, "bob@example.com");
    store.insert_user(&bob).await.unwrap();
    for (id, u, a) in [("f1", &user, &app), ("f2", &user, &app), ("f3", &user, &app2), ("f4", &bob, &app)] {
        let f = family_for(u, a, id);
        store.insert_family(&f).await.unwrap();
        store.insert_access_token(&access_for(&f, &format!("at-{id}"), T0 + DAY)).await.unwrap();
    }
    store.revoke_family("f2", T0 + 1).await.unwrap();

    assert_eq!(store.revoke_user_families(&user.id, Some(&app2.id), T0 + 5).await.unwrap(), 1);
    assert_eq!(store.get_family("f3").await.unwrap().unwrap().revoked_at, Some(T0 + 5));
    assert_eq!(store.get_family("f1").await.unwrap().unwrap().revoked_at, None);

    assert_eq!(store.revoke_user_families(&user.id, None, T0 + 9).await.unwrap(), 1, "only f1 was live");
    assert_eq!(store.get_family("f1").await.unwrap().unwrap().revoked_at, Some(T0 + 9));
    assert_eq!(store.get_family("f2").await.unwrap().unwrap().revoked_at, Some(T0 + 1));
    assert_eq!(store.get_access_token(&TokenHash::of("at-f1")).await.unwrap().unwrap().revoked_at, Some(T0 + 9));
    assert_eq!(store.get_family("f4").await.unwrap().unwrap().revoked_at, None, "other users untouched");
    assert_eq!(store.get_access_token(&TokenHash::of("at-f4")).await.unwrap().unwrap().revoked_at, None);
}

async fn delete_app_removes_everything(store: Arc<SqlStore>) {
    let (org, user, app) = world(&store).await;
    let keep = app_in(&org, "Keep");
    store.insert_app(&keep).await.unwrap();
    for a in [&app, &keep] {
        let fid = format!("fam-{}", a.id);
        let f = family_for(&user, a, &fid);
        store.insert_family(&f).await.unwrap();
        store.insert_access_token(&access_for(&f, &format!("at-{fid}"), T0 + DAY)).await.unwrap();
        store.insert_refresh_token(&refresh_for(&f, &format!("rt-{fid}"))).await.unwrap();
        store.insert_code(&code_for(&user, a, &format!("code-{fid}"), T0 + 60_000)).await.unwrap();
        store.insert_app_secret(&a.id, &TokenHash::of(&fid), b"sealed", T0).await.unwrap();
        let consent = Consent {
            user_id: user.id.clone(),
            app_id: a.id.clone(),
            scopes: ScopeSet::parse("api").unwrap(),
            created_at: T0,
        };
        store.upsert_consent(&consent).await.unwrap();
    }
    let c0 = store.change_counter().await.unwrap();
    store.delete_app(&app.id).await.unwrap();
    assert_eq!(store.change_counter().await.unwrap(), c0 + 1);
    assert!(matches!(store.delete_app(&app.id).await, Err(StoreError::NotFound)));

    let gone = format!("fam-{}", app.id);
    assert!(store.get_app(&app.id).await.unwrap().is_none());
    assert!(store.get_family(&gone).await.unwrap().is_none());
    assert!(store.get_access_token(&TokenHash::of(&format!("at-{gone}"))).await.unwrap().is_none());
    assert!(store.get_refresh_token(&TokenHash::of(&format!("rt-{gone}"))).await.unwrap().is_none());
    assert!(store.get_code(&TokenHash::of(&format!("code-{gone}"))).await.unwrap().is_none());
    assert!(store.get_consent(&user.id, &app.id).await.unwrap().is_none());
    assert!(store.live_app_secrets(&app.id).await.unwrap().is_empty());

    let kept = format!("fam-{}", keep.id);
    assert!(store.get_app(&keep.id).await.unwrap().is_some());
    assert!(store.get_family(&kept).await.unwrap().is_some());
    assert!(store.get_access_token(&TokenHash::of(&format!("at-{kept}"))).await.unwrap().is_some());
    assert!(store.get_consent(&user.id, &keep.id).await.unwrap().is_some());
    assert_eq!(store.live_app_secrets(&keep.id).await.unwrap().len(), 1);
}

/// Issuances that lose the race with `delete_app` (their app or family is gone by the time
/// they are written) fail with `NotFound`, never a backend error, and store nothing; the
/// token writer goes on serving the other apps.
async fn writes_for_a_deleted_app_are_not_found(store: Arc<SqlStore>) {
    let (org, user, app) = world(&store).await;
    let keep = app_in(&org, "Keep");
    store.insert_app(&keep).await.unwrap();
    let f = family_for(&user, &app, "fam-doomed");
    store.insert_family(&f).await.unwrap();
    store.insert_refresh_token(&refresh_for(&f, "rt-doomed")).await.unwrap();
    store.delete_app(&app.id).await.unwrap();

    let not_found = |what: &str, r: Result<(), StoreError>| {
        assert!(matches!(r, Err(StoreError::NotFound)), "{what}: {r:?}");
    };
    // A refresh of the deleted family, alone and in a batch with another app's issuance.
    let refresh = Issuance {
        family: None,
        access: access_for(&f, "at-doomed", T0 + DAY),
        refresh: None,
        touch_refresh: Some(TokenHash::of("rt-doomed")),
    };
    not_found("a refresh", store.store_issuance(refresh.clone()).await);
    let other = family_for(&user, &keep, "fam-keep");
    let fine = Issuance {
        access: access_for(&other, "at-keep", T0 + DAY),
        refresh: Some(refresh_for(&other, "rt-keep")),
        family: Some(other),
        touch_refresh: None,
    };
    let (a, b) = tokio::join!(store.store_issuance(refresh), store.store_issuance(fine));
    not_found("a refresh batched with another app's", a);
    b.unwrap();
    // A new family for the deleted app (client credentials, password, ...).
    let new = family_for(&user, &app, "fam-new");
    let direct = Issuance {
        access: access_for(&new, "at-new", T0 + DAY),
        refresh: None,
        family: Some(new.clone()),
        touch_refresh: None,
    };
    not_found("a new family", store.store_issuance(direct).await);
    // A consent given while the app was deleted.
    let consent = Consent {
        user_id: user.id.clone(),
        app_id: app.id.clone(),
        scopes: ScopeSet::from_stored("api"),
        created_at: T0,
    };
    not_found("a consent", store.upsert_consent(&consent).await);
    // A rotation, a code and its redemption.
    let rotated = store.rotate_refresh_token(&TokenHash::of("rt-doomed"), &refresh_for(&f, "rt-next"), b"s", T0).await;
    assert!(matches!(rotated, Err(StoreError::NotFound)), "a rotation: {rotated:?}");
    not_found("a code", store.insert_code(&code_for(&user, &app, "code-doomed", T0 + 60_000)).await);
    let consumed = store.consume_code(&TokenHash::of("code-doomed"), &new, T0).await;
    assert!(matches!(consumed, Ok(false) | Err(StoreError::NotFound)), "a redemption: {consumed:?}");

    for gone in ["fam-doomed", "fam-new"] {
        assert!(store.get_family(gone).await.unwrap().is_none(), "{gone}");
    }
    for at in ["at-doomed", "at-new"] {
        assert!(store.get_access_token(&TokenHash::of(at)).await.unwrap().is_none(), "{at}");
    }
    assert!(store.get_refresh_token(&TokenHash::of("rt-next")).await.unwrap().is_none());
    assert!(store.get_access_token(&TokenHash::of("at-keep")).await.unwrap().is_some());
    assert!(store.get_refresh_token(&TokenHash::of("rt-keep")).await.unwrap().is_some());
}

fn custom_permission_in(org: &Org, name: &str) -> CustomPermission {
    CustomPermission {
        id: sfid(KeyPrefix::CustomPermission),
        org_id: org.id.clone(),
        name: name.into(),
        label: name.replace('_', " "),
        description: None,
        created_at: T0,
    }
}

/// Custom permissions, their grants by permission sets, and what a user holds through them;
/// every write counts as a change, and the cache sees grants made through it at once.
async fn custom_permissions_and_grants(store: Arc<SqlStore>) {
    let (org, user, _app) = world(&store).await;
    let approve = custom_permission_in(&org, "Can_Approve");
    let mut export = custom_permission_in(&org, "Can_Export");
    export.description = Some("Reports".into());
    let c0 = store.change_counter().await.unwrap();
    store.insert_custom_permission(&export).await.unwrap();
    store.insert_custom_permission(&approve).await.unwrap();
    let clash = custom_permission_in(&org, "CAN_APPROVE");
    assert!(matches!(store.insert_custom_permission(&clash).await, Err(StoreError::Conflict(_))), "case-insensitive");
    assert_eq!(store.change_counter().await.unwrap(), c0 + 2);
    let listed = store.list_custom_permissions(&org.id).await.unwrap();
    let names: Vec<&str> = listed.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["Can_Approve", "Can_Export"]);
    assert_eq!(listed[1].description.as_deref(), Some("Reports"));
    assert_eq!(listed[0].description, None);

    export.label = "Export".into();
    export.description = None;
    store.update_custom_permission(&export).await.unwrap();
    let got = store.list_custom_permissions(&org.id).await.unwrap().remove(1);
    assert_eq!((got.label.as_str(), got.description), ("Export", None));
    assert!(matches!(
        store.update_custom_permission(&custom_permission_in(&org, "Missing")).await,
        Err(StoreError::NotFound)
    ));

    let sets: Vec<PermissionSet> = ["Approvers", "Everyone"]
        .iter()
        .map(|n| PermissionSet {
            id: sfid(KeyPrefix::PermissionSet),
            org_id: org.id.clone(),
            name: n.to_string(),
            label: n.to_string(),
            created_at: T0,
        })
        .collect();
    for ps in &sets {
        store.insert_permission_set(ps).await.unwrap();
    }
    let (approvers, everyone) = (&sets[0], &sets[1]);
    for _ in 0..2 {
        store.grant_custom_permission(&approvers.id, &approve.id).await.unwrap();
    }
    store.grant_custom_permission(&approvers.id, &export.id).await.unwrap();
    store.grant_custom_permission(&everyone.id, &approve.id).await.unwrap();
    assert_eq!(store.permission_set_custom_permissions(&approvers.id).await.unwrap(), ["Can_Approve", "Can_Export"]);
    assert!(store.user_custom_permissions(&user.id).await.unwrap().is_empty(), "no set assigned yet");
    store.assign_permission_set(&user.id, &approvers.id).await.unwrap();
    store.assign_permission_set(&user.id, &everyone.id).await.unwrap();
    assert_eq!(store.user_custom_permissions(&user.id).await.unwrap(), ["Can_Approve", "Can_Export"], "once each");

    let before = store.change_counter().await.unwrap();
    store.revoke_custom_permission(&approvers.id, &export.id).await.unwrap();
    assert_eq!(store.change_counter().await.unwrap(), before + 1);
    assert_eq!(store.user_custom_permissions(&user.id).await.unwrap(), ["Can_Approve"]);
    // Deleting a set takes its grants with it; the other set still grants Can_Approve.
    store.delete_permission_set(&approvers.id).await.unwrap();
    assert_eq!(store.user_custom_permissions(&user.id).await.unwrap(), ["Can_Approve"]);
    store.delete_custom_permission(&approve.id).await.unwrap();
    assert!(store.user_custom_permissions(&user.id).await.unwrap().is_empty());
    assert!(store.permission_set_custom_permissions(&everyone.id).await.unwrap().is_empty());
    assert!(matches!(store.delete_custom_permission(&approve.id).await, Err(StoreError::NotFound)));

    // Through the engine's cache: held permissions are cached, and a grant made through it
    // shows on the very next read.
    use valet_core::cache::CachedStore;
    let cached = CachedStore::new(store.clone());
    assert!(cached.user_custom_permissions(&user.id).await.unwrap().is_empty());
    cached.grant_custom_permission(&everyone.id, &export.id).await.unwrap();
    assert_eq!(cached.user_custom_permissions(&user.id).await.unwrap(), ["Can_Export"]);
    cached.revoke_custom_permission(&everyone.id, &export.id).await.unwrap();
    assert!(cached.user_custom_permissions(&user.id).await.unwrap().is_empty());
}

async fn sessions_and_signing_keys(store: Arc<SqlStore>) {
    let (org, user, _app) = world(&store).await;
    let s = |v: &str| Session {
        id_hash: TokenHash::of(v),
        org_id: org.id.clone(),
        user_id: user.id.clone(),
        auth_time: T0,
        created_at: T0,
        expires_at: T0 + DAY,
    };
    store.insert_session(&s("s1")).await.unwrap();
    store.insert_session(&s("s2")).await.unwrap();
    let got = store.get_session(&TokenHash::of("s1")).await.unwrap().unwrap();
    assert_eq!((got.user_id, got.expires_at), (user.id.clone(), T0 + DAY));
    store.delete_session(&TokenHash::of("s1")).await.unwrap();
    assert!(store.get_session(&TokenHash::of("s1")).await.unwrap().is_none());
    store.delete_user_sessions(&user.id).await.unwrap();
    assert!(store.get_session(&TokenHash::of("s2")).await.unwrap().is_none());

    let blob: Vec<u8> = (0..=255u8).chain([0, 0, 255]).collect();
    let k = |kid: &str, at: i64, active: bool| SigningKeyRecord {
        kid: kid.into(),
        alg: "RS256".into(),
        private_der_encrypted: blob.clone(),
        created_at: at,
        active,
    };
    store.insert_signing_key(&k("old", T0, false)).await.unwrap();
    store.insert_signing_key(&k("new", T0 + 1, true)).await.unwrap();
    assert!(matches!(store.insert_signing_key(&k("new", T0 + 2, true)).await, Err(StoreError::Conflict(_))));
    let keys = store.list_signing_keys().await.unwrap();
    assert_eq!(keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), vec!["new", "old"]);
    assert!(keys[0].active && !keys[1].active);
    assert_eq!(keys[0].private_der_encrypted, blob, "binary survives the round trip");
    assert_eq!(keys[0].alg, "RS256");
}

async fn sweep_expired(store: Arc<SqlStore>) {
    let (_org, user, app) = world(&store).await;
    let now = T0 + 30 * DAY;

    // Codes, access tokens, sessions: expired ones go.
    store.insert_code(&code_for(&user, &app, "c-old", now - 1)).await.unwrap();
    store.insert_code(&code_for(&user, &app, "c-live", now + 60_000)).await.unwrap();
    let live = family_for(&user, &app, "f-live");
    store.insert_family(&live).await.unwrap();
    store.insert_access_token(&access_for(&live, "a-old", now - 1)).await.unwrap();
    store.insert_access_token(&access_for(&live, "a-live", now + 1)).await.unwrap();
    for (v, exp) in [("s-old", now - 1), ("s-live", now + 1)] {
        let s = Session {
            id_hash: TokenHash::of(v),
            org_id: user.org_id.clone(),
            user_id: user.id.clone(),
            auth_time: T0,
            created_at: T0,
            expires_at: exp,
        };
        store.insert_session(&s).await.unwrap();
    }

    // Refresh tokens: past absolute expiry, or revoked more than a day ago.
    let mut r_expired = refresh_for(&live, "r-expired");
    r_expired.expires_at = Some(now - 1);
    let mut r_revoked_long_ago = refresh_for(&live, "r-revoked-old");
    r_revoked_long_ago.revoked_at = Some(now - DAY - 1);
    let mut r_revoked_recently = refresh_for(&live, "r-revoked-new");
    r_revoked_recently.revoked_at = Some(now - DAY + 1);
    let mut r_live = refresh_for(&live, "r-live");
    r_live.expires_at = Some(now + 1);
    for r in [&r_expired, &r_revoked_long_ago, &r_revoked_recently, &r_live] {
        store.insert_refresh_token(r).await.unwrap();
    }

    // Families: an old revoked one whose tokens are all gone, an old one that never had any,
    // and a recent empty one (created a moment before its first token) that must stay.
    let mut dead = family_for(&user, &app, "f-dead");
    dead.revoked_at = Some(now - 2 * DAY);
    store.insert_family(&dead).await.unwrap();
    let empty_old = family_for(&user, &app, "f-empty-old");
    store.insert_family(&empty_old).await.unwrap();
    let mut empty_new = family_for(&user, &app, "f-empty-new");
    empty_new.created_at = now - 1000;
    store.insert_family(&empty_new).await.unwrap();
    // A revoked family that still has a (recently revoked) token stays.
    let mut pinned = family_for(&user, &app, "f-pinned");
    pinned.revoked_at = Some(now - 2 * DAY);
    store.insert_family(&pinned).await.unwrap();
    let mut pin = refresh_for(&pinned, "r-pin");
    pin.revoked_at = Some(now - 1000);
    store.insert_refresh_token(&pin).await.unwrap();

    let report = store.sweep_expired(now).await.unwrap();
    assert_eq!((report.codes, report.access_tokens, report.refresh_tokens, report.sessions), (1, 1, 2, 1));

    assert!(store.get_code(&TokenHash::of("c-old")).await.unwrap().is_none());
    assert!(store.get_code(&TokenHash::of("c-live")).await.unwrap().is_some());
    assert!(store.get_access_token(&TokenHash::of("a-old")).await.unwrap().is_none());
    assert!(store.get_access_token(&TokenHash::of("a-live")).await.unwrap().is_some());
    assert!(store.get_session(&TokenHash::of("s-old")).await.unwrap().is_none());
    assert!(store.get_session(&TokenHash::of("s-live")).await.unwrap().is_some());
    assert!(store.get_refresh_token(&r_expired.token_hash).await.unwrap().is_none());
    assert!(store.get_refresh_token(&r_revoked_long_ago.token_hash).await.unwrap().is_none());
    assert!(store.get_refresh_token(&r_revoked_recently.token_hash).await.unwrap().is_some());
    assert!(store.get_refresh_token(&r_live.token_hash).await.unwrap().is_some());
    assert!(store.get_family("f-live").await.unwrap().is_some());
    assert!(store.get_family("f-dead").await.unwrap().is_none());
    assert!(store.get_family("f-empty-old").await.unwrap().is_none());
    assert!(store.get_family("f-empty-new").await.unwrap().is_some());
    assert!(store.get_family("f-pinned").await.unwrap().is_some());

    // A second sweep at the same time finds nothing more.
    let again = store.sweep_expired(now).await.unwrap();
    assert_eq!((again.codes, again.access_tokens, again.refresh_tokens, again.sessions), (0, 0, 0, 0));

    sweep_in_windows(&store, &user, &app, now).await;
    sweep_statements_use_their_index(&store).await;
}

/// Enough rows for several of the sweeper's windows (1,000 rows each), with times shared
/// across window boundaries, and families in use interleaved with unused ones.
async fn sweep_in_windows(store: &SqlStore, user: &User, app: &App, now: i64) {
    const N: i64 = 2500;
    let pool = store.pool();
    let org = user.org_id.as_str();
    // Expired sessions on 7 distinct times (about 357 rows each), and live ones.
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $5) \
         INSERT INTO sessions (id_hash, org_id, user_id, auth_time, created_at, expires_at) \
         SELECT 'bulk-s-' || i, $1, $2, $3, $3, CASE WHEN i % 10 = 0 THEN $4 + i ELSE $4 - 1 - i % 7 END FROM n",
    )
    .bind(org)
    .bind(user.id.as_str())
    .bind(T0)
    .bind(now)
    .bind(N)
    .execute(pool)
    .await
    .unwrap();
    // Families created a month ago (idle) and families revoked two days ago (created three days
    // ago, so only the revoked rule applies); every third idle one and every fourth revoked one
    // is still pinned by a refresh token (live, or revoked a moment ago).
    for (kind, created, revoked) in [("idle", T0, None), ("revoked", now - 3 * DAY, Some(now - 2 * DAY))] {
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $7) \
             INSERT INTO token_families (id, org_id, app_id, user_id, scopes, grant_type, auth_time, created_at, revoked_at) \
             SELECT $1 || i, $2, $3, $4, 'api', 'password', $5, $5 + i / 3, $6 + i / 3 FROM n",
        )
        .bind(format!("bulk-{kind}-"))
        .bind(org)
        .bind(app.id.as_str())
        .bind(user.id.as_str())
        .bind(created)
        .bind(revoked)
        .bind(N)
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO refresh_tokens (token_hash, family_id, org_id, app_id, user_id, scopes, created_at, last_used_at, expires_at, revoked_at) \
         SELECT 'bulk-r-' || id, id, org_id, app_id, user_id, scopes, created_at, created_at, NULL, \
                CASE WHEN revoked_at IS NULL THEN NULL ELSE $1 END \
         FROM token_families \
         WHERE (id LIKE 'bulk-idle-%' AND CAST(SUBSTR(id, 11) AS BIGINT) % 3 = 0) \
            OR (id LIKE 'bulk-revoked-%' AND CAST(SUBSTR(id, 14) AS BIGINT) % 4 = 0)",
    )
    .bind(now - 1000)
    .execute(pool)
    .await
    .unwrap();
    let count = |sql: &'static str| async move {
        let n: i64 = sqlx::query_scalar(sql).fetch_one(pool).await.unwrap();
        n
    };
    assert_eq!(count("SELECT COUNT(*) FROM refresh_tokens WHERE token_hash LIKE 'bulk-r-%'").await, N / 3 + N / 4);

    let report = store.sweep_expired(now).await.unwrap();
    assert_eq!(
        (report.sessions, report.refresh_tokens, report.access_tokens, report.codes),
        ((N - N / 10) as u64, 0, 0, 0)
    );
    assert_eq!(count("SELECT COUNT(*) FROM sessions WHERE id_hash LIKE 'bulk-s-%'").await, N / 10);
    assert_eq!(count("SELECT COUNT(*) FROM token_families WHERE id LIKE 'bulk-idle-%'").await, N / 3);
    assert_eq!(count("SELECT COUNT(*) FROM token_families WHERE id LIKE 'bulk-revoked-%'").await, N / 4);
    // Exactly the pinned ones are left.
    assert_eq!(
        count("SELECT COUNT(*) FROM token_families f WHERE id LIKE 'bulk-%' AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.family_id = f.id)").await,
        0
    );
    assert!(store.get_family("f-live").await.unwrap().is_some());
    assert!(store.get_family("f-pinned").await.unwrap().is_some());
    assert!(store.get_session(&TokenHash::of("s-live")).await.unwrap().is_some());
}

/// Every statement of the sweeper is an index range (and its family checks index look-ups):
/// none reads a whole table, however many rows it holds; nor does deleting an app or
/// revoking a user's grants read a whole token table. PostgreSQL is told to avoid
/// sequential scans, which it would rightly prefer on tables this small, so that its plan
/// shows what it can use; one it cannot avoid still shows as "Seq Scan".
async fn sweep_statements_use_their_index(store: &SqlStore) {
    let mut conn = store.pool().acquire().await.unwrap();
    let (prefix, col) = match store.backend() {
        Backend::Sqlite => ("EXPLAIN QUERY PLAN ", 3),
        Backend::Postgres => {
            sqlx::query("SET enable_seqscan = off").execute(&mut *conn).await.unwrap();
            ("EXPLAIN ", 0)
        }
    };
    let statements = SqlStore::sweep_statements();
    assert_eq!(statements.len(), 22);
    for (sql, index) in statements {
        let rows = sqlx::query(&format!("{prefix}{sql}")).bind(T0).bind(T0 + DAY).fetch_all(&mut *conn).await.unwrap();
        let plan = rows.iter().map(|r| sqlx::Row::try_get::<String, _>(r, col).unwrap()).collect::<Vec<_>>().join("\n");
        assert!(plan.contains(index), "{sql}\nnot served by {index}:\n{plan}");
        let full_scan = match store.backend() {
            Backend::Sqlite => plan.lines().any(|l| l.trim_start().starts_with("SCAN ")),
            Backend::Postgres => plan.contains("Seq Scan"),
        };
        assert!(!full_scan, "{sql}\nreads a whole table:\n{plan}");
    }
    // Deleting an app, revoking a user's grants: the token tables through their family index.
    for sql in SqlStore::by_owner_statements() {
        let params = (1..=3).filter(|i| sql.contains(&format!("${i}"))).count();
        let explain = format!("{prefix}{sql}");
        let mut q = sqlx::query(&explain);
        for i in 0..params {
            q = if i == 0 && sql.starts_with("UPDATE") { q.bind(T0) } else { q.bind("x") };
        }
        let rows = q.fetch_all(&mut *conn).await.unwrap();
        let plan = rows.iter().map(|r| sqlx::Row::try_get::<String, _>(r, col).unwrap()).collect::<Vec<_>>().join("\n");
        let scans_tokens = match store.backend() {
            Backend::Sqlite => plan.lines().any(|l| l.trim_start().starts_with("SCAN") && l.contains("_tokens")),
            Backend::Postgres => plan.lines().any(|l| l.contains("Seq Scan on") && l.contains("_tokens")),
        };
        assert!(!scans_tokens, "{sql}\nreads a whole token table:\n{plan}");
    }
    if store.backend() == Backend::Postgres {
        sqlx::query("RESET enable_seqscan").execute(&mut *conn).await.unwrap();
    }
}

/// The PostgreSQL search_path option really isolates schemas: two stores, two worlds.
#[tokio::test]
async fn postgres_schemas_are_isolated() {
    let (a, schema_a) = testing::fresh_postgres().await.unwrap();
    let (b, schema_b) = testing::fresh_postgres().await.unwrap();
    org(&a).await;
    assert!(a.default_org().await.unwrap().is_some());
    assert!(b.default_org().await.unwrap().is_none());
    let current: String = sqlx::query_scalar("SELECT current_schema()::text").fetch_one(a.pool()).await.unwrap();
    assert_eq!(current, schema_a);
    a.close().await;
    b.close().await;
    testing::drop_postgres_schema(&schema_a).await.unwrap();
    testing::drop_postgres_schema(&schema_b).await.unwrap();
    assert!(testing::drop_postgres_schema("public").await.is_err());
}

/// Two stores on one SQLite file (as two processes would be) see each other's changes
/// through the change counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_second_process_sees_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = tokio::join!(SqlStore::sqlite_in_dir(dir.path()), SqlStore::sqlite_in_dir(dir.path()));
    let (a, b) = (a.unwrap(), b.unwrap());
    let (ma, mb) = tokio::join!(a.migrate(), b.migrate());
    ma.unwrap();
    mb.unwrap();
    let before = b.change_counter().await.unwrap();
    org(&a).await;
    assert_eq!(b.change_counter().await.unwrap(), before + 1);
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(a.pool()).await.unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(b.pool()).await.unwrap();
    assert_eq!(fk, 1);
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(b.pool()).await.unwrap();
    assert_eq!(sync, 1, "NORMAL");
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(a.pool()).await.unwrap();
    assert_eq!(busy, 5000);
}

#[tokio::test]
async fn rejects_unknown_urls() {
    assert!(matches!(SqlStore::connect("mysql://x").await, Err(StoreError::Backend(_))));
}

/// The token writer's commits reach the database file through the background checkpointer,
/// well before the WAL is big enough for a connection to checkpoint by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_checkpointer_copies_the_wal_into_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqlStore::sqlite_in_dir(dir.path()).await.unwrap());
    store.migrate().await.unwrap();
    let (_org, user, app) = world(&store).await;
    let db = dir.path().join("valet.db");
    // Everything so far reaches the file, then measure from there.
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(store.pool()).await.unwrap();
    let before = std::fs::metadata(&db).unwrap().len();
    for i in 0..300 {
        let family = family_for(&user, &app, &format!("fam-ckpt-{i}"));
        let issuance = Issuance {
            access: access_for(&family, &format!("at-ckpt-{i}"), T0 + 60_000),
            refresh: None,
            family: Some(family),
            touch_refresh: None,
        };
        store.store_issuance(issuance).await.unwrap();
    }
    let wal = dir.path().join("valet.db-wal");
    assert!(std::fs::metadata(&wal).unwrap().len() > 0, "the writes went to the WAL");
    let mut grown = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        grown = std::fs::metadata(&db).unwrap().len() > before;
        if grown {
            break;
        }
    }
    assert!(grown, "no checkpoint copied the WAL into the database file");
}
