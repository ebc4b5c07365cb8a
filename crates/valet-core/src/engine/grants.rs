//! The grants that need no browser: client credentials (§4.5), username-password (§4.7) and
//! the JWT bearer flow (§4.4, RFC 7523).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use valet_proto::token::TokenResponse;
use valet_proto::OAuthError;

use crate::model::*;
use crate::scope::ScopeSet;

use super::token::{Client, ClientAuth, Issue, TokenError};
use super::Engine;

/// Clock skew allowed on assertion expiry (third parties report Salesforce allows 3 minutes).
const SKEW_SECS: i64 = 180;

impl Engine {
    /// Client credentials: the app acts as its configured Run-As user.
    pub(crate) async fn client_credentials(
        &self,
        auth: ClientAuth,
        scope: Option<&str>,
    ) -> Result<TokenResponse, TokenError> {
        if auth.secret.is_none() && auth.assertion.is_none() {
            return Err(OAuthError::invalid_client().into());
        }
        let client = self.authenticate_client(&auth, |_| true).await?;
        let app = &client.app;
        if !app.policy.enable_client_credentials_flow {
            return Err(OAuthError::unsupported_grant_type().into());
        }
        let Some(run_as) = &app.policy.client_credentials_user else {
            return Err(OAuthError::no_client_credentials_user().into());
        };
        let user = match self.store.get_user_by_username(run_as).await? {
            Some(u) if u.active && u.org_id == app.org_id => u,
            _ => return Err(OAuthError::no_client_credentials_user().into()),
        };
        let scopes = self.requested_scopes(app, scope)?;
        let family = self.new_family(app, &user, scopes, "client_credentials", None);
        let mut resp = self.issue_tokens(Issue::new(&family, &user, &client).without_id_token()).await?;
        resp.api_instance_url = Some(self.config.instance_url.clone());
        Ok(resp)
    }

    /// Username-password: blocked org-wide unless the org allows it; the client secret is
    /// required; every failure reads `authentication failure`, as on Salesforce.
    pub(crate) async fn password_grant(
        &self,
        auth: ClientAuth,
        username: &str,
        password: &str,
    ) -> Result<TokenResponse, TokenError> {
        let client = self.authenticate_client(&auth, |_| true).await?;
        let app = &client.app;
        let org = self.store.get_org(&app.org_id).await?;
        if !org.is_some_and(|o| o.settings.allow_username_password_flow) {
            return Err(OAuthError::authentication_failure().into());
        }
        let user = match self.check_login(username, password).await? {
            Ok(u) if u.org_id == app.org_id => u,
            _ => return Err(OAuthError::authentication_failure().into()),
        };
        self.require_permitted(app, &user).await?;
        let scopes = app.scopes.without_refresh();
        let family = self.new_family(app, &user, scopes, "password", None);
        let mut resp = self.issue_tokens(Issue::new(&family, &user, &client).without_id_token()).await?;
        resp.scope = None;
        Ok(resp)
    }

