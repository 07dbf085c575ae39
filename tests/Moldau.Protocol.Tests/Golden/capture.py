#!/usr/bin/env python3
"""Recording TCP proxy for golden Kafka protocol bytes (stdlib only).

  capture.py record --listen 127.0.0.1:19096 --upstream 127.0.0.1:19092 --out DIR [--idle-exit 30]
  capture.py index DIR [--specs ../shared/kafka-message-specs] [--title T] > DIR/INDEX.md
  capture.py nullbroker --script PATH/nullbroker.py --bind-port 19092 --advertise 127.0.0.1:19096

record: sits between a real Kafka client and a broker and forwards every byte both ways
unchanged. Each request frame and each response frame (the bytes after the 4-byte size prefix)
is also written to DIR as NN-<ApiName>-v<version>-request.bin / -response.bin, NN being the
request's arrival order over the whole capture. The API key and version come from the request
header; a response is paired with its request by correlation id *per connection* (librdkafka
opens a bootstrap connection and a per-broker connection, both counting from 1). A request that
gets no response (Produce acks=0) simply has no -response.bin. DIR/capture.jsonl records one
line per frame (connection, direction, key, version, correlation id, client id, size).
The client must be told to use the proxy's address: point the broker's advertised address at
the proxy, or the client follows Metadata to the broker directly and later frames are missed.
It stops after --idle-exit seconds with no open connection (0: run until killed).

index: writes a markdown index of the .bin files in DIR: API key, version, header version,
correlation id, client id, size, where a Produce request's / Fetch response's RecordBatch sits
(with its header fields and whether its CRC32C holds) and a hex dump of the first 64 bytes.
"""
import argparse
import json
import os
import re
import socket
import struct
import sys
import threading
import time

# Kafka API keys -> names, as in Kafka's JSON specs (used only when the specs are not at hand).
API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit", 9: "OffsetFetch",
    10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup",
    15: "DescribeGroups", 16: "ListGroups", 17: "SaslHandshake", 18: "ApiVersions",
    19: "CreateTopics", 20: "DeleteTopics", 21: "DeleteRecords", 22: "InitProducerId",
    23: "OffsetForLeaderEpoch", 24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn", 26: "EndTxn",
    28: "TxnOffsetCommit", 29: "DescribeAcls", 32: "DescribeConfigs", 33: "AlterConfigs",
    36: "SaslAuthenticate", 37: "CreatePartitions", 42: "DeleteGroups", 44: "IncrementalAlterConfigs",
    47: "OffsetDelete", 60: "DescribeCluster", 61: "DescribeProducers", 68: "ConsumerGroupHeartbeat",
    69: "ConsumerGroupDescribe", 71: "GetTelemetrySubscriptions", 72: "PushTelemetry",
    75: "DescribeTopicPartitions",
}
# First flexible (KIP-482) version per API key; fallback for the same reason.
FIRST_FLEXIBLE = {
    0: 9, 1: 12, 2: 6, 3: 9, 8: 8, 9: 6, 10: 3, 11: 6, 12: 4, 13: 4, 14: 4, 15: 5, 16: 3,
    18: 3, 19: 5, 20: 4, 21: 2, 22: 2, 23: 4, 24: 3, 25: 3, 26: 3, 28: 3, 32: 4, 33: 2, 36: 2,
    37: 2, 42: 2, 44: 1, 47: None, 60: 0, 61: 0, 68: 0, 69: 0, 71: 0, 72: 0, 75: 0, 17: None,
}


# ------------------------------------------------------------------------------------- record
def parse_addr(s):
    host, _, port = s.rpartition(":")
    return host or "127.0.0.1", int(port)


def read_client_id(frame):
    """Request header v1/v2: key i16, version i16, correlation id i32, client id (nullable i16 string)."""
    if len(frame) < 10:
        return None
    (n,) = struct.unpack_from(">h", frame, 8)
    return None if n < 0 else frame[10:10 + n].decode("utf-8", "replace")


