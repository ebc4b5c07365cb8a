//! Handlers for the pages. Forms carry a CSRF token that must match a `SameSite=Strict`
//! cookie (double submit); sessions use an HttpOnly `SameSite=Lax` cookie renewed at login.

use askama::Template;
use axum::extract::{RawQuery, Request, State};
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
    let Some(cookie) = http::cookie(headers, &state.cookie_name(SESSION_COOKIE)) else { return Ok(None) };
    state.engine.session_user(&cookie).await.map_err(|e| http::fault(&e))
}

/// The CSRF token for a form: the existing cookie's, or a new one with its `Set-Cookie`.
pub fn csrf_token(state: &AppState, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    if let Some(existing) = http::cookie(headers, &state.cookie_name(CSRF_COOKIE))
        .filter(|c| c.len() == 43 && c.bytes().all(|b| b.is_ascii_alphanumeric()))
    {
        return (existing, None);
    }
    let token = secret::new_session_token(state.engine.rng());
    let cookie =
        http::set_cookie(&state.cookie_name(CSRF_COOKIE), token.expose(), None, "Strict", state.opts.secure_cookies);
    (token.expose().to_string(), Some(cookie))
}

pub fn csrf_ok(state: &AppState, headers: &HeaderMap, form: &Params) -> bool {
    match (http::cookie(headers, &state.cookie_name(CSRF_COOKIE)), form.get_lenient("csrf")) {
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

/// Only same-origin paths may be continued to after login (no open redirect): the value
/// must start with a single `/`, and, once percent-decoded, hold no control character, no
/// backslash and no `//` (browsers read `/\\host`, `/<TAB>/host` and `//host` as another
/// origin). Anything else goes home.
pub fn safe_continue(c: Option<&str>) -> String {
    let safe = |p: &str| {
        let decoded: String = url::form_urlencoded::parse(format!("x={}", p.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        p.len() <= 4096
            && p.starts_with('/')
            && [p, decoded.as_str()].iter().all(|s| {
                !s.chars().any(|ch| ch.is_control() || ch == '\\')
                    && !s.replace(|ch: char| ch.is_whitespace(), "").contains("//")
            })
    };
    match c {
        Some(p) if safe(p) => p.to_string(),
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

pub async fn login_form(State(state): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    // No query is no parameters.
    let q = Params::from_urlencoded(q.unwrap_or_default().as_bytes());
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

pub async fn login_submit(State(state): State<AppState>, req: Request) -> Response {
    let ip = http::client_ip(&state.engine, &req);
    let (headers, form) = match http::read_params(req).await {
        Ok(p) => p,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "Bad request", &e),
    };
    let continue_to = safe_continue(form.get_lenient("continue"));
    let username = form.get_lenient("username").unwrap_or("").trim().to_string();
    let password = form.get_lenient("password").unwrap_or("").to_string();
    let again = |error: &str, status: StatusCode| {
        let (csrf, cookie) = csrf_token(&state, &headers);
        let page = LoginPage {
            org_name: String::new(),
            username: username.clone(),
            error: Some(error.to_string()),
            notice: None,
            csrf,
            continue_to: continue_to.clone(),
        };
        (page, cookie, status)
    };
    if !csrf_ok(&state, &headers, &form) {
        let (mut page, cookie, status) = again("Your session expired. Please try again.", StatusCode::FORBIDDEN);
        page.org_name = org_name(&state).await;
        return with_cookies(render(status, &page), cookie);
    }
    let outcome = match state.engine.login(&username, &password, ip).await {
        Ok(o) => o,
        Err(e) => return http::fault(&e),
    };
    match outcome {
        Err(LoginFailure::Throttled { retry_after_ms }) => {
            let minutes = (retry_after_ms + 59_999) / 60_000;
            let (mut page, cookie, status) = again(
                &format!("Too many failed login attempts. Try again in {minutes} minute(s)."),
                StatusCode::TOO_MANY_REQUESTS,
            );
            page.org_name = org_name(&state).await;
            let mut r = with_cookies(render(status, &page), cookie);
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_ms.div_euclid(1000).max(1)));
            r
        }
        Ok(user) => {
            // A fresh session id at every login (no fixation); the old one ends.
            if let Some(old) = http::cookie(&headers, &state.cookie_name(SESSION_COOKIE)) {
                let _ = state.engine.end_session(&old).await;
            }
            let token = match state.engine.create_session(&user).await {
                Ok(t) => t,
                Err(e) => return http::fault(&e),
            };
            tracing::info!(user = %user.id, "login succeeded");
            let cookie = http::set_cookie(
                &state.cookie_name(SESSION_COOKIE),
                token.expose(),
                None,
                "Lax",
                state.opts.secure_cookies,
            );
            let r = (StatusCode::SEE_OTHER, [(header::LOCATION, continue_to)]).into_response();
            with_cookies(r, [cookie])
        }
        Err(failure) => {
            tracing::info!(reason = ?failure, "login failed");
            let msg = match failure {
                LoginFailure::BadCredentials | LoginFailure::Inactive | LoginFailure::Throttled { .. } => {
                    "Please check your username and password. If you still can't log in, contact your administrator."
                }
            };
            let (mut page, cookie, status) = again(msg, StatusCode::UNAUTHORIZED);
            page.org_name = org_name(&state).await;
            with_cookies(render(status, &page), cookie)
        }
    }
}

/// `GET /logout` and the OIDC end-session endpoint. With a valid `id_token_hint` the session
/// ends at once and the browser may go to a registered `post_logout_redirect_uri`; otherwise the
/// user confirms on a page (so a cross-site link cannot log them out), and nothing redirects to an
/// unregistered address.
pub async fn logout_form(State(state): State<AppState>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    // No query is no parameters.
    let q = Params::from_urlencoded(q.unwrap_or_default().as_bytes());
    let session = match session_of(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let hint = match q.get_lenient("id_token_hint") {
        Some(h) => match state.engine.verify_id_token_hint(h).await {
            Ok(v) => v,
            Err(e) => return http::fault(&e),
        },
        None => None,
    };
    let redirect = match (&hint, q.get_lenient("post_logout_redirect_uri")) {
        (Some(h), Some(uri)) if state.engine.post_logout_redirect_allowed(&h.app, uri) => {
            let mut pairs = vec![];
            if let Some(st) = q.get_lenient("state") {
                pairs.push(("state", st.to_string()));
            }
            Some(if pairs.is_empty() {
                uri.to_string()
            } else {
                valet_core::engine::authorize::append_query(uri, &pairs)
            })
        }
        _ => None,
    };
    match (session, hint) {
        (Some((_, user)), Some(h)) if h.subject == state.engine.identity_url(&user.org_id, &user.id) => {
            let front = match end_session(&state, &headers, &user).await {
                Ok(f) => f,
                Err(r) => return r,
            };
            let clear =
                http::set_cookie(&state.cookie_name(SESSION_COOKIE), "", Some(0), "Lax", state.opts.secure_cookies);
            let r = match redirect {
                Some(uri) => (StatusCode::FOUND, [(header::LOCATION, uri)]).into_response(),
                None => logged_out(front),
            };
            with_cookies(r, [clear])
        }
        (Some((_, user)), _) => {
            let (csrf, cookie) = csrf_token(&state, &headers);
            with_cookies(render(StatusCode::OK, &LogoutPage { user_display: user.display_name(), csrf }), cookie)
        }
        (None, _) => match redirect {
            Some(uri) => (StatusCode::FOUND, [(header::LOCATION, uri)]).into_response(),
            None => logged_out(vec![]),
        },
    }
}

pub async fn logout_submit(State(state): State<AppState>, req: Request) -> Response {
    let (headers, form) = match http::read_params(req).await {
        Ok(p) => p,
        Err(e) => return error_page(StatusCode::BAD_REQUEST, "Bad request", &e),
    };
    if !csrf_ok(&state, &headers, &form) {
        return csrf_failure();
    }
    let front = match session_of(&state, &headers).await {
        Ok(Some((_, user))) => match end_session(&state, &headers, &user).await {
            Ok(f) => f,
            Err(r) => return r,
        },
        Ok(None) => vec![],
        Err(r) => return r,
    };
    let clear = http::set_cookie(&state.cookie_name(SESSION_COOKIE), "", Some(0), "Lax", state.opts.secure_cookies);
    with_cookies(logged_out(front), [clear])
}

/// Ends the browser session, sends back-channel logout tokens (in the background, bounded by
/// the client's timeout) and returns the single logout URLs for the page to load.
async fn end_session(state: &AppState, headers: &HeaderMap, user: &User) -> Result<Vec<String>, Response> {
    if let Some(cookie) = http::cookie(headers, &state.cookie_name(SESSION_COOKIE)) {
        state.engine.end_session(&cookie).await.map_err(|e| http::fault(&e))?;
    }
    let notices = state.engine.logout_notices(user).await.map_err(|e| http::fault(&e))?;
    let allow_private = state.engine.config().allow_private_outbound;
    for (url, token) in notices.back_channel {
        // Checked again at send time: the URL may predate today's rules.
        if let Err(why) = valet_core::engine::ip::check_outbound_url(&url, allow_private) {
            tracing::warn!(why, "back-channel logout not sent: its URL is refused");
            continue;
        }
        let Some(client) = state.http.clone() else {
            tracing::error!("back-channel logout not sent: no HTTP client");
            continue;
        };
        tokio::spawn(async move {
            match client.post(&url).form(&[("logout_token", token)]).send().await {
                Ok(r) => tracing::info!(status = r.status().as_u16(), "back-channel logout sent"),
                Err(e) => tracing::warn!(error = %e, "back-channel logout failed"),
            }
        });
    }
    tracing::info!(user = %user.id, "logout");
    Ok(notices.front_channel)
}

/// The logged-out page; its CSP lets it frame exactly the single logout URLs it loads.
fn logged_out(front_channel: Vec<String>) -> Response {
    let origins: Vec<String> = front_channel
        .iter()
        .filter_map(|u| url::Url::parse(u).ok())
        .filter(|u| u.scheme() == "https")
        .map(|u| u.origin().ascii_serialization())
        .collect();
    let front_channel = front_channel.into_iter().filter(|u| u.starts_with("https://")).collect();
    let mut r = render(StatusCode::OK, &LoggedOutPage { front_channel });
    if !origins.is_empty() {
        let csp = format!("default-src 'none'; style-src 'self'; img-src 'self' data:; frame-src {}; frame-ancestors 'none'; base-uri 'none'", origins.join(" "));
        if let Ok(v) = HeaderValue::from_str(&csp) {
            r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    r
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
    let page =
        HomePage { user_display: None, username: None, org_name: "Remote Access Application Authorization".into() };
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
