//! Editing an app policy generically: JSON objects merged into the serialized policy, which is
//! then deserialized again, so every `AppPolicy` field can be set without a flag of its own and
//! an error names the bad key.

use serde_json::{Map, Value};
use valet_core::model::AppPolicy;

/// Applies `--policy-json` and then each `--set-policy key=value`, in order, to `base`.
pub fn apply(base: &AppPolicy, policy_json: Option<&str>, set: &[String]) -> Result<AppPolicy, String> {
    let mut value = serde_json::to_value(base).map_err(|e| format!("policy: {e}"))?;
    if let Some(arg) = policy_json {
        merge(&mut value, parse_policy_json(arg)?);
    }
    for kv in set {
        merge(&mut value, parse_set(kv)?);
    }
    from_value(value)
}

/// `--policy-json`: an inline JSON object, or the name of a file holding one.
pub fn parse_policy_json(arg: &str) -> Result<Value, String> {
    let trimmed = arg.trim_start();
    let (text, what) = if trimmed.starts_with('{') {
        (arg.to_string(), "--policy-json".to_string())
    } else {
        let text = std::fs::read_to_string(arg).map_err(|e| {
            format!("--policy-json {arg}: cannot read the file ({e}); pass a file name or an inline JSON object")
        })?;
        (text, format!("--policy-json {arg}"))
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{what}: not valid JSON: {e}"))?;
    if !v.is_object() {
        return Err(format!("{what}: expected a JSON object such as {{\"require_pkce\": true}}"));
    }
    Ok(v)
}

/// `a.b.c=value` as `{"a": {"b": {"c": value}}}`. The value is JSON when it parses as JSON
/// (`true`, `5`, `null`, `{"kind": ...}`, `"text"`), else a plain string.
pub fn parse_set(kv: &str) -> Result<Value, String> {
    let (key, raw) =
        kv.split_once('=').ok_or_else(|| format!("--set-policy {kv:?}: expected KEY=VALUE, e.g. require_pkce=true"))?;
    let key = key.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(format!("--set-policy {kv:?}: empty key"));
    }
    let mut value = serde_json::from_str::<Value>(raw.trim()).unwrap_or_else(|_| Value::String(raw.to_string()));
    for part in key.rsplit('.') {
        let mut m = Map::new();
        m.insert(part.to_string(), value);
        value = Value::Object(m);
    }
    Ok(value)
}

pub use valet_core::model::merge_patch as merge;

fn from_value(value: Value) -> Result<AppPolicy, String> {
    serde_path_to_error::deserialize::<_, AppPolicy>(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            format!("policy: {inner}")
        } else {
            format!("policy key {path}: {inner}")
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use valet_core::model::{JwsAlg, RefreshTokenPolicy};

    #[test]
    fn sets_fields_by_path() {
        let p = apply(
            &AppPolicy::default(),
            Some(r#"{"require_pkce": true, "id_token": {"audiences": ["a"]}}"#),
            &["id_token.valid_minutes=5".into(), "client_credentials_user=jane@example.com".into()],
        )
        .unwrap();
        assert!(p.require_pkce);
        assert_eq!(p.id_token.valid_minutes, 5);
        assert_eq!(p.id_token.audiences, vec!["a".to_string()]);
        assert_eq!(p.client_credentials_user.as_deref(), Some("jane@example.com"));
        let p = apply(&p, None, &["client_credentials_user=null".into()]).unwrap();
        assert_eq!(p.client_credentials_user, None);
    }

    #[test]
    fn tagged_enums() {
        let p = apply(
            &AppPolicy::default(),
            None,
            &["refresh_token_policy=expire_after".into(), "refresh_token_policy.minutes=60".into()],
        )
        .unwrap();
        assert_eq!(p.refresh_token_policy, RefreshTokenPolicy::ExpireAfter { minutes: 60 });
        let p = apply(&p, None, &["refresh_token_policy=valid_until_revoked".into()]).unwrap();
        assert_eq!(p.refresh_token_policy, RefreshTokenPolicy::ValidUntilRevoked);
        let p =
            apply(&p, Some(r#"{"refresh_token_policy": {"kind": "expire_if_unused", "minutes": 5}}"#), &[]).unwrap();
        assert_eq!(p.refresh_token_policy, RefreshTokenPolicy::ExpireIfUnused { minutes: 5 });
    }

    #[test]
    fn unit_enums_from_plain_words() {
        let p = apply(&AppPolicy::default(), None, &["jwt_access_token_alg=ES256".into()]).unwrap();
        assert_eq!(p.jwt_access_token_alg, JwsAlg::Es256);
        let e = apply(&p, None, &["jwt_access_token_alg=HS256".into()]).unwrap_err();
        assert!(e.contains("jwt_access_token_alg"), "{e}");
    }

    #[test]
    fn errors_name_the_key() {
        let e = apply(&AppPolicy::default(), None, &["requre_pkce=true".into()]).unwrap_err();
        assert!(e.contains("requre_pkce"), "{e}");
        let e = apply(&AppPolicy::default(), None, &["id_token.valid_minutes=soon".into()]).unwrap_err();
        assert!(e.contains("id_token.valid_minutes"), "{e}");
        let e = apply(&AppPolicy::default(), None, &["id_token.bogus=1".into()]).unwrap_err();
        assert!(e.contains("id_token") && e.contains("bogus"), "{e}");
        let e = apply(&AppPolicy::default(), Some("[1]"), &[]).unwrap_err();
        assert!(e.contains("JSON object"), "{e}");
        assert!(parse_set("novalue").is_err());
    }
}
