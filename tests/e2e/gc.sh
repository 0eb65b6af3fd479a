#!/usr/bin/env bash
# Garbage collection: "regfs-httpd garbage-collect" and storage.maintenance.gc.
#   1. on data regfs wrote (layers shared between images and repositories, an index,
#      manifests deleted by digest, blobs uploaded and never used), --dry-run --grace 0s
#      lists exactly the blobs registry:2's garbage-collect --dry-run lists (and that the
#      images say nothing refers to); the real run deletes them, removes the repositories
#      left with nothing, and registry:2 then serves every tag left;
#   2. --delete-untagged keeps a tagged index's children (distribution issue 3178) and
#      removes an untagged manifest; the default grace window (1h) keeps what was just pushed;
#   3. online: collections (--grace 3s) one after another while skopeo pushes images that
#      reuse layers of images deleted just before: every push succeeds, every tag stays
#      whole, and a last --grace 0s run leaves exactly the referenced blobs;
#   4. kill -9 of the collector midway, several times: every tag still pulls, and the next
#      run finishes the job;
#   5. two replicas on one root with the scheduled collection, pushed to alternately: every
#      push succeeds, one collection at a time, none fails;
#   6. docker pushes reusing the base layer of the image deleted just before, while the
#      server collects every 2 s: every push succeeds (not under the sanitizers).
# E2E_GC_SEED repeats the image data and delays; E2E_GC_ONLINE_SECONDS (60) and
# E2E_GC_REPLICA_SECONDS (30) set how long steps 3 and 5 push.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_cmds skopeo curl jq python3 sha256sum timeout flock
BIN=$(registry_bin)
REF_REGISTRY=${REF_REGISTRY:-/usr/bin/docker-registry}
[[ -x "$REF_REGISTRY" ]] || fail "reference registry $REF_REGISTRY not found (Debian package docker-registry)"
SEED=${E2E_GC_SEED:-$(date +%s)}
RANDOM=$SEED
log "random seed $SEED (E2E_GC_SEED=$SEED repeats the image data and delays)"
# Under the sanitizers (REGFS_E2E_SANITIZED) the loops are shorter: the same server code
# runs, the plain pass gives it the minutes.
if [[ -n "${REGFS_E2E_SANITIZED:-}" ]]; then
    ONLINE_SECONDS=${E2E_GC_ONLINE_SECONDS:-20}
    REPLICA_SECONDS=${E2E_GC_REPLICA_SECONDS:-15}
else
    ONLINE_SECONDS=${E2E_GC_ONLINE_SECONDS:-60}
    REPLICA_SECONDS=${E2E_GC_REPLICA_SECONDS:-30}
fi
SRC="$TEST_TMP/src"

# ------------------------------------------------------------------ helpers

# gc_config FILE ROOT PORT [MAINTENANCE]: a config for ROOT on 127.0.0.1:PORT, deletes
# enabled; MAINTENANCE (lines indented by 4) goes under storage.maintenance.
gc_config() {
    {
        printf 'version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s\n' "$2"
        printf '  delete:\n    enabled: true\n'
        [[ -z "${4:-}" ]] || printf '  maintenance:\n%s\n' "$4"
        printf 'http:\n  addr: 127.0.0.1:%s\n' "$3"
    } >"$1"
}

# The scheduled collection of step 5.
GC_SCHEDULE='    gc:
      enabled: true
      interval: 5s
      grace: 3s
      deleteuntagged: false
      dryrun: false'

# serve NAME ROOT [MAINTENANCE] [CONFIG]: "$BIN serve" on ROOT (config $TEST_TMP/NAME.yml
# on a free port, unless CONFIG is given; log $TEST_TMP/NAME.log). Sets CFG, URL, REG
# (host:port), PID and REGISTRY_URL (for tags_of, catalog).
serve() {
    local name=$1 root=$2 port
    CFG=${4:-$TEST_TMP/$name.yml}
    if [[ -z "${4:-}" ]]; then
        port=$(free_port)
        mkdir -p "$root"
        gc_config "$CFG" "$root" "$port" "${3:-}"
    fi
    port=$(sed -n 's/^  addr: 127.0.0.1://p' "$CFG")
    URL="http://127.0.0.1:$port" REG="127.0.0.1:$port" REGISTRY_URL="http://127.0.0.1:$port"
    serve_registry "${SERVE_BIN:-$BIN}" "$CFG" "$TEST_TMP/$name.log" "$name" v2_answers 200 "$URL"
    PID=$REGISTRY_PID
}

# collect OUT ARGS...: "$BIN garbage-collect ARGS" (the config last), stdout in OUT and
# stderr in OUT.err; fails unless it exits 0.
collect() {
    local out=$1
    shift
    if ! "$BIN" garbage-collect "$@" >"$out" 2>"$out.err"; then
        tail -n 20 "$out" >&2
        cat "$out.err" >&2
        fail "regfs-httpd garbage-collect $* failed"
    fi
}

