#!/usr/bin/env bash
# Starts and stops the real-protocol servers that morgue's tests run against:
# a Kafka-protocol broker (noida-db) and a MongoDB-protocol server (SecantusDB),
# both on free loopback ports, installed from PyPI into ./.venv on first use.
#
#   scripts/services.sh up     start what is missing, print `export ...` lines to eval
#   scripts/services.sh down   stop what `up` started (waits for each to exit)
#   scripts/services.sh env    print the `export ...` lines of the running services
#
# When MORGUE_TEST_KAFKA (host:port) or MORGUE_TEST_MONGO_URI (mongodb://...) are
# already set, that server is not started and the given cluster is used instead.
# Diagnostics go to stderr; stdout carries only the export lines.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
STATE="$ROOT/.services"
NOIDA_VERSION="0.2.3"
SECANTUS_VERSION="0.7.0b3"
# Fixture clients used by tests and benchmarks (PyPI builds bundle a current librdkafka).
PYMONGO_VERSION="4.20.1"
CONFLUENT_VERSION="2.16.1"
# The real serializers for the payload-format fixtures (Avro with the registry, MessagePack, CBOR).
FASTAVRO_VERSION="1.13.1"
MSGPACK_VERSION="1.2.4"
CBOR2_VERSION="6.3.0"
PROTOBUF_VERSION="7.36.2"
JSONSCHEMA_VERSION="4.26.0"
# The Prometheus text-format parser the metrics tests read /metrics with.
PROMETHEUS_CLIENT_VERSION="0.26.0"
WAIT_SECONDS="${MORGUE_SERVICES_WAIT:-60}"

log() { echo "services: $*" >&2; }

ensure_venv() {
  local py="${PYTHON:-python3}"
  if [ ! -x "$VENV/bin/python" ]; then
    log "creating virtualenv $VENV"
    "$py" -m venv "$VENV" >&2
  fi
  if ! "$VENV/bin/python" - <<PY 2>/dev/null
import importlib.metadata as m
want = {"noida-db": "$NOIDA_VERSION", "secantusdb": "$SECANTUS_VERSION",
        "pymongo": "$PYMONGO_VERSION", "confluent-kafka": "$CONFLUENT_VERSION",
        "fastavro": "$FASTAVRO_VERSION", "msgpack": "$MSGPACK_VERSION", "cbor2": "$CBOR2_VERSION",
        "protobuf": "$PROTOBUF_VERSION", "jsonschema": "$JSONSCHEMA_VERSION",
        "prometheus-client": "$PROMETHEUS_CLIENT_VERSION"}
raise SystemExit(0 if all(m.version(k) == v for k, v in want.items()) else 1)
PY
  then
    log "installing noida-db==$NOIDA_VERSION secantusdb==$SECANTUS_VERSION and fixture clients"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
      "noida-db==$NOIDA_VERSION" "secantusdb==$SECANTUS_VERSION" \
      "pymongo==$PYMONGO_VERSION" "confluent-kafka[avro,schemaregistry,protobuf]==$CONFLUENT_VERSION" \
      "fastavro==$FASTAVRO_VERSION" "msgpack==$MSGPACK_VERSION" "cbor2==$CBOR2_VERSION" \
      "protobuf==$PROTOBUF_VERSION" "jsonschema==$JSONSCHEMA_VERSION" \
      "prometheus-client==$PROMETHEUS_CLIENT_VERSION" >&2
  fi
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_port NAME PORT PID LOG: until PORT accepts a TCP connection, the process dies, or time runs out.
wait_port() {
  local name=$1 port=$2 pid=$3 logf=$4 i
  for ((i = 0; i < WAIT_SECONDS * 10; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "$name exited before accepting connections on 127.0.0.1:$port; last lines of $logf:"
      tail -n 20 "$logf" >&2
      return 1
    fi
    if "$VENV/bin/python" -c "import socket,sys; s=socket.socket(); s.settimeout(0.5); sys.exit(s.connect_ex(('127.0.0.1',$port)))" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  log "$name did not accept connections on 127.0.0.1:$port within ${WAIT_SECONDS}s; see $logf"
  return 1
}

running() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

start_kafka() {
  local port
  port=$(free_port)
  rm -rf "$STATE/kafka-data"
  mkdir -p "$STATE/kafka-data"
  log "starting noida-db (Kafka protocol) on 127.0.0.1:$port"
  setsid "$VENV/bin/noida-db" start --only kafka --kafka-port "$port" \
    --data-dir "$STATE/kafka-data" --host 127.0.0.1 >"$STATE/kafka.log" 2>&1 </dev/null &
  echo $! >"$STATE/kafka.pid"
  wait_port "noida-db" "$port" "$!" "$STATE/kafka.log"
  echo "export MORGUE_TEST_KAFKA=127.0.0.1:$port" >"$STATE/kafka.env"
}

start_mongo() {
  local port
  port=$(free_port)
  log "starting SecantusDB (MongoDB protocol) on 127.0.0.1:$port"
  setsid "$VENV/bin/secantusd-py" --host 127.0.0.1 --port "$port" --storage-path :memory: \
    >"$STATE/mongo.log" 2>&1 </dev/null &
  echo $! >"$STATE/mongo.pid"
  wait_port "secantusd" "$port" "$!" "$STATE/mongo.log"
  echo "export MORGUE_TEST_MONGO_URI='mongodb://127.0.0.1:$port/?directConnection=true'" >"$STATE/mongo.env"
}

cmd_up() {
  mkdir -p "$STATE"
  if [ -n "${MORGUE_TEST_KAFKA:-}" ]; then
    log "using the given Kafka cluster $MORGUE_TEST_KAFKA"
    echo "export MORGUE_TEST_KAFKA='$MORGUE_TEST_KAFKA'"
  fi
  if [ -n "${MORGUE_TEST_MONGO_URI:-}" ]; then
    log "using the given MongoDB $MORGUE_TEST_MONGO_URI"
    echo "export MORGUE_TEST_MONGO_URI='$MORGUE_TEST_MONGO_URI'"
  fi
  if [ -z "${MORGUE_TEST_KAFKA:-}" ] || [ -z "${MORGUE_TEST_MONGO_URI:-}" ]; then
    ensure_venv
  fi
  if [ -z "${MORGUE_TEST_KAFKA:-}" ]; then
    running kafka || start_kafka
    cat "$STATE/kafka.env"
  fi
  if [ -z "${MORGUE_TEST_MONGO_URI:-}" ]; then
    running mongo || start_mongo
    cat "$STATE/mongo.env"
  fi
}

stop_one() {
  local name=$1 pid i
  [ -f "$STATE/$name.pid" ] || return 0
  pid=$(cat "$STATE/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name (pid $pid) ignored SIGTERM for 15s; killing it"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped $name"
  fi
  rm -f "$STATE/$name.pid" "$STATE/$name.env"
}

cmd_down() {
  stop_one kafka
  stop_one mongo
}

cmd_env() {
  local found=0 name
  for name in kafka mongo; do
    if running "$name" && [ -f "$STATE/$name.env" ]; then
      cat "$STATE/$name.env"
      found=1
    fi
  done
  [ "$found" = 1 ] || { log "no services running; run: eval \"\$(scripts/services.sh up)\""; return 1; }
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  env) cmd_env ;;
  python) shift; ensure_venv; exec "$VENV/bin/python" "$@" ;;
  *) echo "usage: scripts/services.sh up|down|env|python ARGS" >&2; exit 2 ;;
esac
