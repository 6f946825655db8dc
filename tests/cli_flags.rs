//! Bad values through every kind of flag of the real binary: each is refused before
//! anything is contacted or written, in one line on stderr that names the flag and
//! quotes the value, with exit code 2 and nothing on stdout. The Kafka and MongoDB
//! flags point at the test servers, so a refusal that came only after connecting
//! would show up as another message ("topic not found"); each row is then run again
//! against servers that cannot be reached and must say the same line at once.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use crate::common::{kafka_brokers, mongo_uri, unique};

/// `{K}`: the Kafka brokers, `{M}`: the MongoDB URI, `{T}`: the scratch directory,
/// `{C}`: `tests/configs`. Each row: the arguments, the flag the line must name,
/// the value it must quote.
#[rustfmt::skip]
const ROWS: &[(&[&str], &str, &str)] = &[
    // Durations: timeouts and intervals are above 0; waits are 0 or more; none is
    // negative, text, or past 100 years.
    (&["list", "--kafka", "{K}", "-t", "x", "--connect-timeout", "abc"], "--connect-timeout", "abc"),
    (&["list", "--kafka", "{K}", "-t", "x", "--connect-timeout", "0"], "--connect-timeout", "0"),
    (&["list", "--kafka", "{K}", "-t", "x", "--connect-timeout", "-1s"], "--connect-timeout", "-1s"),
    (&["list", "--kafka", "{K}", "-t", "x", "--connect-timeout", "99999999999d"], "--connect-timeout", "99999999999d"),
    (&["list", "--kafka", "{K}", "-t", "x", "--confirm-after", "soon"], "--confirm-after", "soon"),
    (&["list", "--kafka", "{K}", "-t", "x", "--confirm-after", "-5m"], "--confirm-after", "-5m"),
    (&["replay", "--kafka", "{K}", "-t", "x", "0:1", "--takeover-after", "-10s"], "--takeover-after", "-10s"),
    (&["replay", "--kafka", "{K}", "-t", "x", "0:1", "--takeover-after", "10y"], "--takeover-after", "10y"),
    (&["route", "--kafka", "{K}", "-s", "src", "--exec", "true", "--grace", "forever"], "--grace", "forever"),
    (&["route", "--kafka", "{K}", "-s", "src", "--exec", "true", "--grace", "-1s"], "--grace", "-1s"),
    (&["route", "--kafka", "{K}", "-s", "src", "--exec", "true", "--timeout", "0"], "--timeout", "0"),
    (&["route", "--kafka", "{K}", "-s", "src", "--exec", "true", "--timeout", "NaN"], "--timeout", "NaN"),
    (&["route", "--kafka", "{K}", "-s", "src", "--exec", "true", "--backoff", "x"], "--backoff", "x"),
    (&["route", "--kafka", "{K}", "-s", "src", "--exec", "true", "--max-backoff", "-1s"], "--max-backoff", "-1s"),
    (&["route", "--kafka", "{K}", "-s", "src", "--exec", "true", "--max-age", "0"], "--max-age", "0"),
    (&["route", "--kafka", "{K}", "-s", "src", "--exec", "true", "--retry-topics", "30s,,1m"], "--retry-topics", ""),
    (&["route", "--kafka", "{K}", "-s", "src", "--exec", "true", "--retry-topics", "30s,-1m"], "--retry-topics", "-1m"),
    (&["exporter", "--kafka", "{K}", "--interval", "0"], "--interval", "0"),
    (&["exporter", "--kafka", "{K}", "--interval", "inf"], "--interval", "inf"),
    (&["exporter", "--kafka", "{K}", "--fingerprint-window", "-1s"], "--fingerprint-window", "-1s"),
    // Rates: a finite number of letters per second, not 0, NaN or negative.
    (&["replay", "--kafka", "{K}", "-t", "x", "0:1", "--rate", "-3"], "--rate", "-3"),
    (&["replay", "--kafka", "{K}", "-t", "x", "0:1", "--rate", "0"], "--rate", "0"),
    (&["replay", "--kafka", "{K}", "-t", "x", "0:1", "--rate", "NaN"], "--rate", "NaN"),
    (&["replay", "--kafka", "{K}", "-t", "x", "0:1", "--rate", "inf"], "--rate", "inf"),
    (&["replay", "--kafka", "{K}", "-t", "x", "0:1", "--rate", "fast"], "--rate", "fast"),
    (&["replay", "--kafka", "{K}", "-t", "x", "0:1", "--rate", "1e-9"], "--rate", "1e-9"),
    // Counts and limits.
    (&["list", "--kafka", "{K}", "-t", "x", "-n", "-1"], "--limit", "-1"),
    (&["list", "--kafka", "{K}", "-t", "x", "-n", "0"], "--limit", "0"),
    (&["list", "--kafka", "host:9092:x", "-t", "x"], "--kafka", "host:9092:x"),
    (&["list", "--kafka", "{K}", "-t", "x", "-n", "ten"], "--limit", "ten"),
    (&["route", "--kafka", "{K}", "-s", "src", "--exec", "true", "--concurrency", "0"], "--concurrency", "0"),
    (&["route", "--kafka", "{K}", "-s", "src", "--exec", "true", "--concurrency", "5000"], "--concurrency", "5000"),
    (&["route", "--kafka", "{K}", "-s", "src", "--exec", "true", "--concurrency", "-4"], "--concurrency", "-4"),
    (&["route", "--kafka", "{K}", "-s", "src", "--exec", "true", "--max-attempts", "0"], "--max-attempts", "0"),
    (&["route", "--kafka", "{K}", "-s", "src", "--exec", "true", "--max-attempts", "1.5"], "--max-attempts", "1.5"),
    (&["route", "--kafka", "{K}", "-s", "src", "--exec", "true", "--dlq-attempts", "0"], "--dlq-attempts", "0"),
    // Letter ids (a MongoDB _id is no Kafka id: checked before the DLQ is opened).
    (&["show", "--kafka", "{K}", "-t", "x", "abc"], "ID", "abc"),
    (&["show", "--kafka", "{K}", "-t", "x", "1:"], "ID", "1:"),
    (&["show", "--kafka", "{K}", "-t", "x", ":5"], "ID", ":5"),
    (&["show", "--kafka", "{K}", "-t", "x", "--", "-1:3"], "ID", "-1:3"),
    (&["show", "--kafka", "{K}", "-t", "x", "0:-4"], "ID", "0:-4"),
    (&["show", "--kafka", "{K}", "-t", "x", "99999999999999999999:1"], "ID", "99999999999999999999:1"),
    (&["replay", "--kafka", "{K}", "-t", "x", "0:1", "abc", "--dry-run"], "ID", "abc"),
    (&["resolve", "--kafka", "{K}", "-t", "x", "1:", "--yes"], "ID", "1:"),
    (&["claim", "--mongo", "{M}", "--db", "x", "a b", "--yes"], "ID", "a b"),
    (&["replay", "--kafka", "{K}", "-t", "x", "-1:3"], "unexpected argument", "-1:3"),
    // URIs and addresses.
    (&["list", "--mongo", "notaurl", "--db", "x"], "--mongo", "notaurl"),
    (&["list", "--mongo", "http://db:27017", "--db", "x"], "--mongo", "http://db:27017"),
    (&["list", "--mongo", "mongodb://", "--db", "x"], "--mongo", "mongodb://"),
    (&["route", "--kafka", "{K}", "-s", "src", "--http", "not a url"], "--http", "not a url"),
    (&["route", "--kafka", "{K}", "-s", "src", "--http", "ftp://svc/handle"], "--http", "ftp://svc/handle"),
    (&["route", "--kafka", "{K}", "-s", "src", "--http", "http://:80/handle"], "--http", "http://:80/handle"),
    (&["list", "--kafka", "{K}", "-t", "x", "--schema-registry", "registry:8081"], "--schema-registry", "registry:8081"),
    (&["list", "--kafka", "{K}", "-t", "x", "--schema-registry", "http://:8081"], "--schema-registry", "http://:8081"),
    (&["list", "--kafka", "", "-t", "x"], "--kafka", ""),
    (&["list", "--kafka", "broker:0", "-t", "x"], "--kafka", "broker:0"),
    (&["list", "--kafka", "a,,b", "-t", "x"], "--kafka", "a,,b"),
    (&["route", "--kafka", "{K}", "-s", "src", "--exec", "true", "--metrics", "nope"], "--metrics", "nope"),
    (&["route", "--kafka", "{K}", "-s", "src", "--exec", "true", "--metrics", ":0"], "--metrics", ":0"),
    (&["route", "--kafka", "{K}", "-s", "src", "--exec", "true", "--metrics", "127.0.0.1:99999"], "--metrics", "127.0.0.1:99999"),
    (&["exporter", "--kafka", "{K}", "--listen", "9465"], "--listen", "9465"),
    // Profiles: missing, malformed, empty, in a config file that is not there.
    (&["list", "--config", "{C}/valid/profiles.toml", "--profile", "nope"], "--profile", "nope"),
    (&["list", "--config", "{C}/invalid/bad_values.toml", "--profile", "p"], "--profile", "p"),
    (&["list", "--config", "{C}/invalid/not_toml.toml", "--profile", "p"], "--profile", "p"),
    (&["list", "--config", "{T}/none.toml", "--profile", "p"], "--profile", "p"),
    (&["list", "--kafka", "{K}", "-t", "x", "--profile", ""], "--profile", ""),
    // librdkafka properties: the shape, then librdkafka's own judgement.
    (&["list", "--kafka", "{K}", "-t", "x", "-X", "foo"], "-X", "foo"),
    (&["list", "--kafka", "{K}", "-t", "x", "-X", "=v"], "-X", "=v"),
    (&["list", "--kafka", "{K}", "-t", "x", "-X", "no.such.property=1"], "-X", "no.such.property=1"),
    (&["list", "--kafka", "{K}", "-t", "x", "-X", "socket.timeout.ms=soon"], "-X", "socket.timeout.ms=soon"),
    // Schemas: a directory that is not there, not a directory, or holds a schema that
    // does not read; a mapping to a file of another kind; a CA that is not there.
    (&["list", "--kafka", "{K}", "-t", "x", "--schemas", "{T}/absent"], "--schemas", "{T}/absent"),
    (&["list", "--kafka", "{K}", "-t", "x", "--schemas", "{T}/a-file"], "--schemas", "{T}/a-file"),
    (&["list", "--kafka", "{K}", "-t", "x", "--schemas", "{T}/bad-schemas"], "--schemas", "{T}/bad-schemas"),
    (&["list", "--kafka", "{K}", "-t", "x", "--schema-map", "trades*=Trade.json"], "--schema-map", "trades*=Trade.json"),
    (&["list", "--kafka", "{K}", "-t", "x", "--schema-map", "x={T}/absent.avsc"], "--schema-map", "x={T}/absent.avsc"),
    (&["list", "--kafka", "{K}", "-t", "x", "--schema-registry-ca", "{T}/absent.pem"], "--schema-registry-ca", "{T}/absent.pem"),
    (&["list", "--kafka", "{K}", "-t", "x", "--schema-version", "newest"], "--schema-version", "newest"),
    // Processors.
    (&["route", "--kafka", "{K}", "-s", "src", "--exec", ""], "--exec", ""),
    (&["route", "--kafka", "{K}", "-s", "src", "--pipe", "  "], "--pipe", "  "),
    (&["route", "--kafka", "{K}", "-s", "src", "--http", "http://svc/", "--http-ca", "{T}/absent.pem"], "--http-ca", "{T}/absent.pem"),
    // Positions, output formats, queries.
    (&["list", "--kafka", "{K}", "-t", "x", "--from", "garbage"], "--from", "garbage"),
    (&["list", "--kafka", "{K}", "-t", "x", "-o", "xml"], "--output", "xml"),
    (&["dlqs", "--kafka", "{K}", "-o", "yaml"], "--output", "yaml"),
    (&["list", "--kafka", "{K}", "-t", "x", "--log-format", "xml"], "--log-format", "xml"),
    (&["replay", "--kafka", "{K}", "-t", "x", "-f", "$.n>", "--yes"], "--filter", "$.n>"),
    (&["completions", "tcsh"], "SHELL", "tcsh"),
    // Names: topics, groups, headers, databases, collections, fields, globs.
    (&["replay", "--kafka", "{K}", "-t", "x", "0:1", "--to", "", "--yes"], "--to", ""),
    (&["replay", "--kafka", "{K}", "-t", "x", "0:1", "--to", "orders/DLT", "--yes"], "--to", "orders/DLT"),
    (&["replay", "--kafka", "{K}", "-t", "x", "0:1", "--keep-header", "", "--yes"], "--keep-header", ""),
    (&["list", "--kafka", "{K}", "-t", "bad topic"], "--topic", "bad topic"),
    (&["list", "--kafka", "{K}", "-t", "x", "--group", ""], "--group", ""),
    (&["route", "--kafka", "{K}", "-s", "", "--exec", "true"], "--source", ""),
    (&["route", "--kafka", "{K}", "-s", "src", "-g", " ", "--exec", "true"], "--group", " "),
    (&["route", "--kafka", "{K}", "-s", "src", "--instance-id", "", "--exec", "true"], "--instance-id", ""),
    (&["list", "--mongo", "{M}", "--db", "trading.prod"], "--db", "trading.prod"),
    (&["list", "--mongo", "{M}", "--db", "x", "--collection", ""], "--collection", ""),
    (&["list", "--mongo", "{M}", "--db", "x", "--field", "colour=red"], "--field", "colour=red"),
    (&["list", "--mongo", "{M}", "--db", "x", "--field", "value="], "--field", "value="),
    (&["dlqs", "--kafka", "{K}", "--pattern", ""], "--pattern", ""),
    (&["list", "--kafka", "{K}", "-t", "x", "--audit-log", "{T}"], "--audit-log", "{T}"),
];

