//! Request parsing and response rendering shared by the endpoints: merged parameters,
//! client authentication headers, response formats, cookies and hygiene headers.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use valet_core::engine::client_assertion::{unverified_client_id, CLIENT_ASSERTION_TYPE};
use valet_core::engine::token::{ClientAuth, TokenError};
use valet_core::secret::Secret;
use valet_proto::params::form_decode;
use valet_proto::token::BodyClientAuth;
use valet_proto::{OAuthError, Params};

/// Largest request body any endpoint reads (64 KiB is far above any legitimate OAuth request).
pub const MAX_BODY: usize = 64 * 1024;

/// Query parameters, then body parameters (urlencoded or multipart); a JSON body contributes
/// nothing, so a JSON token request reads as "no grant_type", as on Salesforce.
pub async fn read_params(req: Request) -> Result<(HeaderMap, Params), OAuthError> {
    let mut params = match req.uri().query() {
        Some(q) => Params::from_urlencoded(q.as_bytes()),
        None => Params::new(),
    };
    let headers = req.headers().clone();
    let ctype = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if ctype.starts_with("multipart/form-data") {
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|_| OAuthError::invalid_request("malformed multipart body"))?;
        let mut total = 0usize;
        loop {
            match mp.next_field().await {
                Ok(Some(field)) => {
                    let name = field.name().unwrap_or("").to_string();
                    let value =
                        field.text().await.map_err(|_| OAuthError::invalid_request("malformed multipart body"))?;
                    total += name.len() + value.len();
                    if total > MAX_BODY {
                        return Err(OAuthError::invalid_request("request body too large"));
                    }
                    params.push(name, value);
                }
                Ok(None) => break,
                Err(_) => return Err(OAuthError::invalid_request("malformed multipart body")),
            }
        }
    } else if ctype.is_empty()
        || ctype.starts_with("application/x-www-form-urlencoded")
        || ctype.starts_with("text/plain")
    {
        let body = Bytes::from_request(req, &())
            .await
            .map_err(|_| OAuthError::invalid_request("request body too large or unreadable"))?;
        params.extend(Params::from_urlencoded(&body));
    }
    // No parameter of any endpoint may hold NUL: PostgreSQL cannot store it, and no client
    // id, name or token has one.
    if params.iter().any(|(k, v)| k.contains('\0') || v.contains('\0')) {
        return Err(OAuthError::invalid_request("parameters must not contain NUL characters"));
    }
    Ok((headers, params))
}

/// Client credentials from `Authorization: Basic` and/or the body (RFC 6749 §2.3.1: the
/// Basic parts are form-urlencoded before base64).
pub fn client_auth(headers: &HeaderMap, params: &Params) -> Result<Option<ClientAuth>, OAuthError> {
    let body = BodyClientAuth::from_params(params)?;
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(v) => parse_basic(v)?,
        None => None,
    };
    match basic {
        Some((id, secret)) => {
            if body.client_secret.is_some() || body.client_assertion.is_some() {
                return Err(OAuthError::invalid_request("use only one client authentication method"));
            }
            if body.client_id.as_deref().is_some_and(|b| b != id) {
                return Err(OAuthError::invalid_client());
            }
            Ok(Some(ClientAuth {
                client_id: id,
                secret: (!secret.is_empty()).then(|| Secret::new(secret)),
                assertion: None,
                client_ip: None,
            }))
        }
        None => {
            if let Some(assertion) = body.client_assertion {
                if body.client_assertion_type.as_deref() != Some(CLIENT_ASSERTION_TYPE) {
                    return Err(OAuthError::invalid_request(
                        "client_assertion_type must be urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ));
                }
                let id = body
                    .client_id
                    .or_else(|| unverified_client_id(&assertion))
                    .ok_or_else(OAuthError::invalid_client)?;
                return Ok(Some(ClientAuth {
                    client_id: id,
                    secret: body.client_secret.map(Secret::new),
                    assertion: Some(assertion),
                    client_ip: None,
                }));
            }
            Ok(body.client_id.map(|id| ClientAuth {
                client_id: id,
                secret: body.client_secret.map(Secret::new),
                assertion: None,
                client_ip: None,
            }))
        }
    }
}

fn parse_basic(v: &HeaderValue) -> Result<Option<(String, String)>, OAuthError> {
    let s = v.to_str().map_err(|_| OAuthError::invalid_client())?;
    let Some((scheme, _)) = s.split_once(' ') else { return Err(OAuthError::invalid_client()) };
    if !scheme.eq_ignore_ascii_case("basic") {
        // A bearer header at the token endpoint is not client authentication; ignore it.
        return Ok(None);
    }
    let (id, secret) = decode_basic(s).ok_or_else(OAuthError::invalid_client)?;
    let (id, secret) = (form_decode(&id), form_decode(&secret));
    if id.is_empty() || id.contains('\0') || secret.contains('\0') {
        return Err(OAuthError::invalid_client());
    }
    Ok(Some((id, secret)))
}

/// `Basic base64(user ":" password)` as it was sent, not yet form-decoded (the headless
/// login flow uses it raw; client authentication form-decodes both parts).
pub fn decode_basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") || rest.len() > 4096 {
        return None;
    }
    let text = String::from_utf8(base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The response formats of Salesforce's token endpoint (salesforce-wire.md §1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    UrlEncoded,
    Xml,
}

