//! Calendar values and SOQL date literals.
//!
//! SOQL compares date and datetime fields with literal dates (`2024-01-31`), datetimes
//! (`2024-01-31T10:00:00Z`) and relative date literals (`TODAY`, `LAST_N_DAYS:7`, ...). The SQL
//! translator turns a relative literal into a half-open date range with
//! [`DateLiteral::range`]; the arithmetic is the proleptic Gregorian calendar done by hand
//! (H. Hinnant's day-number algorithms) so the crate needs no date library.

use std::fmt;

use serde::Serialize;

/// A calendar date (proleptic Gregorian). Ordered chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct CivilDate {
    /// Year, 1..=9999 for every date this crate produces.
    pub year: i32,
    /// Month, 1..=12.
    pub month: u32,
    /// Day of month, 1..=28/29/30/31.
    pub day: u32,
}

/// Day numbers of the smallest and largest dates this crate hands out. Ranges are clamped to
/// them so that `LAST_N_YEARS:4000000000` gives a usable (if silly) range instead of an overflow,
/// and so that every date prints as exactly `YYYY-MM-DD` (and therefore compares correctly as
/// text in SQLite).
const MIN_DAYS: i64 = -719_162; // 0001-01-01
const MAX_DAYS: i64 = 2_932_896; // 9999-12-31

/// Whether `year` is a Gregorian leap year.
pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Number of days in `month` (1..=12) of `year`; 0 for a month out of range.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a (valid) civil date. Works for any i64 year that does not overflow.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let m = i64::from(month);
    let d = i64::from(day);
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // 0..=399
    let mp = if m > 2 { m - 3 } else { m + 9 }; // March = 0
    let doy = (153 * mp + 2) / 5 + d - 1; // 0..=365
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // 0..=146096
    era * 146_097 + doe - 719_468
}

/// Civil date of a day number, clamped to 0001-01-01..=9999-12-31.
fn civil_from_days(days: i64) -> CivilDate {
    let z = days.clamp(MIN_DAYS, MAX_DAYS) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    CivilDate {
        year: i32::try_from(year).unwrap_or(9999),
        month: u32::try_from(month).unwrap_or(1),
        day: u32::try_from(day).unwrap_or(1),
    }
}

impl CivilDate {
    /// A validated date, or `None` when the month or day does not exist (`2023-02-29`).
    pub fn new(year: i32, month: u32, day: u32) -> Option<Self> {
        let valid = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(i64::from(year), month);
        valid.then_some(Self { year, month, day })
    }

    /// A date from a `(year, month, day)` tuple, made valid by clamping the month to 1..=12 and
    /// the day into the month, so that a caller's bad "today" cannot make range arithmetic panic.
    pub fn from_tuple((year, month, day): (i32, u32, u32)) -> Self {
        let month = month.clamp(1, 12);
        let day = day.clamp(1, days_in_month(i64::from(year), month));
        Self { year, month, day }
    }

    /// `(year, month, day)`.
    pub fn as_tuple(self) -> (i32, u32, u32) {
        (self.year, self.month, self.day)
    }

    /// Days since 1970-01-01 (negative before).
    pub fn days_since_epoch(self) -> i64 {
        days_from_civil(i64::from(self.year), self.month, self.day)
    }

    /// The date `days` after 1970-01-01, clamped to 0001-01-01..=9999-12-31.
    pub fn from_days_since_epoch(days: i64) -> Self {
        civil_from_days(days)
    }

    /// Day of the week, 0 = Sunday ... 6 = Saturday.
    pub fn weekday(self) -> u32 {
        // 1970-01-01 was a Thursday (4).
        u32::try_from((self.days_since_epoch() + 4).rem_euclid(7)).unwrap_or(0)
    }

    /// This date moved by `days` (clamped like [`CivilDate::from_days_since_epoch`]).
    pub fn add_days(self, days: i64) -> Self {
        civil_from_days(self.days_since_epoch().saturating_add(days))
    }
}

