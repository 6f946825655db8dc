//! `morgue exporter`: the overview's figures for every DLQ as Prometheus gauges, for
//! alerting. Every `--interval` it computes what `morgue dlqs` prints (the cluster's
//! metadata, offsets, topic configs and the ledgers' states; no payload is read) and
//! serves the last result on `/metrics`, with `/healthz` and `/readyz` (ready once a
//! refresh succeeded). A refresh that fails keeps the last figures and sets
//! `morgue_exporter_up 0`. Failure fingerprints need the letters' error headers: they
//! come from one reader per DLQ that follows it (see `exporter_groups`).

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;

use super::BackendArgs;
use super::exporter_groups::Fingerprints;
use super::serve::{Answer, PROMETHEUS, bind, not_found, serve};
use crate::engine::read::overview::DlqSummary;
use crate::engine::route::metrics::escape;

/// Options of `morgue exporter`.
#[derive(Debug, Args)]
pub struct ExporterArgs {
    /// Where to serve `/metrics`, `/healthz` and `/readyz` (`:9465` for every interface).
    #[arg(long, default_value = "127.0.0.1:9465", value_name = "ADDR", value_parser = super::values::listen)]
    pub listen: String,
    /// How often the figures are computed again.
    #[arg(long, default_value = "30s", value_parser = super::values::timeout)]
    pub interval: Duration,
    /// Failure fingerprints count the letters that arrived in this window (each DLQ is
    /// followed from its start; `0` turns fingerprints off).
    #[arg(long, default_value = "24h", value_parser = super::values::wait)]
    pub fingerprint_window: Duration,
}

/// The last refresh: the text served, whether it succeeded, when.
#[derive(Default)]
struct Last {
    dlqs: String,
    up: bool,
    refreshed_ms: i64,
    took: Duration,
    error: Option<String>,
}

/// Serves the DLQs' gauges until the process is stopped.
pub async fn run(backend: &BackendArgs, args: &ExporterArgs) -> anyhow::Result<()> {
    let clusters = backend.clusters()?;
    let listener = bind(&args.listen).await?;
    let last = Arc::new(Mutex::new(Last::default()));
    let served = last.clone();
    tokio::spawn(serve(listener, move |path| {
        let last = served.clone();
        async move { answer(&last, &path) }
    }));
    super::say(format!(
        "exporting the DLQs of {} on http://{}/metrics every {:?}",
        clusters.label(),
        args.listen,
        args.interval
    ));
    let window_ms = i64::try_from(args.fingerprint_window.as_millis()).unwrap_or(i64::MAX);
    let mut fingerprints = (window_ms > 0).then(|| Fingerprints::new(window_ms));
    let mut tick = tokio::time::interval(args.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let start = Instant::now();
        let result = clusters.overview().await;
        let now = chrono::Utc::now().timestamp_millis();
        let text = result.map(|dlqs| {
            let mut text = render(&dlqs, now);
            if let Some(f) = fingerprints.as_mut() {
                f.follow(&clusters, &dlqs);
                text.push_str(&f.render(now));
            }
            text
        });
        let mut l = last
            .lock()
            .map_err(|_| anyhow::anyhow!("exporter state poisoned"))?;
        l.took = start.elapsed();
        match text {
            Ok(text) => {
                l.dlqs = text;
                (l.up, l.refreshed_ms, l.error) = (true, now, None);
            }
            Err(e) => {
                let e = e.to_string();
                tracing::warn!("refreshing the DLQs' figures failed: {e}");
                (l.up, l.error) = (false, Some(e));
            }
        }
    }
}

