//! Exactly-once replay under company and crashes, against the real broker: several
//! `morgue replay` processes and a TUI on one DLQ at once, SIGKILLs inside the
//! announce→confirm window, a pending replay resolved, copies of one source message,
//! a ledger that refuses the confirm. Every DLQ is written transactionally (a commit
//! marker after each letter) with 36-character keys.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::procs::{json_lines, kill_at, stderr};
use common::tmux::Tmux;
use common::*;
use morgue::engine::{FailureContext, Headers, Reason, SourceCoords, conventions};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

/// A transactional DLQ of `n` letters for `source`, one transaction per letter as
/// Spring writes them; letter `i` failed at source offset `offsets(i)`. Returns the keys.
async fn seed(dlq: &str, source: &str, n: usize, offsets: impl Fn(usize) -> i64) -> Vec<String> {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .set("transactional.id", unique("seed"))
        .create()
        .unwrap();
    p.init_transactions(Duration::from_secs(10)).unwrap();
    let mut keys = Vec::new();
    for i in 0..n {
        let key = uuid::Uuid::new_v4().to_string();
        let src = SourceCoords {
            topic: Some(source.into()),
            partition: Some(0),
            offset: Some(offsets(i)),
            timestamp_ms: Some(1_732_700_000_000),
            consumer_group: Some("trades".into()),
        };
        let f = FailureContext {
            exception_class: Some("com.acme.TradeRejected".into()),
            message: Some(format!("trade {i} rejected")),
            reason: Reason::Failed,
            ..FailureContext::default()
        };
        let mut hs = OwnedHeaders::new();
        for h in Headers(conventions::encode(&src, &f)).iter() {
            hs = hs.insert(Header {
                key: &h.name,
                value: h.value.as_deref(),
            });
        }
        let value = format!("{{\"trade\":{i}}}");
        p.begin_transaction().unwrap();
        p.send(
            FutureRecord::to(dlq)
                .key(key.as_str())
                .payload(value.as_str())
                .headers(hs),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        p.commit_transaction(Duration::from_secs(10)).unwrap();
        keys.push(key);
    }
    keys
}

struct Race {
    dlq: TestTopic,
    source: TestTopic,
    audit: std::path::PathBuf,
    keys: Vec<String>,
}

impl Race {
    async fn new(prefix: &str, n: usize) -> Race {
        let source = TestTopic::new(&format!("{prefix}-src"), 3).await;
        let dlq = TestTopic::new(&format!("{prefix}-dlq"), 2).await;
        let keys = seed(&dlq.name, &source.name, n, |i| i as i64).await;
        let audit = std::env::temp_dir()
            .join(unique("race-audit"))
            .join("audit.jsonl");
        Race {
            dlq,
            source,
            audit,
            keys,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_morgue"));
        c.args(args)
            .args(["--kafka", &kafka_brokers(), "--topic", &self.dlq.name])
            .env("MORGUE_AUDIT_LOG", &self.audit)
            .env_remove("MORGUE_READ_ONLY")
            .env_remove("MORGUE_TEST_PAUSE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn morgue(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn replay_all(&self, extra: &[&str]) -> Command {
        let filter = format!("topic:{}", self.source.name);
        let mut args = vec!["replay", "--filter", &filter, "--yes"];
        args.extend_from_slice(extra);
        self.command(&args)
    }

    /// Keys in the source topic, with how often each arrived (committed messages only).
    async fn arrived(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for l in read_all(&self.source.name).await {
            let k = String::from_utf8(l.key.unwrap()).unwrap();
            *m.entry(k).or_insert(0) += 1;
        }
        m
    }

    /// Asserts every seeded key arrived exactly once.
    async fn assert_exactly_once(&self) {
        let got = self.arrived().await;
        let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "sent more than once: {twice:?}");
        let missing = self.keys.iter().filter(|k| !got.contains_key(*k)).count();
        assert_eq!(missing, 0, "{missing} of {} never arrived", self.keys.len());
        assert_eq!(got.len(), self.keys.len());
    }

    fn states(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for l in json_lines(&self.morgue(&["list"])) {
            *m.entry(l["state"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
        m
    }
}

/// Statuses of one process's report, counted.
fn tally(out: &Output) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in json_lines(out) {
        *m.entry(r["status"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    m
}

#[tokio::test]
async fn three_processes_and_a_tui_replay_each_key_exactly_once() {
    const N: usize = 200;
    let r = Race::new("race", N).await;
    // The TUI: triage board, replay the whole group.
    let tui = Tmux::start(&format!(
        "NO_COLOR=1 MORGUE_AUDIT_LOG={} {} --kafka {} --topic {}; sleep 60",
        r.audit.display(),
        env!("CARGO_BIN_EXE_morgue"),
        kafka_brokers(),
        r.dlq.name
    ));
    tui.wait_for(&format!("{N} letters"));
    tui.keys(&["t"]);
    tui.wait_for("TradeRejected");
    let procs: Vec<Child> = (0..3).map(|_| r.replay_all(&[]).spawn().unwrap()).collect();
    tui.keys(&["r"]);
    tui.wait_for("letter(s) matching");
    tui.keys(&["Enter"]);
    let outs: Vec<Output> = procs
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let screen = tui.wait_for("replay done:");
    let mut sent_by_cli = 0;
    for out in &outs {
        assert!(out.status.success(), "{}", stderr(out));
        let t = tally(out);
        let replayed = t.get("replayed").copied().unwrap_or(0);
        let skipped = t.get("skipped").copied().unwrap_or(0);
        let recovered = t.get("recovered").copied().unwrap_or(0);
        assert_eq!(replayed + skipped + recovered, N, "{t:?}\n{}", stderr(out));
        sent_by_cli += replayed;
    }
    // The TUI's own count closes the books: everything was sent once, by someone.
    let tui_sent: usize = screen
        .split("replay done: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(sent_by_cli + tui_sent, N, "{screen}");
    r.assert_exactly_once().await;
    assert_eq!(r.states().get("replayed"), Some(&N));
}

#[tokio::test]
async fn sigkill_inside_the_announce_confirm_window_never_doubles() {
    const N: usize = 40;
    for round in 0..6 {
        let r = Race::new(&format!("kill{round}"), N).await;
        let step = if round % 2 == 0 { "announced" } else { "sent" };
        // The victim is killed inside the window while a survivor replays alongside.
        let mut victim = r.replay_all(&[]);
        victim.env("MORGUE_TEST_PAUSE", format!("{step}:5000"));
        let survivor = kill_at(victim, &format!("morgue-test-pause: {step}"), || {
            r.replay_all(&[]).spawn().unwrap()
        });
        let survivor = survivor.unwrap_or_else(|| panic!("round {round}: never paused at {step}"));
        let out = survivor.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        // Whatever the victim left `replaying` is finished by the next run.
        let out = r.replay_all(&["--takeover-after", "0s"]).output().unwrap();
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
        r.assert_exactly_once().await;
        assert_eq!(r.states().get("replayed"), Some(&N), "round {round}");
    }
}

#[tokio::test]
async fn a_pending_replay_is_reconciled_before_a_resolve() {
    let r = Race::new("pending", 2).await;
    let ids: Vec<String> = json_lines(&r.morgue(&["list"]))
        .iter()
        .map(|l| l["id"].as_str().unwrap().to_string())
        .collect();
    for (id, step) in ids.iter().zip(["sent", "announced"]) {
        let mut victim = r.command(&["replay", id, "--yes"]);
        victim.env("MORGUE_TEST_PAUSE", format!("{step}:5000"));
        assert!(kill_at(victim, &format!("morgue-test-pause: {step}"), || ()).is_some());
        let shown = &json_lines(&r.morgue(&["show", id]))[0];
        assert_eq!(shown["state"], "replaying", "{shown}");
        assert!(
            shown["held_by"].as_str().unwrap().contains(" since "),
            "{shown}"
        );
        let out = r.morgue(&["resolve", id, "--yes"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let shown = &json_lines(&r.morgue(&["show", id]))[0];
        assert_eq!(shown["state"], "resolved");
        // Killed after the send: the resolve found and recorded it.
        let history = shown["history"].as_array().unwrap().len();
        assert_eq!(history, usize::from(step == "sent"), "{shown}");
        // A replay afterwards sends only what never went out.
        let out = r.morgue(&["replay", id, "--yes"]);
        assert!(out.status.success(), "{}", stderr(&out));
        let status = json_lines(&out)[0]["status"].clone();
        assert_eq!(
            status,
            if step == "sent" {
                "skipped"
            } else {
                "replayed"
            }
        );
    }
    r.assert_exactly_once().await;
    let audit = std::fs::read_to_string(&r.audit).unwrap();
    assert!(audit.contains("\"replay-confirmed\""), "{audit}");
    assert!(audit.contains("\"replay-cleared\""), "{audit}");
}

#[tokio::test]
async fn copies_of_one_source_message_replay_once() {
    let source = TestTopic::new("copies-src", 1).await;
    let dlq = TestTopic::new("copies-dlq", 1).await;
    // Letters 0 and 1 are one source message (offset 17) dead-lettered twice.
    seed(&dlq.name, &source.name, 3, |i| if i < 2 { 17 } else { 18 }).await;
    let r = Race {
        keys: Vec::new(),
        audit: std::env::temp_dir()
            .join(unique("copies"))
            .join("audit.jsonl"),
        dlq,
        source,
    };
    let out = r.replay_all(&[]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let t = tally(&out);
    assert_eq!(
        (t.get("replayed"), t.get("skipped")),
        (Some(&2), Some(&1)),
        "{t:?}"
    );
    assert!(stderr(&out).contains("is a copy of"), "{}", stderr(&out));
    assert_eq!(read_all(&r.source.name).await.len(), 2);
    let listed = json_lines(&r.morgue(&["list"]));
    let copy = listed.iter().find(|l| !l["copy_of"].is_null()).unwrap();
    assert_eq!(copy["state"], "replayed");
    // --force sends the copy anyway.
    let id = copy["id"].as_str().unwrap();
    let out = r.morgue(&["replay", id, "--yes", "--force"]);
    assert_eq!(
        json_lines(&out)[0]["status"],
        "replayed",
        "{}",
        stderr(&out)
    );
    assert_eq!(read_all(&r.source.name).await.len(), 3);
}

#[tokio::test]
async fn a_confirm_that_fails_is_sent_unconfirmed_and_the_next_run_confirms_it() {
    let r = Race::new("unconfirmed", 1).await;
    let id = json_lines(&r.morgue(&["list"]))[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ledger = format!("{}.morgue-ledger", r.dlq.name);
    let mut cmd = r.command(&["replay", &id, "--yes"]);
    cmd.env("MORGUE_TEST_PAUSE", "sent:4000");
    let child = cmd.spawn().unwrap();
    // While it waits between the send and the confirm, the ledger starts refusing writes.
    let deadline = Instant::now() + Duration::from_secs(30);
    while read_all(&r.source.name).await.is_empty() {
        assert!(Instant::now() < deadline, "the send never arrived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    alter_topic(&ledger, "max.message.bytes", "64").await;
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let line = &json_lines(&out)[0];
    assert_eq!(line["status"], "sent-unconfirmed", "{line}");
    let audit = std::fs::read_to_string(&r.audit).unwrap();
    assert!(audit.contains("\"replay-unconfirmed\""), "{audit}");

    alter_topic(&ledger, "max.message.bytes", "1048588").await;
    let out = r.morgue(&["replay", &id, "--yes", "--takeover-after", "0s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["status"], "recovered");
    r.assert_exactly_once().await;
    assert_eq!(r.states().get("replayed"), Some(&1));
}

#[tokio::test]
async fn the_tui_refuses_a_letter_another_operator_replayed_a_second_ago() {
    let r = Race::new("tui-late", 1).await;
    let id = json_lines(&r.morgue(&["list"]))[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tui = Tmux::start(&format!(
        "NO_COLOR=1 MORGUE_AUDIT_LOG={} {} --kafka {} --topic {}; sleep 60",
        r.audit.display(),
        env!("CARGO_BIN_EXE_morgue"),
        kafka_brokers(),
        r.dlq.name
    ));
    tui.wait_for(&r.keys[0][..8]);
    // The dialog is open in the TUI when the other operator replays the letter.
    tui.keys(&["r"]);
    tui.wait_for(&format!("to topic: {}", r.source.name));
    let out = r.morgue(&["replay", &id, "--yes"]);
    assert_eq!(
        json_lines(&out)[0]["status"],
        "replayed",
        "{}",
        stderr(&out)
    );
    std::thread::sleep(Duration::from_secs(1));
    tui.keys(&["Enter"]);
    let who = morgue::engine::sink::whoami();
    let screen = tui.wait_for("already replayed");
    assert!(screen.contains(&format!("by {who}")), "{screen}");
    r.assert_exactly_once().await;
}
