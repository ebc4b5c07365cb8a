//! `POST /services/oauth2/token` (spec §4).

use axum::extract::{Request, State};
use axum::response::Response;
use valet_proto::token::TokenRequest;
use valet_proto::OAuthError;

use crate::http::{self, Format};
use crate::AppState;

pub async fn token(State(state): State<AppState>, req: Request) -> Response {
    let (headers, params) = match http::read_params(req).await {
        Ok(p) => p,
        Err(e) => return http::oauth_error(Format::Json, &e),
    };
    let format = Format::negotiate(&headers, &params);
    let request = match TokenRequest::from_params(&params) {
        Ok(r) => r,
        Err(e) => return http::oauth_error(format, &e),
    };
    let auth = match http::client_auth(&headers, &params) {
        Ok(a) => a,
        Err(e) => return http::oauth_error(format, &e),
    };
    let grant = request.grant_name();
    match state.engine.token(request, auth).await {
        Ok(resp) => {
            state.metrics.token_issued(grant);
            let json = serde_json::to_string(&resp).unwrap_or_default();
            http::render_pairs(axum::http::StatusCode::OK, format, json, &resp.pairs(), "OAuth")
        }
        Err(e) => http::token_error(format, e),
    }
}

/// Salesforce refuses token requests by GET.
pub async fn token_get() -> Response {
    http::oauth_error(Format::Json, &OAuthError::invalid_request("must use HTTP POST"))
}