impl fmt::Display for CivilDate {
    /// `YYYY-MM-DD`, the form SOQL, JSON and SQL all use.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// A datetime literal such as `2024-01-31T10:00:00.000+01:00`, kept as written (local fields plus
/// the offset) so nothing is lost; [`DateTimeValue::unix_millis`] and
/// [`DateTimeValue::to_iso_utc_millis`] give the instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct DateTimeValue {
    /// The calendar date as written (in the literal's own offset).
    pub date: CivilDate,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=59.
    pub second: u32,
    /// Fraction of a second, in nanoseconds (`.5` is 500 000 000).
    pub nanos: u32,
    /// Offset from UTC in minutes: 0 for `Z`, 60 for `+01:00`, -480 for `-08:00`.
    pub offset_minutes: i32,
}

impl DateTimeValue {
    /// Milliseconds since 1970-01-01T00:00:00Z of this instant (saturating, so even a
    /// hand-built value with absurd fields cannot overflow).
    pub fn unix_millis(&self) -> i64 {
        let secs = i128::from(self.date.days_since_epoch()) * 86_400
            + i128::from(self.hour) * 3600
            + i128::from(self.minute) * 60
            + i128::from(self.second)
            - i128::from(self.offset_minutes) * 60;
        let millis = secs * 1000 + i128::from(self.nanos / 1_000_000);
        i64::try_from(millis).unwrap_or(if millis < 0 { i64::MIN } else { i64::MAX })
    }

    /// The same instant expressed in UTC (offset 0).
    pub fn to_utc(&self) -> DateTimeValue {
        let total = self.date.days_since_epoch() * 1440 + i64::from(self.hour) * 60 + i64::from(self.minute)
            - i64::from(self.offset_minutes);
        let days = total.div_euclid(1440);
        let mins = total.rem_euclid(1440);
        DateTimeValue {
            date: CivilDate::from_days_since_epoch(days),
            hour: u32::try_from(mins / 60).unwrap_or(0),
            minute: u32::try_from(mins % 60).unwrap_or(0),
            second: self.second,
            nanos: self.nanos,
            offset_minutes: 0,
        }
    }

    /// The instant as `YYYY-MM-DDTHH:MM:SS.mmmZ` in UTC: the form Salesforce returns datetimes
    /// in (with `+0000`), and a form that sorts correctly as text.
    pub fn to_iso_utc_millis(&self) -> String {
        let u = self.to_utc();
        format!("{}T{:02}:{:02}:{:02}.{:03}Z", u.date, u.hour, u.minute, u.second, u.nanos / 1_000_000)
    }
}

impl fmt::Display for DateTimeValue {
    /// The literal in canonical SOQL form, keeping its offset (`Z` when it is 0).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}T{:02}:{:02}:{:02}", self.date, self.hour, self.minute, self.second)?;
        if self.nanos != 0 {
            let frac = format!("{:09}", self.nanos);
            write!(f, ".{}", frac.trim_end_matches('0'))?;
        }
        if self.offset_minutes == 0 {
            write!(f, "Z")
        } else {
            let sign = if self.offset_minutes < 0 { '-' } else { '+' };
            let a = self.offset_minutes.unsigned_abs();
            write!(f, "{sign}{:02}:{:02}", a / 60, a % 60)
        }
    }
}

/// A relative date literal (`TODAY`, `LAST_N_DAYS:7`, ...). The `u32` of parameterised ones is
/// the `n` after the colon.
///
/// The fiscal variants assume the fiscal year starts on the month given to
/// [`DateLiteral::range_with`] (January for [`DateLiteral::range`], Salesforce's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[allow(missing_docs)]
pub enum DateLiteral {
    Yesterday,
    Today,
    Tomorrow,
    LastWeek,
    ThisWeek,
    NextWeek,
    LastMonth,
    ThisMonth,
    NextMonth,
    Last90Days,
    Next90Days,
    ThisQuarter,
    LastQuarter,
    NextQuarter,
    ThisYear,
    LastYear,
    NextYear,
    ThisFiscalQuarter,
    LastFiscalQuarter,
    NextFiscalQuarter,
    ThisFiscalYear,
    LastFiscalYear,
    NextFiscalYear,
    LastNDays(u32),
    NextNDays(u32),
    NDaysAgo(u32),
    LastNWeeks(u32),
    NextNWeeks(u32),
    NWeeksAgo(u32),
    LastNMonths(u32),
    NextNMonths(u32),
    NMonthsAgo(u32),
    LastNQuarters(u32),
    NextNQuarters(u32),
    NQuartersAgo(u32),
    LastNYears(u32),
    NextNYears(u32),
    NYearsAgo(u32),
    LastNFiscalQuarters(u32),
    NextNFiscalQuarters(u32),
    NFiscalQuartersAgo(u32),
    LastNFiscalYears(u32),
    NextNFiscalYears(u32),
    NFiscalYearsAgo(u32),
}

