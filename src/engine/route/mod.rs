//! The route wing: the [`router::Router`] that retries a message and writes what
//! cannot be processed to the DLQ without losing it, and the [`sink::DeadLetterSink`]
//! trait that DLQ backends implement, and the router's figures for Prometheus
//! ([`metrics::RouterMetrics`]), the retry topics of non-blocking retries
//! ([`tiers`]), and the commit discipline any consumer loop needs around
//! `Router::handle` — messages in flight, same-key order and how far an offset may move
//! ([`flight`]) — with the closing counts ([`stats`]).

pub mod flight;
pub mod metrics;
pub mod router;
pub mod sink;
pub mod stats;
pub mod tiers;
