//! Payloads as their producers wrote them, read by the real binary from the real broker:
//! Avro in Confluent's wire format (serialized by confluent-kafka's AvroSerializer
//! against a schema registry), MessagePack, CBOR and gzip, and a frame whose schema the
//! registry lacks. The registry is the stand-in of `tests/fixtures/schema_registry.py`
//! (with basic auth), or the real one in MORGUE_TEST_SCHEMA_REGISTRY.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::process::{Command, Stdio};

use crate::common::procs::{json_lines, stderr};
use crate::common::*;

/// The registry under test (`http://user:pass@host:port`) and the stand-in's guard.
pub fn registry() -> (String, Option<Spawned>) {
    if let Ok(url) = std::env::var("MORGUE_TEST_SCHEMA_REGISTRY") {
        return (url, None);
    }
    let port = free_port();
    let child = Command::new(venv_bin("python"))
        .args([
            "tests/fixtures/schema_registry.py",
            &port.to_string(),
            "oncall:s3cret",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let guard = Spawned::new(child);
    wait_for_port(port, "the schema registry stand-in");
    (
        format!("http://oncall:s3cret@127.0.0.1:{port}"),
        Some(guard),
    )
}

/// The schemas the writer's unframed payloads were written with.
const TRADE_AVSC: &str = r#"{"type": "record", "name": "Trade", "namespace": "acme", "fields": [
    {"name": "id", "type": "string"}, {"name": "price", "type": "double"},
    {"name": "qty", "type": "int"}]}"#;
const QUOTE_PROTO: &str = "syntax = \"proto3\";\npackage acme;\n\
    message Quote { string sym = 1; double price = 2; message Leg { int32 qty = 1; } repeated Leg legs = 3; }\n";

fn morgue(args: &[&str]) -> std::process::Output {
    let out = crate::common::procs::morgue_cmd()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    out
}

