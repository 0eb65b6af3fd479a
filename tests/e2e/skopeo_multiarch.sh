#!/usr/bin/env bash
# Multi-platform OCI index round trip with skopeo: generated OCI layout ->
# registry -> OCI layout, every digest preserved; plus a docker schema2
# (v2s2) round trip.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_cmds skopeo curl jq python3 sha256sum timeout
BIN=$(registry_bin)

step "generate an OCI layout with a linux/amd64 + linux/arm64 index"
SRC="$TEST_TMP/src"
idx_digest=$(mkoci "$SRC" 1 --platforms linux/amd64,linux/arm64 --layers 2 --size 300000 --seed multi)
single_digest=$(mkoci "$SRC" single --platforms linux/amd64 --layers 2 --size 200000 --seed single)
log "index $idx_digest, single image $single_digest"
idx_blob="$SRC/blobs/sha256/${idx_digest#sha256:}"
expect_eq "media type of the generated index" application/vnd.oci.image.index.v1+json "$(jq -r .mediaType "$idx_blob")"
expect_eq "platforms in the index" "linux/amd64 linux/arm64" \
    "$(jq -r '[.manifests[].platform | "\(.os)/\(.architecture)"] | join(" ")' "$idx_blob")"

start_registry "$BIN" "$TEST_TMP/data" "$(free_port)"
REG="127.0.0.1:$REGISTRY_PORT"

step "skopeo copy --all oci:src:1 -> docker://$REG/multi/img:1"
push_oci "$SRC" 1 "$REG/multi/img:1"
ok "pushed"

step "skopeo inspect --raw returns the index bytes"
sk inspect --raw --tls-verify=false "docker://$REG/multi/img:1" >"$TEST_TMP/raw-index"
cmp -s "$idx_blob" "$TEST_TMP/raw-index" || fail "skopeo inspect --raw bytes differ from the pushed index"
ok "inspect --raw by tag = index bytes ($(stat -c %s "$idx_blob") bytes)"
sk inspect --raw --tls-verify=false "docker://$REG/multi/img@$idx_digest" >"$TEST_TMP/raw-index2"
cmp -s "$idx_blob" "$TEST_TMP/raw-index2" || fail "skopeo inspect --raw by digest differs from the pushed index"
ok "inspect --raw by digest = index bytes"
for arch in amd64 arm64; do
    want=$(jq -r --arg a "$arch" '.manifests[] | select(.platform.architecture == $a) | .digest' "$idx_blob")
    sk inspect --raw --tls-verify=false "docker://$REG/multi/img@$want" >"$TEST_TMP/raw-$arch"
    expect_eq "$arch manifest bytes digest" "$want" "sha256:$(sha256_of "$TEST_TMP/raw-$arch")"
    cfg=$(sk inspect --config --override-arch "$arch" --override-os linux --tls-verify=false "docker://$REG/multi/img:1")
    expect_eq "architecture in the $arch config selected from the index" "$arch" "$(jq -r .architecture <<<"$cfg")"
done

step "HTTP view of the index"
hdrs=$(curl -sSfI -H "Accept: $MANIFEST_ACCEPT" "$REGISTRY_URL/v2/multi/img/manifests/1" | tr -d '\r')
expect_eq "Content-Type of the index" application/vnd.oci.image.index.v1+json \
    "$(awk -F': ' 'tolower($1) == "content-type" { print $2 }' <<<"$hdrs")"
expect_eq "Docker-Content-Digest of the index" "$idx_digest" \
    "$(awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }' <<<"$hdrs")"
expect_eq "Content-Length of the index" "$(stat -c %s "$idx_blob")" \
    "$(awk -F': ' 'tolower($1) == "content-length" { print $2 }' <<<"$hdrs")"
regcheck "$REGISTRY_URL" --repo multi/img --expect "multi/img:1=$idx_digest" || fail "registry content check failed"

step "skopeo copy --all back into a new OCI layout and compare"
DST="$TEST_TMP/dst"
pull_oci "$REG/multi/img:1" "$DST" 1
expect_eq "index digest in the copied layout" "$idx_digest" "$(oci_tag_digest "$DST" 1)"
oci_same_image "$SRC" "$DST" "$idx_digest"
expect_eq "number of blobs in the copied layout" "$(oci_reachable "$SRC" "$idx_digest" | sort -u | wc -l)" \
    "$(find "$DST/blobs/sha256" -type f | wc -l)"

step "docker schema2 round trip: skopeo copy --format v2s2"
sk copy --format v2s2 --dest-tls-verify=false "oci:$SRC:single" "docker://$REG/multi/s2:1" >"$TEST_TMP/s2.out" 2>&1 || {
    cat "$TEST_TMP/s2.out" >&2
    fail "skopeo copy --format v2s2 failed"
}
sk inspect --raw --tls-verify=false "docker://$REG/multi/s2:1" >"$TEST_TMP/s2-manifest"
s2_digest="sha256:$(sha256_of "$TEST_TMP/s2-manifest")"
expect_eq "mediaType of the converted manifest" application/vnd.docker.distribution.manifest.v2+json \
    "$(jq -r .mediaType "$TEST_TMP/s2-manifest")"
src_manifest="$SRC/blobs/sha256/${single_digest#sha256:}"
expect_eq "layer digests kept by the v2s2 conversion" "$(jq -c '[.layers[].digest]' "$src_manifest")" \
    "$(jq -c '[.layers[].digest]' "$TEST_TMP/s2-manifest")"
# registry -> dir: -> registry (other repo): the v2s2 manifest must keep its digest.
sk copy --preserve-digests --src-tls-verify=false "docker://$REG/multi/s2:1" "dir:$TEST_TMP/s2dir" >/dev/null
cmp -s "$TEST_TMP/s2-manifest" "$TEST_TMP/s2dir/manifest.json" || fail "v2s2 manifest changed on the way to dir:"
sk copy --preserve-digests --dest-tls-verify=false "dir:$TEST_TMP/s2dir" "docker://$REG/multi/s2copy:1" >/dev/null
expect_eq "digest of the re-pushed v2s2 manifest" "$s2_digest" \
    "$(sk inspect --format '{{.Digest}}' --tls-verify=false "docker://$REG/multi/s2copy:1")"
regcheck "$REGISTRY_URL" --expect "multi/img:1=$idx_digest" --expect "multi/s2:1=$s2_digest" \
    --expect "multi/s2copy:1=$s2_digest" || fail "registry content check failed"
expect_eq "catalog" "multi/img multi/s2 multi/s2copy" "$(catalog)"
stop_registry
