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
    CustomPermission,
}

impl KeyPrefix {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyPrefix::Organization => "00D",
            KeyPrefix::User => "005",
            KeyPrefix::ConnectedApp => "0H4",
            KeyPrefix::PermissionSet => "0PS",
            KeyPrefix::CustomPermission => "0CP",
        }
    }
}

/// A validated Salesforce ID, always held in its 18-character form: 18 ASCII alphanumerics
/// in place (no allocation; a clone is a copy of 18 bytes: ids are cloned into every token,
/// family and cache entry).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SfId([u8; 18]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed Salesforce id")]
pub struct MalformedId;

impl SfId {
    /// A new random ID: prefix + pod "0" + 11 random base-62 characters, then the checksum.
    pub fn generate(prefix: KeyPrefix, rng: &dyn Random) -> SfId {
        let p = prefix.as_str().as_bytes();
        SfId::with_prefix([p[0], p[1], p[2]], rng)
    }

    /// A new random ID under any three-character key prefix (a data API object's); `Err` when
    /// the prefix is not three ASCII alphanumerics.
    pub fn random(prefix: &str, rng: &dyn Random) -> Result<SfId, MalformedId> {
        let prefix: [u8; 3] = prefix.as_bytes().try_into().map_err(|_| MalformedId)?;
        if !prefix.iter().all(u8::is_ascii_alphanumeric) {
            return Err(MalformedId);
        }
        Ok(SfId::with_prefix(prefix, rng))
    }

    fn with_prefix(prefix: [u8; 3], rng: &dyn Random) -> SfId {
        let mut id = [0u8; 18];
        id[..3].copy_from_slice(&prefix);
        id[3] = b'0';
        let mut buf = [0u8; 11];
        rng.fill(&mut buf);
        for (slot, b) in id[4..15].iter_mut().zip(buf) {
            *slot = BASE62[(b % 62) as usize];
        }
        let sum = checksum(&id[..15]);
        id[15..].copy_from_slice(&sum);
        SfId(id)
    }

    /// Parses a 15- or 18-character ID. An 18-character ID must carry the right checksum.
    pub fn parse(s: &str) -> Result<SfId, MalformedId> {
        let b = s.as_bytes();
        if !b.iter().all(u8::is_ascii_alphanumeric) || (b.len() != 15 && b.len() != 18) {
            return Err(MalformedId);
        }
        let mut id = [0u8; 18];
        id[..15].copy_from_slice(&b[..15]);
        id[15..].copy_from_slice(&checksum(&b[..15]));
        if b.len() == 18 && id[15..] != b[15..] {
            return Err(MalformedId);
        }
        Ok(SfId(id))
    }

    /// Wraps an ID read back from Valet's own storage: 18 alphanumerics, the checksum not
    /// recomputed. `Err` for anything else (a damaged row).
    pub fn from_trusted(s: &str) -> Result<SfId, MalformedId> {
        let id: [u8; 18] = s.as_bytes().try_into().map_err(|_| MalformedId)?;
        if !id.iter().all(u8::is_ascii_alphanumeric) {
            return Err(MalformedId);
        }
        Ok(SfId(id))
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII alphanumerics are ever stored (every constructor checks).
        // Only ASCII letters and digits are ever stored here (checked at construction).
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The case-sensitive 15-character form (used in access tokens and SOAP URLs).
    pub fn id15(&self) -> &str {
        &self.as_str()[..15]
    }

    pub fn key_prefix(&self) -> &str {
        &self.as_str()[..3]
    }
}

impl fmt::Display for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SfId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SfId({})", self.as_str())
    }
}

/// The 3-character case-safe checksum of a 15-character ID: one letter per 5 characters,
/// whose bits say which of them are upper case.
fn checksum(id15: &[u8]) -> [u8; 3] {
    const MAP: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";
    let mut out = [0u8; 3];
    for (chunk, slot) in out.iter_mut().enumerate() {
        let mut v = 0usize;
        for j in 0..5 {
            if id15.get(chunk * 5 + j).is_some_and(u8::is_ascii_uppercase) {
                v |= 1 << j;
            }
        }
        *slot = MAP[v];
    }
    out
}

/// Adds the 3-character checksum to a 15-character ID.
pub fn to18(id15: &str) -> String {
    let mut out = String::with_capacity(18);
    out.push_str(id15);
    out.extend(checksum(id15.as_bytes()).map(char::from));
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
        assert_eq!(SfId::parse(id.id15()).unwrap(), id);
        assert_eq!(id.key_prefix(), "005");
        assert_eq!(SfId::random("a0X", &rng).unwrap().key_prefix(), "a0X");
        assert_eq!(SfId::random("a0", &rng), Err(MalformedId));
        assert_eq!(SfId::random("a-b", &rng), Err(MalformedId));
        assert_eq!(SfId::from_trusted(id.as_str()).unwrap(), id);
        assert_eq!(SfId::from_trusted(id.id15()), Err(MalformedId));
        assert_eq!(SfId::from_trusted("00DEm0000001sxd!AA"), Err(MalformedId));
    }
}
