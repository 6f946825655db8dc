//! Any text, multi-byte characters and all (`é`, combining marks, emoji), through the
//! edit of a decoded payload as the TUI sends it (diffed, checked as JSON, re-encoded
//! under its schema: Avro, Protobuf, JSON Schema, MessagePack, CBOR, compressed) and
//! through what reads keys and headers (the index, the fingerprint, the decoders).

use morgue::engine::decoders::encode::reencode;
use morgue::engine::decoders::schemas::Mapping;
use morgue::engine::decoders::{Attempt, DecodeError, Registry, SchemaSource, compress};
use morgue::engine::model::{conventions, encoding::EncodedBytes};
use morgue::engine::read::decode::decode;
use morgue::engine::read::keys::MAX_KEPT;
use morgue::engine::read::{fingerprint, store::Store};
use morgue::engine::{DeadLetter, Header, Headers, LetterId};
use morgue::tui::editor;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Value as Json, json};

use super::{fuzz, header_name, header_value};

/// A directory of its own, removed when dropped.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const TRADE_AVSC: &str = r#"{"type":"record","name":"Trade","namespace":"acme","fields":[
    {"name":"id","type":"string"},{"name":"price","type":"double"},{"name":"qty","type":"int"},
    {"name":"n","type":"long"},{"name":"f","type":"float"},{"name":"ok","type":"boolean"},
    {"name":"raw","type":"bytes"},
    {"name":"side","type":{"type":"enum","name":"Side","symbols":["BUY","SELL"]}},
    {"name":"tag","type":{"type":"fixed","name":"Tag","size":2}},
    {"name":"legs","type":{"type":"array","items":{"type":"record","name":"Leg","fields":[
        {"name":"qty","type":"int"},{"name":"venue","type":"string"}]}}},
    {"name":"attrs","type":{"type":"map","values":"string"}},
    {"name":"note","type":["null","string"],"default":null},
    {"name":"last","type":["null","Leg"],"default":null}]}"#;

const QUOTE_PROTO: &str = r#"syntax = "proto3"; package acme;
import "google/protobuf/timestamp.proto"; import "google/protobuf/duration.proto";
import "google/protobuf/struct.proto"; import "google/protobuf/field_mask.proto";
import "google/protobuf/wrappers.proto";
message Quote {
  string sym = 1; double price = 2; int32 qty = 3; int64 n = 4; uint32 u = 5; bool ok = 6;
  bytes raw = 7; enum Side { BUY = 0; SELL = 1; } Side side = 8;
  message Leg { int32 qty = 1; string venue = 2; } repeated Leg legs = 9;
  map<string, int32> attrs = 10; google.protobuf.Timestamp at = 11;
  google.protobuf.Duration took = 12; google.protobuf.Struct extra = 13;
  google.protobuf.FieldMask mask = 14; google.protobuf.StringValue label = 15;
  oneof pick { string a = 16; int32 b = 17; } float fl = 18; }"#;

const TRADE_JSON_SCHEMA: &str = r#"{"$schema":"http://json-schema.org/draft-07/schema#",
  "type":"object","required":["id","price"],"additionalProperties":false,
  "properties":{"id":{"type":"string","pattern":"^[A-Zé]+-\\d+$","maxLength":12},
    "price":{"type":"number","minimum":0,"multipleOf":0.01},
    "email":{"format":"email"},"at":{"format":"date-time"},"site":{"format":"uri"},
    "ip":{"format":"ipv4"},"host":{"format":"hostname"},"day":{"format":"date"},
    "ip6":{"format":"ipv6"},"idn":{"format":"idn-hostname"},"mail":{"format":"idn-email"},
    "time":{"format":"time"},"took":{"format":"duration"},"iri":{"format":"iri"},
    "ref":{"format":"uri-reference"},"tpl":{"format":"uri-template"},"re":{"format":"regex"},
    "ptr":{"format":"json-pointer"},"rel":{"format":"relative-json-pointer"},
    "uuid":{"format":"uuid"},
    "doc":{"contentMediaType":"application/json","contentEncoding":"base64"},
    "side":{"enum":["BUY","SELL"]},
    "legs":{"type":"array","maxItems":3,"items":{"type":"object","required":["qty"],
      "properties":{"qty":{"type":"integer"}}}},
    "tags":{"type":"object","propertyNames":{"pattern":"^[a-z]+$"},
      "additionalProperties":{"type":"string","minLength":1}}}}"#;

