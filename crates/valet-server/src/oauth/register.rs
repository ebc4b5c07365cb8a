//! `/services/oauth2/register` (RFC 7591) and `/services/oauth2/register/<client_id>` (RFC 7592).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use valet_core::engine::registration::RegistrationError;
use valet_proto::registration::ClientMetadata;
use valet_proto::OAuthError;

use crate::http::{self, OAuthReply};
use crate::AppState;

#[allow(clippy::result_large_err)] // the error is the response itself, returned at once
fn parse(body: &Bytes) -> Result<ClientMetadata, Response> {
    if valet_proto::json_has_nul(body) {
        let e = OAuthError::with_description("invalid_client_metadata", "strings must not contain NUL characters");
        return Err(OAuthReply::registration(StatusCode::BAD_REQUEST, e).into_response());
    }
    serde_json::from_slice(body).map_err(|e| {
        let e = OAuthError::with_description(
            "invalid_client_metadata",
            format!("the body is not valid client metadata: {e}"),
        );
        OAuthReply::registration(StatusCode::BAD_REQUEST, e).into_response()
    })
}

fn error(e: RegistrationError) -> Response {
    match e {
        RegistrationError::Client(status, e) => {
            OAuthReply::registration(StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST), e).into_response()
        }
        RegistrationError::Fault(f) => http::fault(&f),
    }
}

pub async fn register(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let meta = match parse(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    match state.engine.register_client(http::bearer(&headers).as_deref(), meta).await {
        Ok(info) => http::no_store(http::json(StatusCode::CREATED, &info)),
        Err(e) => error(e),
    }
}

pub async fn read(State(state): State<AppState>, Path(client_id): Path<String>, headers: HeaderMap) -> Response {
    match state.engine.read_registration(&client_id, http::bearer(&headers).as_deref()).await {
        Ok(info) => http::no_store(http::json(StatusCode::OK, &info)),
        Err(e) => error(e),
    }
}

pub async fn update(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let meta = match parse(&body) {
        Ok(m) => m,
        Err(r) => return r,
    };
    match state.engine.update_registration(&client_id, http::bearer(&headers).as_deref(), meta).await {
        Ok(info) => http::no_store(http::json(StatusCode::OK, &info)),
        Err(e) => error(e),
    }
}

pub async fn delete(State(state): State<AppState>, Path(client_id): Path<String>, headers: HeaderMap) -> Response {
    match state.engine.delete_registration(&client_id, http::bearer(&headers).as_deref()).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(e),
    }
}
