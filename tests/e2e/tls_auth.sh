#!/usr/bin/env bash
# TLS (http.tls) and basic authentication (auth.htpasswd) with real clients:
#   - certificates made here with openssl: a test CA, a server certificate for
#     127.0.0.1 (subjectAltName IP:127.0.0.1, DNS:localhost), client
#     certificates from that CA and from another CA;
#   - curl: challenge and credentials over https, certificate verification,
#     TLS versions (minimumtls default tls1.2, then tls1.3), https Location
#     headers, a plain http:// request to the TLS port, client certificates
#     (clientcas);
#   - skopeo copy up and back with --dest/--src-cert-dir and -creds, and with
#     wrong credentials (refused, nothing stored);
#   - docker login / push / rmi / pull / logout through a private dockerd,
#     the CA in /etc/docker/certs.d/127.0.0.1:PORT/ca.crt (removed at exit);
#   - no credentials in the registry logs.
#
# E2E_TLS_HOST_ADDR=1 (off by default: tests send traffic to loopback only) also runs docker against a registry on this
# host's first non-loopback IPv4 address, which dockerd does not treat as an
# insecure registry (it does for 127.0.0.0/8), so that docker verifies the
# certificate against certs.d; without it that part is skipped.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require_cmds curl jq python3 openssl htpasswd skopeo tar timeout base64
BIN=$(registry_bin)

USER_NAME=alice
# Distinctive, so that grepping the logs for it cannot match anything else.
PASSWORD='s3cret-E2E-pw'
REALM='regfs-e2e-realm'

known_bug() { # known_bug DESCRIPTION: a regression of a bug fixed before
    fail "regression: $*"
}

# ---------------------------------------------------------------- certificates

step "certificates and htpasswd"
# (new_ca, issue: lib.sh; everything in $PKI)
new_ca ca "/CN=regfs e2e test CA"
new_ca otherca "/CN=regfs e2e other CA"
issue server ca "/CN=127.0.0.1" "subjectAltName=IP:127.0.0.1,DNS:localhost" \
    "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth"
# An ordinary client certificate: it names a person, not the client's address.
issue client ca "/CN=e2e-client" \
    "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth"
# The same, but also naming 127.0.0.1 (see the clientcas step).
issue client-ip ca "/CN=e2e-client-ip" "subjectAltName=IP:127.0.0.1" \
    "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth"
issue intruder otherca "/CN=e2e-intruder" "subjectAltName=IP:127.0.0.1" \
    "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=clientAuth"
openssl verify -CAfile "$PKI/ca.crt" "$PKI/server.crt" "$PKI/client.crt" >/dev/null ||
    fail "the generated certificates do not verify against the test CA"
ok "test CA, server certificate (IP:127.0.0.1, DNS:localhost), client certificates"

HTPASSWD="$TEST_TMP/htpasswd"
htpasswd -cbB "$HTPASSWD" "$USER_NAME" "$PASSWORD" 2>/dev/null
# shellcheck disable=SC2016  # a literal "$2y$"-style prefix
grep -q "^$USER_NAME:"'\$2[aby]\$' "$HTPASSWD" || fail "htpasswd -B did not write a bcrypt entry: $(cat "$HTPASSWD")"
ok "htpasswd file with a bcrypt entry for $USER_NAME"
CREDS_B64=$(printf '%s:%s' "$USER_NAME" "$PASSWORD" | base64 -w0)

# ---------------------------------------------------------------- helpers

TLS_PID=
TLS_PORT=
TLS_LOG=
TLS_URL=
REGISTRY_LOGS=()

# start_tls_registry NAME ADDR_HOST TLS_YAML [TOP_LEVEL_YAML]
# TLS_YAML: the lines of http.tls, indented by 4. Waits (30 s at most) until
# the log says it listens on https. Sets TLS_PID, TLS_PORT, TLS_LOG, TLS_URL.
start_tls_registry() {
    local name=$1 host=$2 tls_yaml=$3 extra=${4:-}
    local port cfg="$TEST_TMP/$name.yml" logf="$TEST_TMP/$name.log"
    port=$(free_port)
    write_registry_config "$cfg" "$TEST_TMP/$name-data" "$host:$port" "  tls:
$tls_yaml${extra:+
$extra}"
    REGISTRY_LOGS+=("$logf")
    serve_registry "$BIN" "$cfg" "$logf" "$name" grep -qF "listening on https://$host:$port" "$logf"
    TLS_PID=$REGISTRY_PID TLS_PORT=$port TLS_LOG=$logf TLS_URL="https://$host:$port"
    log "registry $name: $TLS_URL"
}

