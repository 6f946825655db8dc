"""Seeds a MongoDB DLQ collection with N documents of the pymongo pattern, then times
a plain pymongo loop over it (the peer `morgue list --mongo` is compared with).

usage: seed_mongo.py URI DB COLLECTION N        seeds
       seed_mongo.py URI DB COLLECTION --scan   prints the loop's seconds
"""
import datetime
import json
import sys
import time

import pymongo

uri, db, name = sys.argv[1:4]
coll = pymongo.MongoClient(uri)[db][name]
if sys.argv[4] == "--scan":
    start = time.time()
    n = 0
    for doc in coll.find():
        n += 1
    print(f"{time.time() - start:.3f} {n}")
    sys.exit(0)
n = int(sys.argv[4])
coll.drop()
pad = "x" * 220
base = datetime.datetime(2026, 11, 1)
batch = []
for i in range(n):
    value = json.dumps({"trade_id": f"T-{i:09d}", "symbol": "ACME", "price": 100.0 + i % 97, "note": pad})
    batch.append({"key": f"T-{i:09d}".encode(), "value": value, "topic": "trades",
                  "partition": i % 6, "offset": i, "timestamp": (1, 1732700000000 + i),
                  "error_time": base + datetime.timedelta(milliseconds=i)})
    if len(batch) == 5000:
        coll.insert_many(batch)
        batch = []
if batch:
    coll.insert_many(batch)
print(f"seeded {coll.estimated_document_count()} documents", file=sys.stderr)
