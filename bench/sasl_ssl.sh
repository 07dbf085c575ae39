#!/usr/bin/env bash
# P1, P3, C2 and E1 (the standard set of ../shared/bench) over SASL_SSL (SCRAM-SHA-512, TLS 1.3)
# against PLAINTEXT on one broker in the same run, then a storm of 1,000 TLS handshakes (with and
# without a SCRAM login) from bench/tls_storm.py.
#
#   bench/sasl_ssl.sh --kbench /tmp/bench/kbench [--moldau PATH] [--rounds 3] [--work DIR] [--scale 1]
#
# Makes a CA and a server certificate (openssl), starts the broker with PLAINTEXT://127.0.0.1:19092
# and SASL_SSL://127.0.0.1:19093 and a SCRAM-SHA-512 user from --add-scram, then per round runs each
# benchmark over both listeners (the order alternating between rounds; the same client settings
# but the security ones, socket.nagle.disable=true on both: docs/security.md recommends it over TLS),
# plus E1 over SASL_SSL with librdkafka's default Nagle for comparison. RESULT lines go to
# DIR/results.jsonl; a markdown table of the per-round values and ratios is printed at the end.
set -euo pipefail

KBENCH=""; MOLDAU=""; ROUNDS=3; WORK=/tmp/moldau-sasl-bench; SCALE=1
while (($#)); do
  case "$1" in
    --kbench) KBENCH=$2; shift 2 ;;
    --moldau) MOLDAU=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --scale) SCALE=$2; shift 2 ;;
    *) echo "usage: $0 --kbench PATH [--moldau PATH] [--rounds N] [--work DIR] [--scale F]" >&2; exit 2 ;;
  esac
done
[[ -x "$KBENCH" ]] || { echo "$0: --kbench must name ../shared/bench's kbench (./build.sh there)" >&2; exit 2; }
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "$MOLDAU" ]]; then
  dotnet build "$ROOT/src/Moldau.Server" -c Release -nologo -v q >/dev/null
  MOLDAU=$ROOT/src/Moldau.Server/bin/Release/net10.0/moldau
fi

rm -rf "$WORK" && mkdir -p "$WORK/data"
cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca-key.pem -out ca.pem -days 7 -subj "/CN=Bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server-key.pem -out server.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out server-cert.pem -days 7 -extfile ext.cnf 2>/dev/null
cat server-key.pem server-cert.pem > server.pem

cat > server.properties <<EOF
node.id=1
log.dirs=$WORK/data
listeners=PLAINTEXT://127.0.0.1:19092,SASL_SSL://127.0.0.1:19093
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$WORK/server.pem
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
EOF
"$MOLDAU" server.properties --add-scram 'SCRAM-SHA-512=[name=bench,password=bench-secret]' > broker.log 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q "Moldau started" broker.log && break; sleep 0.1; done
grep -q "Moldau started" broker.log || { cat broker.log; exit 1; }

n() { python3 -c "print(max(1, int($1 * $SCALE)))"; }
N1M=$(n 1000000); E1D=$(n 20)
PLAIN=(-b 127.0.0.1:19092 -X socket.nagle.disable=true)
SASL_SSL=(-b 127.0.0.1:19093 -X security.protocol=sasl_ssl -X "ssl.ca.location=$WORK/ca.pem"
          -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=bench -X sasl.password=bench-secret)
: > results.jsonl

run() { # target bench round kbench-args...
  local target=$1 bench=$2 round=$3; shift 3
  local out
  if out=$("$KBENCH" "$@" --broker-pid "$PID" -q 2>&1); then
    echo "$out" | grep '^RESULT ' | sed 's/^RESULT //' |
      python3 -c "import json,sys; r=json.load(sys.stdin); r.update(target='$target', bench='$bench', round=$round); print(json.dumps(r))" >> results.jsonl
    echo "round $round $bench $target done"
  else
    echo "round $round $bench $target FAILED: $out" >&2
  fi
}

