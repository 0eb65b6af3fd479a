#!/usr/bin/env bash
# Starts (and stops) an haproxy load balancer in front of regfs-httpd replicas, the way the
# replicated-service test runs it; the configuration it writes (DIR/haproxy.cfg, commented)
# is also the tested example configuration for running regfs behind haproxy.
#
#   tests/support/haproxy_lb.sh start DIR HOST:PORT...  # prints the frontend address, writes DIR/env
#   tests/support/haproxy_lb.sh stop DIR                # stops haproxy by PID, removes DIR
#
# start creates DIR (it must not exist or be empty): haproxy.cfg, haproxy.log (haproxy's
# request log and server state changes: "Server replicas/r2 is DOWN."), haproxy.err. One
# frontend on 127.0.0.1 and a free port, one backend "replicas" with servers r1, r2, ...
# (one per HOST:PORT, in order), health-checked with GET /readyz. DIR/env is shell-sourceable:
#   LB_ADDR=127.0.0.1:PORT  LB_PORT=PORT  LB_PID=PID  LB_LOG=DIR/haproxy.log  LB_STARTED=TICKS
# (LB_STARTED, the process's start time, tells our haproxy from a reused PID).
# Request log lines (HAProxy's httplog format) name the server that answered, e.g.
#   127.0.0.1:40512 [..] registry replicas/r2 0/0/0/3/3 200 1234 - - ---- 1/1/0/0/0 0/0 "GET /v2/ HTTP/1.1"
# the last of the five counters is how many times the request was retried, "+" before it
# means it was redispatched to another server.
#
# Needs the Debian package haproxy (2.6) and python3, curl.
# Exit status: 0 done, 1 failed (the log stays in DIR), 2 usage or missing tools.
# Environment: LB_START_TIMEOUT (seconds, default 20); for benchmarks, LB_REQUEST_LOG=0 (no
# per-request log line) and LB_SERVER_REUSE=1 (backend connections kept alive and shared,
# "http-reuse safe", instead of one per request).
set -euo pipefail

readonly MARKER=.haproxy_lb
export PATH="$PATH:/usr/sbin:/sbin"
if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi

say() { printf 'haproxy_lb.sh: %s\n' "$*" >&2; }

usage() {
  say "usage: $0 start DIR HOST:PORT... | stop DIR"
  exit 2
}

env_value() { sed -n "s/^$2=//p" "$1/env" 2>/dev/null; }

# start_time PID: when PID started (field 22 of /proc/PID/stat, clock ticks since boot).
start_time() { awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$1/stat" 2>/dev/null; }

# alive PID: PID exists and is not a zombie.
alive() {
  local st
  st=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n "$st" && "$st" != Z ]]
}

# is_ours PID DIR: PID is a live haproxy, the process DIR/env names (same start time).
is_ours() {
  [[ "$1" =~ ^[0-9]+$ ]] || return 1
  alive "$1" || return 1
  [[ "$(cat "/proc/$1/comm" 2>/dev/null)" == haproxy* ]] || return 1
  [[ "$(start_time "$1")" == "$(env_value "$2" LB_STARTED)" ]]
}

