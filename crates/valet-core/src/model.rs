//! The records Valet keeps: orgs, users, apps (with their policies), consents, codes, tokens,
//! sessions and signing keys. Plain data; the engine gives them behaviour.

use serde::{Deserialize, Serialize};

use crate::clock::Millis;
use crate::ids::SfId;
use crate::scope::ScopeSet;
use crate::secret::TokenHash;

/// Org-wide settings (Setup > OAuth and OpenID Connect Settings).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct OrgSettings {
    /// "Allow OAuth Username-Password Flows": off by default (orgs since Summer '23).
    pub allow_username_password_flow: bool,
    /// "Allow OAuth User-Agent Flows"; blocking it also blocks the hybrid token flow.
    pub allow_user_agent_flow: bool,
    /// "Allow Authorization Code and Credentials Flows".
    pub allow_code_credentials_flow: bool,
    /// "Require PKCE for supported authorization flows", org-wide.
    pub require_pkce: bool,
    /// "Limit the idle refresh token TTL" (30 days) when set.
    pub idle_refresh_token_ttl_days: Option<u32>,
}

impl Default for OrgSettings {
    fn default() -> Self {
        OrgSettings {
            allow_username_password_flow: false,
            allow_user_agent_flow: true,
            allow_code_credentials_flow: false,
            require_pkce: false,
            idle_refresh_token_ttl_days: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Org {
    pub id: SfId,
    pub name: String,
    pub settings: OrgSettings,
    pub created_at: Millis,
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: SfId,
    pub org_id: SfId,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// Argon2id PHC string; never leaves the engine.
    pub password_hash: String,
    pub active: bool,
    pub is_admin: bool,
    pub timezone: String,
    pub locale: String,
    pub language: String,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl User {
    pub fn display_name(&self) -> String {
        match (self.first_name.is_empty(), self.last_name.is_empty()) {
            (true, true) => self.username.clone(),
            (false, true) => self.first_name.clone(),
            (true, false) => self.last_name.clone(),
            (false, false) => format!("{} {}", self.first_name, self.last_name),
        }
    }
}

/// Who may use an app (salesforce-wire.md §8.1).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum PermittedUsers {
    /// Users see the approval page on first use.
    #[default]
    AllSelfAuthorized,
    /// No approval page; only users with an assigned permission set may use the app.
    AdminApprovedPreAuthorized,
}

/// IP relaxation (salesforce-wire.md §8.2).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
pub enum IpRelaxation {
    #[default]
    Enforce,
    EnforceRelaxRefresh,
    Bypass2Factor,
    Bypass,
}

/// The JWS algorithm of a signing key, and of an app's JWT access tokens.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, Default)]
pub enum JwsAlg {
    /// RSA-2048 PKCS#1 v1.5 with SHA-256: Salesforce's, and the only one of ID tokens.
    #[default]
    #[serde(rename = "RS256")]
    Rs256,
    /// ECDSA P-256 with SHA-256: about fifteen times cheaper to sign than RS256.
    #[serde(rename = "ES256")]
    Es256,
}

impl JwsAlg {
    pub const ALL: [JwsAlg; 2] = [JwsAlg::Rs256, JwsAlg::Es256];

    /// The JOSE name: the header's `alg` and the stored key's `alg` column.
    pub fn as_str(self) -> &'static str {
        match self {
            JwsAlg::Rs256 => "RS256",
            JwsAlg::Es256 => "ES256",
        }
    }

    pub fn parse(s: &str) -> Option<JwsAlg> {
        JwsAlg::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// Refresh-token policy (salesforce-wire.md §8.3).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RefreshTokenPolicy {
    #[default]
    ValidUntilRevoked,
    ExpireImmediately,
    /// Absolute lifetime.
    ExpireAfter {
        minutes: u64,
    },
    /// Idle lifetime: expires when not used for this long.
    ExpireIfUnused {
        minutes: u64,
    },
}

/// ID token settings ("Configure ID token", salesforce-wire.md §6.7, §8.5).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct IdTokenSettings {
    /// 1 to 720 minutes; default 2.
    pub valid_minutes: u32,
    /// Extra audiences beside the consumer key.
    pub audiences: Vec<String>,
    pub include_standard_claims: bool,
    pub include_custom_attributes: bool,
    pub include_custom_permissions: bool,
}

impl Default for IdTokenSettings {
    fn default() -> Self {
        IdTokenSettings {
            valid_minutes: 2,
            audiences: Vec::new(),
            include_standard_claims: false,
            include_custom_attributes: false,
            include_custom_permissions: false,
        }
    }
}

/// Asset token settings (salesforce-wire.md §4.10).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AssetTokenSettings {
    pub enabled: bool,
    pub valid_minutes: u32,
    pub audiences: Vec<String>,
    pub include_custom_attributes: bool,
    pub include_custom_permissions: bool,
}

impl Default for AssetTokenSettings {
    fn default() -> Self {
        AssetTokenSettings {
            enabled: false,
            valid_minutes: 1,
            audiences: Vec::new(),
            include_custom_attributes: false,
            include_custom_permissions: false,
        }
    }
}

/// Every per-app setting Salesforce documents, as data (salesforce-wire.md §8.5). Later flows read
/// the switches that concern them; the admin CLI and API edit them as JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AppPolicy {
    pub permitted_users: PermittedUsers,
    /// Permission sets whose users are pre-authorized (admin-approved apps).
    pub permission_sets: Vec<String>,
    /// The custom permissions the app uses (Salesforce's "Custom Permissions" related list):
    /// with `include_custom_permissions`, its tokens tell for each whether the user holds it.
    pub custom_permissions: Vec<String>,
    pub ip_relaxation: IpRelaxation,
    pub refresh_token_policy: RefreshTokenPolicy,
    pub refresh_token_rotation: bool,
    /// With rotation: how long a retry with the previous token still gets the same successor
    /// (instead of being treated as reuse, which revokes the family).
    pub refresh_token_grace_seconds: u32,
    /// Access-token lifetime ("Timeout value"); default 2 hours.
    pub session_timeout_minutes: u32,
    pub require_secret_for_web_server_flow: bool,
    pub require_secret_for_refresh_token_flow: bool,
    pub require_pkce: bool,
    pub enable_authorization_code_flow: bool,
    pub enable_user_agent_flow: bool,
    pub enable_device_flow: bool,
    pub enable_client_credentials_flow: bool,
    /// Username of the "Run As" user for the client credentials flow.
    pub client_credentials_user: Option<String>,
    pub enable_code_credentials_flow: bool,
    pub enable_token_exchange_flow: bool,
    pub token_exchange_require_secret: bool,
    /// External identity providers whose tokens this app may exchange for Valet tokens.
    pub token_exchange_issuers: Vec<TrustedIssuer>,
    pub enable_jwt_bearer_flow: bool,
    /// "Use digital signatures": PEM certificate for JWT bearer (at most 4 KB).
    pub jwt_certificate_pem: Option<String>,
    pub jwt_access_tokens: bool,
    /// Named-user JWT access-token lifetime: 1, 5, 10, 15 or 30 minutes.
    pub jwt_access_token_minutes: u32,
    /// How JWT access tokens are signed: RS256 as Salesforce, or ES256 for resource servers
    /// that accept it (much cheaper to sign). ID tokens are RS256 either way.
    pub jwt_access_token_alg: JwsAlg,
    pub introspect_all_tokens: bool,
    pub id_token: IdTokenSettings,
    pub asset_tokens: AssetTokenSettings,
    pub single_logout_url: Option<String>,
    /// Where RP-initiated logout may send the browser afterwards (exact match).
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_url: Option<String>,
    pub custom_attributes: std::collections::BTreeMap<String, String>,
    /// The registrar app whose initial access token registered this app (RFC 7591); the
    /// registrar may introspect this app's tokens.
    pub registered_by: Option<String>,
    /// IP ranges (`a.b.c.d-e.f.g.h` or CIDR) enforced unless relaxed.
    pub ip_ranges: Vec<String>,
    /// Native apps (RFC 8252 §7.3): an `http` callback on a loopback IP literal
    /// (`http://127.0.0.1/cb`, `http://[::1]/cb`) also matches the same URL on any port, since
    /// the app listens on whatever port the OS gives it. Off unless an admin turns it on.
    pub loopback_redirect_any_port: bool,
}

