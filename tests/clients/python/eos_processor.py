"""An exactly-once read-process-write loop on librdkafka 2.0.2 (Debian's python3-confluent-kafka).

Usage: /usr/bin/python3 eos_processor.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID

Consumes INPUT with isolation.level=read_committed in GROUP (static membership, so a restarted
processor takes its predecessor's place at once), and for each input record produces one record
to OUTPUT, same key, same partition number, value "out:" + input value, in a transaction that
also carries the consumed offsets (send_offsets_to_transaction with the consumer's group
metadata). The broker under it is killed with SIGKILL at random moments: retriable errors are
retried, an abortable error aborts the transaction and rewinds to its first records, anything
else (fatal, fenced, or a call that keeps failing) exits non-zero and the test starts a new
processor, whose init_transactions aborts what the old one left open.

Prints one line per event to stdout: "committed N", "aborted: ERROR", "exit REASON".
"""
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

bootstrap, input_topic, output_topic, group, transactional_id = sys.argv[1:6]

# Short backoffs so the processor is back soon after the broker is.
common = {
    "bootstrap.servers": bootstrap,
    "reconnect.backoff.ms": 50,
    "reconnect.backoff.max.ms": 500,
    "socket.timeout.ms": 5000,
}
producer = Producer(dict(common, **{
    "transactional.id": transactional_id,
    "transaction.timeout.ms": 10000,
    "linger.ms": 5,
    "message.timeout.ms": 10000,
}))
consumer = Consumer(dict(common, **{
    "group.id": group,
    "group.instance.id": transactional_id,
    "session.timeout.ms": 6000,
    "max.poll.interval.ms": 20000,
    "isolation.level": "read_committed",
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
}))


def say(line):
    print(line, flush=True)


def leave(reason, code):
    say("exit " + reason)
    sys.exit(code)


def retrying(call, what, attempts=6):
    """Runs a transactional call, again while librdkafka says the error is retriable."""
    for attempt in range(attempts):
        try:
            return call()
        except KafkaException as e:
            error = e.args[0]
            if error.retriable() and attempt + 1 < attempts:
                time.sleep(0.2)
                continue
            raise


try:
    retrying(lambda: producer.init_transactions(10), "init_transactions")
except KafkaException as e:
    leave("init_transactions: %s" % e.args[0], 2)

consumer.subscribe([input_topic])
while True:
    batch = consumer.consume(num_messages=20, timeout=0.2)
    records = [m for m in batch if not m.error()]
    if not records:
        continue

    # Where each partition's records in this transaction start (to rewind to after an abort) and
    # the offset to commit for it (one past the last record processed).
    starts, ends = {}, {}
    for m in records:
        starts.setdefault(m.partition(), m.offset())
        ends[m.partition()] = m.offset() + 1
    try:
        producer.begin_transaction()
        for m in records:
            producer.produce(output_topic, key=m.key(), value=b"out:" + m.value(), partition=m.partition())
        offsets = [TopicPartition(input_topic, p, o) for p, o in sorted(ends.items())]
        retrying(lambda: producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 10), "send_offsets")
        retrying(lambda: producer.commit_transaction(10), "commit")
        say("committed %d" % len(records))
    except KafkaException as e:
        error = e.args[0]
        if error.fatal() or not error.txn_requires_abort():
            leave("%s (fatal=%s)" % (error, error.fatal()), 3)
        try:
            retrying(lambda: producer.abort_transaction(10), "abort")
        except KafkaException as abort_error:
            leave("abort: %s" % abort_error.args[0], 4)
        say("aborted: %s" % error)
        try:
            for p, o in starts.items():
                consumer.seek(TopicPartition(input_topic, p, o))
        except KafkaException as seek_error:
            # The partition is no longer ours (a rebalance): its next owner starts at the committed offset.
            leave("seek: %s" % seek_error.args[0], 5)
