//! The data layer's one error type: every failure already carries the HTTP status, Salesforce
//! `errorCode`, message and (where Salesforce sends them) `fields`, so the HTTP layer renders it
//! without deciding anything.

use serde::Serialize;

/// A Salesforce REST error (`[{"message","errorCode","fields"?}]`) with its HTTP status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}{}", detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
pub struct DataError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub fields: Option<Vec<String>>,
    /// The cause of an internal error, for logs and tests; never sent to the client.
    pub detail: Option<String>,
}

/// One element of the error array on the wire.
#[derive(Debug, Serialize)]
pub struct WireError<'a> {
    pub message: &'a str,
    #[serde(rename = "errorCode")]
    pub error_code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fields: Option<&'a [String]>,
}

pub type DataResult<T> = Result<T, DataError>;

impl DataError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        DataError { status, code, message: message.into(), fields: None, detail: None }
    }

    pub fn with_fields(mut self, fields: Vec<String>) -> Self {
        self.fields = Some(fields);
        self
    }

    /// The body Salesforce sends: always an array, which simple-salesforce indexes into.
    pub fn wire(&self) -> WireError<'_> {
        WireError { message: &self.message, error_code: self.code, fields: self.fields.as_deref() }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        DataError::new(400, code, message)
    }

    /// `/sobjects/<Unknown>` and unknown API resources.
    pub fn not_found_resource() -> Self {
        DataError::new(404, "NOT_FOUND", "The requested resource does not exist")
    }

    /// An ID that names no record (Salesforce's odd "external ID" wording, salesforce-wire.md §11.14).
    pub fn record_not_found(id: &str) -> Self {
        DataError::new(
            404,
            "NOT_FOUND",
            format!("Provided external ID field does not exist or is not accessible: {id}"),
        )
    }

    pub fn entity_deleted() -> Self {
        DataError::new(404, "ENTITY_IS_DELETED", "entity is deleted")
    }

    pub fn malformed_id(id: &str) -> Self {
        let shown: String = id.chars().take(40).collect();
        DataError::new(400, "MALFORMED_ID", format!("Record ID: id value of incorrect type: {shown}"))
            .with_fields(vec!["Id".into()])
    }

    pub fn invalid_field(message: impl Into<String>) -> Self {
        DataError::bad_request("INVALID_FIELD", message)
    }

    pub fn json_parse(message: impl Into<String>) -> Self {
        DataError::bad_request("JSON_PARSER_ERROR", message)
    }

    /// A database fault: the caller sees Salesforce's generic 500, the log keeps the cause.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "data API internal error");
        DataError {
            detail: Some(cause.to_string()),
            ..DataError::new(
                500,
                "UNKNOWN_EXCEPTION",
                "An unexpected error occurred. Please include this ErrorId if you contact support.",
            )
        }
    }

    /// The error of a failed SOQL parse, rendered as Salesforce does (row, column, caret).
    pub fn soql(text: &str, e: &valet_soql::SoqlError) -> Self {
        DataError::bad_request("MALFORMED_QUERY", e.render_salesforce(text))
    }

    /// An error about a position in a query (`INVALID_FIELD`, `INVALID_TYPE`, ...), in the same
    /// shape as the parser's.
    pub fn soql_at(code: &'static str, text: &str, span: valet_soql::Span, message: &str) -> Self {
        DataError::bad_request(code, valet_soql::render_at(text, span.start, message))
    }
}

impl From<sqlx::Error> for DataError {
    fn from(e: sqlx::Error) -> Self {
        DataError::internal(e)
    }
}
