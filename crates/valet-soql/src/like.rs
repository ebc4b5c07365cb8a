//! `LIKE` patterns.
//!
//! In SOQL `%` matches any run of characters and `_` exactly one, while `\%` and `\_` are a
//! literal percent sign and underscore. The string value of the pattern alone cannot tell
//! `'50\%'` from `'50%'`, so the lexer keeps each character's "was escaped" bit and the parser
//! builds a [`LikePattern`] of parts. Salesforce's LIKE is case-insensitive.

use serde::Serialize;

use crate::span::Span;

/// One piece of a LIKE pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum LikePart {
    /// Characters that must appear as they are (compared case-insensitively).
    Text(String),
    /// `%`: any run of characters, possibly empty.
    AnyString,
    /// `_`: exactly one character.
    AnyChar,
}

/// A parsed `LIKE 'pattern'` right-hand side.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct LikePattern {
    /// The pattern, with adjacent literal characters merged into one [`LikePart::Text`].
    pub parts: Vec<LikePart>,
    /// The string literal, quotes included.
    pub span: Span,
}

impl LikePattern {
    /// Build from the lexer's `(character, was_escaped)` pairs.
    pub(crate) fn from_chars(chars: &[(char, bool)], span: Span) -> Self {
        let mut parts: Vec<LikePart> = Vec::new();
        for &(c, escaped) in chars {
            match (c, escaped) {
                ('%', false) => parts.push(LikePart::AnyString),
                ('_', false) => parts.push(LikePart::AnyChar),
                _ => match parts.last_mut() {
                    Some(LikePart::Text(t)) => t.push(c),
                    _ => parts.push(LikePart::Text(c.to_string())),
                },
            }
        }
        Self { parts, span }
    }

    /// The pattern as SQL `LIKE` text using `escape` as the escape character, to be used as
    /// `col LIKE ? ESCAPE '<escape>'` (SQLite's LIKE is ASCII-case-insensitive; on PostgreSQL use
    /// `ILIKE`). `%`, `_` and `escape` itself inside literal text are escaped.
    pub fn to_sql_like(&self, escape: char) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                LikePart::AnyString => out.push('%'),
                LikePart::AnyChar => out.push('_'),
                LikePart::Text(t) => {
                    for c in t.chars() {
                        if c == '%' || c == '_' || c == escape {
                            out.push(escape);
                        }
                        out.push(c);
                    }
                }
            }
        }
        out
    }

    /// The literal text when the pattern has no wildcard (so `LIKE` is a case-insensitive `=`).
    pub fn as_exact(&self) -> Option<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                LikePart::Text(t) => out.push_str(t),
                LikePart::AnyString | LikePart::AnyChar => return None,
            }
        }
        Some(out)
    }

    /// Whether `text` matches, case-insensitively (for values computed in memory rather than in
    /// SQL). Linear-space dynamic programming, so no pattern can make it exponential.
    pub fn matches(&self, text: &str) -> bool {
        #[derive(Clone, Copy)]
        enum P {
            Lit(char),
            One,
            Many,
        }
        let fold = |c: char| c.to_lowercase().next().unwrap_or(c);
        let mut pat: Vec<P> = Vec::new();
        for p in &self.parts {
            match p {
                LikePart::AnyString => pat.push(P::Many),
                LikePart::AnyChar => pat.push(P::One),
                LikePart::Text(t) => pat.extend(t.chars().map(|c| P::Lit(fold(c)))),
            }
        }
        let s: Vec<char> = text.chars().map(fold).collect();
        // row[j]: pattern prefix of length i matches text prefix of length j.
        let mut row = vec![false; s.len() + 1];
        row[0] = true;
        for p in pat {
            let mut next = vec![false; s.len() + 1];
            match p {
                P::Many => {
                    let mut seen = false;
                    for j in 0..=s.len() {
                        seen |= row[j];
                        next[j] = seen;
                    }
                }
                P::One => {
                    next[1..].copy_from_slice(&row[..s.len()]);
                }
                P::Lit(c) => {
                    for j in 1..=s.len() {
                        next[j] = row[j - 1] && s[j - 1] == c;
                    }
                }
            }
            row = next;
        }
        row[s.len()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> LikePattern {
        // `\x` in the test string marks an escaped x.
        let mut chars = Vec::new();
        let mut it = s.chars();
        while let Some(c) = it.next() {
            if c == '\\' {
                if let Some(n) = it.next() {
                    chars.push((n, true));
                }
            } else {
                chars.push((c, false));
            }
        }
        LikePattern::from_chars(&chars, Span::default())
    }

    #[test]
    fn parts_keep_escaped_wildcards_literal() {
        assert_eq!(
            pat("a%b_\\%\\_c").parts,
            vec![
                LikePart::Text("a".into()),
                LikePart::AnyString,
                LikePart::Text("b".into()),
                LikePart::AnyChar,
                LikePart::Text("%_c".into()),
            ]
        );
    }

    #[test]
    fn sql_like_escapes_literal_wildcards() {
        assert_eq!(pat("50\\%%").to_sql_like('\\'), "50\\%%");
        assert_eq!(pat("a\\_b_").to_sql_like('!'), "a!_b_");
        assert_eq!(pat("x!y").to_sql_like('!'), "x!!y");
    }

    #[test]
    fn exact() {
        assert_eq!(pat("Acme").as_exact(), Some("Acme".into()));
        assert_eq!(pat("50\\%").as_exact(), Some("50%".into()));
        assert_eq!(pat("Ac%").as_exact(), None);
    }

    #[test]
    fn matching() {
        assert!(pat("ac%").matches("ACME"));
        assert!(pat("%me").matches("Acme"));
        assert!(pat("a_me").matches("acme"));
        assert!(!pat("a_me").matches("ame"));
        assert!(pat("%").matches(""));
        assert!(!pat("_").matches(""));
        assert!(pat("50\\%").matches("50%"));
        assert!(!pat("50\\%").matches("500"));
        assert!(pat("%a%a%a%a%a%a%a%a%b").matches(&format!("{}b", "a".repeat(200))));
        assert!(!pat("%a%a%a%a%a%a%a%a%b").matches(&"a".repeat(200)));
        assert!(pat("ÉCOLE%").matches("école primaire"));
    }
}