/// A Trade datum (unframed Avro).
fn trade_datum() -> Vec<u8> {
    use apache_avro::types::Value as A;
    let schema = apache_avro::Schema::parse_str(TRADE_AVSC).unwrap();
    let leg = A::Record(vec![
        ("qty".into(), A::Int(1)),
        ("venue".into(), A::String("X".into())),
    ]);
    let v = A::Record(vec![
        ("id".into(), A::String("T-1".into())),
        ("price".into(), A::Double(-3.5)),
        ("qty".into(), A::Int(5)),
        ("n".into(), A::Long(7)),
        ("f".into(), A::Float(1.5)),
        ("ok".into(), A::Boolean(true)),
        ("raw".into(), A::Bytes(vec![1, 2])),
        ("side".into(), A::Enum(0, "BUY".into())),
        ("tag".into(), A::Fixed(2, vec![0, 1])),
        ("legs".into(), A::Array(vec![leg])),
        (
            "attrs".into(),
            A::Map([("k".to_string(), A::String("v".into()))].into()),
        ),
        ("note".into(), A::Union(0, Box::new(A::Null))),
        ("last".into(), A::Union(0, Box::new(A::Null))),
    ]);
    apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
        .build()
        .unwrap()
        .write_value_to_vec(v)
        .unwrap()
}

fn framed(id: u32, body: &[u8]) -> Vec<u8> {
    [&[0][..], &id.to_be_bytes(), body].concat()
}

