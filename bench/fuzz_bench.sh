#!/usr/bin/env bash
# Runs every libFuzzer target for a fixed number of executions from its corpus in the
# repository and prints, per target, the executions done and the crashes found.
#   bench/fuzz_bench.sh [RUNS] [BUILD_DIR]     (defaults: 200000, build-fuzz)
# Builds the targets with clang -DFR_FUZZ=ON into BUILD_DIR first. Crash inputs land in
# BUILD_DIR/crashes/TARGET/; copy one into tests/fuzz/corpus/TARGET/ so the suite
# replays it from then on.
set -euo pipefail
runs=${1:-200000}
build=${2:-build-fuzz}
src=$(cd "$(dirname "$0")/.." && pwd)
CC=clang cmake -S "$src" -B "$build" -DFR_FUZZ=ON -DFR_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
targets=(fuzz_wire fuzz_mux fuzz_config fuzz_rack fuzz_engine_output fuzz_manifest)
cmake --build "$build" -j2 --target "${targets[@]}" >/dev/null
declare -A corpus=([fuzz_wire]=wire [fuzz_mux]=mux [fuzz_config]=config [fuzz_rack]=rack
                   [fuzz_engine_output]=engine_output [fuzz_manifest]=manifest)
printf '%-20s %10s %8s %8s\n' target execs crashes seconds
total_crashes=0
for t in "${targets[@]}"; do
  work=$(mktemp -d)
  cp -r "$src/tests/fuzz/corpus/${corpus[$t]}/." "$work/"
  mkdir -p "$build/crashes/$t"
  start=$(date +%s)
  log="$build/crashes/$t.log"
  # -runs is the fixed budget; the copied corpus grows in a temp dir, the repo's stays
  "$build/bin/$t" -runs="$runs" -artifact_prefix="$build/crashes/$t/" -print_final_stats=1 \
    "$work" >"$log" 2>&1 || true
  secs=$(( $(date +%s) - start ))
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  crashes=$(find "$build/crashes/$t" -type f | wc -l)
  total_crashes=$((total_crashes + crashes))
  printf '%-20s %10s %8s %8s\n' "$t" "${execs:-?}" "$crashes" "$secs"
  rm -rf "$work"
done
echo "crashes in total: $total_crashes"
[ "$total_crashes" -eq 0 ]
