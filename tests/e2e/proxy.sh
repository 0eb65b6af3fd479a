#!/usr/bin/env bash
# The pull-through cache end to end. Upstreams are Debian's docker-registry (registry:2),
# one open and one behind the token server the security tests use, each filled with a
# multi-platform image by skopeo. In front of them:
#   regfs A: registry:2's proxy mode (proxy.remoteurl), the mirror of a private dockerd
#            (--registry-mirror): docker and skopeo pull through it; 8 concurrent pulls of
#            an uncached image cost the upstream one request per blob; a tag moved upstream
#            is seen after the check interval; with the upstream stopped, cached images
#            still pull (by tag and digest) and uncached ones fail at once, clearly.
#   regfs B: regfs's upstreams under prefixes beside ordinary repositories: pulls through
#            the token-authenticated upstream (skopeo, docker, podman), pushes to an
#            ordinary repository, a push into a proxied prefix refused, an upstream that
#            never answers failing within the timeout, the FUSE mount showing what was
#            cached, expiry of what was not pulled within the ttl by garbage-collect,
#            without breaking a pull reading it, and webhooks that report pulls of cached
#            repositories but not the cache filling or expiring itself (as registry:2).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_cmds skopeo curl jq python3 openssl node sha256sum
require_root
BIN=$(registry_bin)
UPSTREAM_BIN=${REF_REGISTRY:-/usr/bin/docker-registry}
[[ -x "$UPSTREAM_BIN" ]] || fail "upstream registry $UPSTREAM_BIN not found (Debian package docker-registry)"
ISSUER_JS="$E2E_DIR/token_issuer.js"
SRC="$TEST_TMP/src"
SERVICE=upstream-test
ISSUER=upstream-issuer
ALICE_PW='alice-proxy-E2E-pw'

# upstream_gets LOG PATH: how many GETs of PATH the upstream (registry:2) answered 200,
# from its access log.
upstream_gets() {
    grep -c "\"GET $2 HTTP/1.1\" 200" "$1" || true
}

# manifest_digest URL REPO REF: the Docker-Content-Digest of a HEAD of the manifest.
manifest_digest() {
    curl -sS --max-time 60 -I -H "Accept: $MANIFEST_ACCEPT" "$1/v2/$2/manifests/$3" |
        tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p'
}

step "images: two multi-platform images and one more, as OCI layouts"
IMG1=$(mkoci "$SRC" 1 --platforms linux/amd64,linux/arm64 --layers 3 --size 300000 --seed proxy-one)
IMG2=$(mkoci "$SRC" 2 --platforms linux/amd64,linux/arm64 --layers 2 --size 200000 --seed proxy-two)
IMG3=$(mkoci "$SRC" 3 --platforms linux/amd64,linux/arm64 --layers 3 --size 250000 --seed proxy-conc)
ok "index $IMG1, $IMG2, $IMG3"

step "upstream 1: registry:2 without authentication"
start_registry "$UPSTREAM_BIN" "$TEST_TMP/up-open" "$(free_port)"
UP_OPEN=$REGISTRY_URL
UP_OPEN_PID=$REGISTRY_PID
UP_OPEN_CFG="$TEST_TMP/registry-$_E2E_REG_SEQ.yml"
UP_OPEN_LOG=$REGISTRY_LOG
push_oci "$SRC" 1 "${UP_OPEN#http://}/library/multi:1"
push_oci "$SRC" 3 "${UP_OPEN#http://}/library/conc:1"
push_oci "$SRC" 2 "${UP_OPEN#http://}/library/other:1"
ok "library/multi:1, library/conc:1, library/other:1 on $UP_OPEN"

step "upstream 2: registry:2 behind a token server"
ossl req -x509 -newkey rsa:2048 -nodes -days 2 -keyout "$PKI/issuer.key" -out "$PKI/issuer.crt" \
    -subj "/CN=regfs e2e upstream token issuer" -addext "keyUsage=critical,digitalSignature"
USERS="$TEST_TMP/users.json"
jq -n --arg a "$ALICE_PW" '{users: {alice: {password: $a, grants: [
    {pattern: "**", actions: ["pull", "push"]}]}}, anonymous: []}' >"$USERS"
ISSUER_PORT=$(free_port)
node "$ISSUER_JS" --port "$ISSUER_PORT" --key "$PKI/issuer.key" --alg RS256 --issuer "$ISSUER" \
    --service "$SERVICE" --users "$USERS" >"$TEST_TMP/issuer.out" 2>"$TEST_TMP/issuer.log" </dev/null &