/// The literals without a parameter, by their SOQL name.
const SIMPLE: &[(&str, DateLiteral)] = &[
    ("YESTERDAY", DateLiteral::Yesterday),
    ("TODAY", DateLiteral::Today),
    ("TOMORROW", DateLiteral::Tomorrow),
    ("LAST_WEEK", DateLiteral::LastWeek),
    ("THIS_WEEK", DateLiteral::ThisWeek),
    ("NEXT_WEEK", DateLiteral::NextWeek),
    ("LAST_MONTH", DateLiteral::LastMonth),
    ("THIS_MONTH", DateLiteral::ThisMonth),
    ("NEXT_MONTH", DateLiteral::NextMonth),
    ("LAST_90_DAYS", DateLiteral::Last90Days),
    ("NEXT_90_DAYS", DateLiteral::Next90Days),
    ("THIS_QUARTER", DateLiteral::ThisQuarter),
    ("LAST_QUARTER", DateLiteral::LastQuarter),
    ("NEXT_QUARTER", DateLiteral::NextQuarter),
    ("THIS_YEAR", DateLiteral::ThisYear),
    ("LAST_YEAR", DateLiteral::LastYear),
    ("NEXT_YEAR", DateLiteral::NextYear),
    ("THIS_FISCAL_QUARTER", DateLiteral::ThisFiscalQuarter),
    ("LAST_FISCAL_QUARTER", DateLiteral::LastFiscalQuarter),
    ("NEXT_FISCAL_QUARTER", DateLiteral::NextFiscalQuarter),
    ("THIS_FISCAL_YEAR", DateLiteral::ThisFiscalYear),
    ("LAST_FISCAL_YEAR", DateLiteral::LastFiscalYear),
    ("NEXT_FISCAL_YEAR", DateLiteral::NextFiscalYear),
];

/// Builds a parameterised literal from its `n`.
type MakeWithN = fn(u32) -> DateLiteral;

/// The parameterised literals (`NAME:n`), by their SOQL name.
const WITH_N: &[(&str, MakeWithN)] = &[
    ("LAST_N_DAYS", DateLiteral::LastNDays),
    ("NEXT_N_DAYS", DateLiteral::NextNDays),
    ("N_DAYS_AGO", DateLiteral::NDaysAgo),
    ("LAST_N_WEEKS", DateLiteral::LastNWeeks),
    ("NEXT_N_WEEKS", DateLiteral::NextNWeeks),
    ("N_WEEKS_AGO", DateLiteral::NWeeksAgo),
    ("LAST_N_MONTHS", DateLiteral::LastNMonths),
    ("NEXT_N_MONTHS", DateLiteral::NextNMonths),
    ("N_MONTHS_AGO", DateLiteral::NMonthsAgo),
    ("LAST_N_QUARTERS", DateLiteral::LastNQuarters),
    ("NEXT_N_QUARTERS", DateLiteral::NextNQuarters),
    ("N_QUARTERS_AGO", DateLiteral::NQuartersAgo),
    ("LAST_N_YEARS", DateLiteral::LastNYears),
    ("NEXT_N_YEARS", DateLiteral::NextNYears),
    ("N_YEARS_AGO", DateLiteral::NYearsAgo),
    ("LAST_N_FISCAL_QUARTERS", DateLiteral::LastNFiscalQuarters),
    ("NEXT_N_FISCAL_QUARTERS", DateLiteral::NextNFiscalQuarters),
    ("N_FISCAL_QUARTERS_AGO", DateLiteral::NFiscalQuartersAgo),
    ("LAST_N_FISCAL_YEARS", DateLiteral::LastNFiscalYears),
    ("NEXT_N_FISCAL_YEARS", DateLiteral::NextNFiscalYears),
    ("N_FISCAL_YEARS_AGO", DateLiteral::NFiscalYearsAgo),
];

