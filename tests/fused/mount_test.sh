#!/usr/bin/env bash
# regfs-fused on a real FUSE mount, side by side with regfs-httpd on the same storage:
# the tree (ls, stat, readlink, cat, find, du), contents and sizes against the HTTP API,
# one inode per digest across repositories, tagging / untagging / renaming / deleting
# through the mount and seen over HTTP at once, HTTP changes seen in the mount within a
# second (also in listings the kernel has cached), new and deleted repositories, every
# refused operation with its errno, a mount with deletes disabled, a
# read-only mount, error exits (missing and busy mount point) and clean unmounting on
# SIGTERM and fusermount3 -u.
#
#   REGFS_HTTPD=build/httpd/regfs-httpd REGFS_FUSED=build/fused/regfs-fused \
#       bash tests/fused/mount_test.sh
#
# Needs root, /dev/fuse, fuse3, skopeo, curl, jq, python3.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../e2e/lib.sh
source "$HERE/../e2e/lib.sh"
# shellcheck source=lib_fused.sh
source "$HERE/lib_fused.sh"

require_cmds skopeo curl jq python3 sha256sum find du stat readlink
require_fuse
HTTPD=$(registry_bin)
FUSED=$(fused_bin)

# manifests_of LAYOUT DIGEST / blobs_of LAYOUT DIGEST: what a push of DIGEST puts in a
# repository's _manifests and _blobs (sorted digests).
kind_of() {
    case "$(jq -r '.mediaType // ""' "$1/blobs/sha256/${2#sha256:}" 2>/dev/null)" in
    *manifest* | *index*) echo manifest ;;
    *) echo blob ;;
    esac
}
manifests_of() {
    local d
    for d in $(oci_reachable "$1" "$2" | sort -u); do
        [[ $(kind_of "$1" "$d") == manifest ]] && echo "$d"
    done
    return 0
}
blobs_of() {
    local d
    for d in $(oci_reachable "$1" "$2" | sort -u); do
        [[ $(kind_of "$1" "$d") == blob ]] && echo "$d"
    done
    return 0
}
words() { tr '\n' ' ' | sed 's/ $//'; }
# ls_names DIR: the names in DIR, sorted, space separated (through the mount, under timeout).
ls_names() { t ls -A "$1" | LC_ALL=C sort | words; }

# ---------------------------------------------------------------- setup

step "generate images: a 2-platform index, a nested single image, scratch images (one shared layer)"
SRC="$TEST_TMP/src"
IDX=$(mkoci "$SRC" 1.0 --platforms linux/amd64,linux/arm64 --layers 2 --size 30000 --seed demo --shared-layer common)
APP=$(mkoci "$SRC" v1 --layers 2 --size 30000 --seed app --shared-layer common)
S1=$(mkoci "$SRC" s1 --layers 1 --size 30000 --seed s1 --shared-layer common)
S2=$(mkoci "$SRC" s2 --layers 1 --size 20000 --seed s2)
NS=$(mkoci "$SRC" ns --layers 1 --size 10000 --seed ns)
LATE=$(mkoci "$SRC" late --layers 1 --size 10000 --seed late)
SHARED=$(jq -r '.layers[0].digest' "$SRC/blobs/sha256/${APP#sha256:}")
log "index $IDX, team/app $APP, shared layer $SHARED"

ROOT="$TEST_TMP/root"
start_registry "$HTTPD" "$ROOT" "$(free_port)"
CFG="$TEST_TMP/registry-1.yml" # delete enabled (lib.sh)
REG="127.0.0.1:$REGISTRY_PORT"
V2="$ROOT/docker/registry/v2"

step "push with skopeo"
push_oci "$SRC" 1.0 "$REG/demo:1.0"
push_oci "$SRC" v1 "$REG/team/app:v1"
push_oci "$SRC" s1 "$REG/scratch:1"
push_oci "$SRC" s2 "$REG/scratch:2"
push_oci "$SRC" ns "$REG/ns/tmp:1"
expect_eq "catalog" "demo ns/tmp scratch team/app" "$(catalog)"

M="$TEST_TMP/mnt"
step "mount (deletes enabled) at $M"
mount_fused "$CFG" "$M"
MAIN_PID=$FUSED_PID
MAIN_LOG=$FUSED_LOG
check "fstype in /proc/mounts" "fuse.regfs" "$(awk -v p="$M" '$2 == p { print $3 }' /proc/mounts)"

# What the mount promises for a change made by another process (docs/file-tree.md, "How
# the mount stays current"): it shows within SEEN_BOUND_MS, and a name that goes is never
# still resolvable once a listing lacks it.
SEEN_BOUND_MS=2000
# seen_within WHAT CMD...: poll CMD every 20 ms until it succeeds; fails if that takes
# longer than SEEN_BOUND_MS; logs how long it took.
seen_within() {
    local what=$1 start elapsed
    shift
    start=$(now_ms)
    while :; do
        if "$@" >/dev/null 2>&1; then
            elapsed=$(($(now_ms) - start))
            ok "$what: after $elapsed ms"
            return 0
        fi
        elapsed=$(($(now_ms) - start))
        if ((elapsed > SEEN_BOUND_MS)); then
            check "$what within $SEEN_BOUND_MS ms" "seen" "not seen after $elapsed ms"
            return 0
        fi
        sleep 0.02
    done
}

