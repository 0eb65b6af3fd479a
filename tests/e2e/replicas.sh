#!/usr/bin/env bash
# regfs as a replicated service: three regfs-httpd replicas on one storage (a directory; with
# REPLICAS_STORAGE=s3, a bucket on a Ceph RGW this script starts), sharing a Redis
# blob-descriptor cache (tests/support/redis_server.sh), behind haproxy
# (tests/support/haproxy_lb.sh: round-robin per request, /readyz checks, retries):
#   a. skopeo copy --all of a multi-platform image through the load balancer and back,
#      digests identical; docker push / rmi / pull through it (not under the sanitizers);
#   b. one chunked upload whose POST, PATCHes, status GET and PUT each go to another
#      replica, addressed directly; the blob then GETs from the others and through the LB;
#   c. races between replicas: one blob uploaded by three at once; one tag PUT by two at
#      once; a tag moved on one while another deletes the manifest it pointed to (the end
#      state is consistent on every replica); a cross-repository mount on one of a blob
#      committed on another a moment before;
#   d. metrics: /metrics of every replica parses (promtool check metrics, when installed),
#      names the required families and handler values; 7 HEADs of a manifest count 7;
#      a repeated blob HEAD counts a cache hit;
#   e. Redis killed (kill -9) during pulls: no pull fails, /debug/health reports redis,
#      /v2/ still answers 200, regfs_redis_up 0; Redis restarted on its port:
#      regfs_redis_up 1 again; a manifest and a blob deleted through one replica are gone
#      (404) on the others at once;
#   f. a health.file drain: the replica answers 503 on /v2/ and /readyz, haproxy takes it
#      out, pulls through the LB all succeed; the file removed, it comes back;
#   g. kill -9 of a replica in the middle of concurrent skopeo pushes through the LB (each
#      push retried up to 3 times, as docker would): every tag whole afterwards; the
#      replica restarted on its port;
#   h. rolling restart (SIGTERM, exit 0, restart, ready: one replica after the other) while
#      loops push and pull through the LB with no retries (skopeo with small images, and
#      blob uploads whose one PATCH takes 3 s, too big for haproxy to resend): not one
#      failure.
# Needs redis-server, haproxy, skopeo, curl, jq, python3 (docker.io and root for the docker
# part; promtool, from the Debian package prometheus, for the metrics' syntax), and with
# REPLICAS_STORAGE=s3 root, ceph-mon, ceph-osd and radosgw. E2E_REPLICAS_SEED repeats the
# image data and the kill's choices.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

STORAGE=${REPLICAS_STORAGE:-filesystem}
case "$STORAGE" in
filesystem | s3) ;;
*) fail "REPLICAS_STORAGE=$STORAGE: expected filesystem or s3" ;;
esac
require_cmds skopeo curl jq python3 sha256sum timeout redis-server redis-cli haproxy
if [[ "$STORAGE" == s3 ]]; then
    require_cmds ceph-mon ceph-osd radosgw
    require_root
fi
BIN=$(registry_bin)
SUPPORT=$(cd "$E2E_DIR/../support" && pwd)
SRC="$TEST_TMP/src"
W="$TEST_TMP/work"
mkdir -p "$SRC" "$W"
SEED=${E2E_REPLICAS_SEED:-$(date +%s)}
RANDOM=$SEED
log "storage $STORAGE; random seed $SEED (E2E_REPLICAS_SEED=$SEED repeats the image data and the kill's choices)"
NREPLICAS=3
HANDLERS="base catalog tags manifest blob blob_upload blob_upload_chunk referrers unknown"
declare -A EXPECT=() # repo:tag -> digest that every replica must serve at the end

# ------------------------------------------------------------------ helpers

# stable_ports N: N distinct free TCP ports on 127.0.0.1, below the kernel's ephemeral range
# when there is room: no client socket is ever given one of them as its local port, so a
# replica killed and restarted can bind its port again.
stable_ports() {
    "$PYTHON" - "$1" <<'EOF'
import random, socket, sys
n = int(sys.argv[1])
try:
    lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
except (OSError, ValueError, IndexError):
    lo = 0
cands = list(range(max(1024, lo - 12000), lo)) if lo > 3000 else []
random.shuffle(cands)
held = []
for p in cands + [0] * n:
    if len(held) == n:
        break
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        s.close()
        continue
    held.append(s)
print(" ".join(str(s.getsockname()[1]) for s in held))
EOF
}

# The metrics of one replica: metric I NAME [LABEL=VALUE...] prints the sum of NAME's samples
# whose labels include all of these ("absent" when none do); metric_values I NAME LABEL the
# distinct values of LABEL among NAME's samples.
cat >"$TEST_TMP/metrics.py" <<'EOF'
import re, sys
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?\s*$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
args = sys.argv[1:]
values_of = args.pop(0) == "--values"
name = args.pop(0)
want = dict(a.split("=", 1) for a in args) if not values_of else {}
total, found, seen = 0.0, False, set()
for line in sys.stdin:
    m = SAMPLE.match(line.strip())
    if not m or m.group(1) != name:
        continue
    labels = dict(LABEL.findall(m.group(2) or ""))
    if values_of:
        if args[0] in labels:
            seen.add(labels[args[0]])
    elif all(labels.get(k) == v for k, v in want.items()):
        total += float(m.group(3))
        found = True
if values_of:
    print(" ".join(sorted(seen)))
elif not found:
    print("absent")
else:
    print("%d" % total if total == int(total) else "%g" % total)
EOF
metrics_of() { curl -sS --max-time 10 -f "${DURL[$1]}/metrics"; }
metric() {
    local i=$1
    shift
    metrics_of "$i" | "$PYTHON" "$TEST_TMP/metrics.py" --sum "$@"
}
metric_values() { metrics_of "$1" | "$PYTHON" "$TEST_TMP/metrics.py" --values "$2" "$3"; }
# counter I NAME [LABEL=VALUE...]: metric, 0 when absent (a counter not yet incremented).
counter() {
    local v
    v=$(metric "$@") || return 1
    [[ "$v" != absent ]] || v=0
    printf '%s\n' "$v"
}
# metric_is I VALUE NAME [LABEL=VALUE...] (for wait_until)
metric_is() {
    local i=$1 want=$2
    shift 2
    [[ "$(metric "$i" "$@")" == "$want" ]]
}

# code_is CODE URL: GET URL answers CODE.
code_is() { [[ "$(http_code "$2")" == "$1" ]]; }

# health_is I CODE [TEXT]: GET /debug/health of replica I answers CODE, its body mentions
# TEXT (case-insensitively). The body is left in $W/health.I.
health_is() {
    local code
    code=$(curl -s -o "$W/health.$1" -w '%{http_code}' --max-time 5 "${DURL[$1]}/debug/health") || true
    [[ "$code" == "$2" ]] || return 1
    [[ -z "${3:-}" ]] || grep -qi -- "$3" "$W/health.$1"
}