/// The calendar unit a literal counts in.
#[derive(Clone, Copy)]
enum Unit {
    Day,
    Week,
    /// Periods of this many months, aligned on the calendar year.
    Months(i64),
    /// Periods of this many months, aligned on the fiscal year.
    FiscalMonths(i64),
}

/// Options for [`DateLiteral::range_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RangeOptions {
    /// Weeks start on Sunday (en_US and Salesforce's default) when true, on Monday when false.
    pub week_start_sunday: bool,
    /// First month (1..=12) of the fiscal year; 1 is Salesforce's default. Out-of-range values
    /// are clamped.
    pub fiscal_year_start_month: u32,
}

impl Default for RangeOptions {
    fn default() -> Self {
        Self { week_start_sunday: true, fiscal_year_start_month: 1 }
    }
}

impl DateLiteral {
    /// The literal without a parameter named `name` (case-insensitive), e.g. `today`.
    pub fn simple(name: &str) -> Option<Self> {
        SIMPLE.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, l)| *l)
    }

    /// Whether `name` (case-insensitive) is a literal that needs `:n`, e.g. `LAST_N_DAYS`.
    pub fn takes_n(name: &str) -> bool {
        WITH_N.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// The parameterised literal `name:n`, e.g. `("LAST_N_DAYS", 7)`.
    pub fn with_n(name: &str, n: u32) -> Option<Self> {
        WITH_N.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, make)| make(n))
    }

    /// The SOQL name, upper case, without the `:n`.
    pub fn name(&self) -> &'static str {
        if let Some((n, _)) = SIMPLE.iter().find(|(_, l)| l == self) {
            return n;
        }
        let n = self.n().unwrap_or(0);
        WITH_N.iter().find(|(_, make)| make(n) == *self).map_or("", |(name, _)| name)
    }

    /// The `n` of a parameterised literal.
    pub fn n(&self) -> Option<u32> {
        use DateLiteral::*;
        match *self {
            LastNDays(n)
            | NextNDays(n)
            | NDaysAgo(n)
            | LastNWeeks(n)
            | NextNWeeks(n)
            | NWeeksAgo(n)
            | LastNMonths(n)
            | NextNMonths(n)
            | NMonthsAgo(n)
            | LastNQuarters(n)
            | NextNQuarters(n)
            | NQuartersAgo(n)
            | LastNYears(n)
            | NextNYears(n)
            | NYearsAgo(n)
            | LastNFiscalQuarters(n)
            | NextNFiscalQuarters(n)
            | NFiscalQuartersAgo(n)
            | LastNFiscalYears(n)
            | NextNFiscalYears(n)
            | NFiscalYearsAgo(n) => Some(n),
            _ => None,
        }
    }

    /// The unit and the window `[current + from, current + to)` in that unit, following
    /// Salesforce's definitions ("LAST_N_DAYS:n includes the current day", "NEXT_N_DAYS:n
    /// starts tomorrow", "LAST_N_MONTHS:n excludes the current month", ...).
    fn window(&self) -> (Unit, i64, i64) {
        use DateLiteral::*;
        const Q: Unit = Unit::Months(3);
        const M: Unit = Unit::Months(1);
        const Y: Unit = Unit::Months(12);
        const FQ: Unit = Unit::FiscalMonths(3);
        const FY: Unit = Unit::FiscalMonths(12);
        let last = |u: Unit, n: u32| (u, -i64::from(n), 0);
        let next = |u: Unit, n: u32| (u, 1, i64::from(n) + 1);
        let ago = |u: Unit, n: u32| (u, -i64::from(n), 1 - i64::from(n));
        match *self {
            Yesterday => (Unit::Day, -1, 0),
            Today => (Unit::Day, 0, 1),
            Tomorrow => (Unit::Day, 1, 2),
            LastWeek => (Unit::Week, -1, 0),
            ThisWeek => (Unit::Week, 0, 1),
            NextWeek => (Unit::Week, 1, 2),
            LastMonth => (M, -1, 0),
            ThisMonth => (M, 0, 1),
            NextMonth => (M, 1, 2),
            // "Starts with the current day and continues for the past 90 days": 91 days.
            Last90Days => (Unit::Day, -90, 1),
            Next90Days => (Unit::Day, 1, 91),
            ThisQuarter => (Q, 0, 1),
            LastQuarter => (Q, -1, 0),
            NextQuarter => (Q, 1, 2),
            ThisYear => (Y, 0, 1),
            LastYear => (Y, -1, 0),
            NextYear => (Y, 1, 2),
            ThisFiscalQuarter => (FQ, 0, 1),
            LastFiscalQuarter => (FQ, -1, 0),
            NextFiscalQuarter => (FQ, 1, 2),
            ThisFiscalYear => (FY, 0, 1),
            LastFiscalYear => (FY, -1, 0),
            NextFiscalYear => (FY, 1, 2),
            // LAST_N_DAYS includes today, unlike the other LAST_N_* literals.
            LastNDays(n) => (Unit::Day, -i64::from(n), 1),
            NextNDays(n) => next(Unit::Day, n),
            NDaysAgo(n) => ago(Unit::Day, n),
            LastNWeeks(n) => last(Unit::Week, n),
            NextNWeeks(n) => next(Unit::Week, n),
            NWeeksAgo(n) => ago(Unit::Week, n),
            LastNMonths(n) => last(M, n),
            NextNMonths(n) => next(M, n),
            NMonthsAgo(n) => ago(M, n),
            LastNQuarters(n) => last(Q, n),
            NextNQuarters(n) => next(Q, n),
            NQuartersAgo(n) => ago(Q, n),
            LastNYears(n) => last(Y, n),
            NextNYears(n) => next(Y, n),
            NYearsAgo(n) => ago(Y, n),
            LastNFiscalQuarters(n) => last(FQ, n),
            NextNFiscalQuarters(n) => next(FQ, n),
            NFiscalQuartersAgo(n) => ago(FQ, n),
            LastNFiscalYears(n) => last(FY, n),
            NextNFiscalYears(n) => next(FY, n),
            NFiscalYearsAgo(n) => ago(FY, n),
        }
    }

    /// The dates this literal means, as `(first_day, first_day_after)`: a field matches
    /// `= literal` when `first_day <= value < first_day_after` (for datetimes: from midnight UTC
    /// of `first_day` to midnight UTC of `first_day_after`). `today` is the current UTC date;
    /// weeks start on Sunday when `week_start_sunday`, else on Monday; the fiscal year starts in
    /// January. Results are clamped to 0001-01-01..=9999-12-31; never panics.
    pub fn range(&self, today: (i32, u32, u32), week_start_sunday: bool) -> (CivilDate, CivilDate) {
        self.range_with(today, RangeOptions { week_start_sunday, fiscal_year_start_month: 1 })
    }

    /// [`DateLiteral::range`] with a fiscal year that starts in another month.
    pub fn range_with(&self, today: (i32, u32, u32), opts: RangeOptions) -> (CivilDate, CivilDate) {
        let today = CivilDate::from_tuple(today);
        let (unit, from, to) = self.window();
        let day0 = today.days_since_epoch();
        let (start, end) = match unit {
            Unit::Day => (day0 + from, day0 + to),
            Unit::Week => {
                let first = if opts.week_start_sunday { 0 } else { 1 };
                let back = i64::from((today.weekday() + 7 - first) % 7);
                let ws = day0 - back;
                (ws + 7 * from, ws + 7 * to)
            }
            Unit::Months(len) => month_window(today, len, 0, from, to),
            Unit::FiscalMonths(len) => {
                let anchor = i64::from(opts.fiscal_year_start_month.clamp(1, 12)) - 1;
                month_window(today, len, anchor, from, to)
            }
        };
        (civil_from_days(start), civil_from_days(end))
    }
}

