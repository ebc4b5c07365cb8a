//! Valet's SOQL parser.
//!
//! Salesforce's REST API answers `GET /services/data/vXX.X/query?q=<SOQL>`; clients send SOQL
//! during login (`SELECT Id FROM ScratchOrgInfo limit 1`, the `Organization` query of the sf CLI,
//! `SELECT IsSandbox FROM Organization` of simple-salesforce) and afterwards any query their
//! user writes. This crate turns the text into a [`Query`] tree, or into a [`SoqlError`] that
//! renders exactly like Salesforce's `MALFORMED_QUERY` message:
//!
//! ```
//! let text = "SELECT Id FORM Account";
//! let err = valet_soql::parse(text).unwrap_err();
//! assert_eq!(
//!     err.render_salesforce(text),
//!     "\nSELECT Id FORM Account\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FORM'"
//! );
//! ```
//!
//! It is a pure function of the text: no schema, no I/O, no other valet crate. Checking names
//! against the org's objects and fields, and translating to SQL, is the executor's job; every
//! node it may reject carries a [`Span`] so that its `INVALID_FIELD` / `INVALID_TYPE` messages
//! can point at the same row and column (see [`render_at`]).
//!
//! Supported: `SELECT` of fields, relationship paths, `COUNT()`, `COUNT(f)` and
//! `AVG/MIN/MAX/SUM/COUNT_DISTINCT(f)`; `FROM` one object; `WHERE` with comparisons, `LIKE`,
//! `[NOT] IN`, `INCLUDES`/`EXCLUDES`, `AND`/`OR`/`NOT` and parentheses under Salesforce's rules;
//! `ORDER BY … ASC|DESC NULLS FIRST|LAST`; `LIMIT`; `OFFSET`; `WITH SECURITY_ENFORCED`,
//! `WITH USER_MODE|SYSTEM_MODE` and `FOR VIEW|REFERENCE|UPDATE` (ignored). Subqueries, `TYPEOF`,
//! `GROUP BY`, `FIELDS()`, functions other than the aggregates, aliases and `USING SCOPE` are
//! rejected with [`ErrorKind::Unsupported`] at their position.

mod ast;
mod date;
mod error;
mod lexer;
mod like;
mod parser;
mod span;

pub use ast::{
    AggregateFn, CompareOp, Condition, FieldPath, Ident, Literal, NullsOrder, OrderItem, Query, SelectItem,
    SortDirection, Value,
};
pub use date::{days_in_month, is_leap_year, CivilDate, DateLiteral, DateTimeValue, RangeOptions};
pub use error::{ErrorKind, SoqlError};
pub use like::{LikePart, LikePattern};
pub use parser::{parse, MAX_DEPTH, MAX_QUERY_CHARS};
pub use span::{line_col, render_at, Position, Span};
