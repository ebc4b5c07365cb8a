//! The syntax tree [`crate::parse`] produces.
//!
//! It says what the text says and no more: names are kept as written (SOQL names are
//! case-insensitive, so compare them with `eq_ignore_ascii_case`), nothing is checked against a
//! schema, and every node a later stage may reject carries its [`Span`] so that stage can answer
//! `INVALID_FIELD` or `INVALID_TYPE` at the right row and column.

use serde::Serialize;

use crate::date::{CivilDate, DateLiteral, DateTimeValue};
use crate::like::LikePattern;
use crate::span::Span;

/// A name as written, with where it was written (the object after `FROM`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Ident {
    /// The name exactly as in the query (case preserved).
    pub name: String,
    /// Where.
    pub span: Span,
}

/// A field reference: `Name`, `Owner.Name`, `Account.Owner.Profile.Name`, `Custom__r.Field__c`.
///
/// All parts but the last are relationship names, the last is a field of the object the path
/// arrives at.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct FieldPath {
    /// The dotted parts, as written. Never empty.
    pub parts: Vec<String>,
    /// Where each part was written (same length as `parts`), to point `INVALID_FIELD` at the
    /// exact relationship that does not exist.
    pub part_spans: Vec<Span>,
    /// The whole path.
    pub span: Span,
}

impl FieldPath {
    /// The field name (the last part).
    pub fn field(&self) -> &str {
        self.parts.last().map_or("", String::as_str)
    }

    /// The relationship parts (all but the last).
    pub fn relationships(&self) -> &[String] {
        self.parts.split_last().map_or(&[], |(_, rest)| rest)
    }

    /// The path joined with dots, as Salesforce names it in messages and result keys.
    pub fn dotted(&self) -> String {
        self.parts.join(".")
    }
}

/// An aggregate function other than `COUNT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AggregateFn {
    /// `AVG(field)`.
    Avg,
    /// `COUNT_DISTINCT(field)`.
    CountDistinct,
    /// `MIN(field)`.
    Min,
    /// `MAX(field)`.
    Max,
    /// `SUM(field)`.
    Sum,
}

/// One entry of the `SELECT` list.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum SelectItem {
    /// A plain field or relationship path.
    Field(FieldPath),
    /// `COUNT()`: the query returns only `totalSize`. The parser guarantees it is the only item.
    Count(Span),
    /// `COUNT(field)`: an aggregate, result key `expr0`, `expr1`, ... by position among the
    /// aggregates.
    CountField(FieldPath),
    /// `AVG/COUNT_DISTINCT/MIN/MAX/SUM(field)`.
    Aggregate {
        /// Which function.
        func: AggregateFn,
        /// Its argument.
        field: FieldPath,
        /// The whole call, `SUM(Amount)`.
        span: Span,
    },
}

impl SelectItem {
    /// Whether this item is an aggregate (`COUNT(field)` or another function). Without
    /// `GROUP BY` (which the parser rejects) a query is either all aggregates or all fields;
    /// the parser enforces that.
    pub fn is_aggregate(&self) -> bool {
        matches!(self, SelectItem::CountField(_) | SelectItem::Aggregate { .. })
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum CompareOp {
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CompareOp {
    /// The SQL spelling (`=`, `<>`, `<`, `<=`, `>`, `>=`).
    pub fn as_sql(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

/// A literal value on the right-hand side of a condition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Value {
    /// `null` (any case). `field = null` means "is null", `field != null` "is not null".
    Null,
    /// `true` / `false` (any case).
    Bool(bool),
    /// An integer that fits an `i64`, sign applied (`-5`).
    Int(i64),
    /// A number with a fractional part, or an integer too large for `i64`, as exact text:
    /// optional `-`, digits, optional `.digits` (`"-1.50"`, `"99999999999999999999"`).
    /// Kept as text so no precision is lost before the store decides how to compare.
    Decimal(String),
    /// A quoted string with its escapes decoded (`'O\'Brien'` is `O'Brien`).
    String(String),
    /// `2024-01-31`.
    Date(CivilDate),
    /// `2024-01-31T10:00:00Z`, `...+01:00`, `...T10:00:00.000Z`.
    DateTime(DateTimeValue),
    /// `TODAY`, `LAST_N_DAYS:7`, ...: see [`DateLiteral::range`].
    DateLiteral(DateLiteral),
}

/// A [`Value`] and where it was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Literal {
    /// The value.
    pub value: Value,
    /// Where (for `DateLiteral`s with `:n`, the whole `NAME:n`; for signed numbers, sign included).
    pub span: Span,
}

/// A `WHERE` condition.
///
/// SOQL does not let `AND` and `OR` be mixed at one level without parentheses, and allows `NOT`
/// only at the start of a (parenthesised) condition, so the tree mirrors the parentheses: an
/// `And` never directly contains an `Or` that was not written in parentheses, and so on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum Condition {
    /// All of (two or more).
    And(Vec<Condition>),
    /// Any of (two or more).
    Or(Vec<Condition>),
    /// `NOT cond`.
    Not(Box<Condition>),
    /// `field op value`.
    Compare {
        /// Left-hand side.
        field: FieldPath,
        /// Operator.
        op: CompareOp,
        /// Right-hand side.
        value: Literal,
    },
    /// `field IN (v, ...)` or `field NOT IN (v, ...)`.
    In {
        /// Left-hand side.
        field: FieldPath,
        /// `NOT IN`.
        negated: bool,
        /// The list (never empty).
        values: Vec<Literal>,
    },
    /// `field LIKE 'pattern'`.
    Like {
        /// Left-hand side.
        field: FieldPath,
        /// The pattern.
        pattern: LikePattern,
    },
    /// `field INCLUDES (v, ...)` / `field EXCLUDES (v, ...)` on multi-select picklists. Each value
    /// is a string; `'a;b'` inside one value means "both a and b", separate values mean "or".
    Includes {
        /// Left-hand side.
        field: FieldPath,
        /// `EXCLUDES` rather than `INCLUDES`.
        excludes: bool,
        /// The list (never empty).
        values: Vec<Literal>,
    },
}

impl Condition {
    /// Every field this condition reads, in text order (nesting is at most
    /// [`crate::MAX_DEPTH`] deep, so the recursion is bounded).
    pub fn field_paths(&self) -> Vec<&FieldPath> {
        let mut out = Vec::new();
        self.collect_fields(&mut out);
        out
    }

    fn collect_fields<'a>(&'a self, out: &mut Vec<&'a FieldPath>) {
        match self {
            Condition::And(items) | Condition::Or(items) => items.iter().for_each(|c| c.collect_fields(out)),
            Condition::Not(c) => c.collect_fields(out),
            Condition::Compare { field, .. }
            | Condition::In { field, .. }
            | Condition::Like { field, .. }
            | Condition::Includes { field, .. } => out.push(field),
        }
    }
}

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SortDirection {
    /// `ASC` (the default).
    Asc,
    /// `DESC`.
    Desc,
}

/// Where nulls sort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum NullsOrder {
    /// `NULLS FIRST`.
    First,
    /// `NULLS LAST`.
    Last,
}

