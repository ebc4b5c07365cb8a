//! The token endpoint: a typed request per grant, and Salesforce's response shape.

use serde::{Deserialize, Serialize};

use crate::error::OAuthError;
use crate::params::{Params, Repeated};

pub const GRANT_JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
pub const GRANT_DEVICE_CODE: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const GRANT_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// One token request, with each grant's own required parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRequest {
    AuthorizationCode {
        code: String,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
        hybrid: bool,
    },
    RefreshToken {
        refresh_token: String,
        scope: Option<String>,
        hybrid: bool,
    },
    ClientCredentials {
        scope: Option<String>,
    },
    JwtBearer {
        assertion: String,
    },
    Password {
        username: String,
        password: String,
    },
    /// Salesforce's device flow, step 1 (`response_type=device_code` at the token endpoint).
    DeviceStart {
        scope: Option<String>,
    },
    /// Device polling: Salesforce's `grant_type=device` (code in `code`) or RFC 8628's URN.
    DevicePoll {
        device_code: String,
    },
    TokenExchange {
        subject_token: String,
        subject_token_type: String,
        actor_token: Option<String>,
        scope: Option<String>,
    },
}

/// Client credentials as presented in the request body (Basic is read by the server).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyClientAuth {
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub client_assertion_type: Option<String>,
    pub client_assertion: Option<String>,
}

fn one(p: &Params, name: &str) -> Result<Option<String>, OAuthError> {
    p.get(name)
        .map(|v| v.map(str::to_string))
        .map_err(|Repeated(n)| OAuthError::invalid_request(format!("parameter {n} is repeated")))
}

fn required(p: &Params, name: &'static str, err: impl Fn() -> OAuthError) -> Result<String, OAuthError> {
    one(p, name)?.ok_or_else(err)
}

impl BodyClientAuth {
    pub fn from_params(p: &Params) -> Result<Self, OAuthError> {
        Ok(BodyClientAuth {
            client_id: one(p, "client_id")?,
            client_secret: one(p, "client_secret")?,
            client_assertion_type: one(p, "client_assertion_type")?,
            client_assertion: one(p, "client_assertion")?,
        })
    }
}

impl TokenRequest {
    /// Parses the merged parameters. No `grant_type` (which is also what a JSON body looks
    /// like) is `unsupported_grant_type`, as Salesforce answers.
    pub fn from_params(p: &Params) -> Result<TokenRequest, OAuthError> {
        let missing = |what: &'static str| move || OAuthError::invalid_request(format!("{what} must be provided"));
        if one(p, "response_type")?.as_deref() == Some("device_code") && !p.contains("grant_type") {
            return Ok(TokenRequest::DeviceStart { scope: one(p, "scope")? });
        }
        let grant = one(p, "grant_type")?.ok_or_else(OAuthError::unsupported_grant_type)?;
        Ok(match grant.as_str() {
            "authorization_code" | "hybrid_auth_code" => TokenRequest::AuthorizationCode {
                code: required(p, "code", OAuthError::invalid_code)?,
                redirect_uri: one(p, "redirect_uri")?,
                code_verifier: one(p, "code_verifier")?,
                hybrid: grant == "hybrid_auth_code",
            },
            "refresh_token" | "hybrid_refresh" => TokenRequest::RefreshToken {
                refresh_token: required(p, "refresh_token", OAuthError::expired_refresh_token)?,
                scope: one(p, "scope")?,
                hybrid: grant == "hybrid_refresh",
            },
            "client_credentials" => TokenRequest::ClientCredentials { scope: one(p, "scope")? },
            GRANT_JWT_BEARER => TokenRequest::JwtBearer { assertion: required(p, "assertion", missing("assertion"))? },
            "password" => TokenRequest::Password {
                username: required(p, "username", OAuthError::authentication_failure)?,
                password: required(p, "password", OAuthError::authentication_failure)?,
            },
            "device" => TokenRequest::DevicePoll { device_code: required(p, "code", missing("code"))? },
            GRANT_DEVICE_CODE => {
                TokenRequest::DevicePoll { device_code: required(p, "device_code", missing("device_code"))? }
            }
            GRANT_TOKEN_EXCHANGE => TokenRequest::TokenExchange {
                subject_token: required(p, "subject_token", missing("subject_token"))?,
                subject_token_type: required(p, "subject_token_type", missing("subject_token_type"))?,
                actor_token: one(p, "actor_token")?,
                scope: one(p, "scope")?,
            },
            _ => return Err(OAuthError::unsupported_grant_type()),
        })
    }