on_exit "stop_pid $! 5"
_E2E_LOGS+=("$TEST_TMP/issuer.log")
wait_until 20 "token issuer" grep -q 'listening on' "$TEST_TMP/issuer.out"
start_auth_registry "$UPSTREAM_BIN" "$TEST_TMP/up-token" "$(free_port)" "auth:
  token:
    realm: http://127.0.0.1:$ISSUER_PORT/token
    service: $SERVICE
    issuer: $ISSUER
    rootcertbundle: $PKI/issuer.crt"
UP_TOKEN=$REGISTRY_URL
UP_TOKEN_LOG=$REGISTRY_LOG
push_oci "$SRC" 1 "${UP_TOKEN#http://}/private/app:1" --dest-creds "alice:$ALICE_PW"
expect_eq "anonymous pull from the token upstream" 401 \
    "$(http_code "$UP_TOKEN/v2/private/app/manifests/1")"
ok "private/app:1 on $UP_TOKEN, for alice only"

# An upstream that accepts connections and never answers.
HANG_PORT=$(free_port)
"$PYTHON" -c 'import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
held = []
while True:
    c, _ = s.accept(); held.append(c)' "$HANG_PORT" </dev/null >/dev/null 2>&1 &
on_exit "stop_pid $! 5"
wait_until 10 "silent upstream" bash -c "exec 3<>/dev/tcp/127.0.0.1/$HANG_PORT"

step "regfs A: registry:2's proxy mode, mirroring upstream 1"
PORT_A=$(free_port)
DEBUG_A=$(free_port)
start_registry "$BIN" "$TEST_TMP/regfs-a" "$PORT_A" "  debug:
    addr: 127.0.0.1:$DEBUG_A
    prometheus:
      enabled: true
      path: /metrics
proxy:
  remoteurl: $UP_OPEN
  ttl: 168h
  tagcheckinterval: 10s
  spooldirectory: $TEST_TMP/spool-a"
A=$REGISTRY_URL
A_LOG=$REGISTRY_LOG
A_PID=$REGISTRY_PID
grep -q "pull-through cache: every repository mirrors $UP_OPEN" "$A_LOG" ||
    fail "regfs A does not say it mirrors $UP_OPEN"

step "docker pulls library/multi through its registry mirror"
PORT_B=$(free_port)  # regfs B's, below: docker pulls from it by name too
start_dockerd --registry-mirror "$A" --insecure-registry "127.0.0.1:$PORT_A" \
    --insecure-registry "127.0.0.1:$PORT_B"
docker_pull library/multi:1
repo_digest=$(docker image inspect -f '{{join .RepoDigests " "}}' library/multi:1)
[[ "$repo_digest" == *"@$IMG1"* ]] || fail "docker's image is $repo_digest, not $IMG1"
grep -q 'uri=/v2/library/multi/manifests/1 .*cache=miss' "$A_LOG" ||
    fail "regfs A's access log shows no cache miss for library/multi:1"
ok "docker pulled $IMG1 from the mirror (the access log says: miss)"

step "skopeo pulls every platform through regfs A: the same bytes as pushed"
pull_oci "127.0.0.1:$PORT_A/library/multi:1" "$TEST_TMP/out-a" 1
oci_same_image "$SRC" "$TEST_TMP/out-a" "$IMG1"
pull_oci "127.0.0.1:$PORT_A/library/multi@$IMG1" "$TEST_TMP/out-a-digest" 1
oci_same_image "$SRC" "$TEST_TMP/out-a-digest" "$IMG1"
for d in $(oci_reachable "$SRC" "$IMG1" | sort -u); do
    n=$(upstream_gets "$UP_OPEN_LOG" "/v2/library/multi/blobs/$d")
    m=$(upstream_gets "$UP_OPEN_LOG" "/v2/library/multi/manifests/$d")
    ((n + m <= 1)) || fail "the upstream served $d $((n + m)) times for two pulls and a docker pull"
done
ok "after docker and two skopeo pulls the upstream served each manifest and blob once at most"

