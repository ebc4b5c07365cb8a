//! JWTs that Valet receives: client assertions, JWT bearer grants and token-exchange subject
//! tokens. They are split and decoded once ([`UnverifiedJwt`]), verified against the key the
//! caller trusts, and their time claims checked by one set of rules ([`TimeRules`]).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// A JWT that has been split and decoded but not yet verified: nothing in it may be trusted
/// until [`UnverifiedJwt::verify_with_certificate`] says so.
pub(crate) struct UnverifiedJwt {
    signing_input: String,
    signature: Vec<u8>,
    pub alg: String,
    pub kid: Option<String>,
    pub claims: serde_json::Map<String, serde_json::Value>,
}

impl UnverifiedJwt {
    /// An RS256 JWT (the only algorithm Salesforce documents for assertions).
    pub fn parse(jwt: &str) -> Option<UnverifiedJwt> {
        Self::parse_with(jwt, &["RS256"])
    }

    /// A JWT whose `alg` is one of `algs`; `none` is never among them.
    pub fn parse_with(jwt: &str, algs: &[&str]) -> Option<UnverifiedJwt> {
        if jwt.len() > 16 * 1024 {
            return None;
        }
        let mut parts = jwt.split('.');
        let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        let alg = header.get("alg")?.as_str()?.to_string();
        let kid = header.get("kid").and_then(|v| v.as_str()).map(str::to_string);
        if !algs.contains(&alg.as_str()) {
            return None;
        }
        // RFC 7515 §4.1.11: extensions named in `crit` must be understood, and Valet
        // understands none, so any `crit` makes the token unusable.
        if header.get("crit").is_some() {
            return None;
        }
        let claims = decode_claims(c)?;
        Some(UnverifiedJwt {
            signing_input: format!("{h}.{c}"),
            signature: URL_SAFE_NO_PAD.decode(s).ok()?,
            alg,
            kid,
            claims,
        })
    }

    /// Verifies an HS256 signature keyed by `key`, in constant time.
    pub fn verify_hs256(&self, key: &[u8]) -> bool {
        let k = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, key);
        self.alg == "HS256" && aws_lc_rs::hmac::verify(&k, self.signing_input.as_bytes(), &self.signature).is_ok()
    }

    /// Verifies the RS256 signature with an RSA key of a JWK set (by `kid` when the set has
    /// several).
    pub fn verify_with_jwks(&self, set: &serde_json::Value) -> bool {
        if self.alg != "RS256" {
            return false;
        }
        let Some(keys) = set.get("keys").and_then(|k| k.as_array()) else { return false };
        keys.iter()
            .filter(|k| k.get("kty").and_then(|v| v.as_str()) == Some("RSA"))
            .filter(|k| self.kid.is_none() || k.get("kid").and_then(|v| v.as_str()) == self.kid.as_deref())
            .any(|k| {
                let (Some(n), Some(e)) = (k.get("n").and_then(|v| v.as_str()), k.get("e").and_then(|v| v.as_str()))
                else {
                    return false;
                };
                let (Ok(n), Ok(e)) = (URL_SAFE_NO_PAD.decode(n), URL_SAFE_NO_PAD.decode(e)) else { return false };
                let public = aws_lc_rs::signature::RsaPublicKeyComponents { n: &n, e: &e };
                public
                    .verify(
                        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                        self.signing_input.as_bytes(),
                        &self.signature,
                    )
                    .is_ok()
            })
    }

    /// Verifies the RS256 signature with the public key of a PEM X.509 certificate.
    pub fn verify_with_certificate(&self, pem: &str) -> bool {
        if self.alg != "RS256" {
            return false;
        }
        use rustls_pki_types::pem::PemObject;
        let Some(Ok(der)) = rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()).next() else {
            return false;
        };
        let Ok(cert) = webpki::EndEntityCert::try_from(&der) else { return false };
        cert.verify_signature(
            webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
            self.signing_input.as_bytes(),
            &self.signature,
        )
        .is_ok()
    }
}

