#!/usr/bin/env bash
# An incident for N minutes (default 5) against the local servers (tests/incident.rs):
# the router fills a Kafka DLQ over a failing processor, a MongoDB DLQ fills beside it,
# three operators replay overlapping filters at different rates (one stopped and resumed,
# one killed and rerun), the broker is frozen once. Prints letters, replays, duplicates
# and missing; fails unless both are 0. The test suite runs the same for 60 seconds.
#   scripts/incident.sh        five minutes
#   scripts/incident.sh 2      two minutes
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/bootstrap.sh
eval "$(scripts/services.sh up)"
export MORGUE_INCIDENT_SECS=$(( ${1:-5} * 60 ))
cargo test --release --test suite incident:: -- --nocapture 2>&1 |
  grep -oE 'incident .*|panicked.*|test result.*'
