//! `/services/oauth2/revoke` by POST or GET (salesforce-wire.md §6.1). Errors are form-encoded, which is
//! how jsforce parses them; GET supports a JSONP `callback`.

use axum::extract::{Request, State};
use axum::response::Response;
use valet_core::engine::token::TokenError;
use valet_proto::OAuthError;

use crate::http;
use crate::AppState;

pub async fn revoke_post(State(state): State<AppState>, req: Request) -> Response {
    revoke(state, req).await
}

pub async fn revoke_get(State(state): State<AppState>, req: Request) -> Response {
    revoke(state, req).await
}

async fn revoke(state: AppState, req: Request) -> Response {
    let (_, params) = match http::read_params(req).await {
        Ok(p) => p,
        Err(e) => return error(None, &e),
    };
    let callback = params.get_lenient("callback").filter(|c| http::valid_callback(c)).map(str::to_string);
    let token = match params.get("token") {
        Ok(Some(t)) => t.to_string(),
        Ok(None) => return error(callback.as_deref(), &OAuthError::invalid_request("token must be provided")),
        Err(_) => return error(callback.as_deref(), &OAuthError::invalid_request("token is repeated")),
    };
    match state.engine.revoke(&token).await {
        Ok(()) => match callback {
            Some(cb) => http::jsonp(&cb, "{}"),
            None => http::empty_ok(),
        },
        Err(TokenError::OAuth(e)) => error(callback.as_deref(), &e),
        Err(TokenError::Fault(f)) => http::fault(&f),
    }
}

/// Salesforce's revoke errors: form-encoded 400 (jsforce parses that), or JSONP with `callback`.
fn error(callback: Option<&str>, e: &OAuthError) -> Response {
    match callback {
        Some(cb) => http::jsonp(cb, &format!("{{\"error\":\"{}\"}}", e.error)),
        None => http::oauth_error(http::Format::UrlEncoded, e),
    }
}
