//! The parser through the public API: what real clients send, every construct, and every error
//! with its position.

use valet_soql::{
    parse, AggregateFn, CivilDate, CompareOp, Condition, DateLiteral, DateTimeValue, ErrorKind, FieldPath, LikePart,
    Literal, NullsOrder, Query, SelectItem, SoqlError, SortDirection, Span, Value,
};

#[track_caller]
fn ok(text: &str) -> Query {
    match parse(text) {
        Ok(q) => q,
        Err(e) => panic!("{text:?} failed: {e}\n{}", e.render_salesforce(text)),
    }
}

#[track_caller]
fn err(text: &str) -> SoqlError {
    match parse(text) {
        Ok(q) => panic!("{text:?} parsed: {q:?}"),
        Err(e) => e,
    }
}

/// Assert a malformed-query error: its message and the 1-based column of `at` (the first
/// occurrence of that substring at or after `from`).
#[track_caller]
fn malformed(text: &str, message: &str, at: &str) {
    assert_error(text, ErrorKind::Malformed, message, at);
}

#[track_caller]
fn unsupported(text: &str, message_part: &str, at: &str) {
    let e = err(text);
    assert_eq!(e.kind, ErrorKind::Unsupported, "{text}: {e}");
    assert!(e.message.contains(message_part), "{text}: {}", e.message);
    assert!(e.message.ends_with("not supported by Valet"), "{}", e.message);
    assert_eq!(e.span.start, offset_of(text, at), "{text}: {e}");
}

#[track_caller]
fn assert_error(text: &str, kind: ErrorKind, message: &str, at: &str) {
    let e = err(text);
    assert_eq!((e.kind, e.message.as_str()), (kind, message), "{text}");
    assert_eq!(e.span.start, offset_of(text, at), "{text}: {e}");
}

/// Byte offset of `at` in `text`; `"<EOF>"` means the end.
fn offset_of(text: &str, at: &str) -> usize {
    if at == "<EOF>" {
        return text.len();
    }
    text.rfind(at).unwrap_or_else(|| panic!("{at:?} not in {text:?}"))
}

fn fields(q: &Query) -> Vec<String> {
    q.select
        .iter()
        .map(|s| match s {
            SelectItem::Field(f) => f.dotted(),
            SelectItem::Count(_) => "COUNT()".into(),
            SelectItem::CountField(f) => format!("COUNT({})", f.dotted()),
            SelectItem::Aggregate { func, field, .. } => format!("{func:?}({})", field.dotted()),
        })
        .collect()
}

fn where_(q: &Query) -> &Condition {
    q.where_.as_ref().unwrap_or_else(|| panic!("no WHERE in {q:?}"))
}

/// The single comparison of a `WHERE field op value` query.
fn compare(text: &str) -> (String, CompareOp, Literal) {
    let q = ok(text);
    match where_(&q) {
        Condition::Compare { field, op, value } => (field.dotted(), *op, value.clone()),
        other => panic!("{other:?}"),
    }
}

fn value(text_after_eq: &str) -> Value {
    compare(&format!("SELECT Id FROM Account WHERE X = {text_after_eq}")).2.value
}

/// A compact rendering of a condition tree, to assert structure.
fn shape(c: &Condition) -> String {
    match c {
        Condition::And(v) => format!("AND({})", v.iter().map(shape).collect::<Vec<_>>().join(",")),
        Condition::Or(v) => format!("OR({})", v.iter().map(shape).collect::<Vec<_>>().join(",")),
        Condition::Not(c) => format!("NOT({})", shape(c)),
        Condition::Compare { field, .. } => field.dotted(),
        Condition::In { field, negated, .. } => format!("{}{}IN", field.dotted(), if *negated { " NOT " } else { " " }),
        Condition::Like { field, .. } => format!("{} LIKE", field.dotted()),
        Condition::Includes { field, excludes, .. } => {
            format!("{} {}", field.dotted(), if *excludes { "EXCLUDES" } else { "INCLUDES" })
        }
    }
}

fn where_shape(clause: &str) -> String {
    shape(where_(&ok(&format!("SELECT Id FROM Account WHERE {clause}"))))
}

// ---- what real clients send -----------------------------------------------------------------

#[test]
fn sf_cli_dev_hub_probe() {
    // @salesforce/core after every login; the answer's status is all it reads.
    let text = "SELECT Id FROM ScratchOrgInfo limit 1";
    let q = ok(text);
    assert_eq!(fields(&q), ["Id"]);
    assert_eq!(q.from.name, "ScratchOrgInfo");
    assert_eq!(q.from.span, Span::new(15, 29));
    assert_eq!(q.from.span.position(text).column, 16);
    assert_eq!(q.limit, Some(1));
    assert_eq!(q.limit_span, Some(Span::new(36, 37)));
    assert!(q.where_.is_none() && q.order_by.is_empty() && q.offset.is_none());
}

#[test]
fn sf_cli_organization_query() {
    let q = ok("SELECT Name, InstanceName, IsSandbox, TrialExpirationDate, NamespacePrefix, OrganizationType FROM Organization");
    assert_eq!(
        fields(&q),
        ["Name", "InstanceName", "IsSandbox", "TrialExpirationDate", "NamespacePrefix", "OrganizationType"]
    );
    assert_eq!(q.from.name, "Organization");
}

#[test]
fn simple_salesforce_is_sandbox() {
    let q = ok("SELECT IsSandbox FROM Organization");
    assert_eq!(fields(&q), ["IsSandbox"]);
}

