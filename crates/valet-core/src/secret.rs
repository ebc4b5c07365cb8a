//! Bearer secrets: generation in Salesforce's shapes, hashing for storage, constant-time checks.
//!
//! Every value here is server-generated with at least 256 bits of entropy, so a single SHA-256
//! is the right storage hash (a slow password hash would add nothing but latency).

use std::fmt;

use subtle::ConstantTimeEq;

use crate::clock::{self, Millis};
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
    /// The storage key of a bearer value: its SHA-256 in hex, preceded by the value's time head
    /// when it has one (access tokens, refresh tokens and codes issued since the head was
    /// added), so that rows written one after another share B-tree pages. A deterministic
    /// function of the value: storing and looking up agree without knowing the value's kind.
    pub fn of(value: &str) -> TokenHash {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, value.as_bytes());
        let mut key = String::with_capacity(TIME_HEAD_LEN + 64);
        if let Some(head) = time_head(value) {
            key.push_str(&head);
        }
        let mut digits = [0u8; 64];
        if hex::encode_to_slice(d.as_ref(), &mut digits).is_ok() {
            // Hex digits are ASCII: this conversion cannot fail.
            key.push_str(std::str::from_utf8(&digits).unwrap_or_default());
        }
        TokenHash(key)
    }
    /// The key older releases stored the same value under (the bare digest), for a lookup that
    /// must still find rows written before the time head existed.
    pub fn legacy(&self) -> Option<TokenHash> {
        (self.0.len() == TIME_HEAD_LEN + 64).then(|| TokenHash(self.0[TIME_HEAD_LEN..].to_string()))
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
        let shown = self.0.len().saturating_sub(56).max(8).min(self.0.len());
        write!(f, "TokenHash({}…)", &self.0[..shown])
    }
}

/// Characters of the creation time at the start of an access token's, refresh token's or
/// code's random part ([`crate::clock::sortable`]).
const TIME_HEAD_LEN: usize = 8;
const ACCESS_TOKEN_MARK: &str = "!AQ";
const REFRESH_TOKEN_PREFIX: &str = "5Aep861";
const CODE_PREFIX: &str = "aPrx";

/// The time head of a value shaped like one of ours: the 8 sortable characters after the
/// kind's fixed prefix, or at the start of a JWT access token's `sfi` claim. The head makes
/// storage keys time-ordered; it only reveals when the token was issued, which its holder
/// knows anyway (`issued_at`, `iat`).
fn time_head(value: &str) -> Option<String> {
    let start = if value.get(15..18) == Some(ACCESS_TOKEN_MARK) {
        18
    } else if value.starts_with(REFRESH_TOKEN_PREFIX) {
        REFRESH_TOKEN_PREFIX.len()
    } else if value.starts_with(CODE_PREFIX) {
        CODE_PREFIX.len()
    } else if value.starts_with("eyJ") {
        return jwt_time_head(value);
    } else {
        return None;
    };
    sortable_head(value.get(start..)?)
}

/// The first 8 characters of `s` when they can be a [`clock::sortable`] time.
fn sortable_head(s: &str) -> Option<String> {
    let head = s.get(..TIME_HEAD_LEN)?;
    head.bytes().all(|b| b.is_ascii_alphanumeric()).then(|| head.to_string())
}

/// The head of a compact JWT's `sfi` claim (Valet's JWT access tokens start it with their
/// issue time). Costs a base64 decode and a JSON parse of the payload, ≈ 2 µs, per lookup.
fn jwt_time_head(jwt: &str) -> Option<String> {
    use base64::Engine;
    let mut parts = jwt.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || payload.len() > 8192 {
        return None;
    }
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    #[derive(serde::Deserialize)]
    struct Claims<'a> {
        #[serde(borrow)]
        sfi: Option<std::borrow::Cow<'a, str>>,
    }
    let claims: Claims<'_> = serde_json::from_slice(&bytes).ok()?;
    sortable_head(&claims.sfi?)
}

/// A JWT access token's `sfi` claim: its issue time (8 sortable characters), then 8 random
/// alphanumerics; what [`TokenHash::of`] orders JWT access tokens by.
pub fn new_jwt_session_id(now: Millis, rng: &dyn Random) -> String {
    let mut sfi = clock::sortable(now);
    sfi.push_str(&rand::alnum(rng, 16 - TIME_HEAD_LEN));
    sfi
}