/// Day numbers of `[period + from, period + to)` where periods are `len` months long and start
/// on months `anchor + k*len` (months counted from January of year 0 as 0).
fn month_window(today: CivilDate, len: i64, anchor: i64, from: i64, to: i64) -> (i64, i64) {
    let month_index = i64::from(today.year) * 12 + i64::from(today.month) - 1;
    let current = anchor + (month_index - anchor).div_euclid(len) * len;
    let first_day = |mi: i64| {
        let year = mi.div_euclid(12);
        let month = u32::try_from(mi.rem_euclid(12) + 1).unwrap_or(1);
        days_from_civil(year, month, 1)
    };
    (first_day(current + from * len), first_day(current + to * len))
}

impl fmt::Display for DateLiteral {
    /// The literal as written in SOQL: `TODAY`, `LAST_N_DAYS:7`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.n() {
            Some(n) => write!(f, "{}:{n}", self.name()),
            None => f.write_str(self.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, dd: u32) -> CivilDate {
        CivilDate { year: y, month: m, day: dd }
    }

    fn r(l: DateLiteral, today: (i32, u32, u32)) -> (CivilDate, CivilDate) {
        l.range(today, true)
    }

    #[test]
    fn day_numbers_round_trip() {
        assert_eq!(d(1970, 1, 1).days_since_epoch(), 0);
        assert_eq!(d(2000, 3, 1).days_since_epoch(), 11_017);
        assert_eq!(d(1, 1, 1).days_since_epoch(), MIN_DAYS);
        assert_eq!(d(9999, 12, 31).days_since_epoch(), MAX_DAYS);
        for days in (MIN_DAYS..=MAX_DAYS).step_by(997) {
            let c = CivilDate::from_days_since_epoch(days);
            assert!(CivilDate::new(c.year, c.month, c.day).is_some(), "{c}");
            assert_eq!(c.days_since_epoch(), days);
        }
        assert_eq!(CivilDate::from_days_since_epoch(i64::MIN), d(1, 1, 1));
        assert_eq!(CivilDate::from_days_since_epoch(i64::MAX), d(9999, 12, 31));
    }

