//! The parser's one error type.
//!
//! Salesforce answers any query it cannot parse with HTTP 400
//! `[{"message": "...", "errorCode": "MALFORMED_QUERY"}]`, where the message points at the
//! offending token (`ERROR at Row:1:Column:11`). [`SoqlError`] keeps what is needed to rebuild that
//! message: the short text, the span, and the precomputed row and column.

use serde::Serialize;

use crate::span::{line_col, render_at, Span};

/// Why the text was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorKind {
    /// The text is not SOQL (Salesforce would reject it too).
    Malformed,
    /// The text is SOQL that Salesforce accepts but Valet does not implement (subqueries,
    /// `TYPEOF`, `GROUP BY`, date functions, ...). Kept apart so logs and tests can tell
    /// "the client is wrong" from "Valet is incomplete".
    Unsupported,
}

/// A parse failure with the byte span it is about and its 1-based row/column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message} (at Row:{line}:Column:{column})")]
pub struct SoqlError {
    /// The short message, e.g. `unexpected token: 'FORM'`.
    pub message: String,
    /// Bytes of the query the message is about (empty at the end of the text for `<EOF>`).
    pub span: Span,
    /// Malformed or merely unsupported.
    pub kind: ErrorKind,
    /// 1-based row of `span.start`.
    pub line: usize,
    /// 1-based column (in characters) of `span.start`.
    pub column: usize,
}

impl SoqlError {
    /// Build an error about `span` of `text`; row and column are computed here once.
    pub fn new(text: &str, span: Span, kind: ErrorKind, message: impl Into<String>) -> Self {
        let (line, column) = line_col(text, span.start);
        Self { message: message.into(), span, kind, line, column }
    }

    /// The `errorCode` to send. Unsupported constructs are reported as `MALFORMED_QUERY` too:
    /// it is the only code clients map to "the query was refused" (simple-salesforce raises
    /// `SalesforceMalformedRequest` for any 400), and the message says "not supported".
    pub fn error_code(&self) -> &'static str {
        "MALFORMED_QUERY"
    }

    /// The full Salesforce-style message for `text` (which must be the text that was parsed):
    /// `"\nSELECT Id FORM Account\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FORM'"`.
    pub fn render_salesforce(&self, text: &str) -> String {
        render_at(text, self.span.start, &self.message)
    }

    /// The REST error body Salesforce sends for this error:
    /// `[{"message": <render_salesforce>, "errorCode": "MALFORMED_QUERY"}]`.
    pub fn to_rest_body(&self, text: &str) -> serde_json::Value {
        serde_json::json!([{
            "message": self.render_salesforce(text),
            "errorCode": self.error_code(),
        }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_salesforce_shape() {
        let text = "SELECT Id FORM Account";
        let e = SoqlError::new(text, Span::new(10, 14), ErrorKind::Malformed, "unexpected token: 'FORM'");
        assert_eq!((e.line, e.column), (1, 11));
        assert_eq!(e.to_string(), "unexpected token: 'FORM' (at Row:1:Column:11)");
        let body = e.to_rest_body(text);
        assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY");
        assert_eq!(
            body[0]["message"],
            "\nSELECT Id FORM Account\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FORM'"
        );
    }
}
