//! Letters as files, with the real binary and broker: `export` writes the manifest and
//! the letters byte-exact (what `list` prints), `open` shows the file in the TUI with
//! every write refused.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;

use crate::common::procs::{json_lines, stderr};
use crate::common::tmux::Tmux;
use crate::common::*;

fn morgue(args: &[&str], audit: &std::path::Path) -> std::process::Output {
    let out = crate::common::procs::morgue_cmd()
        .args(args)
        .env("MORGUE_AUDIT_LOG", audit)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    out
}

#[tokio::test]
async fn export_writes_a_manifest_and_exact_letters_that_open_shows_read_only() {
    let dlq = TestTopic::new("bundle-dlq", 2).await;
    let uuid = |i: u8| format!("6f1c2a9e-3b4d-4e5f-9a8b-{i:012}");
    for i in 0..4u8 {
        let exception: &[u8] = if i % 2 == 0 {
            b"com.acme.PriceException"
        } else {
            b"com.acme.TimeoutException"
        };
        let binary = [0xff, 0x00, i];
        let headers: Vec<(&str, &[u8])> = vec![
            ("kafka_dlt-original-topic", b"orders"),
            ("kafka_dlt-exception-fqcn", exception),
            ("binary", &binary),
        ];
        let value = format!("{{\"n\": {i}}}");
        produce(
            &dlq.name,
            Some(uuid(i).as_bytes()),
            value.as_bytes(),
            &headers,
            None,
        )
        .await;
    }
    produce(
        &dlq.name,
        Some(&[0xff, 0xfe]),
        &[0x00, 0x01, 0xfe],
        &[],
        None,
    )
    .await;
    let dir = std::env::temp_dir().join(unique("bundle"));
    std::fs::create_dir_all(&dir).unwrap();
    let audit = dir.join("audit.jsonl");
    let b = kafka_brokers();
    let base = ["--kafka", b.as_str(), "--topic", dlq.name.as_str()];
    let with = |cmd: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        v.extend(base.iter().map(|s| s.to_string()));
        v
    };
    let run = |cmd: &[&str]| {
        let args = with(cmd);
        morgue(&args.iter().map(String::as_str).collect::<Vec<_>>(), &audit)
    };
    let listed = json_lines(&run(&["list"]));
    let first = listed
        .iter()
        .find(|l| l["key"]["data"] == uuid(0).as_str())
        .unwrap();
    let resolved_id = first["id"].as_str().unwrap().to_string();
    run(&["resolve", &resolved_id, "--yes"]);

    // Everything but the timeouts: 3 letters, one of them resolved.
    let file = dir.join("incident.jsonl");
    let out = run(&[
        "export",
        "--filter=-error:Timeout",
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(
        stderr(&out).contains("exported 3 letters"),
        "{}",
        stderr(&out)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines = text.lines();
    let manifest: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(manifest["format"], "morgue-export/1");
    assert_eq!(manifest["dlq"], format!("kafka://{b}/{}", dlq.name));
    assert_eq!(manifest["filter"], "-error:Timeout");
    assert_eq!(manifest["letters"], 3);
    assert!(manifest["by"].as_str().unwrap().contains('@'));
    let ledger = manifest["ledger"].as_array().unwrap();
    assert_eq!(ledger.len(), 1, "{manifest}");
    assert_eq!(ledger[0]["id"], resolved_id.as_str());
    assert_eq!(ledger[0]["state"], "resolved");
    // The letters are what `list` prints for them, byte for byte (partitions interleave
    // in any order between two reads: compared by id).
    let by_id = |mut v: Vec<serde_json::Value>| {
        v.sort_by_key(|l| l["id"].as_str().unwrap_or_default().to_string());
        v
    };
    let now_listed = by_id(json_lines(&run(&["list", "--filter=-error:Timeout"])));
    let exported: Vec<serde_json::Value> =
        by_id(lines.map(|l| serde_json::from_str(l).unwrap()).collect());
    assert_eq!(exported, now_listed);
    assert!(
        exported
            .iter()
            .any(|l| l["key"]["encoding"] == "base64" && l["value"]["encoding"] == "base64"),
        "the binary letter is kept: {exported:?}"
    );

    // The file in the TUI: letters, states and triage work; writes are refused.
    let cmd = format!(
        "NO_COLOR=1 MORGUE_AUDIT_LOG={} {} open {}; sleep 30",
        audit.display(),
        env!("CARGO_BIN_EXE_morgue"),
        file.display()
    );
    let t = Tmux::start(&cmd);
    let s = t.wait_for("3 letters");
    assert!(s.contains("READ-ONLY") && s.contains("file://"), "{s}");
    t.wait_for("resolved");
    t.keys(&["Enter"]);
    t.wait_for("payload");
    t.keys(&["r"]);
    t.wait_for("read-only");
    t.keys(&["Escape", "t"]);
    t.wait_for("PriceException");
    t.keys(&["q"]);
    let audited = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(audited.lines().count(), 1, "only the resolve: {audited}");

    // Imported into another topic twice: written once, bytes as exported.
    let staging = TestTopic::new("bundle-staging", 3).await;
    let import = |extra: &[&str]| {
        let mut args = vec!["import", file.to_str().unwrap(), "--kafka", b.as_str()];
        args.extend(["--topic", staging.name.as_str()]);
        args.extend(extra);
        crate::common::procs::morgue_cmd()
            .args(&args)
            .env("MORGUE_AUDIT_LOG", &audit)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let refused = import(&[]);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "asks first: {}",
        stderr(&refused)
    );
    assert!(
        stderr(&refused).contains("pass --yes"),
        "{}",
        stderr(&refused)
    );
    let ro = import(&["--yes", "--read-only"]);
    assert!(
        !ro.status.success() && stderr(&ro).contains("read-only"),
        "{}",
        stderr(&ro)
    );
    let first = json_lines(&import(&["--yes"]));
    assert_eq!(
        (
            first[0]["written"].as_u64(),
            first[0]["already_there"].as_u64()
        ),
        (Some(3), Some(0))
    );
    let again = json_lines(&import(&["--yes"]));
    assert_eq!(
        (
            again[0]["written"].as_u64(),
            again[0]["already_there"].as_u64()
        ),
        (Some(0), Some(3))
    );
    let landed = read_all(&staging.name).await;
    assert_eq!(landed.len(), 3);
    for l in &exported {
        let key = l["key"]["data"].clone();
        let got = landed
            .iter()
            .find(|m| {
                serde_json::to_value(morgue::engine::model::encoding::EncodedBytes::of(
                    m.key.as_deref().unwrap(),
                ))
                .unwrap()["data"]
                    == key
            })
            .unwrap();
        let value =
            morgue::engine::model::encoding::EncodedBytes::of(got.value.as_deref().unwrap());
        assert_eq!(serde_json::to_value(value).unwrap(), l["value"]);
        let names: Vec<&str> = got.headers.iter().map(|h| h.name.as_str()).collect();
        let want: Vec<&str> = l["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["name"].as_str().unwrap())
            .collect();
        assert_eq!(&names[..want.len()], &want[..], "headers in order");
        assert_eq!(names.last(), Some(&"morgue-import-id"));
    }
    let audited = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(
        audited.lines().filter(|l| l.contains("\"import\"")).count(),
        3,
        "{audited}"
    );

    // And into a MongoDB collection, twice.
    let c = TestCollection::new("bundle_import");
    let mut margs = vec![
        "import".to_string(),
        file.to_str().unwrap().to_string(),
        "--yes".into(),
    ];
    margs.extend(c.args());
    for (written, there) in [(3, 0), (0, 3)] {
        let out = morgue(
            &margs.iter().map(String::as_str).collect::<Vec<_>>(),
            &audit,
        );
        let got = json_lines(&out);
        assert_eq!(
            (got[0]["written"].as_u64(), got[0]["already_there"].as_u64()),
            (Some(written), Some(there))
        );
    }
    let mut listed = vec!["list".to_string()];
    listed.extend(c.args());
    let docs = json_lines(&morgue(
        &listed.iter().map(String::as_str).collect::<Vec<_>>(),
        &audit,
    ));
    assert_eq!(docs.len(), 3);
    let mut got: Vec<String> = docs
        .iter()
        .map(|d| d["value"]["data"].to_string())
        .collect();
    let mut want: Vec<String> = exported
        .iter()
        .map(|d| d["value"]["data"].to_string())
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want, "values as exported");

    // Not an export: one line that says so.
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, "{\"id\": \"0:1\"}\n").unwrap();
    let out = crate::common::procs::morgue_cmd()
        .args(["open", bad.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("not a morgue export"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn a_redacted_export_piped_into_open_shows_masked_letters() {
    let dlq = TestTopic::new("bundle-pii", 1).await;
    let headers: Vec<(&str, &[u8])> = vec![
        ("kafka_dlt-original-topic", b"signups"),
        ("kafka_dlt-exception-fqcn", b"com.acme.SignupException"),
        (
            "kafka_dlt-exception-message",
            b"duplicate e-mail ann.lee@example.com",
        ),
    ];
    let value = br#"{"email":"ann.lee@example.com","card":"4111 1111 1111 1111","plan":"gold"}"#;
    produce(
        &dlq.name,
        Some(b"6f1c2a9e-3b4d-4e5f-9a8b-000000000001"),
        value,
        &headers,
        None,
    )
    .await;
    let dir = std::env::temp_dir().join(unique("bundle-pii"));
    std::fs::create_dir_all(&dir).unwrap();
    let audit = dir.join("audit.jsonl");
    // As a file: the manifest says what was redacted; nothing of the PII is left.
    let file = dir.join("pii.jsonl");
    morgue(
        &[
            "export",
            "--redact",
            "pii",
            "-o",
            file.to_str().unwrap(),
            "--kafka",
            &kafka_brokers(),
            "--topic",
            &dlq.name,
        ],
        &audit,
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains("ann.lee@example.com") && !text.contains("4111"),
        "{text}"
    );
    let manifest: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(manifest["redaction"]["spec"], "pii");
    let letter: serde_json::Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(letter["value"]["data"].as_str().unwrap()).unwrap();
    assert_eq!(v["email"], "*******************");
    assert_eq!(v["plan"], "gold");
    assert_eq!(
        letter["failure"]["message"],
        "duplicate e-mail *******************"
    );
    // Piped straight into the TUI.
    let cmd = format!(
        "NO_COLOR=1 MORGUE_AUDIT_LOG={a} {m} export --redact pii -o - --kafka {b} --topic {t} | NO_COLOR=1 MORGUE_AUDIT_LOG={a} {m} open -; sleep 30",
        a = audit.display(),
        m = env!("CARGO_BIN_EXE_morgue"),
        b = kafka_brokers(),
        t = dlq.name
    );
    let t = Tmux::start(&cmd);
    t.wait_for("1 letter");
    t.keys(&["Enter"]);
    let s = t.wait_for("\"plan\": \"gold\"");
    assert!(s.contains("\"email\": \"*******************\""), "{s}");
    assert!(!s.contains("ann.lee"), "{s}");
    t.keys(&["q"]);
}

#[tokio::test]
async fn two_imports_at_once_write_each_letter_once() {
    let dlq = TestTopic::new("bundle-race-dlq", 2).await;
    for i in 0..40u32 {
        let key = format!("6f1c2a9e-3b4d-4e5f-9a8b-{i:012}");
        let value = format!("{{\"n\": {i}}}");
        let headers: Vec<(&str, &[u8])> = vec![("kafka_dlt-original-topic", b"orders")];
        produce(
            &dlq.name,
            Some(key.as_bytes()),
            value.as_bytes(),
            &headers,
            None,
        )
        .await;
    }
    let dir = std::env::temp_dir().join(unique("bundle-race"));
    std::fs::create_dir_all(&dir).unwrap();
    let (file, audit) = (dir.join("letters.jsonl"), dir.join("audit.jsonl"));
    let b = kafka_brokers();
    morgue(
        &[
            "export",
            "--kafka",
            &b,
            "--topic",
            &dlq.name,
            "-o",
            file.to_str().unwrap(),
        ],
        &audit,
    );
    let staging = TestTopic::new("bundle-race-staging", 3).await;
    let import = |pause: Option<&str>| {
        let mut c = crate::common::procs::morgue_cmd();
        c.args(["import", file.to_str().unwrap(), "--yes", "--kafka", &b])
            .args(["--topic", &staging.name])
            .env("MORGUE_AUDIT_LOG", &audit)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(p) = pause {
            c.env("MORGUE_TEST_PAUSE", p);
        }
        c
    };
    // The first import has read what the topic holds (nothing) and waits before writing.
    let mut first = import(Some("import-read:4000")).spawn().unwrap();
    let mut err = std::io::BufReader::new(first.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("morgue-test-pause: import-read") {
        line.clear();
        assert_ne!(
            std::io::BufRead::read_line(&mut err, &mut line).unwrap(),
            0,
            "no pause"
        );
    }
    // Meanwhile a second import runs: it fences the first and writes every letter.
    let second = import(None).output().unwrap();
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(json_lines(&second)[0]["written"].as_u64(), Some(40));
    // The first wakes up fenced: it writes nothing and says so.
    let first = first.wait_with_output().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    assert!(!first.status.success(), "the fenced import must fail");
    assert!(
        rest.contains(&format!("another import into '{}' took over", staging.name))
            && rest.to_lowercase().contains("fenced"),
        "{rest}"
    );
    let landed = read_all(&staging.name).await;
    let mut ids: Vec<String> = landed
        .iter()
        .map(|m| {
            let h = m.headers.last("morgue-import-id").unwrap();
            String::from_utf8_lossy(h).into_owned()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!((landed.len(), ids.len()), (40, 40));
    // Run again, the first finds the second's letters and writes none.
    let again = import(None).output().unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    let again = json_lines(&again);
    assert_eq!(
        (
            again[0]["written"].as_u64(),
            again[0]["already_there"].as_u64()
        ),
        (Some(0), Some(40))
    );
    assert_eq!(read_all(&staging.name).await.len(), 40);
}