/// A JWT segment's JSON object (the claims), base64url-decoded.
fn decode_claims(segment: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    match serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).ok()?).ok()? {
        serde_json::Value::Object(m) => Some(m),
        _ => None,
    }
}

/// The claims of a JWT, read **without** verifying anything: only for what is not a credential
/// (which client an assertion names, so as to load its keys; an asset request's device
/// description). At most `max_len` bytes; `None` unless it has a JSON object as its payload.
pub fn unverified_claims(jwt: &str, max_len: usize) -> Option<serde_json::Map<String, serde_json::Value>> {
    if jwt.len() > max_len {
        return None;
    }
    decode_claims(jwt.split('.').nth(1)?)
}

/// Why a JWT's time claims refuse it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimeFault {
    /// No usable `exp` (absent, or not a NumericDate).
    MissingExp,
    /// `exp` has passed (beyond the leeway).
    Expired,
    /// `exp` lies further ahead than the flow allows (bounds the replay table).
    TooLong,
    /// `nbf` lies ahead (beyond the leeway): RFC 7519 §4.1.5 says it must not be accepted yet.
    NotYetValid,
    /// `iat` lies ahead beyond the leeway.
    IssuedInFuture,
}

/// The time rules of one kind of JWT: how much clock skew is forgiven, and how far ahead
/// `exp` may lie. `nbf` and `iat`, when present, are checked the same way for every kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TimeRules {
    pub skew_secs: i64,
    pub max_lifetime_secs: Option<i64>,
}

impl UnverifiedJwt {
    /// A numeric claim as clients send it (see [`numeric_date`]); `Err` when present but not
    /// a date.
    fn date_claim(&self, name: &str) -> Result<Option<i64>, ()> {
        match self.claims.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => numeric_date(v).map(Some).ok_or(()),
        }
    }

    /// Checks `exp` (required), `nbf` and `iat` against `now` (seconds) under `rules`; returns
    /// `exp`.
    pub fn check_times(&self, now: i64, rules: TimeRules) -> Result<i64, TimeFault> {
        let exp = self.date_claim("exp").ok().flatten().ok_or(TimeFault::MissingExp)?;
        if exp + rules.skew_secs <= now {
            return Err(TimeFault::Expired);
        }
        if rules.max_lifetime_secs.is_some_and(|max| exp > now + max) {
            return Err(TimeFault::TooLong);
        }
        match self.date_claim("nbf") {
            Ok(Some(nbf)) if nbf > now + rules.skew_secs => return Err(TimeFault::NotYetValid),
            Err(()) => return Err(TimeFault::NotYetValid),
            _ => {}
        }
        match self.date_claim("iat") {
            Ok(Some(iat)) if iat > now + rules.skew_secs => return Err(TimeFault::IssuedInFuture),
            Err(()) => return Err(TimeFault::IssuedInFuture),
            _ => {}
        }
        Ok(exp)
    }
}

/// A NumericDate as clients really send it: a number or a numeric string, in seconds or (the
/// sf CLI) in milliseconds.
pub(crate) fn numeric_date(v: &serde_json::Value) -> Option<i64> {
    let n = match v {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !n.is_finite() {
        return None;
    }
    let n = n as i64;
    Some(if n > 100_000_000_000 { n / 1000 } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_dates_as_clients_send_them() {
        assert_eq!(numeric_date(&serde_json::json!(1_700_000_000)), Some(1_700_000_000));
        assert_eq!(numeric_date(&serde_json::json!("1700000180")), Some(1_700_000_180));
        assert_eq!(numeric_date(&serde_json::json!(1_700_000_000_300i64)), Some(1_700_000_000));
        assert_eq!(numeric_date(&serde_json::json!("soon")), None);
    }

    #[test]
    fn refuses_alg_none_and_garbage() {
        let none =
            format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode(r#"{"iss":"x"}"#));
        assert!(UnverifiedJwt::parse(&none).is_none());
        assert!(UnverifiedJwt::parse("a.b").is_none());
        assert!(UnverifiedJwt::parse("").is_none());
    }
}