# ---------------------------------------------------------------- the tree

step "ls of the tree"
check "ls MOUNT" "demo ns scratch team" "$(ls_names "$M")"
check "ls MOUNT/team" "app" "$(ls_names "$M/team")"
check "ls MOUNT/team/app" "_blobs _manifests _tags _uploads" "$(ls_names "$M/team/app")"
check "ls MOUNT/ns (a namespace, not a repository)" "tmp" "$(ls_names "$M/ns")"
check "ls demo/_tags" "1.0" "$(ls_names "$M/demo/_tags")"
check "ls team/app/_tags" "v1" "$(ls_names "$M/team/app/_tags")"
check "ls scratch/_tags" "1 2" "$(ls_names "$M/scratch/_tags")"
check "ls demo/_manifests (index + 2 platform manifests)" "$(manifests_of "$SRC" "$IDX" | words)" \
    "$(ls_names "$M/demo/_manifests")"
check "ls demo/_blobs (configs + layers)" "$(blobs_of "$SRC" "$IDX" | words)" "$(ls_names "$M/demo/_blobs")"
check "ls team/app/_manifests" "$APP" "$(ls_names "$M/team/app/_manifests")"
check "ls ns/tmp/_manifests" "$NS" "$(ls_names "$M/ns/tmp/_manifests")"
check "ls team/app/_blobs" "$(blobs_of "$SRC" "$APP" | words)" "$(ls_names "$M/team/app/_blobs")"
check "ls demo/_uploads (none)" "" "$(ls_names "$M/demo/_uploads")"
check "directory mode, owner" "755 root root" "$(t stat -c '%a %U %G' "$M/team/app/_blobs")"
check "repository directory mode" "755" "$(t stat -c '%a' "$M/team/app")"

