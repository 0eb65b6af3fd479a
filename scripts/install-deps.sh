#!/usr/bin/env bash
# Installs what building (and, with --test, testing; with --fuzz, fuzzing) regfs needs on
# Debian 12.
# Packages already present are not reinstalled; apt runs only when something is missing.
set -euo pipefail

build_packages=(g++ cmake make pkg-config libpoco-dev libyaml-cpp-dev libssl-dev libgtest-dev libfuse3-dev fuse3)
# Ceph (one monitor, one in-memory OSD, the RADOS Gateway) is the S3 server the object-store
# tests run against. The replicated-service test (e2e.replicas) puts haproxy in front of
# three replicas sharing a Redis cache (redis-server), and checks their /metrics with
# promtool (in prometheus). podman is one of the clients pulling through the pull-through
# cache (e2e.proxy).
test_packages=(docker.io skopeo podman docker-registry curl jq python3 openssl ca-certificates rsync apache2-utils nodejs
  ceph-mon ceph-osd radosgw redis-server haproxy prometheus)

# clang 14 with its compiler-rt: libclang_rt.fuzzer and the sanitizer runtimes.
fuzz_packages=(clang libclang-rt-14-dev)

packages=("${build_packages[@]}")
for option in "$@"; do
  case "$option" in
    --test) packages+=("${test_packages[@]}") ;;
    --fuzz) packages+=("${fuzz_packages[@]}") ;;
    *) echo "usage: $0 [--test] [--fuzz]" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then exit 0; fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
