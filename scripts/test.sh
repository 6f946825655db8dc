#!/usr/bin/env bash
# The whole test suite on a fresh machine, in one command:
#   installs missing system packages (apt, as root), starts the real Kafka- and
#   MongoDB-protocol servers (scripts/services.sh), checks formatting and lints,
#   runs every test, stops the servers it started, and exits with the tests' status.
#   CI (.ci/run) runs this, then scripts/release.sh: the static release binary built
#   and checked against the same kind of broker (minutes of build this command spares).
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
# The servers install (PyPI, on first use) and start while the code is checked and
# built: the one waits on the network, the other on the CPU.
start=$(date +%s)
services_out=$(mktemp)
scripts/services.sh up >"$services_out" &
services_pid=$!
# On exit (a failed check too): the start stopped if still running, the servers
# stopped if this run started them.
cleanup() {
  set +e # a step that fails here must not change the run's status
  kill "$services_pid" 2>/dev/null
  wait "$services_pid" 2>/dev/null
  rm -f "$services_out"
  if [ "$started" = 1 ]; then scripts/services.sh down; fi
}
trap cleanup EXIT
cargo fmt --all --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --no-run
wait "$services_pid" || { echo "test: the test servers did not start (.services/*.log)" >&2; exit 1; }
eval "$(cat "$services_out")"
echo "test: Kafka at $MORGUE_TEST_KAFKA, MongoDB at $MORGUE_TEST_MONGO_URI" >&2
tests=0
cargo test --locked || tests=$?
echo "test: suite finished in $(( $(date +%s) - start ))s" >&2
exit "$tests"
