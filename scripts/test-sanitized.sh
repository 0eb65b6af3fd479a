#!/usr/bin/env bash
# Builds regfs with AddressSanitizer and UndefinedBehaviorSanitizer into ./build-asan and runs
# the unit and HTTP API suites against that build (the HTTP tests start the sanitized
# regfs-httpd). Any sanitizer report fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
BUILD_DIR=build-asan BUILD_TYPE=Debug scripts/build.sh -DREGFS_SANITIZE=ON -DREGFS_BUILD_TESTS=ON
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd build-asan
ctest --output-on-failure --timeout 600 -L 'core|config|httpd' "$@"
ctest --output-on-failure --timeout 600 -R 'RegistryTree|ErrnoMap' "$@"
