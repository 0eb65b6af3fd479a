#!/usr/bin/env bash
# The Debian package, end to end, on this machine (run it on a throwaway machine or CI):
#   1. builds it with packaging/build-deb.sh from a clean copy of the source tree (the
#      checkout and its build/ are not touched) and runs lintian on it (no errors allowed);
#   2. installs it with apt-get and checks what it set up: the regfs system user,
#      /var/lib/regfs, the conffile, the units (systemd-analyze verify), the enablement,
#      the man pages;
#   3. starts the packaged server the way regfs-httpd.service does (its ExecStart line, as
#      user regfs, no capabilities, no new privileges; systemd need not be PID 1) on a free
#      port of 127.0.0.1 (REGISTRY_HTTP_ADDR), pushes an image with skopeo and pulls it back;
#      lists the tree with the packaged regfs-fused when the package has it; runs two
#      instances of the template regfs-httpd@.service on the same data and continues an
#      upload started on one on the other;
#   4. upgrades to a newer version (a repacked copy): data, user and a changed config stay;
#   5. apt-get remove (config, user and data stay), apt-get purge (config and user go, the
#      data stays and a note says where);
#   6. reinstalls over the kept data (given back to the new user, served again) and purges
#      straight from the installed state.
# Needs root; installs the tools it lacks with apt-get. Refuses to run when a regfs package,
# user or /var/lib/regfs already exists. Removes /var/lib/regfs at the end (it made it),
# unless KEEP_DATA=1. Exit status: 0 pass, 1 fail, 77 skipped.
set -euo pipefail
# shellcheck source=tests/packaging/lib.sh
source "$(dirname "$0")/lib.sh"

require_root
export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C.UTF-8
ensure_packages dpkg-dev debhelper lintian fakeroot cmake g++ pkg-config libpoco-dev \
  libyaml-cpp-dev libssl-dev libfuse3-dev libgtest-dev skopeo curl python3 man-db systemd \
  openssl apache2-utils

DATA=/var/lib/regfs
UNIT=/lib/systemd/system/regfs-httpd.service
TEMPLATE=/lib/systemd/system/regfs-httpd@.service
REPO=packaging/test
MKOCI="$PKG_SRC/tests/e2e/mkoci.py"
[[ -f "$MKOCI" ]] || fail "$MKOCI is missing"

installed_version() { dpkg-query -W -f='${Version}' regfs 2>/dev/null; }
pkg_status() { dpkg-query -W -f='${db:Status-Abbrev}' regfs 2>/dev/null | tr -d ' '; }
if [[ -n "$(pkg_status)" && "$(pkg_status)" != un ]]; then
  fail "a regfs package is installed (or its configuration is left): this test installs and purges regfs; purge it first (apt-get purge regfs) or run the test on a throwaway machine"
fi
getent passwd regfs >/dev/null && fail "a user regfs exists already; this test creates and removes it"
[[ -e "$DATA" ]] && fail "$DATA exists already; this test stores an image there and removes it afterwards"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/regfs-deb-test.XXXXXX")
chmod 755 "$TMP"
SERVER_PID=""
INSTANCE_PIDS=()
SERVER_SCHEME=http
SERVER_CURL_OPTS=()
FUSED_PID=""
FUSE_MODE_TO_RESTORE=""
MADE_MOUNTPOINT=0
cleanup() {
  local rc=$?
  set +e
  [[ -n "$SERVER_PID" ]] && kill -9 "$SERVER_PID" 2>/dev/null
  for pid in "${INSTANCE_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; done
  rm -f /etc/regfs/pkgtest-*.yml
  if [[ -n "$FUSED_PID" ]]; then
    fusermount3 -uz /registry 2>/dev/null
    kill -9 "$FUSED_PID" 2>/dev/null
  fi
  [[ -n "$FUSE_MODE_TO_RESTORE" ]] && chmod "$FUSE_MODE_TO_RESTORE" /dev/fuse
  ((MADE_MOUNTPOINT)) && rmdir /registry 2>/dev/null
  if [[ -n "$(pkg_status)" && "$(pkg_status)" != un ]]; then
    timeout 300 apt-get purge -y -q regfs </dev/null >/dev/null 2>&1
  fi
  if [[ "${KEEP_DATA:-0}" != 1 ]]; then rm -rf "$DATA"; fi
  if [[ $rc -eq 0 || "${KEEP_TMP:-0}" != 1 ]]; then rm -rf "$TMP"; else echo "kept $TMP"; fi
  exit $rc
}
trap cleanup EXIT

sk() { timeout 120 skopeo --insecure-policy --tmpdir "$TMP" "$@"; }

