"""The client matrix for librdkafka 2.0.2 through Debian's python3-confluent-kafka against Moldau.

Usage: /usr/bin/python3 confluent_kafka_matrix.py BOOTSTRAP PREFIX
Prints one JSON object of named checks (true when they held) and facts.
"""
import json
import sys
import threading
import time

import confluent_kafka
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, prefix = sys.argv[1], sys.argv[2]
checks = {}
facts = {"version": confluent_kafka.version()[0], "librdkafka": confluent_kafka.libversion()[0]}
admin = AdminClient({"bootstrap.servers": bootstrap})


def create(topic, partitions):
    for f in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        f.result(30)


admin_topic = prefix + "-admin"
create(admin_topic, 3)
metadata = admin.list_topics(timeout=10)
checks["admin_listed"] = admin_topic in metadata.topics
checks["admin_described_3_partitions"] = len(metadata.topics[admin_topic].partitions) == 3
for f in admin.delete_topics([admin_topic]).values():
    f.result(30)
checks["admin_deleted"] = admin_topic not in admin.list_topics(timeout=10).topics


def key_of(i):
    return [None, b"", bytes([0, 255, i % 256, 0x80]), b"key-%d" % i][i % 4]


def value_of(i):
    return b"value-%d-" % i + b"z" * (i % 100)


def headers_of(i):
    return None if i % 3 == 0 else [("h1", bytes([i % 256])), ("h2", b"x")]


base_time = int(time.time() * 1000) - 100000
for codec, acks, idempotent in [("none", "all", True), ("gzip", "all", False), ("snappy", "all", False), ("lz4", "all", False),
                                ("zstd", "all", False), ("lz4", "1", False), ("none", "0", False)]:
    topic = "%s-%s-%s" % (prefix, codec, acks)
    create(topic, 3)
    config = {"bootstrap.servers": bootstrap, "compression.codec": codec, "acks": acks, "linger.ms": 5}
    if idempotent:
        config["enable.idempotence"] = True
    producer = Producer(config)
    errors = []
    for i in range(5000):
        producer.produce(topic, key=key_of(i), value=value_of(i), headers=headers_of(i), partition=i % 3, timestamp=base_time + i,
                         on_delivery=lambda err, msg: err and errors.append(err))
        producer.poll(0)
    producer.flush(60)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic + "-reader", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in range(3)])
    seen = {}
    deadline = time.time() + 30
    while len(seen) < 5000 and time.time() < deadline:
        m = consumer.poll(0.2)
        if m is not None and not m.error():
            seen[m.value()] = m
    ok = len(seen) == 5000 and not errors
    for i in range(5000):
        m = seen.get(value_of(i))
        if m is None or m.key() != key_of(i) or m.timestamp()[1] != base_time + i or (m.headers() or None) != headers_of(i):
            ok = False
            break
    checks["records_%s_acks_%s%s" % (codec, acks, "_idempotent" if idempotent else "")] = ok
    if idempotent:
        found = consumer.offsets_for_times([TopicPartition(topic, 1, base_time + 3000)], 10)
        checks["offsets_for_times"] = found[0].offset == 1000
    consumer.close()

# A group of two splits a 4-partition topic, commits, one leaves; a new member resumes exactly.
group_topic = prefix + "-group"
create(group_topic, 4)
producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
for i in range(200):
    producer.produce(group_topic, value=b"g%d" % i, partition=i % 4)
producer.flush(30)
group = prefix + "-g"
seen = set()
lock = threading.Lock()
assigned = {}


def member(name):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 1000})

    def on_assign(consumer, partitions):
        assigned[name] = (len(partitions), time.time())

    c.subscribe([group_topic], on_assign=on_assign)
    return c


stop = {}


def run(name, c):
    while not stop.get(name):
        m = c.poll(0.1)
        if m is not None and not m.error():
            with lock:
                seen.add(m.value())
            c.commit(message=m, asynchronous=False)


a, b = member("a"), member("b")
threads = {n: threading.Thread(target=run, args=(n, c)) for n, c in (("a", a), ("b", b))}
for t in threads.values():
    t.start()
deadline = time.time() + 60
while time.time() < deadline and (len(seen) < 200 or assigned.get("a", (0,))[0] + assigned.get("b", (0,))[0] != 4
                                  or assigned.get("a", (0,))[0] == 0 or assigned.get("b", (0,))[0] == 0):
    time.sleep(0.1)
checks["group_split"] = assigned.get("a", (0,))[0] > 0 and assigned.get("b", (0,))[0] > 0
checks["group_consumed_all"] = len(seen) == 200
time.sleep(0.5)
stop["b"] = True
threads["b"].join()
left = time.time()
b.close()
while time.time() - left < 20 and not (assigned["a"][0] == 4 and assigned["a"][1] > left):
    time.sleep(0.05)
facts["leave_rebalance_s"] = round(assigned["a"][1] - left, 2)
checks["leave_rebalances_fast"] = assigned["a"][0] == 4 and 0 < assigned["a"][1] - left < 5
stop["a"] = True
threads["a"].join()
a.close()

for i in range(200, 210):
    producer.produce(group_topic, value=b"g%d" % i, partition=i % 4)
producer.flush(30)
c = member("c")
resumed = set()
deadline = time.time() + 30
while time.time() < deadline and len(resumed) < 10:
    m = c.poll(0.2)
    if m is not None and not m.error():
        resumed.add(m.value())
end = time.time() + 1
while time.time() < end:
    m = c.poll(0.1)
    if m is not None and not m.error():
        resumed.add(m.value())
checks["new_member_resumes_exactly"] = resumed == {b"g%d" % i for i in range(200, 210)}
c.close()

print(json.dumps({"checks": checks, "facts": facts}))