step "every manifest and blob: size = HTTP Content-Length = OCI layout size, sha256 = name, mode 0644"
n=0
for repo in demo team/app scratch ns/tmp; do
    for sub in _manifests _blobs; do
        dir="$M/$repo/$sub"
        paths=()
        for name in $(t ls "$dir"); do paths+=("$dir/$name"); done
        # name size mode
        while read -r f size mode; do
            name=${f##*/}
            if [[ $sub == _manifests ]]; then url="$REGISTRY_URL/v2/$repo/manifests/$name"; else url="$REGISTRY_URL/v2/$repo/blobs/$name"; fi
            len=$(http_head_field "$url" Content-Length)
            [[ "$size" == "$len" ]] || check "size of $repo/$sub/$name vs HTTP Content-Length" "$len" "$size"
            pushed=$(stat -c %s "$SRC/blobs/sha256/${name#sha256:}")
            [[ "$size" == "$pushed" ]] || check "size of $repo/$sub/$name vs the pushed bytes" "$pushed" "$size"
            [[ "$mode" == "644:root:root:regular_file" ]] || check "mode of $repo/$sub/$name" "644:root:root:regular_file" "$mode"
            n=$((n + 1))
        done < <(t stat -c '%n %s %a:%U:%G:%F' "${paths[@]}" | sed 's/regular file$/regular_file/')
        # sha256 of the bytes read through the mount = the name (so the bytes are the pushed ones)
        while read -r sum f; do
            [[ "sha256:$sum" == "${f##*/}" ]] || check "sha256 of $repo/$sub/${f##*/}" "${f##*/}" "sha256:$sum"
        done < <(t sha256sum "${paths[@]}")
    done
done
check "files checked (size, sha256, mode)" 21 "$n"
check "cat team/app/_blobs/<shared layer> | sha256sum" "${SHARED#sha256:}" \
    "$(t cat "$M/team/app/_blobs/$SHARED" | sha256sum | cut -d' ' -f1)"

step "mtimes: a blob's is when it was stored, a tag's when it was last set"
check "mtime of demo/_blobs/$SHARED = its data file's" \
    "$(stat -c %.9Y "$V2/blobs/sha256/${SHARED:7:2}/${SHARED#sha256:}/data")" "$(t stat -c %.9Y "$M/demo/_blobs/$SHARED")"
check "mtime of demo/_tags/1.0 = its current/link's" \
    "$(stat -c %.9Y "$V2/repositories/demo/_manifests/tags/1.0/current/link")" "$(t stat -c %.9Y "$M/demo/_tags/1.0")"

step "tags: readlink, cat | jq = the manifest over HTTP"
check "readlink demo/_tags/1.0" "../_manifests/$IDX" "$(t readlink -v "$M/demo/_tags/1.0")"
check "readlink team/app/_tags/v1" "../_manifests/$APP" "$(t readlink -v "$M/team/app/_tags/v1")"
check "tag symlink mode and size" "777 symbolic link 85" "$(t stat -c '%a %F %s' "$M/demo/_tags/1.0")"
reg_get /v2/demo/manifests/1.0 >"$TEST_TMP/http-1.0"
t cat "$M/demo/_tags/1.0" >"$TEST_TMP/mnt-1.0"
check "cat demo/_tags/1.0 | jq -S . = HTTP manifest | jq -S ." "$(jq -S . "$TEST_TMP/http-1.0")" "$(jq -S . "$TEST_TMP/mnt-1.0")"
check_true "cat demo/_tags/1.0 is byte-identical to GET /v2/demo/manifests/1.0" cmp -s "$TEST_TMP/http-1.0" "$TEST_TMP/mnt-1.0"
check "platforms of the index read through the tag" "linux/amd64 linux/arm64" \
    "$(t jq -r '[.manifests[].platform | "\(.os)/\(.architecture)"] | join(" ")' "$M/demo/_tags/1.0")"

step "one inode per digest: the shared layer in three repositories"
ino_demo=$(t stat -c %i "$M/demo/_blobs/$SHARED")
check "inode of $SHARED in team/app = in demo" "$ino_demo" "$(t stat -c %i "$M/team/app/_blobs/$SHARED")"
check "inode of $SHARED in scratch = in demo" "$ino_demo" "$(t stat -c %i "$M/scratch/_blobs/$SHARED")"
other=$(blobs_of "$SRC" "$APP" | grep -v "$SHARED" | head -1)
check_true "an unshared blob has another inode" test "$(t stat -c %i "$M/team/app/_blobs/$other")" != "$ino_demo"

step "find and du"
check "find MOUNT -path '*/_tags/*'" \
    "$M/demo/_tags/1.0 $M/ns/tmp/_tags/1 $M/scratch/_tags/1 $M/scratch/_tags/2 $M/team/app/_tags/v1" \
    "$(t find "$M" -path '*/_tags/*' | LC_ALL=C sort | words)"
check "find MOUNT -type l (tags are the only symlinks)" 5 "$(t find "$M" -type l | wc -l)"
check "find MOUNT -type f -name 'sha256:*'" 21 "$(t find "$M" -type f -name 'sha256:*' | wc -l)"
du_out=$(t du -sh "$M")
log "du -sh: $du_out"
check_true "du -sh MOUNT prints a size" grep -Eq '^[0-9.,]+[KMG]?[[:space:]]' <<<"$du_out"
want=4096
for d in $(blobs_of "$SRC" "$IDX"); do want=$((want + $(stat -c %s "$SRC/blobs/sha256/${d#sha256:}"))); done
check "du -sb demo/_blobs (apparent size: dir + blob sizes)" "$want" "$(t du -sb "$M/demo/_blobs" | cut -f1)"

# ---------------------------------------------------------------- changes through the mount

DEMO_AMD=$(jq -r '.manifests[] | select(.platform.architecture == "amd64") | .digest' "$SRC/blobs/sha256/${IDX#sha256:}")
DEMO_ARM=$(jq -r '.manifests[] | select(.platform.architecture == "arm64") | .digest' "$SRC/blobs/sha256/${IDX#sha256:}")

step "ln -s tags a manifest; HTTP sees it at once"
before=$(date +%s)
t ln -s "../_manifests/$DEMO_AMD" "$M/demo/_tags/amd"
check "tags/list right after ln -s" "1.0 amd" "$(tags_of demo)"
check "HTTP digest of demo:amd" "$DEMO_AMD" "$(tag_digest demo amd)"
check "readlink demo/_tags/amd" "../_manifests/$DEMO_AMD" "$(t readlink -v "$M/demo/_tags/amd")"
check_true "mtime of the new tag is now" test "$(t stat -c %Y "$M/demo/_tags/amd")" -ge "$before"
t ln -s "$DEMO_ARM" "$M/demo/_tags/bare" # a bare digest is accepted as the target too
check "HTTP digest of demo:bare (ln -s with a bare digest)" "$DEMO_ARM" "$(tag_digest demo bare)"
check "readlink demo/_tags/bare (normalised)" "../_manifests/$DEMO_ARM" "$(t readlink -v "$M/demo/_tags/bare")"
t rm "$M/demo/_tags/bare"
# A change through the mount is a registry operation: it is in the change log, by the
# mount's user (the newest entry; entries are numbered files, temporaries start with a dot).
entry=$(ls "$ROOT/regfs/log/entries" | sort | tail -n 1)
check "change log entry of the mount's rm of a tag" "tag_deleted demo bare $(id -un)" \
    "$(tail -n +2 "$ROOT/regfs/log/entries/$entry" | jq -r '"\(.events[0].kind) \(.events[0].repository) \(.events[0].tag) \(.actor)"')"

step "ln -sfn moves a tag"
m1=$(t stat -c %.9Y "$M/demo/_tags/amd")
sleep 0.05
t ln -sfn "../_manifests/$DEMO_ARM" "$M/demo/_tags/amd"
check "HTTP digest of demo:amd after ln -sfn" "$DEMO_ARM" "$(tag_digest demo amd)"
check "tags/list after ln -sfn (no temporary name left)" "1.0 amd" "$(tags_of demo)"
check "readlink demo/_tags/amd after ln -sfn" "../_manifests/$DEMO_ARM" "$(t readlink -v "$M/demo/_tags/amd")"
m2=$(t stat -c %.9Y "$M/demo/_tags/amd")
check_true "tag mtime moves forward when the tag is set ($m1 -> $m2)" \
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[2]) > float(sys.argv[1]) else 1)' "$m1" "$m2"

