#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::diff::diff;
use super::*;
use crate::engine::decoders::builtin;
use crate::engine::model::letter::{DeadLetter, Header, Headers, SourceCoords};

fn jq(expr: &str) -> Jq {
    Jq::compile(Spec {
        expr: expr.into(),
        envelope: false,
    })
    .unwrap()
}

fn envelope(expr: &str) -> Jq {
    Jq::compile(Spec {
        expr: expr.into(),
        envelope: true,
    })
    .unwrap()
}

fn letter(value: &[u8]) -> DeadLetter {
    let mut l = DeadLetter::from_record(
        None,
        None,
        Some(b"0f8fad5b-d9cb-469f-a165-70867728950e".to_vec()),
        Some(value.to_vec()),
        Headers(vec![
            Header::new("trace", "a"),
            Header::new("trace", "b"),
            Header::new("source", "pos"),
        ]),
    );
    l.source = SourceCoords {
        topic: Some("trades".into()),
        partition: Some(2),
        offset: Some(41),
        timestamp_ms: Some(1_700_000_000_000),
        consumer_group: None,
    };
    l.failure.message = Some("price must be positive".into());
    l
}

fn changed(a: Applied) -> Change {
    match a {
        Applied::Changed(c) => *c,
        other => panic!("expected a change, got {other:?}"),
    }
}

#[test]
fn a_mistake_says_where_it_is() {
    let e = Jq::compile(Spec {
        expr: ".price | ]".into(),
        envelope: false,
    })
    .unwrap_err();
    assert_eq!(e.column, 10, "{e}");
    let e = Jq::compile(Spec {
        expr: ".a | nosuchfn".into(),
        envelope: false,
    })
    .unwrap_err();
    assert_eq!(e.column, 6, "{e}");
    assert!(e.message.contains("nosuchfn"), "{e}");
    let e = Jq::compile(Spec {
        expr: "$nope".into(),
        envelope: false,
    })
    .unwrap_err();
    assert!(
        e.to_string().contains("'$nope'") || e.to_string().contains("nope"),
        "{e}"
    );
    assert!(
        Jq::compile(Spec {
            expr: "  ".into(),
            envelope: false
        })
        .is_err()
    );
}

