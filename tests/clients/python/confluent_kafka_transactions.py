"""Transactions with librdkafka 2.0.2 through Debian's python3-confluent-kafka against Moldau.

Usage: /usr/bin/python3 confluent_kafka_transactions.py BOOTSTRAP PREFIX
A transactional producer and read_committed consumers: commit and abort over several partitions,
an open transaction holding read_committed back, offsets sent to a transaction (committed and
aborted), zombie fencing by a second producer of the same transactional.id, and a transaction
left open until the broker aborts it (the broker under test aborts timed-out transactions every
500 ms). Prints one JSON object of named checks (true when they held) and facts.
"""
import json
import sys
import time

import confluent_kafka
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, prefix = sys.argv[1], sys.argv[2]
checks = {}
facts = {"version": confluent_kafka.version()[0], "librdkafka": confluent_kafka.libversion()[0]}
admin = AdminClient({"bootstrap.servers": bootstrap})
PARTITIONS = 3


def create(topic, partitions=PARTITIONS):
    for f in admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)]).values():
        f.result(30)


def transactional(transactional_id, **extra):
    config = {"bootstrap.servers": bootstrap, "transactional.id": transactional_id, "linger.ms": 5}
    config.update(extra)
    p = Producer(config)
    p.init_transactions(30)
    return p


def produce(producer, topic, tag, per_partition=10):
    for i in range(per_partition):
        for p in range(PARTITIONS):
            producer.produce(topic, key=b"%s-%d-%d" % (tag.encode(), p, i), value=tag.encode(), partition=p)
    producer.flush(30)


