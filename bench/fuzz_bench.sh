#!/usr/bin/env bash
# Runs every libFuzzer target for a fixed number of executions from its corpus in the
# repository and prints, per target, the executions done, the crashes found, the seconds
# taken and libFuzzer's coverage at the end (cov: edges, ft: features).
#   bench/fuzz_bench.sh [RUNS] [BUILD_DIR] [CMAKE_ARG...]   (defaults: 200000, build-fuzz)
# protobuf-c's runtime is compiled in from Debian's source package of the installed version,
# fetched into BUILD_DIR/protobuf-c-src by tests/fuzz/protobuf-c-source.sh (once; it needs
# Debian's archive). bench/fuzz_bench.sh 200000 build-fuzz-sys -DFR_FUZZ_SYSTEM_PROTOBUF_C=ON
# links Debian's uninstrumented libprotobuf-c instead, to compare coverage.
# $FUZZ_TARGETS (space-separated) limits the run to some targets. The seed is fixed
# (-seed=1), so a run can be repeated. Builds the targets with clang -DFR_FUZZ=ON into
# BUILD_DIR first. Crash inputs land in BUILD_DIR/crashes/TARGET/; copy one into
# tests/fuzz/corpus/TARGET/ so the suite replays it from then on.
set -euo pipefail
runs=${1:-200000}
build=${2:-build-fuzz}
shift $(( $# < 2 ? $# : 2 ))
src=$(cd "$(dirname "$0")/.." && pwd)
pbc=()
case " $* " in
  *" -DFR_FUZZ_SYSTEM_PROTOBUF_C=ON "*) ;;
  *) mkdir -p "$build"
     pbc=(-DFR_PROTOBUF_C_SRC="$("$src/tests/fuzz/protobuf-c-source.sh" "$build/protobuf-c-src")") ;;
esac
CC=clang cmake -S "$src" -B "$build" -DFR_FUZZ=ON -DFR_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "${pbc[@]}" "$@" >/dev/null
read -r -a targets <<<"${FUZZ_TARGETS:-fuzz_wire fuzz_mux fuzz_lockdown fuzz_config fuzz_rack fuzz_engine_output fuzz_manifest}"
cmake --build "$build" -j2 --target "${targets[@]}" >/dev/null
declare -A corpus=([fuzz_wire]=wire [fuzz_mux]=mux [fuzz_lockdown]=lockdown [fuzz_config]=config [fuzz_rack]=rack
                   [fuzz_engine_output]=engine_output [fuzz_manifest]=manifest)
printf '%-20s %10s %8s %8s %6s %7s\n' target execs crashes seconds cov ft
total_crashes=0
for t in "${targets[@]}"; do
  work=$(mktemp -d)
  cp -r "$src/tests/fuzz/corpus/${corpus[$t]}/." "$work/"
  rm -rf "$build/crashes/$t"
  mkdir -p "$build/crashes/$t"
  start=$(date +%s)
  log="$build/crashes/$t.log"
  # -runs is the fixed budget; the copied corpus grows in a temp dir, the repo's stays
  "$build/bin/$t" -runs="$runs" -seed=1 -artifact_prefix="$build/crashes/$t/" -print_final_stats=1 \
    "$work" >"$log" 2>&1 || true
  secs=$(( $(date +%s) - start ))
  execs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  # the last status line (DONE, or the last before a crash) carries the coverage
  cov=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -nE 's/.* cov: ([0-9]+) ft: ([0-9]+).*/\1 \2/p')
  crashes=$(find "$build/crashes/$t" -type f | wc -l)
  total_crashes=$((total_crashes + crashes))
  printf '%-20s %10s %8s %8s %6s %7s\n' "$t" "${execs:-?}" "$crashes" "$secs" ${cov:-? ?}
  rm -rf "$work"
done
echo "crashes in total: $total_crashes"
[ "$total_crashes" -eq 0 ]
