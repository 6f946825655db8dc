//! A replay race: a DLQ of letters with 36-character keys — a transactional Kafka topic
//! (a commit marker after each letter, as Spring writes them) or a MongoDB collection
//! (as a team's own writer stores them) — `morgue` processes on it, and the checks that
//! every letter reached its source topic once.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use morgue::engine::{FailureContext, Headers, Reason, SourceCoords, model::conventions};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

use super::procs::json_lines;
use super::tmux::Tmux;
use super::{TestCollection, TestTopic, kafka_brokers, read_all_on, unique};

/// The headers Spring's dead-letter publisher writes for a letter from `src` that
/// failed with `f`, ready for a Kafka record.
pub fn dlt_headers(src: &SourceCoords, f: &FailureContext) -> OwnedHeaders {
    let mut hs = OwnedHeaders::new();
    for h in Headers(conventions::encode(src, f)).iter() {
        hs = hs.insert(Header {
            key: &h.name,
            value: h.value.as_deref(),
        });
    }
    hs
}

/// A transactional DLQ of `n` letters for `source` on `brokers`, one transaction per
/// letter; letter `i` failed at source offset `offsets(i)`. Returns the keys.
pub async fn seed_on(
    brokers: &str,
    dlq: &str,
    source: &str,
    n: usize,
    offsets: impl Fn(usize) -> i64,
) -> Vec<String> {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
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
        let hs = dlt_headers(&src, &f);
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

/// [`seed_on`] the shared broker.
pub async fn seed(
    dlq: &str,
    source: &str,
    n: usize,
    offsets: impl Fn(usize) -> i64,
) -> Vec<String> {
    seed_on(&kafka_brokers(), dlq, source, n, offsets).await
}

/// A DLQ of letters from one source topic, the audit log of the operators on it, and
/// the keys seeded.
pub struct Race {
    pub brokers: String,
    pub dlq: TestTopic,
    pub source: TestTopic,
    pub audit: std::path::PathBuf,
    pub keys: Vec<String>,
    /// The MongoDB DLQ, when the race is on one (replays still go to `brokers`).
    pub mongo: Option<TestCollection>,
}

impl Race {
    /// `n` letters on the shared broker (source: 3 partitions, DLQ: 2).
    pub async fn new(prefix: &str, n: usize) -> Race {
        Self::on(&kafka_brokers(), prefix, n).await
    }

    /// `n` letters on `brokers`.
    pub async fn on(brokers: &str, prefix: &str, n: usize) -> Race {
        let source = TestTopic::named_on(brokers, unique(&format!("{prefix}-src")), 3, &[]).await;
        let dlq = TestTopic::named_on(brokers, unique(&format!("{prefix}-dlq")), 2, &[]).await;
        let keys = seed_on(brokers, &dlq.name, &source.name, n, |i| i as i64).await;
        Race {
            brokers: brokers.to_string(),
            audit: audit_path(),
            dlq,
            source,
            keys,
            mongo: None,
        }
    }

    /// `n` documents in a MongoDB DLQ whose source topic is on the shared broker.
    pub async fn mongo(prefix: &str, n: usize) -> Race {
        use mongodb::bson::{DateTime, doc};
        let brokers = kafka_brokers();
        let source = TestTopic::named_on(&brokers, unique(&format!("{prefix}-src")), 3, &[]).await;
        let dlq = TestTopic::named_on(&brokers, unique(&format!("{prefix}-unused")), 1, &[]).await;
        let coll = TestCollection::new(prefix);
        let keys: Vec<String> = (0..n).map(|_| uuid::Uuid::new_v4().to_string()).collect();
        let docs = keys.iter().enumerate().map(|(i, key)| {
            doc! {
                "key": key, "value": format!("{{\"trade\":{i}}}"),
                "topic": &source.name, "partition": 0, "offset": i as i64,
                "error_time": DateTime::now(),
                "morgue": { "failure": { "exception_class": "com.acme.TradeRejected", "message": format!("trade {i}") } },
            }
        });
        coll.handle().await.insert_many(docs).await.unwrap();
        Race {
            brokers,
            audit: audit_path(),
            dlq,
            source,
            keys,
            mongo: Some(coll),
        }
    }

    /// The options that name this DLQ (and, for MongoDB, the cluster replays go to).
    pub fn dlq_args(&self) -> Vec<String> {
        let mut a = vec!["--kafka".to_string(), self.brokers.clone()];
        match &self.mongo {
            Some(coll) => a.extend(coll.args()),
            None => a.extend(["--topic".to_string(), self.dlq.name.clone()]),
        }
        a
    }

    /// `morgue ARGS` on this DLQ, output piped, no test pause.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = crate::common::procs::morgue_cmd();
        c.args(args)
            .args(self.dlq_args())
            .env("MORGUE_AUDIT_LOG", &self.audit)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Runs `morgue ARGS` to the end.
    pub fn morgue(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// `morgue replay --filter topic:SOURCE --yes EXTRA`.
    pub fn replay_all(&self, extra: &[&str]) -> Command {
        let filter = format!("topic:{}", self.source.name);
        let mut args = vec!["replay", "--filter", &filter, "--yes"];
        args.extend_from_slice(extra);
        self.command(&args)
    }

    /// Keys in the source topic, with how often each arrived (committed messages only).
    pub async fn arrived(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for l in read_all_on(&self.brokers, &self.source.name).await {
            let k = String::from_utf8(l.key.unwrap()).unwrap();
            *m.entry(k).or_insert(0) += 1;
        }
        m
    }

    /// Asserts every seeded key arrived exactly once.
    pub async fn assert_exactly_once(&self) {
        let got = self.arrived().await;
        let twice: Vec<_> = got.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "sent more than once: {twice:?}");
        let missing = self.keys.iter().filter(|k| !got.contains_key(*k)).count();
        assert_eq!(missing, 0, "{missing} of {} never arrived", self.keys.len());
        assert_eq!(got.len(), self.keys.len());
    }

    /// How many letters `morgue list` shows in each state.
    pub fn states(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for l in json_lines(&self.morgue(&["list"])) {
            *m.entry(l["state"].as_str().unwrap().to_string())
                .or_insert(0) += 1;
        }
        m
    }

    /// Asserts that every `replayed` line of the operators' reports names a message
    /// that is in the source topic with the replay id reported, and that no message
    /// was claimed by two lines: nobody reported a send it did not make.
    pub async fn assert_reports_true(&self, outs: &[&Output]) {
        let mut ids: HashMap<String, String> = HashMap::new();
        for l in read_all_on(&self.brokers, &self.source.name).await {
            let rid = l
                .headers
                .last(conventions::MORGUE_REPLAY_ID)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap();
            ids.insert(rid, String::from_utf8(l.key.unwrap()).unwrap());
        }
        let mut claimed = HashMap::new();
        for out in outs {
            for line in json_lines(out) {
                if line["status"] != "replayed" {
                    continue;
                }
                let rid = line["replay_id"].as_str().unwrap().to_string();
                assert!(ids.contains_key(&rid), "reported but never arrived: {line}");
                let before = claimed.insert(rid, line.clone());
                assert!(before.is_none(), "reported twice: {line} and {before:?}");
            }
        }
    }
}

/// The TUI on a race's DLQ, on the triage board once every letter is loaded.
pub fn tui_on_triage(r: &Race) -> Tmux {
    let args: Vec<String> = r.dlq_args().iter().map(|a| format!("'{a}'")).collect();
    let tui = Tmux::start(&format!(
        "NO_COLOR=1 MORGUE_AUDIT_LOG={} {} {}; sleep 60",
        r.audit.display(),
        env!("CARGO_BIN_EXE_morgue"),
        args.join(" ")
    ));
    tui.wait_for(&format!("{} letters", r.keys.len()));
    tui.keys(&["t"]);
    tui.wait_for("TradeRejected");
    tui
}

/// Replays the triage board's group from the TUI, confirming the dialog.
pub fn tui_replay_group(tui: &Tmux) {
    tui.keys(&["r"]);
    tui.wait_for("letter(s) matching");
    tui.keys(&["Enter"]);
}

/// How many letters the TUI's group replay sent, from its closing line; and the screen.
pub fn tui_sent(tui: &Tmux) -> (usize, String) {
    let screen = tui.wait_for("replay done:");
    let sent = screen
        .split("replay done: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    (sent, screen)
}

/// Where a race's operators write their audit log.
fn audit_path() -> std::path::PathBuf {
    std::env::temp_dir()
        .join(unique("race-audit"))
        .join("audit.jsonl")
}

/// Statuses of one process's report, counted.
pub fn tally(out: &Output) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in json_lines(out) {
        *m.entry(r["status"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    m
}

/// Skip reasons of one process's report, counted.
pub fn reasons(out: &Output) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for r in json_lines(out) {
        if let Some(why) = r["reason"].as_str() {
            *m.entry(why.to_string()).or_insert(0) += 1;
        }
    }
    m
}
