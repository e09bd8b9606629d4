#!/usr/bin/env bash
# run_model.sh — exhaustive SPIN check of tests/model/paygo.pml.
#
# For every variant: spin -a, cc, ./pan. Correct variants must finish a full
# state-space search with "errors: 0" (no truncation, no depth limit hit);
# broken variants must produce a counterexample (errors > 0 and a trail).
# Prints one line per variant; exits non-zero on any unexpected result.
#
# Usage: run_model.sh [VARIANT...]   (default: all; names as in the table)
#        run_model.sh --list         the table: "name expect" a line (ok|cex);
#                                    tests/CMakeLists.txt registers one ctest
#                                    per variant (spin_model.NAME) from it
# Env:   PAYGO_MODEL_VERBOSE=1  also print each counterexample (replayed trail)
#        PAYGO_MODEL_KEEP=DIR   copy the scratch files (pan.c, trails) to DIR
#        CC                     C compiler for pan (default: cc)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
model="$here/paygo.pml"
cc="${CC:-cc}"

# name | expect (ok|cex) | spin -D flags | pan.c compile flags
variants=(
  "seq_cst|ok||"
  "membarrier|ok|-DMEMBARRIER|"
  "seq_cst_batch|ok|-DBATCH|"
  "membarrier_batch|ok|-DMEMBARRIER -DBATCH|"
  "seq_cst_shared_group|ok|-DSHARED_GROUP|"
  "membarrier_shared_group|ok|-DMEMBARRIER -DSHARED_GROUP|"
  "seq_cst_buf3|ok|-DBUF=3|"
  "membarrier_big|ok|-DMEMBARRIER -DBUF=3 -DGETS1=2 -DATTEMPTS=3|-DCOLLAPSE"
  "broken_group_rule|cex|-DBROKEN_GROUP_RULE|"
  "broken_group_rule_membarrier|cex|-DMEMBARRIER -DBROKEN_GROUP_RULE|"
  "no_reader_fence|cex|-DNO_READER_FENCE|"
  "no_generation_check|cex|-DNO_GENERATION_CHECK|"
  "no_heavy_fence_membarrier|cex|-DMEMBARRIER -DNO_HEAVY_FENCE|"
  "no_clamp|cex|-DNO_CLAMP|"
  "no_clamp_membarrier_batch|cex|-DMEMBARRIER -DBATCH -DNO_CLAMP|"
  "skip_mask_first|cex|-DSKIP_MASK_FIRST|"
  # self-tuning: promotion, demotion (sweep), central and distributed
  # tokens at once; no X object (its entry reuse is covered above)
  "tune_seq_cst|ok|-DTUNE -DGETSX=0|-DCOLLAPSE"
  "tune_membarrier|ok|-DTUNE -DGETSX=0 -DMEMBARRIER|-DCOLLAPSE"
  "tune_seq_cst_shared_group|ok|-DTUNE -DGETSX=0 -DSHARED_GROUP|-DCOLLAPSE"
  "tune_membarrier_shared_group|ok|-DTUNE -DGETSX=0 -DMEMBARRIER -DSHARED_GROUP|-DCOLLAPSE"
  # O starts promoted, so it can be demoted and promoted again; no reset
  "tune_promoted_seq_cst_shared_group|ok|-DTUNE -DGETSX=0 -DPROMOTED -DRESETS=0 -DSHARED_GROUP|-DCOLLAPSE"
  "tune_promoted_membarrier_shared_group|ok|-DTUNE -DGETSX=0 -DPROMOTED -DRESETS=0 -DMEMBARRIER -DSHARED_GROUP|-DCOLLAPSE"
  "tune_promoted_membarrier_batch|ok|-DTUNE -DGETSX=0 -DPROMOTED -DRESETS=0 -DMEMBARRIER -DBATCH|-DCOLLAPSE"
  "demote_no_gen|cex|-DTUNE -DGETSX=0 -DDEMOTE_NO_GEN|"
  "demote_no_gen_membarrier_shared_group|cex|-DTUNE -DGETSX=0 -DMEMBARRIER -DSHARED_GROUP -DDEMOTE_NO_GEN|"
  "demote_no_scan|cex|-DTUNE -DGETSX=0 -DDEMOTE_NO_SCAN|"
  "demote_no_scan_membarrier|cex|-DTUNE -DGETSX=0 -DMEMBARRIER -DDEMOTE_NO_SCAN|"
  # dup_raw/put_raw (Cache::Ref): T0 dups its own token, T1 one T0 handed
  # it or its own, and may hand one back to T0; every token of O is put
  # with put_raw. No X (GETSX=0) but in dup_x_*, where only T0 dups.
  "dup_seq_cst|ok|-DDUP -DGETSX=0|-DCOLLAPSE"
  "dup_membarrier|ok|-DDUP -DGETSX=0 -DMEMBARRIER|-DCOLLAPSE"
  "dup_seq_cst_batch|ok|-DDUP -DGETSX=0 -DBATCH|-DCOLLAPSE"
  "dup_membarrier_batch|ok|-DDUP -DGETSX=0 -DMEMBARRIER -DBATCH|-DCOLLAPSE"
  "dup_x_seq_cst|ok|-DDUP -DDUPS1=0|-DCOLLAPSE"
  # with self-tuning (central dups too): one get by T0; T1 dups, or T0 dups
  "dup_tune_seq_cst|ok|-DDUP -DTUNE -DGETSX=0 -DGETS0=1 -DDUPS0=0|-DCOLLAPSE"
  "dup_tune_membarrier|ok|-DDUP -DTUNE -DGETSX=0 -DGETS0=1 -DDUPS0=0 -DMEMBARRIER|-DCOLLAPSE"
  "dup_tune_home_seq_cst|ok|-DDUP -DTUNE -DGETSX=0 -DGETS0=1 -DDUPS1=0|-DCOLLAPSE"
  "dup_tune_home_membarrier|ok|-DDUP -DTUNE -DGETSX=0 -DGETS0=1 -DDUPS1=0 -DMEMBARRIER|-DCOLLAPSE"
  "dup_tune_promoted_membarrier_batch|ok|-DDUP -DTUNE -DGETSX=0 -DGETS0=1 -DDUPS0=0 -DPROMOTED -DRESETS=0 -DMEMBARRIER -DBATCH|-DCOLLAPSE"
  # no frozen check, but the freeze-contract checks off: no reclaim of a
  # live object, no lost count (the check keeps query() exact, no more)
  "dup_no_frozen_check_reclaim|ok|-DDUP -DGETSX=0 -DDUP_NO_FROZEN_CHECK -DNO_FREEZE_CONTRACT|-DCOLLAPSE"
  "dup_no_frozen_check|cex|-DDUP -DGETSX=0 -DDUP_NO_FROZEN_CHECK|"
  "dup_no_frozen_check_membarrier|cex|-DDUP -DGETSX=0 -DMEMBARRIER -DDUP_NO_FROZEN_CHECK|"
  "dup_no_fence|cex|-DDUP -DGETSX=0 -DDUP_NO_FENCE|"
  "put_raw_no_local_test|cex|-DDUP -DGETSX=0 -DPUT_RAW_NO_LOCAL_TEST|"
  "put_raw_no_local_test_membarrier|cex|-DDUP -DGETSX=0 -DMEMBARRIER -DPUT_RAW_NO_LOCAL_TEST|"
  "dup_plain_put|cex|-DDUP -DGETSX=0 -DDUP_PLAIN_PUT|"
  # per-CPU tables (SlotMode::Cpu): T0 and T1 share CPU 0's entry, T0 also
  # claims it for X (T1 too in percpu_two_claimers); 2cpu: T1 runs each
  # get on CPU 0 or 1. No TUNE, no DUP
  "percpu_seq_cst|ok|-DPERCPU|"
  "percpu_membarrier|ok|-DPERCPU -DMEMBARRIER|"
  "percpu_seq_cst_batch|ok|-DPERCPU -DBATCH|"
  "percpu_membarrier_batch|ok|-DPERCPU -DMEMBARRIER -DBATCH|"
  "percpu_2cpu_seq_cst|ok|-DPERCPU -DCPUS=2|"
  "percpu_2cpu_membarrier_shared_group|ok|-DPERCPU -DCPUS=2 -DMEMBARRIER -DSHARED_GROUP|"
  "percpu_two_claimers|ok|-DPERCPU -DGETSX1=1|-DCOLLAPSE"
  "percpu_big|ok|-DPERCPU -DMEMBARRIER -DGETS1=2 -DATTEMPTS=3 -DRETRIES=2|-DCOLLAPSE"
  "percpu_plain_claim|cex|-DPERCPU -DPERCPU_PLAIN_CLAIM|"
  "percpu_no_recheck|cex|-DPERCPU -DPERCPU_NO_RECHECK|"
  "percpu_no_recheck_membarrier|cex|-DPERCPU -DMEMBARRIER -DPERCPU_NO_RECHECK|"
  "percpu_scan_ignores_tag|cex|-DPERCPU -DPERCPU_SCAN_IGNORES_TAG|"
  "percpu_scan_ignores_tag_batch|cex|-DPERCPU -DBATCH -DPERCPU_SCAN_IGNORES_TAG|"
)

