//! `/admin/api/v1/apps`: the app registry. Each handler checks admin access, parses its
//! request into the engine's types, calls the engine function the CLI calls too, and renders.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Map, Value};
use valet_core::engine::admin::{NewApp, PLATFORM_CLI};
use valet_core::engine::admin_token::ADMIN_APP_KEY;
use valet_core::model::{AppPolicy, RefreshTokenPolicy};
use valet_core::scope::{ScopeSet, KNOWN_SCOPES};
use valet_core::store::AppPatch;

use super::auth::AdminCheck;
use super::error::ApiError;
use super::extract::{from_value, merge, text, RawBody, Segments};
use super::views::{AppCreated, AppView, List, RegistrationTokenCreated, SecretRotated, SecretsRetired};
use super::{json_response, ApiResult};
use crate::AppState;

/// The CLI's default scopes for a new app, so both create the same app from the same input.
const DEFAULT_SCOPES: &str = "api refresh_token openid";
/// The engine turns policy minutes into milliseconds with plain arithmetic; ten years is far
/// beyond any real lifetime and keeps every such product inside an `i64`.
const MAX_POLICY_MINUTES: u64 = 60 * 24 * 366 * 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    callback_urls: Vec<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    is_public: bool,
    #[serde(default)]
    policy: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    callback_urls: Option<Vec<String>>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    policy: Option<Map<String, Value>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RotateBody {
    retire_old: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct RegistrationTokenBody {
    valid_minutes: Option<i64>,
}

pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let org = state.engine.default_org().await?;
    let apps = state.engine.store().list_apps(&org.id).await.map_err(|e| ApiError::fault(&e))?;
    Ok(json_response(StatusCode::OK, &List { items: apps.iter().map(AppView::from).collect() }))
}

pub async fn create(State(state): State<AppState>, headers: HeaderMap, body: RawBody) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let body: CreateBody = body.json(false).await?;
    let mut base = AppPolicy::default();
    if body.is_public {
        // A public client has no secret to present; the CLI's `--public` does the same.
        base.require_secret_for_web_server_flow = false;
        base.require_secret_for_refresh_token_flow = false;
    }
    let new = NewApp {
        name: text("name", &body.name, 1, 255)?,
        callback_urls: body.callback_urls,
        scopes: parse_scopes(body.scopes.as_deref(), DEFAULT_SCOPES)?,
        is_public: body.is_public,
        policy: patched_policy(&base, body.policy)?,
        consumer_key: None,
    };
    let org = state.engine.default_org().await?;
    let created = state.engine.create_app(&org.id, new).await?;
    Ok(json_response(StatusCode::CREATED, &AppCreated::new(&created.app, created.consumer_secret.as_ref())))
}

pub async fn get(State(state): State<AppState>, headers: HeaderMap, path: Segments) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let key = path.key(0, "id")?;
    let app = state.engine.find_app(key.as_str()).await?;
    Ok(json_response(StatusCode::OK, &AppView::from(&app)))
}

/// Partial update: absent fields stay; `policy` is merged into the current policy.
pub async fn update(State(state): State<AppState>, headers: HeaderMap, path: Segments, body: RawBody) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let key = path.key(0, "id")?;
    let body: UpdateBody = body.json(false).await?;
    let name = body.name.as_deref().map(|n| text("name", n, 1, 255)).transpose()?;
    let scopes = match &body.scopes {
        Some(s) => Some(parse_scopes(Some(s), DEFAULT_SCOPES)?),
        None => None,
    };
    let app = state.engine.find_app(key.as_str()).await?;
    let policy = match body.policy {
        Some(p) => Some(patched_policy(&app.policy, Some(p))?),
        None => None,
    };
    let patch = AppPatch { name, callback_urls: body.callback_urls, scopes, policy, is_public: None };
    let updated = state.engine.update_app(app.id.as_str(), patch).await?;
    Ok(json_response(StatusCode::OK, &AppView::from(&updated)))
}

pub async fn delete(State(state): State<AppState>, headers: HeaderMap, path: Segments) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let key = path.key(0, "id")?;
    let app = state.engine.find_app(key.as_str()).await?;
    // Deleting the admin app revokes every admin token, including the caller's: the API
    // refuses that foot-gun; `valet app delete ValetAdmin` still can.
    if app.consumer_key == ADMIN_APP_KEY {
        return Err(ApiError::conflict("the built-in admin app cannot be deleted through the admin API"));
    }
    state.engine.delete_app(app.id.as_str()).await?;
    Ok(super::no_content())
}

pub async fn rotate_secret(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Segments,
    body: RawBody,
) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let key = path.key(0, "id")?;
    let body: RotateBody = body.json(true).await?;
    let (app, secret) = state.engine.rotate_secret(key.as_str(), body.retire_old).await?;
    Ok(json_response(
        StatusCode::OK,
        &SecretRotated {
            app_id: app.id.to_string(),
            consumer_key: app.consumer_key.clone(),
            consumer_secret: secret.expose().to_string(),
            retired_old: body.retire_old,
        },
    ))
}

