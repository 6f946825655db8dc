"""Feeds the demo's `trades` topic with a stream of trade messages, a few of which
fail in different ways: broken JSON, a negative price, a downstream that only works
on the second try, and messages too old to process. Runs until killed.

usage: demo_feed.py BROKERS TOPIC [MESSAGES_PER_SECOND]
"""
import json
import random
import sys
import time
import uuid

from confluent_kafka import Producer

brokers, topic = sys.argv[1], sys.argv[2]
rate = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
p = Producer({"bootstrap.servers": brokers, "linger.ms": 5})
symbols = ["ACME", "BOLT", "CRANE", "DYNE", "EMBER"]
i = 0
while True:
    i += 1
    trade = {"trade_id": f"T-{i:06d}", "symbol": random.choice(symbols),
             "side": random.choice(["BUY", "SELL"]), "qty": random.randint(1, 500),
             "price": round(random.uniform(10, 500), 2)}
    ts = None
    roll = random.random()
    if roll < 0.04:
        value = ('{"trade_id": "T-%06d", "symbol": "ACME", "price": 12.5' % i).encode()  # broken JSON
    elif roll < 0.08:
        trade["price"] = -abs(trade["price"])  # invalid field
        value = json.dumps(trade).encode()
    elif roll < 0.12:
        trade["downstream"] = "flaky"  # succeeds on the second attempt
        value = json.dumps(trade).encode()
    elif roll < 0.15:
        ts = int(time.time() * 1000) - 2 * 3600 * 1000  # two hours old: expires
        value = json.dumps(trade).encode()
    else:
        value = json.dumps(trade).encode()
    kwargs = {"timestamp": ts} if ts else {}
    p.produce(topic, key=str(uuid.uuid4()).encode(), value=value,
              headers=[("content-type", b"application/json")], **kwargs)
    p.poll(0)
    time.sleep(1.0 / rate)
