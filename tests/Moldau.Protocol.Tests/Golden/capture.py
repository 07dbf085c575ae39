#!/usr/bin/env python3
"""Recording TCP proxy for golden protocol bytes.

Usage: capture.py LISTEN_PORT UPSTREAM_PORT OUT_DIR
Sits between a real Kafka client and a broker, forwards everything both ways, and writes each
request frame (the bytes after the 4-byte size) to OUT_DIR/NN-<apikey>-v<version>-request.bin and
each response to ...-response.bin, paired by correlation id. Stops after 60 s of silence.
"""
import os
import socket
import struct
import sys
import threading

API = {0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 18: "ApiVersions", 19: "CreateTopics", 22: "InitProducerId", 75: "DescribeTopicPartitions"}

listen_port, upstream_port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
os.makedirs(out, exist_ok=True)
lock = threading.Lock()
pending = {}
counter = [0]


def frames(sock):
    buf = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return
        buf += data
        while len(buf) >= 4:
            (size,) = struct.unpack(">i", buf[:4])
            if len(buf) < 4 + size:
                break
            yield buf[: 4 + size]
            buf = buf[4 + size :]


def client_to_broker(client, broker):
    for frame in frames(client):
        key, version, corr = struct.unpack(">hhi", frame[4:12])
        with lock:
            counter[0] += 1
            name = "%02d-%s-v%d" % (counter[0], API.get(key, str(key)), version)
            pending[corr] = name
            open(os.path.join(out, name + "-request.bin"), "wb").write(frame[4:])
        broker.sendall(frame)
    broker.shutdown(socket.SHUT_WR)


def broker_to_client(broker, client):
    for frame in frames(broker):
        (corr,) = struct.unpack(">i", frame[4:8])
        with lock:
            name = pending.pop(corr, None)
        if name:
            open(os.path.join(out, name + "-response.bin"), "wb").write(frame[4:])
        client.sendall(frame)
    client.shutdown(socket.SHUT_WR)


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", listen_port))
server.listen(16)
server.settimeout(60)
while True:
    try:
        client, _ = server.accept()
    except socket.timeout:
        break
    broker = socket.create_connection(("127.0.0.1", upstream_port))
    threading.Thread(target=client_to_broker, args=(client, broker), daemon=True).start()
    threading.Thread(target=broker_to_client, args=(broker, client), daemon=True).start()
