//! Client credentials (salesforce-wire.md §4.5): the app acts as its configured Run-As user.

use valet_proto::token::TokenResponse;
use valet_proto::OAuthError;

use super::super::issue::Issue;
use super::super::token::{ClientAuth, TokenError};
use super::super::Engine;

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
}
