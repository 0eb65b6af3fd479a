#!/usr/bin/env bash
# Builds the regfs Debian package in a clean copy of the source tree (the checkout and its
# build/ directory are not touched) and puts the results in OUTDIR:
#
#   packaging/build-deb.sh [OUTDIR]          default OUTDIR: ./build-packages
#
# This is `cp -r packaging/debian debian && dpkg-buildpackage -b -us -uc` in that copy.
# Needs dpkg-dev, debhelper and the Build-Depends of packaging/debian/control.
# JOBS (default: the number of CPUs) sets the build's parallelism; KEEP_WORKDIR=1 keeps
# the copy.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$src/build-packages}
mkdir -p "$out"
out=$(cd "$out" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/regfs-deb.XXXXXX")
if [[ "${KEEP_WORKDIR:-0}" != 1 ]]; then trap 'rm -rf "$work"' EXIT; fi

version=$(dpkg-parsechangelog -l "$src/packaging/debian/changelog" -S Version)
tree="$work/regfs-${version%-*}"
"$src/packaging/source-tree.sh" "$tree"
cp -a "$src/packaging/debian" "$tree/debian"

cd "$tree"
dpkg-buildpackage -b -us -uc --jobs="${JOBS:-$(nproc)}"

cd "$work"
shopt -s nullglob
results=(regfs*_"$version"_*.deb regfs*_"$version"_*.ddeb regfs_"$version"_*.buildinfo regfs_"$version"_*.changes)
if ((${#results[@]} == 0)); then echo "build-deb.sh: dpkg-buildpackage made no package" >&2; exit 1; fi
mv -f "${results[@]}" "$out/"
for f in "${results[@]}"; do echo "$out/$f"; done
