//! SOQL → SQL. The parsed query is checked against the org's [`Schema`] and compiled into one
//! SQL statement per page (plus one `COUNT(*)` for `totalSize`), executed by the database.
//!
//! - Identifiers come only from the schema; every value is a bound parameter.
//! - Semantics follow SOQL, not SQL: text `=`, `LIKE` and `ORDER BY` are case-insensitive
//!   (`LOWER(col)`, ASCII folding on both backends); `!=` and `NOT IN` match nulls; every atom
//!   is two-valued (nulls guarded) so `NOT (...)` means what SOQL means; `ORDER BY` defaults to
//!   nulls first for `ASC` and last for `DESC`; every `ORDER BY` ends with the record ID so pages
//!   are deterministic.
//! - Relationship paths (`Account.Owner.Name`) become `LEFT JOIN`s on the lookup column.

use std::sync::Arc;

use valet_soql::{
    AggregateFn, CompareOp, Condition, FieldPath, Literal, NullsOrder, Query, SelectItem, SortDirection, Span, Value,
};

use crate::ddl::Dialect;
use crate::error::{DataError, DataResult};
use crate::registry::Schema;
use crate::schema::{Backing, Column, FieldDef, ObjectDef, Storage};
use crate::value::{Params, SqlValue};

/// Salesforce's cap on `OFFSET`.
pub const MAX_OFFSET: u64 = 2000;
/// Bound values per query: far below SQLite's 32766 and PostgreSQL's 65535 parameters, so a
/// huge `IN` list is a client error, not a database one.
pub const MAX_PARAMS: usize = 5000;

/// A table in the `FROM` clause: the root (`t0`) or a parent reached through a lookup.
#[derive(Debug)]
struct Join<'s> {
    /// Lower-cased relationship names from the root.
    path: Vec<String>,
    alias: String,
    object: &'s ObjectDef,
    /// `t0."account_id"`.
    on_column: String,
    /// The relationship name as described (`Account`), the key in result records.
    rel_name: String,
    parent: usize,
}

/// One output column of a record query.
#[derive(Debug, Clone)]
pub struct OutField<'s> {
    /// Index into `joins` (0 = root).
    pub join: usize,
    pub field: &'s FieldDef,
}

