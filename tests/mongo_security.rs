//! Connecting the way production MongoDB deployments require: SCRAM-SHA-256 users,
//! TLS with a private CA, and a standalone server without change streams (the live
//! tail falls back to polling). Each test starts its own SecantusDB from the project's
//! virtualenv; set MORGUE_TEST_MONGO_AUTH_URI / MORGUE_TEST_MONGO_TLS_URI to use
//! existing servers instead.
#![allow(clippy::unwrap_used)]

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{free_port, unique, venv_bin, wait_for_port};
use mongodb::bson::doc;

/// A SecantusDB process of this test's own, stopped (and waited for) on drop.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    fn start(args: &[&str], storage: &Path) -> Server {
        let port = free_port();
        let child = Command::new(venv_bin("secantusd-py"))
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--storage-path",
            ])
            .arg(storage)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port, "secantusd");
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Inserts a letter whose value is `text` through `uri`, then lists it with morgue.
async fn insert_and_list(uri: &str, text: &str) {
    let c = mongodb::Client::with_uri_str(uri).await.unwrap();
    c.database("dlq")
        .collection("letters")
        .insert_one(doc! { "value": text, "topic": "t" })
        .await
        .unwrap();
    let out = morgue(uri, &["list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains(text));
}

fn morgue(uri: &str, args: &[&str]) -> std::process::Output {
    crate::common::procs::morgue_cmd()
        .args(args)
        .args(["--mongo", uri, "--db", "dlq", "--collection", "letters"])
        .env("MORGUE_AUDIT_LOG", scratch("audit").join("audit.jsonl"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test]
async fn scram_sha_256_users_connect_and_bad_passwords_are_named() {
    let (_server, uri, bad) = match std::env::var("MORGUE_TEST_MONGO_AUTH_URI") {
        Ok(uri) => (None, uri.clone(), uri.replacen(":", ":wrong", 2)),
        Err(_) => {
            let dir = scratch("secantus-auth");
            {
                let open = Server::start(&[], &dir);
                let c = mongodb::Client::with_uri_str(format!(
                    "mongodb://127.0.0.1:{}/?directConnection=true",
                    open.port
                ))
                .await
                .unwrap();
                c.database("admin")
                    .run_command(doc! { "createUser": "ops", "pwd": "s3cret", "roles": [{ "role": "root", "db": "admin" }] })
                    .await
                    .unwrap();
            }
            let s = Server::start(&["--auth"], &dir);
            let base = format!(
                "127.0.0.1:{}/?authSource=admin&authMechanism=SCRAM-SHA-256&directConnection=true",
                s.port
            );
            (
                Some(s),
                format!("mongodb://ops:s3cret@{base}"),
                format!("mongodb://ops:wrong@{base}"),
            )
        }
    };
    insert_and_list(&uri, "secret letter").await;

    // A profile with the user in the URI and the password in a file (as mounted
    // secrets are): it connects, and the password is never printed.
    if _server.is_some() {
        let dir = scratch("secret-profile");
        std::fs::write(dir.join("pw"), "s3cret\n").unwrap();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "[profiles.p]\nmongo = \"{}\"\ndb = \"dlq\"\ncollection = \"letters\"\npassword_file = \"{}\"\n",
                uri.replacen(":s3cret@", "@", 1),
                dir.join("pw").display()
            ),
        )
        .unwrap();
        let run = |extra: &[(&str, &str)]| {
            crate::common::procs::morgue_cmd()
                .args([
                    "--config",
                    config.to_str().unwrap(),
                    "--profile",
                    "p",
                    "list",
                ])
                .envs(extra.iter().copied())
                .env("MORGUE_AUDIT_LOG", dir.join("audit.jsonl"))
                .stdin(Stdio::null())
                .output()
                .unwrap()
        };
        let out = run(&[]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("secret letter"));
        let shown = crate::common::procs::morgue_cmd()
            .args(["--config", config.to_str().unwrap(), "config", "show"])
            .output()
            .unwrap();
        assert!(!String::from_utf8_lossy(&shown.stdout).contains("s3cret"));
        // A password_env that is not set: one line naming the variable.
        std::fs::write(
            &config,
            format!(
                "[profiles.p]\nmongo = \"{}\"\ndb = \"dlq\"\npassword_env = \"MORGUE_TEST_NO_SUCH_PW\"\n",
                uri.replacen(":s3cret@", "@", 1)
            ),
        )
        .unwrap();
        let out = run(&[]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("password_env 'MORGUE_TEST_NO_SUCH_PW' is not set"),
            "{err}"
        );
    }

    let out = morgue(&bad, &["list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("morgue: cannot reach MongoDB at 'mongodb://ops:***@127.0.0.1"),
        "{err}"
    );
    assert!(!err.contains("wrong") && !err.contains("s3cret"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// A private CA and a server certificate for 127.0.0.1 signed by it, with openssl.
fn make_certs(dir: &Path) {
    let run = |args: &[&str]| {
        let ok = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "openssl {args:?} failed");
    };
    let ca =
        "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign";
    let mut args = vec![
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
    ];
    args.extend([
        "-subj",
        "/CN=morgue test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    args.extend(ca.split(' '));
    run(&args);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
    ]
    .into_iter()
    .chain(["-keyout", "key.pem", "-out", "server.csr"])
    .collect::<Vec<_>>());
    let ext = "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n";
    std::fs::write(dir.join("ext.cnf"), ext).unwrap();
    let mut sign = vec![
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
    ];
    sign.extend([
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    run(&sign);
}

#[tokio::test]
async fn tls_with_a_private_ca() {
    let (_server, uri) = match std::env::var("MORGUE_TEST_MONGO_TLS_URI") {
        Ok(uri) => (None, uri),
        Err(_) => {
            let dir = scratch("secantus-tls");
            let (ca, cert, key) = (
                dir.join("ca.pem"),
                dir.join("cert.pem"),
                dir.join("key.pem"),
            );
            make_certs(&dir);
            let s = Server::start(
                &[
                    "--tls-cert-file",
                    cert.to_str().unwrap(),
                    "--tls-key-file",
                    key.to_str().unwrap(),
                ],
                &dir.join("data"),
            );
            let uri = format!(
                "mongodb://127.0.0.1:{}/?tls=true&tlsCAFile={}&directConnection=true",
                s.port,
                ca.display()
            );
            (Some(s), uri)
        }
    };
    insert_and_list(&uri, "over tls").await;
}

#[tokio::test]
async fn without_change_streams_the_tail_polls_and_says_so() {
    let s = Server::start(&["--standalone"], Path::new(":memory:"));
    let uri = format!("mongodb://127.0.0.1:{}/?directConnection=true", s.port);
    let c = mongodb::Client::with_uri_str(&uri).await.unwrap();
    // Followed from the end while empty; a collection that is not there is an error.
    c.database("dlq")
        .create_collection("letters")
        .await
        .unwrap();
    let mut child = crate::common::procs::morgue_cmd()
        .args([
            "list",
            "--follow",
            "--from",
            "end",
            "--mongo",
            &uri,
            "--db",
            "dlq",
            "--collection",
            "letters",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        std::io::BufReader::new(stdout)
            .lines()
            .take(3)
            .map(Result::unwrap)
            .inspect(|l| {
                let _ = tx.send(l.clone());
            })
            .collect::<Vec<_>>()
    });
    // Polling has begun once it says so.
    let tap = crate::common::Tap::stderr(&mut child);
    tap.wait_for("live: polling every 1s", 60);
    let coll = c.database("dlq").collection("letters");
    coll.insert_one(doc! { "value": "polled", "topic": "t" })
        .await
        .unwrap();
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the polled letter is listed");
    assert!(first.contains("polled"), "{first}");
    // A writer whose clock is two minutes behind, and a writer with its own string ids:
    // neither sorts after what the tail has seen, and neither is missed.
    let ago = (chrono::Utc::now().timestamp() - 120) as u32;
    let mut bytes = [7u8; 12];
    bytes[..4].copy_from_slice(&ago.to_be_bytes());
    let lagging = mongodb::bson::oid::ObjectId::from_bytes(bytes);
    coll.insert_one(doc! { "_id": lagging, "value": "lagging clock", "topic": "t" })
        .await
        .unwrap();
    coll.insert_one(doc! { "_id": "aaa-own-id", "value": "string id", "topic": "t" })
        .await
        .unwrap();
    let lines = reader.join().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let text = lines.join("\n");
    for v in ["polled", "lagging clock", "string id"] {
        assert!(text.contains(v), "'{v}' was missed: {text}");
    }
}
