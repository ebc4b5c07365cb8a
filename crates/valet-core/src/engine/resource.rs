//! Using and ending tokens: bearer validation, userinfo, the identity service, introspection,
//! revocation; and browser sessions at Valet's own pages.

use std::collections::BTreeMap;

use valet_proto::oidc::{Address, Identity, IdentityStatus, Introspection, Photos, UserInfo};
use valet_proto::OAuthError;

use crate::clock::{iso8601, Millis};
use crate::ids::SfId;
use crate::model::*;
use crate::scope::ScopeSet;
use crate::secret::{self, Secret, TokenHash};

use super::token::{ClientAuth, TokenError};
use super::{password, Engine, EngineError};

/// A valid access token and whom it speaks for.
#[derive(Debug, Clone)]
pub struct TokenContext {
    pub token_hash: TokenHash,
    pub org_id: SfId,
    pub user: User,
    pub app_id: SfId,
    pub scopes: ScopeSet,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// Why a login failed. The page shows one message for all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    BadCredentials,
    Inactive,
    /// Too many attempts for the account or the address: nothing was checked.
    Throttled {
        retry_after_ms: i64,
    },
}

impl Engine {
    /// Validates a bearer access token: known, not revoked (itself or its family), not
    /// expired, its user active.
    pub async fn authenticate_bearer(&self, token: &str) -> Result<Option<TokenContext>, EngineError> {
        let looks_like_jwt = token.split('.').count() == 3;
        if token.is_empty() || token.len() > 4096 || !(token.contains('!') || looks_like_jwt) {
            return Ok(None);
        }
        let Some(at) = self.store.get_access_token(&TokenHash::of(token)).await? else { return Ok(None) };
        let now = self.clock.now_ms();
        if at.revoked_at.is_some() || at.expires_at <= now {
            return Ok(None);
        }
        let Some(user) = self.store.get_user(&at.user_id).await? else { return Ok(None) };
        if !user.active {
            return Ok(None);
        }
        Ok(Some(TokenContext {
            token_hash: at.token_hash,
            org_id: at.org_id,
            user,
            app_id: at.app_id,
            scopes: at.scopes,
            created_at: at.created_at,
            expires_at: at.expires_at,
        }))
    }

    /// The `urls` map of the identity service and userinfo, with `{version}` left literal
    /// unless a version was asked for (salesforce-wire.md §6.4).
    pub fn identity_urls(&self, org: &SfId, user: &SfId, version: Option<&str>) -> BTreeMap<String, String> {
        let base = &self.config.instance_url;
        let v = version.unwrap_or("{version}");
        let org15 = org.id15();
        let mut m = BTreeMap::new();
        let mut put = |k: &str, val: String| {
            m.insert(k.to_string(), val);
        };
        put("enterprise", format!("{base}/services/Soap/c/{v}/{org15}"));
        put("metadata", format!("{base}/services/Soap/m/{v}/{org15}"));
        put("partner", format!("{base}/services/Soap/u/{v}/{org15}"));
        put("rest", format!("{base}/services/data/v{v}/"));
        put("sobjects", format!("{base}/services/data/v{v}/sobjects/"));
        put("search", format!("{base}/services/data/v{v}/search/"));
        put("query", format!("{base}/services/data/v{v}/query/"));
        put("recent", format!("{base}/services/data/v{v}/recent/"));
        put("tooling_soap", format!("{base}/services/Soap/T/{v}/{org15}"));
        put("tooling_rest", format!("{base}/services/data/v{v}/tooling/"));
        put("profile", format!("{base}/{user}"));
        put("feeds", format!("{base}/services/data/v{v}/chatter/feeds"));
        put("groups", format!("{base}/services/data/v{v}/chatter/groups"));
        put("users", format!("{base}/services/data/v{v}/chatter/users"));
        put("feed_items", format!("{base}/services/data/v{v}/chatter/feed-items"));
        put("feed_elements", format!("{base}/services/data/v{v}/chatter/feed-elements"));
        put("custom_domain", base.to_string());
        m
    }

    fn photos(&self, user: &SfId) -> Photos {
        let base = &self.config.instance_url;
        Photos {
            picture: format!("{base}/profilephoto/005/F?u={user}"),
            thumbnail: format!("{base}/profilephoto/005/T?u={user}"),
        }
    }

    /// `/services/oauth2/userinfo` for any valid token (salesforce-wire.md §6.3).
    pub async fn userinfo(&self, ctx: &TokenContext) -> Result<UserInfo, EngineError> {
        let u = &ctx.user;
        let photos = self.photos(&u.id);
        let custom_permissions = self.identity_custom_permissions(&ctx.app_id, &ctx.scopes, u).await?;
        Ok(UserInfo {
            sub: self.identity_url(&ctx.org_id, &u.id),
            user_id: u.id.to_string(),
            organization_id: ctx.org_id.to_string(),
            preferred_username: u.username.clone(),
            nickname: nickname(u),
            name: u.display_name(),
            email: u.email.clone(),
            email_verified: true,
            given_name: u.first_name.clone(),
            family_name: u.last_name.clone(),
            zoneinfo: u.timezone.clone(),
            picture: photos.picture.clone(),
            photos,
            profile: format!("{}/{}", self.config.instance_url, u.id),
            address: Address { country: Some("US".into()) },
            is_salesforce_integration_user: false,
            urls: self.identity_urls(&ctx.org_id, &u.id, None),
            active: u.active,
            user_type: "STANDARD".into(),
            language: u.language.clone(),
            locale: u.locale.clone(),
            utc_offset: utc_offset_ms(&u.timezone),
            updated_at: iso8601(u.updated_at),
            is_app_installed: true,
            custom_permissions,
        })
    }

