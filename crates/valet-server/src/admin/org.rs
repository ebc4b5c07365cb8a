//! `/admin/api/v1/org/settings`: the org-wide OAuth settings. PUT replaces them (absent fields
//! take their defaults), PATCH merges a partial object into the current ones.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use valet_core::model::OrgSettings;

use super::auth::AdminCheck;
use super::error::ApiError;
use super::extract::{from_value, merge, RawBody};
use super::{json_response, ApiResult};
use crate::AppState;

pub async fn get(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let org = state.engine.default_org().await?;
    Ok(json_response(StatusCode::OK, &org.settings))
}

pub async fn put(State(state): State<AppState>, headers: HeaderMap, body: RawBody) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let value = object(body.value(false).await?)?;
    let settings: OrgSettings = from_value(value, "")?;
    let org = state.engine.set_org_settings(settings).await?;
    Ok(json_response(StatusCode::OK, &org.settings))
}

pub async fn patch(State(state): State<AppState>, headers: HeaderMap, body: RawBody) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let patch = object(body.value(false).await?)?;
    let org = state.engine.default_org().await?;
    let mut value = serde_json::to_value(&org.settings).map_err(|e| ApiError::fault(&e))?;
    merge(&mut value, patch);
    let settings: OrgSettings = from_value(value, "")?;
    let org = state.engine.set_org_settings(settings).await?;
    Ok(json_response(StatusCode::OK, &org.settings))
}

/// Settings are a JSON object; anything else (an array, a number) is refused before merging,
/// where it would otherwise replace the whole value.
fn object(v: serde_json::Value) -> Result<serde_json::Value, ApiError> {
    if v.is_object() {
        Ok(v)
    } else {
        Err(ApiError::bad_request("expected a JSON object"))
    }
}
