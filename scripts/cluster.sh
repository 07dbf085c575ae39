#!/usr/bin/env bash
# Cluster mode on this machine, for trying it and for the tests (issue 14, docs/cluster.md).
#
#   scripts/cluster.sh up [N]  starts Ceph's RADOS Gateway (one monitor, one memstore OSD, radosgw on
#                              127.0.0.1) with user and bucket "moldau", PostgreSQL (initdb + pg_ctl,
#                              database "moldau"), and N Moldau brokers in cluster mode (default 3;
#                              0: only the servers), all in one temporary directory; waits until
#                              every broker answers, then prints "bootstrap: host:port,..."
#   scripts/cluster.sh down    stops what "up" started (by the PIDs it recorded, each checked to be
#                              the process it started) and removes the directory
#
# Needs Debian's radosgw, ceph-mon, ceph-osd (Ceph 16) and postgresql, and a built Moldau.Server
# (built here with dotnet when missing). The RGW recipe is the one
# tests/Moldau.Cluster.Tests/Infrastructure/CephRgwServer.cs uses.
set -euo pipefail
state=${MOLDAU_CLUSTER_STATE:-${TMPDIR:-/tmp}/moldau-cluster}
access_key=MOLDAUACCESSKEY00000
secret_key=moldau-secret-key-000000000000000000000
bucket=moldau

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

down() {
  [[ -d $state ]] || { echo "cluster.sh: nothing running ($state does not exist)"; return 0; }
  # The brokers first (SIGTERM: each commits what it buffered and releases its lease).
  for pidfile in "$state"/broker-*.pid; do
    [[ -f $pidfile ]] || continue
    pid=$(cat "$pidfile")
    if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$state/"; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  # PostgreSQL: fast shutdown of the postmaster whose pid file is in our data directory.
  if [[ -f $state/pg/data/postmaster.pid ]]; then
    pid=$(head -1 "$state/pg/data/postmaster.pid")
    if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$state/pg/data"; then
      kill -INT "$pid" 2>/dev/null || true
      for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
  fi
  # RGW first, then the OSD, then the monitor; only the PIDs we recorded, and only while they are
  # still the processes we started (their command line names our ceph.conf).
  for name in rgw osd mon; do
    pidfile=$state/$name.pid
    [[ -f $pidfile ]] || continue
    pid=$(cat "$pidfile")
    if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$state/ceph.conf"; then
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
  done
  rm -rf "$state"
  echo "cluster.sh: stopped; removed $state"
}

up() {
  if [[ -d $state ]]; then
    echo "cluster.sh: $state exists; run '$0 down' first" >&2
    exit 1
  fi
  for tool in monmaptool ceph-mon ceph-osd radosgw radosgw-admin ceph; do
    command -v "$tool" >/dev/null || { echo "cluster.sh: $tool not found; apt-get install radosgw ceph-mon ceph-osd" >&2; exit 1; }
  done
  mkdir -p "$state"/{mon,osd,run,log,rgw}
  local fsid mon_port rgw_port conf osd_uuid osd_id started
  started=$(date +%s.%N)
  fsid=$(cat /proc/sys/kernel/random/uuid)
  mon_port=$(free_port)
  rgw_port=$(free_port)
  conf=$state/ceph.conf
  # Keep in step with CephRgwServer.CephConf (docs/cluster.md says why each line is there).
  cat >"$conf" <<CONF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public addr = 127.0.0.1
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail crit = 0
mon data avail warn = 0
osd crush chooseleaf type = 0
osd objectstore = memstore
memstore device bytes = ${MOLDAU_CLUSTER_MEMSTORE_BYTES:-4294967296}
run dir = $state/run
admin socket = $state/run/\$name.asok
pid file = $state/run/\$name.pid
log file = $state/log/\$name.log
mon data = $state/mon/\$name
osd data = $state/osd/\$name
keyring = $state/keyring
rgw data = $state/rgw
CONF
  trap 'echo "cluster.sh: start failed; logs in $state/log" >&2' ERR
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$state/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$state/monmap"
  setsid ceph-mon -c "$conf" -f -i a >"$state/log/mon.out" 2>&1 </dev/null &
  echo $! >"$state/mon.pid"
  osd_uuid=$(cat /proc/sys/kernel/random/uuid)
  osd_id=$(ceph -c "$conf" --connect-timeout 60 osd new "$osd_uuid")
  mkdir -p "$state/osd/osd.$osd_id"
  ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" 2>/dev/null
  setsid ceph-osd -c "$conf" -f -i "$osd_id" >"$state/log/osd.out" 2>&1 </dev/null &
  echo $! >"$state/osd.pid"
  setsid radosgw -c "$conf" -f -n client.rgw.0 --rgw-frontends "beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1" >"$state/log/rgw.out" 2>&1 </dev/null &
  echo $! >"$state/rgw.pid"
  local endpoint=http://127.0.0.1:$rgw_port
  for _ in $(seq 1 1200); do
    curl -sf -o /dev/null "$endpoint/" && break
    kill -0 "$(cat "$state/rgw.pid")" 2>/dev/null || { echo "cluster.sh: radosgw exited; see $state/log" >&2; exit 1; }
    sleep 0.1
  done
  curl -sf -o /dev/null "$endpoint/" || { echo "cluster.sh: RGW did not answer on $endpoint; see $state/log" >&2; exit 1; }
  radosgw-admin -c "$conf" user create --uid=moldau --display-name=moldau \
    --access-key="$access_key" --secret-key="$secret_key" >/dev/null
  # The bucket: RGW accepts AWS signature version 2, which python3 (the ceph CLI's own runtime)
  # computes in a few lines; no S3 client to install.
  python3 - "$endpoint" "$bucket" "$access_key" "$secret_key" <<'PY'
import base64, hmac, hashlib, sys, urllib.request
from email.utils import formatdate
endpoint, bucket, access, secret = sys.argv[1:]
date = formatdate(usegmt=True)
signature = base64.b64encode(hmac.new(secret.encode(), f"PUT\n\n\n{date}\n/{bucket}".encode(), hashlib.sha1).digest()).decode()
request = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT", headers={"Date": date, "Authorization": f"AWS {access}:{signature}"})
urllib.request.urlopen(request).read()
PY
  awk -v a="$started" -v b="$(date +%s.%N)" -v s="$state" 'BEGIN { printf "cluster.sh: RGW up in %.1f s (state in %s)\n", b - a, s }'
  echo "s3: $endpoint"
  cat >"$state/cluster.properties" <<PROPS
moldau.cluster.s3.endpoint=$endpoint
moldau.cluster.s3.bucket=$bucket
moldau.cluster.s3.region=us-east-1
moldau.cluster.s3.access.key=$access_key
moldau.cluster.s3.secret.key=$secret_key
moldau.cluster.s3.path.style=true
PROPS
  start_postgres
  echo "moldau.cluster.postgres.connection=Host=127.0.0.1;Port=$pg_port;Database=moldau;Username=moldau" >>"$state/cluster.properties"
  cat "$state/cluster.properties"
  start_brokers "$brokers"
  trap - ERR
}

