//! Text to tokens.
//!
//! Keywords are not tokens of their own: SOQL lets most of them be names too (`FROM Order`,
//! `FROM Group`, a field called `Type`), so every word is an [`Tok::Ident`] and the parser decides
//! by position, comparing case-insensitively. A lexing failure does not stop the lexer with an
//! error straight away: it becomes a [`Tok::Error`] token, so that a syntax error earlier in the
//! text is still the one reported, as Salesforce reports the first problem from the left.

use crate::ast::CompareOp;
use crate::date::{CivilDate, DateTimeValue};
use crate::span::Span;

/// What a token is. Its text is always `span.slice(text)`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A word: `[A-Za-z_][A-Za-z0-9_]*`.
    Ident,
    /// Unsigned `digits` or `digits.digits`.
    Number,
    /// A string literal: each character with whether it was backslash-escaped (which only
    /// matters for `%` and `_` in LIKE patterns).
    Str(Vec<(char, bool)>),
    /// `YYYY-MM-DD`.
    Date(CivilDate),
    /// `YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)`.
    DateTime(DateTimeValue),
    Comma,
    Dot,
    LParen,
    RParen,
    Colon,
    Plus,
    Minus,
    /// `= != <> < <= > >=`.
    Op(CompareOp),
    /// Any other character (`*`, `"`, `;`, a non-ASCII letter...); the parser reports it as an
    /// unexpected token.
    Other,
    /// The text cannot be lexed here; the message is Salesforce-like. Always the last token.
    Error(String),
    /// End of text. Always the last token unless an `Error` is.
    Eof,
}