#[test]
fn the_value_is_fixed_and_written_back_as_json() {
    let l = letter(br#"{"id":"T-1","price":-3,"legs":[1,2]}"#);
    let c = changed(apply(
        &jq(".price |= -."),
        &l,
        l.value.as_deref(),
        &builtin(),
    ));
    assert_eq!(c.value.unwrap(), br#"{"id":"T-1","price":3,"legs":[1,2]}"#);
    assert_eq!(c.key, None);
    assert_eq!(c.headers, None);
    let edits = diff(&c.before, &c.after);
    assert_eq!(edits.len(), 1);
    assert_eq!(edits[0].line(), "$.price: -3 → 3");
}

#[test]
fn variables_carry_the_letter() {
    let l = letter(br#"{"n":1}"#);
    let c = changed(apply(
        &jq(
            r#".from = "\($topic)/\($partition)/\($offset)" | .why = $error.message | .k = ($key|length) | .h = $headers.source"#,
        ),
        &l,
        l.value.as_deref(),
        &builtin(),
    ));
    assert_eq!(
        c.after,
        json!({"n": 1, "from": "trades/2/41", "why": "price must be positive", "k": 36, "h": "pos"})
    );
}

#[test]
fn unchanged_and_failures_are_told_apart() {
    let l = letter(br#"{"price":5}"#);
    let reg = builtin();
    let v = l.value.as_deref();
    assert_eq!(
        apply(&jq("if .price < 0 then .price = 0 else . end"), &l, v, &reg),
        Applied::Unchanged
    );
    let failed = |a: Applied| match a {
        Applied::Failed(why) => why,
        other => panic!("expected a failure, got {other:?}"),
    };
    assert!(failed(apply(&jq("empty"), &l, v, &reg)).contains("no value"));
    assert!(failed(apply(&jq(".price, .price"), &l, v, &reg)).contains("2 values"));
    assert!(failed(apply(&jq(r#"error("bad \(.price)")"#), &l, v, &reg)).contains("bad 5"));
    let binary = letter(&[0xff, 0xfe, 0x01]);
    assert!(
        failed(apply(&jq("."), &binary, binary.value.as_deref(), &reg))
            .contains("3 bytes of binary")
    );
}

#[test]
fn text_stays_text_and_a_kept_edit_is_the_start() {
    let l = letter(b"not json at all");
    let c = changed(apply(
        &jq("ascii_upcase"),
        &l,
        l.value.as_deref(),
        &builtin(),
    ));
    assert_eq!(c.value.unwrap(), b"NOT JSON AT ALL");
    // The base given (a kept edit) is what the expression sees, not the letter's value.
    let c = changed(apply(&jq(".n += 1"), &l, Some(br#"{"n":1}"#), &builtin()));
    assert_eq!(c.value.unwrap(), br#"{"n":2}"#);
}

#[test]
fn envelope_mode_changes_key_and_headers() {
    let l = letter(br#"{"n":1}"#);
    let c = changed(apply(
        &envelope(r#".key = "K-2" | del(.headers.source)"#),
        &l,
        l.value.as_deref(),
        &builtin(),
    ));
    assert_eq!(c.key, Some(Some(b"K-2".to_vec())));
    let names: Vec<_> = c.headers.unwrap().0.into_iter().map(|h| h.name).collect();
    assert_eq!(names, ["trace"]);
    // Headers returned as they came leave the letter's repeated names alone.
    let c = changed(apply(
        &envelope(".value.n = 2"),
        &l,
        l.value.as_deref(),
        &builtin(),
    ));
    assert_eq!((c.key, c.headers), (None, None));
    assert_eq!(c.value.unwrap(), br#"{"n":2}"#);
    let Applied::Failed(why) = apply(&envelope(".value.n"), &l, l.value.as_deref(), &builtin())
    else {
        panic!("a non-object result must fail");
    };
    assert!(why.contains("must be an object"), "{why}");
}

#[test]
fn the_ledger_keeps_the_mode() {
    for spec in [
        Spec {
            expr: ".a = 1".into(),
            envelope: false,
        },
        Spec {
            expr: ".key = null".into(),
            envelope: true,
        },
    ] {
        assert_eq!(Spec::from_ledger(&spec.to_ledger()), spec);
    }
}

#[test]
fn a_predicate_is_true_only_for_true() {
    let reg = json!({"price": -3});
    let l = letter(b"{}");
    assert!(jq(".price < 0").test(&reg, letter_vars(&l)).unwrap());
    assert!(!jq(".price").test(&reg, letter_vars(&l)).unwrap());
    assert!(jq(".x | error").test(&reg, letter_vars(&l)).is_err());
}

#[test]
fn diff_names_additions_removals_and_odd_keys() {
    let edits = diff(
        &json!({"a": 1, "b": [1, 2], "c d": 1}),
        &json!({"a": 1, "b": [1], "c d": 2, "e": true}),
    );
    let lines: Vec<_> = edits.iter().map(|e| e.line()).collect();
    assert_eq!(lines, ["- $.b[1]: 2", "$[\"c d\"]: 1 → 2", "+ $.e: true"]);
}

#[test]
fn values_cross_to_jaq_and_back_unchanged() {
    let v = json!({"i": -3, "big": 18446744073709551615u64, "f": 1.5, "s": "é\u{0}", "a": [null, true, {"k": []}]});
    assert_eq!(to_json(&to_val(&v)).unwrap(), v);
    let out = jq("[nan, infinite, 1e1000]")
        .run(&json!(null), letter_vars(&letter(b"{}")))
        .unwrap();
    assert_eq!(out, json!([null, null, f64::MAX]));
}

#[test]
fn what_ends_the_process_or_differs_between_runs_is_refused() {
    for expr in [
        "halt",
        "halt_error",
        "1 | halt_error(1)",
        "now",
        "env",
        "input",
        "[inputs]",
        "debug",
        "stderr",
        "0 | localtime",
        "0 | strflocaltime(\"%H\")",
    ] {
        let e = Jq::compile(Spec {
            expr: expr.into(),
            envelope: false,
        });
        assert!(e.is_err(), "{expr} compiled");
    }
    // What remains of the standard library works.
    let out = jq("[.[] | tostring | ascii_downcase] | join(\",\")")
        .run(&json!(["A", 1]), letter_vars(&letter(b"{}")))
        .unwrap();
    assert_eq!(out, json!("a,1"));
}

#[test]
fn a_null_result_is_not_a_tombstone_and_bytes_are_checked() {
    let reg = builtin();
    let l = letter(br#"{"n":1}"#);
    let Applied::Failed(why) = apply(&jq(".payload"), &l, l.value.as_deref(), &reg) else {
        panic!("a null result must fail");
    };
    assert!(why.contains("tombstone"), "{why}");
    // A null value stays null.
    let mut null = letter(b"");
    null.value = None;
    assert_eq!(apply(&jq("."), &null, None, &reg), Applied::Unchanged);
    // A key written as base64 must be text.
    let Applied::Failed(why) = apply(
        &envelope(r#".key = {"base64": 7}"#),
        &l,
        l.value.as_deref(),
        &reg,
    ) else {
        panic!("a bad base64 key must fail");
    };
    assert!(why.contains("base64"), "{why}");
}