# Digests named by the lines of a collector's output (sorted).
eligible() { sed -n 's/^blob eligible for deletion: //p' "$1" | sort -u; }
eligible_manifests() { sed -n 's/^manifest eligible for deletion: //p' "$1" | sort -u; }
deleting() { sed -n 's|^Deleting blob: /docker/registry/v2/blobs/\([a-z0-9]*\)/../\([0-9a-f]*\)$|\1:\2|p' "$1" | sort -u; }
# summary OUT: regfs's last line ("N repositories: ...").
summary() { grep -E '^[0-9]+ repositor(y|ies): ' "$1" | tail -n1; }

# referenced DIGEST...: what these manifests reach in $SRC (themselves included), sorted.
referenced() {
    local d
    for d in "$@"; do oci_reachable "$SRC" "$d"; done | sort -u
}

# blobs_on_disk ROOT: the digest of every blob data file in ROOT's store, sorted.
blobs_on_disk() {
    (cd "$1/docker/registry/v2/blobs" && find . -name data -type f) | awk -F/ '{ print $2 ":" $4 }' | sort
}

# expect_same WHAT NAME_A FILE_A NAME_B FILE_B: the two sorted lists are equal (else a diff).
expect_same() {
    if ! diff -u --label "$2" --label "$4" "$3" "$5" >"$TEST_TMP/diff.out"; then
        head -n 40 "$TEST_TMP/diff.out" >&2
        fail "$1: $2 and $4 differ"
    fi
    ok "$1: $2 = $4 ($(wc -l <"$3") entries)"
}

# delete_manifest URL REPO REFERENCE: DELETE /v2/REPO/manifests/REFERENCE answers 202.
delete_manifest() {
    local code
    code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 30 -X DELETE "$1/v2/$2/manifests/$3") || true
    [[ "$code" == 202 ]] || fail "DELETE $1/v2/$2/manifests/$3 answered $code, not 202"
}

# upload_junk URL REPO N NAME: N blobs of 100..2000 random bytes (in $TEST_TMP/junk-NAME),
# each a monolithic POST /v2/REPO/blobs/uploads/?digest=..., all in one curl; every one
# must answer 201. Prints their digests.
upload_junk() {
    local url=$1 repo=$2 n=$3 dir="$TEST_TMP/junk-$4" h args=() codes
    mkdir -p "$dir"
    "$PYTHON" - "$dir" "$n" "$SEED-$4" <<'EOF'
import hashlib, os, random, sys
d, n, rng = sys.argv[1], int(sys.argv[2]), random.Random(sys.argv[3])
for _ in range(n):
    b = rng.randbytes(rng.randint(100, 2000))
    with open(os.path.join(d, hashlib.sha256(b).hexdigest()), "wb") as f:
        f.write(b)
EOF
    for h in "$dir"/*; do
        h=${h##*/}
        ((${#args[@]} == 0)) || args+=(--next)
        args+=(-sS -o /dev/null -w '%{http_code}\n' --max-time 30 -X POST
            -H 'Content-Type: application/octet-stream' --data-binary "@$dir/$h"
            "$url/v2/$repo/blobs/uploads/?digest=sha256:$h")
    done
    codes=$(curl "${args[@]}" | sort | uniq -c | sed 's/^ *//' | tr '\n' ' ') || true
    [[ "$codes" == "$n 201 " ]] || fail "monolithic uploads of $n blobs to $repo answered: $codes"
    for h in "$dir"/*; do echo "sha256:${h##*/}"; done
}

# sleep_ms MS
sleep_ms() { sleep "$(($1 / 1000)).$(printf '%03d' $(($1 % 1000)))"; }

# expect_status WHAT CODE URL: GET URL (manifest types accepted) answers CODE.
expect_status() {
    local got
    got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -H "Accept: $MANIFEST_ACCEPT" "$3") || true
    [[ "$got" == "$2" ]] || fail "$1: GET $3 answered $got, not $2"
    ok "$1: HTTP $2"
}

# expect_args REF=DIGEST...: --expect options for regcheck.
expect_args() {
    local e
    EXPECT_ARGS=()
    for e in "$@"; do EXPECT_ARGS+=(--expect "$e"); done
}

mkdir -p "$SRC"

# ------------------------------------------------------------------ 1. registry:2's blobs

