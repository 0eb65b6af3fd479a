#!/usr/bin/env bash
# The README's first command: install what is missing, build, and start a registry on
# port 5000 with its data in ./data (deletes enabled). Ctrl-C stops it.
# Override anything with REGISTRY_* variables, e.g. REGISTRY_HTTP_ADDR=127.0.0.1:5001.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh -DREGFS_BUILD_TESTS=OFF
mkdir -p data
export REGISTRY_HTTP_ADDR=${REGISTRY_HTTP_ADDR:-:5000}
export REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=${REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY:-$PWD/data}
export REGISTRY_STORAGE_DELETE_ENABLED=${REGISTRY_STORAGE_DELETE_ENABLED:-true}
exec build/httpd/regfs-httpd serve "$@"
