//! `/admin/api/v1/custom-permissions`: the org's custom permissions, and
//! `/admin/api/v1/permission-sets/{name}/custom-permissions`: which ones a permission set grants.
//! Apps list the ones they use in their policy's `custom_permissions`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Deserializer};

use super::auth::AdminCheck;
use super::error::ApiError;
use super::extract::{text, RawBody, Segments};
use super::views::{CustomPermissionView, List, PermissionSetCustomPermissions};
use super::{json_response, ApiResult};
use crate::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    label: Option<String>,
    /// Absent: unchanged; null or "": removed.
    #[serde(default, deserialize_with = "present")]
    description: Option<Option<String>>,
}

/// Tells a present `null` (Some(None)) from an absent key (None, the default).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let all = state.engine.list_custom_permissions().await?;
    Ok(json_response(StatusCode::OK, &List { items: all.iter().map(CustomPermissionView::from).collect() }))
}

pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: RawBody) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let body: CreateBody = body.json(false).await?;
    // The engine checks the name's shape and the label's and description's lengths; here only
    // what either database could not store as it is.
    let name = text("name", &body.name, 1, 255)?;
    let label = body.label.as_deref().map(|l| text("label", l, 1, 255)).transpose()?;
    let description = body.description.as_deref().map(|d| text("description", d, 0, 1000)).transpose()?;
    let cp = state.engine.create_custom_permission(&name, label.as_deref(), description.as_deref()).await?;
    Ok(json_response(StatusCode::CREATED, &CustomPermissionView::from(&cp)))
}

pub async fn get(State(state): State<AppState>, headers: HeaderMap, path: Segments) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let key = path.key(0, "name")?;
    let cp = state.engine.find_custom_permission(key.as_str()).await?;
    Ok(json_response(StatusCode::OK, &CustomPermissionView::from(&cp)))
}

pub async fn update(State(state): State<AppState>, headers: HeaderMap, path: Segments, body: RawBody) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let key = path.key(0, "name")?;
    let body: UpdateBody = body.json(false).await?;
    let label = body.label.as_deref().map(|l| text("label", l, 1, 255)).transpose()?;
    let description = match body.description {
        None => None,
        Some(d) => Some(text("description", d.as_deref().unwrap_or(""), 0, 1000)?),
    };
    let cp = state.engine.update_custom_permission(key.as_str(), label.as_deref(), description.as_deref()).await?;
    Ok(json_response(StatusCode::OK, &CustomPermissionView::from(&cp)))
}

/// Deleting a permission also removes its grants and its place in every app's list.
pub async fn delete(State(state): State<AppState>, headers: HeaderMap, path: Segments) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let key = path.key(0, "name")?;
    state.engine.delete_custom_permission(key.as_str()).await?;
    Ok(super::no_content())
}

pub async fn list_granted(State(state): State<AppState>, headers: HeaderMap, path: Segments) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let ps = super::permission_sets::find(&state, path.key(0, "name")?.as_str()).await?;
    let names = state.engine.permission_set_custom_permissions(ps.id.as_str()).await?;
    Ok(json_response(
        StatusCode::OK,
        &PermissionSetCustomPermissions { permission_set: ps.name, custom_permissions: names },
    ))
}

/// 200 with the set's grants when it grants the permission, 404 when not (or either is unknown).
pub async fn get_granted(State(state): State<AppState>, headers: HeaderMap, path: Segments) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let (ps_key, cp_key) = (path.key(0, "name")?, path.key(1, "permission")?);
    let ps = super::permission_sets::find(&state, ps_key.as_str()).await?;
    let cp = state.engine.find_custom_permission(cp_key.as_str()).await?;
    let names = state.engine.permission_set_custom_permissions(ps.id.as_str()).await?;
    if !names.contains(&cp.name) {
        return Err(ApiError::not_found(format!("permission set {} does not grant {}", ps.name, cp.name)));
    }
    Ok(json_response(
        StatusCode::OK,
        &PermissionSetCustomPermissions { permission_set: ps.name, custom_permissions: names },
    ))
}

/// Grants (PUT) or revokes (DELETE) a custom permission through a permission set; both are
/// idempotent and apply to the holders' next tokens.
pub async fn grant(State(state): State<AppState>, headers: HeaderMap, path: Segments) -> ApiResult {
    set_grant(state, headers, path, true).await
}

pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, path: Segments) -> ApiResult {
    set_grant(state, headers, path, false).await
}

async fn set_grant(state: AppState, headers: HeaderMap, path: Segments, grant: bool) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let (ps_key, cp_key) = (path.key(0, "name")?, path.key(1, "permission")?);
    let ps = super::permission_sets::find(&state, ps_key.as_str()).await?;
    let names = state.engine.grant_custom_permission(ps.id.as_str(), cp_key.as_str(), grant).await?;
    Ok(json_response(
        StatusCode::OK,
        &PermissionSetCustomPermissions { permission_set: ps.name, custom_permissions: names },
    ))
}
