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
  kill "$services_pid" ${release_pid:-} 2>/dev/null
  wait "$services_pid" 2>/dev/null
  rm -f "$services_out"
  if [ "$started" = 1 ]; then scripts/services.sh down; fi
}
trap cleanup EXIT
# The static binary is built from the start, at the lowest priority (it takes the CPU
# the checks, the build and the tests leave idle: links, the last crates, waits on the
# servers), in a target directory of its own (cargo locks one per build), unoptimised
# (profile ci-static: the same code, statically linked the same way).
export CARGO_TARGET_DIR_RELEASE="$ROOT/target/release-check"
export MORGUE_RELEASE_PROFILE=ci-static
release_log=$(mktemp)
(CARGO_TARGET_DIR=$CARGO_TARGET_DIR_RELEASE nice -n 19 scripts/release.sh --build-only >"$release_log" 2>&1) &
release_pid=$!
cargo fmt --all --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --no-run
wait "$services_pid" || { echo "test: the test servers did not start (.services/*.log)" >&2; exit 1; }
eval "$(cat "$services_out")"
echo "test: Kafka at $MORGUE_TEST_KAFKA, MongoDB at $MORGUE_TEST_MONGO_URI" >&2
tests=0
cargo test --locked || tests=$?
echo "test: suite finished in $(( $(date +%s) - start ))s" >&2
wait "$release_pid" || { cat "$release_log" >&2; echo "test: the release build failed" >&2; exit 1; }
tail -1 "$release_log" >&2
[ "$tests" = 0 ] || exit "$tests"
# The static release binary (built above), checked against the same broker.
CARGO_TARGET_DIR=$CARGO_TARGET_DIR_RELEASE scripts/release.sh
