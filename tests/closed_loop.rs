//! The closed loop after a replay, with the real binary, router and broker: letters are
//! replayed, the fixed processor still fails some of them, morgue's router dead-letters
//! those again with the replay's `morgue-replay-id`, and `list`/`show` then say which
//! replays failed again (linked to the new letters), which are confirmed once the window
//! has passed, and whether the source group has consumed the replayed message.
#![allow(clippy::unwrap_used)]

use std::process::{Output, Stdio};

use crate::common::procs::{json_lines, stderr};
use crate::common::*;

/// Fails every poison message.
const BROKEN: &str =
    r#"v=$(cat); case "$v" in *poison*) echo "cannot parse: $v" >&2; exit 65;; esac"#;
/// The fix handles `soft` poison; `hard` poison still fails.
const HALF_FIXED: &str =
    r#"v=$(cat); case "$v" in *hard*) echo "still bad: $v" >&2; exit 65;; esac"#;

fn router(source: &str, dlq: &str, group: &str, script: &str) -> Spawned {
    let b = kafka_brokers();
    let child = crate::common::procs::morgue_cmd()
        .args(["route", "--kafka", &b, "--topic", dlq, "--source", source])
        .args(["--group", group, "--exec", script])
        .args(["--max-attempts", "1", "--backoff", "10ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    Spawned::new(child)
}

fn stop(child: Spawned) {
    let child = child.take();
    sigterm(&child);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

fn morgue(dlq: &str, audit: &std::path::Path, args: &[&str]) -> Output {
    let out = crate::common::procs::morgue_cmd()
        .args(args)
        .args(["--kafka", &kafka_brokers(), "--topic", dlq])
        .env("MORGUE_AUDIT_LOG", audit)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    out
}

fn by_key<'a>(letters: &'a [serde_json::Value], key: &str) -> Vec<&'a serde_json::Value> {
    letters.iter().filter(|l| l["key"]["data"] == key).collect()
}

#[tokio::test]
async fn replays_that_fail_again_are_linked_and_the_rest_are_confirmed() {
    let source = TestTopic::new("loop-src", 2).await;
    let dlq = TestTopic::new("loop-dlq", 2).await;
    let group = unique("loop-app");
    let audit = std::env::temp_dir()
        .join(unique("loop-audit"))
        .join("audit.jsonl");
    // 36-character keys; two messages the fix handles, two it does not, six fine ones.
    let key = |i: usize| format!("6f1c2a9e-3b4d-4e5f-9a8b-{i:012}");
    for i in 0..10 {
        let value = match i {
            0 | 1 => format!("{{\"poison\":\"soft\",\"n\":{i}}}"),
            2 | 3 => format!("{{\"poison\":\"hard\",\"n\":{i}}}"),
            _ => format!("{{\"ok\":{i}}}"),
        };
        produce(
            &source.name,
            Some(key(i).as_bytes()),
            value.as_bytes(),
            &[],
            None,
        )
        .await;
    }
    let r = router(&source.name, &dlq.name, &group, BROKEN);
    wait_for_letters(&dlq.name, 4, 60).await;
    wait_committed(&group, &source.name, 2).await;
    stop(r);

    let replayed = json_lines(&morgue(
        &dlq.name,
        &audit,
        &["replay", "-f", "state:new", "--yes"],
    ));
    assert_eq!(
        replayed
            .iter()
            .filter(|r| r["status"] == "replayed")
            .count(),
        4,
        "{replayed:?}"
    );

    let r = router(&source.name, &dlq.name, &group, HALF_FIXED);
    wait_for_letters(&dlq.name, 6, 60).await;
    wait_committed(&group, &source.name, 2).await;
    stop(r);

    // Within the window: the hard ones failed again, the soft ones are still watched.
    let all = json_lines(&morgue(
        &dlq.name,
        &audit,
        &["list", "--confirm-after", "1h"],
    ));
    assert_eq!(all.len(), 6);
    for i in [2, 3] {
        let letters = by_key(&all, &key(i));
        assert_eq!(
            letters.len(),
            2,
            "{i}: the first letter and its new failure"
        );
        // The replayed one has a history; the other is its new failure.
        let (first, new) = if letters[0]["history"]
            .as_array()
            .is_some_and(|h| !h.is_empty())
        {
            (letters[0], letters[1])
        } else {
            (letters[1], letters[0])
        };
        assert_eq!(first["state"], "failed-again", "{first}");
        assert_eq!(first["outcome"]["result"], "failed-again");
        assert_eq!(first["outcome"]["letters"][0], new["id"], "{first}");
        // The router copied the replay's id onto the new letter.
        let replay_id = first["history"][0]["replay_id"].as_str().unwrap();
        let tag = new["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["name"] == "morgue-replay-id")
            .unwrap();
        assert_eq!(tag["value"]["data"], replay_id);
        assert_eq!(new["state"], "new");
        assert!(new.get("outcome").is_none(), "{new}");
    }
    for i in [0, 1] {
        let letters = by_key(&all, &key(i));
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0]["state"], "replayed");
        assert_eq!(letters[0]["outcome"]["result"], "watching");
    }

    // The window has passed: the soft ones are confirmed, and the filters find each kind.
    let confirmed = json_lines(&morgue(
        &dlq.name,
        &audit,
        &["list", "--confirm-after", "1ms", "-f", "state:confirmed"],
    ));
    let mut keys: Vec<_> = confirmed.iter().map(|l| l["key"]["data"].clone()).collect();
    keys.sort_by_key(ToString::to_string);
    assert_eq!(keys, vec![key(0), key(1)]);
    let again = json_lines(&morgue(
        &dlq.name,
        &audit,
        &["list", "-f", "state:failed-again"],
    ));
    assert_eq!(again.len(), 2);
    let replayed_any = json_lines(&morgue(
        &dlq.name,
        &audit,
        &["list", "-f", "state:replayed"],
    ));
    assert_eq!(
        replayed_any.len(),
        4,
        "replayed includes confirmed and failed-again"
    );

    // `show`: the outcome, and whether the source group (from the letter's header, or
    // --group) has read past the replayed message.
    let soft = by_key(&all, &key(0))[0]["id"].as_str().unwrap().to_string();
    let shown = &json_lines(&morgue(
        &dlq.name,
        &audit,
        &["show", &soft, "--confirm-after", "1ms"],
    ))[0];
    assert_eq!(shown["outcome"]["result"], "confirmed");
    assert_eq!(shown["consumed"]["group"], group.as_str());
    assert_eq!(shown["consumed"]["passed"], true, "{shown}");
    let offset = shown["history"][0]["offset"].as_i64().unwrap();
    assert!(shown["consumed"]["committed"].as_i64().unwrap() > offset);
    let other = unique("nobody");
    let shown = &json_lines(&morgue(
        &dlq.name,
        &audit,
        &["show", &soft, "--group", &other],
    ))[0];
    assert_eq!(shown["consumed"]["group"], other.as_str());
    assert_eq!(shown["consumed"]["passed"], false, "{shown}");
    assert!(shown["consumed"]["committed"].is_null());

    let hard = by_key(&all, &key(2))[0]["id"].as_str().unwrap().to_string();
    let shown = &json_lines(&morgue(&dlq.name, &audit, &["show", &hard]))[0];
    assert_eq!(shown["state"], "failed-again");
    assert_eq!(shown["outcome"]["letters"].as_array().unwrap().len(), 1);
}