step "8 concurrent pulls of an uncached image: one upstream fetch per blob"
pids=()
for i in 1 2 3 4 5 6 7 8; do
    sk copy --all --preserve-digests --src-tls-verify=false "docker://127.0.0.1:$PORT_A/library/conc:1" \
        "oci:$TEST_TMP/conc-$i:1" >"$TEST_TMP/conc-$i.out" 2>&1 &
    pids+=($!)
done
for i in "${!pids[@]}"; do
    wait "${pids[$i]}" || {
        cat "$TEST_TMP/conc-$((i + 1)).out" >&2
        fail "concurrent pull $((i + 1)) failed"
    }
done
for i in 1 2 3 4 5 6 7 8; do oci_same_image "$SRC" "$TEST_TMP/conc-$i" "$IMG3" >/dev/null; done
blobs=0
for d in $(oci_reachable "$SRC" "$IMG3" | sort -u); do
    n=$(upstream_gets "$UP_OPEN_LOG" "/v2/library/conc/blobs/$d")
    m=$(upstream_gets "$UP_OPEN_LOG" "/v2/library/conc/manifests/$d")
    (( n + m == 1 )) || fail "the upstream served $d $((n + m)) times for 8 concurrent pulls"
    blobs=$((blobs + 1))
done
ok "8 pulls, identical content, the upstream served each of the $blobs manifests and blobs once"

step "metrics count hits and misses"
metrics=$(curl -sS --max-time 10 "http://127.0.0.1:$DEBUG_A/metrics")
grep -q "regfs_proxy_requests_total{upstream=\"$UP_OPEN\",kind=\"blob\",result=\"miss\"}" <<<"$metrics" ||
    fail "no blob misses in the metrics: $(grep regfs_proxy <<<"$metrics")"
grep -q "regfs_proxy_requests_total{upstream=\"$UP_OPEN\",kind=\"blob\",result=\"hit\"}" <<<"$metrics" ||
    fail "no blob hits in the metrics"
ok "$(grep -c '^regfs_proxy_requests_total' <<<"$metrics") regfs_proxy_requests_total series"

step "a tag moved upstream is seen after the check interval, not before"
before=$(manifest_digest "$A" library/multi 1)
expect_eq "library/multi:1 through regfs A" "$IMG1" "$before"
checked_at=$SECONDS
# A check right now (the interval since the pulls above may have passed), then the move.
manifest_digest "$A" library/multi 1 >/dev/null
checked_at=$SECONDS
push_oci "$SRC" 2 "${UP_OPEN#http://}/library/multi:1"
if ((SECONDS - checked_at < 8)); then
    expect_eq "library/multi:1 within the interval" "$IMG1" "$(manifest_digest "$A" library/multi 1)"
else
    log "the push took $((SECONDS - checked_at)) s: the within-interval check is skipped"
fi
sleep $((checked_at + 11 - SECONDS > 0 ? checked_at + 11 - SECONDS : 0))
expect_eq "library/multi:1 after the interval" "$IMG2" "$(manifest_digest "$A" library/multi 1)"
pull_oci "127.0.0.1:$PORT_A/library/multi:1" "$TEST_TMP/out-moved" 2
oci_same_image "$SRC" "$TEST_TMP/out-moved" "$IMG2"

step "tags are listed by the upstream"
expect_eq "tags of library/other (never pulled) through regfs A" "1" "$(REGISTRY_URL=$A tags_of library/other)"

step "a push into the mirror is refused, clearly"
if skopeo_push "" "oci:$SRC:1" "127.0.0.1:$PORT_A/library/pushed:1" >"$TEST_TMP/refused.out" 2>&1; then
    fail "a push into regfs A (proxy mode) succeeded"
fi
code=$(curl -s -o "$TEST_TMP/refused.json" -w '%{http_code}' -X POST "$A/v2/library/pushed/blobs/uploads/")
expect_eq "POST of an upload into the mirror" 405 "$code"
jq -e '.errors[0].code == "UNSUPPORTED" and (.errors[0].message | test("pull-through cache"))' \
    "$TEST_TMP/refused.json" >/dev/null || fail "unclear refusal: $(cat "$TEST_TMP/refused.json")"
ok "405 UNSUPPORTED: $(jq -r '.errors[0].message' "$TEST_TMP/refused.json")"