/// A token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub span: Span,
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    /// Set when an error is about a point other than the token's start (an unterminated string
    /// is reported at the end of the text, where the quote is missing).
    error_at: Option<usize>,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.text.get(self.pos..).and_then(|s| s.chars().next())
    }

    fn peek_nth(&self, n: usize) -> Option<char> {
        self.text.get(self.pos..).and_then(|s| s.chars().nth(n))
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Consume exactly `n` ASCII digits and return their value, or `None` (consuming nothing
    /// useful) when they are not there.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let mut v: u32 = 0;
        for _ in 0..n {
            let d = self.peek()?.to_digit(10)?;
            self.pos += 1;
            v = v * 10 + d;
        }
        Some(v)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// Whether the text at the cursor looks like `dddd-dd-dd`.
    fn at_date(&self) -> bool {
        let b = self.text.as_bytes().get(self.pos..self.pos + 10);
        matches!(b, Some(b) if b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        }))
    }

    fn next_token(&mut self) -> Token {
        while matches!(self.peek(), Some(c) if c.is_whitespace()) {
            self.bump();
        }
        let start = self.pos;
        let Some(c) = self.bump() else {
            return Token { tok: Tok::Eof, span: Span::new(start, start) };
        };
        let tok = match c {
            'a'..='z' | 'A'..='Z' | '_' => {
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || c == '_') {
                    self.pos += 1;
                }
                Tok::Ident
            }
            '0'..='9' => {
                self.pos = start;
                if self.at_date() {
                    self.date_or_datetime(start)
                } else {
                    self.number()
                }
            }
            '\'' => self.string(start),
            ',' => Tok::Comma,
            '.' => Tok::Dot,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ':' => Tok::Colon,
            '+' => Tok::Plus,
            '-' => Tok::Minus,
            '=' => Tok::Op(CompareOp::Eq),
            '!' if self.eat('=') => Tok::Op(CompareOp::Ne),
            '<' if self.eat('=') => Tok::Op(CompareOp::Le),
            '<' if self.eat('>') => Tok::Op(CompareOp::Ne),
            '<' => Tok::Op(CompareOp::Lt),
            '>' if self.eat('=') => Tok::Op(CompareOp::Ge),
            '>' => Tok::Op(CompareOp::Gt),
            _ => Tok::Other,
        };
        match self.error_at.take() {
            Some(at) => Token { tok, span: Span::new(at, at) },
            None => Token { tok, span: Span::new(start, self.pos) },
        }
    }

    /// The error for a string that runs into the end of the text, reported there.
    fn unterminated(&mut self) -> Tok {
        self.error_at = Some(self.text.len());
        Tok::Error("mismatched character '<EOF>' expecting '''".to_string())
    }

    fn number(&mut self) -> Tok {
        while matches!(self.peek(), Some(c) if c.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.peek() == Some('.') && matches!(self.peek_nth(1), Some(c) if c.is_ascii_digit()) {
            self.pos += 1;
            while matches!(self.peek(), Some(c) if c.is_ascii_digit()) {
                self.pos += 1;
            }
        }
        Tok::Number
    }

    fn date_or_datetime(&mut self, start: usize) -> Tok {
        let y = self.digits(4).unwrap_or(0);
        self.pos += 1;
        let m = self.digits(2).unwrap_or(0);
        self.pos += 1;
        let d = self.digits(2).unwrap_or(0);
        let raw = |l: &Self| l.text.get(start..l.pos).unwrap_or("").to_string();
        let Some(date) = CivilDate::new(i32::try_from(y).unwrap_or(0), m, d) else {
            return Tok::Error(format!("invalid date: '{}'", raw(self)));
        };
        if !matches!(self.peek(), Some('T' | 't')) {
            return Tok::Date(date);
        }
        self.pos += 1;
        match self.time_part(date) {
            Some(dt) => Tok::DateTime(dt),
            None => {
                // Take the rest of the malformed literal into the message.
                while matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric() || matches!(c, ':' | '.' | '+' | '-'))
                {
                    self.pos += 1;
                }
                Tok::Error(format!("invalid datetime: '{}'", raw(self)))
            }
        }
    }

    /// `hh:mm:ss[.fff](Z|±hh:mm)` after the `T`.
    fn time_part(&mut self, date: CivilDate) -> Option<DateTimeValue> {
        let hour = self.digits(2).filter(|h| *h <= 23)?;
        self.eat(':').then_some(())?;
        let minute = self.digits(2).filter(|m| *m <= 59)?;
        self.eat(':').then_some(())?;
        let second = self.digits(2).filter(|s| *s <= 59)?;
        let mut nanos = 0u32;
        if self.eat('.') {
            let mut count = 0;
            while let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
                self.pos += 1;
                if count < 9 {
                    nanos = nanos * 10 + d;
                }
                count += 1;
            }
            if count == 0 {
                return None;
            }
            for _ in count..9 {
                nanos *= 10;
            }
        }
        let offset_minutes = match self.bump()? {
            'Z' | 'z' => 0,
            sign @ ('+' | '-') => {
                let h = self.digits(2).filter(|h| *h <= 23)?;
                self.eat(':').then_some(())?;
                let m = self.digits(2).filter(|m| *m <= 59)?;
                let total = i32::try_from(h * 60 + m).ok()?;
                if sign == '-' {
                    -total
                } else {
                    total
                }
            }
            _ => return None,
        };
        // `...Z5` or `...+01:00abc` would otherwise lex as two tokens that the parser reports
        // with a confusing message; treat them as a bad literal.
        if matches!(self.peek(), Some(c) if c.is_ascii_alphanumeric()) {
            return None;
        }
        Some(DateTimeValue { date, hour, minute, second, nanos, offset_minutes })
    }

    /// A string literal; the opening quote is consumed.
    fn string(&mut self, start: usize) -> Tok {
        let mut chars = Vec::new();
        let mut bad_escape: Option<char> = None;
        loop {
            let Some(c) = self.bump() else {
                return self.unterminated();
            };
            match c {
                '\'' => break,
                '\\' => {
                    let Some(e) = self.bump() else {
                        return self.unterminated();
                    };
                    let decoded = match e {
                        'n' | 'N' => ('\n', true),
                        'r' | 'R' => ('\r', true),
                        't' | 'T' => ('\t', true),
                        'b' | 'B' => ('\u{8}', true),
                        'f' | 'F' => ('\u{c}', true),
                        '"' | '\'' | '\\' | '%' | '_' => (e, true),
                        other => {
                            bad_escape.get_or_insert(other);
                            (other, true)
                        }
                    };
                    chars.push(decoded);
                }
                _ => chars.push((c, false)),
            }
        }
        if let Some(e) = bad_escape {
            let raw = self.text.get(start..self.pos).unwrap_or("");
            return Tok::Error(format!(
                "Invalid string literal {raw}. Illegal character sequence '\\{e}' in string literal."
            ));
        }
        Tok::Str(chars)
    }
}

