#!/usr/bin/env bash
# Live backup and restore, as docs/backup.md tells the operator to do it: the regfs-backup
# and regfs-backup-check scripts are taken from docs/backup.md and run unchanged.
#
#  * a backup of the storage root while regfs-httpd serves and a pusher keeps pushing,
#    then a second one with hard links into the first (--link-dest);
#  * both pass regfs-backup-check; the first, restored into a fresh root and served by a
#    new regfs-httpd, pulls every image pushed before the backup started (skopeo copy to
#    an OCI layout, digests compared) and every tag it holds resolves to a complete image
#    (regcheck.py); uploads in progress are not carried over;
#  * the order itself: a push after each of the five passes never leaves a dangling
#    reference, while blobs-first (the obvious order) does, and the check says so;
#  * inspection copies through regfs-fused: rsync -a MOUNT/<repo>/ keeps tags as symlinks,
#    a second run transfers nothing, and the tags-first loop of docs/backup.md copies a
#    repository being pushed to without a dangling symlink.
#
#   REGFS_HTTPD=build/httpd/regfs-httpd REGFS_FUSED=build/fused/regfs-fused \
#       bash tests/fused/backup_restore_test.sh
#
# Needs root, /dev/fuse, fuse3, rsync, skopeo, curl, jq, python3.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../e2e/lib.sh
source "$HERE/../e2e/lib.sh"
# shellcheck source=lib_fused.sh
source "$HERE/lib_fused.sh"

require_cmds skopeo curl jq rsync python3 sha256sum find sh
require_fuse
HTTPD=$(registry_bin)
FUSED=$(fused_bin)
REAL_RSYNC=$(command -v rsync)
V2=docker/registry/v2

# ---------------------------------------------------------------- the scripts of the guide

DOC="$HERE/../../docs/backup.md"
[[ -f "$DOC" ]] || fail "$DOC is missing"
# doc_script NAME OUT: the ```sh block between <!-- test:NAME begin/end --> in docs/backup.md
doc_script() {
    awk -v b="<!-- test:$1 begin -->" -v e="<!-- test:$1 end -->" \
        '$0 == b { f = 1; next } $0 == e { f = 0 } f && !/^```/' "$DOC" >"$2"
    [[ -s "$2" ]] || fail "no '$1' script between <!-- test:$1 begin/end --> in $DOC"
    chmod +x "$2"
    sh -n "$2" || fail "the '$1' script in $DOC is not valid sh"
}
BACKUP_SH="$TEST_TMP/regfs-backup"
CHECK_SH="$TEST_TMP/regfs-backup-check"
doc_script regfs-backup "$BACKUP_SH"
doc_script regfs-backup-check "$CHECK_SH"
ok "regfs-backup and regfs-backup-check taken from docs/backup.md"

# backup_check DIR: runs regfs-backup-check (with /bin/sh, as an operator would); output in
# $TEST_TMP/check.out, status in CHECK_RC.
backup_check() {
    CHECK_RC=0
    timeout 120 sh "$CHECK_SH" "$1" >"$TEST_TMP/check.out" 2>&1 || CHECK_RC=$?
    log "regfs-backup-check $(basename "$1"): $(tail -1 "$TEST_TMP/check.out") (status $CHECK_RC)"
}

# ---------------------------------------------------------------- before the backup

step "push images with skopeo (a 2-platform index, three single images sharing a layer)"
SRC="$TEST_TMP/src"
OS=$(mkoci "$SRC" os --platforms linux/amd64,linux/arm64 --layers 2 --size 30000 --seed os --shared-layer common)
WEB1=$(mkoci "$SRC" web1 --layers 2 --size 30000 --seed web1 --shared-layer common)
WEB2=$(mkoci "$SRC" web2 --layers 2 --size 30000 --seed web2 --shared-layer common)
API=$(mkoci "$SRC" api --layers 1 --size 30000 --seed api --shared-layer common)
ROOT="$TEST_TMP/root"
start_registry "$HTTPD" "$ROOT" "$(free_port)"
LIVE_URL=$REGISTRY_URL
LIVE_PID=$REGISTRY_PID
REG="127.0.0.1:$REGISTRY_PORT"
CFG="$TEST_TMP/registry-1.yml"
push_oci "$SRC" os "$REG/base/os:1"
push_oci "$SRC" web1 "$REG/apps/web:1"
push_oci "$SRC" web2 "$REG/apps/web:2"
push_oci "$SRC" api "$REG/apps/api:1"
# name layout-tag repo tag digest
SKOPEO_IMAGES=("os base/os 1 $OS" "web1 apps/web 1 $WEB1" "web2 apps/web 2 $WEB2" "api apps/api 1 $API")

