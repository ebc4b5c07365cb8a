//! Property tests: the parser must never panic, and whatever it returns must point inside the
//! text. Inputs are random bytes, random soups of SOQL tokens, and mutations of valid queries,
//! from a fixed-seed generator so failures reproduce.

use valet_soql::{parse, render_at, DateLiteral, ErrorKind};

/// xorshift64*: tiny, deterministic, good enough to shake a parser.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Parse and check the invariants of the outcome.
fn check(text: &str) {
    match parse(text) {
        Ok(q) => {
            // Every span in the tree lies inside the text, on character boundaries.
            let json = serde_json::to_value(&q).unwrap_or_default();
            check_spans(text, &json);
            assert!(!q.select.is_empty(), "{text:?}");
        }
        Err(e) => {
            assert!(e.span.start <= e.span.end && e.span.end <= text.len(), "{text:?}: {e:?}");
            assert!(text.is_char_boundary(e.span.start), "{text:?}: {e:?}");
            assert!(e.line >= 1 && e.column >= 1);
            assert!(!e.message.is_empty());
            let r = e.render_salesforce(text);
            assert!(r.contains(&format!("ERROR at Row:{}:Column:{}", e.line, e.column)), "{r}");
            assert!(r.ends_with(&e.message));
        }
    }
}

fn check_spans(text: &str, v: &serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            if let (Some(s), Some(e)) = (m.get("start").and_then(|s| s.as_u64()), m.get("end").and_then(|e| e.as_u64()))
            {
                let (s, e) = (s as usize, e as usize);
                assert!(s <= e && e <= text.len(), "{text:?}: span {s}..{e}");
                assert!(text.is_char_boundary(s) && text.is_char_boundary(e), "{text:?}: span {s}..{e}");
            }
            m.values().for_each(|v| check_spans(text, v));
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| check_spans(text, v)),
        _ => {}
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..5_000 {
        let len = rng.below(120);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        check(&String::from_utf8_lossy(&bytes));
        // Mostly-ASCII printable text hits more of the lexer.
        let ascii: String = (0..len).map(|_| (32 + rng.below(95)) as u8 as char).collect();
        check(&ascii);
    }
}

const SOUP: &[&str] = &[
    "SELECT",
    "select",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "LIKE",
    "INCLUDES",
    "EXCLUDES",
    "ORDER",
    "BY",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
    "LIMIT",
    "OFFSET",
    "WITH",
    "SECURITY_ENFORCED",
    "FOR",
    "VIEW",
    "UPDATE",
    "GROUP",
    "HAVING",
    "TYPEOF",
    "USING",
    "COUNT",
    "SUM",
    "FIELDS",
    "toLabel",
    "Id",
    "Name",
    "Account",
    "Owner",
    "Custom__c",
    "x__r",
    "null",
    "true",
    "FALSE",
    "TODAY",
    "LAST_N_DAYS",
    "N_DAYS_AGO",
    "THIS_FISCAL_YEAR",
    ",",
    ".",
    "(",
    ")",
    "=",
    "!=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    ":",
    "+",
    "-",
    "*",
    ";",
    "\"",
    "'",
    "'a'",
    "'\\'",
    "'\\%'",
    "'it\\'s'",
    "'x",
    "1",
    "42",
    "-7",
    "2.5",
    "99999999999999999999999",
    "2024-01-31",
    "2024-02-30",
    "2024-01-31T10:00:00Z",
    "2024-01-31T10:00:00.5+01:00",
    "2024-01-31T10",
    "é",
    "✓",
    "\n",
    "\t",
    "\\",
    "__",
    "_",
];

#[test]
fn token_soups_never_panic() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    for _ in 0..20_000 {
        let n = rng.below(30);
        let mut text = String::new();
        if rng.below(2) == 0 {
            text.push_str("SELECT Id FROM Account WHERE ");
        }
        for _ in 0..n {
            text.push_str(rng.pick::<&str>(SOUP));
            if rng.below(4) != 0 {
                text.push(' ');
            }
        }
        check(&text);
    }
}

const VALID: &[&str] = &[
    "SELECT Id FROM ScratchOrgInfo limit 1",
    "SELECT Name, InstanceName, IsSandbox, TrialExpirationDate, NamespacePrefix, OrganizationType FROM Organization",
    "SELECT Id, Name FROM Account WHERE Name = 'Acme'",
    "SELECT COUNT() FROM Account",
    "SELECT Id, Owner.Name FROM Contact WHERE (Name LIKE 'A\\%%' OR Email != null) AND CreatedDate = LAST_N_DAYS:7 ORDER BY Name DESC NULLS LAST LIMIT 10 OFFSET 5",
    "SELECT Id FROM Opportunity WHERE Amount >= -1.5 AND StageName NOT IN ('Closed', 'Lost') AND CloseDate < 2024-01-31T10:00:00.000+01:00 WITH SECURITY_ENFORCED FOR VIEW",
    "SELECT SUM(Amount), COUNT(Id) FROM Opportunity WHERE NOT (IsClosed = true)",
    "SELECT Id FROM Contact WHERE Langs__c INCLUDES ('en;fr') AND Langs__c EXCLUDES ('de')",
];

