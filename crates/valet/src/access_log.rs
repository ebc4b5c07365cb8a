//! The access log line, formatted by hand.
//!
//! tracing-subscriber's formatters are general: every field goes through `Debug` into a
//! generic writer, the span scope is walked and formatted, the time through a calendar
//! library. For the one event every request logs (target [`ACCESS_LOG_TARGET`], emitted by
//! `valet_server::ops::observe`) that was 15–20 % of a hot scenario's CPU (bench/README.md,
//! "The access log"). [`AccessAware`] writes that event itself — same shape as the other
//! lines, pretty or JSON — and hands every other event to the usual formatter.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use valet_server::ops::ACCESS_LOG_TARGET;

/// An event formatter that writes access events itself and delegates the rest to `inner`.
pub struct AccessAware<F> {
    inner: F,
    json: bool,
}

impl<F> AccessAware<F> {
    /// Lines like tracing-subscriber's `Full` format.
    pub fn text(inner: F) -> Self {
        AccessAware { inner, json: false }
    }
    /// Lines like its flattened JSON format.
    pub fn json(inner: F) -> Self {
        AccessAware { inner, json: true }
    }
}

impl<S, N, F> FormatEvent<S, N> for AccessAware<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        if meta.target() != ACCESS_LOG_TARGET {
            return self.inner.format_event(ctx, writer, event);
        }
        let level = *meta.level();
        let message = if level == Level::ERROR { "request failed" } else { "request" };
        if self.json {
            writer.write_str("{\"timestamp\":\"")?;
            write_time(&mut writer, SystemTime::now())?;
            write!(writer, "\",\"level\":\"{level}\",\"message\":\"{message}\"")?;
            let mut v = JsonFields { w: &mut writer, result: Ok(()) };
            event.record(&mut v);
            v.result?;
            writeln!(writer, ",\"target\":\"{ACCESS_LOG_TARGET}\"}}")
        } else {
            let ansi = writer.has_ansi_escapes();
            let (dim, color, reset) = match (ansi, level) {
                (false, _) => ("", "", ""),
                (true, Level::ERROR) => ("\x1b[2m", "\x1b[31m", "\x1b[0m"),
                (true, Level::WARN) => ("\x1b[2m", "\x1b[33m", "\x1b[0m"),
                (true, _) => ("\x1b[2m", "\x1b[32m", "\x1b[0m"),
            };
            writer.write_str(dim)?;
            write_time(&mut writer, SystemTime::now())?;
            write!(writer, "{reset} {color}{level:>5}{reset} {dim}{ACCESS_LOG_TARGET}:{reset} {message}")?;
            let mut v = TextFields { w: &mut writer, result: Ok(()) };
            event.record(&mut v);
            v.result?;
            writer.write_char('\n')
        }
    }
}

