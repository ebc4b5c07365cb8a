//! `POST /services/oauth2/token` (salesforce-wire.md §4).

use axum::extract::{Request, State};
use axum::response::Response;
use valet_proto::token::TokenRequest;
use valet_proto::OAuthError;

use crate::http::{self, Format};
use crate::AppState;

pub async fn token(State(state): State<AppState>, req: Request) -> Result<Response, Response> {
    let ip = http::client_ip(&state.engine, &req);
    let (headers, params) = http::read_params(req).await.map_err(|e| http::oauth_error(Format::Json, &e))?;
    let format = Format::negotiate(&headers, &params);
    let request = TokenRequest::from_params(&params).map_err(|e| http::oauth_error(format, &e))?;
    let auth = http::client_auth(&headers, &params).map_err(|e| http::oauth_error(format, &e))?;
    if let TokenRequest::DeviceStart { scope } = &request {
        return device_start(&state, format, auth, scope.as_deref(), ip).await;
    }
    let grant = request.grant_name();
    let resp = state.engine.token(request, auth, ip).await.map_err(|e| http::token_error(format, e))?;
    state.metrics.token_issued(grant);
    let json = http::to_json(&resp)?;
    Ok(http::render_pairs(axum::http::StatusCode::OK, format, json, || resp.pairs(), "OAuth"))
}

/// Salesforce refuses token requests by GET.
pub async fn token_get() -> Response {
    http::oauth_error(Format::Json, &OAuthError::invalid_request("must use HTTP POST"))
}

/// Salesforce's device flow step 1 (at the token endpoint) and RFC 8628's device
/// authorization endpoint share this.
async fn device_start(
    state: &AppState,
    format: Format,
    auth: Option<valet_core::engine::token::ClientAuth>,
    scope: Option<&str>,
    client_ip: Option<std::net::IpAddr>,
) -> Result<Response, Response> {
    let d = state.engine.device_start(auth, scope, client_ip).await.map_err(|e| http::token_error(format, e))?;
    let json = http::to_json(&d)?;
    let pairs = || {
        vec![
            ("device_code", d.device_code.clone()),
            ("user_code", d.user_code.clone()),
            ("verification_uri", d.verification_uri.clone()),
            ("verification_uri_complete", d.verification_uri_complete.clone()),
            ("interval", d.interval.to_string()),
            ("expires_in", d.expires_in.to_string()),
        ]
    };
    Ok(http::render_pairs(axum::http::StatusCode::OK, format, json, pairs, "OAuth"))
}

/// `POST /services/oauth2/device_authorization` (RFC 8628 §3.1).
pub async fn device_authorization(State(state): State<AppState>, req: Request) -> Result<Response, Response> {
    let ip = http::client_ip(&state.engine, &req);
    let (headers, params) = http::read_params(req).await.map_err(|e| http::oauth_error(Format::Json, &e))?;
    let format = Format::negotiate(&headers, &params);
    let auth = http::client_auth(&headers, &params).map_err(|e| http::oauth_error(format, &e))?;
    device_start(&state, format, auth, params.get_lenient("scope"), ip).await
}
