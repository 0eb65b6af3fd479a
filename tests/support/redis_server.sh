#!/usr/bin/env bash
# Starts (and stops, kills, restarts) a throwaway Redis for the tests of regfs's shared
# cache: Debian's redis-server on 127.0.0.1, a free port, no persistence, everything in DIR.
#
#   tests/support/redis_server.sh start DIR     # prints ADDR, writes DIR/env
#   tests/support/redis_server.sh stop DIR      # SIGTERM by PID (SIGKILL after 10 s), removes DIR
#   tests/support/redis_server.sh kill DIR      # kill -9 by PID, waits for it to be gone; keeps DIR
#   tests/support/redis_server.sh restart DIR   # kill -9 (if still running), start on the SAME port
#
# start creates DIR (it must not exist or be empty) and keeps everything in it: the log
# (redis.log), redis-server's pid file (redis.pid) and own output (redis.out), its working
# directory. RDB snapshots and the AOF are off (--save '' --appendonly no): a restart starts
# empty, as a cache in production may. DIR/env is shell-sourceable:
#   REDIS_ADDR=127.0.0.1:PORT  REDIS_PORT=PORT  REDIS_PID=PID  REDIS_STARTED=TICKS
# (REDIS_STARTED, the process's start time, tells our redis-server from a reused PID).
# kill and restart are for "the cache died": kill leaves DIR/env in place (REDIS_PID then
# names a dead process), restart binds the port DIR/env names again and rewrites DIR/env.
#
# Needs the Debian package redis-server (redis-server, redis-cli) and python3.
# Exit status: 0 done, 1 failed (the log stays in DIR), 2 usage or missing tools.
# Environment: REDIS_START_TIMEOUT (seconds until PONG, default 20).
set -euo pipefail

readonly MARKER=.redis_server
export PATH="$PATH:/usr/sbin:/sbin"
if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi

say() { printf 'redis_server.sh: %s\n' "$*" >&2; }

usage() {
  say "usage: $0 start DIR | stop DIR | kill DIR | restart DIR"
  exit 2
}

# start_time PID: when PID started (field 22 of /proc/PID/stat, clock ticks since boot).
start_time() { awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$1/stat" 2>/dev/null; }

# is_ours PID DIR: PID is a live (not zombie) redis-server, the process DIR/env names (same
# start time: a reused PID of another process does not match).
is_ours() {
  local pid=$1 d=$2 st comm
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  st=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ -n "$st" && "$st" != Z ]] || return 1
  comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
  [[ "$comm" == redis-server* ]] || return 1
  [[ "$(start_time "$pid")" == "$(env_value "$d" REDIS_STARTED)" ]]
}

# wait_gone PID DIR SECONDS: true once PID is no longer our redis-server.
wait_gone() {
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    is_ours "$1" "$2" || return 0
    sleep 0.1
  done
  return 1
}

env_value() { sed -n "s/^$2=//p" "$1/env" 2>/dev/null; }

# free_port: a free TCP port on 127.0.0.1, below the kernel's ephemeral range when there is
# room: no client socket is ever given it as its local port, so restart can bind it again.
free_port() {
  "$PYTHON" - <<'EOF'
import random, socket
try:
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    lo = 0
cands = list(range(max(1024, lo - 12000), lo)) if lo > 3000 else []
random.shuffle(cands)
for p in cands[:500] + [0]:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", p))
        except OSError:
            continue
        print(s.getsockname()[1])
        break
EOF
}

# alive PID: PID exists and is not a zombie.
alive() {
  local st
  st=$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n "$st" && "$st" != Z ]]
}