    #[test]
    fn leap_years_and_validation() {
        assert!(is_leap_year(2024) && is_leap_year(2000) && !is_leap_year(1900) && !is_leap_year(2023));
        assert!(CivilDate::new(2024, 2, 29).is_some());
        assert!(CivilDate::new(2023, 2, 29).is_none());
        assert!(CivilDate::new(2000, 2, 29).is_some());
        assert!(CivilDate::new(1900, 2, 29).is_none());
        assert!(CivilDate::new(2024, 13, 1).is_none());
        assert!(CivilDate::new(2024, 4, 31).is_none());
        assert!(CivilDate::new(2024, 1, 0).is_none());
        assert_eq!(CivilDate::from_tuple((2023, 2, 31)), d(2023, 2, 28));
        assert_eq!(CivilDate::from_tuple((2023, 0, 0)), d(2023, 1, 1));
    }

    #[test]
    fn weekdays() {
        assert_eq!(d(1970, 1, 1).weekday(), 4); // Thursday
        assert_eq!(d(2024, 1, 31).weekday(), 3); // Wednesday
        assert_eq!(d(2024, 3, 3).weekday(), 0); // Sunday
        assert_eq!(d(1, 1, 1).weekday(), 1); // Monday
    }

    #[test]
    fn day_literals() {
        use DateLiteral::*;
        let t = (2024, 3, 1); // the day after a leap day
        assert_eq!(r(Today, t), (d(2024, 3, 1), d(2024, 3, 2)));
        assert_eq!(r(Yesterday, t), (d(2024, 2, 29), d(2024, 3, 1)));
        assert_eq!(r(Tomorrow, (2024, 12, 31)), (d(2025, 1, 1), d(2025, 1, 2)));
        assert_eq!(r(LastNDays(7), t), (d(2024, 2, 23), d(2024, 3, 2)));
        assert_eq!(r(LastNDays(0), t), (d(2024, 3, 1), d(2024, 3, 2)));
        assert_eq!(r(NextNDays(7), t), (d(2024, 3, 2), d(2024, 3, 9)));
        assert_eq!(r(NDaysAgo(1), t), (d(2024, 2, 29), d(2024, 3, 1)));
        assert_eq!(r(NDaysAgo(366), t), (d(2023, 3, 1), d(2023, 3, 2)));
        assert_eq!(r(Last90Days, t), (d(2023, 12, 2), d(2024, 3, 2)));
        assert_eq!(r(Next90Days, t), (d(2024, 3, 2), d(2024, 5, 31)));
    }

