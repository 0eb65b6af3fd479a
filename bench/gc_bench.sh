#!/usr/bin/env bash
# Garbage collection, measured: regfs-httpd garbage-collect against registry:2's (Debian's
# docker-registry) on identical copies of one data directory of REPOS x TAGS images, half of
# them deleted (bench/populate.py --garbage): wall time and peak memory of a dry run and of
# a real run of each. Then the time of a skopeo push while regfs collects over and over on
# the same storage, against the same push with no collection running.
#
#   bench/gc_bench.sh [WORKDIR]     (REPOS=1000 TAGS=10 PUSHES=10 by default)
#
# Needs a built build/httpd/regfs-httpd, docker-registry, skopeo and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-/tmp/gc-bench}
repos=${REPOS:-1000}
tags=${TAGS:-10}
pushes=${PUSHES:-10}
regfs=$PWD/build/httpd/regfs-httpd
rm -rf "$work" && mkdir -p "$work"
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
config() {  # config ROOT PORT
    printf 'version: 0.1\nlog: {level: warn, accesslog: {disabled: true}}\nstorage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\nhttp: {addr: 127.0.0.1:%s}\n' "$1" "$2"
}
wait_v2() { for _ in $(seq 100); do curl -sf "http://127.0.0.1:$1/v2/" >/dev/null && return; sleep 0.1; done; exit 1; }
# measure LABEL CMD...: wall seconds and the peak resident memory of CMD, output discarded.
measure() {
    local label=$1
    shift
    python3 - "$label" "$@" <<'EOF'
import resource, subprocess, sys, time
start = time.monotonic()
rc = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
took = time.monotonic() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{sys.argv[1]:<34} {took:8.2f} s {peak:8.1f} MiB  exit {rc}")
EOF
}

p=$(port)
config "$work/a/data" "$p" >"$work/a.yml"
mkdir -p "$work/a"
"$regfs" serve "$work/a.yml" 2>"$work/a.log" &
pid=$!
wait_v2 "$p"
echo "populating $repos repositories x $tags tags (half deleted) ..."
python3 bench/populate.py "http://127.0.0.1:$p" --repos "$repos" --tags "$tags" --garbage
kill "$pid" && wait "$pid" || true
mkdir -p "$work/ref"
cp -a "$work/a/data" "$work/ref/data"
config "$work/ref/data" "$p" >"$work/ref.yml"
echo "blobs: $(find "$work/a/data/docker/registry/v2/blobs" -name data | wc -l)"

measure "registry:2 garbage-collect --dry-run" docker-registry garbage-collect --dry-run "$work/ref.yml"
measure "regfs garbage-collect --dry-run" "$regfs" garbage-collect --dry-run --grace 0s "$work/a.yml"
measure "registry:2 garbage-collect" docker-registry garbage-collect "$work/ref.yml"
measure "regfs garbage-collect" "$regfs" garbage-collect --grace 0s "$work/a.yml"
echo "blobs left: regfs $(find "$work/a/data/docker/registry/v2/blobs" -name data | wc -l)," \
    "registry:2 $(find "$work/ref/data/docker/registry/v2/blobs" -name data | wc -l)"

# Push latency with and without a collection running on the same storage.
"$regfs" serve "$work/a.yml" 2>"$work/a.log" &
pid=$!
wait_v2 "$p"
python3 tests/e2e/mkoci.py "$work/oci" img --layers 3 --size 2000000 --seed gcbench >/dev/null
push_times() {  # push_times LABEL: PUSHES pushes to new repositories, median seconds
    local label=$1 i t all=()
    for i in $(seq "$pushes"); do
        t=$(python3 - "$work" "$p" "$(tr -c 'a-z0-9\n' - <<<"$label")-$i" <<'EOF'
import subprocess, sys, time
work, port, name = sys.argv[1:]
start = time.monotonic()
subprocess.run(["skopeo", "--insecure-policy", "copy", "--all", "--dest-tls-verify=false",
                f"oci:{work}/oci:img", f"docker://127.0.0.1:{port}/push/{name}:1"],
               check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(f"{time.monotonic() - start:.3f}")
EOF
)
        all+=("$t")
    done
    printf '%s\n' "${all[@]}" | sort -n | awk -v l="$label" '{a[NR]=$1} END {printf "push %-28s median %.3f s (min %.3f, max %.3f)\n", l, a[int((NR+1)/2)], a[1], a[NR]}'
}
push_times "without a collection"
(while [[ ! -e "$work/stop" ]]; do "$regfs" garbage-collect --quiet "$work/a.yml" >/dev/null 2>&1 || true; done) &
loop=$!
push_times "while collecting (grace 1h)"
touch "$work/stop"
wait "$loop" || true
kill "$pid" && wait "$pid" || true
