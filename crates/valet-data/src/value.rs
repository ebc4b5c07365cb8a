//! Values between JSON, SQL parameters and SQL rows, by storage class.

use serde::{Serialize, Serializer};
use serde_json::Value as Json;
use sqlx::any::{AnyArguments, AnyRow, AnyTypeInfoKind};
use sqlx::{Arguments, Row, ValueRef as _};
use valet_core::clock::SfDateTime;
use valet_core::ids::SfId;
use valet_soql::CivilDate;

use crate::error::{DataError, DataResult};
use crate::schema::{FieldDef, FieldType, Storage};

/// A bound parameter. There is no null: nulls are written as the SQL keyword (an untyped null
/// parameter is `int4` on PostgreSQL and would not fit a text or double column).
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Text(String),
    Int(i64),
    Real(f64),
}

impl rusqlite::ToSql for SqlValue {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match self {
            SqlValue::Text(s) => ValueRef::Text(s.as_bytes()),
            SqlValue::Int(i) => ValueRef::Integer(*i),
            SqlValue::Real(f) => ValueRef::Real(*f),
        }))
    }
}

/// Parameters in `$1, $2, ...` order: both backends read `$N` as "argument N".
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<SqlValue>);

impl Params {
    /// Adds a value and returns its placeholder.
    pub fn push(&mut self, v: SqlValue) -> String {
        self.0.push(v);
        format!("${}", self.0.len())
    }

    pub fn text(&mut self, s: &str) -> String {
        self.push(SqlValue::Text(s.to_string()))
    }

    pub fn int(&mut self, i: i64) -> String {
        self.push(SqlValue::Int(i))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The values, in `$N` order (bound as they are on the SQLite read connections).
    pub fn values(&self) -> &[SqlValue] {
        &self.0
    }

    pub fn to_args(&self) -> DataResult<AnyArguments<'static>> {
        let mut a = AnyArguments::default();
        for v in &self.0 {
            let r = match v {
                SqlValue::Text(s) => a.add(s.clone()),
                SqlValue::Int(i) => a.add(*i),
                SqlValue::Real(f) => a.add(*f),
            };
            r.map_err(DataError::internal)?;
        }
        Ok(a)
    }
}

/// A value read from a row, before it is given its JSON shape.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Cell {
    /// A value of a row read on the SQLite read connections (decoded by value, as [`cell`]).
    pub fn from_sqlite(v: rusqlite::types::ValueRef<'_>) -> Cell {
        use rusqlite::types::ValueRef;
        match v {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(i) => Cell::Int(i),
            ValueRef::Real(f) => Cell::Real(f),
            ValueRef::Text(t) | ValueRef::Blob(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
        }
    }
}

/// Reads column `i` whatever its runtime type: SQLite reports the stored value's type (a
/// REAL column can hand back an integer for an aggregate), so decoding goes by value, not by
/// declared type.
pub fn cell(row: &AnyRow, i: usize) -> DataResult<Cell> {
    let raw = row.try_get_raw(i).map_err(DataError::internal)?;
    if raw.is_null() {
        return Ok(Cell::Null);
    }
    let kind = raw.type_info().kind();
    let e = DataError::internal;
    Ok(match kind {
        AnyTypeInfoKind::Null => Cell::Null,
        AnyTypeInfoKind::Bool => Cell::Int(i64::from(row.try_get::<bool, _>(i).map_err(e)?)),
        AnyTypeInfoKind::SmallInt | AnyTypeInfoKind::Integer | AnyTypeInfoKind::BigInt => {
            Cell::Int(row.try_get::<i64, _>(i).map_err(e)?)
        }
        AnyTypeInfoKind::Real | AnyTypeInfoKind::Double => Cell::Real(row.try_get::<f64, _>(i).map_err(e)?),
        AnyTypeInfoKind::Text => Cell::Text(row.try_get::<String, _>(i).map_err(e)?),
        AnyTypeInfoKind::Blob => {
            Cell::Text(String::from_utf8_lossy(&row.try_get::<Vec<u8>, _>(i).map_err(e)?).into_owned())
        }
    })
}

impl Cell {
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Cell::Int(i) => Some(*i),
            Cell::Real(f) => Some(*f as i64),
            Cell::Text(t) => t.parse().ok(),
            Cell::Null => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Cell::Int(i) => Some(*i as f64),
            Cell::Real(f) => Some(*f),
            Cell::Text(t) => t.parse().ok(),
            Cell::Null => None,
        }
    }

    pub fn into_text(self) -> Option<String> {
        match self {
            Cell::Text(t) => Some(t),
            Cell::Int(i) => Some(i.to_string()),
            Cell::Real(f) => Some(f.to_string()),
            Cell::Null => None,
        }
    }

    /// The JSON Salesforce sends for a field of this type (records write [`FieldValue`] in
    /// place; this is for the few values that become part of a `Value` tree).
    pub fn to_json(&self, ftype: FieldType) -> Json {
        serde_json::to_value(FieldValue(self, ftype)).unwrap_or(Json::Null)
    }
}

