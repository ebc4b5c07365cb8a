//! `POST /services/oauth2/token` (salesforce-wire.md §4).

use axum::extract::{Request, State};
use axum::response::Response;
use valet_proto::token::TokenRequest;
use valet_proto::OAuthError;

use crate::http::{self, Format};
use crate::AppState;

pub async fn token(State(state): State<AppState>, req: Request) -> Response {
    let ip = http::client_ip(&state.engine, &req);
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
    if let TokenRequest::DeviceStart { scope } = &request {
        return device_start(&state, format, auth, scope.as_deref(), ip).await;
    }
    match state.engine.token(request, auth, ip).await {
        Ok(resp) => {
            state.metrics.token_issued(grant);
            match http::to_json(&resp) {
                Ok(json) => http::render_pairs(axum::http::StatusCode::OK, format, json, || resp.pairs(), "OAuth"),
                Err(fault) => fault,
            }
        }
        Err(e) => http::token_error(format, e),
    }
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
) -> Response {
    match state.engine.device_start(auth, scope, client_ip).await {
        Ok(d) => {
            let json = match http::to_json(&d) {
                Ok(j) => j,
                Err(fault) => return fault,
            };
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
            http::render_pairs(axum::http::StatusCode::OK, format, json, pairs, "OAuth")
        }
        Err(e) => http::token_error(format, e),
    }
}

/// `POST /services/oauth2/device_authorization` (RFC 8628 §3.1).
pub async fn device_authorization(State(state): State<AppState>, req: Request) -> Response {
    let ip = http::client_ip(&state.engine, &req);
    let (headers, params) = match http::read_params(req).await {
        Ok(p) => p,
        Err(e) => return http::oauth_error(Format::Json, &e),
    };
    let format = Format::negotiate(&headers, &params);
    let auth = match http::client_auth(&headers, &params) {
        Ok(a) => a,
        Err(e) => return http::oauth_error(format, &e),
    };
    device_start(&state, format, auth, params.get_lenient("scope"), ip).await
}