# on_replica I LOCATION: LOCATION (absolute or not) sent to replica I instead.
on_replica() {
    local path=$2
    [[ -n "$path" ]] || fail "no Location header: $(last_response)"
    [[ "$path" != http*://* ]] || path="/${path#http*://*/}"
    printf '%s%s\n' "${URL[$1]}" "$path"
}
with_digest() { # URL DIGEST
    if [[ "$1" == *\?* ]]; then printf '%s&digest=%s\n' "$1" "$2"; else printf '%s?digest=%s\n' "$1" "$2"; fi
}

# req OUT CURL_ARGS...: a curl for concurrent use (http_req's files are shared): status in
# OUT.code, headers in OUT.hdr, body in OUT.body.
req() {
    local out=$1
    shift
    curl -s --connect-timeout 5 --max-time 60 -o "$out.body" -D "$out.hdr" -w '%{http_code}' "$@" \
        >"$out.code" 2>"$out.err" || true
}
# hdr_of OUT NAME: header NAME of the response req saved as OUT.
hdr_of() { tr -d '\r' <"$1.hdr" | awk -v n="${2,,}" -F': ' 'tolower($1) == n { v = $2 } END { print v }'; }

# random_file FILE SIZE NAME: SIZE pseudo-random bytes from the seed and NAME.
random_file() {
    "$PYTHON" -c 'import random, sys; sys.stdout.buffer.write(random.Random(sys.argv[1]).randbytes(int(sys.argv[2])))' \
        "$SEED-$3" "$2" >"$1"
}

# manifest_file DIGEST: the manifest's bytes in $SRC; manifest_type DIGEST: its media type.
manifest_file() { printf '%s\n' "$SRC/blobs/sha256/${1#sha256:}"; }
manifest_type() { jq -r .mediaType "$(manifest_file "$1")"; }

# digest_on I REPO REF: Docker-Content-Digest of GET /v2/REPO/manifests/REF on replica I (or
# on the LB with I=lb) after checking the body hashes to it; "404" when it is not there;
# fails on anything else.
digest_on() {
    local base code d
    if [[ "$1" == lb ]]; then base=$LB_URL; else base=${URL[$1]}; fi
    code=$(http_req -H "Accept: $MANIFEST_ACCEPT" "$base/v2/$2/manifests/$3") || true
    case "$code" in
    404)
        echo 404
        ;;
    200)
        d=$(header_of Docker-Content-Digest)
        [[ "$d" == "sha256:$(sha256_of "$TEST_TMP/curl.body")" ]] ||
            fail "GET $base/v2/$2/manifests/$3: Docker-Content-Digest $d, body hashes to sha256:$(sha256_of "$TEST_TMP/curl.body")"
        echo "$d"
        ;;
    *) fail "GET $base/v2/$2/manifests/$3: HTTP $code $(last_response)" ;;
    esac
}

# ------------------------------------------------------------------ background loops

# Loops run in the background until $W/NAME.stop exists, one line per round in $W/NAME.ok
# or $W/NAME.failed ("ROUND what"); a failed round's output stays in $W/NAME.ROUND.*.
declare -A LOOP_PIDS=()
start_loop() {
    local name=$1
    shift
    rm -f "$W/$name.stop" "$W/$name.ok" "$W/$name.failed"
    "$@" "$name" &
    LOOP_PIDS[$name]=$!
    log "loop $name started: $*"
}
loop_count() { if [[ -f "$W/$1.$2" ]]; then wc -l <"$W/$1.$2"; else echo 0; fi; }
# stop_loop NAME: asks the loop to end after its round and waits (120 s at most).
stop_loop() {
    local name=$1 pid=${LOOP_PIDS[$1]:-} deadline=$((SECONDS + 120))
    touch "$W/$name.stop"
    [[ -n "$pid" ]] || return 0
    while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    if pid_alive "$pid"; then
        log "loop $name did not end within 120 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
    unset "LOOP_PIDS[$name]"
}
_stop_loops() {
    local name
    for name in "${!LOOP_PIDS[@]}"; do
        touch "$W/$name.stop"
        kill -KILL "${LOOP_PIDS[$name]}" 2>/dev/null || true
        wait "${LOOP_PIDS[$name]}" 2>/dev/null || true
    done
}
# expect_loop_clean NAME WHAT MIN: the loop recorded no failure and at least MIN rounds.
expect_loop_clean() {
    local name=$1 okn failn first
    okn=$(loop_count "$name" ok)
    failn=$(loop_count "$name" failed)
    if ((failn > 0)); then
        first=$(head -n1 "$W/$name.failed" | cut -d' ' -f1)
        for f in "$W/$name.$first".*; do show_files "$f"; done
        fail "$2: $failn of $((okn + failn)) rounds of loop $name failed (first: $(head -n1 "$W/$name.failed"))"
    fi
    ((okn >= $3)) || fail "$2: only $okn rounds of loop $name (want $3 at least)"
    ok "$2: $okn rounds of loop $name, none failed"
}

# pull_loop REPO EXPECT NAME: pulls REPO through the LB again and again with regcheck.py (the
# manifests by tag and by digest, every blob with HEAD and a whole GET, every hash checked;
# EXPECT is REPO:TAG=DIGEST).
pull_loop() {
    local repo=$1 expect=$2 name=$3 n=0
    set +e # (in the background) each round's outcome is written down, not fatal
    while [[ ! -e "$W/$name.stop" ]]; do
        n=$((n + 1))
        if timeout 60 "$PYTHON" "$E2E_DIR/regcheck.py" "$LB_URL" --repo "$repo" --expect "$expect" \
            >/dev/null 2>"$W/$name.$n.err"; then
            echo "$n pull $(now_ns)" >>"$W/$name.ok"
            rm -f "$W/$name.$n.err"
        else
            echo "$n pull $(now_ns)" >>"$W/$name.failed"
        fi
    done
}

# push_pull_loop NAME: pushes image roll-K of $SRC (K cycling through 1..ROLL_IMAGES) to
# LB/rep/roll:NAME-N with skopeo, then pulls it back into a new layout and compares the
# digest, N = 1, 2, ...; no retries: a failure is a failure.
push_pull_loop() {
    local name=$1 n=0 k tag dst got
    set +e # (in the background) each round's outcome is written down, not fatal
    while [[ ! -e "$W/$name.stop" ]]; do
        n=$((n + 1))
        k=$(((n - 1) % ROLL_IMAGES + 1))
        tag="$name-$n"
        if ! sk copy --all --preserve-digests --dest-tls-verify=false "oci:$SRC:roll-$k" \
            "docker://$LB/rep/roll:$tag" >"$W/$name.$n.push" 2>&1; then
            echo "$n push $tag $(now_ns)" >>"$W/$name.failed"
            continue
        fi
        dst="$W/$name-pull"
        rm -rf "$dst"
        if ! sk copy --all --preserve-digests --src-tls-verify=false "docker://$LB/rep/roll:$tag" \
            "oci:$dst:x" >"$W/$name.$n.pull" 2>&1; then
            echo "$n pull $tag $(now_ns)" >>"$W/$name.failed"
            continue
        fi
        got=$(oci_tag_digest "$dst" x 2>&1)
        if [[ "$got" != "${ROLL_DIGEST[$k]}" ]]; then
            echo "pulled $tag: $got, pushed ${ROLL_DIGEST[$k]}" >"$W/$name.$n.pull"
            echo "$n digest $tag $(now_ns)" >>"$W/$name.failed"
            continue
        fi
        rm -f "$W/$name.$n.push" "$W/$name.$n.pull"
        echo "$n $tag ${ROLL_DIGEST[$k]}" >>"$W/$name.ok"
    done
}

