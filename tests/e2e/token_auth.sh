#!/usr/bin/env bash
# Token authentication (auth.token, registry:2 compatible) with real clients
# and the test token issuer tests/e2e/token_issuer.js (node, built-ins only):
#   - keys and certificates made here with openssl: the issuer's RSA key and
#     EC P-256 key (self-signed certificates in rootcertbundle), a CA with an
#     intermediate for tokens carrying an x5c chain, a rogue CA, untrusted
#     keys, and keys published only in a JWKS file (auth.token.jwks);
#   - the challenge: 401, UNAUTHORIZED, WWW-Authenticate: Bearer realm,
#     service and the scope each kind of request needs (pull, pull+push,
#     delete, registry:catalog:*, none for /v2/); error="insufficient_scope"
#     for a valid token without the needed action;
#   - docker login / push / rmi / pull through a private dockerd as alice
#     (pull, push, delete), bob (pull only: push refused, nothing stored) and
#     anonymously (public/** only);
#   - skopeo copy up and back with --creds (RS256 registry, and a second
#     registry whose realm signs ES256), wrong password refused;
#   - curl with minted bad tokens (expired, wrong iss, wrong aud, nbf in the
#     future, untrusted key, alg none, HS256 keyed with the public key,
#     tampered payload, missing claims): each refused with the challenge, and
#     a refused manifest PUT leaves the storage tree unchanged; accepted
#     variants (aud array, nbf within the 60 s leeway) as controls;
#   - tokens with an x5c chain (direct and through an intermediate) accepted;
#     a rogue chain, a forged signature, and a trusted key with an untrusted
#     x5c refused;
#   - JWKS keys (with and without kid), and tokens without kid (regfs only);
#   - _catalog needs registry:catalog:*; a cross-repository mount without pull
#     access on the source is refused with a challenge for both repositories
#     (insufficient_scope), as registry:2 does, and links nothing; DELETE needs delete;
#   - no token in the registry logs.
#
# REGFS_HTTPD=/usr/bin/docker-registry runs it against registry:2 (reference
# mode): JWKS, kid-less tokens and an aud array are skipped.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_cmds curl jq python3 openssl skopeo node tar timeout base64 sha256sum
BIN=$(registry_bin)
ISSUER_JS="$E2E_DIR/token_issuer.js"
[[ -f "$ISSUER_JS" ]] || fail "missing $ISSUER_JS"

REFERENCE=0
if [[ "$(basename "$BIN")" == docker-registry* ]]; then
    REFERENCE=1
    log "reference mode: $BIN is registry:2 (regfs-only checks skipped)"
fi

SERVICE=regfs-test
ISSUER=test-issuer
ALICE_PW='alice-E2E-tok-pw'
BOB_PW='bob-E2E-tok-pw'
CAROL_PW='carol-E2E-tok-pw'

# ---------------------------------------------------------------- keys and certificates

step "keys, certificates, users"
# (ossl, new_ca, issue: lib.sh; everything in $PKI)
# selfsigned NAME rsa|ec SUBJECT: key + self-signed signing certificate
selfsigned() {
    local kopt=(-newkey rsa:2048)
    [[ "$2" == ec ]] && kopt=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1)
    ossl req -x509 "${kopt[@]}" -nodes -days 2 -keyout "$PKI/$1.key" -out "$PKI/$1.crt" -subj "$3" \
        -addext "keyUsage=critical,digitalSignature"
}
LEAF_EXT=("basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature")
selfsigned issuer rsa "/CN=regfs e2e token issuer (RSA)"
selfsigned issuer-ec ec "/CN=regfs e2e token issuer (EC)"
selfsigned rogue rsa "/CN=regfs e2e rogue issuer (RSA)"
selfsigned rogue-ec ec "/CN=regfs e2e rogue issuer (EC)"
selfsigned jwks-ec ec "/CN=regfs e2e JWKS key (EC)"
selfsigned jwks-rsa rsa "/CN=regfs e2e JWKS key (RSA)"
new_ca x5c-ca "/CN=regfs e2e token CA"
issue x5c-inter x5c-ca "/CN=regfs e2e token intermediate CA" \
    "basicConstraints=critical,CA:TRUE,pathlen:0" "keyUsage=critical,keyCertSign,cRLSign"
issue x5c-leaf x5c-ca "/CN=regfs e2e token signer" "${LEAF_EXT[@]}"
issue x5c-leaf2 x5c-inter "/CN=regfs e2e token signer via intermediate" "${LEAF_EXT[@]}"
new_ca rogue-ca "/CN=regfs e2e rogue CA"
issue rogue-leaf rogue-ca "/CN=regfs e2e token signer" "${LEAF_EXT[@]}"
cat "$PKI/x5c-leaf2.crt" "$PKI/x5c-inter.crt" >"$PKI/x5c-leaf2-chain.pem"
openssl verify -CAfile "$PKI/x5c-ca.crt" "$PKI/x5c-leaf.crt" >/dev/null ||
    fail "x5c-leaf does not verify against x5c-ca"
openssl verify -CAfile "$PKI/x5c-ca.crt" -untrusted "$PKI/x5c-inter.crt" "$PKI/x5c-leaf2.crt" >/dev/null ||
    fail "x5c-leaf2 does not verify against x5c-ca through x5c-inter"
