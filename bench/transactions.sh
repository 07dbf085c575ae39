#!/usr/bin/env bash
# transactions.sh - issue 13's measurement: the idempotent producer against the transactional one
# (a commit every --commit-ms, and every --commit-records records), same load, same broker, in
# alternating order, one fresh broker and data directory per round. Uses moldau-perf produce.
#
#   bench/transactions.sh --broker PATH/moldau [--perf PATH/moldau-perf] [--rounds 3]
#       [--records 1000000] [--record-size 100] [--partitions 1] [--commit-ms 100]
#       [--commit-records 1000] [--port 19392] [--data DIR] [--out DIR] [--summarize]
#       [--override KEY=VALUE]...   (passed to the broker)
#
# Load (each variant): --records values of --record-size bytes, acks=all, linger.ms 5, batch.size
# 1 MiB, to a new topic with --partitions partitions (P1's shape, idempotent); every variant
# serves its delivery reports on the sending thread (moldau-perf does so for a transactional
# producer, and is told to for the idempotent one, so the clients are alike). Output: one
# file per round and variant in --out, and a table on stdout (throughput, ratio to the idempotent
# run of the same round, broker CPU per MB, commit latency p50/p99/max). --summarize only prints
# the table of an earlier run's --out (give the same --rounds, --records, --record-size).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BROKER=""; PERF="$root/tools/Moldau.Perf/bin/Release/net10.0/moldau-perf"; ROUNDS=3
RECORDS=1000000; SIZE=100; PARTS=1; CMS=100; CREC=1000; PORT=19392; DATA=/tmp/moldau-txbench-data
OUT=/tmp/moldau-txbench-$(date +%Y%m%d-%H%M%S); SUMMARIZE=0; OVERRIDES=()
while [ $# -gt 0 ]; do
    case "$1" in
    --broker) BROKER=$2; shift ;;
    --perf) PERF=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --records) RECORDS=$2; shift ;;
    --record-size) SIZE=$2; shift ;;
    --partitions) PARTS=$2; shift ;;
    --commit-ms) CMS=$2; shift ;;
    --commit-records) CREC=$2; shift ;;
    --port) PORT=$2; shift ;;
    --data) DATA=$2; shift ;;
    --out) OUT=$2; shift ;;
    --summarize) SUMMARIZE=1 ;;
    --override) OVERRIDES+=(--override "$2"); shift ;;
    *) sed -n 2,16p "$0"; exit 2 ;;
    esac
    shift
done
[ "$SUMMARIZE" = 1 ] || [ -x "$BROKER" ] || { echo "transactions.sh: --broker PATH/moldau is required" >&2; exit 2; }
[ -x "$PERF" ] || { echo "transactions.sh: $PERF missing (dotnet build tools/Moldau.Perf -c Release)" >&2; exit 2; }
mkdir -p "$OUT"
bootstrap=127.0.0.1:$PORT
bpid=""
stop_broker() { if [ -n "$bpid" ]; then kill "$bpid" 2>/dev/null || true; wait "$bpid" 2>/dev/null || true; bpid=""; fi; }
trap stop_broker EXIT
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