step "upstream 1 stopped: cached images still pull, uncached ones fail fast"
stop_registry "$UP_OPEN_PID"
sleep 11  # past the tag check interval: the next pull by tag asks the (dead) upstream
pull_oci "127.0.0.1:$PORT_A/library/multi:1" "$TEST_TMP/out-down-tag" 2
oci_same_image "$SRC" "$TEST_TMP/out-down-tag" "$IMG2"
pull_oci "127.0.0.1:$PORT_A/library/conc@$IMG3" "$TEST_TMP/out-down-digest" 1
oci_same_image "$SRC" "$TEST_TMP/out-down-digest" "$IMG3"
grep -q "serving library/multi:1 as stored ($IMG2)" "$A_LOG" ||
    fail "regfs A's log does not say it served library/multi:1 from storage while the upstream was down"
grep -q 'uri=/v2/library/multi/manifests/1 .*cache=stale' "$A_LOG" ||
    fail "the access log shows no stale answer"
docker rmi -f library/multi:1 >/dev/null
docker_pull library/multi:1
expect_eq "tags of library/multi with the upstream down (as stored)" "1" "$(REGISTRY_URL=$A tags_of library/multi)"
start=$SECONDS
code=$(curl -s -o "$TEST_TMP/down.json" -w '%{http_code}' --max-time 30 -H "Accept: $MANIFEST_ACCEPT" \
    "$A/v2/library/other/manifests/1")
expect_eq "uncached manifest with the upstream down" 502 "$code"
((SECONDS - start <= 5)) || fail "the uncached pull took $((SECONDS - start)) s to fail"
jq -e '.errors[0].message | test("upstream")' "$TEST_TMP/down.json" >/dev/null ||
    fail "unclear error: $(cat "$TEST_TMP/down.json")"
ok "uncached: 502 within $((SECONDS - start)) s: $(jq -r '.errors[0].message' "$TEST_TMP/down.json")"
if sk copy --src-tls-verify=false "docker://127.0.0.1:$PORT_A/library/other:1" "oci:$TEST_TMP/never:1" \
    >"$TEST_TMP/never.out" 2>&1; then
    fail "skopeo pulled an image that was never cached while the upstream was down"
fi
ok "skopeo's error: $(tail -n1 "$TEST_TMP/never.out")"

step "regfs B: upstreams under prefixes beside ordinary repositories"
"$UPSTREAM_BIN" serve "$UP_OPEN_CFG" >>"$UP_OPEN_LOG" 2>&1 </dev/null &
_E2E_REGISTRY_PIDS+=("$!")
wait_until 30 "upstream 1 again" v2_answers 200 "$UP_OPEN"
start_receiver "$TEST_TMP/events-b"
start_registry "$BIN" "$TEST_TMP/regfs-b" "$PORT_B" "$(notify_yaml "$RECEIVER_PORT")
proxy:
  timeout: 3s
  spooldirectory: $TEST_TMP/spool-b
  upstreams:
    - prefix: open
      remoteurl: $UP_OPEN
      ttl: 2s
    - prefix: secure
      remoteurl: $UP_TOKEN
      username: alice
      password: $ALICE_PW
    - prefix: silent
      remoteurl: http://127.0.0.1:$HANG_PORT"
B=$REGISTRY_URL
B_LOG=$REGISTRY_LOG
B_CFG="$TEST_TMP/registry-$_E2E_REG_SEQ.yml"
! grep -q "$ALICE_PW" "$B_LOG" || fail "regfs B logged the upstream's password"

step "pulls through the token-authenticated upstream"
pull_oci "127.0.0.1:$PORT_B/secure/private/app:1" "$TEST_TMP/out-secure" 1
oci_same_image "$SRC" "$TEST_TMP/out-secure" "$IMG1"
tokens=$(wc -l <"$TEST_TMP/issuer.log")
upstream_requests=$(grep -c '"GET /v2/private/app/\|"HEAD /v2/private/app/' "$UP_TOKEN_LOG" || true)
log "token server: $tokens requests for $upstream_requests upstream requests"
! grep -q "$ALICE_PW" "$B_LOG" || fail "regfs B logged the upstream's password"
docker_pull "127.0.0.1:$PORT_B/secure/private/app:1"
repo_digest=$(docker image inspect -f '{{join .RepoDigests " "}}' "127.0.0.1:$PORT_B/secure/private/app:1")
[[ "$repo_digest" == *"@$IMG1"* ]] || fail "docker's image is $repo_digest, not $IMG1"
# podman_pull REF: podman with its own storage, and no credentials of this machine's (nor
# the private dockerd's).
podman_pull() {
    echo '{}' >"$TEST_TMP/podman-auth.json"
    timeout 120 env -u DOCKER_CONFIG REGISTRY_AUTH_FILE="$TEST_TMP/podman-auth.json" \
        podman --root "$TEST_TMP/podman/root" --runroot "$TEST_TMP/podman/run" --storage-driver vfs \
        pull --tls-verify=false "$1" >"$TEST_TMP/podman.out" 2>&1 || {
        cat "$TEST_TMP/podman.out" >&2
        fail "podman pull $1 failed"
    }
    ok "podman pull $1"
}
if command -v podman >/dev/null; then
    podman_pull "127.0.0.1:$PORT_B/secure/private/app:1"
    podman_pull "127.0.0.1:$PORT_A/library/conc:1"
