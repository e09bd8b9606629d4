#!/usr/bin/env bash
# bench_cli_test.sh BENCH — smoke test of `paygo-bench micro`: runs it on tiny
# settings, checks the JSON schema (the ten fields plus the self-tuning ones
# and the cache's sizes and rates and rocksdb's hot_keys, all null for micro,
# and slot_mode: PAYGO's --slot-mode, null for the other counters) and the CSV columns,
# that every requested point is there with positive values (PAYGO once per --slot-mode),
# that bad arguments exit non-zero with a message, and that `micro --help` / `counting --help`
# / `query --help` / `rocksdb --help` list their flags.
set -euo pipefail

bench=${1:?usage: bench_cli_test.sh PATH/TO/paygo-bench}
# $tmp, fail, $counters, BENCH_COLUMNS, check_csv, expect_exit_2
# shellcheck source=tests/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"
# Not `printf | grep -q`: grep -q exits at its first match, and under
# pipefail the printf that then writes into a closed pipe fails the check.
has_counter() {
  local c
  for c in "${counters[@]}"; do [[ $c == "$1" ]] && return 0; done
  return 1
}
has_counter noop || fail "no noop baseline"
has_counter atomic || fail "no atomic baseline"

echo "== micro, all counters: ${counters[*]}"
"$bench" micro --duration 0.02 --repeat 1 --threads 1,2 --max-slots 4 \
  --json "$tmp/micro.json" --csv "$tmp/micro.csv" >"$tmp/stdout" 2>"$tmp/stderr" ||
  { cat "$tmp/stderr" >&2; fail "paygo-bench micro exited $?"; }
grep -q '/noop' "$tmp/stdout" || fail "no table with ratios on stdout"
grep -q '^\[1/' "$tmp/stderr" || fail "no progress lines on stderr"

python3 - "$tmp/micro.json" "${counters[@]}" <<'PY'
import json, os, sys

path, counters = sys.argv[1], sys.argv[2:]
with open(path) as f:
    doc = json.load(f)

def check(cond, msg):
    if not cond:
        sys.exit(f"FAIL: {msg}")

check(isinstance(doc, dict), "top level is not an object")
for key in ("machine", "results"):
    check(key in doc, f"missing top-level key {key!r}")
machine = doc["machine"]
for key in ("cpu_model", "cores", "kernel", "compiler", "git_commit", "hostname", "date",
            "membarrier"):
    check(key in machine, f"machine lacks {key!r}")
check(isinstance(machine["membarrier"], bool), "machine.membarrier is not a bool")
check(isinstance(machine["cores"], int) and machine["cores"] >= 1, "machine.cores")

# The JSON rows have the CSV's columns plus `phases`.
columns = os.environ["BENCH_COLUMNS"].split(",")
fields = set(columns) | {"phases"}
tuning = [c for c in columns[10:] if c != "slot_mode"] + ["phases"]
slot_default = os.environ["BENCH_SLOT_DEFAULT"]
check(doc["config"].get("slot_modes") == [slot_default], f"config slot_modes {doc['config']}")
results = doc["results"]
check(isinstance(results, list) and results, "results is empty")
seen = {}
for r in results:
    check(set(r) == fields, f"result fields {sorted(r)} != {sorted(fields)}")
    check(r["experiment"] == "micro", f"experiment {r['experiment']!r}")
    check(r["io"] is None and r["distributed_pct"] is None, "io/distributed_pct not null")
    # micro has no page cache and no hint: every self-tuning field is null,
    # and so are the cache's sizes and rates.
    for k in tuning:
        check(r[k] is None, f"micro row: {k} is {r[k]!r}, want null: {r}")
    # PAYGO: the default slot mode (no --slot-mode given); the others: null.
    want_slot = slot_default if r["counter"] == "paygo" else None
    check(r["slot_mode"] == want_slot, f"micro row: slot_mode {r['slot_mode']!r}, want "
                                       f"{want_slot!r}: {r}")
    check(isinstance(r["threads"], int) and r["threads"] >= 1, f"threads {r['threads']!r}")
    want_unit = "s" if r["workload"] == "query" else "ops/s"
    check(r["unit"] == want_unit, f"{r['workload']}: unit {r['unit']!r}, want {want_unit!r}")
    for k in ("median", "min", "max"):
        check(isinstance(r[k], (int, float)) and r[k] > 0, f"{r}: {k} not positive")
    check(r["min"] <= r["median"] <= r["max"], f"{r}: min <= median <= max violated")
    key = (r["counter"], r["workload"], r["threads"])
    check(key not in seen, f"duplicate point {key}")
    seen[key] = r

expected = set()
for c in counters:
    expected |= {(c, "hot", 1), (c, "hot", 2), (c, "single", 1)}
    expected |= {(c, "query", s) for s in (1, 2, 4)}
missing = expected - set(seen)
check(not missing, f"missing points: {sorted(missing)}")
check(not set(seen) - expected, f"unexpected points: {sorted(set(seen) - expected)}")
print(f"ok: {len(results)} points, {len(counters)} counters")
PY
check_csv "$tmp/micro.json" "$tmp/micro.csv"

echo "== one counter, one workload"
"$bench" micro --counters atomic --workloads single --duration 0.01 --repeat 2 \
  --json "$tmp/one.json" >/dev/null 2>&1 || fail "single-counter run failed"
