#!/usr/bin/env bash
# The S3 storage driver against a real S3 (a throwaway Ceph RGW this script starts), and
# registry:2 (Debian's docker-registry, CNCF Distribution 2.8, with its s3 driver) on the
# same bucket and rootdirectory:
#   A. regfs on the bucket, blob GETs redirected (the default): skopeo push/pull of single-
#      arch, multi-arch and >12 MiB-layer images (multipart uploads of several parts), 307
#      to a presigned RGW URL (followed: right bytes; tampered: refused), HEAD, cross-repo
#      mount, OCI chunked uploads with curl, docker build/push/pull with the private dockerd
#      (which follows the redirect to RGW);
#   B. registry:2 reads everything regfs wrote;
#   C. registry:2 writes, regfs reads it, writes into registry:2's repositories, deletes a
#      manifest and a tag; catalog and tags show both registries' content;
#   D. kill -9 of regfs while skopeo pushes (3 cycles, random delays): acknowledged pushes
#      survive intact, catalog and tags answer, cut-off pushes succeed when redone;
#   E. registry:2 reads the final state, deletions and crash-phase pushes included.
# registry:2's on-disk layout (layoutcheck.py) is not checked: it reads a directory, not a
# bucket; phases B and E check the layout the way that matters, by registry:2 reading it.
#
# Needs root (Ceph daemons, dockerd), ceph-mon, ceph-osd, radosgw, docker-registry, skopeo,
# docker.io, curl, jq, python3. E2E_CRASH_SEED repeats phase D's data and kill delays,
# E2E_CRASH_CYCLES (default 3) sets its number of kills; E2E_KEEP_TMP=1 also keeps RGW's log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_cmds skopeo curl jq python3 sha256sum timeout tar stat ceph-mon ceph-osd radosgw
require_root
BIN=$(registry_bin)
REF_REGISTRY=${REF_REGISTRY:-/usr/bin/docker-registry}
[[ -x "$REF_REGISTRY" ]] || fail "reference registry $REF_REGISTRY not found (Debian package docker-registry)"
SUPPORT=$(cd "$E2E_DIR/../support" && pwd)
SRC="$TEST_TMP/src"
BUCKET=regfs-e2e
ROOTDIR=/registry
MANIFEST_OCI=application/vnd.oci.image.manifest.v1+json
SEED=${E2E_CRASH_SEED:-$(date +%s)}
RANDOM=$SEED
log "random seed $SEED (E2E_CRASH_SEED=$SEED repeats the crash phase's data and kill delays)"

# ------------------------------------------------------------------ the object store

step "start a Ceph RGW and create bucket $BUCKET"
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
# Registries go before the store they use (cleanups run last-registered first).
on_exit _e2e_stop_all_registries
"$SUPPORT/rgw_server.sh" start "$RGW_DIR" >"$TEST_TMP/rgw-start.log" 2>&1 || {
    cat "$TEST_TMP/rgw-start.log" >&2
    fail "rgw_server.sh start $RGW_DIR failed"
}
RGW_LOG="$RGW_DIR/log/client.rgw.a.log"
_E2E_LOGS+=("$RGW_LOG")
# shellcheck source=/dev/null
source "$RGW_DIR/env"
"$PYTHON" "$SUPPORT/s3_bucket.py" "$RGW_DIR/env" "$BUCKET"
ok "RGW at $RGW_ENDPOINT, bucket $BUCKET"

# rgw_requests ERE: how many requests RGW's access log (beast lines) has that match ERE
# (the request line, the referer and the user agent are on that line).
rgw_requests() { grep -c -E -- "beast: .*$1" "$RGW_LOG" || true; }

# ------------------------------------------------------------------ registries on the bucket

REGFS_PORT=$(free_port)
R2_PORT=$(free_port)
SEQ=0

# write_s3_config FILE PORT [STORAGE_EXTRA_YAML]: a config.yml for the bucket, deletes on.
write_s3_config() {
    cat >"$1" <<EOF
version: 0.1
log:
  level: info
storage:
  s3:
    accesskey: $RGW_ACCESS_KEY
    secretkey: $RGW_SECRET_KEY
    region: $RGW_REGION
    regionendpoint: $RGW_ENDPOINT
    bucket: $BUCKET
    rootdirectory: $ROOTDIR
    secure: false
    v4auth: true
  delete:
    enabled: true
${3:-}
http:
  addr: 127.0.0.1:$2
EOF
}

# start_regfs: the registry under test on the bucket, port REGFS_PORT, redirects on.
start_regfs() {
    SEQ=$((SEQ + 1))
    local cfg="$TEST_TMP/regfs-$SEQ.yml"
    write_s3_config "$cfg" "$REGFS_PORT"
    REGISTRY_URL="http://127.0.0.1:$REGFS_PORT"
    serve_registry "$BIN" "$cfg" "$TEST_TMP/regfs-$SEQ.log" "regfs #$SEQ (s3, $REGISTRY_URL)" \
        v2_answers 200 "$REGISTRY_URL"
}

