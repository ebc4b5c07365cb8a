//! Throttling of everything that checks a secret a person can guess: passwords (the login
//! page, the username-password grant, the headless code-and-credentials flow) and device user
//! codes. Attempts are counted in the database *before* the secret is checked, one atomic
//! statement per counter, so concurrent guesses cannot all slip under the limit, and every
//! node of a PostgreSQL deployment shares the counts. A success gives its attempt back.

use std::net::IpAddr;

use crate::clock::Millis;
use crate::model::User;

use super::resource::LoginFailure;
use super::{Engine, EngineError};

/// Counters run in fixed windows of 15 minutes from their first attempt.
pub const WINDOW_MS: i64 = 15 * 60 * 1000;
/// Password attempts per username per window: past it the account is locked until the
/// window ends, on every path that authenticates the user.
pub const PER_USER: u32 = 5;
/// Password attempts per client address per window (many users behind one NAT log in).
pub const PER_ADDRESS: u32 = 20;
/// Device user-code entries per signed-in user, and per address, per window.
pub const DEVICE_PER_USER: u32 = 5;
pub const DEVICE_PER_ADDRESS: u32 = 30;

/// Whether an attempt may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    /// Refused without checking anything: try again after this long.
    Closed {
        retry_after_ms: i64,
    },
}

fn user_key(username: &str) -> String {
    format!("login:user:{}", username.trim().to_lowercase())
}

fn address_key(kind: &str, ip: IpAddr) -> String {
    format!("{kind}:ip:{ip}")
}

impl Engine {
    /// Counts one attempt against each `(key, limit)`; closed if any is now past its limit.
    async fn count_attempts(&self, keys: &[(String, u32)]) -> Result<Gate, EngineError> {
        let now: Millis = self.clock.now_ms();
        let mut gate = Gate::Open;
        for (key, limit) in keys {
            let (count, ends) = self.store.count_attempt(key, now, WINDOW_MS).await?;
            if count > *limit {
                let retry_after_ms = (ends - now).max(1000);
                gate = match gate {
                    Gate::Closed { retry_after_ms: r } => Gate::Closed { retry_after_ms: r.max(retry_after_ms) },
                    Gate::Open => Gate::Closed { retry_after_ms },
                };
            }
        }
        Ok(gate)
    }

    /// Checks a username and password as every password path must: throttled per username
    /// and per client address (counted first), then verified. A locked account is refused
    /// without its password being checked.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<Result<User, LoginFailure>, EngineError> {
        let mut keys = vec![(user_key(username), PER_USER)];
        if let Some(ip) = client_ip {
            keys.push((address_key("login", ip), PER_ADDRESS));
        }
        if let Gate::Closed { retry_after_ms } = self.count_attempts(&keys).await? {
            tracing::warn!("login throttled");
            return Ok(Err(LoginFailure::Throttled { retry_after_ms }));
        }
        let outcome = self.check_login(username, password).await?;
        if outcome.is_ok() {
            // A success clears the account's count and gives the address its attempt back.
            self.store.forgive_attempt(&keys[0].0, true).await?;
            if let Some((key, _)) = keys.get(1) {
                self.store.forgive_attempt(key, false).await?;
            }
        }
        Ok(outcome)
    }

    /// Whether the account is locked by failed password attempts: then every path that
    /// authenticates the user (JWT bearer, token exchange, device approval) refuses it too.
    pub async fn locked_out(&self, username: &str) -> Result<bool, EngineError> {
        Ok(self.store.attempts(&user_key(username), self.clock.now_ms()).await? >= PER_USER)
    }

    /// Counts one device user-code entry by `user` from `client_ip`.
    pub(crate) async fn count_device_attempt(
        &self,
        user: &User,
        client_ip: Option<IpAddr>,
    ) -> Result<Gate, EngineError> {
        let mut keys = vec![(format!("device:user:{}", user.id), DEVICE_PER_USER)];
        if let Some(ip) = client_ip {
            keys.push((address_key("device", ip), DEVICE_PER_ADDRESS));
        }
        self.count_attempts(&keys).await
    }

    /// Gives back a device entry that named a real code (only guesses count).
    pub(crate) async fn forgive_device_attempt(
        &self,
        user: &User,
        client_ip: Option<IpAddr>,
    ) -> Result<(), EngineError> {
        self.store.forgive_attempt(&format!("device:user:{}", user.id), false).await?;
        if let Some(ip) = client_ip {
            self.store.forgive_attempt(&address_key("device", ip), false).await?;
        }
        Ok(())
    }
}
