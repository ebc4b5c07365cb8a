//! OAuth scopes as Salesforce defines them (salesforce-wire.md §7): a set, parsed once from the
//! space-separated wire form, with Salesforce's synonyms and implications.

use std::fmt;

/// Every scope Valet knows, with the words the consent page shows for it.
pub const KNOWN_SCOPES: &[(&str, &str)] = &[
    ("api", "Manage user data via APIs"),
    ("chatter_api", "Access Connect REST API resources"),
    ("custom_permissions", "Access custom permissions"),
    ("full", "Full access"),
    ("id", "Access the identity URL service"),
    ("profile", "Access your basic information"),
    ("email", "Access your email address"),
    ("address", "Access your address"),
    ("phone", "Access your phone number"),
    ("openid", "Access unique user identifiers"),
    ("refresh_token", "Perform requests at any time"),
    ("offline_access", "Perform requests at any time"),
    ("visualforce", "Manage user data via Visualforce pages"),
    ("web", "Manage user data via web browsers"),
    ("lightning", "Access Lightning applications"),
    ("content", "Access content resources"),
    ("wave_api", "Access Analytics REST API resources"),
    ("pardot_api", "Access Pardot services"),
    ("eclair_api", "Access Eclair services"),
    ("chatbot_api", "Access chatbot services"),
    ("interaction_api", "Access Interaction API resources"),
    ("scrt_api", "Access Service Cloud Real-Time API"),
    ("cdp_api", "Manage Data Cloud data"),
    ("cdp_query_api", "Perform ANSI SQL queries on Data Cloud data"),
    ("cdp_profile_api", "Manage Data Cloud profile data"),
    ("cdp_ingest_api", "Manage Data Cloud Ingestion API data"),
    ("cdp_segment_api", "Manage Data Cloud segment data"),
    ("cdp_identityresolution_api", "Manage Data Cloud identity resolution"),
    ("cdp_calculated_insight_api", "Manage Data Cloud calculated insight data"),
    ("data_cloud_user_claims", "Access Data Cloud user claims"),
    ("sfap_api", "Access the Salesforce API Platform"),
    ("einstein_gpt_api", "Access Einstein generative AI"),
    ("mcp_api", "Access MCP servers"),
    ("user_registration_api", "Register users headlessly"),
    ("pwdless_login_api", "Log in users without a password"),
    ("forgot_password", "Reset passwords headlessly"),
    ("valet_admin", "Administer Valet: users, apps and settings"),
];

/// Scopes that reach further than one user's data: `full` (everything the user can do) and
/// `valet_admin` (Valet's admin API, for administrators). Dynamically registered clients never
/// get them, and the consent page spells out what they grant.
pub const PRIVILEGED_SCOPES: &[&str] = &["full", "valet_admin"];

/// What the consent page warns about a privileged scope, in plain words.
pub fn privileged_warning(name: &str) -> Option<&'static str> {
    match name {
        "full" => Some("Full access: everything you can do, through every API, for as long as the app keeps access"),
        "valet_admin" => {
            Some("Administer Valet as you: create and change users, apps and settings, if you are an administrator")
        }
        _ => None,
    }
}

const N: usize = KNOWN_SCOPES.len();
const _: () = assert!(N <= 64, "a ScopeSet is a 64-bit set over KNOWN_SCOPES");

/// Positions in [`KNOWN_SCOPES`] in byte order of the names: the order a set iterates and
/// prints in (as the `BTreeSet<String>` it replaced did, so stored and sent strings are the
/// same).
const BY_NAME: [u8; N] = sort_by_name();

const fn name_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
        i += 1;
    }
    a.len() < b.len()
}

const fn sort_by_name() -> [u8; N] {
    let mut idx = [0u8; N];
    let mut i = 0;
    while i < N {
        idx[i] = i as u8;
        i += 1;
    }
    let mut i = 1;
    while i < N {
        let mut j = i;
        while j > 0 && name_less(KNOWN_SCOPES[idx[j] as usize].0, KNOWN_SCOPES[idx[j - 1] as usize].0) {
            let t = idx[j];
            idx[j] = idx[j - 1];
            idx[j - 1] = t;
            j -= 1;
        }
        i += 1;
    }
    idx
}

const fn name_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The bit of a known scope.
const fn bit(name: &str) -> Option<u64> {
    let mut i = 0;
    while i < N {
        if name_eq(KNOWN_SCOPES[i].0, name) {
            return Some(1 << i);
        }
        i += 1;
    }
    None
}

/// The bits of known scopes, made at compile time (an unknown name does not compile).
const fn mask(names: &[&str]) -> u64 {
    let mut m = 0;
    let mut i = 0;
    while i < names.len() {
        match bit(names[i]) {
            Some(b) => m |= b,
            None => panic!("not a known scope"),
        }
        i += 1;
    }
    m
}

/// `refresh_token` and its synonym `offline_access`.
const REFRESH: u64 = mask(&["refresh_token", "offline_access"]);
const PRIVILEGED: u64 = mask(PRIVILEGED_SCOPES);
/// Scopes that reach the REST data API (salesforce-wire.md §7).
const API: u64 = mask(&["api", "full"]);
/// Scopes that give access to the identity URL (salesforce-wire.md §6.4).
const IDENTITY: u64 =
    mask(&["id", "profile", "email", "address", "phone", "openid", "api", "full", "web", "refresh_token"]);

