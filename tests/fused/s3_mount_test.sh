#!/usr/bin/env bash
# regfs-fused on a bucket: the same tree as on the filesystem, read with ranged GETs and
# listed with paginated listings, beside regfs-httpd on the same bucket. Blob and manifest
# bytes against the HTTP API (whole and at offsets), tagging and untagging through the mount
# seen over HTTP at once, and HTTP changes seen in the mount (without a change feed: within
# its cache timeouts).
#
# Needs the test object store: REGFS_TEST_S3_ENV names the env file of a running RGW
# (ctest's rgw fixture provides it; tests/support/rgw_server.sh starts one by hand).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../e2e/lib.sh
source "$HERE/../e2e/lib.sh"
# shellcheck source=lib_fused.sh
source "$HERE/lib_fused.sh"

require_cmds skopeo curl jq python3 sha256sum find dd cmp
require_fuse
HTTPD=$(registry_bin)
FUSED=$(fused_bin)
if [[ -z "${REGFS_TEST_S3_ENV:-}" || ! -f "$REGFS_TEST_S3_ENV" ]]; then
    printf '[%s] SKIP: needs the test object store (REGFS_TEST_S3_ENV)\n' "$E2E_NAME" >&2
    exit 77
fi
# shellcheck disable=SC1090
source "$REGFS_TEST_S3_ENV"

CFG="$TEST_TMP/config.yml"
PORT=$(free_port)
cat >"$CFG" <<EOF
version: 0.1
log: {level: info}
storage:
  s3:
    regionendpoint: $RGW_ENDPOINT
    region: $RGW_REGION
    bucket: regfs-tests
    accesskey: $RGW_ACCESS_KEY
    secretkey: $RGW_SECRET_KEY
    rootdirectory: /fused-$$-$RANDOM
  delete: {enabled: true}
  redirect: {disable: true}
http: {addr: 127.0.0.1:$PORT}
EOF
serve_registry "$HTTPD" "$CFG" "$TEST_TMP/httpd.log" "on the bucket" v2_answers 200 "http://127.0.0.1:$PORT"
REGISTRY_URL="http://127.0.0.1:$PORT"

step "push an image with a layer of several multipart parts"
SRC="$TEST_TMP/src"
digest=$(mkoci "$SRC" img --layers 2 --size 12000000 --seed s3mount)
push_oci "$SRC" img "127.0.0.1:$PORT/team/app:v1"
ok "pushed team/app:v1 = $digest"

MNT="$TEST_TMP/mnt"
mount_fused "$CFG" "$MNT"
REPO="$MNT/team/app"

step "the tree"
check "tag v1 points at the manifest" "../_manifests/$digest" "$(t readlink "$REPO/_tags/v1")"
curl -sf -H "Accept: $MANIFEST_ACCEPT" "$REGISTRY_URL/v2/team/app/manifests/v1" -o "$TEST_TMP/manifest.http"
check_true "manifest bytes as over HTTP" cmp -s "$TEST_TMP/manifest.http" "$REPO/_manifests/$digest"
check "manifest digest" "${digest#sha256:}" "$(t cat "$REPO/_manifests/$digest" | sha256sum | cut -c1-64)"
n_blobs=0
for blob in "$REPO"/_blobs/*; do
    name=$(basename "$blob")
    check "content of $name" "${name#sha256:}" "$(t cat "$blob" | sha256sum | cut -c1-64)"
    size=$(stat -c %s "$blob")
    check "size of $name" "$(http_head_field "$REGISTRY_URL/v2/team/app/blobs/$name" Content-Length)" "$size"
    n_blobs=$((n_blobs + 1))
done
check_true "three blobs (config and two layers)" test "$n_blobs" -eq 3

step "reads at offsets are the HTTP API's ranges"
big=$(find "$REPO/_blobs" -size +10M | head -1)
name=$(basename "$big")
for offset in 0 5242870 9000001; do
    t dd if="$big" of="$TEST_TMP/range.mount" bs=65536 skip="$offset" count=70000 iflag=skip_bytes,count_bytes status=none
    curl -sf -r "$offset-$((offset + 69999))" "$REGISTRY_URL/v2/team/app/blobs/$name" -o "$TEST_TMP/range.http"
    check_true "70000 bytes at $offset" cmp -s "$TEST_TMP/range.mount" "$TEST_TMP/range.http"
done

step "tagging and untagging through the mount, seen over HTTP at once"
t ln -s "../_manifests/$digest" "$REPO/_tags/v2"
check "v2 over HTTP" "$digest" "$(tag_digest team/app v2)"
t rm "$REPO/_tags/v1"
check "v1 gone over HTTP" "404" "$(http_status HEAD /v2/team/app/manifests/v1)"

step "HTTP changes show in the mount"
curl -sf -X PUT -H "Content-Type: application/vnd.oci.image.manifest.v1+json" \
    --data-binary @"$TEST_TMP/manifest.http" "$REGISTRY_URL/v2/team/app/manifests/v3" -o /dev/null
started=$(now_ms)
seen=no
for _ in $(seq 1 100); do
    if [[ "$(t readlink "$REPO/_tags/v3" 2>/dev/null)" == "../_manifests/$digest" ]]; then
        seen=yes
        break
    fi
    sleep 0.1
done
check "v3 tagged over HTTP appears in the mount within 10 s" yes "$seen"
log "seen after $(($(now_ms) - started)) ms"
check "tags listed" "v2 v3" "$(t ls "$REPO/_tags" | sort | xargs)"
curl -sf -X DELETE "$REGISTRY_URL/v2/team/app/manifests/v3" -o /dev/null
gone=no
for _ in $(seq 1 100); do
    if ! t ls "$REPO/_tags" | grep -qx v3; then
        gone=yes
        break
    fi
    sleep 0.1
done
check "v3 deleted over HTTP leaves the listing within 10 s" yes "$gone"

finish_checks