    #[test]
    fn week_literals_depend_on_week_start() {
        use DateLiteral::*;
        let t = (2024, 1, 31); // Wednesday
        assert_eq!(r(ThisWeek, t), (d(2024, 1, 28), d(2024, 2, 4)));
        assert_eq!(ThisWeek.range(t, false), (d(2024, 1, 29), d(2024, 2, 5)));
        assert_eq!(r(LastWeek, t), (d(2024, 1, 21), d(2024, 1, 28)));
        assert_eq!(r(NextWeek, t), (d(2024, 2, 4), d(2024, 2, 11)));
        assert_eq!(r(LastNWeeks(2), t), (d(2024, 1, 14), d(2024, 1, 28)));
        assert_eq!(r(NextNWeeks(2), t), (d(2024, 2, 4), d(2024, 2, 18)));
        assert_eq!(r(NWeeksAgo(1), t), (d(2024, 1, 21), d(2024, 1, 28)));
        // On the first day of the week itself.
        assert_eq!(r(ThisWeek, (2024, 3, 3)), (d(2024, 3, 3), d(2024, 3, 10)));
        assert_eq!(ThisWeek.range((2024, 3, 3), false), (d(2024, 2, 26), d(2024, 3, 4)));
        // Across a year boundary.
        assert_eq!(r(ThisWeek, (2025, 1, 1)), (d(2024, 12, 29), d(2025, 1, 5)));
    }

    #[test]
    fn month_literals() {
        use DateLiteral::*;
        assert_eq!(r(ThisMonth, (2024, 2, 10)), (d(2024, 2, 1), d(2024, 3, 1)));
        assert_eq!(r(LastMonth, (2024, 1, 15)), (d(2023, 12, 1), d(2024, 1, 1)));
        assert_eq!(r(NextMonth, (2024, 12, 31)), (d(2025, 1, 1), d(2025, 2, 1)));
        assert_eq!(r(LastNMonths(3), (2024, 2, 29)), (d(2023, 11, 1), d(2024, 2, 1)));
        assert_eq!(r(NextNMonths(2), (2024, 11, 30)), (d(2024, 12, 1), d(2025, 2, 1)));
        assert_eq!(r(NMonthsAgo(12), (2024, 3, 31)), (d(2023, 3, 1), d(2023, 4, 1)));
        assert_eq!(r(LastNMonths(0), (2024, 3, 31)), (d(2024, 3, 1), d(2024, 3, 1)));
    }

    #[test]
    fn quarter_literals() {
        use DateLiteral::*;
        assert_eq!(r(ThisQuarter, (2024, 1, 1)), (d(2024, 1, 1), d(2024, 4, 1)));
        assert_eq!(r(ThisQuarter, (2024, 3, 31)), (d(2024, 1, 1), d(2024, 4, 1)));
        assert_eq!(r(ThisQuarter, (2024, 4, 1)), (d(2024, 4, 1), d(2024, 7, 1)));
        assert_eq!(r(ThisQuarter, (2024, 12, 31)), (d(2024, 10, 1), d(2025, 1, 1)));
        assert_eq!(r(LastQuarter, (2024, 2, 29)), (d(2023, 10, 1), d(2024, 1, 1)));
        assert_eq!(r(NextQuarter, (2024, 11, 5)), (d(2025, 1, 1), d(2025, 4, 1)));
        assert_eq!(r(LastNQuarters(2), (2024, 5, 5)), (d(2023, 10, 1), d(2024, 4, 1)));
        assert_eq!(r(NextNQuarters(2), (2024, 5, 5)), (d(2024, 7, 1), d(2025, 1, 1)));
        assert_eq!(r(NQuartersAgo(4), (2024, 5, 5)), (d(2023, 4, 1), d(2023, 7, 1)));
    }

    #[test]
    fn year_literals() {
        use DateLiteral::*;
        assert_eq!(r(ThisYear, (2024, 2, 29)), (d(2024, 1, 1), d(2025, 1, 1)));
        assert_eq!(r(LastYear, (2024, 1, 1)), (d(2023, 1, 1), d(2024, 1, 1)));
        assert_eq!(r(NextYear, (2024, 12, 31)), (d(2025, 1, 1), d(2026, 1, 1)));
        assert_eq!(r(LastNYears(4), (2024, 6, 1)), (d(2020, 1, 1), d(2024, 1, 1)));
        assert_eq!(r(NextNYears(2), (2024, 6, 1)), (d(2025, 1, 1), d(2027, 1, 1)));
        assert_eq!(r(NYearsAgo(2), (2024, 6, 1)), (d(2022, 1, 1), d(2023, 1, 1)));
    }

