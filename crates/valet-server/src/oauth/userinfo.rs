//! `/services/oauth2/userinfo` and the identity service `/id/<org>/<user>` (salesforce-wire.md §6.3, §6.4).
//! Both answer a bad token with 403 and the plain text `Bad_OAuth_Token`, as Salesforce does.

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::net::IpAddr;

use valet_core::engine::bearer::ResourceUse;
use valet_core::engine::resource::TokenContext;

use crate::http::{self, Format};
use crate::AppState;

const BAD_TOKEN: &str = "Bad_OAuth_Token";

/// The token's context if it may read identity data from `ip` (a valid token, an identity
/// scope, the app's IP ranges); otherwise Salesforce's 403 `Bad_OAuth_Token`.
async fn context(state: &AppState, token: Option<String>, ip: Option<IpAddr>) -> Result<TokenContext, Response> {
    let Some(token) = token else { return Err(http::plain(StatusCode::FORBIDDEN, BAD_TOKEN)) };
    match state.engine.admit_bearer(&token, ip, ResourceUse::Identity).await {
        Ok(Ok(ctx)) => Ok(ctx),
        Ok(Err(_)) => Err(http::plain(StatusCode::FORBIDDEN, BAD_TOKEN)),
        Err(e) => Err(http::fault(&e)),
    }
}

pub async fn userinfo(State(state): State<AppState>, req: Request) -> Response {
    let ip = http::client_ip(&state.engine, &req);
    let (headers, params) = match http::read_params(req).await {
        Ok(p) => p,
        Err(_) => return http::plain(StatusCode::FORBIDDEN, BAD_TOKEN),
    };
    let token = http::bearer(&headers).or_else(|| params.get_lenient("access_token").map(str::to_string));
    let ctx = match context(&state, token, ip).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    match state.engine.userinfo(&ctx).await {
        Ok(info) => http::json(StatusCode::OK, &info),
        Err(e) => http::fault(&e),
    }
}

pub async fn identity(
    State(state): State<AppState>,
    Path((org, user)): Path<(String, String)>,
    req: Request,
) -> Response {
    let ip = http::client_ip(&state.engine, &req);
    let (headers, params) = match http::read_params(req).await {
        Ok(p) => p,
        Err(_) => return http::plain(StatusCode::FORBIDDEN, BAD_TOKEN),
    };
    let token = http::bearer(&headers)
        .or_else(|| params.get_lenient("oauth_token").map(str::to_string))
        .or_else(|| params.get_lenient("access_token").map(str::to_string));
    let ctx = match context(&state, token, ip).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let version = params
        .get_lenient("version")
        .filter(|v| v.len() <= 8 && (*v == "latest" || v.bytes().all(|b| b.is_ascii_digit() || b == b'.')));
    let identity = match state.engine.identity(&ctx, &org, &user, version).await {
        Ok(Some(i)) => i,
        Ok(None) => return http::plain(StatusCode::FORBIDDEN, BAD_TOKEN),
        Err(e) => return http::fault(&e),
    };
    let (json, tree) = match (http::to_json(&identity), serde_json::to_value(&identity)) {
        (Ok(j), Ok(t)) => (j, t),
        (Err(fault), _) => return fault,
        (_, Err(e)) => return http::fault(&e),
    };
    if let Some(cb) = params.get_lenient("callback").filter(|c| http::valid_callback(c)) {
        return http::jsonp(cb, &json);
    }
    let format = Format::negotiate(&headers, &params);
    let pairs = || flatten(&tree);
    let mut r = http::render_pairs(StatusCode::OK, format, json, pairs, "user");
    r.headers_mut().remove(axum::http::header::PRAGMA);
    r
}

/// Flattens the identity JSON to dotted pairs for the urlencoded and XML formats.
fn flatten(v: &serde_json::Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&key, x, out);
                }
            }
            serde_json::Value::Null => out.push((prefix.to_string(), String::new())),
            serde_json::Value::String(s) => out.push((prefix.to_string(), s.clone())),
            other => out.push((prefix.to_string(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk("", v, &mut out);
    out
}