impl Default for AppPolicy {
    fn default() -> Self {
        AppPolicy {
            permitted_users: PermittedUsers::AllSelfAuthorized,
            permission_sets: Vec::new(),
            custom_permissions: Vec::new(),
            ip_relaxation: IpRelaxation::Enforce,
            refresh_token_policy: RefreshTokenPolicy::ValidUntilRevoked,
            refresh_token_rotation: false,
            refresh_token_grace_seconds: 30,
            session_timeout_minutes: 120,
            require_secret_for_web_server_flow: true,
            require_secret_for_refresh_token_flow: true,
            require_pkce: false,
            enable_authorization_code_flow: true,
            enable_user_agent_flow: true,
            enable_device_flow: false,
            enable_client_credentials_flow: false,
            client_credentials_user: None,
            enable_code_credentials_flow: false,
            enable_token_exchange_flow: false,
            token_exchange_require_secret: true,
            token_exchange_issuers: Vec::new(),
            enable_jwt_bearer_flow: false,
            jwt_certificate_pem: None,
            jwt_access_tokens: false,
            jwt_access_token_minutes: 30,
            jwt_access_token_alg: JwsAlg::Rs256,
            introspect_all_tokens: false,
            id_token: IdTokenSettings::default(),
            asset_tokens: AssetTokenSettings::default(),
            single_logout_url: None,
            post_logout_redirect_uris: Vec::new(),
            backchannel_logout_url: None,
            custom_attributes: Default::default(),
            registered_by: None,
            ip_ranges: Vec::new(),
            loopback_redirect_any_port: false,
        }
    }
}