openssl pkey -in "$PKI/issuer.key" -pubout -out "$PKI/issuer.pub" 2>/dev/null
# Trusted by the main registry: both issuer keys and the x5c CA (not the
# intermediate, not the JWKS keys).
cat "$PKI/issuer.crt" "$PKI/issuer-ec.crt" "$PKI/x5c-ca.crt" >"$PKI/bundle.pem"
node "$ISSUER_JS" --jwks "$PKI/jwks-ec.crt" --kid jwks-ec-1 >"$PKI/jwks-ec.json"
node "$ISSUER_JS" --jwks "$PKI/jwks-rsa.crt" >"$PKI/jwks-rsa.json"
jq -s '{keys: (map(.keys) | add)}' "$PKI/jwks-ec.json" "$PKI/jwks-rsa.json" >"$PKI/jwks.json"
expect_eq "keys in jwks.json" 2 "$(jq '.keys | length' "$PKI/jwks.json")"
KID_ISSUER=$(node "$ISSUER_JS" --print-kid "$PKI/issuer.crt")
KID_JWKS_RSA=$(node "$ISSUER_JS" --print-kid "$PKI/jwks-rsa.crt")
ok "issuer RSA and EC keys, x5c CA + intermediate + leaves, rogue keys and CA, JWKS (EC kid jwks-ec-1, RSA kid $KID_JWKS_RSA)"

USERS="$TEST_TMP/users.json"
jq -n --arg a "$ALICE_PW" --arg b "$BOB_PW" --arg c "$CAROL_PW" '{
  users: {
    alice: {password: $a, grants: [
      {pattern: "**", actions: ["pull", "push", "delete"]},
      {type: "registry", pattern: "catalog", actions: ["*"]}]},
    bob: {password: $b, grants: [{pattern: "**", actions: ["pull"]}]},
    carol: {password: $c, grants: [{pattern: "carol/**", actions: ["pull", "push", "delete"]}]}
  },
  anonymous: [{pattern: "public/**", actions: ["pull"]}]
}' >"$USERS"
ok "users: alice (** pull,push,delete + catalog), bob (** pull), carol (carol/** only), anonymous (public/** pull)"

# ---------------------------------------------------------------- helpers

# start_issuer NAME ISSUER_ARGS...: start token_issuer.js on a free port; sets ISSUER_URL.
ISSUER_URL=
start_issuer() {
    local name=$1 port pid
    shift
    port=$(free_port)
    node "$ISSUER_JS" --port "$port" --issuer "$ISSUER" --service "$SERVICE" --users "$USERS" "$@" \
        >"$TEST_TMP/$name.out" 2>"$TEST_TMP/$name.log" </dev/null &
    pid=$!
    on_exit "stop_pid $pid 5"
    _E2E_LOGS+=("$TEST_TMP/$name.log")
    local deadline=$((SECONDS + 20))
    until grep -q 'listening on' "$TEST_TMP/$name.out" 2>/dev/null; do
        if ! pid_alive "$pid"; then
            cat "$TEST_TMP/$name.out" "$TEST_TMP/$name.log" >&2
            fail "token issuer $name exited during startup"
        fi
        ((SECONDS < deadline)) || fail "token issuer $name did not start within 20 s"
        sleep 0.1
    done
    ISSUER_URL="http://127.0.0.1:$port"
    log "token issuer $name ready: pid $pid, $ISSUER_URL ($(cat "$TEST_TMP/$name.out"))"
}

