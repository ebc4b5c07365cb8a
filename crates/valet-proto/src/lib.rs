//! Valet's wire types: what goes over HTTP, in Salesforce's shapes and the OAuth/OIDC
//! standards' shapes. Serde only, no I/O, so the server, the CLI and tests share one
//! definition of every request and response.

pub mod error;
pub mod oidc;
pub mod params;
pub mod registration;
pub mod token;

pub use error::OAuthError;
pub use params::Params;

/// Whether a JSON text has a string escaping NUL (`\u0000`). PostgreSQL cannot store NUL in
/// text, and no identifier or name needs one, so bodies holding one are refused up front.
pub fn json_has_nul(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json[i + 1..].starts_with(b"u0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn nul_escapes() {
        assert!(super::json_has_nul(br#"{"a":"x\u0000y"}"#));
        assert!(!super::json_has_nul(br#"{"a":"x\\u0000y"}"#), "an escaped backslash, then text");
        assert!(!super::json_has_nul(br#"{"a":"\u0041"}"#));
        assert!(!super::json_has_nul(b"{}"));
    }
}
