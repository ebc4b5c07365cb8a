//! Discovery, JWKS, introspection, userinfo and the identity service, in Salesforce's shapes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `/.well-known/openid-configuration` (salesforce-wire.md §6.5), plus the standard members generic
/// clients look for (Salesforce omits some; adding them breaks no Salesforce client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    pub introspection_endpoint: String,
    pub registration_endpoint: String,
    pub end_session_endpoint: String,
    pub device_authorization_endpoint: String,
    pub scopes_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub grant_types_supported: Vec<String>,
    pub subject_types_supported: Vec<String>,
    pub id_token_signing_alg_values_supported: Vec<String>,
    pub display_values_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub code_challenge_methods_supported: Vec<String>,
    pub claims_supported: Vec<String>,
    /// OIDC Back-Channel Logout 1.0 §2.1: a missing flag means "not supported".
    pub backchannel_logout_supported: bool,
    /// Whether logout tokens carry `sid` (they do not: a logout ends all the user's sessions).
    pub backchannel_logout_session_supported: bool,
    /// OIDC Front-Channel Logout 1.0 §3: the apps' single logout URLs are loaded in frames.
    pub frontchannel_logout_supported: bool,
    pub frontchannel_logout_session_supported: bool,
    /// OIDC Discovery §3: request objects are refused with `request_not_supported`.
    pub request_parameter_supported: bool,
    pub request_uri_parameter_supported: bool,
}

/// A public key of `/id/keys`: RSA keys carry `n` and `e`, EC keys `crv`, `x` and `y`; the
/// other kind's members are left out, so RSA keys read exactly as Salesforce's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub kid: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// RFC 7662 response in Salesforce's shape (salesforce-wire.md §6.2): `sub` is the identity URL and
/// `token_type` is `access_token` or `refresh_token`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Photos {
    pub picture: String,
    pub thumbnail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    pub country: Option<String>,
}

/// `/services/oauth2/userinfo` (salesforce-wire.md §6.3). `updated_at` is an ISO string and `utcOffset` is
/// in milliseconds, as Salesforce sends them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub sub: String,
    pub user_id: String,
    pub organization_id: String,
    pub preferred_username: String,
    pub nickname: String,
    pub name: String,
    pub email: String,
    pub email_verified: bool,
    pub given_name: String,
    pub family_name: String,
    pub zoneinfo: String,
    pub photos: Photos,
    pub profile: String,
    pub picture: String,
    pub address: Address,
    pub is_salesforce_integration_user: bool,
    pub urls: BTreeMap<String, String>,
    pub active: bool,
    pub user_type: String,
    pub language: String,
    pub locale: String,
    #[serde(rename = "utcOffset")]
    pub utc_offset: i64,
    pub updated_at: String,
    pub is_app_installed: bool,
    /// The app's custom permissions, each true when the user holds it; only when the app asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_permissions: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityStatus {
    pub created_date: Option<String>,
    pub body: Option<String>,
}

/// The identity service, `/id/<org>/<user>` (salesforce-wire.md §6.4). Every key is always present (the
/// Mobile SDK reads them with mandatory getters), `null` where there is no value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub id: String,
    pub asserted_user: bool,
    pub user_id: String,
    pub organization_id: String,
    pub username: String,
    pub nick_name: String,
    pub display_name: String,
    pub email: String,
    pub email_verified: bool,
    pub first_name: Option<String>,
    pub last_name: String,
    pub timezone: String,
    pub photos: Photos,
    pub addr_street: Option<String>,
    pub addr_city: Option<String>,
    pub addr_state: Option<String>,
    pub addr_country: Option<String>,
    pub addr_zip: Option<String>,
    pub mobile_phone: Option<String>,
    pub mobile_phone_verified: bool,
    pub is_lightning_login_user: bool,
    pub status: IdentityStatus,
    pub urls: BTreeMap<String, String>,
    pub active: bool,
    pub user_type: String,
    pub language: String,
    pub locale: String,
    #[serde(rename = "utcOffset")]
    pub utc_offset: i64,
    pub last_modified_date: String,
    pub is_app_installed: bool,
    /// As in [`UserInfo`]: present only when the token's app asks for custom permissions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_permissions: Option<serde_json::Map<String, serde_json::Value>>,
}
