//! The admin API's one error type. Every failure of this layer becomes an `ApiError`, and
//! `IntoResponse` is the only place that decides how it looks on the wire:
//! `{"error": "<code>", "message": "...", "field": "..."}`, never a 500 for bad input.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use valet_core::engine::admin::AdminError;
use valet_core::EngineError;
use valet_data::DataError;

/// A failed admin API request.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// A stable, machine-readable code (`invalid_request`, `not_found`, ...).
    pub code: &'static str,
    pub message: String,
    /// The request field at fault, as a dotted path (`policy.id_token.valid_minutes`).
    pub field: Option<String>,
    /// RFC 6750 challenge for 401 and 403.
    challenge: Option<&'static str>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

/// The realm every challenge names, so a client can tell the admin API's 401 from others.
const CHALLENGE: &str = "Bearer realm=\"valet-admin\"";
const CHALLENGE_INVALID: &str = "Bearer realm=\"valet-admin\", error=\"invalid_token\"";
const CHALLENGE_SCOPE: &str = "Bearer realm=\"valet-admin\", error=\"insufficient_scope\", scope=\"full\"";

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None, challenge: None }
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// The request's syntax or shape is wrong (bad JSON, wrong type, unknown key).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn invalid_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", message)
    }

    /// Well-formed, but the engine refused the values (a weak password, an http callback).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is limited to {limit} bytes"),
        )
    }

    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "request bodies must be application/json",
        )
    }

    /// No credentials at all.
    pub fn unauthenticated() -> Self {
        ApiError {
            challenge: Some(CHALLENGE),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "an admin token is required: Authorization: Bearer <token>",
            )
        }
    }

    /// Credentials that are not a live token.
    pub fn invalid_token() -> Self {
        ApiError {
            challenge: Some(CHALLENGE_INVALID),
            ..Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "the token is invalid, expired or revoked")
        }
    }

    /// A live token that does not confer admin rights.
    pub fn forbidden() -> Self {
        ApiError {
            challenge: Some(CHALLENGE_SCOPE),
            ..Self::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "this token does not grant admin access: it must belong to an admin user and carry the full scope",
            )
        }
    }

    /// A fault of Valet (storage, crypto): logged with its detail, answered without it.
    pub fn fault(err: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %err, "admin API internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "internal error; the server log has the detail")
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::Invalid(m) => ApiError::unprocessable(m),
            AdminError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            AdminError::Conflict(what) => ApiError::conflict(format!("{what} already exists")),
            AdminError::Engine(f) => ApiError::fault(&f),
        }
    }
}

/// The data layer's errors carry an HTTP status of their own: 404 (no such object) and 409 (a
/// name already taken) keep theirs, other client errors are values the data layer refused
/// (422), and anything else is a fault.
impl From<DataError> for ApiError {
    fn from(e: DataError) -> Self {
        match e.status {
            404 => ApiError::not_found(e.message),
            409 => ApiError::conflict(e.message),
            400..=499 => ApiError::unprocessable(e.message),
            _ => ApiError::fault(&e),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError::fault(&e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body { error: self.code, message: &self.message, field: self.field.as_deref() };
        let mut r = super::json_response(self.status, &body);
        if let Some(c) = self.challenge {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        r
    }
}