# start_r2: registry:2 on the bucket, port R2_PORT, redirects off. Without AWS_CA_BUNDLE:
# 2.8.2 panics at start when it is set ("HTTPClient's transport unsupported type").
start_r2() {
    SEQ=$((SEQ + 1))
    local cfg="$TEST_TMP/registry2-$SEQ.yml"
    write_s3_config "$cfg" "$R2_PORT" "  redirect:
    disable: true"
    REGISTRY_URL="http://127.0.0.1:$R2_PORT"
    local had_ca=${AWS_CA_BUNDLE+x} ca=${AWS_CA_BUNDLE:-}
    unset AWS_CA_BUNDLE
    serve_registry "$REF_REGISTRY" "$cfg" "$TEST_TMP/registry2-$SEQ.log" \
        "registry:2 #$SEQ (s3, $REGISTRY_URL)" v2_answers 200 "$REGISTRY_URL"
    [[ -z "$had_ca" ]] || export AWS_CA_BUNDLE="$ca"
}

# ------------------------------------------------------------------ helpers


# abs_url URL: a Location made absolute on the current registry
abs_url() {
    [[ -n "$1" ]] || fail "no Location header: $(last_response)"
    if [[ "$1" == http* ]]; then printf '%s\n' "$1"; else printf '%s%s\n' "$REGISTRY_URL" "$1"; fi
}
with_digest() { # URL DIGEST
    if [[ "$1" == *\?* ]]; then printf '%s&digest=%s\n' "$1" "$2"; else printf '%s?digest=%s\n' "$1" "$2"; fi
}

# monolithic_upload REPO FILE: POST + PUT ?digest= with the whole body
monolithic_upload() {
    local digest loc
    digest="sha256:$(sha256_of "$2")"
    expect_http "POST upload to $1" 202 http_req -X POST "$REGISTRY_URL/v2/$1/blobs/uploads/"
    loc=$(abs_url "$(header_of Location)")
    expect_http "PUT $(basename "$2") ($digest) in one request" 201 http_req -X PUT \
        -H 'Content-Type: application/octet-stream' --data-binary @"$2" "$(with_digest "$loc" "$digest")"
}

