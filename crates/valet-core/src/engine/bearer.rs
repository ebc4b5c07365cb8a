//! Every call a bearer token makes to a protected resource (the REST data API, Connect REST,
//! userinfo, the identity URL) is admitted here: the token itself, the scopes the resource
//! needs, and the app's IP ranges against the caller's address. One function, so the data API,
//! the OAuth endpoints and anything added later cannot disagree.

use std::net::IpAddr;

use super::resource::TokenContext;
use super::{Engine, EngineError};

/// What a resource requires of the token's scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceUse {
    /// The REST data API: `api` or `full`.
    Api,
    /// Connect REST (`/chatter`): `chatter_api`, `api` or `full`.
    Chatter,
    /// userinfo and the identity URL: any scope of the identity service (`id`, `profile`,
    /// `email`, `openid`, `api`, ...), never `chatter_api` alone.
    Identity,
}

/// Why a bearer call is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BearerRefusal {
    /// Unknown, expired or revoked token, or its user is inactive.
    InvalidToken,
    /// The token is valid but its scopes do not reach this resource.
    WrongScope,
    /// The caller's address is outside the app's IP ranges and the app does not relax them.
    IpRestricted,
}

impl Engine {
    /// Admits a bearer token for one use of a resource from `client_ip`.
    pub async fn admit_bearer(
        &self,
        token: &str,
        client_ip: Option<IpAddr>,
        resource: ResourceUse,
    ) -> Result<Result<TokenContext, BearerRefusal>, EngineError> {
        let Some(ctx) = self.authenticate_bearer(token).await? else { return Ok(Err(BearerRefusal::InvalidToken)) };
        let allowed = match resource {
            ResourceUse::Api => ctx.scopes.allows_api(),
            ResourceUse::Chatter => ctx.scopes.allows_api() || ctx.scopes.contains("chatter_api"),
            ResourceUse::Identity => ctx.scopes.allows_identity(),
        };
        if !allowed {
            return Ok(Err(BearerRefusal::WrongScope));
        }
        // The app's IP ranges hold for every use of its tokens, not only at login (an app
        // that relaxes them for refresh still has its API calls checked).
        let Some(app) = self.store.get_app(&ctx.app_id).await? else { return Ok(Err(BearerRefusal::InvalidToken)) };
        if super::ip::check(&app.policy, client_ip, super::ip::IpCheck::Login).is_err() {
            return Ok(Err(BearerRefusal::IpRestricted));
        }
        Ok(Ok(ctx))
    }
}
