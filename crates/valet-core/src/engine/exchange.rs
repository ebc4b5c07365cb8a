//! Token exchange (RFC 8693, salesforce-wire.md §4.9): a token from a trusted external issuer becomes a
//! Valet token for the user it names; and asset tokens (salesforce-wire.md §4.10): a Valet access token plus
//! an actor token describing a device become a signed asset JWT.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use valet_proto::token::TokenResponse;
use valet_proto::OAuthError;

use crate::clock::Millis;
use crate::model::*;
use crate::scope::ScopeSet;

use super::issue::Issue;
use super::jwt::{TimeFault, TimeRules, UnverifiedJwt};
use super::token::{Client, ClientAuth, TokenError};
use super::{Engine, EngineError};

pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
pub const TOKEN_TYPE_ID_TOKEN: &str = "urn:ietf:params:oauth:token-type:id_token";
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWKS_TTL_MS: i64 = 5 * 60 * 1000;
/// A minute of clock skew for external tokens; their lifetime is their issuer's business.
const SUBJECT_TIMES: TimeRules = TimeRules { skew_secs: 60, max_lifetime_secs: None };

/// Fetches documents over HTTP for the engine (JWKS of external issuers). The server
/// provides the implementation; the engine stays free of HTTP.
#[async_trait::async_trait]
pub trait Fetcher: Send + Sync {
    async fn get(&self, url: &str) -> Result<String, String>;
}

/// Fetched JWK sets by URL, with the time they were fetched.
#[derive(Default)]
pub struct JwksCache(Mutex<HashMap<String, (Millis, serde_json::Value)>>);

/// A token-exchange request's parts, as the token endpoint parsed them.
pub struct ExchangeRequest<'a> {
    pub subject_token: &'a str,
    pub subject_token_type: &'a str,
    pub actor_token: Option<&'a str>,
    pub scope: Option<&'a str>,
}

impl Engine {
    /// Installs the HTTP fetcher used for JWKS URLs.
    pub fn set_fetcher(&self, f: Arc<dyn Fetcher>) {
        if let Ok(mut slot) = self.fetcher.write() {
            *slot = Some(f);
        }
    }

