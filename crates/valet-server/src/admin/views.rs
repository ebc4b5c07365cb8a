//! What the admin API answers: one serializable shape per record. Password hashes and secret
//! hashes have no field here, so they cannot leak by accident; the only secret that ever
//! appears is a consumer secret just generated (create and rotate), once.

use serde::Serialize;
use valet_core::clock::iso8601;
use valet_core::model::{App, AppPolicy, PermissionSet, User};
use valet_core::secret::Secret;

#[derive(Serialize)]
pub struct List<T> {
    pub items: Vec<T>,
}

#[derive(Serialize)]
pub struct AppView {
    pub id: String,
    pub name: String,
    pub consumer_key: String,
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
        PermissionSetView { id: p.id.to_string(), name: p.name.clone(), label: p.label.clone(), created_at: iso8601(p.created_at) }
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