class Recorder:
    def __init__(self, out, names):
        self.out, self.names = out, names
        self.lock = threading.Lock()
        self.seq = 0
        self.conns = 0
        self.active = 0
        self.last_activity = time.monotonic()
        os.makedirs(out, exist_ok=True)
        self.log = open(os.path.join(out, "capture.jsonl"), "a", encoding="utf-8")

    def write(self, name, frame, entry):
        with open(os.path.join(self.out, name), "wb") as f:
            f.write(frame)
        entry["file"] = name
        entry["size"] = len(frame)
        self.log.write(json.dumps(entry) + "\n")
        self.log.flush()

    def serve(self, client, upstream):
        with self.lock:
            self.conns += 1
            self.active += 1
            conn = self.conns
        try:
            broker = socket.create_connection(upstream)
        except OSError as e:
            print(f"capture: connection {conn}: upstream {upstream}: {e}", file=sys.stderr)
            client.close()
            with self.lock:
                self.active -= 1
            return
        pending = {}  # correlation id -> file stem, for this connection only
        done = threading.Barrier(2, action=lambda: self.closed(client, broker))
        threading.Thread(target=self.pump, args=(conn, client, broker, pending, True, done), daemon=True).start()
        threading.Thread(target=self.pump, args=(conn, broker, client, pending, False, done), daemon=True).start()

    def closed(self, client, broker):
        client.close()
        broker.close()
        with self.lock:
            self.active -= 1
            self.last_activity = time.monotonic()

    def pump(self, conn, src, dst, pending, is_request, done):
        buf = bytearray()
        try:
            while True:
                data = src.recv(1 << 16)
                if not data:
                    break
                buf += data
                while len(buf) >= 4:
                    (size,) = struct.unpack_from(">i", buf, 0)
                    if size < 0 or len(buf) < 4 + size:
                        break
                    self.record(conn, bytes(buf[4:4 + size]), pending, is_request)
                    del buf[:4 + size]
                # Forward only after recording, so a response can never be read before its request is known.
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            done.wait()

    def record(self, conn, frame, pending, is_request):
        with self.lock:
            self.last_activity = time.monotonic()
            if is_request:
                key, version, corr = struct.unpack_from(">hhi", frame, 0)
                self.seq += 1
                stem = "%02d-%s-v%d" % (self.seq, self.names.get(key, "Api%d" % key), version)
                pending[corr] = stem
                self.write(stem + "-request.bin", frame, {
                    "seq": self.seq, "conn": conn, "dir": "request", "api_key": key, "api_version": version,
                    "correlation_id": corr, "client_id": read_client_id(frame)})
            else:
                (corr,) = struct.unpack_from(">i", frame, 0)
                stem = pending.pop(corr, None) or "xx-unpaired-conn%d-corr%d" % (conn, corr)
                self.write(stem + "-response.bin", frame, {"conn": conn, "dir": "response", "correlation_id": corr})


def record_main(a):
    names, _ = load_specs(a.specs)
    rec = Recorder(a.out, names)
    upstream = parse_addr(a.upstream)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(parse_addr(a.listen))
    server.listen(16)
    server.settimeout(1.0)
    print(f"capture: {a.listen} -> {a.upstream}, writing {a.out}", flush=True)
    while True:
        try:
            client, _ = server.accept()
            rec.serve(client, upstream)
        except socket.timeout:
            with rec.lock:
                idle = rec.active == 0 and time.monotonic() - rec.last_activity > a.idle_exit
            if a.idle_exit > 0 and idle:
                print(f"capture: idle for {a.idle_exit} s, {rec.seq} requests recorded", flush=True)
                return


# --------------------------------------------------------------------------------- nullbroker
def nullbroker_main(a):
    """Runs the bench's nullbroker.py unchanged, but bound to --bind-port while it advertises
    --advertise in Metadata (it has no advertised-listener option: it advertises its bind address),
    so that every connection the client makes goes through the proxy."""
    import asyncio
    import importlib.util

    spec = importlib.util.spec_from_file_location("nullbroker", a.script)
    nb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(nb)
    real_start_server = asyncio.start_server

    async def start_server(cb, host, port, **kw):
        return await real_start_server(cb, host, a.bind_port, **kw)

    nb.asyncio.start_server = start_server
    host, port = parse_addr(a.advertise)
    print(f"capture: nullbroker bound to {host}:{a.bind_port}, advertising {host}:{port}", flush=True)
    sys.argv = [a.script, "--host", host, "--port", str(port), "--max-seconds", str(a.max_seconds)]
    asyncio.run(nb.main())


