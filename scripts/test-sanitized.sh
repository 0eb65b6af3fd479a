#!/usr/bin/env bash
# Builds regfs with AddressSanitizer and UndefinedBehaviorSanitizer into ./build-asan and runs
# the whole test suite against that build except the packaging tests (which build their own
# packages): unit and HTTP API suites (in parallel), then the file-tree mounts and the
# end-to-end tests with real clients, which start the sanitized regfs-httpd and regfs-fused.
# Any sanitizer report aborts the process under test and so fails its test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
BUILD_DIR=build-asan BUILD_TYPE=Debug scripts/build.sh -DREGFS_SANITIZE=ON -DREGFS_BUILD_TESTS=ON
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# End-to-end tests skip the steps that only wait out a client's retry timers (they are run in
# the plain build; here they would add minutes and no server code).
export REGFS_E2E_SANITIZED=1
cd build-asan
# The HTTP API suite on the object store runs in the plain pass only: under the sanitizers
# it would repeat the same server code at ten times the time; the driver's own suite runs.
ctest --output-on-failure --timeout 600 -j2 -L 'core|config|httpd' -E '^httpd\.s3$' "$@"
# The end-to-end run on the object store likewise: docker and skopeo against the same server
# code the filesystem runs check; the mount on a bucket (its own reads) does run. The
# replicated-service runs (three servers, haproxy, Redis, timed drains and lease expiries)
# too: their server code (cache, health, metrics) runs sanitized in the core and httpd suites.
# And the pull-through cache's: its fetches, merges and timeouts run sanitized in the httpd
# unit suite, against an upstream in the test's own process.
ctest --output-on-failure --timeout 600 -L 'fused|e2e' -E '^e2e\.(s3_storage|replicas|replicas_s3|proxy)$' "$@"
