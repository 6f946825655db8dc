//! Replays made by a jq transform (`--transform`), end to end on the real broker:
//! Avro, Protobuf and JSON letters fixed under their schemas (the registry stand-in),
//! the letters a transform fails for skipped and named, two operators running the
//! same transform at once, and a transformed replay SIGKILLed inside the protocol then
//! finished by a plain replay: every letter arrives once, transformed once.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::process::Stdio;

use crate::common::procs::{json_lines, kill_at, stderr};
use crate::common::race::{Race, reasons, tally};
use crate::common::*;

/// The fix every test applies: a value transformed twice would show 2000 more.
const FIX: &str = ".trade += 1000 | .fixed = true";

/// The value bytes each key arrived with in the source topic (each key once, or it fails).
async fn arrived_bytes(r: &Race) -> HashMap<String, Vec<u8>> {
    let mut m = HashMap::new();
    for l in read_all_on(&r.brokers, &r.source.name).await {
        let k = String::from_utf8(l.key.unwrap()).unwrap();
        assert!(
            m.insert(k.clone(), l.value.unwrap()).is_none(),
            "{k} arrived twice"
        );
    }
    m
}

/// [`arrived_bytes`] read as JSON.
async fn arrived_values(r: &Race) -> HashMap<String, serde_json::Value> {
    let bytes = arrived_bytes(r).await;
    bytes
        .into_iter()
        .map(|(k, v)| (k, serde_json::from_slice(&v).unwrap()))
        .collect()
}

/// Every letter arrived once, with the very bytes [`FIX`] makes from its value as it
/// was dead-lettered (`{"trade":i}`): compact JSON, keys in order.
async fn assert_fixed_once(r: &Race) {
    let got = arrived_bytes(r).await;
    assert_eq!(got.len(), r.keys.len());
    assert_fixed(&r.keys, &got);
}

/// Each of `keys` (letter `i` holding `{"trade":i}`) is in `got` with [`FIX`]'s bytes.
fn assert_fixed(keys: &[String], got: &HashMap<String, Vec<u8>>) {
    for (i, k) in keys.iter().enumerate() {
        let want = format!("{{\"trade\":{},\"fixed\":true}}", i + 1000);
        let seen = got.get(k).map(|v| String::from_utf8_lossy(v).into_owned());
        assert_eq!(seen.as_deref(), Some(want.as_str()), "letter {i} ({k})");
    }
}

/// Two operators running [`FIX`] on every letter of `r` at once; both succeed.
fn two_operators(r: &Race) -> (std::process::Output, std::process::Output) {
    let a = r.replay_all(&["--transform", FIX]).spawn().unwrap();
    let b = r.replay_all(&["--transform", FIX]).spawn().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success(), "{}", stderr(&a));
    assert!(b.status.success(), "{}", stderr(&b));
    (a, b)
}

#[tokio::test]
async fn two_operators_running_the_same_transform_send_each_letter_once() {
    let r = Race::new("tx-two", 60).await;
    let (a, b) = two_operators(&r);
    r.assert_exactly_once().await;
    r.assert_reports_true(&[&a, &b]).await;
    assert_fixed_once(&r).await;
    let replayed = tally(&a).get("replayed").copied().unwrap_or(0)
        + tally(&b).get("replayed").copied().unwrap_or(0);
    assert_eq!(replayed, 60, "{:?} {:?}", tally(&a), tally(&b));
    // The history and the audit log name the expression.
    let listed = json_lines(&r.morgue(&["list"]));
    assert_eq!(listed.len(), 60);
    assert!(
        listed.iter().all(|l| l["history"][0]["transform"] == FIX),
        "{:?}",
        listed[0]
    );
    let audit = std::fs::read_to_string(&r.audit).unwrap();
    let with_fix = audit
        .lines()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["transform"] == FIX)
        .count();
    assert_eq!(with_fix, 60, "{audit}");
    // Run again, it sends nothing: each letter was replayed already.
    let again = r.replay_all(&["--transform", FIX]).output().unwrap();
    assert_eq!(reasons(&again).get("replayed-before"), Some(&60));
    assert_fixed_once(&r).await;
}

