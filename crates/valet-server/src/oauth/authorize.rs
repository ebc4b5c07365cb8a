//! `GET /services/oauth2/authorize` (salesforce-wire.md §3) and the consent form's POST.

use axum::extract::{Request, State};
use axum::http::header;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use valet_core::engine::authorize::{
    append_fragment, append_query, AuthorizeError, AuthorizeErrorOrFault, AuthorizeRequest, ConsentDecision,
};
use valet_core::model::{Session, User};
use valet_proto::{OAuthError, Params};

use crate::http;
use crate::ui::pages::{self, render, session_of};
use crate::ui::templates::{ConsentPage, ScopeLine};
use crate::AppState;

pub async fn authorize(State(state): State<AppState>, req: Request) -> Response {
    let ip = http::client_ip(&state.engine, &req);
    let (headers, params) = match http::read_params(req).await {
        Ok(p) => p,
        Err(e) => return error_page(&e),
    };
    let request = match state.engine.parse_authorize(&params, false, ip).await {
        Ok(r) => r,
        Err(e) => return authorize_error(e),
    };
    let session = match session_of(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (session, user) = match session {
        Some((s, u)) if !state.engine.needs_login(&request, s.auth_time) => (s, u),
        _ => {
            if request.prompt.none {
                return redirect_error(&request, OAuthError::login_required());
            }
            if request.immediate {
                return redirect_error(&request, OAuthError::immediate_unsuccessful());
            }
            // Log in first, then come back here without `prompt=login` and `max_age` (they
            // have been honoured: the new session is fresh).
            let back = continue_params(&params, true).without(&["max_age"]);
            let mut target = format!(
                "/login?continue={}",
                urlencode(&format!("/services/oauth2/authorize?{}", back.to_urlencoded()))
            );
            if let Some(hint) = &request.login_hint {
                target.push_str(&format!("&login_hint={}", urlencode(hint)));
            }
            return found(&target);
        }
    };
    decide(&state, &headers, &params, request, &user, &session).await
}

/// POST is only for the headless Authorization Code and Credentials flow (salesforce-wire.md §4.8); the
/// browser flows are GET only, as on Salesforce.
pub async fn authorize_post(State(state): State<AppState>, req: Request) -> Response {
    let ip = http::client_ip(&state.engine, &req);
    let (headers, params) = match http::read_params(req).await {
        Ok(p) => p,
        Err(e) => return http::oauth_error(http::Format::Json, &e),
    };
    if params.get_lenient("response_type") != Some("code_credentials") {
        return error_page(&OAuthError::invalid_request("must use HTTP GET"));
    }
    let json_error = |e: &OAuthError| http::oauth_error(http::Format::Json, e);
    let kind = headers.get("auth-request-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !kind.eq_ignore_ascii_case("named-user") {
        return json_error(&OAuthError::invalid_request("Auth-Request-Type must be Named-User"));
    }
    let Some((username, password)) = basic_credentials(&headers) else {
        return json_error(&OAuthError::invalid_basic_auth_header());
    };
    let request = match state.engine.parse_authorize(&params, true, ip).await {
        Ok(r) => r,
        Err(AuthorizeErrorOrFault::Error(AuthorizeError::Page(e)))
        | Err(AuthorizeErrorOrFault::Error(AuthorizeError::Redirect { error: e, .. })) => return json_error(&e),
        Err(AuthorizeErrorOrFault::Fault(f)) => return http::fault(&f),
    };
    match state.engine.code_credentials(&request, &username, &password, ip).await {
        Ok(Ok(code)) => {
            let mut body = serde_json::json!({ "code": code.expose() });
            if let (Some(s), Some(obj)) = (&request.state, body.as_object_mut()) {
                obj.insert("state".into(), s.clone().into());
            }
            http::no_store(http::json(StatusCode::OK, &body))
        }
        Ok(Err(e)) if e.is("rate_limit_exceeded") => {
            let mut r = json_error(&e);
            *r.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            r
        }
        Ok(Err(e)) => json_error(&e),
        Err(f) => http::fault(&f),
    }
}

/// `Authorization: Basic base64(username ":" password)` of the headless flow.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let (u, p) = http::decode_basic(headers.get(header::AUTHORIZATION)?.to_str().ok()?)?;
    (!u.is_empty()).then_some((u, p))
}

async fn decide(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    request: AuthorizeRequest,
    user: &User,
    session: &Session,
) -> Response {
    let auth_time = session.auth_time;
    let decision = match state.engine.consent_decision(&request, user).await {
        Ok(d) => d,
        Err(e) => return http::fault(&e),
    };
    match decision {
        ConsentDecision::Granted => issue(state, &request, user, auth_time).await,
        ConsentDecision::NotPermitted => redirect_error(&request, OAuthError::app_access_denied()),
        ConsentDecision::Ask if request.prompt.none || request.immediate => {
            let e =
                if request.immediate { OAuthError::immediate_unsuccessful() } else { OAuthError::consent_required() };
            redirect_error(&request, e)
        }
        ConsentDecision::Ask => {
            let (csrf, set_cookie) = pages::csrf_token(state, headers);
            let pending = continue_params(params, true).to_urlencoded();
            let page = ConsentPage {
                app_name: request.app.name.clone(),
                user_display: user.display_name(),
                username: user.username.clone(),
                scopes: ScopeLine::all(&request.scopes),
                csrf,
                request_tag: state.engine.consent_request_tag(session, &pending),
                request: pending,
                // Anyone holding an initial access token registered it: nobody vouched for
                // its name or its callback.
                unverified: request.app.policy.registered_by.is_some(),
            };
            let mut r = render(StatusCode::OK, &page);
            if let Some(c) = set_cookie {
                r.headers_mut().append(axum::http::header::SET_COOKIE, c);
            }
            r
        }
    }
}

