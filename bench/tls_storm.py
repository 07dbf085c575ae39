#!/usr/bin/env python3
"""A storm of TLS handshakes against a running broker's SSL or SASL_SSL listener.

Opens N connections, at most C handshaking at once; on each it completes the TLS handshake,
optionally logs in with SCRAM-SHA-512 (SaslHandshake v1 + SaslAuthenticate v0), and sends one
ApiVersions request whose answer marks the connection as served. Every connection stays open
until all N are served, then all close. Prints the wall time, handshakes per second, the time
from connect to the answer (p50/p90/p99/max), failures, the broker's CPU seconds during the
storm and its resident memory before, with all N open, and after they close.

    bench/tls_storm.py --pid PID -b 127.0.0.1:9093 --ca ca.pem -n 1000 -c 100 \\
        [--cert client.pem --key client-key.pem] [--scram USER:PASSWORD]

The client runs on the same machine and takes CPU of its own (Python's ssl is OpenSSL, the
asyncio loop is one thread): read handshakes/s as a lower bound of what the broker can take.
Needs an open-file limit above N (ulimit -n).
"""
import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import resource
import ssl
import struct
import time


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def request(api_key, version, correlation, body):
    # Request header v1: api_key, api_version, correlation_id, client_id "storm".
    frame = struct.pack(">hhih", api_key, version, correlation, 5) + b"storm" + body
    return struct.pack(">i", len(frame)) + frame


async def response(reader, correlation):
    size = struct.unpack(">i", await reader.readexactly(4))[0]
    frame = await reader.readexactly(size)
    got = struct.unpack(">i", frame[:4])[0]
    if got != correlation:
        raise RuntimeError(f"correlation id {got}, expected {correlation}")
    return frame[4:]


def kafka_bytes(data):
    return struct.pack(">i", len(data)) + data


async def scram_sha512(reader, writer, user, password):
    """SaslHandshake v1, then the two SaslAuthenticate v0 rounds of RFC 5802."""
    writer.write(request(17, 1, 2, struct.pack(">h", 13) + b"SCRAM-SHA-512"))
    body = await response(reader, 2)
    if struct.unpack(">h", body[:2])[0] != 0:
        raise RuntimeError("SaslHandshake refused")
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n={user},r={nonce}"
    writer.write(request(36, 0, 3, kafka_bytes(("n,," + first_bare).encode())))
    server_first = sasl_token(await response(reader, 3)).decode()
    fields = dict(f.split("=", 1) for f in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
    without_proof = f"c=biws,r={fields['r']}"
    auth_message = f"{first_bare},{server_first},{without_proof}".encode()
    client_key = hmac.new(salted, b"Client Key", "sha512").digest()
    signature = hmac.new(hashlib.sha512(client_key).digest(), auth_message, "sha512").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    final = f"{without_proof},p={base64.b64encode(proof).decode()}".encode()
    writer.write(request(36, 0, 4, kafka_bytes(final)))
    server_final = sasl_token(await response(reader, 4)).decode()
    expected = hmac.new(hmac.new(salted, b"Server Key", "sha512").digest(), auth_message, "sha512").digest()
    if server_final != "v=" + base64.b64encode(expected).decode():
        raise RuntimeError("server signature does not verify")


def sasl_token(body):
    """SaslAuthenticate v0 response: error_code, error_message (nullable string), auth_bytes."""
    error = struct.unpack(">h", body[:2])[0]
    length = struct.unpack(">h", body[2:4])[0]
    message = body[4:4 + max(length, 0)].decode() if length >= 0 else None
    rest = body[4 + max(length, 0):]
    if error != 0:
        raise RuntimeError(f"SaslAuthenticate error {error}: {message}")
    size = struct.unpack(">i", rest[:4])[0]
    return rest[4:4 + size]


async def one(host, port, context, server_name, scram, gate, served, hold, times, failures):
    async with gate:
        started = time.perf_counter()
        try:
            reader, writer = await asyncio.open_connection(host, port, ssl=context, server_hostname=server_name)
            if scram:
                await scram_sha512(reader, writer, *scram)
            writer.write(request(18, 0, 1, b""))
            body = await response(reader, 1)
            if struct.unpack(">h", body[:2])[0] != 0:
                raise RuntimeError("ApiVersions error")
            times.append(time.perf_counter() - started)
        except Exception as e:  # noqa: BLE001 - counted and reported
            failures.append(repr(e))
            return
    served.release()
    await hold.wait()
    writer.close()
    try:
        await writer.wait_closed()
    except Exception:  # noqa: BLE001 - the broker may close first
        pass


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else None


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("-b", default="127.0.0.1:9093")
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--server-name", default="localhost")
    parser.add_argument("--scram", help="USER:PASSWORD: log in with SCRAM-SHA-512 after the handshake")
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("-c", type=int, default=100, help="handshakes under way at once")
    args = parser.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, args.n + 100)), hard))
    context = ssl.create_default_context(cafile=args.ca)
    if args.cert:
        context.load_cert_chain(args.cert, args.key)
    host, port = args.b.rsplit(":", 1)
    scram = tuple(args.scram.split(":", 1)) if args.scram else None

    rss_before, cpu_before = rss_kb(args.pid), cpu_seconds(args.pid)
    gate, hold = asyncio.Semaphore(args.c), asyncio.Event()
    served = asyncio.Semaphore(0)
    times, failures = [], []
    started = time.perf_counter()
    tasks = [asyncio.create_task(one(host, int(port), context, args.server_name, scram, gate, served, hold, times, failures)) for _ in range(args.n)]
    while len(times) + len(failures) < args.n:
        await asyncio.sleep(0.01)
    wall = time.perf_counter() - started
    cpu_storm = cpu_seconds(args.pid) - cpu_before
    rss_open = rss_kb(args.pid)
    hold.set()
    await asyncio.gather(*tasks)
    await asyncio.sleep(2)
    report = {
        "connections": args.n,
        "concurrency": args.c,
        "scram": bool(scram),
        "served": len(times),
        "failures": len(failures),
        "first_failure": failures[0] if failures else None,
        "wall_s": round(wall, 2),
        "handshakes_per_s": round(len(times) / wall, 1),
        "latency_ms": {p: round(percentile(times, q) * 1000, 1) for p, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))} if times else None,
        "broker_cpu_s": round(cpu_storm, 2),
        "broker_cpu_ms_per_connection": round(cpu_storm * 1000 / max(1, len(times)), 2),
        "broker_rss_mb": {"before": round(rss_before / 1024, 1), "open": round(rss_open / 1024, 1), "after_close": round(rss_kb(args.pid) / 1024, 1)},
    }
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
