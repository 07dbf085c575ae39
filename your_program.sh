#!/usr/bin/env bash
# Starts Moldau: ./your_program.sh [PATH/server.properties] [--override key=value]...
# With no file it runs with the embedded defaults: data in ./data, PLAINTEXT on port 9092.
# It builds once (Release, into .build/moldau) when the binary is missing or older than any
# source, then execs the binary, so a start does not compile.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$root/.build/moldau"
bin="$out/moldau"
# obj/ and bin/ are skipped: every build (the test suite's too) writes .cs and .props files there,
# which would otherwise look newer than the binary and trigger a rebuild at the next start.
if [[ ! -x "$bin" ]] || [[ -n "$(find "$root/src" "$root/Directory.Build.props" "$root/Directory.Packages.props" \
    \( -name obj -o -name bin \) -prune -o \
    \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' \) -newer "$bin" -print -quit)" ]]; then
  echo "moldau: building (once) into $out" >&2
  dotnet build "$root/src/Moldau.Server/Moldau.Server.csproj" -c Release -o "$out" -nologo -v quiet >&2
  touch "$bin"
fi
exec "$bin" "$@"