#[test]
fn jsforce_and_simple_salesforce_queries() {
    let q = ok("SELECT Id FROM Account");
    assert_eq!((fields(&q), q.from.name.as_str()), (vec!["Id".to_string()], "Account"));
    let (f, op, v) = compare("SELECT Id, Name FROM Account WHERE Name = 'Acme'");
    assert_eq!((f.as_str(), op), ("Name", CompareOp::Eq));
    assert_eq!(v.value, Value::String("Acme".into()));
    assert_eq!(v.span, Span::new(42, 48));
    let q = ok("SELECT COUNT() FROM Account");
    assert!(q.is_count_only() && !q.is_aggregate());
}

// ---- SELECT ---------------------------------------------------------------------------------

#[test]
fn relationship_paths_and_custom_names() {
    let text = "SELECT Id, Owner.Name, Account.Owner.Profile.Name, Custom__r.Field__c, ns__Thing__c FROM Contact";
    let q = ok(text);
    assert_eq!(fields(&q), ["Id", "Owner.Name", "Account.Owner.Profile.Name", "Custom__r.Field__c", "ns__Thing__c"]);
    let SelectItem::Field(f) = &q.select[2] else { panic!() };
    assert_eq!(f.parts, ["Account", "Owner", "Profile", "Name"]);
    assert_eq!(f.field(), "Name");
    assert_eq!(f.relationships(), ["Account", "Owner", "Profile"]);
    assert_eq!(f.span.slice(text), "Account.Owner.Profile.Name");
    let spans: Vec<&str> = f.part_spans.iter().map(|s| s.slice(text)).collect();
    assert_eq!(spans, ["Account", "Owner", "Profile", "Name"]);
}

#[test]
fn whitespace_and_newlines_anywhere() {
    let q = ok("\n  SELECT\tId ,Name\r\n FROM\n\nAccount  \n");
    assert_eq!(fields(&q), ["Id", "Name"]);
    let q = ok("SELECT Owner . Name FROM Account");
    assert_eq!(fields(&q), ["Owner.Name"]);
}

#[test]
fn keywords_are_case_insensitive_and_names_keep_their_case() {
    let q = ok("sElEcT iD, nAmE fRoM aCcOuNt wHeRe NaMe = 'x' OrDeR bY nAmE dEsC nUlLs LaSt LiMiT 5 oFfSeT 10");
    assert_eq!(fields(&q), ["iD", "nAmE"]);
    assert_eq!(q.from.name, "aCcOuNt");
    assert_eq!(q.order_by[0].direction, SortDirection::Desc);
    assert_eq!(q.order_by[0].nulls, Some(NullsOrder::Last));
    assert_eq!((q.limit, q.offset), (Some(5), Some(10)));
}

#[test]
fn count_and_aggregates() {
    let q = ok("select count() from Account where Name like 'a%' limit 5");
    assert!(q.is_count_only());
    assert_eq!(q.select[0], SelectItem::Count(Span::new(7, 14)));
    let q = ok("SELECT COUNT(Id), SUM(Amount), COUNT_DISTINCT(StageName), AVG(Amount), MIN(CloseDate), MAX(Account.Name) FROM Opportunity");
    assert_eq!(
        fields(&q),
        ["COUNT(Id)", "Sum(Amount)", "CountDistinct(StageName)", "Avg(Amount)", "Min(CloseDate)", "Max(Account.Name)"]
    );
    assert!(q.is_aggregate() && !q.is_count_only());
    let SelectItem::Aggregate { func, span, .. } = &q.select[1] else { panic!() };
    assert_eq!((*func, *span), (AggregateFn::Sum, Span::new(18, 29)));
}

#[test]
fn count_and_aggregate_mixing_rules() {
    malformed("SELECT Id, COUNT() FROM Account", "COUNT() must be the only element in the SELECT list", "COUNT");
    malformed("SELECT COUNT(), Id FROM Account", "COUNT() must be the only element in the SELECT list", "COUNT");
    malformed("SELECT Name, COUNT(Id) FROM Account", "Field must be grouped or aggregated: Name", "Name");
    malformed(
        "SELECT MAX(Amount), Account.Name FROM Opportunity",
        "Field must be grouped or aggregated: Account.Name",
        "Account.Name",
    );
    malformed("SELECT COUNT(Id FROM Account", "expecting a right parentheses, found 'FROM'", "FROM");
    malformed("SELECT COUNT( FROM Account", "unexpected token: 'FROM'", "FROM");
    malformed("SELECT FOO(Id) FROM Account", "unexpected token: '('", "(");
}

// ---- FROM -----------------------------------------------------------------------------------

#[test]
fn object_names_that_are_keywords_elsewhere() {
    assert_eq!(ok("SELECT Id FROM Group").from.name, "Group");
    let q = ok("SELECT Id FROM Order ORDER BY OrderNumber");
    assert_eq!((q.from.name.as_str(), q.order_by[0].field.dotted()), ("Order", "OrderNumber".into()));
    assert_eq!(ok("SELECT Id, Type FROM Case LIMIT 1").from.name, "Case");
    malformed("SELECT Id FROM WHERE", "unexpected token: 'WHERE'", "WHERE");
    malformed("SELECT Id FROM", "unexpected token: '<EOF>'", "<EOF>");
    malformed("SELECT Id FROM 'Account'", "unexpected token: ''Account''", "'Account'");
    malformed("SELECT Id FROM Account, Contact", "unexpected token: ','", ",");
    malformed("SELECT Id FROM Account.Name", "unexpected token: '.'", ".");
}

// ---- WHERE: comparisons, LIKE, IN, INCLUDES --------------------------------------------------