# -------------------------------------------------------------------------------------- index
def load_specs(path):
    """API names and first flexible versions from Kafka's *Request.json specs, else the tables above."""
    names, flexible = dict(API_NAMES), dict(FIRST_FLEXIBLE)
    d = os.path.join(path, "protocol") if path else None
    if not d or not os.path.isdir(d):
        return names, flexible
    for fn in os.listdir(d):
        if not fn.endswith("Request.json"):
            continue
        with open(os.path.join(d, fn), encoding="utf-8") as f:
            text = "\n".join(line for line in f if not line.lstrip().startswith("//"))
        spec = json.loads(text)
        key = spec.get("apiKey")
        if key is None:
            continue
        names[key] = spec["name"][: -len("Request")]
        fv = spec.get("flexibleVersions", "none")
        flexible[key] = None if fv == "none" else int(fv.rstrip("+"))
    return names, flexible


class Rd:
    """Big-endian reader for the non-flexible layouts the index looks into."""

    def __init__(self, b, p=0):
        self.b, self.p = b, p

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.p)
        self.p += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def string(self):
        n = self.take(">h")
        s = None if n < 0 else self.b[self.p:self.p + n].decode("utf-8", "replace")
        self.p += max(n, 0)
        return s

    def skip_request_header(self):
        self.take(">hhi")
        self.string()


