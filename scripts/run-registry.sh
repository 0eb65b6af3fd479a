#!/usr/bin/env bash
# The README's first command: install what is missing, build, and start a registry on
# port 5000 with its data in ./data (deletes enabled). Ctrl-C stops it.
#   scripts/run-registry.sh [--mount DIR] [CONFIG]
# --mount DIR also mounts the registry as a file tree at DIR (needs root or fuse access).
# Override anything with REGISTRY_* variables, e.g. REGISTRY_HTTP_ADDR=127.0.0.1:5001.
set -euo pipefail
cd "$(dirname "$0")/.."
mount_dir=""
if [[ "${1:-}" == "--mount" ]]; then
  mount_dir=${2:?--mount needs a directory}
  shift 2
fi
scripts/install-deps.sh
scripts/build.sh -DREGFS_BUILD_TESTS=OFF
mkdir -p data
export REGISTRY_HTTP_ADDR=${REGISTRY_HTTP_ADDR:-:5000}
export REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=${REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY:-$PWD/data}
export REGISTRY_STORAGE_DELETE_ENABLED=${REGISTRY_STORAGE_DELETE_ENABLED:-true}
config=${1:-/dev/null}  # no file: the defaults plus the variables above
if [[ -z "$mount_dir" ]]; then
  exec build/httpd/regfs-httpd serve "$@"
fi
mkdir -p "$mount_dir"
build/fused/regfs-fused "$config" "$mount_dir"
trap 'fusermount3 -u "$mount_dir" 2>/dev/null || true' EXIT
echo "file tree mounted at $mount_dir (unmounted when the registry stops)"
build/httpd/regfs-httpd serve "$@"
