#!/usr/bin/env bash
# Router throughput on the local broker: N messages of ~500 B with UUID keys on a
# 4-partition topic, routed by `morgue route` with a trivial processor. Two rates per
# mode: from the router's start until the group has committed every message (start-up,
# group join and the last auto-commit included, about 1 s), and while processing (the
# processor or endpoint notes the time of every 1000th message: first to last).
#   scripts/bench_router.sh            20,000 and 100,000 messages
#   N=50000 scripts/bench_router.sh    one size
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
scripts/bootstrap.sh
eval "$(scripts/services.sh up)"
B=$MORGUE_TEST_KAFKA
cargo build --release --quiet
MORGUE="$ROOT/target/release/morgue"
PY="$ROOT/.venv/bin/python"
work=$(mktemp -d)
cat > "$work/trivial.py" <<'PY'
import sys, time
out, n = sys.stdout, 0
log = open(sys.argv[1], "a")
for line in sys.stdin:
    i = line.index('"id":"') + 6
    out.write('{"id":"%s","status":"ok"}\n' % line[i:line.index('"', i)])
    out.flush()
    if n % 1000 == 0:
        log.write("%d %.4f\n" % (n, time.time())); log.flush()
    n += 1
PY
# The endpoint that answers 200 at once: benches/http_sink.rs, one thread, keep-alive
# (SINK=python: an asyncio loop in Python instead, which costs ~70 us of CPU a request
# and is then the bound on two cores).
cargo build --release --quiet --example http_sink
cat > "$work/sink.py" <<'PY'
import asyncio, sys, time
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
log, seen = open(sys.argv[2], "a"), [0]
class Sink(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buf = transport, b""
    def data_received(self, data):
        buf = self.buf + data
        while (end := buf.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in buf[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(buf) < end + 4 + length:
                break
            buf = buf[end + 4 + length:]
            self.transport.write(OK)
            if seen[0] % 1000 == 0:
                log.write("%d %.4f\n" % (seen[0], time.time())); log.flush()
            seen[0] += 1
        self.buf = buf
async def main():
    server = await asyncio.get_running_loop().create_server(Sink, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
asyncio.run(main())
PY
port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if [ "${SINK:-rust}" = python ]; then
  "$PY" "$work/sink.py" "$port" "$work/marks" & sink=$!
else
  "$ROOT/target/release/examples/http_sink" "$port" "$work/marks" & sink=$!
fi
trap 'kill $sink 2>/dev/null; rm -rf "$work"' EXIT
sleep 1

steady() { # the rate between the first and the last mark in $work/marks
  "$PY" - "$work/marks" <<'PY'
import sys
m = [l.split() for l in open(sys.argv[1])]
print("%.0f" % ((int(m[-1][0]) - int(m[0][0])) / (float(m[-1][1]) - float(m[0][1]))) if len(m) > 1 else "-")
PY
}
run() { # N MODE ARGS...: routes N messages, prints the rates
  local n=$1 mode=$2; shift 2
  local t="bench-router-$RANDOM$RANDOM"
  "$PY" - "$B" "$t" "$n" <<'PY'
import json, sys, uuid
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
b, t, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
a = AdminClient({"bootstrap.servers": b})
for f in a.create_topics([NewTopic(t, 4, 1), NewTopic(t + "-dlq", 1, 1)]).values():
    f.result()
p = Producer({"bootstrap.servers": b, "linger.ms": 20})
for i in range(n):
    p.produce(t, key=str(uuid.uuid4()), value=json.dumps({"n": i, "pad": "x" * 440}))
    if i % 1000 == 0:
        p.poll(0)
p.flush()
PY
  local start end
  : >"$work/marks"
  start=$(date +%s.%N)
  "$MORGUE" route --kafka "$B" --topic "$t-dlq" --source "$t" --group "g-$t" "$@" \
    >/dev/null 2>"$work/router.log" &
  local r=$!
  "$PY" - "$B" "$t" "g-$t" "$n" <<'PY'
import sys, time
from confluent_kafka import Consumer, TopicPartition
b, t, g, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
c = Consumer({"bootstrap.servers": b, "group.id": g, "enable.auto.commit": False})
while sum(max(x.offset, 0) for x in c.committed([TopicPartition(t, p) for p in range(4)], timeout=10)) < n:
    time.sleep(0.1)
PY
  end=$(date +%s.%N)
  kill "$r"; wait "$r" 2>/dev/null || true
  local rate
  rate=$(steady)
  "$PY" -c "n, s, r = $n, $end - $start, '$rate'; r = f'; {int(r):,} msg/s while processing' if r.isdigit() else ''; print(f'route $mode: {n} messages in {s:.2f} s, {n / s:,.0f} msg/s start to last commit{r}')"
}
for n in ${N:-20000 100000}; do
  run "$n" "--pipe --concurrency 16" --pipe "$PY $work/trivial.py $work/marks" --concurrency 16
  run "$n" "--pipe" --pipe "$PY $work/trivial.py $work/marks"
  run "$n" "--http --concurrency 16" --http "http://127.0.0.1:$port/" --concurrency 16
done
run 2000 "--exec" --exec 'cat >/dev/null'

# End-to-end latency at a moderate rate: 500 messages/s for 10 s through --pipe with
# 16 in flight; the processor notes, per message, now minus the time it was produced.
cat > "$work/latency.py" <<'PY'
import json, sys, time
log = open(sys.argv[1], "a")
for line in sys.stdin:
    m = json.loads(line)
    sent = json.loads(m["value"]["data"])["t"]
    log.write("%.3f\n" % (time.time() * 1000 - sent)); log.flush()
    print(json.dumps({"id": m["id"], "status": "ok"}), flush=True)
PY
t="bench-router-$RANDOM$RANDOM"
"$PY" - "$B" "$t" <<'PY'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": sys.argv[1]})
for f in a.create_topics([NewTopic(sys.argv[2], 4, 1), NewTopic(sys.argv[2] + "-dlq", 1, 1)]).values():
    f.result()
PY
"$MORGUE" route --kafka "$B" --topic "$t-dlq" --source "$t" --group "g-$t" \
  --pipe "$PY $work/latency.py $work/latency.log" --concurrency 16 >/dev/null 2>"$work/router.log" &
r=$!
sleep 3
"$PY" - "$B" "$t" <<'PY'
import json, sys, time, uuid
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "linger.ms": 0})
start = time.time()
for i in range(5000):
    while time.time() < start + i / 500:
        time.sleep(0.0005)
    p.produce(sys.argv[2], key=str(uuid.uuid4()), value=json.dumps({"t": time.time() * 1000, "pad": "x" * 440}))
    p.poll(0)
p.flush()
PY
sleep 3
kill "$r"; wait "$r" 2>/dev/null || true
"$PY" - "$work/latency.log" <<'PY'
import sys
v = sorted(float(x) for x in open(sys.argv[1]))
q = lambda p: v[min(len(v) - 1, int(p * len(v)))]
print(f"route --pipe --concurrency 16 at 500 msg/s: {len(v)} messages, produce -> processor p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms, max {v[-1]:.1f} ms")
PY

# The peers: a confluent-kafka Python consumer calling the same endpoint per message —
# POSTing it to the HTTP sink (one keep-alive connection), or writing it as a JSON line
# to the same trivial --pipe processor and reading the answer — committing at the end.
n=${N:-20000}; n=${n%% *}
for mode in http pipe; do
: >"$work/marks"
t="bench-router-$RANDOM$RANDOM"
"$PY" - "$B" "$t" "$n" "$port" "$mode" "$PY $work/trivial.py $work/marks" <<'PY'
import base64, http.client, json, subprocess, sys, time, uuid
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic
b, t, n, port, mode, cmd = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
a = AdminClient({"bootstrap.servers": b})
for f in a.create_topics([NewTopic(t, 4, 1)]).values():
    f.result()
p = Producer({"bootstrap.servers": b, "linger.ms": 20})
for i in range(n):
    p.produce(t, key=str(uuid.uuid4()), value=json.dumps({"n": i, "pad": "x" * 440}))
    if i % 1000 == 0:
        p.poll(0)
p.flush()
start = time.time()
c = Consumer({"bootstrap.servers": b, "group.id": "g-" + t, "auto.offset.reset": "earliest"})
c.subscribe([t])
conn = http.client.HTTPConnection("127.0.0.1", port)
proc = subprocess.Popen(cmd, shell=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) if mode == "pipe" else None
done = 0
while done < n:
    m = c.poll(1.0)
    if m is None or m.error():
        continue
    if proc:
        line = {"id": f"{m.topic()}:{m.partition()}:{m.offset()}:1", "topic": m.topic(),
                "partition": m.partition(), "offset": m.offset(), "attempt": 1,
                "key": {"encoding": "utf8", "data": m.key().decode()},
                "value": {"encoding": "utf8", "data": m.value().decode()}, "headers": []}
        proc.stdin.write(json.dumps(line, separators=(",", ":")) + "\n"); proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["status"] == "ok"
    else:
        conn.request("POST", "/", body=m.value(), headers={"morgue-key": m.key().decode()})
        conn.getresponse().read()
    done += 1
c.commit(asynchronous=False)
s = time.time() - start
print(f"peer ({mode}): confluent-kafka consumer calling the endpoint per message: {n} messages in {s:.2f} s, {n / s:,.0f} msg/s start to last commit", end="")
PY
echo "; $(steady) msg/s while processing"
done