# token_from ISSUER_URL USER PASSWORD SCOPE...: a token from the issuer (USER
# empty: anonymous); fails unless the issuer answers 200.
token_from() {
    local url=$1 user=$2 pw=$3 s out code
    shift 3
    local args=(-sS --max-time 15 -G --data-urlencode "service=$SERVICE")
    for s in "$@"; do args+=(--data-urlencode "scope=$s"); done
    [[ -z "$user" ]] || args+=(-u "$user:$pw" --data-urlencode "account=$user")
    out=$(curl "${args[@]}" -w '\n%{http_code}' "$url/token") || fail "token request to $url/token failed"
    code=${out##*$'\n'}
    [[ "$code" == 200 ]] || fail "token request (${user:-anonymous}, $*) to $url: HTTP $code: ${out%$'\n'*}"
    local re='"token":"([^"]+)"'
    [[ "$out" =~ $re ]] || fail "no token in the issuer's answer: ${out%$'\n'*}"
    printf '%s\n' "${BASH_REMATCH[1]}"
}
tok_alice() { token_from "$ISS_RSA" alice "$ALICE_PW" "$@"; }
tok_bob() { token_from "$ISS_RSA" bob "$BOB_PW" "$@"; }
tok_carol() { token_from "$ISS_RSA" carol "$CAROL_PW" "$@"; }

# mint ARGS...: a token from token_issuer.js --mint (defaults: iss, aud, and
# pull+push on team/app)
ACCESS_APP='[{"type":"repository","name":"team/app","actions":["pull","push"]}]'
mint() {
    node "$ISSUER_JS" --mint --issuer "$ISSUER" --service "$SERVICE" --access "$ACCESS_APP" "$@" ||
        fail "token_issuer.js --mint $* failed"
}

# rcurl TOKEN CURL_ARGS...: http_req (lib.sh) with "Authorization: Bearer
# TOKEN" unless TOKEN is empty; prints the status code.
rcurl() {
    local tok=$1
    shift
    local auth=()
    [[ -z "$tok" ]] || auth=(-H "Authorization: Bearer $tok")
    http_req "${auth[@]}" "$@" || true
}
# expect_status WHAT CODE TOKEN CURL_ARGS...
expect_status() {
    local what=$1 want=$2
    shift 2
    expect_http "$what" "$want" rcurl "$@"
}
# chal_param NAME: the value of NAME="..." in the last WWW-Authenticate header
chal_param() {
    local h re
    h=$(header_of WWW-Authenticate)
    re="(^|[ ,])$1=\"([^\"]*)\""
    if [[ "$h" =~ $re ]]; then printf '%s' "${BASH_REMATCH[2]}"; fi
}
# _sorted SEP WORD...: the words sorted, joined with SEP, in $REPLY (pure bash)
_sorted() {
    local sep=$1 i j t
    shift
    local w=("$@")
    for ((i = 1; i < ${#w[@]}; i++)); do
        for ((j = i; j > 0; j--)); do
            [[ "${w[j - 1]}" > "${w[j]}" ]] || break
            t=${w[j]} w[j]=${w[j - 1]} w[j - 1]=$t
        done
    done
    local IFS=$sep
    REPLY="${w[*]}"
}
# norm_scope "repository:a:push,pull registry:catalog:*": actions sorted,
# scopes sorted (pure bash: this runs a lot)
norm_scope() {
    local s acts scopes out=()
    read -ra scopes <<<"$1"
    for s in "${scopes[@]}"; do
        IFS=, read -ra acts <<<"${s##*:}"
        _sorted , "${acts[@]}"
        out+=("${s%:*}:$REPLY")
    done
    _sorted ' ' "${out[@]}"
    printf '%s' "$REPLY"
}
# expect_challenge WHAT REALM SCOPE ERROR: the last response is a 401 with
# "Bearer realm=REALM,service=SERVICE" + scope SCOPE ("" = no scope) and
# ERROR: insufficient_scope (required), absent (no error parameter), or any.
expect_challenge() {
    local what=$1 realm=$2 scope=$3 err=$4 h got_scope got_err
    h=$(header_of WWW-Authenticate)
    [[ -n "$h" ]] || fail "$what: no WWW-Authenticate header: $(last_response)"
    [[ "$h" == "Bearer realm=\"$realm\",service=\"$SERVICE\""* ]] ||
        fail "$what: WWW-Authenticate does not start with Bearer realm=\"$realm\",service=\"$SERVICE\": $h"
    got_scope=$(chal_param scope)
    [[ "$(norm_scope "$got_scope")" == "$(norm_scope "$scope")" ]] ||
        fail "$what: challenge scope: expected '$scope', got '$got_scope' (WWW-Authenticate: $h)"
    got_err=$(chal_param error)
    case "$err" in
    insufficient_scope)
        [[ "$got_err" == insufficient_scope ]] ||
            fail "$what: expected error=\"insufficient_scope\" in the challenge, got '$got_err' (WWW-Authenticate: $h)"
        ;;
    absent)
        [[ -z "$got_err" ]] || fail "$what: expected no error parameter in the challenge: $h"
        ;;
    esac
    expect_error_body "$what" UNAUTHORIZED
    ok "$what: challenge scope='$got_scope'${got_err:+ error=$got_err}"
}
# expect_401 WHAT SCOPE ERROR TOKEN CURL_ARGS...: against the main registry
expect_401() {
    local what=$1 scope=$2 err=$3
    shift 3
    expect_status "$what" 401 "$@"
    expect_challenge "$what" "$REALM" "$scope" "$err"
}

# jwt_json TOKEN PART: the decoded header (0) or claims (1) of a JWT
jwt_json() {
    "$PYTHON" -c '
import base64, json, sys
s = sys.argv[1].split(".")[int(sys.argv[2])]
print(json.dumps(json.loads(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))), sort_keys=True))' "$1" "$2"
}

# ---------------------------------------------------------------- start

step "token issuers and registries"
start_issuer issuer-rsa --key "$PKI/issuer.key" --alg RS256
ISS_RSA=$ISSUER_URL
start_issuer issuer-ec --key "$PKI/issuer-ec.key" --alg ES256
ISS_EC=$ISSUER_URL
start_issuer issuer-x5c --key "$PKI/x5c-leaf.key" --alg ES256 --x5c "$PKI/x5c-leaf.crt"
ISS_X5C=$ISSUER_URL
start_issuer issuer-x5c2 --key "$PKI/x5c-leaf2.key" --alg ES256 --x5c "$PKI/x5c-leaf2-chain.pem"
ISS_X5C2=$ISSUER_URL

REALM="$ISS_RSA/token"
JWKS_LINE=
((REFERENCE)) || JWKS_LINE="    jwks: $PKI/jwks.json"
ROOT="$TEST_TMP/main-data"
start_auth_registry "$BIN" "$ROOT" "$(free_port)" "auth:
  token:
    realm: $REALM
    service: $SERVICE
    issuer: $ISSUER
    rootcertbundle: $PKI/bundle.pem
$JWKS_LINE"
R=$REGISTRY_URL MAIN_LOG=$REGISTRY_LOG
REG="127.0.0.1:$REGISTRY_PORT"

# ---------------------------------------------------------------- challenges

step "requests without a token: 401 with the Bearer challenge"
expect_401 "GET /v2/ without a token" "" absent "" "$R/v2/"
expect_eq "Docker-Distribution-API-Version" "registry/2.0" "$(header_of Docker-Distribution-API-Version)"
expect_401 "GET tags/list without a token" "repository:team/app:pull" absent "" "$R/v2/team/app/tags/list"
expect_401 "GET manifest without a token" "repository:team/app:pull" absent "" "$R/v2/team/app/manifests/v1"
expect_401 "HEAD manifest without a token" "repository:team/app:pull" absent "" -I "$R/v2/team/app/manifests/v1"
expect_401 "GET blob without a token" "repository:team/app:pull" absent "" \
    "$R/v2/team/app/blobs/sha256:$(printf x | sha256sum | cut -d' ' -f1)"
