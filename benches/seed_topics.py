"""Creates many small DLQ topics for the overview benchmark (`morgue dlqs`).

usage: seed_topics.py BROKERS PREFIX TOPICS [FILLED]
Creates TOPICS topics named PREFIX-<i>.DLT with one partition each; the first
FILLED (default 100) get 20 letters spread over the last two days.
"""
import sys
import time

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

brokers, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
filled = int(sys.argv[4]) if len(sys.argv) > 4 else 100
admin = AdminClient({"bootstrap.servers": brokers})
names = [f"{prefix}-{i:05d}.DLT" for i in range(n)]
for start in range(0, n, 200):
    for f in admin.create_topics([NewTopic(t, 1, 1) for t in names[start:start + 200]]).values():
        f.result()
p = Producer({"bootstrap.servers": brokers, "linger.ms": 5})
now = int(time.time() * 1000)
for t in names[:filled]:
    for j in range(20):
        p.produce(t, key=f"{j:08d}-0000-4000-8000-{j:012d}", value=b'{"n":1}',
                  timestamp=now - (20 - j) * 2 * 3600 * 1000)
p.flush(30)
print(f"{n} topics, {filled} with 20 letters each")