def crc32c(data):
    table = crc32c.table
    if table is None:
        table = crc32c.table = []
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            table.append(c)
    c = 0xFFFFFFFF
    for byte in data:
        c = table[(c ^ byte) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


crc32c.table = None


def describe_batches(frame, start, length):
    """RecordBatch v2 headers inside a records field: offset in the frame, fields, CRC32C check."""
    out, p, end = [], start, start + length
    while p + 61 <= end:
        base, blen, epoch, magic, crc = struct.unpack_from(">qiibI", frame, p)
        if magic != 2:
            out.append(f"batch at {p}: magic {magic} (not v2)")
            break
        attrs, last_delta, first_ts, max_ts, pid, pepoch, bseq, count = struct.unpack_from(">hiqqqhii", frame, p + 21)
        total = 12 + blen
        ok = crc32c(frame[p + 21:p + total]) == crc if p + total <= end else False
        codec = ["none", "gzip", "snappy", "lz4", "zstd"][attrs & 7] if attrs & 7 < 5 else str(attrs & 7)
        out.append(
            f"RecordBatch v2 at bytes {p}..{p + total} of the frame: baseOffset {base}, batchLength {blen}, "
            f"partitionLeaderEpoch {epoch}, crc 0x{crc:08x} ({'CRC32C ok' if ok else 'CRC32C MISMATCH or truncated'}), "
            f"attributes 0x{attrs:04x} (compression {codec}), lastOffsetDelta {last_delta}, "
            f"firstTimestamp {first_ts}, maxTimestamp {max_ts}, producerId {pid}, producerEpoch {pepoch}, "
            f"baseSequence {bseq}, records {count}")
        p += total
    return out


def records_notes(frame, kind, key, version):
    """Where the records are, for the non-flexible Produce request (v3-v8) and Fetch response (v4-v11)."""
    try:
        if kind == "request" and key == 0 and 3 <= version <= 8:
            r = Rd(frame)
            r.skip_request_header()
            r.string()  # transactional id
            r.take(">hi")  # acks, timeout
            notes = []
            for _ in range(r.take(">i")):
                topic = r.string()
                for _ in range(r.take(">i")):
                    part, n = r.take(">ii")
                    notes.append(f"topic {topic!r} partition {part}: records field {n} bytes at offset {r.p}")
                    if n > 0:
                        notes += describe_batches(frame, r.p, n)
                        r.p += n
            return notes
        if kind == "response" and key == 1 and 4 <= version <= 11:
            r = Rd(frame)
            r.take(">i")  # correlation id (response header v0)
            r.take(">i")  # throttle
            if version >= 7:
                r.take(">hi")  # error code, session id
            notes = []
            for _ in range(r.take(">i")):
                topic = r.string()
                for _ in range(r.take(">i")):
                    part, err, hwm, lso = r.take(">ihqq")
                    if version >= 5:
                        r.take(">q")
                    aborted = r.take(">i")
                    r.p += max(aborted, 0) * 16
                    if version >= 11:
                        r.take(">i")
                    n = r.take(">i")
                    notes.append(f"topic {topic!r} partition {part}: error {err}, highWatermark {hwm}, "
                                 f"records field {n} bytes at offset {r.p}")
                    if n > 0:
                        notes += describe_batches(frame, r.p, n)
                        r.p += n
            return notes
    except struct.error as e:
        return [f"could not walk the body: {e}"]
    return []


def hexdump(b, limit=64):
    lines = []
    for i in range(0, min(len(b), limit), 16):
        chunk = b[i:i + 16]
        hx = " ".join(f"{c:02x}" for c in chunk)
        asc = "".join(chr(c) if 32 <= c < 127 else "." for c in chunk)
        lines.append(f"{i:04x}  {hx:<47}  {asc}")
    if len(b) > limit:
        lines.append(f"... ({len(b) - limit} more bytes)")
    return "\n".join(lines)


NAME_RE = re.compile(r"(?:^|-)([A-Za-z]+)-v(\d+)-(request|response)\.bin$")


def index_main(a):
    names, flexible = load_specs(a.specs)
    by_name = {v: k for k, v in names.items()}
    files = sorted(f for f in os.listdir(a.dir) if f.endswith(".bin"))
    print(f"# {a.title}\n")
    print("Written by `capture.py index` (do not edit by hand; re-run it). Offsets are into the .bin file, which")
    print("is one frame without its 4-byte size prefix: the header starts at byte 0.\n")
    print("| file | api key | version | header | correlation id | client id | bytes |")
    print("|---|---|---|---|---|---|---|")
    details = []
    for f in files:
        frame = open(os.path.join(a.dir, f), "rb").read()
        m = NAME_RE.search(f)
        kind = m.group(3) if m else ("request" if f.endswith("-request.bin") else "response")
        if kind == "request":
            key, version, corr = struct.unpack_from(">hhi", frame, 0)
            client = read_client_id(frame)
            fx = flexible.get(key)
            header = "request v2" if fx is not None and version >= fx else "request v1"
        else:
            key = by_name.get(m.group(1)) if m else None
            version = int(m.group(2)) if m else None
            (corr,) = struct.unpack_from(">i", frame, 0)
            client = ""
            fx = flexible.get(key)
            # ApiVersions answers with response header v0 at every version (KIP-511), so that a
            # client can read it whatever version it asked for.
            flex = key != 18 and fx is not None and version is not None and version >= fx
            header = "response v1" if flex else "response v0"
        api = f"{key} ({names.get(key, '?')})" if key is not None else "?"
        print(f"| `{f}` | {api} | {version} | {header} | {corr} | {client if client is not None else '(null)'} | {len(frame)} |")
        notes = records_notes(frame, kind, key, version) if key is not None and version is not None else []
        details.append((f, notes, hexdump(frame)))
    print()
    for f, notes, dump in details:
        print(f"## {f}\n")
        for n in notes:
            print(f"- {n}")
        if notes:
            print()
        print("```\n" + dump + "\n```\n")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_specs = os.path.normpath(os.path.join(here, "../../../../shared/kafka-message-specs"))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record", help="run the recording proxy")
    r.add_argument("--listen", default="127.0.0.1:19096", help="HOST:PORT the client connects to")
    r.add_argument("--upstream", default="127.0.0.1:19092", help="HOST:PORT of the broker")
    r.add_argument("--out", required=True, help="directory for the .bin files and capture.jsonl")
    r.add_argument("--idle-exit", type=float, default=30, help="stop after this many idle seconds (0: never)")
    r.add_argument("--specs", default=default_specs, help="Kafka message specs (for API names)")
    i = sub.add_parser("index", help="print a markdown index of the .bin files in DIR")
    i.add_argument("dir")
    i.add_argument("--specs", default=default_specs, help="Kafka message specs (API names, flexible versions)")
    i.add_argument("--title", default="Golden frames")
    n = sub.add_parser("nullbroker", help="run bench/nullbroker.py bound to one port, advertising another")
    n.add_argument("--script", required=True, help="path of nullbroker.py")
    n.add_argument("--bind-port", type=int, default=19092)
    n.add_argument("--advertise", default="127.0.0.1:19096", help="HOST:PORT of the proxy (HOST is also bound)")
    n.add_argument("--max-seconds", type=float, default=600)
    a = ap.parse_args()
    {"record": record_main, "index": index_main, "nullbroker": nullbroker_main}[a.cmd](a)


if __name__ == "__main__":
    main()
