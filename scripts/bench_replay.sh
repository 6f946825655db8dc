#!/usr/bin/env bash
# Replay benchmarks on the local broker (or MORGUE_TEST_KAFKA); prints figures, asserts nothing.
#   - bulk replay of 100k letters with the ledger on, next to a plain copy of the same letters
#     (`kcat -C -e | kcat -P`, DLQ to a fresh topic), and the ledger's bytes per letter
#   - a transform replay of the same 100k (`--transform`), against the plain one above,
#     and the TUI's transform preview per keystroke on a 5,000-letter group (p50/p99)
#   - the same by two operators at once (wall time, and duplicates in the target: must be 0)
#   - --rate accuracy (200/s and 2000/s)
#   - peak resident memory of a bulk replay, 10k vs 100k letters (BENCH_REPLAY_1M=1: and 1M),
#     and the heap the ledger view's fold holds at 10k, 100k and 1M letters
#   - ledger operation latency (open a letter, replay one) with 100k ledger entries vs none
#   - a ledger that has recorded 1M replayed letters: its bytes per letter, a new session's
#     first catch-up (time, morgue's own heap), and operation latency with it
# Called by scripts/bench.sh; runs alone too (it starts what it needs).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
scripts/bootstrap.sh
command -v kcat >/dev/null && command -v bc >/dev/null && [ -x /usr/bin/time ] ||
  { apt-get update -qq && apt-get install -y -qq kcat bc time >&2; }
eval "$(scripts/services.sh up)"
B=$MORGUE_TEST_KAFKA
cargo build --release --quiet
BENCH=$(cargo bench --bench replay --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)
PY="scripts/services.sh python"
id=$(date +%s)
export MORGUE_AUDIT_LOG=$(mktemp -d)/audit.jsonl

topic() { # NAME PARTITIONS
  $PY - "$B" "$1" "$2" <<'PY'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": sys.argv[1]})
for f in a.create_topics([NewTopic(sys.argv[2], int(sys.argv[3]), 1)]).values():
    f.result()
PY
}

# ledger_bytes DLQ LETTERS: the bytes (keys and values) in its ledger and checkpoint topics
ledger_bytes() {
  $PY - "$B" "$1" "$2" <<'PY'
import sys
from confluent_kafka import Consumer, TopicPartition
c = Consumer({"bootstrap.servers": sys.argv[1], "group.id": "bench-bytes", "enable.auto.commit": False})
total = 0
for t in [sys.argv[2] + ".morgue-ledger", sys.argv[2] + ".morgue-checkpoint"]:
    lo, hi = c.get_watermark_offsets(TopicPartition(t, 0), timeout=10)
    c.assign([TopicPartition(t, 0, lo)])
    n = size = 0
    while n < hi - lo:
        m = c.poll(10)
        if m is None:
            break
        if m.error():
            continue
        n += 1
        size += len(m.value() or b"") + len(m.key() or b"")
    print(f"{t:<60} {n:>7} records {size:>11,} bytes (offsets {lo}..{hi})")
    total += size
print(f"{'ledger bytes per replayed letter':<44} {total / int(sys.argv[3]):7.1f} B")
PY
}

# replay DLQ TARGET [ARGS...]: prints "<seconds> <max RSS KiB> <closing line>"
replay() {
  local dlq=$1 to=$2 err
  shift 2
  err=$(mktemp)
  /usr/bin/time -f '%e %M' -o "$err.time" target/release/morgue replay --kafka "$B" --topic "$dlq" \
    --filter 'topic:trades' --to "$to" --yes "$@" >/dev/null 2>"$err" || true
  echo "$(cat "$err.time") $(grep -o '[0-9]* letter(s):.*' "$err" | tail -1)"
  rm -f "$err" "$err.time"
}

N=100000
DLQ=bench-replay-$id
$PY benches/seed.py "$B" "$DLQ" $N 4
topic "$DLQ-to" 6
topic "$DLQ-kcat" 6
echo "== bulk replay, $N letters of ~500-byte JSON, ledger on, 4 -> 6 partitions"
read -r secs rss rest <<<"$(replay "$DLQ" "$DLQ-to")"
RSS100=$rss
printf '%-44s %7.2f s  %8.0f letters/s  (peak RSS %d MiB)  %s\n' "morgue replay --filter" "$secs" "$(echo "$N / $secs" | bc -l)" $((rss / 1024)) "$rest"
# A plain copy of the same letters, DLQ to a fresh topic on the same broker: what a
# replay must read and write, and nothing more.
t0=$(date +%s.%N)
kcat -C -b "$B" -t "$DLQ" -e -q -K '\t' -f '%k\t%s\n' | kcat -P -b "$B" -t "$DLQ-kcat" -K '\t'
t1=$(date +%s.%N)
k=$(echo "$t1 - $t0" | bc -l)
printf '%-44s %7.2f s  %8.0f letters/s\n' "kcat -C -e | kcat -P (same keys and values)" "$k" "$(echo "$N / $k" | bc -l)"
printf '%-44s %7.2f\n' "morgue / plain copy rate" "$(echo "$k / $secs" | bc -l)"
ledger_bytes "$DLQ" "$N"