/// What the select list asks for.
#[derive(Debug)]
pub enum Shape<'s> {
    /// `COUNT()`: only `totalSize`.
    Count,
    /// Fields: one record per row. Each row holds the fields' values, then the IDs of the
    /// `joins_used` parents, then, when `root_id_appended`, the root's ID (not selected, but
    /// every record's `attributes.url` names it, as Salesforce's do).
    Records { fields: Vec<OutField<'s>>, joins_used: Vec<usize>, root_id_appended: bool },
    /// Aggregates: one `AggregateResult` row.
    Aggregate(Vec<(AggregateFn2, usize, &'s FieldDef)>),
}

/// An aggregate function, including `COUNT(field)`.
#[derive(Debug, Clone, Copy)]
pub enum AggregateFn2 {
    Count,
    Other(AggregateFn),
}

/// A compiled query: SQL pieces and the parameters they reference.
pub struct Compiled<'s> {
    pub root: &'s ObjectDef,
    pub shape: Shape<'s>,
    /// `FROM ... LEFT JOIN ...`.
    pub from: String,
    /// `WHERE ...` (never empty: at least the org condition).
    pub where_: String,
    /// `ORDER BY ...` (records only).
    pub order_by: String,
    /// The select list of a records query (fields, then the IDs of joined parents).
    /// (Shared with the schema's cache for a record GET of all fields: no copy per request.)
    pub select: Arc<str>,
    pub params: Params,
    pub limit: Option<u64>,
    pub offset: u64,
    /// Per join (0 = root): the relationship name (the key in records), the object, the parent join.
    pub joins: Vec<(String, &'s ObjectDef, usize)>,
}

/// The inputs besides the query.
pub struct Env<'a> {
    pub org_id: &'a str,
    pub today: (i32, u32, u32),
    pub query_all: bool,
    pub dialect: Dialect,
}

struct Compiler<'s, 'q> {
    text: &'q str,
    schema: &'s Schema,
    dialect: Dialect,
    query_all: bool,
    today: (i32, u32, u32),
    joins: Vec<Join<'s>>,
    params: Params,
    org_ph: String,
}

fn invalid_field_msg(name: &str, object: &str) -> String {
    format!(
        "No such column '{name}' on entity '{object}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
    )
}

/// Checks the query against the schema and compiles it.
pub fn compile<'s>(text: &str, q: &Query, schema: &'s Schema, env: &Env<'_>) -> DataResult<Compiled<'s>> {
    let root = schema.object(&q.from.name).ok_or_else(|| {
        DataError::soql_at(
            "INVALID_TYPE",
            text,
            q.from.span,
            &format!(
                "sObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
                q.from.name
            ),
        )
    })?;
    let mut c = Compiler::new(text, schema, root, env);
    if let Some(off) = q.offset {
        if off > MAX_OFFSET {
            return Err(DataError::bad_request(
                "NUMBER_OUTSIDE_VALID_RANGE",
                format!("Maximum SOQL offset allowed is {MAX_OFFSET}"),
            ));
        }
    }

    // The select list, in order; the first unknown field is the one reported.
    let shape = if q.is_count_only() {
        Shape::Count
    } else if q.is_aggregate() {
        let mut aggs = Vec::new();
        for item in &q.select {
            match item {
                SelectItem::CountField(p) => {
                    let (j, f) = c.resolve(p)?;
                    aggs.push((AggregateFn2::Count, j, f));
                }
                SelectItem::Aggregate { func, field, span } => {
                    let (j, f) = c.resolve(field)?;
                    let numeric = matches!(f.storage(), Storage::Int | Storage::Real);
                    let ok = match func {
                        AggregateFn::Sum | AggregateFn::Avg => numeric,
                        AggregateFn::Min | AggregateFn::Max => f.storage() != Storage::Bool,
                        AggregateFn::CountDistinct => true,
                    };
                    if !ok {
                        return Err(DataError::soql_at(
                            "MALFORMED_QUERY",
                            text,
                            *span,
                            &format!("field {} does not support aggregate operator {}", p_name(field), agg_name(*func)),
                        ));
                    }
                    aggs.push((AggregateFn2::Other(*func), j, f));
                }
                _ => {}
            }
        }
        if let Some(o) = q.order_by.first() {
            return Err(DataError::soql_at(
                "MALFORMED_QUERY",
                text,
                o.field.span,
                &format!("Ordered field must be grouped or aggregated: {}", o.field.dotted()),
            ));
        }
        Shape::Aggregate(aggs)
    } else {
        let mut fields: Vec<OutField<'s>> = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for item in &q.select {
            if let SelectItem::Field(p) = item {
                let (join, f) = c.resolve(p)?;
                let key = format!("{}.{}", c.joins[join].path.join("."), f.name.to_ascii_lowercase());
                if seen.contains(&key) {
                    return Err(DataError::soql_at(
                        "MALFORMED_QUERY",
                        text,
                        p.span,
                        &format!("duplicate field selected: {}", p.dotted()),
                    ));
                }
                seen.push(key);
                fields.push(OutField { join, field: f });
            }
        }
        Shape::Records { fields, joins_used: vec![], root_id_appended: false }
    };

    let mut conds = c.root_conditions();
    if let Some(w) = &q.where_ {
        conds.push(c.condition(w)?);
    }

    let mut order = Vec::new();
    let mut tiebreak_desc = false;
    let mut ordered_by_id = false;
    if matches!(shape, Shape::Records { .. }) {
        for o in &q.order_by {
            let (join, f) = c.resolve(&o.field)?;
            let key = c.sort_key(join, f);
            let desc = o.direction == SortDirection::Desc;
            let nulls_first = o.effective_nulls() == NullsOrder::First;
            let natural_nulls_first = match c.dialect {
                // SQLite: nulls are the smallest value; PostgreSQL: the largest.
                Dialect::Sqlite => !desc,
                Dialect::Postgres => desc,
            };
            let mut s = format!("{key} {}", if desc { "DESC" } else { "ASC" });
            if c.dialect == Dialect::Postgres || nulls_first != natural_nulls_first {
                s.push_str(if nulls_first { " NULLS FIRST" } else { " NULLS LAST" });
            }
            order.push(s);
            tiebreak_desc = desc;
            ordered_by_id = join == 0 && f.is("Id");
        }
        if !ordered_by_id {
            order.push(format!("t0.id {}", if tiebreak_desc { "DESC" } else { "ASC" }));
        }
    }

    // Joins: every relationship mentioned anywhere (LEFT JOIN on a primary key never multiplies
    // rows, so the count and the page agree).
    let mut from = format!("\"{}\" t0", root.table);
    for j in c.joins.iter().skip(1) {
        let mut on = format!("{}.id = {}", j.alias, j.on_column);
        on.push_str(&format!(" AND {}.\"{}\" = {}", j.alias, j.object.org_column(), c.org_ph));
        if j.object.backing == Backing::Owned && !c.query_all {
            on.push_str(&format!(" AND {}.is_deleted = 0", j.alias));
        }
        from.push_str(&format!(" LEFT JOIN \"{}\" {} ON {on}", j.object.table, j.alias));
    }

    let mut select = String::new();
    let mut shape = shape;
    match &mut shape {
        Shape::Records { fields, joins_used, root_id_appended } => {
            let mut cols: Vec<String> = fields.iter().map(|o| c.value_expr(o.join, o.field)).collect();
            // The ID of each parent whose fields are shown (for `attributes.url`, and to tell a
            // missing parent, `"Account": null`, from one whose fields are null). Ancestors of
            // a used join are used too.
            let mut used: Vec<usize> = Vec::new();
            for o in fields.iter() {
                let mut j = o.join;
                while j != 0 {
                    if !used.contains(&j) {
                        used.push(j);
                    }
                    j = c.joins[j].parent;
                }
            }
            used.sort_unstable();
            for j in &used {
                cols.push(format!("{}.id", c.joins[*j].alias));
            }
            *joins_used = used;
            if !fields.iter().any(|o| o.join == 0 && o.field.is("Id")) {
                if let Some(id) = root.field("Id") {
                    cols.push(c.value_expr(0, id));
                    *root_id_appended = true;
                }
            }
            select = cols.join(", ");
        }
        Shape::Aggregate(aggs) => {
            let mut cols = Vec::new();
            for (func, j, f) in aggs.iter() {
                let e = c.value_expr(*j, f);
                cols.push(match func {
                    AggregateFn2::Count => format!("COUNT({e})"),
                    AggregateFn2::Other(AggregateFn::CountDistinct) => format!("COUNT(DISTINCT {e})"),
                    AggregateFn2::Other(AggregateFn::Sum) => format!("SUM({e})"),
                    AggregateFn2::Other(AggregateFn::Avg) => format!("AVG({e})"),
                    AggregateFn2::Other(AggregateFn::Min) => format!("MIN({e})"),
                    AggregateFn2::Other(AggregateFn::Max) => format!("MAX({e})"),
                });
            }
            select = cols.join(", ");
        }
        Shape::Count => {}
    }

    let joins = c.joins.iter().map(|j| (j.rel_name.clone(), j.object, j.parent)).collect();
    Ok(Compiled {
        root,
        shape,
        from,
        where_: conds.join(" AND "),
        order_by: order.join(", "),
        select: Arc::from(select),
        params: c.params,
        limit: q.limit,
        offset: q.offset.unwrap_or(0),
        joins,
    })
}

