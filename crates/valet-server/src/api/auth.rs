//! The token check every data API call makes: one function, so that when JWT access tokens
//! are verified differently from opaque ones only this changes. Today both kinds are looked up
//! by hash through `Engine::authenticate_bearer` (revocation, expiry, family and user state
//! included).

use axum::http::{header, HeaderMap};
use valet_core::engine::resource::TokenContext;
use valet_data::Caller;

use super::error::ApiError;
use crate::AppState;

/// What a resource requires of the token's scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// `api` or `full` (spec §7).
    Api,
    /// Connect REST (`/chatter`): `chatter_api`, `api` or `full`.
    Chatter,
}

/// A caller whose token was accepted.
#[derive(Debug, Clone)]
pub struct Authed {
    pub ctx: TokenContext,
    pub caller: Caller,
}

/// `Authorization: Bearer <token>` or `Authorization: OAuth <token>` (older clients).
pub fn token_from(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.trim().split_once(' ')?;
    let ok = scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth");
    let token = token.trim();
    (ok && !token.is_empty()).then_some(token)
}

/// Validates the token and its scopes. Every failure of the token itself is the same 401
/// (`INVALID_SESSION_ID`, `WWW-Authenticate: Token`), which makes clients refresh.
pub async fn authenticate(state: &AppState, headers: &HeaderMap, need: Need) -> Result<Authed, ApiError> {
    let token = token_from(headers).ok_or_else(ApiError::invalid_session)?;
    let ctx = state
        .engine
        .authenticate_bearer(token)
        .await
        .map_err(|e| ApiError::from(valet_data::DataError::internal(e)))?
        .ok_or_else(ApiError::invalid_session)?;
    let allowed = match need {
        Need::Api => ctx.scopes.allows_api(),
        Need::Chatter => ctx.scopes.allows_api() || ctx.scopes.contains("chatter_api"),
    };
    if !allowed {
        return Err(ApiError::wrong_scope());
    }
    let caller = Caller { org_id: ctx.org_id.clone(), user_id: ctx.user.id.clone() };
    Ok(Authed { ctx, caller })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes() {
        let mut h = HeaderMap::new();
        for (v, want) in [
            ("Bearer abc", Some("abc")),
            ("OAuth abc", Some("abc")),
            ("bearer  abc ", Some("abc")),
            ("Basic abc", None),
            ("Bearer ", None),
            ("abc", None),
        ] {
            h.insert(header::AUTHORIZATION, v.parse().unwrap_or_else(|_| unreachable!()));
            assert_eq!(token_from(&h), want, "{v}");
        }
    }
}