# start_server NAME: starts the packaged regfs-httpd as regfs-httpd.service would.
start_server() {
  local name=$1 exec_line argv
  exec_line=$(sed -n 's/^ExecStart=//p' "$UNIT")
  [[ -n "$exec_line" ]] || fail "no ExecStart= in $UNIT"
  read -r -a argv <<<"$exec_line"
  PORT=$(free_port)
  SERVER_LOG="$TMP/server-$name.log"
  # As the unit: user and group regfs, empty capability sets (CapabilityBoundingSet=),
  # NoNewPrivileges=yes, UMask=0027, working directory /, a clean environment.
  (
    cd /
    umask 027
    exec env -i PATH=/usr/bin:/bin LANG=C.UTF-8 REGISTRY_HTTP_ADDR="127.0.0.1:$PORT" \
      setpriv --reuid=regfs --regid=regfs --init-groups --no-new-privs \
      --inh-caps=-all --ambient-caps=-all --bounding-set=-all -- "${argv[@]}"
  ) >"$SERVER_LOG" 2>&1 &
  SERVER_PID=$!
  REG="127.0.0.1:$PORT"
  # Any HTTP answer will do (401 when authentication is on).
  if ! wait_until 30 "the server" curl -sS --max-time 2 -o /dev/null "${SERVER_CURL_OPTS[@]}" "$SERVER_SCHEME://$REG/v2/"; then
    cat "$SERVER_LOG" >&2
    fail "the packaged regfs-httpd did not answer on $REG within 30s"
  fi
  [[ "$(ps -o user= -p "$SERVER_PID" | tr -d ' ')" == regfs ]] || fail "the server does not run as regfs"
  ok "'$exec_line' runs as regfs (pid $SERVER_PID) on $REG"
}

# stop_server: SIGTERM, as systemctl stop does; it must exit 0 within TimeoutStopSec.
stop_server() {
  kill -TERM "$SERVER_PID"
  wait_pid "$SERVER_PID" 60 || fail "regfs-httpd did not stop within 60s of SIGTERM (TimeoutStopSec)"
  SERVER_PID=""
  ((WAIT_RC == 0)) || { cat "$SERVER_LOG" >&2; fail "regfs-httpd exited with status $WAIT_RC on SIGTERM"; }
  ok "stopped on SIGTERM with status 0"
}

