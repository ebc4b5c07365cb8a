//! `POST /services/oauth2/introspect` (RFC 7662, salesforce-wire.md §6.2).

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use valet_core::engine::token::TokenError;
use valet_proto::OAuthError;

use crate::http::{self, Format};
use crate::AppState;

pub async fn introspect(State(state): State<AppState>, req: Request) -> Response {
    let (headers, params) = match http::read_params(req).await {
        Ok(p) => p,
        Err(e) => return http::oauth_error(Format::Json, &e),
    };
    let auth = match http::client_auth(&headers, &params) {
        Ok(Some(a)) => a,
        Ok(None) => return unauthorized(&OAuthError::invalid_client()),
        Err(e) => return unauthorized(&e),
    };
    let token = match params.get("token") {
        Ok(Some(t)) => t.to_string(),
        Ok(None) => return http::oauth_error(Format::Json, &OAuthError::invalid_request("token must be provided")),
        Err(_) => return http::oauth_error(Format::Json, &OAuthError::invalid_request("token is repeated")),
    };
    let hint = params.get_lenient("token_type_hint");
    match state.engine.introspect(&auth, &token, hint).await {
        Ok(i) => http::no_store(http::json(StatusCode::OK, &i)),
        Err(TokenError::OAuth(e)) => unauthorized(&e),
        Err(TokenError::Fault(f)) => http::fault(&f),
    }
}

/// Client-authentication failures at introspection: 401 with `WWW-Authenticate`.
fn unauthorized(e: &OAuthError) -> Response {
    let e = if e.is("invalid_client_id") || e.is("invalid_client") { OAuthError::invalid_client() } else { e.clone() };
    let mut r = http::no_store(http::json(StatusCode::UNAUTHORIZED, &e));
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"valet\""));
    r
}
