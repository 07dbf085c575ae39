#!/usr/bin/env bash
# Scale benchmark (issue 11): N partitions on one broker; creation rate, RSS, descriptors,
# Metadata time, produce spread over every partition, clean stop, clean restart, kill -9 recovery.
#
#   bench/scale.sh [--sizes 1000,10000,100000] [--out DIR] [--per-topic 1000] [--nofile 20000]
#                  [--kbench PATH] [--crash-mb 1024] [--produce-per-partition 100] [--no-build] ...
#
# Builds the broker (Release, into .build/scale), then runs bench/scale.py, which starts a broker
# of its own per size (fresh data dir under a temp dir, free port) and stops only that process, by
# PID. A size that fails is recorded as "failed at <step>: <reason>" and the next size runs.
# kbench comes from --kbench, $KBENCH, or ../shared/bench/kbench; when none is built it is compiled
# from ../shared/bench/kbench.c into a temp dir (needs gcc and librdkafka-dev); without it the
# produce and crash steps are skipped. Prints a markdown table; --out DIR also writes table.md,
# results.jsonl and the broker logs there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build=1
kbench="${KBENCH:-}"
args=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --no-build) build=0; shift ;;
    --kbench) kbench="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; python3 "$root/bench/scale.py" --help; exit 0 ;;
    *) args+=("$1"); shift ;;
  esac
done

out="$root/.build/scale"
if [[ $build == 1 || ! -x "$out/moldau" ]]; then
  echo "scale: building the broker (Release) into $out" >&2
  dotnet build "$root/src/Moldau.Server/Moldau.Server.csproj" -c Release -o "$out" -nologo -v quiet >&2
fi

tmp=""
cleanup() { [[ -n "$tmp" ]] && rm -rf "$tmp"; }
trap cleanup EXIT
if [[ -z "$kbench" ]]; then
  for d in "$root/../shared/bench" "$root/../../shared/bench"; do
    if [[ -x "$d/kbench" ]]; then kbench="$d/kbench"; break; fi
  done
fi
if [[ -z "$kbench" ]]; then
  for d in "$root/../shared/bench" "$root/../../shared/bench"; do
    if [[ -f "$d/kbench.c" ]] && pkg-config --exists rdkafka 2>/dev/null; then
      tmp="$(mktemp -d)"
      gcc -O2 -o "$tmp/kbench" "$d/kbench.c" $(pkg-config --cflags --libs rdkafka) -lpthread
      kbench="$tmp/kbench"
      break
    fi
  done
fi
[[ -z "$kbench" ]] && echo "scale: no kbench (see ../shared/bench/README.md); produce and crash steps skipped" >&2

python3 "$root/bench/scale.py" --binary "$out/moldau" --kbench "$kbench" "${args[@]}"
