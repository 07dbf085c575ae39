#!/usr/bin/env python3
"""Memory per idle connection: opens N connections to a running broker, optionally sends one
ApiVersions request on each, and prints the broker's resident memory (VmRSS in
/proc/<pid>/status) with none, with N open, and after they close.

    bench/connections.py --pid $(pgrep -n moldau) -b 127.0.0.1:9092 -n 10000 [--api-versions]

Needs an open-file limit above N for this script (ulimit -n) and for the broker.
"""
import argparse
import resource
import socket
import struct
import time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def settle(pid, seconds):
    """RSS after it stopped moving (or after `seconds`)."""
    last, deadline = rss_kb(pid), time.time() + seconds
    while time.time() < deadline:
        time.sleep(1)
        now = rss_kb(pid)
        if abs(now - last) < 256:
            return now
        last = now
    return last


def api_versions():
    # Request header v1: api_key 18, version 0, correlation id, client id "bench".
    body = struct.pack(">hhi", 18, 0, 1) + struct.pack(">h", 5) + b"bench"
    return struct.pack(">i", len(body)) + body


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("-b", default="127.0.0.1:9092")
    p.add_argument("-n", type=int, default=10000)
    p.add_argument("--api-versions", action="store_true")
    p.add_argument("--settle", type=float, default=15)
    a = p.parse_args()
    host, port = a.b.rsplit(":", 1)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    before = settle(a.pid, a.settle)
    socks = []
    for _ in range(a.n):
        s = socket.create_connection((host, int(port)))
        if a.api_versions:
            s.sendall(api_versions())
            size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
            s.recv(size, socket.MSG_WAITALL)
        socks.append(s)
    opened = settle(a.pid, a.settle)
    for s in socks:
        s.close()
    closed = settle(a.pid, a.settle * 2)
    per = (opened - before) * 1024 / a.n
    print(f"connections={a.n} api_versions={a.api_versions}")
    print(f"rss_kb before={before} open={opened} closed={closed}")
    print(f"per_connection_bytes={per:.0f}  given_back_kb={opened - closed}")


if __name__ == "__main__":
    main()