fn answer(last: &Mutex<Last>, path: &str) -> Answer {
    let Ok(l) = last.lock() else {
        return (503, "text/plain", "exporter state poisoned\n".into());
    };
    match path {
        "/metrics" => {
            let mut out = l.dlqs.clone();
            let gauges = [
                (
                    "morgue_exporter_up",
                    "1 when the last refresh succeeded.",
                    f64::from(u8::from(l.up)),
                ),
                (
                    "morgue_exporter_last_refresh_timestamp_seconds",
                    "When the figures were last computed (epoch seconds; 0: never).",
                    l.refreshed_ms as f64 / 1000.0,
                ),
                (
                    "morgue_exporter_refresh_seconds",
                    "How long the last refresh took.",
                    l.took.as_secs_f64(),
                ),
            ];
            for (name, help, v) in gauges {
                // Writing to a String cannot fail.
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
            }
            (200, PROMETHEUS, out)
        }
        "/healthz" => (200, "text/plain", "ok\n".into()),
        "/readyz" if l.refreshed_ms > 0 => (200, "text/plain", "ready\n".into()),
        "/readyz" => (
            503,
            "text/plain",
            format!(
                "not ready: no refresh has succeeded yet{}\n",
                l.error
                    .as_ref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ),
        ),
        other => not_found(other),
    }
}

/// The gauges of `dlqs` at `now_ms`.
pub fn render(dlqs: &[DlqSummary], now_ms: i64) -> String {
    type Figure = fn(&DlqSummary, i64) -> Option<f64>;
    let families: [(&str, &str, Figure); 6] = [
        (
            "morgue_dlq_letters",
            "Letters in the DLQ (for Kafka the offset span, an upper bound unless exact).",
            |d, _| Some(d.letters as f64),
        ),
        (
            "morgue_dlq_letters_exact",
            "1 when morgue_dlq_letters is a count, 0 when it is an offset span.",
            |d, _| Some(f64::from(u8::from(d.exact))),
        ),
        (
            "morgue_dlq_arrivals_last_hour",
            "Letters that arrived in the last hour.",
            |d, _| Some(d.last_hour() as f64),
        ),
        (
            "morgue_dlq_arrivals_last_day",
            "Letters that arrived in the last 24 hours.",
            |d, _| Some(d.last_day() as f64),
        ),
        (
            "morgue_dlq_oldest_age_seconds",
            "Age of the oldest letter.",
            |d, now| d.oldest_ms.map(|o| (now - o) as f64 / 1000.0),
        ),
        (
            "morgue_dlq_deleted_in_seconds",
            "Time before retention deletes the oldest letter.",
            |d, now| d.deleted_in_ms(now).map(|ms| ms as f64 / 1000.0),
        ),
    ];
    let mut out = String::new();
    for (name, help, figure) in families {
        // These writes go to a String, which cannot fail.
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for d in dlqs {
            if let Some(v) = figure(d, now_ms) {
                let _ = writeln!(
                    out,
                    "{name}{{dlq=\"{}\",kind=\"{}\"}} {v}",
                    escape(&d.name),
                    d.kind
                );
            }
        }
    }
    out.push_str("# HELP morgue_dlq_letters_by_state Letters with a ledger entry, by state.\n# TYPE morgue_dlq_letters_by_state gauge\n");
    for d in dlqs {
        for (state, n) in &d.states {
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "morgue_dlq_letters_by_state{{dlq=\"{}\",kind=\"{}\",state=\"{state}\"}} {n}",
                escape(&d.name),
                d.kind
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::route::metrics::RouterMetrics;

    #[test]
    fn the_shipped_alert_rules_use_only_metrics_morgue_serves() {
        let d = DlqSummary {
            name: "orders.DLT".into(),
            kind: "kafka",
            partitions: 2,
            letters: 3,
            exact: true,
            hourly: vec![0, 1, 2],
            oldest_ms: Some(1_000),
            retention_ms: Some(86_400_000),
            states: [("new", 2)].into_iter().collect(),
        };
        let served = format!(
            "{}{}{}",
            render(&[d], 10_000),
            Fingerprints::new(3_600_000).render(10_000),
            RouterMetrics::default().render()
        );
        assert!(served.contains("morgue_dlq_letters{dlq=\"orders.DLT\",kind=\"kafka\"} 3"));
        let mut names: Vec<String> = served
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split_whitespace().next())
            .map(str::to_string)
            .collect();
        names.extend(["morgue_exporter_up".to_string()]);
        let rules = include_str!("../../assets/alerts.yml");
        let used: Vec<&str> = rules
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("morgue_"))
            .collect();
        assert!(used.len() >= 8, "{used:?}");
        for name in used {
            assert!(
                names.iter().any(|n| n == name),
                "alerts.yml uses '{name}', which morgue does not serve"
            );
        }
    }
}