step "mv renames a tag"
t mv "$M/demo/_tags/amd" "$M/demo/_tags/arm"
check "tags/list after mv" "1.0 arm" "$(tags_of demo)"
check "HTTP digest of demo:arm" "$DEMO_ARM" "$(tag_digest demo arm)"
check "ls demo/_tags after mv" "1.0 arm" "$(ls_names "$M/demo/_tags")"
t ln -s "../_manifests/$DEMO_AMD" "$M/demo/_tags/other"
t mv "$M/demo/_tags/other" "$M/demo/_tags/arm" # onto an existing tag: replaces it
check "HTTP digest of demo:arm after mv onto it" "$DEMO_AMD" "$(tag_digest demo arm)"
check "tags/list after mv onto an existing tag" "1.0 arm" "$(tags_of demo)"

step "a tag renamed right after it was set or renamed reads back at once"
# Each sequence runs back to back, well inside the kernel's 0.5 s entry timeout, as a
# script would run it: the renamed tag must be readable (and renamable) immediately.
seq_out() { "$@" 2>&1 | tail -1; }
chain1() {
    t ln -s "../_manifests/$DEMO_AMD" "$D/_tags/q1" && t ln -sfn "../_manifests/$DEMO_ARM" "$D/_tags/q1" &&
        t mv "$D/_tags/q1" "$D/_tags/q2" && t readlink -v "$D/_tags/q2"
}
chain2() {
    t ln -s "../_manifests/$DEMO_AMD" "$D/_tags/r1" && t mv "$D/_tags/r1" "$D/_tags/r2" &&
        t mv "$D/_tags/r2" "$D/_tags/r3" && t readlink -v "$D/_tags/r3"
}
chain3() { t mv "$D/_tags/r3" "$D/_tags/r4" && t readlink -v "$D/_tags/r4"; }
chain4() { t cat "$D/_tags/r4" | sha256sum | sed 's/^/sha256:/; s/ .*//'; }
D="$M/demo"
check "ln -s q1; ln -sfn q1; mv q1 q2; readlink q2" "../_manifests/$DEMO_ARM" "$(seq_out chain1)"
check "ln -s r1; mv r1 r2; mv r2 r3; readlink r3" "../_manifests/$DEMO_AMD" "$(seq_out chain2)"
check "then at once: mv r3 r4; readlink r4" "../_manifests/$DEMO_AMD" "$(seq_out chain3)"
check "then at once: cat r4 | sha256sum" "$DEMO_AMD" "$(seq_out chain4)"
check "HTTP: tags after the renames" "1.0 arm q2 r4" "$(tags_of demo)"
sleep 0.6 # let stale kernel entries expire before going on
check "readlink q2 once kernel entries expired" "../_manifests/$DEMO_ARM" "$(t readlink -v "$D/_tags/q2" 2>&1)"
check "readlink r4 once kernel entries expired" "../_manifests/$DEMO_AMD" "$(t readlink -v "$D/_tags/r4" 2>&1)"
for tag in $(tags_of demo); do
    [[ $tag == 1.0 || $tag == arm ]] || t rm "$D/_tags/$tag"
done
check "HTTP: tags after removing the renamed ones" "1.0 arm" "$(tags_of demo)"

step "rm of a tag untags; the manifest stays"
t rm "$M/demo/_tags/arm"
check "HTTP status of demo:arm after rm" 404 "$(http_status HEAD /v2/demo/manifests/arm)"
check "tags/list after rm" "1.0" "$(tags_of demo)"
check "HTTP status of the untagged manifest" 200 "$(http_status HEAD "/v2/demo/manifests/$DEMO_AMD")"
check_true "the untagged manifest is still in demo/_manifests" t test -f "$M/demo/_manifests/$DEMO_AMD"

step "uploads in progress show in _uploads; rm cancels"
hdrs=$(curl -sS -D - -o /dev/null -X POST "$REGISTRY_URL/v2/demo/blobs/uploads/" | tr -d '\r')
UP_ID=$(awk -F': ' 'tolower($1) == "docker-upload-uuid" { print $2 }' <<<"$hdrs")
UP_LOC=$(awk -F': ' 'tolower($1) == "location" { print $2 }' <<<"$hdrs")
[[ "$UP_LOC" == http* ]] || UP_LOC="$REGISTRY_URL$UP_LOC"
[[ -n "$UP_ID" ]] || fail "no Docker-Upload-UUID in the upload response: $hdrs"
head -c 3000 /dev/urandom >"$TEST_TMP/chunk"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PATCH -H 'Content-Type: application/octet-stream' \
    --data-binary @"$TEST_TMP/chunk" "$UP_LOC")
expect_eq "PATCH of a 3000-byte chunk" 202 "$code"
# Started over HTTP, so the mount learns of it from the change feed: within the bound.
upload_listed() { [[ "$(ls_names "$M/demo/_uploads")" == "$UP_ID" ]]; }
seen_within "ls demo/_uploads shows the upload started over HTTP" upload_listed
check "ls demo/_uploads" "$UP_ID" "$(ls_names "$M/demo/_uploads")"
check "size of the upload" 3000 "$(t stat -c %s "$M/demo/_uploads/$UP_ID")"
check_true "bytes of the upload so far = the chunk" t cmp -s "$M/demo/_uploads/$UP_ID" "$TEST_TMP/chunk"
check_true "upload mtime is recent" test $(($(date +%s) - $(t stat -c %Y "$M/demo/_uploads/$UP_ID"))) -le 60
t rm "$M/demo/_uploads/$UP_ID"
check "HTTP status of the cancelled upload" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$UP_LOC")"
check "ls demo/_uploads after rm" "" "$(ls_names "$M/demo/_uploads")"

