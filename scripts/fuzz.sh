#!/usr/bin/env bash
# Property fuzzing of the untrusted-input readers (header conventions, filter parser,
# payload decoders, MongoDB documents) with many more executions than the test suite's
# 512 per target. Prints the executions and time per target; a failure is shrunk and
# saved in tests/fuzz-regressions.txt, which every later run (the suite's too) replays.
#   scripts/fuzz.sh            FUZZ_CASES executions per target (default 2000000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PROPTEST_CASES=${FUZZ_CASES:-2000000} cargo test --release --test suite fuzz:: -- --nocapture --test-threads 1 2>&1 |
  grep -oE 'fuzz .*|panicked.*|minimal failing.*|test result.*'
