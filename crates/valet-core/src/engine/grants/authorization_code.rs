//! The authorization code grant (web server flow, salesforce-wire.md §4.1): one redemption per
//! code, PKCE, and revocation of everything a replayed code issued.

use valet_proto::token::TokenResponse;
use valet_proto::OAuthError;

use crate::model::*;
use crate::secret::{self, TokenHash};
use crate::store::StoreError;

use super::super::issue::Issue;
use super::super::token::{ClientAuth, TokenError};
use super::super::Engine;

impl Engine {
    pub(crate) async fn redeem_code(
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
}

/// PKCE at redemption (salesforce-wire.md §4.1; catalogue PK-03..PK-06).
fn check_pkce(code: &AuthCode, verifier: Option<&str>) -> Result<(), TokenError> {
    match (&code.code_challenge, verifier) {
        (None, None) => Ok(()),
        // A verifier for a code issued without a challenge is a downgrade attempt (PK-05).
        (None, Some(_)) => Err(OAuthError::invalid_grant("code_verifier was not expected for this code").into()),
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier must be provided").into()),
        (Some(challenge), Some(v)) => {
            if !super::super::authorize::is_verifier_shape(v) {
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
