//! One result row written as Salesforce writes a record: `attributes` first, then the fields in
//! the select list's order, a parent's fields nested under its relationship name where the
//! first of them was selected (`"Account": {"attributes": …, "Name": …}`), a missing parent as
//! `null`. Every `attributes` has the record's `url`, whether or not its `Id` was selected.
//!
//! The row goes straight to JSON text ([`RecordJson`]), without a `serde_json::Value` tree per
//! record: building and then serializing that tree was ≈ 14 % of a REST record GET.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;

use crate::error::{DataError, DataResult};
use crate::soql::{Compiled, OutField, Shape};
use crate::value::{Cell, FieldValue};

/// A record as JSON text, embedded as it is in the response that carries it.
pub type RecordJson = Box<RawValue>;

/// Writes one row of a records query (`cells` as [`Shape::Records`] lists them).
pub fn write(c: &Compiled<'_>, cells: Vec<Cell>, version: &str) -> DataResult<RecordJson> {
    let Shape::Records { fields, joins_used, root_id_appended } = &c.shape else {
        return Err(DataError::internal("a record written from a query that returns none"));
    };
    let mut cells = cells.into_iter();
    let values: Vec<Cell> = fields.iter().map(|_| cells.next().unwrap_or(Cell::Null)).collect();
    let parent_ids: Vec<Option<String>> = joins_used.iter().map(|_| cells.next().and_then(Cell::into_text)).collect();
    let appended_id = if *root_id_appended { cells.next().and_then(Cell::into_text) } else { None };
    // Per field, the joins from the root to its object (empty, so no allocation, for the root's).
    let chains = fields
        .iter()
        .map(|o| {
            let mut chain = vec![];
            let mut j = o.join;
            while j != 0 {
                chain.push(j);
                j = c.joins[j].2;
            }
            chain.reverse();
            chain
        })
        .collect();
    let row = Row { c, fields, joins_used, values, parent_ids, appended_id, chains, version };
    serde_json::value::to_raw_value(&Object { row: &row, path: &[] }).map_err(DataError::internal)
}

/// A row being written.
struct Row<'a, 's> {
    c: &'a Compiled<'s>,
    fields: &'a [OutField<'s>],
    joins_used: &'a [usize],
    values: Vec<Cell>,
    /// Per entry of `joins_used`: the parent's id, `None` when the row has no such parent.
    parent_ids: Vec<Option<String>>,
    /// The root's ID when it was read without being selected.
    appended_id: Option<String>,
    chains: Vec<Vec<usize>>,
    version: &'a str,
}

impl Row<'_, '_> {
    fn parent_id(&self, join: usize) -> Option<&str> {
        let pos = self.joins_used.iter().position(|j| *j == join)?;
        self.parent_ids.get(pos)?.as_deref()
    }

    /// The root's `Id`, selected or appended.
    fn root_id(&self) -> Option<&str> {
        if let Some(id) = &self.appended_id {
            return Some(id);
        }
        self.fields.iter().zip(&self.values).find(|(o, _)| o.join == 0 && o.field.is("Id")).and_then(|(_, v)| match v {
            Cell::Text(t) => Some(t.as_str()),
            _ => None,
        })
    }
}

/// The object at the end of `path` (joins from the root; empty = the root record).
struct Object<'r, 'a, 's> {
    row: &'r Row<'a, 's>,
    path: &'r [usize],
}

impl Serialize for Object<'_, '_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let row = self.row;
        let depth = self.path.len();
        let (object, id) = match self.path.last() {
            None => (row.c.root.name.as_str(), row.root_id()),
            Some(&j) => (row.c.joins[j].1.name.as_str(), row.parent_id(j)),
        };
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("attributes", &Attributes { object, id, version: row.version })?;
        let mut written: Vec<usize> = vec![];
        for ((o, value), chain) in row.fields.iter().zip(&row.values).zip(&row.chains) {
            // (Every chain starts with the root's empty path; `starts_with` would still call
            // `memcmp` per field.)
            if depth > 0 && !chain.starts_with(self.path) {
                continue;
            }
            if chain.len() == depth {
                m.serialize_entry(&o.field.name, &FieldValue(value, o.field.ftype))?;
                continue;
            }
            let next = chain[depth];
            if written.contains(&next) {
                continue;
            }
            written.push(next);
            let name = &row.c.joins[next].0;
            if row.parent_id(next).is_some() {
                m.serialize_entry(name, &Object { row, path: &chain[..=depth] })?;
            } else {
                m.serialize_entry(name, &())?;
            }
        }
        m.end()
    }
}

/// `{"type": "Account", "url": "/services/data/v62.0/sobjects/Account/001…"}` (no `url`
/// without an id).
struct Attributes<'a> {
    object: &'a str,
    id: Option<&'a str>,
    version: &'a str,
}

impl Serialize for Attributes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Attributes { object, id, version } = *self;
        let mut m = s.serialize_map(Some(if id.is_some() { 2 } else { 1 }))?;
        m.serialize_entry("type", object)?;
        if let Some(id) = id {
            m.serialize_entry("url", &format_args!("/services/data/v{version}/sobjects/{object}/{id}"))?;
        }
        m.end()
    }
}
