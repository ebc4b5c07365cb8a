//! A read cache in front of any [`Store`]: the rows every request reads and admins rarely
//! change (orgs, users, apps, live secrets, permission sets, the custom permissions users hold)
//! and access tokens by hash.
//!
//! Invalidation is all-or-nothing, which keeps it obviously correct:
//! * every write made through this store empties the cache when it returns, so a change made
//!   through the engine (admin API, pages, revocation) applies to the very next request;
//! * every admin change and every revocation also bumps the store's change counter in the
//!   same transaction, and [`CachedStore::watch`] polls that counter, so a change made by
//!   another process (the CLI, another node on the same PostgreSQL) applies within one poll.
//!
//! A read that raced with a write must not put the old row back after the write emptied the
//! cache: each fill carries the generation it started in and is dropped if that has moved on.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;

use crate::clock::Millis;
use crate::ids::SfId;
use crate::model::*;
use crate::secret::TokenHash;
use crate::store::*;

/// Entries per map. A full map is emptied and refills with what is in use: crude, but it
/// bounds memory without bookkeeping on the hot path, and real working sets are far smaller.
const CAPACITY: usize = 10_000;

#[derive(Default)]
struct Maps {
    generation: u64,
    default_org: Option<Org>,
    orgs: HashMap<SfId, Org>,
    users: HashMap<SfId, User>,
    /// Keyed by the lower-cased username (usernames compare case-insensitively).
    users_by_name: HashMap<String, User>,
    apps: HashMap<SfId, App>,
    apps_by_key: HashMap<String, App>,
    secrets: HashMap<SfId, Vec<AppSecret>>,
    permission_sets: HashMap<SfId, Vec<String>>,
    /// By user: the custom permissions they hold (read for every token of an app that asks).
    custom_permissions: HashMap<SfId, Vec<String>>,
    access_tokens: HashMap<TokenHash, AccessToken>,
}

impl Maps {
    fn clear(&mut self) {
        let generation = self.generation + 1;
        *self = Maps { generation, ..Maps::default() };
    }
}

pub struct CachedStore {
    inner: Arc<dyn Store>,
    maps: Mutex<Maps>,
}

impl CachedStore {
    pub fn new(inner: Arc<dyn Store>) -> CachedStore {
        CachedStore { inner, maps: Mutex::new(Maps::default()) }
    }

    /// Polls the change counter every `every` on the current tokio runtime and empties the
    /// cache when it moved. The task ends when the store is dropped.
    pub fn watch(self: &Arc<Self>, every: Duration) {
        let weak: Weak<CachedStore> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut seen: Option<i64> = None;
            loop {
                tokio::time::sleep(every).await;
                let Some(cache) = weak.upgrade() else { return };
                match cache.inner.change_counter().await {
                    Ok(now) if seen == Some(now) => {}
                    Ok(now) => {
                        if seen.is_some() {
                            cache.invalidate();
                        }
                        seen = Some(now);
                    }
                    // Unknown state: serve from the database until it answers again.
                    Err(_) => {
                        cache.invalidate();
                        seen = None;
                    }
                }
            }
        });
    }

    /// Empties every map.
    pub fn invalidate(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> MutexGuard<'_, Maps> {
        // A panic while holding the lock cannot leave a map half-updated in a way that
        // matters (inserts and clears are single calls), so a poisoned lock is still usable.
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The cached value for `key`, or `load`'s (stored under `key.to_owned()` when found and
    /// nothing changed meanwhile: a hit makes no owned key).
    async fn cached<Q, K, V, F>(
        &self,
        map: fn(&mut Maps) -> &mut HashMap<K, V>,
        key: &Q,
        load: F,
    ) -> StoreResult<Option<V>>
    where
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        K: Hash + Eq + std::borrow::Borrow<Q>,
        V: Clone,
        F: std::future::Future<Output = StoreResult<Option<V>>>,
    {
        let generation = {
            let mut maps = self.lock();
            if let Some(v) = map(&mut maps).get(key) {
                return Ok(Some(v.clone()));
            }
            maps.generation
        };
        let loaded = load.await?;
        if let Some(v) = &loaded {
            let mut maps = self.lock();
            if maps.generation == generation {
                let m = map(&mut maps);
                if m.len() >= CAPACITY {
                    m.clear();
                }
                m.insert(key.to_owned(), v.clone());
            }
        }
        Ok(loaded)
    }

    /// Runs a write and empties the cache after it, whether it succeeded or not (a failed
    /// write may still have committed before the error reached us).
    async fn write<T>(&self, f: impl std::future::Future<Output = StoreResult<T>>) -> StoreResult<T> {
        let r = f.await;
        self.invalidate();
        r
    }
}

