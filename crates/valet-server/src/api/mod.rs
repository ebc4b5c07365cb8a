//! The Salesforce-compatible REST data API under `/services/data` (salesforce-wire.md §9).
//!
//! One dispatcher owns the whole subtree so that every path behaves the same with or without a
//! trailing slash (simple-salesforce adds them), unknown paths and methods get Salesforce's JSON
//! errors rather than the generic 404 page, and the token check ([`auth::authenticate`]) runs
//! in one place before any resource. Handlers are thin: parse, call `valet_data`, render.

pub mod auth;
pub mod error;
pub mod resources;
pub mod sobjects;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde::Serialize;

use crate::AppState;
use error::ApiError;
use valet_core::engine::bearer::ResourceUse;

/// Request bodies (records) larger than this are refused before parsing.
pub const MAX_BODY: usize = 256 * 1024;
/// The oldest version served (Winter '11 is v20.0; clients use 50.0 and up).
pub const OLDEST_VERSION: u32 = 20;

pub type ApiResult = Result<Response, ApiError>;

/// The routes, merged into the application router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/services/data", any(dispatch))
        .route("/services/data/", any(dispatch))
        .route("/services/data/{*rest}", any(dispatch))
}

/// An API version from the path: `vNN.0` with NN between [`OLDEST_VERSION`] and the latest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(String);

impl Version {
    pub fn parse(seg: &str) -> Option<Version> {
        let n = seg.strip_prefix('v')?.strip_suffix(".0")?;
        if n.len() != 2 || !n.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let n: u32 = n.parse().ok()?;
        (OLDEST_VERSION..=latest()).contains(&n).then(|| Version(format!("{n}.0")))
    }

    /// `62.0`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The newest version's major number.
pub fn latest() -> u32 {
    valet_core::API_VERSION_LATEST.trim_end_matches(".0").parse().unwrap_or(62)
}

/// JSON with Salesforce's content type; pretty-printed when the client sends `X-PrettyPrint`.
pub fn json_response<T: Serialize>(status: StatusCode, headers: &HeaderMap, v: &T) -> Response {
    let pretty = headers.contains_key("x-prettyprint");
    // Records are JSON text already (`RecordJson`): pretty output reads them back as values so
    // that they are indented too.
    let body = if pretty {
        serde_json::to_value(v).and_then(|v| serde_json::to_string_pretty(&v))
    } else {
        serde_json::to_string(v)
    };
    match body {
        Ok(b) => crate::http::body_response(status, crate::http::JSON_UTF8, b),
        Err(e) => ApiError::from(valet_data::DataError::internal(e)).into_response(),
    }
}

/// One record, already JSON text: its bytes become the body as they are (pretty-printed
/// through [`json_response`] when asked).
pub fn record_response(headers: &HeaderMap, rec: valet_data::record_json::RecordJson) -> Response {
    if headers.contains_key("x-prettyprint") {
        return json_response(StatusCode::OK, headers, &rec);
    }
    crate::http::body_response(StatusCode::OK, crate::http::JSON_UTF8, String::from(Box::<str>::from(rec)))
}

pub fn no_content() -> Response {
    (StatusCode::NO_CONTENT, Body::empty()).into_response()
}

fn method_not_allowed(method: &Method, allowed: &'static str) -> ApiError {
    ApiError::new(405, "METHOD_NOT_ALLOWED", format!("Method '{method}' not allowed. Allowed are {allowed}"))
        .allow(allowed)
}

/// Routes one request under `/services/data`.
pub async fn dispatch(State(state): State<AppState>, req: Request) -> Response {
    match route(state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn route(state: AppState, req: Request) -> ApiResult {
    let path = req.uri().path().to_string();
    let rest = path.strip_prefix("/services/data").unwrap_or("");
    let segs: Vec<&str> =
        rest.trim_start_matches('/').trim_end_matches('/').split('/').filter(|s| !s.is_empty()).collect();
    // `//` inside the path is not a resource.
    if rest.trim_matches('/').contains("//") {
        return Err(ApiError::not_found());
    }
    let method = req.method().clone();
    let is_get = method == Method::GET || method == Method::HEAD;
    if segs.is_empty() {
        // The versions list needs no authentication (salesforce-wire.md §9.1).
        return if is_get {
            Ok(resources::versions(req.headers()))
        } else {
            Err(method_not_allowed(&method, "GET,HEAD"))
        };
    }
    let need = if segs.get(1) == Some(&"chatter") { ResourceUse::Chatter } else { ResourceUse::Api };
    let authed = auth::authenticate(&state, req.headers(), crate::http::client_ip(&state.engine, &req), need).await?;
    let version = Version::parse(segs[0]).ok_or_else(ApiError::not_found)?;
    match segs.as_slice() {
        [_] => get_only(&method, "GET,HEAD")?
            .then(|| resources::resources(&state, &authed, &version, req.headers()))
            .ok_or_else(ApiError::not_found),
        [_, "limits"] => {
            get_only(&method, "GET,HEAD")?;
            Ok(resources::limits(req.headers()))
        }
        [_, "chatter", "users", "me"] => {
            get_only(&method, "GET,HEAD")?;
            resources::chatter_me(&state, &authed, &version, req.headers()).await
        }
        [_, "query"] | [_, "queryAll"] => {
            get_only(&method, "GET,HEAD")?;
            sobjects::query(&state, &authed, &version, segs[1] == "queryAll", req).await
        }
        [_, "query", locator] | [_, "queryAll", locator] => {
            get_only(&method, "GET,HEAD")?;
            let locator = locator.to_string();
            sobjects::query_more(&state, &authed, &version, &locator, req).await
        }
        [_, "sobjects"] => {
            get_only(&method, "GET,HEAD")?;
            sobjects::describe_global(&state, &authed, &version, req.headers()).await
        }
        [_, "sobjects", object] => {
            let object = object.to_string();
            match method {
                Method::GET | Method::HEAD => {
                    sobjects::basic_info(&state, &authed, &version, &object, req.headers()).await
                }
                Method::POST => sobjects::create(&state, &authed, &version, &object, req).await,
                _ => Err(method_not_allowed(&method, "GET,HEAD,POST")),
            }
        }
        [_, "sobjects", object, "describe"] => {
            get_only(&method, "GET,HEAD")?;
            let object = object.to_string();
            sobjects::describe(&state, &authed, &version, &object, req.headers()).await
        }
        [_, "sobjects", object, id] => {
            let (object, id) = (object.to_string(), id.to_string());
            match method {
                Method::GET | Method::HEAD => sobjects::retrieve(&state, &authed, &version, &object, &id, req).await,
                Method::PATCH => sobjects::update(&state, &authed, &object, &id, req).await,
                Method::DELETE => sobjects::delete(&state, &authed, &object, &id).await,
                _ => Err(method_not_allowed(&method, "GET,HEAD,PATCH,DELETE")),
            }
        }
        _ => Err(ApiError::not_found()),
    }
}

/// `Ok(true)` for GET/HEAD, else a 405 naming what is allowed.
fn get_only(method: &Method, allowed: &'static str) -> Result<bool, ApiError> {
    if method == Method::GET || method == Method::HEAD {
        Ok(true)
    } else {
        Err(method_not_allowed(method, allowed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(Version::parse("v62.0").map(|v| v.0), Some("62.0".into()));
        assert_eq!(Version::parse("v50.0").map(|v| v.0), Some("50.0".into()));
        for bad in ["v63.0", "v19.0", "62.0", "v62", "v62.1", "v.0", "v+5.0", "v062.0", "vx.0"] {
            assert!(Version::parse(bad).is_none(), "{bad}");
        }
    }
}