step "an upload left in progress"
hdrs=$(curl -sS -D - -o /dev/null -X POST "$LIVE_URL/v2/apps/api/blobs/uploads/" | tr -d '\r')
UP_ID=$(awk -F': ' 'tolower($1) == "docker-upload-uuid" { print $2 }' <<<"$hdrs")
UP_LOC=$(awk -F': ' 'tolower($1) == "location" { print $2 }' <<<"$hdrs")
[[ "$UP_LOC" == http* ]] || UP_LOC="$LIVE_URL$UP_LOC"
head -c 5000 /dev/urandom >"$TEST_TMP/chunk"
expect_eq "PATCH of the upload" 202 "$(curl -s -o /dev/null -w '%{http_code}' -X PATCH \
    -H 'Content-Type: application/octet-stream' --data-binary @"$TEST_TMP/chunk" "$UP_LOC")"
check_true "the upload is in the live root" test -d "$ROOT/$V2/repositories/apps/api/_uploads/$UP_ID"

M="$TEST_TMP/mnt"
mount_fused "$CFG" "$M"

# ---------------------------------------------------------------- live backup

step "a pusher keeps pushing (live/a, live/b and apps/web, which also has older tags)"
PUSH_LOG="$TEST_TMP/push.log"
STOP="$TEST_TMP/stop-pusher"
: >"$PUSH_LOG"
"$PYTHON" "$HERE/pusher.py" "$LIVE_URL" "$PUSH_LOG" --repos live/a,live/b,apps/web --stop "$STOP" \
    --max 400 --pause 0.03 --seed p 2>"$TEST_TMP/pusher.err" &
PUSHER_PID=$!
on_exit "touch '$STOP'; stop_pid $PUSHER_PID 10"
_E2E_LOGS+=("$TEST_TMP/pusher.err")
pushed_at_least() { (($(wc -l <"$PUSH_LOG") >= $1)); }
wait_until 30 "the pusher's first images" pushed_at_least 20 ||
    fail "the pusher did not get 20 images in within 30 s"

step "inspection copies through the mount while pushes go on"
INSPECT="$TEST_TMP/inspect"
mkdir -p "$INSPECT/os"
t rsync -a "$M/base/os/" "$INSPECT/os/"
check "find INSPECT/os -type l (tags are symlinks)" "$INSPECT/os/_tags/1" "$(find "$INSPECT/os" -type l)"
check "readlink of the copied tag" "../_manifests/$OS" "$(readlink "$INSPECT/os/_tags/1")"
check "jq . of the copied tag = the manifest over HTTP" \
    "$(curl -sSf -H "Accept: $MANIFEST_ACCEPT" "$LIVE_URL/v2/base/os/manifests/1" | jq -S .)" \
    "$(jq -S . "$INSPECT/os/_tags/1")"
check "copied directories" "_blobs _manifests _tags _uploads" "$(cd "$INSPECT/os" && find . -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | LC_ALL=C sort | tr '\n' ' ' | sed 's/ $//')"
n=0
for f in "$INSPECT"/os/_manifests/* "$INSPECT"/os/_blobs/*; do
    [[ "sha256:$(sha256_of "$f")" == "${f##*/}" ]] || check "sha256 of the copied ${f#"$INSPECT"/}" "${f##*/}" "sha256:$(sha256_of "$f")"
    n=$((n + 1))
done
check "copied files, each hashing to its name (index + 2 manifests, 2 configs + 3 layers)" 8 "$n"
check "a second rsync -ai of the unchanged repository transfers nothing" "" \
    "$(t rsync -ai "$M/base/os/" "$INSPECT/os/")"

# The tags-first loop of docs/backup.md, on a repository the pusher is pushing to.
mkdir -p "$INSPECT/a"
for d in _tags _manifests _blobs; do
    rc=0
    t rsync -a "$M/live/a/$d" "$INSPECT/a/" || rc=$?
    ((rc == 0 || rc == 24)) || fail "rsync -a $M/live/a/$d: status $rc"
done
ntags=$(find "$INSPECT/a/_tags" -type l | wc -l)
check_true "live/a copied with its tags ($ntags)" test "$ntags" -gt 0
check "dangling tag symlinks in the copy of live/a (find -xtype l)" "" "$(find "$INSPECT/a" -xtype l)"
absent=0
for f in "$INSPECT"/a/_manifests/*; do
    for ref in $(jq -r '(.config.digest // empty | "_blobs/" + .), (.layers[]?.digest | "_blobs/" + .),
                        (.manifests[]?.digest | "_manifests/" + .)' "$f"); do
        [[ -f "$INSPECT/a/$ref" ]] || { log "copy of live/a: ${f##*/} needs $ref, not copied"; absent=$((absent + 1)); }
    done
