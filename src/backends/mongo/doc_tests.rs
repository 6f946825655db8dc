//! Documents of the pymongo shape and its variants, read without a server.

use mongodb::bson::oid::ObjectId;

use super::*;

fn pymongo_doc() -> Document {
    doc! {
        "_id": ObjectId::parse_str("65f0c0ffee0000000000abcd").unwrap(),
        "key": Binary { subtype: BinarySubtype::Generic, bytes: b"T-1001".to_vec() },
        "value": "{\"price\": -3}",
        "topic": "trades",
        "partition": 2,
        "offset": 42i64,
        "timestamp": [1, 1_732_700_000_000i64],
        "error_time": DateTime::from_millis(1_732_700_005_000),
    }
}

#[test]
fn the_pymongo_shape_reads_fully() {
    let l = letter_from_doc(&pymongo_doc(), &FieldMap::default());
    assert_eq!(
        l.id,
        Some(LetterId::Mongo("65f0c0ffee0000000000abcd".into()))
    );
    assert_eq!(l.key.as_deref(), Some(&b"T-1001"[..]));
    assert_eq!(l.value.as_deref(), Some(&b"{\"price\": -3}"[..]));
    assert_eq!(l.source.topic.as_deref(), Some("trades"));
    assert_eq!((l.source.partition, l.source.offset), (Some(2), Some(42)));
    assert_eq!(l.source.timestamp_ms, Some(1_732_700_000_000));
    assert_eq!(l.dlq_timestamp_ms, Some(1_732_700_005_000));
    assert_eq!(l.state, LetterState::New);
    assert_eq!(l.failure.reason, Reason::Unknown);
    assert!(l.failure.notes.is_empty(), "{:?}", l.failure.notes);
}

#[test]
fn variants_read_and_claims_show() {
    let mut d = pymongo_doc();
    d.insert("key", "T-1001");
    d.insert(
        "value",
        Binary {
            subtype: BinarySubtype::Generic,
            bytes: vec![0xff, 0x00],
        },
    );
    d.insert("timestamp", 1_732_700_000_000i64);
    d.insert("processed", true);
    d.insert("process_time", DateTime::now());
    let l = letter_from_doc(&d, &FieldMap::default());
    assert_eq!(l.key.as_deref(), Some(&b"T-1001"[..]));
    assert_eq!(l.value.as_deref(), Some(&[0xff, 0x00][..]));
    assert_eq!(l.source.timestamp_ms, Some(1_732_700_000_000));
    assert_eq!(l.state, LetterState::Claimed);

    d.insert("timestamp", DateTime::from_millis(5));
    d.remove("key");
    d.insert("value", doc! { "price": -3, "sym": "ACME" });
    let l = letter_from_doc(&d, &FieldMap::default());
    assert_eq!(l.key, None);
    assert_eq!(l.source.timestamp_ms, Some(5));
    assert_eq!(
        l.value.as_deref(),
        Some(&br#"{"price":-3,"sym":"ACME"}"#[..])
    );
    assert!(
        l.failure
            .notes
            .iter()
            .any(|n| n.contains("'value' is a document; shown as JSON"))
    );
}

#[test]
fn malformed_fields_become_notes_and_the_rest_still_reads() {
    let d = doc! {
        "_id": "custom-1",
        "value": "ok",
        "topic": 17,
        "partition": "two",
        "offset": [1, 2],
        "timestamp": "yesterday",
    };
    let l = letter_from_doc(&d, &FieldMap::default());
    assert_eq!(l.id, Some(LetterId::Mongo("custom-1".into())));
    assert_eq!(l.value.as_deref(), Some(&b"ok"[..]));
    assert_eq!(l.source.topic, None);
    assert_eq!(l.source.partition, None);
    let notes = l.failure.notes.join("\n");
    assert!(
        notes.contains("field 'topic' is an integer 17, expected a string"),
        "{notes}"
    );
    assert!(
        notes.contains("field 'partition' is a string \"two\", expected an integer"),
        "{notes}"
    );
    assert!(notes.contains("field 'offset' is an array"), "{notes}");
    assert!(
        notes.contains("field 'timestamp' is a string \"yesterday\", expected a time"),
        "{notes}"
    );
    let empty = letter_from_doc(&doc! {}, &FieldMap::default());
    assert_eq!(empty.id, None);
    assert!(empty.source.is_unknown());
}

#[test]
fn a_field_map_reads_other_schemas() {
    let map = FieldMap {
        value: "payload.body".into(),
        topic: "meta.source".into(),
        error_message: "error".into(),
        ..FieldMap::default()
    };
    let d = doc! { "payload": { "body": "x" }, "meta": { "source": "orders" }, "error": "boom" };
    let l = letter_from_doc(&d, &map);
    assert_eq!(l.value.as_deref(), Some(&b"x"[..]));
    assert_eq!(l.source.topic.as_deref(), Some("orders"));
    assert_eq!(l.failure.message.as_deref(), Some("boom"));
    assert_eq!(l.failure.reason, Reason::Failed);
}

#[test]
fn written_documents_read_back_the_same() {
    let mut h = Headers::default();
    h.push("traceparent", "00-1-2-01");
    h.push("bin", vec![0u8, 0xff]);
    let mut l = DeadLetter::from_record(
        None,
        Some(1_732_700_009_000),
        Some(vec![0xde, 0xad]),
        Some(vec![0xc3, 0x28]),
        h,
    );
    l.source.topic = Some("trades".into());
    l.source.partition = Some(1);
    l.source.offset = Some(7);
    l.source.timestamp_ms = Some(1_732_700_000_000);
    l.source.consumer_group = Some("g".into());
    l.failure = FailureContext {
        exception_class: Some("ValueError".into()),
        message: Some("bad".into()),
        stack_trace: Some("trace".into()),
        reason: Reason::MaxAttemptsExceeded,
        attempts: Some(3),
        processor: Some("host-a".into()),
        ..FailureContext::default()
    };
    let d = doc_from_letter(&l, &FieldMap::default(), 0);
    assert!(
        matches!(d.get("value"), Some(Bson::Binary(_))),
        "non-UTF-8 stays binary"
    );
    assert!(matches!(d.get("key"), Some(Bson::Binary(_))));
    let back = letter_from_doc(&d, &FieldMap::default());
    assert_eq!(back.key, l.key);
    assert_eq!(back.value, l.value);
    assert_eq!(back.headers, l.headers);
    assert_eq!(back.source, l.source);
    assert_eq!(back.dlq_timestamp_ms, l.dlq_timestamp_ms);
    assert_eq!(back.failure.exception_class, l.failure.exception_class);
    assert_eq!(back.failure.reason, Reason::MaxAttemptsExceeded);
    assert_eq!(back.failure.attempts, Some(3));
    assert_eq!(back.failure.processor.as_deref(), Some("host-a"));
}

#[test]
fn ids_map_back_to_their_bson_types() {
    let c = id_candidates("65f0c0ffee0000000000abcd");
    assert!(matches!(c[0], Bson::ObjectId(_)));
    let c = id_candidates("42");
    assert!(c.contains(&Bson::Int32(42)) && c.contains(&Bson::String("42".into())));
}
