//! Edits with multi-byte text (`é`, emoji, combining marks) through the encoders: each
//! case is an input that once panicked, kept as it was found.

use super::encode::reencode;
use super::*;

const TRADE: &str = r#"{"type":"record","name":"Trade","namespace":"acme","fields":[
    {"name":"id","type":"string"},{"name":"price","type":"double"},{"name":"qty","type":"int"}]}"#;

/// A registry reading Avro schema 17 ([`TRADE`]) from a directory of its own.
fn avro_17() -> (Registry, super::tests::tempdir::Dir) {
    let dir = super::tests::tempdir::Dir::new();
    std::fs::write(dir.0.join("17.avsc"), TRADE).unwrap();
    let reg = Registry::new(SchemaSource {
        dir: Some(dir.0.clone()),
        ..Default::default()
    });
    reg.schemas.fetch_blocking(17);
    (reg, dir)
}

/// A framed Trade datum (schema 17).
fn trade() -> Vec<u8> {
    use apache_avro::types::Value;
    let schema = apache_avro::Schema::parse_str(TRADE).unwrap();
    let v = Value::Record(vec![
        ("id".into(), Value::String("T-1".into())),
        ("price".into(), Value::Double(-3.5)),
        ("qty".into(), Value::Int(5)),
    ]);
    let mut out = vec![0, 0, 0, 0, 17];
    out.extend(
        apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .unwrap()
            .write_value_to_vec(v)
            .unwrap(),
    );
    out
}

#[test]
fn an_avro_double_set_to_an_object_of_accented_text_is_refused_not_a_panic() {
    let (reg, _dir) = avro_17();
    // `{"ab":"` is 7 bytes, so byte 40 of the object's text falls inside the 17th `é`.
    let edited = serde_json::json!({"id": "T-1", "price": {"ab": "é".repeat(17)}, "qty": 5});
    let err = reencode(&trade(), &edited, &reg, None, false).unwrap_err();
    assert_eq!(
        err.kind,
        super::DecodeKind::Mismatch,
        "an edit that does not fit"
    );
    let why = err.message;
    let shown = format!(r#"{{"ab":"{}"}}"#, "é".repeat(17));
    assert_eq!(why, format!("$.price: expected double, got {shown}"));
    // Longer than 40 characters: cut to 40, the last of them `…`.
    let edited = serde_json::json!({"id": "T-1", "price": {"ab": "é".repeat(60)}, "qty": 5});
    let why = reencode(&trade(), &edited, &reg, None, false)
        .unwrap_err()
        .message;
    let shown = format!(r#"{{"ab":"{}…"#, "é".repeat(32));
    assert_eq!(why, format!("$.price: expected double, got {shown}"));
}

#[test]
fn an_avro_float_past_the_range_of_a_float_is_refused_not_written_as_infinity() {
    // 1e300 fits a double, not a float: written, it was infinity, and the letter no
    // longer decoded ("Avro value not representable as JSON").
    let schema = apache_avro::Schema::parse_str(
        r#"{"type":"record","name":"R","fields":[{"name":"f","type":"float"}]}"#,
    )
    .unwrap();
    let why = super::avro::encode(&schema, &[], &serde_json::json!({"f": 1e300}))
        .unwrap_err()
        .message;
    assert_eq!(why, "$.f: expected float (at most 3.4e38), got 1e+300");
    let why = super::avro::encode(&schema, &[], &serde_json::json!({"f": -1e39}))
        .unwrap_err()
        .message;
    assert!(why.starts_with("$.f: expected float"), "{why}");
    let fits = super::avro::encode(&schema, &[], &serde_json::json!({"f": 3.0e38})).unwrap();
    assert!(super::avro::decode(&fits, &schema, &[]).is_ok());
}

#[test]
fn an_avro_type_named_again_in_its_own_schema_decodes_and_encodes() {
    // `to` names the Addr that `from` defines: it was "Unresolved schema reference: Addr"
    // on reading, and "Value does not match schema" on writing an edit.
    let schema = apache_avro::Schema::parse_str(
        r#"{"type":"record","name":"Move","fields":[
            {"name":"from","type":{"type":"record","name":"Addr",
                "fields":[{"name":"city","type":"string"}]}},
            {"name":"to","type":"Addr"}]}"#,
    )
    .unwrap();
    let moved = serde_json::json!({"from": {"city": "Zürich"}, "to": {"city": "Genève"}});
    let datum = super::avro::encode(&schema, &[], &moved).unwrap();
    assert_eq!(super::avro::decode(&datum, &schema, &[]).unwrap(), moved);
    let bad = serde_json::json!({"from": {"city": "Zürich"}, "to": {"town": "Genève"}});
    let why = super::avro::encode(&schema, &[], &bad).unwrap_err().message;
    assert_eq!(why, "$.to.town: not a field of Addr");
}