step "1. build data with regfs serving: shared layers, an index, deletes, unused uploads"
R1="$TEST_TMP/r1"
serve eq "$R1"
dA=$(mkoci "$SRC" eqA --layers 2 --size 120000 --seed "$SEED-a" --shared-layer "$SEED-s1")
dB=$(mkoci "$SRC" eqB --layers 3 --size 90000 --seed "$SEED-b" --shared-layer "$SEED-s1")
dM=$(mkoci "$SRC" eqM --platforms linux/amd64,linux/arm64 --layers 2 --size 50000 --seed "$SEED-m")
dN=$(mkoci "$SRC" eqN --platforms linux/amd64,linux/arm64 --layers 1 --size 50000 --seed "$SEED-n")
dC=$(mkoci "$SRC" eqC --layers 2 --size 70000 --seed "$SEED-c" --shared-layer "$SEED-s2")
dG=$(mkoci "$SRC" eqG --layers 2 --size 70000 --seed "$SEED-g" --shared-layer "$SEED-s2")
push_oci "$SRC" eqA "$REG/eq/app:a"
push_oci "$SRC" eqB "$REG/eq/app:b"     # shares a layer with eq/app:a
push_oci "$SRC" eqM "$REG/eq/multi:m"
push_oci "$SRC" eqN "$REG/eq/multi:n"
push_oci "$SRC" eqC "$REG/eq/lib:c"
push_oci "$SRC" eqG "$REG/eq/gone:g"    # shares a layer with eq/lib:c (another repository)
delete_manifest "$URL" eq/app "$dB"
delete_manifest "$URL" eq/multi "$dN"   # the index only: its children stay, as revisions
delete_manifest "$URL" eq/gone "$dG"    # eq/gone keeps nothing but layer links
upload_junk "$URL" eq/app 3 eq-app >"$TEST_TMP/junk1"
upload_junk "$URL" eq/orphan 2 eq-orphan >"$TEST_TMP/junk2"   # a repository of unused uploads
# (regfs lists a repository once it has _manifests; registry:2 2.8 lists eq/orphan too.)
expect_eq "catalog" "eq/app eq/gone eq/lib eq/multi" "$(catalog)"
[[ -d "$R1/docker/registry/v2/repositories/eq/orphan/_layers" ]] || fail "eq/orphan has no _layers folder"
expect_eq "tags of eq/app" "a" "$(tags_of eq/app)"
expect_eq "tags of eq/multi" "m" "$(tags_of eq/multi)"
stop_registry "$PID"

# What must stay: everything the remaining tags reach, and the deleted index's children
# (still manifests of eq/multi). Everything else on disk is garbage.
mapfile -t children_N < <(jq -r '.manifests[].digest' "$SRC/blobs/sha256/${dN#sha256:}")
referenced "$dA" "$dM" "$dC" "${children_N[@]}" >"$TEST_TMP/r1.kept"
blobs_on_disk "$R1" >"$TEST_TMP/r1.before"
comm -23 "$TEST_TMP/r1.before" "$TEST_TMP/r1.kept" >"$TEST_TMP/r1.garbage"
[[ -z "$(comm -13 "$TEST_TMP/r1.before" "$TEST_TMP/r1.kept")" ]] || fail "referenced blobs missing before any collection"
log "$(wc -l <"$TEST_TMP/r1.before") blobs on disk, $(wc -l <"$TEST_TMP/r1.kept") referenced, $(wc -l <"$TEST_TMP/r1.garbage") garbage"

step "1. dry runs on the stopped root: registry:2 and regfs --grace 0s list the same blobs"
snapshot_storage "$R1"
"$REF_REGISTRY" garbage-collect --dry-run "$CFG" >"$TEST_TMP/r1-ref.out" 2>"$TEST_TMP/r1-ref.err" || {
    tail -n 20 "$TEST_TMP/r1-ref.out" "$TEST_TMP/r1-ref.err" >&2
    fail "registry:2's garbage-collect --dry-run failed"
}
collect "$TEST_TMP/r1-dry.out" --dry-run --grace 0s "$CFG"
eligible "$TEST_TMP/r1-ref.out" >"$TEST_TMP/r1-ref.eligible"
eligible "$TEST_TMP/r1-dry.out" >"$TEST_TMP/r1-dry.eligible"
expect_same "blobs eligible for deletion" registry:2 "$TEST_TMP/r1-ref.eligible" regfs "$TEST_TMP/r1-dry.eligible"
expect_same "blobs eligible for deletion" regfs "$TEST_TMP/r1-dry.eligible" "unreferenced blobs" "$TEST_TMP/r1.garbage"
n_garbage=$(wc -l <"$TEST_TMP/r1.garbage")
grep -qx "[0-9]* blobs marked, $n_garbage blobs and 0 manifests eligible for deletion" "$TEST_TMP/r1-dry.out" ||
    fail "regfs's count line is not '... $n_garbage blobs and 0 manifests eligible for deletion': $(grep 'eligible for deletion$' "$TEST_TMP/r1-dry.out")"
declare -A TAGGED=([eq/app]=$dA [eq/lib]=$dC [eq/multi]=$dM)
for repo in "${!TAGGED[@]}"; do
    grep -qx "$repo" "$TEST_TMP/r1-dry.out" || fail "regfs's dry run does not name repository $repo"
    grep -qx "$repo: marking manifest ${TAGGED[$repo]}" "$TEST_TMP/r1-dry.out" ||
        fail "regfs's dry run does not mark the tagged manifest of $repo"
done
ok "registry:2's lines: repository names, marking manifest ..., the count line"
log "regfs: $(summary "$TEST_TMP/r1-dry.out")"
# The default grace window (1h) keeps everything: it was all written just now.
collect "$TEST_TMP/r1-grace.out" --dry-run "$CFG"
expect_eq "blobs eligible with the default grace window" 0 "$(eligible "$TEST_TMP/r1-grace.out" | wc -l)"
expect_storage_unchanged "the dry runs"

