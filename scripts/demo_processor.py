"""The demo's trade processor, run by `morgue route --exec` once per message.

Value on stdin. Exit 0: processed. Exit 65: bad data (dead-lettered at once).
Any other exit: a failure worth retrying (dead-lettered after the last attempt).
"""
import json
import os
import sys

raw = sys.stdin.buffer.read()
try:
    trade = json.loads(raw)
except ValueError as e:
    print(f"json.decoder.JSONDecodeError: {e}", file=sys.stderr)
    sys.exit(65)
if not isinstance(trade, dict) or trade.get("price", 0) <= 0:
    print(f"ValidationError: price must be positive, got {trade.get('price')!r}", file=sys.stderr)
    sys.exit(65)
if trade.get("downstream") == "flaky" and os.environ.get("MORGUE_ATTEMPT") == "1":
    print("TimeoutError: pricing service did not answer within 2s", file=sys.stderr)
    sys.exit(75)
sys.exit(0)
