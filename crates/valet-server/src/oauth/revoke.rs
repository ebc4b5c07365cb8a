//! `/services/oauth2/revoke` by POST or GET (salesforce-wire.md §6.1). Errors are form-encoded, which is
//! how jsforce parses them; GET supports a JSONP `callback`.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
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

fn error(callback: Option<&str>, e: &OAuthError) -> Response {
    if let Some(cb) = callback {
        let body = format!("{{\"error\":\"{}\"}}", e.error);
        return http::jsonp(cb, &body);
    }
    let mut pairs = vec![("error", e.error.to_string())];
    if let Some(d) = &e.error_description {
        pairs.push(("error_description", d.to_string()));
    }
    let body = http::form_encode(pairs);
    http::no_store(
        (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "application/x-www-form-urlencoded;charset=UTF-8")], body)
            .into_response(),
    )
}
