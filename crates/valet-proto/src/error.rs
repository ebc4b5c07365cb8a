//! OAuth errors with Salesforce's codes and descriptions (salesforce-wire.md §5). Clients match some of
//! these descriptions byte for byte, so they live here once as constructors.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// `{"error": "...", "error_description": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthError {
    pub error: Cow<'static, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<Cow<'static, str>>,
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.error_description {
            Some(d) => write!(f, "{}: {}", self.error, d),
            None => f.write_str(&self.error),
        }
    }
}

impl std::error::Error for OAuthError {}

macro_rules! errors {
    ($($(#[$m:meta])* $fn:ident => ($code:literal, $desc:expr);)*) => {
        impl OAuthError {
            $($(#[$m])* pub fn $fn() -> Self {
                OAuthError { error: Cow::Borrowed($code), error_description: $desc.map(Cow::Borrowed) }
            })*
        }
    };
}

errors! {
    /// Password flow failures, and the username-password flow blocked org-wide.
    authentication_failure => ("invalid_grant", Some("authentication failure"));
    /// A refresh token that was revoked, expired by policy or rotated out.
    expired_refresh_token => ("invalid_grant", Some("expired access/refresh token"));
    /// A code older than its lifetime, or already used.
    expired_code => ("invalid_grant", Some("expired authorization code"));
    invalid_code => ("invalid_grant", Some("invalid authorization code"));
    not_approved => ("invalid_grant", Some("user hasn't approved this consumer"));
    invalid_audience => ("invalid_grant", Some("audience is invalid"));
    invalid_assertion => ("invalid_grant", Some("invalid assertion"));
    ip_restricted => ("invalid_grant", Some("IP restricted or invalid login hours"));
    invalid_user_credentials => ("invalid_grant", Some("invalid user credentials"));
    inactive_user => ("invalid_grant", Some("inactive user"));
    no_client_credentials_user => ("invalid_grant", Some("no client credentials user enabled"));
    invalid_client_id => ("invalid_client_id", Some("client identifier invalid"));
    invalid_client => ("invalid_client", Some("invalid client credentials"));
    invalid_app_access => ("invalid_app_access", Some("user is not admin approved to access this app"));
    unsupported_grant_type => ("unsupported_grant_type", Some("grant type not supported"));
    unsupported_response_type => ("unsupported_response_type", Some("response type not supported"));
    redirect_uri_mismatch => ("redirect_uri_mismatch", Some("redirect_uri must match configuration"));
    redirect_uri_missing => ("redirect_uri_missing", Some("redirect_uri must be provided"));
    access_denied => ("access_denied", Some("end-user denied authorization"));
    immediate_unsuccessful => ("immediate_unsuccessful", Some("immediate unsuccessful"));
    login_required => ("login_required", Some("user is not logged in"));
    consent_required => ("consent_required", Some("user has not approved this app"));
    invalid_token => ("invalid_token", Some("invalid token"));
    unsupported_token_type => ("unsupported_token_type", Some("unsupported token type"));
    oauth_flow_disabled => ("oauth_flow_disabled", Some("this flow is disabled for this app"));
    out_of_band => ("invalid_request", Some("out-of-band not supported"));
    inactive_org => ("inactive_org", Some("inactive organization"));
    rate_limit_exceeded => ("rate_limit_exceeded", Some("too many requests"));
    server_error => ("server_error", Some("internal server error"));
    /// OIDC Core §3.1.2.6: request objects (`request`) are not supported.
    request_not_supported => ("request_not_supported", Some("request objects are not supported"));
    /// OIDC Core §3.1.2.6: `request_uri` is not supported.
    request_uri_not_supported => ("request_uri_not_supported", Some("request_uri is not supported"));
    /// The headless flow's wrong username or password.
    login_error => ("login_error", Some("invalid username or password"));
    /// The headless flow's Basic header is not `base64(username:password)`.
    invalid_basic_auth_header => ("invalid_basic_auth_header", Some("invalid basic authorization header"));
    /// The browser flows' answer for a user an admin-approved app does not admit.
    app_access_denied => ("OAUTH_APP_ACCESS_DENIED", Some("user is not admin approved to access this app"));
    /// RFC 8628 §3.5: the device code's lifetime is over.
    expired_device_code => ("expired_token", Some("the device code has expired"));
    /// RFC 8628 §3.5: polled faster than the interval.
    slow_down => ("slow_down", Some("polling too frequently"));
    /// RFC 8628 §3.5: the user has not decided yet.
    authorization_pending => ("authorization_pending", Some("authorization pending"));
    /// A grant the app may not use (RFC 6749 §5.2).
    unauthorized_client => ("unauthorized_client", Some("the client is not authorized to use this grant type"));
}

impl OAuthError {
    /// An error with a description made at run time. The description is kept to the
    /// characters RFC 6749 §5.2 allows (no quotes, backslashes or control characters) and to
    /// 256 of them, whatever a caller puts in it, so no input reflected into it can break a
    /// header, a JSON consumer or a page.
    pub fn with_description(error: &'static str, desc: impl Into<Cow<'static, str>>) -> Self {
        OAuthError { error: Cow::Borrowed(error), error_description: Some(clean_description(desc.into())) }
    }
    /// `invalid_request` with a description of what is wrong.
    pub fn invalid_request(desc: impl Into<Cow<'static, str>>) -> Self {
        Self::with_description("invalid_request", desc)
    }
    /// `invalid_grant` with a specific description.
    pub fn invalid_grant(desc: impl Into<Cow<'static, str>>) -> Self {
        Self::with_description("invalid_grant", desc)
    }
    pub fn invalid_scope(desc: impl Into<Cow<'static, str>>) -> Self {
        Self::with_description("invalid_scope", desc)
    }
    pub fn is(&self, code: &str) -> bool {
        self.error == code
    }
}

/// RFC 6749 §5.2: `error_description` is `%x20-21 / %x23-5B / %x5D-7E`. Other characters
/// become a space; the text is cut at 256 characters.
fn clean_description(desc: Cow<'static, str>) -> Cow<'static, str> {
    let allowed = |c: char| matches!(c, '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E');
    if desc.len() <= 256 && desc.chars().all(allowed) {
        return desc;
    }
    Cow::Owned(desc.chars().take(256).map(|c| if allowed(c) { c } else { ' ' }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_keep_to_the_rfc_character_set() {
        let e = OAuthError::invalid_scope("unknown \"scope\"\r\nSet-Cookie: x=1\\");
        assert_eq!(e.error_description.as_deref(), Some("unknown  scope   Set-Cookie: x=1 "));
        let long = OAuthError::invalid_request("x".repeat(1000));
        assert_eq!(long.error_description.map(|d| d.len()), Some(256));
        assert!(matches!(OAuthError::invalid_grant("plain text").error_description, Some(Cow::Borrowed(_))));
    }
}
