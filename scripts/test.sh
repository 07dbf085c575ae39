#!/usr/bin/env bash
# The one command that runs every test. On a fresh Debian machine with the .NET 10 SDK it installs
# what the tests drive (Debian packages), restores NuGet packages, builds with warnings as errors
# (Directory.Build.props), checks formatting and runs every test project. Exit status 0 only when
# all of that passed. CI runs exactly this (.ci/run).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Programs the tests run, as "command debian-package". Add a tool with one line.
needs=(
  "kcat kcat"
)

step() { printf '\n== %s\n' "$*"; }

command -v dotnet >/dev/null 2>&1 || { echo "test.sh: dotnet not found; install the .NET 10 SDK" >&2; exit 1; }

missing=()
for entry in "${needs[@]}"; do
  read -r cmd pkg <<<"$entry"
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  step "installing Debian packages: ${missing[*]}"
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "test.sh: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# npm packages the tests drive (kafkajs), pinned by package-lock.json.
npm ci --prefix tests/clients/node --no-audit --no-fund

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

step "restore"
dotnet restore Moldau.slnx

step "build (Release, warnings are errors)"
dotnet build Moldau.slnx -c Release --no-restore -nologo

# A formatting failure does not hide the test results: it is reported and fails the run at the end.
# Generated code (src/Moldau.Protocol/Generated/**/*.g.cs) is skipped by dotnet format by default.
step "format check"
format_failed=0
dotnet format Moldau.slnx --verify-no-changes --no-restore || format_failed=1

# The console logger at minimal verbosity prints each failed test with its message and stack, and
# the totals; a test hanging for 10 minutes is killed and named (blame-hang).
step "test"
test_failed=0
dotnet test Moldau.slnx -c Release --no-build --nologo \
  --logger "console;verbosity=minimal" \
  --blame-hang-timeout 10m --blame-hang-dump-type none \
  -- RunConfiguration.TestSessionTimeout=1800000 || test_failed=1

if ((format_failed)); then
  echo "test.sh: FAILED: dotnet format found changes to make (run: dotnet format Moldau.slnx)" >&2
fi
if ((test_failed)); then
  echo "test.sh: FAILED: tests failed (see the failures above)" >&2
fi
if ((format_failed || test_failed)); then
  exit 1
fi
echo "test.sh: all passed"
