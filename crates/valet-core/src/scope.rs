//! OAuth scopes as Salesforce defines them (spec §7): a set, parsed once from the
//! space-separated wire form, with Salesforce's synonyms and implications.

use std::collections::BTreeSet;
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
];

/// A set of scopes, kept sorted so that storage and comparisons are stable.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<String>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown scope: {0}")]
pub struct UnknownScope(pub String);

impl ScopeSet {
    pub fn empty() -> Self {
        ScopeSet(BTreeSet::new())
    }

    /// Parses a space-separated list (the wire form), rejecting scopes Valet does not know.
    /// Repeated whitespace and duplicates are tolerated as clients send them.
    pub fn parse(s: &str) -> Result<Self, UnknownScope> {
        let mut set = BTreeSet::new();
        for part in s.split([' ', '+', '\t']).filter(|p| !p.is_empty()) {
            if !KNOWN_SCOPES.iter().any(|(k, _)| *k == part) {
                return Err(UnknownScope(part.chars().take(64).collect()));
            }
            set.insert(part.to_string());
        }
        Ok(ScopeSet(set))
    }

    /// Reads a set that Valet itself stored (already validated when written).
    pub fn from_stored(s: &str) -> Self {
        ScopeSet(s.split(' ').filter(|p| !p.is_empty()).map(str::to_string).collect())
    }

    pub fn contains(&self, s: &str) -> bool {
        self.0.contains(s)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn intersect(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn insert(&mut self, s: &str) {
        self.0.insert(s.to_string());
    }

    /// `refresh_token` or its synonym `offline_access`.
    pub fn allows_refresh(&self) -> bool {
        self.contains("refresh_token") || self.contains("offline_access")
    }

    /// The set without `refresh_token`/`offline_access`, for flows that never issue one.
    pub fn without_refresh(&self) -> ScopeSet {
        ScopeSet(self.0.iter().filter(|s| *s != "refresh_token" && *s != "offline_access").cloned().collect())
    }

    /// Scopes that reach the REST data API (§7: `api` or `full`).
    pub fn allows_api(&self) -> bool {
        self.contains("api") || self.contains("full")
    }

    /// Scopes that give access to the identity URL (§6.4).
    pub fn allows_identity(&self) -> bool {
        ["id", "profile", "email", "address", "phone", "openid", "api", "full", "web", "refresh_token"]
            .iter()
            .any(|s| self.contains(s))
    }

    /// The consent page's plain-words description of each scope.
    pub fn descriptions(&self) -> Vec<(&str, &'static str)> {
        self.iter()
            .map(|s| {
                let d = KNOWN_SCOPES.iter().find(|(k, _)| *k == s).map(|(_, d)| *d).unwrap_or("");
                (s, d)
            })
            .collect()
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
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
    use super::*;

    #[test]
    fn parses_and_prints_sorted() {
        let s = ScopeSet::parse("refresh_token  api web").unwrap();
        assert_eq!(s.to_string(), "api refresh_token web");
        assert!(s.allows_refresh() && s.allows_api());
        assert_eq!(ScopeSet::parse("api admin"), Err(UnknownScope("admin".into())));
        assert!(ScopeSet::parse("").unwrap().is_empty());
    }
}