# launch DIR PORT: redis-server on 127.0.0.1:PORT until it answers PING (then writes
# DIR/env and prints the address); returns 1 if it exits first (the port was taken, say),
# exits 1 if it does not answer in time.
launch() {
  local d=$1 port=$2 pid started deadline info
  # --daemonize no and a background job: $! is redis-server itself, not a forked daemon.
  # Its proc title (redis-server 127.0.0.1:PORT) shows the address in ps.
  redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes \
    --save '' --appendonly no --daemonize no \
    --pidfile "$d/redis.pid" --dir "$d" --logfile "$d/redis.log" --loglevel notice \
    </dev/null >>"$d/redis.out" 2>&1 &
  pid=$!
  started=$(start_time "$pid")
  deadline=$((SECONDS + ${REDIS_START_TIMEOUT:-20}))
  while :; do
    # PONG, and from our process (not another one on that port).
    if [[ "$(timeout 2 redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" == PONG ]]; then
      info=$(timeout 2 redis-cli -h 127.0.0.1 -p "$port" info server 2>/dev/null | tr -d '\r') || true
      if [[ $'\n'"$info"$'\n' == *$'\n'"process_id:$pid"$'\n'* ]]; then break; fi
    fi
    if ! alive "$pid"; then
      wait "$pid" 2>/dev/null || true
      return 1
    fi
    if ((SECONDS >= deadline)); then
      say "redis-server (pid $pid) did not answer PING on 127.0.0.1:$port within ${REDIS_START_TIMEOUT:-20} s"
      tail -n 20 "$d/redis.log" "$d/redis.out" >&2 2>/dev/null || true
      kill -KILL "$pid" 2>/dev/null || true
      exit 1
    fi
    sleep 0.1
  done
  cat >"$d/env.tmp" <<EOF
REDIS_ADDR=127.0.0.1:$port
REDIS_PORT=$port
REDIS_PID=$pid
REDIS_STARTED=$started
EOF
  mv "$d/env.tmp" "$d/env"
  echo "127.0.0.1:$port"
}

need_tools() {
  local tool missing=()
  for tool in redis-server redis-cli "$PYTHON" timeout; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    say "missing: ${missing[*]} (on Debian: apt-get install --no-install-recommends redis-server python3)"
    exit 2
  fi
}

# our_dir DIR: DIR, absolute, made by start (else exit 2).
our_dir() {
  local d
  d=$(realpath -m -- "$1")
  if [[ ! -e "$d/$MARKER" ]]; then
    say "$d was not made by '$0 start'; not touching it"
    exit 2
  fi
  printf '%s\n' "$d"
}

start() {
  need_tools
  local d attempt port
  d=$(realpath -m -- "$1")
  if [[ -e "$d" && -n "$(ls -A -- "$d" 2>/dev/null)" ]]; then
    say "$d exists and is not empty"
    exit 2
  fi
  mkdir -p -- "$d"
  : >"$d/$MARKER"
  # A free port can be taken between the probe and redis-server's bind: try a few.
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    launch "$d" "$port" && return 0
    say "redis-server exited at start on port $port (attempt $attempt); see $d/redis.log"
  done
  tail -n 20 "$d/redis.log" "$d/redis.out" >&2 2>/dev/null || true
  exit 1
}

# kill9 DIR: SIGKILL the redis-server DIR/env names, wait until it is gone.
kill9() {
  local d=$1 pid
  pid=$(env_value "$d" REDIS_PID)
  is_ours "$pid" "$d" || return 0
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" "$d" 10 || {
    say "pid $pid still alive 10 s after SIGKILL"
    exit 1
  }
}

restart() {
  need_tools
  local d port attempt
  d=$(our_dir "$1")
  port=$(env_value "$d" REDIS_PORT)
  [[ "$port" =~ ^[0-9]+$ ]] || {
    say "no REDIS_PORT in $d/env"
    exit 1
  }
  kill9 "$d"
  # The same port: clients keep their configured address. Redis binds with SO_REUSEADDR;
  # still, give the kernel a few tries.
  for attempt in 1 2 3 4 5 6 7 8 9 10; do
    launch "$d" "$port" && return 0
    say "redis-server could not start on port $port again (attempt $attempt)"
    sleep 0.5
  done
  tail -n 20 "$d/redis.log" >&2 2>/dev/null || true
  exit 1
}

stop() {
  local d pid
  d=$(realpath -m -- "$1")
  [[ -e "$d" ]] || return 0
  d=$(our_dir "$d")
  pid=$(env_value "$d" REDIS_PID)
  if is_ours "$pid" "$d"; then
    kill -TERM "$pid" 2>/dev/null || true
    if ! wait_gone "$pid" "$d" 10; then
      say "pid $pid ignored SIGTERM for 10 s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_gone "$pid" "$d" 5 || {
        say "pid $pid still running; leaving $d in place"
        exit 1
      }
    fi
  fi
  rm -rf -- "$d"
}

(($# == 2)) || usage
case "$1" in
  start) start "$2" ;;
  stop) stop "$2" ;;
  kill)
    d=$(our_dir "$2")
    kill9 "$d"
    ;;
  restart) restart "$2" ;;
  *) usage ;;
esac