/// ` name=value` per field; a value with anything but printable ASCII is written quoted and
/// escaped (`Debug`), so a field can never start a forged line.
struct TextFields<'a, 'w> {
    w: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Visit for TextFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.result = self.result.and_then(|()| {
            if value.bytes().all(|b| b.is_ascii_graphic() && b != b'"') && !value.is_empty() {
                write!(self.w, " {}={value}", field.name())
            } else {
                write!(self.w, " {}={value:?}", field.name())
            }
        });
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.result = self.result.and_then(|()| write!(self.w, " {}={value}", field.name()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.result = self.result.and_then(|()| write!(self.w, " {}={value}", field.name()));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.result = self.result.and_then(|()| write!(self.w, " {}={value:.3}", field.name()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.result = self.result.and_then(|()| write!(self.w, " {}={value:?}", field.name()));
    }
}

/// `,"name":value` per field.
struct JsonFields<'a, 'w> {
    w: &'a mut Writer<'w>,
    result: fmt::Result,
}

impl Visit for JsonFields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.result = self.result.and_then(|()| {
            write!(self.w, ",\"{}\":", field.name())?;
            json_string(self.w, value)
        });
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.result = self.result.and_then(|()| write!(self.w, ",\"{}\":{value}", field.name()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.result = self.result.and_then(|()| write!(self.w, ",\"{}\":{value}", field.name()));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.result = self.result.and_then(|()| {
            if value.is_finite() {
                write!(self.w, ",\"{}\":{value:.3}", field.name())
            } else {
                write!(self.w, ",\"{}\":null", field.name())
            }
        });
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.result = self.result.and_then(|()| {
            write!(self.w, ",\"{}\":", field.name())?;
            json_string(self.w, &format!("{value:?}"))
        });
    }
}

/// A JSON string literal (RFC 8259 §7).
fn json_string(w: &mut impl fmt::Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    let mut plain = 0;
    for (i, c) in s.char_indices() {
        let escape = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            c if (c as u32) < 0x20 => None,
            _ => continue,
        };
        w.write_str(&s[plain..i])?;
        match escape {
            Some(e) => w.write_str(e)?,
            None => write!(w, "\\u{:04x}", c as u32)?,
        }
        plain = i + c.len_utf8();
    }
    w.write_str(&s[plain..])?;
    w.write_char('"')
}

thread_local! {
    /// The last second formatted on this thread and its `YYYY-MM-DDTHH:MM:SS`: requests in
    /// the same second share the calendar arithmetic.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// RFC 3339 UTC with microseconds, as tracing-subscriber's `SystemTime` timer writes it.
fn write_time(w: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
            let s = secs % 86_400;
            cached.1.clear();
            let _ = write!(cached.1, "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
            cached.0 = secs;
        }
        w.write_str(&cached.1)
    })?;
    write!(w, ".{:06}Z", since.subsec_micros())
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tracing_subscriber::fmt::format;
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[test]
    fn calendar() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_427), (2025, 12, 5));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        let mut s = String::new();
        write_time(&mut s, UNIX_EPOCH + Duration::from_micros(1_764_907_509_000_042)).unwrap();
        assert_eq!(s, "2025-12-05T04:05:09.000042Z");
        // Same second again: the cached prefix, a new fraction.
        s.clear();
        write_time(&mut s, UNIX_EPOCH + Duration::from_micros(1_764_907_509_999_999)).unwrap();
        assert_eq!(s, "2025-12-05T04:05:09.999999Z");
    }

    #[test]
    fn json_strings_escape_what_rfc_8259_requires() {
        let mut s = String::new();
        json_string(&mut s, "a\"b\\c\nd\u{1}é").unwrap();
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);
    impl io::Write for Capture {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    impl<'a> MakeWriter<'a> for Capture {
        type Writer = Capture;
        fn make_writer(&'a self) -> Capture {
            self.clone()
        }
    }
    impl Capture {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap().lines().map(str::to_string).collect()
        }
    }

    /// Logs one access event, one failed request and one ordinary event inside a span.
    fn emit() {
        tracing::info!(target: ACCESS_LOG_TARGET, id = "r1", method = "POST", path = "/services/oauth2/token", status = 200u16, ms = 0.51234);
        tracing::error!(target: ACCESS_LOG_TARGET, id = "r2", method = "GET", path = "/a b\n", status = 500u16, ms = 2.0);
        let span = tracing::info_span!("request", id = "r3");
        let _g = span.enter();
        tracing::warn!(app = "x", "something else");
    }

    #[test]
    fn text_lines() {
        let out = Capture::default();
        let sub = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .with_ansi(false)
            .event_format(AccessAware::text(format()))
            .finish();
        tracing::subscriber::with_default(sub, emit);
        let lines = out.lines();
        assert_eq!(lines.len(), 3, "{lines:?}");
        let (time, rest) = lines[0].split_once(' ').unwrap();
        assert_eq!(time.len(), "2025-12-05T04:05:09.000042Z".len(), "{time}");
        assert_eq!(
            rest,
            " INFO valet::access: request id=r1 method=POST path=/services/oauth2/token status=200 ms=0.512"
        );
        assert!(
            lines[1]
                .ends_with("ERROR valet::access: request failed id=r2 method=GET path=\"/a b\\n\" status=500 ms=2.000"),
            "{}",
            lines[1]
        );
        // Everything else is the usual formatter's, span and all.
        assert!(
            lines[2].contains(" WARN request{id=\"r3\"}: valet::access_log::tests: something else app=\"x\""),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn json_lines() {
        let out = Capture::default();
        let sub = tracing_subscriber::fmt()
            .with_writer(out.clone())
            .json()
            .event_format(AccessAware::json(format().json().flatten_event(true).with_current_span(false)))
            .finish();
        tracing::subscriber::with_default(sub, emit);
        let lines: Vec<serde_json::Value> = out.lines().iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3);
        let mut first = lines[0].clone();
        assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));
        first.as_object_mut().unwrap().remove("timestamp");
        assert_eq!(
            first,
            serde_json::json!({"level": "INFO", "message": "request", "id": "r1", "method": "POST",
                "path": "/services/oauth2/token", "status": 200, "ms": 0.512, "target": "valet::access"})
        );
        assert_eq!(lines[1]["level"], "ERROR");
        assert_eq!(lines[1]["message"], "request failed");
        assert_eq!(lines[1]["path"], "/a b\n");
        assert_eq!(lines[2]["message"], "something else");
        assert_eq!(lines[2]["spans"][0]["id"], "r3");
    }
}
