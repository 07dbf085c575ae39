"""The client matrix for kafka-python (Debian's python3-kafka 2.0.2) against Moldau.

Usage: /usr/bin/python3 kafka_python_matrix.py BOOTSTRAP PREFIX
Prints one JSON object of named checks (true when they held) and facts; exits non-zero on an
unexpected exception.
"""
import json
import sys
import time

import kafka
import kafka.codec
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

bootstrap, prefix = sys.argv[1], sys.argv[2]
checks = {}
facts = {"version": kafka.__version__}

admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kafka-python-matrix")

# Admin: create a 3-partition topic, list, describe, delete.
admin_topic = prefix + "-admin"
admin.create_topics([NewTopic(admin_topic, num_partitions=3, replication_factor=1)])
checks["admin_listed"] = admin_topic in admin.list_topics()
described = admin.describe_topics([admin_topic])
checks["admin_described_3_partitions"] = len(described[0]["partitions"]) == 3
admin.delete_topics([admin_topic])
time.sleep(0.2)
checks["admin_deleted"] = admin_topic not in admin.list_topics()


def key_of(i):
    return [None, b"", bytes([0, 255, i % 256, 0x80]), b"key-%d" % i][i % 4]


def value_of(i):
    return b"value-%d-" % i + b"z" * (i % 100)


def read_all(topic, count):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=20000)
    consumer.assign([TopicPartition(topic, p) for p in range(3)])
    consumer.seek_to_beginning()
    seen = {}
    for m in consumer:
        seen[m.value] = m
        if len(seen) == count:
            break
    consumer.close()
    return seen


# 5,000 records with null, empty and binary keys, headers and timestamps: once per codec this
# installation supports, and with acks 0, 1 and all.
codecs = [c for c, ok in (("gzip", True), ("snappy", kafka.codec.has_snappy()), ("lz4", kafka.codec.has_lz4()),
                          ("zstd", kafka.codec.has_zstd())) if ok]
facts["codecs"] = codecs
runs = [(None, "all")] + [(c, "all") for c in codecs] + [("gzip", 1), (None, 0)]
base_time = int(time.time() * 1000) - 100000
for codec, acks in runs:
    topic = "%s-%s-%s" % (prefix, codec or "none", acks)
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=acks, compression_type=codec, linger_ms=5)
    for i in range(5000):
        headers = [] if i % 3 == 0 else [("h1", bytes([i % 256])), ("h2", b"x")]
        producer.send(topic, key=key_of(i), value=value_of(i), headers=headers, partition=i % 3, timestamp_ms=base_time + i)
    producer.flush()
    producer.close()
    seen = read_all(topic, 5000)
    ok = len(seen) == 5000
    for i in range(5000):
        m = seen.get(value_of(i))
        headers = [] if i % 3 == 0 else [("h1", bytes([i % 256])), ("h2", b"x")]
        if m is None or m.key != key_of(i) or m.timestamp != base_time + i or list(m.headers) != headers:
            ok = False
            break
    checks["records_%s_acks_%s" % (codec or "none", acks)] = ok
    if codec is None and acks == "all":
        # ListOffsets by timestamp: the first record at or after it.
        consumer = KafkaConsumer(bootstrap_servers=bootstrap)
        found = consumer.offsets_for_times({TopicPartition(topic, 1): base_time + 3000})
        checks["offsets_for_times"] = found[TopicPartition(topic, 1)].offset == 1000
        consumer.close()

# A group of two splits a 4-partition topic, commits, leaves; a new member resumes exactly.
group_topic = prefix + "-group"
admin.create_topics([NewTopic(group_topic, num_partitions=4, replication_factor=1)])
producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
for i in range(200):
    producer.send(group_topic, value=b"g%d" % i, partition=i % 4)
producer.flush()
group = prefix + "-g"


def member():
    c = KafkaConsumer(group_topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False, session_timeout_ms=6000, heartbeat_interval_ms=1000)
    return c


# Each member polls on its own thread: a poll blocks while its join round waits for the others.
import threading

a, b = member(), member()
seen = set()
lock = threading.Lock()
stop = {"a": False, "b": False}


def run(name, c):
    while not stop[name]:
        for records in c.poll(timeout_ms=100).values():
            with lock:
                seen.update(r.value for r in records)


threads = {n: threading.Thread(target=run, args=(n, c)) for n, c in (("a", a), ("b", b))}
for t in threads.values():
    t.start()
deadline = time.time() + 60
while time.time() < deadline and (len(seen) < 200 or not a.assignment() or not b.assignment()
                                  or len(a.assignment() | b.assignment()) != 4):
    time.sleep(0.1)
checks["group_split"] = len(a.assignment()) > 0 and len(b.assignment()) > 0 and not (a.assignment() & b.assignment())
checks["group_consumed_all"] = len(seen) == 200
stop["a"] = stop["b"] = True
for t in threads.values():
    t.join()
for c in (a, b):
    for _ in range(50):
        try:
            c.commit()
            break
        except kafka.errors.CommitFailedError:
            c.poll(timeout_ms=100)

# b leaves: a gets all four partitions before the session timeout could expire b.
b_left = time.time()
b.close()
while len(a.assignment()) != 4 and time.time() - b_left < 20:
    a.poll(timeout_ms=100)
checks["leave_rebalances_fast"] = len(a.assignment()) == 4 and time.time() - b_left < 5
facts["leave_rebalance_s"] = round(time.time() - b_left, 2)
a.close()

for i in range(200, 210):
    producer.send(group_topic, value=b"g%d" % i, partition=i % 4)
producer.flush()
producer.close()
c = member()
resumed = set()
deadline = time.time() + 30
while time.time() < deadline and len(resumed) < 10:
    for records in c.poll(timeout_ms=200).values():
        for r in records:
            resumed.add(r.value)
time.sleep(0.5)
for records in c.poll(timeout_ms=500).values():
    for r in records:
        resumed.add(r.value)
checks["new_member_resumes_exactly"] = resumed == {b"g%d" % i for i in range(200, 210)}
c.close()
admin.close()

print(json.dumps({"checks": checks, "facts": facts}))