/// A payload, the topic it came from, and the JSON an editor starts from.
type Original = (Vec<u8>, Option<&'static str>, Json);

/// A registry with Avro (17), Protobuf (20) and JSON Schema (21) by id, and Avro and
/// Protobuf mapped to topics `t` and `q`; and payloads of each with the JSON an editor
/// starts from, and the topic they came from.
fn armed() -> (Registry, Scratch, Vec<Original>) {
    let dir = Scratch(std::env::temp_dir().join(crate::common::unique("fuzz-schemas")));
    std::fs::create_dir_all(&dir.0).unwrap();
    for (name, text) in [
        ("17.avsc", TRADE_AVSC),
        ("Trade.avsc", TRADE_AVSC),
        ("20.proto", QUOTE_PROTO),
        ("quote.proto", QUOTE_PROTO),
        ("21.json", TRADE_JSON_SCHEMA),
    ] {
        std::fs::write(dir.0.join(name), text).unwrap();
    }
    let map = |glob, target| Mapping::parse(glob, target, Some(&dir.0)).unwrap();
    let reg = Registry::new(SchemaSource {
        dir: Some(dir.0.clone()),
        mapped: vec![map("t", "Trade.avsc"), map("q", "quote.proto:acme.Quote")],
        ..Default::default()
    });
    for id in [17, 20, 21] {
        reg.schemas.fetch_blocking(id);
    }
    let trade = json!({"id": "T-1", "price": -3.5, "qty": 5, "n": 7, "f": 1.5, "ok": true,
        "raw": [1, 2], "side": "BUY", "tag": [0, 1], "legs": [{"qty": 1, "venue": "X"}],
        "attrs": {"k": "v"}, "note": null, "last": {"qty": 2, "venue": "Y"}});
    let quote = json!({"sym": "Q", "price": 1.5, "qty": 3, "n": "7", "u": 1, "ok": true,
        "raw": "AQI=", "side": "SELL", "legs": [{"qty": 1, "venue": "X"}], "attrs": {"k": 1},
        "at": "1972-01-01T10:00:20.021Z", "took": "1.5s", "extra": {"a": [1, "b", null]},
        "mask": "a.b,c", "label": "L", "a": "x", "fl": 0.5});
    let checked = json!({"id": "AB-12", "price": 2.5, "email": "a@b.io",
        "at": "2024-01-01T00:00:00Z", "site": "https://x.io/a", "ip": "10.0.0.1",
        "host": "x.io", "day": "2024-01-01", "side": "BUY", "legs": [{"qty": 1}],
        "tags": {"a": "b"}, "ip6": "::1", "idn": "xn--bcher-kva.example",
        "mail": "jané@exämple.com", "time": "10:00:20Z", "took": "P1DT2H", "iri": "https://é.io/ü",
        "ref": "../a?b#c", "tpl": "{+x}/a{?q}", "re": "^[a-z]+$", "ptr": "/a/b~1c",
        "rel": "0/a", "uuid": "6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b", "doc": "e30="});
    let small = json!({"sym": "ACME", "px": -3});
    let gzip = |b: &[u8]| compress::compress("gzip", b).unwrap();
    let originals = vec![
        (framed(17, &trade_datum()), None, trade.clone()),
        (framed(20, &[0, 0x0a, 1, b'Q']), None, quote.clone()),
        // Indexes [0, 0]: the nested Leg.
        (
            framed(20, &[4, 0, 0, 0x08, 1]),
            None,
            json!({"qty": 1, "venue": "X"}),
        ),
        (framed(21, checked.to_string().as_bytes()), None, checked),
        (trade_datum(), Some("t"), trade.clone()),
        (vec![0x0a, 1, b'Q'], Some("q"), quote),
        (
            b"\x82\xa3sym\xa4ACME\xa2px\xfd".to_vec(),
            None,
            small.clone(),
        ),
        (b"\xa2csymdACMEbpx\x22".to_vec(), None, small.clone()),
        (gzip(&framed(17, &trade_datum())), None, trade),
        (gzip(small.to_string().as_bytes()), None, small),
    ];
    for (bytes, topic, start) in &originals {
        assert!(
            matches!(reg.decode(bytes, *topic), Attempt::Decoded(_)),
            "{:?}",
            reg.decode(bytes, *topic)
        );
        // Each starting JSON fits its schema: an edit is refused for what it changed.
        reencode(bytes, start, &reg, *topic, false).unwrap();
    }
    (reg, dir, originals)
}

/// Text of every kind: any printable characters, and pieces that are multi-byte (`é`,
/// a combining mark, emoji and a family of them, a BOM) typed into values the schemas'
/// parsers read (timestamps, durations, field masks, addresses, base64, numbers).
fn text() -> impl Strategy<Value = String> {
    let pieces = "é|e\u{301}|😀|👩\u{200d}👩\u{200d}👧|\u{feff}|𝔘|ß|\0|\"|\\| |a|Z|7|-|\
                  .|:|@|/|T|s|,|'|\n|+|=";
    let piece = proptest::sample::select(pieces.split('|').collect::<Vec<_>>());
    let seeds = "|1972-01-01T10:00:20.021Z|1.5s|-0.000000001s|a.b,c|jane@example.com|\
                 https://x.io/a|10.0.0.1|2024-02-29|AB-12|AQI=|BUY|NaN|1e999|-9223372036854775809|\
                 ::ffff:1.2.3.4|xn--bcher-kva.example|10:00:20.5+01:00|P1Y2M3DT4H5M6S|\
                 {+x}/a{?q}|/a/b~1c|0/a|1#|^[ab]*$|e30=";
    let seed = proptest::sample::select(seeds.split('|').collect::<Vec<_>>());
    let typed = (
        seed,
        proptest::collection::vec((any::<Index>(), piece.clone()), 0..4),
    )
        .prop_map(|(seed, pieces)| {
            let mut s = seed.to_string();
            for (at, p) in pieces {
                typed_into(&mut s, at, p);
            }
            s
        });
    prop_oneof![
        "\\PC{0,24}",
        typed,
        proptest::collection::vec(piece, 0..60).prop_map(|p| p.concat()),
    ]
}

/// A JSON scalar: strings from [`text`], numbers at the edges of the types.
fn json_leaf() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::from),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        any::<f64>().prop_map(Json::from),
        proptest::sample::select(vec![0i64, -1, 255, 256, 1 << 31, 1 << 32, i64::MIN])
            .prop_map(Json::from),
        proptest::sample::select(vec![3.4e38, 3.5e38, -1e39, 1e-46, f64::MAX, -0.0])
            .prop_map(Json::from),
        text().prop_map(Json::from),
    ]
}

/// Any JSON, mostly a scalar.
fn json_value() -> impl Strategy<Value = Json> {
    let any = json_leaf().prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Json::from),
            proptest::collection::vec((text(), inner), 0..4)
                .prop_map(|kv| Json::Object(kv.into_iter().collect())),
        ]
    });
    prop_oneof![3 => json_leaf(), 1 => any]
}