# PostgreSQL from Debian's postgresql: initdb into $state/pg, pg_ctl start on a free port, trust
# authentication on 127.0.0.1 only; as the postgres user when run as root (postgres refuses root).
start_postgres() {
  local bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [[ -x $bin/initdb ]] || { echo "cluster.sh: PostgreSQL not found; apt-get install postgresql" >&2; exit 1; }
  pg_port=$(free_port)
  mkdir -p "$state/pg"
  local as=()
  if [[ $(id -u) == 0 ]]; then
    chown postgres "$state/pg"
    as=(setpriv --reuid=postgres --regid=postgres --init-groups --)
  fi
  "${as[@]}" "$bin/initdb" -D "$state/pg/data" -A trust -U moldau -E UTF8 --locale=C --no-sync >"$state/log/initdb.out" 2>&1
  "${as[@]}" "$bin/pg_ctl" -D "$state/pg/data" -l "$state/pg/postgres.log" -w -t 60 \
    -o "-p $pg_port -k $state/pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
  "$bin/psql" -h 127.0.0.1 -p "$pg_port" -U moldau -d postgres -qc 'CREATE DATABASE moldau' >/dev/null
  echo "postgres: 127.0.0.1:$pg_port (log $state/pg/postgres.log)"
}

# N brokers of the Moldau.Server build, node.id 1..N, each with its own log dir (internal topics
# only) and port; their output goes to $state/log/broker-<id>.out.
start_brokers() {
  local n=$1 root exe bootstrap=() ports=()
  [[ $n -gt 0 ]] || return 0
  root=$(cd "$(dirname "$0")/.." && pwd)
  exe=$root/src/Moldau.Server/bin/Release/net10.0/moldau
  if [[ ! -x $exe ]]; then
    echo "cluster.sh: building Moldau.Server" >&2
    dotnet build -c Release "$root/src/Moldau.Server" >"$state/log/build.out" 2>&1 || { echo "cluster.sh: build failed; see $state/log/build.out" >&2; exit 1; }
  fi
  for id in $(seq 1 "$n"); do
    local port dir
    port=$(free_port)
    dir=$state/broker-$id
    mkdir -p "$dir"
    { cat "$state/cluster.properties"; echo "node.id=$id"; echo "listeners=PLAINTEXT://127.0.0.1:$port"; echo "log.dirs=$dir/data"; } >"$dir/server.properties"
    setsid "$exe" "$dir/server.properties" >"$state/log/broker-$id.out" 2>&1 </dev/null &
    echo $! >"$state/broker-$id.pid"
    ports+=("$port")
    bootstrap+=("127.0.0.1:$port")
  done
  for id in $(seq 1 "$n"); do
    local ok=
    for _ in $(seq 1 600); do
      if grep -q "Moldau started" "$state/log/broker-$id.out" 2>/dev/null; then ok=1; break; fi
      kill -0 "$(cat "$state/broker-$id.pid")" 2>/dev/null || break
      sleep 0.1
    done
    [[ -n $ok ]] || { echo "cluster.sh: broker $id did not start; see $state/log/broker-$id.out" >&2; exit 1; }
  done
  local IFS=,
  echo "bootstrap: ${bootstrap[*]}"
}

brokers=3
pg_port=
case ${1:-} in
  up) brokers=${2:-3}; [[ $brokers =~ ^[0-9]+$ ]] || { echo "usage: $0 up [N]" >&2; exit 2; }; up ;;
  down) down ;;
  *) echo "usage: $0 up [N] | down" >&2; exit 2 ;;
esac
