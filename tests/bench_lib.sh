# tests/bench_lib.sh — sourced by bench_cli_test.sh and bench_experiments_test.sh
# (after they set $bench to paygo-bench):
#   $tmp             a scratch directory, removed at exit
#   fail MSG         print FAIL: MSG and exit 1
#   $counters        the counter names paygo-bench lists (at least two)
#   $slot_default    PAYGO's default slot mode, as `micro --help` shows it
#                    (the library's: the --slot-mode default)
#   BENCH_COLUMNS    the CSV columns in their documented order (bench/README.md),
#                    comma-separated, exported for the scripts' Python checks;
#                    the JSON rows have the same keys plus `phases`
#   check_csv JSON CSV   the CSV has those columns and the JSON's rows
#   expect_exit_2 LABEL CMD...   CMD exits 2 (bad arguments) with a message
#                    on stderr and does not crash
# shellcheck shell=bash

: "${bench:?bench_lib.sh: set bench to paygo-bench before sourcing it}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

mapfile -t counters < <("$bench" counters)
((${#counters[@]} >= 2)) || fail "'paygo-bench counters' listed ${#counters[@]} counters"
slot_default=$("$bench" micro --help | sed -n 's/.*--slot-mode[^ ]* TEXT:{[^}]*}=\([a-z]*\).*/\1/p')
[[ $slot_default =~ ^(thread|cpu|spill)$ ]] ||
  fail "micro --help shows no --slot-mode default (got '$slot_default')"
export BENCH_SLOT_DEFAULT=$slot_default

export BENCH_COLUMNS="experiment,workload,counter,io,threads,distributed_pct,median,min,max,unit,\
hint,after,promotions,demotions,distributed_pages,promoted_pages,first_promotion_s,\
promoted_read_share,cache_bytes,file_bytes,hits,misses,evictions,readers_during_drop,hot_keys,\
slot_mode,counter_table_bytes"

# The header, then one row per result with as many fields and the same values
# (null is an empty field, strings equal, numbers within 1e-6).
check_csv() {
  python3 - "$1" "$2" <<'PY' || exit 1
import csv, json, os, sys

json_path, csv_path = sys.argv[1], sys.argv[2]
columns = os.environ["BENCH_COLUMNS"].split(",")
name = os.path.basename(csv_path)


def check(cond, msg):
    if not cond:
        sys.exit(f"FAIL: {name}: {msg}")


with open(json_path) as f:
    results = json.load(f)["results"]
with open(csv_path, newline="") as f:
    table = list(csv.reader(f))
check(table and table[0] == columns, f"CSV header {table[:1]}, want {columns}")
rows = table[1:]
check(len(rows) == len(results), f"CSV has {len(rows)} rows, JSON {len(results)}")
for i, (row, r) in enumerate(zip(rows, results)):
    check(len(row) == len(columns), f"CSV row {i + 1} has {len(row)} fields: {row}")
    for k, v in zip(columns, row):
        if r[k] is None:
            check(v == "", f"CSV row {i + 1}: {k} = {v!r}, JSON null")
        elif isinstance(r[k], str):
            check(v == r[k], f"CSV row {i + 1}: {k} = {v!r}, JSON {r[k]!r}")
        else:
            check(v != "" and abs(float(v) - r[k]) <= 1e-6 * abs(r[k]),
                  f"CSV row {i + 1}: {k} = {v!r}, JSON {r[k]}")
print(f"ok: {name}: the {len(columns)} columns, {len(rows)} rows equal to the JSON")
PY
}

expect_exit_2() {
  local label=$1
  shift
  local rc=0
  "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  ((rc == 2)) || fail "'$label' exited $rc, want 2 (bad arguments)"
  [[ -s $tmp/err ]] || fail "'$label' printed no message on stderr"
  if grep -q 'terminate called\|Aborted' "$tmp/err"; then fail "'$label' crashed"; fi
  echo "ok: $label -> exit $rc: $(head -n1 "$tmp/err")"
}
