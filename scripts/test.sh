#!/usr/bin/env bash
# The one command that runs every test, installing what the tests need on a fresh Debian
# machine with the .NET 10 SDK: Debian packages (kcat), NuGet packages (restore).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# Debian packages the tests drive: command -> package.
declare -A needs=(
  [kcat]=kcat
)
missing=()
for cmd in "${!needs[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${needs[$cmd]}")
done
if ((${#missing[@]})); then
  sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet restore Moldau.slnx
dotnet build Moldau.slnx -c Release --no-restore -nologo
dotnet format Moldau.slnx --verify-no-changes --no-restore
dotnet test Moldau.slnx -c Release --no-build --logger "console;verbosity=normal" -- RunConfiguration.TestSessionTimeout=1200000