/// What `GET /sobjects/<Type>/<id>` reads: `fields` of the live record `id` (an 18-character
/// ID) of the caller's org, compiled as `SELECT <fields> FROM <Type> WHERE Id = '<id>'` is,
/// without writing and parsing that text for every request.
///
/// `all_fields`: `fields` are all of `root`'s, whose select list is made once per schema
/// ([`Schema::select_all`]).
pub fn compile_by_id<'s>(
    schema: &'s Schema,
    root: &'s ObjectDef,
    fields: &[&'s FieldDef],
    id: &str,
    env: &Env<'_>,
    all_fields: bool,
) -> Compiled<'s> {
    let mut c = Compiler::new("", schema, root, env);
    let id_ph = c.params.text(id);
    let mut conds = c.root_conditions();
    conds.push(format!("t0.id = {id_ph}"));
    let fields: Vec<OutField<'s>> = fields.iter().map(|f| OutField { join: 0, field: f }).collect();
    let make = || fields.iter().map(|o| c.value_expr(0, o.field)).collect::<Vec<_>>().join(", ");
    let select = if all_fields { schema.select_all(&root.name, make) } else { Arc::from(make()) };
    Compiled {
        root,
        shape: Shape::Records { fields, joins_used: vec![], root_id_appended: false },
        from: format!("\"{}\" t0", root.table),
        where_: conds.join(" AND "),
        order_by: "t0.id ASC".into(),
        select,
        params: c.params,
        limit: Some(1),
        offset: 0,
        joins: vec![(String::new(), root, 0)],
    }
}