AUTH_YAML="auth:
  htpasswd:
    realm: $REALM
    path: $HTPASSWD"
SERVER_TLS_YAML="    certificate: $PKI/server.crt
    key: $PKI/server.key"

# tcurl ARGS...: http_req (lib.sh) with the test CA: prints the status code
# (000 when no HTTP response) and returns curl's exit status.
tcurl() { http_req --cacert "$PKI/ca.crt" "$@"; }
# expect_status WHAT CODE CURL_ARGS...
expect_status() {
    local what=$1 want=$2
    shift 2
    expect_http "$what" "$want" tcurl "$@"
}
# expect_no_connection WHAT CURL_ARGS...: the TLS connection must fail
# (no HTTP status at all).
expect_no_connection() {
    local what=$1 got rc=0
    shift
    got=$(tcurl "$@") || rc=$?
    if ((rc == 0)) || [[ "$got" != 000 ]]; then
        fail "$what: expected the connection to fail, got HTTP $got (curl exit $rc)"
    fi
    ok "$what: refused (curl exit $rc: $(tr -d '\n' <"$TEST_TMP/curl.err" | cut -c1-120))"
}

# ---------------------------------------------------------------- curl: TLS + htpasswd

step "registry with TLS and htpasswd: curl"
start_tls_registry main 127.0.0.1 "$SERVER_TLS_YAML" "$AUTH_YAML"
MAIN_URL=$TLS_URL MAIN_PORT=$TLS_PORT MAIN_LOG=$TLS_LOG MAIN_PID=$TLS_PID
REG="127.0.0.1:$MAIN_PORT"

expect_status "GET /v2/ without credentials" 401 "$MAIN_URL/v2/"
expect_eq "WWW-Authenticate" "Basic realm=\"$REALM\"" "$(header_of WWW-Authenticate)"
expect_eq "error code" UNAUTHORIZED "$(jq -r '.errors[0].code' "$TEST_TMP/curl.body")"
expect_status "GET /v2/ with a wrong password" 401 -u "$USER_NAME:wrong-$PASSWORD" "$MAIN_URL/v2/"
expect_status "GET /v2/ as an unknown user" 401 -u "mallory:$PASSWORD" "$MAIN_URL/v2/"
expect_status "GET /v2/ with credentials" 200 -u "$USER_NAME:$PASSWORD" "$MAIN_URL/v2/"
expect_eq "body of /v2/" "{}" "$(jq -c . "$TEST_TMP/curl.body")"
expect_eq "Docker-Distribution-API-Version" "registry/2.0" "$(header_of Docker-Distribution-API-Version)"
expect_status "GET https://localhost:PORT/v2/ (DNS:localhost in the certificate)" 200 \
    -u "$USER_NAME:$PASSWORD" "https://localhost:$MAIN_PORT/v2/"

got=$(curl -sS --max-time 20 -o /dev/null -w '%{http_code}' "$MAIN_URL/v2/" 2>"$TEST_TMP/curl.err") && rc=0 || rc=$?
((rc == 60)) || fail "curl without --cacert: expected exit 60 (certificate not trusted), got exit $rc, HTTP $got"
ok "curl without the test CA refuses the server certificate (exit 60)"

step "TLS versions (minimumtls default: tls1.2)"
expect_status "TLS 1.2 (--tls-max 1.2)" 200 --tlsv1.2 --tls-max 1.2 -u "$USER_NAME:$PASSWORD" "$MAIN_URL/v2/"
expect_status "TLS 1.3 (--tlsv1.3)" 200 --tlsv1.3 -u "$USER_NAME:$PASSWORD" "$MAIN_URL/v2/"
# SECLEVEL=0 lets the client offer TLS 1.1/1.0, so the refusal is the server's.
expect_no_connection "TLS 1.1 (--tls-max 1.1)" --tlsv1.1 --tls-max 1.1 --ciphers 'DEFAULT:@SECLEVEL=0' "$MAIN_URL/v2/"
expect_no_connection "TLS 1.0 (--tls-max 1.0)" --tlsv1.0 --tls-max 1.0 --ciphers 'DEFAULT:@SECLEVEL=0' "$MAIN_URL/v2/"
expect_no_connection "plain --tls-max 1.1" --tls-max 1.1 "$MAIN_URL/v2/"

