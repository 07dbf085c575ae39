#!/usr/bin/env bash
# The one command that runs every test. On a fresh Debian machine with the .NET 10 SDK it installs
# what the tests drive (Debian packages; kafkajs with npm ci), restores NuGet packages, builds with
# warnings as errors (Directory.Build.props), checks formatting and runs every test project. Exit
# status 0 only when all of that passed. CI runs exactly this (.ci/run).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Debian packages the tests drive, as "package  shell-check-that-it-is-there". One line per package.
needs=(
  "kcat           command -v kcat"
  "python3-kafka  /usr/bin/python3 -c 'import kafka'"
  "python3-snappy /usr/bin/python3 -c 'import snappy'"
  "python3-lz4    /usr/bin/python3 -c 'import lz4'"
  "python3-zstandard /usr/bin/python3 -c 'import zstandard'"
  "python3-confluent-kafka /usr/bin/python3 -c 'import confluent_kafka'"
  "nodejs         command -v node"
  "npm            command -v npm"
  "golang-go      command -v go"
  "golang-github-shopify-sarama-dev  test -d /usr/share/gocode/src/github.com/Shopify/sarama"
  "radosgw        command -v radosgw"
  "ceph-mon       command -v ceph-mon"
  "ceph-osd       command -v ceph-osd"
  "postgresql     compgen -G '/usr/lib/postgresql/*/bin/initdb'"
)

step() { printf '\n== %s\n' "$*"; }

command -v dotnet >/dev/null 2>&1 || { echo "test.sh: dotnet not found; install the .NET 10 SDK" >&2; exit 1; }

missing=()
for entry in "${needs[@]}"; do
  read -r pkg check <<<"$entry"
  bash -c "$check" >/dev/null 2>&1 || missing+=("$pkg")
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

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# kafkajs for tests/clients/node, pinned by its package-lock.json; npm ci only when it is missing or
# the lock file changed.
node_dir=tests/clients/node
if [[ ! -d $node_dir/node_modules/kafkajs || $node_dir/package-lock.json -nt $node_dir/node_modules ]]; then
  step "npm ci ($node_dir)"
  (cd "$node_dir" && npm ci --no-audit --no-fund)
fi

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