step "rm of a manifest deletes it and the tags pointing at it"
t ln -s "../_manifests/$S1" "$M/scratch/_tags/also1"
check "scratch tags before" "1 2 also1" "$(tags_of scratch)"
t rm "$M/scratch/_manifests/$S1"
check "HTTP GET of the removed manifest" 404 "$(http_status GET "/v2/scratch/manifests/$S1")"
check "scratch tags after (1 and also1 pointed at it)" "2" "$(tags_of scratch)"
check "ls scratch/_tags" "2" "$(ls_names "$M/scratch/_tags")"
check "ls scratch/_manifests" "$S2" "$(ls_names "$M/scratch/_manifests")"

step "rm of a blob unlinks it from one repository only"
t rm "$M/scratch/_blobs/$SHARED"
check "HEAD of the shared layer in scratch" 404 "$(http_status HEAD "/v2/scratch/blobs/$SHARED")"
check "HEAD of the shared layer in team/app" 200 "$(http_status HEAD "/v2/team/app/blobs/$SHARED")"
check_true "shared layer gone from scratch/_blobs" eval "! t ls '$M/scratch/_blobs' | grep -qx '$SHARED'"
check_true "shared layer still in team/app/_blobs" t test -f "$M/team/app/_blobs/$SHARED"

step "rm -r removes repositories"
t rm -r "$M/scratch"
check "catalog after rm -r scratch" "demo ns/tmp team/app" "$(catalog)"
check "HTTP tags/list of scratch" 404 "$(http_status GET /v2/scratch/tags/list)"
t rm -r "$M/ns"
check "catalog after rm -r ns (a namespace holding ns/tmp)" "demo team/app" "$(catalog)"
check "ls MOUNT after rm -r" "demo team" "$(ls_names "$M")"
check_true "no namespace folder left behind in storage" test ! -e "$V2/repositories/ns"

# ---------------------------------------------------------------- refusals

step "refused operations and their errno"
D="$M/demo"
B1=$(t ls "$D/_blobs" | head -1)
EPERM="Operation not permitted"
expect_refused "$EPERM" mkdir "$M/newrepo"
expect_refused "$EPERM" mkdir "$D/newdir"
expect_refused "$EPERM" mkdir "$D/_tags/newdir"
expect_refused "$EPERM" touch "$D/_tags/newfile"
expect_refused "$EPERM" touch "$D/_blobs/sha256:$(printf '%064d' 0)"
expect_refused "$EPERM" touch "$D/_blobs/$B1"
expect_refused "$EPERM" chmod 600 "$D/_blobs/$B1"
expect_refused "$EPERM" chmod 700 "$D/_tags"
expect_refused "$EPERM" chown 1:1 "$D/_blobs/$B1"
expect_refused "$EPERM" truncate -s 0 "$D/_manifests/$IDX"
expect_refused "$EPERM" tee -a "$D/_manifests/$IDX"
expect_refused "$EPERM" cp "$TEST_TMP/chunk" "$D/_blobs/"
expect_refused "$EPERM" ln "$D/_blobs/$B1" "$D/_blobs/hardlink"
DEMO_ONLY=$(blobs_of "$SRC" "$IDX" | grep -v "$SHARED" | head -1)
expect_refused "$EPERM" ln "$D/_blobs/$DEMO_ONLY" "$M/team/app/_blobs/$DEMO_ONLY"
expect_refused "$EPERM" ln -s "../_manifests/$IDX" "$D/_blobs/alias"
expect_refused "$EPERM" ln -s "demo" "$M/alias"
expect_refused "$EPERM" mv "$D/_manifests/$IDX" "$D/_manifests/sha256:$(printf '%064d' 1)"
expect_refused "$EPERM" mv "$D/_tags/1.0" "$M/team/app/_tags/1.0"
expect_refused "$EPERM" mv "$D/_tags/1.0" "$D/_manifests/x"
expect_refused "$EPERM" mv "$M/team/app" "$M/team/app2"
expect_refused "No such file or directory" ln -s "../_manifests/sha256:$(printf '%064d' 7)" "$D/_tags/nothing"
expect_refused "No such file or directory" ln -s "../_manifests/$APP" "$D/_tags/other-repo" # team/app's manifest
expect_refused "No such file or directory" ln -s "../_manifests/$SHARED" "$D/_tags/a-layer"  # a blob, not a manifest
expect_refused "No such file or directory" rm "$D/_tags/nothing"
expect_refused "No such file or directory" rm "$D/_manifests/sha256:$(printf '%064d' 7)"
expect_refused "No such file or directory" mv "$D/_tags/nothing" "$D/_tags/else"
expect_refused "Invalid argument" ln -s "../_manifests/$IDX" "$D/_tags/.dot"
expect_refused "Invalid argument" ln -s "../_manifests/$IDX" "$D/_tags/-dash"
expect_refused "Invalid argument" ln -s "../_manifests/$IDX" "$D/_tags/$(printf 'x%.0s' {1..129})"
expect_refused "Invalid argument" ln -s "not-a-digest" "$D/_tags/t1"
expect_refused "Invalid argument" ln -s "../_blobs/$IDX" "$D/_tags/t2"
# mv words EINVAL from rename(2) as "cannot move to a subdirectory of itself": ask rename directly.
expect_refused "Invalid argument" python3 -c 'import os, sys; os.rename(sys.argv[1], sys.argv[2])' "$D/_tags/1.0" "$D/_tags/.dot"
expect_refused "Directory not empty" rmdir "$D/_tags"
expect_refused "Directory not empty" rmdir "$D"
check "demo after the refusals: tags" "1.0" "$(tags_of demo)"
check "demo after the refusals: _tags" "1.0" "$(ls_names "$D/_tags")"
check "catalog after the refusals" "demo team/app" "$(catalog)"

