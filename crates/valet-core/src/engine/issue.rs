//! Minting what a grant grants: the access token (opaque or JWT), the refresh token, the ID
//! token, stored as one issuance, and Salesforce's response around them.

use valet_proto::token::TokenResponse;
use valet_proto::OAuthError;

use crate::keys::half_hash;
use crate::model::*;
use crate::scope::ScopeSet;
use crate::secret::{self, Secret, TokenHash};
use crate::store::{Issuance, StoreError};

use super::token::{Client, TokenError};
use super::{Engine, EngineError};

impl Engine {
    /// Mints the access token (and refresh and ID tokens when the scopes call for them) for
    /// a family, and builds Salesforce's response.
    pub(crate) async fn issue_tokens(&self, issue: Issue<'_>) -> Result<TokenResponse, TokenError> {
        let Issue { family, user, client, nonce, with_refresh, with_id_token, new_family, touch_refresh } = issue;
        let app = &client.app;
        let now = self.clock.now_ms();
        let (access, access_record) = self.new_access_token(app, user, family, now)?;
        let (refresh, refresh_record) =
            if with_refresh { self.new_refresh_token(app, user, family, now).unzip() } else { (None, None) };
        let refresh = refresh.map(|r| r.expose().to_string());
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

    /// The access token for a family (a JWT when the app's policy says so, opaque otherwise)
    /// and the row that stores its hash.
    fn new_access_token(
        &self,
        app: &App,
        user: &User,
        family: &TokenFamily,
        now: i64,
    ) -> Result<(Secret, AccessToken), TokenError> {
        let (access, lifetime) = if app.policy.jwt_access_tokens {
            let minutes = app.policy.jwt_access_token_minutes as i64;
            (Secret::new(self.jwt_access_token(app, user, &family.scopes, now, minutes)?), minutes * 60_000)
        } else {
            (
                secret::new_access_token(&family.org_id, now, self.rng()),
                app.policy.session_timeout_minutes as i64 * 60_000,
            )
        };
        let record = AccessToken {
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
        Ok((access, record))
    }

    /// A refresh token for a family, when its scopes ask for one and the app's policy does not
    /// expire them at once; it expires with the policy's absolute lifetime, if any.
    fn new_refresh_token(
        &self,
        app: &App,
        user: &User,
        family: &TokenFamily,
        now: i64,
    ) -> Option<(Secret, RefreshToken)> {
        let policy = app.policy.refresh_token_policy;
        if !family.scopes.allows_refresh() || policy == RefreshTokenPolicy::ExpireImmediately {
            return None;
        }
        let rt = secret::new_refresh_token(now, self.rng());
        let expires_at = match policy {
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
        Some((rt, record))
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