step "Location headers are https://"
expect_status "POST /v2/e2e/loc/blobs/uploads/" 202 -X POST -u "$USER_NAME:$PASSWORD" \
    "$MAIN_URL/v2/e2e/loc/blobs/uploads/"
location=$(header_of Location)
[[ "$location" == "https://127.0.0.1:$MAIN_PORT/v2/e2e/loc/blobs/uploads/"* ]] ||
    fail "Location of the upload is not https://127.0.0.1:$MAIN_PORT/...: '$location'"
ok "Location: $location"
expect_status "GET the upload's Location" 204 -u "$USER_NAME:$PASSWORD" "$location"
expect_eq "Location of GET upload status" "https" "$(header_of Location | cut -d: -f1)"
expect_status "DELETE the upload" 204 -X DELETE -u "$USER_NAME:$PASSWORD" "$location"

step "plain http:// to the TLS port gets no registry data"
for creds in "" "-u $USER_NAME:$PASSWORD"; do
    # shellcheck disable=SC2086  # $creds is deliberately split
    got=$(curl -sS --connect-timeout 5 --max-time 10 $creds -D "$TEST_TMP/plain.headers" \
        -o "$TEST_TMP/plain.body" -w '%{http_code}' "http://127.0.0.1:$MAIN_PORT/v2/" 2>"$TEST_TMP/curl.err") &&
        rc=0 || rc=$?
    if grep -qi '^Docker-Distribution-API-Version' "$TEST_TMP/plain.headers" 2>/dev/null; then
        fail "plain HTTP to the TLS port got a registry response header: $(cat "$TEST_TMP/plain.headers")"
    fi
    if [[ -s "$TEST_TMP/plain.body" ]] && grep -q '{}' "$TEST_TMP/plain.body"; then
        fail "plain HTTP to the TLS port got the /v2/ body"
    fi
    ok "plain HTTP ${creds:+with credentials }-> HTTP $got, curl exit $rc ($(tr -d '\n' <"$TEST_TMP/curl.err" | cut -c1-80)), no registry data"
done
pid_alive "$MAIN_PID" || fail "the registry died after plain-HTTP requests to its TLS port"
expect_status "https still works after the plain-HTTP attempts" 200 -u "$USER_NAME:$PASSWORD" "$MAIN_URL/v2/"

# ---------------------------------------------------------------- minimumtls: tls1.3

step "minimumtls: tls1.3"
start_tls_registry tls13 127.0.0.1 "$SERVER_TLS_YAML
    minimumtls: tls1.3"
expect_no_connection "TLS 1.2 (--tls-max 1.2) against minimumtls tls1.3" --tls-max 1.2 "$TLS_URL/v2/"
expect_status "TLS 1.3 against minimumtls tls1.3" 200 --tlsv1.3 "$TLS_URL/v2/"
stop_registry "$TLS_PID"

# ---------------------------------------------------------------- clientcas (mTLS)

step "clientcas: client certificates required"
start_tls_registry mtls 127.0.0.1 "$SERVER_TLS_YAML
    clientcas:
      - $PKI/ca.crt"
for v in 1.2 1.3; do
    expect_no_connection "TLS $v without a client certificate" --tls-max "$v" "$TLS_URL/v2/"
    expect_no_connection "TLS $v with a certificate from another CA" --tls-max "$v" \
        --cert "$PKI/intruder.crt" --key "$PKI/intruder.key" "$TLS_URL/v2/"
    expect_status "TLS $v with a certificate from the CA (naming 127.0.0.1)" 200 --tls-max "$v" \
        --cert "$PKI/client-ip.crt" --key "$PKI/client-ip.key" "$TLS_URL/v2/"
    got=$(tcurl --tls-max "$v" --cert "$PKI/client.crt" --key "$PKI/client.key" "$TLS_URL/v2/") || true
    if [[ "$got" == 200 ]]; then
        ok "TLS $v with an ordinary client certificate from the CA: HTTP 200"
    else
        known_bug "clientcas: a client certificate signed by the CA but not naming the client's" \
            "address (CN=e2e-client, no subjectAltName) is refused over TLS $v: got HTTP $got" \
            "($(tr -d '\n' <"$TEST_TMP/curl.err")); the server checks the client certificate's" \
            "name against the client's IP address"
    fi
