//! The API's error: a [`valet_data::DataError`] (status, Salesforce `errorCode`, message,
//! fields) plus the headers some statuses need, rendered as Salesforce's JSON array.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use valet_data::DataError;

#[derive(Debug)]
pub struct ApiError {
    pub error: DataError,
    /// `WWW-Authenticate: Token` on 401s (salesforce-wire.md §9.10).
    pub www_authenticate: bool,
    /// `Allow` on 405s.
    pub allow: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        DataError::new(status, code, message).into()
    }

    pub fn not_found() -> Self {
        DataError::not_found_resource().into()
    }

    /// A missing, unknown, expired or revoked token: what makes every client refresh.
    pub fn invalid_session() -> Self {
        ApiError { www_authenticate: true, ..ApiError::new(401, "INVALID_SESSION_ID", "Session expired or invalid") }
    }

    /// A valid token without a scope that reaches the REST API. jsforce does not refresh on this
    /// message (a refreshed token would have the same scopes), so it cannot loop.
    pub fn wrong_scope() -> Self {
        ApiError {
            www_authenticate: true,
            ..ApiError::new(401, "INVALID_SESSION_ID", "This session is not valid for use with the REST API")
        }
    }

    pub fn allow(mut self, methods: &'static str) -> Self {
        self.allow = Some(methods);
        self
    }
}

impl From<DataError> for ApiError {
    fn from(error: DataError) -> Self {
        ApiError { error, www_authenticate: false, allow: None }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_string(&[self.error.wire()]).unwrap_or_else(|_| "[]".into());
        let mut r = crate::http::body_response(status, crate::http::JSON_UTF8, body);
        if self.www_authenticate {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Token"));
        }
        if let Some(a) = self.allow {
            r.headers_mut().insert(header::ALLOW, HeaderValue::from_static(a));
        }
        r
    }
}