    /// `/id/<org>/<user>` (salesforce-wire.md §6.4). A token may read its own user's identity; reading
    /// another user of the same org needs `api` or `full`. `None` means forbidden.
    pub async fn identity(
        &self,
        ctx: &TokenContext,
        org: &str,
        user: &str,
        version: Option<&str>,
    ) -> Result<Option<Identity>, EngineError> {
        let (Ok(org), Ok(user_id)) = (SfId::parse(org), SfId::parse(user)) else { return Ok(None) };
        if org != ctx.org_id {
            return Ok(None);
        }
        let target = if user_id == ctx.user.id {
            if !ctx.scopes.allows_identity() {
                return Ok(None);
            }
            ctx.user.clone()
        } else {
            if !ctx.scopes.allows_api() {
                return Ok(None);
            }
            match self.store.get_user(&user_id).await? {
                Some(u) if u.org_id == ctx.org_id => u,
                _ => return Ok(None),
            }
        };
        let version = match version {
            Some("latest") => Some(crate::API_VERSION_LATEST),
            other => other,
        };
        let u = &target;
        let custom_permissions = self.identity_custom_permissions(&ctx.app_id, &ctx.scopes, u).await?;
        Ok(Some(Identity {
            id: self.identity_url(&org, &u.id),
            asserted_user: u.id == ctx.user.id,
            user_id: u.id.to_string(),
            organization_id: org.to_string(),
            username: u.username.clone(),
            nick_name: nickname(u),
            display_name: u.display_name(),
            email: u.email.clone(),
            email_verified: true,
            first_name: if u.first_name.is_empty() { None } else { Some(u.first_name.clone()) },
            last_name: u.last_name.clone(),
            timezone: u.timezone.clone(),
            photos: self.photos(&u.id),
            addr_street: None,
            addr_city: None,
            addr_state: None,
            addr_country: Some("US".into()),
            addr_zip: None,
            mobile_phone: None,
            mobile_phone_verified: false,
            is_lightning_login_user: false,
            status: IdentityStatus { created_date: None, body: None },
            urls: self.identity_urls(&org, &u.id, version),
            active: u.active,
            user_type: "STANDARD".into(),
            language: u.language.clone(),
            locale: u.locale.clone(),
            utc_offset: utc_offset_ms(&u.timezone),
            last_modified_date: iso8601(u.updated_at),
            is_app_installed: true,
            custom_permissions,
        }))
    }

    /// RFC 7662 in Salesforce's shape (salesforce-wire.md §6.2). The client must authenticate; an app sees
    /// only its own tokens unless it may introspect all tokens of its org.
    pub async fn introspect(
        &self,
        auth: &ClientAuth,
        token: &str,
        hint: Option<&str>,
    ) -> Result<Introspection, TokenError> {
        let client = self.authenticate_client_at(auth, |_| true, super::ip::IpCheck::Skip).await?;
        let inactive = Introspection { active: false, ..Default::default() };
        if token.is_empty() || token.len() > 4096 {
            return Ok(inactive);
        }
        let hash = TokenHash::of(token);
        let now = self.clock.now_ms();
        // An app sees its own tokens; with "Introspect All Tokens", its org's; a DCR registrar,
        // those of the apps it registered (salesforce-wire.md §6.2).
        let visible = |app: &Option<App>, org_id: &SfId| {
            app.as_ref().is_some_and(|a| {
                a.id == client.app.id
                    || (client.app.policy.introspect_all_tokens && *org_id == client.app.org_id)
                    || a.policy.registered_by.as_deref() == Some(client.app.id.as_str())
            })
        };
        let refresh_first = hint == Some("refresh_token");
        for pass in 0..2 {
            let as_refresh = (pass == 0) == refresh_first;
            let found = if as_refresh {
                self.store.get_refresh_token(&hash).await?.and_then(|rt| {
                    let live =
                        rt.revoked_at.is_none() && rt.replaced_by.is_none() && rt.expires_at.is_none_or(|e| e > now);
                    live.then_some((
                        rt.org_id,
                        rt.user_id,
                        rt.app_id,
                        rt.scopes,
                        rt.created_at,
                        rt.expires_at,
                        "refresh_token",
                    ))
                })
            } else {
                self.store.get_access_token(&hash).await?.and_then(|at| {
                    let live = at.revoked_at.is_none() && at.expires_at > now;
                    live.then_some((
                        at.org_id,
                        at.user_id,
                        at.app_id,
                        at.scopes,
                        at.created_at,
                        Some(at.expires_at),
                        "access_token",
                    ))
                })
            };
            if let Some((org_id, user_id, app_id, scopes, created, expires, kind)) = found {
                // Usually the introspecting app's own token: no second read of the app.
                let app = if app_id == client.app.id {
                    Some(client.app.clone())
                } else {
                    self.store.get_app(&app_id).await?
                };
                if !visible(&app, &org_id) {
                    return Ok(inactive);
                }
                let Some(user) = self.store.get_user(&user_id).await? else { return Ok(inactive) };
                if !user.active {
                    return Ok(inactive);
                }
                return Ok(Introspection {
                    active: true,
                    scope: Some(scopes.to_string()),
                    client_id: app.map(|a| a.consumer_key),
                    username: Some(user.username.clone()),
                    sub: Some(self.identity_url(&org_id, &user.id)),
                    token_type: Some(kind.into()),
                    exp: expires.map(|e| e.div_euclid(1000)),
                    iat: Some(created.div_euclid(1000)),
                    nbf: Some(created.div_euclid(1000)),
                });
            }
        }
        Ok(inactive)
    }