/// An external issuer trusted for token exchange (RFC 8693): its signing keys, the audience
/// its tokens must carry, and the claim that names the Valet user (matched to usernames).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TrustedIssuer {
    pub issuer: String,
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// Where to fetch the issuer's JWKS (cached for five minutes).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Or a static JWK set (`{"keys": [...]}`).
    #[serde(default)]
    pub jwks: Option<serde_json::Value>,
    /// Or a static PEM certificate.
    #[serde(default)]
    pub certificate_pem: Option<String>,
}

fn default_user_claim() -> String {
    "sub".into()
}

/// An external client app (connected app).
#[derive(Debug, Clone)]
pub struct App {
    pub id: SfId,
    pub org_id: SfId,
    pub name: String,
    pub consumer_key: String,
    /// During a staged key rotation, the old key, still accepted until retired.
    pub previous_consumer_key: Option<String>,
    /// A public client has no secret (e.g. the sf CLI's `PlatformCLI`).
    pub is_public: bool,
    pub callback_urls: Vec<String>,
    pub scopes: ScopeSet,
    pub policy: AppPolicy,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// One consumer secret. Several can be live during a staged rotation.
#[derive(Debug, Clone)]
pub struct AppSecret {
    pub id: i64,
    pub app_id: SfId,
    pub secret_hash: TokenHash,
    /// The secret encrypted under the master key (AES-256-GCM), for the one use that needs
    /// the plaintext: verifying `client_secret_jwt` assertions (HMAC keyed by the secret).
    pub secret_sealed: Vec<u8>,
    pub created_at: Millis,
    pub retired_at: Option<Millis>,
}

/// A user's remembered approval of an app for a set of scopes.
#[derive(Debug, Clone)]
pub struct Consent {
    pub user_id: SfId,
    pub app_id: SfId,
    pub scopes: ScopeSet,
    pub created_at: Millis,
}

/// PKCE challenge method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PkceMethod {
    S256,
    Plain,
}

impl PkceMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            PkceMethod::S256 => "S256",
            PkceMethod::Plain => "plain",
        }
    }
    pub fn from_stored(s: &str) -> Option<Self> {
        match s {
            "S256" => Some(PkceMethod::S256),
            "plain" => Some(PkceMethod::Plain),
            _ => None,
        }
    }
}

/// An authorization code, stored by hash. `family_id` is set when it is redeemed, so a replay
/// can find and revoke what the first redemption issued.
#[derive(Debug, Clone)]
pub struct AuthCode {
    pub code_hash: TokenHash,
    pub org_id: SfId,
    pub app_id: SfId,
    pub user_id: SfId,
    pub redirect_uri: String,
    pub scopes: ScopeSet,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<PkceMethod>,
    pub nonce: Option<String>,
    pub auth_time: Millis,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub consumed_at: Option<Millis>,
    pub family_id: Option<String>,
}

/// A token family: everything issued from one authorization (a code redemption, a device
/// approval, ...). Revoking the family revokes every access and refresh token in it.
#[derive(Debug, Clone)]
pub struct TokenFamily {
    pub id: String,
    pub org_id: SfId,
    pub app_id: SfId,
    pub user_id: SfId,
    pub scopes: ScopeSet,
    /// Which grant created it (`authorization_code`, `client_credentials`, ...).
    pub grant: String,
    pub auth_time: Millis,
    pub created_at: Millis,
    pub revoked_at: Option<Millis>,
}