free_port() {
  "$PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# write_config FILE PORT BACKEND...: the haproxy configuration.
write_config() {
  local file=$1 port=$2 i=0 b
  local request_log="option httplog" server_connections="option http-server-close"
  [[ ${LB_REQUEST_LOG:-1} == 1 ]] || request_log="# (LB_REQUEST_LOG=0: no request log)"
  [[ ${LB_SERVER_REUSE:-0} != 1 ]] || server_connections="http-reuse safe"
  shift 2
  cat >"$file" <<EOF
# haproxy in front of regfs-httpd replicas that share one storage and one Redis.
# Written by tests/support/haproxy_lb.sh; the end-to-end test e2e.replicas (tests/e2e/
# replicas.sh) runs through it: kill -9 of a replica, rolling restarts, a drained replica
# and Redis dying, with clients (docker, skopeo) seeing no error.

global
    # The request log and server state changes on standard output (no syslog needed).
    log stdout format raw local0 info
    # No "stats socket" and no stats page: nothing listens but the frontend below.

defaults
    mode http
    log global
    $request_log
    # One line each time a health check changes a server's state, with the reason.
    option log-health-checks

    # A new backend connection for every request: each request is load-balanced on its
    # own (round-robin per request, not per client connection), and a replica that stops
    # accepting connections (SIGTERM: it finishes what it has, takes nothing new) is
    # simply not connected to again.
    $server_connections

    # Retries are what make kill -9 and rolling restarts invisible to clients. haproxy
    # retries a request only while nothing of a response has gone to the client, and only
    # when the connection failed (refused: the replica is stopped or restarting), the
    # connection closed before the first response byte (empty-response: the replica was
    # killed, or shut down, with the request in hand), no response came within "timeout
    # server", or the response was a 503 (a replica draining, or whose health checks fail,
    # answers 503 without doing anything; haproxy drops it and asks another). Anything
    # but a connection failure is retried only if the whole request fit in haproxy's
    # buffer (tune.bufsize, 16 KiB): manifests, small blobs, upload POSTs and PUTs with no
    # body, all GETs and HEADs; a large blob PATCH cut off by a crash reaches the client
    # as an error, and docker and skopeo retry those themselves. Replaying what a replica
    # may have done before it died is harmless in the registry API: blobs and manifests
    # are addressed by their digest, a repeated PUT stores the same bytes, a repeated
    # POST opens an upload session nobody uses; the worst outcome is an error answer
    # (a repeated DELETE: 404; a repeated PATCH: 416) to a request that in fact succeeded.
    retries 3
    retry-on conn-failure empty-response response-timeout 503
    # Every retry goes to another replica (the default would try the same one again and
    # redispatch on the last retry only).
    option redispatch 1

    timeout connect 2s
    # Large blobs take a while: only a connection idle for 5 minutes is cut.
    timeout client 300s
    timeout server 300s
    # A health check whose answer takes longer than this (once connected) fails.
    timeout check 1s

frontend registry
    bind 127.0.0.1:$port
    default_backend replicas

backend replicas
    balance roundrobin
    # A replica takes traffic while GET /readyz answers 200: it answers 503 while a health
    # check of its own fails (storage, a health.file present: drained by hand) and from
    # the moment it receives SIGTERM. Checked every 500 ms; out after 2 failed checks
    # (about 1 s), back after 1 good one. The retries above cover the second or so before
    # haproxy notices.
    option httpchk
    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host regfs-health-check
    http-check expect status 200
    default-server check inter 500ms fall 2 rise 1
EOF
  for b in "$@"; do
    i=$((i + 1))
    printf '    server r%d %s\n' "$i" "$b" >>"$file"
  done
}

# launch DIR PORT BACKEND...: haproxy on 127.0.0.1:PORT until the frontend answers HTTP
# (then writes DIR/env and prints the address); returns 1 if it exits first (the port was
# taken, say), exits 1 if it does not answer in time.
launch() {
  local d=$1 port=$2 pid started deadline code
  shift 2
  write_config "$d/haproxy.cfg" "$port" "$@"
  haproxy -c -q -f "$d/haproxy.cfg" >>"$d/haproxy.err" 2>&1 || {
    say "haproxy refuses $d/haproxy.cfg:"
    tail -n 20 "$d/haproxy.err" >&2
    exit 1
  }
  # -db: in the foreground (a background job: $! is haproxy itself), one process. The log
  # goes to stdout; stderr has startup alerts and the state changes again, as warnings
  # (-q would silence those, but it closes stdout too).
  haproxy -db -f "$d/haproxy.cfg" </dev/null >>"$d/haproxy.log" 2>>"$d/haproxy.err" &
  pid=$!
  started=$(start_time "$pid")
  deadline=$((SECONDS + ${LB_START_TIMEOUT:-20}))
  while :; do
    # Any HTTP answer will do: with no replica up haproxy itself answers 503.
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port/livez") || true
    [[ "$code" == 000 ]] || break
    if ! alive "$pid"; then
      wait "$pid" 2>/dev/null || true
      return 1
    fi
    if ((SECONDS >= deadline)); then
      say "haproxy (pid $pid) did not answer on 127.0.0.1:$port within ${LB_START_TIMEOUT:-20} s"
      tail -n 20 "$d/haproxy.err" "$d/haproxy.log" >&2
      kill -KILL "$pid" 2>/dev/null || true
      exit 1
    fi
    sleep 0.1
  done
  cat >"$d/env.tmp" <<EOF
LB_ADDR=127.0.0.1:$port
LB_PORT=$port
LB_PID=$pid
LB_LOG=$d/haproxy.log
LB_STARTED=$started
EOF
  mv "$d/env.tmp" "$d/env"
  echo "127.0.0.1:$port"
}

start() {
  local tool missing=() d attempt port b
  for tool in haproxy curl "$PYTHON"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    say "missing: ${missing[*]} (on Debian: apt-get install --no-install-recommends haproxy curl python3)"
    exit 2
  fi
  d=$(realpath -m -- "$1")
  shift
  (($# > 0)) || usage
  for b in "$@"; do
    [[ "$b" =~ ^[A-Za-z0-9.:_-]+:[0-9]+$ ]] || {
      say "backend '$b' is not HOST:PORT"
      exit 2
    }
  done
  if [[ -e "$d" && -n "$(ls -A -- "$d" 2>/dev/null)" ]]; then
    say "$d exists and is not empty"
    exit 2
  fi
  mkdir -p -- "$d"
  : >"$d/$MARKER"
  # A free port can be taken between the probe and haproxy's bind: try a few.
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    launch "$d" "$port" "$@" && return 0
    say "haproxy exited at start on port $port (attempt $attempt): $(tail -n 1 "$d/haproxy.err")"
  done
  tail -n 20 "$d/haproxy.err" >&2
  exit 1
}

stop() {
  local d pid i
  d=$(realpath -m -- "$1")
  [[ -e "$d" ]] || return 0
  if [[ ! -e "$d/$MARKER" ]]; then
    say "$d was not made by '$0 start'; not touching it"
    exit 2
  fi
  pid=$(env_value "$d" LB_PID)
  if is_ours "$pid" "$d"; then
    # SIGUSR1 would wait for every connection to end (a soft stop); SIGTERM stops now.
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      is_ours "$pid" "$d" || break
      sleep 0.1
    done
    if is_ours "$pid" "$d"; then
      say "pid $pid ignored SIGTERM for 10 s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      if is_ours "$pid" "$d"; then
        say "pid $pid still running; leaving $d in place"
        exit 1
      fi
    fi
  fi
  rm -rf -- "$d"
}

(($# >= 2)) || usage
case "$1" in
  start)
    shift
    start "$@"
    ;;
  stop)
    (($# == 2)) || usage
    stop "$2"
    ;;
  *) usage ;;
esac
