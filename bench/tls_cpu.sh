#!/usr/bin/env bash
# Broker CPU per MB and throughput over SASL_SSL against PLAINTEXT, for several broker builds in the
# same run (before/after a change): P1, P3, C2 and E1 of ../shared/bench, as bench/sasl_ssl.sh runs them.
#
#   bench/tls_cpu.sh --kbench /tmp/bench/kbench --moldau before=PATH --moldau after=PATH \
#                    [--rounds 3] [--work DIR] [--scale 1] [--benches "P1 P3 C2 E1"]
#
# Starts every build at once (each with PLAINTEXT and SASL_SSL listeners on its own ports, the same
# ECDSA P-256 certificate and SCRAM-SHA-512 user; an idle broker costs next to nothing), then per
# round runs each benchmark against every build over both listeners, the order of the builds and of
# the listeners rotating between rounds, so that a change in the machine's load falls on all alike.
# The broker's CPU per MB (from /proc/<pid>/stat, kbench --broker-pid) is the measure to trust on a
# shared machine; throughput moves with whatever else runs. RESULT lines go to DIR/results.jsonl;
# a markdown table of medians over the rounds is printed at the end.
set -euo pipefail

KBENCH=""; ROUNDS=3; WORK=/tmp/moldau-tls-cpu; SCALE=1; BENCHES="P1 P3 C2 E1"; BUILDS=()
while (($#)); do
  case "$1" in
    --kbench) KBENCH=$2; shift 2 ;;
    --moldau) BUILDS+=("$2"); shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --scale) SCALE=$2; shift 2 ;;
    --benches) BENCHES=$2; shift 2 ;;
    *) echo "usage: $0 --kbench PATH --moldau LABEL=PATH... [--rounds N] [--work DIR] [--scale F] [--benches LIST]" >&2; exit 2 ;;
  esac