done
check "blobs and manifests named by a copied manifest of live/a and not copied" 0 "$absent"

step "backup 1 of the live root (regfs-backup from docs/backup.md), pushes going on"
B1="$TEST_TMP/backup-1"
acked_before=$(wc -l <"$PUSH_LOG")
cp "$PUSH_LOG" "$TEST_TMP/acked-before-backup"
start=$(now_ms)
timeout 120 sh "$BACKUP_SH" "$ROOT" "$B1" || fail "regfs-backup $ROOT $B1 failed"
took=$(($(now_ms) - start))
during=$(($(wc -l <"$PUSH_LOG") - acked_before))
log "backup 1 took $took ms; $acked_before tag pushes acknowledged before it, $during during it"
((during > 0)) || log "WARNING: no push was acknowledged during the backup; the live part proved little"

step "backup 2, with hard links into backup 1, pushes going on"
B2="$TEST_TMP/backup-2"
timeout 120 sh "$BACKUP_SH" "$ROOT" "$B2" "$B1" || fail "regfs-backup $ROOT $B2 $B1 failed"
touch "$STOP"
wait_exit "$PUSHER_PID" 30
expect_eq "pusher exit status" 0 "$EXIT_RC"
log "pusher: $(tail -1 "$TEST_TMP/pusher.err"); $(wc -l <"$PUSH_LOG") tag pushes in all"

step "the backups"
backup_check "$B1"
check "regfs-backup-check backup-1" 0 "$CHECK_RC"
[[ $CHECK_RC == 0 ]] || cat "$TEST_TMP/check.out" >&2
backup_check "$B2"
check "regfs-backup-check backup-2" 0 "$CHECK_RC"
[[ $CHECK_RC == 0 ]] || cat "$TEST_TMP/check.out" >&2
check "uploads in the backup" "" "$(find "$B1" "$B2" -name _uploads)"
check "temporary files in the backup" "" "$(find "$B1" "$B2" -name '.tmp-*')"
blob="$V2/blobs/sha256/${OS:7:2}/${OS#sha256:}/data"
check "backup 2 hard-links unchanged blobs to backup 1" "$(stat -c %i "$B1/$blob")" "$(stat -c %i "$B2/$blob")"
nb1=$(find "$B1/$V2/repositories" -path '*/_manifests/tags/*/current/link' | wc -l)
nb2=$(find "$B2/$V2/repositories" -path '*/_manifests/tags/*/current/link' | wc -l)
log "tags in backup 1: $nb1, in backup 2: $nb2"
check_true "backup 2 has at least the tags of backup 1" test "$nb2" -ge "$nb1"

# ---------------------------------------------------------------- restore

step "restore backup 1 into a fresh root and serve it"
R2="$TEST_TMP/restored"
mkdir -p "$R2"
rsync -a --numeric-ids "$B1/" "$R2/"
start_registry "$HTTPD" "$R2" "$(free_port)"
REG2="127.0.0.1:$REGISTRY_PORT"

step "every image pushed with skopeo before the backup pulls completely"
for img in "${SKOPEO_IMAGES[@]}"; do
    read -r name repo tag digest <<<"$img"
    pull_oci "$REG2/$repo:$tag" "$TEST_TMP/pulled" "$name"
    check "digest of $repo:$tag pulled from the restored registry" "$digest" "$(oci_tag_digest "$TEST_TMP/pulled" "$name")"
    oci_same_image "$SRC" "$TEST_TMP/pulled" "$digest"
done

step "every tag in the restored registry pulls completely (skopeo sync of every repository)"
PULL="$TEST_TMP/pulled-all"
for repo in $(catalog); do
    sk sync --all --scoped --src docker --dest dir --src-tls-verify=false "$REG2/$repo" "$PULL" \
        >"$TEST_TMP/sync.out" 2>&1 || {
        cat "$TEST_TMP/sync.out" >&2
        fail "skopeo sync of $repo from the restored registry failed"
    }
