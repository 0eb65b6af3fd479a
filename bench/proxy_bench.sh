#!/usr/bin/env bash
# The pull-through cache, measured: skopeo pulls of a multi-layer image from Debian's
# docker-registry (registry:2) directly, through regfs the first time (cold: every manifest
# and blob fetched from that upstream while it streams to skopeo), and through regfs again
# (cached). Repetitions interleave the three, each cold pull on a repository regfs has not
# seen; prints the medians and their ratios. Then the servers alone, without skopeo's own
# work: manifest GETs by tag and the layers fetched in parallel, from the upstream and from
# regfs's cache.
#
#   bench/proxy_bench.sh [WORKDIR]     (LAYERS=4, LAYER_BYTES=33554432, REPS=5)
#
# Needs a built build/httpd/regfs-httpd, docker-registry, skopeo, python3 and jq.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/proxy-bench}
layers=${LAYERS:-4}
layer_bytes=${LAYER_BYTES:-33554432}
reps=${REPS:-5}
regfs=$PWD/build/httpd/regfs-httpd
upstream_bin=${REF_REGISTRY:-/usr/bin/docker-registry}
rm -rf "$work" && mkdir -p "$work"
cleanup() {
    kill $(jobs -p) 2>/dev/null || true
    wait 2>/dev/null || true
}
trap cleanup EXIT
[[ -z "${KEEP:-}" ]] || trap - EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_v2() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/v2/" >/dev/null && return; sleep 0.1; done; exit 1; }
sk() { skopeo --insecure-policy --tmpdir "$work" "$@"; }

up=$(port)
cat >"$work/upstream.yml" <<EOF
version: 0.1
log: {level: error, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/upstream-data}}
http: {addr: "127.0.0.1:$up"}
EOF
"$upstream_bin" serve "$work/upstream.yml" >"$work/upstream.log" 2>&1 &
wait_v2 "$up"

proxy=$(port)
cat >"$work/regfs.yml" <<EOF
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $work/regfs-data}}
http: {addr: "127.0.0.1:$proxy"}
proxy: {remoteurl: "http://127.0.0.1:$up", spooldirectory: "$work/spool"}
EOF
"$regfs" serve "$work/regfs.yml" >"$work/regfs.log" 2>&1 &
wait_v2 "$proxy"

python3 tests/e2e/mkoci.py "$work/src" 1 --platforms linux/amd64 --layers "$layers" \
    --size "$layer_bytes" --seed proxy-bench >/dev/null
image_mb=$(du -sm "$work/src/blobs" | cut -f1)
for i in $(seq "$reps"); do
    sk copy --dest-tls-verify=false "oci:$work/src:1" "docker://127.0.0.1:$up/bench/cold-$i:1" >/dev/null
done
echo "image: $layers layers of $layer_bytes bytes (${image_mb} MB) on registry:2 at 127.0.0.1:$up"

# pull REF: seconds of one skopeo pull of REF into a fresh directory.
pull() {
    local dest="$work/pulled" start end
    rm -rf "$dest"
    start=$(date +%s.%N)
    sk copy --src-tls-verify=false "docker://$1" "dir:$dest" >/dev/null
    end=$(date +%s.%N)
    python3 -c "print(f'{$end - $start:.3f}')"
}

: >"$work/times.txt"
for i in $(seq "$reps"); do
    direct=$(pull "127.0.0.1:$up/bench/cold-$i:1")
    cold=$(pull "127.0.0.1:$proxy/bench/cold-$i:1")
    cached=$(pull "127.0.0.1:$proxy/bench/cold-$i:1")
    echo "$direct $cold $cached" >>"$work/times.txt"
    echo "rep $i: upstream directly ${direct}s, through regfs cold ${cold}s, cached ${cached}s"
done
python3 - "$work/times.txt" "$image_mb" <<'PY'
import statistics, sys
rows = [list(map(float, line.split())) for line in open(sys.argv[1])]
mb = float(sys.argv[2])
direct, cold, cached = (statistics.median(col) for col in zip(*rows))
print(f"median: upstream directly {direct:.3f}s ({mb / direct:.0f} MB/s), "
      f"through regfs cold {cold:.3f}s ({mb / cold:.0f} MB/s), cached {cached:.3f}s ({mb / cached:.0f} MB/s)")
print(f"ratios: cached/direct {cached / direct:.2f}, cold/direct {cold / direct:.2f}")
PY

python3 - "$up" "$proxy" <<'PY'
import http.client, json, statistics, sys, threading, time
up, proxy = sys.argv[1], sys.argv[2]
accept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"
def get(port, path, headers={}):
    c = http.client.HTTPConnection("127.0.0.1", int(port))
    c.request("GET", path, headers=headers)
    r = c.getresponse()
    body = b""
    while chunk := r.read(1 << 20):
        if len(body) < 1 << 20: body += chunk
    return body
manifest = json.loads(get(up, "/v2/bench/cold-1/manifests/1", {"Accept": accept}))
layers = [l["digest"] for l in manifest["layers"]]
def manifests(port, n=300):
    c = http.client.HTTPConnection("127.0.0.1", int(port))
    start = time.perf_counter()
    for _ in range(n):
        c.request("GET", "/v2/bench/cold-1/manifests/1", headers={"Accept": accept})
        c.getresponse().read()
    return (time.perf_counter() - start) / n * 1000
def parallel_layers(port):
    start = time.perf_counter()
    threads = [threading.Thread(target=get, args=(port, "/v2/bench/cold-1/blobs/" + d)) for d in layers]
    for t in threads: t.start()
    for t in threads: t.join()
    return (time.perf_counter() - start) * 1000
m = {up: [], proxy: []}
b = {up: [], proxy: []}
for _ in range(5):
    for port in (up, proxy):
        m[port].append(manifests(port))
        b[port].append(parallel_layers(port))
mu, mp = statistics.median(m[up]), statistics.median(m[proxy])
bu, bp = statistics.median(b[up]), statistics.median(b[proxy])
print(f"servers alone: manifest GET by tag {mu:.3f} ms upstream, {mp:.3f} ms cached in regfs (ratio {mp / mu:.2f}); "
      f"{len(layers)} layers in parallel {bu:.1f} ms upstream, {bp:.1f} ms cached (ratio {bp / bu:.2f})")
PY
