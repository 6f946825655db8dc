//! What the router did, for Prometheus (`morgue route --metrics ADDR`): messages by
//! source topic and outcome, attempts and processing-time histograms, messages in
//! flight, lag per partition, DLQ write stalls, the time of the last success, and
//! whether the router is ready (connected and assigned). Recorded with atomics and
//! small maps by the consumer loop; rendered as the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::engine::model::letter::Reason;
use crate::engine::route::router::Routed;

/// Upper bounds of the processing-time buckets, seconds.
const SECONDS: [f64; 10] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0];
/// Upper bounds of the attempts buckets.
const ATTEMPTS: [f64; 5] = [1.0, 2.0, 3.0, 5.0, 10.0];

/// A cumulative histogram.
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    /// Sum in millionths.
    sum_micros: AtomicU64,
    total: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            total: AtomicU64::new(0),
        }
    }

    fn observe(&self, v: f64) {
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            if v <= *b {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros
            .fetch_add((v * 1e6) as u64, Ordering::Relaxed);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        // Writing to a String cannot fail (fmt::Write for String always returns Ok).
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let total = self.total.load(Ordering::Relaxed);
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {total}");
    }
}

/// The router's figures.
#[derive(Debug)]
pub struct RouterMetrics {
    /// (source topic, outcome) → messages.
    outcomes: Mutex<BTreeMap<(String, &'static str), u64>>,
    attempts: Histogram,
    seconds: Histogram,
    in_flight: AtomicU64,
    dlq_stalls: AtomicU64,
    last_success_ms: AtomicI64,
    /// (topic, partition) → messages behind the end, as librdkafka last reported.
    lag: Mutex<BTreeMap<(String, i32), i64>>,
    assigned: AtomicU64,
    brokers_down: AtomicBool,
}

impl Default for RouterMetrics {
    fn default() -> Self {
        RouterMetrics {
            outcomes: Mutex::default(),
            attempts: Histogram::new(&ATTEMPTS),
            seconds: Histogram::new(&SECONDS),
            in_flight: AtomicU64::new(0),
            dlq_stalls: AtomicU64::new(0),
            last_success_ms: AtomicI64::new(0),
            lag: Mutex::default(),
            assigned: AtomicU64::new(0),
            brokers_down: AtomicBool::new(false),
        }
    }
}

/// The outcome label of what became of a message.
fn outcome(r: &Routed) -> &'static str {
    match r {
        Routed::Processed { .. } => "processed",
        Routed::Retrying { .. } => "retried",
        Routed::DeadLettered { reason, .. } => match reason {
            Reason::Expired => "expired",
            Reason::MaxAttemptsExceeded => "dead_lettered_max_attempts",
            _ => "dead_lettered_failed",
        },
        Routed::DlqUnavailable { .. } => "dlq_unavailable",
        Routed::Abandoned => "abandoned",
    }
}