    pub(crate) async fn token_exchange(
        &self,
        auth: ClientAuth,
        req: ExchangeRequest<'_>,
    ) -> Result<TokenResponse, TokenError> {
        let client = self.authenticate_client(&auth, |p| p.token_exchange_require_secret).await?;
        if req.actor_token.is_some() {
            return self.asset_token(Some(client), req).await;
        }
        let app = &client.app;
        if !app.policy.enable_token_exchange_flow {
            return Err(OAuthError::unsupported_grant_type().into());
        }
        let kind = req.subject_token_type.to_ascii_lowercase();
        if ![TOKEN_TYPE_JWT, TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_ACCESS_TOKEN].contains(&kind.as_str()) {
            return Err(OAuthError::invalid_request("unsupported subject_token_type").into());
        }
        if req.subject_token.len() > 10_000 {
            return Err(OAuthError::invalid_request("subject_token is too long").into());
        }
        let bad = || TokenError::OAuth(OAuthError::invalid_grant("invalid subject token"));
        let jwt = UnverifiedJwt::parse(req.subject_token).ok_or_else(bad)?;
        let iss = jwt.claims.get("iss").and_then(|v| v.as_str()).ok_or_else(bad)?.to_string();
        let trusted = app.policy.token_exchange_issuers.iter().find(|t| t.issuer == iss).ok_or_else(bad)?;
        if !self.verify_external(&jwt, trusted).await? {
            return Err(bad());
        }
        if let Some(aud) = &trusted.audience {
            let ok = match jwt.claims.get("aud") {
                Some(serde_json::Value::String(a)) => a == aud,
                Some(serde_json::Value::Array(v)) => v.iter().any(|x| x.as_str() == Some(aud.as_str())),
                _ => false,
            };
            if !ok {
                return Err(OAuthError::invalid_audience().into());
            }
        }
        match jwt.check_times(self.clock.now_secs(), SUBJECT_TIMES) {
            Ok(_) => {}
            Err(TimeFault::MissingExp | TimeFault::Expired | TimeFault::TooLong) => {
                return Err(OAuthError::invalid_grant("the subject token has expired").into())
            }
            Err(TimeFault::NotYetValid | TimeFault::IssuedInFuture) => {
                return Err(OAuthError::invalid_grant("the subject token is not valid yet").into())
            }
        }
        let username = jwt.claims.get(&trusted.user_claim).and_then(|v| v.as_str()).ok_or_else(bad)?;
        let user = match self.store.get_user_by_username(username).await? {
            Some(u) if u.active && u.org_id == app.org_id => u,
            _ => return Err(OAuthError::invalid_grant("no Valet user matches the subject token").into()),
        };
        if self.locked_out(&user.username).await? {
            return Err(OAuthError::invalid_grant("the user's account is locked").into());
        }
        let scopes = match app.policy.permitted_users {
            PermittedUsers::AdminApprovedPreAuthorized => {
                self.require_permitted(app, &user).await?;
                app.scopes.clone()
            }
            PermittedUsers::AllSelfAuthorized => match self.store.get_consent(&user.id, &app.id).await? {
                Some(c) => c.scopes.intersect(&app.scopes),
                None => return Err(OAuthError::not_approved().into()),
            },
        };
        let scopes = match req.scope {
            Some(s) => ScopeSet::parse(s).map_err(|e| OAuthError::invalid_scope(e.to_string()))?.intersect(&scopes),
            None => scopes,
        };
        if scopes.is_empty() {
            return Err(OAuthError::invalid_scope("none of the requested scopes is allowed").into());
        }
        let family = self.new_family(app, &user, scopes, "token_exchange", None);
        let mut resp = self.issue_tokens(Issue::new(&family, &user, &client).with_refresh()).await?;
        resp.issued_token_type = Some(TOKEN_TYPE_ACCESS_TOKEN.into());
        Ok(resp)
    }

    /// Checks an external token's signature against the trusted issuer's keys.
    async fn verify_external(&self, jwt: &UnverifiedJwt, trusted: &TrustedIssuer) -> Result<bool, EngineError> {
        if let Some(pem) = &trusted.certificate_pem {
            if jwt.verify_with_certificate(pem) {
                return Ok(true);
            }
        }
        if let Some(set) = &trusted.jwks {
            if jwt.verify_with_jwks(set) {
                return Ok(true);
            }
        }
        if let Some(url) = &trusted.jwks_url {
            let set = self.fetch_jwks(url, false).await?;
            if jwt.verify_with_jwks(&set) {
                return Ok(true);
            }
            // The issuer may have rotated its keys since we cached them: refetch once.
            let set = self.fetch_jwks(url, true).await?;
            return Ok(jwt.verify_with_jwks(&set));
        }
        Ok(false)
    }

