//! `POST /services/oauth2/introspect` (RFC 7662, salesforce-wire.md §6.2).

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use valet_core::engine::token::TokenError;
use valet_proto::OAuthError;

use crate::http::{self, Format, OAuthReply};
use crate::AppState;

pub async fn introspect(State(state): State<AppState>, req: Request) -> Result<Response, Response> {
    let (headers, params) = http::read_params(req).await.map_err(|e| http::oauth_error(Format::Json, &e))?;
    let unauthorized = |e: OAuthError| OAuthReply::client_unauthorized(e).into_response();
    let auth = http::client_auth(&headers, &params)
        .map_err(unauthorized)?
        .ok_or_else(|| unauthorized(OAuthError::invalid_client()))?;
    let token = match params.get("token") {
        Ok(Some(t)) => t.to_string(),
        Ok(None) => {
            return Err(http::oauth_error(Format::Json, &OAuthError::invalid_request("token must be provided")))
        }
        Err(_) => return Err(http::oauth_error(Format::Json, &OAuthError::invalid_request("token is repeated"))),
    };
    let hint = params.get_lenient("token_type_hint");
    let answer = state.engine.introspect(&auth, &token, hint).await.map_err(|e| match e {
        TokenError::OAuth(e) => unauthorized(e),
        TokenError::Fault(f) => http::fault(&f),
    })?;
    Ok(http::no_store(http::json(StatusCode::OK, &answer)))
}
