#!/usr/bin/env python3
"""Start-up time and idle memory of a moldau binary (README "One binary").

For each run: a fresh data directory and a free port; the time from exec to the first accepted
TCP connection, and to the first answered request (ApiVersions v0); then, after 5 s idle, the
resident set (VmRSS). Prints the median and range of each.

    bench/startup.py path/to/moldau [runs]
"""
import os, shutil, signal, socket, statistics, struct, subprocess, sys, tempfile, time

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

def api_versions(port):
    client = b"startup"
    body = struct.pack(">hhih", 18, 0, 1, len(client)) + client
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", s.recv(4, socket.MSG_WAITALL))[0]
        data = s.recv(size, socket.MSG_WAITALL)
        return struct.unpack(">i", data[:4])[0] == 1

def run(binary):
    data = tempfile.mkdtemp(prefix="moldau-startup-")
    port = free_port()
    t0 = time.perf_counter()
    p = subprocess.Popen([binary, "--override", f"listeners=PLAINTEXT://127.0.0.1:{port}",
                          "--override", f"log.dirs={data}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    accept = answer = None
    try:
        while accept is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                accept = time.perf_counter() - t0
            except OSError:
                time.sleep(0.001)
        while answer is None:
            try:
                if api_versions(port):
                    answer = time.perf_counter() - t0
            except OSError:
                time.sleep(0.001)
        time.sleep(5)
        with open(f"/proc/{p.pid}/status") as f:
            rss = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:")) / 1024
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(30)
        shutil.rmtree(data, ignore_errors=True)
    return accept * 1000, answer * 1000, rss

def main():
    binary, runs = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 5
    results = [run(binary) for _ in range(runs)]
    for i, name in enumerate(["exec -> accepting (ms)", "exec -> first answer (ms)", "idle RSS (MiB)"]):
        xs = [r[i] for r in results]
        print(f"{name}: median {statistics.median(xs):.0f} (range {min(xs):.0f}-{max(xs):.0f}, {runs} runs)")

main()
