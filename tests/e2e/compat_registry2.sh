#!/usr/bin/env bash
# On-disk compatibility with registry:2 (Debian's docker-registry, CNCF
# Distribution 2.8) in both directions, on one shared root directory:
#   docker-registry writes -> $REGFS_HTTPD reads and writes -> docker-registry reads.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_cmds skopeo curl jq python3 sha256sum timeout
BIN=$(registry_bin)
REF_REGISTRY=${REF_REGISTRY:-/usr/bin/docker-registry}
[[ -x "$REF_REGISTRY" ]] || fail "reference registry $REF_REGISTRY not found (Debian package docker-registry)"
ROOT="$TEST_TMP/data"
SRC="$TEST_TMP/src"

step "generate images"
dA=$(mkoci "$SRC" a --layers 2 --size 400000 --seed alpha)
dB=$(mkoci "$SRC" b --layers 3 --size 150000 --seed beta)
dM=$(mkoci "$SRC" m --platforms linux/amd64,linux/arm64 --layers 1 --size 100000 --seed multi)
dC=$(mkoci "$SRC" c --layers 2 --size 250000 --seed gamma)
dD=$(mkoci "$SRC" d --platforms linux/amd64,linux/arm64 --layers 2 --size 80000 --seed delta)
log "A $dA, B $dB, M $dM (index), C $dC, D $dD (index)"


step "phase 1: reference registry ($REF_REGISTRY) writes compat/alpha:1, :2 and compat/multi:1"
start_registry "$REF_REGISTRY" "$ROOT" "$(free_port)"
REG="127.0.0.1:$REGISTRY_PORT"
push_oci "$SRC" a "$REG/compat/alpha:1"
push_oci "$SRC" b "$REG/compat/alpha:2"
push_oci "$SRC" m "$REG/compat/multi:1"
expect_eq "tags of compat/alpha on the reference registry" "1 2" "$(tags_of compat/alpha)"
stop_registry
layoutcheck "$ROOT" --expect "compat/alpha:1=$dA" --expect "compat/alpha:2=$dB" --expect "compat/multi:1=$dM" ||
    fail "the reference registry's own layout does not match what layoutcheck.py expects"

step "phase 2: registry under test ($BIN) reads the reference registry's data"
start_registry "$BIN" "$ROOT" "$(free_port)"
REG="127.0.0.1:$REGISTRY_PORT"
expect_eq "catalog" "compat/alpha compat/multi" "$(catalog)"
expect_eq "tags of compat/alpha" "1 2" "$(tags_of compat/alpha)"
expect_eq "tags of compat/multi" "1" "$(tags_of compat/multi)"
verify_pull "$REG/compat/alpha:1" "$dA"
verify_pull "$REG/compat/alpha:2" "$dB"
verify_pull "$REG/compat/multi:1" "$dM"
verify_pull "$REG/compat/alpha@$dA" "$dA"
regcheck "$REGISTRY_URL" --expect "compat/alpha:1=$dA" --expect "compat/alpha:2=$dB" \
    --expect "compat/multi:1=$dM" || fail "registry content check failed"

step "phase 2: registry under test writes compat/beta:1, compat/beta:multi and compat/alpha:3"
push_oci "$SRC" c "$REG/compat/beta:1"
push_oci "$SRC" d "$REG/compat/beta:multi"
push_oci "$SRC" c "$REG/compat/alpha:3" # blobs already in the store (other repo)
expect_eq "catalog" "compat/alpha compat/beta compat/multi" "$(catalog)"
expect_eq "tags of compat/alpha" "1 2 3" "$(tags_of compat/alpha)"
expect_eq "tags of compat/beta" "1 multi" "$(tags_of compat/beta)"
stop_registry

step "on-disk layout after the registry under test wrote to it"
layoutcheck "$ROOT" --expect "compat/alpha:1=$dA" --expect "compat/alpha:2=$dB" --expect "compat/multi:1=$dM" \
    --expect "compat/beta:1=$dC" --expect "compat/beta:multi=$dD" --expect "compat/alpha:3=$dC" ||
    fail "on-disk layout is not registry:2's"
ok "registry:2 layout, link files without trailing newline"

step "phase 3: reference registry reads what the registry under test wrote"
start_registry "$REF_REGISTRY" "$ROOT" "$(free_port)"
REG="127.0.0.1:$REGISTRY_PORT"
expect_eq "catalog" "compat/alpha compat/beta compat/multi" "$(catalog)"
expect_eq "tags of compat/beta" "1 multi" "$(tags_of compat/beta)"
expect_eq "tags of compat/alpha" "1 2 3" "$(tags_of compat/alpha)"
verify_pull "$REG/compat/beta:1" "$dC"
verify_pull "$REG/compat/beta:multi" "$dD"
verify_pull "$REG/compat/alpha:3" "$dC"
regcheck "$REGISTRY_URL" --expect "compat/alpha:1=$dA" --expect "compat/alpha:2=$dB" \
    --expect "compat/multi:1=$dM" --expect "compat/beta:1=$dC" --expect "compat/beta:multi=$dD" \
    --expect "compat/alpha:3=$dC" || fail "registry content check failed"
stop_registry