# start_instance NAME: starts the packaged regfs-httpd as regfs-httpd@NAME.service would
# (the template's ExecStart with %i = NAME, as start_server runs regfs-httpd.service's) on a
# free port; sets INSTANCE_PID and INSTANCE_REG and adds the pid to INSTANCE_PIDS.
start_instance() {
  local name=$1 exec_line argv port log
  exec_line=$(sed -n 's/^ExecStart=//p' "$TEMPLATE")
  [[ "$exec_line" == *%i* ]] || fail "the ExecStart= of $TEMPLATE does not name its instance (%i)"
  exec_line=${exec_line//%i/$name}
  read -r -a argv <<<"$exec_line"
  port=$(free_port)
  log="$TMP/instance-$name.log"
  (
    cd /
    umask 027
    exec env -i PATH=/usr/bin:/bin LANG=C.UTF-8 REGISTRY_HTTP_ADDR="127.0.0.1:$port" \
      setpriv --reuid=regfs --regid=regfs --init-groups --no-new-privs \
      --inh-caps=-all --ambient-caps=-all --bounding-set=-all -- "${argv[@]}"
  ) >"$log" 2>&1 &
  INSTANCE_PID=$!
  INSTANCE_PIDS+=("$INSTANCE_PID")
  INSTANCE_REG="127.0.0.1:$port"
  if ! wait_until 30 "instance $name" curl -sS --max-time 2 -o /dev/null "http://$INSTANCE_REG/v2/"; then
    cat "$log" >&2
    fail "regfs-httpd@$name did not answer on $INSTANCE_REG within 30s"
  fi
  ok "'$exec_line' runs as $(ps -o user= -p "$INSTANCE_PID" | tr -d ' ') (pid $INSTANCE_PID) on $INSTANCE_REG"
}

# stop_instance PID NAME: SIGTERM; it must exit 0 within TimeoutStopSec.
stop_instance() {
  kill -TERM "$1"
  wait_pid "$1" 60 || fail "regfs-httpd@$2 did not stop within 60s of SIGTERM"
  ((WAIT_RC == 0)) || { cat "$TMP/instance-$2.log" >&2; fail "regfs-httpd@$2 exited with status $WAIT_RC on SIGTERM"; }
}

# upload_path RESPONSE_HEADERS: the path of the Location header (the URL names the replica
# that answered; the path is all another replica needs)
upload_path() { tr -d '\r' <"$1" | sed -n 's|^[Ll]ocation: *\(https\?://[^/]*\)\?||p'; }

# pull_and_compare TAG NAME: pulls REPO:TAG into a new OCI layout, compares it to the pushed one
pull_and_compare() {
  local tag=$1 name=$2 got
  sk copy --all --preserve-digests --src-tls-verify=false "docker://$REG/$REPO:$tag" "oci:$TMP/$name:$tag" \
    >"$TMP/skopeo-$name.log" 2>&1 || { cat "$TMP/skopeo-$name.log" >&2; fail "skopeo pull of $REPO:$tag failed"; }
  got=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifests"][0]["digest"])' "$TMP/$name/index.json")
  [[ "$got" == "$DIGEST" ]] || fail "pulled manifest $got, pushed $DIGEST"
  for blob in "$TMP/src/blobs/sha256/"*; do
    cmp -s "$blob" "$TMP/$name/blobs/sha256/$(basename "$blob")" || fail "blob $(basename "$blob") differs after the pull"
  done
  ok "pulled $REPO:$tag: manifest $DIGEST and every blob identical"
}

# unit_lines UNIT KEY: the values of KEY= in UNIT, one a line
unit_lines() { sed -n "s/^$2=//p" "$1"; }

# run_unit_cmd LINE: runs an Exec*= line of regfs-fused.service as systemd would: "-"
# tolerates failure, "+" runs with full privileges, otherwise as $FUSED_RUN_AS.
run_unit_cmd() {
  local line=$1 tolerate=0 privileged=0 argv
  while [[ "$line" == [-+]* ]]; do
    [[ "$line" == -* ]] && tolerate=1
    [[ "$line" == +* ]] && privileged=1
    line=${line:1}
  done
  read -r -a argv <<<"$line"
  local rc=0
  if ((privileged)); then
    timeout 30 "${argv[@]}" >"$TMP/unit-cmd.log" 2>&1 || rc=$?
  else
    timeout 30 "${FUSED_RUN_AS[@]}" "${argv[@]}" >"$TMP/unit-cmd.log" 2>&1 || rc=$?
  fi
  ((rc == 0 || tolerate)) || { cat "$TMP/unit-cmd.log" >&2; fail "'$1' failed with status $rc"; }
}

# fused_as_unit: ExecStartPre=, ExecStart= and ExecStop= of the installed
# regfs-fused.service, as its user with its capabilities; checks the tree through the
# mount, changes a tag through it, and checks that the data stays regfs's.
fused_as_unit() {
  local unit=/lib/systemd/system/regfs-fused.service line mnt tags dev_mode
  mnt=$(unit_lines "$unit" ExecStart | awk '{print $NF}')
  [[ "$mnt" == /registry ]] || fail "regfs-fused.service mounts on '$mnt', not /registry"
  if [[ ! -c /dev/fuse ]]; then
    note "no /dev/fuse on this machine: regfs-fused not tried"
    return 0
  fi
  if mountpoint -q "$mnt"; then
    note "$mnt is a mount point already: regfs-fused not tried"
    return 0
  fi
  [[ -e "$mnt" ]] || MADE_MOUNTPOINT=1
  # As the unit: User=regfs, CapabilityBoundingSet= and AmbientCapabilities=CAP_SYS_ADMIN.
  if ! grep -qx 'User=regfs' "$unit" || ! grep -qx 'AmbientCapabilities=CAP_SYS_ADMIN' "$unit"; then
    fail "regfs-fused.service no longer runs as regfs with CAP_SYS_ADMIN: update this test"
  fi
  # shellcheck disable=SC2054 # the commas belong to setpriv's capability lists
  FUSED_RUN_AS=(setpriv --reuid=regfs --regid=regfs --init-groups --inh-caps=-all,+sys_admin
    --ambient-caps=-all,+sys_admin --bounding-set=-all,+sys_admin --)
  FUSED_AS=regfs
  dev_mode=$(stat -c %a /dev/fuse)
  if ! runuser -u regfs -- test -r /dev/fuse -a -w /dev/fuse; then
    if [[ "${PACKAGING_TEST_CHMOD_FUSE:-0}" == 1 ]]; then
      note "/dev/fuse is mode $dev_mode here (0666 on a normal system): 0666 for the test"
      FUSE_MODE_TO_RESTORE=$dev_mode
      chmod 0666 /dev/fuse
    else
      note "/dev/fuse is mode $dev_mode here (0666 on a normal system), so user regfs cannot open it: running the unit's commands as root (PACKAGING_TEST_CHMOD_FUSE=1 makes it 0666 for the test)"
      FUSED_RUN_AS=(env)
      FUSED_AS=root
    fi
  fi
  while IFS= read -r line; do run_unit_cmd "$line"; done < <(unit_lines "$unit" ExecStartPre)
  line=$(unit_lines "$unit" ExecStart)
  local argv
  read -r -a argv <<<"$line"
  (
    cd /
    umask 027
    exec env -i PATH=/usr/bin:/bin LANG=C.UTF-8 "${FUSED_RUN_AS[@]}" timeout 300 "${argv[@]}"
  ) >"$TMP/fused.log" 2>&1 &
  FUSED_PID=$!
  wait_until 20 "the mount" mountpoint -q "$mnt" || { cat "$TMP/fused.log" >&2; fail "regfs-fused did not mount $mnt within 20s"; }
  ok "'$line' mounted $mnt as $FUSED_AS: $(grep " $mnt " /proc/mounts | cut -d' ' -f3,4)"
  tags="$mnt/$REPO/_tags"
  # shellcheck disable=SC2012
  ls -l "$tags" | sed 's/^/     /'
  [[ "$(readlink "$tags/1")" == "../_manifests/$DIGEST" ]] || fail "$tags/1 -> $(readlink "$tags/1"), not ../_manifests/$DIGEST"
  cmp -s "$mnt/$REPO/_manifests/$DIGEST" "$TMP/src/blobs/sha256/${DIGEST#sha256:}" || fail "_manifests/$DIGEST differs from the pushed manifest"
  ok "$REPO/_tags/1 -> ../_manifests/$DIGEST, manifest bytes identical"
  if [[ $FUSED_AS != regfs ]]; then
    # Changes made by a regfs-fused running as root would leave root's files in the storage.
    note "regfs-fused runs as root here: changes through the mount not tried"
  else
    fused_changes "$tags"
  fi
  while IFS= read -r line; do run_unit_cmd "$line"; done < <(unit_lines "$unit" ExecStop)
  wait_pid "$FUSED_PID" 20 || fail "regfs-fused did not exit within 20s of ExecStop"
  FUSED_PID=""
  ((WAIT_RC == 0)) || { cat "$TMP/fused.log" >&2; fail "regfs-fused exited with status $WAIT_RC after ExecStop"; }
  ! mountpoint -q "$mnt" || fail "$mnt is still mounted after ExecStop"
  ok "ExecStop unmounted $mnt; regfs-fused exited with status 0"
}

# fused_changes TAGS_DIR: tag, rename and (refused) untag through the mount
fused_changes() {
  local tags=$1 tag_list others
  ln -s "../_manifests/$DIGEST" "$tags/viafuse" || fail "ln -s in _tags failed"
  mv "$tags/viafuse" "$tags/renamed" || fail "mv of a tag failed"
  tag_list=$(curl -fsS "http://$REG/v2/$REPO/tags/list")
  grep -q '"renamed"' <<<"$tag_list" || fail "the tag made through the mount is not served: $tag_list"
  others=$(find "$DATA" ! -user regfs -printf '%p ' | head -c 500)
  [[ -z "$others" ]] || fail "files written through the mount are not regfs's: $others"
  ok "ln -s and mv of a tag through the mount, served by regfs-httpd ($tag_list); the files are regfs's"
  # The packaged configuration has deletes off: rm must be refused, as DELETE is over HTTP.
  if rm "$tags/renamed" 2>"$TMP/rm.err"; then fail "rm of a tag succeeded with storage.delete.enabled false"; fi
  grep -q 'Operation not permitted' "$TMP/rm.err" || fail "rm of a tag: $(cat "$TMP/rm.err"), not EPERM"
  ok "rm refused (EPERM) with deletes off: $(cat "$TMP/rm.err")"
}

# ---------------------------------------------------------------------------------------
step "build the package (packaging/build-deb.sh, clean copy of the tree)"
t=$SECONDS
run_logged "$TMP/build.log" 1200 "$PKG_SRC/packaging/build-deb.sh" "$TMP/out"
DEB=$(ls "$TMP"/out/regfs_*.deb)
VERSION=$(dpkg-deb -f "$DEB" Version)
[[ "${VERSION%-*}" == "$(project_version)" ]] || fail "package version $VERSION does not match the project version $(project_version)"
ok "$(basename "$DEB") built in $((SECONDS - t))s"
dpkg-deb -c "$DEB" | awk '{print "     " $6}'

step "lintian"
lintian --fail-on error --pedantic -I "$DEB" >"$TMP/lintian.log" 2>&1 || {
  cat "$TMP/lintian.log" >&2
  fail "lintian reports errors"
}
grep -v '^N:' "$TMP/lintian.log" | sed 's/^/     /' || true
ok "no lintian errors"

HAS_FUSED=0
if dpkg-deb -c "$DEB" | grep -c '\./usr/bin/regfs-fused$' >/dev/null; then HAS_FUSED=1; fi

# ---------------------------------------------------------------------------------------
step "apt-get install $(basename "$DEB")"
(cd "$TMP/out" && run_logged "$TMP/install.log" 600 apt-get install -y -q "./$(basename "$DEB")" </dev/null)
[[ "$(pkg_status)" == ii ]] || fail "regfs is not installed: $(pkg_status)"
grep -qx "regfs-httpd $(project_version)" <<<"$(/usr/bin/regfs-httpd --version)" || fail "regfs-httpd --version: $(/usr/bin/regfs-httpd --version)"
ok "regfs $(installed_version) installed"

getent passwd regfs >/dev/null || fail "no user regfs"
IFS=: read -r _ _ REGFS_UID REGFS_GID _ REGFS_HOME REGFS_SHELL < <(getent passwd regfs)
((REGFS_UID < 1000)) || fail "regfs is not a system user (uid $REGFS_UID)"
[[ "$(getent group "$REGFS_GID" | cut -d: -f1)" == regfs ]] || fail "regfs's group is not regfs"
[[ "$REGFS_HOME" == "$DATA" ]] || fail "regfs's home is $REGFS_HOME"
[[ "$REGFS_SHELL" == */nologin ]] || fail "regfs's shell is $REGFS_SHELL"
ok "system user regfs: uid $REGFS_UID, group regfs, home $DATA, shell $REGFS_SHELL"

[[ "$(stat -c '%U:%G %a' "$DATA")" == "regfs:regfs 750" ]] || fail "$DATA is $(stat -c '%U:%G %a' "$DATA")"
ok "$DATA: regfs:regfs 0750"

grep -q '^ /etc/regfs/config.yml ' <<<"$(dpkg-query -W -f='${Conffiles}\n' regfs)" || fail "/etc/regfs/config.yml is not a conffile"
ok "/etc/regfs/config.yml is a conffile"

[[ -f "$UNIT" ]] || fail "$UNIT missing"
[[ -L /etc/systemd/system/multi-user.target.wants/regfs-httpd.service ]] || fail "regfs-httpd.service is not enabled"
[[ "$(systemctl is-enabled regfs-httpd.service)" == enabled ]] || fail "systemctl is-enabled regfs-httpd.service: not enabled"
ok "regfs-httpd.service enabled (systemd is PID 1 here: $( [[ -d /run/systemd/system ]] && echo yes || echo no))"
[[ -f "$TEMPLATE" ]] || fail "$TEMPLATE missing"
! compgen -G '/etc/systemd/system/*.wants/regfs-httpd@*.service' >/dev/null || fail "the package enabled an instance of regfs-httpd@.service"
ok "regfs-httpd@.service installed, no instance enabled"
units=("$UNIT" "$TEMPLATE")
if ((HAS_FUSED)); then
  units+=(/lib/systemd/system/regfs-fused.service)
  [[ -f /lib/systemd/system/regfs-fused.service ]] || fail "the package has regfs-fused but not regfs-fused.service"
  [[ "$(systemctl is-enabled regfs-fused.service)" == disabled ]] || fail "regfs-fused.service is not disabled"
  ok "regfs-fused.service installed, not enabled"
else
  [[ ! -e /lib/systemd/system/regfs-fused.service ]] || fail "regfs-fused.service installed without regfs-fused"
fi
systemd-analyze verify "${units[@]}" >"$TMP/verify.log" 2>&1 || { cat "$TMP/verify.log" >&2; fail "systemd-analyze verify rejects the units"; }
ok "systemd-analyze verify accepts ${units[*]}"

man -w regfs-httpd >/dev/null || fail "man regfs-httpd: no page"
warnings=$(MANWIDTH=80 man --warnings regfs-httpd 2>&1 >/dev/null)
[[ -z "$warnings" ]] || fail "man regfs-httpd warns: $warnings"
if ((HAS_FUSED)); then man -w regfs-fused >/dev/null || fail "man regfs-fused: no page"; fi
ok "man pages: $(man -w regfs-httpd) $( ((HAS_FUSED)) && man -w regfs-fused)"

# Every document the packaged config, the man pages and the shipped docs point to is there.
refs=$( { cat /etc/regfs/config.yml /usr/share/doc/regfs/*.md; man -P cat regfs-httpd 2>/dev/null; } |
  grep -o '/usr/share/doc/regfs/[A-Za-z0-9_.-]*\.md' | sort -u)
for doc in $refs /usr/share/doc/regfs/security.md /usr/share/doc/regfs/scaling.md /usr/share/doc/regfs/metrics.md \
  /usr/share/doc/regfs/grafana-dashboard.json; do
  [[ -f "$doc" ]] || fail "$doc is referred to but not installed"
done
python3 -m json.tool /usr/share/doc/regfs/grafana-dashboard.json >/dev/null || fail "the installed Grafana dashboard is not JSON"
ok "documents referred to are installed: $(echo "$refs" | tr '\n' ' ')"

# ---------------------------------------------------------------------------------------
step "start the packaged server as regfs-httpd.service would, push and pull with skopeo"
start_server first
grep -q 'level=warning' "$SERVER_LOG" && { cat "$SERVER_LOG" >&2; fail "the packaged configuration draws warnings"; }
ok "the packaged configuration loads without warnings"
DIGEST=$(python3 "$MKOCI" "$TMP/src" 1 --layers 2 --seed packaging)
sk copy --all --preserve-digests --dest-tls-verify=false "oci:$TMP/src:1" "docker://$REG/$REPO:1" \
  >"$TMP/skopeo-push.log" 2>&1 || { cat "$TMP/skopeo-push.log" >&2; fail "skopeo push failed"; }
ok "pushed $REPO:1 ($DIGEST)"
pull_and_compare 1 pulled
TAGLINK="$DATA/docker/registry/v2/repositories/$REPO/_manifests/tags/1/current/link"
[[ "$(cat "$TAGLINK")" == "$DIGEST" ]] || fail "$TAGLINK does not hold $DIGEST"
others=$(find "$DATA" ! -user regfs -printf '%p ' | head -c 500)
[[ -z "$others" ]] || fail "files in $DATA not owned by regfs: $others"
ok "stored in $DATA in registry:2's layout, every file owned by regfs"

if ((HAS_FUSED)); then
  step "mount the tree with the packaged regfs-fused as regfs-fused.service would"
  fused_as_unit
else
  note "the package has no regfs-fused (fused/ does not build it yet): the file tree step is skipped"
fi
stop_server

# ---------------------------------------------------------------------------------------
step "two instances of regfs-httpd@.service on the same data (replicas behind a load balancer)"
cp /etc/regfs/config.yml /etc/regfs/pkgtest-a.yml
cp /etc/regfs/config.yml /etc/regfs/pkgtest-b.yml
start_instance pkgtest-a
A_PID=$INSTANCE_PID A_REG=$INSTANCE_REG
start_instance pkgtest-b
B_PID=$INSTANCE_PID B_REG=$INSTANCE_REG
REG=$A_REG pull_and_compare 1 pulled-a
REG=$B_REG pull_and_compare 1 pulled-b
# An upload started on one replica, continued on the other and finished on the first: the
# upload's state is in the storage, not in the process or the URL (no http.secret).
printf 'regfs packaging test, first chunk;' >"$TMP/chunk1"
printf ' second chunk\n' >"$TMP/chunk2"
cat "$TMP/chunk1" "$TMP/chunk2" >"$TMP/blob"
BLOB_DIGEST="sha256:$(sha256sum "$TMP/blob" | cut -d' ' -f1)"
curl -fsS -o /dev/null -D "$TMP/h1" -X POST "http://$A_REG/v2/$REPO/blobs/uploads/" || fail "POST of an upload on $A_REG failed"
path=$(upload_path "$TMP/h1")
[[ "$path" == /v2/$REPO/blobs/uploads/* ]] || fail "upload Location is '$path'"
curl -fsS -o /dev/null -D "$TMP/h2" -X PATCH -H 'Content-Type: application/octet-stream' \
  --data-binary @"$TMP/chunk1" "http://$B_REG$path" || fail "PATCH of the first chunk on the other replica failed"
path=$(upload_path "$TMP/h2")
curl -fsS -o /dev/null -X PATCH -H 'Content-Type: application/octet-stream' \
  --data-binary @"$TMP/chunk2" "http://$A_REG$path" || fail "PATCH of the second chunk failed"
curl -fsS -o /dev/null -X PUT "http://$B_REG$path?digest=$BLOB_DIGEST" || fail "PUT that completes the upload on the other replica failed"
cmp -s <(curl -fsS "http://$A_REG/v2/$REPO/blobs/$BLOB_DIGEST") "$TMP/blob" || fail "the blob uploaded across both replicas reads back different"
ok "an upload started on $A_REG, continued on $B_REG and back, completed as $BLOB_DIGEST"
stop_instance "$A_PID" pkgtest-a
stop_instance "$B_PID" pkgtest-b
INSTANCE_PIDS=()
rm -f /etc/regfs/pkgtest-a.yml /etc/regfs/pkgtest-b.yml
ok "both stopped on SIGTERM with status 0"
# An instance the administrator enabled; purge must remove its link (checked below).
systemctl --no-reload enable regfs-httpd@pkgtest.service >/dev/null 2>&1 ||
  fail "systemctl enable regfs-httpd@pkgtest.service failed"
[[ -L /etc/systemd/system/multi-user.target.wants/regfs-httpd@pkgtest.service ]] || fail "enabling regfs-httpd@pkgtest made no link"
ok "regfs-httpd@pkgtest.service enabled (not started), for the purge step"

# ---------------------------------------------------------------------------------------
step "TLS and htpasswd: the packaged configuration's examples, set up as docs/install.md says"
cp -p /etc/regfs/config.yml "$TMP/config.yml.orig"
sed -i -E 's/^(\s*)# (tls:|  certificate:|  key:|  minimumtls:)/\1\2/; s/^# (auth:|  htpasswd:|    realm:|    path:)/\1/' /etc/regfs/config.yml
if ! grep -q '^  tls:' /etc/regfs/config.yml || ! grep -q '^auth:' /etc/regfs/config.yml; then
  fail "could not uncomment the examples"
fi
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$TMP/registry.key" -out "$TMP/registry.crt" >/dev/null 2>&1 || fail "openssl req failed"
install -d -m 0750 -g regfs /etc/regfs/tls
install -m 0640 -g regfs "$TMP/registry.crt" "$TMP/registry.key" /etc/regfs/tls/
htpasswd -cbB /etc/regfs/htpasswd alice s3cret >/dev/null 2>&1 || fail "htpasswd failed"
chgrp regfs /etc/regfs/htpasswd && chmod 0640 /etc/regfs/htpasswd
SERVER_SCHEME=https
SERVER_CURL_OPTS=(--cacert "$TMP/registry.crt")
start_server tls
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$TMP/registry.crt" "https://$REG/v2/")
[[ "$code" == 401 ]] || fail "https://$REG/v2/ without credentials: $code, not 401"
code=$(curl -sS -o /dev/null -w '%{http_code}' --cacert "$TMP/registry.crt" -u alice:s3cret "https://$REG/v2/")
[[ "$code" == 200 ]] || fail "https://$REG/v2/ with credentials: $code, not 200"
ok "HTTPS with the certificate; 401 without credentials, 200 with"
mkdir "$TMP/certs" && cp "$TMP/registry.crt" "$TMP/certs/ca.crt"
got=$(sk inspect --cert-dir "$TMP/certs" --creds alice:s3cret --format '{{.Digest}}' "docker://$REG/$REPO:1" 2>"$TMP/skopeo-tls.log") ||
  { cat "$TMP/skopeo-tls.log" >&2; fail "skopeo inspect over TLS with credentials failed"; }
[[ "$got" == "$DIGEST" ]] || fail "skopeo inspect over TLS: $got, not $DIGEST"
ok "skopeo inspect over TLS with credentials: $got"
stop_server
SERVER_SCHEME=http
SERVER_CURL_OPTS=()
cp -p "$TMP/config.yml.orig" /etc/regfs/config.yml
rm -rf /etc/regfs/tls /etc/regfs/htpasswd

# ---------------------------------------------------------------------------------------
step "upgrade to a newer version: data, user and a changed configuration stay"
sed -i 's/^  level: info /  level: debug/' /etc/regfs/config.yml
grep -q '^  level: debug' /etc/regfs/config.yml || fail "could not change /etc/regfs/config.yml"
NEWVERSION="${VERSION}+pkgtest1"
dpkg-deb -R "$DEB" "$TMP/repack"
sed -i "s/^Version: .*/Version: $NEWVERSION/" "$TMP/repack/DEBIAN/control"
dpkg-deb --root-owner-group -b "$TMP/repack" "$TMP/regfs_upgrade.deb" >/dev/null
run_logged "$TMP/upgrade.log" 600 apt-get install -y -q "$TMP/regfs_upgrade.deb" </dev/null
[[ "$(installed_version)" == "$NEWVERSION" ]] || fail "installed version $(installed_version) after the upgrade"
grep -q '^  level: debug' /etc/regfs/config.yml || fail "the upgrade lost the change to /etc/regfs/config.yml"
[[ ! -e /etc/regfs/config.yml.dpkg-dist && ! -e /etc/regfs/config.yml.dpkg-old ]] || fail "the upgrade left .dpkg-dist/.dpkg-old files"
[[ "$(id -u regfs)" == "$REGFS_UID" ]] || fail "the upgrade changed regfs's uid"
[[ "$(cat "$TAGLINK")" == "$DIGEST" ]] || fail "the upgrade lost the data"
ok "$VERSION -> $NEWVERSION: configuration change, user (uid $REGFS_UID) and data kept"
start_server upgraded
pull_and_compare 1 pulled-upgraded
stop_server

# ---------------------------------------------------------------------------------------
step "apt-get remove: configuration, user and data stay"
run_logged "$TMP/remove.log" 300 apt-get remove -y -q regfs </dev/null
[[ "$(pkg_status)" == rc ]] || fail "status after remove: $(pkg_status)"
[[ ! -e /usr/bin/regfs-httpd ]] || fail "/usr/bin/regfs-httpd is still there"
grep -q '^  level: debug' /etc/regfs/config.yml || fail "remove lost /etc/regfs/config.yml"
getent passwd regfs >/dev/null || fail "remove deleted the user regfs"
[[ "$(cat "$TAGLINK")" == "$DIGEST" ]] || fail "remove lost the data"
ok "binaries gone; /etc/regfs/config.yml, user regfs and $DATA kept"

step "apt-get purge: configuration and user go, the data stays (and a note says where)"
run_logged "$TMP/purge.log" 300 apt-get purge -y -q regfs </dev/null
sed 's/^/     /' "$TMP/purge.log" | grep -i regfs || true
[[ -z "$(pkg_status)" || "$(pkg_status)" == un ]] || fail "status after purge: $(pkg_status)"
[[ ! -e /etc/regfs ]] || fail "/etc/regfs is still there after the purge: $(ls -A /etc/regfs)"
! getent passwd regfs >/dev/null || fail "the user regfs is still there after the purge"
! getent group regfs >/dev/null || fail "the group regfs is still there after the purge"
[[ ! -e /etc/systemd/system/multi-user.target.wants/regfs-httpd.service ]] || fail "the enablement symlink is left"
[[ ! -L /etc/systemd/system/multi-user.target.wants/regfs-httpd@pkgtest.service ]] || fail "the link of the enabled regfs-httpd@pkgtest instance is left"
[[ "$(cat "$TAGLINK")" == "$DIGEST" ]] || fail "purge lost the data"
grep -q "$DATA" "$TMP/purge.log" || fail "purge printed no note about $DATA"
ok "config, user, group and enablement (the template instance's too) gone; $DATA kept ($(du -sh "$DATA" | cut -f1))"

# ---------------------------------------------------------------------------------------
step "reinstall over the kept data, then purge straight away"
# The new user may get another uid than the purged one: the kept data then belongs to a
# uid without a user, which postinst gives to the new regfs user. Make it so here.
ORPHAN_UID=$(for u in $(seq 4242 4342); do getent passwd "$u" >/dev/null || getent group "$u" >/dev/null || { echo "$u"; break; }; done)
chown -R -h "$ORPHAN_UID:$ORPHAN_UID" "$DATA"
(cd "$TMP/out" && run_logged "$TMP/reinstall.log" 600 apt-get install -y -q "./$(basename "$DEB")" </dev/null)
grep -q '^regfs: giving the data' "$TMP/reinstall.log" || fail "postinst did not report giving the kept data to the new user"
others=$(find "$DATA" ! -user regfs -printf '%p ' | head -c 500)
[[ -z "$others" ]] || fail "after the reinstall, files in $DATA not owned by the new regfs user: $others"
grep -h '^regfs:' "$TMP/reinstall.log" | sed 's/^/     /' || true
ok "the kept data (owned by uid $ORPHAN_UID, a user that no longer exists) now belongs to the new regfs user (uid $(id -u regfs))"
start_server reinstalled
pull_and_compare 1 pulled-reinstalled
stop_server
run_logged "$TMP/purge2.log" 300 apt-get purge -y -q regfs </dev/null
[[ ! -e /etc/regfs ]] || fail "/etc/regfs is still there after the purge"
! getent passwd regfs >/dev/null || fail "the user regfs is still there after the purge"
[[ "$(cat "$TAGLINK")" == "$DIGEST" ]] || fail "purge lost the data"
ok "purged from the installed state: config and user gone, data kept"

step "passed in $((SECONDS - PKG_T0))s"
