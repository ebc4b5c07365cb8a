//! DDL generated from [`ObjectDef`]s: one real table per object, typed columns, and the indexes
//! SOQL's common access paths need. The same generator serves the standard objects (created
//! idempotently at startup) and custom objects (created when an admin defines them).

use crate::schema::{Column, FieldDef, FieldType, ObjectDef, Storage};

/// The SQL dialect; the only places it matters are DDL, index sort options, and `COLLATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl From<valet_store::Backend> for Dialect {
    fn from(b: valet_store::Backend) -> Self {
        match b {
            valet_store::Backend::Sqlite => Dialect::Sqlite,
            valet_store::Backend::Postgres => Dialect::Postgres,
        }
    }
}

/// The column type for a storage class. PostgreSQL text columns use the "C" collation so that
/// comparisons, `LOWER` (ASCII-only under "C") and sorting behave byte-for-byte like SQLite's.
pub fn column_type(storage: Storage, d: Dialect) -> &'static str {
    match (storage, d) {
        (Storage::Id, _) => "TEXT",
        (Storage::Text | Storage::Date, Dialect::Sqlite) => "TEXT",
        (Storage::Text | Storage::Date, Dialect::Postgres) => "TEXT COLLATE \"C\"",
        (Storage::Int | Storage::Bool | Storage::DateTime, _) => "BIGINT",
        (Storage::Real, Dialect::Sqlite) => "REAL",
        (Storage::Real, Dialect::Postgres) => "DOUBLE PRECISION",
    }
}

/// Columns every owned table has besides its fields' columns.
const ORG_COLUMN: &str = "org_id TEXT NOT NULL";

fn column_def(f: &FieldDef, d: Dialect) -> Option<String> {
    let Column::Col(c) = &f.column else { return None };
    let mut s = format!("\"{c}\" {}", column_type(f.storage(), d));
    match c.as_str() {
        "id" => s.push_str(" NOT NULL PRIMARY KEY"),
        "is_deleted" => s.push_str(" NOT NULL DEFAULT 0"),
        "created_date" | "last_modified_date" | "system_modstamp" => s.push_str(" NOT NULL"),
        _ => {}
    }
    Some(s)
}

/// `CREATE TABLE IF NOT EXISTS` for an owned object.
pub fn create_table(o: &ObjectDef, d: Dialect) -> String {
    let mut cols = vec![ORG_COLUMN.to_string()];
    cols.extend(o.fields.iter().filter_map(|f| column_def(f, d)));
    format!("CREATE TABLE IF NOT EXISTS \"{}\" (\n    {}\n)", o.table, cols.join(",\n    "))
}

/// `ALTER TABLE ... ADD COLUMN` for a field added later.
pub fn add_column(table: &str, f: &FieldDef, d: Dialect) -> Option<String> {
    column_def(f, d).map(|c| format!("ALTER TABLE \"{table}\" ADD COLUMN {c}"))
}

fn index_name(table: &str, what: &str) -> String {
    let n = format!("{table}_{what}_idx");
    if n.len() <= 63 {
        return n;
    }
    // FNV-1a: a short stable name for long custom identifiers (PostgreSQL truncates at 63).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in n.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("ix_{h:016x}")
}

/// Index entries sort nulls first, as SOQL's default `ASC` does (and its `DESC` default, nulls
/// last, is the same index read backwards). SQLite's natural order already is that; PostgreSQL's
/// is the opposite, so it is spelled out there.
fn sort_key(expr: &str, d: Dialect) -> String {
    match d {
        Dialect::Sqlite => expr.to_string(),
        Dialect::Postgres => format!("{expr} NULLS FIRST"),
    }
}

