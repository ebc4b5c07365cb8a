//! Username-password (salesforce-wire.md §4.7): blocked org-wide by default, throttled like the
//! login page.

use valet_proto::token::TokenResponse;
use valet_proto::OAuthError;

use super::super::issue::Issue;
use super::super::token::{ClientAuth, TokenError};
use super::super::Engine;

impl Engine {
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
        // Throttled like the login page (per username and address); every refusal, a locked
        // account included, reads `authentication failure`, as on Salesforce.
        let user = match self.login(username, password, auth.client_ip).await? {
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
}
