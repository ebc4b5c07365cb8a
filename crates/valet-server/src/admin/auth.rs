//! Who may call the admin API. Every handler starts with `AdminCheck::require`: authorization is
//! a value each handler obtains, not a rule in front of a path prefix, so a route added later
//! cannot forget it and no path trick (`//admin`, `%2e%2e`) can route around it (AD-01).

use axum::http::{header, HeaderMap};
use valet_core::engine::admin_token::AdminAccess;
use valet_core::model::User;

use super::error::ApiError;
use crate::AppState;

/// Proof that the request carries a live token of an active admin user with the `full` scope.
#[derive(Debug)]
pub struct AdminCheck {
    pub admin: User,
}

impl AdminCheck {
    /// Checks `Authorization: Bearer <token>` against the engine's admin rule: nothing → 401,
    /// an unknown, expired or revoked token → 401, a valid token without admin rights → 403.
    pub async fn require(state: &AppState, headers: &HeaderMap) -> Result<AdminCheck, ApiError> {
        let token = bearer(headers)?;
        match state.engine.admin_access(&token).await? {
            AdminAccess::Granted(ctx) => {
                tracing::info!(admin = %ctx.user.id, "admin API call");
                Ok(AdminCheck { admin: ctx.user })
            }
            AdminAccess::Forbidden => Err(ApiError::forbidden()),
            AdminAccess::Unauthenticated => Err(ApiError::invalid_token()),
        }
    }
}

/// The bearer value. Only the header is read (never the query, which ends up in logs), and two
/// `Authorization` headers are refused rather than guessed between.
fn bearer(headers: &HeaderMap) -> Result<String, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(v) = values.next() else { return Err(ApiError::unauthenticated()) };
    if values.next().is_some() {
        return Err(ApiError::invalid_token());
    }
    let v = v.to_str().map_err(|_| ApiError::invalid_token())?;
    let (scheme, token) = v.trim().split_once(' ').ok_or_else(ApiError::invalid_token)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(ApiError::invalid_token());
    }
    Ok(token.to_string())
}
