//! A broker that goes away, on a private noida-db started by this test: commands say
//! so in one line and stop, and the router still shuts down on SIGTERM instead of
//! hanging on its last commit.
#![allow(clippy::unwrap_used)]

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Spawned, free_port, sigterm, unique, venv_bin, wait_for_port};

/// A noida-db of this test's own, killed on drop.
struct Broker {
    child: Child,
    addr: String,
}

impl Broker {
    fn start() -> Broker {
        let port = free_port();
        let dir = std::env::temp_dir().join(unique("noida-outage"));
        std::fs::create_dir_all(&dir).unwrap();
        let child = Command::new(venv_bin("noida-db"))
            .args([
                "start",
                "--only",
                "kafka",
                "--kafka-port",
                &port.to_string(),
                "--host",
                "127.0.0.1",
                "--data-dir",
            ])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        wait_for_port(port, "noida-db");
        Broker {
            child,
            addr: format!("127.0.0.1:{port}"),
        }
    }

    /// Kills the wrapper and the server it started (its own process group).
    fn kill(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-9", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
        let port: u16 = self.addr.rsplit(':').next().unwrap().parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            assert!(
                Instant::now() < deadline,
                "the broker on port {port} would not stop"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

fn morgue(args: &[&str]) -> std::process::Output {
    crate::common::procs::morgue_cmd()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

async fn create(addr: &str, topics: &[&str]) {
    use rdkafka::ClientConfig;
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .unwrap();
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|t| NewTopic::new(t, 1, TopicReplication::Fixed(1)))
        .collect();
    for r in admin
        .create_topics(&new, &AdminOptions::new())
        .await
        .unwrap()
    {
        r.unwrap();
    }
}

#[tokio::test]
async fn a_broker_that_goes_away_is_reported_and_the_router_still_stops() {
    let mut broker = Broker::start();
    let (src, dlq) = ("outage-src", "outage-dlq");
    create(&broker.addr, &[src, dlq]).await;
    let router = Spawned::new(
        crate::common::procs::morgue_cmd()
            .args([
                "route",
                "--kafka",
                &broker.addr,
                "--topic",
                dlq,
                "--source",
                src,
                "--group",
                "outage",
                "--exec",
                r#"[ "$(cat)" = poison ] && exit 65; true"#,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // One dead letter first: after the broker goes, the router looks for it in the DLQ
    // (and cannot), which must not hold its shutdown either.
    {
        use rdkafka::ClientConfig;
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let p: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &broker.addr)
            .create()
            .unwrap();
        p.send(
            FutureRecord::to(src).key("k").payload("poison"),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    }
    let cfg = morgue::backends::kafka::KafkaConfig::new(broker.addr.clone());
    let deadline = Instant::now() + Duration::from_secs(60);
    while cfg.read_to_end(dlq, |_| {}).unwrap_or(0) == 0 {
        assert!(
            Instant::now() < deadline,
            "the poison message was not dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Gone: kill() returns once its port refuses connections.
    broker.kill();

    let router = router.take();
    let stopped = Instant::now();
    sigterm(&router);
    let pid = router.id();
    let out = match tokio::time::timeout(
        Duration::from_secs(90),
        tokio::task::spawn_blocking(move || router.wait_with_output()),
    )
    .await
    {
        Ok(done) => done.unwrap().unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            panic!("the router did not stop within 90 s of SIGTERM with the broker gone");
        }
    };
    let waited = stopped.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["processed"], 0);
    assert_eq!(stats["failed"], 1);
    // A figure, not a check: the 90 s bound above is what fails a hang.
    println!(
        "router stopped {} ms after SIGTERM with the broker gone",
        waited.as_millis()
    );

    // Reading from the dead broker: one line that names it, exit 1.
    let out = morgue(&["list", "--kafka", &broker.addr, "--topic", dlq]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("morgue: cannot reach Kafka at '{}'", broker.addr)),
        "{err}"
    );
}
