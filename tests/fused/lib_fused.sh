# shellcheck shell=bash
# shellcheck disable=SC2034  # FUSED_PID, FUSED_LOG, EXIT_RC are for the sourcing scripts
# Helpers for the regfs-fused real-mount tests. Source it after ../e2e/lib.sh:
#
#   set -euo pipefail
#   source "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
#   source "$(dirname "${BASH_SOURCE[0]}")/lib_fused.sh"
#
# Environment (besides lib.sh's):
#   REGFS_FUSED        the regfs-fused binary under test
#   FUSED_FS_TIMEOUT   seconds any single command touching a mount may take (default 20)
#   FUSED_TOLERATE=1   report failed checks (see `check`) as warnings and pass anyway
#
# Every mount made through mount_fused is unmounted (fusermount3 -uz) and its daemon stopped
# by PID when the script exits, before lib.sh stops the registries and removes the temp dir.

FUSED_FS_TIMEOUT=${FUSED_FS_TIMEOUT:-20}

fused_bin() { env_bin REGFS_FUSED "the regfs-fused binary under test"; }

require_fuse() {
    require_cmds fusermount3 mountpoint timeout
    if [[ ! -c /dev/fuse ]] || [[ $(id -u) != 0 ]]; then
        if [[ "${E2E_SKIP_MISSING:-0}" == 1 ]]; then
            printf '[%s] SKIP: needs root and /dev/fuse\n' "$E2E_NAME" >&2
            exit 77
        fi
        fail "this test needs root and /dev/fuse"
    fi
}

# t CMD...: run CMD (an executable, not a function) under a timeout, so that a hung FUSE
# request fails the test (status 124) instead of stalling it.
t() { timeout -k 5 "$FUSED_FS_TIMEOUT" "$@"; }

