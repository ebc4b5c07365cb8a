//! Handlers for the pages. Forms carry a CSRF token that must match a `SameSite=Strict`
//! cookie (double submit); sessions use an HttpOnly `SameSite=Lax` cookie renewed at login.

use std::net::SocketAddr;

use askama::Template;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use valet_core::engine::resource::LoginFailure;
use valet_core::model::{Session, User};
use valet_core::secret;
use valet_proto::{OAuthError, Params};

use super::templates::*;
use crate::http;
use crate::AppState;

pub const SESSION_COOKIE: &str = "valet_sid";
pub const CSRF_COOKIE: &str = "valet_csrf";

/// Renders a template as an HTML page with the page security headers.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => {
            let mut r = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
            let h = r.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"),
            );
            h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
            r
        }
        Err(e) => http::fault(&e),
    }
}

pub fn error_page(status: StatusCode, title: &str, e: &OAuthError) -> Response {
    let page = ErrorPage {
        title: title.to_string(),
        error: e.error.to_string(),
        description: e.error_description.as_deref().unwrap_or("").to_string(),
    };
    render(status, &page)
}

/// The signed-in session, if any.
pub async fn session_of(state: &AppState, headers: &HeaderMap) -> Result<Option<(Session, User)>, Response> {
    let Some(cookie) = http::cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    state.engine.session_user(&cookie).await.map_err(|e| http::fault(&e))
}

/// The CSRF token for a form: the existing cookie's, or a new one with its `Set-Cookie`.
pub fn csrf_token(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    if let Some(existing) = http::cookie(headers, CSRF_COOKIE).filter(|c| c.len() == 43 && c.bytes().all(|b| b.is_ascii_alphanumeric())) {
        return (existing, None);
    }
    let token = secret::new_session_token(state.engine.rng());
    let cookie = http::set_cookie(CSRF_COOKIE, token.expose(), None, "Strict", state.opts.secure_cookies);
    (token.expose().to_string(), Some(cookie))
}

pub fn csrf_ok(headers: &HeaderMap, form: &Params) -> bool {
    match (http::cookie(headers, CSRF_COOKIE), form.get_lenient("csrf")) {
        (Some(c), Some(f)) => !c.is_empty() && secret::ct_eq_str(&c, f),
        _ => false,
    }
}

pub fn csrf_failure() -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        "This form has expired",
        &OAuthError::invalid_request("The form could not be verified. Go back, reload the page and try again."),
    )
}

/// Only same-origin paths may be continued to after login (no open redirect).
fn safe_continue(c: Option<&str>) -> String {
    match c {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\") && !p.contains(['\r', '\n']) => p.to_string(),
        _ => "/".to_string(),
    }
}

async fn org_name(state: &AppState) -> String {
    state.engine.store().default_org().await.ok().flatten().map(|o| o.name).unwrap_or_else(|| "Valet".into())
}

fn with_cookies(mut r: Response, cookies: impl IntoIterator<Item = HeaderValue>) -> Response {
    for c in cookies {
        r.headers_mut().append(header::SET_COOKIE, c);
    }
    r
}

pub async fn login_form(State(state): State<AppState>, Query(q): Query<Vec<(String, String)>>, headers: HeaderMap) -> Response {
    let q = Params::from_urlencoded(serde_urlencoded::to_string(&q).unwrap_or_default().as_bytes());
    let (csrf, cookie) = csrf_token(&state, &headers);
    let page = LoginPage {
        org_name: org_name(&state).await,
        username: q.get_lenient("login_hint").unwrap_or("").to_string(),
        error: None,
        notice: None,
        csrf,
        continue_to: safe_continue(q.get_lenient("continue")),
    };
    with_cookies(render(StatusCode::OK, &page), cookie)
}

