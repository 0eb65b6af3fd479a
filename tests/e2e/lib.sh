# shellcheck shell=bash
# shellcheck disable=SC2034  # REGISTRY_*, DOCKERD_* are for the sourcing scripts
# Shared helpers for the regfs end-to-end tests.  Source it from a test script:
#
#   set -euo pipefail
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Environment:
#   REGFS_HTTPD        registry binary under test (started as "$REGFS_HTTPD serve CONFIG")
#   E2E_KEEP_TMP=1     keep the per-test temp dir (its path is printed at exit)
#   E2E_SKIP_MISSING=1 exit 77 ("skipped") instead of failing when a required tool is missing
#
# Every process started through this file is stopped by PID when the script
# exits, whether it succeeds or fails.

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_NAME=$(basename "${0%.sh}")
export PATH="$PATH:/usr/sbin:/sbin"
# The system interpreter starts much faster than a pyenv shim.
if [[ -x /usr/bin/python3 ]]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi

# ---------------------------------------------------------------- messages

log() { printf '[%s %s] %s\n' "$(date +%H:%M:%S)" "$E2E_NAME" "$*" >&2; }
step() { printf '\n[%s %s] === %s\n' "$(date +%H:%M:%S)" "$E2E_NAME" "$*" >&2; }
ok() { printf '[%s %s]   ok: %s\n' "$(date +%H:%M:%S)" "$E2E_NAME" "$*" >&2; }
fail() {
    printf '[%s %s] FAIL: %s\n' "$(date +%H:%M:%S)" "$E2E_NAME" "$*" >&2
    exit 1
}

# expect_eq WHAT EXPECTED ACTUAL
expect_eq() {
    if [[ "$2" != "$3" ]]; then
        fail "$1: expected '$2', got '$3'"
    fi
    ok "$1 = $2"
}