# chunked_upload REPO FILE SIZE...: the OCI chunked flow with curl: POST, one PATCH with
# Content-Range per SIZE and one with the rest, GET of the upload's status, PUT ?digest=.
chunked_upload() {
    local repo=$1 file=$2 total off=0 len end loc digest n=0
    shift 2
    total=$(stat -c %s "$file")
    digest="sha256:$(sha256_of "$file")"
    expect_http "POST upload to $repo" 202 http_req -X POST "$REGISTRY_URL/v2/$repo/blobs/uploads/"
    loc=$(abs_url "$(header_of Location)")
    while ((off < total)); do
        n=$((n + 1))
        len=$((total - off))
        if (($# > 0)); then
            len=$1
            shift
        fi
        end=$((off + len - 1))
        dd if="$file" of="$TEST_TMP/chunk.bin" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$len" status=none
        expect_http "PATCH chunk $n: bytes $off-$end ($len)" 202 http_req -X PATCH \
            -H 'Content-Type: application/octet-stream' -H "Content-Range: $off-$end" \
            --data-binary @"$TEST_TMP/chunk.bin" "$loc"
        expect_eq "Range after chunk $n" "0-$end" "$(header_of Range)"
        loc=$(abs_url "$(header_of Location)")
        off=$((end + 1))
    done
    expect_http "GET upload status" 204 http_req "$loc"
    expect_eq "Range of the upload" "0-$((total - 1))" "$(header_of Range)"
    expect_http "PUT ?digest=$digest (no body)" 201 http_req -X PUT "$(with_digest "$loc" "$digest")"
    expect_eq "Docker-Content-Digest of the finished upload" "$digest" "$(header_of Docker-Content-Digest)"
}

# check_blob REPO DIGEST SIZE: HEAD 200 with the size; GET (redirects followed) hashes right
check_blob() {
    expect_http "HEAD $1 blob ${2:7:12}" 200 http_req -I "$REGISTRY_URL/v2/$1/blobs/$2"
    expect_eq "Content-Length of HEAD ${2:7:12}" "$3" "$(header_of Content-Length)"
    expect_eq "Docker-Content-Digest of HEAD ${2:7:12}" "$2" "$(header_of Docker-Content-Digest)"
    curl -sSfL --max-time 60 -o "$TEST_TMP/blob.out" "$REGISTRY_URL/v2/$1/blobs/$2" ||
        fail "GET $1 blob $2 (curl -L) failed"
    expect_eq "sha256 of GET ${2:7:12}, redirect followed" "$2" "sha256:$(sha256_of "$TEST_TMP/blob.out")"
    expect_eq "size of GET ${2:7:12}" "$3" "$(stat -c %s "$TEST_TMP/blob.out")"
}

# add_to_layout TAG MANIFEST_FILE FILE...: FILEs (and the manifest) as blobs of SRC, the
# manifest tagged TAG in SRC/index.json (mkoci keeps entries of other tags).
add_to_layout() {
    local tag=$1 manifest=$2 f h
    shift 2
    for f in "$manifest" "$@"; do
        h=$(sha256_of "$f")
        cp "$f" "$SRC/blobs/sha256/$h"
    done
    h=$(sha256_of "$manifest")
    jq --arg t "$tag" --arg d "sha256:$h" --argjson s "$(stat -c %s "$manifest")" --arg m "$MANIFEST_OCI" \
        '.manifests = [.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] != $t)]
         + [{mediaType: $m, digest: $d, size: $s, annotations: {"org.opencontainers.image.ref.name": $t}}]' \
        "$SRC/index.json" >"$SRC/index.json.new"
    mv "$SRC/index.json.new" "$SRC/index.json"
}

# layer_of LAYOUT DIGEST N: digest of layer N of the image manifest DIGEST
layer_of() { jq -r ".layers[$3].digest" "$1/blobs/sha256/${2#sha256:}"; }
# size_of LAYOUT DIGEST: size of a blob in the layout
size_of() { stat -c %s "$1/blobs/sha256/${2#sha256:}"; }

declare -A EXPECT=() # repo:tag -> digest of everything that must be in the registry
# expect_all_args: --expect REPO:TAG=DIGEST for regcheck, one per EXPECT entry, in ARGS
expect_all_args() {
    local ref
    ARGS=()
    for ref in "${!EXPECT[@]}"; do ARGS+=(--expect "$ref=${EXPECT[$ref]}"); done
}
# expect_repo_args REPO...: the same for the entries of these repositories only (+ --repo)
expect_repo_args() {
    local ref r
    ARGS=()
    for r in "$@"; do
        ARGS+=(--repo "$r")
        for ref in "${!EXPECT[@]}"; do
            [[ "${ref%:*}" != "$r" ]] || ARGS+=(--expect "$ref=${EXPECT[$ref]}")
        done
    done
}

# ================================================================== phase A

step "phase A: generate images"
dA=$(mkoci "$SRC" alpha --layers 2 --size 300000 --seed alpha)
dM=$(mkoci "$SRC" multi --platforms linux/amd64,linux/arm64 --layers 2 --size 200000 --seed multi)
# One gzip'ed layer of 13 MiB of random bytes: above the 10 MiB part size, two parts.
dBig=$(mkoci "$SRC" big --layers 1 --size $((13 << 20)) --seed big)
BIGL=$(layer_of "$SRC" "$dBig" 0)
BIGL_SIZE=$(size_of "$SRC" "$BIGL")
log "alpha $dA, multi $dM (index), big $dBig (layer $BIGL, $BIGL_SIZE bytes)"
((BIGL_SIZE > 12 << 20)) || fail "the big layer is only $BIGL_SIZE bytes"

# The chunked-upload image: an uncompressed tar layer of 11 MiB of random bytes.
CH="$TEST_TMP/chunked"
mkdir -p "$CH/content"
"$PYTHON" -c 'import random, sys; sys.stdout.buffer.write(random.Random(sys.argv[1]).randbytes(11 << 20))' \
    "$SEED-chunked" >"$CH/content/payload.bin"
tar -C "$CH/content" --mtime=@1700000000 --owner=0 --group=0 -cf "$CH/layer.tar" payload.bin
CHL="sha256:$(sha256_of "$CH/layer.tar")"
CHL_SIZE=$(stat -c %s "$CH/layer.tar")
printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]},"config":{"Env":["SEED=%s"]}}' \
    "$CHL" "$SEED" >"$CH/config.json"
printf '{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}' \
    "$MANIFEST_OCI" "$(sha256_of "$CH/config.json")" "$(stat -c %s "$CH/config.json")" "$CHL" "$CHL_SIZE" \
    >"$CH/manifest.json"
dCh="sha256:$(sha256_of "$CH/manifest.json")"
add_to_layout chunked "$CH/manifest.json" "$CH/config.json" "$CH/layer.tar"
# A second blob for chunks below S3's 5 MiB minimum part size (the next chunk re-sends them).
"$PYTHON" -c 'import random, sys; sys.stdout.buffer.write(random.Random(sys.argv[1]).randbytes(9 << 20))' \
    "$SEED-small-chunks" >"$CH/small-chunks.bin"
SMALL="sha256:$(sha256_of "$CH/small-chunks.bin")"

