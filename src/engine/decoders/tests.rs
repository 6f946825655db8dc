use std::io::Write;

use proptest::prelude::*;

use super::*;

const TRADE: &str = r#"{"type":"record","name":"Trade","namespace":"acme","fields":[
    {"name":"id","type":"string"},{"name":"price","type":"double"},{"name":"qty","type":"int"}]}"#;

fn with_dir() -> (Registry, tempdir::Dir) {
    let dir = tempdir::Dir::new();
    std::fs::write(dir.0.join("17.avsc"), TRADE).unwrap();
    let reg = Registry::new(SchemaSource {
        registry: None,
        dir: Some(dir.0.clone()),
        ..Default::default()
    });
    reg.schemas.fetch_blocking(17);
    (reg, dir)
}

/// A tiny self-removing temporary directory.
pub(super) mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Dir {
            let p = std::env::temp_dir().join(format!(
                "morgue-decoders-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4()
            ));
            std::fs::create_dir_all(&p).unwrap();
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn framed(id: u32, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend(id.to_be_bytes());
    out.extend(body);
    out
}

fn trade_datum(price: f64) -> Vec<u8> {
    use apache_avro::types::Value;
    let schema = apache_avro::Schema::parse_str(TRADE).unwrap();
    let v = Value::Record(vec![
        ("id".into(), Value::String("T-1".into())),
        ("price".into(), Value::Double(price)),
        ("qty".into(), Value::Int(5)),
    ]);
    apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
        .build()
        .unwrap()
        .write_value_to_vec(v)
        .unwrap()
}

#[test]
fn confluent_avro_with_a_local_schema() {
    let (reg, _dir) = with_dir();
    match reg.decode(&framed(17, &trade_datum(-3.5)), None) {
        Attempt::Decoded(s) => {
            assert_eq!(s.format, "Avro (schema 17)");
            assert_eq!(s.schema_id, Some(17));
            assert_eq!(s.value["price"], -3.5);
            assert_eq!(s.value["id"], "T-1");
        }
        other => panic!("{other:?}"),
    }
    // A cut body, an unknown id, and no schema source at all: one line each, saying
    // why, of the kind a caller acts on (the let-else panics on another kind).
    let Attempt::Failed(DecodeError {
        message: why,
        kind: DecodeKind::Malformed,
    }) = reg.decode(&framed(17, &trade_datum(1.0)[..3]), None)
    else {
        panic!()
    };
    assert!(why.starts_with("not an Avro datum of its schema"), "{why}");
    reg.schemas.fetch_blocking(18);
    let Attempt::Failed(DecodeError {
        message: why,
        kind: DecodeKind::NoSchema,
    }) = reg.decode(&framed(18, b"x"), None)
    else {
        panic!()
    };
    assert!(why.contains("schema 18: no 18.avsc"), "{why}");
    let bare = Registry::new(SchemaSource::default());
    let Attempt::Failed(DecodeError {
        message: why,
        kind: DecodeKind::NoSchema,
    }) = bare.decode(&framed(17, b"x"), None)
    else {
        panic!()
    };
    assert!(
        why.contains("no schema registry (--schema-registry URL)"),
        "{why}"
    );
}

#[test]
fn compressed_payloads_are_decoded_again() {
    let (reg, _dir) = with_dir();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(br#"{"price": -1}"#).unwrap();
    let gz = gz.finish().unwrap();
    match reg.decode(&gz, None) {
        Attempt::Decoded(s) => {
            assert_eq!(s.format, "gzip, then JSON");
            assert_eq!(s.value["price"], -1);
        }
        other => panic!("{other:?}"),
    }
    let zst = zstd::encode_all(&framed(17, &trade_datum(2.0))[..], 3).unwrap();
    match reg.decode(&zst, None) {
        Attempt::Decoded(s) => assert_eq!(s.format, "zstd, then Avro (schema 17)"),
        other => panic!("{other:?}"),
    }
    let lz = lz4_flex::frame::FrameEncoder::new(Vec::new());
    let mut lz = lz;
    lz.write_all(b"plain words").unwrap();
    let lz = lz.finish().unwrap();
    match reg.decode(&lz, None) {
        Attempt::Decoded(s) => assert_eq!(s.value, "plain words"),
        other => panic!("{other:?}"),
    }
    let mut sn = snap::write::FrameEncoder::new(Vec::new());
    sn.write_all(b"[1,2]").unwrap();
    let sn = sn.into_inner().unwrap();
    assert!(
        matches!(reg.decode(&sn, None), Attempt::Decoded(s) if s.value == serde_json::json!([1, 2]))
    );
    let Attempt::Failed(DecodeError { message: why, .. }) = reg.decode(&gz[..gz.len() / 2], None)
    else {
        panic!()
    };
    assert!(why.starts_with("gzip payload does not decompress"), "{why}");
}

#[test]
fn cbor_and_messagepack_maps_but_not_text_or_noise() {
    let reg = Registry::new(SchemaSource::default());
    // {"sym": "ACME", "px": -3}
    let msgpack = b"\x82\xa3sym\xa4ACME\xa2px\xfd";
    match reg.decode(msgpack, None) {
        Attempt::Decoded(s) => {
            assert_eq!(s.format, "MessagePack");
            assert_eq!(s.value, serde_json::json!({"sym": "ACME", "px": -3}));
        }
        other => panic!("{other:?}"),
    }
    let cbor = b"\xa2csymdACMEbpx\x22";
    match reg.decode(cbor, None) {
        Attempt::Decoded(s) => {
            assert_eq!(s.format, "CBOR");
            assert_eq!(s.value, serde_json::json!({"sym": "ACME", "px": -3}));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(reg.decode(br#"{"a":1}"#, None), Attempt::NotMine);
    assert_eq!(
        reg.decode(b"\x82\xa3sym", None),
        Attempt::NotMine,
        "cut short"
    );
    assert_eq!(
        reg.decode(&[0xff, 0xfe, 0x00, 0x01], None),
        Attempt::NotMine
    );
}

/// A registry with every decoder armed: Avro id 17, Protobuf id 20, and unframed Avro
/// and Protobuf mapped to topics `t` and `q`.
fn armed() -> (Registry, tempdir::Dir) {
    let dir = tempdir::Dir::new();
    std::fs::write(dir.0.join("17.avsc"), TRADE).unwrap();
    let quote = "syntax = \"proto3\"; package acme; message Quote { string sym = 1; \
                 double price = 2; message Leg { int32 qty = 1; } repeated Leg legs = 3; }";
    std::fs::write(dir.0.join("20.proto"), quote).unwrap();
    std::fs::write(dir.0.join("Trade.avsc"), TRADE).unwrap();
    std::fs::write(dir.0.join("quote.proto"), quote).unwrap();
    let map = |g, f| super::schemas::Mapping::parse(g, f, Some(&dir.0)).unwrap();
    let reg = Registry::new(SchemaSource {
        dir: Some(dir.0.clone()),
        mapped: vec![map("t", "Trade.avsc"), map("q", "quote.proto:acme.Quote")],
        ..Default::default()
    });
    reg.schemas.fetch_blocking(17);
    reg.schemas.fetch_blocking(20);
    (reg, dir)
}

proptest! {
    #[test]
    fn no_bytes_make_a_decoder_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), id in 0u32..24) {
        let (reg, _dir) = armed();
        let full = framed(17, &trade_datum(1.0));
        let cut = bytes.len() % full.len();
        let gz = super::compress::compress("gzip", &bytes).unwrap();
        let payloads = [
            bytes.clone(),
            framed(17, &bytes),
            framed(20, &bytes),
            framed(id, &bytes),
            full[..cut].to_vec(),
            trade_datum(1.0)[..cut.min(12)].to_vec(),
            gz[..gz.len() - cut.min(gz.len())].to_vec(),
        ];
        for p in &payloads {
            for topic in [None, Some("t"), Some("q")] {
                if let Attempt::Failed(DecodeError { message: why, .. }) = reg.decode(p, topic) {
                    prop_assert!(!why.is_empty() && !why.contains('\n'), "{why:?}");
                }
            }
        }
    }
}

#[test]
fn protobuf_from_proto_source_with_message_indexes() {
    let dir = tempdir::Dir::new();
    std::fs::write(
        dir.0.join("20.proto"),
        r#"syntax = "proto3"; package acme;
           import "google/protobuf/timestamp.proto";
           message Quote { string sym = 1; double price = 2;
             message Leg { int32 qty = 1; }
             repeated Leg legs = 3; google.protobuf.Timestamp at = 4; }"#,
    )
    .unwrap();
    let reg = Registry::new(SchemaSource {
        registry: None,
        dir: Some(dir.0.clone()),
        ..Default::default()
    });
    reg.schemas.fetch_blocking(20);
    // The first message (indexes: a single 0), sym "PB", price -9.5.
    let mut quote = vec![0x00, 0x0a, 2, b'P', b'B', 0x11];
    quote.extend((-9.5f64).to_le_bytes());
    match reg.decode(&framed(20, &quote), None) {
        Attempt::Decoded(s) => {
            assert_eq!(s.format, "Protobuf acme.Quote (schema 20)");
            assert_eq!(s.value, serde_json::json!({"sym": "PB", "price": -9.5}));
        }
        other => panic!("{other:?}"),
    }
    // The nested Leg: indexes [0, 0] as zig-zag varints (count 2), then qty 3.
    match reg.decode(&framed(20, &[0x04, 0x00, 0x00, 0x08, 0x03]), None) {
        Attempt::Decoded(s) => {
            assert_eq!(s.format, "Protobuf acme.Quote.Leg (schema 20)");
            assert_eq!(s.value, serde_json::json!({"qty": 3}));
        }
        other => panic!("{other:?}"),
    }
    let Attempt::Failed(DecodeError {
        message: why,
        kind: DecodeKind::Malformed,
    }) = reg.decode(&framed(20, &[0x02, 0x0e, 0x0a]), None)
    else {
        panic!()
    };
    assert!(why.contains("no message #7 in the schema"), "{why}");
    // A schema that does not compile: the reason, on one line.
    std::fs::write(dir.0.join("21.proto"), "syntax = \"proto3\"; message {").unwrap();
    reg.schemas.fetch_blocking(21);
    let Attempt::Failed(DecodeError {
        message: why,
        kind: DecodeKind::BadSchema,
    }) = reg.decode(&framed(21, &[0]), None)
    else {
        panic!()
    };
    assert!(
        why.starts_with("schema 21 in '") && !why.contains('\n'),
        "{why}"
    );
}

#[test]
fn edits_are_encoded_back_under_the_schema_or_refused_with_the_field() {
    use super::encode::reencode;
    let (reg, _dir) = with_dir();
    let original = framed(17, &trade_datum(-3.5));
    let fixed = serde_json::json!({"id": "T-1", "price": 3.5, "qty": 5});
    let bytes = reencode(&original, &fixed, &reg, None, false).unwrap();
    assert_eq!(&bytes[..5], &original[..5], "same frame and schema id");
    match reg.decode(&bytes, None) {
        Attempt::Decoded(s) => assert_eq!(s.value, fixed),
        other => panic!("{other:?}"),
    }
    let bad = |v: serde_json::Value| {
        reencode(&original, &v, &reg, None, false)
            .unwrap_err()
            .message
    };
    assert_eq!(
        bad(serde_json::json!({"id": "T-1", "price": "cheap", "qty": 5})),
        "$.price: expected double, got \"cheap\""
    );
    assert_eq!(
        bad(serde_json::json!({"id": "T-1", "price": 1.0})),
        "$.qty: missing (the schema has no default)"
    );
    assert_eq!(
        bad(serde_json::json!({"id": "T-1", "price": 1.0, "qty": 5, "venue": "X"})),
        "$.venue: not a field of acme.Trade"
    );
    assert_eq!(
        bad(serde_json::json!({"id": "T-1", "price": 1.0, "qty": 3_000_000_000i64})),
        "$.qty: expected int, got 3000000000"
    );
    // MessagePack is written again from the JSON.
    let msgpack = b"\x82\xa3sym\xa4ACME\xa2px\xfd";
    let edited = serde_json::json!({"sym": "ACME", "px": 3});
    let bytes = reencode(msgpack, &edited, &reg, None, false).unwrap();
    assert!(matches!(reg.decode(&bytes, None), Attempt::Decoded(s) if s.value == edited));
    // Plain JSON is not this module's business.
    assert!(reencode(br#"{"a":1}"#, &edited, &reg, None, false).is_err());
}

#[test]
fn protobuf_edits_keep_the_message_indexes() {
    let dir = tempdir::Dir::new();
    std::fs::write(
        dir.0.join("20.proto"),
        "syntax = \"proto3\"; package acme; message Quote { string sym = 1; double price = 2; \
         message Leg { int32 qty = 1; } }",
    )
    .unwrap();
    let reg = Registry::new(SchemaSource {
        registry: None,
        dir: Some(dir.0.clone()),
        ..Default::default()
    });
    reg.schemas.fetch_blocking(20);
    let leg = framed(20, &[0x04, 0x00, 0x00, 0x08, 0x03]);
    let bytes =
        super::encode::reencode(&leg, &serde_json::json!({"qty": 7}), &reg, None, false).unwrap();
    assert_eq!(&bytes[..8], &leg[..8], "frame, id and indexes kept");
    assert!(
        matches!(reg.decode(&bytes, None), Attempt::Decoded(s) if s.value == serde_json::json!({"qty": 7}))
    );
    let why = super::encode::reencode(&leg, &serde_json::json!({"qty": "many"}), &reg, None, false)
        .unwrap_err()
        .message;
    assert!(why.starts_with("$: not a acme.Quote.Leg"), "{why}");
}

fn mapped(dir: &tempdir::Dir, glob: &str, target: &str) -> Registry {
    Registry::new(SchemaSource {
        mapped: vec![super::schemas::Mapping::parse(glob, target, Some(&dir.0)).unwrap()],
        ..Default::default()
    })
}

#[test]
fn unframed_avro_is_read_by_the_schema_mapped_to_its_source_topic() {
    let dir = tempdir::Dir::new();
    std::fs::write(dir.0.join("Trade.avsc"), TRADE).unwrap();
    let reg = mapped(&dir, "trades*", "Trade.avsc");
    let datum = trade_datum(-3.5);
    match reg.decode(&datum, Some("trades.eu")) {
        Attempt::Decoded(s) => {
            assert_eq!(s.format, "Avro (acme.Trade, unframed)");
            assert_eq!(s.value["price"], -3.5);
        }
        other => panic!("{other:?}"),
    }
    // Another topic, or no topic (a key), is not mapped.
    assert!(!matches!(
        reg.decode(&datum, Some("quotes")),
        Attempt::Decoded(_)
    ));
    assert!(!matches!(reg.decode(&datum, None), Attempt::Decoded(_)));
    // Text on a mapped topic is still read as text; binary that does not fit says why.
    assert_eq!(
        reg.decode(b"{\"price\": 1}", Some("trades")),
        Attempt::NotMine
    );
    let Attempt::Failed(DecodeError { message: why, .. }) =
        reg.decode(&[0xff, 0xfe, 0x01], Some("trades"))
    else {
        panic!("binary that is not a Trade must fail");
    };
    assert!(why.contains("mapped to 'trades*'"), "{why}");
    // An edit is encoded unframed under the same schema, and checked first.
    let edited = serde_json::json!({"id": "T-1", "price": 3.5, "qty": 5});
    let bytes = super::encode::reencode(&datum, &edited, &reg, Some("trades"), false).unwrap();
    assert_eq!(bytes, trade_datum(3.5));
    let bad = serde_json::json!({"id": "T-1", "price": "cheap", "qty": 5});
    let why = super::encode::reencode(&datum, &bad, &reg, Some("trades"), false)
        .unwrap_err()
        .message;
    assert!(why.contains("$.price"), "{why}");
}

#[test]
fn unframed_protobuf_names_its_message_and_a_missing_file_says_so() {
    let dir = tempdir::Dir::new();
    std::fs::write(
        dir.0.join("quote.proto"),
        "syntax = \"proto3\"; package acme; message Other { int32 n = 1; } \
         message Quote { string sym = 1; double price = 2; }",
    )
    .unwrap();
    let reg = mapped(&dir, "quotes", "quote.proto:acme.Quote");
    let mut quote = vec![0x0a, 2, b'P', b'B', 0x11];
    quote.extend((-9.5f64).to_le_bytes());
    match reg.decode(&quote, Some("quotes")) {
        Attempt::Decoded(s) => {
            assert_eq!(s.format, "Protobuf acme.Quote (unframed)");
            assert_eq!(s.value, serde_json::json!({"sym": "PB", "price": -9.5}));
        }
        other => panic!("{other:?}"),
    }
    let edited = serde_json::json!({"sym": "PB", "price": 9.5});
    let bytes = super::encode::reencode(&quote, &edited, &reg, Some("quotes"), false).unwrap();
    assert!(matches!(reg.decode(&bytes, Some("quotes")), Attempt::Decoded(s) if s.value == edited));

    let missing = mapped(&dir, "quotes", "nope.proto:acme.Quote");
    let Attempt::Failed(DecodeError { message: why, .. }) = missing.decode(&quote, Some("quotes"))
    else {
        panic!("a missing schema file must fail");
    };
    assert!(why.contains("nope.proto"), "{why}");
    let why = super::schemas::Mapping::parse("q", "Quote.json", None).unwrap_err();
    assert!(why.contains("'Quote.json'"), "{why}");
}

#[test]
fn compressed_payloads_are_compressed_again_after_an_edit() {
    let reg = Registry::new(SchemaSource::default());
    for name in ["gzip", "zstd", "lz4", "snappy"] {
        let original = super::compress::compress(name, br#"{"sym":"GZ","price":-7}"#).unwrap();
        assert_eq!(super::compress::kind(&original), Some(name));
        let edited = serde_json::json!({"sym": "GZ", "price": 7});
        let bytes = super::encode::reencode(&original, &edited, &reg, None, false).unwrap();
        assert_eq!(super::compress::kind(&bytes), Some(name), "same codec");
        match reg.decode(&bytes, None) {
            Attempt::Decoded(s) => {
                assert_eq!(s.format, format!("{name}, then JSON"));
                assert_eq!(s.value, edited);
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn an_edit_moves_to_the_latest_version_only_when_readers_of_the_old_can_read_it() {
    let dir = tempdir::Dir::new();
    std::fs::write(dir.0.join("17.avsc"), TRADE).unwrap();
    // 18 adds a field with a default: readers of 17 skip it. 19 turns price into a string.
    let v18 = TRADE.replace(
        r#"{"name":"qty","type":"int"}"#,
        r#"{"name":"qty","type":"int"},{"name":"note","type":"string","default":""}"#,
    );
    assert_ne!(v18, TRADE);
    std::fs::write(dir.0.join("18.avsc"), &v18).unwrap();
    std::fs::write(
        dir.0.join("19.avsc"),
        TRADE.replace(r#""type":"double""#, r#""type":"string""#),
    )
    .unwrap();
    let reg = Registry::new(SchemaSource {
        dir: Some(dir.0.clone()),
        latest: true,
        ..Default::default()
    });
    let original = framed(17, &trade_datum(-3.5));
    let edited = serde_json::json!({"id": "T-1", "price": 3.5, "qty": 5, "note": "fixed"});
    reg.schemas.put_versions("trades-value", 17, 18);
    let bytes = super::encode::reencode(&original, &edited, &reg, None, true).unwrap();
    assert_eq!(&bytes[..5], &[0, 0, 0, 0, 18], "framed with the latest id");
    reg.schemas.fetch_blocking(18);
    assert!(matches!(reg.decode(&bytes, None), Attempt::Decoded(s) if s.value == edited));
    // The same edit under the id it was written with drops nothing it can keep.
    let same = super::encode::reencode(&original, &edited, &reg, None, false);
    assert!(
        same.unwrap_err().message.contains("note"),
        "17 has no field note"
    );

    reg.schemas.put_versions("trades-value", 17, 19);
    let why = super::encode::reencode(&original, &edited, &reg, None, true)
        .unwrap_err()
        .message;
    assert!(
        why.starts_with("schema 19 (latest of trades-value) does not fit readers of schema 17:"),
        "{why}"
    );
}

#[test]
fn json_schema_edits_are_checked_against_the_schema_of_their_frame() {
    use super::encode::reencode;
    let dir = tempdir::Dir::new();
    let schema = r#"{"type":"object","properties":{"id":{"type":"string"},
        "price":{"type":"number","minimum":0}},"required":["id","price"]}"#;
    std::fs::write(dir.0.join("21.json"), schema).unwrap();
    let dangling = r#"{"type":"object","properties":{"leg":{"$ref":"leg.json"}}}"#;
    std::fs::write(dir.0.join("22.json"), dangling).unwrap();
    let reg = Registry::new(SchemaSource {
        dir: Some(dir.0.clone()),
        ..Default::default()
    });
    reg.schemas.fetch_blocking(21);
    reg.schemas.fetch_blocking(22);
    let original = framed(21, br#"{"id":"T-1","price":-1}"#);
    let fixed = serde_json::json!({"id": "T-1", "price": 2.5});
    let bytes = reencode(&original, &fixed, &reg, None, false).unwrap();
    assert_eq!(bytes, framed(21, br#"{"id":"T-1","price":2.5}"#));
    let e = reencode(
        &original,
        &serde_json::json!({"id": "T-1", "price": -2}),
        &reg,
        None,
        false,
    )
    .unwrap_err()
    .message;
    assert!(e.starts_with("$.price: ") && e.contains("minimum"), "{e}");
    let e = reencode(
        &original,
        &serde_json::json!({"id": 7, "price": 1}),
        &reg,
        None,
        false,
    )
    .unwrap_err()
    .message;
    assert!(e.starts_with("$.id: ") && e.contains("string"), "{e}");
    // A schema that does not compile refuses edits, but its letters still decode.
    let broken = framed(22, br#"{"id":"T-2"}"#);
    assert!(matches!(reg.decode(&broken, None), Attempt::Decoded(_)));
    let e = reencode(&broken, &fixed, &reg, None, false)
        .unwrap_err()
        .message;
    assert!(
        e.starts_with("schema 22 cannot check the edit: ") && e.contains("leg.json"),
        "{e}"
    );
    // Under the latest version (23 caps the price): valid under both, or refused.
    let v23 = schema.replace(r#""minimum":0"#, r#""minimum":0,"maximum":100"#);
    assert_ne!(v23, schema);
    std::fs::write(dir.0.join("23.json"), v23).unwrap();
    reg.schemas.put_versions("trades-value", 21, 23);
    let bytes = reencode(&original, &fixed, &reg, None, true).unwrap();
    assert_eq!(&bytes[..5], &[0, 0, 0, 0, 23], "framed with the latest id");
    let e = reencode(
        &original,
        &serde_json::json!({"id": "T-1", "price": 500}),
        &reg,
        None,
        true,
    )
    .unwrap_err()
    .message;
    assert!(e.starts_with("$.price: ") && e.contains("100"), "{e}");
}
