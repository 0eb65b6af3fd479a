#!/usr/bin/env bash
# The RPM package: builds it with packaging/build-rpm.sh from a clean copy of the source
# tree (on a Debian host with --nodeps: the BuildRequires name Fedora/RHEL packages), runs
# rpmlint on the spec and the package (no errors allowed; packaging/rpm/regfs.rpmlintrc
# filters only tags of rpmlint's generic configuration that Fedora/RHEL do not follow), and
# checks the files, the configuration file flags, the dependencies and the scriptlets.
# It installs nothing but missing tools (rpm, rpmlint and the build dependencies, with
# apt-get, as root). Exit status: 0 pass, 1 fail, 77 skipped.
set -euo pipefail
# shellcheck source=tests/packaging/lib.sh
source "$(dirname "$0")/lib.sh"

if [[ -e /etc/redhat-release ]]; then
  nodeps=()
else
  [[ $(id -u) -eq 0 ]] || command -v rpmbuild >/dev/null || skip "rpm is not installed and installing it needs root"
  ensure_packages rpm rpmlint cmake g++ make pkg-config libpoco-dev libyaml-cpp-dev libssl-dev libfuse3-dev
  nodeps=(--nodeps)
fi
command -v rpmbuild >/dev/null || skip "no rpmbuild"
command -v rpmlint >/dev/null || skip "no rpmlint"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/regfs-rpm-test.XXXXXX")
trap 'rc=$?; if [[ $rc -eq 0 || "${KEEP_TMP:-0}" != 1 ]]; then rm -rf "$TMP"; else echo "kept $TMP"; fi' EXIT
SPEC="$PKG_SRC/packaging/rpm/regfs.spec"
RC="$PKG_SRC/packaging/rpm/regfs.rpmlintrc"

step "build the RPM (packaging/build-rpm.sh ${nodeps[*]})"
t=$SECONDS
run_logged "$TMP/build.log" 1200 "$PKG_SRC/packaging/build-rpm.sh" "$TMP/out" "${nodeps[@]}"
RPM=$(ls "$TMP"/out/regfs-[0-9]*.rpm)
ok "$(basename "$RPM") built in $((SECONDS - t))s"
find "$TMP/out" -type f -printf "     %f\n"

step "rpmlint"
# From a directory of its own, so that only the rcfile given is read.
(cd "$TMP" && rpmlint -r "$RC" "$SPEC" "$TMP"/out/*.rpm) >"$TMP/rpmlint.log" 2>&1 || true
sed -n '/^regfs/p; /checked/p' "$TMP/rpmlint.log" | sed 's/^/     /'
grep -q ' checked;' "$TMP/rpmlint.log" || { cat "$TMP/rpmlint.log" >&2; fail "rpmlint did not run"; }
if grep -q ': E: ' "$TMP/rpmlint.log"; then fail "rpmlint reports errors"; fi
ok "no rpmlint errors"

step "the package's contents, dependencies and scriptlets"
version=$(rpm -qp --qf '%{VERSION}' "$RPM")
[[ "$version" == "$(project_version)" ]] || fail "RPM version $version, project version $(project_version)"
rpm -qpl "$RPM" >"$TMP/files"
sed 's/^/     /' "$TMP/files"
for f in /usr/bin/regfs-httpd /etc/regfs/config.yml /usr/lib/systemd/system/regfs-httpd.service \
  /usr/lib/systemd/system/regfs-httpd@.service /usr/lib/sysusers.d/regfs.conf /usr/lib/tmpfiles.d/regfs.conf \
  /usr/share/doc/regfs/scaling.md /usr/share/doc/regfs/metrics.md /usr/share/doc/regfs/grafana-dashboard.json; do
  grep -qx "$f" "$TMP/files" || fail "$f is not in the package"
done
grep -q '^/usr/share/man/man8/regfs-httpd\.8' "$TMP/files" || fail "no regfs-httpd(8)"
# Every document the packaged config points to is in the package.
for doc in $(grep -o '/usr/share/doc/regfs/[A-Za-z0-9_.-]*\.md' "$PKG_SRC/packaging/common/config.yml" | sort -u) \
  /usr/share/doc/regfs/security.md; do
  grep -qx "$doc" "$TMP/files" || fail "$doc is referred to but not in the package"
done
if grep -qx /usr/bin/regfs-fused "$TMP/files"; then
  grep -qx /usr/lib/systemd/system/regfs-fused.service "$TMP/files" || fail "regfs-fused without its unit"
  grep -q '^/usr/share/man/man8/regfs-fused\.8' "$TMP/files" || fail "regfs-fused without its man page"
  ok "regfs-fused, its unit and its man page are in"
else
  ! grep -q 'regfs-fused' "$TMP/files" || fail "regfs-fused files without the binary"
  note "no regfs-fused in the package (fused/ does not build it yet)"
fi
! grep -q '^/var/lib/regfs' "$TMP/files" || fail "the package owns /var/lib/regfs: removing it would touch the data"
flags=$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$RPM" | sed -n 's|^/etc/regfs/config.yml ||p')
[[ "$flags" == *c* && "$flags" == *n* ]] || fail "/etc/regfs/config.yml is not %config(noreplace) (flags '$flags')"
ok "/etc/regfs/config.yml is %config(noreplace)"
rpm -qpR "$RPM" | grep -qx 'fuse3' || fail "no Requires: fuse3"
ok "Requires: fuse3 and the libraries' sonames"
rpm -qp --scripts "$RPM" >"$TMP/scripts"
grep -q 'useradd .* regfs\|systemd-sysusers' "$TMP/scripts" || fail "no user creation in %pre"
grep -q 'systemd-tmpfiles --create' "$TMP/scripts" || fail "no systemd-tmpfiles --create in %post"
grep -q 'preset regfs-httpd.service' "$TMP/scripts" || fail "no systemctl preset regfs-httpd.service in %post"
! grep -q 'preset.*regfs-fused' "$TMP/scripts" || fail "%post presets regfs-fused.service"
grep -q 'disable --now regfs-httpd.service regfs-fused.service' "$TMP/scripts" || fail "%preun does not stop the services"
grep -q 'try-restart regfs-httpd.service regfs-fused.service' "$TMP/scripts" || fail "%postun does not restart the services"
# The template's instances are the administrator's: never enabled or restarted by the
# package, but stopped and disabled with it.
! grep -q 'preset.*regfs-httpd@\|restart.*regfs-httpd@' "$TMP/scripts" || fail "a scriptlet presets or restarts regfs-httpd@ instances"
grep -q "stop 'regfs-httpd@\*.service'" "$TMP/scripts" || fail "%preun does not stop the regfs-httpd@ instances"
grep -q 'disable regfs-httpd@.service' "$TMP/scripts" || fail "%preun does not disable the regfs-httpd@ instances"
for tag in PREIN POSTIN PREUN POSTUN; do
  sh -n <(rpm -qp --qf "%{$tag}" "$RPM") || fail "the $tag scriptlet is not valid sh"
done
ok "scriptlets: user, tmpfiles, preset (httpd only), stop on erase (template instances too), try-restart on upgrade (not the instances)"

step "passed in $((SECONDS - PKG_T0))s"