step "phase A: regfs on the bucket (redirects on), skopeo push and pull"
start_regfs
grep -q "storage s3:$RGW_ENDPOINT/$BUCKET under $ROOTDIR/" "$REGISTRY_LOG" ||
    fail "regfs does not say it serves s3:$RGW_ENDPOINT/$BUCKET under $ROOTDIR/: $(grep listening "$REGISTRY_LOG")"
ok "regfs serves $(sed -n 's/.*storage \(s3:[^,"]*\).*/\1/p' "$REGISTRY_LOG" | head -n1)"
REG="127.0.0.1:$REGFS_PORT"
for ref in "s3/alpha:1 alpha $dA" "s3/multi:1 multi $dM" "s3/big:1 big $dBig"; do
    read -r r tag d <<<"$ref"
    push_oci "$SRC" "$tag" "$REG/$r"
    ok "pushed $r ($tag)"
    EXPECT[$r]=$d
done
nparts=$(rgw_requests "\"PUT /$BUCKET${ROOTDIR}/docker/registry/v2/repositories/s3/big/_uploads/[^/ ]+/data\?partNumber=2&")
((nparts >= 1)) || fail "RGW saw no part 2 of a multipart upload for s3/big"
ok "the big layer went up as a multipart upload of several parts ($nparts part-2 PUTs seen by RGW)"
for ref in "s3/alpha:1 $dA" "s3/multi:1 $dM" "s3/big:1 $dBig" "s3/multi@$dM $dM"; do
    read -r r d <<<"$ref"
    verify_pull "$REG/$r" "$d"
done
expect_eq "tags of s3/multi" "1" "$(tags_of s3/multi)"

