//! The storage port. The engine depends only on this trait; `valet-store` implements it for
//! SQLite and PostgreSQL. Every method is one atomic operation: where a flow needs
//! "exactly one winner" (code redemption, rotation), the method itself is the atomic step.

use async_trait::async_trait;

use crate::clock::Millis;
use crate::ids::SfId;
use crate::model::*;
use crate::scope::ScopeSet;
use crate::secret::TokenHash;

/// Storage failures. Constraint violations that a caller can act on are their own variants;
/// everything else is `Backend` and becomes a 500 with the detail logged, never shown.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists: {0}")]
    Conflict(String),
    /// The row an operation names does not exist; for a write of a new row, a row it refers to
    /// is gone (an app deleted while its tokens were being issued).
    #[error("not found")]
    NotFound,
    #[error("storage backend error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct UserPatch {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub password_hash: Option<String>,
    pub active: Option<bool>,
    pub is_admin: Option<bool>,
}

/// Changes to an app; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct AppPatch {
    pub name: Option<String>,
    pub callback_urls: Option<Vec<String>>,
    pub scopes: Option<ScopeSet>,
    pub policy: Option<AppPolicy>,
    pub is_public: Option<bool>,
}

/// Everything one token issuance writes, stored all or nothing. Concurrent issuances may share
/// one write transaction (group commit), so a caller waits for the commit, never longer.
#[derive(Debug, Clone)]
pub struct Issuance {
    /// The family, when this issuance starts it (the direct grants); `None` when it exists.
    pub family: Option<TokenFamily>,
    pub access: AccessToken,
    pub refresh: Option<RefreshToken>,
    /// A refresh token this issuance used: its `last_used_at` becomes `access.created_at`.
    pub touch_refresh: Option<TokenHash>,
}