pub async fn login_submit(State(state): State<AppState>, ConnectInfo(peer): ConnectInfo<SocketAddr>, req: Request) -> Response {
    let (headers, form) = match http::read_params(req).await {
        Ok(p) => p,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "Bad request", &e),
    };
    let continue_to = safe_continue(form.get_lenient("continue"));
    let username = form.get_lenient("username").unwrap_or("").trim().to_string();
    let password = form.get_lenient("password").unwrap_or("").to_string();
    let again = |error: &str, status: StatusCode| {
        let (csrf, cookie) = csrf_token(&state, &headers);
        let page = LoginPage { org_name: String::new(), username: username.clone(), error: Some(error.to_string()), notice: None, csrf, continue_to: continue_to.clone() };
        (page, cookie, status)
    };
    if !csrf_ok(&headers, &form) {
        let (mut page, cookie, status) = again("Your session expired. Please try again.", StatusCode::FORBIDDEN);
        page.org_name = org_name(&state).await;
        return with_cookies(render(status, &page), cookie);
    }
    let ip = peer.ip().to_string();
    let now = state.engine.clock().now_ms();
    if let Some(ms) = state.throttle.locked_for(&username, &ip, now) {
        let minutes = (ms + 59_999) / 60_000;
        let (mut page, cookie, status) = again(&format!("Too many failed login attempts. Try again in {minutes} minute(s)."), StatusCode::TOO_MANY_REQUESTS);
        page.org_name = org_name(&state).await;
        return with_cookies(render(status, &page), cookie);
    }
    let outcome = match state.engine.check_login(&username, &password).await {
        Ok(o) => o,
        Err(e) => return http::fault(&e),
    };
    match outcome {
        Ok(user) => {
            state.throttle.record_success(&username);
            // A fresh session id at every login (no fixation); the old one ends.
            if let Some(old) = http::cookie(&headers, SESSION_COOKIE) {
                let _ = state.engine.end_session(&old).await;
            }
            let token = match state.engine.create_session(&user).await {
                Ok(t) => t,
                Err(e) => return http::fault(&e),
            };
            tracing::info!(user = %user.id, "login succeeded");
            let cookie = http::set_cookie(SESSION_COOKIE, token.expose(), None, "Lax", state.opts.secure_cookies);
            let r = (StatusCode::SEE_OTHER, [(header::LOCATION, continue_to)]).into_response();
            with_cookies(r, [cookie])
        }
        Err(failure) => {
            state.throttle.record_failure(&username, &ip, now);
            tracing::info!(reason = ?failure, "login failed");
            let msg = match failure {
                LoginFailure::BadCredentials | LoginFailure::Inactive => {
                    "Please check your username and password. If you still can't log in, contact your administrator."
                }
            };
            let (mut page, cookie, status) = again(msg, StatusCode::UNAUTHORIZED);
            page.org_name = org_name(&state).await;
            with_cookies(render(status, &page), cookie)
        }
    }
}

pub async fn logout_form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match session_of(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match session {
        Some((_, user)) => {
            let (csrf, cookie) = csrf_token(&state, &headers);
            with_cookies(render(StatusCode::OK, &LogoutPage { user_display: user.display_name(), csrf }), cookie)
        }
        None => render(StatusCode::OK, &LoggedOutPage {}),
    }
}

pub async fn logout_submit(State(state): State<AppState>, req: Request) -> Response {
    let (headers, form) = match http::read_params(req).await {
        Ok(p) => p,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "Bad request", &e),
    };
    if !csrf_ok(&headers, &form) {
        return csrf_failure();
    }
    if let Some(cookie) = http::cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = state.engine.end_session(&cookie).await {
            return http::fault(&e);
        }
    }
    let clear = http::set_cookie(SESSION_COOKIE, "", Some(0), "Lax", state.opts.secure_cookies);
    with_cookies(render(StatusCode::OK, &LoggedOutPage {}), [clear])
}

pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match session_of(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let page = HomePage {
        user_display: session.as_ref().map(|(_, u)| u.display_name()),
        username: session.as_ref().map(|(_, u)| u.username.clone()),
        org_name: org_name(&state).await,
    };
    render(StatusCode::OK, &page)
}

/// `/services/oauth2/success`: Salesforce's default callback page for apps without their own.
pub async fn success() -> Response {
    let page = HomePage { user_display: None, username: None, org_name: "Remote Access Application Authorization".into() };
    render(StatusCode::OK, &page)
}

pub async fn stylesheet() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")],
        VALET_CSS,
    )
        .into_response()
}
