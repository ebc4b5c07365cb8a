//! `/admin/api/v1/users`: users, their passwords and their permission sets. Passwords come in
//! request bodies only and are never echoed, logged or named in an error message.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use valet_core::engine::admin::NewUser;
use valet_core::engine::admin_token::{parse_email, parse_person_name, ProfilePatch};

use super::auth::AdminCheck;
use super::error::ApiError;
use super::extract::{RawBody, Segments};
use super::views::{List, UserPermissionSets, UserView};
use super::{json_response, ApiResult};
use crate::AppState;

/// A password from a request body. `Debug` never shows it, so a stray `{:?}` cannot log it.
#[derive(Deserialize)]
#[serde(transparent)]
struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    /// Bounded before it reaches Argon2: a megabyte password would only burn CPU.
    fn parse(self) -> Result<String, ApiError> {
        if self.0.len() > 1024 {
            return Err(ApiError::bad_request("password must be at most 1024 bytes").with_field("password"));
        }
        Ok(self.0)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    username: String,
    password: Password,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    is_admin: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    first_name: Option<String>,
    #[serde(default)]
    last_name: Option<String>,
    #[serde(default)]
    active: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    password: Password,
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let org = state.engine.default_org().await?;
    let users = state.engine.store().list_users(&org.id).await.map_err(|e| ApiError::fault(&e))?;
    Ok(json_response(StatusCode::OK, &List { items: users.iter().map(UserView::from).collect() }))
}

pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: RawBody) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let body: CreateBody = body.json(false).await?;
    let new = NewUser {
        // The engine checks the username's shape; this only keeps NUL and huge values out.
        username: super::extract::text("username", &body.username, 1, 255)?,
        password: body.password.parse()?,
        email: body.email.as_deref().map(parse_email).transpose().map_err(|e| ApiError::from(e).with_field("email"))?,
        first_name: name_field("first_name", body.first_name.as_deref(), 40)?,
        last_name: name_field("last_name", body.last_name.as_deref(), 80)?,
        is_admin: body.is_admin,
    };
    let org = state.engine.default_org().await?;
    let user = state.engine.create_user(&org.id, new).await?;
    Ok(json_response(StatusCode::CREATED, &UserView::from(&user)))
}

pub async fn get(State(state): State<AppState>, headers: HeaderMap, path: Segments) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let key = path.key(0, "id")?;
    let user = state.engine.find_user(key.as_str()).await?;
    Ok(json_response(StatusCode::OK, &UserView::from(&user)))
}

/// Partial update. `active: false` revokes every token and session the user holds, exactly as
/// `valet user disable` does. An admin cannot disable themselves here: it would revoke the
/// very token making the call and could leave the org with no admin able to use the API
/// (another admin, or `valet user disable`, still can).
pub async fn update(State(state): State<AppState>, headers: HeaderMap, path: Segments, body: RawBody) -> ApiResult {
    let check = AdminCheck::require(&state, &headers).await?;
    let key = path.key(0, "id")?;
    let body: UpdateBody = body.json(false).await?;
    let profile = ProfilePatch {
        email: body.email.as_deref().map(parse_email).transpose().map_err(|e| ApiError::from(e).with_field("email"))?,
        first_name: body
            .first_name
            .as_deref()
            .map(|n| parse_person_name("first_name", n, 40))
            .transpose()
            .map_err(|e| ApiError::from(e).with_field("first_name"))?,
        last_name: body
            .last_name
            .as_deref()
            .map(|n| parse_person_name("last_name", n, 80))
            .transpose()
            .map_err(|e| ApiError::from(e).with_field("last_name"))?,
    };
    let user = state.engine.find_user(key.as_str()).await?;
    if body.active == Some(false) && user.id == check.admin.id {
        return Err(
            ApiError::conflict("an admin cannot disable their own account through the admin API").with_field("active")
        );
    }
    let mut user = state.engine.update_user_profile(user.id.as_str(), profile).await?;
    if let Some(active) = body.active {
        if active != user.active {
            user = state.engine.set_user_active(user.id.as_str(), active).await?;
        }
    }
    Ok(json_response(StatusCode::OK, &UserView::from(&user)))
}

/// Sets a password; like the CLI, this ends the user's browser sessions.
pub async fn set_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Segments,
    body: RawBody,
) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let key = path.key(0, "id")?;
    let body: PasswordBody = body.json(false).await?;
    state.engine.set_password(key.as_str(), body.password.parse()?).await?;
    Ok(super::no_content())
}

pub async fn list_permission_sets(State(state): State<AppState>, headers: HeaderMap, path: Segments) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let key = path.key(0, "id")?;
    let user = state.engine.find_user(key.as_str()).await?;
    let names = state.engine.user_permission_sets(user.id.as_str()).await?;
    Ok(json_response(StatusCode::OK, &UserPermissionSets::new(&user, names)))
}

/// 200 with the user's sets when the set is assigned, 404 when it is not (or does not exist).
pub async fn get_permission_set(State(state): State<AppState>, headers: HeaderMap, path: Segments) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let (user_key, ps_key) = (path.key(0, "id")?, path.key(1, "name")?);
    let user = state.engine.find_user(user_key.as_str()).await?;
    let ps = super::permission_sets::find(&state, ps_key.as_str()).await?;
    let names = state.engine.user_permission_sets(user.id.as_str()).await?;
    if !names.contains(&ps.name) {
        return Err(ApiError::not_found(format!("permission set {} is not assigned to {}", ps.name, user.username)));
    }
    Ok(json_response(StatusCode::OK, &UserPermissionSets::new(&user, names)))
}

/// Assigns (PUT) or unassigns (DELETE) a permission set; both are idempotent.
pub async fn assign_permission_set(State(state): State<AppState>, headers: HeaderMap, path: Segments) -> ApiResult {
    set_assignment(state, headers, path, true).await
}

pub async fn unassign_permission_set(State(state): State<AppState>, headers: HeaderMap, path: Segments) -> ApiResult {
    set_assignment(state, headers, path, false).await
}

async fn set_assignment(state: AppState, headers: HeaderMap, path: Segments, assign: bool) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let (user_key, ps_key) = (path.key(0, "id")?, path.key(1, "name")?);
    let user = state.engine.find_user(user_key.as_str()).await?;
    let names = state.engine.assign_permission_set(user.id.as_str(), ps_key.as_str(), assign).await?;
    Ok(json_response(StatusCode::OK, &UserPermissionSets::new(&user, names)))
}

fn name_field(field: &str, value: Option<&str>, max: usize) -> Result<String, ApiError> {
    match value {
        Some(v) => parse_person_name(field, v, max).map_err(|e| ApiError::from(e).with_field(field)),
        None => Ok(String::new()),
    }
}
