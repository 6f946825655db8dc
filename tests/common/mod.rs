//! Shared helpers for integration tests: where the real servers are, and fresh,
//! self-cleaning topics and collections so tests never see each other's data.
#![allow(dead_code, clippy::unwrap_used)]

pub mod procs;
pub mod race;
pub mod server;
pub mod tmux;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

/// Bootstrap servers of the Kafka-protocol broker under test.
pub fn kafka_brokers() -> String {
    server_var("MORGUE_TEST_KAFKA")
}

/// Connection string of the MongoDB-protocol server under test.
pub fn mongo_uri() -> String {
    server_var("MORGUE_TEST_MONGO_URI")
}

/// `name` from the environment (a cluster given by the user) or, when it is not set,
/// from `scripts/services.sh up`, run once per test binary: a plain `cargo test` starts
/// the servers it needs (they stay up for the next run; `scripts/services.sh down`
/// stops them). When that fails the run ends with one line saying how to go on.
fn server_var(name: &str) -> String {
    static STARTED: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();
    if let Ok(v) = std::env::var(name) {
        return v;
    }
    let vars = STARTED.get_or_init(|| {
        let root = env!("CARGO_MANIFEST_DIR");
        let out = std::process::Command::new(format!("{root}/scripts/services.sh"))
            .arg("up")
            .stderr(std::process::Stdio::inherit())
            .output();
        match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
                .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
                .collect(),
            _ => {
                eprintln!(
                    "morgue tests: the test servers could not be started; run scripts/test.sh \
                     (installs and starts them), or set MORGUE_TEST_KAFKA and MORGUE_TEST_MONGO_URI"
                );
                std::process::exit(2);
            }
        }
    });
    match vars.iter().find(|(k, _)| k == name) {
        Some((_, v)) => v.clone(),
        None => {
            eprintln!(
                "morgue tests: scripts/services.sh up did not say {name}; run scripts/test.sh"
            );
            std::process::exit(2);
        }
    }
}

/// A name no other test (in this or another run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

fn admin() -> AdminClient<DefaultClientContext> {
    admin_on(&kafka_brokers())
}

fn admin_on(brokers: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap()
}

/// A topic created for one test and deleted when dropped.
pub struct TestTopic {
    /// The topic's name.
    pub name: String,
}

impl TestTopic {
    /// Creates a fresh topic with `partitions` partitions and waits until it is usable.
    pub async fn new(prefix: &str, partitions: i32) -> TestTopic {
        Self::with_config(prefix, partitions, &[]).await
    }

    /// Creates a fresh topic with topic-level `config` entries.
    pub async fn with_config(prefix: &str, partitions: i32, config: &[(&str, &str)]) -> TestTopic {
        Self::named(unique(prefix), partitions, config).await
    }

    /// Creates the topic `name` exactly (the caller makes it unique).
    pub async fn named(name: String, partitions: i32, config: &[(&str, &str)]) -> TestTopic {
        Self::named_on(&kafka_brokers(), name, partitions, config).await
    }

