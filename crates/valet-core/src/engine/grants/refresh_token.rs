//! The refresh token grant (salesforce-wire.md §4.2): the app's refresh-token policy, the org's
//! idle TTL, rotation with reuse detection and a grace window for retries.

use valet_proto::token::TokenResponse;
use valet_proto::OAuthError;

use crate::model::*;
use crate::scope::ScopeSet;
use crate::secret::{self, Secret, TokenHash};
use crate::store::StoreError;

use super::super::issue::Issue;
use super::super::token::{ClientAuth, TokenError};
use super::super::{Engine, EngineError};

/// Associated data for sealed refresh-token successors.
const SUCCESSOR_PURPOSE: &[u8] = b"valet-refresh-successor";

impl Engine {
    pub(crate) async fn refresh(
        &self,
        auth: ClientAuth,
        token: &str,
        scope: Option<&str>,
    ) -> Result<TokenResponse, TokenError> {
        let client = self
            .authenticate_client_at(
                &auth,
                |p| p.require_secret_for_refresh_token_flow,
                super::super::ip::IpCheck::Refresh,
            )
            .await?;
        let app = &client.app;
        let now = self.clock.now_ms();
        let (rt, family, reuse_successor) = self.usable_refresh_token(app, token, now).await?;
        let user = self.store.get_user(&rt.user_id).await?.ok_or_else(OAuthError::inactive_user)?;
        if !user.active {
            return Err(OAuthError::inactive_user().into());
        }
        let mut family = family;
        family.scopes = match scope {
            // A refresh may narrow its grant's scopes, never widen them.
            Some(s) => {
                let asked = ScopeSet::parse(s).map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
                if !asked.is_subset(&rt.scopes) {
                    return Err(OAuthError::invalid_scope("requested scope exceeds the original grant").into());
                }
                asked
            }
            None => rt.scopes.clone(),
        };
        // Without rotation the same refresh token stays in use: its last use is recorded with
        // the new access token, in the same write.
        let rotating = reuse_successor.is_none() && app.policy.refresh_token_rotation;
        let mut issue = Issue::new(&family, &user, &client).stored_family();
        if reuse_successor.is_none() && !rotating {
            issue = issue.touching(&rt.token_hash);
        }
        let mut resp = self.issue_tokens(issue).await?;
        if let Some(successor) = reuse_successor {
            resp.refresh_token = Some(successor.expose().to_string());
        } else if rotating {
            resp.refresh_token = Some(self.rotate(app, &rt, now).await?.expose().to_string());
        }
        Ok(resp)
    }

    /// The presented refresh token if it may be used now, with its family and, for a retry
    /// within the rotation grace window, the successor to hand back again. A rotated-out
    /// token used outside the window means the family is compromised: it is revoked
    /// (salesforce-wire.md §4.2).
    async fn usable_refresh_token(
        &self,
        app: &App,
        token: &str,
        now: i64,
    ) -> Result<(RefreshToken, TokenFamily, Option<Secret>), TokenError> {
        if token.len() > 512 {
            return Err(OAuthError::expired_refresh_token().into());
        }
        let (rt, family) = self
            .store
            .get_refresh_token_and_family(&TokenHash::of(token))
            .await?
            .ok_or_else(OAuthError::expired_refresh_token)?;
        if rt.app_id != app.id {
            return Err(OAuthError::expired_refresh_token().into());
        }
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
        if self.expired_by_policy(app, &rt, now).await? {
            return Err(OAuthError::expired_refresh_token().into());
        }
        let family = family.ok_or_else(OAuthError::expired_refresh_token)?;
        Ok((rt, family, reuse_successor))
    }

    /// The app's refresh-token policy, and the org's idle TTL on top of it.
    async fn expired_by_policy(&self, app: &App, rt: &RefreshToken, now: i64) -> Result<bool, TokenError> {
        let minute = 60_000i64;
        let by_app = match app.policy.refresh_token_policy {
            RefreshTokenPolicy::ValidUntilRevoked => false,
            RefreshTokenPolicy::ExpireImmediately => true,
            RefreshTokenPolicy::ExpireAfter { minutes } => rt.created_at + minutes as i64 * minute <= now,
            RefreshTokenPolicy::ExpireIfUnused { minutes } => rt.last_used_at + minutes as i64 * minute <= now,
        };
        let org_idle_days = self.store.get_org(&app.org_id).await?.and_then(|o| o.settings.idle_refresh_token_ttl_days);
        let by_org = org_idle_days.is_some_and(|days| rt.last_used_at + i64::from(days) * 24 * 60 * minute <= now);
        Ok(by_app || by_org)
    }

    /// Replaces `rt` by a new refresh token and returns it. If a concurrent request rotated it
    /// first, that is the same client retrying: within the grace window it gets the winner's
    /// successor; otherwise it is reuse, and the family is revoked.
    async fn rotate(&self, app: &App, rt: &RefreshToken, now: i64) -> Result<Secret, TokenError> {
        let new = secret::new_refresh_token(now, self.rng());
        // The successor keeps its predecessor's family, grant and absolute expiry.
        let record = RefreshToken {
            token_hash: new.hash(),
            created_at: now,
            last_used_at: now,
            revoked_at: None,
            replaced_by: None,
            successor_sealed: None,
            ..rt.clone()
        };
        let sealed = self.master.seal_for(SUCCESSOR_PURPOSE, new.expose().as_bytes()).map_err(EngineError::from)?;
        let rotated = match self.store.rotate_refresh_token(&rt.token_hash, &record, &sealed, now).await {
            Err(StoreError::NotFound) => return Err(self.vanished(app).await),
            rotated => rotated?,
        };
        if rotated {
            return Ok(new);
        }
        let successor = match self.store.get_refresh_token(&rt.token_hash).await? {
            Some(winner) if winner.replaced_by.is_some() => self.grace_successor(&winner, &app.policy, now).await?,
            _ => None,
        };
        match successor {
            Some(s) => Ok(s),
            None => {
                self.store.revoke_family(&rt.family_id, now).await?;
                Err(OAuthError::expired_refresh_token().into())
            }
        }
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
}
