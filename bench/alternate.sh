#!/usr/bin/env bash
# alternate.sh - two broker builds side by side: for each round, each build gets a fresh data
# directory and its own process, and runs ../shared/bench's run-suite.sh (kbench, with the
# nullbroker reference in the same round) for the benches given; the order of the builds flips
# every round. For before/after comparisons on this shared machine (see docs/performance.md).
#
#   bench/alternate.sh --suite DIR/run-suite.sh --a NAME=PATH/moldau --b NAME=PATH/moldau
#       [--only P1,C1] [--rounds 3] [--port 19393] [--data DIR] [--out DIR] [--no-warmup]
#       [--summarize]   (only the table of an earlier --out, same --a/--b names and --rounds)
#
# Results: DIR/<name>-r<round>/results.jsonl (run-suite's, with broker_cpu_ms_per_MB from
# --broker-pid), and a table of per-round msgs/s, ratio to the reference and broker cpu-ms/MB.
set -euo pipefail
SUITE=""; A=""; B=""; ONLY=P1,C1; ROUNDS=3; WARMUP=1; SUMMARIZE=0; PORT=19393; DATA=/tmp/moldau-alternate-data
OUT=/tmp/moldau-alternate-$(date +%Y%m%d-%H%M%S)
while [ $# -gt 0 ]; do
    case "$1" in
    --suite) SUITE=$2; shift ;;
    --a) A=$2; shift ;;
    --b) B=$2; shift ;;
    --only) ONLY=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --port) PORT=$2; shift ;;
    --data) DATA=$2; shift ;;
    --out) OUT=$2; shift ;;
    --no-warmup) WARMUP=0 ;;
    --summarize) SUMMARIZE=1 ;;
    *) sed -n 2,14p "$0"; exit 2 ;;
    esac
    shift
done
[ -x "$SUITE" ] && [ -n "$A" ] && [ -n "$B" ] || { sed -n 2,14p "$0"; exit 2; }
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
bpid=""
stop_broker() { if [ -n "$bpid" ]; then kill "$bpid" 2>/dev/null || true; wait "$bpid" 2>/dev/null || true; bpid=""; fi; }
trap stop_broker EXIT
run() { # name path round
    rm -rf "$DATA"; mkdir -p "$DATA"
    "$2" --override log.dirs="$DATA" --override listeners=PLAINTEXT://127.0.0.1:$PORT > "$OUT/$1-r$3.log" 2>&1 &
    bpid=$!
    for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
    echo "round $3: $1" >&2
    # Warm-up, not measured: a fifth of the same benches first, so the broker's paths are compiled
    # (JIT) before the measured run, as in a long-running broker.
    [ "$WARMUP" = 1 ] && "$SUITE" --brokers 127.0.0.1:$PORT --rounds 1 --only "$ONLY" --no-baseline --no-reference \
        --scale 0.2 --data-dir "$DATA" --out "$OUT/$1-r$3-warmup" > /dev/null 2>&1
    "$SUITE" --brokers 127.0.0.1:$PORT --broker-pid "$bpid" --rounds 1 --only "$ONLY" --no-baseline \
        --data-dir "$DATA" --out "$OUT/$1-r$3" | grep -E '^  (broker|ref)' >&2 || true
    stop_broker
}
[ "$SUMMARIZE" = 1 ] && ROUNDS_RUN=0 || ROUNDS_RUN=$ROUNDS
for r in $(seq 1 "$ROUNDS_RUN"); do
    if [ $((r % 2)) -eq 1 ]; then run "${A%%=*}" "${A#*=}" "$r"; run "${B%%=*}" "${B#*=}" "$r"
    else run "${B%%=*}" "${B#*=}" "$r"; run "${A%%=*}" "${A#*=}" "$r"; fi
done
python3 - "$OUT" "${A%%=*}" "${B%%=*}" "$ROUNDS" "$ONLY" <<'PY'
import json, statistics, sys
out, a, b, rounds, only = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5].split(",")
def load(name, r):
    rows = [json.loads(l) for l in open(f"{out}/{name}-r{r}/results.jsonl")]
    return {(x["target"], x["bench"]): x for x in rows}
data = {(n, r): load(n, r) for n in (a, b) for r in range(1, rounds + 1)}
def fmt(xs, f): return f"{statistics.median(xs):{f}} [{min(xs):{f}}-{max(xs):{f}}]" if xs else "-"
print("| bench | build | msgs/s median [min-max] | ÷ reference, same round | broker cpu-ms/MB | per round msgs/s (cpu-ms/MB) |")
print("|---|---|---|---|---|---|")
for bench in only:
    for n in (a, b):
        rows = [(data[(n, r)].get(("broker", bench)), data[(n, r)].get(("ref", bench))) for r in range(1, rounds + 1)]
        rate = [t["msgs_per_s"] for t, _ in rows if t and t.get("msgs_per_s")]
        ratio = [t["msgs_per_s"] / f["msgs_per_s"] for t, f in rows if t and f and t.get("msgs_per_s") and f.get("msgs_per_s")]
        cpu = [t["broker_cpu_ms_per_MB"] for t, _ in rows if t and t.get("broker_cpu_ms_per_MB") is not None]
        per = "; ".join(f"{t['msgs_per_s']:,.0f} ({t.get('broker_cpu_ms_per_MB', float('nan')):.2f})" for t, _ in rows if t and t.get("msgs_per_s"))
        print(f"| {bench} | {n} | {fmt(rate, ',.0f')} | {fmt(ratio, '.2f')} | {fmt(cpu, '.2f')} | {per} |")
PY
echo "outputs in $OUT" >&2
