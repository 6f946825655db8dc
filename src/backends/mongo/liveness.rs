//! Is the MongoDB server still answering? While a stream follows a collection, a
//! watchdog pings the server every second (each ping given two seconds): three
//! seconds without an answer report [`SourceEvent::Silent`], the next answer
//! [`SourceEvent::Answering`]. A change stream or a poll that waits on a frozen
//! server (alive, its connections open, answering nothing) says nothing by itself.

use std::time::{Duration, Instant};

use mongodb::Client;
use mongodb::bson::doc;
use tokio::sync::mpsc;

use crate::engine::read::source::SourceEvent;

/// How often the server is pinged.
const PING_EVERY: Duration = Duration::from_secs(1);
/// How long a ping may take.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// Silence that counts as "not answering".
const SILENT_AFTER: Duration = Duration::from_secs(3);

/// The pinging task; it stops when dropped (or when the stream's receiver is gone).
pub struct Watchdog(tokio::task::JoinHandle<()>);

impl Watchdog {
    /// Pings `client`'s server (`server`, for the messages) and reports to `tx`.
    pub fn start(client: Client, server: String, tx: mpsc::Sender<SourceEvent>) -> Watchdog {
        Watchdog(tokio::spawn(async move {
            let admin = client.database("admin");
            let mut heard = (Instant::now(), chrono::Utc::now().timestamp_millis());
            let mut silent = false;
            loop {
                tokio::time::sleep(PING_EVERY).await;
                let ping = admin.run_command(doc! { "ping": 1 });
                if matches!(tokio::time::timeout(PING_TIMEOUT, ping).await, Ok(Ok(_))) {
                    heard = (Instant::now(), chrono::Utc::now().timestamp_millis());
                }
                let quiet = heard.0.elapsed() >= SILENT_AFTER;
                if quiet == silent {
                    continue;
                }
                silent = quiet;
                let server = server.clone();
                let ev = if quiet {
                    SourceEvent::Silent {
                        server,
                        since_ms: heard.1,
                    }
                } else {
                    SourceEvent::Answering { server }
                };
                if tx.send(ev).await.is_err() {
                    return;
                }
            }
        }))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.abort();
    }
}
