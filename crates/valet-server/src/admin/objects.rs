//! `/admin/api/v1/objects`: the custom objects and fields of the REST data API. Each handler
//! calls the data-layer function `valet object create|add-field|list` calls, so a definition
//! made here is the same real table or column, visible at `/services/data` on the next request.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use valet_data::schema::{ApiName, FieldType};
use valet_data::{NewField, NewObject};

use super::auth::AdminCheck;
use super::error::ApiError;
use super::extract::{text, RawBody, Segments};
use super::views::{FieldAdded, FieldView, List, ObjectSummaryView, ObjectView};
use super::{json_response, ApiResult};
use crate::AppState;

/// Labels are at most 40 characters (the data layer's rule, Salesforce's too).
const MAX_LABEL: usize = 40;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    label_plural: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldBody {
    name: String,
    #[serde(rename = "type")]
    field_type: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    length: Option<u32>,
    #[serde(default)]
    precision: Option<u32>,
    #[serde(default)]
    scale: Option<u32>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    values: Option<Vec<String>>,
    #[serde(default)]
    reference_to: Option<String>,
}

/// `?all=true` also lists every standard object; without it, custom objects and standard
/// objects that have custom fields (what `valet object list` shows).
pub async fn list(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let all = parse_all(query.as_deref())?;
    let org = state.engine.default_org().await?;
    let objects = state.data.list_objects(&org.id, all).await?;
    Ok(json_response(StatusCode::OK, &List { items: objects.iter().map(ObjectSummaryView::from).collect() }))
}

pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: RawBody) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let body: CreateBody = body.json(false).await?;
    let name = api_name(&body.name)?;
    let label = body.label.as_deref().map(|l| text("label", l, 1, MAX_LABEL)).transpose()?;
    let label_plural = body.label_plural.as_deref().map(|l| text("label_plural", l, 1, MAX_LABEL)).transpose()?;
    let org = state.engine.default_org().await?;
    let obj = state.data.create_object(&org.id, NewObject { name, label, label_plural }).await?;
    Ok(json_response(StatusCode::CREATED, &ObjectView::from(&obj)))
}

/// A custom or standard object by API name (case-insensitive), with every field.
pub async fn get(State(state): State<AppState>, headers: HeaderMap, path: Segments) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let key = path.key(0, "name")?;
    let org = state.engine.default_org().await?;
    let schema = state.data.schema(&org.id).await?;
    let obj =
        schema.object(key.as_str()).ok_or_else(|| ApiError::not_found(format!("object {} not found", key.as_str())))?;
    Ok(json_response(StatusCode::OK, &ObjectView::from(obj)))
}

/// Adds a custom field (`ALTER TABLE ... ADD COLUMN`) to a custom or standard object.
pub async fn add_field(State(state): State<AppState>, headers: HeaderMap, path: Segments, body: RawBody) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let key = path.key(0, "name")?;
    let body: FieldBody = body.json(false).await?;
    let name = api_name(&body.name)?;
    if FieldType::parse_custom(body.field_type.trim()).is_none() {
        return Err(ApiError::unprocessable("type must be one of text, textarea, number, currency, percent, checkbox, date, datetime, email, phone, url, picklist, lookup").with_field("type"));
    }
    let label = body.label.as_deref().map(|l| text("label", l, 1, MAX_LABEL)).transpose()?;
    let values = body
        .values
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, v)| text(&format!("values[{i}]"), v, 1, 255))
        .collect::<Result<Vec<_>, _>>()?;
    let reference_to = body.reference_to.as_deref().map(|r| text("reference_to", r, 1, 255)).transpose()?;
    let org = state.engine.default_org().await?;
    let new = NewField {
        object: key.as_str().to_string(),
        name,
        label,
        field_type: body.field_type.trim().to_string(),
        length: body.length,
        precision: body.precision,
        scale: body.scale,
        required: body.required,
        picklist_values: values,
        reference_to,
    };
    let field = state.data.add_field(&org.id, new).await?;
    // The object's own spelling of its name (the path may be in any case).
    let object = state
        .data
        .schema(&org.id)
        .await?
        .object(key.as_str())
        .map(|o| o.name.clone())
        .unwrap_or_else(|| key.as_str().to_string());
    Ok(json_response(StatusCode::CREATED, &FieldAdded { object, field: FieldView::from(&field) }))
}

/// A custom API name, checked with the data layer's own rule so the error can name the field.
fn api_name(s: &str) -> Result<String, ApiError> {
    let s = text("name", s, 1, 255)?;
    ApiName::parse_custom(&s)
        .map_err(|e| ApiError::unprocessable(e.chars().take(300).collect::<String>()).with_field("name"))?;
    Ok(s)
}

/// The list's query: `all=true|false`, nothing else.
fn parse_all(query: Option<&str>) -> Result<bool, ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|_| ApiError::bad_request("the query string is malformed"))?;
    let mut all = false;
    for (k, v) in pairs {
        match (k.as_str(), v.as_str()) {
            ("all", "true") => all = true,
            ("all", "false") => all = false,
            ("all", _) => return Err(ApiError::bad_request("all must be true or false").with_field("all")),
            _ => {
                return Err(ApiError::bad_request(format!(
                    "unknown query parameter {:?}",
                    k.chars().take(64).collect::<String>()
                ))
                .with_field(k.chars().take(64).collect::<String>()))
            }
        }
    }
    Ok(all)
}
