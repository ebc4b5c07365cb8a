//! The metadata registry: the standard objects plus an org's custom objects and fields, which
//! live in `data_objects` / `data_fields` and in real tables created at runtime.
//!
//! Defining an object or field is one transaction holding the DDL and the metadata rows
//! (both SQLite and PostgreSQL have transactional DDL), so a failure leaves neither behind.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::Row;
use valet_core::ids::SfId;

use crate::ddl::{self, Dialect};
use crate::error::{DataError, DataResult};
use crate::schema::{self, ApiName, Auto, Backing, Column, FieldDef, FieldType, ObjectDef};
use crate::value::{Params, SqlValue};
use crate::DataApi;

/// Custom fields an object may have (Salesforce's limit; far below PostgreSQL's column ceiling).
const MAX_CUSTOM_FIELDS: usize = 500;

/// All objects an org can see.
#[derive(Debug, Clone)]
pub struct Schema {
    pub objects: Vec<ObjectDef>,
    /// Per object, the select list of a record GET of all its fields (`compile_by_id`):
    /// formatting it was a tenth of the request. It depends on the schema alone, so it lives
    /// (and is dropped) with it.
    select_all: SelectCache,
}

/// Object name → select list. A clone starts empty (it is filled on use).
#[derive(Default)]
struct SelectCache(Mutex<HashMap<String, Arc<str>>>);

impl Clone for SelectCache {
    fn clone(&self) -> Self {
        SelectCache::default()
    }
}

impl std::fmt::Debug for SelectCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SelectCache")
    }
}

impl Schema {
    pub fn new(objects: Vec<ObjectDef>) -> Schema {
        Schema { objects, select_all: SelectCache::default() }
    }

    /// The select list of all of `object`'s fields: made by `make` the first time.
    pub(crate) fn select_all(&self, object: &str, make: impl FnOnce() -> String) -> Arc<str> {
        let cached = self.select_all.0.lock().unwrap_or_else(|p| p.into_inner()).get(object).cloned();
        if let Some(select) = cached {
            return select;
        }
        // Made outside the lock; two first requests may both make it, the same text.
        let select: Arc<str> = Arc::from(make());
        self.select_all.0.lock().unwrap_or_else(|p| p.into_inner()).insert(object.to_string(), select.clone());
        select
    }

    pub fn object(&self, name: &str) -> Option<&ObjectDef> {
        self.objects.iter().find(|o| o.name.eq_ignore_ascii_case(name))
    }

    pub fn by_prefix(&self, prefix: &str) -> Option<&ObjectDef> {
        self.objects.iter().find(|o| o.key_prefix == prefix)
    }
}

/// What an admin asks for with `valet object create`.
#[derive(Debug, Clone)]
pub struct NewObject {
    pub name: String,
    pub label: Option<String>,
    pub label_plural: Option<String>,
}

/// What an admin asks for with `valet object add-field`.
#[derive(Debug, Clone, Default)]
pub struct NewField {
    pub object: String,
    pub name: String,
    pub label: Option<String>,
    /// `text`, `textarea`, `number`, `currency`, `percent`, `checkbox`, `date`, `datetime`,
    /// `email`, `phone`, `url`, `picklist`, `lookup`.
    pub field_type: String,
    pub length: Option<u32>,
    pub precision: Option<u32>,
    pub scale: Option<u32>,
    pub required: bool,
    pub picklist_values: Vec<String>,
    /// The target object of a lookup.
    pub reference_to: Option<String>,
}

