#!/usr/bin/env bash
# Makes the PNGs in screenshots/ from real tmux sessions of the binary: a DLQ filled
# by the demo's router, then the list, a filter, a letter's detail, the triage board
# and the replay dialog. Pipeline: tmux capture-pane -e (ANSI) -> aha (HTML) ->
# headless Chromium screenshot. Installs tmux, aha and chromium when missing.
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
cargo build --release --quiet
MORGUE="$ROOT/target/release/morgue"
PY="$ROOT/.venv/bin/python"
run=$(date +%s)
SRC=trades-shots-$run
DLQ=$SRC.DLT
"$PY" - "$B" "$SRC" "$DLQ" <<'PY'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": sys.argv[1]})
for f in a.create_topics([NewTopic(sys.argv[2], 3, 1), NewTopic(sys.argv[3], 1, 1)]).values():
    f.result()
PY
work=$(mktemp -d)
"$PY" scripts/demo_feed.py "$B" "$SRC" 40 & feed=$!
"$MORGUE" route --kafka "$B" --topic "$DLQ" --source "$SRC" --group shots-$run \
  --exec "$PY $ROOT/scripts/demo_processor.py" --max-attempts 2 --backoff 50ms --max-age 10m \
  >/dev/null 2>"$work/router.log" & router=$!
sleep 25
kill "$feed" "$router" 2>/dev/null || true
wait 2>/dev/null || true

S=morgue-shots-$run
tmux kill-session -t "$S" 2>/dev/null || true
tmux new-session -d -s "$S" -x 120 -y 32 \
  "MORGUE_AUDIT_LOG=$work/audit.jsonl $MORGUE --kafka $B --topic $DLQ; sleep 5"
sleep 4
shot() { # NAME: the current screen as screenshots/NAME.png
  tmux capture-pane -e -p -t "$S" > "$work/$1.ans"
  aha --black --title "morgue" < "$work/$1.ans" |
    sed 's|<pre>|<pre style="font-family: DejaVu Sans Mono, monospace; font-size: 14px; line-height: 1.2; margin: 8px">|' > "$work/$1.html"
  chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$work/chrome" \
    --hide-scrollbars --window-size=1100,700 --screenshot="$ROOT/screenshots/$1.png" \
    "file://$work/$1.html" >/dev/null 2>&1
  echo "screenshots/$1.png" >&2
}
keys() { for k in "$@"; do tmux send-keys -t "$S" "$k"; sleep 0.3; done; sleep 1; }
shot list
keys / 'error:Validation' Enter
shot filter
keys j Enter
shot detail
keys Tab Tab
shot error
keys Escape / BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace BSpace Enter
sleep 3
keys t
shot triage
keys t r
shot replay-dialog
keys Escape q
tmux kill-session -t "$S" 2>/dev/null || true
rm -rf "$work"
