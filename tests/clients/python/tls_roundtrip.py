"""Produces and consumes over SSL with a client certificate, with confluent-kafka or kafka-python.

usage: tls_roundtrip.py confluent|kafka-python BOOTSTRAP TOPIC CA_PEM CERT_PEM KEY_PEM
Prints one JSON line {"produced": n, "consumed": n, "values_match": bool}; exits 1 when anything fails.
"""
import json
import sys
import time

lib, bootstrap, topic, ca, cert, key = sys.argv[1:7]
values = [f"tls-{i}".encode() for i in range(100)]
consumed = []

if lib == "confluent":
    from confluent_kafka import Consumer, Producer

    ssl = {
        "bootstrap.servers": bootstrap,
        "security.protocol": "ssl",
        "ssl.ca.location": ca,
        "ssl.certificate.location": cert,
        "ssl.key.location": key,
    }
    producer = Producer({**ssl, "acks": "all"})
    for v in values:
        producer.produce(topic, v)
    assert producer.flush(30) == 0, "messages not delivered"
    consumer = Consumer({**ssl, "group.id": topic + "-g", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    deadline = time.time() + 60
    while len(consumed) < len(values) and time.time() < deadline:
        m = consumer.poll(1.0)
        if m is not None and m.error() is None:
            consumed.append(m.value())
    consumer.close()
else:
    from kafka import KafkaConsumer, KafkaProducer

    ssl = dict(
        bootstrap_servers=bootstrap,
        security_protocol="SSL",
        ssl_cafile=ca,
        ssl_certfile=cert,
        ssl_keyfile=key,
        ssl_check_hostname=True,
    )
    producer = KafkaProducer(acks="all", **ssl)
    for v in values:
        producer.send(topic, v)
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer(topic, group_id=topic + "-g", auto_offset_reset="earliest", consumer_timeout_ms=20000, **ssl)
    for m in consumer:
        consumed.append(m.value)
        if len(consumed) == len(values):
            break
    consumer.close()

report = {"produced": len(values), "consumed": len(consumed), "values_match": consumed == values}
print(json.dumps(report))
sys.exit(0 if report["values_match"] else 1)
