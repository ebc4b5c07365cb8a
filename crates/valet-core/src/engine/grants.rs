//! The grants that need no browser: client credentials (§4.5), username-password (§4.7) and
//! the JWT bearer flow (§4.4, RFC 7523); the sections are those of salesforce-wire.md.

use valet_proto::token::TokenResponse;
use valet_proto::OAuthError;

use crate::model::*;
use crate::scope::ScopeSet;

use super::jwt::{TimeFault, TimeRules, UnverifiedJwt};
use super::token::{Client, ClientAuth, Issue, TokenError};
use super::Engine;

/// Clock skew allowed on assertion times (third parties report Salesforce allows 3 minutes).
/// An assertion may not claim to live longer than a day, which bounds the replay table.
const ASSERTION_TIMES: TimeRules = TimeRules { skew_secs: 180, max_lifetime_secs: Some(24 * 3600) };

impl Engine {
    /// Client credentials: the app acts as its configured Run-As user.
    pub(crate) async fn client_credentials(
        &self,
        auth: ClientAuth,
        scope: Option<&str>,
    ) -> Result<TokenResponse, TokenError> {
        if auth.secret.is_none() && auth.assertion.is_none() {
            return Err(OAuthError::invalid_client().into());
        }
        let client = self.authenticate_client(&auth, |_| true).await?;
        let app = &client.app;
        if !app.policy.enable_client_credentials_flow {
            return Err(OAuthError::unsupported_grant_type().into());
        }
        let Some(run_as) = &app.policy.client_credentials_user else {
            return Err(OAuthError::no_client_credentials_user().into());
        };
        let user = match self.store.get_user_by_username(run_as).await? {
            Some(u) if u.active && u.org_id == app.org_id => u,
            _ => return Err(OAuthError::no_client_credentials_user().into()),
        };
        let scopes = self.requested_scopes(app, scope)?;
        let family = self.new_family(app, &user, scopes, "client_credentials", None);
        let mut resp = self.issue_tokens(Issue::new(&family, &user, &client).without_id_token()).await?;
        resp.api_instance_url = Some(self.config.instance_url.clone());
        Ok(resp)
    }

    /// Username-password: blocked org-wide unless the org allows it; the client secret is
    /// required; every failure reads `authentication failure`, as on Salesforce.
    pub(crate) async fn password_grant(
        &self,
        auth: ClientAuth,
        username: &str,
        password: &str,
    ) -> Result<TokenResponse, TokenError> {
        let client = self.authenticate_client(&auth, |_| true).await?;
        let app = &client.app;
        let org = self.store.get_org(&app.org_id).await?;
        if !org.is_some_and(|o| o.settings.allow_username_password_flow) {
            return Err(OAuthError::authentication_failure().into());
        }
        // Throttled like the login page (per username and address); every refusal, a locked
        // account included, reads `authentication failure`, as on Salesforce.
        let user = match self.login(username, password, auth.client_ip).await? {
            Ok(u) if u.org_id == app.org_id => u,
            _ => return Err(OAuthError::authentication_failure().into()),
        };
        self.require_permitted(app, &user).await?;
        let scopes = app.scopes.without_refresh();
        let family = self.new_family(app, &user, scopes, "password", None);
        let mut resp = self.issue_tokens(Issue::new(&family, &user, &client).without_id_token()).await?;
        resp.scope = None;
        Ok(resp)
    }