/// The `n`th value of `v`, in pre-order.
fn nth<'a>(v: &'a mut Json, n: &mut usize) -> Option<&'a mut Json> {
    if *n == 0 {
        return Some(v);
    }
    *n -= 1;
    match v {
        Json::Array(a) => a.iter_mut().find_map(|x| nth(x, n)),
        Json::Object(o) => o.values_mut().find_map(|x| nth(x, n)),
        _ => None,
    }
}

fn count(v: &Json) -> usize {
    1 + match v {
        Json::Array(a) => a.iter().map(count).sum(),
        Json::Object(o) => o.values().map(count).sum(),
        _ => 0,
    }
}

/// An edit: text typed into string values, values replaced, keys added (or items
/// pushed), and text typed anywhere into the pretty-printed JSON, as in the editor.
type Edit = (
    Vec<(Index, Index, String)>,
    Vec<(Index, Json)>,
    Vec<(Index, String, Json)>,
    Option<(Index, String)>,
);

/// `s` with `typed` put before its `at`th character (or at its end).
fn typed_into(s: &mut String, at: Index, typed: &str) {
    let i = s
        .char_indices()
        .nth(at.index(s.chars().count() + 1))
        .map_or(s.len(), |(i, _)| i);
    s.insert_str(i, typed);
}

/// The editor's text after `edit` of `start`.
fn edited_text(start: &Json, (into, replace, add, typed): &Edit) -> String {
    let mut v = start.clone();
    for (at, char_at, typed) in into {
        let mut n = at.index(count(&v));
        if let Some(Json::String(s)) = nth(&mut v, &mut n) {
            typed_into(s, *char_at, typed);
        }
    }
    for (at, with) in replace {
        let mut n = at.index(count(&v));
        if let Some(x) = nth(&mut v, &mut n) {
            *x = with.clone();
        }
    }
    for (at, key, with) in add {
        let mut n = at.index(count(&v));
        match nth(&mut v, &mut n) {
            Some(Json::Object(o)) => drop(o.insert(key.clone(), with.clone())),
            Some(Json::Array(a)) => a.push(with.clone()),
            _ => {}
        }
    }
    let mut text = serde_json::to_string_pretty(&v).unwrap();
    if let Some((at, typed)) = typed {
        typed_into(&mut text, *at, typed);
    }
    text
}

#[test]
fn edits_of_any_text_are_encoded_or_refused() {
    let (reg, _dir, originals) = armed();
    let edit = (
        proptest::collection::vec((any::<Index>(), any::<Index>(), text()), 0..3),
        proptest::collection::vec((any::<Index>(), json_value()), 0..3),
        proptest::collection::vec((any::<Index>(), text(), json_value()), 0..2),
        proptest::option::of((any::<Index>(), text())),
    );
    fuzz("edit and re-encode", edit, |edit: Edit| {
        for (original, topic, start) in &originals {
            // As the TUI's edit: diffed, checked as JSON, then encoded under the schema.
            let text = edited_text(start, &edit);
            let before = serde_json::to_string_pretty(start).unwrap();
            let _ = editor::diff(&before, &text);
            if editor::invalid_json(&text, true).is_some() {
                continue;
            }
            let value: Json = serde_json::from_str(&text).unwrap();
            let Ok(bytes) = reencode(original, &value, &reg, *topic, false) else {
                continue;
            };
            // What was accepted reads back (MessagePack and CBOR only as a map or array).
            let container = value.is_object() || value.is_array();
            if container || original.first() == Some(&0) || topic.is_some() {
                let back = reg.decode(&bytes, *topic);
                assert!(
                    matches!(back, Attempt::Decoded(_)),
                    "{value} from {original:?} gave {bytes:?}: {back:?}"
                );
            }
        }
    });
}

/// Error messages with what the fingerprint masks (quotes, UUIDs, e-mail addresses,
/// hex ids, digits) among any text, some long.
fn message() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        text(),
        text().prop_map(|t| format!("'{t}'")),
        text().prop_map(|t| format!("\"{t}\"")),
        Just("6f1c2a9e-3b4d-4e5f-8a7b-9c0d1e2f3a4b".to_string()),
        Just("jané@exämple.com".to_string()),
        Just("65f0c0ffee0000000000abcd".to_string()),
        "[0-9]{1,20}",
        (text(), 0..200usize)
            .prop_map(|(t, n)| format!("'{}'", t.repeat(n.min(600 / (t.len() + 1))))),
    ];
    proptest::collection::vec(word, 0..8).prop_map(|w| w.join(" "))
}

