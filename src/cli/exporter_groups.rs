//! The exporter's failure fingerprints: one reader per DLQ follows it from the start of
//! `--fingerprint-window` and keeps, per letter, only its time and fingerprint (see
//! `engine::read::groups`), so that each letter is read once and a scrape costs
//! nothing. A reader that fails is started again at the next refresh, its window empty
//! (it reads the window again, so nothing is counted twice).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::backends::kafka::source::KafkaSource;
use crate::backends::mongo::dlq::MongoDlq;
use crate::backends::open::Clusters;
use crate::engine::read::groups::{FingerprintGroup, FingerprintWindow};
use crate::engine::read::overview::DlqSummary;
use crate::engine::read::source::{AHEAD, DeadLetterSource, SourceEvent, StartAt};
use crate::engine::route::metrics::escape;

/// Largest groups exported per DLQ.
pub const TOP: usize = 10;

/// How recent a fingerprint's first letter must be to count as new.
pub const NEW_MS: i64 = 3_600_000;

/// One DLQ's reader and what it counted.
struct Follower {
    window: Arc<Mutex<FingerprintWindow>>,
    task: JoinHandle<()>,
}

/// The readers of every DLQ the overview found, by kind and name.
pub struct Fingerprints {
    window_ms: i64,
    followers: HashMap<(&'static str, String), Follower>,
}

impl Fingerprints {
    /// No reader yet; each DLQ's window covers `window_ms`.
    pub fn new(window_ms: i64) -> Self {
        Fingerprints {
            window_ms,
            followers: HashMap::new(),
        }
    }

    /// Starts a reader for each DLQ in `dlqs` without a running one, and drops the
    /// readers of DLQs that are gone.
    pub fn follow(&mut self, clusters: &Clusters, dlqs: &[DlqSummary]) {
        self.followers.retain(|(kind, name), f| {
            let kept = dlqs.iter().any(|d| d.kind == *kind && &d.name == name);
            if !kept {
                f.task.abort();
            }
            kept
        });
        for d in dlqs {
            let key = (d.kind, d.name.clone());
            if self
                .followers
                .get(&key)
                .is_some_and(|f| !f.task.is_finished())
            {
                continue;
            }
            let window = Arc::new(Mutex::new(FingerprintWindow::new(self.window_ms)));
            let task = tokio::spawn(read(clusters.clone(), key.clone(), window.clone()));
            self.followers.insert(key, Follower { window, task });
        }
    }

    /// The gauges of every window at `now_ms`: the [`TOP`] largest groups and the
    /// fingerprints first seen within [`NEW_MS`], with their counts and first times.
    pub fn render(&self, now_ms: i64) -> String {
        let mut counted = String::new();
        let (mut letters, mut first, mut new) = (String::new(), String::new(), String::new());
        let mut keys: Vec<_> = self.followers.keys().collect();
        keys.sort();
        for key in keys {
            let Some(Ok(mut w)) = self.followers.get(key).map(|f| f.window.lock()) else {
                continue;
            };
            w.expire(now_ms);
            let dlq = format!("dlq=\"{}\",kind=\"{}\"", escape(&key.1), key.0);
            // These writes go to Strings, which cannot fail.
            let _ = writeln!(
                counted,
                "morgue_dlq_fingerprint_window_letters{{{dlq}}} {}",
                w.len()
            );
            let groups = w.groups();
            let fresh = |g: &&FingerprintGroup| g.first_ms > now_ms - NEW_MS;
            let _ = writeln!(
                new,
                "morgue_dlq_fingerprints_new_last_hour{{{dlq}}} {}",
                groups.iter().filter(fresh).count()
            );
            let shown = groups
                .iter()
                .take(TOP)
                .chain(groups.iter().skip(TOP).filter(fresh).take(TOP));
            for g in shown {
                let labels = format!(
                    "{dlq},fingerprint=\"{}\",error=\"{}\"",
                    g.fingerprint,
                    escape(&g.label)
                );
                let _ = writeln!(
                    letters,
                    "morgue_dlq_fingerprint_letters{{{labels}}} {}",
                    g.count
                );
                let _ = writeln!(
                    first,
                    "morgue_dlq_fingerprint_first_seen_timestamp_seconds{{{labels}}} {}",
                    g.first_ms as f64 / 1000.0
                );
            }
        }
        let family = |name: &str, help: &str, body: &str| {
            format!("# HELP {name} {help}\n# TYPE {name} gauge\n{body}")
        };
        [
            family(
                "morgue_dlq_fingerprint_window_letters",
                "Letters counted in the fingerprint window (--fingerprint-window).",
                &counted,
            ),
            family(
                "morgue_dlq_fingerprint_letters",
                "Letters per failure fingerprint in the window: the 10 largest groups and every new one.",
                &letters,
            ),
            family(
                "morgue_dlq_fingerprint_first_seen_timestamp_seconds",
                "DLQ time of the fingerprint's oldest letter in the window (epoch seconds).",
                &first,
            ),
            family(
                "morgue_dlq_fingerprints_new_last_hour",
                "Fingerprints whose oldest letter in the window arrived in the last hour.",
                &new,
            ),
        ]
        .concat()
    }
}

/// Follows one DLQ into `window` until its stream fails or ends.
async fn read(
    clusters: Clusters,
    (kind, name): (&'static str, String),
    window: Arc<Mutex<FingerprintWindow>>,
) {
    let source: Arc<dyn DeadLetterSource> = match (kind, &clusters.kafka, &clusters.mongo) {
        ("kafka", Some(cfg), _) => Arc::new(KafkaSource::new(cfg.clone(), &name)),
        ("mongo", _, Some((cfg, map))) => {
            let mut cfg = cfg.clone();
            cfg.collection = name.clone();
            match MongoDlq::open(cfg, map.clone()).await {
                Ok(m) => Arc::new(m),
                Err(e) => {
                    tracing::warn!("fingerprints of '{name}': {e}");
                    return;
                }
            }
        }
        _ => return,
    };
    let now = chrono::Utc::now().timestamp_millis();
    let from = StartAt::Time(window.lock().map(|w| w.start_ms(now)).unwrap_or(now));
    let (tx, mut rx) = mpsc::channel(AHEAD);
    let stream = tokio::spawn(async move { source.stream(from, true, tx).await });
    while let Some(event) = rx.recv().await {
        let SourceEvent::Letters(batch) = event else {
            continue;
        };
        let now = chrono::Utc::now().timestamp_millis();
        let Ok(mut w) = window.lock() else {
            return;
        };
        for l in &batch {
            w.add(l, now);
        }
    }
    match stream.await {
        Ok(Err(e)) => tracing::warn!(
            "fingerprints of '{name}' stopped: {e}; reading again at the next refresh"
        ),
        Err(e) => tracing::warn!("fingerprints of '{name}' stopped: {e}"),
        Ok(Ok(())) => {}
    }
}