/// `<15-char org id>!AQ<96 chars>`: the shape the sf CLI parses the org id from. The first 8
/// of the 96 are the issue time ([`TokenHash::of`]), the other 88 random (528 bits).
pub fn new_access_token(org: &SfId, now: Millis, rng: &dyn Random) -> Secret {
    Secret(format!(
        "{}{ACCESS_TOKEN_MARK}{}{}",
        org.id15(),
        clock::sortable(now),
        rand::token_chars(rng, 96 - TIME_HEAD_LEN)
    ))
}

/// `5Aep861<80 chars>==`, matching `[A-Za-z0-9._-]+={0,2}` (sf CLI auth URLs): the issue
/// time, then 72 random characters (432 bits).
pub fn new_refresh_token(now: Millis, rng: &dyn Random) -> Secret {
    Secret(format!("{REFRESH_TOKEN_PREFIX}{}{}==", clock::sortable(now), rand::token_chars(rng, 80 - TIME_HEAD_LEN)))
}

/// `aPrx<80 chars>==` as in Salesforce's web server flow redirect: the issue time, then 72
/// random characters.
pub fn new_authorization_code(now: Millis, rng: &dyn Random) -> Secret {
    Secret(format!("{CODE_PREFIX}{}{}==", clock::sortable(now), rand::token_chars(rng, 80 - TIME_HEAD_LEN)))
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
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::ids::KeyPrefix;

    #[test]
    fn token_shapes() {
        let rng = crate::rand::OsRandom;
        let org = SfId::generate(KeyPrefix::Organization, &rng);
        let at = new_access_token(&org, 1_764_000_000_000, &rng);
        let (prefix, rest) = at.expose().split_once('!').unwrap();
        assert_eq!(prefix, org.id15());
        assert_eq!(rest.len(), 98);
        assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_'));
        let rt = new_refresh_token(1_764_000_000_000, &rng);
        assert_eq!(rt.expose().len(), 89);
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
        assert!(a.legacy().is_none());
    }

    #[test]
    fn keys_of_issued_values_sort_by_issue_time() {
        let rng = crate::rand::OsRandom;
        let org = SfId::generate(KeyPrefix::Organization, &rng);
        let makers: [&dyn Fn(Millis) -> Secret; 3] =
            [&|t| new_access_token(&org, t, &rng), &|t| new_refresh_token(t, &rng), &|t| {
                new_authorization_code(t, &rng)
            }];
        for make in makers {
            let (early, late) = (make(1_764_000_000_000), make(1_764_000_000_001));
            let (ek, lk) = (early.hash(), late.hash());
            assert!(ek.as_str() < lk.as_str());
            assert_eq!(ek.as_str().len(), 72);
            // The legacy key is the bare digest older releases stored.
            let digest =
                hex::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, early.expose().as_bytes()).as_ref());
            assert_eq!(ek.legacy().unwrap().as_str(), digest);
        }
        // Values of other shapes (sessions, JWTs, older tokens without a head) keep the bare digest.
        assert_eq!(TokenHash::of("5Aep861.bad_head.rest==").as_str().len(), 64);
        assert_eq!(TokenHash::of("eyJhbGciOiJSUzI1NiJ9.e30.sig").as_str().len(), 64);
        // A JWT access token is ordered by the head of its `sfi` claim.
        let jwt = |sfi: &str| {
            use base64::Engine;
            let claims =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!(r#"{{"scp":"api","sfi":"{sfi}"}}"#));
            format!("eyJhbGciOiJFUzI1NiJ9.{claims}.c2ln")
        };
        let (early, late) =
            (jwt(&new_jwt_session_id(1_764_000_000_000, &rng)), jwt(&new_jwt_session_id(1_764_000_000_001, &rng)));
        let (ek, lk) = (TokenHash::of(&early), TokenHash::of(&late));
        assert_eq!((ek.as_str().len(), lk.as_str().len()), (72, 72));
        assert!(ek.as_str() < lk.as_str());
        assert_eq!(&ek.as_str()[..8], crate::clock::sortable(1_764_000_000_000));
        assert_eq!(TokenHash::of(&jwt("-_-")).as_str().len(), 64);
    }
}
