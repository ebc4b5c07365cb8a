//! The token endpoint's grants, one module each (the sections are those of
//! salesforce-wire.md): the authorization code (§4.1), refresh (§4.2), JWT bearer (§4.4, RFC
//! 7523), client credentials (§4.5) and username-password (§4.7); the helpers they share are
//! here.

mod authorization_code;
mod client_credentials;
mod jwt_bearer;
mod password;
mod refresh_token;

use valet_proto::OAuthError;

use crate::model::*;
use crate::scope::ScopeSet;

use super::token::TokenError;
use super::Engine;

impl Engine {
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

    /// Admin-approved apps admit only pre-authorized users (salesforce-wire.md §8.1).
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
