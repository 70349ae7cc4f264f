#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs dependencies, builds (warnings are errors), runs every CTest
# test, runs the fuzzers for a bounded time under ASan/UBSan, and checks that the CUDA backend compiles when
# the toolkit is present.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
JOBS=$(nproc)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DA2F_WERROR=ON
cmake --build build -j "$JOBS"
ctest --test-dir build --output-on-failure -j "$JOBS"
if [ -x scripts/fuzz.sh ]; then scripts/fuzz.sh; fi
if [ -x /usr/local/cuda/bin/nvcc ]; then
  cmake -S . -B build-cuda -G Ninja -DA2F_CUDA=ON -DA2F_TESTS=OFF -DA2F_BENCH=OFF \
    -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc > build-cuda.log
  cmake --build build-cuda -j "$JOBS" --target a2f_backend_cuda >> build-cuda.log
  echo "CUDA backend compiles (see build-cuda.log)"
fi
