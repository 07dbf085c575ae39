"""kafka-python (Debian's python3-kafka 2.0.2) against Moldau: admin, producer, consumer group.

Usage: /usr/bin/python3 kafka_python_roundtrip.py BOOTSTRAP TOPIC GROUP
Prints one JSON line with what it saw; exits non-zero on failure.
"""
import json
import sys

import kafka
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]

admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="kafka-python-test")
admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
topics = admin.list_topics()
admin.close()

producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", compression_type="gzip", linger_ms=5)
for i in range(100):
    producer.send(topic, key=b"k%d" % i, value=b"v%d" % i)
producer.flush()
producer.close()

consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                         enable_auto_commit=False, consumer_timeout_ms=15000)
seen = {}
for message in consumer:
    seen[message.key.decode()] = message.value.decode()
    if len(seen) == 100:
        break
consumer.commit()
committed = sum(consumer.committed(TopicPartition(topic, p)) or 0 for p in range(3))
consumer.close()

print(json.dumps({"version": kafka.__version__, "topic_listed": topic in topics, "received": len(seen),
                  "values_match": all(seen.get("k%d" % i) == "v%d" % i for i in range(100)), "committed": committed}))
