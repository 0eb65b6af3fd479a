#!/usr/bin/env bash
# Fast checks of the packaging sources, no build and no root needed:
#   - one version everywhere: CMakeLists.txt project(), packaging/debian/changelog,
#     packaging/rpm/regfs.spec, the man pages;
#   - the man pages render without warnings;
#   - systemd-analyze verify accepts every unit (in a scratch root with stand-ins for the
#     binaries, so regfs-fused.service is checked even where regfs-fused is not built),
#     the template regfs-httpd@.service differs from regfs-httpd.service only in the
#     configuration file it serves and its log name, and both servers' exposure
#     (systemd-analyze security) stays at most 2.0;
#   - the maintainer scripts and packaging scripts parse (and pass shellcheck if installed).
# Exit status: 0 pass, 1 fail.
set -euo pipefail
# shellcheck source=tests/packaging/lib.sh
source "$(dirname "$0")/lib.sh"

P="$PKG_SRC/packaging"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/regfs-lint-test.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

step "one version everywhere"
v=$(project_version)
[[ -n "$v" ]] || fail "no VERSION in project() of CMakeLists.txt"
deb=$(sed -n '1s/^regfs (\([^)]*\)).*/\1/p' "$P/debian/changelog")
[[ "${deb%-*}" == "$v" ]] || fail "packaging/debian/changelog is at $deb, the project at $v"
rpmv=$(sed -n 's/^Version:[[:space:]]*//p' "$P/rpm/regfs.spec")
[[ "$rpmv" == "$v" ]] || fail "packaging/rpm/regfs.spec is at $rpmv, the project at $v"
grep -q "^\* .* - $v-" "$P/rpm/regfs.spec" || fail "the spec's %changelog has no entry for $v"
for m in "$PKG_SRC"/docs/man/*.8; do
  grep -q "^\.TH .* \"regfs $v\"" "$m" || fail "$(basename "$m") is not marked regfs $v in .TH"
done
ok "$v (Debian $deb, RPM $rpmv, man pages)"

step "man pages"
if command -v man >/dev/null; then
  for m in "$PKG_SRC"/docs/man/*.8; do
    w=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l "$m" 2>&1 >/dev/null)
    [[ -z "$w" ]] || fail "$(basename "$m"): $w"
  done
  ok "$(cd "$PKG_SRC/docs/man" && echo *.8) render without warnings"
else
  note "no man: not rendered"
fi

step "systemd units"
if command -v systemd-analyze >/dev/null && [[ -d /usr/lib/systemd/system || -d /lib/systemd/system ]]; then
  # A scratch root: the distribution's units (for the targets the units depend on) plus
  # stand-ins for the commands the units run.
  root="$TMP/root"
  mkdir -p "$root/usr/bin" "$root/usr/lib/systemd" "$root/etc/systemd/system" "$root/etc/regfs"
  ln -s usr/bin "$root/bin"
  cp -a "$(readlink -f /lib/systemd/system)" "$root/usr/lib/systemd/system"
  for b in regfs-httpd regfs-fused fusermount3 mkdir; do
    printf '#!/bin/sh\n' >"$root/usr/bin/$b"
    chmod +x "$root/usr/bin/$b"
  done
  cp "$P"/systemd/*.service "$root/etc/systemd/system/"
  for u in "$P"/systemd/*.service; do
    systemd-analyze verify --man=no --root="$root" "/etc/systemd/system/$(basename "$u")" >"$TMP/verify.log" 2>&1 ||
      { cat "$TMP/verify.log" >&2; fail "systemd-analyze verify rejects $(basename "$u")"; }
  done
  ok "systemd-analyze verify accepts $(cd "$P/systemd" && echo *.service)"
  if systemd-analyze security --help 2>/dev/null | grep -q -- '--offline'; then
    for u in regfs-httpd.service regfs-httpd@.service; do
      systemd-analyze security --offline=true --threshold=20 "$P/systemd/$u" >"$TMP/security.log" 2>&1 ||
        { cat "$TMP/security.log" >&2; fail "$u's exposure is above 2.0"; }
      ok "$u: $(grep -o 'Overall exposure level.*' "$TMP/security.log")"
    done
  else
    note "systemd-analyze security --offline not supported here: exposure not checked"
  fi
else
  note "no systemd-analyze: units not verified"
fi

step "the template unit regfs-httpd@.service"
# Its [Service] section is regfs-httpd.service's (hardening included) but for the file it
# serves and its log name; the two are kept in step by hand, so check it.
service_section() { sed -n '/^\[Service\]/,$p' "$1" | grep -v -e '^ExecStart=' -e '^SyslogIdentifier='; }
t="$P/systemd/regfs-httpd@.service"
[[ -f "$t" ]] || fail "no $t"
grep -qx 'ExecStart=/usr/bin/regfs-httpd serve /etc/regfs/%i.yml' "$t" || fail "$t does not serve /etc/regfs/%i.yml"
grep -qx 'ReadWritePaths=/var/lib/regfs' "$t" || fail "$t may not write /var/lib/regfs"
diff <(service_section "$P/systemd/regfs-httpd.service") <(service_section "$t") >"$TMP/template.diff" ||
  { cat "$TMP/template.diff" >&2; fail "regfs-httpd@.service and regfs-httpd.service differ beyond ExecStart= and SyslogIdentifier="; }
ok "serves /etc/regfs/%i.yml with regfs-httpd.service's settings and hardening"

step "scripts"
for f in "$P/debian/regfs.postinst" "$P/debian/regfs.prerm" "$P/debian/regfs.postrm"; do
  sh -n "$f" || fail "$f does not parse"
  grep -q '^#DEBHELPER#$' "$f" || fail "$f has no #DEBHELPER# token"
done
for f in "$P"/*.sh "$PKG_SRC"/tests/packaging/*.sh; do bash -n "$f" || fail "$f does not parse"; done
if command -v shellcheck >/dev/null; then
  shellcheck -s sh "$P/debian/regfs.postinst" "$P/debian/regfs.prerm" "$P/debian/regfs.postrm" || fail "shellcheck: maintainer scripts"
  (cd "$PKG_SRC" && shellcheck -x packaging/*.sh tests/packaging/*.sh) || fail "shellcheck: scripts"
  ok "maintainer scripts and scripts parse and pass shellcheck"
else
  ok "maintainer scripts and scripts parse (no shellcheck here)"
fi

step "passed in $((SECONDS - PKG_T0))s"
