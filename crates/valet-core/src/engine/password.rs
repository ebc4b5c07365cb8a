//! User passwords: Argon2id, run off the async runtime. Unknown users are checked against a
//! dummy hash so that timing does not reveal which usernames exist.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use super::EngineError;

/// Argon2's working memory is reserved at least this big. glibc serves an allocation this large
/// (over its 32 MiB ceiling for the dynamic mmap threshold) with a mapping of its own and
/// unmaps it on free, and only the blocks the hash uses (19 MiB by default) are ever touched.
/// Left to the crate, the 19 MiB block vector raised glibc's threshold on the first login and
/// every later one came from the heap, which glibc kept: 20 MiB of idle RSS after a login.
const WORKING_MEMORY_RESERVE: usize = 33 << 20;

/// Runs Argon2 with working memory the process gives back when it is done.
fn argon2_into(argon: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), argon2::Error> {
    let blocks = argon.params().block_count();
    let mut memory: Vec<Block> = Vec::with_capacity(blocks.max(WORKING_MEMORY_RESERVE / Block::SIZE));
    memory.resize(blocks, Block::default());
    argon.hash_password_into_with_memory(password, salt, out, &mut memory)
}

/// Hashes a password into a PHC string (Argon2id, the crate's default parameters).
pub async fn hash(password: String, salt: [u8; 16]) -> Result<String, EngineError> {
    tokio::task::spawn_blocking(move || {
        let internal = |e: &dyn std::fmt::Display| EngineError::Internal(e.to_string());
        let argon = Argon2::default();
        let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
        argon2_into(&argon, password.as_bytes(), &salt, &mut out).map_err(|e| internal(&e))?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| internal(&e))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(argon.params()).map_err(|e| internal(&e))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| internal(&e))?),
        };
        Ok(phc.to_string())
    })
    .await
    .map_err(|e| EngineError::Internal(e.to_string()))?
}

/// A hash of a random password, verified against when the user does not exist.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0LmXZx9IBqWQ7O3l6bVn0sWvKbsb1iW1vKp2JxGnM8s";

/// Verifies a password; `None` for the stored hash means "no such user" and still costs the
/// same time.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    let exists = stored.is_some();
    let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_string());
    let ok = tokio::task::spawn_blocking(move || verify_phc(password.as_bytes(), &stored).unwrap_or(false))
        .await
        .unwrap_or(false);
    ok && exists
}

/// Recomputes a PHC-encoded Argon2 hash with its own algorithm, version, parameters and salt,
/// and compares the outputs (`Output`'s equality is constant-time). `None` when the stored
/// string is not an Argon2 PHC hash.
fn verify_phc(password: &[u8], stored: &str) -> Option<bool> {
    let parsed = PasswordHash::new(stored).ok()?;
    let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
    let version = parsed.version.map_or(Some(Version::default()), |v| Version::try_from(v).ok())?;
    let params = Params::try_from(&parsed).ok()?;
    let expected = parsed.hash?;
    let mut salt = [0u8; 64];
    let salt = parsed.salt?.decode_b64(&mut salt).ok()?;
    let mut out = vec![0u8; expected.len()];
    argon2_into(&Argon2::new(algorithm, version, params), password, salt, &mut out).ok()?;
    Some(Output::new(&out).ok()? == expected)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    use super::*;

    #[tokio::test]
    async fn hashes_verify_both_ways_with_the_crate() {
        let phc = hash("correct horse".into(), [7u8; 16]).await.unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        // What the crate itself makes and checks is what Valet makes and checks.
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(Argon2::default().verify_password(b"correct horse", &parsed).is_ok());
        let salt = SaltString::encode_b64(&[7u8; 16]).unwrap();
        assert_eq!(Argon2::default().hash_password(b"correct horse", &salt).unwrap().to_string(), phc);
        assert!(verify("correct horse".into(), Some(phc.clone())).await);
        assert!(!verify("wrong horse".into(), Some(phc)).await);
        assert!(!verify("anything".into(), None).await);
        assert!(!verify("anything".into(), Some("not a phc string".into())).await);
        assert_eq!(verify_phc(b"x", DUMMY_HASH), Some(false));
    }
}