    /// Creates the topic `name` exactly on `brokers` (a test's own broker).
    pub async fn named_on(
        brokers: &str,
        name: String,
        partitions: i32,
        config: &[(&str, &str)],
    ) -> TestTopic {
        let mut topic = NewTopic::new(&name, partitions, TopicReplication::Fixed(1));
        for (k, v) in config {
            topic = topic.set(k, v);
        }
        let res = admin_on(brokers)
            .create_topics(
                [&topic],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await
            .unwrap();
        for r in res {
            r.unwrap();
        }
        wait_until_ready(brokers, &name, partitions);
        TestTopic { name }
    }
}

/// Waits until the metadata shows every partition of a new topic with a leader: a
/// topic is not usable everywhere the moment its creation is acknowledged.
fn wait_until_ready(brokers: &str, topic: &str, partitions: i32) {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let ready = c
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()
            .and_then(|md| {
                md.topics().iter().find(|t| t.name() == topic).map(|t| {
                    t.error().is_none()
                        && t.partitions().len() == partitions as usize
                        && t.partitions()
                            .iter()
                            .all(|p| p.leader() >= 0 && p.error().is_none())
                })
            })
            .unwrap_or(false);
        if ready {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "topic '{topic}' never became ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Sets a topic-level config entry (e.g. `max.message.bytes`).
pub async fn alter_topic(topic: &str, key: &str, value: &str) {
    use rdkafka::admin::{AlterConfig, ResourceSpecifier};
    let res = admin()
        .alter_configs(
            [&AlterConfig::new(ResourceSpecifier::Topic(topic)).set(key, value)],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    for r in res {
        r.unwrap();
    }
}

impl Drop for TestTopic {
    fn drop(&mut self) {
        let name = self.name.clone();
        cleanup(move || async move {
            let _ = admin().delete_topics(&[&name], &AdminOptions::new()).await;
        });
    }
}

/// Produces one record and waits for the ack; `ts_ms` sets the record timestamp.
pub async fn produce(
    topic: &str,
    key: Option<&[u8]>,
    value: &[u8],
    headers: &[(&str, &[u8])],
    ts_ms: Option<i64>,
) -> (i32, i64) {
    use rdkafka::message::{Header, OwnedHeaders};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    static PRODUCER: std::sync::OnceLock<FutureProducer> = std::sync::OnceLock::new();
    let p = PRODUCER.get_or_init(|| {
        ClientConfig::new()
            .set("bootstrap.servers", kafka_brokers())
            .set("linger.ms", "0")
            .create()
            .unwrap()
    });
    let mut hs = OwnedHeaders::new();
    for (k, v) in headers {
        hs = hs.insert(Header {
            key: k,
            value: Some(*v),
        });
    }
    let mut r: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).payload(value).headers(hs);
    if let Some(k) = key {
        r = r.key(k);
    }
    if let Some(ts) = ts_ms {
        r = r.timestamp(ts);
    }
    let d = p.send(r, Duration::from_secs(10)).await.unwrap();
    (d.partition, d.offset)
}

/// Writes a record with `key` and a null value (a tombstone) to `topic`.
pub async fn produce_tombstone(topic: &str, key: &[u8]) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .create()
        .unwrap();
    let r: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).key(key);
    p.send(r, Duration::from_secs(10)).await.unwrap();
}

/// Offsets committed by `group` for each partition of `topic` (-1 when none).
pub fn committed(group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).unwrap().offset() {
            Offset::Offset(o) => o,
            _ => -1,
        })
        .collect()
}

/// High watermark of each partition of `topic`.
pub fn high_watermarks(topic: &str, partitions: i32) -> Vec<i64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
        .create()
        .unwrap();
    (0..partitions)
        .map(|p| {
            c.fetch_watermarks(topic, p, Duration::from_secs(10))
                .unwrap()
                .1
        })
        .collect()
}

/// Reads every letter in `topic` now, through morgue's own reader.
pub async fn read_all(topic: &str) -> Vec<morgue::engine::DeadLetter> {
    read_all_on(&kafka_brokers(), topic).await
}

/// Reads every letter in `topic` on `brokers` now (committed messages only).
pub async fn read_all_on(brokers: &str, topic: &str) -> Vec<morgue::engine::DeadLetter> {
    let cfg = morgue::backends::kafka::KafkaConfig::new(brokers);
    let t = topic.to_string();
    tokio::task::spawn_blocking(move || {
        let mut v = Vec::new();
        cfg.read_to_end(&t, |l| v.push(l)).unwrap();
        v
    })
    .await
    .unwrap()
}

/// Polls `topic` until it holds at least `n` letters or `secs` pass; returns what it holds.
pub async fn wait_for_letters(topic: &str, n: usize, secs: u64) -> Vec<morgue::engine::DeadLetter> {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let v = read_all(topic).await;
        if v.len() >= n || std::time::Instant::now() > deadline {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Sends SIGTERM to a child process.
pub fn sigterm(child: &std::process::Child) {
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -TERM failed");
}

/// A collection created for one test and dropped when dropped.
pub struct TestCollection {
    /// Database name.
    pub db: String,
    /// Collection name.
    pub name: String,
}

impl TestCollection {
    /// A fresh, uniquely named collection in database `morgue_test`.
    pub fn new(prefix: &str) -> TestCollection {
        TestCollection {
            db: "morgue_test".into(),
            name: unique(prefix).replace('-', "_"),
        }
    }

    /// The driver's handle on it.
    pub async fn handle(&self) -> mongodb::Collection<mongodb::bson::Document> {
        let client = mongodb::Client::with_uri_str(mongo_uri()).await.unwrap();
        client.database(&self.db).collection(&self.name)
    }

    /// `--mongo URI --db DB --collection NAME`.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--mongo".into(),
            mongo_uri(),
            "--db".into(),
            self.db.clone(),
            "--collection".into(),
            self.name.clone(),
        ]
    }
}