expect_401 "POST blob upload without a token" "repository:team/app:pull,push" absent "" -X POST "$R/v2/team/app/blobs/uploads/"
expect_401 "PUT manifest without a token" "repository:team/app:pull,push" absent "" -X PUT \
    -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary '{}' "$R/v2/team/app/manifests/v1"
expect_401 "DELETE manifest without a token" "repository:team/app:delete" absent "" -X DELETE \
    "$R/v2/team/app/manifests/sha256:$(printf y | sha256sum | cut -d' ' -f1)"
expect_401 "GET /v2/_catalog without a token" "registry:catalog:*" absent "" "$R/v2/_catalog"
expect_401 "GET nested repository without a token" "repository:a/b/c:pull" absent "" "$R/v2/a/b/c/tags/list"

step "the issuer: passwords and /v2/ with a token"
for creds in "alice:wrong-$ALICE_PW" "mallory:$ALICE_PW" "bob:$ALICE_PW"; do
    got=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -u "$creds" "$ISS_RSA/token?service=$SERVICE&account=${creds%%:*}")
    expect_eq "issuer answer for ${creds%%:*} with a wrong password" 401 "$got"
done
T=$(tok_alice)
expect_status "GET /v2/ with alice's token (no access claim)" 200 "$T" "$R/v2/"
T=$(token_from "$ISS_RSA" "" "")
expect_status "GET /v2/ with an anonymous token" 200 "$T" "$R/v2/"

# ---------------------------------------------------------------- docker

step "docker: login, push, pull as alice / bob / anonymous"
start_dockerd
IMG="$REG/team/app"
docker_import_base "$IMG:v1" regfs-e2e-token 300000
image_id=$(docker image inspect -f '{{.Id}}' "$IMG:v1")
log "imported $IMG:v1 = $image_id"
DOCKER_REFUSED_RE='denied|unauthorized|authentication required|insufficient'

expect_refusal "docker push before login" "$DOCKER_REFUSED_RE" timeout 120 docker push "$IMG:v1"
expect_refusal "docker login with a wrong password" "" \
    timeout 60 docker login "$REG" -u alice --password-stdin <<<"wrong-$ALICE_PW"

docker_login "$REG" alice "$ALICE_PW"
grep -q '"account":"alice"' "$TEST_TMP/issuer-rsa.log" || fail "the issuer saw no token request for account alice"
d1=$(docker_push "$IMG:v1")
ok "docker push $IMG:v1 -> $d1"
docker tag "$IMG:v1" "$REG/public/base:1"
dpub=$(docker_push "$REG/public/base:1")
ok "docker push $REG/public/base:1 -> $dpub"
T=$(tok_alice repository:team/app:pull)
expect_status "HEAD team/app:v1 with alice's pull token" 200 "$T" -I \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "$R/v2/team/app/manifests/v1"
expect_eq "Docker-Content-Digest of team/app:v1" "$d1" "$(header_of Docker-Content-Digest)"

docker rmi -f "$IMG:v1" "$REG/public/base:1" >/dev/null
[[ -z "$(docker image ls -aq)" ]] || fail "images left after rmi: $(docker image ls -a)"
docker_pull "$IMG:v1"
expect_eq "image ID after docker pull as alice" "$image_id" "$(docker image inspect -f '{{.Id}}' "$IMG:v1")"
expect_eq "repo digest after docker pull" "$IMG@$d1" "$(docker image inspect -f '{{index .RepoDigests 0}}' "$IMG:v1")"
docker_logout "$REG"
docker rmi -f "$IMG:v1" >/dev/null

step "docker anonymously: public/** pull only"
docker_pull "$REG/public/base:1"
expect_eq "image ID of public/base:1 pulled anonymously" "$image_id" "$(docker image inspect -f '{{.Id}}' "$REG/public/base:1")"
expect_refusal "anonymous docker pull $IMG:v1" "" timeout 120 docker pull "$IMG:v1"
snapshot_storage "$ROOT"
docker tag "$REG/public/base:1" "$REG/public/base:anon"
expect_refusal "anonymous docker push public/base:anon" "" timeout 120 docker push "$REG/public/base:anon"
expect_storage_unchanged "after the refused anonymous push"

step "docker as bob (pull only)"
docker_login "$REG" bob "$BOB_PW"
docker_pull "$IMG:v1"
expect_eq "image ID of team/app:v1 pulled by bob" "$image_id" "$(docker image inspect -f '{{.Id}}' "$IMG:v1")"
docker tag "$IMG:v1" "$IMG:bob"
snapshot_storage "$ROOT"
expect_refusal "docker push $IMG:bob as bob (pull only)" "$DOCKER_REFUSED_RE" timeout 120 docker push "$IMG:bob"
expect_storage_unchanged "after bob's refused push"
T=$(tok_alice repository:team/app:pull)
expect_status "HEAD team/app:bob (alice's token) after bob's refused push" 404 "$T" -I "$R/v2/team/app/manifests/bob"
docker_logout "$REG"

# ---------------------------------------------------------------- skopeo

step "skopeo copy with --creds (RS256 realm)"
SRC="$TEST_TMP/oci-src"
sdigest=$(mkoci "$SRC" v1 --layers 2 --size 100000 --seed token-auth)
log "generated OCI image $sdigest"
for creds in "alice:wrong-$ALICE_PW" "bob:$BOB_PW"; do
    snapshot_storage "$ROOT"
    expect_refusal "skopeo copy to $REG/team/sk:v1 as ${creds%%:*} (${creds#*:})" "$AUTH_REFUSED_RE" \
        skopeo_push "$creds" "oci:$SRC:v1" "$REG/team/sk:v1"
    expect_storage_unchanged "after the refused skopeo copy"
