#!/usr/bin/env bash
# docker push / rmi / pull round trip of a multi-layer image through the
# registry under test, with a private dockerd (vfs, no networking).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_cmds curl jq python3 tar sha256sum
BIN=$(registry_bin)

step "start registry (notifying a webhook receiver) and private dockerd"
start_receiver "$TEST_TMP/events"
start_registry "$BIN" "$TEST_TMP/data" "$(free_port)" "$(notify_yaml "$RECEIVER_PORT")"
start_dockerd
REG="127.0.0.1:$REGISTRY_PORT"
IMG="$REG/team/app"

step "build a multi-layer image (docker import base + 3 COPY layers, no RUN)"
ctx="$TEST_TMP/ctx"
mkdir -p "$ctx/base/etc" "$ctx/base/usr/share/e2e" "$ctx/tree/sub"
printf 'NAME=regfs-e2e-base\n' >"$ctx/base/etc/os-release"
head -c 200000 /dev/urandom >"$ctx/base/usr/share/e2e/base.bin"
tar -C "$ctx/base" -cf "$ctx/base.tar" .
docker import "$ctx/base.tar" regfs-e2e/base:1 >/dev/null

printf 'hello from regfs e2e\n' >"$ctx/hello.txt"
head -c 1500000 /dev/urandom >"$ctx/random.bin"
printf 'nested file\n' >"$ctx/tree/sub/nested.txt"
head -c 30000 /dev/urandom >"$ctx/tree/small.bin"
cat >"$ctx/Dockerfile" <<'EOF'
FROM regfs-e2e/base:1
COPY hello.txt /hello.txt
COPY random.bin /data/random.bin
COPY tree /tree
EOF
DOCKER_BUILDKIT=0 docker build -q -t "$IMG:v1" "$ctx" >/dev/null 2>"$TEST_TMP/build.err" || {
    cat "$TEST_TMP/build.err" >&2
    fail "docker build failed"
}
image_id=$(docker image inspect -f '{{.Id}}' "$IMG:v1")
layers=$(docker image inspect -f '{{json .RootFS.Layers}}' "$IMG:v1")
nlayers=$(jq length <<<"$layers")
log "built v1 $image_id with $nlayers layers"
((nlayers == 4)) || fail "expected 4 layers in the built image, got $nlayers: $layers"
# v2: v1 plus one layer, so its push reuses the 4 blobs already in the registry.
mkdir -p "$ctx/v2"
printf 'only in v2\n' >"$ctx/v2/extra.txt"
printf 'FROM %s\nCOPY extra.txt /extra.txt\n' "$IMG:v1" >"$ctx/v2/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$IMG:v2" "$ctx/v2" >/dev/null 2>"$TEST_TMP/build.err" || {
    cat "$TEST_TMP/build.err" >&2
    fail "docker build of v2 failed"
}
image_id2=$(docker image inspect -f '{{.Id}}' "$IMG:v2")
layers2=$(docker image inspect -f '{{json .RootFS.Layers}}' "$IMG:v2")
log "built v2 $image_id2 with $(jq length <<<"$layers2") layers"

step "docker push $IMG:v1 and :v2"
d1=$(docker_push "$IMG:v1")
ok "pushed v1 -> $d1"
d2=$(docker_push "$IMG:v2")
ok "pushed v2 -> $d2"
[[ "$d1" != "$d2" ]] || fail "v1 and v2 have the same manifest digest"
d1again=$(docker_push "$IMG:v1")
expect_eq "digest of v1 pushed again" "$d1" "$d1again"

step "the pushes' webhook events"
events_settle "$TEST_TMP/events"
expect_eq "manifest push events (tag digest), in push order" "v1 $d1 v2 $d2 v1 $d1 " \
    "$(events "$TEST_TMP/events" | jq -r 'select(.action == "push" and .target.tag != null) |
        "\(.target.tag) \(.target.digest)"' | tr '\n' ' ')"
expect_eq "media type of the manifest push events" application/vnd.docker.distribution.manifest.v2+json \
    "$(events "$TEST_TMP/events" | jq -r 'select(.target.tag != null) | .target.mediaType' | sort -u)"
expect_eq "blob push events: config and 4 layers of v1, config and 1 layer of v2" 7 \
    "$(events "$TEST_TMP/events" | jq -r 'select(.action == "push" and .target.tag == null) | .target.digest' | sort -u | wc -l)"
expect_eq "user agent of the events" docker/ \
    "$(events "$TEST_TMP/events" | jq -r '.useragent' | sort -u | cut -c1-7)"