impl Drop for TestCollection {
    fn drop(&mut self) {
        let (db, name) = (self.db.clone(), self.name.clone());
        cleanup(move || async move {
            if let Ok(c) = mongodb::Client::with_uri_str(mongo_uri()).await {
                let _ = c
                    .database(&db)
                    .collection::<mongodb::bson::Document>(&name)
                    .drop()
                    .await;
            }
        });
    }
}

/// Runs a Python script with the project's test virtualenv (pymongo, confluent-kafka).
pub fn python(script: &str, args: &[&str]) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new(format!("{root}/scripts/services.sh"))
        .arg("python")
        .arg(format!("{root}/{script}"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A child process that is killed if a test fails before stopping it.
pub struct Spawned(Option<std::process::Child>);

impl Spawned {
    /// Guards `child`.
    pub fn new(child: std::process::Child) -> Self {
        Spawned(Some(child))
    }

    /// The child, no longer guarded (the caller stops it).
    pub fn take(mut self) -> std::process::Child {
        self.0.take().unwrap()
    }
}

impl std::ops::Deref for Spawned {
    type Target = std::process::Child;

    fn deref(&self) -> &std::process::Child {
        self.0.as_ref().unwrap()
    }
}

impl std::ops::DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        self.0.as_mut().unwrap()
    }
}

/// A child's stderr, read on a thread as it is written: a test waits for a line and
/// keeps the whole.
pub struct Tap(std::sync::Arc<std::sync::Mutex<String>>);

impl Tap {
    /// Takes `child`'s piped stderr.
    pub fn stderr(child: &mut std::process::Child) -> Tap {
        use std::io::BufRead as _;
        let err = child.stderr.take().expect("stderr is piped");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let s = seen.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let mut all = s.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        Tap(seen)
    }

    /// Waits until a line holds `text` (failing after `secs`).
    pub fn wait_for(&self, text: &str, secs: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        while !self.text().contains(text) {
            assert!(
                std::time::Instant::now() < deadline,
                "'{text}' never came on stderr within {secs} s:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Everything read so far.
    pub fn text(&self) -> String {
        self.0.lock().unwrap().clone()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Path of a program installed in the project's test virtualenv (installed on first use).
pub fn venv_bin(program: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = std::process::Command::new(format!("{root}/scripts/services.sh"))
        .args(["python", "-c", "import sys; print(sys.prefix)"])
        .output()
        .unwrap();
    let prefix = String::from_utf8(out.stdout).unwrap().trim().to_string();
    format!("{prefix}/bin/{program}")
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    // Never the same port twice in this process: the tests share one process, and a
    // server a test stopped must find its port free when it starts again.
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// Waits until something accepts connections on loopback `port`.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Polls `done` every 200 ms until it is true; fails the test, saying `what` it waited
/// for, when `secs` pass first.
pub async fn wait_until(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "waited {secs} s for {what}, in vain"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `group` has committed everything in `topic`: each partition's commit
/// just past its last record (a transaction's commit marker after it is never
/// consumed, so the high watermark is not the mark), none where there is no record.
pub async fn wait_committed(group: &str, topic: &str, partitions: i32) {
    let mut ends = vec![-1i64; usize::try_from(partitions).unwrap()];
    for l in read_all(topic).await {
        if let Some(morgue::engine::LetterId::Kafka { partition, offset }) = l.id {
            let end = &mut ends[usize::try_from(partition).unwrap()];
            *end = (*end).max(offset + 1);
        }
    }
    wait_until(
        &format!("group '{group}' to commit all of '{topic}' (up to {ends:?})"),
        60,
        || committed(group, topic, partitions) == ends,
    )
    .await;
}

/// Runs async cleanup from `Drop`, which may itself run inside a runtime.
fn cleanup<F: std::future::Future<Output = ()>>(make: impl FnOnce() -> F + Send + 'static) {
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(make());
    })
    .join();
}