step "1. regfs-httpd garbage-collect --grace 0s, then registry:2 serves what is left"
collect "$TEST_TMP/r1-gc.out" --grace 0s "$CFG"
deleting "$TEST_TMP/r1-gc.out" >"$TEST_TMP/r1-gc.deleted"
expect_same "blobs deleted" "Deleting blob lines" "$TEST_TMP/r1-gc.deleted" "registry:2's eligible blobs" "$TEST_TMP/r1-ref.eligible"
blobs_on_disk "$R1" >"$TEST_TMP/r1.after"
expect_same "blobs left on disk" "on disk" "$TEST_TMP/r1.after" referenced "$TEST_TMP/r1.kept"
summary1=$(summary "$TEST_TMP/r1-gc.out")
log "regfs: $summary1"
[[ "$summary1" == *"deleted 0 manifests, $n_garbage blobs "* ]] || fail "summary does not say $n_garbage blobs were deleted: $summary1"
[[ "$summary1" == *" 2 empty repositories,"* ]] || fail "summary does not say 2 empty repositories were removed: $summary1"
for repo in eq/gone eq/orphan; do
    [[ ! -e "$R1/docker/registry/v2/repositories/$repo" ]] || fail "repository $repo, left with nothing, is still on disk"
done
ok "eq/gone and eq/orphan (layer links only) removed from disk"

SERVE_BIN=$REF_REGISTRY serve eq-ref "$R1" "" "$CFG"
expect_eq "catalog on registry:2" "eq/app eq/lib eq/multi" "$(catalog)"
verify_pull "$REG/eq/app:a" "$dA"
verify_pull "$REG/eq/multi:m" "$dM"
verify_pull "$REG/eq/lib:c" "$dC"
for c in "${children_N[@]}"; do expect_status "child $c of the deleted index" 200 "$URL/v2/eq/multi/manifests/$c"; done
regcheck "$URL" --expect "eq/app:a=$dA" --expect "eq/multi:m=$dM" --expect "eq/lib:c=$dC" ||
    fail "registry:2 finds the data regfs collected inconsistent"
j=$(head -n1 "$TEST_TMP/junk1")
expect_status "unused upload $j (layer link removed) on registry:2" 404 "$URL/v2/eq/app/blobs/$j"
stop_registry "$PID"
layoutcheck "$R1" --expect "eq/app:a=$dA" --expect "eq/multi:m=$dM" --expect "eq/lib:c=$dC" ||
    fail "the collected root is not in registry:2's layout"

step "1. nothing is left to collect"
collect "$TEST_TMP/r1-again.out" --dry-run --grace 0s "$CFG"
expect_eq "blobs regfs still finds eligible" 0 "$(eligible "$TEST_TMP/r1-again.out" | wc -l)"
"$REF_REGISTRY" garbage-collect --dry-run "$CFG" >"$TEST_TMP/r1-ref2.out" 2>&1 || fail "registry:2's second dry run failed"
expect_eq "blobs registry:2 still finds eligible" 0 "$(eligible "$TEST_TMP/r1-ref2.out" | wc -l)"

# ------------------------------------------------------------------ 2. --delete-untagged

step "2. --delete-untagged keeps a tagged index's children, removes an untagged manifest"
R2="$TEST_TMP/r2"
serve mu "$R2"
dX=$(mkoci "$SRC" muX --platforms linux/amd64,linux/arm64,linux/ppc64le --layers 2 --size 40000 --seed "$SEED-x")
dY=$(mkoci "$SRC" muY --layers 2 --size 40000 --seed "$SEED-y")
dZ=$(mkoci "$SRC" muZ --layers 1 --size 40000 --seed "$SEED-z")
push_oci "$SRC" muX "$REG/mu/app:multi"
push_oci "$SRC" muZ "$REG/mu/app:single"
push_oci "$SRC" muY "$REG/mu/app:tmp"
delete_manifest "$URL" mu/app tmp      # the tag only: the manifest stays, untagged
expect_eq "tags of mu/app" "multi single" "$(tags_of mu/app)"
expect_status "untagged manifest before the collection" 200 "$URL/v2/mu/app/manifests/$dY"

# Within the default grace window (1h) nothing goes, even with -m.
snapshot_storage "$R2"
collect "$TEST_TMP/r2-grace.out" --delete-untagged "$CFG"
expect_eq "manifests deleted within the grace window" "" "$(eligible_manifests "$TEST_TMP/r2-grace.out")"
expect_storage_unchanged "garbage-collect -m with the default grace window"

collect "$TEST_TMP/r2-dry.out" --dry-run -m --grace 0s "$CFG"
expect_eq "manifests eligible for deletion (dry run)" "$dY" "$(eligible_manifests "$TEST_TMP/r2-dry.out")"
collect "$TEST_TMP/r2-gc.out" --delete-untagged --grace 0s "$CFG"
expect_eq "manifests deleted" "$dY" "$(eligible_manifests "$TEST_TMP/r2-gc.out")"
log "regfs: $(summary "$TEST_TMP/r2-gc.out")"
verify_pull "$REG/mu/app:multi" "$dX"  # skopeo copy --all: the index and all 3 platforms
verify_pull "$REG/mu/app:single" "$dZ"
expect_status "untagged manifest after the collection" 404 "$URL/v2/mu/app/manifests/$dY"
referenced "$dX" "$dZ" >"$TEST_TMP/r2.kept"
blobs_on_disk "$R2" >"$TEST_TMP/r2.after"
expect_same "blobs left on disk" "on disk" "$TEST_TMP/r2.after" referenced "$TEST_TMP/r2.kept"
regcheck "$URL" --expect "mu/app:multi=$dX" --expect "mu/app:single=$dZ" || fail "registry inconsistent after -m"
stop_registry "$PID"

