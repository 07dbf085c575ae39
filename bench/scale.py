#!/usr/bin/env python3
"""Scale benchmark for one Moldau broker (issue 11): run through bench/scale.sh.

For each size N it starts a broker of its own (fresh data dir, free port), creates N partitions
(topics of --per-topic partitions each, one CreateTopics request per topic), and measures:
creation rate, RSS and open descriptors when idle, the time of a Metadata request for all
topics, produce throughput spread over every partition (kbench, one run per topic), a clean
stop (SIGTERM until exit), a clean restart (exec until a Metadata answer lists all N partitions
online), a second clean stop once every log is open again and untouched since the clean restart
(without the crash step), and the recovery after kill -9 that follows unflushed writes. A size
that fails (the broker exits, refuses, or leaves partitions offline) is recorded as failed with the reason,
and the run goes on with the next size. Only the broker process this script started is signalled,
by its PID.

The Kafka requests it sends itself (CreateTopics v2, Metadata v1) are encoded here with the
standard library only, so no client package is needed; kbench (librdkafka) does the producing.
"""

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time


class BrokerGone(Exception):
    """The broker process exited or stopped answering."""


# ---------------------------------------------------------------------------------------------
# A minimal Kafka client: request header v1, response header v0, non-flexible versions.
# ---------------------------------------------------------------------------------------------