    /// The grant's name for logs and metrics.
    pub fn grant_name(&self) -> &'static str {
        match self {
            TokenRequest::AuthorizationCode { .. } => "authorization_code",
            TokenRequest::RefreshToken { .. } => "refresh_token",
            TokenRequest::ClientCredentials { .. } => "client_credentials",
            TokenRequest::JwtBearer { .. } => "jwt_bearer",
            TokenRequest::Password { .. } => "password",
            TokenRequest::DeviceStart { .. } => "device_start",
            TokenRequest::DevicePoll { .. } => "device",
            TokenRequest::TokenExchange { .. } => "token_exchange",
        }
    }
}

/// Salesforce's token response (salesforce-wire.md §4.0), fields in Salesforce's order. Absent fields are
/// omitted, never `null`. There is deliberately no `expires_in`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub token_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_instance_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// The Mobile SDK's hybrid session fields (`lightning_sid`, `csrf_token`, ...), in order.
    #[serde(flatten, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub hybrid: std::collections::BTreeMap<String, String>,
}

impl TokenResponse {
    /// The response as ordered (name, value) pairs, for the urlencoded and XML formats and
    /// for the user-agent flow's fragment.
    pub fn pairs(&self) -> Vec<(std::borrow::Cow<'static, str>, String)> {
        let mut v = vec![("access_token", self.access_token.clone())];
        let mut opt = |k: &'static str, val: &Option<String>| {
            if let Some(x) = val {
                v.push((k, x.clone()));
            }
        };
        opt("refresh_token", &self.refresh_token);
        opt("signature", &self.signature);
        opt("scope", &self.scope);
        opt("id_token", &self.id_token);
        opt("instance_url", &self.instance_url);
        opt("id", &self.id);
        v.push(("token_type", self.token_type.clone()));
        let mut opt = |k: &'static str, val: &Option<String>| {
            if let Some(x) = val {
                v.push((k, x.clone()));
            }
        };
        opt("issued_at", &self.issued_at);
        opt("api_instance_url", &self.api_instance_url);
        opt("state", &self.state);
        opt("issued_token_type", &self.issued_token_type);
        if let Some(e) = self.expires_in {
            v.push(("expires_in", e.to_string()));
        }
        let mut v: Vec<(std::borrow::Cow<'static, str>, String)> =
            v.into_iter().map(|(k, x)| (std::borrow::Cow::Borrowed(k), x)).collect();
        for (k, x) in &self.hybrid {
            v.push((std::borrow::Cow::Owned(k.clone()), x.clone()));
        }
        v
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn parses_grants() {
        let p = Params::from_urlencoded(b"grant_type=authorization_code&code=abc%3D%3D&redirect_uri=x");
        assert_eq!(
            TokenRequest::from_params(&p).unwrap(),
            TokenRequest::AuthorizationCode {
                code: "abc==".into(),
                redirect_uri: Some("x".into()),
                code_verifier: None,
                hybrid: false
            }
        );
        let p = Params::from_urlencoded(b"");
        assert_eq!(TokenRequest::from_params(&p).unwrap_err(), OAuthError::unsupported_grant_type());
        let p = Params::from_urlencoded(b"grant_type=nope");
        assert_eq!(TokenRequest::from_params(&p).unwrap_err(), OAuthError::unsupported_grant_type());
        let p = Params::from_urlencoded(b"grant_type=authorization_code");
        assert_eq!(TokenRequest::from_params(&p).unwrap_err(), OAuthError::invalid_code());
        let p = Params::from_urlencoded(b"grant_type=refresh_token&refresh_token=a&refresh_token=b");
        assert!(TokenRequest::from_params(&p).unwrap_err().is("invalid_request"));
    }

    #[test]
    fn response_has_no_nulls_and_no_expires_in() {
        let r = TokenResponse { access_token: "a".into(), token_type: "Bearer".into(), ..Default::default() };
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"access_token":"a","token_type":"Bearer"}"#);
    }
}
