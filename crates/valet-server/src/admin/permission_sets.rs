//! `/admin/api/v1/permission-sets`: the named sets that pre-authorize users for admin-approved
//! apps.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use valet_core::model::PermissionSet;

use super::auth::AdminCheck;
use super::error::ApiError;
use super::extract::{text, RawBody, Segments};
use super::views::{List, PermissionSetView};
use super::{json_response, ApiResult};
use crate::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    label: Option<String>,
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let sets = state.engine.list_permission_sets().await?;
    Ok(json_response(StatusCode::OK, &List { items: sets.iter().map(PermissionSetView::from).collect() }))
}

pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: RawBody) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let body: CreateBody = body.json(false).await?;
    // The engine checks the name's shape (letters, digits, underscores); the label is free text.
    let label = body.label.as_deref().map(|l| text("label", l, 1, 255)).transpose()?;
    let name = text("name", &body.name, 1, 255)?;
    let ps = state.engine.create_permission_set(&name, label.as_deref()).await?;
    Ok(json_response(StatusCode::CREATED, &PermissionSetView::from(&ps)))
}

pub async fn get(State(state): State<AppState>, headers: HeaderMap, path: Segments) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let key = path.key(0, "name")?;
    let ps = find(&state, key.as_str()).await?;
    Ok(json_response(StatusCode::OK, &PermissionSetView::from(&ps)))
}

/// Deleting a set also removes its assignments.
pub async fn delete(State(state): State<AppState>, headers: HeaderMap, path: Segments) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let key = path.key(0, "name")?;
    state.engine.delete_permission_set(key.as_str()).await?;
    Ok(super::no_content())
}

/// A permission set by name or id (the engine's own lookup is private to it).
pub async fn find(state: &AppState, key: &str) -> Result<PermissionSet, ApiError> {
    state
        .engine
        .list_permission_sets()
        .await?
        .into_iter()
        .find(|p| p.name == key || p.id.as_str() == key)
        .ok_or_else(|| ApiError::not_found(format!("permission set {key} not found")))
}