/// Servers nobody answers on.
const NO_KAFKA: &str = "127.0.0.1:1";
const NO_MONGO: &str = "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200";

/// The scratch directory: a file, and a schema directory with a schema that does not read.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(unique("cli-flags"));
    std::fs::create_dir_all(dir.join("bad-schemas")).unwrap();
    std::fs::write(dir.join("a-file"), "not a directory\n").unwrap();
    let good = r#"{"type":"record","name":"T","fields":[{"name":"a","type":"int"}]}"#;
    std::fs::write(dir.join("bad-schemas/1.avsc"), good).unwrap();
    std::fs::write(dir.join("bad-schemas/2.avsc"), r#"{"type":"record","#).unwrap();
    dir
}

fn fill(s: &str, k: &str, m: &str, t: &Path) -> String {
    let configs = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/configs");
    s.replace("{K}", k)
        .replace("{M}", m)
        .replace("{T}", &t.display().to_string())
        .replace("{C}", configs)
}

/// Runs morgue with `args`; its audit log and log file go to `t`. The stderr line,
/// after checking exit code 2, one line, empty stdout and no audit log written.
fn refused(args: &[String], t: &Path) -> String {
    let audit = t.join("audit.jsonl");
    let out = crate::common::procs::morgue_cmd()
        .args(args)
        .env("MORGUE_AUDIT_LOG", &audit)
        .env("MORGUE_LOG_FILE", t.join("morgue.log"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "", "{args:?}: stdout");
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    assert!(
        err.starts_with("morgue: ") && err.ends_with('\n'),
        "{args:?}: {err}"
    );
    assert!(!audit.exists(), "{args:?}: the audit log was written");
    err.trim_end().to_string()
}

#[test]
fn every_bad_flag_value_is_one_line_naming_the_flag_and_quoting_the_value_before_any_contact() {
    assert!(ROWS.len() >= 50, "{} rows", ROWS.len());
    let t = scratch();
    let (k, m) = (kafka_brokers(), mongo_uri());
    let mut shown = Vec::new();
    for (args, flag, value) in ROWS {
        let live: Vec<String> = args.iter().map(|a| fill(a, &k, &m, &t)).collect();
        let line = refused(&live, &t);
        let quoted = format!("'{}'", fill(value, &k, &m, &t));
        assert!(line.contains(flag), "{live:?}: {line} does not name {flag}");
        assert!(
            line.contains(&quoted),
            "{live:?}: {line} does not quote {quoted}"
        );
        // The same refusal with nothing to reach: it never needed a server (a check
        // made after contact would say the server is unreachable instead).
        let dead: Vec<String> = args
            .iter()
            .map(|a| fill(a, NO_KAFKA, NO_MONGO, &t))
            .collect();
        let again = refused(&dead, &t);
        assert_eq!(again.replace(NO_KAFKA, &k), line, "{dead:?}");
        shown.push(format!("{args:?} -> {line}"));
    }
    // `--nocapture` shows what each row printed.
    println!("{}", shown.join("\n"));
    let _ = std::fs::remove_dir_all(&t);
}

#[test]
fn a_bad_value_from_the_environment_names_the_flag_it_stands_for() {
    let t = scratch();
    let out = crate::common::procs::morgue_cmd()
        .args(["list", "-t", "x"])
        .env("MORGUE_KAFKA", "broker :9092")
        .env("MORGUE_LOG_FILE", t.join("morgue.log"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("morgue: --kafka: ") && err.contains("'broker :9092'"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&t);
}

#[test]
fn help_and_version_still_print_in_full_with_status_0() {
    for args in [&["--help"][..], &["route", "--help"], &["--version"]] {
        let out = crate::common::procs::morgue_cmd()
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(text.lines().count() > 2, "{args:?}: {text}");
    }
}
