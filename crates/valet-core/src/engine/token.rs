//! The token endpoint (salesforce-wire.md §4): client authentication, then one function per grant.

use valet_proto::token::{TokenRequest, TokenResponse};
use valet_proto::OAuthError;

use crate::keys::half_hash;
use crate::model::*;
use crate::scope::ScopeSet;
use crate::secret::{self, Secret, TokenHash};
use crate::store::{Issuance, StoreError};

use super::{Engine, EngineError};

/// Client credentials as presented, from Basic or the body (already reconciled).
#[derive(Debug, Clone)]
pub struct ClientAuth {
    pub client_id: String,
    pub secret: Option<Secret>,
    /// A `private_key_jwt` or `client_secret_jwt` assertion (RFC 7523 §2.2), unverified.
    pub assertion: Option<String>,
    /// The address the request came from, for the app's IP restrictions.
    pub client_ip: Option<std::net::IpAddr>,
}

/// Associated data for sealed refresh-token successors.
const SUCCESSOR_PURPOSE: &[u8] = b"valet-refresh-successor";

/// A token-endpoint outcome: an OAuth error for the client, or a fault that becomes a 500.
#[derive(Debug)]
pub enum TokenError {
    OAuth(OAuthError),
    Fault(EngineError),
}

impl From<OAuthError> for TokenError {
    fn from(e: OAuthError) -> Self {
        TokenError::OAuth(e)
    }
}
impl From<EngineError> for TokenError {
    fn from(e: EngineError) -> Self {
        TokenError::Fault(e)
    }
}
impl From<crate::store::StoreError> for TokenError {
    fn from(e: crate::store::StoreError) -> Self {
        TokenError::Fault(e.into())
    }
}

/// An authenticated client, and the secret it proved (used for the response `signature`).
pub struct Client {
    pub app: App,
    pub secret: Option<Secret>,
}

