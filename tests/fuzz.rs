//! Property fuzzing (proptest, stable Rust) of what reads untrusted input: header
//! conventions, the filter language, payload decoding and MongoDB document mapping;
//! and (in [`text`]) edits of any text re-encoded under their schemas, keys and headers.
//! None may panic on any input; the shrunk crashers are kept in
//! `tests/fuzz-regressions.txt` and replayed first on every run.
//! `PROPTEST_CASES` sets the executions per target (scripts/fuzz.sh runs many).
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use mongodb::bson::{Binary, Bson, Document, spec::BinarySubtype};
use morgue::backends::mongo::doc::{FieldMap, letter_from_doc};
use morgue::engine::read::decode::decode;
use morgue::engine::read::filter::Filter;
use morgue::engine::{DeadLetter, Header, Headers, model::conventions};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestRunner};

mod text;

/// Runs `check` on `cases` inputs from `strategy`, printing how many ran.
fn fuzz<S: Strategy>(name: &str, strategy: S, check: impl Fn(S::Value)) {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(512);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/fuzz-regressions.txt",
        ))),
        ..Config::default()
    });
    let n = AtomicU64::new(0);
    let t = Instant::now();
    runner
        .run(&strategy, |v| {
            n.fetch_add(1, Ordering::Relaxed);
            check(v);
            Ok(())
        })
        .unwrap();
    println!(
        "fuzz {name}: {} executions in {:.1} s",
        n.load(Ordering::Relaxed),
        t.elapsed().as_secs_f64()
    );
}

/// Header names the conventions know, and some they do not.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("kafka_dlt-original-topic".to_string()),
        Just("kafka_dlt-original-partition".to_string()),
        Just("kafka_dlt-original-offset".to_string()),
        Just("kafka_dlt-original-timestamp".to_string()),
        Just("kafka_dlt-exception-fqcn".to_string()),
        Just("kafka_dlt-exception-stacktrace".to_string()),
        Just("__connect.errors.topic".to_string()),
        Just("__connect.errors.partition".to_string()),
        Just("__connect.errors.offset".to_string()),
        Just("original_topic".to_string()),
        Just("original_partition".to_string()),
        Just("x-original-topic".to_string()),
        Just("morgue-attempts".to_string()),
        Just("morgue-reason".to_string()),
        Just("retry_topic-attempts".to_string()),
        "[a-z_.-]{0,24}",
    ]
}

fn header_value() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Some),
        "-?[0-9]{0,20}".prop_map(|s| Some(s.into_bytes())),
        ".{0,40}".prop_map(|s| Some(s.into_bytes())),
    ]
}

fn letter(value: Option<Vec<u8>>) -> DeadLetter {
    DeadLetter::from_record(
        None,
        Some(0),
        Some(b"k".to_vec()),
        value,
        Headers::default(),
    )
}

#[test]
fn header_conventions_never_panic() {
    let headers = proptest::collection::vec((header_name(), header_value()), 0..12);
    fuzz("header conventions", headers, |hs| {
        let h = Headers(
            hs.into_iter()
                .map(|(name, value)| Header { name, value })
                .collect(),
        );
        let (_, failure) = conventions::decode(&h);
        for note in &failure.notes {
            assert!(!note.contains('\n'), "a note is one line: {note:?}");
        }
    });
}

#[test]
fn the_filter_parser_never_panics() {
    let query = prop_oneof![
        ".{0,60}",
        "(key|topic|error|reason|state|since|until|header\\.x|\\$\\.[a-z.\\[\\]0-9]{0,12})[:<>=!~]{0,2}[ -~]{0,12}( [ -~]{0,20})?",
    ];
    let value = proptest::collection::vec(any::<u8>(), 0..64);
    fuzz("filter parser", (query, value), |(q, v)| {
        match Filter::parse(&q, 1_732_700_000_000) {
            Ok(f) => {
                // Only a blank query matches everything by being empty.
                assert_eq!(f.is_empty(), q.trim().is_empty(), "{q:?}");
                f.matches(&letter(Some(v)));
                f.matches(&letter(Some(br#"{"n":-1,"a":[{"b":"x"}]}"#.to_vec())));
            }
            Err(e) => {
                // The column points into the query (or just past its end), on one line.
                assert!(e.pos >= 1 && e.pos <= q.chars().count() + 1, "{q:?}: {e}");
                assert!(!e.message.contains('\n'), "{q:?}: {e}");
            }
        }
    });
}

#[test]
fn payload_decoding_never_panics() {
    let json = r#"{"trade":{"px":-1.5,"ids":[1,2,3],"s":"\u00e9\n"},"ok":true}"#;
    let xml = "<?xml version=\"1.0\"?><trade id=\"7\"><px>1</px></trade>";
    let bytes = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        // Truncated and mutated frames of the formats it recognises.
        (0..json.len(), any::<u8>(), 0..json.len()).prop_map(move |(cut, b, at)| {
            let mut v = json.as_bytes()[..cut].to_vec();
            if at < v.len() {
                v[at] = b;
            }
            v
        }),
        (0..xml.len()).prop_map(move |cut| xml.as_bytes()[..cut].to_vec()),
        "[A-Za-z0-9+/=]{0,64}".prop_map(String::into_bytes),
    ];
    fuzz("payload decoders", (bytes, 0usize..300), |(b, cap)| {
        let _ = decode(&morgue::engine::decoders::builtin(), Some(&b), None, cap);
    });
}

fn bson_value() -> impl Strategy<Value = Bson> {
    let leaf = prop_oneof![
        Just(Bson::Null),
        any::<bool>().prop_map(Bson::Boolean),
        any::<i32>().prop_map(Bson::Int32),
        any::<i64>().prop_map(Bson::Int64),
        any::<f64>().prop_map(Bson::Double),
        ".{0,20}".prop_map(Bson::String),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(|bytes| {
            Bson::Binary(Binary {
                subtype: BinarySubtype::Generic,
                bytes,
            })
        }),
        any::<i64>().prop_map(|ms| Bson::DateTime(mongodb::bson::DateTime::from_millis(ms))),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Bson::Array),
            proptest::collection::vec(("[a-z_]{1,8}", inner), 0..4)
                .prop_map(|kv| Bson::Document(kv.into_iter().collect())),
        ]
    })
}

#[test]
fn mongodb_document_mapping_never_panics() {
    let field = prop_oneof![
        Just("key"),
        Just("value"),
        Just("topic"),
        Just("partition"),
        Just("offset"),
        Just("timestamp"),
        Just("error_time"),
        Just("processed"),
        Just("headers"),
        Just("morgue"),
        Just("_id"),
    ];
    let doc = proptest::collection::vec((field, bson_value()), 0..10);
    fuzz("mongodb documents", doc, |fields| {
        let mut d = Document::new();
        for (k, v) in fields {
            d.insert(k, v);
        }
        let l = letter_from_doc(&d, &FieldMap::default());
        for note in &l.failure.notes {
            assert!(!note.contains('\n'), "a note is one line: {note:?}");
        }
    });
}