#[test]
fn every_comparison_operator() {
    for (op, expect) in [
        ("=", CompareOp::Eq),
        ("!=", CompareOp::Ne),
        ("<>", CompareOp::Ne),
        ("<", CompareOp::Lt),
        ("<=", CompareOp::Le),
        (">", CompareOp::Gt),
        (">=", CompareOp::Ge),
    ] {
        let (f, got, v) = compare(&format!("SELECT Id FROM Opportunity WHERE Amount {op} 10"));
        assert_eq!((f.as_str(), got, v.value), ("Amount", expect, Value::Int(10)), "{op}");
        // Without spaces too.
        let (_, got, _) = compare(&format!("SELECT Id FROM Opportunity WHERE Amount{op}10"));
        assert_eq!(got, expect);
    }
    assert_eq!(CompareOp::Ne.as_sql(), "<>");
    malformed("SELECT Id FROM A WHERE X == 1", "unexpected token: '='", "= 1");
    malformed("SELECT Id FROM A WHERE X ! = 1", "unexpected token: '!'", "!");
    malformed("SELECT Id FROM A WHERE X =< 1", "unexpected token: '<'", "<");
}

#[test]
fn like_patterns() {
    let text = r"SELECT Id FROM Account WHERE Name LIKE 'Ac\%me\_%_'";
    let q = ok(text);
    let Condition::Like { field, pattern } = where_(&q) else { panic!() };
    assert_eq!(field.dotted(), "Name");
    assert_eq!(pattern.parts, [LikePart::Text("Ac%me_".into()), LikePart::AnyString, LikePart::AnyChar]);
    assert_eq!(pattern.span.slice(text), r"'Ac\%me\_%_'");
    assert_eq!(pattern.to_sql_like('\\'), r"Ac\%me\_%_");
    assert!(pattern.matches("ac%me_XYZ"));
    malformed("SELECT Id FROM A WHERE Name LIKE 5", "unexpected token: '5'", "5");
    malformed("SELECT Id FROM A WHERE Name LIKE Acme", "unexpected token: 'Acme'", "Acme");
    // SOQL has no NOT LIKE: it is NOT (Name LIKE ...).
    malformed("SELECT Id FROM A WHERE Name NOT LIKE 'x'", "unexpected token: 'LIKE'", "LIKE");
    assert_eq!(where_shape("NOT Name LIKE 'x'"), "NOT(Name LIKE)");
}

#[test]
fn in_and_not_in() {
    let text = "SELECT Id FROM Account WHERE Id IN ('001000000000001', '001000000000002') AND Rating NOT IN (null, 'Hot', 3, 2024-01-31)";
    let q = ok(text);
    let Condition::And(items) = where_(&q) else { panic!() };
    let Condition::In { field, negated, values } = &items[0] else { panic!() };
    assert_eq!((field.dotted().as_str(), *negated, values.len()), ("Id", false, 2));
    assert_eq!(values[1].span.slice(text), "'001000000000002'");
    let Condition::In { negated, values, .. } = &items[1] else { panic!() };
    assert!(*negated);
    let got: Vec<&Value> = values.iter().map(|l| &l.value).collect();
    assert_eq!(
        got,
        [
            &Value::Null,
            &Value::String("Hot".into()),
            &Value::Int(3),
            &Value::Date(CivilDate { year: 2024, month: 1, day: 31 })
        ]
    );
    assert_eq!(where_shape("Id IN ('a')"), "Id IN");
    assert_eq!(where_shape("Id not in ('a')"), "Id NOT IN");
    malformed("SELECT Id FROM A WHERE Id IN ()", "unexpected token: ')'", ")");
    malformed("SELECT Id FROM A WHERE Id IN ('a' 'b')", "expecting a right parentheses, found ''b''", "'b'");
    malformed("SELECT Id FROM A WHERE Id IN ('a',)", "unexpected token: ')'", ")");
    malformed("SELECT Id FROM A WHERE Id IN ('a'", "expecting a right parentheses, found '<EOF>'", "<EOF>");
    malformed("SELECT Id FROM A WHERE Id IN 'a'", "unexpected token: ''a''", "'a'");
    malformed("SELECT Id FROM A WHERE Id NOT ('a')", "unexpected token: '('", "(");
    malformed("SELECT Id FROM A WHERE Id IN :ids", "Bind variables only allowed in Apex code", ":");
    unsupported("SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact)", "semi-join", "SELECT AccountId");
    unsupported(
        "SELECT Id FROM Account WHERE Id NOT IN (SELECT AccountId FROM Contact)",
        "semi-join",
        "SELECT AccountId",
    );
}

#[test]
fn includes_and_excludes() {
    let q = ok("SELECT Id FROM Contact WHERE Langs__c INCLUDES ('en;fr', 'de') AND Langs__c EXCLUDES ('it')");
    let Condition::And(items) = where_(&q) else { panic!() };
    let Condition::Includes { excludes, values, .. } = &items[0] else { panic!() };
    assert!(!excludes);
    assert_eq!(values[0].value, Value::String("en;fr".into()));
    let Condition::Includes { excludes, values, .. } = &items[1] else { panic!() };
    assert!(*excludes && values.len() == 1);
    malformed("SELECT Id FROM A WHERE L INCLUDES 'a'", "unexpected token: ''a''", "'a'");
}

#[test]
fn left_hand_side_must_be_a_field() {
    malformed("SELECT Id FROM A WHERE 'x' = Name", "unexpected token: ''x''", "'x'");
    malformed("SELECT Id FROM A WHERE 1 = 1", "unexpected token: '1'", "1 =");
    malformed("SELECT Id FROM A WHERE Name", "unexpected token: '<EOF>'", "<EOF>");
    malformed("SELECT Id FROM A WHERE Name 'x'", "unexpected token: ''x''", "'x'");
    malformed("SELECT Id FROM A WHERE Owner. = 'x'", "unexpected token: '='", "=");
    unsupported("SELECT Id FROM Opportunity WHERE CALENDAR_YEAR(CloseDate) = 2024", "CALENDAR_YEAR", "CALENDAR_YEAR");
    unsupported("SELECT Id FROM Account WHERE DISTANCE(Loc__c, GEOLOCATION(1,2), 'mi') < 20", "DISTANCE", "DISTANCE");
    unsupported("SELECT Id FROM Account WHERE COUNT(Id) > 1", "COUNT", "COUNT");
}