/// A cell written as the JSON Salesforce sends for a field of this type: booleans from 0/1,
/// numbers as numbers (a non-finite one as `null`), date-times in Salesforce's format, the rest
/// as strings.
pub struct FieldValue<'a>(pub &'a Cell, pub FieldType);

impl Serialize for FieldValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let FieldValue(cell, ftype) = *self;
        if *cell == Cell::Null {
            return s.serialize_unit();
        }
        match ftype.storage() {
            Storage::Bool => s.serialize_bool(cell.as_i64().unwrap_or(0) != 0),
            Storage::Int => match cell.as_i64() {
                Some(i) => s.serialize_i64(i),
                None => s.serialize_unit(),
            },
            Storage::Real => match cell.as_f64() {
                Some(f) if f.is_finite() => s.serialize_f64(f),
                _ => s.serialize_unit(),
            },
            Storage::DateTime => match cell.as_i64() {
                Some(ms) => s.collect_str(&SfDateTime(ms)),
                None => s.serialize_unit(),
            },
            Storage::Id | Storage::Text | Storage::Date => match cell {
                Cell::Text(t) => s.serialize_str(t),
                Cell::Int(i) => s.collect_str(i),
                Cell::Real(f) => s.collect_str(f),
                Cell::Null => s.serialize_unit(),
            },
        }
    }
}

/// A value for a field, parsed from a request body (`None` = set to null).
pub fn from_json(f: &FieldDef, v: &Json) -> DataResult<Option<SqlValue>> {
    if v.is_null() {
        return Ok(None);
    }
    let wrong = || {
        DataError::bad_request(
            "INVALID_TYPE_ON_FIELD_IN_RECORD",
            format!("{}: value not of required type: {}", f.label, shown(v)),
        )
        .with_fields(vec![f.name.clone()])
    };
    let as_text = || -> DataResult<String> {
        match v {
            Json::String(s) => Ok(s.clone()),
            Json::Number(n) => Ok(n.to_string()),
            Json::Bool(b) => Ok(b.to_string()),
            _ => Err(wrong()),
        }
    };
    Ok(Some(match f.storage() {
        Storage::Text => {
            let s = as_text()?;
            if s.contains('\0') {
                // PostgreSQL text cannot hold NUL; refuse it on both backends alike.
                return Err(wrong());
            }
            if s.is_empty() {
                // Salesforce stores an empty string as null.
                return Ok(None);
            }
            let n = s.chars().count();
            if n > f.length as usize {
                return Err(DataError::bad_request(
                    "STRING_TOO_LONG",
                    format!("{}: data value too large: {} (max length={})", f.label, truncate(&s, 100), f.length),
                )
                .with_fields(vec![f.name.clone()]));
            }
            if f.ftype == FieldType::Email && !valid_email(&s) {
                return Err(DataError::bad_request(
                    "INVALID_EMAIL_ADDRESS",
                    format!("{}: invalid email address: {}", f.label, truncate(&s, 100)),
                )
                .with_fields(vec![f.name.clone()]));
            }
            if f.ftype == FieldType::Picklist && f.restricted_picklist && !f.picklist.iter().any(|p| p == &s) {
                return Err(DataError::bad_request(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    format!("{}: bad value for restricted picklist field: {}", f.label, truncate(&s, 100)),
                )
                .with_fields(vec![f.name.clone()]));
            }
            SqlValue::Text(s)
        }
        Storage::Id => {
            let s = as_text()?;
            if s.is_empty() {
                return Ok(None);
            }
            let id = SfId::parse(&s).map_err(|_| {
                DataError::bad_request(
                    "MALFORMED_ID",
                    format!("{}: id value of incorrect type: {}", f.label, truncate(&s, 40)),
                )
                .with_fields(vec![f.name.clone()])
            })?;
            SqlValue::Text(id.as_str().to_string())
        }
        Storage::Bool => match v {
            Json::Bool(b) => SqlValue::Int(i64::from(*b)),
            Json::String(s) if s.eq_ignore_ascii_case("true") => SqlValue::Int(1),
            Json::String(s) if s.eq_ignore_ascii_case("false") => SqlValue::Int(0),
            _ => return Err(wrong()),
        },
        Storage::Int | Storage::Real => {
            let x = match v {
                Json::Number(n) => n.as_f64().ok_or_else(wrong)?,
                Json::String(s) => s.trim().parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(wrong)?,
                _ => return Err(wrong()),
            };
            let int_digits = f.precision.saturating_sub(f.scale).min(18);
            let bound = 10f64.powi(int_digits as i32);
            if !x.is_finite() || x.abs() >= bound {
                return Err(DataError::bad_request(
                    "NUMBER_OUTSIDE_VALID_RANGE",
                    format!("{}: value outside of valid range on numeric field: {}", f.label, shown(v)),
                )
                .with_fields(vec![f.name.clone()]));
            }
            if f.storage() == Storage::Int {
                SqlValue::Int(x.round() as i64)
            } else {
                let m = 10f64.powi(f.scale.min(17) as i32);
                SqlValue::Real((x * m).round() / m)
            }
        }
        Storage::Date => {
            let s = as_text()?;
            // Salesforce also accepts a datetime for a date field and keeps its date part.
            let d = parse_date(s.get(..10).unwrap_or(&s))
                .filter(|_| s.len() == 10 || s.as_bytes().get(10) == Some(&b'T'))
                .ok_or_else(wrong)?;
            SqlValue::Text(d.to_string())
        }
        Storage::DateTime => {
            let s = as_text()?;
            SqlValue::Int(parse_datetime(&s).ok_or_else(wrong)?)
        }
    }))
}