def _str(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return v[0]

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def int_array(self):
        n = self.take(">i")
        vals = struct.unpack_from(">%di" % max(n, 0), self.data, self.pos)
        self.pos += 4 * max(n, 0)
        return vals


class Client:
    def __init__(self, port, timeout):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.correlation = 0

    def close(self):
        self.sock.close()

    def call(self, key, version, body):
        self.correlation += 1
        header = struct.pack(">hhi", key, version, self.correlation) + _str("scale-bench")
        frame = header + body
        self.sock.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", self._recv(4))[0]
        data = self._recv(size)
        if struct.unpack_from(">i", data)[0] != self.correlation:
            raise BrokerGone("correlation id mismatch")
        return Reader(data[4:])

    def _recv(self, n):
        chunks = []
        while n > 0:
            c = self.sock.recv(min(n, 1 << 20))
            if not c:
                raise BrokerGone("connection closed by the broker")
            chunks.append(c)
            n -= len(c)
        return b"".join(chunks)

    def create_topic(self, name, partitions, timeout_ms):
        """CreateTopics v2 for one topic: (error code, message)."""
        body = struct.pack(">i", 1) + _str(name) + struct.pack(">ihii", partitions, 1, 0, 0)
        body += struct.pack(">i?", timeout_ms, False)
        r = self.call(19, 2, body)
        r.take(">i")  # throttle
        n = r.take(">i")
        result = (0, None)
        for _ in range(n):
            r.string()
            code = r.take(">h")
            msg = r.string()
            result = (code, msg)
        return result

    def metadata_all(self):
        """Metadata v1 for every topic: (topics, partitions, partitions with an error)."""
        r = self.call(3, 1, struct.pack(">i", -1))
        for _ in range(r.take(">i")):
            r.take(">i")
            r.string()
            r.take(">i")
            r.string()
        r.take(">i")  # controller
        topics = r.take(">i")
        partitions = errors = 0
        for _ in range(topics):
            r.take(">h")
            r.string()
            r.take(">?")
            for _ in range(r.take(">i")):
                code = r.take(">h")
                r.take(">i")
                r.take(">i")
                r.int_array()
                r.int_array()
                partitions += 1
                errors += code != 0
        return topics, partitions, errors


# ---------------------------------------------------------------------------------------------
# The broker process
# ---------------------------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    def __init__(self, binary, data_dir, port, log_path, nofile, overrides=()):
        self.binary = binary
        self.data_dir = data_dir
        self.port = port
        self.log_path = log_path
        self.nofile = nofile
        self.overrides = list(overrides)
        self.proc = None

    def start(self):
        def limits():
            if self.nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (self.nofile, self.nofile))

        args = [self.binary,
                "--override", "node.id=1",
                "--override", "listeners=PLAINTEXT://127.0.0.1:%d" % self.port,
                "--override", "log.dirs=%s" % self.data_dir,
                "--override", "auto.create.topics.enable=false"]
        for o in self.overrides:
            args += ["--override", o]
        log = open(self.log_path, "ab")
        log.write(b"\n===== start %s =====\n" % time.strftime("%H:%M:%S").encode())
        log.flush()
        self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     preexec_fn=limits, cwd=os.path.dirname(self.data_dir))
        log.close()
        return time.monotonic()

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check(self):
        if not self.alive():
            raise BrokerGone("broker exited with code %s: %s" % (self.proc.returncode, self.last_log_line()))

    def last_log_line(self):
        try:
            with open(self.log_path, "rb") as f:
                lines = [l for l in f.read().decode(errors="replace").splitlines() if l.strip()]
            return lines[-1][:300] if lines else "(no output)"
        except OSError:
            return "(no log)"

    def wait_ready(self, partitions, timeout, started):
        """Seconds from start until a Metadata answer lists `partitions` partitions, none with an error."""
        deadline = started + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            self.check()
            try:
                c = Client(self.port, timeout=max(1.0, deadline - time.monotonic()))
                try:
                    while time.monotonic() < deadline:
                        _, found, errors = c.metadata_all()
                        if found >= partitions and errors == 0:
                            return time.monotonic() - started
                        last = "%d partitions listed, %d with an error" % (found, errors)
                        time.sleep(0.05)
                        self.check()
                finally:
                    c.close()
            except (OSError, BrokerGone) as e:
                last = str(e)
                time.sleep(0.05)
        raise BrokerGone("not ready after %.0f s (%s)" % (timeout, last))

    def wait_output(self, text, timeout):
        """Waits until the broker's output since its last start holds `text`; False after `timeout` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            with open(self.log_path, "rb") as f:
                if text in f.read().decode(errors="replace").rsplit("===== start", 1)[-1]:
                    return True
            time.sleep(0.1)
        return False

    def stop(self, timeout):
        """SIGTERM, seconds until the process exits; SIGKILL after `timeout`."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
            return time.monotonic() - t0, self.proc.returncode
        except subprocess.TimeoutExpired:
            self.kill()
            return None, None

    def kill(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def proc_status(pid):
    """(RSS MB, peak RSS MB, open descriptors) of `pid`."""
    rss = hwm = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    fds = len(os.listdir("/proc/%d/fd" % pid))
    return rss, hwm, fds


# ---------------------------------------------------------------------------------------------
# One size
# ---------------------------------------------------------------------------------------------

def topic_layout(n, per_topic):
    layout = []
    left = n
    i = 0
    while left > 0:
        p = min(per_topic, left)
        layout.append(("scale-%05d" % i, p))
        left -= p
        i += 1
    return layout


def kbench_produce(args, port, pid, topic, messages, size, acks):
    cmd = [args.kbench, "produce", "-b", "127.0.0.1:%d" % port, "-t", topic, "-n", str(messages), "-s", str(size),
           "-a", acks, "-l", "5", "--batch-bytes", "1048576", "--broker-pid", str(pid), "-q",
           "--timeout-s", str(args.step_timeout),
           # Keyless records: without this librdkafka's sticky partitioner sends a whole linger's
           # worth to one partition, and a short run reaches only a few of them.
           "-X", "sticky.partitioning.linger.ms=0"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.step_timeout + 30)
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
            if p.returncode == 0:
                return result
    raise BrokerGone("kbench produce to %s exited %d: %s" % (topic, p.returncode, (p.stderr or p.stdout).strip()[-300:]))


def produce_spread(args, broker, layout, per_partition, size, acks):
    """Produces per_partition messages of `size` bytes to every partition; (MB/s, msgs/s, seconds)."""
    total = 0
    t0 = time.monotonic()
    for name, partitions in layout:
        broker.check()
        kbench_produce(args, broker.port, broker.pid, name, per_partition * partitions, size, acks)
        total += per_partition * partitions
    elapsed = time.monotonic() - t0
    return total * size / 1e6 / elapsed, total / elapsed, elapsed


def idle_command(args, broker, n, work, when):
    """Runs --idle-command (e.g. the heap census, bench/Moldau.Benchmarks heap $PID $N) into <when>-N.txt."""
    if args.idle_command:
        env = dict(os.environ, PID=str(broker.pid), N=str(n))
        out = subprocess.run(args.idle_command, shell=True, env=env, capture_output=True, text=True)
        with open(os.path.join(args.out or work, "%s-%d.txt" % (when, n)), "w") as f:
            f.write(out.stdout + out.stderr)


def run_size(args, n, work):
    row = {"partitions": n, "status": "ok"}
    layout = topic_layout(n, args.per_topic)
    data_dir = os.path.join(work, "data-%d" % n)
    os.makedirs(data_dir)
    log_path = os.path.join(args.out or work, "broker-%d.log" % n)
    broker = Broker(args.binary, data_dir, free_port(), log_path, args.nofile, args.override)
    step = "start"
    try:
        started = broker.start()
        row["start_s"] = broker.wait_ready(0, args.step_timeout, started)
        time.sleep(1)
        row["rss0_mb"], _, row["fds0"] = proc_status(broker.pid)

        step = "create"
        c = Client(broker.port, timeout=args.step_timeout)
        t0 = time.monotonic()
        failures = []
        for name, partitions in layout:
            broker.check()
            code, msg = c.create_topic(name, partitions, args.step_timeout * 1000)
            if code != 0:
                failures.append("%s: error %d %s" % (name, code, msg or ""))
        row["create_s"] = time.monotonic() - t0
        row["create_per_s"] = n / row["create_s"]
        c.close()
        if failures:
            raise BrokerGone("CreateTopics refused %d of %d topics (first: %s)" % (len(failures), len(layout), failures[0]))

        step = "idle"
        time.sleep(args.settle)
        broker.check()
        row["rss_mb"], row["hwm_mb"], row["fds"] = proc_status(broker.pid)
        row["rss_kb_per_partition"] = (row["rss_mb"] - row["rss0_mb"]) * 1024 / n
        idle_command(args, broker, n, work, "idle")

        step = "metadata"
        times = []
        c = Client(broker.port, timeout=args.step_timeout)
        for _ in range(args.metadata_rounds):
            t0 = time.monotonic()
            topics, found, errors = c.metadata_all()
            times.append((time.monotonic() - t0) * 1000)
        c.close()
        row["metadata_ms"] = statistics.median(times)
        row["metadata_first_ms"] = times[0]
        if found != n or errors:
            row["offline"] = errors
            raise BrokerGone("Metadata lists %d of %d partitions, %d offline (LEADER_NOT_AVAILABLE)" % (found, n, errors))

        if args.kbench:
            step = "produce"
            row["produce_mb_s"], row["produce_msgs_s"], row["produce_s"] = produce_spread(
                args, broker, layout, args.produce_per_partition, args.message_bytes, "1")
            row["rss_after_produce_mb"], _, row["fds_after_produce"] = proc_status(broker.pid)
            idle_command(args, broker, n, work, "produced")

        step = "stop"
        row["stop_s"], code = broker.stop(args.step_timeout)
        if row["stop_s"] is None:
            raise BrokerGone("no exit %d s after SIGTERM (killed)" % args.step_timeout)
        if code != 0:
            raise BrokerGone("clean stop exited with code %d: %s" % (code, broker.last_log_line()))

        step = "restart"
        started = broker.start()
        row["restart_s"] = broker.wait_ready(n, args.step_timeout, started)
        row["rss_restart_mb"], _, row["fds_restart"] = proc_status(broker.pid)

        if not (args.kbench and args.crash_mb > 0):
            # A clean stop with every log open and none written since the clean start: the
            # background opener's last line says all are open.
            step = "stop untouched"
            if broker.wait_output("opened %d partition logs in" % n, args.step_timeout):
                row["stop_untouched_s"], code = broker.stop(args.step_timeout)
                if row["stop_untouched_s"] is None or code != 0:
                    raise BrokerGone("clean stop after the restart failed (code %s): %s" % (code, broker.last_log_line()))

        if args.kbench and args.crash_mb > 0:
            step = "crash"
            per_partition = max(1, int(args.crash_mb * 1e6 / 1024 / n))
            produce_spread(args, broker, layout, per_partition, 1024, "1")
            row["crash_mb"] = per_partition * n * 1024 / 1e6
            broker.kill()
            step = "recovery"
            started = broker.start()
            row["recovery_s"] = broker.wait_ready(n, args.step_timeout, started)
            row["rss_recovered_mb"], _, _ = proc_status(broker.pid)

        if broker.alive():
            broker.stop(args.step_timeout)
    except (BrokerGone, OSError, subprocess.TimeoutExpired, struct.error) as e:
        reason = str(e)
        if broker.proc is not None:
            try:
                broker.proc.wait(2)
            except subprocess.TimeoutExpired:
                pass
            if not broker.alive() and "exited" not in reason:
                reason += "; broker exited with code %s: %s" % (broker.proc.returncode, broker.last_log_line())
            elif broker.alive():
                try:
                    rss, _, fds = proc_status(broker.pid)
                    row.setdefault("rss_mb", rss)
                    row.setdefault("fds", fds)
                except OSError:
                    pass
        row["status"] = "failed at %s: %s" % (step, reason)
    finally:
        if broker.proc is not None:
            broker.kill()
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)
    return row


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------