impl Format {
    /// `format` wins over `Accept`; JSON by default.
    pub fn negotiate(headers: &HeaderMap, params: &Params) -> Format {
        match params.get_lenient("format") {
            Some("urlencoded") => return Format::UrlEncoded,
            Some("xml") => return Format::Xml,
            Some("json") => return Format::Json,
            _ => {}
        }
        let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
        if accept.contains("application/json") || accept.contains("*/*") || accept.is_empty() {
            Format::Json
        } else if accept.contains("application/x-www-form-urlencoded") {
            Format::UrlEncoded
        } else if accept.contains("application/xml") || accept.contains("text/xml") {
            Format::Xml
        } else {
            Format::Json
        }
    }
}

/// Renders ordered pairs in the chosen format.
/// A response body in the format the client asked for: `json` as it is, or the `pairs` made
/// (only then) as a form or XML.
pub fn render_pairs<K: AsRef<str>>(
    status: StatusCode,
    format: Format,
    json: String,
    pairs: impl FnOnce() -> Vec<(K, String)>,
    root: &str,
) -> Response {
    let (ctype, body) = match format {
        Format::Json => (JSON_UTF8, json),
        Format::UrlEncoded => ("application/x-www-form-urlencoded;charset=UTF-8", form_encode(pairs())),
        Format::Xml => {
            let mut s = format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><{root}>");
            for (k, v) in pairs() {
                let k = k.as_ref();
                s.push_str(&format!("<{k}>{}</{k}>", xml_escape(&v)));
            }
            s.push_str(&format!("</{root}>"));
            ("application/xml;charset=UTF-8", s)
        }
    };
    no_store(body_response(status, ctype, body))
}

pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&apos;")
}

/// An OAuth error as one endpoint answers it. Each endpoint's convention is a constructor
/// (status, challenge header, format); the rendering is here, once, in `IntoResponse`.
#[derive(Debug)]
pub struct OAuthReply {
    error: OAuthError,
    status: StatusCode,
    format: Format,
    challenge: Option<&'static str>,
}

impl OAuthReply {
    /// The token endpoint's answer, also for request-level errors elsewhere: 400 in Salesforce's
    /// dialect, in the format the client asked for.
    pub fn token(format: Format, error: OAuthError) -> Self {
        OAuthReply { error, status: StatusCode::BAD_REQUEST, format, challenge: None }
    }

    /// A client that failed to authenticate at introspection: 401 `invalid_client` with a
    /// Basic challenge (RFC 7662 §2.3; an unknown client id reads the same, so it tells nothing).
    pub fn client_unauthorized(error: OAuthError) -> Self {
        let error = if error.is("invalid_client_id") || error.is("invalid_client") {
            OAuthError::invalid_client()
        } else {
            error
        };
        OAuthReply {
            error,
            status: StatusCode::UNAUTHORIZED,
            format: Format::Json,
            challenge: Some("Basic realm=\"valet\""),
        }
    }

    /// RFC 7591/7592: JSON with the status the engine chose; a 401 carries a Bearer challenge.
    pub fn registration(status: StatusCode, error: OAuthError) -> Self {
        let challenge = (status == StatusCode::UNAUTHORIZED).then_some("Bearer error=\"invalid_token\"");
        OAuthReply { error, status, format: Format::Json, challenge }
    }
}

impl IntoResponse for OAuthReply {
    fn into_response(self) -> Response {
        let e = &self.error;
        let pairs = || {
            let mut pairs = vec![("error", e.error.to_string())];
            if let Some(d) = &e.error_description {
                pairs.push(("error_description", d.to_string()));
            }
            pairs
        };
        let mut r = match to_json(e) {
            Ok(json) => render_pairs(self.status, self.format, json, pairs, "OAuth"),
            Err(fault) => return fault,
        };
        if let Some(c) = self.challenge {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        r
    }
}

/// An OAuth error as the token endpoint answers it: 400 in Salesforce's dialect.
pub fn oauth_error(format: Format, e: &OAuthError) -> Response {
    OAuthReply::token(format, e.clone()).into_response()
}

/// JSON text of a wire type. They are structs of strings, numbers, booleans, lists and
/// string-keyed maps, which serde_json always serializes; should one ever fail, that is a bug
/// answered as a fault (500), never an empty 200.
#[allow(clippy::result_large_err)] // the error is the response itself, returned at once
pub fn to_json<T: serde::Serialize>(v: &T) -> Result<String, Response> {
    serde_json::to_string(v).map_err(|e| fault(&e))
}

/// Form-encodes pairs (infallible, unlike serde's encoder, which can refuse nested values).
pub fn form_encode<K: AsRef<str>, V: AsRef<str>>(pairs: impl IntoIterator<Item = (K, V)>) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        out.append_pair(k.as_ref(), v.as_ref());
    }
    out.finish()
}

