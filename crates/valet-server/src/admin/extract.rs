//! Turning requests into typed values. The extractors here never reject on their own: a
//! handler checks authorization first and only then asks for its path and body, so an
//! unauthenticated caller learns nothing from parse errors, and every failure is an `ApiError`.

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::ApiError;

/// Admin request bodies are small JSON objects; the largest legitimate one is an app policy
/// holding a 4 KB certificate.
pub const MAX_BODY: usize = 64 * 1024;

/// The path parameters, in route order, or why they could not be read (bad percent-encoding).
pub struct Segments(Result<Vec<String>, ApiError>);

impl<S: Send + Sync> FromRequestParts<S> for Segments {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let parsed = Path::<Vec<String>>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| v)
            .map_err(|e| ApiError::bad_request(format!("bad path parameter: {}", e.body_text())));
        Ok(Segments(parsed))
    }
}

impl Segments {
    /// The `i`-th path parameter as a lookup key named `field` in errors.
    pub fn key(&self, i: usize, field: &str) -> Result<Key, ApiError> {
        match &self.0 {
            Ok(v) => Key::parse(v.get(i).map(String::as_str).unwrap_or(""), field),
            Err(e) => Err(ApiError::bad_request(e.message.clone())),
        }
    }
}

/// A record key from the path: an id, a consumer key, a username or a name. Bounded and free
/// of control characters so that it can go to either database as it is (PostgreSQL refuses
/// NUL in text, which would otherwise surface as a 500).
#[derive(Debug, Clone)]
pub struct Key(String);

impl Key {
    pub fn parse(s: &str, field: &str) -> Result<Key, ApiError> {
        if s.is_empty() || s.chars().count() > 255 || s.chars().any(char::is_control) {
            return Err(ApiError::bad_request(format!(
                "{field} must be 1 to 255 characters without control characters"
            ))
            .with_field(field));
        }
        Ok(Key(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The raw request body with its headers, read (bounded) only when the handler asks.
pub struct RawBody {
    headers: HeaderMap,
    body: Body,
}

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        Ok(RawBody { headers: parts.headers, body })
    }
}

impl RawBody {
    /// The body as a `T`. `optional` lets an empty body stand for `{}` (for requests whose
    /// every field has a default, such as rotate-secret).
    pub async fn json<T: DeserializeOwned>(self, optional: bool) -> Result<T, ApiError> {
        let value = self.value(optional).await?;
        // serde would also read a struct from an array of its fields in order; the API's
        // bodies are objects only.
        if !value.is_object() {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        from_value(value, "")
    }

    /// The body as a JSON value, size- and media-type-checked.
    pub async fn value(self, optional: bool) -> Result<Value, ApiError> {
        let ctype = self.headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("?").to_ascii_lowercase());
        let bytes = axum::body::to_bytes(self.body, MAX_BODY).await.map_err(|_| ApiError::too_large(MAX_BODY))?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return if optional {
                Ok(Value::Object(Map::new()))
            } else {
                Err(ApiError::invalid_json("a JSON object body is required"))
            };
        }
        // No Content-Type is read as JSON (curl -d sends form encoding, which we refuse).
        if let Some(ct) = ctype {
            let essence = ct.split(';').next().unwrap_or("").trim().to_string();
            if essence != "application/json" && !essence.ends_with("+json") {
                return Err(ApiError::unsupported_media_type());
            }
        }
        serde_json::from_slice::<Value>(&bytes)
            .map_err(|e| ApiError::invalid_json(format!("the body is not valid JSON: {e}")))
    }
}

/// Deserializes `value` into `T`, naming the field at fault (with `prefix` before it).
/// Messages about passwords never repeat the value.
pub fn from_value<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, ApiError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let mut path = e.path().to_string();
        if path == "." {
            path.clear();
        }
        let message = e.inner().to_string();
        // Make sure an unknown key is named itself, not only its parent object.
        if let Some(key) = message.strip_prefix("unknown field `").and_then(|r| r.split('`').next()) {
            if path.rsplit('.').next() != Some(key) {
                path = join(&path, key);
            }
        }
        let field = join(prefix, &path);
        let message = if field.contains("password") { "invalid value".to_string() } else { message };
        let err = ApiError::bad_request(if field.is_empty() { message } else { format!("{field}: {message}") });
        if field.is_empty() {
            err
        } else {
            err.with_field(field)
        }
    })
}

fn join(a: &str, b: &str) -> String {
    match (a.is_empty(), b.is_empty()) {
        (true, _) => b.to_string(),
        (_, true) => a.to_string(),
        _ => format!("{a}.{b}"),
    }
}

pub use valet_core::model::merge_patch as merge;

/// A string field of a request: trimmed, within `max` characters, no control characters.
pub fn text(field: &str, s: &str, min: usize, max: usize) -> Result<String, ApiError> {
    let t = s.trim();
    let n = t.chars().count();
    if n < min || n > max || t.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "{field} must be {min} to {max} characters without control characters"
        ))
        .with_field(field));
    }
    Ok(t.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use valet_core::model::AppPolicy;

    #[test]
    fn unknown_keys_are_named_with_their_path() {
        let e = from_value::<AppPolicy>(serde_json::json!({"id_token": {"bogus": 1}}), "policy").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("policy.id_token.bogus"), "{}", e.message);
        let e = from_value::<AppPolicy>(serde_json::json!({"requre_pkce": true}), "policy").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("policy.requre_pkce"));
        let e = from_value::<AppPolicy>(serde_json::json!({"id_token": {"valid_minutes": "soon"}}), "").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("id_token.valid_minutes"));
    }

    #[test]
    fn merge_handles_tagged_enums_and_null() {
        let mut v = serde_json::to_value(AppPolicy::default()).unwrap();
        merge(
            &mut v,
            serde_json::json!({"refresh_token_policy": {"kind": "expire_after", "minutes": 5}, "client_credentials_user": "a@b.c"}),
        );
        merge(&mut v, serde_json::json!({"refresh_token_policy": {"minutes": 6}, "client_credentials_user": null}));
        let p: AppPolicy = from_value(v, "").unwrap();
        assert_eq!(p.refresh_token_policy, valet_core::model::RefreshTokenPolicy::ExpireAfter { minutes: 6 });
        assert_eq!(p.client_credentials_user, None);
    }
}
