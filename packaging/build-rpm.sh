#!/usr/bin/env bash
# Builds the regfs RPMs from a clean copy of the source tree (the checkout and its build/
# directory are not touched) and puts them in OUTDIR:
#
#   packaging/build-rpm.sh [OUTDIR [RPMBUILD_OPTION...]]     default OUTDIR: ./build-packages
#
# It makes the sources packaging/rpm/regfs.spec wants (Source0: regfs-VERSION.tar.gz of the
# copy, Source1: regfs.sysusers) in a private _topdir and runs rpmbuild -bb. On Debian,
# where the BuildRequires are not rpm packages, pass --nodeps. JOBS (default: the number of
# CPUs) bounds the build's parallelism; KEEP_WORKDIR=1 keeps the _topdir.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$src/build-packages}
shift || true
mkdir -p "$out"
out=$(cd "$out" && pwd)

spec="$src/packaging/rpm/regfs.spec"
version=$(sed -n 's/^Version:[[:space:]]*//p' "$spec")
work=$(mktemp -d "${TMPDIR:-/tmp}/regfs-rpm.XXXXXX")
if [[ "${KEEP_WORKDIR:-0}" != 1 ]]; then trap 'rm -rf "$work"' EXIT; fi
mkdir -p "$work"/{BUILD,BUILDROOT,RPMS,SOURCES,SPECS,SRPMS,tree}

"$src/packaging/source-tree.sh" "$work/tree/regfs-$version"
tar -C "$work/tree" --owner=0 --group=0 -czf "$work/SOURCES/regfs-$version.tar.gz" "regfs-$version"
cp "$src/packaging/sysusers.d/regfs.conf" "$work/SOURCES/regfs.sysusers"
cp "$spec" "$work/SPECS/"

rpmbuild -bb \
  --define "_topdir $work" \
  --define "_smp_build_ncpus ${JOBS:-$(nproc)}" \
  "$@" "$work/SPECS/regfs.spec"

find "$work/RPMS" -name '*.rpm' -exec mv -f {} "$out/" \; -printf "$out/%f\n"
