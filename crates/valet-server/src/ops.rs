//! Operations: request ids, logs, metrics, liveness and readiness.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::http;
use crate::AppState;

const BUCKETS_MS: [f64; 10] = [0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0];

/// Prometheus counters and a latency histogram, per route (the matched path, never the raw
/// URI, which can hold tokens).
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<MetricsInner>,
}

#[derive(Default)]
struct MetricsInner {
    routes: BTreeMap<String, RouteStats>,
    tokens: BTreeMap<String, u64>,
}

/// One route's counters. Nested maps keyed by `String` are looked up by `&str`, so counting a
/// request allocates nothing once its route, method and status have been seen.
#[derive(Default)]
struct RouteStats {
    /// Method → status → requests.
    requests: BTreeMap<String, BTreeMap<u16, u64>>,
    buckets: [u64; BUCKETS_MS.len()],
    count: u64,
    sum_s: f64,
}

/// The value under `key`, made if missing: looked up by `&str`, so the key is copied only
/// the first time (`entry` would need an owned `String` on every call).
#[allow(clippy::expect_used)] // the key was inserted just above
fn slot<'m, V: Default>(map: &'m mut BTreeMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_string(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

impl Metrics {
    fn observe(&self, route: &str, method: &str, status: u16, ms: f64) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let r = slot(&mut m.routes, route);
        *slot(&mut r.requests, method).entry(status).or_default() += 1;
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            if ms <= *b {
                r.buckets[i] += 1;
            }
        }
        r.count += 1;
        r.sum_s += ms / 1000.0;
    }

    pub fn token_issued(&self, grant: &str) {
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *m.tokens.entry(grant.to_string()).or_default() += 1;
    }

    pub fn render(&self) -> String {
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut s = String::new();
        s.push_str("# HELP valet_http_requests_total HTTP requests by route, method and status.\n# TYPE valet_http_requests_total counter\n");
        for (route, r) in &m.routes {
            for (method, by_status) in &r.requests {
                for (status, n) in by_status {
                    let _ = writeln!(
                        s,
                        "valet_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {n}"
                    );
                }
            }
        }
        s.push_str("# HELP valet_http_request_duration_seconds Request latency by route.\n# TYPE valet_http_request_duration_seconds histogram\n");
        for (route, r) in &m.routes {
            for (i, b) in BUCKETS_MS.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "valet_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{}\"}} {}",
                    b / 1000.0,
                    r.buckets[i]
                );
            }
            let count = r.count;
            let _ = writeln!(s, "valet_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}");
            let _ = writeln!(s, "valet_http_request_duration_seconds_sum{{route=\"{route}\"}} {}", r.sum_s);
            let _ = writeln!(s, "valet_http_request_duration_seconds_count{{route=\"{route}\"}} {count}");
        }
        s.push_str("# HELP valet_tokens_issued_total Successful token responses by grant.\n# TYPE valet_tokens_issued_total counter\n");
        for (grant, n) in &m.tokens {
            let _ = writeln!(s, "valet_tokens_issued_total{{grant=\"{grant}\"}} {n}");
        }
        s
    }
}

/// The target of the access log's one event per request. `valet serve` formats events with
/// this target by hand (`valet::access_log`); any other subscriber sees ordinary events.
pub const ACCESS_LOG_TARGET: &str = "valet::access";

