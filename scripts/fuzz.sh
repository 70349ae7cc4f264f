#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz, clang, ASan + UBSan) in build-fuzz/ and runs each for a bounded time
# with a seed corpus from the fixtures. Fails on any crash, sanitizer report, leak, timeout or out-of-memory.
#   A2F_FUZZ_SECONDS=60 (per target)   A2F_FUZZ_TARGETS="fuzz_npy fuzz_pickle ..." (default: all)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${A2F_FUZZ_SECONDS:-60}
TARGETS=${A2F_FUZZ_TARGETS:-"fuzz_safetensors fuzz_pickle fuzz_zip fuzz_npy fuzz_image fuzz_onnx"}
BUILD=build-fuzz
command -v clang++ > /dev/null || { echo "fuzz.sh: clang++ is needed (scripts/install-deps.sh)" >&2; exit 1; }

mkdir -p "$BUILD"
# The fuzz targets live under tests/, so tests are configured too; only the fuzz targets are built.
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DA2F_FUZZ=ON \
  -DA2F_TESTS=ON -DA2F_BENCH=OFF -DA2F_CUDA=OFF > "$BUILD/configure.log"
# shellcheck disable=SC2086
cmake --build "$BUILD" -j "$(nproc)" --target $TARGETS

seeds_for() {
  case "$1" in
    fuzz_safetensors) echo "tests/fixtures/io tests/fixtures/io/bad" ;;
    fuzz_pickle) echo "tests/fuzz/corpus/pickle" ;;
    fuzz_zip) echo "tests/fixtures/io tests/fixtures/io/bad" ;;
    fuzz_npy) echo "tests/fixtures/io/npy tests/fixtures/io/bad" ;;
    fuzz_image) echo "tests/fuzz/corpus/image" ;;
    fuzz_onnx) echo "tests/fuzz/corpus/onnx" ;;
  esac
}
max_len_for() {
  case "$1" in
    fuzz_npy) echo 2048 ;;
    fuzz_image) echo 16384 ;;
    *) echo 8192 ;;
  esac
}

for t in $TARGETS; do
  corpus="$BUILD/corpus/$t"
  mkdir -p "$corpus" "$BUILD/artifacts"
  echo "== $t: ${SECS}s"
  # shellcheck disable=SC2046
  "$BUILD/bin/$t" -max_total_time="$SECS" -max_len="$(max_len_for "$t")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/$t-" "$corpus" $(seeds_for "$t") \
    > "$BUILD/$t.log" 2>&1 || { tail -n 60 "$BUILD/$t.log"; echo "fuzz.sh: $t failed (see $BUILD/$t.log)"; exit 1; }
  grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$BUILD/$t.log" | tr '\n' ' '
  echo
done
echo "fuzz.sh: all targets ran clean"
