//! What the admin API answers: one serializable shape per record. Password hashes and secret
//! hashes have no field here, so they cannot leak by accident; the only secret that ever
//! appears is a consumer secret just generated (create and rotate), once.

use serde::Serialize;
use valet_core::clock::iso8601;
use valet_core::model::{App, AppPolicy, CustomPermission, PermissionSet, User};
use valet_core::secret::Secret;
use valet_data::registry::{FieldSummary, ObjectSummary};
use valet_data::schema::{FieldDef, ObjectDef};

#[derive(Serialize)]
pub struct List<T> {
    pub items: Vec<T>,
}

#[derive(Serialize)]
pub struct AppView {
    pub id: String,
    pub name: String,
    pub consumer_key: String,
    /// During a staged key rotation, the old key, still accepted until retired.
    pub previous_consumer_key: Option<String>,
    pub is_public: bool,
    pub callback_urls: Vec<String>,
    pub scopes: Vec<String>,
    pub policy: AppPolicy,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&App> for AppView {
    fn from(a: &App) -> Self {
        AppView {
            id: a.id.to_string(),
            name: a.name.clone(),
            consumer_key: a.consumer_key.clone(),
            previous_consumer_key: a.previous_consumer_key.clone(),
            is_public: a.is_public,
            callback_urls: a.callback_urls.clone(),
            scopes: a.scopes.iter().map(str::to_string).collect(),
            policy: a.policy.clone(),
            created_at: iso8601(a.created_at),
            updated_at: iso8601(a.updated_at),
        }
    }
}

/// An app just created, with its consumer secret (null for a public app).
#[derive(Serialize)]
pub struct AppCreated {
    #[serde(flatten)]
    pub app: AppView,
    pub consumer_secret: Option<String>,
}

impl AppCreated {
    pub fn new(app: &App, secret: Option<&Secret>) -> Self {
        AppCreated { app: app.into(), consumer_secret: secret.map(|s| s.expose().to_string()) }
    }
}

#[derive(Serialize)]
pub struct SecretRotated {
    pub app_id: String,
    pub consumer_key: String,
    pub consumer_secret: String,
    pub retired_old: bool,
}

#[derive(Serialize)]
pub struct SecretsRetired {
    pub app_id: String,
    pub retired: u64,
}

#[derive(Serialize)]
pub struct UserView {
    pub id: String,
    pub org_id: String,
    pub username: String,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub active: bool,
    pub is_admin: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.to_string(),
            org_id: u.org_id.to_string(),
            username: u.username.clone(),
            email: u.email.clone(),
            first_name: u.first_name.clone(),
            last_name: u.last_name.clone(),
            active: u.active,
            is_admin: u.is_admin,
            created_at: iso8601(u.created_at),
            updated_at: iso8601(u.updated_at),
        }
    }
}

#[derive(Serialize)]
pub struct PermissionSetView {
    pub id: String,
    pub name: String,
    pub label: String,
    pub created_at: String,
}

impl From<&PermissionSet> for PermissionSetView {
    fn from(p: &PermissionSet) -> Self {
        PermissionSetView {
            id: p.id.to_string(),
            name: p.name.clone(),
            label: p.label.clone(),
            created_at: iso8601(p.created_at),
        }
    }
}

#[derive(Serialize)]
pub struct UserPermissionSets {
    pub user_id: String,
    pub username: String,
    pub permission_sets: Vec<String>,
}

impl UserPermissionSets {
    pub fn new(u: &User, mut names: Vec<String>) -> Self {
        names.sort();
        UserPermissionSets { user_id: u.id.to_string(), username: u.username.clone(), permission_sets: names }
    }
}

#[derive(Serialize)]
pub struct CustomPermissionView {
    pub id: String,
    pub name: String,
    pub label: String,
    pub description: Option<String>,
    pub created_at: String,
}

