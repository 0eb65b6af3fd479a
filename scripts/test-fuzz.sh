#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ with clang into ./build-fuzz (or $FUZZ_BUILD_DIR) and
# runs each for $FUZZ_SECONDS (default 20) over a scratch copy of its seed corpus
# (fuzz/corpus/<target>/), after replaying its known crashers (fuzz/regressions/<target>/).
# Any crash, sanitizer report, timeout or broken invariant fails the run and prints the path of
# the input that reproduces it. FUZZ_TARGETS="fuzz_names fuzz_route" runs only those.
# FUZZ_SEED fixes libFuzzer's random seed: CI sets it so that a run explores the same inputs
# each time and fails only on what the change broke; without it every run explores anew, which
# is what a developer hunting for new findings wants (run with a large FUZZ_SECONDS).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

scripts/install-deps.sh --fuzz

build_dir=${FUZZ_BUILD_DIR:-build-fuzz}
CC=clang CXX=clang++ cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DREGFS_BUILD_FUZZERS=ON -DREGFS_BUILD_TESTS=OFF >/dev/null
cmake --build "$build_dir" --target fuzzers -j "${JOBS:-$(nproc)}"

seconds=${FUZZ_SECONDS:-20}
targets=${FUZZ_TARGETS:-$(cd fuzz && ls fuzz_*.cc | sed 's/\.cc$//')}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/regfs-fuzz.XXXXXX")
failed=()

for target in $targets; do
  bin="$repo/$build_dir/fuzz/$target"
  work="$scratch/$target"
  mkdir -p "$work/corpus" "$work/artifacts"
  if [[ -d "fuzz/corpus/$target" ]]; then cp -r "fuzz/corpus/$target/." "$work/corpus/"; fi
  args=(-artifact_prefix="$work/artifacts/" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
  if [[ -f "fuzz/dicts/$target.dict" ]]; then args+=(-dict="$repo/fuzz/dicts/$target.dict"); fi
  if [[ -n "${FUZZ_SEED:-}" ]]; then args+=(-seed="$FUZZ_SEED"); fi

  if compgen -G "fuzz/regressions/$target/*" >/dev/null; then
    echo "== $target: replaying fuzz/regressions/$target/"
    for input in "fuzz/regressions/$target"/*; do
      if ! "$bin" "${args[@]}" "$input" >"$work/regression.log" 2>&1; then
        tail -n 30 "$work/regression.log"
        echo "FAIL $target: known crasher still crashes: $repo/$input"
        failed+=("$target")
        continue 2
      fi
    done
  fi

  echo "== $target: fuzzing for ${seconds}s"
  if ! "$bin" "${args[@]}" -max_total_time="$seconds" "$work/corpus" >"$work/fuzz.log" 2>&1; then
    tail -n 40 "$work/fuzz.log"
    for artifact in "$work/artifacts"/*; do
      [[ -e "$artifact" ]] || continue
      echo "FAIL $target: reproduce with: $bin $artifact"
    done
    failed+=("$target")
    continue
  fi
  grep -E '^stat::number_of_executed_units|^Done' "$work/fuzz.log" | tr '\n' ' ' || true
  echo
done

if ((${#failed[@]} > 0)); then
  echo "fuzzing failed: ${failed[*]} (logs, corpora and crashers under $scratch)"
  exit 1
fi
rm -rf "$scratch"
echo "all fuzz targets ran ${seconds}s without a finding"