require_cmds() {
    local c missing=()
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || missing+=("$c")
    done
    if ((${#missing[@]})); then
        if [[ "${E2E_SKIP_MISSING:-0}" == 1 ]]; then
            printf '[%s] SKIP: missing tools: %s\n' "$E2E_NAME" "${missing[*]}" >&2
            exit 77
        fi
        fail "missing required tools: ${missing[*]}"
    fi
}

require_root() {
    if [[ $(id -u) != 0 ]]; then
        if [[ "${E2E_SKIP_MISSING:-0}" == 1 ]]; then
            printf '[%s] SKIP: needs root\n' "$E2E_NAME" >&2
            exit 77
        fi
        fail "this test must run as root (it starts a private dockerd)"
    fi
}

# registry_bin: the binary under test, validated.
registry_bin() {
    local b="${REGFS_HTTPD:-}"
    [[ -n "$b" ]] || fail "REGFS_HTTPD is not set (path of the registry binary under test)"
    [[ -x "$b" ]] || fail "REGFS_HTTPD=$b is not an executable file"
    printf '%s\n' "$b"
}

# ---------------------------------------------------------------- cleanup

# Cleanup actions run in reverse order of registration on EXIT.
_E2E_CLEANUP=()
_E2E_LOGS=()   # logs printed (tail) when the script fails
on_exit() { _E2E_CLEANUP+=("$*"); }

_e2e_exit() {
    local rc=$?
    set +e
    trap - EXIT INT TERM ERR
    if ((rc != 0 && rc != 77)); then
        local f
        for f in "${_E2E_LOGS[@]}"; do
            [[ -s "$f" ]] || continue
            printf '\n----- last 40 lines of %s -----\n' "$f" >&2
            tail -n 40 "$f" >&2
        done
    fi
    local i
    for ((i = ${#_E2E_CLEANUP[@]} - 1; i >= 0; i--)); do
        eval "${_E2E_CLEANUP[i]}"
    done
    if ((rc == 0)); then
        log "PASS"
    elif ((rc != 77)); then
        log "FAILED (exit $rc)"
    fi
    exit "$rc"
}
trap _e2e_exit EXIT
# With set -e, say which command failed (only in the main shell, not in $(...)).
set -E
_e2e_err() {
    local rc=$? line=$1 cmd=$2
    ((BASH_SUBSHELL == 0)) || return 0
    printf '[%s %s] FAIL: command exited with status %d at %s line %s: %s\n' \
        "$(date +%H:%M:%S)" "$E2E_NAME" "$rc" "${BASH_SOURCE[1]:-?}" "$line" "$cmd" >&2
}
trap '_e2e_err "$LINENO" "$BASH_COMMAND"' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

# Per-test temp dir.
TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/regfs-e2e-${E2E_NAME}.XXXXXX")
_e2e_rm_tmp() {
    if [[ "${E2E_KEEP_TMP:-0}" == 1 ]]; then
        log "keeping temp dir $TEST_TMP"
        return
    fi
    # Nothing should be mounted below it, but never recurse into a live mount.
    local m
    awk -v p="$TEST_TMP" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    rm -rf "$TEST_TMP"
}
on_exit _e2e_rm_tmp

# ---------------------------------------------------------------- processes

# pid_alive PID: true while the process exists and is not a zombie.
pid_alive() {
    local st
    kill -0 "$1" 2>/dev/null || return 1
    st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ "$st" != Z ]]
}

# stop_pid PID [GRACE_SECONDS]: SIGTERM, wait up to GRACE (default 10) s, then SIGKILL.
stop_pid() {
    local pid=$1 grace=${2:-10} deadline
    [[ -n "$pid" ]] || return 0
    if pid_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        deadline=$((SECONDS + grace))
        while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
        if pid_alive "$pid"; then
            log "pid $pid did not exit ${grace}s after SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            deadline=$((SECONDS + 5))
            while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

# wait_until TIMEOUT_S DESCRIPTION CMD...: poll CMD every 0.1 s until it succeeds.
wait_until() {
    local timeout=$1 what=$2
    shift 2
    local deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            log "timed out after ${timeout}s waiting for $what"
            return 1
        fi
        sleep 0.1
    done
}

# free_port: an unused TCP port on 127.0.0.1.
free_port() {
    "$PYTHON" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
}

# ---------------------------------------------------------------- registry

REGISTRY_PID=
REGISTRY_PORT=
REGISTRY_URL=
REGISTRY_LOG=
_E2E_REGISTRY_PIDS=()
_E2E_REG_SEQ=0

_e2e_stop_all_registries() {
    local p
    for p in "${_E2E_REGISTRY_PIDS[@]}"; do stop_pid "$p" 10; done
}
on_exit _e2e_stop_all_registries

# http_code URL: prints the HTTP status (000 when nothing answers).
http_code() {
    curl -s -o /dev/null -w '%{http_code}' --connect-timeout 2 --max-time 5 "$1" 2>/dev/null || true
}

# start_registry BIN ROOT PORT [EXTRA_YAML]
# Writes a Distribution-style config.yml, starts "BIN serve CONFIG" in the
# background and waits (30 s at most) until GET /v2/ answers 200.
# Sets REGISTRY_PID, REGISTRY_PORT, REGISTRY_URL (http://127.0.0.1:PORT), REGISTRY_LOG.
start_registry() {
    local bin=$1 root=$2 port=$3 extra=${4:-}
    [[ -x "$bin" ]] || fail "registry binary '$bin' is not executable"
    _E2E_REG_SEQ=$((_E2E_REG_SEQ + 1))
    local cfg="$TEST_TMP/registry-$_E2E_REG_SEQ.yml"
    local logf="$TEST_TMP/registry-$_E2E_REG_SEQ.log"
    mkdir -p "$root"
    cat >"$cfg" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $root
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
    [[ -z "$extra" ]] || printf '%s\n' "$extra" >>"$cfg"

    log "starting registry #$_E2E_REG_SEQ: $bin serve $cfg (root $root, port $port)"
    "$bin" serve "$cfg" >"$logf" 2>&1 </dev/null &
    local pid=$!
    _E2E_REGISTRY_PIDS+=("$pid")
    _E2E_LOGS+=("$logf")
    REGISTRY_PID=$pid
    REGISTRY_PORT=$port
    REGISTRY_URL="http://127.0.0.1:$port"
    REGISTRY_LOG=$logf

    local deadline=$((SECONDS + 30)) code=000
    while ((SECONDS < deadline)); do
        code=$(http_code "$REGISTRY_URL/v2/")
        [[ "$code" == 200 ]] && break
        if ! pid_alive "$pid"; then
            wait "$pid" 2>/dev/null || true
            printf -- '----- %s -----\n' "$logf" >&2
            cat "$logf" >&2
            fail "registry $bin exited during startup (config $cfg)"
        fi
        sleep 0.1
    done
    if [[ "$code" != 200 ]]; then
        printf -- '----- %s -----\n' "$logf" >&2
        cat "$logf" >&2
        fail "registry $bin did not answer 200 on $REGISTRY_URL/v2/ within 30 s (last status $code)"
    fi
    log "registry #$_E2E_REG_SEQ ready: pid $pid, $REGISTRY_URL"
}

# stop_registry [PID]: SIGTERM, wait up to 10 s, then SIGKILL (default: last started).
stop_registry() {
    local pid=${1:-$REGISTRY_PID}
    [[ -n "$pid" ]] || return 0
    log "stopping registry pid $pid"
    stop_pid "$pid" 10
}

# kill9_registry [PID]: SIGKILL without warning and reap the process.
kill9_registry() {
    local pid=${1:-$REGISTRY_PID}
    log "kill -9 registry pid $pid"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# ---------------------------------------------------------------- dockerd

DOCKERD_PID=
DOCKERD_DIR=

# start_dockerd: private dockerd (vfs, no networking changes) with its own
# data-root, exec-root, pidfile and socket, and a private containerd.  Exports
# DOCKER_HOST and DOCKER_CONFIG; stopped by PID at exit.
start_dockerd() {
    require_root
    require_cmds dockerd docker containerd
    # unix socket paths are limited to 108 bytes and containerd puts
    # "<exec-root>/containerd/containerd.sock.ttrpc" under exec-root.
    local d="$TEST_TMP/dk"
    if ((${#d} > 60)); then
        d=$(mktemp -d /tmp/e2edk.XXXXXX)
        on_exit "rm -rf '$d'"
    fi
    mkdir -p "$d/root" "$d/exec" "$d/cfg"
    DOCKERD_DIR=$d
    local logf="$d/dockerd.log"
    _E2E_LOGS+=("$logf")

    local args=(
        --storage-driver=vfs
        --iptables=false --ip6tables=false --ip-masq=false
        --bridge=none --ip-forward=false
        --data-root "$d/root" --exec-root "$d/exec" --pidfile "$d/pid"
        -H "unix://$d/docker.sock"
        --log-level=warn
    )
    # dockerd starts (and supervises) its own containerd, with its socket under
    # exec-root, only when no containerd answers at the system default address
    # /run/containerd/containerd.sock; otherwise it would share the system one.
    # In that case run a private containerd and point dockerd at it.
    if [[ -e /run/containerd/containerd.sock || -L /run/containerd/containerd.sock ]]; then
        _e2e_start_private_containerd "$d"
        args+=(--containerd "$d/ctd/containerd.sock")
    fi

    log "starting private dockerd in $d"
    dockerd "${args[@]}" >"$logf" 2>&1 </dev/null &
    DOCKERD_PID=$!
    on_exit _e2e_stop_dockerd

    export DOCKER_HOST="unix://$d/docker.sock"
    export DOCKER_CONFIG="$d/cfg"
    local deadline=$((SECONDS + 60))
    until docker version >/dev/null 2>&1; do
        if ! pid_alive "$DOCKERD_PID"; then
            cat "$logf" >&2
            fail "dockerd exited during startup"
        fi
        if ((SECONDS >= deadline)); then
            cat "$logf" >&2
            fail "dockerd did not become ready within 60 s"
        fi
        sleep 0.2
    done
    log "dockerd ready: pid $DOCKERD_PID, server $(docker version -f '{{.Server.Version}}' 2>/dev/null)"
}

_e2e_start_private_containerd() {
    local d=$1
    mkdir -p "$d/ctd/root" "$d/ctd/state"
    cat >"$d/ctd/config.toml" <<EOF
version = 2
root = "$d/ctd/root"
state = "$d/ctd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$d/ctd/containerd.sock"
[ttrpc]
  address = "$d/ctd/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
    log "a containerd is already at /run/containerd/containerd.sock; starting a private one"
    containerd --config "$d/ctd/config.toml" >"$d/ctd/containerd.log" 2>&1 </dev/null &
    local pid=$!
    _E2E_LOGS+=("$d/ctd/containerd.log")
    on_exit "stop_pid $pid 10"
    wait_until 30 "containerd socket" test -S "$d/ctd/containerd.sock" || {
        cat "$d/ctd/containerd.log" >&2
        fail "private containerd did not create its socket within 30 s"
    }
}

_e2e_stop_dockerd() {
    [[ -n "$DOCKERD_PID" ]] || return 0
    log "stopping dockerd pid $DOCKERD_PID"
    stop_pid "$DOCKERD_PID" 20
    # The containerd that dockerd supervises normally exits with it.
    local cpid
    cpid=$(cat "$DOCKERD_DIR/exec/containerd/containerd.pid" 2>/dev/null) || true
    if [[ -n "$cpid" ]] && pid_alive "$cpid" &&
        grep -q "$DOCKERD_DIR" "/proc/$cpid/cmdline" 2>/dev/null; then
        kill -TERM "$cpid" 2>/dev/null
        wait_until 10 "containerd exit" eval "! pid_alive $cpid" || kill -KILL "$cpid" 2>/dev/null
    fi
    DOCKERD_PID=
}

# ---------------------------------------------------------------- registry API helpers

# Accept header covering every manifest type we push.
MANIFEST_ACCEPT='application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json'

# reg_get PATH: GET $REGISTRY_URL$PATH, body on stdout, fails on non-2xx.
reg_get() {
    curl -sSf --max-time 30 -H "Accept: $MANIFEST_ACCEPT" "$REGISTRY_URL$1"
}

# tags_of REPO: sorted tags, space separated.
tags_of() {
    reg_get "/v2/$1/tags/list" | jq -r '(.tags // []) | sort | join(" ")'
}

# catalog: sorted repositories, space separated.
catalog() {
    reg_get "/v2/_catalog?n=1000" | jq -r '(.repositories // []) | sort | join(" ")'
}

# sha256_of FILE
sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# skopeo with the options every test wants.
sk() {
    timeout 120 skopeo --insecure-policy --tmpdir "$TEST_TMP" "$@"
}

# mkoci DIR NAME ARGS...: generate an OCI layout (see mkoci.py)
mkoci() { "$PYTHON" "$E2E_DIR/mkoci.py" "$@"; }

# oci_reachable LAYOUT DIGEST: every digest reachable from DIGEST in an OCI layout
oci_reachable() {
    local dir=$1 d=$2 f c
    f="$dir/blobs/sha256/${d#sha256:}"
    [[ -f "$f" ]] || fail "blob $d missing from OCI layout $dir"
    echo "$d"
    case "$(jq -r '.mediaType // ""' "$f" 2>/dev/null)" in
    *index* | *list*) for c in $(jq -r '.manifests[].digest' "$f"); do oci_reachable "$dir" "$c"; done ;;
    *manifest*) jq -r '.config.digest, .layers[].digest' "$f" ;;
    esac
}

# oci_tag_digest LAYOUT TAG: digest of the top-level manifest tagged TAG in index.json
oci_tag_digest() {
    jq -r --arg t "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$1/index.json"
}

# oci_same_image SRC_LAYOUT DST_LAYOUT DIGEST: everything reachable from DIGEST
# in SRC is in DST with identical bytes, each hashing to its name.
oci_same_image() {
    local src=$1 dst=$2 d h n=0
    for d in $(oci_reachable "$src" "$3" | sort -u); do
        h=${d#sha256:}
        [[ -f "$dst/blobs/sha256/$h" ]] || fail "blob $d missing from $dst"
        cmp -s "$src/blobs/sha256/$h" "$dst/blobs/sha256/$h" || fail "blob $d differs between $src and $dst"
        [[ "$(sha256_of "$dst/blobs/sha256/$h")" == "$h" ]] || fail "blob $d in $dst does not hash to its name"
        n=$((n + 1))
    done
    ok "$n blobs reachable from $3 are byte-identical in $(basename "$dst")"
}

# push_oci LAYOUT TAG REF [skopeo copy options]: skopeo copy --all, digests preserved
push_oci() {
    local src=$1 tag=$2 ref=$3
    shift 3
    sk copy --all --preserve-digests --dest-tls-verify=false "$@" "oci:$src:$tag" "docker://$ref" \
        >"$TEST_TMP/skopeo.out" 2>&1 || {
        cat "$TEST_TMP/skopeo.out" >&2
        fail "skopeo copy oci:$src:$tag -> docker://$ref failed"
    }
}

# pull_oci REF LAYOUT TAG: skopeo copy --all from the registry into an OCI layout
pull_oci() {
    local ref=$1 dst=$2 tag=$3
    sk copy --all --preserve-digests --src-tls-verify=false "docker://$ref" "oci:$dst:$tag" \
        >"$TEST_TMP/skopeo.out" 2>&1 || {
        cat "$TEST_TMP/skopeo.out" >&2
        fail "skopeo copy docker://$ref -> oci:$dst:$tag failed"
    }
}

# layoutcheck ARGS...: verify the registry:2 on-disk layout (see layoutcheck.py)
layoutcheck() { "$PYTHON" "$E2E_DIR/layoutcheck.py" "$@"; }

# regcheck ARGS...: walk the registry and verify every tag/manifest/blob (see regcheck.py)
regcheck() { "$PYTHON" "$E2E_DIR/regcheck.py" "$@"; }