def read(topic, isolation, partitions=PARTITIONS):
    """Every record from the start to the end each partition has for this isolation level (the LSO for read_committed)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": prefix + "-reader", "enable.auto.commit": False,
                         "isolation.level": isolation, "enable.partition.eof": True})
    consumer.assign([TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING) for p in range(partitions)])
    records, at_end = [], set()
    deadline = time.time() + 30
    while len(at_end) < partitions and time.time() < deadline:
        m = consumer.poll(0.2)
        if m is None:
            continue
        if m.error():
            if m.error().code() == confluent_kafka.KafkaError._PARTITION_EOF:
                at_end.add(m.partition())
            continue
        at_end.discard(m.partition())
        records.append((m.partition(), m.key(), m.value()))
    consumer.close()
    return records if len(at_end) == partitions else None


def values(records):
    return None if records is None else sorted(v.decode() for _, _, v in records)


def attempt(name, body):
    """Runs one scenario; an exception fails its checks (recorded as a fact) rather than the whole matrix."""
    try:
        body()
    except Exception as e:  # noqa: BLE001 - any failure is a failed check
        checks[name + "_ran"] = False
        facts[name + "_error"] = repr(e)


def commit_and_abort():
    topic = prefix + "-commit-abort"
    create(topic)
    producer = transactional(prefix + "-tx-ca")
    producer.begin_transaction()
    produce(producer, topic, "committed")
    producer.commit_transaction(30)
    producer.begin_transaction()
    produce(producer, topic, "aborted")
    producer.abort_transaction(30)
    checks["read_committed_sees_only_committed_over_3_partitions"] = values(read(topic, "read_committed")) == ["committed"] * 30
    uncommitted = values(read(topic, "read_uncommitted"))
    checks["read_uncommitted_sees_aborted_too"] = uncommitted is not None and uncommitted.count("aborted") == 30 and uncommitted.count("committed") == 30
    committed = read(topic, "read_committed")
    checks["read_committed_each_partition_in_order"] = committed is not None and all(
        [k for q, k, _ in committed if q == p] == [b"committed-%d-%d" % (p, i) for i in range(10)] for p in range(PARTITIONS))

    # An open transaction holds read_committed back at its first record; its commit releases it.
    producer.begin_transaction()
    produce(producer, topic, "open", per_partition=3)
    checks["open_transaction_invisible_to_read_committed"] = values(read(topic, "read_committed")) == ["committed"] * 30
    producer.commit_transaction(30)
    checks["committed_later_visible"] = values(read(topic, "read_committed")) == ["committed"] * 30 + ["open"] * 9
    facts["watermarks_after_three_transactions"] = [Consumer({"bootstrap.servers": bootstrap, "group.id": prefix + "-w"})
                                                    .get_watermark_offsets(TopicPartition(topic, p), 10)[1] for p in range(PARTITIONS)]
    # 10 committed + marker, 10 aborted + marker, 3 + marker on each partition.
    checks["markers_take_an_offset_each"] = facts["watermarks_after_three_transactions"] == [26] * PARTITIONS


def send_offsets():
    source, sink, group = prefix + "-source", prefix + "-sink", prefix + "-group"
    create(source)
    create(sink)
    seed = Producer({"bootstrap.servers": bootstrap})
    for i in range(30):
        seed.produce(source, value=b"in-%d" % i, partition=i % PARTITIONS)
    seed.flush(30)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    consumer.subscribe([source])
    consumed = []
    deadline = time.time() + 30
    while len(consumed) < 30 and time.time() < deadline:
        for m in consumer.consume(30, 0.5):
            if not m.error():
                consumed.append(m)
    checks["group_consumed_input"] = len(consumed) == 30
    producer = transactional(prefix + "-tx-offsets")

    def committed_offsets():
        return [tp.offset for tp in consumer.committed([TopicPartition(source, p) for p in range(PARTITIONS)], 10)]

    # Aborted: neither the output nor the offsets.
    producer.begin_transaction()
    for m in consumed:
        producer.produce(sink, value=b"out-" + m.value(), partition=m.partition())
    producer.send_offsets_to_transaction(consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 30)
    producer.abort_transaction(30)
    checks["aborted_offsets_not_committed"] = all(o < 0 for o in committed_offsets())
    # Committed: both.
    producer.begin_transaction()
    for m in consumed:
        producer.produce(sink, value=b"out-" + m.value(), partition=m.partition())
    producer.send_offsets_to_transaction(consumer.position(consumer.assignment()), consumer.consumer_group_metadata(), 30)
    producer.commit_transaction(30)
    facts["committed_offsets"] = committed_offsets()
    checks["committed_offsets_at_input_ends"] = facts["committed_offsets"] == [10] * PARTITIONS
    checks["output_once"] = values(read(sink, "read_committed")) == sorted("out-in-%d" % i for i in range(30))
    consumer.close()

    # A new member of the group starts at the offsets the transaction committed: nothing left.
    again = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False,
                      "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    again.subscribe([source])
    left = [m for m in again.consume(30, 5) if not m.error()]
    checks["next_member_resumes_after_committed_offsets"] = left == []
    again.close()


def zombie_fencing():
    topic = prefix + "-zombie"
    create(topic)
    transactional_id = prefix + "-tx-zombie"
    zombie = transactional(transactional_id)
    zombie.begin_transaction()
    produce(zombie, topic, "zombie", per_partition=5)
    successor = transactional(transactional_id)
    try:
        zombie.commit_transaction(30)
        checks["zombie_commit_refused"] = False
    except KafkaException as e:
        facts["zombie_error"] = str(e.args[0])
        checks["zombie_commit_refused"] = True
        checks["zombie_error_fatal"] = e.args[0].fatal()
    successor.begin_transaction()
    produce(successor, topic, "successor", per_partition=5)
    successor.commit_transaction(30)
    checks["zombie_records_aborted_successor_committed"] = values(read(topic, "read_committed")) == ["successor"] * 15


def timeout():
    topic = prefix + "-timeout"
    create(topic, 1)
    producer = transactional(prefix + "-tx-timeout", **{"transaction.timeout.ms": 2000})
    producer.begin_transaction()
    for i in range(3):
        producer.produce(topic, value=b"abandoned", partition=0)
    producer.flush(30)
    time.sleep(4)
    # The broker aborted it: an ABORT marker after the 3 records, and read_committed sees none of them.
    watermark = Consumer({"bootstrap.servers": bootstrap, "group.id": prefix + "-w"}).get_watermark_offsets(TopicPartition(topic, 0), 10)[1]
    facts["timed_out_watermark"] = watermark
    checks["timed_out_transaction_aborted_by_broker"] = watermark == 4 and read(topic, "read_committed", 1) == []
    try:
        producer.commit_transaction(30)
        checks["commit_after_timeout_refused"] = False
    except KafkaException as e:
        facts["timeout_error"] = str(e.args[0])
        checks["commit_after_timeout_refused"] = True


attempt("commit_abort", commit_and_abort)
attempt("send_offsets", send_offsets)
attempt("zombie", zombie_fencing)
attempt("timeout", timeout)
print(json.dumps({"checks": checks, "facts": facts}))