done
# Every pulled image: manifest and blobs hash to their digests. Every push acknowledged
# before the backup started: pulled, with the acknowledged digest.
rc=0
"$PYTHON" - "$PULL/$REG2" "$TEST_TMP/acked-before-backup" >"$TEST_TMP/verify.out" 2>&1 <<'PY' || rc=$?
import hashlib, json, os, sys
root, acked = sys.argv[1], sys.argv[2]
def sha(p):
    with open(p, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()
errors, images = [], {}
for dirpath, dirs, files in os.walk(root):
    if "manifest.json" not in files:
        continue
    ref = os.path.relpath(dirpath, root)  # repo:tag
    images[ref] = "sha256:" + sha(os.path.join(dirpath, "manifest.json"))
    todo = [json.load(open(os.path.join(dirpath, "manifest.json")))]
    while todo:  # the manifest, or an index and its manifests (dir: names them <hex>.manifest.json)
        m = todo.pop()
        for c in m.get("manifests", []):
            p = os.path.join(dirpath, c["digest"].split(":", 1)[1] + ".manifest.json")
            if not os.path.exists(p) or "sha256:" + sha(p) != c["digest"]:
                errors.append("%s: manifest %s not pulled intact" % (ref, c["digest"]))
            else:
                todo.append(json.load(open(p)))
        blobs = [m["config"]["digest"]] if "config" in m else []
        for d in blobs + [l["digest"] for l in m.get("layers", [])]:
            p = os.path.join(dirpath, d.split(":", 1)[1])
            if not os.path.exists(p):
                errors.append("%s: blob %s not pulled" % (ref, d))
            elif "sha256:" + sha(p) != d:
                errors.append("%s: blob %s has other bytes" % (ref, d))
n = 0
for line in open(acked):
    repo, tag, digest = line.split()
    if tag == "latest":
        continue
    n += 1
    got = images.get("%s:%s" % (repo, tag))
    if got != digest:
        errors.append("%s:%s acknowledged as %s before the backup, pulled: %s" % (repo, tag, digest, got))
for e in errors:
    print("ERROR: " + e)
print("%d images pulled and verified; %d pushes acknowledged before the backup found" % (len(images), n))
print(len(images))
sys.exit(1 if errors else 0)
PY
grep -v '^[0-9]*$' "$TEST_TMP/verify.out" | tail -20 >&2
check "images pulled from the restored registry, verified" 0 "$rc"
check "images pulled = tags in backup 1" "$nb1" "$(tail -1 "$TEST_TMP/verify.out")"

step "every tag in the restored registry is a complete image; pushes acknowledged before the backup are there"
expects=()
while read -r repo tag digest; do
    [[ $tag == latest ]] || expects+=(--expect "$repo:$tag=$digest")
done <"$TEST_TMP/acked-before-backup"
for img in "${SKOPEO_IMAGES[@]}"; do
    read -r name repo tag digest <<<"$img"
    expects+=(--expect "$repo:$tag=$digest")
done
log "regcheck with $((${#expects[@]} / 2)) expected tags"
rc=0
timeout 240 "$PYTHON" "$E2E_DIR/regcheck.py" "$REGISTRY_URL" "${expects[@]}" --json "$TEST_TMP/restored-tags.json" \
    >"$TEST_TMP/regcheck.out" 2>&1 || rc=$?
tail -3 "$TEST_TMP/regcheck.out" >&2
check "regcheck of the restored registry" 0 "$rc"
check "tags served by the restored registry = tags in backup 1" "$nb1" "$(jq 'length' "$TEST_TMP/restored-tags.json")"
up=$(curl -s -w ' %{http_code}' "$REGISTRY_URL/v2/apps/api/blobs/uploads/$UP_ID")
check "the upload in progress at backup time is gone (GET its location)" "404 BLOB_UPLOAD_UNKNOWN" \
    "${up##* } $(jq -r '.errors[0].code' <<<"${up% *}" 2>/dev/null)"

step "merge backup 2 into the restored registry while it serves (docs/backup.md, live restore)"
# After every rsync of the guide's commands, every tag the registry serves must be complete.
doc_script live-restore "$TEST_TMP/live-restore"
mkdir -p "$TEST_TMP/checkbin"
cat >"$TEST_TMP/checkbin/rsync" <<EOF
#!/bin/bash
"$REAL_RSYNC" "\$@"
rc=\$?
echo pass >>"$TEST_TMP/merge.passes"
"$PYTHON" "$E2E_DIR/regcheck.py" "$REGISTRY_URL" >>"$TEST_TMP/merge.regcheck" 2>&1 ||
    echo "regcheck failed after rsync \$*" >>"$TEST_TMP/merge.failures"
exit \$rc
EOF
chmod +x "$TEST_TMP/checkbin/rsync"
: >"$TEST_TMP/merge.failures"
PATH="$TEST_TMP/checkbin:$PATH" B="$B2/$V2" R="$R2/$V2" timeout 240 sh "$TEST_TMP/live-restore" ||
    fail "the live restore commands of docs/backup.md failed"
check "rsync passes of the live restore" 4 "$(wc -l <"$TEST_TMP/merge.passes")"
check "passes after which a served tag was incomplete" "" "$(cat "$TEST_TMP/merge.failures")"
[[ ! -s "$TEST_TMP/merge.failures" ]] || grep ERROR "$TEST_TMP/merge.regcheck" | head -20 >&2
rc=0
timeout 240 "$PYTHON" "$E2E_DIR/regcheck.py" "$REGISTRY_URL" --json "$TEST_TMP/merged-tags.json" \
    >"$TEST_TMP/regcheck.out" 2>&1 || rc=$?
tail -1 "$TEST_TMP/regcheck.out" >&2
check "regcheck after the merge" 0 "$rc"
check "tags served after merging backup 2 = tags in backup 2" "$nb2" "$(jq 'length' "$TEST_TMP/merged-tags.json")"
stop_registry "$REGISTRY_PID"

# ---------------------------------------------------------------- the order

step "a push after each pass of regfs-backup leaves no dangling reference"
# An rsync wrapper first in PATH pushes one image (repository live/hook) after every pass.
mkdir -p "$TEST_TMP/hookbin"
cat >"$TEST_TMP/hookbin/rsync" <<EOF
#!/bin/bash
"$REAL_RSYNC" "\$@"
rc=\$?
n=\$(( \$(cat "$TEST_TMP/hook.count" 2>/dev/null || echo 0) + 1 ))
echo "\$n" >"$TEST_TMP/hook.count"
"$PYTHON" "$HERE/pusher.py" "$LIVE_URL" "$TEST_TMP/hook.log" --repos live/hook --count 1 --seed "after-pass-\$n" 2>/dev/null
exit \$rc
EOF
chmod +x "$TEST_TMP/hookbin/rsync"
B3="$TEST_TMP/backup-3"
PATH="$TEST_TMP/hookbin:$PATH" timeout 120 sh "$BACKUP_SH" "$ROOT" "$B3" || fail "regfs-backup with pushes between passes failed"
check "passes of regfs-backup (pushes in between)" 5 "$(cat "$TEST_TMP/hook.count")"
check "images pushed between the passes" 5 "$(grep -vc ' latest ' "$TEST_TMP/hook.log")"
backup_check "$B3"
check "regfs-backup-check of the backup with a push after every pass" 0 "$CHECK_RC"
[[ $CHECK_RC == 0 ]] || cat "$TEST_TMP/check.out" >&2
H="$B3/$V2/repositories/live/hook"
check "tags of live/hook in the backup (all pushed after pass 1)" "" "$(ls "$H/_manifests/tags" 2>/dev/null)"
check "manifests of live/hook in the backup (pushed after passes 1 and 2)" 2 \
    "$(find "$H/_manifests/revisions" -name link | wc -l)"

step "the obvious order, blobs first, breaks under the same push"
B4="$TEST_TMP/backup-naive"
mkdir -p "$B4/$V2"
"$REAL_RSYNC" -a --exclude='.tmp-*' "$ROOT/$V2/blobs/" "$B4/$V2/blobs/"
"$PYTHON" "$HERE/pusher.py" "$LIVE_URL" "$TEST_TMP/naive.log" --repos live/naive --count 1 --seed naive 2>/dev/null
"$REAL_RSYNC" -a --exclude='.tmp-*' --exclude='_uploads/' "$ROOT/$V2/repositories/" "$B4/$V2/repositories/"
backup_check "$B4"
check "regfs-backup-check of the blobs-first backup fails" 1 "$CHECK_RC"
check_true "and names the tag pushed in between" grep -q "live/naive.*bytes are missing" "$TEST_TMP/check.out"

stop_registry "$LIVE_PID"
finish_checks