# ---------------------------------------------------------------- HTTP -> mount

tag_reads() { [[ "$(t readlink "$1" 2>/dev/null)" == "$2" ]]; }
gone() { ! t test -e "$1" && ! t test -L "$1"; }

step "changes over HTTP show in the mount within a second"
ls_names "$M/team" >/dev/null
t test ! -e "$M/team/late" # primes the kernel's view: late does not exist yet
push_oci "$SRC" late "$REG/team/late:v1"
seen_within "skopeo push of team/late:v1 seen as team/late/_tags/v1" tag_reads "$M/team/late/_tags/v1" "../_manifests/$LATE"
check "ls MOUNT/team after the push" "app late" "$(ls_names "$M/team")"

reg_get "/v2/demo/manifests/$DEMO_AMD" >"$TEST_TMP/amd.json"
mt=$(jq -r .mediaType "$TEST_TMP/amd.json")
t test ! -L "$D/_tags/via-http"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: $mt" --data-binary @"$TEST_TMP/amd.json" \
    "$REGISTRY_URL/v2/demo/manifests/via-http")
expect_eq "PUT /v2/demo/manifests/via-http" 201 "$code"
seen_within "tag PUT over HTTP seen in _tags" tag_reads "$D/_tags/via-http" "../_manifests/$DEMO_AMD"

reg_get "/v2/demo/manifests/$DEMO_ARM" >"$TEST_TMP/arm.json"
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: $mt" --data-binary @"$TEST_TMP/arm.json" \
    "$REGISTRY_URL/v2/demo/manifests/via-http")
expect_eq "PUT /v2/demo/manifests/via-http (moved)" 201 "$code"
seen_within "tag moved over HTTP seen in _tags" tag_reads "$D/_tags/via-http" "../_manifests/$DEMO_ARM"

expect_eq "DELETE /v2/demo/manifests/via-http" 202 "$(http_status DELETE /v2/demo/manifests/via-http)"
seen_within "tag DELETE over HTTP seen in _tags" gone "$D/_tags/via-http"

t test -f "$M/team/late/_manifests/$LATE"
expect_eq "DELETE /v2/team/late/manifests/<digest>" 202 "$(http_status DELETE "/v2/team/late/manifests/$LATE")"
seen_within "manifest DELETE over HTTP seen in _manifests" gone "$M/team/late/_manifests/$LATE"
check "ls team/late/_tags after the manifest DELETE" "" "$(ls_names "$M/team/late/_tags")"

# With the change feed the kernel keeps listings, names and symlink targets for long; each
# change must still show at once, also in what was listed (cached) just before.
step "HTTP changes show within a second in listings the kernel has cached"
check_true "the change feed is outside docker/registry/v2" test -d "$ROOT/regfs/changes"
check_true "the mount uses the change feed" eval "! grep -q 'no change feed' '$MAIN_LOG'"
lists() { t ls -A "$1" | grep -qx "$2"; }
lacks() { ! t ls -A "$1" | grep -qx "$2"; }
put_tag() { # REPO TAG MANIFEST_FILE
    curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Content-Type: $mt" --data-binary @"$3" \
        "$REGISTRY_URL/v2/$1/manifests/$2"
}
ls_names "$D/_tags" >/dev/null
t find "$M" -path '*/_tags/*' >/dev/null
expect_eq "PUT demo:cached" 201 "$(put_tag demo cached "$TEST_TMP/amd.json")"
seen_within "tag PUT over HTTP seen in a cached ls of _tags" lists "$D/_tags" cached
check "readlink of the tag PUT over HTTP" "../_manifests/$DEMO_AMD" "$(t readlink "$D/_tags/cached")"
check "find sees the tag PUT over HTTP" 1 "$(t find "$M" -path '*/_tags/cached' | wc -l)"
expect_eq "PUT demo:cached (moved)" 201 "$(put_tag demo cached "$TEST_TMP/arm.json")"
seen_within "tag moved over HTTP seen by a cached readlink" tag_reads "$D/_tags/cached" "../_manifests/$DEMO_ARM"
expect_eq "DELETE demo:cached" 202 "$(http_status DELETE /v2/demo/manifests/cached)"
seen_within "tag DELETE over HTTP seen in a cached ls of _tags" lacks "$D/_tags" cached
# The name goes before (or with) the listing: no wait here.
check_true "the deleted tag no longer resolves once ls lacks it" gone "$D/_tags/cached"