    async fn fetch_jwks(&self, url: &str, fresh: bool) -> Result<serde_json::Value, EngineError> {
        let now = self.clock.now_ms();
        if !fresh {
            let cache = self.jwks_cache.0.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, set)) = cache.get(url) {
                if now - at < JWKS_TTL_MS {
                    return Ok(set.clone());
                }
            }
        }
        let fetcher = self.fetcher.read().ok().and_then(|f| f.clone());
        let Some(fetcher) = fetcher else { return Ok(serde_json::Value::Null) };
        let body = match fetcher.get(url).await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(url, error = %e, "could not fetch an issuer's JWKS");
                return Ok(serde_json::Value::Null);
            }
        };
        let set: serde_json::Value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
        let mut cache = self.jwks_cache.0.lock().unwrap_or_else(|p| p.into_inner());
        cache.insert(url.to_string(), (now, set.clone()));
        Ok(set)
    }

    /// Asset tokens: the subject is a Valet access token with `api` and `openid`, issued to
    /// the app asking (an authenticated client) or, as Salesforce documents the request
    /// without client credentials, to the app that then issues the asset token; the actor
    /// token describes the device. The answer is a signed JWT with `expires_in`, the only
    /// Salesforce token response that has one.
    pub(crate) async fn asset_token(
        &self,
        client: Option<Client>,
        req: ExchangeRequest<'_>,
    ) -> Result<TokenResponse, TokenError> {
        if req.subject_token_type != TOKEN_TYPE_ACCESS_TOKEN {
            return Err(OAuthError::invalid_request("subject_token_type must be an access token").into());
        }
        let ctx = self
            .authenticate_bearer(req.subject_token)
            .await?
            .ok_or_else(|| OAuthError::invalid_grant("invalid subject token"))?;
        // A token issued to one app never buys an asset token from another (RFC 8693 §2.1:
        // no delegation policy lets it).
        let client = match client {
            Some(c) if c.app.id == ctx.app_id => c,
            Some(_) => return Err(OAuthError::invalid_grant("invalid subject token").into()),
            None => match self.store.get_app(&ctx.app_id).await? {
                Some(app) => Client { app, secret: None },
                None => return Err(OAuthError::invalid_grant("invalid subject token").into()),
            },
        };
        let app = &client.app;
        let settings = &app.policy.asset_tokens;
        if !settings.enabled {
            return Err(OAuthError::unsupported_grant_type().into());
        }
        if ctx.org_id != app.org_id {
            return Err(OAuthError::invalid_grant("invalid subject token").into());
        }
        if !(ctx.scopes.contains("api") || ctx.scopes.contains("full")) || !ctx.scopes.contains("openid") {
            return Err(OAuthError::invalid_scope("the subject token needs the api and openid scopes").into());
        }
        let actor = decode_actor(req.actor_token.unwrap_or_default())
            .ok_or_else(|| OAuthError::invalid_request("invalid actor_token"))?;
        let now = self.clock.now_secs();
        let lifetime = settings.valid_minutes.max(1) as i64 * 60;
        let aud: Vec<String> =
            if settings.audiences.is_empty() { vec![self.config.issuer.clone()] } else { settings.audiences.clone() };
        let mut claims = serde_json::json!({
            "iss": self.config.issuer,
            "sub": self.identity_url(&ctx.org_id, &ctx.user.id),
            "aud": aud,
            "iat": now,
            "nbf": now,
            "exp": now + lifetime,
            "jti": crate::rand::alnum(self.rng(), 22),
            "client_id": app.consumer_key,
        });
        if let Some(obj) = claims.as_object_mut() {
            for key in ["did", "Name", "Asset", "ParentId", "SerialNumber"] {
                if let Some(v) = actor.get(key) {
                    obj.insert(key.to_string(), v.clone());
                }
            }
            if settings.include_custom_attributes && !app.policy.custom_attributes.is_empty() {
                obj.insert("custom_attributes".into(), crate::model::attributes_json(&app.policy.custom_attributes));
            }
            if settings.include_custom_permissions {
                if let Some(perms) = self.custom_permissions_claim(app, &ctx.user).await? {
                    obj.insert("custom_permissions".into(), perms.into());
                }
            }
        }
        let token = self.keys().active.sign_jwt(&claims).map_err(EngineError::from)?;
        Ok(TokenResponse {
            access_token: token,
            issued_token_type: Some(TOKEN_TYPE_JWT.into()),
            token_type: "Bearer".into(),
            expires_in: Some(lifetime as u64),
            ..Default::default()
        })
    }
}

/// The actor token's claims. It describes a device and is not itself a credential (the
/// subject token is), so it may be unsigned; it must still be a well-formed JWT.
fn decode_actor(jwt: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    super::jwt::unverified_claims(jwt, 8192)
}