/// Counts of rows deleted by a sweep.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub codes: u64,
    pub device_codes: u64,
    pub jtis: u64,
    pub access_tokens: u64,
    pub refresh_tokens: u64,
    pub sessions: u64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Applies the embedded migrations (idempotent).
    async fn migrate(&self) -> StoreResult<()>;
    /// A cheap round trip, for readiness.
    async fn ping(&self) -> StoreResult<()>;
    /// A counter bumped by every change to orgs, users, apps, secrets or consents, so that a
    /// running server can notice admin changes made by another process.
    async fn change_counter(&self) -> StoreResult<i64>;

    // Orgs
    async fn insert_org(&self, org: &Org) -> StoreResult<()>;
    /// The first org (Valet runs one org per installation today).
    async fn default_org(&self) -> StoreResult<Option<Org>>;
    async fn get_org(&self, id: &SfId) -> StoreResult<Option<Org>>;
    async fn update_org_settings(&self, id: &SfId, settings: &OrgSettings, now: Millis) -> StoreResult<()>;

    // Users
    /// Fails with `Conflict` when the username is taken.
    async fn insert_user(&self, user: &User) -> StoreResult<()>;
    async fn get_user(&self, id: &SfId) -> StoreResult<Option<User>>;
    /// Usernames are unique across the installation and compared case-insensitively.
    async fn get_user_by_username(&self, username: &str) -> StoreResult<Option<User>>;
    async fn list_users(&self, org_id: &SfId) -> StoreResult<Vec<User>>;
    async fn update_user(&self, id: &SfId, patch: &UserPatch, now: Millis) -> StoreResult<()>;

    // Apps
    /// Fails with `Conflict` when the consumer key is taken.
    async fn insert_app(&self, app: &App) -> StoreResult<()>;
    async fn get_app(&self, id: &SfId) -> StoreResult<Option<App>>;
    async fn get_app_by_consumer_key(&self, key: &str) -> StoreResult<Option<App>>;
    async fn list_apps(&self, org_id: &SfId) -> StoreResult<Vec<App>>;
    async fn update_app(&self, id: &SfId, patch: &AppPatch, now: Millis) -> StoreResult<()>;
    /// Deletes the app and everything issued to it (codes, tokens, consents, secrets). Issuances
    /// that race it either commit first (and their tokens are deleted with the rest) or fail
    /// with `NotFound`: no token of the app outlives the delete.
    async fn delete_app(&self, id: &SfId) -> StoreResult<()>;

    /// Staged consumer-key rotation: the current key becomes the previous one (still valid).
    async fn rotate_consumer_key(&self, app_id: &SfId, new_key: &str, now: Millis) -> StoreResult<()>;
    async fn retire_previous_consumer_key(&self, app_id: &SfId, now: Millis) -> StoreResult<()>;

    // Consumer secrets
    async fn insert_app_secret(&self, app_id: &SfId, hash: &TokenHash, sealed: &[u8], now: Millis) -> StoreResult<i64>;
    /// Secrets that are not retired, newest first.
    async fn live_app_secrets(&self, app_id: &SfId) -> StoreResult<Vec<AppSecret>>;
    /// Retires every live secret except `keep`.
    async fn retire_app_secrets_except(&self, app_id: &SfId, keep: i64, now: Millis) -> StoreResult<u64>;

    // Consents
    async fn get_consent(&self, user_id: &SfId, app_id: &SfId) -> StoreResult<Option<Consent>>;
    async fn upsert_consent(&self, consent: &Consent) -> StoreResult<()>;
    async fn delete_consent(&self, user_id: &SfId, app_id: &SfId) -> StoreResult<()>;

    // Authorization codes
    async fn insert_code(&self, code: &AuthCode) -> StoreResult<()>;
    async fn get_code(&self, hash: &TokenHash) -> StoreResult<Option<AuthCode>>;
    /// Marks the code redeemed by `family` and stores that family, if and only if nobody
    /// redeemed the code before; otherwise stores nothing. Returns true for exactly one caller,
    /// however many race. `NotFound` (or false) when the code's app is gone.
    async fn consume_code(&self, hash: &TokenHash, family: &TokenFamily, now: Millis) -> StoreResult<bool>;

    // Token families, access and refresh tokens
    async fn insert_family(&self, family: &TokenFamily) -> StoreResult<()>;
    async fn get_family(&self, id: &str) -> StoreResult<Option<TokenFamily>>;
    /// Revokes the family and every access and refresh token in it.
    async fn revoke_family(&self, id: &str, now: Millis) -> StoreResult<()>;
    async fn insert_access_token(&self, token: &AccessToken) -> StoreResult<()>;
    /// Stores an issuance atomically (see [`Issuance`]). `NotFound` when its app or family is
    /// gone (deleted meanwhile): then nothing is stored.
    async fn store_issuance(&self, issuance: Issuance) -> StoreResult<()>;
    /// The access token with its family's revocation folded into `revoked_at`.
    async fn get_access_token(&self, hash: &TokenHash) -> StoreResult<Option<AccessToken>>;
    async fn revoke_access_token(&self, hash: &TokenHash, now: Millis) -> StoreResult<bool>;
    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<()>;
    /// The refresh token with its family's revocation folded into `revoked_at`.
    async fn get_refresh_token(&self, hash: &TokenHash) -> StoreResult<Option<RefreshToken>>;
    /// [`Store::get_refresh_token`] and the token's family (`None` if it is gone), in one read
    /// where the store can (the refresh grant needs both: one round trip fewer on PostgreSQL).
    async fn get_refresh_token_and_family(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<(RefreshToken, Option<TokenFamily>)>> {
        let Some(token) = self.get_refresh_token(hash).await? else { return Ok(None) };
        let family = self.get_family(&token.family_id).await?;
        Ok(Some((token, family)))
    }
    /// Atomically replaces `old` by `new` (rotation): succeeds only if `old` was not yet
    /// replaced or revoked. Returns false when another request rotated it first; `NotFound`
    /// when the token's family is gone (its app deleted meanwhile).
    async fn rotate_refresh_token(
        &self,
        old: &TokenHash,
        new: &RefreshToken,
        successor_sealed: &[u8],
        now: Millis,
    ) -> StoreResult<bool>;
    /// Whether the user holds any unrevoked family of the app with a live token in it.
    async fn user_has_live_family(&self, user_id: &SfId, app_id: &SfId, now: Millis) -> StoreResult<bool>;
    /// Revokes every family of a user (disable, password change) or of a user x app pair.
    async fn revoke_user_families(&self, user_id: &SfId, app_id: Option<&SfId>, now: Millis) -> StoreResult<u64>;

    // Browser sessions
    async fn insert_session(&self, session: &Session) -> StoreResult<()>;
    async fn get_session(&self, id_hash: &TokenHash) -> StoreResult<Option<Session>>;
    async fn delete_session(&self, id_hash: &TokenHash) -> StoreResult<()>;
    async fn delete_user_sessions(&self, user_id: &SfId) -> StoreResult<()>;

    // Signing keys
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()>;
    /// All keys, newest first (retired keys stay published for verification).
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>>;

    // Dynamic client registration
    async fn insert_initial_access_token(
        &self,
        hash: &TokenHash,
        org_id: &SfId,
        registrar_id: &SfId,
        now: Millis,
        expires_at: Option<Millis>,
    ) -> StoreResult<()>;
    /// The org and registrar app of an unexpired initial access token.
    async fn get_initial_access_token(&self, hash: &TokenHash, now: Millis) -> StoreResult<Option<(SfId, SfId)>>;
    /// Sets (or replaces) the registration access token of an app.
    async fn set_registration_token(&self, app_id: &SfId, hash: &TokenHash, now: Millis) -> StoreResult<()>;
    async fn app_by_registration_token(&self, hash: &TokenHash) -> StoreResult<Option<SfId>>;

    // Device authorizations
    async fn insert_device_code(&self, code: &DeviceCode) -> StoreResult<()>;
    async fn get_device_code(&self, device_code_hash: &TokenHash) -> StoreResult<Option<DeviceCode>>;
    async fn get_device_code_by_user_code(&self, user_code_hash: &TokenHash) -> StoreResult<Option<DeviceCode>>;
    /// Records the user's decision (`Approved` or `Denied`) if the code is still pending and
    /// unexpired; false otherwise.
    async fn decide_device_code(
        &self,
        device_code_hash: &TokenHash,
        status: DeviceStatus,
        user_id: &SfId,
        now: Millis,
    ) -> StoreResult<bool>;
    /// Sets `last_polled_at = now` and returns the previous value, atomically (for `slow_down`).
    async fn poll_device_code(&self, device_code_hash: &TokenHash, now: Millis) -> StoreResult<Option<Millis>>;
    /// Moves an approved code to `Consumed`; true for exactly one caller.
    async fn consume_device_code(&self, device_code_hash: &TokenHash, now: Millis) -> StoreResult<bool>;

    // Replay protection for assertions (`jti` of client assertions and JWT bearer grants)
    /// Remembers `jti` for `issuer` until `expires_at`; false if it was already seen.
    async fn remember_jti(&self, issuer: &str, jti: &str, expires_at: Millis) -> StoreResult<bool>;

    // Attempt counters (login and code-entry throttling), shared by every node of a database
    /// Counts one attempt under `key`, atomically, in a fixed window that starts at the first
    /// attempt and lasts `window_ms`; returns the count including this attempt and when the
    /// window ends. Concurrent callers each get a distinct count.
    async fn count_attempt(&self, key: &str, now: Millis, window_ms: i64) -> StoreResult<(u32, Millis)>;
    /// The attempts counted under `key` in its window, if the window is still open at `now`.
    async fn attempts(&self, key: &str, now: Millis) -> StoreResult<u32>;
    /// Takes back one counted attempt (`clear`: all of them).
    async fn forgive_attempt(&self, key: &str, clear: bool) -> StoreResult<()>;

    // Permission sets
    /// Fails with `Conflict` when the name is taken in the org.
    async fn insert_permission_set(&self, ps: &PermissionSet) -> StoreResult<()>;
    async fn list_permission_sets(&self, org_id: &SfId) -> StoreResult<Vec<PermissionSet>>;
    async fn delete_permission_set(&self, id: &SfId) -> StoreResult<()>;
    /// Idempotent.
    async fn assign_permission_set(&self, user_id: &SfId, ps_id: &SfId) -> StoreResult<()>;
    async fn unassign_permission_set(&self, user_id: &SfId, ps_id: &SfId) -> StoreResult<()>;
    /// The names of the permission sets assigned to a user.
    async fn user_permission_sets(&self, user_id: &SfId) -> StoreResult<Vec<String>>;

    // Custom permissions
    /// Fails with `Conflict` when the name is taken in the org (names compare ignoring case).
    async fn insert_custom_permission(&self, cp: &CustomPermission) -> StoreResult<()>;
    async fn list_custom_permissions(&self, org_id: &SfId) -> StoreResult<Vec<CustomPermission>>;
    /// Stores a new label and description; the name and id stay.
    async fn update_custom_permission(&self, cp: &CustomPermission) -> StoreResult<()>;
    /// Deletes the permission and every grant of it.
    async fn delete_custom_permission(&self, id: &SfId) -> StoreResult<()>;
    /// Lets a permission set grant a custom permission. Idempotent.
    async fn grant_custom_permission(&self, ps_id: &SfId, cp_id: &SfId) -> StoreResult<()>;
    async fn revoke_custom_permission(&self, ps_id: &SfId, cp_id: &SfId) -> StoreResult<()>;
    /// The names of the custom permissions a permission set grants.
    async fn permission_set_custom_permissions(&self, ps_id: &SfId) -> StoreResult<Vec<String>>;
    /// The names of the custom permissions a user holds through their permission sets.
    async fn user_custom_permissions(&self, user_id: &SfId) -> StoreResult<Vec<String>>;

    /// Deletes expired codes, device codes, remembered `jti`s, access tokens, sessions, and
    /// refresh tokens past their absolute expiry or revoked more than a day ago.
    async fn sweep_expired(&self, now: Millis) -> StoreResult<SweepReport>;
}
