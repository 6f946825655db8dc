#!/usr/bin/env bash
# The whole test suite on a fresh machine, in one command:
#   installs missing system packages (apt, as root), starts the real Kafka- and
#   MongoDB-protocol servers (scripts/services.sh), checks formatting and lints,
#   runs every test, builds and checks the static release binary (scripts/release.sh),
#   stops the servers it started, and exits with the tests' status.
# To run against your own cluster instead, set MORGUE_TEST_KAFKA and/or
# MORGUE_TEST_MONGO_URI first; nothing is started for what is given.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

scripts/bootstrap.sh

# Stop the servers afterwards only if this run started them (not a developer's, not a given cluster).
started=0
if { [ -z "${MORGUE_TEST_KAFKA:-}" ] || [ -z "${MORGUE_TEST_MONGO_URI:-}" ]; } &&
  ! scripts/services.sh env >/dev/null 2>&1; then
  started=1
fi
exports=$(scripts/services.sh up)
eval "$exports"
if [ "$started" = 1 ]; then
  trap 'scripts/services.sh down' EXIT
fi
echo "test: Kafka at $MORGUE_TEST_KAFKA, MongoDB at $MORGUE_TEST_MONGO_URI" >&2

start=$(date +%s)
cargo fmt --all --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked
echo "test: suite finished in $(( $(date +%s) - start ))s" >&2
# The static release binary, built and checked against the same broker.
scripts/release.sh
