#!/usr/bin/env bash
# A live demo on local servers, in one command: starts a Kafka-protocol broker,
# feeds a `trades` topic with a stream in which some messages fail (broken JSON,
# negative prices, a flaky downstream that succeeds on retry, expired messages),
# runs morgue's router over it into `deadletter-topic`, and opens the TUI on the
# DLQ. Fix a letter (enter, e) and replay it (r): the router processes it again.
# q quits the TUI and stops everything the demo started.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
scripts/bootstrap.sh
already=0
scripts/services.sh env >/dev/null 2>&1 && already=1
eval "$(scripts/services.sh up)"
B=$MORGUE_TEST_KAFKA
echo "demo: building morgue (release)..." >&2
cargo build --release --quiet
MORGUE="$ROOT/target/release/morgue"
PY="$ROOT/.venv/bin/python"
"$PY" - "$B" <<'PY'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": sys.argv[1]})
fs = a.create_topics([NewTopic("trades", 3, 1), NewTopic("deadletter-topic", 1, 1)])
for t, f in fs.items():
    try:
        f.result()
    except Exception as e:  # already there from an earlier run
        if "TOPIC_ALREADY_EXISTS" not in str(e):
            raise
PY
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ "$already" = 1 ] || scripts/services.sh down
}
trap cleanup EXIT
"$PY" scripts/demo_feed.py "$B" trades 5 &
pids+=($!)
"$MORGUE" route --kafka "$B" --topic deadletter-topic --source trades --group trade-processor \
  --exec "$PY $ROOT/scripts/demo_processor.py" --max-attempts 3 --backoff 200ms --max-age 10m \
  >/dev/null 2>"$ROOT/.services/demo-router.log" &
pids+=($!)
cat >&2 <<MSG
demo: router running (log: .services/demo-router.log); opening the TUI (? for keys).
demo: from another terminal, the same DLQ headless:
  $MORGUE list --kafka $B --topic deadletter-topic --filter 'reason:expired' -o table
MSG
sleep 2
"$MORGUE" --kafka "$B" --topic deadletter-topic