#[tokio::test]
async fn binary_formats_are_decoded_filtered_and_printed_with_the_raw_bytes() {
    let dlq = TestTopic::new("formats-dlq", 1).await;
    let (url, _guard) = registry();
    let written = python(
        "tests/fixtures/payload_writer.py",
        &[&kafka_brokers(), &dlq.name, &url],
    );
    let ids: HashMap<String, String> = written
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let id = format!("{}:{}", v["partition"], v["offset"]);
            (v["label"].as_str().unwrap().to_string(), id)
        })
        .collect();
    assert_eq!(ids.len(), 10, "{written}");
    let b = kafka_brokers();
    let base = ["--kafka", b.as_str(), "--topic", dlq.name.as_str()];
    let list = |extra: &[&str]| {
        let mut args = vec!["list"];
        args.extend(base);
        args.extend(extra);
        json_lines(&morgue(&args))
    };

    // The unframed letters' source topics are mapped to local schema files.
    let dir = std::env::temp_dir().join(unique("schemas"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Trade.avsc"), TRADE_AVSC).unwrap();
    std::fs::write(dir.join("quote.proto"), QUOTE_PROTO).unwrap();
    let maps = [
        "--schema-map",
        "trades-*=Trade.avsc",
        "--schema-map",
        "quotes-*=quote.proto:acme.Quote",
    ];
    let mut with_registry = vec!["--schema-registry", url.as_str(), "--schemas"];
    with_registry.push(dir.to_str().unwrap());
    with_registry.extend(maps);
    let all = list(&with_registry);
    let by_id: HashMap<String, &serde_json::Value> = all
        .iter()
        .map(|l| (l["id"].as_str().unwrap().to_string(), l))
        .collect();
    let avro = by_id[&ids["avro-negative"]];
    let d = &avro["decoded"];
    assert!(
        d["format"].as_str().unwrap().starts_with(&format!(
            "Avro (schema {}, subject trades-value)",
            d["schema_id"]
        )),
        "{d}"
    );
    assert_eq!(d["subject"], "trades-value");
    assert_eq!(
        d["value"],
        serde_json::json!({"id": "T-1", "price": -3.5, "qty": 5})
    );
    // The raw value is still there, lossless (base64: Avro is not UTF-8 text).
    assert_eq!(avro["value"]["encoding"], "base64");
    assert_eq!(by_id[&ids["msgpack"]]["decoded"]["format"], "MessagePack");
    assert_eq!(by_id[&ids["msgpack"]]["decoded"]["value"]["price"], -1);
    assert_eq!(by_id[&ids["cbor"]]["decoded"]["format"], "CBOR");
    assert_eq!(
        by_id[&ids["gzip-json"]]["decoded"]["format"],
        "gzip, then JSON"
    );
    let js = &by_id[&ids["json-schema"]]["decoded"];
    assert!(
        js["format"]
            .as_str()
            .unwrap()
            .starts_with("JSON Schema (schema "),
        "{js}"
    );
    assert_eq!(js["value"], serde_json::json!({"sym": "JS", "price": -4}));
    // An edit of it is checked against the schema JSONSerializer registered.
    {
        use morgue::engine::decoders::{Registry, encode::reencode, schemas::SchemaSource};
        let raw = &by_id[&ids["json-schema"]]["value"];
        let bytes = match raw["encoding"].as_str().unwrap() {
            "utf8" => raw["data"].as_str().unwrap().as_bytes().to_vec(),
            _ => base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                raw["data"].as_str().unwrap(),
            )
            .unwrap(),
        };
        let reg = Registry::new(SchemaSource {
            registry: Some(url.clone()),
            ..Default::default()
        });
        reg.schemas
            .fetch_blocking(js["schema_id"].as_u64().unwrap() as u32);
        let e = reencode(
            &bytes,
            &serde_json::json!({"sym": "JS", "price": "high"}),
            &reg,
            None,
            false,
        )
        .unwrap_err()
        .message;
        assert!(e.starts_with("$.price: ") && e.contains("high"), "{e}");
        let fixed = reencode(
            &bytes,
            &serde_json::json!({"sym": "JS", "price": 4}),
            &reg,
            None,
            false,
        )
        .unwrap();
        assert_eq!(&fixed[..5], &bytes[..5], "same frame and schema id");
    }
    let raw = &by_id[&ids["avro-unframed"]]["decoded"];
    assert_eq!(raw["format"], "Avro (acme.Trade, unframed)");
    assert_eq!(
        raw["value"],
        serde_json::json!({"id": "T-3", "price": -2.0, "qty": 1})
    );
    let raw = &by_id[&ids["protobuf-unframed"]]["decoded"];
    assert_eq!(raw["format"], "Protobuf acme.Quote (unframed)");
    assert_eq!(
        raw["value"],
        serde_json::json!({"sym": "RAW", "price": 8.5})
    );
    let unknown = by_id[&ids["unknown-schema"]];
    assert!(unknown.get("decoded").is_none());
    let why = unknown["decode_error"].as_str().unwrap();
    assert!(why.contains("/schemas/ids/999: 404"), "{why}");
    assert!(
        !why.contains("s3cret"),
        "the password is never printed: {why}"
    );

    // The JSON path filter reads the decoded values of every format.
    let mut filtered = with_registry.clone();
    filtered.extend(["-f", "$.price<0"]);
    let negative = list(&filtered);
    let mut got: Vec<&str> = negative.iter().map(|l| l["id"].as_str().unwrap()).collect();
    got.sort();
    let mut want = vec![
        ids["avro-negative"].as_str(),
        ids["msgpack"].as_str(),
        ids["gzip-json"].as_str(),
        ids["protobuf"].as_str(),
        ids["json-schema"].as_str(),
        ids["avro-unframed"].as_str(),
    ];
    want.sort();
    assert_eq!(got, want);
    // A replay's dry run and an export choose by the same decoded values: the filter
    // reads binary payloads with the profile's schemas there too.
    let mut dry = vec![
        "replay",
        "--dry-run",
        "--to",
        "nowhere",
        "--filter",
        "$.price<0",
    ];
    dry.extend(base);
    dry.extend(&with_registry);
    let mut planned: Vec<String> = json_lines(&morgue(&dry))
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect();
    planned.sort();
    assert_eq!(planned, want, "replay --dry-run --filter");
    let bundle = dir.join("negative.jsonl");
    let mut export = vec![
        "export",
        "-o",
        bundle.to_str().unwrap(),
        "--filter",
        "$.price<0",
    ];
    export.extend(base);
    export.extend(&with_registry);
    assert!(morgue(&export).status.success());
    let exported = std::fs::read_to_string(&bundle).unwrap();
    let mut exported: Vec<String> = exported
        .lines()
        .skip(1)
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    exported.sort();
    assert_eq!(exported, want, "export --filter");

    // Offline: the same schema from a directory, by id; without any, a clear reason.
    let schema_id = d["schema_id"].as_u64().unwrap();
    let schema = python(
        "tests/fixtures/schema_text.py",
        &[&url, &schema_id.to_string()],
    );
    std::fs::write(dir.join(format!("{schema_id}.avsc")), schema).unwrap();
    let offline = list(&["--schemas", dir.to_str().unwrap(), "-f", "$.price<0"]);
    assert!(
        offline
            .iter()
            .any(|l| l["id"] == ids["avro-negative"].as_str()
                && l["decoded"]["format"] == format!("Avro (schema {schema_id})")),
        "{offline:?}"
    );
    let bare = list(&[]);
    let avro = bare
        .iter()
        .find(|l| l["id"] == ids["avro-positive"].as_str())
        .unwrap();
    assert!(
        avro["decode_error"]
            .as_str()
            .unwrap()
            .contains("no schema registry (--schema-registry URL)"),
        "{avro}"
    );

    // The same mapping from a profile, files relative to the config file.
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[profiles.raw]\nkafka = \"{b}\"\ntopic = \"{}\"\n\n[profiles.raw.schemas]\n\
             \"trades-*\" = \"Trade.avsc\"\n\"quotes-*\" = \"quote.proto:acme.Quote\"\n",
            dlq.name
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let by_profile = json_lines(&morgue(&["list", "--config", cfg, "--profile", "raw"]));
    let raw = by_profile
        .iter()
        .find(|l| l["id"] == ids["protobuf-unframed"].as_str())
        .unwrap();
    assert_eq!(raw["decoded"]["value"]["sym"], "RAW", "{raw}");
    let checked = morgue(&["config", "check", "--config", cfg]);
    assert!(String::from_utf8_lossy(&checked.stdout).contains("1 profile ok"));

    // `show` decodes the same way.
    let shown = json_lines(&morgue(&[
        "show",
        "--kafka",
        &b,
        "--topic",
        &dlq.name,
        "--schema-registry",
        &url,
        &ids["avro-positive"],
    ]));
    assert_eq!(shown[0]["decoded"]["value"]["price"], 101.25);
}

