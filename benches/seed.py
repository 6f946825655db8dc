"""Seeds a Kafka DLQ topic with N realistic dead letters for the benchmarks.

Each letter is a ~500-byte JSON trade with the Spring DLT header set (binary
partition/offset/timestamp), as a JVM consumer would have written it. One price
in 997 is negative (spread over all partitions), so a payload search
($.price<0) has sparse hits.

usage: seed.py BROKERS TOPIC N PARTITIONS
Set SEED_ONE_PER_BATCH=1 for Tansu, whose high watermark is only right when every
produce batch holds one record. Set SEED_TRANSACTIONAL=1 to write each letter in its
own transaction, as Spring with transactions, Kafka Streams or Connect exactly-once
do: a commit marker follows each letter, so offsets count twice the letters.
"""
import os
import json
import struct
import sys
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

brokers, topic, n, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
admin = AdminClient({"bootstrap.servers": brokers})
for f in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
    f.result()
one = os.environ.get("SEED_ONE_PER_BATCH") == "1"
txn = os.environ.get("SEED_TRANSACTIONAL") == "1"
conf = {"bootstrap.servers": brokers, "linger.ms": 0 if one or txn else 20,
        "batch.num.messages": 1 if one else 2000,
        "queue.buffering.max.messages": 200000, "compression.type": "none"}
if txn:
    conf["transactional.id"] = f"seed-{topic}"
p = Producer(conf)
if txn:
    p.init_transactions()
start = time.time()
pad = "x" * 220
for i in range(n):
    price = -1.5 if i % 997 == 5 else 100.0 + (i % 97)
    value = json.dumps({"trade_id": f"T-{i:09d}", "symbol": "ACME", "side": "BUY",
                        "qty": 100 + i % 50, "price": price, "venue": "XNYS",
                        "ts": 1732700000000 + i, "note": pad}).encode()
    headers = [
        ("kafka_dlt-original-topic", b"trades"),
        ("kafka_dlt-original-partition", struct.pack(">i", i % 6)),
        ("kafka_dlt-original-offset", struct.pack(">q", i)),
        ("kafka_dlt-original-timestamp", struct.pack(">q", 1732700000000 + i)),
        ("kafka_dlt-exception-fqcn", b"com.acme.trades.ValidationException"),
        ("kafka_dlt-exception-message", b"price out of band"),
    ]
    if txn:
        p.begin_transaction()
    while True:
        try:
            p.produce(topic, key=f"T-{i:09d}".encode(), value=value, headers=headers, partition=i % partitions)
            break
        except BufferError:
            p.poll(0.05)
    if txn:
        p.commit_transaction()
    if i % 10000 == 0:
        p.poll(0)
p.flush(120)
print(f"seeded {n} letters into {topic} in {time.time() - start:.1f}s", file=sys.stderr)
