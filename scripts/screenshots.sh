#!/usr/bin/env bash
# Makes the PNGs in screenshots/ from real tmux sessions of the binary on a live DLQ:
# the demo's feed (UUID keys) and router keep filling two DLQs while the shots are
# taken. Screens: the overview, the list with its preview, the detail's tabs, the
# triage board, the replay dialog, a replay that failed again, the profile picker,
# a group fixed by a jq transform (transform.png) and the light theme, and the narrow panes (narrow-*: the list, triage, detail and
# overview at 80x24 and 50x20). Pipeline: tmux capture-pane -e (ANSI) -> aha (HTML)
# -> headless Chromium screenshot. Installs tmux, aha and chromium when missing.
#   SHOTS=narrow scripts/screenshots.sh    only the narrow panes
#   SHOTS=transform scripts/screenshots.sh only the transform prompt
#   MORGUE_BIN=target/debug/morgue ...     that binary instead of a release build
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
scripts/bootstrap.sh
need=()
command -v aha >/dev/null || need+=(aha)
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
eval "$(scripts/services.sh up)"
B=$MORGUE_TEST_KAFKA
if [ -n "${MORGUE_BIN:-}" ]; then
  MORGUE=$(realpath "$MORGUE_BIN")
else
  cargo build --release --quiet
  MORGUE="$ROOT/target/release/morgue"
fi
SHOTS=${SHOTS:-all}
PY="$ROOT/.venv/bin/python"
run=$(date +%s)
SRC=trades-shots-$run
DLQ=$SRC.DLT
PAY=payments-shots-$run
"$PY" - "$B" "$SRC" "$DLQ" "$PAY" <<'PY'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": sys.argv[1]})
topics = [NewTopic(sys.argv[2], 3, 1), NewTopic(sys.argv[3], 2, 1), NewTopic(sys.argv[4], 2, 1),
          NewTopic(sys.argv[4] + "-dlq", 1, 1)]
for f in a.create_topics(topics).values():
    f.result()
PY
work=$(mktemp -d)
pids=()
"$PY" scripts/demo_feed.py "$B" "$SRC" 20 & pids+=($!)
"$PY" scripts/demo_feed.py "$B" "$PAY" 5 & pids+=($!)
for s in "$SRC" "$PAY"; do
  dlq=$([ "$s" = "$SRC" ] && echo "$DLQ" || echo "$s-dlq")
  "$MORGUE" route --kafka "$B" --topic "$dlq" --source "$s" --group "shots-$run" \
    --exec "$PY $ROOT/scripts/demo_processor.py" --max-attempts 2 --backoff 50ms --max-age 10m \
    >/dev/null 2>>"$work/router.log" & pids+=($!)
done
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 25
cat > "$work/config.toml" <<TOML
[profiles.trades-prod]
kafka = "$B"
topic = "$DLQ"
production = true

[profiles.trades-staging]
kafka = "$B"
topic = "$DLQ"
read_only = true

[profiles.payments]
kafka = "$B"
topic = "$PAY-dlq"
TOML
{ echo 'theme = "light"'; cat "$work/config.toml"; } > "$work/light.toml"

S=morgue-shots-$run
shot() { # NAME [W,H]: the current screen as screenshots/NAME.png (window W,H pixels)
  tmux capture-pane -e -p -t "$S" > "$work/$1.ans"
  aha --black --title "morgue" < "$work/$1.ans" |
    sed 's|<pre>|<pre style="font-family: DejaVu Sans Mono, monospace; font-size: 14px; line-height: 1.2; margin: 8px">|' > "$work/$1.html"
  chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$work/chrome" \
    --hide-scrollbars --window-size="${2:-1420,760}" --screenshot="$ROOT/screenshots/$1.png" \
    "file://$work/$1.html" >/dev/null 2>&1
  echo "screenshots/$1.png" >&2
}
keys() { for k in "$@"; do tmux send-keys -t "$S" "$k"; sleep 0.3; done; sleep 1; }
session() { # CONFIG ARGS...: morgue in a fresh session of COLSxROWS (160x40)
  tmux kill-session -t "$S" 2>/dev/null || true
  local config=$1; shift
  tmux new-session -d -s "$S" -x "${COLS:-160}" -y "${ROWS:-40}" \
    "MORGUE_CONFIG=$config MORGUE_AUDIT_LOG=$work/audit.jsonl $MORGUE $*; sleep 5"
  sleep 5
}

if [ "$SHOTS" = all ]; then
# The overview of both DLQs.
session "$work/config.toml" --kafka "$B" --pattern "'*shots-$run.DLT'" --pattern "'*shots-$run-dlq'"
shot overview
keys q

# The list with its preview, and a replay that fails again (broken JSON).
session "$work/config.toml" --kafka "$B" --topic "$DLQ"
keys j j
shot list
keys / 'error:JSONDecodeError' Enter
sleep 3
keys r
sleep 2
shot replay-dialog
keys Enter
sleep 15
keys Enter Tab Tab Tab
shot failed-again
keys Escape / C-u Enter
sleep 3
keys j j j Enter
shot detail
keys Tab
shot headers
keys Tab
shot error
keys Escape t
shot triage
keys t P
shot profiles
keys Escape q

fi

# Fixing a group with a jq transform: the triage board's ValidationError group (the
# negative prices), the prompt with its live preview.
if [ "$SHOTS" = all ] || [ "$SHOTS" = transform ]; then
session "$work/config.toml" --kafka "$B" --topic "$DLQ"
keys t
# Groups reorder as letters arrive: move down until the selected row (blue: 44 or
# 48;5;4) is it.
for _ in 1 2 3 4 5 6; do
  tmux capture-pane -e -p -t "$S" | grep 'ValidationError' | grep -q $'\e\[\(44\|48;5;4\)m' && break
  keys j
done
keys '|' '.price |= (if . < 0 then -. else . end)'
sleep 3
shot transform
keys Escape q
fi

if [ "$SHOTS" = all ]; then
# The light theme.
session "$work/light.toml" --kafka "$B" --topic "$DLQ"
keys j j
shot list-light
keys q
fi

# Narrow panes, as in a split tmux window over ssh.
[ "$SHOTS" = transform ] || for size in 80x24 50x20; do
  COLS=${size%x*} ROWS=${size#*x}
  px="$((COLS * 9 + 24)),$((ROWS * 17 + 24))"
  COLS=$COLS ROWS=$ROWS session "$work/config.toml" --kafka "$B" --topic "$DLQ"
  keys j j
  shot "narrow-list-$size" "$px"
  keys t
  shot "narrow-triage-$size" "$px"
  keys t Enter
  shot "narrow-detail-$size" "$px"
  keys Escape q
  COLS=$COLS ROWS=$ROWS session "$work/config.toml" --kafka "$B" --pattern "'*shots-$run.DLT'" --pattern "'*shots-$run-dlq'"
  shot "narrow-overview-$size" "$px"
  keys q
done
tmux kill-session -t "$S" 2>/dev/null || true