/// An opaque access token, by hash.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token_hash: TokenHash,
    pub family_id: String,
    pub org_id: SfId,
    pub app_id: SfId,
    pub user_id: SfId,
    pub scopes: ScopeSet,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub revoked_at: Option<Millis>,
}

/// A refresh token, by hash. With rotation, `replaced_by` links it to its successor.
#[derive(Debug, Clone)]
pub struct RefreshToken {
    pub token_hash: TokenHash,
    pub family_id: String,
    pub org_id: SfId,
    pub app_id: SfId,
    pub user_id: SfId,
    pub scopes: ScopeSet,
    pub created_at: Millis,
    pub last_used_at: Millis,
    /// Absolute expiry from the app's refresh-token policy, if any.
    pub expires_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    pub replaced_by: Option<TokenHash>,
    /// After a rotation: the successor token sealed under the master key, so a retry within
    /// the grace window gets the same successor.
    pub successor_sealed: Option<Vec<u8>>,
}

/// A browser session at Valet's own pages.
#[derive(Debug, Clone)]
pub struct Session {
    pub id_hash: TokenHash,
    pub org_id: SfId,
    pub user_id: SfId,
    pub auth_time: Millis,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// A signing key (RSA for RS256, EC P-256 for ES256; `alg` says which). The private part is
/// stored as PKCS#8 DER encrypted under the master key.
#[derive(Debug, Clone)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: String,
    pub private_der_encrypted: Vec<u8>,
    pub created_at: Millis,
    pub active: bool,
}

/// Where a device authorization stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    Pending,
    Approved,
    Denied,
    /// Tokens were issued; the device code is spent.
    Consumed,
}

impl DeviceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceStatus::Pending => "pending",
            DeviceStatus::Approved => "approved",
            DeviceStatus::Denied => "denied",
            DeviceStatus::Consumed => "consumed",
        }
    }
    pub fn from_stored(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeviceStatus::Pending,
            "approved" => DeviceStatus::Approved,
            "denied" => DeviceStatus::Denied,
            "consumed" => DeviceStatus::Consumed,
            _ => return None,
        })
    }
}