done
expect_success "skopeo copy oci:src:v1 -> docker://$REG/team/sk:v1 as alice" \
    skopeo_push "alice:$ALICE_PW" "oci:$SRC:v1" "$REG/team/sk:v1"
DST="$TEST_TMP/oci-dst"
expect_success "skopeo copy docker://$REG/team/sk:v1 -> oci as bob" \
    skopeo_pull "bob:$BOB_PW" "$REG/team/sk:v1" "oci:$DST:v1"
expect_eq "digest copied back by bob" "$sdigest" "$(oci_tag_digest "$DST" v1)"
oci_same_image "$SRC" "$DST" "$sdigest"
skc inspect --raw --tls-verify=false --no-creds "docker://$REG/public/base:1" >"$TEST_TMP/pub.json" 2>"$TEST_TMP/sk.out" || {
    cat "$TEST_TMP/sk.out" >&2
    fail "anonymous skopeo inspect docker://$REG/public/base:1 failed"
}
expect_eq "digest of public/base:1 read anonymously by skopeo" "$dpub" "sha256:$(sha256_of "$TEST_TMP/pub.json")"
expect_refusal "anonymous skopeo inspect team/sk:v1" "" \
    skc inspect --raw --tls-verify=false --no-creds "docker://$REG/team/sk:v1"

# ---------------------------------------------------------------- bad tokens

step "minted tokens: accepted controls and refused defects"
T=$(tok_alice repository:team/app:pull)
rcurl "$T" -H "Accept: $MANIFEST_ACCEPT" "$R/v2/team/app/manifests/v1" >/dev/null
cp "$TEST_TMP/curl.body" "$TEST_TMP/app-v1.json"
MT=$(header_of Content-Type)
expect_eq "digest of the team/app:v1 manifest" "$d1" "sha256:$(sha256_of "$TEST_TMP/app-v1.json")"
LAYER=$(jq -r '.layers[0].digest' "$TEST_TMP/app-v1.json")
put_args() { # put_args TAG: curl arguments for a PUT of the v1 manifest as TAG
    printf '%s\n' -X PUT -H "Content-Type: $MT" --data-binary "@$TEST_TMP/app-v1.json" "$R/v2/team/app/manifests/$1"
}
# accepted CASE TOKEN: GET works, PUT of the v1 manifest as tag ok-CASE too
accepted() {
    local c=$1 tok=$2 args
    [[ -n "$tok" ]] || fail "[$c] no token (minting failed)"
    expect_status "[$c] GET team/app:v1" 200 "$tok" -H "Accept: $MANIFEST_ACCEPT" "$R/v2/team/app/manifests/v1"
    mapfile -t args < <(put_args "ok-$c")
    expect_status "[$c] PUT team/app:ok-$c" 201 "$tok" "${args[@]}"
}
# refused CASE TOKEN: GET and PUT refused with the challenge; PUT stored nothing
refused() {
    local c=$1 tok=$2 args alice
    [[ -n "$tok" ]] || fail "[$c] no token (minting failed)"
    expect_401 "[$c] GET team/app:v1" "repository:team/app:pull" any "$tok" \
        -H "Accept: $MANIFEST_ACCEPT" "$R/v2/team/app/manifests/v1"
    log "  [$c] error parameter: '$(chal_param error)'"
    snapshot_storage "$ROOT"
    mapfile -t args < <(put_args "bad-$c")
    expect_401 "[$c] PUT team/app:bad-$c" "repository:team/app:pull,push" any "$tok" "${args[@]}"
    expect_401 "[$c] POST team/app blob upload" "repository:team/app:pull,push" any "$tok" -X POST "$R/v2/team/app/blobs/uploads/"
    expect_storage_unchanged "[$c] after the refused PUT and POST"
    alice=$(tok_alice repository:team/app:pull)
    expect_status "[$c] HEAD team/app:bad-$c with alice's token" 404 "$alice" -I "$R/v2/team/app/manifests/bad-$c"
}
NOW=$(date +%s)
RSA=(--key "$PKI/issuer.key" --alg RS256)
EC=(--key "$PKI/issuer-ec.key" --alg ES256)

accepted rs256 "$(mint "${RSA[@]}")"
accepted es256 "$(mint "${EC[@]}")"
if ((REFERENCE)); then
    log "reference mode: registry:2 2.8 takes aud as a string only; aud-array skipped"
else
    accepted aud-array "$(mint "${RSA[@]}" --claims '{"aud":["other-service","'"$SERVICE"'"]}')"
fi
accepted nbf-leeway "$(mint "${RSA[@]}" --claims "{\"nbf\":$((NOW + 20))}")"
accepted star-actions "$(mint "${RSA[@]}" --access '[{"type":"repository","name":"team/app","actions":["*"]}]')"