python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"]; \
  assert [(x["counter"],x["workload"],x["threads"]) for x in r]==[("atomic","single",1)], r' \
  "$tmp/one.json" || fail "single-counter run produced the wrong points"

echo "== micro --slot-mode thread,cpu: PAYGO once per mode"
"$bench" micro --counters atomic,paygo --workloads single,query --slot-mode thread,cpu \
  --duration 0.01 --repeat 1 --max-slots 2 --json "$tmp/slots.json" --csv "$tmp/slots.csv" \
  >"$tmp/slots.out" 2>"$tmp/slots.err" ||
  { cat "$tmp/slots.err" >&2; fail "micro --slot-mode thread,cpu exited non-zero"; }
grep -q 'micro single paygo slot=thread threads=1: ' "$tmp/slots.err" ||
  fail "no progress line with slot=thread: $(cat "$tmp/slots.err")"
grep -q 'micro query atomic threads=2: ' "$tmp/slots.err" ||
  fail "the atomic progress line changed: $(cat "$tmp/slots.err")"
check_csv "$tmp/slots.json" "$tmp/slots.csv"
python3 - "$tmp/slots.json" "$tmp/slots.out" <<'PY'
import json, sys

doc = json.load(open(sys.argv[1]))
table = open(sys.argv[2]).read().split("\n")


def check(cond, msg):
    if not cond:
        sys.exit(f"FAIL: micro --slot-mode thread,cpu: {msg}")


check(doc["config"].get("slot_modes") == ["thread", "cpu"], f"config {doc['config']}")
got = sorted((r["workload"], r["threads"], r["counter"], str(r["slot_mode"]))
             for r in doc["results"])
want = sorted([(w, t, "atomic", "None") for w, t in (("single", 1), ("query", 1), ("query", 2))]
              + [(w, t, "paygo", m) for w, t in (("single", 1), ("query", 1), ("query", 2))
                 for m in ("thread", "cpu")])
check(got == want, f"points {got}, want {want}")
# Each table has a slot column first: the mode, '-' for atomic.
rows, i = [], 0
while i < len(table):
    if table[i].split()[:3] == ["slot", "threads", "counter"]:
        i += 1
        while i < len(table) and table[i].strip():
            rows.append(tuple(table[i].split()[:3]))
            i += 1
    i += 1
check(sorted(rows) == sorted((str(r["slot_mode"] or "-"), str(r["threads"]), r["counter"])
                             for r in doc["results"]), f"table rows {rows}")
print(f"ok: micro --slot-mode thread,cpu: {len(got)} points, PAYGO per mode, atomic null")
PY

echo "== --help lists the flags"
check_help() {
  local cmd=$1
  shift
  "$bench" "$cmd" --help >"$tmp/help" 2>&1 || fail "'$cmd --help' exited non-zero"
  local word
  for word in "$@"; do
    grep -q -- "$word" "$tmp/help" || fail "'$cmd --help' does not mention $word"
  done
  echo "ok: $cmd --help mentions $*"
}
check_help micro --slot-mode thread cpu spill "PAYGO rows only" "the library's" max_slots \
  --max-slots
check_help counting --slot-mode thread cpu spill "PAYGO rows of --io cache only" "the library's"
check_help counting --workload --hint --file-size --cache-size --phases --phase-seconds DRBZ PHASE \
  RRND auto central
check_help query --after --hint --zipf-seconds --distributed DRBZ
check_help counting rocksdb-lru rocksdb-hcc rocksdb-paygo NewPaygoCache
check_help rocksdb --keys --value-size --cache-size --caches --hot-keys --threads --duration \
  --repeat --dir --keep --json --csv readrandom NewLRUCache HyperClockCacheOptions NewPaygoCache \
  cache_index_and_filter_blocks Bloom
"$bench" --help >"$tmp/help" 2>&1 || fail "'paygo-bench --help' exited non-zero"
grep -q '^  rocksdb ' "$tmp/help" || fail "paygo-bench --help does not list the rocksdb subcommand"

echo "== bad arguments"
# Each case is run after valid tiny settings (a repeated option takes the
# last value), so only the bad argument can be the reason for the error.
expect_usage_error() {
  expect_exit_2 "micro $*" "$bench" micro --duration 0.01 --repeat 1 --max-slots 2 "$@"
}
expect_usage_error --counters no-such-counter
expect_usage_error --threads ""
expect_usage_error --threads 0
expect_usage_error --duration 0
expect_usage_error --duration -1
expect_usage_error --duration nan
expect_usage_error --workloads no-such-workload
expect_usage_error --repeat 0
expect_usage_error --max-slots 0
expect_usage_error --json "$tmp/no-such-dir/x.json"
expect_usage_error --no-such-flag
expect_usage_error --slot-mode foo
grep -q -- '--slot-mode: foo not in {thread,cpu,spill,all}' "$tmp/err" ||
  fail "--slot-mode foo: unclear message: $(cat "$tmp/err")"
expect_usage_error --slot-mode ""
expect_usage_error --slot-mode ,
expect_usage_error --slot-mode thread,thread
grep -q -- "--slot-mode: 'thread' given twice" "$tmp/err" ||
  fail "--slot-mode thread,thread: unclear message: $(cat "$tmp/err")"
expect_usage_error --slot-mode all,cpu
expect_usage_error --slot-mode THREAD
echo "PASS"