/// A custom object as `valet object list` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectSummary {
    pub name: String,
    pub label: String,
    pub key_prefix: String,
    pub table: String,
    pub custom: bool,
    pub fields: Vec<FieldSummary>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldSummary {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: String,
    pub required: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_to: Option<String>,
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn admin_err(msg: impl Into<String>) -> DataError {
    DataError::bad_request("INVALID_INPUT", msg)
}

/// A name already taken. Its own status (409) and code, like the unknown object of `add_field`
/// (404), so that the admin API can answer conflict and not-found without reading messages.
fn duplicate(msg: impl Into<String>) -> DataError {
    DataError::new(409, "DUPLICATE_DEVELOPER_NAME", msg)
}

/// How long a cached schema is trusted before the registry is asked whether it changed: the
/// bound on how late this server sees an object or field another process (the CLI) defined.
const SCHEMA_RECHECK: Duration = Duration::from_millis(250);

/// Each org's [`Schema`], built once instead of on every request (the standard objects alone are
/// hundreds of field definitions). Definitions are only ever added, so the number of registry
/// rows tells whether anything changed since.
#[derive(Default)]
pub(crate) struct SchemaCache {
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    /// Bumped by every clear, so that a schema built before a clear is not stored after it.
    generation: u64,
    rows: Option<i64>,
    checked: Option<Instant>,
    schemas: HashMap<SfId, Arc<Schema>>,
}

impl SchemaCache {
    fn lock(&self) -> MutexGuard<'_, CacheState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets every schema (after a definition changed in this process).
    pub(crate) fn clear(&self) {
        let mut s = self.lock();
        s.schemas.clear();
        s.rows = None;
        s.generation += 1;
    }
}

impl DataApi {
    /// The org's schema, from the cache when the registry has not changed.
    pub async fn schema(&self, org: &SfId) -> DataResult<Arc<Schema>> {
        let due = self.schemas.lock().checked.is_none_or(|t| t.elapsed() >= SCHEMA_RECHECK);
        if due {
            let rows: i64 =
                sqlx::query("SELECT (SELECT COUNT(*) FROM data_objects) + (SELECT COUNT(*) FROM data_fields)")
                    .fetch_one(&self.pool)
                    .await?
                    .try_get(0)?;
            let mut s = self.schemas.lock();
            if s.rows != Some(rows) {
                s.schemas.clear();
                s.rows = Some(rows);
                s.generation += 1;
            }
            s.checked = Some(Instant::now());
        }
        let generation = {
            let s = self.schemas.lock();
            if let Some(found) = s.schemas.get(org) {
                return Ok(found.clone());
            }
            s.generation
        };
        let built = Arc::new(self.load_schema(org).await?);
        let mut s = self.schemas.lock();
        if s.generation == generation {
            s.schemas.insert(org.clone(), built.clone());
        }
        Ok(built)
    }

    /// The standard objects plus the org's custom objects and fields.
    async fn load_schema(&self, org: &SfId) -> DataResult<Schema> {
        let mut objects = schema::standard_objects();
        let rows = sqlx::query("SELECT name, label, label_plural, key_prefix, table_name FROM data_objects WHERE org_id = $1 ORDER BY name_lower")
            .bind(org.as_str())
            .fetch_all(&self.pool)
            .await?;
        for r in rows {
            let name: String = r.try_get(0)?;
            let mut fields = schema::system_fields(true);
            fields.push(FieldDef {
                name_field: true,
                required: true,
                length: 80,
                ..custom_field_base("Name", &format!("{name} Name"), FieldType::String, "name")
            });
            objects.push(ObjectDef {
                label: r.try_get(1)?,
                label_plural: r.try_get(2)?,
                key_prefix: r.try_get(3)?,
                table: r.try_get(4)?,
                custom: true,
                backing: Backing::Owned,
                fields,
                name,
            });
        }
        let rows = sqlx::query(
            "SELECT object_lower, name, label, field_type, length, num_precision, num_scale, required, reference_to, picklist, column_name \
             FROM data_fields WHERE org_id = $1 ORDER BY created_at, name_lower",
        )
        .bind(org.as_str())
        .fetch_all(&self.pool)
        .await?;
        for r in rows {
            let object_lower: String = r.try_get(0)?;
            let name: String = r.try_get(1)?;
            let ftype_s: String = r.try_get(3)?;
            let Some(ftype) = FieldType::parse_custom(&ftype_s) else { continue };
            let picklist: String = r.try_get(9)?;
            let reference_to: Option<String> = r.try_get(8)?;
            let f = FieldDef {
                length: u32::try_from(r.try_get::<i64, _>(4)?).unwrap_or(255),
                precision: u32::try_from(r.try_get::<i64, _>(5)?).unwrap_or(18),
                scale: u32::try_from(r.try_get::<i64, _>(6)?).unwrap_or(0),
                required: r.try_get::<i64, _>(7)? != 0,
                relationship_name: reference_to
                    .as_ref()
                    .and_then(|_| ApiName::parse_custom(&name).ok())
                    .map(|n| n.relationship()),
                reference_to,
                // Written by this registry as a JSON list; a damaged value is a fault to report,
                // not a field that silently loses its values.
                picklist: serde_json::from_str(&picklist).map_err(|e| {
                    DataError::internal(format!("field {name}: stored picklist is not a JSON list: {e}"))
                })?,
                restricted_picklist: true,
                default: (ftype == FieldType::Boolean).then_some(schema::DefaultValue::Bool(false)),
                ..custom_field_base(&name, &r.try_get::<String, _>(2)?, ftype, &r.try_get::<String, _>(10)?)
            };
            let f = FieldDef { required: f.required || ftype == FieldType::Boolean, ..f };
            if let Some(o) = objects.iter_mut().find(|o| o.name.eq_ignore_ascii_case(&object_lower)) {
                o.fields.push(f);
            }
        }
        Ok(Schema::new(objects))
    }

    /// Defines a custom object: its table (system fields and `Name`), its indexes and its row.
    pub async fn create_object(&self, org: &SfId, new: NewObject) -> DataResult<ObjectDef> {
        let name = ApiName::parse_custom(new.name.trim()).map_err(admin_err)?;
        if schema::is_reserved_object_name(name.as_str()) {
            return Err(admin_err(format!("{name} is a standard object")));
        }
        let label = new.label.unwrap_or_else(|| name.as_str().trim_end_matches("__c").replace('_', " "));
        let plural = new.label_plural.unwrap_or_else(|| format!("{label}s"));
        if label.is_empty() || label.len() > 40 || plural.len() > 40 {
            return Err(admin_err("labels are 1 to 40 characters"));
        }
        let mut tx = self.begin_ddl().await?;
        let exists = sqlx::query("SELECT 1 FROM data_objects WHERE org_id = $1 AND name_lower = $2")
            .bind(org.as_str())
            .bind(name.sql_ident())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(duplicate(format!("{name} already exists")));
        }
        let count: i64 = sqlx::query("SELECT COUNT(*) FROM data_objects WHERE org_id = $1")
            .bind(org.as_str())
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let n = usize::try_from(count).unwrap_or(0);
        if n >= 62 * 62 {
            return Err(admin_err("too many custom objects"));
        }
        let prefix = format!("a{}{}", BASE62[n / 62] as char, BASE62[n % 62] as char);
        let mut table = format!("obj_{}", name.sql_ident());
        for k in 2.. {
            let taken = sqlx::query("SELECT 1 FROM data_objects WHERE table_name = $1")
                .bind(&table)
                .fetch_optional(&mut *tx)
                .await?;
            if taken.is_none() {
                break;
            }
            table = format!("obj_{}_{k}", name.sql_ident());
        }
        let now = self.clock.now_ms();
        sqlx::query("INSERT INTO data_objects (org_id, name, name_lower, label, label_plural, key_prefix, table_name, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(org.as_str())
            .bind(name.as_str())
            .bind(name.sql_ident())
            .bind(&label)
            .bind(&plural)
            .bind(&prefix)
            .bind(&table)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let mut fields = schema::system_fields(true);
        fields.push(FieldDef {
            name_field: true,
            required: true,
            length: 80,
            ..custom_field_base("Name", &format!("{label} Name"), FieldType::String, "name")
        });
        let obj = ObjectDef {
            name: name.to_string(),
            label,
            label_plural: plural,
            key_prefix: prefix,
            table,
            custom: true,
            backing: Backing::Owned,
            fields,
        };
        for stmt in ddl::create_object(&obj, self.dialect) {
            sqlx::query(&stmt).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.schemas.clear();
        Ok(obj)
    }

    /// Adds a custom field to a custom or standard object (`ALTER TABLE ... ADD COLUMN`).
    pub async fn add_field(&self, org: &SfId, new: NewField) -> DataResult<FieldDef> {
        let schema = self.schema(org).await?;
        let obj = schema
            .object(new.object.trim())
            .ok_or_else(|| DataError::new(404, "NOT_FOUND", format!("no object {}", new.object)))?;
        if obj.read_only() {
            return Err(admin_err(format!("{} is read-only", obj.name)));
        }
        let name = ApiName::parse_custom(new.name.trim()).map_err(admin_err)?;
        if obj.field(name.as_str()).is_some() {
            return Err(duplicate(format!("{}.{name} already exists", obj.name)));
        }
        // Salesforce's limit on custom fields per object; it also keeps every table far below
        // PostgreSQL's 1,600-column ceiling.
        if obj.fields.iter().filter(|f| f.name.ends_with("__c")).count() >= MAX_CUSTOM_FIELDS {
            return Err(admin_err(format!(
                "{} already has {MAX_CUSTOM_FIELDS} custom fields, the most an object may have",
                obj.name
            )));
        }
        let ftype = FieldType::parse_custom(&new.field_type).ok_or_else(|| {
            admin_err(format!("unknown field type '{}': use text, textarea, number, currency, percent, checkbox, date, datetime, email, phone, url, picklist or lookup", new.field_type))
        })?;
        let label = new.label.clone().unwrap_or_else(|| name.as_str().trim_end_matches("__c").replace('_', " "));
        if label.is_empty() || label.len() > 40 {
            return Err(admin_err("labels are 1 to 40 characters"));
        }
        let (length, precision, scale) = match ftype {
            FieldType::String | FieldType::Phone | FieldType::Url | FieldType::Picklist => {
                (new.length.unwrap_or(255), 0, 0)
            }
            FieldType::Email => (new.length.unwrap_or(80), 0, 0),
            FieldType::TextArea => (new.length.unwrap_or(32768), 0, 0),
            FieldType::Double | FieldType::Percent | FieldType::Int => {
                (0, new.precision.unwrap_or(18), new.scale.unwrap_or(0))
            }
            FieldType::Currency => (0, new.precision.unwrap_or(18), new.scale.unwrap_or(2)),
            _ => (0, 0, 0),
        };
        let max_len = if ftype == FieldType::TextArea { 131_072 } else { 255 };
        if matches!(ftype.storage(), schema::Storage::Text) && !(1..=max_len).contains(&length) {
            return Err(admin_err(format!("length must be 1 to {max_len}")));
        }
        if !(1..=18).contains(&precision) && precision != 0 || scale > precision {
            return Err(admin_err("precision is 1 to 18 and scale at most the precision"));
        }
        let picklist: Vec<String> =
            new.picklist_values.iter().map(|v| v.trim().to_string()).filter(|v| !v.is_empty()).collect();
        if ftype == FieldType::Picklist && picklist.is_empty() {
            return Err(admin_err("a picklist needs --values"));
        }
        if picklist.iter().any(|v| v.len() > 255) {
            return Err(admin_err("picklist values are at most 255 characters"));
        }
        let reference_to = if ftype == FieldType::Reference {
            let t = new.reference_to.as_deref().ok_or_else(|| admin_err("a lookup needs --to <Object>"))?;
            let target = schema.object(t.trim()).ok_or_else(|| admin_err(format!("no object {t}")))?;
            if target.name == "Organization" {
                return Err(admin_err("lookups to Organization are not supported"));
            }
            Some(target.name.clone())
        } else {
            None
        };
        let mut tx = self.begin_ddl().await?;
        let mut column = name.sql_ident();
        for k in 2.. {
            let taken = sqlx::query("SELECT 1 FROM data_fields WHERE table_name = $1 AND column_name = $2")
                .bind(&obj.table)
                .bind(&column)
                .fetch_optional(&mut *tx)
                .await?;
            if taken.is_none() {
                break;
            }
            column = format!("{}_{k}", name.sql_ident());
        }
        let f = FieldDef {
            length,
            precision,
            scale,
            required: new.required || ftype == FieldType::Boolean,
            relationship_name: reference_to.as_ref().map(|_| name.relationship()),
            reference_to: reference_to.clone(),
            picklist: picklist.clone(),
            restricted_picklist: true,
            default: (ftype == FieldType::Boolean).then_some(schema::DefaultValue::Bool(false)),
            ..custom_field_base(name.as_str(), &label, ftype, &column)
        };
        sqlx::query(
            "INSERT INTO data_fields (org_id, object_lower, name, name_lower, label, field_type, length, num_precision, num_scale, required, reference_to, picklist, table_name, column_name, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(org.as_str())
        .bind(obj.name.to_ascii_lowercase())
        .bind(name.as_str())
        .bind(name.sql_ident())
        .bind(&label)
        .bind(ftype.stored_name())
        .bind(i64::from(length))
        .bind(i64::from(precision))
        .bind(i64::from(scale))
        .bind(i64::from(new.required))
        .bind(reference_to)
        .bind(serde_json::to_string(&picklist).map_err(DataError::internal)?)
        .bind(&obj.table)
        .bind(&column)
        .bind(self.clock.now_ms())
        .execute(&mut *tx)
        .await?;
        if let Some(stmt) = ddl::add_column(&obj.table, &f, self.dialect) {
            sqlx::query(&stmt).execute(&mut *tx).await?;
        }
        if ftype == FieldType::Boolean {
            // Existing rows read as false, not null (checkboxes are never null).
            let mut p = Params::default();
            let org_ph = p.push(SqlValue::Text(org.as_str().to_string()));
            sqlx::query_with(
                &format!("UPDATE \"{}\" SET \"{column}\" = 0 WHERE org_id = {org_ph}", obj.table),
                p.to_args()?,
            )
            .execute(&mut *tx)
            .await?;
        }
        for stmt in ddl::field_indexes(&obj.table, &f, self.dialect) {
            sqlx::query(&stmt).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        self.schemas.clear();
        Ok(f)
    }

    /// The custom objects, and standard objects that have custom fields, of an org.
    pub async fn list_objects(&self, org: &SfId, include_standard: bool) -> DataResult<Vec<ObjectSummary>> {
        let schema = self.schema(org).await?;
        Ok(schema
            .objects
            .iter()
            .filter(|o| include_standard || o.custom || o.fields.iter().any(|f| f.custom))
            .map(|o| ObjectSummary {
                name: o.name.clone(),
                label: o.label.clone(),
                key_prefix: o.key_prefix.clone(),
                table: o.table.clone(),
                custom: o.custom,
                fields: o
                    .fields
                    .iter()
                    .filter(|f| f.custom || (o.custom && f.name == "Name") || include_standard)
                    .map(|f| FieldSummary {
                        name: f.name.clone(),
                        field_type: f.ftype.stored_name().into(),
                        required: f.required,
                        reference_to: f.reference_to.clone(),
                    })
                    .collect(),
            })
            .collect())
    }

    /// A transaction for DDL: SQLite takes the write lock up front; PostgreSQL serialises
    /// definers with an advisory lock, so two processes never race on the same name.
    pub(crate) async fn begin_ddl(&self) -> DataResult<sqlx::Transaction<'static, sqlx::Any>> {
        match self.dialect {
            Dialect::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Dialect::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock(7320411)").execute(&mut *tx).await?;
                Ok(tx)
            }
        }
    }
}

fn custom_field_base(name: &str, label: &str, ftype: FieldType, column: &str) -> FieldDef {
    FieldDef {
        name: name.into(),
        label: label.into(),
        ftype,
        column: Column::Col(column.into()),
        length: 255,
        precision: 0,
        scale: 0,
        required: false,
        createable: true,
        updateable: true,
        custom: name.ends_with("__c"),
        reference_to: None,
        relationship_name: None,
        picklist: Vec::new(),
        restricted_picklist: false,
        default: None,
        name_field: false,
        auto: Auto::No,
    }
}