/// A fault: logged with its detail, answered with a generic body.
pub fn fault(err: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %err, "internal error");
    // The body of `OAuthError::server_error()`, written out: a fault's answer must not itself
    // depend on anything that can fail (a unit test checks it is that error's JSON).
    let body = r#"{"error":"server_error","error_description":"internal server error"}"#;
    no_store(body_response(StatusCode::INTERNAL_SERVER_ERROR, JSON_UTF8, body.to_string()))
}

/// A grant's failure: its OAuth error in the token endpoint's dialect, or a fault.
pub fn token_error(format: Format, e: TokenError) -> Response {
    match e {
        TokenError::OAuth(o) => OAuthReply::token(format, o).into_response(),
        TokenError::Fault(f) => fault(&f),
    }
}

/// `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// The content type of every JSON body Valet sends (Salesforce's spelling).
pub const JSON_UTF8: &str = "application/json;charset=UTF-8";

/// Headers a response ends up with: its content type, `no_store`'s two, the four `observe`
/// adds, and room to spare. A header map grows (reallocates and rehashes) past 6 entries when
/// it starts empty, which every JSON response did.
const RESPONSE_HEADERS: usize = 12;

/// A response with a body of `content_type`, its header map sized for the headers it gets.
pub fn body_response(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut r = Response::new(axum::body::Body::from(body));
    *r.status_mut() = status;
    let mut h = HeaderMap::with_capacity(RESPONSE_HEADERS);
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    *r.headers_mut() = h;
    r
}

/// JSON with Salesforce's content type.
pub fn json<T: serde::Serialize>(status: StatusCode, v: &T) -> Response {
    match serde_json::to_string(v) {
        Ok(body) => body_response(status, JSON_UTF8, body),
        Err(e) => fault(&e),
    }
}

/// The bearer token from `Authorization: Bearer|OAuth <token>`.
pub fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth")).then(|| token.trim().to_string())
}

/// A cookie's value from the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    for v in headers.get_all(header::COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        for part in s.split(';') {
            if let Some((k, val)) = part.trim().split_once('=') {
                if k == name {
                    return Some(val.to_string());
                }
            }
        }
    }
    None
}

/// A `Set-Cookie` value: HttpOnly, path /, SameSite as given, Secure over https.
pub fn set_cookie(name: &str, value: &str, max_age_secs: Option<i64>, same_site: &str, secure: bool) -> HeaderValue {
    let mut s = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}");
    if let Some(m) = max_age_secs {
        s.push_str(&format!("; Max-Age={m}"));
    }
    if secure {
        s.push_str("; Secure");
    }
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// A plain-text answer (Salesforce's identity and userinfo errors are plain text).
pub fn plain(status: StatusCode, body: &'static str) -> Response {
    (status, [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")], body).into_response()
}

/// JSONP wrapping for the GET revoke and identity callbacks; the callback name is checked
/// so that it cannot inject script.
pub fn valid_callback(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.')
}

pub fn jsonp(callback: &str, json: &str) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/javascript;charset=UTF-8")], format!("{callback}({json})"))
        .into_response()
}

/// An empty 200.
pub fn empty_ok() -> Response {
    no_store((StatusCode::OK, Body::empty()).into_response())
}

/// The engine's outbound HTTP (JWKS of trusted issuers): bounded time and size, no redirects.
pub struct Outbound(pub reqwest::Client);

#[async_trait::async_trait]
impl valet_core::engine::exchange::Fetcher for Outbound {
    async fn get(&self, url: &str) -> Result<String, String> {
        let resp = self.0.get(url).send().await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("status {}", resp.status()));
        }
        let body = resp.bytes().await.map_err(|e| e.to_string())?;
        if body.len() > 256 * 1024 {
            return Err("JWKS too large".into());
        }
        String::from_utf8(body.to_vec()).map_err(|e| e.to_string())
    }
}

/// The TCP peer of a request (set by the server's connection handling).
fn peer_ip(req: &axum::extract::Request) -> Option<std::net::IpAddr> {
    req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())
}

/// The client's address: the TCP peer, or what a configured trusted proxy forwarded
/// (`Engine::client_address`). The one source of client addresses for throttling, IP ranges
/// and logs.
pub fn client_ip(engine: &valet_core::Engine, req: &axum::extract::Request) -> Option<std::net::IpAddr> {
    // Without trusted proxies no header is read (and nothing is allocated per request).
    if engine.config().trusted_proxies.is_empty() {
        return engine.client_address(peer_ip(req), &[]);
    }
    let forwarded: Vec<&str> =
        req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect();
    engine.client_address(peer_ip(req), &forwarded)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_faults_body_is_the_server_error() {
        let r = fault(&"boom");
        let body = axum::body::to_bytes(r.into_body(), 1024).await.unwrap();
        let parsed: OAuthError = serde_json::from_slice(&body).unwrap();
        assert_eq!(parsed, OAuthError::server_error());
    }

    #[test]
    fn form_encoding() {
        assert_eq!(form_encode([("a b", "c&d"), ("e", "é")]), "a+b=c%26d&e=%C3%A9");
    }
}