echo "== transform replay, the same $N letters made by a jq expression (jaq) first"
TR=bench-replay-tr-$id
$PY benches/seed.py "$B" "$TR" $N 4
topic "$TR-to" 6
read -r tsecs trss trest <<<"$(replay "$TR" "$TR-to" --transform '.price |= (if . < 0 then -. else . end) | .venue = "XLON"')"
printf '%-44s %7.2f s  %8.0f letters/s  (peak RSS %d MiB)  %s\n' "morgue replay --transform" "$tsecs" "$(echo "$N / $tsecs" | bc -l)" $((trss / 1024)) "$trest"
printf '%-44s %7.2f\n' "transform / plain bulk replay rate" "$(echo "$secs / $tsecs" | bc -l)"
"$(cargo bench --bench transform --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -1)" 5000

echo "== two operators at once, the same $N letters"
TWO=bench-replay-two-$id
$PY benches/seed.py "$B" "$TWO" $N 4
topic "$TWO-to" 6
t0=$(date +%s.%N)
replay "$TWO" "$TWO-to" >"/tmp/$TWO.a" &
replay "$TWO" "$TWO-to" >"/tmp/$TWO.b"
wait
t1=$(date +%s.%N)
w=$(echo "$t1 - $t0" | bc -l)
for f in a b; do printf '%-44s %s\n' "operator $f" "$(cut -d' ' -f3- "/tmp/$TWO.$f")"; done
arrived=$(kcat -C -b "$B" -t "$TWO-to" -e -q -f '%k\n' | sort)
printf '%-44s %7.2f s  %8.0f letters/s  %d arrived, %d duplicated\n' "both, wall" "$w" \
  "$(echo "$N / $w" | bc -l)" "$(wc -l <<<"$arrived")" "$(uniq -d <<<"$arrived" | wc -l)"
rm -f "/tmp/$TWO.a" "/tmp/$TWO.b"

echo "== ledger operations (50 samples each)"
EMPTY=bench-ledger-empty-$id
$PY benches/seed.py "$B" "$EMPTY" 1000 4
topic "$EMPTY-to" 6
"$BENCH" ledger-ops "$B" "$EMPTY" "$EMPTY-to" 50
"$BENCH" ledger-ops "$B" "$DLQ" "$DLQ-to" 50
echo "== a ledger that has recorded 1M replayed letters"
BIG=bench-ledger-1m-$id
$PY benches/seed.py "$B" "$BIG" 1000 4
topic "$BIG-to" 6
"$BENCH" record "$B" "$BIG" 1000000
ledger_bytes "$BIG" 1000000
# Checkpoints are due at half the letters: the ledger is somewhere in that cycle. As
# the writes left it, then right after a checkpoint:
"$BENCH" catch-up "$B" "$BIG"
"$BENCH" checkpoint "$B" "$BIG"
ledger_bytes "$BIG" 1000000
"$BENCH" catch-up "$B" "$BIG"
"$BENCH" ledger-ops "$B" "$BIG" "$BIG-to" 50

echo "== peak resident memory of a bulk replay"
SMALL=bench-replay-small-$id
$PY benches/seed.py "$B" "$SMALL" 10000 4
topic "$SMALL-to" 6
read -r secs rss rest <<<"$(replay "$SMALL" "$SMALL-to")"
printf '%-44s %7d MiB\n' "10k letters" $((rss / 1024))
printf '%-44s %7d MiB  (first pass above; the ledger view then holds 100k entries)\n' "100k letters" $((RSS100 / 1024))
# noida-db answers a fetch with the whole partition whatever fetch.max.bytes says, so the
# figures above include librdkafka holding it; the ledger view's own share, broker aside:
for n in 10000 100000 1000000; do "$BENCH" fold $n; done
if [ "${BENCH_REPLAY_1M:-0}" = 1 ]; then
  BIG=bench-replay-big-$id
  $PY benches/seed.py "$B" "$BIG" 1000000 4
  topic "$BIG-to" 6
  read -r secs rss rest <<<"$(replay "$BIG" "$BIG-to")"
  printf '%-44s %7d MiB  %.1f s  %s\n' "1M letters" $((rss / 1024)) "$secs" "$rest"
fi

echo "== --rate accuracy"
RATE=bench-rate-$id
$PY benches/seed.py "$B" "$RATE" 10000 4
topic "$RATE-to" 6
for r in 200:1000 2000:10000; do
  rate=${r%%:*}
  n=${r##*:}
  filter_n=$([ "$n" = 1000 ] && echo "key:T-000000*" || echo "topic:trades")
  err=$(mktemp)
  target/release/morgue replay --kafka "$B" --topic "$RATE" --filter "$filter_n" --to "$RATE-to" \
    --yes --force --rate "$rate" >/dev/null 2>"$err" || true
  got=$(grep -o '[0-9]*/s after the first batch' "$err" | tail -1 | cut -d/ -f1)
  printf '%-44s %7s letters/s  (%+.1f %%)\n' "--rate $rate over $n letters" "$got" "$(echo "($got - $rate) * 100 / $rate" | bc -l)"
  rm -f "$err"
done