set_of() { # target round args...
  local target=$1 round=$2; shift 2
  local t="r$round-$target"
  run "$target" P1 "$round" produce "$@" -t "$t-p1" -P 1 -n "$N1M" -s 100 -a 1 -l 5 --batch-bytes 1048576
  run "$target" P3 "$round" produce "$@" -t "$t-p3" -P 8 -n "$N1M" -s 1024 -a 1 -l 5 --batch-bytes 1048576
  run "$target" C2 "$round" consume "$@" -t "$t-p3" -n "$N1M"
  run "$target" E1 "$round" e2e "$@" -t "$t-e1" -P 1 -r 10000 -d "$E1D" -s 100 -a all -l 1
}

for round in $(seq "$ROUNDS"); do
  if ((round % 2)); then
    set_of PLAINTEXT "$round" "${PLAIN[@]}"; set_of SASL_SSL "$round" "${SASL_SSL[@]}" -X socket.nagle.disable=true
  else
    set_of SASL_SSL "$round" "${SASL_SSL[@]}" -X socket.nagle.disable=true; set_of PLAINTEXT "$round" "${PLAIN[@]}"
  fi
  run SASL_SSL-nagle E1 "$round" e2e "${SASL_SSL[@]}" -t "r$round-nagle-e1" -P 1 -r 10000 -d "$E1D" -s 100 -a all -l 1
done

echo
echo "TLS handshake storm, 1,000 connections, 100 at a time (TLS + ApiVersions; then with a SCRAM-SHA-512 login):"
ulimit -n 4096 || true
python3 "$ROOT/bench/tls_storm.py" --pid "$PID" -b 127.0.0.1:19093 --ca "$WORK/ca.pem" -n 1000 -c 100 | tee storm.json
python3 "$ROOT/bench/tls_storm.py" --pid "$PID" -b 127.0.0.1:19093 --ca "$WORK/ca.pem" -n 1000 -c 100 --scram bench:bench-secret | tee -a storm.json

python3 - <<'EOF'
import json
rows = [json.loads(l) for l in open("results.jsonl")]
def get(r, bench):
    if bench == "E1":
        return r["e2e_latency"]["p50_ms"], r["e2e_latency"]["p99_ms"]
    return (r["msgs_per_s"] if bench == "P1" else r["MB_per_s"]), r.get("broker_cpu_ms_per_MB")
by = {(r["bench"], r["target"], r["round"]): r for r in rows}
rounds = sorted({r["round"] for r in rows})
print()
print("| bench | metric | " + " | ".join(f"round {n} PLAINTEXT | round {n} SASL_SSL | ratio" for n in rounds) + " |")
print("|---|---|" + "---|---|---|" * len(rounds))
for bench, metric in (("P1", "msgs/s"), ("P3", "MB/s"), ("C2", "MB/s")):
    for i, name in ((0, metric), (1, "broker CPU ms/MB")):
        cells = []
        for n in rounds:
            p, s = by.get((bench, "PLAINTEXT", n)), by.get((bench, "SASL_SSL", n))
            pv, sv = (get(p, bench)[i] if p else None), (get(s, bench)[i] if s else None)
            ratio = f"{sv / pv:.2f}" if pv and sv else "-"
            cells += [f"{pv:,.1f}" if pv is not None else "-", f"{sv:,.1f}" if sv is not None else "-", ratio]
        print(f"| {bench} | {name} | " + " | ".join(cells) + " |")
for target in ("SASL_SSL", "SASL_SSL-nagle"):
    cells = []
    for n in rounds:
        p, s = by.get(("E1", "PLAINTEXT", n)), by.get(("E1", target, n))
        fmt = lambda r: "{:.2f} / {:.2f}".format(*get(r, "E1")) if r else "-"
        cells += [fmt(p), fmt(s), f"{get(s, 'E1')[0] / get(p, 'E1')[0]:.2f}" if p and s else "-"]
    print(f"| E1 | e2e p50 / p99 ms ({target}) | " + " | ".join(cells) + " |")
busy = [r.get("sys_busy_pct") for r in rows if r.get("sys_busy_pct") is not None]
if busy:
    print(f"\nsys_busy_pct over the runs: {min(busy):.0f}-{max(busy):.0f}")
EOF
