//! Tokens to [`Query`]: a recursive-descent parser following the SOQL grammar.
//!
//! Clause order is fixed, as in Salesforce: `SELECT … FROM … [WHERE] [WITH] [GROUP BY] [ORDER BY]
//! [LIMIT] [OFFSET] [FOR …] [UPDATE …]`. Anything out of place is reported at the first token that
//! does not fit, with Salesforce's wording (`unexpected token: 'FORM'`).
//!
//! The `WHERE` grammar is Salesforce's, which is stricter than SQL's:
//!
//! ```text
//! logical     := NOT conditional
//!              | conditional (AND conditional)*
//!              | conditional (OR conditional)*
//! conditional := '(' logical ')' | fieldExpr
//! ```
//!
//! so `a AND b OR c` is an error at `OR`, `a AND NOT b` an error at `NOT`, and `NOT a AND b` an
//! error at `AND`: the parentheses must say what is meant. Every query it accepts therefore
//! means the same under the usual NOT > AND > OR precedence.

use crate::ast::{
    AggregateFn, Condition, FieldPath, Ident, Literal, NullsOrder, OrderItem, Query, SelectItem, SortDirection, Value,
};
use crate::date::DateLiteral;
use crate::error::{ErrorKind, SoqlError};
use crate::lexer::{lex, Tok, Token};
use crate::like::LikePattern;
use crate::span::Span;

/// Longest query accepted, in characters: Salesforce's own limit for a SOQL statement.
pub const MAX_QUERY_CHARS: usize = 100_000;

/// Deepest parenthesis nesting accepted in `WHERE`, so that `((((…` cannot exhaust the stack.
pub const MAX_DEPTH: usize = 50;

/// Words that can never be a field or object name (Salesforce's reserved SOQL keywords).
/// `GROUP` is one, but the standard object `Group` is still allowed after `FROM`.
const RESERVED: &[&str] = &[
    "AND", "ASC", "DESC", "EXCLUDES", "FIRST", "FROM", "GROUP", "HAVING", "IN", "INCLUDES", "LAST", "LIKE", "LIMIT",
    "NOT", "NULL", "NULLS", "OR", "SELECT", "WHERE", "WITH",
];

/// Words that start a clause after `FROM object`; any other word there would be an alias.
const CLAUSES_AFTER_FROM: &[&str] =
    &["USING", "WHERE", "WITH", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "FOR", "UPDATE"];

/// SOQL functions Valet recognises but does not implement: reported as unsupported rather than
/// as a syntax error, since Salesforce would accept them.
const KNOWN_FUNCTIONS: &[&str] = &[
    "TOLABEL",
    "FORMAT",
    "CONVERTCURRENCY",
    "CONVERTTIMEZONE",
    "CALENDAR_MONTH",
    "CALENDAR_QUARTER",
    "CALENDAR_YEAR",
    "DAY_IN_MONTH",
    "DAY_IN_WEEK",
    "DAY_IN_YEAR",
    "DAY_ONLY",
    "FISCAL_MONTH",
    "FISCAL_QUARTER",
    "FISCAL_YEAR",
    "HOUR_IN_DAY",
    "WEEK_IN_MONTH",
    "WEEK_IN_YEAR",
    "DISTANCE",
    "GEOLOCATION",
    "GROUPING",
    "FORMULA",
];

/// Parse one SOQL query.
///
/// Never panics, whatever the input; queries longer than [`MAX_QUERY_CHARS`] characters or
/// nested deeper than [`MAX_DEPTH`] parentheses are refused with an error.
pub fn parse(text: &str) -> Result<Query, SoqlError> {
    if text.chars().count() > MAX_QUERY_CHARS {
        return Err(SoqlError::new(
            text,
            Span::new(0, 0),
            ErrorKind::Malformed,
            format!("SOQL statements cannot be longer than {MAX_QUERY_CHARS} characters"),
        ));
    }
    let mut p = Parser { text, toks: lex(text), pos: 0 };
    p.query()
}

struct Parser<'a> {
    text: &'a str,
    toks: Vec<Token>,
    pos: usize,
}

type PResult<T> = Result<T, SoqlError>;