#[tokio::test]
async fn avro_and_protobuf_letters_edited_in_the_tui_are_replayed_under_their_schemas() {
    let source = TestTopic::new("formats-src", 1).await;
    let dlq = TestTopic::new("formats-edit-dlq", 1).await;
    let (url, _guard) = registry();
    let written = python(
        "tests/fixtures/payload_writer.py",
        &[&kafka_brokers(), &dlq.name, &url, &source.name],
    );
    let first: serde_json::Value = serde_json::from_str(written.lines().next().unwrap()).unwrap();
    let avro_id = format!("{}:{}", first["partition"], first["offset"]);
    // A dry run shows the decoded and the encoded forms.
    let plan = json_lines(&morgue(&[
        "replay",
        "--dry-run",
        "--kafka",
        &kafka_brokers(),
        "--topic",
        &dlq.name,
        "--schema-registry",
        &url,
        &avro_id,
    ]));
    assert_eq!(plan[0]["decoded"]["value"]["price"], -3.5, "{plan:?}");
    assert_eq!(plan[0]["value"]["encoding"], "base64");
    // Since the letter was written, its subject gained a version with a defaulted field:
    // with --schema-version latest the edit is encoded under it.
    let v2 = TRADE_AVSC.replace(
        r#"{"name": "qty", "type": "int"}"#,
        r#"{"name": "qty", "type": "int"}, {"name": "note", "type": "string", "default": ""}"#,
    );
    assert_ne!(v2, TRADE_AVSC);
    let v2_id = python(
        "tests/fixtures/register_schema.py",
        &[&url, "trades-value", &v2],
    );
    let audit = std::env::temp_dir()
        .join(unique("formats-audit"))
        .join("audit.jsonl");
    // The editor: for the Avro letter first a price the schema refuses, then the fix;
    // for the Protobuf one (sym "PB") the price made positive.
    let editor = audit.with_file_name("editor.sh");
    std::fs::create_dir_all(audit.parent().unwrap()).unwrap();
    std::fs::write(
        &editor,
        "#!/bin/sh\nif grep -q cheap \"$1\"; then sed -i 's/\"cheap\"/3.5/' \"$1\"; \
         elif grep -q '\"PB\"' \"$1\"; then sed -i 's/-9.5/9.5/' \"$1\"; \
         else sed -i 's/-3.5/\"cheap\"/' \"$1\"; fi\n",
    )
    .unwrap();
    let cmd = format!(
        "NO_COLOR=1 VISUAL='sh {}' MORGUE_AUDIT_LOG={} {} --kafka {} --topic {} --schema-registry '{url}' --schema-version latest; sleep 30",
        editor.display(),
        audit.display(),
        env!("CARGO_BIN_EXE_morgue"),
        kafka_brokers(),
        dlq.name
    );
    let t = crate::common::tmux::Tmux::start(&cmd);
    t.wait_for("following live");
    // The Avro letter (key …000000000000), decoded and named in the payload tab.
    t.keys(&["/", "key:*-000000000000", "Enter"]);
    t.wait_for("1 of 10 letters match");
    t.keys(&["Enter"]);
    let s = t.wait_for("Avro (schema");
    assert!(s.contains("\"price\": -3.5"), "{s}");
    // An edit that does not fit the schema is refused with the field, and nothing is
    // kept; edited again, it is encoded under the schema.
    t.keys(&["e"]);
    t.wait_for("$.price: expected double, got \"cheap\"");
    t.keys(&["e"]);
    // The dialog's diff, waited for itself: a screen read while the dialog is being
    // drawn can hold its title without its lines.
    let s = t.wait_for("+   \"price\": 3.5,");
    assert!(
        s.contains("Keep this edit") && s.contains("-   \"price\": -3.5,"),
        "{s}"
    );
    t.keys(&["Enter"]);
    t.wait_for("r replays it");
    t.keys(&["r"]);
    // A long name wraps in the dialog: the label, then the name.
    t.wait_for("to topic:");
    t.wait_for(&source.name);
    t.keys(&["Enter"]);
    t.wait_for("replayed to");
    // The Protobuf letter (key …000000000005): its message indexes are kept.
    // Escape waited for: read together with the next key it is Alt+key.
    t.keys(&["Escape"]);
    t.wait_for("TIME");
    t.keys(&["/", "C-u", "key:*-000000000005", "Enter"]);
    t.wait_for("1 of 10 letters match");
    t.keys(&["Enter"]);
    let s = t.wait_for("Protobuf acme.Quote (schema");
    assert!(s.contains("\"price\": -9.5"), "{s}");
    t.keys(&["e"]);
    let s = t.wait_for("+   \"price\": 9.5,");
    assert!(s.contains("Keep this edit"), "{s}");
    t.keys(&["Enter"]);
    t.wait_for("r replays it");
    t.keys(&["r"]);
    // A long name wraps in the dialog: the label, then the name.
    t.wait_for("to topic:");
    t.wait_for(&source.name);
    t.keys(&["Enter"]);
    // The Python deserializers read the replayed messages as the edited values, the
    // Avro one under the latest version of its subject.
    let mut values = Vec::new();
    for _ in 0..40 {
        let read = python(
            "tests/fixtures/value_reader.py",
            &[&kafka_brokers(), &source.name, &url],
        );
        values = read
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect();
        if values.len() >= 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    t.keys(&["q"]);
    assert_eq!(
        values,
        vec![
            serde_json::json!({"id": "T-1", "price": 3.5, "qty": 5, "note": ""}),
            serde_json::json!({"sym": "PB", "price": 9.5, "legs": [{"qty": 3}]}),
        ]
    );
    let frames = crate::common::procs::json_lines(&morgue(&[
        "list",
        "--kafka",
        &kafka_brokers(),
        "--topic",
        &source.name,
        "--schema-registry",
        &url,
    ]));
    assert_eq!(
        frames[0]["decoded"]["schema_id"].to_string(),
        v2_id.trim(),
        "{frames:?}"
    );
}

#[tokio::test]
async fn an_https_registry_is_read_with_its_ca_and_a_client_certificate() {
    if std::env::var("MORGUE_TEST_SCHEMA_REGISTRY").is_ok() {
        eprintln!("TLS is tested on the stand-in only (it serves the same schemas on both ports)");
        return;
    }
    let certs = std::env::temp_dir().join(unique("registry-certs"));
    let made = Command::new("bash")
        .arg("tests/fixtures/make_certs.sh")
        .arg(&certs)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", stderr(&made));
    let (port, tls_port) = (free_port(), free_port());
    let pem = |f: &str| certs.join(f).to_str().unwrap().to_string();
    let child = Command::new(venv_bin("python"))
        .args([
            "tests/fixtures/schema_registry.py",
            &port.to_string(),
            "oncall:s3cret",
        ])
        .args([
            tls_port.to_string(),
            pem("server.pem"),
            pem("server.key"),
            pem("ca.pem"),
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = Spawned::new(child);
    wait_for_port(port, "the schema registry stand-in");
    wait_for_port(tls_port, "the stand-in's TLS port");
    let dlq = TestTopic::new("formats-tls-dlq", 1).await;
    // The producers register over plain HTTP; morgue reads over HTTPS.
    let written = python(
        "tests/fixtures/payload_writer.py",
        &[
            &kafka_brokers(),
            &dlq.name,
            &format!("http://oncall:s3cret@127.0.0.1:{port}"),
        ],
    );
    let first: serde_json::Value = serde_json::from_str(written.lines().next().unwrap()).unwrap();
    let avro_id = format!("{}:{}", first["partition"], first["offset"]);
    let https = format!("https://oncall:s3cret@127.0.0.1:{tls_port}");
    let b = kafka_brokers();
    let show = |extra: &[&str]| {
        let mut args = vec!["show", "--kafka", &b, "--topic", &dlq.name];
        args.extend(["--schema-registry", https.as_str()]);
        args.extend(extra);
        args.push(&avro_id);
        json_lines(&morgue(&args)).remove(0)
    };
    let (ca, cert, key) = (pem("ca.pem"), pem("client.pem"), pem("client.key"));
    let full = show(&[
        "--schema-registry-ca",
        &ca,
        "--schema-registry-cert",
        &cert,
        "--schema-registry-key",
        &key,
    ]);
    assert_eq!(full["decoded"]["value"]["price"], -3.5, "{full}");
    // Without the client certificate the registry refuses the handshake; without the
    // CA the registry's certificate is not trusted. Each says so on one line, with the
    // URL and never the password, and the bytes are still there.
    for (extra, why) in [
        (
            vec!["--schema-registry-ca", ca.as_str()],
            "CertificateRequired",
        ),
        (vec![], "UnknownIssuer"),
    ] {
        let l = show(&extra);
        let e = l["decode_error"].as_str().unwrap_or_default();
        assert!(
            e.contains(&format!("https://127.0.0.1:{tls_port}/schemas/ids/")) && e.contains(why),
            "{extra:?}: {l}"
        );
        assert!(!e.contains("s3cret") && !e.contains('\n'), "{e}");
        assert_eq!(l["value"]["encoding"], "base64");
    }
}
