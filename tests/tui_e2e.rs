//! The TUI as a person uses it over ssh: the real binary in tmux against the real
//! broker, driven with send-keys and read with capture-pane.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::common::tmux::Tmux;
use crate::common::*;
use morgue::backends::kafka::KafkaConfig;
use morgue::engine::{
    DeadLetter, FailureContext, Headers, Reason, SourceCoords, model::conventions,
};

async fn write_letter(cfg: &KafkaConfig, dlq: &str, source: &str, key: &str, value: &str) {
    write_letter_of(cfg, dlq, source, 7, key, value).await;
}

/// The TUI on `dlq` in a fresh tmux session, colours off, its audit log in a scratch
/// directory.
fn tui_on(dlq: &str) -> Tmux {
    Tmux::start(&format!(
        "NO_COLOR=1 MORGUE_AUDIT_LOG={} {} --kafka {} --topic {dlq}; sleep 30",
        std::env::temp_dir()
            .join(unique("tui-audit"))
            .join("audit.jsonl")
            .display(),
        env!("CARGO_BIN_EXE_morgue"),
        kafka_brokers(),
    ))
}

/// A dead letter of message `offset` of `source`.
async fn write_letter_of(
    cfg: &KafkaConfig,
    dlq: &str,
    source: &str,
    offset: i64,
    key: &str,
    value: &str,
) {
    let src = SourceCoords {
        topic: Some(source.into()),
        partition: Some(0),
        offset: Some(offset),
        ..SourceCoords::default()
    };
    let f = FailureContext {
        exception_class: Some("com.acme.PriceException".into()),
        message: Some("price must be positive".into()),
        reason: Reason::Failed,
        ..FailureContext::default()
    };
    let l = DeadLetter::from_record(
        None,
        None,
        Some(key.into()),
        Some(value.into()),
        Headers(conventions::encode(&src, &f)),
    );
    cfg.write(&cfg.producer().unwrap(), dlq, &l).await.unwrap();
}