/// A device authorization (Salesforce's device flow and RFC 8628). Both the device code and
/// the user code are stored only as hashes.
#[derive(Debug, Clone)]
pub struct DeviceCode {
    pub device_code_hash: TokenHash,
    pub user_code_hash: TokenHash,
    pub org_id: SfId,
    pub app_id: SfId,
    pub scopes: ScopeSet,
    pub status: DeviceStatus,
    /// The user who approved or denied it.
    pub user_id: Option<SfId>,
    pub interval_secs: i64,
    pub last_polled_at: Option<Millis>,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// A named set of permissions; assigning one to a user pre-authorizes them for the
/// admin-approved apps that list it (salesforce-wire.md §8.1).
#[derive(Debug, Clone)]
pub struct PermissionSet {
    pub id: SfId,
    pub org_id: SfId,
    pub name: String,
    pub label: String,
    pub created_at: Millis,
}

/// A custom permission (Setup > Custom Permissions): a named capability an app checks. Users
/// hold it through the permission sets that grant it; apps list the ones they use.
#[derive(Debug, Clone)]
pub struct CustomPermission {
    pub id: SfId,
    pub org_id: SfId,
    /// The API name (`Can_Approve`), unique in the org whatever its case.
    pub name: String,
    pub label: String,
    pub description: Option<String>,
    pub created_at: Millis,
}

/// JSON merge patch (RFC 7386: objects merge, `null` removes a key so that it returns to its
/// default), with one addition for tagged enums such as `refresh_token_policy`: a string
/// replaces an object that has a `kind` with `{"kind": string}`, and an object with another
/// `kind` replaces it whole. The CLI's `--policy-json` and the admin API's PATCH share it.
pub fn merge_patch(target: &mut serde_json::Value, patch: serde_json::Value) {
    use serde_json::{Map, Value};
    match patch {
        Value::Object(patch) => {
            let replace = match target {
                Value::Object(t) => match (t.get("kind"), patch.get("kind")) {
                    (Some(a), Some(b)) => a != b,
                    _ => false,
                },
                _ => true,
            };
            if replace {
                *target = Value::Object(Map::new());
            }
            if let Value::Object(t) = target {
                for (k, v) in patch {
                    if v.is_null() {
                        t.remove(&k);
                    } else {
                        merge_patch(t.entry(k).or_insert(Value::Null), v);
                    }
                }
            }
        }
        Value::String(s) if target.as_object().is_some_and(|o| o.contains_key("kind")) => {
            let mut m = Map::new();
            m.insert("kind".into(), Value::String(s));
            *target = Value::Object(m);
        }
        other => *target = other,
    }
}

/// Reads settings that Valet itself stored, tolerating keys a newer Valet added: during a
/// rolling upgrade an older node must keep serving apps a newer node has edited. (Input from
/// admins stays strict: unknown keys there are typos and are refused with their name.)
pub fn from_stored_json<T>(text: &str) -> Result<T, serde_json::Error>
where
    T: serde::de::DeserializeOwned + serde::Serialize + Default,
{
    let value: serde_json::Value = serde_json::from_str(text)?;
    match serde_json::from_value::<T>(value.clone()) {
        Ok(v) => Ok(v),
        Err(strict) => {
            let Ok(shape) = serde_json::to_value(T::default()) else { return Err(strict) };
            let mut pruned = value;
            prune_unknown(&mut pruned, &shape);
            serde_json::from_value(pruned).map_err(|_| strict)
        }
    }
}

/// Drops object keys that the default value's shape does not have, descending into nested
/// structs (objects with keys in the shape) but not into maps or lists, whose keys are data.
fn prune_unknown(value: &mut serde_json::Value, shape: &serde_json::Value) {
    if let (serde_json::Value::Object(v), serde_json::Value::Object(s)) = (value, shape) {
        if s.is_empty() {
            return; // a map (e.g. custom attributes): every key is data
        }
        v.retain(|k, _| s.contains_key(k));
        for (k, child) in v.iter_mut() {
            if let Some(child_shape) = s.get(k) {
                if child_shape.get("kind").is_none() {
                    prune_unknown(child, child_shape);
                }
            }
        }
    }
}

/// Custom attributes as the JSON object ID tokens, asset tokens and the identity URL carry
/// (built directly: a string map always makes an object).
pub fn attributes_json(attributes: &std::collections::BTreeMap<String, String>) -> serde_json::Value {
    serde_json::Value::Object(
        attributes.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect(),
    )
}

#[cfg(test)]
mod stored_json_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn newer_keys_are_tolerated_when_reading_stored_policies() {
        let text = r#"{"require_pkce": true, "from_the_future": 1, "id_token": {"valid_minutes": 5, "also_new": true}, "custom_attributes": {"k": "v"}}"#;
        let p: AppPolicy = from_stored_json(text).unwrap();
        assert!(p.require_pkce);
        assert_eq!(p.id_token.valid_minutes, 5);
        assert_eq!(p.custom_attributes.get("k").map(String::as_str), Some("v"));
        assert!(serde_json::from_str::<AppPolicy>(text).is_err(), "admin input stays strict");
        let s: OrgSettings = from_stored_json(r#"{"require_pkce": true, "new_block": false}"#).unwrap();
        assert!(s.require_pkce);
    }

    #[test]
    fn custom_permissions_default_to_none() {
        let old: AppPolicy = from_stored_json(r#"{"permission_sets": ["Integrations"]}"#).unwrap();
        assert!(old.custom_permissions.is_empty(), "policies stored before the field read as before");
        let p: AppPolicy = serde_json::from_str(r#"{"custom_permissions": ["Can_Approve"]}"#).unwrap();
        assert_eq!(p.custom_permissions, ["Can_Approve"]);
    }

    #[test]
    fn jwt_access_token_alg_defaults_to_rs256() {
        let old: AppPolicy = from_stored_json(r#"{"jwt_access_tokens": true}"#).unwrap();
        assert_eq!(old.jwt_access_token_alg, JwsAlg::Rs256, "policies stored before the option read as before");
        let p: AppPolicy = serde_json::from_str(r#"{"jwt_access_token_alg": "ES256"}"#).unwrap();
        assert_eq!(p.jwt_access_token_alg, JwsAlg::Es256);
        assert_eq!(serde_json::to_value(p).unwrap()["jwt_access_token_alg"], "ES256");
        for bad in [r#""es256""#, r#""HS256""#, r#""none""#, "1"] {
            assert!(
                serde_json::from_str::<AppPolicy>(&format!(r#"{{"jwt_access_token_alg": {bad}}}"#)).is_err(),
                "{bad}"
            );
        }
    }
}
