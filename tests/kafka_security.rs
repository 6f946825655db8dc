//! Kafka security from a profile, end to end where the local broker allows it. noida-db
//! 0.2.3 speaks SASL/PLAIN (it takes any user); its SCRAM answers a malformed
//! server-first message and it has no TLS listener, so SCRAM, OAUTHBEARER and TLS are
//! checked as the exact librdkafka properties a profile makes (`src/cli/security.rs`).
#![allow(clippy::unwrap_used)]

use std::process::Command;

use crate::common::*;

#[tokio::test]
async fn a_sasl_plain_profile_authenticates_and_never_prints_its_secret() {
    let dlq = TestTopic::new("sasl-dlq", 1).await;
    let produced = Command::new("kcat")
        .args([
            "-b",
            &kafka_brokers(),
            "-P",
            "-t",
            &dlq.name,
            "-k",
            "6f1c2a9e-3b4d-4e5f-9a8b-000000000001",
        ])
        .arg("-H")
        .arg("kafka_dlt-exception-message=price must be positive")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(b"{\"price\": -1}")?;
            c.wait()
        })
        .unwrap();
    assert!(produced.success());
    let dir = std::env::temp_dir().join(unique("sasl"));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[profiles.secure]\nkafka = \"{}\"\ntopic = \"{}\"\nsasl_mechanism = \"PLAIN\"\n\
             sasl_username = \"oncall\"\npassword_env = \"MORGUE_SASL_PASSWORD\"\n",
            kafka_brokers(),
            dlq.name
        ),
    )
    .unwrap();
    let secret = "pl41n-s3cret-never-shown";
    let log = dir.join("morgue.log");
    let out = crate::common::procs::morgue_cmd()
        .args([
            "list",
            "--config",
            config.to_str().unwrap(),
            "--profile",
            "secure",
        ])
        .args(["-X", "debug=security"])
        .env("MORGUE_SASL_PASSWORD", secret)
        .env("MORGUE_LOG", "debug")
        .env("MORGUE_LOG_FILE", &log)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("6f1c2a9e-3b4d-4e5f-9a8b-000000000001"),
        "{stdout}"
    );
    // librdkafka's own account: SASL was asked for and PLAIN sent.
    assert!(
        stderr.contains("Broker supported SASL mechanisms: PLAIN"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Sending SASL PLAIN (builtin) authentication token"),
        "{stderr}"
    );
    // The log file gets the same account: it is written, holds the SASL exchange.
    let logged = std::fs::read_to_string(&log).expect("the log file is written");
    assert!(logged.contains("SASL PLAIN"), "{logged}");
    for (what, text) in [("stdout", &*stdout), ("stderr", &*stderr), ("log", &logged)] {
        assert!(!text.contains(secret), "the secret is in {what}");
    }
    // `config show` names the variable, not its value.
    let shown = crate::common::procs::morgue_cmd()
        .args(["config", "show", "--config", config.to_str().unwrap()])
        .env("MORGUE_SASL_PASSWORD", secret)
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.contains("password_env = \"MORGUE_SASL_PASSWORD\"") && !shown.contains(secret),
        "{shown}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
