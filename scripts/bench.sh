#!/usr/bin/env bash
# The benchmarks of the engine, with kcat as the peer, on the local broker (or the
# cluster in MORGUE_TEST_KAFKA). Prints figures; asserts nothing.
#   scripts/bench.sh                 100k-letter list/search/latency/index + 1M-letter index memory,
#                                    start-up, the overview over 2000 topics, replay
#   BENCH_SMALL=1 scripts/bench.sh   skip the 1M-letter part
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
scripts/bootstrap.sh
command -v kcat >/dev/null && command -v bc >/dev/null ||
  { apt-get update -qq && apt-get install -y -qq kcat bc >&2; }
eval "$(scripts/services.sh up)"
B=$MORGUE_TEST_KAFKA
cargo build --release --quiet
ENGINE=$(cargo bench --bench engine --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
PY="scripts/services.sh python"
run_id=$(date +%s)

seed() { # TOPIC N PARTITIONS (SEED_TRANSACTIONAL=1: one transaction per letter)
  $PY benches/seed.py "$B" "$1" "$2" "$3"
}

best_of_3() { # LABEL CMD...: the fastest of three runs, in seconds
  local label=$1 best="" t0 t1 dt
  shift
  for _ in 1 2 3; do
    t0=$(date +%s.%N)
    "$@" >/dev/null
    t1=$(date +%s.%N)
    dt=$(echo "$t1 - $t0" | bc -l)
    if [ -z "$best" ] || [ "$(echo "$dt < $best" | bc -l)" = 1 ]; then best=$dt; fi
  done
  printf '%-44s %6.3f s  %8.0f letters/s\n' "$label" "$best" "$(echo "$N / $best" | bc -l)"
}

N=100000
T100=bench-100k-$run_id
seed "$T100" $N 4
echo "== list, $N letters of ~500-byte JSON with 6 Spring headers, 4 partitions (best of 3)"
best_of_3 "morgue list (JSON lines)" target/release/morgue list --kafka "$B" --topic "$T100"
best_of_3 "morgue list -o table" target/release/morgue list -o table --kafka "$B" --topic "$T100"
best_of_3 "kcat -C -e -o beginning (values only)" kcat -C -b "$B" -t "$T100" -e -o beginning -q
best_of_3 "kcat -C -e -o beginning -J (with headers)" kcat -C -b "$B" -t "$T100" -e -o beginning -q -J
"$ENGINE" raw "$B" "$T100"

echo "== a transactional DLQ: 50k letters, one transaction each (a commit marker after each letter)"
N=50000
TTXN=bench-txn-$run_id
SEED_TRANSACTIONAL=1 seed "$TTXN" $N 4
best_of_3 "morgue list (transactional)" target/release/morgue list --kafka "$B" --topic "$TTXN"
best_of_3 "kcat -C -e -J (transactional)" kcat -C -b "$B" -t "$TTXN" -e -o beginning -q -J
"$ENGINE" raw "$B" "$TTXN"
"$ENGINE" index "$B" "$TTXN"
N=100000

echo "== Avro decoding: morgue list (decoded JSON) vs the confluent-kafka AvroDeserializer loop, $N letters"
REG_PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
$PY tests/fixtures/schema_registry.py "$REG_PORT" & REG_PID=$!
sleep 1
REG=http://127.0.0.1:$REG_PORT
TAVRO=bench-avro-$run_id
$PY benches/avro_bench.py seed "$B" "$TAVRO" "$REG" $N
best_of_3 "morgue list --schema-registry (Avro decoded)" target/release/morgue list --kafka "$B" --topic "$TAVRO" --schema-registry "$REG"
best=""
for _ in 1 2 3; do
  t=$($PY benches/avro_bench.py read "$B" "$TAVRO" "$REG" | cut -d' ' -f1)
  if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
done
printf '%-44s %6.3f s  %8.0f letters/s\n' "python AvroDeserializer loop" "$best" "$(echo "$N / $best" | bc -l)"
kill $REG_PID

echo "== search (payload predicate) vs plain scan"
"$ENGINE" search "$B" "$T100" '$.price<0'

echo "== live tail: broker ack -> letter in the store"
TLIVE=bench-live-$run_id
seed "$TLIVE" 0 1
"$ENGINE" latency "$B" "$TLIVE" 2000

echo "== MongoDB: morgue list vs a plain pymongo loop, 100k documents (best of 3)"
M=$MORGUE_TEST_MONGO_URI
MC=dlq100k_$run_id
$PY benches/seed_mongo.py "$M" bench "$MC" 100000
best=""
for _ in 1 2 3; do
  t=$($PY benches/seed_mongo.py "$M" bench "$MC" --scan | cut -d' ' -f1)
  if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
done
printf '%-44s %6.3f s\n' "pymongo: for doc in coll.find(): pass" "$best"
N=100000
best_of_3 "morgue list --mongo (sorted by error_time)" target/release/morgue list --mongo "$M" --db bench --collection "$MC"
$PY - "$M" "$MC" <<'PY'
import sys, pymongo
pymongo.MongoClient(sys.argv[1])["bench"][sys.argv[2]].create_index([("error_time", 1), ("_id", 1)])
PY
best_of_3 "morgue list --mongo (with an error_time index)" target/release/morgue list --mongo "$M" --db bench --collection "$MC"
"$ENGINE" index-mongo "$M" bench "$MC"

echo "== TUI with a million letters (frames into ratatui's TestBackend)"
TUI=$(cargo bench --bench tui --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
"$TUI" 1000000

echo "== index memory"
"$ENGINE" index "$B" "$T100"
if [ -z "${BENCH_SMALL:-}" ]; then
  # noida-db cannot serve a million letters (reads fail with "Bad message format" and it
  # grows past 7 GB), and Tansu reads one-record batches at ~5k letters/s, so the
  # million-letter figure inserts generated letters of the same shape into the store.
  "$ENGINE" index-synthetic 1000000
  "$ENGINE" index-synthetic 1000000 mongo
fi

echo "== start-up: a one-letter DLQ, morgue list vs kcat -C -J -e (median of 9)"
TONE=bench-one-$run_id
seed "$TONE" 1 1
median9() { # CMD...: the median wall time of nine runs, in seconds
  for _ in 1 2 3 4 5 6 7 8 9; do
    t0=$(date +%s.%N); "$@" >/dev/null 2>&1; t1=$(date +%s.%N); echo "$t1 - $t0" | bc -l
  done | sort -n | sed -n 5p
}
printf 'morgue list  %.4f s\n' "$(median9 target/release/morgue list --kafka "$B" --topic "$TONE")"
printf 'kcat -C -J -e %.4f s\n' "$(median9 kcat -C -J -e -q -b "$B" -t "$TONE")"

echo "== overview: morgue dlqs over 2000 topics (100 holding letters), best of 3"
OVW=ovw-$run_id
$PY benches/seed_topics.py "$B" "$OVW" 2000
N=2000
best_of_3 "morgue dlqs --pattern '$OVW-*'" target/release/morgue dlqs --kafka "$B" --pattern "$OVW-*"

echo "== replay"
scripts/bench_replay.sh