step "phase A: blob GET redirects to a presigned RGW URL"
expect_http "GET s3/big blob, redirect not followed" 307 http_req "$REGISTRY_URL/v2/s3/big/blobs/$BIGL"
loc=$(header_of Location)
h=${BIGL#sha256:}
want_loc="$RGW_ENDPOINT/$BUCKET${ROOTDIR}/docker/registry/v2/blobs/sha256/${h:0:2}/$h/data?"
[[ "$loc" == "$want_loc"* ]] || fail "Location is '$loc', expected it to start with '$want_loc'"
[[ "$loc" == *X-Amz-Signature=* ]] || fail "Location is not a presigned URL: $loc"
ok "Location: ${loc%%\?*}?...(presigned)"
expect_eq "Docker-Content-Digest of the 307" "$BIGL" "$(header_of Docker-Content-Digest)"
curl -sSf --max-time 60 -o "$TEST_TMP/direct.bin" "$loc" || fail "GET of the presigned URL failed"
expect_eq "sha256 of the presigned URL's body" "$BIGL" "sha256:$(sha256_of "$TEST_TMP/direct.bin")"
check_blob s3/big "$BIGL" "$BIGL_SIZE"
sig_re='X-Amz-Signature=([0-9a-f])'
[[ "$loc" =~ $sig_re ]] || fail "no X-Amz-Signature in $loc"
flip=0
[[ "${BASH_REMATCH[1]}" != 0 ]] || flip=1
expect_http "presigned URL with a tampered signature" 403 http_req "${loc/X-Amz-Signature=${BASH_REMATCH[1]}/X-Amz-Signature=$flip}"
expect_http "GET of an unknown blob (no redirect)" 404 http_req \
    "$REGISTRY_URL/v2/s3/big/blobs/sha256:$(printf 'nothing' | sha256sum | cut -d' ' -f1)"
expect_error_body "GET of an unknown blob" BLOB_UNKNOWN
expect_http "GET of s3/big's layer through s3/alpha (not linked there)" 404 http_req \
    "$REGISTRY_URL/v2/s3/alpha/blobs/$BIGL"

step "phase A: cross-repository mount, then a push that finds the blob there"
AL0=$(layer_of "$SRC" "$dA" 0)
expect_http "mount $AL0 from s3/alpha into s3/mounted" 201 http_req -X POST \
    "$REGISTRY_URL/v2/s3/mounted/blobs/uploads/?mount=$AL0&from=s3/alpha"
check_blob s3/mounted "$AL0" "$(size_of "$SRC" "$AL0")"
push_oci "$SRC" alpha "$REG/s3/mounted:1"
EXPECT[s3/mounted:1]=$dA
verify_pull "$REG/s3/mounted:1" "$dA"

step "phase A: OCI chunked uploads with curl"
chunked_upload s3/chunked "$CH/layer.tar" $((6 << 20))
check_blob s3/chunked "$CHL" "$CHL_SIZE"
monolithic_upload s3/chunked "$CH/config.json"
expect_http "PUT manifest s3/chunked:1" 201 http_req -X PUT -H "Content-Type: $MANIFEST_OCI" \
    --data-binary @"$CH/manifest.json" "$REGISTRY_URL/v2/s3/chunked/manifests/1"
expect_eq "Docker-Content-Digest of the manifest PUT" "$dCh" "$(header_of Docker-Content-Digest)"
EXPECT[s3/chunked:1]=$dCh
verify_pull "$REG/s3/chunked:1" "$dCh"
chunked_upload s3/chunked "$CH/small-chunks.bin" $((1 << 20)) $((3 << 20))
check_blob s3/chunked "$SMALL" "$(stat -c %s "$CH/small-chunks.bin")"

step "phase A: docker build (FROM scratch + COPY), push, rmi, pull with the private dockerd"
start_dockerd
ctx="$TEST_TMP/ctx"
mkdir -p "$ctx"
head -c 3000000 /dev/urandom >"$ctx/payload.bin"
printf 'hello from regfs on s3\n' >"$ctx/hello.txt"
printf 'FROM scratch\nCOPY payload.bin /data/payload.bin\nCOPY hello.txt /hello.txt\n' >"$ctx/Dockerfile"
IMG="$REG/s3/docker"
DOCKER_BUILDKIT=0 docker build -q -t "$IMG:v1" "$ctx" >/dev/null 2>"$TEST_TMP/build.err" || {
    cat "$TEST_TMP/build.err" >&2
    fail "docker build failed"
}
image_id=$(docker image inspect -f '{{.Id}}' "$IMG:v1")
layers=$(docker image inspect -f '{{json .RootFS.Layers}}' "$IMG:v1")
dDock=$(docker_push "$IMG:v1")
ok "docker push $IMG:v1 -> $dDock"
EXPECT[s3/docker:v1]=$dDock
regcheck "$REGISTRY_URL" --repo s3/docker --expect "s3/docker:v1=$dDock" || fail "registry content check of s3/docker failed"
docker rmi -f "$IMG:v1" >/dev/null
[[ -z "$(docker image ls -aq)" ]] || fail "images still present after rmi: $(docker image ls -a)"
rgw_before=$(rgw_requests 'X-Amz-Signature=.*"docker/')
docker_pull "$IMG:v1"
expect_eq "image ID after pull" "$image_id" "$(docker image inspect -f '{{.Id}}' "$IMG:v1")"
expect_eq "layer diff IDs after pull" "$layers" "$(docker image inspect -f '{{json .RootFS.Layers}}' "$IMG:v1")"
n307=$(grep -c -E 'method=GET uri=/v2/s3/docker/blobs/sha256:[0-9a-f]{64} status=307 .*user_agent="?docker/' "$REGISTRY_LOG" || true)
ndirect=$(($(rgw_requests 'X-Amz-Signature=.*"docker/') - rgw_before))
((n307 >= 3 && ndirect >= 3)) ||
    fail "docker pull: $n307 blob GETs answered 307 by regfs, $ndirect presigned GETs by docker at RGW (want >= 3 each: config + 2 layers)"
ok "dockerd followed the redirects: $n307 blob GETs answered 307, $ndirect presigned GETs by docker at RGW"
cid=$(docker create --network none "$IMG:v1" /does-not-run)
docker export "$cid" >"$TEST_TMP/rootfs.tar"
docker rm "$cid" >/dev/null
mkdir "$TEST_TMP/rootfs"
tar -C "$TEST_TMP/rootfs" -xf "$TEST_TMP/rootfs.tar"
cmp -s "$ctx/payload.bin" "$TEST_TMP/rootfs/data/payload.bin" || fail "/data/payload.bin differs after the pull"
cmp -s "$ctx/hello.txt" "$TEST_TMP/rootfs/hello.txt" || fail "/hello.txt differs after the pull"
ok "file contents identical after docker pull"

expect_eq "catalog" "s3/alpha s3/big s3/chunked s3/docker s3/mounted s3/multi" "$(catalog)"
stop_registry

# ================================================================== phase B

step "phase B: registry:2 ($REF_REGISTRY) on the same bucket reads what regfs wrote"
start_r2
REG="127.0.0.1:$R2_PORT"
expect_eq "catalog" "s3/alpha s3/big s3/chunked s3/docker s3/mounted s3/multi" "$(catalog)"
expect_eq "tags of s3/docker" "v1" "$(tags_of s3/docker)"
for ref in "s3/alpha:1 $dA" "s3/multi:1 $dM" "s3/big:1 $dBig" "s3/chunked:1 $dCh" "s3/mounted:1 $dA"; do
    read -r r d <<<"$ref"
    verify_pull "$REG/$r" "$d"
done
# docker's schema2 image does not convert to OCI with its digest kept: skopeo copies it to
# a dir: layout as it is, and regcheck walks it.
sk copy --src-tls-verify=false "docker://$REG/s3/docker:v1" "dir:$TEST_TMP/docker-dir" >"$TEST_TMP/skopeo.out" 2>&1 || {
    cat "$TEST_TMP/skopeo.out" >&2
    fail "skopeo copy docker://$REG/s3/docker:v1 -> dir: failed"
}
expect_eq "digest of s3/docker:v1 pulled with skopeo" "$dDock" "sha256:$(sha256_of "$TEST_TMP/docker-dir/manifest.json")"
for f in $(jq -r '.config.digest, .layers[].digest' "$TEST_TMP/docker-dir/manifest.json"); do
    [[ "$(sha256_of "$TEST_TMP/docker-dir/${f#sha256:}")" == "${f#sha256:}" ]] ||
        fail "blob $f of s3/docker:v1 pulled through registry:2 does not hash to its name"
done
ok "s3/docker:v1 (docker schema2) pulled with skopeo: manifest and blobs intact"
regcheck "$REGISTRY_URL" --repo s3/docker --expect "s3/docker:v1=$dDock" ||
    fail "registry:2's walk of docker's image failed"
ok "registry:2 serves every image regfs wrote (docker's included)"
expect_http "registry:2: s3/chunked's second chunked blob" 200 http_req -I "$REGISTRY_URL/v2/s3/chunked/blobs/$SMALL"
log "layoutcheck.py skipped: it reads a directory tree, the layout here is in a bucket"

# ================================================================== phase C

step "phase C: registry:2 writes r2/gamma:1, r2/delta:1 (index) and s3/alpha:2"
dG=$(mkoci "$SRC" gamma --layers 2 --size 250000 --seed gamma)
dD=$(mkoci "$SRC" delta --platforms linux/amd64,linux/arm64 --layers 2 --size 120000 --seed delta)
dE=$(mkoci "$SRC" epsilon --layers 1 --size 150000 --seed epsilon)
dZ=$(mkoci "$SRC" zeta --layers 2 --size 100000 --seed zeta)
push_oci "$SRC" gamma "$REG/r2/gamma:1"
push_oci "$SRC" delta "$REG/r2/delta:1"
push_oci "$SRC" epsilon "$REG/s3/alpha:2"
push_oci "$SRC" epsilon "$REG/r2/delta:eps"
EXPECT[r2/gamma:1]=$dG
EXPECT[r2/delta:1]=$dD
EXPECT[r2/delta:eps]=$dE
EXPECT[s3/alpha:2]=$dE
expect_eq "tags of s3/alpha on registry:2" "1 2" "$(tags_of s3/alpha)"
stop_registry

step "phase C: regfs reads what registry:2 wrote"
start_regfs
REG="127.0.0.1:$REGFS_PORT"
CATALOG_ALL="r2/delta r2/gamma s3/alpha s3/big s3/chunked s3/docker s3/mounted s3/multi"
expect_eq "catalog" "$CATALOG_ALL" "$(catalog)"
expect_eq "tags of s3/alpha" "1 2" "$(tags_of s3/alpha)"
expect_eq "tags of r2/delta" "1 eps" "$(tags_of r2/delta)"
for ref in "r2/gamma:1 $dG" "r2/delta:1 $dD" "s3/alpha:2 $dE" "r2/delta@$dD $dD" "s3/alpha:1 $dA"; do
    read -r r d <<<"$ref"
    verify_pull "$REG/$r" "$d"
done
push_oci "$SRC" zeta "$REG/r2/gamma:2"
EXPECT[r2/gamma:2]=$dZ
verify_pull "$REG/r2/gamma:2" "$dZ"
expect_eq "tags of r2/gamma" "1 2" "$(tags_of r2/gamma)"

step "phase C: deletes through regfs"
expect_http "DELETE s3/alpha@$dE (pushed by registry:2)" 202 http_req -X DELETE "$REGISTRY_URL/v2/s3/alpha/manifests/$dE"
unset 'EXPECT[s3/alpha:2]'
expect_eq "tags of s3/alpha after the delete" "1" "$(tags_of s3/alpha)"
expect_http "GET s3/alpha@$dE after the delete" 404 http_req -H "Accept: $MANIFEST_ACCEPT" "$REGISTRY_URL/v2/s3/alpha/manifests/$dE"
expect_error_body "GET of the deleted manifest" MANIFEST_UNKNOWN
expect_http "GET s3/alpha:1 still" 200 http_req -H "Accept: $MANIFEST_ACCEPT" "$REGISTRY_URL/v2/s3/alpha/manifests/1"
expect_http "r2/delta@$dE (same manifest, other repository) still" 200 http_req -H "Accept: $MANIFEST_ACCEPT" \
    "$REGISTRY_URL/v2/r2/delta/manifests/$dE"
expect_http "DELETE tag r2/delta:eps" 202 http_req -X DELETE "$REGISTRY_URL/v2/r2/delta/manifests/eps"
unset 'EXPECT[r2/delta:eps]'
expect_eq "tags of r2/delta after the tag delete" "1" "$(tags_of r2/delta)"
expect_http "GET r2/delta:eps after the delete" 404 http_req -H "Accept: $MANIFEST_ACCEPT" "$REGISTRY_URL/v2/r2/delta/manifests/eps"
expect_eq "catalog after the deletes" "$CATALOG_ALL" "$(catalog)"
expect_all_args
regcheck "$REGISTRY_URL" "${ARGS[@]}" || fail "regfs's walk of the bucket failed"
ok "regfs serves every tag, manifest and blob of both registries"
stop_registry

# ================================================================== phase D

CYCLES=${E2E_CRASH_CYCLES:-3}

# skopeo_worker (lib.sh) pushes here; a push may wait out a dead process's lease.
WORKER_REGISTRY="127.0.0.1:$REGFS_PORT"
WORKER_TIMEOUT=60
_stop_workers() { stop_workers 65; }
on_exit _stop_workers

CRASH_REPOS=(crash/big crash/multi crash/shared)
total_done=0 total_cut=0
for cycle in $(seq 1 "$CYCLES"); do
    step "phase D, cycle $cycle/$CYCLES: skopeo pushes (a 13 MiB layer, an index, two sharing a layer), then kill -9"
    declare -A IMG_DIGEST=() WREPO=() WIMG=()
    IMG_DIGEST[w1]=$(mkoci "$SRC" "c$cycle-w1" --layers 1 --size $((13 << 20)) --seed "$SEED-$cycle-1")
    IMG_DIGEST[w2]=$(mkoci "$SRC" "c$cycle-w2" --platforms linux/amd64,linux/arm64 --layers 2 \
        --size 400000 --seed "$SEED-$cycle-2")
    IMG_DIGEST[w3]=$(mkoci "$SRC" "c$cycle-w3" --layers 2 --size 1500000 --seed "$SEED-$cycle-3" \
        --shared-layer "$SEED-$cycle")
    IMG_DIGEST[w4]=$(mkoci "$SRC" "c$cycle-w4" --layers 2 --size 1500000 --seed "$SEED-$cycle-4" \
        --shared-layer "$SEED-$cycle")
    WREPO=([w1]=crash/big [w2]=crash/multi [w3]=crash/shared [w4]=crash/shared)
    start_regfs
    W="$TEST_TMP/work-c$cycle"
    mkdir -p "$W"
    for n in w1 w2 w3 w4; do
        WIMG[$n]="c$cycle-$n"
        skopeo_worker "$n" "${WREPO[$n]}" "${WIMG[$n]}" "${IMG_DIGEST[$n]}" "$cycle" &
        WORKER_PIDS+=($!)
    done
    delay_ms=$((1000 + RANDOM % 4000))
    log "pushes started; kill -9 in ${delay_ms} ms"
    sleep "$((delay_ms / 1000)).$(printf '%03d' $((delay_ms % 1000)))"
    kill_ns=$(now_ns)
    kill9_registry
    inflight=0
    for n in w1 w2 w3 w4; do
        a=$(wc -l <"$W/$n.attempt")
        d=0
        [[ ! -e "$W/$n.done" ]] || d=$(wc -l <"$W/$n.done")
        ((a > d)) && inflight=$((inflight + 1))
    done
    log "killed with $inflight of 4 workers in the middle of a push"
    _stop_workers
    for n in w1 w2 w3 w4; do
        [[ -e "$W/$n.failed" ]] || continue
        read -r tag end_ns <"$W/$n.failed"
        if ((end_ns < kill_ns)); then
            cat "$W/$n.${tag##*-}.log" >&2 || true
            fail "push of $tag by worker $n failed before regfs was killed"
        fi
    done

    step "phase D, cycle $cycle: restart regfs on the bucket, check what was acknowledged"
    start_regfs
    ndone=0
    cut=()
    declare -A LAST_DONE=()
    for n in w1 w2 w3 w4; do
        while read -r tag digest; do
            EXPECT["${WREPO[$n]}:$tag"]=$digest
            LAST_DONE[$n]=$tag
            ndone=$((ndone + 1))
        done < <(cat "$W/$n.done" 2>/dev/null)
        while read -r tag; do
            grep -q "^$tag " "$W/$n.done" 2>/dev/null || cut+=("$n $tag")
        done <"$W/$n.attempt"
    done
    total_done=$((total_done + ndone))
    total_cut=$((total_cut + ${#cut[@]}))
    log "$ndone pushes acknowledged before the kill in this cycle, ${#cut[@]} cut off"
    cat_now=$(catalog) || fail "GET /v2/_catalog failed after the restart"
    for n in w1 w2 w3 w4; do
        r=${WREPO[$n]}
        if [[ -n "${LAST_DONE[$n]:-}" ]]; then
            [[ " $cat_now " == *" $r "* ]] || fail "$r (acknowledged pushes) missing from the catalog: $cat_now"
            t=$(tags_of "$r") || fail "GET /v2/$r/tags/list failed after the restart"
            [[ " $t " == *" ${LAST_DONE[$n]} "* ]] || fail "tag ${LAST_DONE[$n]} missing from $r's tags: $t"
            verify_pull "127.0.0.1:$REGFS_PORT/$r:${LAST_DONE[$n]}" "${IMG_DIGEST[$n]}"
        else
            code=$(http_req "$REGISTRY_URL/v2/$r/tags/list") || true
            [[ "$code" == 200 || "$code" == 404 ]] || fail "GET /v2/$r/tags/list after the restart: HTTP $code $(last_response)"
        fi
    done
    ok "catalog and tags answer; the last acknowledged push of every worker pulls intact"
    expect_repo_args "${CRASH_REPOS[@]}"
    regcheck "$REGISTRY_URL" "${ARGS[@]}" --json "$W/tags.json" ||
        fail "registry inconsistent after kill -9 (cycle $cycle)"
    ok "all $(jq length "$W/tags.json") tags resolve to intact manifests and blobs; every acknowledged push is there"

    step "phase D, cycle $cycle: push the ${#cut[@]} cut-off images again (concurrently)"
    t0=$SECONDS
    repush_pids=()
    for entry in "${cut[@]}"; do
        read -r n tag <<<"$entry"
        sk copy --all --preserve-digests --dest-tls-verify=false "oci:$SRC:${WIMG[$n]}" \
            "docker://127.0.0.1:$REGFS_PORT/${WREPO[$n]}:$tag" >"$W/repush-$tag.log" 2>&1 &
        EXPECT["${WREPO[$n]}:$tag"]=${IMG_DIGEST[$n]}
        repush_pids+=("$! $n $tag")
    done
    for entry in "${repush_pids[@]}"; do
        read -r p n tag <<<"$entry"
        wait "$p" || {
            cat "$W/repush-$tag.log" >&2
            fail "pushing the cut-off image $tag again after the restart failed"
        }
        verify_pull "127.0.0.1:$REGFS_PORT/${WREPO[$n]}:$tag" "${IMG_DIGEST[$n]}"
    done
    ok "the cut-off pushes went through in $((SECONDS - t0)) s and pull intact"
    # The killed process's leases (regfs/leases/ in the bucket) hold up blob commits and
    # manifest PUTs in their repositories until they expire: say how long.
    slow=$(awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^duration_s=/ && substr($i, 12) + 0 >= 3) print "    " $0 }' \
        "$REGISTRY_LOG")
    if [[ -n "$slow" ]]; then
        log "note: requests of 3 s or more after the restart (stale leases of the killed process):"
        printf '%s\n' "$slow" >&2
    fi
    expect_repo_args "${CRASH_REPOS[@]}"
    regcheck "$REGISTRY_URL" "${ARGS[@]}" --json "$TEST_TMP/regfs-final.json" ||
        fail "registry inconsistent after re-pushing (cycle $cycle)"
    stop_registry
    unset IMG_DIGEST WREPO WIMG LAST_DONE
done
log "$CYCLES kill -9 cycles, $total_done acknowledged pushes, $total_cut cut-off pushes redone"

# ================================================================== phase E

step "phase E: registry:2 reads the final state (deletes and crash-phase pushes included)"
start_r2
REG="127.0.0.1:$R2_PORT"
expect_eq "catalog on registry:2" "crash/big crash/multi crash/shared $CATALOG_ALL" "$(catalog)"
expect_eq "tags of s3/alpha on registry:2 (s3/alpha:2 deleted)" "1" "$(tags_of s3/alpha)"
expect_eq "tags of r2/delta on registry:2 (r2/delta:eps deleted)" "1" "$(tags_of r2/delta)"
expect_http "registry:2: GET s3/alpha@$dE (deleted by regfs)" 404 http_req -H "Accept: $MANIFEST_ACCEPT" \
    "$REGISTRY_URL/v2/s3/alpha/manifests/$dE"
for r in "${CRASH_REPOS[@]}"; do
    expect_eq "tags of $r on registry:2 = regfs's" \
        "$(jq -r --arg r "$r" '[keys[] | select(startswith($r + ":")) | ltrimstr($r + ":")] | sort | join(" ")' "$TEST_TMP/regfs-final.json")" \
        "$(tags_of "$r")"
done
# registry:2 takes ~0.4 s a blob GET on RGW: pull the last cycle's images, not every tag.
for n in w1 w2 w3; do
    r=$(jq -r --arg p "$n-c$CYCLES-" 'to_entries[] | select(.key | contains(":" + $p)) | .key' "$TEST_TMP/regfs-final.json" | head -n1)
    [[ -n "$r" ]] || fail "no tag of worker $n in the last cycle"
    verify_pull "$REG/$r" "${EXPECT[$r]}"
done
verify_pull "$REG/r2/gamma:2" "$dZ"
stop_registry