/// Lex all of `text`. The result ends with exactly one `Eof` or `Error` token.
pub(crate) fn lex(text: &str) -> Vec<Token> {
    let mut lexer = Lexer { text, pos: 0, error_at: None };
    let mut out = Vec::new();
    loop {
        let t = lexer.next_token();
        let last = matches!(t.tok, Tok::Eof | Tok::Error(_));
        out.push(t);
        if last {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<Tok> {
        lex(text).into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn words_numbers_punctuation() {
        assert_eq!(
            kinds("SELECT Id, a.b__c FROM x WHERE n >= 1.5 AND m<>2"),
            vec![
                Tok::Ident,
                Tok::Ident,
                Tok::Comma,
                Tok::Ident,
                Tok::Dot,
                Tok::Ident,
                Tok::Ident,
                Tok::Ident,
                Tok::Ident,
                Tok::Ident,
                Tok::Op(CompareOp::Ge),
                Tok::Number,
                Tok::Ident,
                Tok::Ident,
                Tok::Op(CompareOp::Ne),
                Tok::Number,
                Tok::Eof
            ]
        );
        assert_eq!(kinds("1."), vec![Tok::Number, Tok::Dot, Tok::Eof]);
        assert_eq!(kinds("!"), vec![Tok::Other, Tok::Eof]);
        assert_eq!(kinds("* \"x\""), vec![Tok::Other, Tok::Other, Tok::Ident, Tok::Other, Tok::Eof]);
    }

    #[test]
    fn spans_are_bytes() {
        let t = lex("é Id");
        assert_eq!(t[0].span, Span::new(0, 2));
        assert_eq!(t[1].span, Span::new(3, 5));
    }

    #[test]
    fn strings_and_escapes() {
        let t = kinds(r"'a\'b\\c\n\%\_%'");
        assert_eq!(
            t[0],
            Tok::Str(vec![
                ('a', false),
                ('\'', true),
                ('b', false),
                ('\\', true),
                ('c', false),
                ('\n', true),
                ('%', true),
                ('_', true),
                ('%', false),
            ])
        );
        assert_eq!(kinds("'abc")[0], Tok::Error("mismatched character '<EOF>' expecting '''".into()));
        assert_eq!(kinds("'abc\\")[0], Tok::Error("mismatched character '<EOF>' expecting '''".into()));
        assert_eq!(
            kinds(r"'a\zb'")[0],
            Tok::Error(r"Invalid string literal 'a\zb'. Illegal character sequence '\z' in string literal.".into())
        );
    }

    #[test]
    fn dates_and_datetimes() {
        let date = CivilDate { year: 2024, month: 1, day: 31 };
        assert_eq!(kinds("2024-01-31")[0], Tok::Date(date));
        let dt = |offset_minutes, nanos| {
            Tok::DateTime(DateTimeValue { date, hour: 10, minute: 0, second: 0, nanos, offset_minutes })
        };
        assert_eq!(kinds("2024-01-31T10:00:00Z")[0], dt(0, 0));
        assert_eq!(kinds("2024-01-31T10:00:00+01:00")[0], dt(60, 0));
        assert_eq!(kinds("2024-01-31T10:00:00-08:30")[0], dt(-510, 0));
        assert_eq!(kinds("2024-01-31T10:00:00.000Z")[0], dt(0, 0));
        assert_eq!(kinds("2024-01-31T10:00:00.5Z")[0], dt(0, 500_000_000));
        assert_eq!(kinds("2024-01-31T10:00:00.123456789123Z")[0], dt(0, 123_456_789));
        assert!(matches!(kinds("2024-02-30")[0], Tok::Error(ref m) if m == "invalid date: '2024-02-30'"));
        for bad in [
            "2024-01-31T10:00:00",
            "2024-01-31T10:00Z",
            "2024-01-31T25:00:00Z",
            "2024-01-31T10:00:00.Z",
            "2024-01-31T10:00:00+0100",
            "2024-01-31T10:00:00Zx",
        ] {
            assert!(matches!(kinds(bad)[0], Tok::Error(ref m) if m.starts_with("invalid datetime")), "{bad}");
        }
        // Not a date: a number then a minus.
        assert_eq!(kinds("2024-1-31")[..2], [Tok::Number, Tok::Minus]);
    }
}
