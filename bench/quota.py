#!/usr/bin/env python3
"""Quota benchmark: a producer held to its producer_byte_rate while another keeps its throughput.

    python3 bench/quota.py --moldau src/Moldau.Server/bin/Release/net10.0/moldau [--rate 1048576] [--mb 40]

Starts the broker (a fresh data dir under /tmp, a free port), sets producer_byte_rate for client id
"throttled" with an AlterClientQuotas v0 request (no CLI here has KIP-546's admin calls), then runs
two kcat producers side by side on the same broker, each sending --mb MB of 1000-byte messages:
client ids "throttled" and "free". Prints each one's elapsed time and MB/s. Stops only the broker
it started, by PID.
"""
import argparse
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def string(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def nullable(s):
    return struct.pack(">h", -1) if s is None else string(s)


def alter_quota(port, client_id, key, value):
    # AlterClientQuotas v0 (api key 49), request header v1: not flexible.
    body = struct.pack(">i", 1)  # one entry
    body += struct.pack(">i", 1) + string("client-id") + nullable(client_id)
    body += struct.pack(">i", 1) + string(key) + struct.pack(">d?", value, False)
    body += struct.pack(">?", False)  # validate_only
    request = struct.pack(">hhi", 49, 0, 1) + string("quota-bench") + body
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(struct.pack(">i", len(request)) + request)
        size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
        response = s.recv(size, socket.MSG_WAITALL)
    # correlation id, throttle_time_ms, entries count, first entry's error code
    _, _, count, error = struct.unpack(">iiih", response[:14])
    if count != 1 or error != 0:
        raise SystemExit(f"AlterClientQuotas failed: error {error}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--moldau", required=True)
    p.add_argument("--rate", type=float, default=1048576)
    p.add_argument("--mb", type=int, default=40)
    a = p.parse_args()

    work = tempfile.mkdtemp(prefix="quota-bench-")
    port = free_port()
    props = os.path.join(work, "server.properties")
    with open(props, "w") as f:
        f.write(f"node.id=1\nlisteners=PLAINTEXT://127.0.0.1:{port}\nlog.dirs={work}/data\n")
    log = open(os.path.join(work, "broker.log"), "w")
    broker = subprocess.Popen([a.moldau, props], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.1)
        alter_quota(port, "throttled", "producer_byte_rate", a.rate)

        data = os.path.join(work, "messages")
        with open(data, "w") as f:
            line = "x" * 999 + "\n"
            for _ in range(a.mb * 1000):
                f.write(line)

        runs = {}
        for client in ("throttled", "free"):
            cmd = ["kcat", "-P", "-b", f"127.0.0.1:{port}", "-t", f"bench-{client}", "-X", f"client.id={client}",
                   "-X", "linger.ms=5", "-X", "statistics.interval.ms=0", "-l", data]
            runs[client] = (time.monotonic(), subprocess.Popen(cmd, stderr=subprocess.DEVNULL))
        results = {}
        while len(results) < len(runs):
            for client, (started, proc) in runs.items():
                if client not in results and proc.poll() is not None:
                    results[client] = time.monotonic() - started
            time.sleep(0.05)
        mb = a.mb * 1000 * 1000 / 1e6
        print(f"| client id | quota | MB sent | elapsed s | MB/s |")
        print(f"|---|---|---|---|---|")
        for client, elapsed in results.items():
            quota = f"{a.rate / 1e6:.3f} MB/s" if client == "throttled" else "none"
            print(f"| {client} | {quota} | {mb:.0f} | {elapsed:.1f} | {mb / elapsed:.2f} |")
    finally:
        broker.terminate()
        broker.wait(timeout=30)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
