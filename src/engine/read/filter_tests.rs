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
    let err = |q: &str| Filter::parse(q, NOW).unwrap_err();
    assert!(err("colour:red").contains("unknown field 'colour' in 'colour:red'"));
    assert!(err("reason:bored").contains("unknown reason 'bored'"));
    assert!(err("state:gone").contains("unknown state 'gone'"));
    assert!(err("since:yesterday").contains("bad time 'yesterday'"));
    assert!(err("/[unclosed/").starts_with("bad regex '/[unclosed/'"));
    assert!(err("$.price").contains("'$.price' needs an operator"));
    assert!(err("$.n>").contains("'$.n>' needs a value after '>'"));
    assert!(err("$.n!=").contains("'$.n!=' needs a value after '!='"));
    assert!(err("key:").contains("'key:' needs a value"));
    assert!(err("since:").contains("'since:' needs a value"));
    assert!(err("or key:A").contains("'or' needs a term"));
    assert!(err("key:A or").contains("'or' needs a term"));
    assert!(err("\"open").contains("unclosed \""));
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
