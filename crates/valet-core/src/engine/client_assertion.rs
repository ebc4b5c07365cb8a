//! Client authentication by signed JWT (RFC 7523 §2.2, OIDC Core §9): `private_key_jwt`
//! verified with the app's certificate, `client_secret_jwt` with its (sealed) secret. Every
//! assertion's `jti` is remembered until it expires, so none can be replayed.

use valet_proto::OAuthError;

use crate::model::App;

use super::admin::CLIENT_SECRET_PURPOSE;
use super::jwt::{TimeRules, UnverifiedJwt};
use super::token::TokenError;
use super::Engine;

pub const CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// A minute of clock skew; assertions may not claim to live longer than an hour (bounds the
/// replay table).
const ASSERTION_TIMES: TimeRules = TimeRules { skew_secs: 60, max_lifetime_secs: Some(3600) };

/// The `iss` of an assertion, read without verifying it: only to know which client to load.
pub fn unverified_client_id(assertion: &str) -> Option<String> {
    super::jwt::unverified_claims(assertion, 16 * 1024)?.get("iss")?.as_str().map(str::to_string)
}

impl Engine {
    pub(crate) async fn verify_client_assertion(&self, app: &App, assertion: &str) -> Result<(), TokenError> {
        let bad = || TokenError::OAuth(OAuthError::invalid_client());
        let jwt = UnverifiedJwt::parse_with(assertion, &["RS256", "HS256"]).ok_or_else(bad)?;
        let verified = match jwt.alg.as_str() {
            "RS256" => app.policy.jwt_certificate_pem.as_deref().is_some_and(|pem| jwt.verify_with_certificate(pem)),
            "HS256" => {
                let mut ok = false;
                for s in self.store.live_app_secrets(&app.id).await? {
                    if let Ok(plain) = self.master.open_for(CLIENT_SECRET_PURPOSE, &s.secret_sealed) {
                        ok |= jwt.verify_hs256(&plain);
                    }
                }
                ok
            }
            _ => false,
        };
        if !verified {
            return Err(bad());
        }
        let c = &jwt.claims;
        let str_claim = |k: &str| c.get(k).and_then(|v| v.as_str());
        if str_claim("iss") != Some(app.consumer_key.as_str()) || str_claim("sub") != Some(app.consumer_key.as_str()) {
            return Err(bad());
        }
        // The audience is the token endpoint (or, leniently, the issuer itself).
        let token_endpoint = format!("{}/services/oauth2/token", self.config.issuer);
        let aud_ok = match c.get("aud") {
            Some(serde_json::Value::String(a)) => {
                a == &token_endpoint || self.audience_ok(Some(&serde_json::Value::String(a.clone())))
            }
            Some(serde_json::Value::Array(v)) => v
                .iter()
                .filter_map(|x| x.as_str())
                .any(|a| a == token_endpoint || a.trim_end_matches('/') == self.config.issuer),
            _ => false,
        };
        if !aud_ok {
            return Err(bad());
        }
        let now = self.clock.now_secs();
        let exp = jwt.check_times(now, ASSERTION_TIMES).map_err(|_| bad())?;
        let jti = str_claim("jti").filter(|j| !j.is_empty() && j.len() <= 256).ok_or_else(bad)?;
        if !self.store.remember_jti(&app.consumer_key, jti, (exp + ASSERTION_TIMES.skew_secs) * 1000).await? {
            tracing::warn!(app = %app.id, "client assertion replayed");
            return Err(bad());
        }
        Ok(())
    }
}