if [[ "${1:-}" == --list ]]; then
  for v in "${variants[@]}"; do
    IFS='|' read -r name expect _ <<<"$v"
    echo "$name $expect"
  done
  exit 0
fi

for tool in spin "$cc"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "run_model.sh: '$tool' not found (apt-get install spin gcc)" >&2
    exit 2
  fi
done

work="$(mktemp -d "${TMPDIR:-/tmp}/paygo-model.XXXXXX")"
cleanup() {
  if [[ -n "${PAYGO_MODEL_KEEP:-}" ]]; then
    mkdir -p "$PAYGO_MODEL_KEEP" && cp -r "$work"/. "$PAYGO_MODEL_KEEP"/
  fi
  rm -rf "$work"
}
trap cleanup EXIT

selected=("$@")
want() {
  [[ ${#selected[@]} -eq 0 ]] && return 0
  local s
  for s in "${selected[@]}"; do [[ "$s" == "$1" ]] && return 0; done
  return 1
}

failures=0
ran=0
printf '%-38s %-6s %-8s %6s %10s %5s %6s %6s  %s\n' \
  variant expect result errors states depth pan_s all_s flags
for v in "${variants[@]}"; do
  IFS='|' read -r name expect dflags ccflags <<<"$v"
  want "$name" || continue
  ran=$((ran + 1))
  t0=$(date +%s.%N)
  dir="$work/$name"
  mkdir -p "$dir"
  # shellcheck disable=SC2086  # flag lists are meant to split
  if ! (cd "$dir" && spin -a $dflags "$model" >spin.log 2>&1 &&
    "$cc" -O1 -w $ccflags -o pan pan.c >cc.log 2>&1); then
    echo "$name: spin -a or cc failed:" >&2
    cat "$dir/spin.log" "$dir/cc.log" >&2 2>/dev/null || true
    failures=$((failures + 1))
    continue
  fi
  # -m: depth bound far above the model's (~250; a hit is reported and
  # fails the run). Default pan stops at the first error, which is what a
  # broken variant needs.
  (cd "$dir" && ./pan -m1000000 >pan.log 2>&1) || true
  log="$dir/pan.log"
  errors="$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$log" | tail -1)"
  states="$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' "$log" | tail -1)"
  depth="$(sed -n 's/.*depth reached \([0-9]*\).*/\1/p' "$log" | tail -1)"
  secs="$(sed -n 's/^pan: elapsed time \([0-9.e+-]*\) seconds.*/\1/p' "$log" | tail -1)"
  result=ok
  if [[ -z "$errors" ]]; then
    result="NO-RESULT"
  elif [[ "$expect" == ok ]]; then
    if [[ "$errors" != 0 ]]; then
      result="UNEXPECTED-COUNTEREXAMPLE"
    elif grep -qiE 'search not completed|max search depth too small|out of memory|hash table is full' "$log"; then
      result="INCOMPLETE"
    elif ! grep -q 'Full statespace search' "$log"; then
      result="NOT-EXHAUSTIVE"
    fi
  else
    if [[ "$errors" == 0 ]]; then
      result="NO-COUNTEREXAMPLE"
    elif ! ls "$dir"/*.trail >/dev/null 2>&1; then
      result="NO-TRAIL"
    elif ! grep -q 'assertion violated' "$log"; then
      # A deadlock (invalid end state) is an error too, but not the bug the
      # variant is about: it must break a safety assertion.
      result="NOT-AN-ASSERTION"
    fi
  fi
  all_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  printf '%-38s %-6s %-8s %6s %10s %5s %6s %6s  %s\n' \
    "$name" "$expect" "$result" "${errors:-?}" "${states:-?}" "${depth:-?}" "${secs:-?}" "$all_s" \
    "${dflags:-(none)}${ccflags:+ cc:$ccflags}"
  if [[ -n "$errors" && "$errors" != 0 ]]; then
    # Replay the trail: the model's printf lines ("@ ...") and the assertion.
    # shellcheck disable=SC2086
    (cd "$dir" && spin -t -k "$(ls ./*.trail | head -1)" $dflags "$model" >trail.log 2>&1) || true
    failed="$(grep -m1 'text of failed assertion' "$dir/trail.log" | sed 's/.*assertion: //')"
    echo "    counterexample: ${failed:-see trail} ($(grep -c '@ ' "$dir/trail.log" || true) steps printed)"
    if [[ "${PAYGO_MODEL_VERBOSE:-0}" == 1 || "$expect" == ok ]]; then
      grep -E '@ |assertion' "$dir/trail.log" | sed 's/^ */      /'
    fi
  fi
  if [[ "$result" != ok ]]; then
    failures=$((failures + 1))
    echo "---- $name: pan output ----" >&2
    cat "$log" >&2
  fi
done

if [[ $ran -eq 0 ]]; then
  echo "run_model.sh: no such variant: ${selected[*]}" >&2
  exit 2
fi
if [[ $failures -ne 0 ]]; then
  echo "run_model.sh: $failures of $ran variants gave an unexpected result" >&2
  exit 1
fi
echo "run_model.sh: all $ran variants as expected"