    /// JWT bearer: the app is named by `iss`, the assertion is verified with the app's
    /// certificate, the user (`sub`) must have approved the app or be pre-authorized.
    pub(crate) async fn jwt_bearer(
        &self,
        assertion: &str,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<TokenResponse, TokenError> {
        let unverified = UnverifiedJwt::parse(assertion).ok_or_else(OAuthError::invalid_assertion)?;
        let iss = unverified.claims.get("iss").and_then(|v| v.as_str()).ok_or_else(OAuthError::invalid_assertion)?;
        let app = self.store.get_app_by_consumer_key(iss).await?.ok_or_else(OAuthError::invalid_client_id)?;
        let Some(pem) = app.policy.jwt_certificate_pem.as_deref() else {
            return Err(OAuthError::invalid_assertion().into());
        };
        if !unverified.verify_with_certificate(pem) {
            return Err(OAuthError::invalid_assertion().into());
        }
        super::ip::check(&app.policy, client_ip, super::ip::IpCheck::Login)?;
        let claims = unverified.claims;
        if !self.audience_ok(claims.get("aud")) {
            return Err(OAuthError::invalid_audience().into());
        }
        let now = self.clock.now_secs();
        match claims.get("exp").and_then(numeric_date) {
            Some(exp) if exp + SKEW_SECS > now => {}
            _ => return Err(OAuthError::invalid_grant("expired or missing exp").into()),
        }
        let sub = claims
            .get("sub")
            .or_else(|| claims.get("prn"))
            .and_then(|v| v.as_str())
            .ok_or_else(OAuthError::invalid_assertion)?;
        let user = match self.store.get_user_by_username(sub).await? {
            Some(u) if u.active && u.org_id == app.org_id => u,
            _ => return Err(OAuthError::authentication_failure().into()),
        };
        let scopes = match app.policy.permitted_users {
            PermittedUsers::AdminApprovedPreAuthorized => {
                self.require_permitted(&app, &user).await?;
                app.scopes.clone()
            }
            PermittedUsers::AllSelfAuthorized => match self.store.get_consent(&user.id, &app.id).await? {
                Some(c) => c.scopes.intersect(&app.scopes),
                None => return Err(OAuthError::not_approved().into()),
            },
        };
        let scopes = scopes.without_refresh();
        let client = Client { app, secret: None };
        let family = self.new_family(&client.app, &user, scopes, "jwt_bearer", None);
        let resp = self.issue_tokens(Issue::new(&family, &user, &client).without_id_token()).await?;
        Ok(TokenResponse {
            access_token: resp.access_token,
            scope: resp.scope,
            instance_url: resp.instance_url,
            id: resp.id,
            token_type: resp.token_type,
            ..Default::default()
        })
    }

    /// Valet's own login URL, with or without a trailing slash, and the configured aliases
    /// (by default Salesforce's login and test hosts, which clients hard-code).
    pub(crate) fn audience_ok(&self, aud: Option<&serde_json::Value>) -> bool {
        let ok = |a: &str| {
            let a = a.trim_end_matches('/');
            a == self.config.issuer || self.config.audience_aliases.iter().any(|x| x.trim_end_matches('/') == a)
        };
        match aud {
            Some(serde_json::Value::String(s)) => ok(s),
            Some(serde_json::Value::Array(v)) => v.iter().filter_map(|x| x.as_str()).any(ok),
            _ => false,
        }
    }

    /// Admin-approved apps admit only pre-authorized users (spec §8.1).
    pub(crate) async fn require_permitted(&self, app: &App, user: &User) -> Result<(), TokenError> {
        if self.permitted(app, user).await? {
            Ok(())
        } else {
            Err(OAuthError::invalid_app_access().into())
        }
    }

    /// The granted scopes for a `scope` parameter: requested ∩ the app's (refresh scopes never
    /// apply to these flows); no parameter means the app's scopes.
    fn requested_scopes(&self, app: &App, scope: Option<&str>) -> Result<ScopeSet, TokenError> {
        let base = app.scopes.without_refresh();
        match scope {
            None => Ok(base),
            Some(s) => {
                let asked = ScopeSet::parse(s).map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
                let granted = asked.intersect(&base);
                if granted.is_empty() {
                    return Err(
                        OAuthError::invalid_scope("none of the requested scopes is allowed for this app").into()
                    );
                }
                Ok(granted)
            }
        }
    }

    /// The family that one authorization's tokens will belong to; it is stored with its first
    /// tokens (see [`Issue`]) or with the code redemption. `auth_time` is when the user
    /// authenticated (the code's, for a code redemption; now, for the direct grants).
    pub(crate) fn new_family(
        &self,
        app: &App,
        user: &User,
        scopes: ScopeSet,
        grant: &str,
        auth_time: Option<i64>,
    ) -> TokenFamily {
        let now = self.clock.now_ms();
        TokenFamily {
            id: self.new_family_id(),
            org_id: app.org_id.clone(),
            app_id: app.id.clone(),
            user_id: user.id.clone(),
            scopes,
            grant: grant.into(),
            auth_time: auth_time.unwrap_or(now),
            created_at: now,
            revoked_at: None,
        }
    }
}

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
        let claims = match serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()? {
            serde_json::Value::Object(m) => m,
            _ => return None,
        };
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
        let mut reader = std::io::BufReader::new(pem.as_bytes());
        let Some(Ok(der)) = rustls_pemfile::certs(&mut reader).next() else { return false };
        let Ok(cert) = webpki::EndEntityCert::try_from(&der) else { return false };
        cert.verify_signature(
            webpki::aws_lc_rs::RSA_PKCS1_2048_8192_SHA256,
            self.signing_input.as_bytes(),
            &self.signature,
        )
        .is_ok()
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