done
stop_registry "$TLS_PID"

# ---------------------------------------------------------------- skopeo

step "skopeo over TLS with basic authentication"
# Before the docker step: skopeo also reads /etc/docker/certs.d/HOST:PORT,
# which would hide a missing --dest-cert-dir.
CERT_DIR="$TEST_TMP/skopeo-certs"
mkdir -p "$CERT_DIR"
cp "$PKI/ca.crt" "$CERT_DIR/ca.crt"
# (skc: no auth file from this machine may supply or override credentials.)
SRC="$TEST_TMP/oci-src"
digest=$(mkoci "$SRC" v1 --layers 2 --size 100000 --seed tls-auth)
log "generated OCI image $digest"

snapshot_storage "$TEST_TMP/main-data"
expect_refusal "skopeo copy without the CA" 'x509|certificate' \
    skc copy --all --preserve-digests --dest-creds "$USER_NAME:$PASSWORD" "oci:$SRC:v1" "docker://$REG/e2e/skopeo:v1"

for creds in "" "--dest-creds $USER_NAME:wrong-$PASSWORD" "--dest-creds mallory:$PASSWORD"; do
    # shellcheck disable=SC2086  # $creds is deliberately split
    expect_refusal "skopeo copy ${creds:-without credentials}" 'unauthorized|authentication required|401' \
        skc copy --all --preserve-digests --dest-cert-dir "$CERT_DIR" $creds "oci:$SRC:v1" "docker://$REG/e2e/skopeo:v1"
done
expect_status "tags/list of e2e/skopeo after the refused copies" 404 -u "$USER_NAME:$PASSWORD" \
    "$MAIN_URL/v2/e2e/skopeo/tags/list"
expect_storage_unchanged "after the refused copies"

expect_success "skopeo copy oci:src:v1 -> docker://$REG/e2e/skopeo:v1 with the CA and credentials" \
    skc copy --all --preserve-digests --dest-cert-dir "$CERT_DIR" --dest-creds "$USER_NAME:$PASSWORD" \
    "oci:$SRC:v1" "docker://$REG/e2e/skopeo:v1"
expect_status "tags/list of e2e/skopeo" 200 -u "$USER_NAME:$PASSWORD" "$MAIN_URL/v2/e2e/skopeo/tags/list"
expect_eq "tags of e2e/skopeo" v1 "$(jq -r '.tags | join(" ")' "$TEST_TMP/curl.body")"

expect_refusal "skopeo copy from the registry with a wrong password" 'unauthorized|authentication required|401' \
    skc copy --all --src-cert-dir "$CERT_DIR" --src-creds "$USER_NAME:wrong-$PASSWORD" \
    "docker://$REG/e2e/skopeo:v1" "oci:$TEST_TMP/oci-nope:v1"

DST="$TEST_TMP/oci-dst"
expect_success "skopeo copy from $REG with the CA and credentials" \
    skc copy --all --preserve-digests --src-cert-dir "$CERT_DIR" --src-creds "$USER_NAME:$PASSWORD" \
    "docker://$REG/e2e/skopeo:v1" "oci:$DST:v1"
expect_eq "digest copied back" "$digest" "$(oci_tag_digest "$DST" v1)"
oci_same_image "$SRC" "$DST" "$digest"

# ---------------------------------------------------------------- docker

step "docker login / push / pull / logout over TLS"
start_dockerd
INSECURE_CIDRS=$(docker info --format '{{range .RegistryConfig.InsecureRegistryCIDRs}}{{.}} {{end}}' 2>/dev/null) || true
log "dockerd insecure registries: ${INSECURE_CIDRS:-none}"
# in_insecure_cidr ADDR: ADDR is in one of dockerd's insecure registry CIDRs
in_insecure_cidr() {
    # shellcheck disable=SC2086  # one argument per CIDR
    "$PYTHON" -c 'import ipaddress, sys
a = ipaddress.ip_address(sys.argv[1])
sys.exit(0 if any(a in ipaddress.ip_network(c, strict=False) for c in sys.argv[2:]) else 1)' "$1" $INSECURE_CIDRS
}
install_docker_ca "$REG" "$PKI/ca.crt"
CERTS_D=/etc/docker/certs.d