variants=(idempotent "txn-${CMS}ms" "txn-${CREC}rec")
[ "$SUMMARIZE" = 1 ] && ROUNDS_RUN=0 || ROUNDS_RUN=$ROUNDS
for r in $(seq 1 "$ROUNDS_RUN"); do
    rm -rf "$DATA"; mkdir -p "$DATA"
    "$BROKER" --override log.dirs="$DATA" --override listeners=PLAINTEXT://$bootstrap ${OVERRIDES[@]+"${OVERRIDES[@]}"} > "$OUT/broker-r$r.log" 2>&1 &
    bpid=$!
    for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
    # Warm-up, not measured: the broker's produce and transaction paths are compiled (JIT) before
    # the first measured variant, which would otherwise pay for it.
    "$PERF" produce --bootstrap "$bootstrap" --topic "txbench-$r-warm" --partitions "$PARTS" --records 200000 \
        --record-size "$SIZE" --acks all --linger-ms 5 --batch-size 1048576 --idempotence true > /dev/null 2>&1
    "$PERF" produce --bootstrap "$bootstrap" --topic "txbench-$r-warm" --records 50000 --record-size "$SIZE" \
        --acks all --linger-ms 5 --batch-size 1048576 --transactional-id "txbench-$r-warm" --commit-records 1000 > /dev/null 2>&1
    order=("${variants[@]}")
    if [ $((r % 2)) -eq 0 ]; then order=("${variants[2]}" "${variants[1]}" "${variants[0]}"); fi
    for v in "${order[@]}"; do
        extra=(--idempotence true --config dotnet.producer.enable.background.poll=false)
        case "$v" in
        txn-*ms) extra=(--transactional-id "txbench-$r-$v" --commit-ms "$CMS") ;;
        txn-*rec) extra=(--transactional-id "txbench-$r-$v" --commit-records "$CREC") ;;
        esac
        before=$(cpu_ticks "$bpid")
        "$PERF" produce --bootstrap "$bootstrap" --topic "txbench-$r-$v" --partitions "$PARTS" \
            --records "$RECORDS" --record-size "$SIZE" --acks all --linger-ms 5 --batch-size 1048576 \
            --timeout-ms 120000 "${extra[@]}" > "$OUT/r$r-$v.txt" 2> "$OUT/r$r-$v.err"
        echo "broker_cpu_ticks $(( $(cpu_ticks "$bpid") - before )) $(getconf CLK_TCK)" >> "$OUT/r$r-$v.txt"
        echo "round $r $v: $(head -1 "$OUT/r$r-$v.txt")" >&2
    done
    stop_broker
done

python3 - "$OUT" "$ROUNDS" "$RECORDS" "$SIZE" "${variants[@]}" <<'PY'
import re, statistics, sys
out, rounds, records, size, variants = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
def parse(path):
    t = open(path).read()
    d = {"rate": float(re.search(r"s: ([\d.]+) records/s", t).group(1))}
    ticks, hz = re.search(r"broker_cpu_ticks (\d+) (\d+)", t).groups()
    d["cpu_ms_per_mb"] = int(ticks) * 1000 / int(hz) / (records * size / 1e6)
    for name, key in (("commit", r"commit \(flush \+ EndTxn\)"), ("endtxn", "EndTxn")):
        m = re.search(r"^" + key + r" latency ms: avg [\d.]+, p50 ([\d.]+), p99 ([\d.]+), max ([\d.]+)", t, re.M)
        if m: d[name] = tuple(float(x) for x in m.groups())
    m = re.search(r"^(\d+) transactions committed", t, re.M)
    if m: d["txns"] = int(m.group(1))
    return d
res = {(r, v): parse(f"{out}/r{r}-{v}.txt") for r in range(1, rounds + 1) for v in variants}
def med(xs, f=",.2f"): return f"{statistics.median(xs):{f}} [{min(xs):{f}}-{max(xs):{f}}]"
print(f"| variant | records/s median [min-max] | ÷ idempotent, same round | broker cpu-ms/MB | transactions | commit (flush+EndTxn) p50 / p99 / max ms | EndTxn p50 / p99 / max ms |")
print("|---|---|---|---|---|---|---|")
for v in variants:
    rows = [res[(r, v)] for r in range(1, rounds + 1)]
    ratios = [res[(r, v)]["rate"] / res[(r, variants[0])]["rate"] for r in range(1, rounds + 1)]
    c = e = "-"
    if "commit" in rows[0]:
        c = " / ".join(f"{statistics.median(x[c_][i] for x in rows):.1f}" for c_, i in (("commit", 0), ("commit", 1), ("commit", 2)))
        e = " / ".join(f"{statistics.median(x['endtxn'][i] for x in rows):.1f}" for i in range(3))
    txns = statistics.median(x.get("txns", 0) for x in rows)
    print(f"| {v} | {med([x['rate'] for x in rows], ',.0f')} | {med(ratios)} | {med([x['cpu_ms_per_mb'] for x in rows])} | {txns:,.0f} | {c} | {e} |")
print()
print("per round (records/s; commit p50/p99 ms):")
for r in range(1, rounds + 1):
    print(f"round {r}: " + "; ".join(f"{v} {res[(r, v)]['rate']:,.0f}" + (f" ({res[(r, v)]['commit'][0]:.1f}/{res[(r, v)]['commit'][1]:.1f})" if "commit" in res[(r, v)] else "") for v in variants))
PY
echo "outputs in $OUT" >&2
