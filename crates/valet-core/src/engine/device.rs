//! The device flow: Salesforce's variant (started at the token endpoint with
//! `response_type=device_code`, polled with `grant_type=device` and the code in `code`) and
//! RFC 8628 (its own endpoint and the URN grant), sharing one implementation (salesforce-wire.md §4.6).

use serde::Serialize;
use valet_proto::token::TokenResponse;
use valet_proto::OAuthError;

use crate::model::*;
use crate::scope::ScopeSet;
use crate::secret::{Secret, TokenHash};

use super::issue::Issue;
use super::token::{ClientAuth, TokenError};
use super::{Engine, EngineError};

/// Letters and digits that cannot be confused with each other (no 0/O, 1/I/L, no vowels so
/// that codes spell no words): 27^8 ≈ 2.8e11 codes, guessed only through a throttled page.
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKMNPQRSTVWXZ23456789";
const DEVICE_CODE_LIFETIME_MS: i64 = 10 * 60 * 1000;
const INTERVAL_SECS: i64 = 5;

/// The device authorization response (Salesforce reads `device_code`, `user_code`,
/// `verification_uri` and `interval`; RFC 8628 clients also `expires_in`).
#[derive(Debug, Clone, Serialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub interval: i64,
    pub expires_in: i64,
}