else
    log "podman is not installed: its pulls are skipped"
fi
pull_oci "127.0.0.1:$PORT_B/open/library/conc:1" "$TEST_TMP/out-open" 1
oci_same_image "$SRC" "$TEST_TMP/out-open" "$IMG3"

step "an upstream sending a blob that does not match its digest: nothing stored, pulls fail"
push_oci "$SRC" 2 "${UP_OPEN#http://}/library/bad:1"
bad_manifest=$(jq -r '.manifests[0].digest' "$SRC/blobs/sha256/${IMG2#sha256:}")
bad_layer=$(jq -r '.layers[0].digest' "$SRC/blobs/sha256/${bad_manifest#sha256:}")
bad_hex=${bad_layer#sha256:}
bad_file="$TEST_TMP/up-open/docker/registry/v2/blobs/sha256/${bad_hex:0:2}/$bad_hex/data"
[[ -f "$bad_file" ]] || fail "no $bad_file in upstream 1's storage"
# The same size, other bytes: registry:2 serves what it has without checking.
size=$(stat -c %s "$bad_file")
head -c "$size" /dev/urandom >"$bad_file"
for attempt in 1 2; do
    code=$(curl -s -o "$TEST_TMP/bad.blob" -w '%{http_code}' --max-time 30 \
        "$B/v2/open/library/bad/blobs/$bad_layer") && rc=0 || rc=$?
    got=$(stat -c %s "$TEST_TMP/bad.blob" 2>/dev/null || echo 0)
    ((rc != 0 || code != 200)) || fail "attempt $attempt: the corrupted blob was served whole ($got bytes)"
    ((got < size)) || fail "attempt $attempt: all $size bytes of the corrupted blob reached the client"
    ok "attempt $attempt: curl exit $rc, status $code, $got of $size bytes: the pull fails"
done
[[ ! -e "$TEST_TMP/regfs-b/docker/registry/v2/blobs/sha256/${bad_hex:0:2}/$bad_hex" ]] ||
    fail "regfs B stored the corrupted blob"
grep -q "does not match its digest: nothing was stored" "$B_LOG" ||
    fail "regfs B's log does not say the upstream's blob did not match"
if sk copy --all --src-tls-verify=false "docker://127.0.0.1:$PORT_B/open/library/bad:1" \
    "oci:$TEST_TMP/out-bad:1" >"$TEST_TMP/bad.out" 2>&1; then
    fail "skopeo pulled an image with a corrupted layer"
fi
ok "nothing stored, the log says why, skopeo's pull fails"

step "mixed mode: an ordinary repository takes pushes, a proxied prefix refuses them"
push_oci "$SRC" 2 "127.0.0.1:$PORT_B/mine/app:2"
pull_oci "127.0.0.1:$PORT_B/mine/app:2" "$TEST_TMP/out-mine" 2
oci_same_image "$SRC" "$TEST_TMP/out-mine" "$IMG2"
if skopeo_push "" "oci:$SRC:2" "127.0.0.1:$PORT_B/open/library/pushed:2" >"$TEST_TMP/refused-b.out" 2>&1; then
    fail "a push into the proxied prefix open/ succeeded"
fi
grep -q "pull-through cache" "$TEST_TMP/refused-b.out" ||
    fail "skopeo's error does not say why: $(cat "$TEST_TMP/refused-b.out")"
ok "skopeo was told: $(grep -o 'repository open/library/pushed[^"]*' "$TEST_TMP/refused-b.out" | head -n1)"
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$B/v2/open/library/conc/manifests/$IMG3")
expect_eq "DELETE in a proxied prefix" 405 "$code"