    #[test]
    fn fiscal_literals() {
        use DateLiteral::*;
        // Default fiscal year = calendar year.
        assert_eq!(r(ThisFiscalYear, (2024, 6, 1)), r(ThisYear, (2024, 6, 1)));
        assert_eq!(r(ThisFiscalQuarter, (2024, 6, 1)), r(ThisQuarter, (2024, 6, 1)));
        let april = RangeOptions { week_start_sunday: true, fiscal_year_start_month: 4 };
        assert_eq!(ThisFiscalYear.range_with((2024, 3, 31), april), (d(2023, 4, 1), d(2024, 4, 1)));
        assert_eq!(ThisFiscalYear.range_with((2024, 4, 1), april), (d(2024, 4, 1), d(2025, 4, 1)));
        assert_eq!(ThisFiscalQuarter.range_with((2024, 3, 15), april), (d(2024, 1, 1), d(2024, 4, 1)));
        assert_eq!(ThisFiscalQuarter.range_with((2024, 5, 15), april), (d(2024, 4, 1), d(2024, 7, 1)));
        let feb = RangeOptions { week_start_sunday: true, fiscal_year_start_month: 2 };
        assert_eq!(ThisFiscalQuarter.range_with((2024, 1, 15), feb), (d(2023, 11, 1), d(2024, 2, 1)));
        assert_eq!(LastNFiscalYears(2).range_with((2024, 1, 15), feb), (d(2021, 2, 1), d(2023, 2, 1)));
        assert_eq!(NextFiscalQuarter.range_with((2024, 1, 15), feb), (d(2024, 2, 1), d(2024, 5, 1)));
    }

    #[test]
    fn huge_n_and_bad_today_are_clamped_not_panics() {
        use DateLiteral::*;
        let t = (2024, 6, 1);
        assert_eq!(r(LastNYears(u32::MAX), t).0, d(1, 1, 1));
        assert_eq!(r(NextNYears(u32::MAX), t).1, d(9999, 12, 31));
        assert_eq!(r(LastNDays(u32::MAX), t).0, d(1, 1, 1));
        assert_eq!(r(NextNFiscalQuarters(u32::MAX), t).1, d(9999, 12, 31));
        assert_eq!(r(NWeeksAgo(u32::MAX), t), (d(1, 1, 1), d(1, 1, 1)));
        let _ = r(Today, (i32::MAX, 99, 99));
        let _ = r(ThisWeek, (i32::MIN, 0, 0));
    }

    #[test]
    fn names_round_trip() {
        for (name, l) in SIMPLE {
            assert_eq!(DateLiteral::simple(&name.to_lowercase()), Some(*l));
            assert_eq!(l.name(), *name);
            assert_eq!(l.to_string(), *name);
            assert!(!DateLiteral::takes_n(name));
        }
        for (name, _) in WITH_N {
            assert!(DateLiteral::takes_n(name));
            let l = DateLiteral::with_n(name, 7);
            assert_eq!(l.map(|l| l.to_string()), Some(format!("{name}:7")));
            assert_eq!(l.and_then(|l| l.n()), Some(7));
        }
        assert_eq!(DateLiteral::simple("LAST_N_DAYS"), None);
        assert_eq!(DateLiteral::with_n("TODAY", 1), None);
    }

    #[test]
    fn datetime_conversions() {
        let dt = DateTimeValue {
            date: d(2024, 1, 1),
            hour: 0,
            minute: 30,
            second: 5,
            nanos: 123_000_000,
            offset_minutes: 60,
        };
        assert_eq!(dt.to_iso_utc_millis(), "2023-12-31T23:30:05.123Z");
        assert_eq!(dt.to_string(), "2024-01-01T00:30:05.123+01:00");
        assert_eq!(dt.unix_millis(), 1_704_065_405_123);
        let z = DateTimeValue { offset_minutes: -480, nanos: 0, ..dt };
        assert_eq!(z.to_iso_utc_millis(), "2024-01-01T08:30:05.000Z");
        assert_eq!(z.to_string(), "2024-01-01T00:30:05-08:00");
        assert_eq!(DateTimeValue { offset_minutes: 0, ..z }.to_string(), "2024-01-01T00:30:05Z");
    }
}