#[test]
fn mutated_valid_queries_never_panic() {
    for q in VALID {
        assert!(parse(q).is_ok(), "{q}");
    }
    let mut rng = Rng(0x0123_4567_89AB_CDEF);
    for _ in 0..20_000 {
        let mut chars: Vec<char> = rng.pick(VALID).chars().collect();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(chars.len() + 1);
            match rng.below(4) {
                0 if at < chars.len() => {
                    chars.remove(at);
                }
                1 => chars.insert(at, *rng.pick(&['(', ')', '\'', '\\', ',', '.', ':', ' ', '-', 'é', '0', 'T', 'Z'])),
                2 if at < chars.len() => chars[at] = (32 + rng.below(95)) as u8 as char,
                _ => {
                    // Duplicate a slice: repeats clauses and operators.
                    let end = (at + rng.below(12)).min(chars.len());
                    let dup: Vec<char> = chars[at..end].to_vec();
                    for (i, c) in dup.into_iter().enumerate() {
                        chars.insert(end + i, c);
                    }
                }
            }
        }
        let text: String = chars.into_iter().collect();
        check(&text);
    }
}

#[test]
fn pathological_shapes_are_errors_not_crashes() {
    let prefix = "SELECT Id FROM A WHERE ";
    for body in [
        "(".repeat(99_000),
        ")".repeat(99_000),
        "NOT (".repeat(19_000),
        format!("{}a = 1{}", "(".repeat(60), ")".repeat(60)),
        "a = 1 AND ".repeat(9_000),
        format!("Id IN ({}'x')", "'x', ".repeat(19_000)),
        "'".repeat(99_000),
        "\\".repeat(99_000),
        "Owner.".repeat(16_000),
    ] {
        let text = format!("{prefix}{body}");
        check(&text);
    }
    // Long but valid: many conditions and a long IN list parse fine.
    let many = format!("{prefix}{}a = 1", "a = 1 AND ".repeat(5_000));
    assert!(parse(&many).is_ok());
    let list = format!("{prefix}Id IN ({}'x')", "'x', ".repeat(15_000));
    assert!(parse(&list).is_ok());
    // Over the length limit: refused up front.
    let e = parse(&"(".repeat(200_000)).err().map(|e| e.kind);
    assert_eq!(e, Some(ErrorKind::Malformed));
}

#[test]
fn render_at_never_panics() {
    let mut rng = Rng(42);
    let texts = [
        "",
        "a",
        "é\n✓\r\nxyz",
        "SELECT Id\nFROM Account WHERE Name = 'x' AND B = 2 AND C = 3 AND D = 4 AND E = 5 AND F = 6",
    ];
    for _ in 0..2_000 {
        let t = rng.pick(&texts);
        let offset = rng.below(t.len() + 10);
        let r = render_at(t, offset, "m");
        assert!(r.starts_with('\n') && r.ends_with("\nm"));
    }
}

#[test]
fn date_literal_ranges_never_panic_and_are_ordered() {
    let mut rng = Rng(7);
    let names = [
        "LAST_N_DAYS",
        "NEXT_N_DAYS",
        "N_DAYS_AGO",
        "LAST_N_WEEKS",
        "NEXT_N_WEEKS",
        "N_WEEKS_AGO",
        "LAST_N_MONTHS",
        "NEXT_N_MONTHS",
        "N_MONTHS_AGO",
        "LAST_N_QUARTERS",
        "NEXT_N_QUARTERS",
        "N_QUARTERS_AGO",
        "LAST_N_YEARS",
        "NEXT_N_YEARS",
        "N_YEARS_AGO",
        "LAST_N_FISCAL_QUARTERS",
        "NEXT_N_FISCAL_QUARTERS",
        "N_FISCAL_QUARTERS_AGO",
        "LAST_N_FISCAL_YEARS",
        "NEXT_N_FISCAL_YEARS",
        "N_FISCAL_YEARS_AGO",
    ];
    for _ in 0..20_000 {
        let n = match rng.below(3) {
            0 => rng.below(10) as u32,
            1 => rng.below(5_000) as u32,
            _ => rng.next() as u32,
        };
        let l = DateLiteral::with_n(rng.pick::<&str>(&names), n).unwrap_or(DateLiteral::Today);
        let today = (1 + rng.below(9999) as i32, 1 + rng.below(12) as u32, 1 + rng.below(31) as u32);
        let opts = valet_soql::RangeOptions {
            week_start_sunday: rng.below(2) == 0,
            fiscal_year_start_month: 1 + rng.below(12) as u32,
        };
        let (start, end) = l.range_with(today, opts);
        assert!(start <= end, "{l} {today:?}: {start} > {end}");
        assert!(valet_soql::CivilDate::new(start.year, start.month, start.day).is_some());
        assert!(valet_soql::CivilDate::new(end.year, end.month, end.day).is_some());
    }
}
