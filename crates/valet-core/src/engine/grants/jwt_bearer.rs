//! The JWT bearer grant (salesforce-wire.md §4.4, RFC 7523): an assertion signed with the
//! app's certificate, one token per assertion.

use valet_proto::token::TokenResponse;
use valet_proto::OAuthError;

use crate::model::*;

use super::super::issue::Issue;
use super::super::jwt::{TimeFault, TimeRules, UnverifiedJwt};
use super::super::token::{Client, TokenError};
use super::super::Engine;

/// Clock skew allowed on assertion times (third parties report Salesforce allows 3 minutes).
/// An assertion may not claim to live longer than a day, which bounds the replay table.
const ASSERTION_TIMES: TimeRules = TimeRules { skew_secs: 180, max_lifetime_secs: Some(24 * 3600) };

impl Engine {
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
        super::super::ip::check(&app.policy, client_ip, super::super::ip::IpCheck::Login)?;
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
}