# ------------------------------------------------------------------ 3. online

# Image i of a chain NAME: 3 layers, the first shared with image i-1, the second with
# image i+1. Prints its digest.
chain_image() {
    mkoci "$SRC" "$1$2" --layers 3 --size 60000 --seed "$SEED-$1$2" \
        --shared-layer "$SEED-$1-s$(($2 - 1))" --shared-layer "$SEED-$1-s$2"
}

# gc_loop DIR CONFIG: runs "$BIN garbage-collect --grace 3s CONFIG" again and again until
# DIR/stop exists; run n's output in DIR/n.out; DIR/ok and DIR/failed list the runs.
gc_loop() {
    local dir=$1 cfg=$2 n=0 rc
    while [[ ! -e "$dir/stop" ]]; do
        n=$((n + 1))
        rc=0
        "$BIN" garbage-collect --grace 3s "$cfg" >"$dir/$n.out" 2>"$dir/$n.err" || rc=$?
        if ((rc == 0)); then echo "$n" >>"$dir/ok"; else echo "$n $rc" >>"$dir/failed"; fi
        sleep 0.2
    done
}

# sum_summaries FILE...: "<blobs deleted> <blobs rescued>" summed over regfs's summary lines.
sum_summaries() {
    cat "$@" 2>/dev/null | sed -n 's/.*deleted [0-9]* manifests*, \([0-9]*\) blobs* .*; \([0-9]*\) blobs* linked meanwhile kept.*/\1 \2/p' |
        awk '{ d += $1; r += $2 } END { printf "%d %d\n", d, r }'
}

step "3. online: garbage-collect --grace 3s in a loop while skopeo pushes for ${ONLINE_SECONDS}s"
R3="$TEST_TMP/r3"
serve online "$R3"
GCL="$TEST_TMP/gcloop"
mkdir -p "$GCL"
gc_loop "$GCL" "$CFG" &
GC_PID=$!
on_exit "touch '$GCL/stop'; stop_pid $GC_PID 30"
# Image i goes to online/r<(i/2)%2>: it shares a layer with image i-1 deleted just before,
# in the same repository (odd i) or in the other one (even i: skopeo mounts or uploads it).
# Every fourth image stays; the others are deleted right after their push, and the pause
# that follows (1 to 3.5 s) lets the layer the next image reuses age past the grace window
# before, during or after that push.
declare -A KEEP=()
pushes=0 i=0
end=$((SECONDS + ONLINE_SECONDS))
while ((SECONDS < end)); do
    i=$((i + 1))
    repo="online/r$(((i / 2) % 2))"
    d=$(chain_image on "$i")
    if ! sk copy --all --preserve-digests --dest-tls-verify=false "oci:$SRC:on$i" \
        "docker://$REG/$repo:t$i" >"$TEST_TMP/online-$i.push" 2>&1; then
        cat "$TEST_TMP/online-$i.push" >&2
        n=$(find "$GCL" -name '*.out' | wc -l)
        show_files "$GCL/$((n - 1)).out" "$GCL/$n.out"
        fail "push $i ($repo:t$i) failed while collections ran"
    fi
    pushes=$((pushes + 1))
    if ((i % 4 == 0)); then KEEP[$repo:t$i]=$d; else delete_manifest "$URL" "$repo" "$d"; fi
    sleep_ms $((1000 + RANDOM % 2500))
done
touch "$GCL/stop"
wait_until 120 "the collection loop to end" eval "! pid_alive $GC_PID" || fail "the collection loop did not end"
wait "$GC_PID" || true
if [[ -s "$GCL/failed" ]]; then
    read -r n rc < <(head -n1 "$GCL/failed")
    show_files "$GCL/$n.err"
    fail "$(wc -l <"$GCL/failed") of the collections failed (run $n: exit $rc)"
