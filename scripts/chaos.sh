#!/usr/bin/env bash
# The router's chaos suite at scale, loopback only and bounded in time (tests/chaos.rs):
# poison, slow and chatty messages; a private broker SIGKILLed and restarted twice;
# three routers in one group over six partitions, one leaving and one joining mid-run;
# then a DLQ refusing one partition's letters for 6 minutes while the other partition
# flows (tests/router_partitions.rs), longer than the default max.poll.interval.ms.
# Then a router stopped by SIGINT/SIGTERM at 40 random moments (tests/router_signals.rs,
# 10 in the suite): no message dead-lettered because of a signal.
# Prints messages, kills, lost, duplicated per run; fails if anything is lost.
#   scripts/chaos.sh                     20k messages per run (about 5 minutes) + 6 minutes
#   MORGUE_CHAOS_MESSAGES=200000 scripts/chaos.sh
#   MORGUE_CHAOS_REFUSE_SECS=30 ...      a shorter refusal
#   MORGUE_CHAOS_SIGKILL_MEMBER=1 ...    SIGKILL the leaving router (needs a broker that
#                                        expires dead members' sessions; noida-db does not)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/bootstrap.sh
eval "$(scripts/services.sh up)"
export MORGUE_CHAOS_MESSAGES=${MORGUE_CHAOS_MESSAGES:-20000}
export MORGUE_CHAOS_REFUSE_SECS=${MORGUE_CHAOS_REFUSE_SECS:-360}
cargo test --release --test suite chaos:: -- --nocapture --test-threads 1 2>&1 |
  grep -oE 'chaos .*|panicked.*|test result.*'
cargo test --release --test suite router_partitions::refusing -- --nocapture 2>&1 |
  grep -oE 'chaos .*|panicked.*|test result.*'
MORGUE_SIGNAL_ROUNDS=40 cargo test --release --test suite router_signals::signals_at_random -- --nocapture 2>&1 |
  grep -oE 'panicked.*|test result.*'
