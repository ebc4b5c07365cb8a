//! Record create / retrieve / update / delete (`/sobjects/<Type>[/<id>]`).
//!
//! A body is parsed into typed column values against the object's fields before any SQL runs,
//! so every client mistake is a Salesforce error, never a database error. Deletes are soft
//! (`is_deleted = 1`): `/queryAll` still sees them, as on Salesforce.

use serde_json::Value as Json;
use sqlx::Row;
use valet_core::ids::SfId;

use crate::error::{DataError, DataResult};
use crate::record_json::RecordJson;
use crate::registry::Schema;
use crate::schema::{Auto, DefaultValue, FieldDef, FieldType, ObjectDef};
use crate::value::{from_json, Cell, Params, SqlValue};
use crate::{Caller, Cost, DataApi};

/// A parsed write: field → value (`None` = null), in body order.
type Changes<'o> = Vec<(&'o FieldDef, Option<SqlValue>)>;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Write {
    Create,
    Update,
}

fn not_writable(f: &FieldDef) -> DataError {
    DataError::bad_request(
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        format!(
            "Unable to create/update fields: {}. Please check the security settings of this field and verify that it is read/write for your profile or permission set.",
            f.name
        ),
    )
    .with_fields(vec![f.name.clone()])
}

/// The object named in the URL, or 404.
pub fn object<'s>(schema: &'s Schema, name: &str) -> DataResult<&'s ObjectDef> {
    schema.object(name).ok_or_else(DataError::not_found_resource)
}

/// An ID from the URL: well-formed, else `MALFORMED_ID`.
pub fn parse_id(s: &str) -> DataResult<SfId> {
    SfId::parse(s).map_err(|_| DataError::malformed_id(s))
}