/// Normalises what a person typed: case, spaces and a separating hyphen do not matter.
pub fn normalize_user_code(input: &str) -> String {
    input.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

impl Engine {
    pub async fn device_start(
        &self,
        auth: Option<ClientAuth>,
        scope: Option<&str>,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<DeviceAuthorization, TokenError> {
        let mut auth = auth.ok_or_else(OAuthError::invalid_client_id)?;
        auth.client_ip = client_ip;
        let client = self.authenticate_client(&auth, |_| false).await?;
        let app = &client.app;
        if !app.policy.enable_device_flow {
            return Err(OAuthError::oauth_flow_disabled().into());
        }
        let scopes = match scope {
            None => app.scopes.clone(),
            Some(s) => ScopeSet::parse(s).map_err(|e| OAuthError::invalid_scope(e.to_string()))?.intersect(&app.scopes),
        };
        if scopes.is_empty() {
            return Err(OAuthError::invalid_scope("none of the requested scopes is allowed for this app").into());
        }
        let now = self.clock.now_ms();
        let device_code = Secret::new(crate::rand::token_chars(self.rng(), 64));
        // A collision of user codes is vanishingly rare; retry a few times on Conflict.
        for _ in 0..5 {
            let user_code = self.new_user_code();
            let record = DeviceCode {
                device_code_hash: device_code.hash(),
                user_code_hash: TokenHash::of(&user_code),
                org_id: app.org_id.clone(),
                app_id: app.id.clone(),
                scopes: scopes.clone(),
                status: DeviceStatus::Pending,
                user_id: None,
                interval_secs: INTERVAL_SECS,
                last_polled_at: None,
                created_at: now,
                expires_at: now + DEVICE_CODE_LIFETIME_MS,
            };
            match self.store.insert_device_code(&record).await {
                Ok(()) => {
                    let verification_uri = format!("{}/setup/connect", self.config.issuer);
                    return Ok(DeviceAuthorization {
                        device_code: device_code.expose().to_string(),
                        verification_uri_complete: format!("{verification_uri}?user_code={user_code}"),
                        user_code,
                        verification_uri,
                        interval: INTERVAL_SECS,
                        expires_in: DEVICE_CODE_LIFETIME_MS / 1000,
                    });
                }
                Err(crate::store::StoreError::Conflict(_)) => continue,
                // The app was deleted since it authenticated.
                Err(crate::store::StoreError::NotFound) => return Err(OAuthError::invalid_client_id().into()),
                Err(e) => return Err(e.into()),
            }
        }
        Err(EngineError::Internal("could not allocate a user code".into()).into())
    }

    fn new_user_code(&self) -> String {
        let mut out = String::with_capacity(8);
        let mut buf = [0u8; 32];
        while out.len() < 8 {
            self.rng.fill(&mut buf);
            for b in buf {
                // Rejection sampling keeps the distribution uniform.
                if (b as usize) < 256 - 256 % USER_CODE_ALPHABET.len() && out.len() < 8 {
                    out.push(USER_CODE_ALPHABET[b as usize % USER_CODE_ALPHABET.len()] as char);
                }
            }
        }
        out
    }

    /// Polling: `authorization_pending` until the user decides, `slow_down` when polled faster
    /// than the interval, then tokens exactly once.
    pub(crate) async fn device_poll(&self, auth: ClientAuth, device_code: &str) -> Result<TokenResponse, TokenError> {
        let client = self.authenticate_client(&auth, |_| false).await?;
        if device_code.len() > 256 {
            return Err(OAuthError::invalid_grant("invalid device code").into());
        }
        let hash = TokenHash::of(device_code);
        let now = self.clock.now_ms();
        let code =
            self.store.get_device_code(&hash).await?.ok_or_else(|| OAuthError::invalid_grant("invalid device code"))?;
        if code.app_id != client.app.id {
            return Err(OAuthError::invalid_grant("invalid device code").into());
        }
        if code.expires_at <= now {
            return Err(OAuthError::expired_device_code().into());
        }
        let previous = self.store.poll_device_code(&hash, now).await?;
        match code.status {
            DeviceStatus::Pending => {
                if previous.is_some_and(|p| now - p < code.interval_secs * 1000) {
                    return Err(OAuthError::slow_down().into());
                }
                Err(OAuthError::authorization_pending().into())
            }
            DeviceStatus::Denied => Err(OAuthError::access_denied().into()),
            DeviceStatus::Consumed => Err(OAuthError::invalid_grant("the device code was already used").into()),
            DeviceStatus::Approved => {
                let user_id = code
                    .user_id
                    .clone()
                    .ok_or_else(|| EngineError::Internal("approved device code without a user".into()))?;
                let user = match self.store.get_user(&user_id).await? {
                    Some(u) if u.active => u,
                    _ => return Err(OAuthError::inactive_user().into()),
                };
                if !self.store.consume_device_code(&hash, now).await? {
                    return Err(OAuthError::invalid_grant("the device code was already used").into());
                }
                let family = self.new_family(&client.app, &user, code.scopes.clone(), "device", None);
                self.issue_tokens(Issue::new(&family, &user, &client).with_refresh()).await
            }
        }
    }

    /// The pending authorization a user code names, with its app (for the approval page).
    pub async fn device_lookup(&self, user_code: &str) -> Result<Option<(DeviceCode, App)>, EngineError> {
        let normalized = normalize_user_code(user_code);
        if normalized.len() != 8 {
            return Ok(None);
        }
        let Some(code) = self.store.get_device_code_by_user_code(&TokenHash::of(&normalized)).await? else {
            return Ok(None);
        };
        if code.status != DeviceStatus::Pending || code.expires_at <= self.clock.now_ms() {
            return Ok(None);
        }
        let Some(app) = self.store.get_app(&code.app_id).await? else { return Ok(None) };
        Ok(Some((code, app)))
    }

    /// A user code typed on the verification page by a signed-in user: throttled per user and
    /// address (counted before the lookup; a code that exists gives its attempt back), so
    /// user codes cannot be guessed (RFC 8628 §5.1).
    pub async fn device_entry(
        &self,
        user_code: &str,
        user: &User,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<DeviceEntry, EngineError> {
        if let super::throttle::Gate::Closed { retry_after_ms } = self.count_device_attempt(user, client_ip).await? {
            return Ok(DeviceEntry::Throttled { retry_after_ms });
        }
        match self.device_lookup(user_code).await? {
            Some((code, app)) if code.org_id == user.org_id => {
                self.forgive_device_attempt(user, client_ip).await?;
                Ok(DeviceEntry::Found(Box::new((code, app))))
            }
            _ => Ok(DeviceEntry::Unknown),
        }
    }

    /// The signed-in user's decision on the approval page. Approval is remembered as consent.
    /// The code is entered again here, so it is throttled like the entry form; a locked
    /// account cannot approve.
    pub async fn device_decide(
        &self,
        user_code: &str,
        user: &User,
        allow: bool,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<DeviceDecision, EngineError> {
        if self.locked_out(&user.username).await? {
            return Ok(DeviceDecision::Locked);
        }
        let (code, app) = match self.device_entry(user_code, user, client_ip).await? {
            DeviceEntry::Found(found) => *found,
            DeviceEntry::Unknown => return Ok(DeviceDecision::UnknownCode),
            DeviceEntry::Throttled { retry_after_ms } => return Ok(DeviceDecision::Throttled { retry_after_ms }),
        };
        if allow && !self.permitted(&app, user).await? {
            return Ok(DeviceDecision::NotPermitted);
        }
        let status = if allow { DeviceStatus::Approved } else { DeviceStatus::Denied };
        if !self.store.decide_device_code(&code.device_code_hash, status, &user.id, self.clock.now_ms()).await? {
            return Ok(DeviceDecision::UnknownCode);
        }
        if allow {
            let mut scopes = code.scopes.clone();
            if let Some(old) = self.store.get_consent(&user.id, &app.id).await? {
                for s in old.scopes.iter() {
                    scopes.insert(s);
                }
            }
            let consent =
                Consent { user_id: user.id.clone(), app_id: app.id.clone(), scopes, created_at: self.clock.now_ms() };
            match self.store.upsert_consent(&consent).await {
                // The app was deleted meanwhile: its code is gone with it.
                Err(crate::store::StoreError::NotFound) => return Ok(DeviceDecision::UnknownCode),
                other => other?,
            }
            Ok(DeviceDecision::Approved)
        } else {
            Ok(DeviceDecision::Denied)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceDecision {
    Approved,
    Denied,
    UnknownCode,
    NotPermitted,
    /// Too many codes entered: nothing was looked up.
    Throttled {
        retry_after_ms: i64,
    },
    /// The user's account is locked by failed logins.
    Locked,
}

/// A user code entered on the verification page.
#[derive(Debug, Clone)]
pub enum DeviceEntry {
    /// A pending code of the user's org, and its app (boxed: the other answers are small).
    Found(Box<(DeviceCode, App)>),
    Unknown,
    Throttled {
        retry_after_ms: i64,
    },
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_codes_normalise() {
        assert_eq!(super::normalize_user_code(" bcdf-ghjk "), "BCDFGHJK");
    }
}