pub async fn retire_old_secrets(State(state): State<AppState>, headers: HeaderMap, path: Segments) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let key = path.key(0, "id")?;
    let app = state.engine.find_app(key.as_str()).await?;
    let retired = state.engine.retire_old_secrets(app.id.as_str()).await?;
    Ok(json_response(StatusCode::OK, &SecretsRetired { app_id: app.id.to_string(), retired }))
}

/// Starts a staged consumer-key rotation: a new key identifies the app, the old one stays
/// accepted (as `previous_consumer_key`) until retire-old-key.
pub async fn rotate_key(State(state): State<AppState>, headers: HeaderMap, path: Segments) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let key = path.key(0, "id")?;
    let app = state.engine.find_app(key.as_str()).await?;
    // The built-in keys are what their clients are configured with; the engine refuses
    // PlatformCLI itself, and rotating ValetAdmin would orphan the admin token machinery.
    if [app.consumer_key.as_str(), app.previous_consumer_key.as_deref().unwrap_or("")]
        .iter()
        .any(|k| *k == ADMIN_APP_KEY || *k == PLATFORM_CLI)
    {
        return Err(ApiError::conflict("the built-in apps keep their consumer keys"));
    }
    if app.previous_consumer_key.is_some() {
        return Err(ApiError::conflict("a key rotation is already staged; retire the previous key first"));
    }
    let app = state.engine.rotate_consumer_key(app.id.as_str()).await?;
    Ok(json_response(StatusCode::OK, &AppView::from(&app)))
}

/// Ends a staged key rotation: only the current key identifies the app. Idempotent.
pub async fn retire_old_key(State(state): State<AppState>, headers: HeaderMap, path: Segments) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let key = path.key(0, "id")?;
    let app = state.engine.find_app(key.as_str()).await?;
    let app = state.engine.retire_previous_consumer_key(app.id.as_str()).await?;
    Ok(json_response(StatusCode::OK, &AppView::from(&app)))
}

/// Issues an initial access token for dynamic client registration (RFC 7591) to a registrar
/// app; the token is returned once and stored only as a hash.
pub async fn create_registration_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    path: Segments,
    body: RawBody,
) -> ApiResult {
    AdminCheck::require(&state, &headers).await?;
    let key = path.key(0, "id")?;
    let body: RegistrationTokenBody = body.json(true).await?;
    if let Some(m) = body.valid_minutes {
        if !(1..=MAX_POLICY_MINUTES as i64).contains(&m) {
            return Err(ApiError::unprocessable(format!("valid_minutes must be 1 to {MAX_POLICY_MINUTES}"))
                .with_field("valid_minutes"));
        }
    }
    let app = state.engine.find_app(key.as_str()).await?;
    let token = state.engine.create_initial_access_token(app.id.as_str(), body.valid_minutes).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &RegistrationTokenCreated {
            registrar_id: app.id.to_string(),
            registrar_consumer_key: app.consumer_key.clone(),
            initial_access_token: token.expose().to_string(),
            valid_minutes: body.valid_minutes,
        },
    ))
}

/// Scopes as a JSON array of known scope names; each bad entry is named by its index.
fn parse_scopes(scopes: Option<&[String]>, default: &str) -> Result<ScopeSet, ApiError> {
    let Some(scopes) = scopes else { return Ok(ScopeSet::from_stored(default)) };
    let mut set = ScopeSet::empty();
    for (i, s) in scopes.iter().enumerate() {
        if !KNOWN_SCOPES.iter().any(|(k, _)| *k == s) {
            return Err(ApiError::bad_request(format!("unknown scope {:?}", s.chars().take(64).collect::<String>()))
                .with_field(format!("scopes[{i}]")));
        }
        set.insert(s);
    }
    Ok(set)
}

/// `patch` (a partial policy object) merged into `base`; unknown keys and wrong types are 400s
/// naming the key, out-of-range minutes a 422.
fn patched_policy(base: &AppPolicy, patch: Option<Map<String, Value>>) -> Result<AppPolicy, ApiError> {
    let Some(patch) = patch else { return Ok(base.clone()) };
    let mut value = serde_json::to_value(base).map_err(|e| ApiError::fault(&e))?;
    merge(&mut value, Value::Object(patch));
    let policy: AppPolicy = from_value(value, "policy")?;
    match policy.refresh_token_policy {
        RefreshTokenPolicy::ExpireAfter { minutes } | RefreshTokenPolicy::ExpireIfUnused { minutes }
            if minutes > MAX_POLICY_MINUTES =>
        {
            Err(ApiError::unprocessable(format!("refresh token minutes must be at most {MAX_POLICY_MINUTES}"))
                .with_field("policy.refresh_token_policy.minutes"))
        }
        _ => Ok(policy),
    }
}