/// Keys: any bytes, any text, long text of multi-byte characters (past what the index
/// keeps whole), and UUIDs in one case or mixed.
fn key() -> impl Strategy<Value = Option<Vec<u8>>> {
    let key = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        text().prop_map(String::into_bytes),
        (text(), 0..300usize).prop_map(|(t, n)| t.repeat(n.min(600 / (t.len() + 1))).into_bytes()),
        (0..300usize).prop_map(|n| format!("{}x", "é".repeat(n)).into_bytes()),
        Just(b"6F1C2A9E-3B4D-4E5F-8A7B-9C0D1E2F3A4B".to_vec()),
        Just(b"6f1c2a9e-3B4D-4e5f-8a7b-9c0d1e2f3a4b".to_vec()),
        // Framed for the schemas, a body of any bytes or text.
        (
            proptest::sample::select(vec![17u32, 20, 21]),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..40),
                text().prop_map(String::into_bytes)
            ],
        )
            .prop_map(|(id, body)| framed(id, &body)),
    ];
    proptest::option::weighted(0.9, key)
}

#[test]
fn keys_and_headers_of_any_text_never_panic() {
    let (reg, _dir, _) = armed();
    let names = prop_oneof![
        header_name(),
        text(),
        Just("kafka_dlt-exception-message".to_string()),
        Just("kafka_dlt-exception-fqcn".to_string()),
    ];
    let values = prop_oneof![header_value(), message().prop_map(|m| Some(m.into_bytes())),];
    let failure = proptest::option::of((text(), message()));
    let case = (
        key(),
        proptest::collection::vec((names, values), 0..8),
        failure,
        0usize..300,
    );
    fuzz("keys and headers", case, |(key, headers, failure, cap)| {
        let mut h = Headers(
            headers
                .into_iter()
                .map(|(name, value)| Header { name, value })
                .collect(),
        );
        if let Some((class, message)) = &failure {
            h.push("kafka_dlt-exception-fqcn", class.as_bytes());
            h.push("kafka_dlt-exception-message", message.as_bytes());
        }
        let id = LetterId::Kafka {
            partition: 0,
            offset: 7,
        };
        let l = DeadLetter::from_record(Some(id), Some(0), key.clone(), None, h);
        // The index keeps the key (cut past MAX_KEPT bytes) and the message as said.
        let mut store = Store::new();
        let pos = store.insert(&l);
        let row = store.row(pos).unwrap();
        match (&key, store.key(row)) {
            (None, None) => {}
            (Some(k), Some((back, cut))) => {
                assert_eq!(back, k[..k.len().min(MAX_KEPT)]);
                assert_eq!(cut, k.len() > MAX_KEPT);
            }
            other => panic!("{other:?}"),
        }
        let said = store.said(row);
        let _ = (store.message(row), store.fingerprint(row));
        if let (Some(class), Some(m)) = (&l.failure.exception_class, &l.failure.message) {
            let (norm, shape, parts) = fingerprint::shape(m);
            // (A shape shows control characters as spaces; the normalised form keeps them.)
            let plain = !m.chars().any(char::is_control);
            if plain {
                assert_eq!(fingerprint::unshape(&shape), norm);
            }
            // A short message of one line comes back as it was said.
            if plain && m.trim() == m && m.chars().count() <= 40 {
                assert_eq!(fingerprint::fill(&shape, parts), *m);
                assert_eq!(said.as_deref(), Some(m.as_str()), "{class}");
            }
            assert!(!said.unwrap_or_default().contains('\n'));
        }
        for note in &l.failure.notes {
            assert!(!note.contains('\n'), "a note is one line: {note:?}");
        }
        // The key as the list, the detail pane and the exports read it.
        if let Some(k) = &key {
            let _ = decode(&reg, Some(k), l.source.topic.as_deref(), cap);
            for topic in [None, Some("t"), Some("q")] {
                if let Attempt::Failed(DecodeError { message: why, .. }) = reg.decode(k, topic) {
                    assert!(!why.is_empty() && !why.contains('\n'), "{why:?}");
                }
            }
            assert_eq!(EncodedBytes::of(k).to_bytes().as_ref(), Ok(k));
            assert!(!conventions::quote_bytes(k).contains('\n'));
        }
        let _ = conventions::encode(&l.source, &l.failure);
    });
}
