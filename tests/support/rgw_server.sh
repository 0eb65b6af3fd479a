#!/usr/bin/env bash
# Boots (and stops) a throwaway single-node Ceph RADOS Gateway: a real S3 implementation for
# the object-store driver's tests. Toy S3 servers accept bad signatures and lack ListParts,
# ListMultipartUploads or conditional PUTs; RGW checks SigV4 and behaves like AWS.
#
#   tests/support/rgw_server.sh start DIR   # prints the endpoint, writes DIR/env
#   tests/support/rgw_server.sh stop DIR    # stops the daemons by PID, removes DIR
#
# start creates DIR (it must not exist or be empty) and keeps everything in it: ceph.conf,
# keyrings, mon data, OSD data (memstore: objects live in RAM), logs, admin sockets, pid
# files. One ceph-mon (msgr2 only), one ceph-osd and one radosgw, all on 127.0.0.1 with
# free ports, Ceph's internal auth off (S3 signature checks stay on), no systemd, no mgr.
# Then it creates one S3 user and nothing else (no bucket). DIR/env is shell-sourceable:
#   RGW_ENDPOINT=http://127.0.0.1:PORT  RGW_ACCESS_KEY=...  RGW_SECRET_KEY=...
#   RGW_REGION=us-east-1  RGW_PIDS="MON OSD RGW"  RGW_CEPH_CONF=DIR/ceph.conf
# Virtual-hosted style works with "Host: BUCKET.localhost:PORT" (rgw dns name = localhost).
# RGW takes the region from the request's credential scope, so any region signs correctly;
# us-east-1 is the conventional one.
#
# Needs root and the Debian packages ceph-mon, ceph-osd, radosgw (plus python3, curl).
# Exit status: 0 ready, 1 failed to start (logs stay in DIR), 2 usage or missing tools.
# Environment: RGW_START_TIMEOUT (seconds, default 90), RGW_SECRET_KEY (default random).
# Keep DIR short: Unix socket paths under DIR/run must fit in 107 bytes.
set -euo pipefail

readonly ACCESS_KEY=regfs-test-access
readonly USER_ID=regfs-test
readonly MARKER=.rgw_server
export PATH="$PATH:/usr/sbin:/sbin"
if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi

say() { printf 'rgw_server.sh: %s\n' "$*" >&2; }

usage() {
  say "usage: $0 start DIR | stop DIR"
  exit 2
}

# cmdline_has PID ARG: the live process PID has ARG as one of its arguments
# (a zombie or a reused PID of another program does not match).
cmdline_has() {
  local args
  args=" $(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
  [[ "$args" == *" $2 "* ]]
}

# stop_pid PID CONF: SIGTERM, up to 15 s, then SIGKILL; only if PID is one of our daemons.
stop_pid() {
  local pid=$1 conf=$2 i
  [[ "$pid" =~ ^[0-9]+$ ]] || return 0
  cmdline_has "$pid" "$conf" || return 0
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 150; i++)); do
    cmdline_has "$pid" "$conf" || return 0
    sleep 0.1
  done
  say "pid $pid ignored SIGTERM for 15 s, sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    cmdline_has "$pid" "$conf" || return 0
    sleep 0.1
  done
  say "pid $pid still alive after SIGKILL"
}

# ---------------------------------------------------------------------------- start

dir=""
conf=""
deadline=0
started_pids=()
ready=0

# Logs shown when a step fails, most relevant first.
show_logs() {
  local log
  for log in "$@"; do
    [[ -s "$log" ]] || continue
    printf '\n----- last lines of %s -----\n' "$log" >&2
    tail -n 25 "$log" >&2
  done
}

# fail MESSAGE LOG...: report, show the logs, stop what was started (the EXIT trap), exit 1.
fail() {
  local msg=$1
  shift
  say "start failed: $msg"
  show_logs "$@"
  say "files kept in $dir (remove them with: $0 stop $dir)"
  exit 1
}