#[tokio::test]
async fn a_killed_transformed_replay_is_finished_by_a_plain_one_with_the_same_bytes() {
    // Killed after its claims (nothing sent), and after its commit (not confirmed).
    for step in ["announced", "sent"] {
        let r = Race::new(&format!("tx-kill-{step}"), 40).await;
        let mut first = r.replay_all(&["--transform", FIX]);
        first.env("MORGUE_TEST_PAUSE", format!("{step}:20000"));
        kill_at(first, &format!("morgue-test-pause: {step}"), || ()).unwrap();
        // Another operator, with no transform of their own, takes the claims over: the
        // expression the claims keep makes the same value from the same start.
        let second = r.replay_all(&["--takeover-after", "0s"]).output().unwrap();
        assert!(second.status.success(), "{step}: {}", stderr(&second));
        r.assert_exactly_once().await;
        assert_fixed_once(&r).await;
        let states = r.states();
        assert_eq!(states.get("replayed"), Some(&40), "{step}: {states:?}");
    }
}

#[tokio::test]
async fn failures_are_skipped_and_named_and_a_mistake_is_refused() {
    let r = Race::new("tx-fail", 12).await;
    // Letters 0..12 hold {"trade": i}: the expression fails for odd trades.
    let odd = r#"if .trade % 2 == 1 then error("odd trade \(.trade)") else .trade += 1000 | .fixed = true end"#;
    let dry = r
        .replay_all(&["--transform", odd, "--dry-run"])
        .output()
        .unwrap();
    assert!(dry.status.success(), "{}", stderr(&dry));
    let lines = json_lines(&dry);
    let changed: Vec<_> = lines
        .iter()
        .filter(|l| l["transform"] == "changed")
        .collect();
    assert_eq!(changed.len(), 6, "{lines:?}");
    let first = &changed[0]["changes"];
    assert!(
        first
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["path"] == "$.trade"
                && c["to"].as_i64() == c["from"].as_i64().map(|f| f + 1000)),
        "{first}"
    );
    assert_eq!(reasons(&dry).get("transform-failed"), Some(&6));
    let err = stderr(&dry);
    assert!(err.contains("6 changed, 0 unchanged, 6 failed"), "{err}");
    // The first three failures are quoted (which three depends on the partitions' order).
    assert_eq!(err.matches("error: \"odd trade ").count(), 3, "{err}");
    assert!(
        read_all_on(&r.brokers, &r.source.name).await.is_empty(),
        "a dry run sent"
    );

    let run = r.replay_all(&["--transform", odd]).output().unwrap();
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(tally(&run).get("replayed"), Some(&6));
    assert_eq!(reasons(&run).get("transform-failed"), Some(&6));
    let got = arrived_values(&r).await;
    assert_eq!(got.len(), 6);
    assert!(
        got.values()
            .all(|v| v["fixed"] == true && v["trade"].as_i64().unwrap() % 2 == 0)
    );
    // The odd ones stay new, for a better expression.
    assert_eq!(r.states().get("new"), Some(&6));

    // An expression that does not compile: exit 2, one line with the column.
    let bad = r
        .replay_all(&["--transform", ".trade |= (. + 1"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    let err = stderr(&bad);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--transform: '.trade |= (. + 1': at column"),
        "{err}"
    );
}

