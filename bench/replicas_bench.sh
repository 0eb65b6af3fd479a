#!/usr/bin/env bash
# Replicas and the shared cache, measured with the shared harness (regbench.py, A/B runs,
# repetitions interleaved): manifest HEAD/GET and blob pulls through haproxy (the test
# suite's configuration, tests/support/haproxy_lb.sh) to three replicas and to one, each
# against one replica addressed directly; and HEAD latency with the Redis blob descriptor
# cache against without it, on the filesystem and (with S3=1) on a Ceph RGW bucket.
#
#   bench/replicas_bench.sh [WORKDIR]      (BLOB_MIB=64 by default; S3=1 adds the RGW runs,
#                                           FS=0 leaves out the filesystem's, LOG_LEVEL=info,
#                                           RUNS=3lb,3lb-tuned,1lb,redis picks the A/B runs,
#                                           PHASES the 3-replica run's regbench phases)
#
# Needs a built build/httpd/regfs-httpd, haproxy, redis-server, apache2-utils and python3
# (and ceph-mon, ceph-osd, radosgw with S3=1). Prints one summary line per A/B run; the
# full JSON of each is in WORKDIR/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/replicas-bench}
blob_mib=${BLOB_MIB:-64}
regfs=$PWD/build/httpd/regfs-httpd
support=$PWD/tests/support
bench=${REGBENCH:-$PWD/../shared/bench/regbench.py}
[[ -f "$bench" ]] || { echo "regbench.py not found (set REGBENCH)" >&2; exit 2; }
rm -rf "$work" && mkdir -p "$work"
cleanup() {
    kill $(jobs -p) 2>/dev/null || true
    for lb in "$work"/lb-*; do [[ -d "$lb" ]] && "$support/haproxy_lb.sh" stop "$lb" >/dev/null 2>&1; done
    [[ -d "$work/redis" ]] && "$support/redis_server.sh" stop "$work/redis" >/dev/null 2>&1
    [[ -d "$work/rgw" ]] && "$support/rgw_server.sh" stop "$work/rgw" >/dev/null 2>&1
    true
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_v2() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/v2/" >/dev/null && return; sleep 0.1; done; exit 1; }

"$support/redis_server.sh" start "$work/redis" >/dev/null
# shellcheck source=/dev/null
source "$work/redis/env"

# storage_yaml KIND ROOT: the storage section's driver part.
storage_yaml() {
    if [[ $1 == s3 ]]; then
        # shellcheck source=/dev/null
        source "$work/rgw/env"
        printf 's3: {regionendpoint: "%s", region: %s, bucket: regfs-bench, accesskey: %s, secretkey: %s, rootdirectory: /%s}\n  redirect: {disable: true}' \
            "$RGW_ENDPOINT" "$RGW_REGION" "$RGW_ACCESS_KEY" "$RGW_SECRET_KEY" "$2"
    else
        printf 'filesystem: {rootdirectory: %s}' "$work/$2"
    fi
}

# start_replica NAME KIND ROOT CACHE(redis|none): starts one; prints its port, PID in NAME.pid.
start_replica() {
    local name=$1 kind=$2 root=$3 cache=$4 p
    p=$(port)
    {
        printf 'version: 0.1\nlog: {level: %s, accesslog: {disabled: true}}\nstorage:\n  %s\n  delete: {enabled: true}\n' "${LOG_LEVEL:-warn}" "$(storage_yaml "$kind" "$root")"
        if [[ $cache == redis ]]; then printf '  cache: {blobdescriptor: redis}\nredis: {addr: "%s"}\n' "$REDIS_ADDR"; fi
        printf 'http: {addr: "127.0.0.1:%s"}\n' "$p"
    } >"$work/$name.yml"
    # The exit status goes to the log too: a server that died mid-run says how.
    ("$regfs" serve "$work/$name.yml" >"$work/$name.log" 2>&1 &
     echo $! >"$work/$name.pid"
     wait $!
     echo "regfs-httpd exited with status $?" >>"$work/$name.log") >/dev/null 2>&1 &
    for _ in $(seq 50); do [[ -s "$work/$name.pid" ]] && break; sleep 0.1; done
    wait_v2 "$p"
    echo "$p"
}

# ab_run LABEL URL_A URL_B PID_B PHASES: one interleaved A/B run; prints the A/B ratios.
ab_run() {
    local label=$1 a=$2 b=$3 pid_b=$4 phases=$5
    python3 "$bench" "$a" --vs "$b" --vs-pid "$pid_b" --phases "$phases" --blob-mib "$blob_mib" \
        --repos 100 --out "$work/$label.json" >"$work/$label.out" 2>&1 || {
        tail -20 "$work/$label.out" >&2
        echo "$label: regbench failed" >&2
        return 1
    }
    python3 - "$label" "$work/$label.json" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
data = json.load(open(path))
def walk(node, prefix=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, prefix + "." + k if prefix else k)
    else:
        yield prefix, node
ratios = {k: v for k, v in walk(data) if k.startswith("ratio_A_over_B.") and k.endswith(".median")}
print(f"== {label}")
for k, v in sorted(ratios.items()):
    print(f"  {k}: {v}")
PY
}

# want RUN: RUNS (comma-separated; default every run) includes RUN.
want() { [[ ",${RUNS:-3lb,3lb-tuned,1lb,redis}," == *",$1,"* ]]; }

run_storage() {
    local kind=$1
    # One replica addressed directly: the baseline of every run on this storage.
    local direct; direct=$(start_replica "$kind-direct" "$kind" "$kind-data" none)
    local r1 r2 r3
    r1=$(start_replica "$kind-r1" "$kind" "$kind-data" redis)
    r2=$(start_replica "$kind-r2" "$kind" "$kind-data" redis)
    r3=$(start_replica "$kind-r3" "$kind" "$kind-data" redis)
    "$support/haproxy_lb.sh" start "$work/lb-$kind-3" "127.0.0.1:$r1" "127.0.0.1:$r2" "127.0.0.1:$r3" >/dev/null
    "$support/haproxy_lb.sh" start "$work/lb-$kind-1" "127.0.0.1:$r1" >/dev/null
    # The same three, with what a production balancer would tune: no request log, backend
    # connections kept alive.
    LB_REQUEST_LOG=0 LB_SERVER_REUSE=1 \
        "$support/haproxy_lb.sh" start "$work/lb-$kind-3r" "127.0.0.1:$r1" "127.0.0.1:$r2" "127.0.0.1:$r3" >/dev/null
    local lb3 lb1 lb3r
    lb3=$(sed -n 's/^LB_ADDR=//p' "$work/lb-$kind-3/env")
    lb3r=$(sed -n 's/^LB_ADDR=//p' "$work/lb-$kind-3r/env")
    lb1=$(sed -n 's/^LB_ADDR=//p' "$work/lb-$kind-1/env")
    local pid_direct; pid_direct=$(cat "$work/$kind-direct.pid")
    local phases=${PHASES:-blobs,manifest,conc}
    want 3lb && ab_run "$kind-3-replicas-lb_vs_direct" "http://$lb3" "http://127.0.0.1:$direct" "$pid_direct" "$phases"
    want 3lb-tuned && ab_run "$kind-3-replicas-tuned-lb_vs_direct" "http://$lb3r" "http://127.0.0.1:$direct" "$pid_direct" manifest,conc
    want 1lb && ab_run "$kind-1-replica-lb_vs_direct" "http://$lb1" "http://127.0.0.1:$direct" "$pid_direct" manifest,conc
    # The cost (or gain) of Redis: the same single replica, with and without the cache.
    want redis && ab_run "$kind-redis_vs_none" "http://127.0.0.1:$r1" "http://127.0.0.1:$direct" "$pid_direct" manifest,conc
    true
}

[[ ${FS:-1} == 0 ]] || run_storage filesystem
if [[ ${S3:-0} == 1 ]]; then
    "$support/rgw_server.sh" start "$work/rgw" >/dev/null
    python3 "$support/s3_bucket.py" "$work/rgw/env" regfs-bench >/dev/null
    run_storage s3
fi
