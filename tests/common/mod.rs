//! Shared helpers for integration tests: where the real servers are, and fresh,
//! self-cleaning topics and collections so tests never see each other's data.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;

/// Bootstrap servers of the Kafka-protocol broker under test.
pub fn kafka_brokers() -> String {
    std::env::var("MORGUE_TEST_KAFKA").unwrap_or_else(|_| {
        panic!("MORGUE_TEST_KAFKA is not set: run scripts/test.sh, or eval \"$(scripts/services.sh up)\" first")
    })
}

/// Connection string of the MongoDB-protocol server under test.
pub fn mongo_uri() -> String {
    std::env::var("MORGUE_TEST_MONGO_URI").unwrap_or_else(|_| {
        panic!("MORGUE_TEST_MONGO_URI is not set: run scripts/test.sh, or eval \"$(scripts/services.sh up)\" first")
    })
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
    ClientConfig::new()
        .set("bootstrap.servers", kafka_brokers())
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
        let name = unique(prefix);
        let topic = NewTopic::new(&name, partitions, TopicReplication::Fixed(1));
        let res = admin()
            .create_topics(
                [&topic],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            )
            .await
            .unwrap();
        for r in res {
            r.unwrap();
        }
        TestTopic { name }
    }
}

impl Drop for TestTopic {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop may run inside a runtime: delete from a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let _ = admin().delete_topics(&[&name], &AdminOptions::new()).await;
            });
        })
        .join();
    }
}
