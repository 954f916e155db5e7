#!/usr/bin/env bash
# Installs what is missing, builds with warnings-as-errors and ASan+UBSan, and runs
# the whole test suite (unit and integration) with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
BUILD=${FR_BUILD_DIR:-build-test}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=Debug -DFR_WERROR=ON -DFR_SANITIZE=ON
cmake --build "$BUILD" -j"$(nproc)"
ctest --test-dir "$BUILD" --output-on-failure -j2 --timeout 300