refused expired "$(mint "${RSA[@]}" --claims "{\"exp\":$((NOW - 600)),\"nbf\":$((NOW - 1200)),\"iat\":$((NOW - 1200))}")"
refused no-exp "$(mint "${RSA[@]}" --claims '{"exp":null}')"
refused wrong-iss "$(mint "${RSA[@]}" --claims '{"iss":"other-issuer"}')"
refused no-iss "$(mint "${RSA[@]}" --claims '{"iss":null}')"
refused wrong-aud "$(mint "${RSA[@]}" --claims '{"aud":"other-service"}')"
refused wrong-aud-array "$(mint "${RSA[@]}" --claims '{"aud":["other-service","x"]}')"
refused no-aud "$(mint "${RSA[@]}" --claims '{"aud":null}')"
refused nbf-future "$(mint "${RSA[@]}" --claims "{\"nbf\":$((NOW + 600))}")"
refused untrusted-rsa "$(mint --key "$PKI/rogue.key" --alg RS256)"
refused untrusted-rsa-trusted-kid "$(mint --key "$PKI/rogue.key" --alg RS256 --kid "$KID_ISSUER")"
refused untrusted-ec "$(mint --key "$PKI/rogue-ec.key" --alg ES256)"
refused untrusted-ec-trusted-kid "$(mint --key "$PKI/rogue-ec.key" --alg ES256 \
    --kid "$(node "$ISSUER_JS" --print-kid "$PKI/issuer-ec.crt")")"
