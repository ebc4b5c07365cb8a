//! Salesforce record IDs: 15 case-sensitive base-62 characters (3-char key prefix first),
//! plus a 3-character case-safe checksum for the 18-character form that APIs return.

use std::fmt;

use crate::rand::Random;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Key prefixes of the objects Valet creates IDs for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPrefix {
    Organization,
    User,
    /// Connected application (Salesforce's prefix is unconfirmed; `0H4` is the one widely seen).
    ConnectedApp,
    PermissionSet,
}

impl KeyPrefix {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPrefix::Organization => "00D",
            KeyPrefix::User => "005",
            KeyPrefix::ConnectedApp => "0H4",
            KeyPrefix::PermissionSet => "0PS",
        }
    }
}

/// A validated Salesforce ID, always held in its 18-character form.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SfId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed Salesforce id")]
pub struct MalformedId;

impl SfId {
    /// A new random ID: prefix + pod "0" + 11 random base-62 characters, then the checksum.
    pub fn generate(prefix: KeyPrefix, rng: &dyn Random) -> SfId {
        let mut s = String::with_capacity(18);
        s.push_str(prefix.as_str());
        s.push('0');
        let mut buf = [0u8; 11];
        rng.fill(&mut buf);
        for b in buf {
            s.push(BASE62[(b % 62) as usize] as char);
        }
        SfId(to18(&s))
    }

    /// Parses a 15- or 18-character ID. An 18-character ID must carry the right checksum.
    pub fn parse(s: &str) -> Result<SfId, MalformedId> {
        if !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(MalformedId);
        }
        match s.len() {
            15 => Ok(SfId(to18(s))),
            18 => {
                if to18(&s[..15]) == s {
                    Ok(SfId(s.to_string()))
                } else {
                    Err(MalformedId)
                }
            }
            _ => Err(MalformedId),
        }
    }

    /// Wraps an ID read back from Valet's own storage.
    pub fn from_trusted(s: String) -> SfId {
        SfId(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-sensitive 15-character form (used in access tokens and SOAP URLs).
    pub fn id15(&self) -> &str {
        &self.0[..15]
    }

    pub fn key_prefix(&self) -> &str {
        &self.0[..3]
    }
}

impl fmt::Display for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SfId({})", self.0)
    }
}

/// Adds the 3-character checksum to a 15-character ID.
pub fn to18(id15: &str) -> String {
    const MAP: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let b = id15.as_bytes();
    let mut out = String::with_capacity(18);
    out.push_str(id15);
    for chunk in 0..3 {
        let mut v = 0usize;
        for j in 0..5 {
            if b[chunk * 5 + j].is_ascii_uppercase() {
                v |= 1 << j;
            }
        }
        out.push(MAP[v] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn checksum_matches_real_ids() {
        assert_eq!(to18("00DEm0000001sxd"), "00DEm0000001sxdMAA");
        assert_eq!(to18("005Em000000HMlh"), "005Em000000HMlhIAG");
    }

    #[test]
    fn parse_accepts_both_forms_and_rejects_bad_checksums() {
        assert_eq!(SfId::parse("00DEm0000001sxd").unwrap().as_str(), "00DEm0000001sxdMAA");
        assert!(SfId::parse("00DEm0000001sxdMAA").is_ok());
        assert_eq!(SfId::parse("00DEm0000001sxdAAA"), Err(MalformedId));
        assert_eq!(SfId::parse("00DEm0000001sx"), Err(MalformedId));
        assert_eq!(SfId::parse("00DEm0000001sx!"), Err(MalformedId));
    }

    #[test]
    fn generated_ids_parse() {
        let rng = crate::rand::OsRandom;
        let id = SfId::generate(KeyPrefix::User, &rng);
        assert_eq!(id.as_str().len(), 18);
        assert_eq!(SfId::parse(id.as_str()).unwrap(), id);
        assert_eq!(id.key_prefix(), "005");
    }
}