step "an upstream that never answers fails within the timeout"
start=$SECONDS
code=$(curl -s -o "$TEST_TMP/silent.json" -w '%{http_code}' --max-time 60 "$B/v2/silent/x/manifests/1")
expect_eq "pull from the silent upstream" 502 "$code"
((SECONDS - start <= 15)) || fail "the silent upstream held the pull $((SECONDS - start)) s"
ok "502 after $((SECONDS - start)) s: $(jq -r '.errors[0].message' "$TEST_TMP/silent.json")"

if [[ -n "${REGFS_FUSED:-}" ]] && [[ -e /dev/fuse ]]; then
    step "the FUSE mount shows cached repositories like any other"
    source "$E2E_DIR/../fused/lib_fused.sh"
    FUSED=$(fused_bin)
    mount_fused "$B_CFG" "$TEST_TMP/mnt" -o ro
    [[ -e "$TEST_TMP/mnt/secure/private/app/_tags/1" ]] ||
        fail "the mount has no secure/private/app/_tags/1: $(ls -R "$TEST_TMP/mnt" | head -n 20)"
    [[ -e "$TEST_TMP/mnt/open/library/conc" && -e "$TEST_TMP/mnt/mine/app" ]] ||
        fail "the mount lacks open/library/conc or mine/app"
    ok "secure/private/app, open/library/conc and mine/app are folders of the mount"
    fusermount3 -u "$TEST_TMP/mnt" || umount "$TEST_TMP/mnt"
fi

step "expiry: what was not pulled within the ttl goes, a pull reading it meanwhile completes"
conc_manifest=$(jq -r '.manifests[0].digest' "$SRC/blobs/sha256/${IMG3#sha256:}")
layer=$(jq -r '.layers[0].digest' "$SRC/blobs/sha256/${conc_manifest#sha256:}")
sleep 3  # past open/'s ttl of 2 s
# A slow reader of a blob whose image is about to expire.
curl -sS --max-time 60 --limit-rate 50k -o "$TEST_TMP/slow.blob" \
    "$B/v2/open/library/conc/blobs/$layer" &
slow=$!
sleep 1
"$BIN" garbage-collect --grace 0 "$B_CFG" >"$TEST_TMP/gc.out" 2>&1 || {
    cat "$TEST_TMP/gc.out" >&2
    fail "garbage-collect failed"
}
grep -q "expired cache tag" "$TEST_TMP/gc.out" || fail "garbage-collect expired nothing: $(tail -n 3 "$TEST_TMP/gc.out")"
wait "$slow" || fail "the pull reading a blob while it expired failed"
expect_eq "the blob read while it expired" "${layer#sha256:}" "$(sha256_of "$TEST_TMP/slow.blob")"
catalog_b=$(REGISTRY_URL=$B catalog)
[[ " $catalog_b " != *" open/library/conc "* ]] || fail "open/library/conc is still there: $catalog_b"
[[ " $catalog_b " == *" secure/private/app "* && " $catalog_b " == *" mine/app "* ]] ||
    fail "expiry took more than open/: $catalog_b"
ok "open/library/conc expired; secure/private/app (ttl 168h) and mine/app stay: $catalog_b"
pull_oci "127.0.0.1:$PORT_B/open/library/conc:1" "$TEST_TMP/out-again" 1
oci_same_image "$SRC" "$TEST_TMP/out-again" "$IMG3"
ok "the expired image pulls again, fetched anew"

step "webhooks: pulls of cached repositories and pushes of ordinary ones, no cache upkeep"
events_settle "$TEST_TMP/events-b"
events "$TEST_TMP/events-b" >"$TEST_TMP/b.events"
upkeep=$(jq -c 'select(.action != "pull" and (.target.repository | test("^(open|secure|silent)/")))' \
    "$TEST_TMP/b.events" | head -n 3)
[[ -z "$upkeep" ]] || fail "the cache filling or expiring itself was notified: $upkeep"
jq -e -s 'any(.action == "push" and .target.repository == "mine/app")' "$TEST_TMP/b.events" >/dev/null ||
    fail "no push event for mine/app"
jq -e -s 'any(.action == "pull" and .target.repository == "secure/private/app")' "$TEST_TMP/b.events" \
    >/dev/null || fail "no pull event for secure/private/app"
ok "$(wc -l <"$TEST_TMP/b.events") events: pushes of mine/app, pulls of the cached repositories, none of the cache's own fills and expiries"