#[tokio::test]
async fn list_live_filter_detail_replay_in_tmux() {
    let source = TestTopic::new("tui-src", 1).await;
    let dlq = TestTopic::new("tui-dlq", 1).await;
    let cfg = KafkaConfig::new(kafka_brokers());
    write_letter(&cfg, &dlq.name, &source.name, "OLD-1", r#"{"price": -1}"#).await;
    write_letter(&cfg, &dlq.name, &source.name, "OLD-2", r#"{"price": -2}"#).await;
    let audit = std::env::temp_dir()
        .join(unique("tui-audit"))
        .join("audit.jsonl");
    let cmd = format!(
        "NO_COLOR=1 VISUAL='sed -i s/-3/3/' MORGUE_AUDIT_LOG={} {} --kafka {} --topic {}; sleep 30",
        audit.display(),
        env!("CARGO_BIN_EXE_morgue"),
        kafka_brokers(),
        dlq.name
    );
    let t = Tmux::start(&cmd);
    t.wait_for("OLD-2");
    t.wait_for("following live");
    // The topic's retention.ms (7 days by default) is read: the header says when
    // the oldest letter goes.
    t.wait_for("oldest deleted in 6d23h");

    // A letter produced after start appears.
    write_letter(
        &cfg,
        &dlq.name,
        &source.name,
        "NEW-1",
        r#"{"price": -3, "sym": "ACME"}"#,
    )
    .await;
    t.wait_for("NEW-1");

    // The filter narrows the list.
    t.keys(&["/", "key:NEW*", "Enter"]);
    let s = t.wait_for("1 of 3 letters match");
    assert!(!s.contains("OLD-1"), "{s}");

    // The detail shows the decoded payload, then the error.
    t.keys(&["Enter"]);
    t.wait_for("\"sym\": \"ACME\"");
    t.keys(&["Tab", "Tab"]);
    let s = t.wait_for("com.acme.PriceException");
    assert!(s.contains(&source.name), "{s}");

    // Fix it in the editor (a scripted VISUAL): review the diff, keep it.
    t.keys(&["e"]);
    // The diff itself waited for: a screen read mid-draw can hold the title alone.
    let s = t.wait_for("+   \"price\": 3,");
    assert!(
        s.contains("Keep this edit") && s.contains("-   \"price\": -3,"),
        "{s}"
    );
    t.keys(&["Enter"]);
    t.wait_for("r replays it");
    t.keys(&["Tab", "Tab"]);
    t.wait_for("edited: this is what a replay sends");

    // Replay it: the dialog, then the status and the row's state.
    t.keys(&["r"]);
    // A long name wraps in the dialog: the label, then the name.
    t.wait_for("to topic:");
    t.wait_for(&source.name);
    // What is confirmed is the change itself, whole lines, not a cut prefix.
    let s = t.wait_for("payload (edited)");
    assert!(
        s.contains("-   \"price\": -3,") && s.contains("+   \"price\": 3,"),
        "{s}"
    );
    t.keys(&["Enter"]);
    t.wait_for("replayed to");
    t.keys(&["Escape"]);
    t.wait_for("replayed ");
    let sent = read_all(&source.name).await;
    assert_eq!(sent.len(), 1);
    // One-line JSON is sent as one line, keys in their order.
    assert_eq!(
        sent[0].value.as_deref(),
        Some(&br#"{"price":3,"sym":"ACME"}"#[..])
    );
    let value: serde_json::Value =
        serde_json::from_slice(sent[0].value.as_deref().unwrap()).unwrap();
    assert_eq!(
        value,
        serde_json::json!({"price": 3, "sym": "ACME"}),
        "the edited payload was sent"
    );
    assert!(sent[0].headers.last("morgue-replay-id").is_some());
    assert_eq!(
        std::fs::read_to_string(&audit).unwrap().lines().count(),
        2,
        "edit and replay"
    );
    assert!(
        audit.with_file_name("morgue.log").exists(),
        "the TUI logs to a file, not the screen"
    );

    t.keys(&["q"]);
    // The terminal is restored after q: the TUI's screen goes away.
    t.wait_gone("payload │");
}

#[tokio::test]
async fn the_same_flow_on_a_mongodb_dlq() {
    use mongodb::bson::doc;
    let source = TestTopic::new("tui-mongo-src", 1).await;
    let c = TestCollection::new("tui");
    let coll = c.handle().await;
    coll.insert_one(doc! { "key": "OLD-1", "value": "{\"price\": -1}", "topic": &source.name, "partition": 0, "offset": 1i64, "error_time": mongodb::bson::DateTime::now() })
        .await
        .unwrap();
    let audit = std::env::temp_dir()
        .join(unique("tui-mongo-audit"))
        .join("audit.jsonl");
    let cmd = format!(
        "NO_COLOR=1 MORGUE_AUDIT_LOG={} {} --mongo '{}' --db {} --collection {} --kafka {}; sleep 30",
        audit.display(),
        env!("CARGO_BIN_EXE_morgue"),
        mongo_uri(),
        c.db,
        c.name,
        kafka_brokers()
    );
    let t = Tmux::start(&cmd);
    t.wait_for("OLD-1");
    t.wait_for("live: change stream");

    // A document inserted after start appears through the change stream.
    coll.insert_one(doc! { "key": "NEW-1", "value": "{\"price\": -3}", "topic": &source.name, "partition": 0, "offset": 2i64, "error_time": mongodb::bson::DateTime::now() })
        .await
        .unwrap();
    t.wait_for("NEW-1");
    t.keys(&["/", "key:NEW*", "Enter"]);
    t.wait_for("1 of 2 letters match");
    t.keys(&["Enter"]);
    t.wait_for("\"price\": -3");
    t.keys(&["r"]);
    // A long name wraps in the dialog: the label, then the name.
    t.wait_for("to topic:");
    t.wait_for(&source.name);
    t.keys(&["Enter"]);
    t.wait_for("replayed to");
    let sent = read_all(&source.name).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].value.as_deref(), Some(&b"{\"price\": -3}"[..]));
    let d = coll
        .find_one(doc! { "key": "NEW-1" })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        d.get_document("morgue").unwrap().get_str("state").unwrap(),
        "replayed"
    );
    t.keys(&["q"]);
}