step "a listing longer than one readdir reply stays whole and stable (the kernel opens directories itself)"
many_expected=""
for i in $(seq -w 1 300); do
    code=$(put_tag demo "many-$i" "$TEST_TMP/amd.json")
    [[ "$code" == 201 ]] || fail "PUT demo:many-$i gave $code"
    many_expected+="many-$i "
done
seen_within "300 tags PUT over HTTP seen in the mount" lists "$D/_tags" many-300
check "ls of a 300-entry _tags (several readdir replies)" "${many_expected% }" \
    "$(t ls -A "$D/_tags" | grep '^many-' | LC_ALL=C sort | words)"
check "two listings in a row agree" "$(t ls -A "$D/_tags" | md5sum)" "$(t ls -A "$D/_tags" | md5sum)"
for i in $(seq -w 1 300); do curl -s -o /dev/null -X DELETE "$REGISTRY_URL/v2/demo/manifests/many-$i"; done
seen_within "the 300 tags deleted over HTTP gone from the mount" lacks "$D/_tags" many-300
check "no many-* tag left in the mount" 0 "$(t ls -A "$D/_tags" | grep -c '^many-' || true)"

step "a new repository appears in a cached ls MOUNT; one deleted elsewhere disappears"
ls_names "$M" >/dev/null
push_oci "$SRC" late "$REG/fresh:v1"
seen_within "repository pushed over HTTP seen in a cached ls MOUNT" lists "$M" fresh
check "ls MOUNT/fresh/_tags" "v1" "$(ls_names "$M/fresh/_tags")"
M4="$TEST_TMP/mnt-other"
mount_fused "$CFG" "$M4"
OTHER_PID=$FUSED_PID
t rm -r "$M4/fresh" # another process: only the feed tells this mount
seen_within "repository removed through another mount gone from a cached ls MOUNT" lacks "$M" fresh
check_true "the removed repository is gone" gone "$M/fresh"
t fusermount3 -u "$M4"
wait_exit "$OTHER_PID" 10
check "exit status of the other mount" 0 "$EXIT_RC"

# ---------------------------------------------------------------- deletes disabled

step "a second mount of the same storage with deletes disabled"
CFG_NODEL="$TEST_TMP/nodelete.yml"
write_config "$CFG_NODEL" "$ROOT" false
M2="$TEST_TMP/mnt-nodelete"
mount_fused "$CFG_NODEL" "$M2"
NODEL_PID=$FUSED_PID
check "mode of a blob with deletes disabled" "444" "$(t stat -c %a "$M2/demo/_blobs/$SHARED")"
check "mode of a manifest with deletes disabled" "444" "$(t stat -c %a "$M2/demo/_manifests/$IDX")"
check "same inode for the shared layer as in the other mount" "$ino_demo" "$(t stat -c %i "$M2/team/app/_blobs/$SHARED")"
expect_refused "$EPERM" rm "$M2/demo/_tags/1.0"
expect_refused "$EPERM" rm -f "$M2/demo/_manifests/$IDX"
expect_refused "$EPERM" rm -f "$M2/demo/_blobs/$SHARED"
expect_refused "$EPERM" rm -rf "$M2/team/app"
check "tags of demo after refused rm" "1.0" "$(tags_of demo)"
check "catalog after refused rm -r" "demo team/app team/late" "$(catalog)"
t ln -s "../_manifests/$DEMO_AMD" "$M2/demo/_tags/nodel"
check "ln -s works with deletes disabled" "$DEMO_AMD" "$(tag_digest demo nodel)"
# mv removes the old name: a delete, refused like rm (over HTTP a tag cannot vanish either).
expect_refused "$EPERM" mv "$M2/demo/_tags/nodel" "$M2/demo/_tags/nodel2"
check "tags of demo after refused mv" "1.0 nodel" "$(tags_of demo)"
seen_within "tag made in the second mount seen in the first" tag_reads "$D/_tags/nodel" "../_manifests/$DEMO_AMD"
t rm "$D/_tags/nodel"

# ---------------------------------------------------------------- read-only

step "-o ro mount"
M3="$TEST_TMP/mnt-ro"
mount_fused "$CFG" "$M3" -o ro
RO_PID=$FUSED_PID
check_true "/proc/mounts shows ro" eval "awk -v p='$M3' '\$2 == p { print \$4 }' /proc/mounts | grep -q '^ro,'"
check "mode of a blob on the ro mount" "444" "$(t stat -c %a "$M3/demo/_blobs/$SHARED")"
check "sha256 of a blob read on the ro mount" "${SHARED#sha256:}" "$(t sha256sum "$M3/demo/_blobs/$SHARED" | cut -d' ' -f1)"
check "readlink on the ro mount" "../_manifests/$IDX" "$(t readlink -v "$M3/demo/_tags/1.0")"
EROFS="Read-only file system"
expect_refused "$EROFS" rm "$M3/demo/_tags/1.0"
expect_refused "$EROFS" rm -f "$M3/demo/_manifests/$IDX"
expect_refused "$EROFS" ln -s "../_manifests/$DEMO_AMD" "$M3/demo/_tags/ro"
expect_refused "$EROFS" ln -sfn "../_manifests/$DEMO_AMD" "$M3/demo/_tags/1.0"
expect_refused "$EROFS" mv "$M3/demo/_tags/1.0" "$M3/demo/_tags/ro"
expect_refused "$EROFS" rm -rf "$M3/team/app"
expect_refused "$EROFS" mkdir "$M3/x"
check "tags of demo after the ro mount's refusals" "1.0" "$(tags_of demo)"
check "catalog after the ro mount's refusals" "demo team/app team/late" "$(catalog)"