/// The indexes of a field, if it gets any: the name field (case-insensitively, as SOQL compares
/// and sorts text), the created/modified dates, and lookups. Sort indexes end with `id`, the
/// tie-breaker every query's `ORDER BY` ends with, so a page comes straight off the index.
pub fn field_indexes(table: &str, f: &FieldDef, d: Dialect) -> Vec<String> {
    let Column::Col(c) = &f.column else { return vec![] };
    let mut out = Vec::new();
    if f.name_field {
        let key = if f.storage() == Storage::Text { format!("LOWER(\"{c}\")") } else { format!("\"{c}\"") };
        out.push(format!(
            "CREATE INDEX IF NOT EXISTS \"{}\" ON \"{table}\" (org_id, {}, id)",
            index_name(table, c),
            sort_key(&key, d)
        ));
    }
    if matches!(c.as_str(), "created_date" | "last_modified_date") {
        out.push(format!(
            "CREATE INDEX IF NOT EXISTS \"{}\" ON \"{table}\" (org_id, {}, id)",
            index_name(table, c),
            sort_key(&format!("\"{c}\""), d)
        ));
    }
    if f.ftype == FieldType::Reference && !matches!(c.as_str(), "created_by_id" | "last_modified_by_id") {
        out.push(format!("CREATE INDEX IF NOT EXISTS \"{}\" ON \"{table}\" (org_id, \"{c}\")", index_name(table, c)));
    }
    if c == "case_number" {
        out.push(format!(
            "CREATE UNIQUE INDEX IF NOT EXISTS \"{}\" ON \"{table}\" (org_id, case_number)",
            index_name(table, "case_number_u")
        ));
    }
    out
}

/// Every statement that creates an owned object's table and indexes.
pub fn create_object(o: &ObjectDef, d: Dialect) -> Vec<String> {
    let mut v = vec![create_table(o, d)];
    v.push(format!("CREATE INDEX IF NOT EXISTS \"{}\" ON \"{}\" (org_id, id)", index_name(&o.table, "org"), o.table));
    for f in &o.fields {
        v.extend(field_indexes(&o.table, f, d));
    }
    v
}

/// The registry's own tables: custom objects, their fields, and query locators.
pub fn registry_tables(d: Dialect) -> Vec<String> {
    let text = column_type(Storage::Text, d);
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS data_objects (
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    name_lower {text} NOT NULL,
    label TEXT NOT NULL,
    label_plural TEXT NOT NULL,
    key_prefix TEXT NOT NULL,
    table_name TEXT NOT NULL CONSTRAINT data_objects_table_key UNIQUE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, name_lower),
    CONSTRAINT data_objects_prefix_key UNIQUE (org_id, key_prefix)
)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS data_fields (
    org_id TEXT NOT NULL,
    object_lower {text} NOT NULL,
    name TEXT NOT NULL,
    name_lower {text} NOT NULL,
    label TEXT NOT NULL,
    field_type TEXT NOT NULL,
    length BIGINT NOT NULL,
    num_precision BIGINT NOT NULL,
    num_scale BIGINT NOT NULL,
    required BIGINT NOT NULL,
    reference_to TEXT,
    picklist TEXT NOT NULL,
    table_name TEXT NOT NULL,
    column_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, object_lower, name_lower),
    CONSTRAINT data_fields_column_key UNIQUE (table_name, column_name)
)"
        ),
        "CREATE TABLE IF NOT EXISTS data_query_locators (
    id TEXT NOT NULL PRIMARY KEY,
    org_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    query_text TEXT NOT NULL,
    query_all BIGINT NOT NULL,
    batch_size BIGINT NOT NULL,
    total_size BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
)"
        .to_string(),
        "CREATE INDEX IF NOT EXISTS data_query_locators_expires_idx ON data_query_locators (expires_at)".to_string(),
    ]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn account_ddl() {
        let acc = crate::schema::standard_objects().into_iter().find(|o| o.name == "Account").unwrap();
        let s = create_object(&acc, Dialect::Postgres).join(";\n");
        assert!(s.contains("\"name\" TEXT COLLATE \"C\""), "{s}");
        assert!(s.contains("\"annual_revenue\" DOUBLE PRECISION"), "{s}");
        assert!(
            s.contains("obj_account_name_idx\" ON \"obj_account\" (org_id, LOWER(\"name\") NULLS FIRST, id)"),
            "{s}"
        );
        assert!(s.contains("(org_id, \"owner_id\")"), "{s}");
        let s = create_object(&acc, Dialect::Sqlite).join(";\n");
        assert!(s.contains("(org_id, \"created_date\", id)"), "{s}");
        assert!(index_name(&"t".repeat(60), "c").starts_with("ix_"));
    }
}