fi
runs=$(wc -l <"$GCL/ok")
((runs >= 3)) || fail "only $runs collections ran in ${ONLINE_SECONDS}s"
read -r online_deleted online_rescued < <(sum_summaries "$GCL"/*.out)
# From the access log: layers skopeo found still linked (and so did not send), and mounted.
present=$(grep -cE 'method=HEAD uri=/v2/online/r./blobs/sha256:[0-9a-f]+ status=200 .*skopeo' "$TEST_TMP/online.log") || true
mounted=$(grep -cE 'method=POST uri="/v2/online/r./blobs/uploads/\?from=.* status=201 .*skopeo' "$TEST_TMP/online.log") || true
ok "$pushes pushes succeeded while $runs collections ran ($online_deleted blobs deleted, $online_rescued linked meanwhile and kept; the pushes found $present blobs still there and mounted $mounted)"
EXPECT_ARGS=()
for ref in "${!KEEP[@]}"; do EXPECT_ARGS+=(--expect "$ref=${KEEP[$ref]}"); done
regcheck "$URL" "${EXPECT_ARGS[@]}" --json "$TEST_TMP/online-tags.json" || fail "registry inconsistent after the online collections"
expect_eq "tags left" "${#KEEP[@]}" "$(jq length "$TEST_TMP/online-tags.json")"
ok "every tag left resolves to intact manifests and blobs"

step "3. a last --grace 0s run leaves exactly the blobs the tags left refer to"
collect "$TEST_TMP/r3-gc.out" --grace 0s "$CFG"
log "regfs: $(summary "$TEST_TMP/r3-gc.out")"
referenced "${KEEP[@]}" >"$TEST_TMP/r3.kept"
blobs_on_disk "$R3" >"$TEST_TMP/r3.after"
expect_same "blobs left on disk" "on disk" "$TEST_TMP/r3.after" referenced "$TEST_TMP/r3.kept"
expect_eq "layer link tombstones left after --grace 0s" 0 "$(find "$R3/docker/registry/v2/repositories" -name unlinked | wc -l)"
regcheck "$URL" "${EXPECT_ARGS[@]}" || fail "registry inconsistent after the last collection"
layoutcheck "$R3" || fail "the collected root is not in registry:2's layout"
stop_registry "$PID"

# ------------------------------------------------------------------ 4. kill -9

# kill_midway WATCH DELAY_MS CONFIG OUT: starts "$BIN garbage-collect --grace 0s CONFIG"
# (stdout in OUT), waits until the first of the files listed in WATCH is gone (or the run
# ended), then DELAY_MS more, and kills it with SIGKILL. Prints "killed" or "finished RC".
kill_midway() {
    "$PYTHON" - "$@" "$BIN" garbage-collect --grace 0s "$3" <<'EOF'
import os, signal, subprocess, sys, time
watch, delay, out = sys.argv[1], int(sys.argv[2]) / 1000, sys.argv[4]
paths = [line.strip() for line in open(watch) if line.strip()]
with open(out, "wb") as f, open(out + ".err", "wb") as e:
    p = subprocess.Popen(sys.argv[5:], stdout=f, stderr=e)
while p.poll() is None and all(os.path.exists(x) for x in paths):
    time.sleep(0.0005)
time.sleep(delay)
if p.poll() is None:
    p.send_signal(signal.SIGKILL)
    p.wait()
    print("killed")
else:
    print("finished", p.returncode)
EOF
}

step "4. kill -9 of garbage-collect midway (several times), tags intact, the next run finishes"
R4="$TEST_TMP/r4"
serve kill "$R4"
V2="$R4/docker/registry/v2"
dK1=$(mkoci "$SRC" k1 --layers 2 --size 50000 --seed "$SEED-k1" --shared-layer "$SEED-k-s")
dK2=$(mkoci "$SRC" k2 --platforms linux/amd64,linux/arm64 --layers 2 --size 30000 --seed "$SEED-k2")
push_oci "$SRC" k1 "$REG/k/app:keep"
push_oci "$SRC" k2 "$REG/k/multi:keep"
expect_args "k/app:keep=$dK1" "k/multi:keep=$dK2"
referenced "$dK1" "$dK2" >"$TEST_TMP/k.kept"
# The first attempt is killed while it removes layer links (marking), the others once
# blobs go (sweeping), after a random delay; the delay's bound shrinks when a run ended
# (or had deleted everything) before the kill.
bound=40 kills=0 midsweep=0 attempt=0
while ((midsweep < 3 && attempt < 10)); do
    attempt=$((attempt + 1))
    # Garbage: 600 unused uploads in 3 repositories, and a deleted image sharing a layer
    # with k/app:keep.
    for r in 1 2 3; do upload_junk "$URL" "k/junk$r" 200 "k$attempt-$r" >"$TEST_TMP/k$attempt-$r.junk"; done
    d=$(mkoci "$SRC" "kd$attempt" --layers 2 --size 50000 --seed "$SEED-kd$attempt" --shared-layer "$SEED-k-s")
    push_oci "$SRC" "kd$attempt" "$REG/k/app:del$attempt"
    delete_manifest "$URL" k/app "$d"
    blobs_on_disk "$R4" >"$TEST_TMP/k.before"
    comm -23 "$TEST_TMP/k.before" "$TEST_TMP/k.kept" >"$TEST_TMP/k.garbage"
    n0=$(wc -l <"$TEST_TMP/k.garbage")
    links0=$(find "$V2/repositories" -path '*/_layers/*' -name link | wc -l)
    if ((attempt == 1)); then
        phase="marking" delay=0
        sed "s|^sha256:\(.*\)|$V2/repositories/k/junk3/_layers/sha256/\1/link|" "$TEST_TMP/k1-3.junk" >"$TEST_TMP/k.watch"
    else
        phase="sweeping" delay=$((RANDOM % (bound + 1)))
        sed "s|^sha256:\(..\)\(.*\)|$V2/blobs/sha256/\1/\1\2/data|" "$TEST_TMP/k.garbage" >"$TEST_TMP/k.watch"
    fi
    result=$(kill_midway "$TEST_TMP/k.watch" "$delay" "$CFG" "$TEST_TMP/k$attempt.out")
    left=$(blobs_on_disk "$R4" | comm -23 - "$TEST_TMP/k.kept" | wc -l)
    links=$(find "$V2/repositories" -path '*/_layers/*' -name link | wc -l)
    log "attempt $attempt: $result ${delay}ms after $phase began; $((n0 - left)) of $n0 garbage blobs and $((links0 - links)) of $links0 layer links gone"
    if [[ "$result" == finished* ]]; then
        [[ "$result" == "finished 0" ]] || { show_files "$TEST_TMP/k$attempt.out.err"; fail "garbage-collect $result"; }
        bound=$((bound / 2))
    else
        kills=$((kills + 1))
        if ((left > 0 && left < n0)); then
            midsweep=$((midsweep + 1))
        elif ((left == 0)); then
            bound=$((bound / 2))
        fi
    fi
    regcheck "$URL" "${EXPECT_ARGS[@]}" || fail "registry inconsistent after kill -9 of the collector (attempt $attempt)"
done
((kills > 0)) || fail "every collection finished before it could be killed"
((midsweep > 0)) || fail "no kill came in the middle of the sweep in $attempt attempts"
ok "$kills collectors killed ($midsweep in the middle of deleting blobs); every tag intact after each"
collect "$TEST_TMP/k-gc.out" --grace 0s "$CFG"
log "regfs: $(summary "$TEST_TMP/k-gc.out")"
collect "$TEST_TMP/k-dry.out" --dry-run --grace 0s "$CFG"
expect_eq "blobs eligible after the full run" 0 "$(eligible "$TEST_TMP/k-dry.out" | wc -l)"
blobs_on_disk "$R4" >"$TEST_TMP/k.after"
expect_same "blobs left on disk" "on disk" "$TEST_TMP/k.after" referenced "$TEST_TMP/k.kept"
regcheck "$URL" "${EXPECT_ARGS[@]}" || fail "registry inconsistent after the full run"
expect_eq "catalog after the full run" "k/app k/multi" "$(catalog)"

step "4. exit status: a second collector on the same storage (1), a bad command line (2)"
# Hold the storage's gc lease (the one lease file of this root: a flock) as a running
# collector would.
mapfile -t leases < <(find "$R4/regfs/leases" -type f)
expect_eq "lease files in regfs/leases" 1 "${#leases[@]}"
rc=0
flock "${leases[0]}" "$BIN" garbage-collect --grace 0s "$CFG" >"$TEST_TMP/k-busy.out" 2>"$TEST_TMP/k-busy.err" || rc=$?
expect_eq "exit status while another collection runs" 1 "$rc"
grep -q 'another garbage collection is running' "$TEST_TMP/k-busy.err" ||
    fail "no 'another garbage collection is running' on stderr: $(cat "$TEST_TMP/k-busy.err")"
rc=0
"$BIN" garbage-collect --no-such-flag "$CFG" >/dev/null 2>"$TEST_TMP/k-usage.err" || rc=$?
expect_eq "exit status of a bad command line" 2 "$rc"
grep -q '^usage: regfs-httpd garbage-collect' "$TEST_TMP/k-usage.err" || fail "no usage on stderr: $(cat "$TEST_TMP/k-usage.err")"
stop_registry "$PID"

# ------------------------------------------------------------------ 5. two replicas

step "5. two replicas with storage.maintenance.gc (every 5s, grace 3s) on one root, ${REPLICA_SECONDS}s of pushes"
R5="$TEST_TMP/r5"
serve rep1 "$R5" "$GC_SCHEDULE"
URL1=$URL REG1=$REG LOG1="$TEST_TMP/rep1.log" PID1=$PID
serve rep2 "$R5" "$GC_SCHEDULE"
URL2=$URL REG2=$REG LOG2="$TEST_TMP/rep2.log"
# Image i goes to replica i%2 and repository rep/r<(i/2)%2>, shares layers with images
# i-1 and i+1 (chain_image); image i-1 is deleted, through the other replica, right after
# image i is pushed, unless it is one of every third that stay.
declare -A KEEP5=()
pushes5=0 i=0 prev=
end=$((SECONDS + REPLICA_SECONDS))
while ((SECONDS < end)); do
    i=$((i + 1))
    if ((i % 2)); then reg=$REG1 other=$URL2; else reg=$REG2 other=$URL1; fi
    repo="rep/r$(((i / 2) % 2))"
    d=$(chain_image rp "$i")
    if ! sk copy --all --preserve-digests --dest-tls-verify=false "oci:$SRC:rp$i" \
        "docker://$reg/$repo:t$i" >"$TEST_TMP/rep-$i.push" 2>&1; then
        cat "$TEST_TMP/rep-$i.push" >&2
        fail "push $i ($reg/$repo:t$i) failed while the replicas collected"
    fi
    pushes5=$((pushes5 + 1))
    if [[ -n "$prev" ]]; then
        read -r prepo ptag pd <<<"$prev"
        if ((${ptag#t} % 3 == 0)); then KEEP5[$prepo:$ptag]=$pd; else delete_manifest "$other" "$prepo" "$pd"; fi
    fi
    prev="$repo t$i $d"
    sleep_ms $((RANDOM % 3000))
done
read -r prepo ptag pd <<<"$prev"
KEEP5[$prepo:$ptag]=$pd
ok "$pushes5 pushes to the two replicas succeeded"
# runs_of LOG...: how many collection summaries the replicas logged.
runs_of() { cat "$@" | grep -cE 'garbage collection: [0-9]+ repositor'; }
some_run_logged() { (($(runs_of "$LOG1" "$LOG2") > 0)); }
wait_until 60 "a scheduled collection" some_run_logged || fail "no replica logged a 'garbage collection: ' summary"
runs_in_logs_n=$(runs_of "$LOG1" "$LOG2")
log "scheduled collections: $(runs_of "$LOG1") by replica 1, $(runs_of "$LOG2") by replica 2"
if grep -hE 'garbage collection failed|level=error' "$LOG1" "$LOG2" >"$TEST_TMP/rep.errors"; then
    head -n 10 "$TEST_TMP/rep.errors" >&2
    fail "a replica logged an error"
fi
ok "$runs_in_logs_n scheduled collections, none failed"
# Once per interval across both: the summaries are 5 s apart, or a little less (the last
# run is recorded in whole seconds); two replicas collecting in turn would be much closer.
gaps=$(grep -hE 'garbage collection: [0-9]+ repositor' "$LOG1" "$LOG2" | sed -n 's/^time=\([^ ]*\) .*/\1/p' |
    "$PYTHON" -c 'import sys, datetime
t = sorted(datetime.datetime.strptime(l.strip(), "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() for l in sys.stdin)
print(" ".join("%.1f" % (b - a) for a, b in zip(t, t[1:])))')
log "seconds between scheduled collections: ${gaps:-(one run)}"
for g in $gaps; do
    ((10#${g/./} >= 35)) || fail "two scheduled collections ${g}s apart (interval 5s): $gaps"
done
EXPECT_ARGS=()
for ref in "${!KEEP5[@]}"; do EXPECT_ARGS+=(--expect "$ref=${KEEP5[$ref]}"); done
regcheck "$URL1" "${EXPECT_ARGS[@]}" || fail "replica 1 inconsistent"
regcheck "$URL2" "${EXPECT_ARGS[@]}" || fail "replica 2 inconsistent"
verify_pull "$REG1/$prepo:$ptag" "$pd"   # the last image, with skopeo, from each replica
verify_pull "$REG2/$prepo:$ptag" "$pd"
ok "all ${#KEEP5[@]} tags left pull from both replicas"
# With one replica gone, the other takes its turns.
rep2_before=$(runs_of "$LOG2") || true
stop_registry "$PID1"
rep2_collected() { (($(runs_of "$LOG2") > rep2_before)); }
wait_until 60 "replica 2 to collect once replica 1 stopped" rep2_collected ||
    fail "replica 2 did not collect within 60 s of replica 1 stopping"
ok "replica 2 collects once replica 1 is gone"
grep -hE 'level=(warn|error)' "$LOG1" "$LOG2" | head -n 5 | while read -r l; do log "replica warning: $l"; done || true

# Docker's push: HEAD each layer, upload what is missing, PUT the manifest. Its base layer
# is the deleted image's, so it turns unused and older than the grace window right as the
# push checks it. The sanitized pass leaves this to the plain one (same server code).
docker_pushes=skipped
if [[ -z "${REGFS_E2E_SANITIZED:-}" ]]; then
    step "6. docker pushes sharing a base layer with the image deleted just before, while the server collects every 2s (grace 3s)"
    start_dockerd
    serve docker "$TEST_TMP/docker-data" '    gc:
      enabled: true
      interval: 2s
      grace: 3s'
    docker_import_base "$REG/base:1" gc-base 2000000
    ctx="$TEST_TMP/ctx/img"
    mkdir -p "$ctx"
    previous=""
    for i in $(seq 1 10); do
        if [[ -n "$previous" ]]; then
            expect_eq "DELETE of the previous image" 202 \
                "$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$URL/v2/app/manifests/$previous")"
        fi
        sleep $((RANDOM % 5))  # 0-4 s: the base layer's link leaves the 3 s window now and then
        head -c 100000 /dev/urandom >"$ctx/f"
        printf 'FROM %s\nCOPY f /f%s\n' "$REG/base:1" "$i" >"$ctx/Dockerfile"
        DOCKER_BUILDKIT=0 timeout 120 docker build -q -t "$REG/app:t$i" "$ctx" >/dev/null ||
            fail "docker build of app:t$i failed"
        previous=$(docker_push "$REG/app:t$i")
    done
    docker_runs=$(runs_of "$TEST_TMP/docker.log") || true
    regcheck "$URL" --expect "app:t10=$previous" || fail "registry content check failed"
    docker rmi -f "$REG/app:t10" >/dev/null
    docker_pull "$REG/app:t10"
    docker_pushes="10 pushes, $docker_runs collections"
    ok "10 docker pushes succeeded while the server collected $docker_runs times"
fi

step "summary"
log "1: $n_garbage blobs deleted as registry:2 would; 2: -m kept a 3-platform index; 3: $pushes pushes, $runs collections, $online_deleted blobs deleted, $online_rescued rescued; 4: $kills kills ($midsweep mid-sweep); 5: $pushes5 pushes, $runs_in_logs_n scheduled collections; 6 (docker): $docker_pushes"
