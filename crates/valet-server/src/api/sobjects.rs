//! `/sobjects` (describe and records) and `/query`.

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use valet_data::query::batch_size_from_header;
use valet_data::DataError;

use super::auth::Authed;
use super::error::ApiError;
use super::{json_response, no_content, record_response, ApiResult, Version, MAX_BODY};
use crate::AppState;

/// The query string as pairs (`+` and `%20` both decode to a space).
fn query_pairs(req: &Request) -> Result<Vec<(String, String)>, ApiError> {
    let q = req.uri().query().unwrap_or("");
    serde_urlencoded::from_str::<Vec<(String, String)>>(q)
        .map_err(|_| ApiError::new(400, "MALFORMED_QUERY", "The query string could not be decoded"))
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Reads and parses a JSON body, at most [`MAX_BODY`] bytes.
async fn json_body(req: Request) -> Result<Value, ApiError> {
    let bytes = to_bytes(req.into_body(), MAX_BODY).await.map_err(|_| {
        ApiError::new(
            413,
            "REQUEST_ENTITY_TOO_LARGE",
            format!("The request body exceeds the maximum of {MAX_BODY} bytes"),
        )
    })?;
    serde_json::from_slice(&bytes).map_err(|e| ApiError::from(DataError::json_parse(json_error_message(&e))))
}

/// Salesforce-like parser messages: what went wrong and where.
fn json_error_message(e: &serde_json::Error) -> String {
    let what = match e.classify() {
        serde_json::error::Category::Eof => "Unexpected end-of-input".to_string(),
        _ => {
            let s = e.to_string();
            s.split(" at line").next().unwrap_or("Invalid JSON").to_string()
        }
    };
    format!("{what} at [line:{}, column:{}]", e.line(), e.column())
}

fn batch(headers: &HeaderMap) -> Option<u32> {
    batch_size_from_header(headers.get("sforce-query-options").and_then(|v| v.to_str().ok()))
}

pub async fn describe_global(state: &AppState, a: &Authed, v: &Version, headers: &HeaderMap) -> ApiResult {
    let body = state.data.describe_global(&a.caller, v.as_str()).await?;
    Ok(json_response(StatusCode::OK, headers, &body))
}

pub async fn describe(state: &AppState, a: &Authed, v: &Version, object: &str, headers: &HeaderMap) -> ApiResult {
    let body = state.data.describe(&a.caller, object, v.as_str()).await?;
    Ok(json_response(StatusCode::OK, headers, &body))
}

pub async fn basic_info(state: &AppState, a: &Authed, v: &Version, object: &str, headers: &HeaderMap) -> ApiResult {
    let body = state.data.basic_info(&a.caller, object, v.as_str()).await?;
    Ok(json_response(StatusCode::OK, headers, &body))
}

/// `POST /sobjects/<Type>` → 201 `{id, success, errors}`.
pub async fn create(state: &AppState, a: &Authed, _v: &Version, object: &str, req: Request) -> ApiResult {
    let headers = req.headers().clone();
    let body = json_body(req).await?;
    let id = state.data.create(&a.caller, object, &body).await?;
    Ok(json_response(StatusCode::CREATED, &headers, &json!({"id": id.as_str(), "success": true, "errors": []})))
}

pub async fn retrieve(state: &AppState, a: &Authed, v: &Version, object: &str, id: &str, req: Request) -> ApiResult {
    let pairs = query_pairs(&req)?;
    let rec = state.data.retrieve(&a.caller, object, id, param(&pairs, "fields"), v.as_str()).await?;
    Ok(record_response(req.headers(), rec))
}

/// `PATCH` → 204.
pub async fn update(state: &AppState, a: &Authed, object: &str, id: &str, req: Request) -> ApiResult {
    let body = json_body(req).await?;
    state.data.update(&a.caller, object, id, &body).await?;
    Ok(no_content())
}

/// `DELETE` → 204.
pub async fn delete(state: &AppState, a: &Authed, object: &str, id: &str) -> ApiResult {
    state.data.delete(&a.caller, object, id).await?;
    Ok(no_content())
}

/// `GET /query?q=` and `/queryAll?q=`.
pub async fn query(state: &AppState, a: &Authed, v: &Version, all: bool, req: Request) -> ApiResult {
    let pairs = query_pairs(&req)?;
    let q = param(&pairs, "q")
        .filter(|q| !q.trim().is_empty())
        .ok_or_else(|| ApiError::new(400, "MALFORMED_QUERY", "A query string has to be specified"))?;
    let page = state.data.query(&a.caller, q, all, batch(req.headers()), v.as_str()).await?;
    Ok(json_response(StatusCode::OK, req.headers(), &page.body(v.as_str())))
}

/// `GET /query/<locator>-<offset>`: the next batch (jsforce requests it under its own version).
pub async fn query_more(state: &AppState, a: &Authed, v: &Version, locator: &str, req: Request) -> ApiResult {
    let page = state.data.query_more(&a.caller, locator, batch(req.headers()), v.as_str()).await?;
    Ok(json_response(StatusCode::OK, req.headers(), &page.body(v.as_str())))
}