#[async_trait]
impl Store for CachedStore {
    async fn migrate(&self) -> StoreResult<()> {
        self.write(self.inner.migrate()).await
    }
    async fn ping(&self) -> StoreResult<()> {
        self.inner.ping().await
    }
    async fn change_counter(&self) -> StoreResult<i64> {
        self.inner.change_counter().await
    }

    async fn insert_org(&self, org: &Org) -> StoreResult<()> {
        self.write(self.inner.insert_org(org)).await
    }
    async fn default_org(&self) -> StoreResult<Option<Org>> {
        let generation = {
            let maps = self.lock();
            if let Some(o) = &maps.default_org {
                return Ok(Some(o.clone()));
            }
            maps.generation
        };
        let loaded = self.inner.default_org().await?;
        let mut maps = self.lock();
        if maps.generation == generation {
            maps.default_org.clone_from(&loaded);
        }
        Ok(loaded)
    }
    async fn get_org(&self, id: &SfId) -> StoreResult<Option<Org>> {
        self.cached(|m| &mut m.orgs, id, self.inner.get_org(id)).await
    }
    async fn update_org_settings(&self, id: &SfId, settings: &OrgSettings, now: Millis) -> StoreResult<()> {
        self.write(self.inner.update_org_settings(id, settings, now)).await
    }

    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        self.write(self.inner.insert_user(user)).await
    }
    async fn get_user(&self, id: &SfId) -> StoreResult<Option<User>> {
        self.cached(|m| &mut m.users, id, self.inner.get_user(id)).await
    }
    async fn get_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.cached(
            |m| &mut m.users_by_name,
            username.to_lowercase().as_str(),
            self.inner.get_user_by_username(username),
        )
        .await
    }
    async fn list_users(&self, org_id: &SfId) -> StoreResult<Vec<User>> {
        self.inner.list_users(org_id).await
    }
    async fn update_user(&self, id: &SfId, patch: &UserPatch, now: Millis) -> StoreResult<()> {
        self.write(self.inner.update_user(id, patch, now)).await
    }

    async fn insert_app(&self, app: &App) -> StoreResult<()> {
        self.write(self.inner.insert_app(app)).await
    }
    async fn get_app(&self, id: &SfId) -> StoreResult<Option<App>> {
        self.cached(|m| &mut m.apps, id, self.inner.get_app(id)).await
    }
    async fn get_app_by_consumer_key(&self, key: &str) -> StoreResult<Option<App>> {
        self.cached(|m| &mut m.apps_by_key, key, self.inner.get_app_by_consumer_key(key)).await
    }
    async fn list_apps(&self, org_id: &SfId) -> StoreResult<Vec<App>> {
        self.inner.list_apps(org_id).await
    }
    async fn update_app(&self, id: &SfId, patch: &AppPatch, now: Millis) -> StoreResult<()> {
        self.write(self.inner.update_app(id, patch, now)).await
    }
    async fn delete_app(&self, id: &SfId) -> StoreResult<()> {
        self.write(self.inner.delete_app(id)).await
    }
    async fn rotate_consumer_key(&self, app_id: &SfId, new_key: &str, now: Millis) -> StoreResult<()> {
        self.write(self.inner.rotate_consumer_key(app_id, new_key, now)).await
    }
    async fn retire_previous_consumer_key(&self, app_id: &SfId, now: Millis) -> StoreResult<()> {
        self.write(self.inner.retire_previous_consumer_key(app_id, now)).await
    }

    async fn insert_app_secret(&self, app_id: &SfId, hash: &TokenHash, sealed: &[u8], now: Millis) -> StoreResult<i64> {
        self.write(self.inner.insert_app_secret(app_id, hash, sealed, now)).await
    }
    async fn live_app_secrets(&self, app_id: &SfId) -> StoreResult<Vec<AppSecret>> {
        let found = self
            .cached(|m| &mut m.secrets, app_id, async { self.inner.live_app_secrets(app_id).await.map(Some) })
            .await?;
        Ok(found.unwrap_or_default())
    }
    async fn retire_app_secrets_except(&self, app_id: &SfId, keep: i64, now: Millis) -> StoreResult<u64> {
        self.write(self.inner.retire_app_secrets_except(app_id, keep, now)).await
    }

    // Consents are read once per authorization, not per token: not cached.
    async fn get_consent(&self, user_id: &SfId, app_id: &SfId) -> StoreResult<Option<Consent>> {
        self.inner.get_consent(user_id, app_id).await
    }
    async fn upsert_consent(&self, consent: &Consent) -> StoreResult<()> {
        self.inner.upsert_consent(consent).await
    }
    async fn delete_consent(&self, user_id: &SfId, app_id: &SfId) -> StoreResult<()> {
        self.inner.delete_consent(user_id, app_id).await
    }

    async fn insert_code(&self, code: &AuthCode) -> StoreResult<()> {
        self.inner.insert_code(code).await
    }
    async fn get_code(&self, hash: &TokenHash) -> StoreResult<Option<AuthCode>> {
        self.inner.get_code(hash).await
    }
    async fn consume_code(&self, hash: &TokenHash, family: &TokenFamily, now: Millis) -> StoreResult<bool> {
        self.inner.consume_code(hash, family, now).await
    }

    async fn insert_family(&self, family: &TokenFamily) -> StoreResult<()> {
        self.inner.insert_family(family).await
    }
    async fn get_family(&self, id: &str) -> StoreResult<Option<TokenFamily>> {
        self.inner.get_family(id).await
    }
    async fn revoke_family(&self, id: &str, now: Millis) -> StoreResult<()> {
        self.write(self.inner.revoke_family(id, now)).await
    }
    async fn insert_access_token(&self, token: &AccessToken) -> StoreResult<()> {
        self.inner.insert_access_token(token).await
    }
    async fn store_issuance(&self, issuance: Issuance) -> StoreResult<()> {
        self.inner.store_issuance(issuance).await
    }
    async fn get_access_token(&self, hash: &TokenHash) -> StoreResult<Option<AccessToken>> {
        self.cached(|m| &mut m.access_tokens, hash, self.inner.get_access_token(hash)).await
    }
    async fn revoke_access_token(&self, hash: &TokenHash, now: Millis) -> StoreResult<bool> {
        self.write(self.inner.revoke_access_token(hash, now)).await
    }
    async fn insert_refresh_token(&self, token: &RefreshToken) -> StoreResult<()> {
        self.inner.insert_refresh_token(token).await
    }
    async fn get_refresh_token(&self, hash: &TokenHash) -> StoreResult<Option<RefreshToken>> {
        self.inner.get_refresh_token(hash).await
    }
    async fn get_refresh_token_and_family(
        &self,
        hash: &TokenHash,
    ) -> StoreResult<Option<(RefreshToken, Option<TokenFamily>)>> {
        self.inner.get_refresh_token_and_family(hash).await
    }
    async fn rotate_refresh_token(
        &self,
        old: &TokenHash,
        new: &RefreshToken,
        successor_sealed: &[u8],
        now: Millis,
    ) -> StoreResult<bool> {
        self.inner.rotate_refresh_token(old, new, successor_sealed, now).await
    }
    async fn user_has_live_family(&self, user_id: &SfId, app_id: &SfId, now: Millis) -> StoreResult<bool> {
        self.inner.user_has_live_family(user_id, app_id, now).await
    }
    async fn revoke_user_families(&self, user_id: &SfId, app_id: Option<&SfId>, now: Millis) -> StoreResult<u64> {
        self.write(self.inner.revoke_user_families(user_id, app_id, now)).await
    }

    async fn insert_session(&self, session: &Session) -> StoreResult<()> {
        self.inner.insert_session(session).await
    }
    async fn get_session(&self, id_hash: &TokenHash) -> StoreResult<Option<Session>> {
        self.inner.get_session(id_hash).await
    }
    async fn delete_session(&self, id_hash: &TokenHash) -> StoreResult<()> {
        self.inner.delete_session(id_hash).await
    }
    async fn delete_user_sessions(&self, user_id: &SfId) -> StoreResult<()> {
        self.inner.delete_user_sessions(user_id).await
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> StoreResult<()> {
        self.inner.insert_signing_key(key).await
    }
    async fn list_signing_keys(&self) -> StoreResult<Vec<SigningKeyRecord>> {
        self.inner.list_signing_keys().await
    }

    async fn insert_initial_access_token(
        &self,
        hash: &TokenHash,
        org_id: &SfId,
        registrar_id: &SfId,
        now: Millis,
        expires_at: Option<Millis>,
    ) -> StoreResult<()> {
        self.inner.insert_initial_access_token(hash, org_id, registrar_id, now, expires_at).await
    }
    async fn get_initial_access_token(&self, hash: &TokenHash, now: Millis) -> StoreResult<Option<(SfId, SfId)>> {
        self.inner.get_initial_access_token(hash, now).await
    }
    async fn set_registration_token(&self, app_id: &SfId, hash: &TokenHash, now: Millis) -> StoreResult<()> {
        self.inner.set_registration_token(app_id, hash, now).await
    }
    async fn app_by_registration_token(&self, hash: &TokenHash) -> StoreResult<Option<SfId>> {
        self.inner.app_by_registration_token(hash).await
    }

    async fn insert_device_code(&self, code: &DeviceCode) -> StoreResult<()> {
        self.inner.insert_device_code(code).await
    }
    async fn get_device_code(&self, device_code_hash: &TokenHash) -> StoreResult<Option<DeviceCode>> {
        self.inner.get_device_code(device_code_hash).await
    }
    async fn get_device_code_by_user_code(&self, user_code_hash: &TokenHash) -> StoreResult<Option<DeviceCode>> {
        self.inner.get_device_code_by_user_code(user_code_hash).await
    }
    async fn decide_device_code(
        &self,
        device_code_hash: &TokenHash,
        status: DeviceStatus,
        user_id: &SfId,
        now: Millis,
    ) -> StoreResult<bool> {
        self.inner.decide_device_code(device_code_hash, status, user_id, now).await
    }
    async fn poll_device_code(&self, device_code_hash: &TokenHash, now: Millis) -> StoreResult<Option<Millis>> {
        self.inner.poll_device_code(device_code_hash, now).await
    }
    async fn consume_device_code(&self, device_code_hash: &TokenHash, now: Millis) -> StoreResult<bool> {
        self.inner.consume_device_code(device_code_hash, now).await
    }

    async fn remember_jti(&self, issuer: &str, jti: &str, expires_at: Millis) -> StoreResult<bool> {
        self.inner.remember_jti(issuer, jti, expires_at).await
    }

    async fn count_attempt(&self, key: &str, now: Millis, window_ms: i64) -> StoreResult<(u32, Millis)> {
        self.inner.count_attempt(key, now, window_ms).await
    }

    async fn attempts(&self, key: &str, now: Millis) -> StoreResult<u32> {
        self.inner.attempts(key, now).await
    }

    async fn forgive_attempt(&self, key: &str, clear: bool) -> StoreResult<()> {
        self.inner.forgive_attempt(key, clear).await
    }

    async fn insert_permission_set(&self, ps: &PermissionSet) -> StoreResult<()> {
        self.write(self.inner.insert_permission_set(ps)).await
    }
    async fn list_permission_sets(&self, org_id: &SfId) -> StoreResult<Vec<PermissionSet>> {
        self.inner.list_permission_sets(org_id).await
    }
    async fn delete_permission_set(&self, id: &SfId) -> StoreResult<()> {
        self.write(self.inner.delete_permission_set(id)).await
    }
    async fn assign_permission_set(&self, user_id: &SfId, ps_id: &SfId) -> StoreResult<()> {
        self.write(self.inner.assign_permission_set(user_id, ps_id)).await
    }
    async fn unassign_permission_set(&self, user_id: &SfId, ps_id: &SfId) -> StoreResult<()> {
        self.write(self.inner.unassign_permission_set(user_id, ps_id)).await
    }
    async fn user_permission_sets(&self, user_id: &SfId) -> StoreResult<Vec<String>> {
        let found = self
            .cached(|m| &mut m.permission_sets, user_id, async {
                self.inner.user_permission_sets(user_id).await.map(Some)
            })
            .await?;
        Ok(found.unwrap_or_default())
    }

    async fn insert_custom_permission(&self, cp: &CustomPermission) -> StoreResult<()> {
        self.write(self.inner.insert_custom_permission(cp)).await
    }
    async fn list_custom_permissions(&self, org_id: &SfId) -> StoreResult<Vec<CustomPermission>> {
        self.inner.list_custom_permissions(org_id).await
    }
    async fn update_custom_permission(&self, cp: &CustomPermission) -> StoreResult<()> {
        self.write(self.inner.update_custom_permission(cp)).await
    }
    async fn delete_custom_permission(&self, id: &SfId) -> StoreResult<()> {
        self.write(self.inner.delete_custom_permission(id)).await
    }
    async fn grant_custom_permission(&self, ps_id: &SfId, cp_id: &SfId) -> StoreResult<()> {
        self.write(self.inner.grant_custom_permission(ps_id, cp_id)).await
    }
    async fn revoke_custom_permission(&self, ps_id: &SfId, cp_id: &SfId) -> StoreResult<()> {
        self.write(self.inner.revoke_custom_permission(ps_id, cp_id)).await
    }
    async fn permission_set_custom_permissions(&self, ps_id: &SfId) -> StoreResult<Vec<String>> {
        self.inner.permission_set_custom_permissions(ps_id).await
    }
    async fn user_custom_permissions(&self, user_id: &SfId) -> StoreResult<Vec<String>> {
        let found = self
            .cached(|m| &mut m.custom_permissions, user_id, async {
                self.inner.user_custom_permissions(user_id).await.map(Some)
            })
            .await?;
        Ok(found.unwrap_or_default())
    }

    async fn sweep_expired(&self, now: Millis) -> StoreResult<SweepReport> {
        self.write(self.inner.sweep_expired(now)).await
    }
}