fn p_name(p: &FieldPath) -> String {
    p.dotted()
}

fn agg_name(f: AggregateFn) -> &'static str {
    match f {
        AggregateFn::Avg => "AVG",
        AggregateFn::CountDistinct => "COUNT_DISTINCT",
        AggregateFn::Min => "MIN",
        AggregateFn::Max => "MAX",
        AggregateFn::Sum => "SUM",
    }
}

impl<'s, 'q> Compiler<'s, 'q> {
    /// A compiler for queries of `root`; the org's ID is parameter `$1`.
    fn new(text: &'q str, schema: &'s Schema, root: &'s ObjectDef, env: &Env<'_>) -> Compiler<'s, 'q> {
        let mut params = Params::default();
        let org_ph = params.text(env.org_id);
        Compiler {
            text,
            schema,
            dialect: env.dialect,
            query_all: env.query_all,
            today: env.today,
            joins: vec![Join {
                path: vec![],
                alias: "t0".into(),
                object: root,
                on_column: String::new(),
                rel_name: String::new(),
                parent: 0,
            }],
            params,
            org_ph,
        }
    }

    /// The join and field a path names, adding joins as needed.
    fn resolve(&mut self, p: &FieldPath) -> DataResult<(usize, &'s FieldDef)> {
        let mut parts: Vec<(&str, Span)> =
            p.parts.iter().map(String::as_str).zip(p.part_spans.iter().copied()).collect();
        // `SELECT Account.Name FROM Account`: a path may start with the object's own name.
        if parts.len() > 1
            && parts[0].0.eq_ignore_ascii_case(&self.joins[0].object.name)
            && self.joins[0].object.relationship(parts[0].0).is_none()
        {
            parts.remove(0);
        }
        let Some(((field_name, field_span), rels)) = parts.split_last() else {
            return Err(DataError::soql_at("MALFORMED_QUERY", self.text, p.span, "unexpected token"));
        };
        let mut j = 0usize;
        for (rel, span) in rels {
            let obj = self.joins[j].object;
            let Some(lookup) = obj.relationship(rel) else {
                return Err(DataError::soql_at(
                    "INVALID_FIELD",
                    self.text,
                    *span,
                    &format!(
                        "Didn't understand relationship '{rel}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names."
                    ),
                ));
            };
            let target_name = lookup.reference_to.as_deref().unwrap_or("");
            let Some(target) = self.schema.object(target_name) else {
                return Err(DataError::soql_at(
                    "INVALID_FIELD",
                    self.text,
                    *span,
                    &format!("Didn't understand relationship '{rel}' in field path."),
                ));
            };
            let mut path = self.joins[j].path.clone();
            path.push(rel.to_ascii_lowercase());
            if let Some(existing) = self.joins.iter().position(|x| x.path == path) {
                j = existing;
                continue;
            }
            if self.joins.len() >= 32 {
                return Err(DataError::soql_at(
                    "MALFORMED_QUERY",
                    self.text,
                    *span,
                    "too many relationships in one query",
                ));
            }
            let on_column = self.col_raw(j, lookup.column_name().unwrap_or("id"));
            let alias = format!("t{}", self.joins.len());
            self.joins.push(Join {
                path,
                alias,
                object: target,
                on_column,
                rel_name: lookup.relationship_name.clone().unwrap_or_default(),
                parent: j,
            });
            j = self.joins.len() - 1;
        }
        let obj = self.joins[j].object;
        let f = obj.field(field_name).ok_or_else(|| {
            DataError::soql_at("INVALID_FIELD", self.text, *field_span, &invalid_field_msg(field_name, &obj.name))
        })?;
        Ok((j, f))
    }

    /// A real column of join `j`, unwrapped (for keys and conditions on IDs).
    /// The conditions every query of the root object has: the caller's org, and (unless
    /// `queryAll`) live records only.
    fn root_conditions(&self) -> Vec<String> {
        let root = self.joins[0].object;
        let mut conds = vec![format!("{} = {}", self.col_raw(0, root.org_column()), self.org_ph)];
        if root.backing == Backing::Owned && !self.query_all {
            conds.push("t0.is_deleted = 0".into());
        }
        conds
    }

    fn col_raw(&self, j: usize, column: &str) -> String {
        format!("{}.\"{column}\"", self.joins[j].alias)
    }

