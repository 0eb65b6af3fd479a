#!/usr/bin/env bash
# A full disk heals itself: on a 24 MiB tmpfs, uploads that run out of space (a monolithic
# POST, a chunked PATCH, a streamed PUT) each answer 507 with a body that names the cause,
# and leave nothing in _uploads; the log says what was freed; every earlier tag still pulls
# whole; once the failed uploads are gone, a push fits again.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_root
require_cmds curl jq python3 sha256sum mount umount
BIN=$(registry_bin)

SMALL="$TEST_TMP/small"
mkdir -p "$SMALL"
mount -t tmpfs -o size=24m tmpfs "$SMALL"
on_exit "umount -l '$SMALL' 2>/dev/null"
ROOT="$SMALL/root"
start_registry "$BIN" "$ROOT" "$(free_port)"
R=$REGISTRY_URL
REPO=team/app
UPLOADS="$ROOT/docker/registry/v2/repositories/$REPO/_uploads"

sha() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
free_kib() { df -k --output=avail "$SMALL" | tail -1 | tr -d ' '; }

# push_blob FILE: monolithic POST ?digest=; prints the HTTP status.
push_blob() {
    http_req -X POST -H 'Content-Type: application/octet-stream' --data-binary "@$1" \
        "$R/v2/$REPO/blobs/uploads/?digest=$(sha "$1")"
}

expect_no_uploads() {
    local left
    left=$(find "$UPLOADS" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    ((left == 0)) || fail "$1: $left upload(s) left in _uploads: $(ls "$UPLOADS")"
    ok "$1: nothing left in _uploads"
}

expect_storage_full_answer() {
    expect_error_body "$1" UNKNOWN
    jq -e '.errors[0].message | test("storage is full")' "$TEST_TMP/curl.body" >/dev/null ||
        fail "$1: the 507 body does not name the cause: $(last_response)"
    ok "$1: the 507 body says the storage is full"
}

step "an image before the disk fills"
head -c 2048 /dev/urandom >"$TEST_TMP/layer"
printf '{"architecture":"amd64","os":"linux"}' >"$TEST_TMP/config"
expect_http "push the layer" 201 push_blob "$TEST_TMP/layer"
expect_http "push the config" 201 push_blob "$TEST_TMP/config"
cat >"$TEST_TMP/manifest" <<JSON
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
 "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"$(sha "$TEST_TMP/config")","size":$(stat -c %s "$TEST_TMP/config")},
 "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"$(sha "$TEST_TMP/layer")","size":2048}]}
JSON
expect_http "PUT manifest v1" 201 http_req -X PUT \
    -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
    --data-binary "@$TEST_TMP/manifest" "$R/v2/$REPO/manifests/v1"
free_before=$(free_kib)
log "free space with the image stored: ${free_before} KiB"

head -c $((40 << 20)) /dev/urandom >"$TEST_TMP/big"

step "monolithic upload larger than the disk"
expect_http "POST ?digest= with 40 MiB" 507 push_blob "$TEST_TMP/big"
expect_storage_full_answer "monolithic upload"
expect_no_uploads "monolithic upload"

step "chunked PATCH larger than the disk"
expect_http "POST starts an upload" 202 http_req -X POST "$R/v2/$REPO/blobs/uploads/"
loc=$(header_of Location)
[[ "$loc" == http* ]] || loc="$R$loc"
expect_http "PATCH 40 MiB" 507 http_req -X PATCH -H 'Content-Type: application/octet-stream' \
    --data-binary "@$TEST_TMP/big" "$loc"
expect_storage_full_answer "chunked PATCH"
expect_no_uploads "chunked PATCH"
expect_http "the discarded upload is unknown" 404 http_req "$loc"
expect_error_body "the discarded upload" BLOB_UPLOAD_UNKNOWN

step "streamed PUT larger than the disk"
expect_http "POST starts an upload" 202 http_req -X POST "$R/v2/$REPO/blobs/uploads/"
loc=$(header_of Location)
[[ "$loc" == http* ]] || loc="$R$loc"
sep='?'
[[ "$loc" != *'?'* ]] || sep='&'
expect_http "PUT 40 MiB chunked" 507 http_req -X PUT -H 'Transfer-Encoding: chunked' \
    -H 'Content-Type: application/octet-stream' --data-binary "@$TEST_TMP/big" \
    "$loc${sep}digest=$(sha "$TEST_TMP/big")"
expect_storage_full_answer "streamed PUT"
expect_no_uploads "streamed PUT"

step "the log says what was freed"
freed=$(grep -c 'discarded, freeing [0-9]* bytes' "$REGISTRY_LOG" || true)
((freed >= 3)) || fail "expected 3 log lines naming the freed space, got $freed: $(grep -i 'full\|space' "$REGISTRY_LOG" | tail -5)"
ok "$freed log lines say which upload was discarded and how much was freed"
grep -m1 'discarded, freeing' "$REGISTRY_LOG" >&2

step "the registry healed"
free_after=$(free_kib)
((free_after >= free_before - 64)) ||
    fail "free space did not come back: ${free_after} KiB now, ${free_before} KiB before"
ok "free space back to ${free_after} KiB (${free_before} KiB before the failed uploads)"
expect_http "GET manifest v1" 200 http_req -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "$R/v2/$REPO/manifests/v1"
cmp -s "$TEST_TMP/curl.body" "$TEST_TMP/manifest" || fail "manifest v1 changed"
expect_http "GET the layer" 200 http_req "$R/v2/$REPO/blobs/$(sha "$TEST_TMP/layer")"
cmp -s "$TEST_TMP/curl.body" "$TEST_TMP/layer" || fail "the layer changed"
ok "v1 pulls whole"
head -c $((4 << 20)) /dev/urandom >"$TEST_TMP/fits"
expect_http "a 4 MiB push fits again" 201 push_blob "$TEST_TMP/fits"