impl Parser<'_> {
    // ---- token access -------------------------------------------------------------------

    /// The token `k` places ahead; the final `Eof`/`Error` token repeats forever.
    fn peek_at(&self, k: usize) -> &Token {
        let last = self.toks.len().saturating_sub(1);
        // `lex` always returns at least one token; the fallback is never taken.
        self.toks.get((self.pos + k).min(last)).unwrap_or(&EOF)
    }

    fn peek(&self) -> &Token {
        self.peek_at(0)
    }

    /// Take the current token; stays on the final `Eof`/`Error`.
    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if !matches!(t.tok, Tok::Eof | Tok::Error(_)) {
            self.pos += 1;
        }
        t
    }

    fn text_of(&self, t: &Token) -> &str {
        t.span.slice(self.text)
    }

    fn is_kw(&self, t: &Token, kw: &str) -> bool {
        t.tok == Tok::Ident && self.text_of(t).eq_ignore_ascii_case(kw)
    }

    fn at_kw(&self, kw: &str) -> bool {
        self.is_kw(self.peek(), kw)
    }

    fn is_reserved(&self, t: &Token) -> bool {
        t.tok == Tok::Ident && RESERVED.iter().any(|r| self.text_of(t).eq_ignore_ascii_case(r))
    }

    /// Consume the keyword `kw` or fail with "unexpected token".
    fn expect_kw(&mut self, kw: &str) -> PResult<Token> {
        if self.at_kw(kw) {
            Ok(self.bump())
        } else {
            Err(self.unexpected(self.peek()))
        }
    }

    // ---- errors -------------------------------------------------------------------------

    fn error(&self, span: Span, kind: ErrorKind, message: impl Into<String>) -> SoqlError {
        SoqlError::new(self.text, span, kind, message)
    }

    /// How a token is quoted in messages: its text, or `<EOF>`.
    fn shown(&self, t: &Token) -> String {
        match t.tok {
            Tok::Eof => "<EOF>".to_string(),
            _ => self.text_of(t).to_string(),
        }
    }

    /// Salesforce's generic syntax error, or the lexer's message when the token is an error.
    fn unexpected(&self, t: &Token) -> SoqlError {
        match &t.tok {
            Tok::Error(m) => self.error(t.span, ErrorKind::Malformed, m.clone()),
            _ => self.error(t.span, ErrorKind::Malformed, format!("unexpected token: '{}'", self.shown(t))),
        }
    }

    fn unsupported(&self, span: Span, what: &str) -> SoqlError {
        self.error(span, ErrorKind::Unsupported, format!("{what} not supported by Valet"))
    }

    fn expect_rparen(&mut self) -> PResult<Token> {
        let t = self.peek().clone();
        match t.tok {
            Tok::RParen => Ok(self.bump()),
            Tok::Error(_) => Err(self.unexpected(&t)),
            _ => Err(self.error(
                t.span,
                ErrorKind::Malformed,
                format!("expecting a right parentheses, found '{}'", self.shown(&t)),
            )),
        }
    }

    // ---- query --------------------------------------------------------------------------

    fn query(&mut self) -> PResult<Query> {
        self.expect_kw("SELECT")?;
        let select = self.select_list()?;
        self.expect_kw("FROM")?;
        let from = self.object_name()?;

        if self.at_kw("USING") {
            return Err(self.unsupported(self.peek().span, "USING SCOPE is"));
        }
        let mut where_ = None;
        if self.at_kw("WHERE") {
            self.bump();
            where_ = Some(self.logical(0)?);
        }
        if self.at_kw("WITH") {
            self.with_clause()?;
        }
        if self.at_kw("GROUP") && self.is_kw(self.peek_at(1), "BY") {
            return Err(self.unsupported(self.peek().span, "GROUP BY is"));
        }
        let mut order_by = Vec::new();
        if self.at_kw("ORDER") && self.is_kw(self.peek_at(1), "BY") {
            self.bump();
            self.bump();
            order_by = self.order_list()?;
        }
        let (mut limit, mut limit_span, mut offset, mut offset_span) = (None, None, None, None);
        if self.at_kw("LIMIT") {
            self.bump();
            let (n, span) = self.unsigned()?;
            limit = Some(n);
            limit_span = Some(span);
        }
        if self.at_kw("OFFSET") {
            self.bump();
            let (n, span) = self.unsigned()?;
            offset = Some(n);
            offset_span = Some(span);
        }
        // FOR VIEW / FOR REFERENCE / FOR UPDATE only affect record locking and "recently
        // viewed" bookkeeping, which Valet does not have: accepted and ignored.
        while self.at_kw("FOR") {
            self.bump();
            if ["VIEW", "REFERENCE", "UPDATE"].iter().any(|k| self.at_kw(k)) {
                self.bump();
            } else {
                return Err(self.unexpected(self.peek()));
            }
        }
        if self.at_kw("UPDATE") {
            return Err(self.unsupported(self.peek().span, "UPDATE TRACKING / UPDATE VIEWSTAT is"));
        }
        let end = self.peek().clone();
        if end.tok != Tok::Eof {
            return Err(self.unexpected(&end));
        }
        self.check_select(&select)?;
        Ok(Query { select, from, where_, order_by, limit, limit_span, offset, offset_span })
    }

    /// `WITH SECURITY_ENFORCED | USER_MODE | SYSTEM_MODE`: Valet has no field-level security
    /// to enforce, so these are accepted and ignored.
    fn with_clause(&mut self) -> PResult<()> {
        let with = self.bump();
        if ["SECURITY_ENFORCED", "USER_MODE", "SYSTEM_MODE"].iter().any(|k| self.at_kw(k)) {
            self.bump();
            return Ok(());
        }
        if self.at_kw("DATA") {
            return Err(self.unsupported(with.span.to(self.peek().span), "WITH DATA CATEGORY is"));
        }
        Err(self.unexpected(self.peek()))
    }

    fn object_name(&mut self) -> PResult<Ident> {
        let t = self.peek().clone();
        let allowed = t.tok == Tok::Ident && (!self.is_reserved(&t) || self.is_kw(&t, "GROUP"));
        if !allowed {
            return Err(self.unexpected(&t));
        }
        self.bump();
        let next = self.peek().clone();
        if next.tok == Tok::Ident && !CLAUSES_AFTER_FROM.iter().any(|k| self.is_kw(&next, k)) {
            if self.is_reserved(&next) {
                return Err(self.unexpected(&next));
            }
            return Err(self.unsupported(next.span, "object aliases (FROM Object alias) are"));
        }
        Ok(Ident { name: self.text_of(&t).to_string(), span: t.span })
    }

    /// `LIMIT` / `OFFSET` argument: a plain non-negative integer that fits an `i64`.
    fn unsigned(&mut self) -> PResult<(u64, Span)> {
        let t = self.peek().clone();
        let n = match t.tok {
            Tok::Number => self.text_of(&t).parse::<u64>().ok().filter(|n| i64::try_from(*n).is_ok()),
            _ => None,
        };
        match n {
            Some(n) => {
                self.bump();
                Ok((n, t.span))
            }
            None => Err(self.unexpected(&t)),
        }
    }

    // ---- SELECT list --------------------------------------------------------------------

    fn select_list(&mut self) -> PResult<Vec<SelectItem>> {
        let mut items = vec![self.select_item()?];
        while self.peek().tok == Tok::Comma {
            self.bump();
            items.push(self.select_item()?);
        }
        Ok(items)
    }

    /// The select-list rules that need the whole query: `COUNT()` stands alone, and without
    /// `GROUP BY` (unsupported, so never present here) fields cannot be mixed with aggregates.
    /// Checked after the syntax, as Salesforce does, so a syntax error later in the text wins.
    fn check_select(&self, items: &[SelectItem]) -> PResult<()> {
        if items.len() > 1 {
            if let Some(SelectItem::Count(span)) = items.iter().find(|i| matches!(i, SelectItem::Count(_))) {
                return Err(self.error(
                    *span,
                    ErrorKind::Malformed,
                    "COUNT() must be the only element in the SELECT list",
                ));
            }
        }
        if items.iter().any(SelectItem::is_aggregate) {
            if let Some(SelectItem::Field(f)) = items.iter().find(|i| matches!(i, SelectItem::Field(_))) {
                return Err(self.error(
                    f.span,
                    ErrorKind::Malformed,
                    format!("Field must be grouped or aggregated: {}", f.dotted()),
                ));
            }
        }
        Ok(())
    }

    fn select_item(&mut self) -> PResult<SelectItem> {
        let t = self.peek().clone();
        match t.tok {
            Tok::LParen => {
                if self.is_kw(self.peek_at(1), "SELECT") {
                    Err(self.unsupported(t.span, "relationship subqueries ((SELECT ... FROM Children)) are"))
                } else {
                    Err(self.unexpected(&t))
                }
            }
            Tok::Ident if self.is_kw(&t, "TYPEOF") && self.peek_at(1).tok == Tok::Ident => {
                Err(self.unsupported(t.span, "TYPEOF is"))
            }
            Tok::Ident if self.peek_at(1).tok == Tok::LParen => self.select_function(),
            _ => Ok(SelectItem::Field(self.field_path()?)),
        }
    }

    /// `COUNT()`, `COUNT(f)`, `SUM(f)` and friends; other functions are unsupported.
    fn select_function(&mut self) -> PResult<SelectItem> {
        let name_tok = self.bump();
        let name = self.text_of(&name_tok).to_ascii_uppercase();
        let func = match name.as_str() {
            "COUNT" => None,
            "COUNT_DISTINCT" => Some(AggregateFn::CountDistinct),
            "AVG" => Some(AggregateFn::Avg),
            "MIN" => Some(AggregateFn::Min),
            "MAX" => Some(AggregateFn::Max),
            "SUM" => Some(AggregateFn::Sum),
            "FIELDS" => return Err(self.unsupported(name_tok.span, "FIELDS(...) is")),
            n if KNOWN_FUNCTIONS.contains(&n) => {
                return Err(self.unsupported(name_tok.span, &format!("the function {} is", self.text_of(&name_tok))))
            }
            _ => return Err(self.unexpected(self.peek())),
        };
        self.bump(); // (
        let item = if func.is_none() && self.peek().tok == Tok::RParen {
            let close = self.bump();
            SelectItem::Count(name_tok.span.to(close.span))
        } else {
            let field = self.field_path()?;
            let close = self.expect_rparen()?;
            match func {
                None => SelectItem::CountField(field),
                Some(func) => SelectItem::Aggregate { func, field, span: name_tok.span.to(close.span) },
            }
        };
        let next = self.peek().clone();
        if next.tok == Tok::Ident && !self.is_reserved(&next) {
            return Err(self.unsupported(next.span, "aliases for aggregate expressions are"));
        }
        Ok(item)
    }

    /// `Name`, `Owner.Name`, `A__r.B__r.C__c`. No part may be a reserved word, so that
    /// `SELECT Owner. FROM Account` fails at `FROM`, where the mistake shows.
    fn field_path(&mut self) -> PResult<FieldPath> {
        let first = self.peek().clone();
        if first.tok != Tok::Ident || self.is_reserved(&first) {
            return Err(self.unexpected(&first));
        }
        self.bump();
        let mut parts = vec![self.text_of(&first).to_string()];
        let mut part_spans = vec![first.span];
        while self.peek().tok == Tok::Dot {
            self.bump();
            let t = self.peek().clone();
            if t.tok != Tok::Ident || self.is_reserved(&t) {
                return Err(self.unexpected(&t));
            }
            self.bump();
            parts.push(self.text_of(&t).to_string());
            part_spans.push(t.span);
        }
        let span = first.span.to(part_spans.last().copied().unwrap_or(first.span));
        Ok(FieldPath { parts, part_spans, span })
    }

    // ---- ORDER BY -----------------------------------------------------------------------

    fn order_list(&mut self) -> PResult<Vec<OrderItem>> {
        let mut items = vec![self.order_item()?];
        while self.peek().tok == Tok::Comma {
            self.bump();
            items.push(self.order_item()?);
        }
        Ok(items)
    }

    fn order_item(&mut self) -> PResult<OrderItem> {
        let t = self.peek().clone();
        if t.tok == Tok::Ident && self.peek_at(1).tok == Tok::LParen {
            return Err(self.unsupported(t.span, "ORDER BY a function is"));
        }
        let field = self.field_path()?;
        let mut direction = SortDirection::Asc;
        if self.at_kw("ASC") {
            self.bump();
        } else if self.at_kw("DESC") {
            self.bump();
            direction = SortDirection::Desc;
        }
        let mut nulls = None;
        if self.at_kw("NULLS") {
            self.bump();
            if self.at_kw("FIRST") {
                nulls = Some(NullsOrder::First);
            } else if self.at_kw("LAST") {
                nulls = Some(NullsOrder::Last);
            } else {
                return Err(self.unexpected(self.peek()));
            }
            self.bump();
        }
        Ok(OrderItem { field, direction, nulls })
    }

    // ---- WHERE --------------------------------------------------------------------------

    /// `NOT conditional | conditional (AND conditional)* | conditional (OR conditional)*`.
    fn logical(&mut self, depth: usize) -> PResult<Condition> {
        if self.at_kw("NOT") {
            self.bump();
            let inner = self.conditional(depth)?;
            if self.at_kw("AND") || self.at_kw("OR") {
                return Err(self.unexpected(self.peek()));
            }
            return Ok(Condition::Not(Box::new(inner)));
        }
        let first = self.conditional(depth)?;
        for (joiner, other) in [("AND", "OR"), ("OR", "AND")] {
            if self.at_kw(joiner) {
                let mut items = vec![first];
                while self.at_kw(joiner) {
                    self.bump();
                    if self.at_kw("NOT") {
                        return Err(self.unexpected(self.peek()));
                    }
                    items.push(self.conditional(depth)?);
                }
                if self.at_kw(other) {
                    return Err(self.unexpected(self.peek()));
                }
                return Ok(if joiner == "AND" { Condition::And(items) } else { Condition::Or(items) });
            }
        }
        Ok(first)
    }

    /// `'(' logical ')' | fieldExpr`.
    fn conditional(&mut self, depth: usize) -> PResult<Condition> {
        let t = self.peek().clone();
        if t.tok != Tok::LParen {
            return self.field_expr();
        }
        if depth >= MAX_DEPTH {
            return Err(self.error(
                t.span,
                ErrorKind::Malformed,
                format!("conditions are nested too deeply (more than {MAX_DEPTH} parentheses)"),
            ));
        }
        self.bump();
        let c = self.logical(depth + 1)?;
        self.expect_rparen()?;
        Ok(c)
    }

    /// `field op value`, `field LIKE 'p'`, `field [NOT] IN (...)`, `field INCLUDES/EXCLUDES (...)`.
    fn field_expr(&mut self) -> PResult<Condition> {
        let t = self.peek().clone();
        if t.tok == Tok::Ident && self.peek_at(1).tok == Tok::LParen {
            let name = self.text_of(&t).to_ascii_uppercase();
            if KNOWN_FUNCTIONS.contains(&name.as_str())
                || ["COUNT", "COUNT_DISTINCT", "AVG", "MIN", "MAX", "SUM"].contains(&name.as_str())
            {
                return Err(self.unsupported(t.span, &format!("the function {} in WHERE is", self.text_of(&t))));
            }
        }
        let field = self.field_path()?;
        let op = self.peek().clone();
        match op.tok {
            Tok::Op(op) => {
                self.bump();
                let value = self.value()?;
                Ok(Condition::Compare { field, op, value })
            }
            Tok::Ident if self.is_kw(&op, "LIKE") => {
                self.bump();
                let s = self.peek().clone();
                match s.tok {
                    Tok::Str(chars) => {
                        self.bump();
                        Ok(Condition::Like { field, pattern: LikePattern::from_chars(&chars, s.span) })
                    }
                    Tok::Colon => Err(self.bind_error(&s)),
                    _ => Err(self.unexpected(&s)),
                }
            }
            Tok::Ident if self.is_kw(&op, "IN") => {
                self.bump();
                let values = self.value_list()?;
                Ok(Condition::In { field, negated: false, values })
            }
            Tok::Ident if self.is_kw(&op, "NOT") => {
                self.bump();
                if !self.at_kw("IN") {
                    return Err(self.unexpected(self.peek()));
                }
                self.bump();
                let values = self.value_list()?;
                Ok(Condition::In { field, negated: true, values })
            }
            Tok::Ident if self.is_kw(&op, "INCLUDES") || self.is_kw(&op, "EXCLUDES") => {
                self.bump();
                let values = self.value_list()?;
                Ok(Condition::Includes { field, excludes: self.is_kw(&op, "EXCLUDES"), values })
            }
            _ => Err(self.unexpected(&op)),
        }
    }

    fn bind_error(&self, colon: &Token) -> SoqlError {
        let mut span = colon.span;
        let next = self.peek_at(1);
        if next.tok == Tok::Ident && next.span.start == colon.span.end {
            span = span.to(next.span);
        }
        self.error(span, ErrorKind::Malformed, "Bind variables only allowed in Apex code")
    }

    /// `'(' value (',' value)* ')'` after `IN`, `NOT IN`, `INCLUDES`, `EXCLUDES`.
    fn value_list(&mut self) -> PResult<Vec<Literal>> {
        let open = self.peek().clone();
        match open.tok {
            Tok::LParen => {}
            Tok::Colon => return Err(self.bind_error(&open)),
            _ => return Err(self.unexpected(&open)),
        }
        self.bump();
        if self.at_kw("SELECT") {
            return Err(self.unsupported(self.peek().span, "semi-join subqueries (IN (SELECT ...)) are"));
        }
        let mut values = vec![self.value()?];
        while self.peek().tok == Tok::Comma {
            self.bump();
            values.push(self.value()?);
        }
        self.expect_rparen()?;
        Ok(values)
    }

    /// A literal: null, true, false, number, string, date, datetime or date literal.
    fn value(&mut self) -> PResult<Literal> {
        let t = self.peek().clone();
        let lit = |value| Literal { value, span: t.span };
        match &t.tok {
            Tok::Str(chars) => {
                self.bump();
                Ok(lit(Value::String(chars.iter().map(|(c, _)| *c).collect())))
            }
            Tok::Number => {
                self.bump();
                Ok(lit(number_value(self.text_of(&t), false)))
            }
            Tok::Plus | Tok::Minus => {
                let n = self.peek_at(1).clone();
                if n.tok != Tok::Number {
                    return Err(self.unexpected(&n));
                }
                self.bump();
                self.bump();
                let value = number_value(self.text_of(&n), t.tok == Tok::Minus);
                Ok(Literal { value, span: t.span.to(n.span) })
            }
            Tok::Date(d) => {
                self.bump();
                Ok(lit(Value::Date(*d)))
            }
            Tok::DateTime(dt) => {
                self.bump();
                Ok(lit(Value::DateTime(*dt)))
            }
            Tok::Colon => Err(self.bind_error(&t)),
            Tok::Ident => {
                let word = self.text_of(&t);
                let value = if word.eq_ignore_ascii_case("null") {
                    Value::Null
                } else if word.eq_ignore_ascii_case("true") {
                    Value::Bool(true)
                } else if word.eq_ignore_ascii_case("false") {
                    Value::Bool(false)
                } else if let Some(d) = DateLiteral::simple(word) {
                    Value::DateLiteral(d)
                } else if DateLiteral::takes_n(word) {
                    return self.date_literal_with_n();
                } else {
                    return Err(self.unexpected(&t));
                };
                self.bump();
                Ok(lit(value))
            }
            _ => Err(self.unexpected(&t)),
        }
    }

    /// `LAST_N_DAYS:7` and the other `NAME:n` literals; the name is the current token.
    fn date_literal_with_n(&mut self) -> PResult<Literal> {
        let name = self.bump();
        let colon = self.peek().clone();
        if colon.tok != Tok::Colon {
            if let Tok::Error(_) = colon.tok {
                return Err(self.unexpected(&colon));
            }
            return Err(self.error(
                colon.span,
                ErrorKind::Malformed,
                format!("expecting a colon, found '{}'", self.shown(&colon)),
            ));
        }
        self.bump();
        let n_tok = self.peek().clone();
        let n = match n_tok.tok {
            Tok::Number => self.text_of(&n_tok).parse::<u32>().ok(),
            _ => None,
        };
        let literal = n.and_then(|n| DateLiteral::with_n(self.text_of(&name), n));
        match literal {
            Some(d) => {
                self.bump();
                Ok(Literal { value: Value::DateLiteral(d), span: name.span.to(n_tok.span) })
            }
            None => Err(self.unexpected(&n_tok)),
        }
    }
}

/// The one `Eof` that [`Parser::peek_at`] can fall back to.
static EOF: Token = Token { tok: Tok::Eof, span: Span::new(0, 0) };

/// `Int` when the (signed) text fits an `i64` and has no fraction, else `Decimal` with the exact
/// text (sign included, `+` dropped).
fn number_value(digits: &str, negative: bool) -> Value {
    let text = if negative { format!("-{digits}") } else { digits.to_string() };
    if !digits.contains('.') {
        if let Ok(i) = text.parse::<i64>() {
            return Value::Int(i);
        }
    }
    Value::Decimal(text)
}