# slow_upload_loop NAME: uploads a new 3 MiB blob to LB/rep/slow again and again, its one
# PATCH sent at 1 MiB/s (3 s in flight: a replica stopped meanwhile must finish it; haproxy
# cannot resend a request that big), then PUT ?digest= and a HEAD; no retries.
slow_upload_loop() {
    local name=$1 n=0 f="$W/$1.bin" d code loc
    set +e # (in the background) each round's outcome is written down, not fatal
    while [[ ! -e "$W/$name.stop" ]]; do
        n=$((n + 1))
        head -c $((3 << 20)) /dev/urandom >"$f"
        d="sha256:$(sha256_of "$f")"
        code=$(curl -s -o /dev/null -D "$W/$name.$n.post" -w '%{http_code}' --max-time 30 -X POST \
            "$LB_URL/v2/rep/slow/blobs/uploads/")
        if [[ "$code" != 202 ]]; then
            echo "$n POST $code $(now_ns)" >>"$W/$name.failed"
            continue
        fi
        loc=$(tr -d '\r' <"$W/$name.$n.post" | awk -F': ' 'tolower($1) == "location" { print $2 }')
        [[ "$loc" == http*://* ]] || loc="$LB_URL$loc"
        code=$(curl -s -o "$W/$name.$n.body" -D "$W/$name.$n.patch" -w '%{http_code}' --max-time 60 \
            --limit-rate 1M -X PATCH -H 'Content-Type: application/octet-stream' --data-binary @"$f" "$loc")
        if [[ "$code" != 202 ]]; then
            echo "$n PATCH $code $(now_ns)" >>"$W/$name.failed"
            continue
        fi
        loc=$(tr -d '\r' <"$W/$name.$n.patch" | awk -F': ' 'tolower($1) == "location" { print $2 }')
        [[ "$loc" == http*://* ]] || loc="$LB_URL$loc"
        code=$(curl -s -o "$W/$name.$n.body" -w '%{http_code}' --max-time 30 -X PUT "$(with_digest "$loc" "$d")")
        if [[ "$code" != 201 ]]; then
            echo "$n PUT $code $(now_ns)" >>"$W/$name.failed"
            continue
        fi
        code=$(http_code "$LB_URL/v2/rep/slow/blobs/$d")
        if [[ "$code" != 200 ]]; then
            echo "$n GET $code $(now_ns)" >>"$W/$name.failed"
            continue
        fi
        rm -f "$W/$name.$n".*
        echo "$n $d" >>"$W/$name.ok"
    done
}

# ------------------------------------------------------------------ Redis and the storage

step "start Redis$([[ "$STORAGE" != s3 ]] || echo ", a Ceph RGW and its bucket")"
if [[ "$STORAGE" == s3 ]]; then
    BUCKET=regfs-e2e-replicas
    # rgw_server.sh refuses folders over 60 bytes (admin socket paths under them).
    RGW_DIR="$TEST_TMP/rgw"
    ((${#RGW_DIR} <= 60)) || RGW_DIR=$(mktemp -d /tmp/rgw.XXXXXX)
    _stop_rgw() {
        [[ "${E2E_KEEP_TMP:-0}" != 1 || ! -f "$RGW_DIR/log/client.rgw.a.log" ]] ||
            cp "$RGW_DIR/log/client.rgw.a.log" "$TEST_TMP/rgw.log"
        "$SUPPORT/rgw_server.sh" stop "$RGW_DIR" >/dev/null 2>&1 || log "rgw_server.sh stop $RGW_DIR failed"
        [[ ! -d "$RGW_DIR" ]] || rmdir "$RGW_DIR" 2>/dev/null || true
    }
    on_exit _stop_rgw
    "$SUPPORT/rgw_server.sh" start "$RGW_DIR" >"$TEST_TMP/rgw-start.log" 2>&1 || {
        cat "$TEST_TMP/rgw-start.log" >&2
        fail "rgw_server.sh start $RGW_DIR failed"
    }
    _E2E_LOGS+=("$RGW_DIR/log/client.rgw.a.log")
    # shellcheck source=/dev/null
    source "$RGW_DIR/env"
    "$PYTHON" "$SUPPORT/s3_bucket.py" "$RGW_DIR/env" "$BUCKET"
    ok "RGW at $RGW_ENDPOINT, bucket $BUCKET"
    # Blob GETs are served by the replicas, not redirected to RGW: through the LB.
    STORAGE_YAML="  s3:
    accesskey: $RGW_ACCESS_KEY
    secretkey: $RGW_SECRET_KEY
    region: $RGW_REGION
    regionendpoint: $RGW_ENDPOINT
    bucket: $BUCKET
    rootdirectory: /registry
    secure: false
    v4auth: true
  redirect:
    disable: true"
else
    ROOT="$TEST_TMP/storage"
    mkdir -p "$ROOT"
    STORAGE_YAML="  filesystem:
    rootdirectory: $ROOT"
fi

REDIS_DIR="$TEST_TMP/redis"
REDIS_ADDR="" REDIS_PORT="" REDIS_PID="" # from $REDIS_DIR/env
_stop_redis() { "$SUPPORT/redis_server.sh" stop "$REDIS_DIR" >/dev/null 2>&1 || log "redis_server.sh stop $REDIS_DIR failed"; }
on_exit _stop_redis
"$SUPPORT/redis_server.sh" start "$REDIS_DIR" >"$TEST_TMP/redis-start.log" 2>&1 || {
    cat "$TEST_TMP/redis-start.log" >&2
    fail "redis_server.sh start $REDIS_DIR failed"
}
# shellcheck source=/dev/null
source "$REDIS_DIR/env"
_E2E_LOGS+=("$REDIS_DIR/redis.log")
ok "Redis at $REDIS_ADDR (pid $REDIS_PID)"

# ------------------------------------------------------------------ the replicas and haproxy

# Replicas (and the LB) stop before Redis and the store they use: cleanups run
# last-registered first.
on_exit _e2e_stop_all_registries
read -r -a ports <<<"$(stable_ports $((2 * NREPLICAS)))"
((${#ports[@]} == 2 * NREPLICAS)) || fail "could not find $((2 * NREPLICAS)) free ports: ${ports[*]}"
declare -a PORT=() DPORT=() URL=() DURL=() CFG=() RPID=() NSTART=()
for i in $(seq 1 $NREPLICAS); do
    PORT[i]=${ports[2 * i - 2]}
    DPORT[i]=${ports[2 * i - 1]}
    URL[i]="http://127.0.0.1:${PORT[i]}"
    DURL[i]="http://127.0.0.1:${DPORT[i]}"
    CFG[i]="$TEST_TMP/replica$i.yml"
    NSTART[i]=0
    cat >"${CFG[i]}" <<EOF
version: 0.1
log:
  level: info
storage:
$STORAGE_YAML
  delete:
    enabled: true
  cache:
    blobdescriptor: redis
redis:
  addr: $REDIS_ADDR
  dialtimeout: 1s
  readtimeout: 1s
  writetimeout: 1s
http:
  addr: 127.0.0.1:${PORT[i]}
  draintimeout: 30s
  debug:
    addr: 127.0.0.1:${DPORT[i]}
    prometheus:
      enabled: true
      path: /metrics
health:
  storagedriver:
    enabled: true
    interval: 1s
    threshold: 2
  file:
    - file: $TEST_TMP/drain-$i
      interval: 1s
EOF
done

# replica_ready I: /readyz and /v2/ of replica I answer 200 (a READY_CMD for serve_registry).
replica_ready() {
    local r
    r=$(http_code "${URL[$1]}/readyz")
    READY_LAST="GET ${URL[$1]}/readyz answered $r, not 200"
    [[ "$r" == 200 ]] || return 1
    v2_answers 200 "${URL[$1]}"
}

# start_replica I: replica I (its config, its ports), until it is ready. Sets RPID[I].
start_replica() {
    local i=$1
    NSTART[i]=$((NSTART[i] + 1))
    serve_registry "$BIN" "${CFG[i]}" "$TEST_TMP/replica$i.${NSTART[i]}.log" \
        "replica $i (${URL[i]}, start ${NSTART[i]})" replica_ready "$i"
    RPID[i]=$REGISTRY_PID
}

step "start $NREPLICAS replicas on one $STORAGE storage with the Redis cache, and haproxy"
backends=()
for i in $(seq 1 $NREPLICAS); do
    start_replica "$i"
    backends+=("127.0.0.1:${PORT[i]}")
done
for i in $(seq 1 $NREPLICAS); do
    expect_http "replica $i: GET /livez" 200 http_req "${URL[i]}/livez"
    expect_http "replica $i: GET /livez on the debug address" 200 http_req "${DURL[i]}/livez"
    expect_http "replica $i: GET /readyz on the debug address" 200 http_req "${DURL[i]}/readyz"
    wait_until 10 "replica $i's health checks to pass" health_is "$i" 200 ||
        fail "replica $i: GET /debug/health does not answer 200: $(cat "$W/health.$i")"
    ok "replica $i: /debug/health 200 ($(cat "$W/health.$i"))"
done

LB_DIR="$TEST_TMP/lb"
_stop_lb() { "$SUPPORT/haproxy_lb.sh" stop "$LB_DIR" >/dev/null 2>&1 || log "haproxy_lb.sh stop $LB_DIR failed"; }
on_exit _stop_lb
"$SUPPORT/haproxy_lb.sh" start "$LB_DIR" "${backends[@]}" >"$TEST_TMP/lb-start.log" 2>&1 || {
    cat "$TEST_TMP/lb-start.log" >&2
    fail "haproxy_lb.sh start failed"
}
# shellcheck source=/dev/null
source "$LB_DIR/env"
_E2E_LOGS+=("$LB_LOG")
LB=$LB_ADDR
LB_URL="http://$LB_ADDR"
on_exit _stop_loops # first of all: they use the LB
wait_until 10 "haproxy to route /v2/" v2_answers 200 "$LB_URL" || fail "GET $LB_URL/v2/ does not answer 200"
ok "haproxy at $LB_URL (pid $LB_PID) in front of ${backends[*]}"

# haproxy's log (see haproxy_lb.sh): lb_mark, its current length; lb_servers_since MARK,
# the servers that answered the requests logged since (with counts); lb_retried_since MARK,
# how many of those haproxy retried (the last connection counter is not 0);
# lb_down_since / lb_up_since I MARK: haproxy marked replica I DOWN / UP since MARK.
lb_mark() { wc -l <"$LB_LOG"; }
lb_servers_since() {
    tail -n +$(($1 + 1)) "$LB_LOG" | awk '$4 ~ /^replicas\/r[0-9]+$/ { print $4 }' | sort | uniq -c |
        awk '{ printf "%s:%s ", $2, $1 }'
}
lb_retried_since() {
    tail -n +$(($1 + 1)) "$LB_LOG" | awk '$4 ~ /^replicas\// { split($11, c, "/"); if (c[5] != "0") n++ } END { print n + 0 }'
}
lb_down_since() { tail -n +$(($2 + 1)) "$LB_LOG" | grep -q "Server replicas/r$1 is DOWN"; }
lb_up_since() { tail -n +$(($2 + 1)) "$LB_LOG" | grep -q "Server replicas/r$1 is UP"; }
# lb_routes_to I MARK: a few GET /v2/ through the LB, then: haproxy has sent replica I a
# request since MARK (it is in the rotation; a replica restarted faster than the health
# checks noticed was never out of it, and is never logged "UP" again).
lb_routes_to() {
    local n
    for n in 1 2 3; do http_code "$LB_URL/v2/" >/dev/null; done
    tail -n +$(($2 + 1)) "$LB_LOG" | awk -v s="replicas/r$1" '$4 == s { found = 1 } END { exit !found }'
}

# ------------------------------------------------------------------ a. through the LB

step "a. skopeo copy --all of a multi-platform image through the load balancer and back"
dM=$(mkoci "$SRC" multi --platforms linux/amd64,linux/arm64 --layers 2 --size 200000 --seed "$SEED-multi")
mark=$(lb_mark)
push_oci "$SRC" multi "$LB/rep/multi:1"
EXPECT[rep/multi:1]=$dM
verify_pull "$LB/rep/multi:1" "$dM"
spread=$(lb_servers_since "$mark")
log "requests per replica for the push and the pull: $spread"
[[ "$spread" == *replicas/r1:* && "$spread" == *replicas/r2:* && "$spread" == *replicas/r3:* ]] ||
    fail "haproxy did not spread the requests over the three replicas: $spread"
for i in $(seq 1 $NREPLICAS); do
    regcheck "${URL[i]}" --repo rep/multi --expect "rep/multi:1=$dM" || fail "replica $i does not serve rep/multi:1 whole"
done
ok "each replica serves the whole index (pushed through all three)"

if [[ -z "${REGFS_E2E_SANITIZED:-}" ]]; then
    step "a. docker push, rmi, pull through the load balancer (private dockerd)"
    start_dockerd
    docker_import_base regfs-e2e/replicas-base:1 regfs-replicas 400000
    ctx="$TEST_TMP/ctx/img"
    mkdir -p "$ctx"
    random_file "$ctx/payload.bin" 1500000 docker-payload
    printf 'hello from three replicas\n' >"$ctx/hello.txt"
    printf 'FROM regfs-e2e/replicas-base:1\nCOPY payload.bin /data/payload.bin\nCOPY hello.txt /hello.txt\n' >"$ctx/Dockerfile"
    IMG="$LB/rep/docker"
    DOCKER_BUILDKIT=0 timeout 120 docker build -q -t "$IMG:v1" "$ctx" >/dev/null 2>"$TEST_TMP/build.err" || {
        cat "$TEST_TMP/build.err" >&2
        fail "docker build failed"
    }
    image_id=$(docker image inspect -f '{{.Id}}' "$IMG:v1")
    layers=$(docker image inspect -f '{{json .RootFS.Layers}}' "$IMG:v1")
    dDock=$(docker_push "$IMG:v1")
    ok "docker push $IMG:v1 -> $dDock"
    EXPECT[rep/docker:v1]=$dDock
    for i in $(seq 1 $NREPLICAS); do
        regcheck "${URL[i]}" --repo rep/docker --expect "rep/docker:v1=$dDock" ||
            fail "replica $i does not serve docker's image whole"
    done
    docker rmi -f "$IMG:v1" regfs-e2e/replicas-base:1 >/dev/null
    [[ -z "$(docker image ls -aq)" ]] || fail "images still present after rmi: $(docker image ls -a)"
    docker_pull "$IMG:v1"
    expect_eq "image ID after the pull" "$image_id" "$(docker image inspect -f '{{.Id}}' "$IMG:v1")"
    expect_eq "layer diff IDs after the pull" "$layers" "$(docker image inspect -f '{{json .RootFS.Layers}}' "$IMG:v1")"
    docker rmi -f "$IMG:v1" >/dev/null
else
    log "a. docker part skipped under the sanitizers (skopeo covers the same requests)"
fi

# ------------------------------------------------------------------ b. one upload, three replicas

step "b. a chunked upload: POST, 3 PATCHes, the status GET and the PUT each on another replica"
CHUNKED="$W/chunked.bin"
random_file "$CHUNKED" $((6 << 20)) chunked
CHD="sha256:$(sha256_of "$CHUNKED")"
CH_SIZE=$(stat -c %s "$CHUNKED")
expect_http "replica 1: POST /v2/rep/chunked/blobs/uploads/" 202 http_req -X POST "${URL[1]}/v2/rep/chunked/blobs/uploads/"
loc=$(header_of Location)
off=0 n=0
for spec in "2 $((1 << 20))" "3 $((2 << 20))" "1 $((CH_SIZE - (3 << 20)))"; do
    read -r i len <<<"$spec"
    n=$((n + 1))
    end=$((off + len - 1))
    dd if="$CHUNKED" of="$W/chunk.bin" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$len" status=none
    expect_http "replica $i: PATCH chunk $n, bytes $off-$end" 202 http_req -X PATCH \
        -H 'Content-Type: application/octet-stream' -H "Content-Range: $off-$end" \
        --data-binary @"$W/chunk.bin" "$(on_replica "$i" "$loc")"
    expect_eq "Range after chunk $n" "0-$end" "$(header_of Range)"
    loc=$(header_of Location)
    off=$((end + 1))
done
expect_http "replica 3: GET the upload's status" 204 http_req "$(on_replica 3 "$loc")"
expect_eq "Range of the upload on replica 3" "0-$((CH_SIZE - 1))" "$(header_of Range)"
expect_http "replica 2: PUT ?digest=$CHD (no body)" 201 http_req -X PUT "$(with_digest "$(on_replica 2 "$loc")" "$CHD")"
expect_eq "Docker-Content-Digest of the PUT" "$CHD" "$(header_of Docker-Content-Digest)"
for where in "replica 3|${URL[3]}" "the LB|$LB_URL" "replica 1|${URL[1]}"; do
    curl -sSf --max-time 60 -o "$W/blob.out" "${where#*|}/v2/rep/chunked/blobs/$CHD" ||
        fail "GET of the chunked blob from ${where%|*} failed"
    expect_eq "sha256 of the blob from ${where%|*}" "$CHD" "sha256:$(sha256_of "$W/blob.out")"
done
for i in $(seq 1 $NREPLICAS); do
    expect_http "replica $i: HEAD the chunked blob" 200 http_req -I "${URL[i]}/v2/rep/chunked/blobs/$CHD"
    expect_eq "replica $i: its Content-Length" "$CH_SIZE" "$(header_of Content-Length)"
done

# ------------------------------------------------------------------ c. races

step "c. the same blob uploaded by the three replicas at once"
RACEB="$W/race.bin"
random_file "$RACEB" $((3 << 20)) race-blob
RBD="sha256:$(sha256_of "$RACEB")"
for i in $(seq 1 $NREPLICAS); do
    expect_http "replica $i: POST an upload to rep/blobrace" 202 http_req -X POST "${URL[i]}/v2/rep/blobrace/blobs/uploads/"
    RLOC[i]=$(with_digest "$(on_replica "$i" "$(header_of Location)")" "$RBD")
done
pids=()
for i in $(seq 1 $NREPLICAS); do
    req "$W/blobrace.$i" -X PUT -H 'Content-Type: application/octet-stream' --data-binary @"$RACEB" "${RLOC[i]}" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
for i in $(seq 1 $NREPLICAS); do
    expect_eq "replica $i: status of its PUT of the whole blob" 201 "$(cat "$W/blobrace.$i.code")"
    expect_eq "replica $i: Docker-Content-Digest" "$RBD" "$(hdr_of "$W/blobrace.$i" Docker-Content-Digest)"
done
for i in $(seq 1 $NREPLICAS); do
    curl -sSf --max-time 60 -o "$W/blob.out" "${URL[i]}/v2/rep/blobrace/blobs/$RBD" || fail "replica $i: GET of the raced blob failed"
    expect_eq "replica $i: sha256 of the raced blob" "$RBD" "sha256:$(sha256_of "$W/blob.out")"
done

step "c. one tag PUT from two replicas at once (5 rounds)"
dA=$(mkoci "$SRC" raceA --layers 2 --size 60000 --seed "$SEED-raceA")
dB=$(mkoci "$SRC" raceB --layers 2 --size 60000 --seed "$SEED-raceB")
push_oci "$SRC" raceA "$LB/rep/race:a"
push_oci "$SRC" raceB "$LB/rep/race:b"
EXPECT[rep/race:a]=$dA
EXPECT[rep/race:b]=$dB
for r in 1 2 3 4 5; do
    # Round 1: both PUT the same manifest; then one PUTs A, the other B.
    if ((r == 1)); then m1=$dA m2=$dA; elif ((r % 2)); then m1=$dA m2=$dB; else m1=$dB m2=$dA; fi
    req "$W/tagrace.1" -X PUT -H "Content-Type: $(manifest_type "$m1")" --data-binary @"$(manifest_file "$m1")" \
        "${URL[1]}/v2/rep/race/manifests/t$r" &
    p1=$!
    req "$W/tagrace.2" -X PUT -H "Content-Type: $(manifest_type "$m2")" --data-binary @"$(manifest_file "$m2")" \
        "${URL[2]}/v2/rep/race/manifests/t$r" &
    p2=$!
    wait "$p1" "$p2"
    for i in 1 2; do
        [[ "$(cat "$W/tagrace.$i.code")" == 201 ]] ||
            fail "round $r: PUT rep/race:t$r on replica $i answered $(cat "$W/tagrace.$i.code"): $(head -c 300 "$W/tagrace.$i.body")"
    done
    d1=$(digest_on 1 rep/race "t$r")
    [[ "$d1" == "$m1" || "$d1" == "$m2" ]] || fail "round $r: rep/race:t$r is $d1, neither of the two PUT"
    for i in 2 3 lb; do
        expect_eq "round $r: rep/race:t$r on $i = on replica 1" "$d1" "$(digest_on "$i" rep/race "t$r")"
    done
    EXPECT[rep/race:t$r]=$d1
done
ok "5 rounds: both PUTs 201, every replica agrees on the tag each time"

step "c. a tag moved on one replica while another deletes the manifest it pointed to (4 rounds)"
# A's blobs must be in rep/mv for its manifest to be PUT there: A is pushed as mv first.
push_oci "$SRC" raceA "$LB/rep/mv:mv"
push_oci "$SRC" raceB "$LB/rep/mv:b"
EXPECT[rep/mv:b]=$dB
moved=0 gone=0
for r in 1 2 3 4; do
    expect_http "round $r: replica 3: PUT A as rep/mv:mv" 201 http_req -X PUT -H "Content-Type: $(manifest_type "$dA")" \
        --data-binary @"$(manifest_file "$dA")" "${URL[3]}/v2/rep/mv/manifests/mv"
    req "$W/mv.put" -X PUT -H "Content-Type: $(manifest_type "$dB")" --data-binary @"$(manifest_file "$dB")" \
        "${URL[1]}/v2/rep/mv/manifests/mv" &
    p1=$!
    req "$W/mv.del" -X DELETE "${URL[2]}/v2/rep/mv/manifests/$dA" &
    p2=$!
    wait "$p1" "$p2"
    expect_eq "round $r: replica 1: PUT B as rep/mv:mv" 201 "$(cat "$W/mv.put.code")"
    expect_eq "round $r: replica 2: DELETE rep/mv@A" 202 "$(cat "$W/mv.del.code")"
    end=$(digest_on 1 rep/mv mv)
    case "$end" in
    "$dB") moved=$((moved + 1)) ;;
    404) gone=$((gone + 1)) ;;
    *) fail "round $r: rep/mv:mv resolves to $end: neither B ($dB) nor 404 (A was deleted)" ;;
    esac
    for i in 2 3 lb; do
        expect_eq "round $r: rep/mv:mv on $i = on replica 1" "$end" "$(digest_on "$i" rep/mv mv)"
        expect_eq "round $r: rep/mv@A (deleted) on $i" 404 "$(digest_on "$i" rep/mv "$dA")"
        expect_eq "round $r: rep/mv@B on $i" "$dB" "$(digest_on "$i" rep/mv "$dB")"
    done
    for i in $(seq 1 $NREPLICAS); do
        listed=$(http_req "${URL[i]}/v2/rep/mv/tags/list" >/dev/null && jq -r '(.tags // []) | index("mv") != null' "$TEST_TMP/curl.body")
        expect_eq "round $r: replica $i lists tag mv exactly when it resolves" "$([[ "$end" == 404 ]] && echo false || echo true)" "$listed"
    done
    regcheck "${URL[r % NREPLICAS + 1]}" --repo rep/mv >/dev/null || fail "round $r: rep/mv inconsistent"
done
ok "4 rounds: the tag ended on B $moved times, deleted with A $gone times; consistent on every replica"
[[ "$end" != "$dB" ]] || EXPECT[rep/mv:mv]=$dB

step "c. cross-repository mounts on replica 2 of blobs committed on replica 1 just before (5 rounds)"
for r in 1 2 3 4 5; do
    random_file "$W/mount.bin" 100000 "mount-$r"
    md="sha256:$(sha256_of "$W/mount.bin")"
    expect_http "round $r: replica 1: monolithic upload to rep/src" 201 http_req -X POST \
        -H 'Content-Type: application/octet-stream' --data-binary @"$W/mount.bin" \
        "${URL[1]}/v2/rep/src/blobs/uploads/?digest=$md"
    expect_http "round $r: replica 2: mount into rep/dst$r" 201 http_req -X POST \
        "${URL[2]}/v2/rep/dst$r/blobs/uploads/?mount=$md&from=rep/src"
    expect_eq "round $r: Docker-Content-Digest of the mount" "$md" "$(header_of Docker-Content-Digest)"
    [[ -n "$(header_of Location)" ]] || fail "round $r: the mount's 201 has no Location"
    expect_http "round $r: replica 3: HEAD rep/dst$r blob" 200 http_req -I "${URL[3]}/v2/rep/dst$r/blobs/$md"
    expect_eq "round $r: its Content-Length" 100000 "$(header_of Content-Length)"
done

# ------------------------------------------------------------------ d. metrics

step "d. /metrics of every replica"
for i in $(seq 1 $NREPLICAS); do
    metrics_of "$i" >"$W/metrics.$i" || fail "replica $i: GET ${DURL[i]}/metrics failed"
    ctype=$(curl -sS -o /dev/null -D - --max-time 10 "${DURL[i]}/metrics" | tr -d '\r' |
        awk -F': ' 'tolower($1) == "content-type" { print $2 }')
    [[ "$ctype" == text/plain* ]] || fail "replica $i: Content-Type of /metrics is '$ctype', not text/plain"
    if command -v promtool >/dev/null 2>&1; then
        # promtool 2.42 exits 1 when the text does not parse ("error while linting: text format
        # parsing error ..."), 3 when it parses but breaks naming conventions (one line each).
        rc=0
        promtool check metrics <"$W/metrics.$i" >"$W/promtool.$i" 2>&1 || rc=$?
        if ((rc == 1)) || grep -qiE 'error while linting|parsing error' "$W/promtool.$i"; then
            head -n 20 "$W/promtool.$i" >&2
            fail "replica $i: promtool check metrics: the exposition does not parse"
        fi
        ((rc == 0 || rc == 3)) || fail "replica $i: promtool check metrics exited $rc: $(head -n 5 "$W/promtool.$i")"
        if ((rc == 3)); then
            log "replica $i: promtool lint (not failing on these): $(tr '\n' ';' <"$W/promtool.$i" | cut -c1-400)"
        fi
        ok "replica $i: promtool check metrics: the exposition parses"
    else
        log "promtool not installed (Debian package prometheus): the exposition's syntax is not checked"
    fi
    # (NAME|OTHER: either will do. The body sizes may be counters or, as registry:2 has
    # them, histograms.)
    for name in registry_http_requests_total registry_http_request_duration_seconds_bucket \
        registry_http_request_duration_seconds_count \
        "registry_http_request_size_bytes_total|registry_http_request_size_bytes_count" \
        "registry_http_response_size_bytes_total|registry_http_response_size_bytes_count" \
        registry_storage_cache_total registry_storage_action_seconds_bucket regfs_uploads_in_flight \
        regfs_redis_up; do
        grep -qE "^($name)(\{| )" "$W/metrics.$i" || fail "replica $i: no $name sample in /metrics"
    done
    for name in registry_http_requests_total registry_http_request_duration_seconds registry_storage_action_seconds \
        regfs_redis_up; do
        grep -qE "^# TYPE $name (counter|histogram|gauge)$" "$W/metrics.$i" || fail "replica $i: no '# TYPE $name' line"
    done
    hs=$("$PYTHON" "$TEST_TMP/metrics.py" --values registry_http_requests_total handler <"$W/metrics.$i")
    for h in $hs; do
        [[ " $HANDLERS " == *" $h "* ]] || fail "replica $i: handler=\"$h\" in registry_http_requests_total: not one of $HANDLERS"
    done
    ok "replica $i: every required family is there; handlers seen: $hs"
    for t in $("$PYTHON" "$TEST_TMP/metrics.py" --values registry_storage_cache_total type <"$W/metrics.$i"); do
        [[ " Request Hit Miss Error " == *" $t "* ]] || fail "replica $i: registry_storage_cache_total{type=\"$t\"}"
    done
    expect_eq "replica $i: regfs_redis_up" 1 "$("$PYTHON" "$TEST_TMP/metrics.py" --sum regfs_redis_up <"$W/metrics.$i")"
done

step "d. 7 HEADs of a manifest on replica 2 count 7; a repeated blob HEAD on replica 3 counts a cache hit"
HEADS=(handler=manifest method=HEAD code=200)
before=$(counter 2 registry_http_requests_total "${HEADS[@]}")
before_n=$(counter 2 registry_http_request_duration_seconds_count handler=manifest method=HEAD)
for n in 1 2 3 4 5 6 7; do
    expect_http "HEAD $n of rep/multi:1 on replica 2" 200 http_req -I -H "Accept: $MANIFEST_ACCEPT" \
        "${URL[2]}/v2/rep/multi/manifests/1"
done
# (A request may be counted just after its response is sent.)
counted() { (($(counter 2 registry_http_requests_total "${HEADS[@]}") >= before + 7)); }
wait_until 5 "the 7 HEADs to be counted" counted || true
expect_eq "registry_http_requests_total{handler=manifest,method=HEAD,code=200} on replica 2, increase" 7 \
    $(($(counter 2 registry_http_requests_total "${HEADS[@]}") - before))
expect_eq "registry_http_request_duration_seconds_count{handler=manifest,method=HEAD} on replica 2, increase" 7 \
    $(($(counter 2 registry_http_request_duration_seconds_count handler=manifest method=HEAD) - before_n))
layer=$(jq -r '.layers[0].digest' "$(manifest_file "$(jq -r '.manifests[0].digest' "$(manifest_file "$dM")")")")
hits=$(counter 3 registry_storage_cache_total type=Hit)
requests=$(counter 3 registry_storage_cache_total type=Request)
expect_http "replica 3: HEAD of layer ${layer:7:12}" 200 http_req -I "${URL[3]}/v2/rep/multi/blobs/$layer"
expect_http "replica 3: HEAD of layer ${layer:7:12} again" 200 http_req -I "${URL[3]}/v2/rep/multi/blobs/$layer"
hit() { (($(counter 3 registry_storage_cache_total type=Hit) > hits)); }
wait_until 5 "a cache hit on replica 3" hit || fail "registry_storage_cache_total{type=\"Hit\"} on replica 3 stayed at $hits after two HEADs of one blob"
ok "registry_storage_cache_total on replica 3: Hit $hits -> $(counter 3 registry_storage_cache_total type=Hit), Request $requests -> $(counter 3 registry_storage_cache_total type=Request)"

# ------------------------------------------------------------------ e. Redis dies

step "e. kill -9 of Redis during pulls through the LB"
dS=$(mkoci "$SRC" small --layers 1 --size 30000 --seed "$SEED-small")
start_loop pulls-e pull_loop rep/multi "rep/multi:1=$dM"
sleep 2
"$SUPPORT/redis_server.sh" kill "$REDIS_DIR" >>"$TEST_TMP/redis-start.log" 2>&1 || fail "redis_server.sh kill failed"
log "Redis (pid $REDIS_PID) killed"
# /debug/health names the failing check "redis" but stays 200: Redis down degrades a replica
# (served from storage), it does not make it unhealthy; /v2/ and /readyz stay 200 too.
REDIS_DOWN_HEALTH=200
t0=$SECONDS
for i in $(seq 1 $NREPLICAS); do
    wait_until 20 "replica $i's /debug/health to report redis" health_is "$i" "$REDIS_DOWN_HEALTH" redis ||
        fail "replica $i: /debug/health does not answer $REDIS_DOWN_HEALTH naming redis 20 s after Redis died: $(http_code "${DURL[i]}/debug/health") $(cat "$W/health.$i")"
    ok "replica $i: /debug/health $REDIS_DOWN_HEALTH after $((SECONDS - t0)) s: $(head -c 300 "$W/health.$i")"
    jq -e 'type == "object" and (keys | any(test("redis"; "i")))' "$W/health.$i" >/dev/null ||
        fail "replica $i: /debug/health's body is not a JSON object with a redis check: $(cat "$W/health.$i")"
    wait_until 10 "regfs_redis_up 0 on replica $i" metric_is "$i" 0 regfs_redis_up ||
        fail "replica $i: regfs_redis_up is $(metric "$i" regfs_redis_up) with Redis down"
    ok "replica $i: regfs_redis_up 0"
    # Redis down is degraded, not unhealthy: the registry goes on without its cache.
    expect_http "replica $i: GET /v2/ with Redis down" 200 http_req "${URL[i]}/v2/"
done
push_oci "$SRC" small "$LB/rep/small:1"
EXPECT[rep/small:1]=$dS
verify_pull "$LB/rep/small:1" "$dS"
ok "a push and a pull through the LB with Redis down"
sleep 2
pulls_down=$(loop_count pulls-e ok)

step "e. Redis restarted on its port"
"$SUPPORT/redis_server.sh" restart "$REDIS_DIR" >>"$TEST_TMP/redis-start.log" 2>&1 || {
    cat "$TEST_TMP/redis-start.log" >&2
    fail "redis_server.sh restart failed"
}
# shellcheck source=/dev/null
source "$REDIS_DIR/env"
log "Redis back at $REDIS_ADDR (pid $REDIS_PID)"
t0=$SECONDS
for i in $(seq 1 $NREPLICAS); do
    wait_until 12 "regfs_redis_up 1 on replica $i" metric_is "$i" 1 regfs_redis_up ||
        fail "replica $i: regfs_redis_up still $(metric "$i" regfs_redis_up) 12 s after Redis came back"
    wait_until 12 "replica $i's /debug/health 200" health_is "$i" 200 ||
        fail "replica $i: /debug/health still $(http_code "${DURL[i]}/debug/health") after Redis came back: $(cat "$W/health.$i")"
done
ok "every replica reconnected within $((SECONDS - t0)) s (regfs_redis_up 1, /debug/health 200)"
sleep 3
stop_loop pulls-e
expect_loop_clean pulls-e "pulls through the LB while Redis died and came back" 5
((pulls_down > 0)) || fail "no pull completed while Redis was down"
(($(loop_count pulls-e ok) > pulls_down)) || fail "no pull completed after Redis came back"
keys=$(timeout 5 redis-cli -p "$REDIS_PORT" dbsize) || true
log "Redis has $keys keys again"

step "e. deletes through replica 1 are seen at once by replicas 2 and 3 (cache invalidation)"
dDel=$(mkoci "$SRC" del --layers 2 --size 40000 --seed "$SEED-del")
push_oci "$SRC" del "$LB/rep/del:1"
dl=$(jq -r '.layers[1].digest' "$(manifest_file "$dDel")")
for i in 2 3; do # warm the caches
    expect_eq "replica $i: rep/del:1 before the delete" "$dDel" "$(digest_on "$i" rep/del 1)"
    expect_http "replica $i: HEAD rep/del@$dDel" 200 http_req -I -H "Accept: $MANIFEST_ACCEPT" "${URL[i]}/v2/rep/del/manifests/$dDel"
    expect_http "replica $i: HEAD layer ${dl:7:12} of rep/del" 200 http_req -I "${URL[i]}/v2/rep/del/blobs/$dl"
done
expect_http "replica 1: DELETE rep/del@$dDel" 202 http_req -X DELETE "${URL[1]}/v2/rep/del/manifests/$dDel"
expect_http "replica 1: DELETE layer ${dl:7:12} of rep/del" 202 http_req -X DELETE "${URL[1]}/v2/rep/del/blobs/$dl"
for i in 2 3; do
    expect_http "replica $i: HEAD rep/del@$dDel right after" 404 http_req -I -H "Accept: $MANIFEST_ACCEPT" "${URL[i]}/v2/rep/del/manifests/$dDel"
    expect_http "replica $i: GET rep/del:1 right after" 404 http_req -H "Accept: $MANIFEST_ACCEPT" "${URL[i]}/v2/rep/del/manifests/1"
    expect_http "replica $i: HEAD layer ${dl:7:12} of rep/del right after" 404 http_req -I "${URL[i]}/v2/rep/del/blobs/$dl"
    expect_http "replica $i: GET layer ${dl:7:12} of rep/del right after" 404 http_req "${URL[i]}/v2/rep/del/blobs/$dl"
done

# ------------------------------------------------------------------ f. drain by health file

step "f. touch drain-1: replica 1 turns unready and leaves the rotation; pulls go on"
start_loop pulls-f pull_loop rep/multi "rep/multi:1=$dM"
sleep 1
mark=$(lb_mark)
touch "$TEST_TMP/drain-1"
t0=$SECONDS
drained() { code_is 503 "${URL[1]}/v2/" && code_is 503 "${URL[1]}/readyz"; }
wait_until 5 "replica 1 to answer 503" drained ||
    fail "replica 1 answers /v2/ $(http_code "${URL[1]}/v2/"), /readyz $(http_code "${URL[1]}/readyz") 5 s after drain-1 appeared"
ok "replica 1: /v2/ and /readyz 503 after $((SECONDS - t0)) s"
health_is 1 503 drain-1 || fail "replica 1: /debug/health does not answer 503 naming drain-1: $(cat "$W/health.1")"
expect_http "replica 1: /livez while drained" 200 http_req "${URL[1]}/livez"
wait_until 5 "haproxy to take replica 1 out" lb_down_since 1 "$mark" || fail "haproxy did not mark replica 1 DOWN"
ok "haproxy marked replica 1 DOWN $((SECONDS - t0)) s after drain-1 appeared"
mark=$(lb_mark)
sleep 4
spread=$(lb_servers_since "$mark")
[[ "$spread" != *replicas/r1:* ]] || fail "haproxy still sent requests to the drained replica 1: $spread"
[[ -n "$spread" ]] || fail "no request went through haproxy while replica 1 was drained"
ok "requests while drained: $spread"

step "f. rm drain-1: replica 1 comes back"
mark=$(lb_mark)
rm -f "$TEST_TMP/drain-1"
t0=$SECONDS
wait_until 5 "replica 1 to be ready again" replica_ready 1 || fail "replica 1 not ready 5 s after drain-1 went: $READY_LAST"
wait_until 5 "haproxy to take replica 1 back" lb_up_since 1 "$mark" || fail "haproxy did not mark replica 1 UP again"
ok "replica 1 back in the rotation after $((SECONDS - t0)) s"
mark=$(lb_mark)
sleep 3
spread=$(lb_servers_since "$mark")
[[ "$spread" == *replicas/r1:* ]] || fail "no request went to replica 1 once it was back: $spread"
ok "requests after: $spread"
stop_loop pulls-f
expect_loop_clean pulls-f "pulls through the LB while replica 1 was drained" 5

# ------------------------------------------------------------------ g. kill -9 during pushes

VICTIM=$((RANDOM % NREPLICAS + 1))
step "g. kill -9 of replica $VICTIM in the middle of 4 concurrent skopeo pushes through the LB"
declare -A KDIGEST=()
# About 100 MB in all, so that the pushes are still running when the kill lands (25 MB
# went through haproxy in under the 0.1 s the start of the uploads is polled at).
KDIGEST[k1]=$(mkoci "$SRC" k1 --layers 3 --size 12000000 --seed "$SEED-k1")
KDIGEST[k2]=$(mkoci "$SRC" k2 --platforms linux/amd64,linux/arm64 --layers 2 --size 4000000 --seed "$SEED-k2")
KDIGEST[k3]=$(mkoci "$SRC" k3 --layers 3 --size 8000000 --seed "$SEED-k3" --shared-layer "$SEED-k")
KDIGEST[k4]=$(mkoci "$SRC" k4 --layers 3 --size 8000000 --seed "$SEED-k4" --shared-layer "$SEED-k")
# kpush NAME: skopeo copy oci:$SRC:NAME -> LB/rep/kill:NAME, 3 attempts; $W/NAME.attempts
# gets the attempt that succeeded, $W/NAME.gaveup the failure.
kpush() {
    local a
    for a in 1 2 3; do
        if sk copy --all --preserve-digests --dest-tls-verify=false "oci:$SRC:$1" \
            "docker://$LB/rep/kill:$1" >"$W/kpush.$1.$a.log" 2>&1; then
            echo "$a" >"$W/$1.attempts"
            return 0
        fi
        sleep 1
    done
    echo failed >"$W/$1.gaveup"
}
mark=$(lb_mark)
kpids=()
for k in k1 k2 k3 k4; do
    kpush "$k" &
    kpids+=($!)
done
# Kill once uploads are under way: the first blob PATCH or PUT has been logged.
uploading() { tail -n +$((mark + 1)) "$LB_LOG" | grep -qE '"(PATCH|PUT) /v2/rep/kill/blobs/uploads/'; }
wait_until 60 "the pushes' first uploads" uploading || fail "no upload through haproxy within 60 s"
sleep "0.0$((RANDOM % 10))"
kill9_registry "${RPID[VICTIM]}"
kill_mark=$(lb_mark)
log "killed replica $VICTIM (pid ${RPID[VICTIM]})"
# The killed replica's repository lease (it was writing rep/kill) must not outlive it: on
# the filesystem its flock went with it, on the object store the lease expires (10 s). A
# DELETE of a tag that is not there takes that lease before it answers 404.
SURVIVOR=$((VICTIM % NREPLICAS + 1))
t_lease=$SECONDS
lease_code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 30 -X DELETE "${URL[SURVIVOR]}/v2/rep/kill/manifests/no-such-tag")
expect_eq "replica $SURVIVOR: DELETE of a missing tag in rep/kill after the kill" 404 "$lease_code"
(( SECONDS - t_lease <= 15 )) || fail "the killed replica's lease on rep/kill held $((SECONDS - t_lease)) s (expiry is 10 s)"
ok "the killed replica's lease on rep/kill was free after $((SECONDS - t_lease)) s"
for p in "${kpids[@]}"; do wait "$p"; done
after_kill=$(tail -n +$((kill_mark + 1)) "$LB_LOG" | grep -c '"[A-Z]* /v2/rep/kill/' || true)
((after_kill > 0)) || fail "the pushes were over before the kill: make the images bigger"
retried=""
for k in k1 k2 k3 k4; do
    if [[ -e "$W/$k.gaveup" ]]; then
        cat "$W/kpush.$k.3.log" >&2
        fail "the push of rep/kill:$k failed 3 times"
    fi
    a=$(cat "$W/$k.attempts")
    ((a == 1)) || retried+="${retried:+, }$k: $a"
    EXPECT[rep/kill:$k]=${KDIGEST[$k]}
done
cut=$(tail -n +$((mark + 1)) "$LB_LOG" | awk -v s="replicas/r$VICTIM" '$4 == s && ($6 == 502 || $6 == -1 || $6 == 503)' | wc -l)
ok "4 pushes done (attempts beyond the first: ${retried:-none}); $after_kill of their requests after the kill, $(lb_retried_since "$mark") retried by haproxy, $cut on replica $VICTIM cut off"
for k in k1 k2 k3 k4; do
    expect_eq "skopeo inspect: digest of rep/kill:$k" "${KDIGEST[$k]}" \
        "$(sk inspect --tls-verify=false --format '{{.Digest}}' "docker://$LB/rep/kill:$k")"
    verify_pull "$LB/rep/kill:$k" "${KDIGEST[$k]}"
done
regcheck "$LB_URL" --repo rep/kill --expect "rep/kill:k1=${KDIGEST[k1]}" --expect "rep/kill:k2=${KDIGEST[k2]}" \
    --expect "rep/kill:k3=${KDIGEST[k3]}" --expect "rep/kill:k4=${KDIGEST[k4]}" ||
    fail "rep/kill inconsistent after the kill"

step "g. restart replica $VICTIM on its port"
start_replica "$VICTIM"
mark=$(lb_mark)
wait_until 15 "haproxy to take replica $VICTIM back" lb_routes_to "$VICTIM" "$mark" ||
    fail "haproxy sends no request to replica $VICTIM 15 s after its restart"
regcheck "${URL[VICTIM]}" --repo rep/kill --expect "rep/kill:k1=${KDIGEST[k1]}" --expect "rep/kill:k2=${KDIGEST[k2]}" \
    --expect "rep/kill:k3=${KDIGEST[k3]}" --expect "rep/kill:k4=${KDIGEST[k4]}" ||
    fail "the restarted replica $VICTIM does not serve rep/kill whole"
ok "replica $VICTIM back in the rotation, serving every pushed tag"

# ------------------------------------------------------------------ h. rolling restart

step "h. rolling restart of the three replicas while a loop pushes and pulls through the LB"
ROLL_IMAGES=30
declare -A ROLL_DIGEST=()
for k in $(seq 1 $ROLL_IMAGES); do
    ROLL_DIGEST[$k]=$(mkoci "$SRC" "roll-$k" --layers 1 --size 3000 --seed "$SEED-roll-$k")
done
start_loop roll push_pull_loop
start_loop pulls-h pull_loop rep/multi "rep/multi:1=$dM"
start_loop slow slow_upload_loop
sleep 3
roll_mark=$(lb_mark)
for i in $(seq 1 $NREPLICAS); do
    pid=${RPID[i]}
    t0=$SECONDS
    log "SIGTERM to replica $i (pid $pid)"
    kill -TERM "$pid"
    while pid_alive "$pid" && ((SECONDS - t0 < 45)); do sleep 0.1; done
    if pid_alive "$pid"; then fail "replica $i still running 45 s after SIGTERM (draintimeout 30s)"; fi
    rc=0
    wait "$pid" || rc=$?
    expect_eq "replica $i: exit status after SIGTERM ($((SECONDS - t0)) s)" 0 "$rc"
    log "replica $i answered $(awk '/received SIGTERM/ { f = 1; next } f && /msg=access/ { n++ } END { print n + 0 }' \
        "$TEST_TMP/replica$i.${NSTART[i]}.log") requests after its SIGTERM line"
    start_replica "$i"
    mark=$(lb_mark)
    wait_until 15 "haproxy to take replica $i back" lb_routes_to "$i" "$mark" ||
        fail "haproxy sends no request to replica $i 15 s after its restart"
    ok "replica $i restarted and back in the rotation, $((SECONDS - t0)) s after SIGTERM"
    sleep 2
done
roll_retried=$(lb_retried_since "$roll_mark")
stop_loop roll
stop_loop pulls-h
stop_loop slow
expect_loop_clean roll "skopeo pushes and pulls through the LB during the rolling restart" 3
expect_loop_clean pulls-h "pulls through the LB during the rolling restart" 3
expect_loop_clean slow "slow (3 s) blob uploads through the LB during the rolling restart" 2
log "haproxy retried $roll_retried requests during the rolling restart"
while read -r _ tag digest; do EXPECT[rep/roll:$tag]=$digest; done <"$W/roll.ok"

# ------------------------------------------------------------------ the end state

step "every replica serves every tag this test expects"
EXPECT_ARGS=()
for ref in "${!EXPECT[@]}"; do EXPECT_ARGS+=(--expect "$ref=${EXPECT[$ref]}"); done
for i in $(seq 1 $NREPLICAS); do
    regcheck "${URL[i]}" "${EXPECT_ARGS[@]}" || fail "replica $i: the registry is inconsistent"
done
ok "${#EXPECT[@]} tags whole on each of the $NREPLICAS replicas"
if [[ "$STORAGE" == filesystem ]]; then
    layoutcheck "$ROOT" "${EXPECT_ARGS[@]}" || fail "the shared root is not in registry:2's layout"
fi
grep -hE 'level=error' "$TEST_TMP"/replica*.log | head -n 5 | while read -r l; do log "replica error: $l"; done || true
log "summary: a push/pull spread over 3 replicas; 5 tag races, 4 move/delete races ($moved moved, $gone deleted); Redis down ${pulls_down} pulls, no failure; drain; kill -9 of replica $VICTIM (retries: ${retried:-none}); rolling restart with $(loop_count roll ok) pushes+pulls, no failure ($roll_retried requests retried by haproxy)"