refused alg-none "$(mint --alg none)"
refused alg-none-kid "$(mint --alg none --kid "$KID_ISSUER")"
refused hs256-cert "$(mint --key "$PKI/issuer.crt" --alg HS256 --kid "$KID_ISSUER")"
refused hs256-pubkey "$(mint --key "$PKI/issuer.pub" --alg HS256 --kid "$KID_ISSUER")"
refused hs256-nokid "$(mint --key "$PKI/issuer.pub" --alg HS256)"
# A valid signature over claims for another repository, with the payload
# swapped for one granting team/app.
good=$(mint "${RSA[@]}" --access '[{"type":"repository","name":"other/repo","actions":["pull","push"]}]')
forged_payload=$(mint "${RSA[@]}" | cut -d. -f2)
refused tampered "$(cut -d. -f1 <<<"$good").$forged_payload.$(cut -d. -f3 <<<"$good")"
# ES256 signature in DER form instead of JWS's raw r||s
es=$(mint "${EC[@]}")
der_sig=$(cut -d. -f3 <<<"$es" | "$PYTHON" -c '
import base64, sys
s = sys.stdin.read().strip(); raw = base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def i(b):
    b = b.lstrip(b"\0") or b"\0"
    if b[0] & 0x80: b = b"\0" + b
    return b"\x02" + bytes([len(b)]) + b
body = i(raw[:32]) + i(raw[32:])
print(base64.urlsafe_b64encode(b"\x30" + bytes([len(body)]) + body).decode().rstrip("="))')
refused es256-der-signature "$(cut -d. -f1-2 <<<"$es").$der_sig"
refused garbage "not-a-jwt"
refused truncated "$(mint "${RSA[@]}" | cut -d. -f1-2)"

step "valid tokens without the needed action: insufficient_scope"
T=$(tok_bob repository:team/app:pull,push)
snapshot_storage "$ROOT"
mapfile -t args < <(put_args bad-bob)
expect_401 "PUT team/app:bad-bob with bob's token (pull only)" "repository:team/app:pull,push" insufficient_scope "$T" "${args[@]}"
expect_401 "POST blob upload with bob's token" "repository:team/app:pull,push" insufficient_scope "$T" -X POST "$R/v2/team/app/blobs/uploads/"
expect_storage_unchanged "after bob's refused PUT and POST"
expect_status "GET team/app:v1 with bob's token" 200 "$T" -H "Accept: $MANIFEST_ACCEPT" "$R/v2/team/app/manifests/v1"
T=$(tok_alice repository:team/other:pull)
expect_401 "GET team/app:v1 with a token for team/other" "repository:team/app:pull" insufficient_scope "$T" \
    -H "Accept: $MANIFEST_ACCEPT" "$R/v2/team/app/manifests/v1"
T=$(mint "${RSA[@]}" --access '[{"type":"repository","name":"team/app","actions":["push"]}]')
expect_401 "GET team/app:v1 with a push-only token" "repository:team/app:pull" insufficient_scope "$T" \
    -H "Accept: $MANIFEST_ACCEPT" "$R/v2/team/app/manifests/v1"
T=$(mint "${RSA[@]}" --access '[{"type":"repository","name":"team/*","actions":["*"]}]')
expect_401 "GET team/app:v1 with a token for 'team/*' (names are not patterns)" "repository:team/app:pull" \
    insufficient_scope "$T" -H "Accept: $MANIFEST_ACCEPT" "$R/v2/team/app/manifests/v1"
T=$(mint "${RSA[@]}" --access '[{"type":"registry","name":"team/app","actions":["*"]}]')
expect_401 "GET team/app:v1 with a registry-type grant named team/app" "repository:team/app:pull" \
    insufficient_scope "$T" -H "Accept: $MANIFEST_ACCEPT" "$R/v2/team/app/manifests/v1"

step "_catalog needs registry:catalog:*"
T=$(tok_alice repository:team/app:pull,push,delete)
expect_401 "_catalog with a repository-only token" "registry:catalog:*" insufficient_scope "$T" "$R/v2/_catalog"
T=$(tok_bob "registry:catalog:*")
expect_401 "_catalog with bob's token (catalog not granted)" "registry:catalog:*" insufficient_scope "$T" "$R/v2/_catalog"
T=$(tok_alice "registry:catalog:*")
expect_status "_catalog with alice's catalog token" 200 "$T" "$R/v2/_catalog?n=1000"
expect_eq "_catalog" "public/base team/app team/sk" "$(jq -r '.repositories | sort | join(" ")' "$TEST_TMP/curl.body")"

step "cross-repository mount"
T=$(tok_carol repository:carol/app:pull,push repository:team/app:pull)
expect_eq "carol's token grants" '[{"actions":["pull","push"],"name":"carol/app","type":"repository"}]' "$(jwt_json "$T" 1 | jq -c -S .access)"
expect_status "mount of $LAYER from team/app by carol (no pull on team/app)" 401 "$T" \
    -X POST "$R/v2/carol/app/blobs/uploads/?mount=$LAYER&from=team/app"
expect_challenge "mount by carol (the whole request is refused)" "$REALM" \
    "repository:carol/app:pull,push repository:team/app:pull" insufficient_scope
A=$(tok_alice repository:carol/app:pull)
expect_status "HEAD carol/app blob $LAYER (alice's token) after the refused mount" 404 "$A" -I "$R/v2/carol/app/blobs/$LAYER"
T=$(tok_carol repository:carol/app:pull)
expect_status "HEAD carol/app blob $LAYER (carol's token)" 404 "$T" -I "$R/v2/carol/app/blobs/$LAYER"
T=$(tok_alice repository:team/mounted:pull,push repository:team/app:pull)
expect_status "mount of $LAYER from team/app by alice" 201 "$T" -X POST "$R/v2/team/mounted/blobs/uploads/?mount=$LAYER&from=team/app"
expect_status "HEAD team/mounted blob $LAYER" 200 "$T" -I "$R/v2/team/mounted/blobs/$LAYER"
expect_eq "Docker-Content-Digest of the mounted blob" "$LAYER" "$(header_of Docker-Content-Digest)"

step "DELETE needs the delete action"
T=$(tok_alice repository:team/sk:pull,push)
expect_401 "DELETE team/sk manifest with a pull,push token" "repository:team/sk:delete" insufficient_scope "$T" \
    -X DELETE "$R/v2/team/sk/manifests/$sdigest"
expect_status "team/sk:v1 still there" 200 "$T" -I -H "Accept: $MANIFEST_ACCEPT" "$R/v2/team/sk/manifests/$sdigest"
T=$(tok_alice repository:team/sk:delete,pull)
expect_status "DELETE team/sk manifest with a delete token" 202 "$T" -X DELETE "$R/v2/team/sk/manifests/$sdigest"
expect_status "team/sk manifest after DELETE" 404 "$T" -I -H "Accept: $MANIFEST_ACCEPT" "$R/v2/team/sk/manifests/$sdigest"

# ---------------------------------------------------------------- ES256, x5c, JWKS

step "tokens from the ES256 issuer and with x5c chains"
T=$(token_from "$ISS_EC" alice "$ALICE_PW" repository:team/app:pull)
expect_eq "alg of the ES256 issuer's token" ES256 "$(jwt_json "$T" 0 | jq -r .alg)"
expect_status "GET team/app:v1 with an ES256 token from the issuer" 200 "$T" -H "Accept: $MANIFEST_ACCEPT" "$R/v2/team/app/manifests/v1"
T=$(token_from "$ISS_X5C" alice "$ALICE_PW" repository:team/app:pull)
expect_status "GET team/app:v1 with an x5c token (leaf signed by the bundle's CA)" 200 "$T" \
    -H "Accept: $MANIFEST_ACCEPT" "$R/v2/team/app/manifests/v1"
T=$(token_from "$ISS_X5C2" alice "$ALICE_PW" repository:team/app:pull)
expect_status "GET team/app:v1 with an x5c token (leaf + intermediate)" 200 "$T" \
    -H "Accept: $MANIFEST_ACCEPT" "$R/v2/team/app/manifests/v1"
accepted x5c-minted "$(mint --key "$PKI/x5c-leaf.key" --alg ES256 --x5c "$PKI/x5c-leaf.crt")"
refused x5c-rogue-chain "$(mint --key "$PKI/rogue-leaf.key" --alg ES256 --x5c "$PKI/rogue-leaf.crt")"
refused x5c-forged-signature "$(mint --key "$PKI/rogue-leaf.key" --alg ES256 --x5c "$PKI/x5c-leaf.crt")"
refused x5c-intermediate-missing "$(mint --key "$PKI/x5c-leaf2.key" --alg ES256 --x5c "$PKI/x5c-leaf2.crt")"
refused x5c-untrusted-with-trusted-key "$(mint "${RSA[@]}" --x5c "$PKI/rogue.crt")"

if ((REFERENCE)); then
    log "reference mode: JWKS and kid-less tokens skipped"
else
    step "JWKS keys and tokens without kid (regfs)"
    accepted jwks-ec "$(mint --key "$PKI/jwks-ec.key" --alg ES256 --kid jwks-ec-1)"
    accepted jwks-rsa "$(mint --key "$PKI/jwks-rsa.key" --alg RS256)"
    accepted jwks-ec-nokid "$(mint --key "$PKI/jwks-ec.key" --alg ES256 --no-kid)"
    accepted bundle-rsa-nokid "$(mint "${RSA[@]}" --no-kid)"
    accepted bundle-ec-nokid "$(mint "${EC[@]}" --no-kid)"
    refused untrusted-ec-jwks-kid "$(mint --key "$PKI/rogue-ec.key" --alg ES256 --kid jwks-ec-1)"
    refused untrusted-rsa-jwks-kid "$(mint --key "$PKI/rogue.key" --alg RS256 --kid "$KID_JWKS_RSA")"
    refused untrusted-nokid "$(mint --key "$PKI/rogue.key" --alg RS256 --no-kid)"
fi

step "a second registry whose realm signs ES256 (rootcertbundle: the EC certificate only)"
start_auth_registry "$BIN" "$TEST_TMP/es256-data" "$(free_port)" "auth:
  token:
    realm: $ISS_EC/token
    service: $SERVICE
    issuer: $ISSUER
    rootcertbundle: $PKI/issuer-ec.crt"
R2=$REGISTRY_URL REG2="127.0.0.1:$REGISTRY_PORT" ES256_LOG=$REGISTRY_LOG
expect_success "skopeo copy oci:src:v1 -> docker://$REG2/team/es:v1 as alice (ES256 tokens)" \
    skopeo_push "alice:$ALICE_PW" "oci:$SRC:v1" "$REG2/team/es:v1"
DST2="$TEST_TMP/oci-dst2"
expect_success "skopeo copy docker://$REG2/team/es:v1 -> oci as bob" \
    skopeo_pull "bob:$BOB_PW" "$REG2/team/es:v1" "oci:$DST2:v1"
oci_same_image "$SRC" "$DST2" "$sdigest"
T=$(tok_alice repository:team/es:pull)
got=$(rcurl "$T" -H "Accept: $MANIFEST_ACCEPT" "$R2/v2/team/es/manifests/v1")
[[ "$got" == 401 ]] || fail "an RS256 token (key not in this registry's rootcertbundle) got HTTP $got: $(last_response)"
expect_challenge "RS256 token at the ES256-only registry" "$ISS_EC/token" "repository:team/es:pull" any
T=$(token_from "$ISS_EC" alice "$ALICE_PW" repository:team/es:pull)
expect_status "ES256 token at the ES256-only registry" 200 "$T" -H "Accept: $MANIFEST_ACCEPT" "$R2/v2/team/es/manifests/v1"

# ---------------------------------------------------------------- TLS

step "token authentication over TLS: docker and skopeo verify the registry's certificate"
new_ca tls-ca "/CN=regfs e2e token TLS CA"
issue tls-server tls-ca "/CN=127.0.0.1" "subjectAltName=IP:127.0.0.1" \
    "extendedKeyUsage=serverAuth"
TLS_PORT=$(free_port)
REG3="127.0.0.1:$TLS_PORT"
TLS_CFG="$TEST_TMP/registry-tls.yml"
TLS_LOG="$TEST_TMP/registry-tls.log"
write_registry_config "$TLS_CFG" "$TEST_TMP/tls-data" "$REG3" "  tls:
    certificate: $PKI/tls-server.crt
    key: $PKI/tls-server.key
auth:
  token:
    realm: $REALM
    service: $SERVICE
    issuer: $ISSUER
    rootcertbundle: $PKI/bundle.pem"
serve_registry "$BIN" "$TLS_CFG" "$TLS_LOG" token-tls bash -c \
    "[[ \$(curl -s -o /dev/null -w '%{http_code}' --cacert '$PKI/tls-ca.crt' https://$REG3/v2/) == 401 ]]"
install_docker_ca "$REG3" "$PKI/tls-ca.crt"
TLS_IMG="$REG3/team/tls"
docker_import_base "$TLS_IMG:v1" regfs-e2e-token-tls 100000
tls_image_id=$(docker image inspect -f '{{.Id}}' "$TLS_IMG:v1")
docker_login "$REG3" alice "$ALICE_PW"
tls_digest=$(docker_push "$TLS_IMG:v1")
ok "docker push $TLS_IMG:v1 over TLS with tokens -> $tls_digest"
docker rmi -f "$TLS_IMG:v1" >/dev/null
docker_pull "$TLS_IMG:v1"
expect_eq "image ID after docker pull over TLS" "$tls_image_id" "$(docker image inspect -f '{{.Id}}' "$TLS_IMG:v1")"
docker_logout "$REG3"
docker rmi -f "$TLS_IMG:v1" >/dev/null
# skopeo with certificate verification on (the CA from --cert-dir), not --tls-verify=false.
mkdir -p "$TEST_TMP/tls-certs" && cp "$PKI/tls-ca.crt" "$TEST_TMP/tls-certs/ca.crt"
expect_success "skopeo copy oci -> docker://$REG3/team/tls-sk:v1 over verified TLS as alice" \
    skc copy --all --preserve-digests --dest-cert-dir "$TEST_TMP/tls-certs" \
    --dest-creds "alice:$ALICE_PW" "oci:$SRC:v1" "docker://$REG3/team/tls-sk:v1"
DST3="$TEST_TMP/oci-dst3"
expect_success "skopeo copy docker://$REG3/team/tls-sk:v1 -> oci over verified TLS as bob" \
    skc copy --all --preserve-digests --src-cert-dir "$TEST_TMP/tls-certs" \
    --src-creds "bob:$BOB_PW" "docker://$REG3/team/tls-sk:v1" "oci:$DST3:v1"
oci_same_image "$SRC" "$DST3" "$sdigest"
expect_refusal "skopeo push over TLS as bob (pull only)" "$AUTH_REFUSED_RE" \
    skc copy --all --dest-cert-dir "$TEST_TMP/tls-certs" --dest-creds "bob:$BOB_PW" \
    "oci:$SRC:v1" "docker://$REG3/team/tls-bob:v1"

# ---------------------------------------------------------------- logs

step "no token in the registry logs"
for pair in "main:$MAIN_LOG" "es256:$ES256_LOG" "tls:$TLS_LOG"; do
    which=${pair%%:*} f=${pair#*:}
    if grep -qE 'eyJ[A-Za-z0-9_-]{10,}' "$f"; then
        fail "the $which registry's log $(basename "$f") contains a JWT: $(grep -oE '.{40}eyJ[A-Za-z0-9_-]{10,}' "$f" | head -n 2)"
    fi
    if grep -qF -- "$ALICE_PW" "$f"; then fail "the $which registry's log $(basename "$f") contains alice's password"; fi
    ok "the $which registry's log $(basename "$f"): no JWT, no password"
done