// ---- WHERE: AND, OR, NOT, parentheses --------------------------------------------------------

#[test]
fn boolean_structure() {
    assert_eq!(where_shape("A = 1"), "A");
    assert_eq!(where_shape("A = 1 AND B = 2 AND C = 3"), "AND(A,B,C)");
    assert_eq!(where_shape("A = 1 or B = 2 OR C = 3"), "OR(A,B,C)");
    assert_eq!(where_shape("(A = 1 AND B = 2) OR C = 3"), "OR(AND(A,B),C)");
    assert_eq!(where_shape("A = 1 AND (B = 2 OR C = 3)"), "AND(A,OR(B,C))");
    assert_eq!(where_shape("NOT A = 1"), "NOT(A)");
    assert_eq!(where_shape("NOT (A = 1 OR B = 2)"), "NOT(OR(A,B))");
    assert_eq!(where_shape("(NOT A = 1) AND B = 2"), "AND(NOT(A),B)");
    assert_eq!(where_shape("A = 1 AND (NOT B = 2)"), "AND(A,NOT(B))");
    assert_eq!(where_shape("((A = 1))"), "A");
    assert_eq!(where_shape("NOT ((NOT (A LIKE 'x')) AND B = 2)"), "NOT(AND(NOT(A LIKE),B))");
    assert_eq!(where_shape("(A = 1 OR B = 2) AND (C = 3 OR (D = 4 AND E = 5))"), "AND(OR(A,B),OR(C,AND(D,E)))");
}

#[test]
fn and_or_must_not_be_mixed_without_parentheses() {
    // Salesforce: "unexpected token: 'OR'" at the operator that breaks the run.
    malformed("SELECT Id FROM A WHERE a = 1 AND b = 2 OR c = 3", "unexpected token: 'OR'", "OR");
    malformed("SELECT Id FROM A WHERE a = 1 OR b = 2 AND c = 3", "unexpected token: 'AND'", "AND");
    malformed("SELECT Id FROM A WHERE (a = 1 AND b = 2 OR c = 3)", "unexpected token: 'OR'", "OR");
    malformed("SELECT Id FROM A WHERE a = 1 AND b = 2 AND c = 3 OR d = 4", "unexpected token: 'OR'", "OR");
}

#[test]
fn not_only_at_the_start_of_a_condition() {
    // As in Salesforce: `a AND NOT b` fails at NOT, `NOT a AND b` fails at AND.
    malformed("SELECT Id FROM A WHERE a = 1 AND NOT b = 2", "unexpected token: 'NOT'", "NOT");
    malformed("SELECT Id FROM A WHERE a = 1 OR NOT (b = 2)", "unexpected token: 'NOT'", "NOT");
    malformed("SELECT Id FROM A WHERE NOT a = 1 AND b = 2", "unexpected token: 'AND'", "AND");
    malformed("SELECT Id FROM A WHERE NOT NOT a = 1", "unexpected token: 'NOT'", "NOT a");
    malformed("SELECT Id FROM A WHERE NOT", "unexpected token: '<EOF>'", "<EOF>");
}

#[test]
fn parentheses_must_balance() {
    malformed("SELECT Id FROM A WHERE (a = 1", "expecting a right parentheses, found '<EOF>'", "<EOF>");
    malformed("SELECT Id FROM A WHERE (a = 1 LIMIT 1", "expecting a right parentheses, found 'LIMIT'", "LIMIT");
    malformed("SELECT Id FROM A WHERE a = 1)", "unexpected token: ')'", ")");
    malformed("SELECT Id FROM A WHERE ()", "unexpected token: ')'", ")");
}

