//! The filter language, term by term, on letters built in memory.

use super::*;
use crate::engine::model::letter::{Headers, LetterState, Reason};

const NOW: i64 = 1_800_000_000_000;

fn letter(
    key: &str,
    value: &str,
    topic: &str,
    class: &str,
    reason: Reason,
    age_ms: i64,
) -> DeadLetter {
    let mut h = Headers::default();
    h.push("kafka_dlt-original-topic", topic);
    h.push("kafka_dlt-exception-fqcn", class);
    h.push("kafka_dlt-exception-message", "Timeout after 30s");
    h.push("tenant", "acme-eu");
    let mut l = DeadLetter::from_record(
        None,
        Some(NOW - age_ms),
        Some(key.into()),
        Some(value.into()),
        h,
    );
    l.failure.reason = reason;
    l
}

fn sample() -> Vec<DeadLetter> {
    vec![
        letter(
            "ABC-1",
            r#"{"price": -3, "sym": "ACME", "legs": [{"qty": 5}]}"#,
            "trades",
            "java.net.SocketTimeoutException",
            Reason::MaxAttemptsExceeded,
            60_000,
        ),
        letter(
            "ABD-2",
            r#"{"price": 10, "sym": "BOLT"}"#,
            "orders",
            "com.x.ValidationError",
            Reason::Failed,
            3 * 3_600_000,
        ),
        letter(
            "XYZ-3",
            "not json at all",
            "trades",
            "com.x.ParseError",
            Reason::Expired,
            10,
        ),
    ]
}

fn keys(q: &str) -> Vec<String> {
    let f = Filter::parse(q, NOW).unwrap();
    sample()
        .iter()
        .filter(|l| f.matches(l))
        .map(|l| String::from_utf8_lossy(l.key.as_deref().unwrap()).into_owned())
        .collect()
}

#[test]
fn index_terms() {
    assert_eq!(keys("key:AB*"), ["ABC-1", "ABD-2"]);
    assert_eq!(keys("key:ABC-1"), ["ABC-1"]);
    assert_eq!(keys("topic:trades"), ["ABC-1", "XYZ-3"]);
    assert_eq!(keys("error:timeout"), ["ABC-1", "ABD-2", "XYZ-3"]);
    assert_eq!(keys("error:ValidationError"), ["ABD-2"]);
    assert_eq!(keys("reason:expired"), ["XYZ-3"]);
    assert_eq!(keys("state:new"), ["ABC-1", "ABD-2", "XYZ-3"]);
    assert_eq!(keys("header.tenant:acme-*"), ["ABC-1", "ABD-2", "XYZ-3"]);
    assert_eq!(keys("since:2h"), ["ABC-1", "XYZ-3"]);
    assert_eq!(keys("until:2h"), ["ABD-2"]);
    assert!(
        !Filter::parse("topic:trades key:A*", NOW)
            .unwrap()
            .needs_payload()
    );
}

#[test]
fn payload_terms() {
    assert_eq!(keys("$.price<0"), ["ABC-1"]);
    assert_eq!(keys("$.price > 5"), ["ABD-2"]);
    assert_eq!(keys("$.sym=ACME"), ["ABC-1"]);
    assert_eq!(keys("$.sym!=ACME"), ["ABD-2"]);
    assert_eq!(keys("$.sym~^B"), ["ABD-2"]);
    assert_eq!(keys("$.legs.0.qty=5"), ["ABC-1"]);
    assert_eq!(keys("/json at/"), ["XYZ-3"]);
    assert_eq!(keys("bolt"), ["ABD-2"]);
    assert_eq!(keys("\"not json\""), ["XYZ-3"]);
    assert!(Filter::parse("$.price<0", NOW).unwrap().needs_payload());
}