step "read-only from the configuration: the same EROFS as -o ro"
M4="$TEST_TMP/mnt-ro-config"
REGISTRY_STORAGE_MAINTENANCE_READONLY_ENABLED=true mount_fused "$CFG" "$M4"
RO_CONFIG_PID=$FUSED_PID
expect_refused "$EROFS" rm "$M4/demo/_tags/1.0"
expect_refused "$EROFS" ln -s "../_manifests/$DEMO_AMD" "$M4/demo/_tags/ro"
expect_refused "$EROFS" mv "$M4/demo/_tags/1.0" "$M4/demo/_tags/ro"
check "tags of demo after the config-ro mount's refusals" "1.0" "$(tags_of demo)"
kill -TERM "$RO_CONFIG_PID"
wait_exit "$RO_CONFIG_PID" 10

# ---------------------------------------------------------------- error exits

step "error exits"
M5="$TEST_TMP/mnt-killed"
mount_fused "$CFG" "$M5"
kill -KILL "$FUSED_PID"
wait "$FUSED_PID" 2>/dev/null || true
rc=0
out=$(timeout 10 "$FUSED" -f "$CFG" "$M5" 2>&1) || rc=$?
check "exit status on a mount whose daemon was killed" 1 "$rc"
check_true "message says how to clear the stale mount ($out)" grep -q "fusermount3 -uz" <<<"$out"
fusermount3 -uz "$M5"
rc=0
out=$(timeout 10 "$FUSED" -f "$CFG" "$TEST_TMP/no-such-dir" 2>&1) || rc=$?
check "exit status for a missing mount point" 1 "$rc"
check_true "message names the missing mount point ($out)" grep -Eq "no-such-dir.*(does not exist|No such file)" <<<"$out"
: >"$TEST_TMP/a-file"
rc=0
out=$(timeout 10 "$FUSED" -f "$CFG" "$TEST_TMP/a-file" 2>&1) || rc=$?
check "exit status for a mount point that is a file" 1 "$rc"
check_true "message says it is not a directory ($out)" grep -q "not a directory" <<<"$out"
rc=0
out=$(timeout 10 "$FUSED" -f "$CFG" "$M" 2>&1) || rc=$?
check "exit status for a busy mount point" 1 "$rc"
check_true "message says the mount point is busy ($out)" grep -q "busy" <<<"$out"
check "mounts stacked on $M" 1 "$(awk -v p="$M" '$2 == p' /proc/mounts | wc -l)"
rc=0
out=$(timeout 10 "$FUSED" -f "$TEST_TMP/no-such-config.yml" "$TEST_TMP/mnt-ro" 2>&1) || rc=$?
check "exit status for a missing config" 2 "$rc"
check_true "message names the missing config ($out)" grep -q "no-such-config.yml" <<<"$out"

# ---------------------------------------------------------------- unmounting

step "fusermount3 -u ends the daemon"
t fusermount3 -u "$M2"
wait_exit "$NODEL_PID" 10
check "exit status of regfs-fused after fusermount3 -u" 0 "$EXIT_RC"
check_true "$M2 is no longer mounted" eval "! is_mounted '$M2'"

step "SIGTERM unmounts and exits 0"
kill -TERM "$RO_PID"
wait_exit "$RO_PID" 10
check "exit status of regfs-fused after SIGTERM" 0 "$EXIT_RC"
check_true "$M3 is no longer mounted" eval "! is_mounted '$M3'"
check "$M3 is an empty directory again" "" "$(t ls -A "$M3")"

step "SIGTERM with a file held open"
# A child holds the file open (opened there, so a hung open cannot stall this shell).
# shellcheck disable=SC2217  # sleep only has to hold its stdin open
sleep 60 <"$M/demo/_blobs/$SHARED" &
HOLDER=$!
on_exit "stop_pid $HOLDER 2"
# Compared on every try (the child may not have opened it yet on a loaded machine), and by
# inode: the path /proc shows would change if the kernel dropped a cached name meanwhile.
holds_blob() { [[ "$(stat -Lc %d:%i "/proc/$HOLDER/fd/0" 2>/dev/null)" == "$(t stat -c %d:%i "$M/demo/_blobs/$SHARED")" ]]; }
wait_until 10 "the holder's open file" holds_blob ||
    fail "the holder did not get $M/demo/_blobs/$SHARED open"
kill -TERM "$MAIN_PID"
wait_exit "$MAIN_PID" 10
check "exit status of regfs-fused after SIGTERM with an open file" 0 "$EXIT_RC"
stop_pid "$HOLDER" 2
check_true "$M is no longer mounted" eval "! is_mounted '$M'"
check_true "HTTP still serves after the mount went away" test "$(http_status HEAD /v2/demo/manifests/1.0)" = 200

stop_registry "$REGISTRY_PID"
finish_checks