COLUMNS = [
    ("partitions", "N", "{:,}"),
    ("create_s", "create s", "{:.1f}"),
    ("create_per_s", "create /s", "{:,.0f}"),
    ("rss_mb", "RSS MB", "{:.0f}"),
    ("rss_kb_per_partition", "KB/part", "{:.1f}"),
    ("fds", "fds", "{:,}"),
    ("metadata_ms", "Metadata ms", "{:.1f}"),
    ("produce_mb_s", "produce MB/s", "{:.1f}"),
    ("produce_msgs_s", "produce msg/s", "{:,.0f}"),
    ("stop_s", "stop s", "{:.2f}"),
    ("restart_s", "restart s", "{:.2f}"),
    ("stop_untouched_s", "stop untouched s", "{:.2f}"),
    ("crash_mb", "unflushed MB", "{:.0f}"),
    ("recovery_s", "recovery s", "{:.2f}"),
    ("status", "status", "{}"),
]


def table(rows):
    head = "| " + " | ".join(c[1] for c in COLUMNS) + " |"
    sep = "|" + "|".join("---" for _ in COLUMNS) + "|"
    lines = [head, sep]
    for r in rows:
        cells = []
        for key, _, fmt in COLUMNS:
            v = r.get(key)
            cells.append("-" if v is None else fmt.format(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True, help="the moldau executable")
    ap.add_argument("--sizes", default="1000,10000,100000", help="partition counts, comma-separated")
    ap.add_argument("--per-topic", type=int, default=1000, help="partitions per topic")
    ap.add_argument("--kbench", default="", help="kbench binary (empty: skip produce and crash steps)")
    ap.add_argument("--produce-per-partition", type=int, default=100, help="messages per partition in the produce step")
    ap.add_argument("--message-bytes", type=int, default=100)
    ap.add_argument("--crash-mb", type=float, default=1024, help="MB of 1 KiB messages written before kill -9 (0: skip)")
    ap.add_argument("--metadata-rounds", type=int, default=5)
    ap.add_argument("--settle", type=float, default=5, help="seconds idle before RSS is read")
    ap.add_argument("--step-timeout", type=int, default=600, help="seconds any one step may take")
    ap.add_argument("--nofile", type=int, default=0, help="the broker's open-file limit (0: inherited)")
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                    help="a server.properties key for the broker (repeatable), e.g. moldau.log.direct.io=false")
    ap.add_argument("--out", default="", help="directory for table.md, results.jsonl and broker logs")
    ap.add_argument("--keep", action="store_true", help="keep the data directories")
    ap.add_argument("--idle-command", default="", help="shell command run when idle and after the produce step, with $PID and $N set; output to idle-N.txt, produced-N.txt")
    args = ap.parse_args()

    if args.out:
        os.makedirs(args.out, exist_ok=True)
    work = tempfile.mkdtemp(prefix="moldau-scale-")
    rows = []
    try:
        for n in [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]:
            print("scale: %d partitions ..." % n, file=sys.stderr, flush=True)
            row = run_size(args, n, work)
            rows.append(row)
            print("scale: %d partitions: %s" % (n, json.dumps(row)), file=sys.stderr, flush=True)
            if args.out:
                with open(os.path.join(args.out, "results.jsonl"), "a") as f:
                    f.write(json.dumps(row) + "\n")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    out = table(rows)
    print(out)
    if args.out:
        with open(os.path.join(args.out, "table.md"), "w") as f:
            f.write(out + "\n")
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