#[test]
fn jq_terms() {
    assert_eq!(keys("jq:.price<0"), ["ABC-1"]);
    assert_eq!(
        keys(r#"jq:".sym == \"BOLT\" or .price < 0""#),
        ["ABC-1", "ABD-2"]
    );
    // The letter's variables, and text as a string.
    assert_eq!(keys(r#"jq:"$key | startswith(\"XY\")""#), ["XYZ-3"]);
    assert_eq!(keys(r#"jq:"test(\"json\")""#), ["XYZ-3"]);
    // An error is no match (a string has no .price), and a negation takes it.
    assert_eq!(keys("-jq:.price<0"), ["ABD-2", "XYZ-3"]);
    // Only `true` matches: a number is not true.
    assert!(keys("jq:.price").is_empty());
    assert!(Filter::parse("jq:.a", NOW).unwrap().needs_payload());
}

#[test]
fn and_or_and_negation() {
    assert_eq!(keys("topic:trades -reason:expired"), ["ABC-1"]);
    assert_eq!(keys("reason:expired or key:ABD*"), ["ABD-2", "XYZ-3"]);
    assert_eq!(
        keys("topic:orders or topic:trades $.price<0"),
        ["ABC-1", "ABD-2"]
    );
    assert_eq!(keys(""), ["ABC-1", "ABD-2", "XYZ-3"]);
}

#[test]
fn states_come_from_the_letter() {
    let mut l = sample().remove(0);
    l.state = LetterState::Replayed;
    assert!(Filter::parse("state:replayed", NOW).unwrap().matches(&l));
    assert!(!Filter::parse("-state:replayed", NOW).unwrap().matches(&l));
}

#[test]
fn errors_quote_what_was_wrong() {
    let err = |q: &str| Filter::parse(q, NOW).unwrap_err().to_string();
    assert!(err("colour:red").contains("unknown field 'colour'"));
    assert!(err("reason:bored").contains("unknown reason 'bored'"));
    assert!(err("state:gone").contains("unknown state 'gone'"));
    assert!(err("since:yesterday").contains("bad time 'yesterday'"));
    assert!(err("/[unclosed/").contains("bad regex '/[unclosed/'"));
    assert!(err("$.price").contains("expected an operator"));
    assert!(err("$.n>").contains("expected a value after '>'"));
    assert!(err("$.n!=").contains("expected a value after '!='"));
    assert!(err("key:").contains("expected a value after 'key:'"));
    assert!(err("since:").contains("expected a value after 'since:'"));
    assert!(err("or key:A").contains("expected a term before 'or'"));
    assert!(err("key:A or").contains("expected a term after 'or'"));
    assert!(err("\"open").contains("unclosed '\"'"));
    assert_eq!(
        err("$.price<<"),
        "bad filter '$.price<<' at 9: expected a number or a \"quoted string\""
    );
}

/// Malformed queries: each is refused at the column given, never read as a filter.
const MALFORMED: &[(&str, usize)] = &[
    ("$.price<<", 9),
    ("$.price<abc", 9),
    ("$.price<=<1", 10),
    ("$.price<1)", 10),
    ("$.price>=x", 10),
    ("$.price>", 9),
    ("$.price >", 10),
    ("$.price", 8),
    ("$.", 3),
    ("$.a..b", 5),
    ("$.a.", 5),
    ("$.=1", 3),
    ("$.a=", 5),
    ("$.a!=", 6),
    ("$.a==1", 5),
    ("$.a!1", 4),
    ("$.a~", 5),
    ("$.a~[", 5),
    ("$.a<1e", 7),
    ("$.a<-", 5),
    ("$.a<1.5.2", 8),
    ("$.a>\"x", 5),
    ("$.a=\"x\"y", 8),
    ("$.\"a", 3),
    ("-", 2),
    ("- key:A", 2),
    ("--key:A", 2),
    ("key:A -", 8),
    ("header.:x", 8),
    ("header.x:", 10),
    ("key:", 5),
    ("topic:", 7),
    ("error:", 7),
    ("fingerprint:", 13),
    ("fingerprint:xyz", 13),
    ("reason:", 8),
    ("reason:bogus", 8),
    ("state:", 7),
    ("state:bogus", 7),
    ("since:", 7),
    ("since:abc", 7),
    ("until:2024-13-45", 7),
    ("colour:red", 1),
    ("key:A colour:red", 7),
    ("key:\"A", 5),
    ("key:\"A\"B", 8),
    ("/", 1),
    ("//", 2),
    ("/[unclosed/", 2),
    ("/a/b", 4),
    ("-/", 2),
    ("\"unterminated", 1),
    ("\"\"", 2),
    ("\"a\"b", 4),
    ("or", 1),
    ("OR key:A", 1),
    ("key:A or", 9),
    ("key:A or or key:B", 10),
    ("key:A or and key:B", 10),
    ("and", 1),
    ("key:A and", 10),
    ("key:A or -", 11),
    ("   or   ", 4),
    ("headers.tenant:acme", 1),
    ("Header.tenant:acme", 1),
    ("-headers.tenant:acme", 2),
    ("$.items[0].qty>0", 8),
    ("since:1732700000", 7),
    ("until:2024", 7),
    ("a.b:c", 1),
    ("header.tenant", 14),
    ("jq:.price|", 11),
    ("jq:\".price < \"", 14),
    ("jq:nosuch(1)", 4),
];

#[test]
fn malformed_queries_are_refused_at_their_column() {
    assert!(MALFORMED.len() >= 60, "{}", MALFORMED.len());
    for (q, at) in MALFORMED {
        match Filter::parse(q, NOW) {
            Ok(f) => panic!("{q:?} was accepted as {f:?}"),
            Err(e) => {
                assert_eq!(e.pos, *at, "{q:?}: {e}");
                assert_eq!(e.query, *q);
                assert!(
                    e.to_string()
                        .starts_with(&format!("bad filter '{q}' at {at}: ")),
                    "{e}"
                );
            }
        }
    }
}

#[test]
fn a_query_cut_after_an_operator_or_inside_quotes_is_refused() {
    // A query cut short (a paste cut off, a key pressed too early) right after an
    // operator, a field's colon, a dash, a dot of a path or inside quotes or slashes is
    // an unfinished term: refused, pointing into what was typed.
    for whole in [
        "topic:trades -key:ORD-BETA* $.price<=0 or reason:expired",
        "$.legs.0.qty >= 5 header.tenant:\"acme eu\" /time.?out/",
        "state:failed-again and since:2h fingerprint:3fa9c2d1 $.sym~^AC",
    ] {
        assert!(Filter::parse(whole, NOW).is_ok(), "{whole}");
        let chars: Vec<char> = whole.chars().collect();
        let mut refused = 0;
        for n in 1..chars.len() {
            let cut: String = chars[..n].iter().collect();
            let open = |q: char| cut.chars().filter(|c| *c == q).count() % 2 == 1;
            let unfinished = matches!(chars[n - 1], '<' | '=' | '>' | '~' | ':' | '-' | '.')
                && !cut.ends_with("ORD-")
                && !cut.ends_with("failed-")
                && !cut.ends_with("time.")
                || open('"')
                || open('/');
            match Filter::parse(&cut, NOW) {
                Ok(f) => assert!(!unfinished, "{cut:?} was accepted as {f:?}"),
                Err(e) => {
                    assert!(e.pos <= n + 1, "{cut:?}: {e}");
                    refused += 1;
                }
            }
        }
        assert!(refused > 5, "{whole}: only {refused} prefixes refused");
    }
}

#[test]
fn valid_forms_mean_what_they_say() {
    assert_eq!(keys("$.price<=-3"), ["ABC-1"]);
    assert_eq!(keys("$.price>=10"), ["ABD-2"]);
    assert_eq!(keys("$.price >= -3"), ["ABC-1", "ABD-2"]);
    assert_eq!(keys("$.sym<\"B\""), ["ABC-1"]);
    assert_eq!(keys("$.sym=\"ACME\""), ["ABC-1"]);
    assert_eq!(keys("$.price=-3"), ["ABC-1"]);
    // An ordered comparison of a string with a number is false, not a text comparison.
    assert!(keys("$.sym<5").is_empty());
    assert!(keys("$.price<\"z\"").is_empty());
    assert_eq!(keys("-key:ABC* -key:XYZ*"), ["ABD-2"]);
    assert_eq!(keys("key:ABC-1 and topic:trades"), ["ABC-1"]);
    assert_eq!(keys("key:\"ABC-1\""), ["ABC-1"]);
    assert_eq!(keys("\"not \\\"json\"").len(), 0);
    assert_eq!(keys("/a\\/b|json/"), ["XYZ-3"]);
    assert_eq!(keys("127.0.0.1:9092").len(), 0, "a host:port is free text");
    assert_eq!(keys("localhost:9092").len(), 0, "a host:port is free text");
    assert_eq!(keys("http://x/y").len(), 0, "a URL is free text");
    assert!(Filter::parse("   ", NOW).unwrap().is_empty());
}

#[test]
fn index_only_filters_agree_with_full_letters() {
    let mut store = crate::engine::read::store::Store::new();
    let mut letters = sample();
    for (i, l) in letters.iter_mut().enumerate() {
        l.id = Some(crate::engine::LetterId::Kafka {
            partition: 0,
            offset: i as i64,
        });
        store.insert(l);
    }
    for q in [
        "topic:trades",
        "topic:tr* -reason:expired",
        "reason:failed or since:1m",
        "state:new until:2h",
        "-topic:orders",
        "key:ABC*",
        "key:*1 -state:replayed",
    ] {
        let f = Filter::parse(q, NOW).unwrap();
        assert!(f.index_only(), "{q}");
        for (i, l) in letters.iter().enumerate() {
            assert_eq!(
                f.matches_row(store.row(i).unwrap(), &store),
                f.matches(l),
                "{q} on letter {i}"
            );
        }
    }
    for q in ["error:Timeout", "$.price<0", "bolt", "header.tenant:x"] {
        assert!(!Filter::parse(q, NOW).unwrap().index_only(), "{q}");
    }
}