docker_import_base regfs-e2e/tls-base:1 regfs-e2e-tls 50000
ctx="$TEST_TMP/ctx"
printf 'hello over TLS\n' >"$ctx/hello.txt"
printf 'FROM regfs-e2e/tls-base:1\nCOPY hello.txt /hello.txt\n' >"$ctx/Dockerfile"
IMG="$REG/e2e/docker"
DOCKER_BUILDKIT=0 timeout 120 docker build -q -t "$IMG:v1" "$ctx" >/dev/null 2>"$TEST_TMP/build.err" || {
    cat "$TEST_TMP/build.err" >&2
    fail "docker build failed"
}
image_id=$(docker image inspect -f '{{.Id}}' "$IMG:v1")
log "built $IMG:v1 = $image_id"

expect_refusal "docker push before login" 'no basic auth credentials|unauthorized|authentication required' \
    timeout 120 docker push "$IMG:v1"
expect_refusal "docker login with a wrong password" 401 \
    timeout 60 docker login "$REG" -u "$USER_NAME" --password-stdin <<<"wrong-$PASSWORD"

docker_login "$REG" "$USER_NAME" "$PASSWORD"
jq -e --arg r "$REG" '.auths[$r]' "$DOCKER_CONFIG/config.json" >/dev/null ||
    fail "no credentials for $REG in $DOCKER_CONFIG/config.json after docker login"
ok "credentials for $REG in $DOCKER_CONFIG/config.json"

pushed=$(docker_push "$IMG:v1")
ok "docker push $IMG:v1 -> $pushed"
expect_status "HEAD the pushed manifest" 200 -I -u "$USER_NAME:$PASSWORD" \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' "$MAIN_URL/v2/e2e/docker/manifests/v1"
expect_eq "Docker-Content-Digest of e2e/docker:v1" "$pushed" "$(header_of Docker-Content-Digest)"

docker rmi -f "$IMG:v1" regfs-e2e/tls-base:1 >/dev/null
[[ -z "$(docker image ls -aq)" ]] || fail "images left after rmi: $(docker image ls -a)"
docker_pull "$IMG:v1"
expect_eq "image ID after docker pull" "$image_id" "$(docker image inspect -f '{{.Id}}' "$IMG:v1")"
expect_eq "repo digest after docker pull" "$IMG@$pushed" "$(docker image inspect -f '{{index .RepoDigests 0}}' "$IMG:v1")"
# Keep the image under another name: pulling after logout must still fail,
# and the last step pushes it elsewhere.
docker tag "$IMG:v1" regfs-e2e/keep:1

grep 'msg=access' "$MAIN_LOG" | grep 'user_agent="docker/' | grep -q "user=$USER_NAME method=PUT uri=/v2/e2e/docker/manifests/v1 status=201" ||
    fail "no access line with user=$USER_NAME for docker's manifest PUT"
ok "access log: docker's manifest PUT by user=$USER_NAME"

docker_logout "$REG"
if jq -e --arg r "$REG" '.auths[$r]' "$DOCKER_CONFIG/config.json" >/dev/null 2>&1; then
    fail "credentials for $REG still in $DOCKER_CONFIG/config.json after docker logout"
fi
ok "docker logout $REG"
docker rmi -f "$IMG:v1" >/dev/null
if timeout 120 docker pull "$IMG:v1" >"$TEST_TMP/docker.out" 2>&1; then
    fail "docker pull after docker logout succeeded"
fi
# For an insecure registry (127.0.0.0/8), dockerd follows the 401 over https
# with an attempt over plain http://, and reports that one's error.
if grep -qF "Get \"http://$REG/v2/\"" "$TEST_TMP/docker.out"; then
    log "OBSERVED: after the 401 over https, dockerd retried the pull over plain http:// (insecure" \
        "registry fallback), which the TLS port refused: $(tail -n1 "$TEST_TMP/docker.out")"
else
    grep -qiE 'no basic auth credentials|unauthorized|authentication required|denied' "$TEST_TMP/docker.out" ||
        fail "docker pull after logout failed, but not for lack of credentials: $(cat "$TEST_TMP/docker.out")"
fi
ok "docker pull after logout: refused"