async fn issue(state: &AppState, request: &AuthorizeRequest, user: &User, auth_time: i64) -> Response {
    match state.engine.complete_authorization(request, user, auth_time).await {
        Ok(location) => found(&location),
        Err(e) => engine_failure(&e),
    }
}

/// A failure while approving: the app deleted meanwhile (its rows refuse new links) is an
/// error page naming an unknown client, anything else a fault.
fn engine_failure(e: &valet_core::EngineError) -> Response {
    match e {
        valet_core::EngineError::Store(valet_core::store::StoreError::NotFound) => {
            error_page(&OAuthError::invalid_client_id())
        }
        e => http::fault(e),
    }
}

/// The consent form: `request` carries the original authorize parameters, which are
/// validated again from scratch; `decision` is allow or deny.
pub async fn consent(State(state): State<AppState>, req: Request) -> Response {
    let ip = http::client_ip(&state.engine, &req);
    let (headers, form) = match http::read_params(req).await {
        Ok(p) => p,
        Err(e) => return error_page(&e),
    };
    if !pages::csrf_ok(&state, &headers, &form) {
        return pages::csrf_failure();
    }
    let posted = form.get_lenient("request").unwrap_or("");
    let params = Params::from_urlencoded(posted.as_bytes());
    let Some((session, user)) = (match session_of(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    }) else {
        let target =
            format!("/login?continue={}", urlencode(&format!("/services/oauth2/authorize?{}", params.to_urlencoded())));
        return found(&target);
    };
    // Only the request this session was shown is honoured: a form whose `request` was
    // altered (a wider scope, another client or redirect URI) or taken from another
    // session's page is refused.
    if !state.engine.consent_request_intact(&session, posted, form.get_lenient("request_tag").unwrap_or("")) {
        return error_page(&OAuthError::invalid_request("the approval form does not match the request"));
    }
    let request = match state.engine.parse_authorize(&params, false, ip).await {
        Ok(r) => r,
        Err(e) => return authorize_error(e),
    };
    match form.get_lenient("decision") {
        Some("allow") => {
            if let Ok(ConsentDecision::NotPermitted) = state.engine.consent_decision(&request, &user).await {
                return redirect_error(&request, OAuthError::invalid_app_access());
            }
            if let Err(e) = state.engine.remember_consent(&request, &user).await {
                return engine_failure(&e);
            }
            issue(&state, &request, &user, session.auth_time).await
        }
        _ => redirect_error(&request, OAuthError::access_denied()),
    }
}

/// The request's parameters to carry through login or consent: `prompt=login` and
/// `prompt=consent` have been honoured once they lead here.
fn continue_params(params: &Params, strip_prompt: bool) -> Params {
    if !strip_prompt {
        return params.clone();
    }
    let mut out = params.without(&["prompt"]);
    if let Some(p) = params.get_lenient("prompt") {
        let kept: Vec<&str> = p.split(' ').filter(|x| !x.is_empty() && *x != "login").collect();
        if !kept.is_empty() {
            out.push("prompt", kept.join(" "));
        }
    }
    out
}

fn authorize_error(e: AuthorizeErrorOrFault) -> Response {
    match e {
        AuthorizeErrorOrFault::Error(AuthorizeError::Page(e)) => error_page(&e),
        AuthorizeErrorOrFault::Error(AuthorizeError::Redirect { redirect_uri, state, error, fragment }) => {
            redirect_to(&redirect_uri, state.as_deref(), &error, fragment)
        }
        AuthorizeErrorOrFault::Fault(f) => http::fault(&f),
    }
}

fn redirect_error(req: &AuthorizeRequest, e: OAuthError) -> Response {
    redirect_to(&req.redirect_uri, req.state.as_deref(), &e, req.response_type.uses_fragment())
}

fn redirect_to(uri: &str, state: Option<&str>, e: &OAuthError, fragment: bool) -> Response {
    let mut pairs = vec![("error", e.error.to_string())];
    if let Some(d) = &e.error_description {
        pairs.push(("error_description", d.to_string()));
    }
    if let Some(s) = state {
        pairs.push(("state", s.to_string()));
    }
    if fragment {
        found(&append_fragment(uri, &pairs))
    } else {
        found(&append_query(uri, &pairs))
    }
}

/// The error page for requests that cannot be trusted to redirect (salesforce-wire.md §3.6): 400, no
/// `Location`, values escaped.
pub fn error_page(e: &OAuthError) -> Response {
    pages::error_page(StatusCode::BAD_REQUEST, "Authorization error", e)
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// 302 Found, as Salesforce redirects from the authorization endpoint.
fn found(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location.to_string())]).into_response()
}
