#!/usr/bin/env bash
# tests/mutants/run.sh — can the tests fail? Each mutant is a small patch
# that breaks one rule of the freeze/query protocol (docs/verification.md,
# "Mutants"). For each: copy the sources to BUILD_DIR/<name>/, apply the
# patch, build the one test that should see the bug (release flags), run it
# and require that it FAILS with the expected message. A mutant that
# survives, a patch that no longer applies and a build error all fail this
# script (exit 1): a test that cannot fail proves nothing.
#
# Usage: tests/mutants/run.sh [BUILD_DIR]     (default: build/mutants)
#        tests/mutants/run.sh --help
set -euo pipefail

case "${1:-}" in
  -h | --help)
    sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${1:-$root/build/mutants}
case "$work" in /*) ;; *) work="$PWD/$work" ;; esac

# name | build target | what the failure must print (ERE) | command (in the build dir)
# A command with @SEED@ is a randomized race: it runs with seeds 1, 2, 3 in
# turn until one run fails (each one stops at its first violation, usually
# within seconds), so one unlucky schedule does not fail the stage.
mutants=(
  "seed-group-rule|paygo_test|a failed reclaim must not clear group bits|tests/paygo_test --gtest_filter=Paygo.GroupBitsAreClearedOnlyWhenTheObjectIsDead"
  "no-heavy-fence|paygo-stress|paygo-stress: FAILED: first violation|tests/paygo-stress --seconds 60 --seed @SEED@"
  "no-light-fence|paygo-stress|paygo-stress: FAILED: first violation|env PAYGO_NO_MEMBARRIER=1 tests/paygo-stress --seconds 60 --seed @SEED@"
)

mkdir -p "$work"
rm -f "$work/killed-count"
fail=0
killed=0
for m in "${mutants[@]}"; do
  IFS='|' read -r name target expect cmd <<<"$m"
  dir="$work/$name"
  echo "== mutant $name ($here/$name.patch): expect $target to fail"
  rm -rf "$dir"
  mkdir -p "$dir/src"
  # Only what the library and its tests need (not bench/, kernel/, build/).
  cp -r "$root/CMakeLists.txt" "$root/cmake" "$root/include" "$root/src" "$root/tests" "$dir/src/"
  if ! patch -s -p1 -d "$dir/src" <"$here/$name.patch"; then
    echo "mutants: $name.patch no longer applies: update it to break the current code"
    fail=1
    continue
  fi
  if ! { cmake -S "$dir/src" -B "$dir/build" -G Ninja -DCMAKE_CXX_COMPILER=g++ \
           -DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g -DNDEBUG" \
           -DPAYGO_WERROR=ON -DPAYGO_BUILD_BENCH=OFF &&
         cmake --build "$dir/build" --target "$target"; } >"$dir/build.log" 2>&1; then
    tail -n 30 "$dir/build.log"
    echo "mutants: $name does not build (log: $dir/build.log)"
    fail=1
    continue
  fi
  seeds=1
  [[ "$cmd" == *@SEED@* ]] && seeds="1 2 3"
  start_ms=$((${EPOCHREALTIME/./} / 1000))
  for seed in $seeds; do
    rc=0
    (cd "$dir/build" && ${cmd//@SEED@/$seed}) >"$dir/run.log" 2>&1 || rc=$?
    [ "$rc" -eq 0 ] || break
  done
  ms=$((${EPOCHREALTIME/./} / 1000 - start_ms))
  if [ "$name" = no-heavy-fence ] && grep -q 'fences=seq_cst' "$dir/run.log"; then
    # Without membarrier both fence sides are seq_cst fences and the
    # reclaimer's freeze CAS is itself a full barrier on x86: nothing broken.
    echo "   skipped: membarrier is not available here, the heavy fence is not used"
    continue
  fi
  if [ "$rc" -ne 0 ] && grep -Eq "$expect" "$dir/run.log"; then
    killed=$((killed + 1))
    printf '   killed after %d.%03d s (exit %d, seed %s): %s\n' $((ms / 1000)) $((ms % 1000)) "$rc" "$seed" \
      "$(grep -Em1 "$expect" "$dir/run.log" | cut -c1-160)"
  else
    tail -n 20 "$dir/run.log"
    echo "mutants: $name SURVIVED (exit $rc, no '$expect' in $dir/run.log): the tests cannot see this bug"
    fail=1
  fi
done
echo "mutants: $killed of ${#mutants[@]} killed"
[ "$fail" -ne 0 ] || echo "$killed" >"$work/killed-count"
exit "$fail"
