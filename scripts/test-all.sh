#!/usr/bin/env bash
# The README's second command: install what is missing, build, and run every test
# (unit, HTTP API, end-to-end with docker, skopeo and registry:2). Needs root for dockerd.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/build.sh -DREGFS_BUILD_TESTS=ON
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 600 "$@"
