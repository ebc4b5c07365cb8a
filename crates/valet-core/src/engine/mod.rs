//! The engine: one value holding storage, clock, RNG, keys and configuration, with one method
//! per protocol operation. Handlers parse requests into typed values, call one method here,
//! and render the result; no policy lives in a handler.

pub mod admin;
pub mod admin_token;
pub mod authorize;
pub mod bearer;
pub mod client_assertion;
pub mod client_auth;
pub mod custom_permissions;
pub mod device;
pub mod exchange;
pub mod grants;
pub mod ip;
pub mod issue;
pub mod jwt;
pub mod logout;
pub mod password;
pub mod registration;
pub mod resource;
pub mod throttle;
pub mod token;

use std::sync::{Arc, RwLock};

use crate::cache::CachedStore;
use crate::clock::Clock;
use crate::ids::SfId;
use crate::keys::{KeyError, KeyRing, MasterKey, SigningKey};
use crate::model::{JwsAlg, SigningKeyRecord};
use crate::rand::Random;
use crate::store::{Store, StoreError};

/// Settings the engine needs from the deployment.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The login host as clients see it (`https://login.example.com`), no trailing slash. It is
    /// the ID-token issuer and the host of identity URLs.
    pub issuer: String,
    /// Where the REST API is served: a bare origin, no path, no trailing slash.
    pub instance_url: String,
    /// Authorization codes live 15 minutes, as Salesforce's do.
    pub code_lifetime_ms: i64,
    /// Browser sessions at Valet's pages.
    pub session_lifetime_ms: i64,
    /// Audiences accepted in JWT bearer assertions besides the issuer: clients such as
    /// simple-salesforce hard-code Salesforce's login hosts.
    pub audience_aliases: Vec<String>,
    /// How often the engine's cache checks the database's change counter, so that changes
    /// made by another process (the CLI, another node) apply within this long. Changes made
    /// through this engine apply at once.
    pub change_poll: std::time::Duration,
    /// Proxies (addresses or ranges, as app IP ranges are written) whose `X-Forwarded-For`
    /// is believed; from anyone else the TCP peer is the client (see [`ip::client_address`]).
    pub trusted_proxies: Vec<String>,
    /// Whether back-channel logout may be sent to plain `http` and to loopback, private and
    /// link-local addresses: a development setting, off by default (SSRF).
    pub allow_private_outbound: bool,
}

impl EngineConfig {
    pub fn new(public_url: &str) -> Self {
        let base = public_url.trim_end_matches('/').to_string();
        EngineConfig {
            issuer: base.clone(),
            instance_url: base,
            code_lifetime_ms: 15 * 60 * 1000,
            session_lifetime_ms: 12 * 60 * 60 * 1000,
            audience_aliases: vec!["https://login.salesforce.com".into(), "https://test.salesforce.com".into()],
            change_poll: std::time::Duration::from_millis(250),
            trusted_proxies: Vec::new(),
            allow_private_outbound: false,
        }
    }
}

/// Failures of the engine that are not protocol errors: storage or crypto faults.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("internal error: {0}")]
    Internal(String),
}

pub struct Engine {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: Arc<dyn Random>,
    pub(crate) master: MasterKey,
    pub(crate) keys: RwLock<Arc<KeyRing>>,
    pub(crate) config: EngineConfig,
    pub(crate) fetcher: RwLock<Option<Arc<dyn exchange::Fetcher>>>,
    pub(crate) jwks_cache: exchange::JwksCache,
}

impl Engine {
    /// Builds the engine, loading the signing keys (and creating the RS256 and ES256 ones when
    /// missing). The engine reads through a [`CachedStore`] over `store`, watched on the
    /// current tokio runtime; [`Engine::store`] is that cached store, so writes through it
    /// invalidate the cache.
    pub async fn start(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Random>,
        master: MasterKey,
        config: EngineConfig,
    ) -> Result<Engine, EngineError> {
        let ring = load_or_create_keys(store.as_ref(), clock.as_ref(), &master).await?;
        let cached = Arc::new(CachedStore::new(store));
        cached.watch(config.change_poll);
        Ok(Engine {
            store: cached,
            clock,
            rng,
            master,
            keys: RwLock::new(Arc::new(ring)),
            config,
            fetcher: RwLock::new(None),
            jwks_cache: exchange::JwksCache::default(),
        })
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }
    pub fn rng(&self) -> &dyn Random {
        self.rng.as_ref()
    }
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn keys(&self) -> Arc<KeyRing> {
        match self.keys.read() {
            Ok(k) => k.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The client's address for a request from `peer` carrying these `X-Forwarded-For`
    /// headers: forwarded addresses count only from the configured trusted proxies.
    pub fn client_address(&self, peer: Option<std::net::IpAddr>, forwarded_for: &[&str]) -> Option<std::net::IpAddr> {
        ip::client_address(peer, forwarded_for, &self.config.trusted_proxies)
    }

    /// `https://<login host>/id/<org18>/<user18>`: the `id` of token responses and the `sub`
    /// of ID tokens, userinfo and introspection.
    pub fn identity_url(&self, org: &SfId, user: &SfId) -> String {
        format!("{}/id/{}/{}", self.config.issuer, org, user)
    }

    /// A token family id: the creation time (milliseconds in base 62, fixed width, so ids sort
    /// by time) then 14 random characters. Consecutive families then land on the same index
    /// pages instead of a random page each, and pages written are most of what storing a
    /// token costs.
    pub(crate) fn new_family_id(&self) -> String {
        let mut id = crate::clock::sortable(self.clock.now_ms());
        id.push_str(&crate::rand::alnum(self.rng.as_ref(), 14));
        id
    }
}

/// Loads the signing keys, first creating whichever of the RS256 and ES256 keys is missing:
/// both on an empty database, the ES256 one on a database from before ES256 access tokens.
async fn load_or_create_keys(store: &dyn Store, clock: &dyn Clock, master: &MasterKey) -> Result<KeyRing, EngineError> {
    // Each pass adds one missing key (or loses the race for it), so this ends after a few.
    for _ in 0..2 * JwsAlg::ALL.len() + 1 {
        let records = store.list_signing_keys().await?;
        let Some(missing) = JwsAlg::ALL.into_iter().find(|alg| !records.iter().any(|r| r.alg == alg.as_str())) else {
            return Ok(KeyRing::from_records(&records, master)?);
        };
        let (_, record) = SigningKey::generate(missing, next_kid(&records), master, clock.now_ms())?;
        match store.insert_signing_key(&record).await {
            // Another process created a key with this kid at the same moment: list again, and
            // use theirs if it was this one.
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(EngineError::Internal("the signing keys could not be created".into()))
}

/// Kids are short numeric strings, as Salesforce's: one more than the largest so far.
fn next_kid(records: &[SigningKeyRecord]) -> String {
    let max = records.iter().filter_map(|r| r.kid.parse::<u64>().ok()).max().unwrap_or(0);
    (max + 1).to_string()
}