    /// Salesforce's revoke (salesforce-wire.md §6.1): holding the token is enough; an access token ends
    /// alone, a refresh token ends with every access token issued from it. Unknown tokens are
    /// an error, unlike RFC 7009.
    pub async fn revoke(&self, token: &str) -> Result<(), TokenError> {
        if token.is_empty() || token.len() > 4096 {
            return Err(OAuthError::invalid_token().into());
        }
        let hash = TokenHash::of(token);
        let now = self.clock.now_ms();
        if let Some(at) = self.store.get_access_token(&hash).await? {
            if at.revoked_at.is_some() {
                return Err(OAuthError::invalid_token().into());
            }
            self.store.revoke_access_token(&at.token_hash, now).await?;
            return Ok(());
        }
        if let Some(rt) = self.store.get_refresh_token(&hash).await? {
            if rt.revoked_at.is_some() {
                return Err(OAuthError::invalid_token().into());
            }
            self.store.revoke_family(&rt.family_id, now).await?;
            return Ok(());
        }
        Err(OAuthError::invalid_token().into())
    }

    /// Verifies a username and password, unthrottled: callers go through [`Engine::login`].
    pub(crate) async fn check_login(
        &self,
        username: &str,
        password_in: &str,
    ) -> Result<Result<User, LoginFailure>, EngineError> {
        let user = if username.len() <= 80 { self.store.get_user_by_username(username.trim()).await? } else { None };
        let ok = password::verify(password_in.to_string(), user.as_ref().map(|u| u.password_hash.clone())).await;
        Ok(match user {
            Some(u) if ok && u.active => Ok(u),
            Some(_) if ok => Err(LoginFailure::Inactive),
            _ => Err(LoginFailure::BadCredentials),
        })
    }

    /// Starts a browser session; returns the cookie value (stored only as a hash).
    pub async fn create_session(&self, user: &User) -> Result<Secret, EngineError> {
        let token = secret::new_session_token(self.rng());
        let now = self.clock.now_ms();
        self.store
            .insert_session(&Session {
                id_hash: token.hash(),
                org_id: user.org_id.clone(),
                user_id: user.id.clone(),
                auth_time: now,
                created_at: now,
                expires_at: now + self.config.session_lifetime_ms,
            })
            .await?;
        Ok(token)
    }

    /// The session and its user, if the cookie is valid and the user still active.
    pub async fn session_user(&self, cookie: &str) -> Result<Option<(Session, User)>, EngineError> {
        if cookie.is_empty() || cookie.len() > 128 {
            return Ok(None);
        }
        let Some(s) = self.store.get_session(&TokenHash::of(cookie)).await? else { return Ok(None) };
        if s.expires_at <= self.clock.now_ms() {
            return Ok(None);
        }
        match self.store.get_user(&s.user_id).await? {
            Some(u) if u.active => Ok(Some((s, u))),
            _ => Ok(None),
        }
    }

    pub async fn end_session(&self, cookie: &str) -> Result<(), EngineError> {
        self.store.delete_session(&TokenHash::of(cookie)).await?;
        Ok(())
    }
}

fn nickname(u: &User) -> String {
    u.username.split('@').next().unwrap_or(&u.username).to_string()
}

/// The user's UTC offset in milliseconds. Valet keeps timezones as names; the common US zones
/// are mapped (standard time), others report 0.
fn utc_offset_ms(tz: &str) -> i64 {
    let hours = match tz {
        "America/Los_Angeles" => -8,
        "America/Denver" => -7,
        "America/Chicago" => -6,
        "America/New_York" => -5,
        "Europe/London" | "UTC" | "GMT" => 0,
        "Europe/Paris" | "Europe/Berlin" => 1,
        _ => 0,
    };
    hours * 3_600_000
}