/// One `ORDER BY` entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct OrderItem {
    /// What to sort by.
    pub field: FieldPath,
    /// `ASC`/`DESC` (`Asc` when not written).
    pub direction: SortDirection,
    /// `NULLS FIRST/LAST` as written, `None` when not written.
    pub nulls: Option<NullsOrder>,
}

impl OrderItem {
    /// Where nulls go, with Salesforce's default when not written: first for `ASC`, last for
    /// `DESC` (SQLite and PostgreSQL have other defaults, so always emit this explicitly).
    pub fn effective_nulls(&self) -> NullsOrder {
        self.nulls.unwrap_or(match self.direction {
            SortDirection::Asc => NullsOrder::First,
            SortDirection::Desc => NullsOrder::Last,
        })
    }
}

/// A parsed SOQL query.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Query {
    /// The `SELECT` list, in order (never empty).
    pub select: Vec<SelectItem>,
    /// The object after `FROM`.
    pub from: Ident,
    /// The `WHERE` condition.
    pub where_: Option<Condition>,
    /// `ORDER BY` entries, in order.
    pub order_by: Vec<OrderItem>,
    /// `LIMIT n` (at most `i64::MAX`).
    pub limit: Option<u64>,
    /// Where the `LIMIT` number was written.
    pub limit_span: Option<Span>,
    /// `OFFSET n` (at most `i64::MAX`; Salesforce's own 2000 cap is for the executor to apply,
    /// its error being `NUMBER_OUTSIDE_VALID_RANGE`, not `MALFORMED_QUERY`).
    pub offset: Option<u64>,
    /// Where the `OFFSET` number was written.
    pub offset_span: Option<Span>,
}

impl Query {
    /// Whether this is a `SELECT COUNT() FROM ...` query (answer with `totalSize` only).
    pub fn is_count_only(&self) -> bool {
        matches!(self.select.as_slice(), [SelectItem::Count(_)])
    }

    /// Whether the select list is made of aggregates (answer with one `AggregateResult` row).
    pub fn is_aggregate(&self) -> bool {
        self.select.iter().any(SelectItem::is_aggregate)
    }

    /// Every field path the query mentions (select list, `WHERE`, `ORDER BY`), in text order:
    /// what the executor checks against the schema before translating, so that the first
    /// unknown field is the one reported, as Salesforce does.
    pub fn field_paths(&self) -> Vec<&FieldPath> {
        let mut out: Vec<&FieldPath> = self
            .select
            .iter()
            .filter_map(|s| match s {
                SelectItem::Field(f) | SelectItem::CountField(f) => Some(f),
                SelectItem::Aggregate { field, .. } => Some(field),
                SelectItem::Count(_) => None,
            })
            .collect();
        if let Some(c) = &self.where_ {
            out.extend(c.field_paths());
        }
        out.extend(self.order_by.iter().map(|o| &o.field));
        out
    }
}
