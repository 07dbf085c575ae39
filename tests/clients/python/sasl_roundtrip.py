"""Produces and consumes over SASL_SSL (or is refused), with confluent-kafka or kafka-python.

usage: sasl_roundtrip.py confluent|kafka-python roundtrip|refused BOOTSTRAP TOPIC CA_PEM MECHANISM USER PASSWORD

roundtrip: produces 100 records and consumes them in a group; prints one JSON line
{"produced": n, "consumed": n, "values_match": bool} and exits 1 when they differ.
refused: connects with these (wrong) credentials and expects the client to fail to log in
(librdkafka reports _AUTHENTICATION; kafka-python logs the broker closing the exchange); prints {"refused": bool, "error": "..."} and exits 1 when it was not refused.
"""
import json
import logging
import sys
import time

lib, mode, bootstrap, topic, ca, mechanism, user, password = sys.argv[1:9]
values = [f"sasl-{i}".encode() for i in range(100)]
consumed = []
report = {}

if lib == "confluent":
    from confluent_kafka import Consumer, KafkaError, Producer

    sasl = {
        "bootstrap.servers": bootstrap,
        "security.protocol": "sasl_ssl",
        "ssl.ca.location": ca,
        "sasl.mechanism": mechanism,
        "sasl.username": user,
        "sasl.password": password,
    }
    if mode == "refused":
        errors = []
        producer = Producer({**sasl, "error_cb": errors.append})
        deadline = time.time() + 30
        while not any(e.code() == KafkaError._AUTHENTICATION for e in errors) and time.time() < deadline:
            producer.poll(0.5)
        auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
        report = {"refused": bool(auth), "error": str(auth[0] if auth else errors)}
    else:
        producer = Producer({**sasl, "acks": "all"})
        for v in values:
            producer.produce(topic, v)
        assert producer.flush(30) == 0, "messages not delivered"
        consumer = Consumer({**sasl, "group.id": topic + "-g", "auto.offset.reset": "earliest"})
        consumer.subscribe([topic])
        deadline = time.time() + 60
        while len(consumed) < len(values) and time.time() < deadline:
            m = consumer.poll(1.0)
            if m is not None and m.error() is None:
                consumed.append(m.value())
        consumer.close()
else:
    import kafka.errors
    from kafka import KafkaConsumer, KafkaProducer

    sasl = dict(
        bootstrap_servers=bootstrap,
        security_protocol="SASL_SSL",
        ssl_cafile=ca,
        ssl_check_hostname=True,
        sasl_mechanism=mechanism,
        sasl_plain_username=user,
        sasl_plain_password=password,
    )
    if mode == "refused":
        # After its SaslHandshake v0 kafka-python sends bare tokens, and a broker refusing them can
        # only close the connection (Kafka does the same): the client logs the reset during the
        # SASL exchange and, finding no broker it can use, raises NoBrokersAvailable.
        failures = []

        class Capture(logging.Handler):
            def emit(self, record):
                if record.levelno >= logging.ERROR:
                    failures.append(record.getMessage())

        logging.getLogger("kafka").addHandler(Capture())
        error = None
        try:
            KafkaProducer(request_timeout_ms=10000, **sasl).close()
        except kafka.errors.KafkaError as e:
            error = repr(e)
        report = {"refused": error is not None and bool(failures), "error": f"{error}; {failures[:1]}"}
    else:
        producer = KafkaProducer(acks="all", **sasl)
        for v in values:
            producer.send(topic, v)
        producer.flush(30)
        producer.close()
        consumer = KafkaConsumer(topic, group_id=topic + "-g", auto_offset_reset="earliest", consumer_timeout_ms=20000, **sasl)
        for m in consumer:
            consumed.append(m.value)
            if len(consumed) == len(values):
                break
        consumer.close()

if mode == "refused":
    print(json.dumps(report))
    sys.exit(0 if report["refused"] else 1)

report = {"produced": len(values), "consumed": len(consumed), "values_match": consumed == values}
print(json.dumps(report))
sys.exit(0 if report["values_match"] else 1)
