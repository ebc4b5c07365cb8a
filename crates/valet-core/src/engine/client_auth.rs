//! Client authentication at the token endpoint and the calls an app's backend makes: a secret
//! (Basic or body) checked in constant time against every live secret, or a signed client
//! assertion; then the app's IP ranges.

use crate::model::*;

use super::token::{Client, ClientAuth, TokenError};
use super::Engine;
use valet_proto::OAuthError;

impl Engine {
    /// Authenticates the client. A secret that is sent is always checked, even where it is not
    /// required (salesforce-wire.md §1.3); `requires_secret` reads from the app's policy whether its absence
    /// is acceptable for this flow.
    pub async fn authenticate_client(
        &self,
        auth: &ClientAuth,
        requires_secret: impl Fn(&AppPolicy) -> bool,
    ) -> Result<Client, TokenError> {
        self.authenticate_client_at(auth, requires_secret, super::ip::IpCheck::Login).await
    }

    /// [`Engine::authenticate_client`], then the app's IP restrictions for this kind of call.
    pub async fn authenticate_client_at(
        &self,
        auth: &ClientAuth,
        requires_secret: impl Fn(&AppPolicy) -> bool,
        at: super::ip::IpCheck,
    ) -> Result<Client, TokenError> {
        let client = self.authenticate_client_inner(auth, requires_secret).await?;
        super::ip::check(&client.app.policy, auth.client_ip, at)?;
        Ok(client)
    }

    async fn authenticate_client_inner(
        &self,
        auth: &ClientAuth,
        requires_secret: impl Fn(&AppPolicy) -> bool,
    ) -> Result<Client, TokenError> {
        let app =
            self.store.get_app_by_consumer_key(&auth.client_id).await?.ok_or_else(OAuthError::invalid_client_id)?;
        let require_secret = requires_secret(&app.policy);
        if let Some(assertion) = &auth.assertion {
            if auth.secret.is_some() {
                return Err(OAuthError::invalid_request("use only one client authentication method").into());
            }
            self.verify_client_assertion(&app, assertion).await?;
            return Ok(Client { app, secret: None });
        }
        match &auth.secret {
            Some(presented) => {
                if app.is_public {
                    return Err(OAuthError::invalid_client().into());
                }
                let hash = presented.hash();
                let live = self.store.live_app_secrets(&app.id).await?;
                // Compare against every live secret so timing does not tell which one matched.
                let mut ok = false;
                for s in &live {
                    ok |= s.secret_hash.ct_eq(&hash);
                }
                if !ok {
                    return Err(OAuthError::invalid_client().into());
                }
                Ok(Client { app, secret: Some(presented.clone()) })
            }
            None if require_secret && !app.is_public => Err(OAuthError::invalid_client().into()),
            None => Ok(Client { app, secret: None }),
        }
    }
}
