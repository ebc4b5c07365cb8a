//! Bearer secrets: generation in Salesforce's shapes, hashing for storage, constant-time checks.
//!
//! Every value here is server-generated with at least 256 bits of entropy, so a single SHA-256
//! is the right storage hash (a slow password hash would add nothing but latency).

use std::fmt;

use subtle::ConstantTimeEq;

use crate::ids::SfId;
use crate::rand::{self, Random};

/// A secret in memory. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The plaintext, for the one place that must hand it out (a response body).
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// SHA-256 of a bearer value, hex-encoded: what the database holds instead of the value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    pub fn of(value: &str) -> TokenHash {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, value.as_bytes());
        TokenHash(hex::encode(d.as_ref()))
    }
    pub fn from_stored(hex: String) -> TokenHash {
        TokenHash(hex)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Constant-time comparison with another hash.
    pub fn ct_eq(&self, other: &TokenHash) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A prefix is enough to correlate log lines; never the whole digest.
        write!(f, "TokenHash({}…)", &self.0[..8.min(self.0.len())])
    }
}

/// `<15-char org id>!AQ<96 chars>`: the shape the sf CLI parses the org id from.
pub fn new_access_token(org: &SfId, rng: &dyn Random) -> Secret {
    Secret(format!("{}!AQ{}", org.id15(), rand::token_chars(rng, 96)))
}

/// `5Aep861<80 chars>==`, matching `[A-Za-z0-9._-]+={0,2}` (sf CLI auth URLs).
pub fn new_refresh_token(rng: &dyn Random) -> Secret {
    Secret(format!("5Aep861{}==", rand::token_chars(rng, 80)))
}

/// `aPrx<80 chars>==` as in Salesforce's web server flow redirect.
pub fn new_authorization_code(rng: &dyn Random) -> Secret {
    Secret(format!("aPrx{}==", rand::token_chars(rng, 80)))
}

/// Consumer key: `3MVG9` + 80 alphanumerics (about 476 bits; it is an identifier, not a secret).
pub fn new_consumer_key(rng: &dyn Random) -> String {
    format!("3MVG9{}", rand::alnum(rng, 80))
}

/// Consumer secret: 64 uppercase hex characters (256 bits).
pub fn new_consumer_secret(rng: &dyn Random) -> Secret {
    Secret(rand::hex_upper(rng, 32))
}

/// A browser session id or CSRF token: 43 URL-safe characters (256 bits).
pub fn new_session_token(rng: &dyn Random) -> Secret {
    Secret(rand::alnum(rng, 43))
}

/// Constant-time string equality for secrets that are compared directly.
pub fn ct_eq_str(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Base64(HMAC-SHA256(key, message)), Salesforce's token-response `signature`.
pub fn hmac_sha256_b64(key: &[u8], message: &str) -> String {
    use base64::Engine;
    let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
    let tag = aws_lc_rs::hmac::sign(&k, message.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::KeyPrefix;

    #[test]
    fn token_shapes() {
        let rng = crate::rand::OsRandom;
        let org = SfId::generate(KeyPrefix::Organization, &rng);
        let at = new_access_token(&org, &rng);
        let (prefix, rest) = at.expose().split_once('!').unwrap();
        assert_eq!(prefix, org.id15());
        assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_'));
        let rt = new_refresh_token(&rng);
        assert!(rt.expose().ends_with("=="));
        assert!(!rt.expose().contains([':', '@', '/', '+']));
        assert_eq!(new_consumer_secret(&rng).expose().len(), 64);
        assert_eq!(format!("{:?}", at), "Secret(<redacted>)");
    }

    #[test]
    fn hashes_compare() {
        let a = TokenHash::of("x");
        assert!(a.ct_eq(&TokenHash::of("x")));
        assert!(!a.ct_eq(&TokenHash::of("y")));
        assert_eq!(a.as_str().len(), 64);
    }
}
