//! Injected time. Everything in Valet stores milliseconds since the Unix epoch.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// The base-62 digits in byte order, so that fixed-width numbers written with them sort as
/// strings in numeric order.
pub const SORTED_BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Milliseconds as 8 base-62 characters whose byte order is their time order (62^8 ms is
/// about 6,900 years). Ids and token keys that start with it are written next to the ones made
/// just before them: B-tree inserts append to one page instead of dirtying a random one each.
pub fn sortable(ms: Millis) -> String {
    let mut t = ms.max(0) as u64;
    let mut head = [b'0'; 8];
    for c in head.iter_mut().rev() {
        *c = SORTED_BASE62[(t % 62) as usize];
        t /= 62;
    }
    head.iter().map(|&b| b as char).collect()
}

pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> Millis;
    fn now_secs(&self) -> i64 {
        self.now_ms().div_euclid(1000)
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        // A clock set before 1970 reads as 1970 rather than failing every request.
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        d.as_millis() as i64
    }
}

/// A clock tests move by hand: code expiry, token lifetimes and polling without sleeping.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start_ms: Millis) -> Self {
        ManualClock(Arc::new(AtomicI64::new(start_ms)))
    }
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    pub fn set_ms(&self, ms: Millis) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// Formats epoch milliseconds as `YYYY-MM-DDTHH:MM:SSZ` (the shape Salesforce's identity
/// service uses for `last_modified_date` and userinfo `updated_at`).
pub fn iso8601(ms: Millis) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Same as [`iso8601`] with milliseconds and Salesforce's `+0000` offset (REST record dates).
pub fn sf_datetime(ms: Millis) -> String {
    SfDateTime(ms).to_string()
}

/// A REST record date-time (`2022-11-04T22:25:39.962+0000`) written in place: a record holds
/// several, so years 0–9999 are written digit by digit rather than through `format!`.
#[derive(Debug, Clone, Copy)]
pub struct SfDateTime(pub Millis);

impl SfDateTime {
    /// The 28 bytes, for a year 0–9999.
    fn digits(self) -> Option<[u8; 28]> {
        let ms = self.0;
        let secs = ms.div_euclid(1000);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let y = u32::try_from(y).ok().filter(|y| *y <= 9999)?;
        let mut b = *b"0000-00-00T00:00:00.000+0000";
        let mut put = |at: usize, width: usize, mut v: u32| {
            for i in (at..at + width).rev() {
                b[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        // Each value below fits its width: `rem` < 86,400 and the remainder < 1,000.
        let (hh, mm, ss, frac) = (rem / 3600, (rem % 3600) / 60, rem % 60, ms.rem_euclid(1000));
        put(0, 4, y);
        put(5, 2, m);
        put(8, 2, d);
        put(11, 2, hh as u32);
        put(14, 2, mm as u32);
        put(17, 2, ss as u32);
        put(20, 3, frac as u32);
        Some(b)
    }
}

impl std::fmt::Display for SfDateTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.digits() {
            Some(b) => f.write_str(std::str::from_utf8(&b).map_err(|_| std::fmt::Error)?),
            None => {
                let base = iso8601(self.0);
                write!(f, "{}.{:03}+0000", base.trim_end_matches('Z'), self.0.rem_euclid(1000))
            }
        }
    }
}

// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_dates() {
        assert_eq!(super::iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::iso8601(1_667_600_739_962), "2022-11-04T22:25:39Z");
        assert_eq!(super::sf_datetime(1_667_600_739_962), "2022-11-04T22:25:39.962+0000");
        // The digit-by-digit form agrees with the formatted one over the years it covers.
        let formatted =
            |ms: super::Millis| format!("{}.{:03}+0000", super::iso8601(ms).trim_end_matches('Z'), ms.rem_euclid(1000));
        let mut ms: super::Millis = -62_167_219_200_000; // 0000-01-01
        while ms < 253_402_300_800_000 {
            assert_eq!(super::sf_datetime(ms), formatted(ms), "{ms}");
            ms += 77_777_777_777 + 997;
        }
        for edge in [-62_167_219_200_001, 253_402_300_800_000, 0, 999, -1] {
            assert_eq!(super::sf_datetime(edge), formatted(edge), "{edge}");
        }
    }

    #[test]
    fn sortable_times_sort_as_strings() {
        let times = [0i64, 61, 62, 1_700_000_000_000, 1_700_000_000_001, 1_764_000_000_000];
        let ids: Vec<String> = times.iter().map(|&t| super::sortable(t)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
        assert!(ids.iter().all(|i| i.len() == 8));
    }
}