fn shown(v: &Json) -> String {
    match v {
        Json::String(s) => truncate(s, 100),
        other => truncate(&other.to_string(), 100),
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Local part, `@`, a dotted domain; no spaces. Salesforce's own check is about this strict.
fn valid_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && s.len() <= 80
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains('@')
}

/// `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<CivilDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i32 = s.get(0..4)?.parse().ok()?;
    let m: u32 = s.get(5..7)?.parse().ok()?;
    let d: u32 = s.get(8..10)?.parse().ok()?;
    if !s.get(0..4)?.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    CivilDate::new(y, m, d)
}

/// The datetimes Salesforce accepts in JSON: `2024-01-31T10:00:00.000+0000`, `...Z`,
/// `...+01:00`, with or without fraction; a bare date means midnight UTC. Returns epoch ms.
pub fn parse_datetime(s: &str) -> Option<i64> {
    let date = parse_date(s.get(..10)?)?;
    let days = date.days_since_epoch();
    if s.len() == 10 {
        return days.checked_mul(86_400_000);
    }
    let rest = s.get(10..)?;
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
    let num = |t: &str| -> Option<i64> {
        if t.len() == 2 && t.bytes().all(|c| c.is_ascii_digit()) {
            t.parse().ok()
        } else {
            None
        }
    };
    let hh = num(rest.get(0..2)?)?;
    if rest.as_bytes().get(2) != Some(&b':') {
        return None;
    }
    let mm = num(rest.get(3..5)?)?;
    let mut i = 5;
    let mut ss = 0;
    if rest.as_bytes().get(5) == Some(&b':') {
        ss = num(rest.get(6..8)?)?;
        i = 8;
    }
    let mut ms = 0i64;
    if rest.as_bytes().get(i) == Some(&b'.') {
        let frac: String = rest.get(i + 1..)?.chars().take_while(|c| c.is_ascii_digit()).collect();
        if frac.is_empty() || frac.len() > 9 {
            return None;
        }
        i += 1 + frac.len();
        let padded = format!("{frac:0<3}");
        ms = padded.get(..3)?.parse().ok()?;
    }
    let tz = rest.get(i..)?;
    let offset_min: i64 = match tz {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = match tz.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let t = tz.get(1..)?.replace(':', "");
            if t.len() != 4 {
                return None;
            }
            sign * (num(t.get(0..2)?)? * 60 + num(t.get(2..4)?)?)
        }
    };
    if hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss - offset_min * 60;
    secs.checked_mul(1000)?.checked_add(ms)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn datetimes() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_datetime("1970-01-01T00:00:01.5+0000"), Some(1500));
        assert_eq!(parse_datetime("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_datetime("1970-01-02"), Some(86_400_000));
        assert_eq!(parse_datetime("2022-11-04T22:25:39.962+0000"), Some(1_667_600_739_962));
        for bad in ["", "1970-01-01T", "1970-13-01", "1970-01-01T25:00:00Z", "x970-01-01", "1970-01-01T00:00:00+5"] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn emails() {
        assert!(valid_email("a@b.co"));
        assert!(!valid_email("a@b"));
        assert!(!valid_email("a b@c.de"));
        assert!(!valid_email("@c.de"));
    }
}
