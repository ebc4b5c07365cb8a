//! What the admin commands print: JSON objects of stable shape, or aligned text.

use serde_json::{json, Value};
use valet_core::clock::iso8601;
use valet_core::model::{App, User};
use valet_core::secret::Secret;

pub fn user_json(u: &User) -> Value {
    json!({
        "id": u.id.as_str(),
        "org_id": u.org_id.as_str(),
        "username": u.username,
        "email": u.email,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "active": u.active,
        "is_admin": u.is_admin,
        "created_at": iso8601(u.created_at),
    })
}

/// `consumer_secret` is present only when a secret was just generated.
pub fn app_json(a: &App, secret: Option<&Secret>) -> Value {
    let mut v = json!({
        "id": a.id.as_str(),
        "name": a.name,
        "consumer_key": a.consumer_key,
        "is_public": a.is_public,
        "callback_urls": a.callback_urls,
        "scopes": a.scopes.to_string(),
        "policy": serde_json::to_value(&a.policy).unwrap_or(Value::Null),
        "created_at": iso8601(a.created_at),
    });
    if let (Some(s), Some(obj)) = (secret, v.as_object_mut()) {
        obj.insert("consumer_secret".into(), Value::String(s.expose().to_string()));
    }
    v
}

pub fn print_json(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string()));
}

/// `key  value` lines with the values aligned.
pub fn print_fields(fields: &[(&str, String)]) {
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in fields {
        println!("{k:<width$}  {v}");
    }
}

/// A table with a header row; every column but the last is padded.
pub fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == last {
                s.push_str(c);
            } else {
                let pad = widths.get(i).copied().unwrap_or(0).saturating_sub(c.chars().count());
                s.push_str(c);
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

pub fn user_fields(u: &User) -> Vec<(&'static str, String)> {
    vec![
        ("id", u.id.as_str().to_string()),
        ("org_id", u.org_id.as_str().to_string()),
        ("username", u.username.clone()),
        ("email", u.email.clone()),
        ("first_name", u.first_name.clone()),
        ("last_name", u.last_name.clone()),
        ("active", yes_no(u.active)),
        ("is_admin", yes_no(u.is_admin)),
        ("created_at", iso8601(u.created_at)),
    ]
}

pub fn app_fields(a: &App) -> Vec<(&'static str, String)> {
    vec![
        ("id", a.id.as_str().to_string()),
        ("name", a.name.clone()),
        ("consumer_key", a.consumer_key.clone()),
        ("is_public", yes_no(a.is_public)),
        ("callback_urls", a.callback_urls.join("\n                ")),
        ("scopes", a.scopes.to_string()),
        ("created_at", iso8601(a.created_at)),
    ]
}

pub fn print_user(u: &User) {
    print_fields(&user_fields(u));
}

/// The app's fields, then its policy as indented JSON (or a note when it is the default).
pub fn print_app(a: &App, full_policy: bool) {
    let mut fields = app_fields(a);
    // Keep the continuation lines of callback_urls aligned with the other values.
    let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in fields.iter_mut() {
        if *k == "callback_urls" {
            *v = a.callback_urls.join(&format!("\n{}", " ".repeat(width + 2)));
        }
    }
    print_fields(&fields);
    if !full_policy && a.policy == valet_core::model::AppPolicy::default() {
        println!("policy         (defaults; `valet app show` prints every field)");
        return;
    }
    // AppPolicy holds strings, numbers, lists and string-keyed maps: this cannot fail.
    let policy = serde_json::to_string_pretty(&a.policy).unwrap_or_default();
    println!("policy");
    for line in policy.lines() {
        println!("  {line}");
    }
}

pub fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// Writes one line to stdout; a closed pipe ends the command successfully (as with `head`),
/// any other write error ends it with status 1.
pub fn write_line(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{args}") {
        std::process::exit(if e.kind() == std::io::ErrorKind::BrokenPipe { 0 } else { 1 });
    }
}