step "does dockerd verify the certificate of a registry on 127.0.0.1? (observation)"
# dockerd treats 127.0.0.0/8 as an insecure registry by default. It still
# speaks https to it (the server speaks nothing else, and every docker
# request above succeeded); whether it checks the certificate shows with the
# wrong CA in certs.d.
cp "$PKI/otherca.crt" "$CERTS_D/$REG/ca.crt"
if printf '%s' "$PASSWORD" | timeout 60 docker login "$REG" -u "$USER_NAME" --password-stdin \
    >"$TEST_TMP/docker.out" 2>&1; then
    log "OBSERVED: with the wrong CA in $CERTS_D/$REG, docker login still succeeds: dockerd" \
        "speaks TLS to 127.0.0.1 but does not verify the certificate (insecure registry)"
    timeout 60 docker logout "$REG" >/dev/null 2>&1 || true
else
    log "OBSERVED: with the wrong CA in $CERTS_D/$REG, docker login fails: dockerd verifies" \
        "the certificate of 127.0.0.1 ($(tail -n1 "$TEST_TMP/docker.out"))"
fi
cp "$PKI/ca.crt" "$CERTS_D/$REG/ca.crt"

# ---------------------------------------------------------------- docker, verified

HOST_ADDR=
if [[ "${E2E_TLS_HOST_ADDR:-0}" == 1 ]]; then
    HOST_ADDR=$(ip -4 -o addr show scope global 2>/dev/null | awk '{ sub("/.*", "", $4); print $4; exit }') || true
fi
if [[ -z "$HOST_ADDR" ]]; then
    log "no non-loopback IPv4 address (or E2E_TLS_HOST_ADDR=0): skipping docker with certificate verification"
elif in_insecure_cidr "$HOST_ADDR"; then
    log "$HOST_ADDR is an insecure registry address for dockerd: skipping docker with certificate verification"
else
    step "docker with certificate verification: registry on $HOST_ADDR (not an insecure registry for dockerd)"
    issue server-host ca "/CN=$HOST_ADDR" "subjectAltName=IP:$HOST_ADDR,IP:127.0.0.1" \
        "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth"
    start_tls_registry host "$HOST_ADDR" "    certificate: $PKI/server-host.crt
    key: $PKI/server-host.key" "$AUTH_YAML"
    HREG="$HOST_ADDR:$TLS_PORT"
    mkdir -p "$CERTS_D/$HREG"
    on_exit "rm -rf '${CERTS_D:?}/$HREG'"
    cp "$PKI/otherca.crt" "$CERTS_D/$HREG/ca.crt"
    expect_refusal "docker login $HREG with the wrong CA in certs.d" 'x509|certificate' \
        timeout 60 docker login "$HREG" -u "$USER_NAME" --password-stdin <<<"$PASSWORD"
    cp "$PKI/ca.crt" "$CERTS_D/$HREG/ca.crt"
    docker_login "$HREG" "$USER_NAME" "$PASSWORD"
    docker tag regfs-e2e/keep:1 "$HREG/e2e/verified:v1"
    vdigest=$(docker_push "$HREG/e2e/verified:v1")
    ok "docker push $HREG/e2e/verified:v1 -> $vdigest"
    docker rmi -f "$HREG/e2e/verified:v1" regfs-e2e/keep:1 >/dev/null
    [[ -z "$(docker image ls -aq)" ]] || fail "images left after rmi: $(docker image ls -a)"
    docker_pull "$HREG/e2e/verified:v1"
    expect_eq "image ID pulled from $HREG" "$image_id" "$(docker image inspect -f '{{.Id}}' "$HREG/e2e/verified:v1")"
    docker_logout "$HREG"
    ok "docker logout $HREG"
    stop_registry "$TLS_PID"
fi

# ---------------------------------------------------------------- logs

step "no credentials in the registry logs"
for f in "${REGISTRY_LOGS[@]}"; do
    for secret in "$PASSWORD" "$CREDS_B64" "${CREDS_B64%%=*}"; do
        if grep -qF -- "$secret" "$f"; then
            fail "$(basename "$f") contains credentials ($secret): $(grep -F -- "$secret" "$f" | head -n3)"
        fi
    done
    grep -qi 'authorization' "$f" && fail "$(basename "$f") mentions an Authorization header: $(grep -i authorization "$f" | head -n3)"
    ok "$(basename "$f"): no password, no base64 credentials"
done
grep -q "user=$USER_NAME " "$MAIN_LOG" || fail "no access line names user=$USER_NAME"
ok "access lines name user=$USER_NAME"