/// A set of scopes: one bit per entry of [`KNOWN_SCOPES`], so that copying one (into a
/// family, a token, a response: several times per request) allocates nothing. Iterates and
/// prints in byte order of the names, so storage and comparisons are stable.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(u64);

/// A scope Valet does not know. Its text names the scope only when the name is plainly a
/// scope name: anything else (markup, quotes, line breaks) is never echoed back to a client.
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownScope(pub String);

impl std::fmt::Display for UnknownScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let plain = self.0.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.:-/".contains(&b));
        if plain {
            write!(f, "unknown scope: {}", self.0)
        } else {
            f.write_str("unknown scope")
        }
    }
}

impl std::error::Error for UnknownScope {}

impl ScopeSet {
    pub fn empty() -> Self {
        ScopeSet(0)
    }

    /// Parses a space-separated list (the wire form), rejecting scopes Valet does not know.
    /// Repeated whitespace and duplicates are tolerated as clients send them.
    pub fn parse(s: &str) -> Result<Self, UnknownScope> {
        let mut set = 0;
        for part in s.split([' ', '+', '\t']).filter(|p| !p.is_empty()) {
            set |= bit(part).ok_or_else(|| UnknownScope(part.chars().take(64).collect()))?;
        }
        Ok(ScopeSet(set))
    }

    /// Reads a set that Valet itself stored (validated when written). A name Valet no longer
    /// knows grants nothing and is dropped.
    pub fn from_stored(s: &str) -> Self {
        ScopeSet(s.split(' ').filter_map(bit).fold(0, |acc, b| acc | b))
    }

    pub fn contains(&self, s: &str) -> bool {
        bit(s).is_some_and(|b| self.0 & b != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.entries().map(|(name, _)| *name)
    }

    /// The set's entries of [`KNOWN_SCOPES`], in name order.
    fn entries(&self) -> impl Iterator<Item = &'static (&'static str, &'static str)> + '_ {
        BY_NAME.iter().filter(|&&i| self.0 & (1 << i) != 0).map(|&i| &KNOWN_SCOPES[usize::from(i)])
    }

    pub fn intersect(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0 & other.0)
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0 & !other.0 == 0
    }

    /// Adds a known scope (an unknown name is ignored: no set holds one).
    pub fn insert(&mut self, s: &str) {
        self.0 |= bit(s).unwrap_or(0);
    }

    /// `refresh_token` or its synonym `offline_access`.
    pub fn allows_refresh(&self) -> bool {
        self.0 & REFRESH != 0
    }

    /// The set without `refresh_token`/`offline_access`, for flows that never issue one.
    pub fn without_refresh(&self) -> ScopeSet {
        ScopeSet(self.0 & !REFRESH)
    }

    /// Scopes that reach the REST data API (salesforce-wire.md §7: `api` or `full`).
    pub fn allows_api(&self) -> bool {
        self.0 & API != 0
    }

    /// Scopes that give access to the identity URL (salesforce-wire.md §6.4).
    pub fn allows_identity(&self) -> bool {
        self.0 & IDENTITY != 0
    }

    /// The set without [`PRIVILEGED_SCOPES`].
    pub fn without_privileged(&self) -> ScopeSet {
        ScopeSet(self.0 & !PRIVILEGED)
    }

    /// The consent page's plain-words description of each scope.
    pub fn descriptions(&self) -> Vec<(&str, &'static str)> {
        self.entries().map(|(name, words)| (*name, *words)).collect()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in self.iter() {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s)?;
            first = false;
        }
        Ok(())
    }
}

impl fmt::Debug for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeSet({self})")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_and_prints_sorted() {
        let s = ScopeSet::parse("refresh_token  api web").unwrap();
        assert_eq!(s.to_string(), "api refresh_token web");
        assert!(s.allows_refresh() && s.allows_api());
        assert_eq!(ScopeSet::parse("api admin"), Err(UnknownScope("admin".into())));
        assert!(ScopeSet::parse("").unwrap().is_empty());
    }

    #[test]
    fn sets_iterate_in_name_order_and_combine() {
        let names: Vec<&str> = KNOWN_SCOPES.iter().map(|(k, _)| *k).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        let all = ScopeSet::parse(&names.join(" ")).unwrap();
        assert_eq!(all.iter().collect::<Vec<_>>(), sorted);
        assert_eq!(ScopeSet::from_stored(&all.to_string()), all);

        let a = ScopeSet::parse("web openid refresh_token api").unwrap();
        let b = ScopeSet::from_stored("api offline_access openid no_longer_known");
        assert_eq!(b.to_string(), "api offline_access openid");
        assert_eq!(a.intersect(&b).to_string(), "api openid");
        assert!(a.intersect(&b).is_subset(&a) && !a.is_subset(&b));
        assert_eq!(a.without_refresh().to_string(), "api openid web");
        assert_eq!(b.without_refresh().to_string(), "api openid");
        assert!(!a.contains("offline_access") && a.contains("web") && !a.contains("nope"));
        let mut c = ScopeSet::empty();
        c.insert("id");
        c.insert("unknown");
        c.insert("id");
        assert_eq!(c.to_string(), "id");
        assert_eq!(format!("{c:?}"), "ScopeSet(id)");
    }
}
