#!/usr/bin/env bash
# Copies the regfs source tree to DEST without build output, so that package builds never
# touch the checkout or its build/ directory:   packaging/source-tree.sh DEST
# In a git checkout the copy holds every file git tracks plus the untracked ones it does not
# ignore (work in progress is packaged as it is); elsewhere everything but .git, build*/
# and data/.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:?usage: source-tree.sh DEST}
mkdir -p "$dest"

if git -C "$src" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$src" ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do
      # Tracked files deleted in the work tree are not copied.
      if [[ -e "$src/$f" || -L "$src/$f" ]]; then printf '%s\0' "$f"; fi
    done |
    tar -C "$src" --null --no-recursion -T - -cf - | tar -C "$dest" -xf -
else
  tar -C "$src" --exclude=./.git --exclude='./build*' --exclude=./data -cf - . | tar -C "$dest" -xf -
fi
# A debian/ directory is made from packaging/debian by the Debian build, never taken as is.
rm -rf "$dest/debian"