#[tokio::test]
async fn the_overview_opens_a_dlq_and_esc_comes_back() {
    let run = unique("ovt");
    let a = TestTopic::new(&format!("{run}-a"), 1).await;
    let _b = TestTopic::new(&format!("{run}-b"), 2).await;
    let _c = TestTopic::new(&format!("{run}-c"), 1).await;
    let cfg = KafkaConfig::new(kafka_brokers());
    write_letter(&cfg, &a.name, "trades", "OV-1", r#"{"price": -1}"#).await;
    write_letter(&cfg, &a.name, "trades", "OV-2", r#"{"price": -2}"#).await;
    let cmd = format!(
        "NO_COLOR=1 MORGUE_AUDIT_LOG={} {} --kafka {} --pattern '{run}-*'; sleep 30",
        std::env::temp_dir().join(format!("{run}.jsonl")).display(),
        env!("CARGO_BIN_EXE_morgue"),
        kafka_brokers(),
    );
    let t = Tmux::start(&cmd);
    let s = t.wait_for("3 DLQs");
    assert!(s.contains("~2 letters"), "{s}");
    t.wait_for(&a.name);
    // The first DLQ (by name) is selected: open it, then come back.
    t.keys(&["Enter"]);
    t.wait_for("OV-2");
    t.wait_for("2 letters");
    // Wide enough for the preview: it fetches the selected letter and follows the cursor.
    t.resize(160, 30);
    t.wait_for("preview (v hides)");
    t.wait_for("\"price\": -2");
    t.keys(&["j"]);
    t.wait_for("\"price\": -1");
    t.keys(&["v"]);
    let s = t.wait_for("preview off");
    assert!(!s.contains("\"price\""), "{s}");
    t.keys(&["Escape"]);
    let s = t.wait_for(&format!("back from {}", a.name));
    assert!(s.contains("3 DLQs"), "{s}");
    t.keys(&["q"]);
    // The terminal is given back: the overview leaves the screen.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while t.screen().contains("3 DLQs") && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!t.screen().contains("3 DLQs"), "{}", t.screen());
}

#[tokio::test]
async fn keys_theme_and_profiles_come_from_the_config_file() {
    let a = TestTopic::new("tui-prof-a", 1).await;
    let b = TestTopic::new("tui-prof-b", 1).await;
    let cfg = KafkaConfig::new(kafka_brokers());
    write_letter(&cfg, &a.name, "trades", "PA-1", r#"{"price": -1}"#).await;
    write_letter(&cfg, &b.name, "trades", "PB-1", r#"{"price": -2}"#).await;
    let dir = std::env::temp_dir().join(unique("tui-config"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "theme = \"light\"\n\n[keys]\nreplay = \"R\"\n\n\
             [profiles.alpha]\nkafka = \"{k}\"\ntopic = \"{}\"\n\n\
             [profiles.beta]\nkafka = \"{k}\"\ntopic = \"{}\"\nread_only = true\n\n\
             [profiles.gamma]\nkafka = \"127.0.0.1:1\"\ntopic = \"nowhere\"\n",
            a.name,
            b.name,
            k = kafka_brokers()
        ),
    )
    .unwrap();
    // Colours on: the light theme's selected row is #0550ae.
    let cmd = format!(
        "MORGUE_AUDIT_LOG={} {} --config {} --profile alpha --connect-timeout 2s; sleep 30",
        dir.join("audit.jsonl").display(),
        env!("CARGO_BIN_EXE_morgue"),
        config.display(),
    );
    let t = Tmux::start(&cmd);
    t.wait_for("PA-1");
    t.wait_for("following live");
    let ansi = t.screen_ansi();
    assert!(
        ansi.contains("48;2;5;80;174"),
        "light theme's selection: {ansi:?}"
    );
    // The help shows the override, and the keys do what it says.
    t.keys(&["?"]);
    let s = t.wait_for("replay the letter (asks first)");
    assert!(
        s.lines()
            .any(|l| l.trim_start().starts_with("R ") && l.contains("replay the letter")),
        "{s}"
    );
    // `r` is no longer replay: had it opened the replay dialog, `?` would be typed
    // into its topic field instead of opening the help.
    t.keys(&["Escape"]);
    t.wait_gone("replay the letter (asks first)");
    t.keys(&["r", "?"]);
    let s = t.wait_for("replay the letter (asks first)");
    assert!(!s.contains("to topic:"), "r is no longer replay:\n{s}");
    t.keys(&["Escape"]);
    t.wait_gone("replay the letter (asks first)");
    t.keys(&["R"]);
    t.wait_for("to topic: trades");
    t.keys(&["Escape"]);
    t.wait_for("cancelled");
    // Hints name the key the user has.
    t.keys(&["Space"]);
    t.wait_for("1 marked; R replays them, esc unmarks");
    t.keys(&["Escape"]);
    // P lists the profiles, the current one starred; enter opens the other's DLQ with
    // its own settings (beta is read-only).
    t.keys(&["P"]);
    let s = t.wait_for("● alpha");
    assert!(
        s.contains(&format!(
            "○ beta             kafka {} topic {}  read-only",
            kafka_brokers(),
            b.name
        )),
        "{s}"
    );
    t.keys(&["j", "Enter"]);
    let s = t.wait_for("PB-1");
    assert!(s.contains(&b.name) && !s.contains("PA-1"), "{s}");
    t.wait_for("READ-ONLY");
    t.keys(&["R"]);
    t.wait_for("refused replay: the profile is read-only");
    // A profile whose broker does not answer: back on beta, with the reason.
    t.keys(&["P", "j", "Enter"]);
    let s = t.wait_for("cannot open profile 'gamma': cannot reach Kafka at '127.0.0.1:1'");
    assert!(s.contains("READ-ONLY") && s.contains(&b.name), "{s}");
    t.wait_for("PB-1");
    t.keys(&["q"]);
}

#[tokio::test]
async fn every_width_keeps_the_key_the_error_and_the_live_state_in_tmux() {
    let source = TestTopic::new("tui-narrow-src", 1).await;
    let dlq = TestTopic::new("tui-narrow-dlq", 1).await;
    let cfg = KafkaConfig::new(kafka_brokers());
    let key = |i: usize| format!("{i:08}-3b4d-4e5f-8a7b-9c0d1e2f3a4b");
    for i in 0..5 {
        write_letter(&cfg, &dlq.name, &source.name, &key(i), r#"{"price": -1}"#).await;
    }
    let t = tui_on(&dlq.name);
    t.wait_for("following live");
    // Off the newest letter, then two letters arrive above the cursor.
    t.keys(&["G"]);
    for i in 5..7 {
        write_letter(&cfg, &dlq.name, &source.name, &key(i), r#"{"price": -1}"#).await;
    }
    t.wait_for("2 new ↑");
    for (w, h) in [(50, 20), (80, 24), (120, 30), (200, 50)] {
        t.resize(w, h);
        // What must stay at every width, once redrawn at this one: the live state and
        // the news in the header, KEY and ERROR, a key's start and end, and 15
        // characters of the message.
        let fits = |s: &str| {
            let mut lines = s.lines();
            let header = lines.next().unwrap_or_default();
            let titles = lines.next().unwrap_or_default();
            header.contains("live ●")
                && header.contains("2 new ↑")
                && titles.contains("KEY")
                && titles.contains("ERROR")
                && s.lines().any(|l| {
                    l.contains("00000003") && l.contains("a4b") && l.contains("price must be p")
                })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let s = t.screen();
            if fits(&s) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{w}x{h}:\n{s}");
            std::thread::sleep(Duration::from_millis(200));
        }
        t.keys(&["t"]);
        let board = t.wait_for("COUNT");
        assert!(board.contains("COUNT    ERROR"), "{w}:\n{board}");
        t.keys(&["t"]);
        t.wait_for("TIME");
    }
}

#[tokio::test]
async fn a_group_replay_sends_exactly_the_letters_its_dialog_counted() {
    let source = TestTopic::new("tui-group-src", 1).await;
    let dlq = TestTopic::new("tui-group-dlq", 1).await;
    let cfg = KafkaConfig::new(kafka_brokers());
    let key = |i: usize| format!("{i:08}-6f1c-4e5f-8a7b-9c0d1e2f3a4b");
    let letter = |i: usize| {
        let (cfg, dlq, source) = (cfg.clone(), dlq.name.clone(), source.name.clone());
        async move {
            let v = r#"{"price": -1}"#;
            write_letter_of(&cfg, &dlq, &source, i as i64, &key(i), v).await;
        }
    };
    for i in 0..3 {
        letter(i).await;
    }
    let t = tui_on(&dlq.name);
    t.wait_for("following live");
    t.keys(&["t"]);
    t.wait_for("COUNT");
    t.keys(&["r"]);
    t.wait_for("Replay 3 letter(s) matching");
    // A fourth letter of the group arrives while the question is on the screen.
    letter(3).await;
    t.wait_for("4 letters");
    t.keys(&["Enter"]);
    t.wait_for("replay done: 3 replayed");
    let sent: Vec<String> = read_all(&source.name)
        .await
        .into_iter()
        .map(|l| String::from_utf8(l.key.unwrap()).unwrap())
        .collect();
    let mut want: Vec<String> = (0..3).map(key).collect();
    let mut got = sent.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want, "exactly the three counted, once each");
}
