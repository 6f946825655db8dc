//! Exactly-once replay from a MongoDB DLQ under company and crashes, against the real
//! MongoDB-protocol server and broker: three `morgue replay` processes and a TUI at
//! once, SIGKILLs inside the announce→confirm window, and a confirm that cannot be
//! recorded. State lives in the documents; sends go to Kafka.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};

use common::procs::{json_lines, kill_at, stderr};
use common::tmux::Tmux;
use common::*;
use mongodb::bson::{DateTime, doc};

struct Race {
    coll: TestCollection,
    source: TestTopic,
    audit: std::path::PathBuf,
    keys: Vec<String>,
}

impl Race {
    /// `n` documents as the team's pymongo writer stores them, with 36-character keys.
    async fn new(prefix: &str, n: usize) -> Race {
        let source = TestTopic::new(&format!("{prefix}-src"), 3).await;
        let coll = TestCollection::new(prefix);
        let h = coll.handle().await;
        let mut keys = Vec::new();
        let docs: Vec<_> = (0..n)
            .map(|i| {
                let key = uuid::Uuid::new_v4().to_string();
                keys.push(key.clone());
                doc! {
                    "key": key, "value": format!("{{\"trade\":{i}}}"),
                    "topic": &source.name, "partition": 0, "offset": i as i64,
                    "error_time": DateTime::now(),
                    "morgue": { "failure": { "exception_class": "com.acme.TradeRejected", "message": format!("trade {i}") } },
                }
            })
            .collect();
        h.insert_many(docs).await.unwrap();
        let audit = std::env::temp_dir()
            .join(unique("race-mongo-audit"))
            .join("audit.jsonl");
        Race {
            coll,
            source,
            audit,
            keys,
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_morgue"));
        c.args(args)
            .args(self.coll.args())
            .args(["--kafka", &kafka_brokers()])
            .env("MORGUE_AUDIT_LOG", &self.audit)
            .env_remove("MORGUE_READ_ONLY")
            .env_remove("MORGUE_TEST_PAUSE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    fn replay_all(&self, extra: &[&str]) -> Command {
        let filter = format!("topic:{}", self.source.name);
        let mut args = vec!["replay", "--filter", &filter, "--yes"];
        args.extend_from_slice(extra);
        self.command(&args)
    }

    async fn assert_exactly_once(&self) {
        let mut got: HashMap<String, usize> = HashMap::new();
        for l in read_all(&self.source.name).await {
            *got.entry(String::from_utf8(l.key.unwrap()).unwrap())
                .or_insert(0) += 1;
        }
        let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "sent more than once: {twice:?}");
        assert_eq!(got.len(), self.keys.len(), "some never arrived");
    }

    async fn replayed_docs(&self) -> u64 {
        self.coll
            .handle()
            .await
            .count_documents(doc! { "morgue.state": "replayed" })
            .await
            .unwrap()
    }
}

fn count(out: &Output, status: &str) -> usize {
    json_lines(out)
        .iter()
        .filter(|r| r["status"] == status)
        .count()
}

#[tokio::test]
async fn three_processes_and_a_tui_replay_a_mongodb_dlq_exactly_once() {
    const N: usize = 200;
    let r = Race::new("race_mongo", N).await;
    let tui = Tmux::start(&format!(
        "NO_COLOR=1 MORGUE_AUDIT_LOG={} {} {}; sleep 60",
        r.audit.display(),
        env!("CARGO_BIN_EXE_morgue"),
        r.coll
            .args()
            .iter()
            .map(|a| format!("'{a}'"))
            .chain(["--kafka".to_string(), kafka_brokers()])
            .collect::<Vec<_>>()
            .join(" ")
    ));
    tui.wait_for(&format!("{N} letters"));
    tui.keys(&["t"]);
    tui.wait_for("TradeRejected");
    let procs: Vec<Child> = (0..3).map(|_| r.replay_all(&[]).spawn().unwrap()).collect();
    tui.keys(&["r"]);
    tui.wait_for("letter(s) matching");
    tui.keys(&["Enter"]);
    let mut sent = 0;
    for c in procs {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let (rep, skip, rec) = (
            count(&out, "replayed"),
            count(&out, "skipped"),
            count(&out, "recovered"),
        );
        assert_eq!(rep + skip + rec, N, "{}", stderr(&out));
        sent += rep;
    }
    let screen = tui.wait_for("replay done:");
    let tui_sent: usize = screen
        .split("replay done: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert_eq!(sent + tui_sent, N, "{screen}");
    r.assert_exactly_once().await;
    assert_eq!(r.replayed_docs().await, N as u64);
}

#[tokio::test]
async fn sigkill_inside_the_window_on_a_mongodb_dlq_never_doubles() {
    const N: usize = 20;
    for round in 0..5 {
        let r = Race::new(&format!("kill_mongo{round}"), N).await;
        let step = if round % 2 == 0 { "announced" } else { "sent" };
        let mut victim = r.replay_all(&[]);
        victim.env("MORGUE_TEST_PAUSE", format!("{step}:5000"));
        let survivor = kill_at(victim, &format!("morgue-test-pause: {step}"), || {
            r.replay_all(&[]).spawn().unwrap()
        })
        .unwrap_or_else(|| panic!("round {round}: never paused at {step}"));
        let out = survivor.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let out = r.replay_all(&["--takeover-after", "0s"]).output().unwrap();
        assert!(out.status.success(), "round {round}: {}", stderr(&out));
        r.assert_exactly_once().await;
        assert_eq!(r.replayed_docs().await, N as u64, "round {round}");
    }
}

#[tokio::test]
async fn a_confirm_the_collection_refuses_is_sent_unconfirmed_then_confirmed() {
    let r = Race::new("unconfirmed_mongo", 1).await;
    let h = r.coll.handle().await;
    let id = h
        .find_one(doc! {})
        .await
        .unwrap()
        .unwrap()
        .get_object_id("_id")
        .unwrap()
        .to_hex();
    let mut cmd = r.command(&["replay", &id, "--yes"]);
    cmd.env("MORGUE_TEST_PAUSE", "sent:3000");
    let moved = format!("{}_away", r.coll.name);
    let out = kill_free(cmd, "morgue-test-pause: sent", || async {
        // The collection goes away between the send and the confirm.
        let admin = mongodb::Client::with_uri_str(mongo_uri()).await.unwrap();
        admin
            .database("admin")
            .run_command(doc! {
                "renameCollection": format!("{}.{}", r.coll.db, r.coll.name),
                "to": format!("{}.{moved}", r.coll.db),
            })
            .await
            .unwrap();
    })
    .await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["status"], "sent-unconfirmed");
    // The failed confirm may have left an empty collection under the old name.
    h.drop().await.unwrap();
    let admin = mongodb::Client::with_uri_str(mongo_uri()).await.unwrap();
    admin
        .database("admin")
        .run_command(doc! {
            "renameCollection": format!("{}.{moved}", r.coll.db),
            "to": format!("{}.{}", r.coll.db, r.coll.name),
        })
        .await
        .unwrap();
    let out = r
        .command(&["replay", &id, "--yes", "--takeover-after", "0s"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_lines(&out)[0]["status"], "recovered");
    r.assert_exactly_once().await;
    assert_eq!(r.replayed_docs().await, 1);
}

/// Runs `cmd` to the end, running `meanwhile` once it prints `marker` on stderr.
async fn kill_free<F: std::future::Future<Output = ()>>(
    mut cmd: Command,
    marker: &str,
    meanwhile: impl FnOnce() -> F,
) -> Output {
    let mut child = cmd.spawn().unwrap();
    let err = child.stderr.take().unwrap();
    let mut lines = BufReader::new(err).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref().map_while(Result::ok) {
        let hit = line.contains(marker);
        seen.push(line);
        if hit {
            break;
        }
    }
    meanwhile().await;
    seen.extend(lines.map_while(Result::ok));
    let mut out = child.wait_with_output().unwrap();
    out.stderr = seen.join("\n").into_bytes();
    out
}
