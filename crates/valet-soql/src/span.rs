//! Byte spans into the query text, and Salesforce's way of pointing at them.
//!
//! Every AST node that a later stage may reject (a field that does not exist, an object that is
//! not supported, a value of the wrong type) keeps the [`Span`] it was parsed from, so that the
//! executor can answer `INVALID_FIELD` / `INVALID_TYPE` with the same
//! `ERROR at Row:R:Column:C` text that Salesforce prints, via [`render_at`].

use serde::Serialize;

/// A half-open byte range `start..end` into the query text that was parsed.
///
/// Byte offsets (not characters) because they slice the original `&str` directly; use
/// [`Span::position`] or [`line_col`] for the 1-based row and column a person reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Span {
    /// First byte of the node.
    pub start: usize,
    /// One past the last byte of the node.
    pub end: usize,
}

impl Span {
    /// A span covering `start..end`.
    pub const fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }

    /// The smallest span covering both `self` and `other`.
    pub fn to(self, other: Span) -> Span {
        Span { start: self.start.min(other.start), end: self.end.max(other.end) }
    }

    /// The source text this span covers, or `""` when it does not fit `text` (never panics).
    pub fn slice(self, text: &str) -> &str {
        text.get(self.start..self.end).unwrap_or("")
    }

    /// Row and column (both 1-based, columns in characters) of the span's start.
    pub fn position(self, text: &str) -> Position {
        let (line, column) = line_col(text, self.start);
        Position { offset: self.start, line, column }
    }
}

/// A point in the query text, in the three forms callers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Position {
    /// Byte offset into the text.
    pub offset: usize,
    /// 1-based row (Salesforce's "Row"); rows are separated by `\n`.
    pub line: usize,
    /// 1-based column in characters (Salesforce's "Column").
    pub column: usize,
}

/// Clamp `offset` into `text` and back onto a character boundary, so that slicing never panics
/// whatever offset a caller hands in.
fn clamp_offset(text: &str, offset: usize) -> usize {
    let mut o = offset.min(text.len());
    while o > 0 && !text.is_char_boundary(o) {
        o -= 1;
    }
    o
}

/// 1-based (row, column) of a byte offset. Columns count characters, not bytes, because that is
/// what a person (and Salesforce's message) counts. Offsets past the end or inside a character
/// are clamped.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let o = clamp_offset(text, offset);
    let before = text.get(..o).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).unwrap_or("").chars().count() + 1;
    (line, column)
}

/// How many characters of context to keep before the error on a long row. Salesforce shows a
/// window, not the whole row, on long queries; 40 characters backed up to the start of a word
/// reproduces the excerpts seen in real error messages.
const CONTEXT_BEFORE: usize = 40;
/// How many characters of the row to show in all.
const EXCERPT_MAX: usize = 120;

/// Render `message` the way Salesforce renders SOQL errors:
///
/// ```text
///
/// SELECT Id FORM Account
///           ^
/// ERROR at Row:1:Column:11
/// unexpected token: 'FORM'
/// ```
///
/// (the message starts with a newline, as Salesforce's does). The executor uses this for its own
/// position-carrying errors (`INVALID_FIELD`, `INVALID_TYPE`) so they look like the parser's.
pub fn render_at(text: &str, offset: usize, message: &str) -> String {
    let o = clamp_offset(text, offset);
    let (line, column) = line_col(text, o);
    let before = text.get(..o).unwrap_or("");
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let rest = text.get(line_start..).unwrap_or("");
    let row = rest.split('\n').next().unwrap_or("");
    let row = row.strip_suffix('\r').unwrap_or(row);
    let chars: Vec<char> = row.chars().collect();
    let col0 = column - 1;
    let mut start = col0.saturating_sub(CONTEXT_BEFORE);
    while start > 0 && start < chars.len() && !chars[start - 1].is_whitespace() {
        start -= 1;
    }
    let end = chars.len().min(start + EXCERPT_MAX).max(start);
    let excerpt: String =
        chars.get(start..end).unwrap_or(&[]).iter().map(|c| if c.is_control() { ' ' } else { *c }).collect();
    let caret = format!("{}^", " ".repeat(col0.saturating_sub(start)));
    format!("\n{excerpt}\n{caret}\nERROR at Row:{line}:Column:{column}\n{message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_rows_and_characters() {
        let t = "SELECT Id\nFROM Accöunt\nWHERE";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 7), (1, 8));
        assert_eq!(line_col(t, 10), (2, 1));
        // 'u' after the two-byte 'ö' is the 10th character of row 2.
        let u = t.find("unt").unwrap_or(0);
        assert_eq!(line_col(t, u), (2, 10));
        assert_eq!(line_col(t, t.len()), (3, 6));
        assert_eq!(line_col(t, 10_000), (3, 6));
        // Inside a multi-byte character: clamped back, no panic.
        let o = t.find('ö').unwrap_or(0) + 1;
        assert_eq!(line_col(t, o), (2, 9));
    }

    #[test]
    fn render_matches_salesforce_shape() {
        let t = "SELECT Id FORM Account";
        assert_eq!(
            render_at(t, 10, "unexpected token: 'FORM'"),
            "\nSELECT Id FORM Account\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FORM'"
        );
    }

    #[test]
    fn render_shows_only_the_error_row() {
        let t = "SELECT Id\nFROM Contact\nWHERE X = 1";
        let r = render_at(t, t.find("X =").unwrap_or(0), "m");
        assert_eq!(r, "\nWHERE X = 1\n      ^\nERROR at Row:3:Column:7\nm");
    }

    #[test]
    fn render_windows_long_rows_at_a_word_start() {
        let t = "WHERE AccountId = '0014000000p6XlS' AND LastName LIKE 'test' OR email LIKE 'test'";
        let o = t.find(" OR ").unwrap_or(0) + 1;
        let r = render_at(t, o, "unexpected token: 'OR'");
        let lines: Vec<&str> = r.split('\n').collect();
        assert_eq!(lines[1], "'0014000000p6XlS' AND LastName LIKE 'test' OR email LIKE 'test'");
        assert_eq!(lines[2].len(), lines[1].find(" OR ").unwrap_or(0) + 2);
        assert!(lines[2].ends_with('^'));
    }

    #[test]
    fn render_at_end_of_text_and_out_of_range() {
        let r = render_at("SELECT", 6, "unexpected token: '<EOF>'");
        assert_eq!(r, "\nSELECT\n      ^\nERROR at Row:1:Column:7\nunexpected token: '<EOF>'");
        let r = render_at("", 99, "x");
        assert_eq!(r, "\n\n^\nERROR at Row:1:Column:1\nx");
    }
}
