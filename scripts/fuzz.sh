#!/usr/bin/env bash
# Coverage-guided fuzzing of every reader of untrusted bytes (docs/security.md, "Fuzzing").
#
#   scripts/fuzz.sh <duration> [target...]
#
# <duration> is per target (600, 90s, 10m, 1h). Without targets, every target runs, one after the
# other (FUZZ_JOBS=2 runs two at a time). It installs afl++ (Debian) and the sharpfuzz tool when
# they are missing, publishes tests/Moldau.Fuzz, instruments the Moldau assemblies with SharpFuzz,
# and runs afl-fuzz per target from the committed corpus (tests/Moldau.Fuzz/corpus/<target>/)
# plus the target's seeds. Crashes and hangs are copied to tests/Moldau.Fuzz/pending/<target>/
# for triage; the test suite replays only corpus/, so pending inputs never fail CI. The queue is
# minimised with afl-cmin; FUZZ_UPDATE_CORPUS=1 adds the minimised inputs (at most
# FUZZ_CORPUS_MAX per target, smallest first) to corpus/<target>/. AFL++'s output stays in
# $FUZZ_WORK (default ~/.cache/moldau-fuzz: afl-cmin refuses /tmp) for a look at its stats.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

usage() { echo "usage: scripts/fuzz.sh <duration: 600|90s|10m|1h> [target...]" >&2; exit 2; }
(($# >= 1)) || usage
case "$1" in
  *h) seconds=$((${1%h} * 3600)) ;;
  *m) seconds=$((${1%m} * 60)) ;;
  *s) seconds=${1%s} ;;
  *) seconds=$1 ;;
esac
[[ $seconds =~ ^[0-9]+$ && $seconds -gt 0 ]] || usage
shift

work=${FUZZ_WORK:-${XDG_CACHE_HOME:-$HOME/.cache}/moldau-fuzz}
jobs=${FUZZ_JOBS:-1}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 PATH="$PATH:$HOME/.dotnet/tools"

if ! command -v afl-fuzz >/dev/null 2>&1; then
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends afl++
fi
if ! command -v sharpfuzz >/dev/null 2>&1; then
  dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0
fi

# Publish, then instrument a copy: our own assemblies, and the codecs' (the decompress and records
# targets spend most of their time in them; gzip is zlib, native, and not instrumented). The
# instrumented code runs only under afl-fuzz, so the plain copy lists and writes seeds.
plain="$work/plain" bin="$work/bin"
rm -rf "$plain" "$bin"
nice -n 10 dotnet publish tests/Moldau.Fuzz/Moldau.Fuzz.csproj -c Release -o "$plain" -nologo -v quiet
cp -r "$plain" "$bin"
for dll in Moldau.Protocol Moldau.Storage Moldau.Coordinator Moldau.Broker moldau Snappier K4os.Compression.LZ4 K4os.Compression.LZ4.Streams ZstdSharp; do
  sharpfuzz "$bin/$dll.dll" >/dev/null
done

mapfile -t all < <(dotnet "$plain/Moldau.Fuzz.dll" list | cut -f1)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")
for t in "${targets[@]}"; do
  printf '%s\n' "${all[@]}" | grep -qx -- "$t" || { echo "fuzz.sh: unknown target $t (known: ${all[*]})" >&2; exit 2; }
done

# afl-fuzz refuses to start on a machine not tuned for it; these say we know, and keep it off
# the cores other work pins. The heap limit turns unbounded allocation into an OutOfMemory crash.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_NO_UI=1 AFL_SHUFFLE_QUEUE=1 AFL_FAST_CAL=1
export DOTNET_GCHeapHardLimit=0x40000000 DOTNET_TieredPGO=0

run_target() {
  local t=$1 in="$work/in/$t" out="$work/out/$t"
  rm -rf "$in" "$out"
  mkdir -p "$in" "$out"
  dotnet "$plain/Moldau.Fuzz.dll" seeds "$work/seeds" "$t"
  cp "$work/seeds/$t"/* "$in"/ 2>/dev/null || true
  cp tests/Moldau.Fuzz/corpus/"$t"/* "$in"/ 2>/dev/null || true
  echo "fuzz.sh: $t for ${seconds}s ($(ls "$in" | wc -l) inputs to start from), log in $out.log"
  nice -n 10 afl-fuzz -i "$in" -o "$out" -V "$seconds" -t 10000 -m none -- \
    dotnet "$bin/Moldau.Fuzz.dll" fuzz "$t" >"$out.log" 2>&1 || echo "fuzz.sh: afl-fuzz for $t exited $? (see $out.log)"
  local pending="tests/Moldau.Fuzz/pending/$t" found=0
  for f in "$out"/default/crashes/id:* "$out"/default/hangs/id:*; do
    [[ -f $f ]] || continue
    mkdir -p "$pending"
    local kind=crash
    [[ $f == */hangs/* ]] && kind=hang
    cp "$f" "$pending/$kind-$(sha1sum "$f" | cut -c1-12)"
    found=$((found + 1))
  done
  local min="$work/min/$t" kept=0
  rm -rf "$min"
  if [[ -d $out/default/queue ]] && nice -n 10 afl-cmin -i "$out/default/queue" -o "$min" -t 10000 -m none -- \
      "$(command -v dotnet)" "$bin/Moldau.Fuzz.dll" fuzz "$t" >"$out.cmin.log" 2>&1; then
    if [[ ${FUZZ_UPDATE_CORPUS:-0} == 1 ]]; then
      mkdir -p "tests/Moldau.Fuzz/corpus/$t"
      while read -r f; do
        cp "$f" "tests/Moldau.Fuzz/corpus/$t/fuzz-$(sha1sum "$f" | cut -c1-12)"
        kept=$((kept + 1))
      done < <(find "$min" -type f -printf '%s %p\n' | sort -n | head -n "${FUZZ_CORPUS_MAX:-40}" | cut -d' ' -f2-)
    fi
  fi
  local execs paths
  execs=$(awk -F: '/^execs_done/ {gsub(/ /,"",$2); print $2}' "$out/default/fuzzer_stats" 2>/dev/null || echo "?")
  paths=$(awk -F: '/^corpus_count/ {gsub(/ /,"",$2); print $2}' "$out/default/fuzzer_stats" 2>/dev/null || echo "?")
  echo "fuzz.sh: $t done: ${seconds}s, $execs executions, $paths queue entries ($(find "$min" -type f 2>/dev/null | wc -l) after afl-cmin, $kept added to corpus/), $found crashes/hangs copied to $pending/"
}

mkdir -p "$work/out"
running=0
for t in "${targets[@]}"; do
  run_target "$t" &
  running=$((running + 1))
  if ((running >= jobs)); then
    wait -n
    running=$((running - 1))
  fi
done
wait
echo "fuzz.sh: done; replay a finding with: dotnet $plain/Moldau.Fuzz.dll replay <target> <file>"