on_start_exit() {
  local i
  ((ready)) && return 0
  for ((i = ${#started_pids[@]} - 1; i >= 0; i--)); do
    stop_pid "${started_pids[i]}" "$conf"
  done
}

remaining() {
  local left=$((deadline - SECONDS))
  ((left > 0)) || left=1
  echo "$left"
}

# ceph_cli ARGS...: the ceph CLI against this cluster, bounded by the start deadline.
ceph_cli() {
  timeout "$(remaining)" ceph --conf "$conf" --connect-timeout "$(remaining)" "$@"
}

# wait_pidfile NAME LOG: echo the PID the daemon NAME wrote, once it is alive.
wait_pidfile() {
  local file="$dir/run/$1.pid" pid=""
  while ((SECONDS < deadline)); do
    if [[ -s "$file" ]]; then
      pid=$(<"$file")
      if [[ "$pid" =~ ^[0-9]+$ ]] && cmdline_has "$pid" "$conf"; then
        echo "$pid"
        return 0
      fi
    fi
    sleep 0.1
  done
  fail "$1 did not write a live pid to $file" "$2"
}

start() {
  local tool missing=()
  for tool in radosgw radosgw-admin ceph-mon ceph-osd ceph monmaptool ceph-authtool curl "$PYTHON" timeout; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    say "missing: ${missing[*]} (on Debian: apt-get install --no-install-recommends ceph-mon ceph-osd radosgw curl python3)"
    exit 2
  fi
  if ((EUID != 0)); then
    say "needs root (the Ceph daemons are started without dropping privileges)"
    exit 2
  fi

  deadline=$((SECONDS + ${RGW_START_TIMEOUT:-90}))
  dir=$(realpath -m -- "$1")
  if [[ -e "$dir" && -n "$(ls -A -- "$dir" 2>/dev/null)" ]]; then
    say "$dir exists and is not empty"
    exit 2
  fi
  if ((${#dir} > 60)); then
    say "$dir is too long for the admin socket paths under it (keep it under 60 bytes)"
    exit 2
  fi
  mkdir -p -- "$dir"
  : >"$dir/$MARKER"
  mkdir -p "$dir"/{run,log,keyring,mon,osd,rgw,crash,tmp}
  conf="$dir/ceph.conf"
  trap on_start_exit EXIT

  # Two free ports (mon, rgw), plus the fsid, OSD uuid and secret key, in one python call.
  local mon_port rgw_port fsid osd_uuid secret
  read -r mon_port rgw_port fsid osd_uuid secret < <("$PYTHON" - <<'EOF'
import secrets, socket, uuid
socks = []
for _ in range(2):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(*(s.getsockname()[1] for s in socks), uuid.uuid4(), uuid.uuid4(), secrets.token_hex(20))
EOF
  )
  secret=${RGW_SECRET_KEY:-$secret}

  # $name and $cluster are Ceph's own metavariables, expanded by each daemon.
  # shellcheck disable=SC2016
  local name_var='$name'
  cat >"$conf" <<EOF
# Written by tests/support/rgw_server.sh: a throwaway single-node cluster for tests.
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
run dir = $dir/run
crash dir = $dir/crash
tmp dir = $dir/tmp
log file = $dir/log/$name_var.log
log to stderr = false
err to stderr = true
log to syslog = false
mon cluster log file = $dir/log/cluster.log
mon cluster log to syslog = false
keyring = $dir/keyring/$name_var.keyring
mon data = $dir/mon/$name_var
osd data = $dir/osd/$name_var
rgw data = $dir/rgw/$name_var
osd objectstore = memstore
memstore device bytes = 1073741824
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
mon data avail crit = 0
mon data avail warn = 0

[mon]
pid file = $dir/run/$name_var.pid
admin socket = $dir/run/$name_var.asok

[osd]
pid file = $dir/run/$name_var.pid
admin socket = $dir/run/$name_var.asok

[client]
# With Ceph's internal auth off, the default "secure" mode makes clients (radosgw) loop on
# "get_initial_auth_request returned -13".
ms mon client mode = crc

[client.rgw.a]
pid file = $dir/run/$name_var.pid
admin socket = $dir/run/$name_var.asok
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw dns name = localhost
EOF

  local mon_log="$dir/log/mon.a.log" osd_log="$dir/log/osd.0.log" rgw_log="$dir/log/client.rgw.a.log"
  local out="$dir/log/commands.out"

  # 1. monitor
  ceph-authtool --create-keyring "$dir/keyring/mon.a.keyring" --gen-key -n mon. >>"$out" 2>&1 ||
    fail "ceph-authtool" "$out"
  monmaptool --conf "$conf" --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" \
    "$dir/monmap" >>"$out" 2>&1 || fail "monmaptool" "$out"
  ceph-mon --conf "$conf" --mkfs -i a --monmap "$dir/monmap" \
    --keyring "$dir/keyring/mon.a.keyring" >>"$out" 2>&1 || fail "ceph-mon --mkfs" "$out" "$mon_log"
  ceph-mon --conf "$conf" -i a </dev/null >>"$out" 2>&1 || fail "ceph-mon" "$out" "$mon_log"
  local mon_pid
  mon_pid=$(wait_pidfile mon.a "$mon_log")
  started_pids+=("$mon_pid")

  # 2. OSD (memstore)
  local osd_id
  osd_id=$(ceph_cli osd new "$osd_uuid" 2>>"$out") ||
    fail "ceph osd new (is the monitor answering on port $mon_port?)" "$out" "$mon_log"
  [[ "$osd_id" == 0 ]] || fail "ceph osd new gave id '$osd_id', expected 0" "$out"
  mkdir -p "$dir/osd/osd.0"
  ceph-osd --conf "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$out" 2>&1 ||
    fail "ceph-osd --mkfs" "$out" "$osd_log"
  ceph-osd --conf "$conf" -i 0 </dev/null >>"$out" 2>&1 || fail "ceph-osd" "$out" "$osd_log"
  local osd_pid
  osd_pid=$(wait_pidfile osd.0 "$osd_log")
  started_pids+=("$osd_pid")

  # 3. radosgw (it creates its pools; requests block until the OSD is up)
  radosgw --conf "$conf" -n client.rgw.a </dev/null >>"$out" 2>&1 || fail "radosgw" "$out" "$rgw_log"
  local rgw_pid
  rgw_pid=$(wait_pidfile client.rgw.a "$rgw_log")
  started_pids+=("$rgw_pid")

  local endpoint="http://127.0.0.1:$rgw_port" code=000
  while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$endpoint/") || true
    [[ "$code" == 200 ]] && break
    cmdline_has "$rgw_pid" "$conf" || fail "radosgw (pid $rgw_pid) exited" "$rgw_log" "$osd_log" "$out"
    cmdline_has "$osd_pid" "$conf" || fail "ceph-osd (pid $osd_pid) exited" "$osd_log" "$rgw_log"
    cmdline_has "$mon_pid" "$conf" || fail "ceph-mon (pid $mon_pid) exited" "$mon_log" "$rgw_log"
    ((SECONDS < deadline)) ||
      fail "radosgw did not answer $endpoint/ within ${RGW_START_TIMEOUT:-90} s (last HTTP status $code)" \
        "$rgw_log" "$osd_log" "$mon_log"
    sleep 0.25
  done

  # 4. the S3 user
  timeout "$(remaining)" radosgw-admin --conf "$conf" user create --uid="$USER_ID" \
    --display-name="regfs tests" --access-key="$ACCESS_KEY" --secret-key="$secret" \
    >>"$dir/log/user-create.json" 2>>"$out" || fail "radosgw-admin user create" "$out" "$rgw_log"

  local pids="$mon_pid $osd_pid $rgw_pid"
  cat >"$dir/env.tmp" <<EOF
RGW_ENDPOINT=$endpoint
RGW_ACCESS_KEY=$ACCESS_KEY
RGW_SECRET_KEY=$secret
RGW_REGION=us-east-1
RGW_PIDS="$pids"
RGW_CEPH_CONF=$conf
EOF
  mv "$dir/env.tmp" "$dir/env"
  ready=1
  echo "$endpoint"
}

# ----------------------------------------------------------------------------- stop

stop() {
  local d pids="" pid file
  d=$(realpath -m -- "$1")
  if [[ ! -e "$d" ]]; then
    return 0
  fi
  if [[ ! -e "$d/$MARKER" ]]; then
    say "$d was not made by '$0 start'; not touching it"
    exit 2
  fi
  local c="$d/ceph.conf"
  if [[ -f "$d/env" ]]; then
    pids=$(sed -n 's/^RGW_PIDS="\(.*\)"$/\1/p' "$d/env")
  fi
  if [[ -z "$pids" ]]; then
    # A start that failed half-way: take whatever pid files the daemons wrote, mon last.
    for file in client.rgw.a osd.0 mon.a; do
      [[ -s "$d/run/$file.pid" ]] && pids="$(<"$d/run/$file.pid") $pids"
    done
  fi
  local -a list
  read -r -a list <<<"$pids"
  # RGW_PIDS is "mon osd rgw": stop in reverse order (rgw, osd, mon).
  local i
  for ((i = ${#list[@]} - 1; i >= 0; i--)); do
    pid=${list[i]}
    stop_pid "$pid" "$c"
  done
  for pid in "${list[@]}"; do
    if cmdline_has "$pid" "$c"; then
      say "pid $pid still running; leaving $d in place"
      exit 1
    fi
  done
  rm -rf -- "$d"
}

(($# == 2)) || usage
case "$1" in
  start) start "$2" ;;
  stop) stop "$2" ;;
  *) usage ;;
esac