impl DataApi {
    fn parse_body<'o>(&self, o: &'o ObjectDef, body: &Json, mode: Write) -> DataResult<Changes<'o>> {
        let Json::Object(map) = body else {
            return Err(DataError::json_parse(format!(
                "Cannot deserialize instance of {} from {} value",
                o.name,
                json_kind(body)
            )));
        };
        let mut out: Changes<'o> = Vec::new();
        for (k, v) in map {
            if k == "attributes" {
                continue;
            }
            if k.eq_ignore_ascii_case("Id") {
                if mode == Write::Create {
                    return Err(DataError::invalid_field("The Id field should not be specified in the sobject data."));
                }
                continue; // checked against the URL by the caller
            }
            let f = o.field(k).ok_or_else(|| {
                DataError::invalid_field(format!("No such column '{k}' on sobject of type {}", o.name))
            })?;
            let allowed = match mode {
                Write::Create => f.createable,
                Write::Update => f.updateable,
            };
            if !allowed {
                return Err(not_writable(f));
            }
            let value = from_json(f, v)?;
            out.retain(|(g, _)| !std::ptr::eq(*g, f));
            out.push((f, value));
        }
        Ok(out)
    }

    /// Lookups must name a record of the right object in the caller's org.
    async fn check_references(&self, schema: &Schema, caller: &Caller, changes: &Changes<'_>) -> DataResult<()> {
        for (f, v) in changes {
            let (FieldType::Reference, Some(SqlValue::Text(id))) = (f.ftype, v) else { continue };
            let target = f.reference_to.as_deref().and_then(|t| schema.object(t));
            let Some(target) = target else { continue };
            let wrong_type = || {
                DataError::bad_request(
                    "FIELD_INTEGRITY_EXCEPTION",
                    format!("{}: id value of incorrect type: {id}", f.label),
                )
                .with_fields(vec![f.name.clone()])
            };
            if !id.starts_with(&target.key_prefix) {
                return Err(wrong_type());
            }
            let Ok(id) = SfId::parse(id) else { return Err(wrong_type()) };
            match self.record_state(caller, target, &id).await? {
                None => {
                    return Err(DataError::bad_request("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
                        .with_fields(vec![f.name.clone()]));
                }
                Some(true) => return Err(DataError::entity_deleted().with_fields(vec![f.name.clone()])),
                Some(false) => {}
            }
        }
        Ok(())
    }

    /// `POST /sobjects/<Type>`: returns the new ID.
    pub async fn create(&self, caller: &Caller, object_name: &str, body: &Json) -> DataResult<SfId> {
        let schema = self.schema(&caller.org_id).await?;
        let o = object(&schema, object_name)?;
        if o.read_only() {
            return Err(method_not_allowed("POST", "GET,HEAD"));
        }
        let mut changes = self.parse_body(o, body, Write::Create)?;
        // Defaults, then the owner.
        for f in &o.fields {
            if f.is("IsDeleted") || changes.iter().any(|(g, _)| std::ptr::eq(*g, f)) {
                continue;
            }
            match (&f.default, f.ftype) {
                (Some(DefaultValue::Bool(b)), _) => changes.push((f, Some(SqlValue::Int(i64::from(*b))))),
                (Some(DefaultValue::Text(t)), _) => changes.push((f, Some(SqlValue::Text(t.clone())))),
                (None, FieldType::Boolean) => changes.push((f, Some(SqlValue::Int(0)))),
                _ => {}
            }
            if f.is("OwnerId") {
                changes.push((f, Some(SqlValue::Text(caller.user_id.as_str().to_string()))));
            }
        }
        let missing: Vec<String> = o
            .fields
            .iter()
            .filter(|f| f.required && f.createable && !changes.iter().any(|(g, v)| std::ptr::eq(*g, *f) && v.is_some()))
            .map(|f| f.name.clone())
            .collect();
        if !missing.is_empty() {
            return Err(DataError::bad_request(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
            )
            .with_fields(missing));
        }
        self.check_references(&schema, caller, &changes).await?;

        let id = self.new_id(&o.key_prefix)?;
        let now = self.clock.now_ms();
        let mut cols: Vec<String> = vec![
            "id".into(),
            "org_id".into(),
            "is_deleted".into(),
            "created_date".into(),
            "created_by_id".into(),
            "last_modified_date".into(),
            "last_modified_by_id".into(),
            "system_modstamp".into(),
        ];
        let mut p = Params::default();
        let mut vals: Vec<String> = vec![
            p.text(id.as_str()),
            p.text(caller.org_id.as_str()),
            "0".into(),
            p.int(now),
            p.text(caller.user_id.as_str()),
            p.int(now),
            p.text(caller.user_id.as_str()),
            p.int(now),
        ];
        for (f, v) in &changes {
            let (Some(col), Some(v)) = (f.column_name(), v) else { continue };
            cols.push(format!("\"{col}\""));
            vals.push(p.push(v.clone()));
        }
        if let Some(name) = o.fields.iter().find(|f| f.auto == Auto::FullName) {
            let get = |n: &str| {
                changes.iter().find(|(f, _)| f.is(n)).and_then(|(_, v)| match v {
                    Some(SqlValue::Text(t)) => Some(t.clone()),
                    _ => None,
                })
            };
            let full = format!("{} {}", get("FirstName").unwrap_or_default(), get("LastName").unwrap_or_default())
                .trim()
                .to_string();
            if let Some(col) = name.column_name() {
                cols.push(format!("\"{col}\""));
                vals.push(p.text(&full));
            }
        }
        let case_number =
            o.fields.iter().find(|f| f.auto == Auto::CaseNumber).and_then(|f| f.column_name().map(str::to_string));
        let base_len = p.len();
        for attempt in 0..5 {
            let mut p = p.clone();
            let mut cols = cols.clone();
            let mut vals = vals.clone();
            if let Some(col) = &case_number {
                // Auto-number: the next 8-digit number of the org (unique index; retried on a race).
                let max: Option<String> =
                    sqlx::query(&format!("SELECT MAX(\"{col}\") FROM \"{}\" WHERE org_id = $1", o.table))
                        .bind(caller.org_id.as_str())
                        .fetch_one(&self.pool)
                        .await?
                        .try_get(0)?;
                let next = max.and_then(|m| m.parse::<u64>().ok()).unwrap_or(1000) + 1;
                cols.push(format!("\"{col}\""));
                vals.push(p.text(&format!("{next:08}")));
            }
            debug_assert!(p.len() >= base_len);
            let sql = format!("INSERT INTO \"{}\" ({}) VALUES ({})", o.table, cols.join(", "), vals.join(", "));
            match sqlx::query_with(&sql, p.to_args()?).execute(&self.pool).await {
                Ok(_) => return Ok(id),
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() && case_number.is_some() && attempt < 4 => {
                    continue
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(DataError::internal("could not allocate a case number"))
    }

    /// Reads a record's `is_deleted` flag: `None` when no such record is visible to the org.
    async fn record_state(&self, caller: &Caller, o: &ObjectDef, id: &SfId) -> DataResult<Option<bool>> {
        if !id.as_str().starts_with(&o.key_prefix) {
            return Ok(None);
        }
        let deleted_col = if o.read_only() { "0" } else { "is_deleted" };
        let sql = format!("SELECT {deleted_col} FROM \"{}\" WHERE id = $1 AND \"{}\" = $2", o.table, o.org_column());
        let mut p = Params::default();
        p.text(id.as_str());
        p.text(caller.org_id.as_str());
        let rows = self.read_cells(&sql, &p, Cost::Point).await?;
        Ok(rows.first().map(|r| r.first().and_then(Cell::as_i64) == Some(1)))
    }

    /// `GET /sobjects/<Type>/<id>[?fields=a,b]`.
    pub async fn retrieve(
        &self,
        caller: &Caller,
        object_name: &str,
        id: &str,
        fields: Option<&str>,
        version: &str,
    ) -> DataResult<RecordJson> {
        let schema = self.schema(&caller.org_id).await?;
        let o = object(&schema, object_name)?;
        let id = parse_id(id)?;
        let chosen = fields.map(str::trim).filter(|s| !s.is_empty());
        let selected: Vec<&FieldDef> = match chosen {
            None => o.fields.iter().collect(),
            Some(list) => {
                let mut v: Vec<&FieldDef> = vec![];
                if let Some(idf) = o.field("Id") {
                    v.push(idf);
                }
                for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()).take(500) {
                    let f = o.field(name).ok_or_else(|| {
                        DataError::invalid_field(format!(
                            "No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                            o.name
                        ))
                    })?;
                    if !v.iter().any(|g| std::ptr::eq(*g, f)) {
                        v.push(f);
                    }
                }
                v
            }
        };
        // The record is read as `SELECT <fields> FROM <Type> WHERE Id = '<id>'` compiles (names
        // from the schema only). The query skips deleted rows, so only a miss needs the second
        // look that tells a deleted record from one that never existed.
        let env = crate::soql::Env {
            org_id: caller.org_id.as_str(),
            today: self.today(),
            query_all: false,
            dialect: self.dialect,
        };
        let c = crate::soql::compile_by_id(&schema, o, &selected, id.as_str(), &env, chosen.is_none());
        if let Some(rec) = self.fetch_records(&c, 0, 1, version, Cost::Point).await?.pop() {
            return Ok(rec);
        }
        match self.record_state(caller, o, &id).await? {
            Some(true) => Err(DataError::entity_deleted()),
            _ => Err(DataError::record_not_found(id.as_str())),
        }
    }

    /// `PATCH /sobjects/<Type>/<id>`.
    pub async fn update(&self, caller: &Caller, object_name: &str, id: &str, body: &Json) -> DataResult<()> {
        let schema = self.schema(&caller.org_id).await?;
        let o = object(&schema, object_name)?;
        if o.read_only() {
            return Err(method_not_allowed("PATCH", "GET,HEAD"));
        }
        let id = parse_id(id)?;
        if let Json::Object(m) = body {
            if let Some((_, v)) = m.iter().find(|(k, _)| k.eq_ignore_ascii_case("Id")) {
                let same = v.as_str().and_then(|s| SfId::parse(s).ok()).is_some_and(|x| x == id);
                if !same {
                    return Err(DataError::invalid_field("The Id field should not be specified in the sobject data."));
                }
            }
        }
        let changes = self.parse_body(o, body, Write::Update)?;
        let missing: Vec<String> =
            changes.iter().filter(|(f, v)| f.required && v.is_none()).map(|(f, _)| f.name.clone()).collect();
        if !missing.is_empty() {
            return Err(DataError::bad_request(
                "REQUIRED_FIELD_MISSING",
                format!("Required fields are missing: [{}]", missing.join(", ")),
            )
            .with_fields(missing));
        }
        match self.record_state(caller, o, &id).await? {
            None => return Err(DataError::record_not_found(id.as_str())),
            Some(true) => return Err(DataError::entity_deleted()),
            Some(false) => {}
        }
        self.check_references(&schema, caller, &changes).await?;
        let now = self.clock.now_ms();
        let mut p = Params::default();
        let mut sets = vec![
            format!("last_modified_date = {}", p.int(now)),
            format!("system_modstamp = {}", p.int(now)),
            format!("last_modified_by_id = {}", p.text(caller.user_id.as_str())),
        ];
        for (f, v) in &changes {
            let Some(col) = f.column_name() else { continue };
            match v {
                Some(v) => sets.push(format!("\"{col}\" = {}", p.push(v.clone()))),
                None => sets.push(format!("\"{col}\" = NULL")),
            }
        }
        let id_ph = p.text(id.as_str());
        let org_ph = p.text(caller.org_id.as_str());
        let mut tx = self.pool.begin().await?;
        sqlx::query_with(
            &format!(
                "UPDATE \"{}\" SET {} WHERE id = {id_ph} AND org_id = {org_ph} AND is_deleted = 0",
                o.table,
                sets.join(", ")
            ),
            p.to_args()?,
        )
        .execute(&mut *tx)
        .await?;
        if let Some(name) = o.fields.iter().find(|f| f.auto == Auto::FullName).and_then(|f| f.column_name()) {
            if changes.iter().any(|(f, _)| f.is("FirstName") || f.is("LastName")) {
                sqlx::query(&format!("UPDATE \"{}\" SET \"{name}\" = TRIM(COALESCE(first_name, '') || ' ' || COALESCE(last_name, '')) WHERE id = $1 AND org_id = $2", o.table))
                    .bind(id.as_str())
                    .bind(caller.org_id.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// `DELETE /sobjects/<Type>/<id>`: a soft delete.
    pub async fn delete(&self, caller: &Caller, object_name: &str, id: &str) -> DataResult<()> {
        let schema = self.schema(&caller.org_id).await?;
        let o = object(&schema, object_name)?;
        if o.read_only() {
            return Err(method_not_allowed("DELETE", "GET,HEAD"));
        }
        let id = parse_id(id)?;
        let now = self.clock.now_ms();
        let sql = format!(
            "UPDATE \"{}\" SET is_deleted = 1, last_modified_date = $1, system_modstamp = $1, last_modified_by_id = $2 WHERE id = $3 AND org_id = $4 AND is_deleted = 0",
            o.table
        );
        let done = sqlx::query(&sql)
            .bind(now)
            .bind(caller.user_id.as_str())
            .bind(id.as_str())
            .bind(caller.org_id.as_str())
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 1 {
            return Ok(());
        }
        match self.record_state(caller, o, &id).await? {
            Some(true) => Err(DataError::entity_deleted()),
            _ => Err(DataError::record_not_found(id.as_str())),
        }
    }

    /// The ten most recently modified records (the `recentItems` of basic information).
    pub async fn recent_items(&self, caller: &Caller, o: &ObjectDef, version: &str) -> DataResult<Vec<RecordJson>> {
        let schema = self.schema(&caller.org_id).await?;
        let name = o.name_field().map(|f| f.name.clone()).unwrap_or_else(|| "Id".into());
        let order = if o.field("LastModifiedDate").is_some() { " ORDER BY LastModifiedDate DESC" } else { "" };
        let text = format!("SELECT Id, {name} FROM {}{order} LIMIT 10", o.name);
        Ok(self.run_query_text(caller, &schema, &text, false, 10, version).await?.records)
    }
}

pub(crate) fn method_not_allowed(method: &str, allowed: &str) -> DataError {
    DataError::new(405, "METHOD_NOT_ALLOWED", format!("Method '{method}' not allowed. Allowed are {allowed}"))
}

fn json_kind(v: &Json) -> &'static str {
    match v {
        Json::Array(_) => "START_ARRAY",
        Json::String(_) => "VALUE_STRING",
        Json::Number(_) => "VALUE_NUMBER_INT",
        Json::Bool(_) => "VALUE_TRUE",
        Json::Null => "VALUE_NULL",
        Json::Object(_) => "START_OBJECT",
    }
}
