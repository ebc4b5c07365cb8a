//! `/setup/connect`: where a person enters the code their device shows (Salesforce's device
//! flow page), then approves or denies. Entering codes is throttled per user and address.

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use valet_core::engine::device::{DeviceDecision, DeviceEntry};
use valet_proto::Params;

use super::pages::{csrf_failure, csrf_ok, csrf_token, render, session_of};
use super::templates::{DeviceConsentPage, DevicePage, ScopeLine};
use crate::http;
use crate::AppState;

fn to_login(continue_to: &str) -> Response {
    let target =
        format!("/login?continue={}", url::form_urlencoded::byte_serialize(continue_to.as_bytes()).collect::<String>());
    (StatusCode::FOUND, [(header::LOCATION, target)]).into_response()
}

fn page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    user_code: &str,
    error: Option<String>,
    notice: Option<String>,
) -> Response {
    let (csrf, cookie) = csrf_token(state, headers);
    let mut r = render(status, &DevicePage { csrf, user_code: user_code.to_string(), error, notice });
    if let Some(c) = cookie {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

pub async fn form(
    State(state): State<AppState>,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let code = q
        .iter()
        .find(|(k, _)| k == "user_code")
        .map(|(_, v)| v.chars().take(16).collect::<String>())
        .unwrap_or_default();
    match session_of(&state, &headers).await {
        Ok(Some(_)) => page(&state, &headers, StatusCode::OK, &code, None, None),
        Ok(None) => {
            let back = if code.is_empty() {
                "/setup/connect".to_string()
            } else {
                format!("/setup/connect?user_code={}", valet_core::engine::device::normalize_user_code(&code))
            };
            to_login(&back)
        }
        Err(r) => r,
    }
}

/// 429 with `Retry-After`: too many codes entered; nothing was looked up.
fn throttled(state: &AppState, headers: &HeaderMap, retry_after_ms: i64) -> Response {
    let mut r = page(
        state,
        headers,
        StatusCode::TOO_MANY_REQUESTS,
        "",
        Some("Too many attempts. Wait a few minutes, then try again.".into()),
        None,
    );
    r.headers_mut().insert(header::RETRY_AFTER, retry_after_ms.div_euclid(1000).max(1).into());
    r
}

/// A POSTed device form: parsed, its CSRF token checked, and its signed-in user.
async fn signed_in_form(
    state: &AppState,
    req: Request,
) -> Result<(HeaderMap, Params, valet_core::model::User), Response> {
    let (headers, form) = http::read_params(req).await.map_err(|_| csrf_failure())?;
    if !csrf_ok(state, &headers, &form) {
        return Err(csrf_failure());
    }
    match session_of(state, &headers).await? {
        Some((_, user)) => Ok((headers, form, user)),
        None => Err(to_login("/setup/connect")),
    }
}

pub async fn submit(State(state): State<AppState>, req: Request) -> Response {
    let ip = http::client_ip(&state.engine, &req);
    let (headers, form, user) = match signed_in_form(&state, req).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let code = form.get_lenient("user_code").unwrap_or("").chars().take(16).collect::<String>();
    match state.engine.device_entry(&code, &user, ip).await {
        Ok(DeviceEntry::Throttled { retry_after_ms }) => throttled(&state, &headers, retry_after_ms),
        Ok(DeviceEntry::Found(found)) => {
            let (device, app) = *found;
            let (csrf, cookie) = csrf_token(&state, &headers);
            let scopes = ScopeLine::all(&device.scopes);
            let mut r = render(
                StatusCode::OK,
                &DeviceConsentPage {
                    app_name: app.name,
                    scopes,
                    csrf,
                    user_code: valet_core::engine::device::normalize_user_code(&code),
                },
            );
            if let Some(c) = cookie {
                r.headers_mut().append(header::SET_COOKIE, c);
            }
            r
        }
        Ok(DeviceEntry::Unknown) => page(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            &code,
            Some("That code is not valid or has expired. Check the code on your device.".into()),
            None,
        ),
        Err(e) => http::fault(&e),
    }
}

pub async fn approve(State(state): State<AppState>, req: Request) -> Response {
    let ip = http::client_ip(&state.engine, &req);
    let (headers, form, user) = match signed_in_form(&state, req).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let allow = form.get_lenient("decision") == Some("allow");
    let code = form.get_lenient("user_code").unwrap_or("");
    match state.engine.device_decide(code, &user, allow, ip).await {
        Ok(DeviceDecision::Throttled { retry_after_ms }) => throttled(&state, &headers, retry_after_ms),
        Ok(DeviceDecision::Locked) => page(
            &state,
            &headers,
            StatusCode::FORBIDDEN,
            "",
            Some("Your account is locked after too many failed logins. Try again later.".into()),
            None,
        ),
        Ok(DeviceDecision::Approved) => page(
            &state,
            &headers,
            StatusCode::OK,
            "",
            None,
            Some("Your device is connected. You can close this page and return to your device.".into()),
        ),
        Ok(DeviceDecision::Denied) => page(
            &state,
            &headers,
            StatusCode::OK,
            "",
            None,
            Some("Access was denied. Your device will not be connected.".into()),
        ),
        Ok(DeviceDecision::NotPermitted) => page(
            &state,
            &headers,
            StatusCode::FORBIDDEN,
            "",
            Some("You are not approved to use this app. Contact your administrator.".into()),
            None,
        ),
        Ok(DeviceDecision::UnknownCode) => page(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            "",
            Some("That code is not valid or has expired.".into()),
            None,
        ),
        Err(e) => http::fault(&e),
    }
}