step "check the registry view with curl"
expect_eq "tags/list of team/app" "v1 v2" "$(tags_of team/app)"
[[ " $(catalog) " == *" team/app "* ]] || fail "team/app missing from /v2/_catalog: $(catalog)"
ok "team/app in catalog"
reg_get /v2/team/app/manifests/v1 >"$TEST_TMP/manifest.json"
expect_eq "sha256 of manifest bytes" "$d1" "sha256:$(sha256_of "$TEST_TMP/manifest.json")"
expect_http "HEAD team/app:v2" 200 http_req -I -H "Accept: $MANIFEST_ACCEPT" "$REGISTRY_URL/v2/team/app/manifests/v2"
expect_eq "Docker-Content-Digest of HEAD v2" "$d2" "$(header_of Docker-Content-Digest)"
expect_eq "manifest mediaType" application/vnd.docker.distribution.manifest.v2+json \
    "$(jq -r .mediaType "$TEST_TMP/manifest.json")"
expect_eq "manifest config digest = image ID" "$image_id" "$(jq -r .config.digest "$TEST_TMP/manifest.json")"
expect_eq "manifest layer count" 4 "$(jq '.layers | length' "$TEST_TMP/manifest.json")"
regcheck "$REGISTRY_URL" --repo team/app --expect "team/app:v1=$d1" --expect "team/app:v2=$d2" ||
    fail "registry content check failed"

step "remove every local image, then docker pull"
docker rmi -f "$IMG:v1" "$IMG:v2" regfs-e2e/base:1 >/dev/null
left=$(docker image ls -aq)
[[ -z "$left" ]] || fail "images still present after rmi: $left"
ok "local image store is empty"
events_settle "$TEST_TMP/events"
before_pull=$(events "$TEST_TMP/events" | wc -l)
docker_pull "$IMG:v1"
expect_eq "image ID of v1 after pull" "$image_id" "$(docker image inspect -f '{{.Id}}' "$IMG:v1")"
expect_eq "layer diff IDs of v1 after pull" "$layers" "$(docker image inspect -f '{{json .RootFS.Layers}}' "$IMG:v1")"
expect_eq "repo digest of v1 after pull" "$IMG@$d1" "$(docker image inspect -f '{{index .RepoDigests 0}}' "$IMG:v1")"
events_settle "$TEST_TMP/events"
pulled=$(events "$TEST_TMP/events" | tail -n +$((before_pull + 1)) | jq -c 'select(.action == "pull")')
# docker resolves the tag with a HEAD (no pull) and GETs the manifest by digest.
expect_eq "manifest pull events of docker pull v1" "$d1" \
    "$(jq -r 'select(.target.mediaType != "application/octet-stream") | .target.digest' <<<"$pulled" | sort -u)"
expect_eq "blob pull events of docker pull v1: config and 4 layers" 5 \
    "$(jq -r 'select(.target.mediaType == "application/octet-stream") | .target.digest' <<<"$pulled" | sort -u | wc -l)"
docker_pull "$IMG:v2"
expect_eq "image ID of v2 after pull" "$image_id2" "$(docker image inspect -f '{{.Id}}' "$IMG:v2")"
expect_eq "layer diff IDs of v2 after pull" "$layers2" "$(docker image inspect -f '{{json .RootFS.Layers}}' "$IMG:v2")"
docker rmi -f "$IMG:v2" >/dev/null
docker_pull "$IMG@$d2"
expect_eq "image ID pulled by digest $d2" "$image_id2" "$(docker image inspect -f '{{.Id}}' "$IMG@$d2")"

step "file contents survive (docker create + export, no run)"
cid=$(docker create --network none "$IMG@$d2" /does-not-run)
docker export "$cid" >"$TEST_TMP/rootfs.tar"
docker rm "$cid" >/dev/null
mkdir "$TEST_TMP/rootfs"
tar -C "$TEST_TMP/rootfs" -xf "$TEST_TMP/rootfs.tar"
for pair in \
    "base/etc/os-release:etc/os-release" \
    "base/usr/share/e2e/base.bin:usr/share/e2e/base.bin" \
    "hello.txt:hello.txt" \
    "random.bin:data/random.bin" \
    "tree/sub/nested.txt:tree/sub/nested.txt" \
    "tree/small.bin:tree/small.bin" \
    "v2/extra.txt:extra.txt"; do
    src=${pair%%:*} dst=${pair#*:}
    cmp -s "$ctx/$src" "$TEST_TMP/rootfs/$dst" || fail "/$dst in the pulled image differs from $src"
    ok "/$dst identical"
done
