#!/usr/bin/env bash
# The demo: installs what is missing, builds, and runs a simulated site — one
# controller, two agents with 24 simulated ports each, one restore job for every unit —
# with a live view while it runs and the per-unit report at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
./deploy/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFR_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)"
exec ./deploy/run-demo.sh build/bin
