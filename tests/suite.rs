//! The integration suite, as one test binary (one link of the crate, not one per
//! file): each module is one area, run against the real servers that
//! `scripts/services.sh` starts (or the cluster given by `MORGUE_TEST_KAFKA` and
//! `MORGUE_TEST_MONGO_URI`). Run one area with `cargo test --test suite replay_race::`.
#![allow(clippy::unwrap_used)]

mod common;

mod bundle;
mod chaos;
mod chaos_concurrent;
mod cli_errors;
mod cli_flags;
mod cli_list;
mod closed_loop;
mod config;
mod e2e_kafka;
mod exporter_groups;
mod frozen_broker;
mod fuzz;
mod incident;
mod kafka_foundation;
mod kafka_outage;
mod kafka_security;
mod ledger_checkpoint;
mod ledger_v2;
mod mongo_dlq;
mod mongo_foundation;
mod mongo_security;
mod mongo_sink;
mod overview;
mod payload_formats;
mod replay;
mod replay_bound;
mod replay_paced;
mod replay_race;
mod replay_race_mongo;
mod router;
mod router_metrics;
mod router_partitions;
mod router_pipe_stop;
mod router_retry;
mod router_rollback;
mod router_seek;
mod router_signals;
mod source;
mod transform;
mod tui_e2e;
mod tui_incident;