/// Every request: a request id (kept from `X-Request-Id` when it is sane), a span with that id
/// around the handler (so that whatever it logs carries the id), the access log line (id,
/// method, path — never the query —, status, milliseconds), metrics, and the headers every
/// response carries.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .filter(|v| {
            let v = v.as_bytes();
            !v.is_empty() && v.len() <= 64 && v.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
        })
        .cloned()
        .unwrap_or_else(|| {
            let mut b = [0u8; 16];
            state.engine.rng().fill(&mut b);
            let mut text = [0u8; uuid::fmt::Hyphenated::LENGTH];
            let id = uuid::Builder::from_random_bytes(b).into_uuid();
            HeaderValue::from_str(id.hyphenated().encode_lower(&mut text)).unwrap_or(HeaderValue::from_static("-"))
        });
    // Checked above (kept) or made of hex digits and hyphens (generated).
    let id = request_id.to_str().unwrap_or("-");
    // Cheap handles (reference-counted or inline), not copies: the request moves on below.
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let uri = req.uri().clone();
    let mut resp = match oversized(&req) {
        Some(status) => {
            let mut r = crate::http::plain(status, "request too large");
            r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            r
        }
        None => next.run(req).instrument(tracing::info_span!("request", id)).await,
    };
    let elapsed_ms = start.elapsed().as_secs_f64() * 1000.0;
    let status = resp.status().as_u16();
    let path = uri.path();
    if resp.status().is_server_error() {
        tracing::error!(target: ACCESS_LOG_TARGET, id, method = method.as_str(), path, status, ms = elapsed_ms);
    } else {
        tracing::info!(target: ACCESS_LOG_TARGET, id, method = method.as_str(), path, status, ms = elapsed_ms);
    }
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    state.metrics.observe(route, method.as_str(), status, elapsed_ms);
    let h = resp.headers_mut();
    h.insert("x-request-id", request_id);
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.entry(header::X_FRAME_OPTIONS).or_insert(HeaderValue::from_static("DENY"));
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static("frame-ancestors 'none'"));
    if state.opts.secure_cookies {
        // Served over https: browsers must never come back over plain http (RFC 6797).
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    resp
}

/// The most a request line's target may hold: far above any OAuth or REST request.
pub const MAX_URI: usize = 8 * 1024;
/// The most all of a request's header names and values may hold together.
pub const MAX_HEADERS: usize = 32 * 1024;

/// 414 or 431 for a request whose target or headers pass the bounds, before any handler reads
/// them (bodies are bounded by `DefaultBodyLimit` and each reader's own limit).
fn oversized(req: &Request) -> Option<StatusCode> {
    if req.uri().path_and_query().map_or(0, |p| p.as_str().len()) > MAX_URI {
        return Some(StatusCode::URI_TOO_LONG);
    }
    let total: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    (total > MAX_HEADERS).then_some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
}

pub async fn healthz() -> Response {
    http::plain(StatusCode::OK, "ok")
}

/// Ready when the database answers.
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.engine.store().ping().await {
        Ok(()) => http::plain(StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            http::plain(StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render()).into_response()
}

pub async fn not_found() -> Response {
    http::plain(StatusCode::NOT_FOUND, "not found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_count_per_route_method_and_status() {
        let m = Metrics::default();
        m.observe("/b", "GET", 200, 0.2);
        m.observe("/a", "POST", 400, 3.0);
        m.observe("/a", "POST", 200, 0.7);
        m.observe("/a", "POST", 200, 2000.0);
        m.observe("/a", "GET", 200, 0.1);
        m.token_issued("client_credentials");
        let text = m.render();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("valet_http_requests_total")).collect();
        assert_eq!(
            lines,
            [
                "valet_http_requests_total{route=\"/a\",method=\"GET\",status=\"200\"} 1",
                "valet_http_requests_total{route=\"/a\",method=\"POST\",status=\"200\"} 2",
                "valet_http_requests_total{route=\"/a\",method=\"POST\",status=\"400\"} 1",
                "valet_http_requests_total{route=\"/b\",method=\"GET\",status=\"200\"} 1",
            ]
        );
        // Cumulative buckets: 0.1 and 0.7 ms are under 1 ms, 3 ms under 5 ms, 2 s only in +Inf.
        assert!(text.contains("valet_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.001\"} 2\n"), "{text}");
        assert!(text.contains("valet_http_request_duration_seconds_bucket{route=\"/a\",le=\"0.005\"} 3\n"), "{text}");
        assert!(text.contains("valet_http_request_duration_seconds_bucket{route=\"/a\",le=\"1\"} 3\n"), "{text}");
        assert!(text.contains("valet_http_request_duration_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n"), "{text}");
        assert!(text.contains("valet_http_request_duration_seconds_count{route=\"/a\"} 4\n"), "{text}");
        assert!(text.contains("valet_tokens_issued_total{grant=\"client_credentials\"} 1\n"), "{text}");
    }
}
