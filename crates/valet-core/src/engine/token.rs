//! The token endpoint (salesforce-wire.md §4): a request goes to its grant (`grants/*`), with the
//! credentials and the error type every grant shares. Client authentication is in `client_auth`,
//! minting in `issue`.

use valet_proto::token::{TokenRequest, TokenResponse};
use valet_proto::OAuthError;

use crate::model::*;
use crate::secret::Secret;

use super::{Engine, EngineError};

/// Client credentials as presented, from Basic or the body (already reconciled).
#[derive(Debug, Clone)]
pub struct ClientAuth {
    pub client_id: String,
    pub secret: Option<Secret>,
    /// A `private_key_jwt` or `client_secret_jwt` assertion (RFC 7523 §2.2), unverified.
    pub assertion: Option<String>,
    /// The address the request came from, for the app's IP restrictions.
    pub client_ip: Option<std::net::IpAddr>,
}

/// A token-endpoint outcome: an OAuth error for the client, or a fault that becomes a 500.
#[derive(Debug)]
pub enum TokenError {
    OAuth(OAuthError),
    Fault(EngineError),
}

impl From<OAuthError> for TokenError {
    fn from(e: OAuthError) -> Self {
        TokenError::OAuth(e)
    }
}
impl From<EngineError> for TokenError {
    fn from(e: EngineError) -> Self {
        TokenError::Fault(e)
    }
}
impl From<crate::store::StoreError> for TokenError {
    fn from(e: crate::store::StoreError) -> Self {
        TokenError::Fault(e.into())
    }
}

/// An authenticated client, and the secret it proved (used for the response `signature`).
pub struct Client {
    pub app: App,
    pub secret: Option<Secret>,
}

impl Engine {
    /// Runs one token request from `client_ip` (the engine attaches it to the client's
    /// credentials here, the one place, for the app's IP ranges).
    pub async fn token(
        &self,
        req: TokenRequest,
        auth: Option<ClientAuth>,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<TokenResponse, TokenError> {
        // The JWT bearer flow names its client in the assertion, not in credentials.
        if let TokenRequest::JwtBearer { assertion } = &req {
            return self.jwt_bearer(assertion, client_ip).await;
        }
        // Salesforce's asset-token request carries no client credentials: the subject access
        // token names its app.
        if let (
            None,
            TokenRequest::TokenExchange { subject_token, subject_token_type, actor_token: Some(actor), scope },
        ) = (&auth, &req)
        {
            let req = super::exchange::ExchangeRequest {
                subject_token,
                subject_token_type,
                actor_token: Some(actor),
                scope: scope.as_deref(),
            };
            return self.asset_token(None, req).await;
        }
        let mut auth = auth.ok_or_else(OAuthError::invalid_client_id)?;
        auth.client_ip = client_ip;
        match req {
            TokenRequest::AuthorizationCode { code, redirect_uri, code_verifier, hybrid } => {
                let mut r = self.redeem_code(auth, &code, redirect_uri.as_deref(), code_verifier.as_deref()).await?;
                if hybrid {
                    self.add_hybrid_fields(&mut r);
                }
                Ok(r)
            }
            TokenRequest::RefreshToken { refresh_token, scope, hybrid } => {
                let mut r = self.refresh(auth, &refresh_token, scope.as_deref()).await?;
                if hybrid {
                    self.add_hybrid_fields(&mut r);
                }
                Ok(r)
            }
            TokenRequest::ClientCredentials { scope } => self.client_credentials(auth, scope.as_deref()).await,
            TokenRequest::Password { username, password } => self.password_grant(auth, &username, &password).await,
            TokenRequest::DevicePoll { device_code } => self.device_poll(auth, &device_code).await,
            TokenRequest::TokenExchange { subject_token, subject_token_type, actor_token, scope } => {
                let req = super::exchange::ExchangeRequest {
                    subject_token: &subject_token,
                    subject_token_type: &subject_token_type,
                    actor_token: actor_token.as_deref(),
                    scope: scope.as_deref(),
                };
                self.token_exchange(auth, req).await
            }
            _ => Err(OAuthError::unsupported_grant_type().into()),
        }
    }
}