    /// The value of a field, as SQL. Virtual objects read Valet's own tables, whose text
    /// columns have the database's default collation; on PostgreSQL they get `COLLATE "C"` so
    /// they compare and sort like every other text.
    fn value_expr(&self, j: usize, f: &FieldDef) -> String {
        let alias = &self.joins[j].alias;
        let e = match &f.column {
            Column::Col(c) => format!("{alias}.\"{c}\""),
            Column::Expr(x) => format!("({})", x.replace("{t}", alias)),
        };
        let virtual_text = matches!(self.joins[j].object.backing, Backing::Virtual { .. })
            && matches!(f.storage(), Storage::Text | Storage::Date);
        if virtual_text && self.dialect == Dialect::Postgres {
            format!("({e} COLLATE \"C\")")
        } else {
            e
        }
    }

    /// What comparisons and sorting use: text case-insensitively.
    fn sort_key(&self, j: usize, f: &FieldDef) -> String {
        let e = self.value_expr(j, f);
        if f.storage() == Storage::Text {
            format!("LOWER({e})")
        } else {
            e
        }
    }

    fn type_error(&self, f: &FieldDef, lit: &Literal) -> DataError {
        let quoted = matches!(f.storage(), Storage::Text | Storage::Id);
        let msg = format!(
            "value of filter criterion for field '{}' must be of type {} and should {}be enclosed in quotes",
            f.name,
            f.ftype.soql_type_word(),
            if quoted { "" } else { "not " }
        );
        DataError::soql_at("MALFORMED_QUERY", self.text, lit.span, &msg)
    }

    fn condition(&mut self, c: &Condition) -> DataResult<String> {
        Ok(match c {
            Condition::And(items) => {
                let parts = items.iter().map(|i| self.condition(i)).collect::<DataResult<Vec<_>>>()?;
                format!("({})", parts.join(" AND "))
            }
            Condition::Or(items) => {
                let parts = items.iter().map(|i| self.condition(i)).collect::<DataResult<Vec<_>>>()?;
                format!("({})", parts.join(" OR "))
            }
            Condition::Not(inner) => format!("(NOT {})", self.condition(inner)?),
            Condition::Compare { field, op, value } => {
                let (j, f) = self.resolve(field)?;
                self.compare(j, f, *op, value)?
            }
            Condition::In { field, negated, values } => {
                let (j, f) = self.resolve(field)?;
                let mut alts = Vec::new();
                let mut plain = Vec::new();
                for v in values {
                    match (&v.value, f.storage()) {
                        (Value::Null, _) => alts.push(format!("{} IS NULL", self.value_expr(j, f))),
                        (Value::DateLiteral(_), _) => alts.push(self.compare(j, f, CompareOp::Eq, v)?),
                        _ => plain.push(self.bind_literal(f, v)?),
                    }
                }
                if !plain.is_empty() {
                    let key = self.sort_key(j, f);
                    let list: Vec<String> = plain
                        .into_iter()
                        .map(|ph| if f.storage() == Storage::Text { format!("LOWER({ph})") } else { ph })
                        .collect();
                    alts.push(format!("({} IS NOT NULL AND {key} IN ({}))", self.value_expr(j, f), list.join(", ")));
                }
                let positive = format!("({})", alts.join(" OR "));
                if *negated {
                    format!("(NOT {positive})")
                } else {
                    positive
                }
            }
            Condition::Like { field, pattern } => {
                let (j, f) = self.resolve(field)?;
                if f.storage() != Storage::Text {
                    return Err(DataError::soql_at(
                        "INVALID_QUERY_FILTER_OPERATOR",
                        self.text,
                        field.span,
                        &format!("invalid operator on {} field: {}", f.ftype.soql_type_word(), f.name),
                    ));
                }
                let like = pattern.to_sql_like('\\');
                if like.contains('\0') {
                    return Err(DataError::soql_at(
                        "MALFORMED_QUERY",
                        self.text,
                        pattern.span,
                        "invalid character in LIKE pattern",
                    ));
                }
                let ph = self.params.text(&like);
                let e = self.value_expr(j, f);
                format!("({e} IS NOT NULL AND LOWER({e}) LIKE LOWER({ph}) ESCAPE '\\')")
            }
            Condition::Includes { field, .. } => {
                let (_, f) = self.resolve(field)?;
                return Err(DataError::soql_at(
                    "INVALID_QUERY_FILTER_OPERATOR",
                    self.text,
                    field.span,
                    &format!("includes or excludes operator only valid on multipicklist field: {}", f.name),
                ));
            }
        })
    }

