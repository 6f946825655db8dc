"""The Avro decoding benchmark's Python side: seeds N Avro letters in Confluent's wire
format (confluent-kafka's AvroSerializer against REGISTRY_URL), or times the
AvroDeserializer loop over a topic's letters (consume and deserialize each).

usage: avro_bench.py seed BROKERS TOPIC REGISTRY_URL N
       avro_bench.py read BROKERS TOPIC REGISTRY_URL     (prints "SECONDS N")
"""
import json
import struct
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

mode, brokers, topic, url = sys.argv[1:5]
client = SchemaRegistryClient({"url": url})
ctx = SerializationContext("trades", MessageField.VALUE)
TRADE = json.dumps({
    "type": "record", "name": "Trade", "namespace": "acme",
    "fields": [{"name": "trade_id", "type": "string"}, {"name": "symbol", "type": "string"},
               {"name": "side", "type": "string"}, {"name": "qty", "type": "int"},
               {"name": "price", "type": "double"}, {"name": "venue", "type": "string"},
               {"name": "ts", "type": "long"}, {"name": "note", "type": "string"}],
})

if mode == "seed":
    n = int(sys.argv[5])
    admin = AdminClient({"bootstrap.servers": brokers})
    for f in admin.create_topics([NewTopic(topic, 4, 1)]).values():
        f.result()
    ser = AvroSerializer(client, TRADE)
    p = Producer({"bootstrap.servers": brokers, "linger.ms": 20, "batch.num.messages": 2000,
                  "queue.buffering.max.messages": 200000})
    pad = "x" * 220
    for i in range(n):
        v = ser({"trade_id": f"T-{i:09d}", "symbol": "ACME", "side": "BUY", "qty": 100 + i % 50,
                 "price": -1.5 if i % 997 == 5 else 100.0 + i % 97, "venue": "XNYS",
                 "ts": 1732700000000 + i, "note": pad}, ctx)
        headers = [("kafka_dlt-original-topic", b"trades"),
                   ("kafka_dlt-original-offset", struct.pack(">q", i)),
                   ("kafka_dlt-exception-fqcn", b"com.acme.trades.ValidationException")]
        while True:
            try:
                p.produce(topic, key=f"T-{i:09d}".encode(), value=v, headers=headers, partition=i % 4)
                break
            except BufferError:
                p.poll(0.05)
    p.flush(120)
else:
    deser = AvroDeserializer(client)
    c = Consumer({"bootstrap.servers": brokers, "group.id": "avro-bench", "enable.partition.eof": True,
                  "enable.auto.commit": False})
    parts = c.list_topics(topic, timeout=10).topics[topic].partitions
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    start, n, open_parts = time.time(), 0, set(parts)
    while open_parts:
        for m in c.consume(1000, 10):
            if m.error():
                open_parts.discard(m.partition())
                continue
            deser(m.value(), ctx)
            n += 1
    print(f"{time.time() - start:.3f} {n}")