impl RouterMetrics {
    /// Records what became of a message from `topic` that took `took`.
    pub fn record(&self, topic: &str, routed: &Routed, took: Duration, now_ms: i64) {
        if let Ok(mut m) = self.outcomes.lock() {
            *m.entry((topic.to_string(), outcome(routed))).or_insert(0) += 1;
        }
        self.seconds.observe(took.as_secs_f64());
        match routed {
            Routed::Processed { attempts } => {
                self.attempts.observe(f64::from(*attempts));
                self.last_success_ms.store(now_ms, Ordering::Relaxed);
            }
            Routed::DlqUnavailable { .. } => {
                self.dlq_stalls.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    /// Records a failed message of `topic` retried in place (the outcome `retried`, as
    /// a message written to a retry topic is).
    pub fn retried(&self, topic: &str) {
        if let Ok(mut m) = self.outcomes.lock() {
            *m.entry((topic.to_string(), "retried")).or_insert(0) += 1;
        }
    }

    /// Messages in flight now.
    pub fn set_in_flight(&self, n: usize) {
        self.in_flight.store(n as u64, Ordering::Relaxed);
    }

    /// Partitions assigned now.
    pub fn set_assigned(&self, n: usize) {
        self.assigned.store(n as u64, Ordering::Relaxed);
    }

    /// Partitions assigned now, as last set.
    pub fn assigned(&self) -> u64 {
        self.assigned.load(Ordering::Relaxed)
    }

    /// Whether every broker connection is down now.
    pub fn set_brokers_down(&self, down: bool) {
        self.brokers_down.store(down, Ordering::Relaxed);
    }

    /// The lag of each partition, as the client last reported it.
    pub fn set_lag(&self, lag: BTreeMap<(String, i32), i64>) {
        if let Ok(mut m) = self.lag.lock() {
            *m = lag;
        }
    }

    /// Connected and assigned at least one partition.
    pub fn ready(&self) -> bool {
        self.assigned.load(Ordering::Relaxed) > 0 && !self.brokers_down.load(Ordering::Relaxed)
    }

    /// The Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Every `let _ = writeln!` below writes to a String, which cannot fail.
        out.push_str("# HELP morgue_router_messages_total Messages by source topic and outcome (retried counts each retry, in place or through a retry topic; dlq_unavailable counts each refusal of the DLQ; the letter counts again when the DLQ takes it).\n# TYPE morgue_router_messages_total counter\n");
        if let Ok(m) = self.outcomes.lock() {
            for ((topic, outcome), n) in m.iter() {
                let _ = writeln!(
                    out,
                    "morgue_router_messages_total{{topic=\"{}\",outcome=\"{outcome}\"}} {n}",
                    escape(topic)
                );
            }
        }
        self.attempts.render(
            &mut out,
            "morgue_router_attempts",
            "Attempts a processed message took.",
        );
        self.seconds.render(
            &mut out,
            "morgue_router_processing_seconds",
            "Time from a message's first attempt to its outcome.",
        );
        let gauges = [
            (
                "morgue_router_in_flight",
                "Messages in flight.",
                self.in_flight.load(Ordering::Relaxed) as f64,
            ),
            (
                "morgue_router_assigned_partitions",
                "Source partitions assigned to this router.",
                self.assigned.load(Ordering::Relaxed) as f64,
            ),
            (
                "morgue_router_last_success_timestamp_seconds",
                "When a message was last processed (epoch seconds; 0: never).",
                self.last_success_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            ),
            (
                "morgue_router_ready",
                "1 when connected and assigned.",
                f64::from(u8::from(self.ready())),
            ),
        ];
        for (name, help, v) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        let _ = writeln!(
            out,
            "# HELP morgue_router_dlq_stalls_total Times the DLQ refused a dead letter after all attempts.\n# TYPE morgue_router_dlq_stalls_total counter\nmorgue_router_dlq_stalls_total {}",
            self.dlq_stalls.load(Ordering::Relaxed)
        );
        out.push_str("# HELP morgue_router_lag Messages behind the end of each source partition.\n# TYPE morgue_router_lag gauge\n");
        if let Ok(m) = self.lag.lock() {
            for ((t, p), lag) in m.iter() {
                let _ = writeln!(
                    out,
                    "morgue_router_lag{{topic=\"{}\",partition=\"{p}\"}} {lag}",
                    escape(t)
                );
            }
        }
        out
    }
}

/// A label value escaped for the text format.
pub fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_histograms_render_in_the_text_format() {
        let m = RouterMetrics::default();
        let t = Duration::from_millis(3);
        m.record(
            "trades",
            &Routed::Processed { attempts: 2 },
            t,
            1_795_000_000_000,
        );
        m.record(
            "trades",
            &Routed::Processed { attempts: 1 },
            t,
            1_795_000_000_500,
        );
        let dead = Routed::DeadLettered {
            id: crate::engine::LetterId::Kafka {
                partition: 0,
                offset: 1,
            },
            reason: Reason::Failed,
        };
        m.record("tr\"ades", &dead, t, 0);
        m.retried("trades");
        m.set_lag(BTreeMap::from([(("trades".to_string(), 3), 42)]));
        let text = m.render();
        assert!(
            text.contains("morgue_router_messages_total{topic=\"trades\",outcome=\"processed\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("morgue_router_messages_total{topic=\"trades\",outcome=\"retried\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("topic=\"tr\\\"ades\",outcome=\"dead_lettered_failed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("morgue_router_attempts_bucket{le=\"1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("morgue_router_attempts_bucket{le=\"2\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("morgue_router_processing_seconds_count 3"),
            "{text}"
        );
        assert!(
            text.contains("morgue_router_last_success_timestamp_seconds 1795000000.5"),
            "{text}"
        );
        assert!(
            text.contains("morgue_router_lag{topic=\"trades\",partition=\"3\"} 42"),
            "{text}"
        );
        assert!(text.contains("morgue_router_ready 0"), "not assigned yet");
        m.set_assigned(2);
        assert!(m.ready());
        m.set_brokers_down(true);
        assert!(!m.ready());
    }
}
