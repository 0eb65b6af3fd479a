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

# env_bin VAR WHAT: the executable file named by the environment variable VAR
# (WHAT says what it is, for the message when VAR is unset or wrong).
env_bin() {
    local b="${!1:-}"
    [[ -n "$b" ]] || fail "$1 is not set (path of $2)"
    [[ -x "$b" ]] || fail "$1=$b is not an executable file"
    printf '%s\n' "$b"
}

# registry_bin: the binary under test, validated.
registry_bin() { env_bin REGFS_HTTPD "the registry binary under test"; }

# show_files FILE...: each FILE, under a header line, on stderr (for failures).
show_files() {
    local f
    for f in "$@"; do
        printf -- '----- %s -----\n' "$f" >&2
        cat "$f" >&2 2>/dev/null || true
    done
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

# write_registry_config FILE ROOT ADDR [EXTRA_YAML [DELETE_ENABLED]]
# A Distribution-style config.yml: filesystem storage in ROOT with
# storage.delete.enabled DELETE_ENABLED (default true), http.addr ADDR, then
# EXTRA_YAML as is (lines indented by two spaces continue the http section).
write_registry_config() {
    local file=$1 root=$2 addr=$3 extra=${4:-} del=${5:-true}
    cat >"$file" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $root
  delete:
    enabled: $del
http:
  addr: $addr
EOF
    [[ -z "$extra" ]] || printf '%s\n' "$extra" >>"$file"
}

# serve_registry BIN CONFIG LOG NAME READY_CMD...
# Starts "BIN serve CONFIG" in the background (output in LOG, stopped at exit)
# and waits (30 s at most) until READY_CMD succeeds; if the registry exits
# first or the time runs out, shows CONFIG and LOG and fails.  READY_CMD may
# set READY_LAST to what it last saw, for that message.  Sets REGISTRY_PID and
# REGISTRY_LOG.
READY_LAST=
serve_registry() {
    local bin=$1 cfg=$2 logf=$3 name=$4
    shift 4
    [[ -x "$bin" ]] || fail "registry binary '$bin' is not executable"
    log "starting registry $name: $bin serve $cfg"
    "$bin" serve "$cfg" >"$logf" 2>&1 </dev/null &
    local pid=$!
    _E2E_REGISTRY_PIDS+=("$pid")
    _E2E_LOGS+=("$logf")
    REGISTRY_PID=$pid
    REGISTRY_LOG=$logf
    READY_LAST=
    local deadline=$((SECONDS + 30))
    until "$@"; do
        if ! pid_alive "$pid"; then
            wait "$pid" 2>/dev/null || true
            show_files "$cfg" "$logf"
            fail "registry $name ($bin) exited during startup (config $cfg)"
        fi
        if ((SECONDS >= deadline)); then
            show_files "$cfg" "$logf"
            fail "registry $name ($bin) not ready within 30 s: ${READY_LAST:-"$*" failed}"
        fi
        sleep 0.1
    done
    log "registry $name ready: pid $pid"
}

# v2_answers CODE URL: GET URL/v2/ answers CODE (a READY_CMD for serve_registry).
v2_answers() {
    local got
    got=$(http_code "$2/v2/")
    READY_LAST="GET $2/v2/ answered $got, not $1"
    [[ "$got" == "$1" ]]
}

# start_registry BIN ROOT PORT [EXTRA_YAML]
# Writes a config.yml (write_registry_config, on 127.0.0.1:PORT), starts
# "BIN serve CONFIG" and waits (30 s at most) until GET /v2/ answers 200.
# Sets REGISTRY_PID, REGISTRY_PORT, REGISTRY_URL (http://127.0.0.1:PORT), REGISTRY_LOG.
start_registry() { _e2e_start_registry 200 "$@"; }

# start_auth_registry BIN ROOT PORT [EXTRA_YAML]: start_registry for a registry
# that requires authentication (EXTRA_YAML has its auth section): ready when
# GET /v2/ answers 401.
start_auth_registry() { _e2e_start_registry 401 "$@"; }

_e2e_start_registry() {
    local want=$1 bin=$2 root=$3 port=$4 extra=${5:-}
    _E2E_REG_SEQ=$((_E2E_REG_SEQ + 1))
    local cfg="$TEST_TMP/registry-$_E2E_REG_SEQ.yml"
    local logf="$TEST_TMP/registry-$_E2E_REG_SEQ.log"
    mkdir -p "$root"
    write_registry_config "$cfg" "$root" "127.0.0.1:$port" "$extra"
    REGISTRY_PORT=$port
    REGISTRY_URL="http://127.0.0.1:$port"
    serve_registry "$bin" "$cfg" "$logf" "#$_E2E_REG_SEQ (root $root, $REGISTRY_URL)" \
        v2_answers "$want" "$REGISTRY_URL"
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

# start_dockerd [DOCKERD_ARGS...]: private dockerd (vfs, no networking changes) with its
# own data-root, exec-root, pidfile and socket, and a private containerd, given
# DOCKERD_ARGS besides (e.g. --registry-mirror).  Exports DOCKER_HOST and DOCKER_CONFIG;
# stopped by PID at exit.
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
        "$@"
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

# skc ARGS...: sk with an empty auth file, so that no credentials from this
# machine's auth files are sent or override the ones a test gives.
skc() {
    [[ -f "$TEST_TMP/skopeo-auth.json" ]] || echo '{}' >"$TEST_TMP/skopeo-auth.json"
    REGISTRY_AUTH_FILE="$TEST_TMP/skopeo-auth.json" sk "$@"
}

# skopeo_push CREDS SRC REF: skc copy --all --preserve-digests from SRC (e.g.
# oci:DIR:TAG) to docker://REF without TLS verification, as CREDS
# ("user:password"; "" = no credentials). Returns skopeo's status.
skopeo_push() {
    local c=(--dest-no-creds)
    [[ -z "$1" ]] || c=(--dest-creds "$1")
    skc copy --all --preserve-digests --dest-tls-verify=false "${c[@]}" "$2" "docker://$3"
}

# skopeo_pull CREDS REF DST: skc copy --all --preserve-digests from docker://REF
# to DST (e.g. oci:DIR:TAG) without TLS verification, as CREDS (as skopeo_push).
skopeo_pull() {
    local c=(--src-no-creds)
    [[ -z "$1" ]] || c=(--src-creds "$1")
    skc copy --all --preserve-digests --src-tls-verify=false "${c[@]}" "docker://$2" "$3"
}

# Output patterns of clients refused for lack of authentication or authorization.
AUTH_REFUSED_RE='unauthorized|authentication required|denied|401|403'

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

# ---------------------------------------------------------------- commands that must work or be refused

# Output of the last expect_success / expect_refusal command.
CMD_OUT="$TEST_TMP/cmd.out"

# expect_success WHAT CMD...: CMD must succeed; its output (in $CMD_OUT) is
# shown when it fails.
expect_success() {
    local what=$1
    shift
    "$@" >"$CMD_OUT" 2>&1 || {
        cat "$CMD_OUT" >&2
        fail "$what failed"
    }
    ok "$what"
}

# expect_refusal WHAT ERE CMD...: CMD must fail, and its output (in $CMD_OUT)
# must match the extended regular expression ERE (case-insensitive; "" = any
# failure will do).
expect_refusal() {
    local what=$1 re=$2 last
    shift 2
    if "$@" >"$CMD_OUT" 2>&1; then
        fail "$what succeeded: $(tail -n 3 "$CMD_OUT")"
    fi
    [[ -z "$re" ]] || grep -qiE -- "$re" "$CMD_OUT" ||
        fail "$what failed, but its output does not match /$re/: $(cat "$CMD_OUT")"
    last=$(grep -v '^[[:space:]]*$' "$CMD_OUT" | tail -n1) || true
    ((${#last} <= 160)) || last="...${last: -157}"
    ok "$what: refused ($last)"
}

# ---------------------------------------------------------------- storage tree

# storage_listing ROOT: every path and file size under ROOT/docker/registry/v2, sorted.
storage_listing() {
    (cd "$1" && find docker/registry/v2 -printf '%p %s\n' 2>/dev/null | sort) || true
}

# snapshot_storage ROOT: remember the storage tree of ROOT for expect_storage_unchanged.
_E2E_SNAPSHOT_ROOT=
snapshot_storage() {
    _E2E_SNAPSHOT_ROOT=$1
    storage_listing "$1" >"$TEST_TMP/storage.before"
}

# expect_storage_unchanged WHAT: the tree is as the last snapshot_storage saw it.
expect_storage_unchanged() {
    [[ -n "$_E2E_SNAPSHOT_ROOT" ]] || fail "$1: expect_storage_unchanged without snapshot_storage"
    storage_listing "$_E2E_SNAPSHOT_ROOT" >"$TEST_TMP/storage.after"
    if ! cmp -s "$TEST_TMP/storage.before" "$TEST_TMP/storage.after"; then
        fail "$1: the storage tree changed: $(diff "$TEST_TMP/storage.before" "$TEST_TMP/storage.after" | head -n 20 | tr '\n' '|')"
    fi
    ok "$1: storage tree unchanged"
}

# ---------------------------------------------------------------- HTTP requests with headers

# http_req CURL_ARGS...: curl, bounded in time; prints the status code (000
# without an HTTP answer) and returns curl's status. Body, headers and curl's
# stderr go to $TEST_TMP/curl.body, curl.headers and curl.err, for header_of,
# body_error_code and last_response. (curl -I writes the headers to the body
# file: a HEAD response has no body.)
http_req() {
    : >"$TEST_TMP/curl.body"
    : >"$TEST_TMP/curl.headers"
    curl -sS --connect-timeout 5 --max-time 30 -o "$TEST_TMP/curl.body" -D "$TEST_TMP/curl.headers" \
        -w '%{http_code}' "$@" 2>"$TEST_TMP/curl.err"
}

# header_of NAME: header NAME of the last http_req response, the last one if
# repeated, "" if none (pure bash: this runs a lot).
header_of() {
    local line n v=
    while IFS= read -r line || [[ -n "$line" ]]; do
        line=${line%$'\r'}
        [[ "$line" == *:* ]] || continue
        n=${line%%:*}
        if [[ "${n,,}" == "${1,,}" ]]; then
            v=${line#*:}
            v=${v# }
        fi
    done <"$TEST_TMP/curl.headers"
    printf '%s' "$v"
}

# last_response: the headers and the start of the body of the last http_req
# response, on one line (for FAIL messages).
last_response() {
    printf '%s %s' "$(tr -d '\r' <"$TEST_TMP/curl.headers" | tr '\n' '|' | cut -c1-600)" "$(head -c 400 "$TEST_TMP/curl.body")"
}

# body_error_code: the first errors[].code in the last http_req body ("" if none).
body_error_code() {
    local body re='"code"[[:space:]]*:[[:space:]]*"([A-Za-z_]+)"'
    body=$(<"$TEST_TMP/curl.body")
    [[ "$body" =~ $re ]] && printf '%s' "${BASH_REMATCH[1]}"
    return 0
}

# expect_http WHAT CODE REQUEST_CMD...: REQUEST_CMD (http_req, or a wrapper of
# it that adds credentials) must print the status CODE.
expect_http() {
    local what=$1 want=$2 got
    shift 2
    got=$("$@") || true
    [[ "$got" == "$want" ]] || fail "$what: expected HTTP $want, got $got: $(last_response) $(cat "$TEST_TMP/curl.err")"
    ok "$what: HTTP $want"
}

# expect_error_body WHAT CODE: the last http_req response's body names the error
# CODE (its first errors[].code), unless it was a HEAD request.
expect_error_body() {
    local body code
    body=$(<"$TEST_TMP/curl.body")
    [[ "$body" != HTTP/* ]] || return 0
    code=$(body_error_code)
    [[ "$code" == "$2" ]] || fail "$1: expected error code $2 in the body, got '${code:-(none)}': $(last_response)"
}

# expect_basic_challenge WHAT REALM: the last http_req response asks for basic
# authentication: WWW-Authenticate: Basic realm="REALM", error code UNAUTHORIZED.
expect_basic_challenge() {
    local h
    h=$(header_of WWW-Authenticate)
    [[ "$h" == "Basic realm=\"$2\"" ]] || fail "$1: expected WWW-Authenticate: Basic realm=\"$2\", got '$h'"
    expect_error_body "$1" UNAUTHORIZED
}

# ---------------------------------------------------------------- docker client (see start_dockerd)

# docker_login REGISTRY USER PASSWORD: docker login (password on stdin) must say "Login Succeeded".
docker_login() {
    printf '%s' "$3" | timeout 60 docker login "$1" -u "$2" --password-stdin >"$TEST_TMP/docker.out" 2>&1 || {
        cat "$TEST_TMP/docker.out" >&2
        fail "docker login $1 -u $2 failed"
    }
    grep -q 'Login Succeeded' "$TEST_TMP/docker.out" || fail "docker login $1 -u $2 said: $(cat "$TEST_TMP/docker.out")"
    ok "docker login $1 -u $2"
}

# docker_logout REGISTRY
docker_logout() {
    timeout 60 docker logout "$1" >"$TEST_TMP/docker.out" 2>&1 || {
        cat "$TEST_TMP/docker.out" >&2
        fail "docker logout $1 failed"
    }
}

# docker_push REF: docker push; prints the manifest digest docker reports
# (fails when the push fails or reports none).
docker_push() {
    local out digest
    out=$(timeout 120 docker push "$1" 2>&1) || {
        printf '%s\n' "$out" >&2
        fail "docker push $1 failed"
    }
    digest=$(sed -n 's/.*digest: \(sha256:[0-9a-f]\{64\}\).*/\1/p' <<<"$out" | tail -n1)
    [[ -n "$digest" ]] || fail "docker push $1 did not report a digest: $out"
    printf '%s\n' "$digest"
}

# docker_pull REF
docker_pull() {
    timeout 120 docker pull "$1" >"$TEST_TMP/docker.out" 2>&1 || {
        cat "$TEST_TMP/docker.out" >&2
        fail "docker pull $1 failed"
    }
    ok "docker pull $1"
}

# docker_import_base REF NAME SIZE: imports a one-layer image REF from a tree
# in $TEST_TMP/ctx/base: etc/os-release (NAME=NAME) and SIZE random bytes in
# etc/random.bin.
docker_import_base() {
    local base="$TEST_TMP/ctx/base"
    mkdir -p "$base/etc"
    printf 'NAME=%s\n' "$2" >"$base/etc/os-release"
    head -c "$3" /dev/urandom >"$base/etc/random.bin"
    tar -C "$base" -cf "$TEST_TMP/ctx/base.tar" .
    timeout 60 docker import "$TEST_TMP/ctx/base.tar" "$1" >/dev/null
}

# ---------------------------------------------------------------- test certificates (openssl)

# Keys, certificates and openssl's output (openssl.log) go to $PKI.
# install_docker_ca REGISTRY CA_FILE: docker trusts CA_FILE for REGISTRY (host:port) through
# /etc/docker/certs.d; removed at exit (and the folders, if this test created them).
install_docker_ca() {
    local certs_d=/etc/docker/certs.d
    if [[ ! -d "$certs_d" ]]; then
        [[ -d /etc/docker ]] || on_exit "rmdir /etc/docker 2>/dev/null"
        on_exit "rmdir '$certs_d' 2>/dev/null"
    fi
    mkdir -p "$certs_d/$1"
    on_exit "rm -rf '${certs_d:?}/$1'"
    cp "$2" "$certs_d/$1/ca.crt"
    ok "CA installed as $certs_d/$1/ca.crt"
}

PKI="$TEST_TMP/pki"

# ossl ARGS...: openssl ARGS, its output appended to $PKI/openssl.log (shown when it fails).
ossl() {
    mkdir -p "$PKI"
    openssl "$@" >>"$PKI/openssl.log" 2>&1 || {
        cat "$PKI/openssl.log" >&2
        fail "openssl $1 failed"
    }
}

# new_ca NAME SUBJECT: a CA: EC P-256 key $PKI/NAME.key, self-signed certificate $PKI/NAME.crt.
new_ca() {
    ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -keyout "$PKI/$1.key" -out "$PKI/$1.crt" -subj "$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

# issue NAME CA SUBJECT EXTENSION_LINE...: EC P-256 key $PKI/NAME.key and certificate
# $PKI/NAME.crt signed by the CA made by new_ca CA (or issued by issue), with these extensions.
issue() {
    local name=$1 ca=$2 subj=$3
    shift 3
    mkdir -p "$PKI"
    printf '%s\n' "$@" >"$PKI/$name.ext"
    ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout "$PKI/$name.key" -out "$PKI/$name.csr" -subj "$subj"
    ossl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" \
        -CAcreateserial -days 2 -out "$PKI/$name.crt" -extfile "$PKI/$name.ext"
}

# verify_pull REF DIGEST: skopeo pull REF into a fresh layout and check it has DIGEST and the
# same manifests and blobs as the source layout $SRC.
_E2E_PULLS=0
verify_pull() {
    _E2E_PULLS=$((_E2E_PULLS + 1))
    local dst="$TEST_TMP/pull$_E2E_PULLS"
    pull_oci "$1" "$dst" x
    expect_eq "digest of $1" "$2" "$(oci_tag_digest "$dst" x)"
    oci_same_image "$SRC" "$dst" "$2"
    rm -rf "$dst"
}

# now_ns: wall clock in nanoseconds.
now_ns() { date +%s%N; }

# Background push workers (crash tests): their PIDs in WORKER_PIDS, a file "$W/stop" asks
# them to end. stop_workers SECONDS waits that long for them, then kills what is left.
#
# skopeo_worker NAME REPO IMAGE_TAG DIGEST CYCLE: pushes oci:$SRC:IMAGE_TAG (all of it) to
# $WORKER_REGISTRY/REPO under new tags again and again, each push within $WORKER_TIMEOUT s
# (default 20), until $W/stop; logs to $W/NAME.attempt (tag started), .done ("tag digest")
# and .failed ("tag end_ns", then stops: the registry is presumably dead).
skopeo_worker() {
    local name=$1 repo=$2 img=$3 digest=$4 cycle=$5 iter=0 tag
    while [[ ! -e "$W/stop" ]]; do
        iter=$((iter + 1))
        tag="$name-c$cycle-$iter"
        echo "$tag" >>"$W/$name.attempt"
        if timeout "${WORKER_TIMEOUT:-20}" skopeo --insecure-policy --tmpdir "$TEST_TMP" copy --all \
            --preserve-digests --dest-tls-verify=false "oci:$SRC:$img" \
            "docker://$WORKER_REGISTRY/$repo:$tag" >"$W/$name.$iter.log" 2>&1; then
            echo "$tag $digest" >>"$W/$name.done"
        else
            echo "$tag $(now_ns)" >>"$W/$name.failed"
            return 0
        fi
    done
}
WORKER_PIDS=()
stop_workers() {
    [[ -n "${W:-}" ]] && touch "$W/stop"
    local p deadline=$((SECONDS + $1))
    for p in "${WORKER_PIDS[@]}"; do
        while pid_alive "$p" && ((SECONDS < deadline)); do sleep 0.1; done
        pid_alive "$p" && kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null || true
    done
    WORKER_PIDS=()
}

# ---------------------------------------------------------------- webhooks

# start_receiver DIR: a webhook receiver (tests/support/webhook_receiver.py) recording into
# DIR, stopped at exit; sets RECEIVER_PORT.
start_receiver() {
    mkdir -p "$1"
    "$PYTHON" "$E2E_DIR/../support/webhook_receiver.py" "$1" >"$1/out.log" 2>&1 &
    local pid=$!
    on_exit "kill $pid 2>/dev/null || true"
    wait_until 10 "the webhook receiver" test -s "$1/port" || fail "webhook receiver did not start"
    RECEIVER_PORT=$(cat "$1/port")
}

# notify_yaml PORT: a notifications section with one endpoint, e2e, to the receiver on PORT.
notify_yaml() {
    printf 'notifications:\n  endpoints:\n    - name: e2e\n      url: http://127.0.0.1:%s/events\n      timeout: 2s\n      threshold: 3\n      backoff: 200ms\n' "$1"
}

# events DIR: one line per event the receiver in DIR accepted, normalised for comparison
# with another registry's: ids, times, request ids and addresses differ by nature.
events() {
    [[ -f "$1/requests.jsonl" ]] || return 0
    jq -c '.body | fromjson | .events[] | {action, target: (.target | {mediaType, digest, size,
        length, repository, fromRepository, tag}), method: .request.method,
        useragent: (.request.useragent | split(" ")[0])}' "$1/requests.jsonl"
}

# events_settle DIR: waits until the number of events stops growing (1 s without news).
events_settle() {
    local last=-1 n
    for _ in $(seq 1 60); do
        n=$(events "$1" | wc -l)
        [[ "$n" == "$last" ]] && return 0
        last=$n
        sleep 1
    done
}