impl Engine {
    /// Runs one token request from `client_ip` (the engine attaches it to the client's
    /// credentials here, the one place, for the app's IP ranges).
    pub async fn token(
        &self,
        req: TokenRequest,
        auth: Option<ClientAuth>,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<TokenResponse, TokenError> {
        // The JWT bearer flow names its client in the assertion, not in credentials.
        if let TokenRequest::JwtBearer { assertion } = &req {
            return self.jwt_bearer(assertion, client_ip).await;
        }
        // Salesforce's asset-token request carries no client credentials: the subject access
        // token names its app.
        if let (
            None,
            TokenRequest::TokenExchange { subject_token, subject_token_type, actor_token: Some(actor), scope },
        ) = (&auth, &req)
        {
            let req = super::exchange::ExchangeRequest {
                subject_token,
                subject_token_type,
                actor_token: Some(actor),
                scope: scope.as_deref(),
            };
            return self.asset_token(None, req).await;
        }
        let mut auth = auth.ok_or_else(OAuthError::invalid_client_id)?;
        auth.client_ip = client_ip;
        match req {
            TokenRequest::AuthorizationCode { code, redirect_uri, code_verifier, hybrid } => {
                let mut r = self.redeem_code(auth, &code, redirect_uri.as_deref(), code_verifier.as_deref()).await?;
                if hybrid {
                    self.add_hybrid_fields(&mut r);
                }
                Ok(r)
            }
            TokenRequest::RefreshToken { refresh_token, scope, hybrid } => {
                let mut r = self.refresh(auth, &refresh_token, scope.as_deref()).await?;
                if hybrid {
                    self.add_hybrid_fields(&mut r);
                }
                Ok(r)
            }
            TokenRequest::ClientCredentials { scope } => self.client_credentials(auth, scope.as_deref()).await,
            TokenRequest::Password { username, password } => self.password_grant(auth, &username, &password).await,
            TokenRequest::DevicePoll { device_code } => self.device_poll(auth, &device_code).await,
            TokenRequest::TokenExchange { subject_token, subject_token_type, actor_token, scope } => {
                let req = super::exchange::ExchangeRequest {
                    subject_token: &subject_token,
                    subject_token_type: &subject_token_type,
                    actor_token: actor_token.as_deref(),
                    scope: scope.as_deref(),
                };
                self.token_exchange(auth, req).await
            }
            _ => Err(OAuthError::unsupported_grant_type().into()),
        }
    }

    /// Authenticates the client. A secret that is sent is always checked, even where it is not
    /// required (salesforce-wire.md §1.3); `requires_secret` reads from the app's policy whether its absence
    /// is acceptable for this flow.
    pub async fn authenticate_client(
        &self,
        auth: &ClientAuth,
        requires_secret: impl Fn(&AppPolicy) -> bool,
    ) -> Result<Client, TokenError> {
        self.authenticate_client_at(auth, requires_secret, super::ip::IpCheck::Login).await
    }

    /// [`Engine::authenticate_client`], then the app's IP restrictions for this kind of call.
    pub async fn authenticate_client_at(
        &self,
        auth: &ClientAuth,
        requires_secret: impl Fn(&AppPolicy) -> bool,
        at: super::ip::IpCheck,
    ) -> Result<Client, TokenError> {
        let client = self.authenticate_client_inner(auth, requires_secret).await?;
        super::ip::check(&client.app.policy, auth.client_ip, at)?;
        Ok(client)
    }

    async fn authenticate_client_inner(
        &self,
        auth: &ClientAuth,
        requires_secret: impl Fn(&AppPolicy) -> bool,
    ) -> Result<Client, TokenError> {
        let app =
            self.store.get_app_by_consumer_key(&auth.client_id).await?.ok_or_else(OAuthError::invalid_client_id)?;
        let require_secret = requires_secret(&app.policy);
        if let Some(assertion) = &auth.assertion {
            if auth.secret.is_some() {
                return Err(OAuthError::invalid_request("use only one client authentication method").into());
            }
            self.verify_client_assertion(&app, assertion).await?;
            return Ok(Client { app, secret: None });
        }
        match &auth.secret {
            Some(presented) => {
                if app.is_public {
                    return Err(OAuthError::invalid_client().into());
                }
                let hash = presented.hash();
                let live = self.store.live_app_secrets(&app.id).await?;
                // Compare against every live secret so timing does not tell which one matched.
                let mut ok = false;
                for s in &live {
                    ok |= s.secret_hash.ct_eq(&hash);
                }
                if !ok {
                    return Err(OAuthError::invalid_client().into());
                }
                Ok(Client { app, secret: Some(presented.clone()) })
            }
            None if require_secret && !app.is_public => Err(OAuthError::invalid_client().into()),
            None => Ok(Client { app, secret: None }),
        }
    }

    async fn redeem_code(
        &self,
        auth: ClientAuth,
        code: &str,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
    ) -> Result<TokenResponse, TokenError> {
        let client = self.authenticate_client(&auth, |p| p.require_secret_for_web_server_flow).await?;
        let app = &client.app;
        if !app.policy.enable_authorization_code_flow {
            return Err(OAuthError::oauth_flow_disabled().into());
        }
        if code.len() > 512 {
            return Err(OAuthError::invalid_code().into());
        }
        let hash = TokenHash::of(code);
        let now = self.clock.now_ms();
        let stored = self.store.get_code(&hash).await?.ok_or_else(OAuthError::invalid_code)?;
        // Writes go by the key the row is stored under (a code issued before time heads existed
        // is found by its bare digest).
        let hash = stored.code_hash.clone();
        if stored.app_id != app.id {
            return Err(OAuthError::invalid_code().into());
        }
        if stored.consumed_at.is_some() {
            // A replay: revoke everything the first redemption issued (RFC 6749 §4.1.2).
            if let Some(f) = &stored.family_id {
                self.store.revoke_family(f, now).await?;
                tracing::warn!(app = %app.id, "authorization code replayed; its tokens were revoked");
            }
            return Err(OAuthError::expired_code().into());
        }
        if stored.expires_at <= now {
            return Err(OAuthError::expired_code().into());
        }
        match redirect_uri {
            Some(r) if secret::ct_eq_str(r, &stored.redirect_uri) => {}
            _ => return Err(OAuthError::redirect_uri_mismatch().into()),
        }
        check_pkce(&stored, verifier)?;
        let user = self.store.get_user(&stored.user_id).await?.ok_or_else(OAuthError::inactive_user)?;
        if !user.active {
            return Err(OAuthError::inactive_user().into());
        }
        // The family is stored with the redemption, so a concurrent replay that loses the race
        // can always find and revoke it.
        let family = self.new_family(app, &user, stored.scopes.clone(), "authorization_code", Some(stored.auth_time));
        let won = match self.store.consume_code(&hash, &family, now).await {
            Err(StoreError::NotFound) => return Err(self.vanished(app).await),
            won => won?,
        };
        if !won {
            if let Some(winner) = self.store.get_code(&hash).await?.and_then(|c| c.family_id) {
                self.store.revoke_family(&winner, now).await?;
            }
            return Err(OAuthError::expired_code().into());
        }
        let issue = Issue::new(&family, &user, &client).with_refresh().nonce(stored.nonce.as_deref()).stored_family();
        self.issue_tokens(issue).await
    }

    async fn refresh(&self, auth: ClientAuth, token: &str, scope: Option<&str>) -> Result<TokenResponse, TokenError> {
        let client = self
            .authenticate_client_at(&auth, |p| p.require_secret_for_refresh_token_flow, super::ip::IpCheck::Refresh)
            .await?;
        let app = &client.app;
        let now = self.clock.now_ms();
        if token.len() > 512 {
            return Err(OAuthError::expired_refresh_token().into());
        }
        let hash = TokenHash::of(token);
        let (rt, family) =
            self.store.get_refresh_token_and_family(&hash).await?.ok_or_else(OAuthError::expired_refresh_token)?;
        let hash = rt.token_hash.clone();
        if rt.app_id != app.id {
            return Err(OAuthError::expired_refresh_token().into());
        }
        // A client that lost the response may retry within the grace window and gets the same
        // successor back; any other reuse means the family is compromised (salesforce-wire.md §4.2).
        let mut reuse_successor: Option<Secret> = None;
        if rt.replaced_by.is_some() {
            reuse_successor = self.grace_successor(&rt, &app.policy, now).await?;
            if reuse_successor.is_none() {
                self.store.revoke_family(&rt.family_id, now).await?;
                tracing::warn!(app = %app.id, "rotated-out refresh token reused; family revoked");
                return Err(OAuthError::expired_refresh_token().into());
            }
        }
        if (rt.revoked_at.is_some() && reuse_successor.is_none()) || rt.expires_at.is_some_and(|e| e <= now) {
            return Err(OAuthError::expired_refresh_token().into());
        }
        let minute = 60_000i64;
        let expired_by_policy = match app.policy.refresh_token_policy {
            RefreshTokenPolicy::ValidUntilRevoked => false,
            RefreshTokenPolicy::ExpireImmediately => true,
            RefreshTokenPolicy::ExpireAfter { minutes } => rt.created_at + minutes as i64 * minute <= now,
            RefreshTokenPolicy::ExpireIfUnused { minutes } => rt.last_used_at + minutes as i64 * minute <= now,
        };
        // The org's "idle refresh token TTL" applies on top of every app's own policy.
        let org_idle_days = self.store.get_org(&app.org_id).await?.and_then(|o| o.settings.idle_refresh_token_ttl_days);
        let idle_by_org = org_idle_days.is_some_and(|days| rt.last_used_at + i64::from(days) * 24 * 60 * minute <= now);
        if expired_by_policy || idle_by_org {
            return Err(OAuthError::expired_refresh_token().into());
        }
        let family = family.ok_or_else(OAuthError::expired_refresh_token)?;
        let user = self.store.get_user(&rt.user_id).await?.ok_or_else(OAuthError::inactive_user)?;
        if !user.active {
            return Err(OAuthError::inactive_user().into());
        }
        let mut family = family;
        if let Some(s) = scope {
            let asked = ScopeSet::parse(s).map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
            if !asked.is_subset(&rt.scopes) {
                return Err(OAuthError::invalid_scope("requested scope exceeds the original grant").into());
            }
            family.scopes = asked;
        } else {
            family.scopes = rt.scopes.clone();
        }
        // Without rotation the same refresh token stays in use: its last use is recorded with
        // the new access token, in the same write.
        let rotating = reuse_successor.is_none() && app.policy.refresh_token_rotation;
        let mut issue = Issue::new(&family, &user, &client).stored_family();
        if reuse_successor.is_none() && !rotating {
            issue = issue.touching(&hash);
        }
        let mut resp = self.issue_tokens(issue).await?;
        if let Some(successor) = reuse_successor {
            resp.refresh_token = Some(successor.expose().to_string());
        } else if rotating {
            let new = secret::new_refresh_token(now, self.rng());
            let record = RefreshToken {
                token_hash: new.hash(),
                family_id: rt.family_id.clone(),
                org_id: rt.org_id.clone(),
                app_id: rt.app_id.clone(),
                user_id: rt.user_id.clone(),
                scopes: rt.scopes.clone(),
                created_at: now,
                last_used_at: now,
                expires_at: rt.expires_at,
                revoked_at: None,
                replaced_by: None,
                successor_sealed: None,
            };
            let sealed = self.master.seal_for(SUCCESSOR_PURPOSE, new.expose().as_bytes()).map_err(EngineError::from)?;
            let rotated = match self.store.rotate_refresh_token(&hash, &record, &sealed, now).await {
                Err(StoreError::NotFound) => return Err(self.vanished(app).await),
                rotated => rotated?,
            };
            if rotated {
                resp.refresh_token = Some(new.expose().to_string());
            } else {
                // A concurrent request rotated it first: that is the same client retrying, so
                // within the grace window it gets the winner's successor; otherwise it is reuse.
                let successor = match self.store.get_refresh_token(&hash).await? {
                    Some(winner) if winner.replaced_by.is_some() => {
                        self.grace_successor(&winner, &app.policy, now).await?
                    }
                    _ => None,
                };
                match successor {
                    Some(s) => resp.refresh_token = Some(s.expose().to_string()),
                    None => {
                        self.store.revoke_family(&rt.family_id, now).await?;
                        return Err(OAuthError::expired_refresh_token().into());
                    }
                }
            }
        }
        Ok(resp)
    }

    /// The successor of a rotated-out token, if the rotation is within the app's grace window
    /// and the successor is still live.
    async fn grace_successor(
        &self,
        rotated: &RefreshToken,
        policy: &AppPolicy,
        now: i64,
    ) -> Result<Option<Secret>, TokenError> {
        let grace_ms = policy.refresh_token_grace_seconds as i64 * 1000;
        let within = grace_ms > 0 && rotated.revoked_at.is_some_and(|at| now - at <= grace_ms);
        let Some(successor) = rotated.replaced_by.as_ref().filter(|_| within) else { return Ok(None) };
        let live = self
            .store
            .get_refresh_token(successor)
            .await?
            .is_some_and(|s| s.revoked_at.is_none() && s.replaced_by.is_none());
        if !live {
            return Ok(None);
        }
        let plain = rotated.successor_sealed.as_deref().and_then(|s| self.master.open_for(SUCCESSOR_PURPOSE, s).ok());
        Ok(plain.map(|p| Secret::new(String::from_utf8_lossy(&p).into_owned())))
    }

    /// Mints the access token (and refresh and ID tokens when the scopes call for them) for
    /// a family, and builds Salesforce's response.
    pub(crate) async fn issue_tokens(&self, issue: Issue<'_>) -> Result<TokenResponse, TokenError> {
        let Issue { family, user, client, nonce, with_refresh, with_id_token, new_family, touch_refresh } = issue;
        let app = &client.app;
        let now = self.clock.now_ms();
        let (access, lifetime) = if app.policy.jwt_access_tokens {
            let minutes = app.policy.jwt_access_token_minutes as i64;
            (Secret::new(self.jwt_access_token(app, user, &family.scopes, now, minutes)?), minutes * 60_000)
        } else {
            (
                secret::new_access_token(&family.org_id, now, self.rng()),
                app.policy.session_timeout_minutes as i64 * 60_000,
            )
        };
        let access_record = AccessToken {
            token_hash: access.hash(),
            family_id: family.id.clone(),
            org_id: family.org_id.clone(),
            app_id: app.id.clone(),
            user_id: user.id.clone(),
            scopes: family.scopes.clone(),
            created_at: now,
            expires_at: now + lifetime,
            revoked_at: None,
        };
        let (refresh, refresh_record) = if with_refresh
            && family.scopes.allows_refresh()
            && app.policy.refresh_token_policy != RefreshTokenPolicy::ExpireImmediately
        {
            let rt = secret::new_refresh_token(now, self.rng());
            let expires_at = match app.policy.refresh_token_policy {
                RefreshTokenPolicy::ExpireAfter { minutes } => Some(now + minutes as i64 * 60_000),
                _ => None,
            };
            let record = RefreshToken {
                token_hash: rt.hash(),
                family_id: family.id.clone(),
                org_id: family.org_id.clone(),
                app_id: app.id.clone(),
                user_id: user.id.clone(),
                scopes: family.scopes.clone(),
                created_at: now,
                last_used_at: now,
                expires_at,
                revoked_at: None,
                replaced_by: None,
                successor_sealed: None,
            };
            (Some(rt.expose().to_string()), Some(record))
        } else {
            (None, None)
        };
        let stored = self
            .store
            .store_issuance(Issuance {
                family: new_family.then(|| family.clone()),
                access: access_record,
                refresh: refresh_record,
                touch_refresh: touch_refresh.cloned(),
            })
            .await;
        match stored {
            Ok(()) => {}
            Err(StoreError::NotFound) => return Err(self.vanished(app).await),
            Err(e) => return Err(e.into()),
        }
        let id = self.identity_url(&family.org_id, &user.id);
        let issued_at = now.to_string();
        let id_token = if with_id_token && family.scopes.contains("openid") {
            let perms = if app.policy.id_token.include_custom_permissions {
                self.custom_permissions_claim(app, user).await?
            } else {
                None
            };
            Some(self.id_token(app, user, &id, access.expose(), nonce, family.auth_time, perms)?)
        } else {
            None
        };
        Ok(TokenResponse {
            access_token: access.expose().to_string(),
            refresh_token: refresh,
            signature: Some(self.response_signature(client.secret.as_ref(), &id, &issued_at)),
            scope: Some(family.scopes.to_string()),
            id_token,
            instance_url: Some(self.config.instance_url.clone()),
            id: Some(id),
            token_type: "Bearer".into(),
            issued_at: Some(issued_at),
            ..Default::default()
        })
    }

    /// The answer when the store refused to write a grant because what it belongs to is gone
    /// (`StoreError::NotFound` from an issuance): the app was deleted while the request ran,
    /// so its client is unknown now, as on the next request. An app still found is one whose
    /// delete the cache has not heard of yet, or one whose refresh token just expired and was
    /// swept with its family: either way the grant is over.
    pub(crate) async fn vanished(&self, app: &App) -> TokenError {
        match self.store.get_app(&app.id).await {
            Ok(Some(_)) => OAuthError::expired_refresh_token().into(),
            Ok(None) => OAuthError::invalid_client_id().into(),
            Err(e) => e.into(),
        }
    }

    /// The Mobile SDK's hybrid session fields (salesforce-wire.md §3.5): the SDK seeds its web views' cookies
    /// from them. Their value formats are unconfirmed; each session id is the access token
    /// (the session), each domain the instance host.
    pub(crate) fn add_hybrid_fields(&self, resp: &mut TokenResponse) {
        let host = url::Url::parse(&self.config.instance_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        let sid = resp.access_token.clone();
        let h = &mut resp.hybrid;
        for (k, v) in [
            ("lightning_domain", host.clone()),
            ("lightning_sid", sid.clone()),
            ("visualforce_domain", host.clone()),
            ("visualforce_sid", sid.clone()),
            ("content_domain", host),
            ("content_sid", sid.clone()),
            ("csrf_token", crate::rand::alnum(self.rng(), 32)),
            ("cookie-sid_Client", crate::rand::alnum(self.rng(), 20)),
            ("cookie-clientSrc", "127.0.0.1".to_string()),
            ("sidCookieName", "sid".to_string()),
            ("parent_sid", sid),
            ("token_format", if resp.access_token.contains('!') { "opaque" } else { "jwt" }.to_string()),
        ] {
            h.insert(k.to_string(), v);
        }
    }

    /// The app's newest live consumer secret, opened from its sealed copy: what Salesforce keys
    /// a response `signature` with when the request itself carried no secret (the user-agent
    /// and hybrid flows). `None` for apps without one (public apps).
    pub(crate) async fn current_consumer_secret(&self, app: &App) -> Result<Option<Secret>, EngineError> {
        if app.is_public {
            return Ok(None);
        }
        let live = self.store.live_app_secrets(&app.id).await?;
        let Some(newest) = live.iter().max_by_key(|s| (s.created_at, s.id)) else { return Ok(None) };
        let plain = self.master.open_for(super::admin::CLIENT_SECRET_PURPOSE, &newest.secret_sealed)?;
        Ok(String::from_utf8(plain).ok().map(Secret::new))
    }

    /// `signature` = Base64(HMAC-SHA256(client secret, id + issued_at)) (salesforce-wire.md §1.4). Clients
    /// without a secret get one keyed by a server-derived key (Salesforce's choice there is
    /// unconfirmed; no client verifies it).
    pub(crate) fn response_signature(&self, secret: Option<&Secret>, id: &str, issued_at: &str) -> String {
        let message = format!("{id}{issued_at}");
        match secret {
            Some(s) => secret::hmac_sha256_b64(s.expose().as_bytes(), &message),
            None => secret::hmac_sha256_b64(&self.master.derive("response-signature"), &message),
        }
    }

    /// A JWT-based access token in the shape of Salesforce's (salesforce-wire.md §2.3: the sf CLI detects
    /// it by the header `typ`). Its hash is stored like an opaque token's, so revocation and
    /// introspection work the same; resource servers may also verify it from the JWKS alone.
    /// Signed RS256 as Salesforce's, or ES256 when the app's policy says so.
    fn jwt_access_token(
        &self,
        app: &App,
        user: &User,
        scopes: &ScopeSet,
        now_ms: i64,
        minutes: i64,
    ) -> Result<String, EngineError> {
        let keys = self.keys();
        let key = keys.signer(app.policy.jwt_access_token_alg);
        let now = now_ms.div_euclid(1000);
        let header = serde_json::json!({
            "tnk": user.org_id.id15(), "ver": "1.0", "kid": key.kid, "tty": "sfdc-core-token", "typ": "JWT", "alg": key.alg().as_str()
        });
        let claims = serde_json::json!({
            "scp": scopes.to_string(),
            "aud": [self.config.instance_url],
            "sub": format!("uid:{}", user.id),
            "nbf": now,
            "mty": "oauth",
            "sfi": secret::new_jwt_session_id(now_ms, self.rng()),
            "roles": [],
            "iss": self.config.issuer,
            "hsc": false,
            "exp": now + minutes * 60,
            "iat": now,
            "client_id": app.consumer_key,
        });
        Ok(key.sign_jwt_with_header(&header, &claims)?)
    }

    /// An RS256 ID token (salesforce-wire.md §6.7): `sub` is the identity URL, `aud` the consumer key.
    /// `custom_permissions` is the claim computed beforehand, when the app's settings ask for it.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn id_token(
        &self,
        app: &App,
        user: &User,
        identity_url: &str,
        access_token: &str,
        nonce: Option<&str>,
        auth_time: i64,
        custom_permissions: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> Result<String, EngineError> {
        let now = self.clock.now_secs();
        let settings = &app.policy.id_token;
        let aud = if settings.audiences.is_empty() {
            serde_json::Value::String(app.consumer_key.clone())
        } else {
            let mut v = vec![serde_json::Value::String(app.consumer_key.clone())];
            v.extend(settings.audiences.iter().cloned().map(serde_json::Value::String));
            serde_json::Value::Array(v)
        };
        let mut claims = serde_json::json!({
            "at_hash": half_hash(access_token),
            "sub": identity_url,
            "aud": aud,
            "iss": self.config.issuer,
            "exp": now + settings.valid_minutes as i64 * 60,
            "iat": now,
            "auth_time": auth_time.div_euclid(1000),
            "azp": app.consumer_key,
        });
        if let (Some(n), Some(obj)) = (nonce, claims.as_object_mut()) {
            obj.insert("nonce".into(), n.into());
        }
        if settings.include_standard_claims {
            if let Some(obj) = claims.as_object_mut() {
                obj.insert("name".into(), user.display_name().into());
                obj.insert("given_name".into(), user.first_name.clone().into());
                obj.insert("family_name".into(), user.last_name.clone().into());
                obj.insert("preferred_username".into(), user.username.clone().into());
                obj.insert("email".into(), user.email.clone().into());
                obj.insert("email_verified".into(), true.into());
                obj.insert("locale".into(), user.locale.clone().into());
                obj.insert("zoneinfo".into(), user.timezone.clone().into());
                obj.insert("updated_at".into(), user.updated_at.div_euclid(1000).into());
            }
        }
        if settings.include_custom_attributes && !app.policy.custom_attributes.is_empty() {
            if let Some(obj) = claims.as_object_mut() {
                obj.insert("custom_attributes".into(), crate::model::attributes_json(&app.policy.custom_attributes));
            }
        }
        if let (Some(perms), Some(obj)) = (custom_permissions, claims.as_object_mut()) {
            obj.insert("custom_permissions".into(), perms.into());
        }
        Ok(self.keys().active.sign_jwt(&claims)?)
    }
}

/// What [`Engine::issue_tokens`] mints, and for which family.
pub(crate) struct Issue<'a> {
    family: &'a TokenFamily,
    user: &'a User,
    client: &'a Client,
    nonce: Option<&'a str>,
    with_refresh: bool,
    /// An ID token when the scopes include `openid` (the direct grants never return one, so
    /// they do not pay for the signature).
    with_id_token: bool,
    /// Whether the family is new and is stored with these tokens.
    new_family: bool,
    touch_refresh: Option<&'a TokenHash>,
}

impl<'a> Issue<'a> {
    /// An access token (and ID token for `openid`) that starts a new family: the direct grants.
    pub fn new(family: &'a TokenFamily, user: &'a User, client: &'a Client) -> Self {
        Issue {
            family,
            user,
            client,
            nonce: None,
            with_refresh: false,
            with_id_token: true,
            new_family: true,
            touch_refresh: None,
        }
    }
    /// Also a refresh token, when the scopes and the app's policy allow one.
    pub fn with_refresh(mut self) -> Self {
        self.with_refresh = true;
        self
    }
    pub fn without_id_token(mut self) -> Self {
        self.with_id_token = false;
        self
    }
    pub fn nonce(mut self, nonce: Option<&'a str>) -> Self {
        self.nonce = nonce;
        self
    }
    /// The family is already stored (a code redemption stores it; a refresh reuses it).
    pub fn stored_family(mut self) -> Self {
        self.new_family = false;
        self
    }
    /// Records the use of this refresh token with the issuance.
    pub fn touching(mut self, refresh: &'a TokenHash) -> Self {
        self.touch_refresh = Some(refresh);
        self
    }
}

/// PKCE at redemption (salesforce-wire.md §4.1; catalogue PK-03..PK-06).
fn check_pkce(code: &AuthCode, verifier: Option<&str>) -> Result<(), TokenError> {
    match (&code.code_challenge, verifier) {
        (None, None) => Ok(()),
        // A verifier for a code issued without a challenge is a downgrade attempt (PK-05).
        (None, Some(_)) => Err(OAuthError::invalid_grant("code_verifier was not expected for this code").into()),
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier must be provided").into()),
        (Some(challenge), Some(v)) => {
            if !super::authorize::is_verifier_shape(v) {
                return Err(OAuthError::invalid_request("invalid code_verifier").into());
            }
            let computed = match code.code_challenge_method.unwrap_or(PkceMethod::S256) {
                PkceMethod::S256 => {
                    use base64::Engine as _;
                    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, v.as_bytes());
                    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
                }
                PkceMethod::Plain => v.to_string(),
            };
            if secret::ct_eq_str(&computed, challenge) {
                Ok(())
            } else {
                Err(OAuthError::invalid_request("invalid code verifier").into())
            }
        }
    }
}