    /// Binds a literal for a field of the given storage, or explains the type mismatch.
    fn bind_literal(&mut self, f: &FieldDef, lit: &Literal) -> DataResult<String> {
        if self.params.len() >= MAX_PARAMS {
            return Err(DataError::soql_at(
                "MALFORMED_QUERY",
                self.text,
                lit.span,
                &format!("too many values in one query (at most {MAX_PARAMS})"),
            ));
        }
        let v = match (f.storage(), &lit.value) {
            (Storage::Text, Value::String(s)) if s.contains('\0') => return Err(self.type_error(f, lit)),
            (Storage::Text, Value::String(s)) => SqlValue::Text(s.clone()),
            (Storage::Id, Value::String(s)) => {
                let id = valet_core::ids::SfId::parse(s).map_err(|_| {
                    DataError::soql_at(
                        "INVALID_QUERY_FILTER_OPERATOR",
                        self.text,
                        lit.span,
                        &format!("invalid ID field: {s}"),
                    )
                })?;
                SqlValue::Text(id.as_str().to_string())
            }
            (Storage::Int, Value::Int(i)) => SqlValue::Int(*i),
            (Storage::Int | Storage::Real, Value::Decimal(d)) => {
                SqlValue::Real(d.parse::<f64>().map_err(|_| self.type_error(f, lit))?)
            }
            (Storage::Real, Value::Int(i)) => SqlValue::Real(*i as f64),
            (Storage::Bool, Value::Bool(b)) => SqlValue::Int(i64::from(*b)),
            (Storage::Date, Value::Date(d)) => SqlValue::Text(d.to_string()),
            (Storage::DateTime, Value::DateTime(dt)) => SqlValue::Int(dt.unix_millis()),
            _ => return Err(self.type_error(f, lit)),
        };
        Ok(self.params.push(v))
    }

    fn compare(&mut self, j: usize, f: &'s FieldDef, op: CompareOp, lit: &Literal) -> DataResult<String> {
        let e = self.value_expr(j, f);
        if lit.value == Value::Null {
            return match op {
                CompareOp::Eq => Ok(format!("{e} IS NULL")),
                CompareOp::Ne => Ok(format!("{e} IS NOT NULL")),
                _ => {
                    Err(DataError::soql_at("MALFORMED_QUERY", self.text, lit.span, "null is only valid with = and !="))
                }
            };
        }
        if f.storage() == Storage::Bool && !matches!(op, CompareOp::Eq | CompareOp::Ne) {
            return Err(DataError::soql_at(
                "INVALID_QUERY_FILTER_OPERATOR",
                self.text,
                lit.span,
                &format!("invalid operator on boolean field: {}", f.name),
            ));
        }
        if let Value::DateLiteral(dl) = &lit.value {
            let (start, end) = dl.range(self.today, true);
            let (s, t) = match f.storage() {
                Storage::Date => (SqlValue::Text(start.to_string()), SqlValue::Text(end.to_string())),
                Storage::DateTime => (
                    SqlValue::Int(start.days_since_epoch() * 86_400_000),
                    SqlValue::Int(end.days_since_epoch() * 86_400_000),
                ),
                _ => return Err(self.type_error(f, lit)),
            };
            let (s, t) = (self.params.push(s), self.params.push(t));
            return Ok(match op {
                CompareOp::Eq => format!("({e} IS NOT NULL AND {e} >= {s} AND {e} < {t})"),
                CompareOp::Ne => format!("({e} IS NULL OR {e} < {s} OR {e} >= {t})"),
                CompareOp::Lt => format!("({e} IS NOT NULL AND {e} < {s})"),
                CompareOp::Le => format!("({e} IS NOT NULL AND {e} < {t})"),
                CompareOp::Gt => format!("({e} IS NOT NULL AND {e} >= {t})"),
                CompareOp::Ge => format!("({e} IS NOT NULL AND {e} >= {s})"),
            });
        }
        let ph = self.bind_literal(f, lit)?;
        let (key, rhs) = if f.storage() == Storage::Text {
            (format!("LOWER({e})"), format!("LOWER({ph})"))
        } else {
            (e.clone(), ph)
        };
        Ok(match op {
            CompareOp::Ne => format!("({e} IS NULL OR {key} <> {rhs})"),
            other => format!("({e} IS NOT NULL AND {key} {} {rhs})", other.as_sql()),
        })
    }
}