impl From<&CustomPermission> for CustomPermissionView {
    fn from(c: &CustomPermission) -> Self {
        CustomPermissionView {
            id: c.id.to_string(),
            name: c.name.clone(),
            label: c.label.clone(),
            description: c.description.clone(),
            created_at: iso8601(c.created_at),
        }
    }
}

/// The custom permissions a permission set grants, by name.
#[derive(Serialize)]
pub struct PermissionSetCustomPermissions {
    pub permission_set: String,
    pub custom_permissions: Vec<String>,
}

/// An initial access token for dynamic client registration, shown once.
#[derive(Serialize)]
pub struct RegistrationTokenCreated {
    pub registrar_id: String,
    pub registrar_consumer_key: String,
    pub initial_access_token: String,
    /// Null: the token does not expire.
    pub valid_minutes: Option<i64>,
}

/// An object as the list shows it: what `valet object list` prints.
#[derive(Serialize)]
pub struct ObjectSummaryView {
    pub name: String,
    pub label: String,
    pub key_prefix: String,
    pub table: String,
    pub custom: bool,
    pub fields: Vec<FieldSummaryView>,
}

#[derive(Serialize)]
pub struct FieldSummaryView {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: String,
    pub required: bool,
    pub reference_to: Option<String>,
}

impl From<&ObjectSummary> for ObjectSummaryView {
    fn from(o: &ObjectSummary) -> Self {
        ObjectSummaryView {
            name: o.name.clone(),
            label: o.label.clone(),
            key_prefix: o.key_prefix.clone(),
            table: o.table.clone(),
            custom: o.custom,
            fields: o.fields.iter().map(FieldSummaryView::from).collect(),
        }
    }
}

impl From<&FieldSummary> for FieldSummaryView {
    fn from(f: &FieldSummary) -> Self {
        FieldSummaryView {
            name: f.name.clone(),
            field_type: f.field_type.clone(),
            required: f.required,
            reference_to: f.reference_to.clone(),
        }
    }
}

/// One object with every field (system, standard and custom).
#[derive(Serialize)]
pub struct ObjectView {
    pub name: String,
    pub label: String,
    pub label_plural: String,
    pub key_prefix: String,
    pub table: String,
    pub custom: bool,
    /// Standard objects backed by Valet's own tables (User, Organization) take no fields.
    pub read_only: bool,
    pub fields: Vec<FieldView>,
}

impl From<&ObjectDef> for ObjectView {
    fn from(o: &ObjectDef) -> Self {
        ObjectView {
            name: o.name.clone(),
            label: o.label.clone(),
            label_plural: o.label_plural.clone(),
            key_prefix: o.key_prefix.clone(),
            table: o.table.clone(),
            custom: o.custom,
            read_only: o.read_only(),
            fields: o.fields.iter().map(FieldView::from).collect(),
        }
    }
}

#[derive(Serialize)]
pub struct FieldView {
    pub name: String,
    pub label: String,
    /// The admin vocabulary of `add-field` (text, number, checkbox, lookup, ...); system fields
    /// also show id, int, reference's targets and so on.
    #[serde(rename = "type")]
    pub field_type: String,
    pub custom: bool,
    pub required: bool,
    pub length: u32,
    pub precision: u32,
    pub scale: u32,
    pub values: Vec<String>,
    pub reference_to: Option<String>,
    pub relationship_name: Option<String>,
}

impl From<&FieldDef> for FieldView {
    fn from(f: &FieldDef) -> Self {
        FieldView {
            name: f.name.clone(),
            label: f.label.clone(),
            field_type: f.ftype.stored_name().to_string(),
            custom: f.custom,
            required: f.required,
            length: f.length,
            precision: f.precision,
            scale: f.scale,
            values: f.picklist.clone(),
            reference_to: f.reference_to.clone(),
            relationship_name: f.relationship_name.clone(),
        }
    }
}

/// A field just added, with the object it belongs to.
#[derive(Serialize)]
pub struct FieldAdded {
    pub object: String,
    #[serde(flatten)]
    pub field: FieldView,
}