done
[[ -x "$KBENCH" ]] || { echo "$0: --kbench must name ../shared/bench's kbench (./build.sh there)" >&2; exit 2; }
((${#BUILDS[@]})) || { echo "$0: at least one --moldau LABEL=PATH" >&2; exit 2; }

rm -rf "$WORK" && mkdir -p "$WORK"
cd "$WORK"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca-key.pem -out ca.pem -days 7 -subj "/CN=Bench CA" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout server-key.pem -out server.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > ext.cnf
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -out server-cert.pem -days 7 -extfile ext.cnf 2>/dev/null
cat server-key.pem server-cert.pem > server.pem

declare -A PIDS PORT
LABELS=()
cleanup() { for l in "${LABELS[@]}"; do kill "${PIDS[$l]}" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
i=0
for build in "${BUILDS[@]}"; do
  label=${build%%=*}; bin=${build#*=}
  [[ -x "$bin" ]] || { echo "$0: $bin is not executable" >&2; exit 2; }
  port=$((19192 + 10 * i)); i=$((i + 1))
  mkdir -p "$WORK/$label/data"
  cat > "$WORK/$label/server.properties" <<EOF
node.id=1
log.dirs=$WORK/$label/data
listeners=PLAINTEXT://127.0.0.1:$port,SASL_SSL://127.0.0.1:$((port + 1))
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$WORK/server.pem
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
EOF
  (cd "$WORK/$label" && exec "$bin" server.properties --add-scram 'SCRAM-SHA-512=[name=bench,password=bench-secret]' > broker.log 2>&1) &
  PIDS[$label]=$!; PORT[$label]=$port; LABELS+=("$label")
done
for l in "${LABELS[@]}"; do
  for _ in $(seq 200); do grep -q "Moldau started" "$WORK/$l/broker.log" 2>/dev/null && break; sleep 0.1; done
  grep -q "Moldau started" "$WORK/$l/broker.log" || { cat "$WORK/$l/broker.log"; exit 1; }
done

n() { python3 -c "print(max(1, int($1 * $SCALE)))"; }
N1M=$(n 1000000); E1D=$(n 20)
: > results.jsonl

listener() { # label PLAINTEXT|SASL_SSL
  local port=${PORT[$1]}
  if [[ $2 == PLAINTEXT ]]; then echo "-b 127.0.0.1:$port -X socket.nagle.disable=true"
  else echo "-b 127.0.0.1:$((port + 1)) -X security.protocol=sasl_ssl -X ssl.ca.location=$WORK/ca.pem -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=bench -X sasl.password=bench-secret -X socket.nagle.disable=true"; fi
}

run() { # label target bench round
  local label=$1 target=$2 bench=$3 round=$4 t="r$4-$2"
  local -a L; read -r -a L <<< "$(listener "$label" "$target")"
  local -a args
  case $bench in
    P1) args=(produce -t "$t-p1" -P 1 -n "$N1M" -s 100 -a 1 -l 5 --batch-bytes 1048576) ;;
    P3) args=(produce -t "$t-p3" -P 8 -n "$N1M" -s 1024 -a 1 -l 5 --batch-bytes 1048576) ;;
    # C2 reads what P3 wrote in this round (without P3 in --benches, the warm-up's topic).
    C2) if [[ " $BENCHES " == *" P3 "* ]]; then args=(consume -t "$t-p3" -n "$N1M"); else args=(consume -t "warm-$target" -n "$(n 200000)"); fi ;;
    E1) args=(e2e -t "$t-e1" -P 1 -r 10000 -d "$E1D" -s 100 -a all -l 1) ;;
  esac
  local out
  if out=$("$KBENCH" "${args[0]}" "${L[@]}" "${args[@]:1}" --broker-pid "${PIDS[$label]}" -q 2>&1); then
    echo "$out" | grep '^RESULT ' | sed 's/^RESULT //' |
      python3 -c "import json,sys; r=json.load(sys.stdin); r.update(build='$label', target='$target', bench='$bench', round=$round); print(json.dumps(r))" >> results.jsonl
    echo "round $round $bench $label $target done"
  else
    echo "round $round $bench $label $target FAILED: $out" >&2
  fi
}

# A short warm-up of every build over both listeners (the JIT's tiering, the pools).
for l in "${LABELS[@]}"; do
  for target in PLAINTEXT SASL_SSL; do
    read -r -a L <<< "$(listener "$l" "$target")"
    "$KBENCH" produce "${L[@]}" -t "warm-$target" -P 8 -n "$(n 200000)" -s 1024 -a 1 -l 5 --batch-bytes 1048576 -q >/dev/null 2>&1 || true
    "$KBENCH" consume "${L[@]}" -t "warm-$target" -n "$(n 200000)" -q >/dev/null 2>&1 || true
  done
done

for round in $(seq "$ROUNDS"); do
  # Rotate the builds' order, and alternate the listeners' order, between rounds.
  k=$(((round - 1) % ${#LABELS[@]}))
  order=("${LABELS[@]:k}" "${LABELS[@]:0:k}")
  if ((round % 2)); then targets=(PLAINTEXT SASL_SSL); else targets=(SASL_SSL PLAINTEXT); fi
  for bench in $BENCHES; do
    for l in "${order[@]}"; do
      for target in "${targets[@]}"; do
        run "$l" "$target" "$bench" "$round"
      done
    done
  done
done

python3 - "${LABELS[@]}" <<'EOF'
import json, statistics, sys
labels = sys.argv[1:]
rows = [json.loads(l) for l in open("results.jsonl")]
def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None
def pick(bench, build, target, key):
    out = []
    for r in rows:
        if (r["bench"], r["build"], r["target"]) != (bench, build, target):
            continue
        if bench == "E1":
            out.append(r["e2e_latency"][key] if key in ("p50_ms", "p99_ms") else r.get(key))
        else:
            out.append(r.get(key))
    return out
fmt = lambda v, d=2: "-" if v is None else (f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.{d}f}")
rounds = sorted({r["round"] for r in rows})
print(f"\nmedians of {len(rounds)} round(s); per-round values in results.jsonl\n")
print("| bench | build | PLAINTEXT | SASL_SSL | ratio | broker CPU ms/MB PLAINTEXT | SASL_SSL | TLS extra ms/MB |")
print("|---|---|---|---|---|---|---|---|")
for bench in ("P1", "P3", "C2", "E1"):
    for b in labels:
        if bench == "E1":
            p50p, p50s = med(pick(bench, b, "PLAINTEXT", "p50_ms")), med(pick(bench, b, "SASL_SSL", "p50_ms"))
            p99p, p99s = med(pick(bench, b, "PLAINTEXT", "p99_ms")), med(pick(bench, b, "SASL_SSL", "p99_ms"))
            if p50p is None and p50s is None:
                continue
            tp, ts = f"p50 {fmt(p50p)} / p99 {fmt(p99p)} ms", f"p50 {fmt(p50s)} / p99 {fmt(p99s)} ms"
            ratio = f"{p50s / p50p:.2f} (p50)" if p50p and p50s else "-"
        else:
            key = "msgs_per_s" if bench == "P1" else "MB_per_s"
            vp, vs = med(pick(bench, b, "PLAINTEXT", key)), med(pick(bench, b, "SASL_SSL", key))
            if vp is None and vs is None:
                continue
            unit = " msg/s" if bench == "P1" else " MB/s"
            tp, ts = fmt(vp, 1) + unit, fmt(vs, 1) + unit
            # The ratio of the medians of the per-round ratios (each round's pair ran back to back).
            per = [s / p for p, s in zip(pick(bench, b, "PLAINTEXT", key), pick(bench, b, "SASL_SSL", key)) if p and s]
            ratio = f"{med(per):.2f}" if per else "-"
        cp, cs = med(pick(bench, b, "PLAINTEXT", "broker_cpu_ms_per_MB")), med(pick(bench, b, "SASL_SSL", "broker_cpu_ms_per_MB"))
        extra = fmt(cs - cp) if cp is not None and cs is not None else "-"
        print(f"| {bench} | {b} | {tp} | {ts} | {ratio} | {fmt(cp)} | {fmt(cs)} | {extra} |")
busy = [r.get("sys_busy_pct") for r in rows if r.get("sys_busy_pct") is not None]
if busy:
    print(f"\nsys_busy_pct over the runs: {min(busy):.0f}-{max(busy):.0f}")
EOF
