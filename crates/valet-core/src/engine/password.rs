//! User passwords: Argon2id, run off the async runtime. Unknown users are checked against a
//! dummy hash so that timing does not reveal which usernames exist.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::EngineError;

/// Hashes a password into a PHC string.
pub async fn hash(password: String, salt: [u8; 16]) -> Result<String, EngineError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&salt).map_err(|e| EngineError::Internal(e.to_string()))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| EngineError::Internal(e.to_string()))
    })
    .await
    .map_err(|e| EngineError::Internal(e.to_string()))?
}

/// A hash of a random password, verified against when the user does not exist.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0LmXZx9IBqWQ7O3l6bVn0sWvKbsb1iW1vKp2JxGnM8s";

/// Verifies a password; `None` for the stored hash means "no such user" and still costs the
/// same time.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    let exists = stored.is_some();
    let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_string());
    let ok = tokio::task::spawn_blocking(move || match PasswordHash::new(&stored) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    })
    .await
    .unwrap_or(false);
    ok && exists
}

/// Minimum rules for passwords an admin sets.
pub fn check_strength(password: &str) -> Result<(), String> {
    if password.chars().count() < 8 {
        return Err("password must be at least 8 characters".into());
    }
    if password.len() > 1024 {
        return Err("password must be at most 1024 bytes".into());
    }
    Ok(())
}