#[test]
fn nesting_depth_is_bounded() {
    let nest = |n: usize| format!("SELECT Id FROM A WHERE {}a = 1{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(where_shape(&format!("{}a = 1{}", "(".repeat(50), ")".repeat(50))), "a");
    let text = nest(51);
    let e = err(&text);
    assert_eq!(e.message, "conditions are nested too deeply (more than 50 parentheses)");
    assert_eq!(e.span.start, "SELECT Id FROM A WHERE ".len() + 50);
    // Far deeper than any stack would take, and NOT mixed in: an error, not a crash.
    let deep = format!("SELECT Id FROM A WHERE {}", "NOT (".repeat(50_000));
    assert_eq!(err(&deep).kind, ErrorKind::Malformed);
    let deep = format!("SELECT Id FROM A WHERE {}", "(".repeat(99_000));
    assert_eq!(err(&deep).kind, ErrorKind::Malformed);
}

// ---- values ---------------------------------------------------------------------------------

#[test]
fn null_booleans_numbers() {
    assert_eq!(value("null"), Value::Null);
    assert_eq!(value("NULL"), Value::Null);
    assert_eq!(value("true"), Value::Bool(true));
    assert_eq!(value("FALSE"), Value::Bool(false));
    assert_eq!(value("0"), Value::Int(0));
    assert_eq!(value("42"), Value::Int(42));
    assert_eq!(value("-42"), Value::Int(-42));
    assert_eq!(value("+42"), Value::Int(42));
    assert_eq!(value("- 42"), Value::Int(-42));
    assert_eq!(value("9223372036854775807"), Value::Int(i64::MAX));
    assert_eq!(value("-9223372036854775808"), Value::Int(i64::MIN));
    assert_eq!(value("9223372036854775808"), Value::Decimal("9223372036854775808".into()));
    assert_eq!(value("1.50"), Value::Decimal("1.50".into()));
    assert_eq!(value("-0.001"), Value::Decimal("-0.001".into()));
    assert_eq!(value("+3.25"), Value::Decimal("3.25".into()));
    assert_eq!(value("007"), Value::Int(7));
    let (_, _, v) = compare("SELECT Id FROM A WHERE X > -5");
    assert_eq!(v.span, Span::new(27, 29));
    malformed("SELECT Id FROM A WHERE X = -", "unexpected token: '<EOF>'", "<EOF>");
    malformed("SELECT Id FROM A WHERE X = -'a'", "unexpected token: ''a''", "'a'");
    malformed("SELECT Id FROM A WHERE X = 1.", "unexpected token: '.'", ".");
    malformed("SELECT Id FROM A WHERE X = .5", "unexpected token: '.'", ".");
    malformed("SELECT Id FROM A WHERE X = 1e5", "unexpected token: 'e5'", "e5");
}

#[test]
fn strings_and_escapes() {
    assert_eq!(value("'Acme'"), Value::String("Acme".into()));
    assert_eq!(value("''"), Value::String(String::new()));
    assert_eq!(value(r"'O\'Brien'"), Value::String("O'Brien".into()));
    assert_eq!(value(r"'a\\b'"), Value::String(r"a\b".into()));
    assert_eq!(value(r"'a\nb\tc\rd'"), Value::String("a\nb\tc\rd".into()));
    assert_eq!(value(r"'a\Nb\Tc'"), Value::String("a\nb\tc".into()));
    assert_eq!(value(r#"'say \"hi\"'"#), Value::String("say \"hi\"".into()));
    assert_eq!(value(r"'50\%'"), Value::String("50%".into()));
    assert_eq!(value(r"'a\_b'"), Value::String("a_b".into()));
    assert_eq!(value("'héllo wörld ✓'"), Value::String("héllo wörld ✓".into()));
    assert_eq!(value("'multi\nline'"), Value::String("multi\nline".into()));
    malformed("SELECT Id FROM A WHERE X = 'abc", "mismatched character '<EOF>' expecting '''", "<EOF>");
    malformed(
        r"SELECT Id FROM A WHERE X = 'a\qb'",
        r"Invalid string literal 'a\qb'. Illegal character sequence '\q' in string literal.",
        "'a",
    );
    malformed(r#"SELECT Id FROM A WHERE X = "abc""#, "unexpected token: '\"'", "\"abc");
    // A doubled quote is not an escape in SOQL: 'O' then a stray word.
    malformed("SELECT Id FROM A WHERE X = 'O''Brien'", "unexpected token: ''Brien''", "'Brien'");
    malformed("SELECT Id FROM A WHERE X = 'O'Brien'", "unexpected token: 'Brien'", "Brien");
    malformed("SELECT Id FROM A WHERE X = Acme", "unexpected token: 'Acme'", "Acme");
    malformed("SELECT Id FROM A WHERE X = :name", "Bind variables only allowed in Apex code", ":name");
    malformed("SELECT Id FROM A WHERE X = (1)", "unexpected token: '('", "(");
}

#[test]
fn dates_and_datetimes() {
    let date = CivilDate { year: 2024, month: 1, day: 31 };
    assert_eq!(value("2024-01-31"), Value::Date(date));
    assert_eq!(value("2024-02-29"), Value::Date(CivilDate { year: 2024, month: 2, day: 29 }));
    let dt = |hour, nanos, offset_minutes| {
        Value::DateTime(DateTimeValue { date, hour, minute: 0, second: 0, nanos, offset_minutes })
    };
    assert_eq!(value("2024-01-31T10:00:00Z"), dt(10, 0, 0));
    assert_eq!(value("2024-01-31T10:00:00+01:00"), dt(10, 0, 60));
    assert_eq!(value("2024-01-31T10:00:00-08:00"), dt(10, 0, -480));
    assert_eq!(value("2024-01-31T10:00:00.000Z"), dt(10, 0, 0));
    assert_eq!(value("2024-01-31T23:00:00.250+05:30"), dt(23, 250_000_000, 330));
    let Value::DateTime(v) = value("2024-01-31T00:30:00+01:00") else { panic!() };
    assert_eq!(v.to_iso_utc_millis(), "2024-01-30T23:30:00.000Z");
    let (_, _, l) = compare("SELECT Id FROM A WHERE CreatedDate > 2024-01-31T10:00:00Z");
    assert_eq!(l.span, Span::new(37, 57));
    malformed("SELECT Id FROM A WHERE D = 2023-02-29", "invalid date: '2023-02-29'", "2023");
    malformed("SELECT Id FROM A WHERE D = 2024-13-01", "invalid date: '2024-13-01'", "2024");
    malformed("SELECT Id FROM A WHERE D > 2024-01-31T10:00:00", "invalid datetime: '2024-01-31T10:00:00'", "2024");
    malformed("SELECT Id FROM A WHERE D > 2024-01-31T10:00Z", "invalid datetime: '2024-01-31T10:00Z'", "2024");
    // Quoted, it is just a string (the executor decides whether that fits the field).
    assert_eq!(value("'2024-01-31'"), Value::String("2024-01-31".into()));
}

#[test]
fn date_literals() {
    for name in [
        "YESTERDAY",
        "TODAY",
        "TOMORROW",
        "LAST_WEEK",
        "THIS_WEEK",
        "NEXT_WEEK",
        "LAST_MONTH",
        "THIS_MONTH",
        "NEXT_MONTH",
        "LAST_90_DAYS",
        "NEXT_90_DAYS",
        "THIS_QUARTER",
        "LAST_QUARTER",
        "NEXT_QUARTER",
        "THIS_YEAR",
        "LAST_YEAR",
        "NEXT_YEAR",
        "THIS_FISCAL_QUARTER",
        "LAST_FISCAL_QUARTER",
        "NEXT_FISCAL_QUARTER",
        "THIS_FISCAL_YEAR",
        "LAST_FISCAL_YEAR",
        "NEXT_FISCAL_YEAR",
    ] {
        let Value::DateLiteral(d) = value(name) else { panic!("{name}") };
        assert_eq!(d.to_string(), name);
        let Value::DateLiteral(d) = value(&name.to_lowercase()) else { panic!("{name}") };
        assert_eq!(d.name(), name);
    }
    for name in [
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
    ] {
        let Value::DateLiteral(d) = value(&format!("{name}:12")) else { panic!("{name}") };
        assert_eq!((d.name(), d.n()), (name, Some(12)));
    }
    let text = "SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAYS:7";
    let (_, _, l) = compare(text);
    assert_eq!(l.value, Value::DateLiteral(DateLiteral::LastNDays(7)));
    assert_eq!(l.span.slice(text), "LAST_N_DAYS:7");
    assert_eq!(value("last_n_days : 30"), Value::DateLiteral(DateLiteral::LastNDays(30)));
    malformed("SELECT Id FROM A WHERE D = LAST_N_DAYS 7", "expecting a colon, found '7'", "7");
    malformed("SELECT Id FROM A WHERE D = LAST_N_DAYS", "expecting a colon, found '<EOF>'", "<EOF>");
    malformed("SELECT Id FROM A WHERE D = LAST_N_DAYS:", "unexpected token: '<EOF>'", "<EOF>");
    malformed("SELECT Id FROM A WHERE D = LAST_N_DAYS:x", "unexpected token: 'x'", "x");
    malformed("SELECT Id FROM A WHERE D = LAST_N_DAYS:-1", "unexpected token: '-'", "-");
    malformed("SELECT Id FROM A WHERE D = LAST_N_DAYS:1.5", "unexpected token: '1.5'", "1.5");
    malformed("SELECT Id FROM A WHERE D = LAST_N_DAYS:99999999999", "unexpected token: '99999999999'", "99999999999");
    malformed("SELECT Id FROM A WHERE D = TODAY:1", "unexpected token: ':'", ":");
    malformed("SELECT Id FROM A WHERE D = LAST_N_DAY:1", "unexpected token: 'LAST_N_DAY'", "LAST_N_DAY");
    // In a list too.
    let q = ok("SELECT Id FROM A WHERE D IN (TODAY, YESTERDAY, N_DAYS_AGO:2)");
    let Condition::In { values, .. } = where_(&q) else { panic!() };
    assert_eq!(values[2].value, Value::DateLiteral(DateLiteral::NDaysAgo(2)));
    // A date-literal name is still a fine field name.
    assert_eq!(fields(&ok("SELECT Today, Last_Week__c FROM A")), ["Today", "Last_Week__c"]);
}

// ---- ORDER BY, LIMIT, OFFSET, WITH, FOR -----------------------------------------------------

#[test]
fn order_by() {
    let q = ok("SELECT Id FROM Contact ORDER BY LastName, Account.Name DESC, CreatedDate ASC NULLS LAST, Title DESC NULLS FIRST");
    let got: Vec<(String, SortDirection, Option<NullsOrder>, NullsOrder)> =
        q.order_by.iter().map(|o| (o.field.dotted(), o.direction, o.nulls, o.effective_nulls())).collect();
    use NullsOrder::*;
    use SortDirection::*;
    assert_eq!(
        got,
        [
            ("LastName".into(), Asc, None, First),
            ("Account.Name".into(), Desc, None, Last),
            ("CreatedDate".into(), Asc, Some(Last), Last),
            ("Title".into(), Desc, Some(First), First),
        ]
    );
    malformed("SELECT Id FROM A ORDER BY", "unexpected token: '<EOF>'", "<EOF>");
    malformed("SELECT Id FROM A ORDER Name", "unexpected token: 'ORDER'", "ORDER");
    malformed("SELECT Id FROM A ORDER BY Name NULLS", "unexpected token: '<EOF>'", "<EOF>");
    malformed("SELECT Id FROM A ORDER BY Name NULLS MIDDLE", "unexpected token: 'MIDDLE'", "MIDDLE");
    malformed("SELECT Id FROM A ORDER BY Name DESC ASC", "unexpected token: 'ASC'", "ASC");
    malformed("SELECT Id FROM A ORDER BY Name,", "unexpected token: '<EOF>'", "<EOF>");
    unsupported("SELECT Id FROM A ORDER BY MAX(Amount)", "ORDER BY a function", "MAX");
}

#[test]
fn limit_and_offset() {
    let text = "SELECT Id FROM A LIMIT 200 OFFSET 4000";
    let q = ok(text);
    assert_eq!((q.limit, q.offset), (Some(200), Some(4000)));
    assert_eq!(q.offset_span.map(|s| s.slice(text)), Some("4000"));
    assert_eq!(ok("SELECT Id FROM A OFFSET 5").offset, Some(5));
    assert_eq!(ok("SELECT Id FROM A LIMIT 9223372036854775807").limit, Some(i64::MAX as u64));
    malformed(
        "SELECT Id FROM A LIMIT 9223372036854775808",
        "unexpected token: '9223372036854775808'",
        "9223372036854775808",
    );
    malformed("SELECT Id FROM A LIMIT -1", "unexpected token: '-'", "-");
    malformed("SELECT Id FROM A LIMIT 1.5", "unexpected token: '1.5'", "1.5");
    malformed("SELECT Id FROM A LIMIT abc", "unexpected token: 'abc'", "abc");
    malformed("SELECT Id FROM A LIMIT", "unexpected token: '<EOF>'", "<EOF>");
    malformed("SELECT Id FROM A OFFSET 1 LIMIT 1", "unexpected token: 'LIMIT'", "LIMIT");
    malformed("SELECT Id FROM A LIMIT 1 LIMIT 2", "unexpected token: 'LIMIT'", "LIMIT 2");
}

#[test]
fn clause_order_is_fixed() {
    malformed("SELECT Id FROM A LIMIT 1 WHERE X = 1", "unexpected token: 'WHERE'", "WHERE");
    malformed("SELECT Id FROM A ORDER BY Id WHERE X = 1", "unexpected token: 'WHERE'", "WHERE");
    malformed("SELECT Id FROM A WHERE X = 1 WHERE Y = 2", "unexpected token: 'WHERE'", "WHERE Y");
    malformed("SELECT Id FROM A WITH SECURITY_ENFORCED WHERE X = 1", "unexpected token: 'WHERE'", "WHERE");
    malformed("FROM A SELECT Id", "unexpected token: 'FROM'", "FROM");
    malformed("", "unexpected token: '<EOF>'", "<EOF>");
    malformed("   ", "unexpected token: '<EOF>'", "<EOF>");
    malformed("SELECT Id FROM Account;", "unexpected token: ';'", ";");
    malformed("SELECT Id FROM Account WHERE Name = 'x' garbage", "unexpected token: 'garbage'", "garbage");
}

#[test]
fn with_and_for_clauses_are_ignored() {
    let plain = ok("SELECT Id FROM Account WHERE Name = 'x' ORDER BY Name LIMIT 1");
    for text in [
        "SELECT Id FROM Account WHERE Name = 'x' WITH SECURITY_ENFORCED ORDER BY Name LIMIT 1",
        "SELECT Id FROM Account WHERE Name = 'x' WITH USER_MODE ORDER BY Name LIMIT 1",
        "SELECT Id FROM Account WHERE Name = 'x' with system_mode ORDER BY Name LIMIT 1",
        "SELECT Id FROM Account WHERE Name = 'x' ORDER BY Name LIMIT 1 FOR VIEW",
        "SELECT Id FROM Account WHERE Name = 'x' ORDER BY Name LIMIT 1 FOR REFERENCE",
        "SELECT Id FROM Account WHERE Name = 'x' ORDER BY Name LIMIT 1 FOR UPDATE",
        "SELECT Id FROM Account WHERE Name = 'x' ORDER BY Name LIMIT 1 FOR VIEW FOR REFERENCE",
    ] {
        let q = ok(text);
        assert_eq!(fields(&q), fields(&plain), "{text}");
        assert_eq!(shape(where_(&q)), shape(where_(&plain)), "{text}");
        assert_eq!(q.order_by.len(), plain.order_by.len(), "{text}");
        assert_eq!(q.limit, plain.limit, "{text}");
    }
    malformed("SELECT Id FROM A FOR", "unexpected token: '<EOF>'", "<EOF>");
    malformed("SELECT Id FROM A FOR LUNCH", "unexpected token: 'LUNCH'", "LUNCH");
    malformed("SELECT Id FROM A WITH", "unexpected token: '<EOF>'", "<EOF>");
    malformed("SELECT Id FROM A WITH NOTHING", "unexpected token: 'NOTHING'", "NOTHING");
}

// ---- unsupported constructs -----------------------------------------------------------------

#[test]
fn unsupported_constructs_say_so_at_their_position() {
    unsupported("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "relationship subqueries", "(SELECT");
    unsupported("SELECT TYPEOF What WHEN Account THEN Phone ELSE Name END FROM Event", "TYPEOF", "TYPEOF");
    unsupported("SELECT FIELDS(ALL) FROM Account LIMIT 200", "FIELDS(...)", "FIELDS");
    unsupported("SELECT toLabel(Status) FROM Case", "toLabel", "toLabel");
    unsupported("SELECT FORMAT(Amount) FROM Opportunity", "FORMAT", "FORMAT");
    unsupported("SELECT Id FROM Account USING SCOPE Mine", "USING SCOPE", "USING");
    unsupported(
        "SELECT Title FROM KnowledgeArticleVersion WITH DATA CATEGORY Geography__c AT usa__c",
        "WITH DATA CATEGORY",
        "WITH",
    );
    unsupported("SELECT Id FROM Account a WHERE a.Name = 'x'", "object aliases", "a WHERE");
    unsupported("SELECT COUNT(Id) cnt FROM Account", "aliases for aggregate", "cnt");
    unsupported("SELECT Id FROM FAQ__kav UPDATE TRACKING", "UPDATE TRACKING", "UPDATE");
}

#[test]
fn group_by_is_unsupported_even_when_the_select_list_would_need_it() {
    // `Name` is not aggregated, which is fine with GROUP BY: the error is about GROUP BY.
    let e = err("SELECT Name, COUNT(Id) FROM Account GROUP BY Name");
    assert_eq!(e.kind, ErrorKind::Unsupported);
    assert_eq!(e.message, "GROUP BY is not supported by Valet");
    assert_eq!(e.span.start, 36);
    // The select-list rules come after the syntax: a later syntax error is reported first.
    malformed("SELECT Name, COUNT(Id) FROM Account WHERE", "unexpected token: '<EOF>'", "<EOF>");
}

// ---- select-list errors ---------------------------------------------------------------------

#[test]
fn select_list_errors() {
    malformed("SELECT Id FORM Account", "unexpected token: 'FORM'", "FORM");
    malformed("SELECT", "unexpected token: '<EOF>'", "<EOF>");
    malformed("SELECT Id", "unexpected token: '<EOF>'", "<EOF>");
    malformed("SELECT FROM Account", "unexpected token: 'FROM'", "FROM");
    malformed("SELECT Id, FROM Account", "unexpected token: 'FROM'", "FROM");
    malformed("SELECT Id,, Name FROM Account", "unexpected token: ','", ", Name");
    malformed("SELECT * FROM Account", "unexpected token: '*'", "*");
    malformed("SELECT Id Name FROM Account", "unexpected token: 'Name'", "Name");
    malformed("SELECT Owner. FROM Account", "unexpected token: 'FROM'", "FROM");
    malformed("SELECT Owner..Name FROM Account", "unexpected token: '.'", ".Name");
    malformed("SELECT .Name FROM Account", "unexpected token: '.'", ".");
    malformed("SELECT Ïd FROM Account", "unexpected token: 'Ï'", "Ï");
    malformed("SELECT Id, (Name) FROM Account", "unexpected token: '('", "(");
    malformed("SELECT 1 FROM Account", "unexpected token: '1'", "1");
    malformed("SELECT 'Id' FROM Account", "unexpected token: ''Id''", "'Id'");
    malformed("UPDATE Account SET Name = 'x'", "unexpected token: 'UPDATE'", "UPDATE");
}

// ---- positions and rendering ----------------------------------------------------------------

#[test]
fn salesforce_rendering() {
    let text = "SELECT Id FORM Account";
    let e = err(text);
    assert_eq!((e.line, e.column), (1, 11));
    assert_eq!(
        e.render_salesforce(text),
        "\nSELECT Id FORM Account\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FORM'"
    );
    let body = e.to_rest_body(text);
    assert_eq!(body[0]["errorCode"], "MALFORMED_QUERY");
    assert_eq!(body[0]["message"], e.render_salesforce(text).as_str());
    assert_eq!(e.error_code(), "MALFORMED_QUERY");

    let text = "SELECT Id, Email, Name\nFROM Contact\nWHERE AccountId = '0014000000p6XlS' AND LastName LIKE 'test' OR email LIKE 'test'";
    let e = err(text);
    assert_eq!((e.line, e.column, e.message.as_str()), (3, 62, "unexpected token: 'OR'"));
    let rendered = e.render_salesforce(text);
    assert_eq!(
        rendered,
        "\n'0014000000p6XlS' AND LastName LIKE 'test' OR email LIKE 'test'\n                                           ^\nERROR at Row:3:Column:62\nunexpected token: 'OR'"
    );
}

#[test]
fn positions_count_characters_not_bytes() {
    let text = "SELECT Id FROM Account WHERE Name = 'café' FORM";
    let e = err(text);
    assert_eq!(e.span.start, text.len() - 4);
    assert_eq!(e.column, text.chars().count() - 3);
}

#[test]
fn unsupported_errors_render_the_same_way() {
    let text = "SELECT Id, (SELECT Id FROM Contacts) FROM Account";
    let e = err(text);
    assert_eq!(
        e.render_salesforce(text),
        "\nSELECT Id, (SELECT Id FROM Contacts) FROM Account\n           ^\nERROR at Row:1:Column:12\nrelationship subqueries ((SELECT ... FROM Children)) are not supported by Valet"
    );
}

#[test]
fn too_long_is_refused() {
    let long = format!("SELECT Id FROM Account WHERE Name = '{}'", "x".repeat(100_000));
    let e = err(&long);
    assert_eq!(e.message, "SOQL statements cannot be longer than 100000 characters");
    assert_eq!(e.span, Span::new(0, 0));
    // Exactly at the limit is fine.
    let head = "SELECT Id FROM Account WHERE Name = ''";
    let fits = format!("SELECT Id FROM Account WHERE Name = '{}'", "x".repeat(100_000 - head.len()));
    assert_eq!(fits.chars().count(), 100_000);
    ok(&fits);
}

#[test]
fn ast_serializes_for_logs_and_snapshots() {
    let q = ok("SELECT Id FROM Account WHERE Name LIKE 'A%' AND CreatedDate = LAST_N_DAYS:7 ORDER BY Name LIMIT 1");
    let j = serde_json::to_value(&q).unwrap_or_default();
    assert_eq!(j["from"]["name"], "Account");
    assert_eq!(j["limit"], 1);
    assert_eq!(j["where_"]["And"][1]["Compare"]["value"]["value"]["DateLiteral"]["LastNDays"], 7);
    let e = err("SELECT Id FORM Account");
    let j = serde_json::to_value(&e).unwrap_or_default();
    assert_eq!(j["kind"], "MALFORMED");
    assert_eq!(j["column"], 11);
}

#[test]
fn field_path_helpers() {
    let f = FieldPath { parts: vec!["Name".into()], part_spans: vec![Span::new(0, 4)], span: Span::new(0, 4) };
    assert_eq!((f.field(), f.relationships().len(), f.dotted()), ("Name", 0, "Name".to_string()));
}

#[test]
fn field_paths_in_text_order() {
    let q = ok("SELECT Id, Owner.Name FROM Contact WHERE (A = 1 OR (NOT B LIKE 'x')) AND C IN (1) AND D INCLUDES ('a') ORDER BY E, F.G DESC");
    let got: Vec<String> = q.field_paths().iter().map(|f| f.dotted()).collect();
    assert_eq!(got, ["Id", "Owner.Name", "A", "B", "C", "D", "E", "F.G"]);
    let spans: Vec<usize> = q.field_paths().iter().map(|f| f.span.start).collect();
    assert!(spans.windows(2).all(|w| w[0] < w[1]));
    let q = ok("SELECT COUNT() FROM Account");
    assert!(q.field_paths().is_empty());
    let q = ok("SELECT COUNT(Id), MAX(Amount) FROM Opportunity");
    assert_eq!(q.field_paths().len(), 2);
}