    /// JWT bearer: the app is named by `iss`, the assertion is verified with the app's
    /// certificate, the user (`sub`) must have approved the app or be pre-authorized.
    pub(crate) async fn jwt_bearer(
        &self,
        assertion: &str,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<TokenResponse, TokenError> {
        let unverified = UnverifiedJwt::parse(assertion).ok_or_else(OAuthError::invalid_assertion)?;
        let iss = unverified.claims.get("iss").and_then(|v| v.as_str()).ok_or_else(OAuthError::invalid_assertion)?;
        let app = self.store.get_app_by_consumer_key(iss).await?.ok_or_else(OAuthError::invalid_client_id)?;
        // A certificate may be there for `private_key_jwt`; only the flag enables this grant.
        if !app.policy.enable_jwt_bearer_flow {
            return Err(OAuthError::oauth_flow_disabled().into());
        }
        let Some(pem) = app.policy.jwt_certificate_pem.as_deref() else {
            return Err(OAuthError::invalid_assertion().into());
        };
        if !unverified.verify_with_certificate(pem) {
            return Err(OAuthError::invalid_assertion().into());
        }
        super::ip::check(&app.policy, client_ip, super::ip::IpCheck::Login)?;
        if !self.audience_ok(unverified.claims.get("aud")) {
            return Err(OAuthError::invalid_audience().into());
        }
        let exp = match unverified.check_times(self.clock.now_secs(), ASSERTION_TIMES) {
            Ok(exp) => exp,
            Err(TimeFault::MissingExp | TimeFault::Expired) => {
                return Err(OAuthError::invalid_grant("expired or missing exp").into())
            }
            Err(_) => return Err(OAuthError::invalid_assertion().into()),
        };
        let claims = unverified.claims;
        let sub = claims
            .get("sub")
            .or_else(|| claims.get("prn"))
            .and_then(|v| v.as_str())
            .ok_or_else(OAuthError::invalid_assertion)?;
        let user = match self.store.get_user_by_username(sub).await? {
            Some(u) if u.active && u.org_id == app.org_id => u,
            _ => return Err(OAuthError::authentication_failure().into()),
        };
        // A signature does not unlock an account that failed its password checks.
        if self.locked_out(&user.username).await? {
            return Err(OAuthError::authentication_failure().into());
        }
        let scopes = match app.policy.permitted_users {
            PermittedUsers::AdminApprovedPreAuthorized => {
                self.require_permitted(&app, &user).await?;
                app.scopes.clone()
            }
            PermittedUsers::AllSelfAuthorized => match self.store.get_consent(&user.id, &app.id).await? {
                Some(c) => c.scopes.intersect(&app.scopes),
                None => return Err(OAuthError::not_approved().into()),
            },
        };
        let scopes = scopes.without_refresh();
        // Each assertion is good for one token (RFC 7523 §3, item 7): its `jti` is remembered
        // until it expires, or, since Salesforce's clients send none, the assertion itself.
        // Remembered last, when everything else holds, so a refused assertion is not spent;
        // the insert is atomic, so two concurrent uses cannot both get a token.
        let replay_key = match claims.get("jti").and_then(|v| v.as_str()) {
            Some(jti) if !jti.is_empty() && jti.len() <= 256 => format!("jti:{jti}"),
            Some(_) => return Err(OAuthError::invalid_assertion().into()),
            None => format!("sha256:{}", crate::secret::TokenHash::of(assertion).as_str()),
        };
        let expires_ms = (exp + ASSERTION_TIMES.skew_secs) * 1000;
        if !self.store.remember_jti(&format!("jwt-bearer:{}", app.consumer_key), &replay_key, expires_ms).await? {
            tracing::warn!(app = %app.id, "JWT bearer assertion replayed");
            return Err(OAuthError::invalid_grant("assertion replayed").into());
        }
        let client = Client { app, secret: None };
        let family = self.new_family(&client.app, &user, scopes, "jwt_bearer", None);
        let resp = self.issue_tokens(Issue::new(&family, &user, &client).without_id_token()).await?;
        Ok(TokenResponse {
            access_token: resp.access_token,
            scope: resp.scope,
            instance_url: resp.instance_url,
            id: resp.id,
            token_type: resp.token_type,
            ..Default::default()
        })
    }

    /// Valet's own login URL, with or without a trailing slash, and the configured aliases
    /// (by default Salesforce's login and test hosts, which clients hard-code).
    pub(crate) fn audience_ok(&self, aud: Option<&serde_json::Value>) -> bool {
        let ok = |a: &str| {
            let a = a.trim_end_matches('/');
            a == self.config.issuer || self.config.audience_aliases.iter().any(|x| x.trim_end_matches('/') == a)
        };
        match aud {
            Some(serde_json::Value::String(s)) => ok(s),
            Some(serde_json::Value::Array(v)) => v.iter().filter_map(|x| x.as_str()).any(ok),
            _ => false,
        }
    }

    /// Admin-approved apps admit only pre-authorized users (salesforce-wire.md §8.1).
    pub(crate) async fn require_permitted(&self, app: &App, user: &User) -> Result<(), TokenError> {
        if self.permitted(app, user).await? {
            Ok(())
        } else {
            Err(OAuthError::invalid_app_access().into())
        }
    }

    /// The granted scopes for a `scope` parameter: requested ∩ the app's (refresh scopes never
    /// apply to these flows); no parameter means the app's scopes.
    fn requested_scopes(&self, app: &App, scope: Option<&str>) -> Result<ScopeSet, TokenError> {
        let base = app.scopes.without_refresh();
        match scope {
            None => Ok(base),
            Some(s) => {
                let asked = ScopeSet::parse(s).map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
                let granted = asked.intersect(&base);
                if granted.is_empty() {
                    return Err(
                        OAuthError::invalid_scope("none of the requested scopes is allowed for this app").into()
                    );
                }
                Ok(granted)
            }
        }
    }

    /// The family that one authorization's tokens will belong to; it is stored with its first
    /// tokens (see [`Issue`]) or with the code redemption. `auth_time` is when the user
    /// authenticated (the code's, for a code redemption; now, for the direct grants).
    pub(crate) fn new_family(
        &self,
        app: &App,
        user: &User,
        scopes: ScopeSet,
        grant: &str,
        auth_time: Option<i64>,
    ) -> TokenFamily {
        let now = self.clock.now_ms();
        TokenFamily {
            id: self.new_family_id(),
            org_id: app.org_id.clone(),
            app_id: app.id.clone(),
            user_id: user.id.clone(),
            scopes,
            grant: grant.into(),
            auth_time: auth_time.unwrap_or(now),
            created_at: now,
            revoked_at: None,
        }
    }
}
