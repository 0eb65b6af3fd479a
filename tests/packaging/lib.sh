# shellcheck shell=bash
# Shared helpers of the packaging tests (sourced). Tests exit 0 (pass), 1 (fail) or 77
# (skipped: not root, or PACKAGING_SKIP_MISSING=1 and a tool is missing).

PKG_TEST_NAME=$(basename "$0" .sh)
PKG_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PKG_T0=$SECONDS

step() { printf '\n== [%s +%ss] %s\n' "$PKG_TEST_NAME" "$((SECONDS - PKG_T0))" "$*"; }
ok() { printf '   ok: %s\n' "$*"; }
note() { printf '   note: %s\n' "$*"; }
fail() {
  printf '\nFAIL [%s]: %s\n' "$PKG_TEST_NAME" "$*" >&2
  exit 1
}
skip() {
  printf '\nSKIPPED [%s]: %s\n' "$PKG_TEST_NAME" "$*"
  exit 77
}

require_root() {
  [[ $(id -u) -eq 0 ]] || skip "needs root (it installs packages)"
}

# ensure_packages PKG...: installs the Debian packages that are missing (apt-get only when
# one is), as scripts/install-deps.sh does. With PACKAGING_SKIP_MISSING=1 a missing
# package skips the test instead.
ensure_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  [[ "${PACKAGING_SKIP_MISSING:-0}" == 1 ]] && skip "missing packages: ${missing[*]}"
  note "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  timeout 600 apt-get update -q >/dev/null || fail "apt-get update failed"
  timeout 900 apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >/dev/null ||
    fail "could not install ${missing[*]}"
}

# run_logged LOG TIMEOUT CMD...: runs CMD with its output in LOG, bounded by TIMEOUT
# seconds; on failure shows the end of LOG.
run_logged() {
  local log=$1 limit=$2
  shift 2
  if ! timeout "$limit" "$@" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    fail "'$*' failed or took longer than ${limit}s (log: $log)"
  fi
}

# wait_until SECONDS DESCRIPTION CMD...: polls CMD every 0.2 s until it succeeds.
wait_until() {
  local limit=$1 deadline  # $2 names what is awaited, for the reader
  shift 2
  deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

free_port() {
  "${PYTHON:-python3}" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# project_version: VERSION of project() in the top-level CMakeLists.txt
project_version() {
  sed -n 's/^project(regfs VERSION \([0-9.]*\).*/\1/p' "$PKG_SRC/CMakeLists.txt"
}

# wait_pid PID SECONDS: waits for the child PID, killing it (-9) after SECONDS. Sets
# WAIT_RC to its exit status; returns 1 when it had to be killed.
wait_pid() {
  local pid=$1 deadline=$((SECONDS + $2)) state rc=0
  while true; do
    # Running until it is a zombie (exited, not yet waited for) or gone.
    state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
    [[ -z "$state" || "$state" == Z ]] && break
    if ((SECONDS >= deadline)); then
      kill -9 "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      # shellcheck disable=SC2034 # read by the caller
      WAIT_RC=137
      return 1
    fi
    sleep 0.1
  done
  wait "$pid" || rc=$?
  # shellcheck disable=SC2034 # read by the caller
  WAIT_RC=$rc
  return 0
}