#[tokio::test]
async fn avro_and_protobuf_letters_are_transformed_under_their_schemas() {
    let source = TestTopic::new("tx-formats-src", 1).await;
    let dlq = TestTopic::new("tx-formats-dlq", 1).await;
    let (url, _guard) = crate::payload_formats::registry();
    python(
        "tests/fixtures/payload_writer.py",
        &[&kafka_brokers(), &dlq.name, &url, &source.name],
    );
    let brokers = kafka_brokers();
    let morgue = |args: &[&str]| {
        crate::common::procs::morgue_cmd()
            .args(args)
            .args([
                "--kafka",
                &brokers,
                "--topic",
                &dlq.name,
                "--schema-registry",
                &url,
            ])
            .env(
                "MORGUE_AUDIT_LOG",
                std::env::temp_dir().join(unique("tx-audit")),
            )
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // The Avro letters (keys …0, …1), the Protobuf one (…5), and a frame whose schema
    // the registry lacks (…6).
    let filter =
        "key:*-000000000000 or key:*-000000000001 or key:*-000000000005 or key:*-000000000006";
    let fix = ".price |= (if . < 0 then -. else . end)";
    let dry = morgue(&[
        "replay",
        "--filter",
        filter,
        "--dry-run",
        "--transform",
        fix,
    ]);
    let lines = json_lines(&dry);
    let by_offset = |o: &str| {
        lines
            .iter()
            .find(|l| l["id"] == format!("0:{o}"))
            .unwrap()
            .clone()
    };
    assert_eq!(by_offset("0")["changes"][0]["path"], "$.price", "{lines:?}");
    assert_eq!(by_offset("0")["changes"][0]["to"], 3.5);
    assert_eq!(by_offset("1")["transform"], "unchanged");
    assert_eq!(by_offset("5")["changes"][0]["to"], 9.5);
    assert_eq!(by_offset("6")["reason"], "transform-failed");
    // A result the schema refuses is that letter's failure, named with the field.
    let wrong = morgue(&[
        "replay",
        "0:0",
        "--dry-run",
        "--transform",
        ".price = \"cheap\"",
    ]);
    let line = &json_lines(&wrong)[0];
    assert_eq!(line["reason"], "transform-failed", "{line}");
    assert!(
        line["error"].as_str().unwrap().contains("$.price"),
        "{line}"
    );

    let run = morgue(&["replay", "--filter", filter, "--yes", "--transform", fix]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert_eq!(tally(&run).get("replayed"), Some(&3), "{}", stderr(&run));
    assert_eq!(reasons(&run).get("transform-failed"), Some(&1));
    // The Python deserializers read the fixed values under their schemas.
    let read = python(
        "tests/fixtures/value_reader.py",
        &[&kafka_brokers(), &source.name, &url],
    );
    let values: Vec<serde_json::Value> = read
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        values,
        vec![
            serde_json::json!({"id": "T-1", "price": 3.5, "qty": 5}),
            serde_json::json!({"id": "T-2", "price": 101.25, "qty": 7}),
            serde_json::json!({"sym": "PB", "price": 9.5, "legs": [{"qty": 3}]}),
        ]
    );
}

#[tokio::test]
async fn the_tui_previews_a_group_fix_and_replays_it_once_beside_a_cli_operator() {
    use crate::common::race::{tui_on_triage, tui_sent};
    let r = Race::new("tx-tui", 40).await;
    let tui = tui_on_triage(&r);
    tui.resize(80, 30);
    tui.keys(&["|"]);
    tui.wait_for("Fix 40 letter(s)");
    // Letters of the same group keep arriving from now on (a commit marker after each):
    // the prompt, its confirmation and its replay stay bound to the 40 counted.
    let (brokers, dlq, src) = (r.brokers.clone(), r.dlq.name.clone(), r.source.name.clone());
    let feeder = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let mut late = Vec::new();
        for i in 0..10 {
            let keys = rt.block_on(crate::common::race::seed_on(
                &brokers,
                &dlq,
                &src,
                1,
                |_| 1000 + i,
            ));
            late.extend(keys);
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        late
    });
    // A mistake is marked at its column as it is typed, then fixed.
    tui.keys(&[".trade += 1000 |"]);
    tui.wait_for("column 17: expected term at the end");
    tui.keys(&[" .fixed = true"]);
    // Waited for by the last change itself: earlier previews had the same counts.
    let s = tui.wait_for("+ $.fixed: true");
    assert!(s.contains("40 changed · 0 unchanged · 0 failing"), "{s}");
    assert!(s.contains("$.trade: "), "{s}");
    tui.keys(&["Enter"]);
    tui.wait_for("each fixed by");
    // A second operator runs the same fix from the command line meanwhile.
    let cli = r.replay_all(&["--transform", FIX]).spawn().unwrap();
    tui.keys(&["Enter"]);
    let (sent, screen) = tui_sent(&tui);
    let cli = cli.wait_with_output().unwrap();
    assert!(cli.status.success(), "{}", stderr(&cli));
    let late = feeder.join().unwrap();
    // The command line counted when it started, late letters perhaps among them; the
    // TUI sent only of the 40. Every first letter arrived once, fixed once; no late
    // one arrived twice (arrived_bytes fails on that) or unfixed.
    let keys: HashMap<String, String> = json_lines(&r.morgue(&["list"]))
        .iter()
        .map(|l| {
            (
                l["id"].as_str().unwrap().to_string(),
                l["key"]["data"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let by_cli = json_lines(&cli)
        .iter()
        .filter(|l| l["status"] == "replayed")
        .filter(|l| r.keys.contains(&keys[l["id"].as_str().unwrap()]))
        .count();
    assert_eq!(sent + by_cli, 40, "tui {sent}, cli {by_cli}: {screen}");
    let got = arrived_bytes(&r).await;
    assert_fixed(&r.keys, &got);
    for k in late.iter().filter(|k| got.contains_key(*k)) {
        assert!(
            String::from_utf8_lossy(&got[k]).contains("\"fixed\":true"),
            "{k}"
        );
    }
    assert_eq!(
        got.len() - 40,
        late.iter().filter(|k| got.contains_key(*k)).count()
    );
    // A letter's history says what made it.
    tui.keys(&["t"]);
    tui.wait_for("TIME");
    tui.keys(&["Enter"]);
    tui.wait_for("payload");
    tui.keys(&["h"]);
    tui.wait_for("transformed by .trade += 1000 | .fixed = true");
}

#[tokio::test]
async fn a_takeover_that_cannot_make_the_bytes_again_sends_nothing_until_it_can() {
    let source = TestTopic::new("tx-lost-src", 1).await;
    let dlq = TestTopic::new("tx-lost-dlq", 1).await;
    let (url, guard) = crate::payload_formats::registry();
    python(
        "tests/fixtures/payload_writer.py",
        &[&kafka_brokers(), &dlq.name, &url, &source.name],
    );
    let audit = std::env::temp_dir().join(unique("tx-lost-audit"));
    let brokers = kafka_brokers();
    let cmd = |args: &[&str], registry: bool| {
        let mut c = crate::common::procs::morgue_cmd();
        c.args(args)
            .args(["--kafka", &brokers, "--topic", &dlq.name])
            .env("MORGUE_AUDIT_LOG", &audit)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if registry {
            c.args(["--schema-registry", &url]);
        }
        c
    };
    // The Avro letter (offset 0): claimed with its transform, then killed.
    let fix = ".price |= (if . < 0 then -. else . end)";
    let mut first = cmd(&["replay", "0:0", "--yes", "--transform", fix], true);
    first.env("MORGUE_TEST_PAUSE", "announced:20000");
    kill_at(first, "morgue-test-pause: announced", || ()).unwrap();
    // Without the registry the value cannot be read, so the transform cannot be made
    // again: nothing is sent, and the letter stays claimed with its expression.
    let second = cmd(&["replay", "0:0", "--yes", "--takeover-after", "0s"], false)
        .output()
        .unwrap();
    let line = &json_lines(&second)[0];
    assert_eq!(
        line["reason"],
        "transform-failed",
        "{line} {}",
        stderr(&second)
    );
    assert!(
        read_all(&source.name).await.is_empty(),
        "sent without its transform"
    );
    let listed = json_lines(&cmd(&["show", "0:0"], false).output().unwrap());
    assert_eq!(listed[0]["state"], "replaying", "{}", listed[0]);
    // A plain replay cannot send it untransformed either: it takes the claim, and
    // with the registry back, sends the value the claim's expression makes.
    let third = cmd(&["replay", "0:0", "--yes", "--takeover-after", "0s"], true)
        .output()
        .unwrap();
    assert_eq!(
        tally(&third).get("replayed"),
        Some(&1),
        "{}",
        stderr(&third)
    );
    let read = python(
        "tests/fixtures/value_reader.py",
        &[&kafka_brokers(), &source.name, &url],
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(read.trim()).unwrap(),
        serde_json::json!({"id": "T-1", "price": 3.5, "qty": 5})
    );
    // Killed after its commit (the Protobuf letter, offset 5): a takeover that cannot
    // make the bytes again finds them sent, and confirms them.
    let mut first = cmd(&["replay", "0:5", "--yes", "--transform", fix], true);
    first.env("MORGUE_TEST_PAUSE", "sent:20000");
    kill_at(first, "morgue-test-pause: sent", || ()).unwrap();
    let second = cmd(&["replay", "0:5", "--yes", "--takeover-after", "0s"], false)
        .output()
        .unwrap();
    let line = &json_lines(&second)[0];
    assert_eq!(line["status"], "recovered", "{line} {}", stderr(&second));
    assert_eq!(read_all(&source.name).await.len(), 2, "sent once each");
    drop(guard);
}

#[tokio::test]
async fn envelope_mode_export_and_the_jq_filter_term_on_the_command_line() {
    let r = Race::new("tx-cli", 6).await;
    // Letters hold {"trade": i}: a jq predicate selects by value.
    let listed = json_lines(&r.morgue(&["list", "--filter", "jq:\".trade >= 3\""]));
    assert_eq!(listed.len(), 3, "{listed:?}");
    let bad = r.morgue(&["list", "--filter", "jq:.trade|"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    // export --transform: the fixed values, the expression in the manifest.
    let file = std::env::temp_dir()
        .join(unique("tx-export"))
        .with_extension("jsonl");
    let out = r.morgue(&[
        "export",
        "--filter",
        "jq:\".trade < 2\"",
        "--transform",
        FIX,
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&file).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["transform"], FIX);
    assert_eq!(lines.len(), 3, "{text}");
    for l in &lines[1..] {
        let v: serde_json::Value =
            serde_json::from_str(l["value"]["data"].as_str().unwrap()).unwrap();
        assert_eq!(v["fixed"], true, "{l}");
        assert!(v["trade"].as_i64().unwrap() >= 1000, "{l}");
    }
    assert!(
        stderr(&out).contains("2 changed, 0 unchanged, 0 failed"),
        "{}",
        stderr(&out)
    );
    // Envelope mode: the key and a header changed too.
    let env = r#".key = "K-5" | .headers.fixed = "yes" | .value.trade = 55"#;
    let out = r.morgue(&[
        "replay",
        "--filter",
        "jq:\".trade == 5\"",
        "--yes",
        "--transform-envelope",
        "--transform",
        env,
    ]);
    assert_eq!(tally(&out).get("replayed"), Some(&1), "{}", stderr(&out));
    let sent = read_all_on(&r.brokers, &r.source.name).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].key.as_deref(), Some(&b"K-5"[..]));
    assert_eq!(sent[0].value.as_deref(), Some(&br#"{"trade":55}"#[..]));
    assert_eq!(sent[0].headers.last("fixed"), Some(&b"yes"[..]));
    // The failure headers are stripped after the transform all the same.
    assert!(
        sent[0]
            .headers
            .last("kafka_dlt-exception-message")
            .is_none()
    );
}

#[tokio::test]
async fn a_mongodb_dlq_is_replayed_transformed_once_by_two_operators() {
    let r = Race::mongo("tx_mongo", 30).await;
    let (a, b) = two_operators(&r);
    r.assert_exactly_once().await;
    r.assert_reports_true(&[&a, &b]).await;
    assert_fixed_once(&r).await;
    // The documents keep the expression in their history.
    let listed = json_lines(&r.morgue(&["list"]));
    assert_eq!(listed.len(), 30);
    assert!(
        listed.iter().all(|l| l["history"][0]["transform"] == FIX),
        "{}",
        listed[0]
    );
}
