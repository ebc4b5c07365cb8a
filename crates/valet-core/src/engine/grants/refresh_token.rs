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
}
