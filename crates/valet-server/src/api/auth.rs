//! The token check every data API call makes: one function, so that when JWT access tokens
//! are verified differently from opaque ones only this changes. Today both kinds are looked up
//! by hash through `Engine::authenticate_bearer` (revocation, expiry, family and user state
//! included).

use std::net::IpAddr;

use axum::http::{header, HeaderMap};
use valet_core::engine::bearer::{BearerRefusal, ResourceUse};
use valet_core::engine::resource::TokenContext;
use valet_data::Caller;

use super::error::ApiError;
use crate::AppState;

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

/// Admits the call through the engine's one rule for bearer calls (token, scopes, the app's
/// IP ranges). Every refusal is the same 401 (`INVALID_SESSION_ID`, `WWW-Authenticate:
/// Token`), which makes clients refresh, except a token whose scopes can never reach the API,
/// whose message jsforce does not refresh on.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    client_ip: Option<IpAddr>,
    need: ResourceUse,
) -> Result<Authed, ApiError> {
    let token = token_from(headers).ok_or_else(ApiError::invalid_session)?;
    let ctx = match state.engine.admit_bearer(token, client_ip, need).await {
        Ok(Ok(ctx)) => ctx,
        Ok(Err(BearerRefusal::WrongScope)) => return Err(ApiError::wrong_scope()),
        Ok(Err(BearerRefusal::InvalidToken | BearerRefusal::IpRestricted)) => return Err(ApiError::invalid_session()),
        Err(e) => return Err(ApiError::from(valet_data::DataError::internal(e))),
    };
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