# now_ms: wall clock in milliseconds.
now_ms() {
    local us=${EPOCHREALTIME//[.,]/}
    echo $((us / 1000))
}

# ---------------------------------------------------------------- deferred checks

# Failed `check`s are collected and reported together by finish_checks, so one run shows
# every broken behaviour instead of only the first.
_FUSED_FAILED=()

# check WHAT EXPECTED ACTUAL
check() {
    if [[ "$2" == "$3" ]]; then
        ok "$1 = $2"
    else
        printf '[%s %s] CHECK FAILED: %s: expected %q, got %q\n' "$(date +%H:%M:%S)" "$E2E_NAME" \
            "$1" "$2" "$3" >&2
        _FUSED_FAILED+=("$1: expected '$2', got '$3'")
    fi
}

# check_true WHAT CMD...: CMD must succeed.
check_true() {
    local what=$1
    shift
    if "$@"; then
        ok "$what"
    else
        printf '[%s %s] CHECK FAILED: %s (%s)\n' "$(date +%H:%M:%S)" "$E2E_NAME" "$what" "$*" >&2
        _FUSED_FAILED+=("$what")
    fi
}

finish_checks() {
    ((${#_FUSED_FAILED[@]})) || return 0
    local f
    printf '\n[%s] %d check(s) failed:\n' "$E2E_NAME" "${#_FUSED_FAILED[@]}" >&2
    for f in "${_FUSED_FAILED[@]}"; do printf '  - %s\n' "$f" >&2; done
    if [[ "${FUSED_TOLERATE:-0}" == 1 ]]; then
        log "FUSED_TOLERATE=1: reporting the failed checks as warnings"
        return 0
    fi
    fail "${#_FUSED_FAILED[@]} check(s) failed (see above)"
}

# expect_refused ERROR_TEXT CMD...: CMD must fail, in time, with ERROR_TEXT (the strerror
# text of the expected errno, e.g. "Operation not permitted") in its message.
expect_refused() {
    local want=$1 out rc=0
    shift
    out=$(timeout -k 5 "$FUSED_FS_TIMEOUT" "$@" 2>&1 </dev/null) || rc=$?
    if ((rc == 0)); then
        printf '[%s %s] CHECK FAILED: "%s" succeeded; expected "%s"\n' "$(date +%H:%M:%S)" \
            "$E2E_NAME" "$*" "$want" >&2
        _FUSED_FAILED+=("'$*' succeeded instead of failing with '$want'")
    elif ((rc == 124 || rc == 137)); then
        fail "'$*' timed out after ${FUSED_FS_TIMEOUT}s (hung FUSE request?)"
    elif [[ "$out" != *"$want"* ]]; then
        printf '[%s %s] CHECK FAILED: "%s": expected "%s", got: %s\n' "$(date +%H:%M:%S)" \
            "$E2E_NAME" "$*" "$want" "$out" >&2
        _FUSED_FAILED+=("'$*': expected '$want', got '$out'")
    else
        ok "refused: $* -> $want"
    fi
}

# ---------------------------------------------------------------- mounts

FUSED_PID=
_FUSED_PIDS=()
_FUSED_MOUNTS=()
_FUSED_SEQ=0

_fused_cleanup() {
    local m p
    for m in "${_FUSED_MOUNTS[@]}"; do
        # Several mounts may be stacked on one directory if a test went wrong.
        while awk -v p="$m" '$2 == p { f = 1 } END { exit !f }' /proc/mounts; do
            fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || break
        done
    done
    for p in "${_FUSED_PIDS[@]}"; do stop_pid "$p" 10; done
}
on_exit _fused_cleanup

# is_mounted DIR: DIR is a mount point (according to /proc/mounts; never touches DIR).
is_mounted() {
    awk -v p="$1" '$2 == p { f = 1 } END { exit !f }' /proc/mounts
}

# write_config FILE ROOT DELETE_ENABLED(true|false) [PORT]: lib.sh's write_registry_config
# on 127.0.0.1:PORT (default 0).
write_config() {
    write_registry_config "$1" "$2" "127.0.0.1:${4:-0}" "" "$3"
}

# mount_fused CONFIG MOUNTPOINT [OPTIONS...]: "regfs-fused -f OPTIONS CONFIG MOUNTPOINT" in the
# background; returns once MOUNTPOINT is mounted (10 s at most). Sets FUSED_PID, FUSED_LOG.
mount_fused() {
    local cfg=$1 mnt=$2
    shift 2
    mkdir -p "$mnt"
    _FUSED_SEQ=$((_FUSED_SEQ + 1))
    FUSED_LOG="$TEST_TMP/fused-$_FUSED_SEQ.log"
    log "mounting: $FUSED -f ${*:+$* }$cfg $mnt"
    "$FUSED" -f "$@" "$cfg" "$mnt" >"$FUSED_LOG" 2>&1 </dev/null &
    FUSED_PID=$!
    _FUSED_PIDS+=("$FUSED_PID")
    _FUSED_MOUNTS+=("$mnt")
    _E2E_LOGS+=("$FUSED_LOG")
    local deadline=$((SECONDS + 10))
    until is_mounted "$mnt" && timeout 5 mountpoint -q "$mnt"; do
        if ! pid_alive "$FUSED_PID"; then
            wait "$FUSED_PID" 2>/dev/null || true
            cat "$FUSED_LOG" >&2
            fail "regfs-fused exited before mounting $mnt"
        fi
        ((SECONDS < deadline)) || {
            cat "$FUSED_LOG" >&2
            fail "$mnt was not mounted within 10 s"
        }
        sleep 0.05
    done
    log "mounted $mnt (regfs-fused pid $FUSED_PID)"
}

# wait_exit PID SECONDS: waits for PID (a child of this shell) to end and sets EXIT_RC to its
# exit status, or to "timeout" when it is still running after SECONDS. (Not usable in $(...):
# a subshell cannot reap its parent's children.)
EXIT_RC=
wait_exit() {
    local pid=$1 deadline=$((SECONDS + $2))
    EXIT_RC=0
    while pid_alive "$pid"; do
        if ((SECONDS >= deadline)); then
            EXIT_RC=timeout
            return 0
        fi
        sleep 0.05
    done
    wait "$pid" 2>/dev/null || EXIT_RC=$?
}

# ---------------------------------------------------------------- HTTP side

# http_head_field URL FIELD [curl args...]: a response header of a HEAD request (empty if none).
http_head_field() {
    local url=$1 field=$2
    shift 2
    curl -sSI --max-time 10 -H "Accept: $MANIFEST_ACCEPT" "$@" "$url" | tr -d '\r' |
        awk -F': ' -v f="$field" 'tolower($1) == tolower(f) { print $2 }'
}

# tag_digest REPO TAG: the digest TAG points to over HTTP ("" when the tag is unknown).
tag_digest() {
    local code
    code=$(curl -s -o /dev/null -w '%{http_code}' -I --max-time 10 -H "Accept: $MANIFEST_ACCEPT" \
        "$REGISTRY_URL/v2/$1/manifests/$2")
    [[ "$code" == 200 ]] || return 0
    http_head_field "$REGISTRY_URL/v2/$1/manifests/$2" Docker-Content-Digest
}

# http_status METHOD PATH: status code of a request to the registry (HEAD, GET, DELETE).
http_status() {
    local how=(-X "$1")
    [[ "$1" != HEAD ]] || how=(-I)
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 "${how[@]}" -H "Accept: $MANIFEST_ACCEPT" \
        "$REGISTRY_URL$2"
}
