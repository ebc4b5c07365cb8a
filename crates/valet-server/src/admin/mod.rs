//! The admin JSON API under `/admin/api/v1`: apps, users, permission sets, custom permissions,
//! org settings and the
//! data API's custom objects, authenticated by an admin token, described by the OpenAPI
//! document at `/admin/api/openapi.json`. Handlers call the same engine (and data-layer)
//! functions as the `valet` CLI, so the two can never disagree about what a change means.
//!
//! Every handler begins with `AdminCheck::require` (see `auth`), then parses its path and body
//! (see `extract`), then calls the engine. Every failure is an `ApiError` (see `error`).

pub mod apps;
pub mod auth;
pub mod custom_permissions;
pub mod error;
pub mod extract;
pub mod objects;
pub mod openapi;
pub mod org;
pub mod permission_sets;
pub mod users;
pub mod views;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::AppState;
use error::ApiError;

/// What every admin handler returns.
pub type ApiResult = Result<Response, ApiError>;

/// The API's routes, to be merged into the application router.
pub fn router() -> Router<AppState> {
    const V1: &str = "/admin/api/v1";
    let r = |p: &str| format!("{V1}{p}");
    Router::new()
        .route("/admin/api/openapi.json", get(openapi::serve))
        .route(&r("/apps"), get(apps::list).post(apps::create))
        .route(&r("/apps/{id}"), get(apps::get).patch(apps::update).delete(apps::delete))
        .route(&r("/apps/{id}/rotate-secret"), post(apps::rotate_secret))
        .route(&r("/apps/{id}/retire-old-secrets"), post(apps::retire_old_secrets))
        .route(&r("/apps/{id}/rotate-key"), post(apps::rotate_key))
        .route(&r("/apps/{id}/retire-old-key"), post(apps::retire_old_key))
        .route(&r("/apps/{id}/registration-tokens"), post(apps::create_registration_token))
        .route(&r("/users"), get(users::list).post(users::create))
        .route(&r("/users/{id}"), get(users::get).patch(users::update))
        .route(&r("/users/{id}/password"), post(users::set_password))
        .route(&r("/users/{id}/permission-sets"), get(users::list_permission_sets))
        .route(
            &r("/users/{id}/permission-sets/{name}"),
            get(users::get_permission_set).put(users::assign_permission_set).delete(users::unassign_permission_set),
        )
        .route(&r("/permission-sets"), get(permission_sets::list).post(permission_sets::create))
        .route(&r("/permission-sets/{name}"), get(permission_sets::get).delete(permission_sets::delete))
        .route(&r("/permission-sets/{name}/custom-permissions"), get(custom_permissions::list_granted))
        .route(
            &r("/permission-sets/{name}/custom-permissions/{permission}"),
            get(custom_permissions::get_granted).put(custom_permissions::grant).delete(custom_permissions::revoke),
        )
        .route(&r("/custom-permissions"), get(custom_permissions::list).post(custom_permissions::create))
        .route(
            &r("/custom-permissions/{name}"),
            get(custom_permissions::get).patch(custom_permissions::update).delete(custom_permissions::delete),
        )
        .route(&r("/objects"), get(objects::list).post(objects::create))
        .route(&r("/objects/{name}"), get(objects::get))
        .route(&r("/objects/{name}/fields"), post(objects::add_field))
        .route(&r("/org/settings"), get(org::get).put(org::put).patch(org::patch))
        .layer(axum::middleware::map_response(no_store))
}

/// Admin answers describe credentials and configuration: no cache may keep them.
async fn no_store(mut r: Response) -> Response {
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// A JSON answer. Serializing these plain structs cannot fail; if it ever did, it is a fault.
pub fn json_response<T: serde::Serialize>(status: StatusCode, v: &T) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => (status, [(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "admin API response did not serialize");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "application/json")],
                r#"{"error":"internal_error","message":"internal error"}"#,
            )
                .into_response()
        }
    }
}

pub fn no_content() -> Response {
    (StatusCode::NO_CONTENT, Body::empty()).into_response()
}
