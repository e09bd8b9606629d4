#!/usr/bin/env bash
# bench_experiments_test.sh BENCH PLOT — smoke test of `paygo-bench counting`,
# `paygo-bench query` and `paygo-bench rocksdb` and of tools/plot:
#   * bad arguments (old and self-tuning flags: --hint, --slot-mode, --after, --phases,
#     --phase-seconds, --file-size, --zipf-seconds; rocksdb's --caches,
#     --hot-keys, --keys, --value-size, --cache-size) exit 2 with a message;
#   * tiny runs: counting with every io over DRBL/DRBM/DRBH; counting DRBZ
#     and PHASE with every hint; counting RRND with every io (a small
#     --cache-size, and the default sizes), DRBZ and RRND over a cache
#     smaller than their file; query with both workloads; query --after
#     DRBZ; rocksdb with every cache, all keys and 16 hot keys, 1 and 2
#     threads, over a 2,000-key database; counting DRBH with --slot-mode
#     thread,cpu (PAYGO once per hint and slot mode). Each writes JSON whose
#     rows have the ten result fields plus the self-tuning ones, the cache's
#     sizes and rates, hot_keys and slot_mode (null where they do not apply:
#     slot_mode is PAYGO's, io=cache counting rows only), every requested
#     point, positive values, and CSV with the documented columns, equal to
#     the JSON;
#   * rocksdb: its config (the database's size, each cache's metadata), its
#     scratch directory removed (and kept with --keep);
#   * DRBZ and PHASE rows have sensible self-tuning values (a phases array
#     of --phases entries per repeat, PAYGO's DRBZ promoted_read_share);
#   * cache_bytes / file_bytes are the sizes asked for (or the defaults),
#     null cache_bytes for pread; hits/misses/evictions per second are null
#     for pread, add up to the reads for the caches, and RRND and the small
#     DRBZ miss;
#   * the ratios printed on stdout (/noop, /atomic, /pread, /hot; rocksdb:
#     /hcc, /lru) and the promo/dist columns equal those of the medians in
#     the JSON;
#   * tools/plot turns the JSON into the expected PNG files (also JSON
#     without the self-tuning fields, and rows with fields it does not know;
#     --suffix in the names), labels PAYGO per hint and slot mode, and
#     refuses a non-bench file.
# About 30 s on a 2-core machine.
set -euo pipefail

bench=${1:?usage: bench_experiments_test.sh PATH/TO/paygo-bench PATH/TO/tools/plot}
plot=${2:?usage: bench_experiments_test.sh PATH/TO/paygo-bench PATH/TO/tools/plot}
# $tmp, fail, $counters, BENCH_COLUMNS, check_csv, expect_exit_2
# shellcheck source=tests/bench_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/bench_lib.sh"

echo "== bad arguments"
# Valid tiny settings first (a repeated option takes the last value), so
# only the bad argument can be the reason for the error.
expect_usage_error() {
  local cmd=$1
  shift
  local base=()
  case $cmd in
  counting) base=(--duration 0.01 --repeat 1 --threads 1 --workload DRBH --io pread) ;;
  query) base=(--file-size 64K --distributed 0 --touch-threads 1 --repeat 1 --counters noop) ;;
  rocksdb) base=(--keys 100 --duration 0.01 --repeat 1 --threads 1 --caches lru) ;;
  esac
  # Scratch files under $tmp: removed by the trap even if a run is killed.
  base+=(--dir "$tmp")
  expect_exit_2 "$cmd $*" timeout 60 "$bench" "$cmd" "${base[@]}" "$@"
}
expect_usage_error counting --counters no-such-counter
expect_usage_error counting --io no-such-io
expect_usage_error counting --io cache,cache
expect_usage_error counting --workload DRBX
expect_usage_error counting --threads ""
expect_usage_error counting --threads 0
expect_usage_error counting --threads 1,x
expect_usage_error counting --threads 3-1
expect_usage_error counting --duration 0
expect_usage_error counting --duration -1
expect_usage_error counting --repeat 0
expect_usage_error counting --json "$tmp/no-such-dir/x.json"
expect_usage_error counting --hint no-such-hint
expect_usage_error counting --hint ""
expect_usage_error counting --hint auto,auto
expect_usage_error counting --hint ,
expect_usage_error counting --io cache --slot-mode foo
grep -q -- '--slot-mode: foo not in {thread,cpu,spill,all}' "$tmp/err" ||
  fail "counting --slot-mode foo: unclear message: $(cat "$tmp/err")"
expect_usage_error counting --io cache --slot-mode ""
expect_usage_error counting --io cache --slot-mode cpu,cpu
expect_usage_error counting --io cache --slot-mode thread,all
expect_usage_error counting --workload PHASE --io cache --phases 0
expect_usage_error counting --workload PHASE --io cache --phases 1001
expect_usage_error counting --workload PHASE --io cache --phases -1
expect_usage_error counting --workload PHASE --io cache --phases x
expect_usage_error counting --workload PHASE --io cache --phase-seconds 0
expect_usage_error counting --workload PHASE --io cache --phase-seconds nan
expect_usage_error counting --workload DRBZ --file-size 0
expect_usage_error counting --workload DRBZ --file-size ""
expect_usage_error counting --workload DRBZ --file-size lots
expect_usage_error counting --workload DRBZ --file-size 12Q
expect_usage_error counting --workload DRBZ --file-size 1K
expect_usage_error counting --workload DRBZ --file-size 17000G
expect_usage_error counting --workload DRBZ --file-size 5000
expect_usage_error counting --workload RRND --file-size 5000
expect_usage_error counting --workload RRND --file-size 1K
expect_usage_error counting --workload RRND --file-size ""
expect_usage_error counting --workload RRND --cache-size 4K
expect_usage_error counting --workload RRND --cache-size 64K --threads 1-64
expect_usage_error counting --workload RRND --cache-size 65537
expect_usage_error counting --workload RRND --cache-size 0
expect_usage_error counting --workload RRND --cache-size ""
expect_usage_error counting --workload RRND --cache-size lots
expect_usage_error counting --workload RRND --cache-size 99999999999G
expect_usage_error counting --cache-size 4K
expect_usage_error counting --workload DRBZ --io rocksdb-lru
expect_usage_error query --counters no-such-counter
expect_usage_error query --file-size ""
expect_usage_error query --file-size 0
expect_usage_error query --file-size -1
expect_usage_error query --file-size 12Q
expect_usage_error query --file-size lots
expect_usage_error query --file-size 99999999999G
expect_usage_error query --distributed 101
expect_usage_error query --distributed ""
expect_usage_error query --distributed 0,0
expect_usage_error query --distributed 5x
expect_usage_error query --touch-threads 0
expect_usage_error query --touch-threads ,
expect_usage_error query --workloads no-such-workload
expect_usage_error query --repeat 0
expect_usage_error query --after DRBX
expect_usage_error query --after drbz
expect_usage_error query --after DRBZ,DRBZ
expect_usage_error query --after DRBZ --hint no-such-hint
expect_usage_error query --after DRBZ --hint ""
expect_usage_error query --after DRBZ --hint hot,hot
expect_usage_error query --after DRBZ --zipf-seconds 0
expect_usage_error query --after DRBZ --zipf-seconds nan
expect_usage_error query --workloads drop-under-misses --drops 0
expect_usage_error query --workloads drop-under-misses --after DRBZ
expect_usage_error rocksdb --caches no-such-cache
expect_usage_error rocksdb --caches rocksdb-lru
expect_usage_error rocksdb --caches lru,lru
expect_usage_error rocksdb --caches ""
expect_usage_error rocksdb --caches all,lru
expect_usage_error rocksdb --hot-keys 101
expect_usage_error rocksdb --hot-keys 16,16
expect_usage_error rocksdb --hot-keys x
expect_usage_error rocksdb --hot-keys -1
expect_usage_error rocksdb --keys 0
expect_usage_error rocksdb --keys 1000000001
expect_usage_error rocksdb --value-size 0
expect_usage_error rocksdb --value-size 2M
expect_usage_error rocksdb --cache-size 0
expect_usage_error rocksdb --cache-size lots
expect_usage_error rocksdb --cache-size 99999999999G
expect_usage_error rocksdb --threads 0
expect_usage_error rocksdb --duration 0
expect_usage_error rocksdb --repeat 0
expect_usage_error rocksdb --json "$tmp/no-such-dir/x.json"
expect_usage_error rocksdb --dir "$tmp/no-such-dir"

echo "== counting: every io, all counters: ${counters[*]}"
ios=cache,pread,rocksdb-lru,rocksdb-hcc,rocksdb-paygo
timeout 120 "$bench" counting --io "$ios" --duration 0.02 --repeat 1 --threads 1,2 --dir "$tmp" \
  --json "$tmp/counting.json" --csv "$tmp/counting.csv" >"$tmp/counting.out" 2>"$tmp/counting.err" ||
  { cat "$tmp/counting.err" >&2; fail "paygo-bench counting exited non-zero"; }

echo "== counting: DRBZ and PHASE, every hint"
timeout 120 "$bench" counting --workload DRBZ,PHASE --io cache,pread --counters atomic,paygo \
  --hint all --threads 1,2 --duration 0.02 --repeat 1 --file-size 1M --phases 3 \
  --phase-seconds 0.02 --dir "$tmp" --json "$tmp/tuning.json" --csv "$tmp/tuning.csv" \
  >"$tmp/tuning.out" 2>"$tmp/tuning.err" ||
  { cat "$tmp/tuning.err" >&2; fail "paygo-bench counting DRBZ,PHASE exited non-zero"; }

echo "== counting: RRND, every io, a 128K cache (the file: 4x, 512K)"
timeout 120 "$bench" counting --workload RRND --io "$ios" --counters atomic,paygo --hint auto,hot \
  --threads 1,2 --duration 0.05 --repeat 1 --cache-size 128K --dir "$tmp" \
  --json "$tmp/rrnd.json" --csv "$tmp/rrnd.csv" >"$tmp/rrnd.out" 2>"$tmp/rrnd.err" ||
  { cat "$tmp/rrnd.err" >&2; fail "paygo-bench counting RRND exited non-zero"; }

echo "== counting: RRND at the default sizes (64M cache, 256M file)"
timeout 120 "$bench" counting --workload RRND --io cache,pread --counters atomic --threads 1 \
  --duration 0.02 --repeat 1 --dir "$tmp" \
  --json "$tmp/rrnd-default.json" --csv "$tmp/rrnd-default.csv" >"$tmp/rrnd-default.out" \
  2>"$tmp/rrnd-default.err" ||
  { cat "$tmp/rrnd-default.err" >&2; fail "paygo-bench counting RRND (defaults) exited non-zero"; }

echo "== counting: DRBZ and RRND over a 256K cache, a 1M file"
timeout 120 "$bench" counting --workload DRBZ,RRND --io cache,pread --counters atomic,paygo \
  --hint auto --threads 1 --duration 0.05 --repeat 1 --file-size 1M --cache-size 256K --dir "$tmp" \
  --json "$tmp/small.json" --csv "$tmp/small.csv" >"$tmp/small.out" 2>"$tmp/small.err" ||
  { cat "$tmp/small.err" >&2; fail "paygo-bench counting DRBZ,RRND --cache-size exited non-zero"; }

echo "== counting: DRBH with --slot-mode thread,cpu (PAYGO per hint and mode)"
timeout 120 "$bench" counting --workload DRBH --io cache,pread --counters noop,atomic,paygo \
  --hint auto,hot --slot-mode thread,cpu --threads 1,2 --duration 0.02 --repeat 1 --dir "$tmp" \
  --json "$tmp/slots.json" --csv "$tmp/slots.csv" >"$tmp/slots.out" 2>"$tmp/slots.err" ||
  { cat "$tmp/slots.err" >&2; fail "paygo-bench counting --slot-mode thread,cpu exited non-zero"; }
grep -q 'counting DRBH io=cache paygo hint=auto slot=cpu threads=2: ' "$tmp/slots.err" ||
  fail "no progress line with slot=cpu: $(cat "$tmp/slots.err")"
grep -q 'counting DRBH io=cache atomic hint=hot threads=2: ' "$tmp/slots.err" ||
  fail "the atomic progress line changed: $(cat "$tmp/slots.err")"

echo "== query: drop and reclaim-per-page"
timeout 120 "$bench" query --file-size 256K --distributed 0,100 --touch-threads 1 --repeat 1 --dir "$tmp" \
  --json "$tmp/query.json" --csv "$tmp/query.csv" >"$tmp/query.out" 2>"$tmp/query.err" ||
  { cat "$tmp/query.err" >&2; fail "paygo-bench query exited non-zero"; }

echo "== query --after DRBZ"
timeout 120 "$bench" query --after DRBZ --hint auto,hot --zipf-seconds 0.02 --file-size 256K \
  --touch-threads 2 --repeat 1 --dir "$tmp" \
  --json "$tmp/after.json" --csv "$tmp/after.csv" >"$tmp/after.out" 2>"$tmp/after.err" ||
  { cat "$tmp/after.err" >&2; fail "paygo-bench query --after DRBZ exited non-zero"; }

echo "== query drop-under-misses"
timeout 120 "$bench" query --workloads drop-under-misses --file-size 256K --touch-threads 1-2 \
  --drops 3 --counters atomic,paygo --repeat 1 --dir "$tmp" \
  --json "$tmp/misses.json" --csv "$tmp/misses.csv" >"$tmp/misses.out" 2>"$tmp/misses.err" ||
  { cat "$tmp/misses.err" >&2; fail "paygo-bench query drop-under-misses exited non-zero"; }

echo "== rocksdb: every cache, all keys and 16 hot keys, 2,000 keys"
mkdir "$tmp/db-scratch"
timeout 120 "$bench" rocksdb --keys 2000 --caches all --hot-keys 0,16 --threads 1,2 \
  --duration 0.02 --repeat 2 --dir "$tmp/db-scratch" \
  --json "$tmp/rocksdb.json" --csv "$tmp/rocksdb.csv" >"$tmp/rocksdb.out" 2>"$tmp/rocksdb.err" ||
  { cat "$tmp/rocksdb.err" >&2; fail "paygo-bench rocksdb exited non-zero"; }
[[ -z $(ls -A "$tmp/db-scratch") ]] || fail "rocksdb left its scratch directory: $(ls -A "$tmp/db-scratch")"
grep -q '^rocksdb: block-cache metadata' "$tmp/rocksdb.out" || fail "rocksdb printed no metadata"
echo "ok: rocksdb removed its scratch directory"

echo "== rocksdb --keep"
mkdir "$tmp/db-keep"
timeout 60 "$bench" rocksdb --keys 100 --value-size 10 --caches paygo --threads 1 --duration 0.01 \
  --repeat 1 --dir "$tmp/db-keep" --keep >"$tmp/keep.out" 2>"$tmp/keep.err" ||
  { cat "$tmp/keep.err" >&2; fail "paygo-bench rocksdb --keep exited non-zero"; }
kept=$(sed -n 's/^rocksdb: kept the database in //p' "$tmp/keep.err")
[[ -n $kept && $kept == "$tmp/db-keep/"* && -s $kept/CURRENT ]] ||
  fail "rocksdb --keep: no database kept (stderr: $(cat "$tmp/keep.err"))"
echo "ok: rocksdb --keep kept $kept"

for name in counting tuning rrnd rrnd-default small query after misses rocksdb slots; do
  check_csv "$tmp/$name.json" "$tmp/$name.csv"
done

python3 - "$tmp" "${counters[@]}" <<'PY'
import json, math, os, re, sys

tmp, counters = sys.argv[1], sys.argv[2:]
# The JSON rows have the CSV's columns plus `phases`.
COLUMNS = os.environ["BENCH_COLUMNS"].split(",")
FIELDS = set(COLUMNS) | {"phases"}
SIZES = ["cache_bytes", "file_bytes", "hits", "misses", "evictions"]
SLOT_DEFAULT = os.environ["BENCH_SLOT_DEFAULT"]  # PAYGO's slot mode without --slot-mode
COUNTS = ["promotions", "demotions", "distributed_pages", "promoted_pages"]
TUNED = "paygo"  # the one counter that tunes itself (runs once per --hint)


def check(cond, msg):
    if not cond:
        sys.exit(f"FAIL: {msg}")


def is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def load(name, experiment):
    with open(f"{tmp}/{name}.json") as f:
        doc = json.load(f)
    for key in ("machine", "config", "results"):
        check(key in doc, f"{name}: no top-level {key!r}")
    for key in ("cpu_model", "cores", "git_commit"):
        check(key in doc["machine"], f"{name}: machine lacks {key!r}")
    results = doc["results"]
    check(isinstance(results, list) and results, f"{name}: no results")
    for r in results:
        check(set(r) == FIELDS, f"{name}: fields {sorted(r)}, want {sorted(FIELDS)}")
        check(r["experiment"] == experiment, f"{name}: experiment {r['experiment']!r}")
        check(isinstance(r["threads"], int) and r["threads"] >= 1, f"{name}: threads {r}")
        for k in ("median", "min", "max"):
            check(is_num(r[k]) and r[k] > 0, f"{name}: {k} not positive: {r}")
        check(r["min"] <= r["median"] <= r["max"], f"{name}: min <= median <= max: {r}")
        check_tuning(name, r)
    return doc["config"], results


def check_tuning(name, r):
    """The self-tuning fields: which rows have which, and their ranges."""
    where = f"{name}: {r['workload']} {r['counter']} io={r['io']} threads={r['threads']}"
    if r["experiment"] == "rocksdb":
        # The cache's capacity, the database's size and the hot keys; nothing else.
        for k in COLUMNS[10:] + ["phases"]:
            if k not in ("cache_bytes", "file_bytes", "hot_keys"):
                check(r[k] is None, f"{where}: {k} is {r[k]!r}, want null (rocksdb)")
        for k in ("cache_bytes", "file_bytes", "hot_keys"):
            check(isinstance(r[k], int) and not isinstance(r[k], bool) and r[k] >= 0,
                  f"{where}: {k} {r[k]!r}, want an int")
        return
    check(r["hot_keys"] is None, f"{where}: hot_keys {r['hot_keys']!r} outside rocksdb")
    # slot_mode: PAYGO's in the page cache of counting (the default unless a
    # run asks for others: checked there); null elsewhere (query too).
    if r["experiment"] == "counting" and r["io"] == "cache" and r["counter"] == TUNED:
        check(r["slot_mode"] in ("thread", "cpu", "spill"), f"{where}: slot_mode {r['slot_mode']!r}")
        if name != "slots":
            check(r["slot_mode"] == SLOT_DEFAULT,
                  f"{where}: slot_mode {r['slot_mode']!r}, want the default {SLOT_DEFAULT!r}")
    else:
        check(r["slot_mode"] is None, f"{where}: slot_mode {r['slot_mode']!r}, want null")
    # counter_table_bytes: the counter's tables after a page-cache run.
    if r["io"] == "cache" and r["experiment"] == "counting" or r["after"] is not None:
        check(is_num(r["counter_table_bytes"]) and r["counter_table_bytes"] >= 0,
              f"{where}: counter_table_bytes {r['counter_table_bytes']!r}")
    if r["experiment"] == "query" and r["workload"] == "drop-under-misses":
        # Automatic counting, the readers' ratio; nothing else.
        for k in COLUMNS[10:] + ["phases"]:
            if k not in ("hint", "readers_during_drop"):
                check(r[k] is None, f"{where}: {k} is {r[k]!r}, want null (drop-under-misses)")
        return
    if r["experiment"] == "query" and r["after"] is None:
        # The --distributed sweep: no hint, no self-tuning fields.
        for k in COLUMNS[10:] + ["phases"]:
            check(r[k] is None, f"{where}: {k} is {r[k]!r}, want null (query sweep)")
        return
    cache = r["io"] == "cache"
    tuned = cache and r["counter"] == TUNED
    if cache:
        want = ("auto", "hot", "central") if tuned else ("hot",)
        check(r["hint"] in want, f"{where}: hint {r['hint']!r}, want one of {want}")
        # Pages in Hot ranges (advised counters) or distributed (PAYGO).
        check(is_num(r["distributed_pages"]) and r["distributed_pages"] >= 0,
              f"{where}: distributed_pages {r['distributed_pages']!r}")
    else:
        check(r["hint"] is None and r["distributed_pages"] is None,
              f"{where}: hint/distributed_pages not null: {r}")
    if tuned:
        for k in COUNTS:
            check(is_num(r[k]) and r[k] >= 0, f"{where}: {k} {r[k]!r}, want a count")
        check(r["promoted_pages"] <= r["distributed_pages"],
              f"{where}: promoted_pages > distributed_pages: {r}")
        if r["hint"] == "auto":  # no advice: every distributed page was promoted
            check(r["promoted_pages"] == r["distributed_pages"],
                  f"{where}: auto: promoted_pages != distributed_pages: {r}")
        fp = r["first_promotion_s"]
        check(fp is None or (is_num(fp) and fp >= 0), f"{where}: first_promotion_s {fp!r}")
        if r["experiment"] == "counting" and r["promotions"] == 0:
            check(fp is None, f"{where}: first_promotion_s {fp} without a promotion")
    else:
        for k in ("promotions", "demotions", "promoted_pages", "first_promotion_s"):
            check(r[k] is None, f"{where}: {k} is {r[k]!r}, want null (not self-tuning)")
    share = r["promoted_read_share"]
    if r["experiment"] == "counting" and r["workload"] == "DRBZ" and tuned:
        check(is_num(share) and 0 <= share <= 1 + 1e-9, f"{where}: promoted_read_share {share!r}")
    elif r["experiment"] == "counting" or not tuned:
        check(share is None, f"{where}: promoted_read_share {share!r}, want null")
    if r["experiment"] == "counting":
        check(r["after"] is None, f"{where}: after {r['after']!r}")
    if r["workload"] == "PHASE":
        check(isinstance(r["phases"], list), f"{where}: phases {r['phases']!r}, want a list")
    else:
        check(r["phases"] is None, f"{where}: phases {r['phases']!r}, want null")
    check_sizes(where, r)


def check_sizes(where, r):
    """cache_bytes, file_bytes and the per-second rates of a row."""
    if r["experiment"] != "counting":  # micro and query rows have none
        for k in SIZES:
            check(r[k] is None, f"{where}: {k} is {r[k]!r}, want null (not counting)")
        return
    fb = r["file_bytes"]
    check(isinstance(fb, int) and fb > 0 and fb % 4096 == 0, f"{where}: file_bytes {fb!r}")
    if r["io"] == "pread":  # the OS page cache: no size of ours, no counts
        for k in ("cache_bytes", "hits", "misses", "evictions"):
            check(r[k] is None, f"{where}: {k} is {r[k]!r}, want null (pread)")
        return
    cb = r["cache_bytes"]
    check(isinstance(cb, int) and cb > 0 and cb % 4096 == 0, f"{where}: cache_bytes {cb!r}")
    for k in ("hits", "misses"):
        check(is_num(r[k]) and r[k] >= 0, f"{where}: {k} {r[k]!r}, want a rate")
    if r["io"] == "cache":
        check(is_num(r["evictions"]) and r["evictions"] >= 0,
              f"{where}: evictions {r['evictions']!r}")
    else:  # RocksDB: its own Lookup results, no eviction count
        check(r["evictions"] is None, f"{where}: evictions {r['evictions']!r}")
    # Every timed read is a hit or a miss (one repeat: the same reads and
    # seconds as the median).
    total = r["hits"] + r["misses"]
    check(abs(total - r["median"]) <= 0.01 * r["median"],
          f"{where}: hits + misses = {total:.6g}/s, reads {r['median']:.6g}/s")
    if r["workload"] in ("DRBL", "DRBM", "DRBH"):  # the cache holds the file
        check(r["misses"] == 0, f"{where}: misses {r['misses']}, want 0")
        if r["io"] == "cache":
            check(r["evictions"] == 0, f"{where}: evictions {r['evictions']}")
            check(cb == 4096 * (r["threads"] + 16), f"{where}: cache_bytes {cb}, want the default")
        else:
            check(cb == 64 << 20, f"{where}: RocksDB cache_bytes {cb}, want 64M")
    if r["workload"] in ("DRBL", "DRBH"):
        check(fb == 4096, f"{where}: file_bytes {fb}, want 4096")


def points(results, keys):
    seen = {}
    for r in results:
        k = tuple(r[x] for x in keys)
        check(k not in seen, f"duplicate point {k}")
        seen[k] = r
    return seen


def hints_of(counter, hints):
    return hints if counter == TUNED else ["hot"]


# ---- counting: every (workload, threads, counter/io, hint) ----
cconf, counting = load("counting", "counting")
for r in counting:
    check(r["unit"] == "ops/s" and r["distributed_pct"] is None, f"counting row {r}")
got = points(counting, ("workload", "threads", "counter", "io", "hint"))
want = set()
for w in ("DRBL", "DRBM", "DRBH"):
    for t in (1, 2):
        want |= {(w, t, c, "cache", h) for c in counters for h in hints_of(c, ["auto"])}
        want |= {(w, t, "kernel", "pread", None), (w, t, "rocksdb-lru", "rocksdb-lru", None),
                 (w, t, "rocksdb-hcc", "rocksdb-hcc", None),
                 (w, t, "rocksdb-paygo", "rocksdb-paygo", None)}
check(set(got) == want, f"counting points: missing {sorted(want - set(got), key=str)}, "
                        f"unexpected {sorted(set(got) - want, key=str)}")

# ---- counting --slot-mode thread,cpu: PAYGO per (hint, mode), the others once ----
sconf_slots, slots = load("slots", "counting")
check(sconf_slots.get("slot_modes") == ["thread", "cpu"], f"slots: config {sconf_slots}")
check(cconf.get("slot_modes") == [SLOT_DEFAULT], f"counting: config slot_modes {cconf}")
got = points(slots, ("workload", "threads", "counter", "io", "hint", "slot_mode"))
want = set()
for t in (1, 2):
    want |= {("DRBH", t, c, "cache", "hot", None) for c in ("noop", "atomic")}
    want |= {("DRBH", t, "paygo", "cache", h, m) for h in ("auto", "hot") for m in ("thread", "cpu")}
    want.add(("DRBH", t, "kernel", "pread", None, None))
check(set(got) == want, f"slots points: missing {sorted(want - set(got), key=str)}, "
                        f"unexpected {sorted(set(got) - want, key=str)}")

# ---- counting DRBZ and PHASE: --hint all, counters atomic and paygo ----
tconf, tuning = load("tuning", "counting")
check(tconf.get("file_size_bytes") == 1 << 20, f"tuning: config file_size_bytes {tconf}")
check(tconf.get("hints") == ["auto", "hot", "central"], f"tuning: config hints {tconf}")
got = points(tuning, ("workload", "threads", "counter", "io", "hint"))
want = set()
for t in (1, 2):
    for w in ("DRBZ", "PHASE"):
        want |= {(w, t, c, "cache", h) for c in ("atomic", "paygo")
                 for h in hints_of(c, ["auto", "hot", "central"])}
    want.add(("DRBZ", t, "kernel", "pread", None))  # PHASE: io cache only
check(set(got) == want, f"tuning points: missing {sorted(want - set(got), key=str)}, "
                        f"unexpected {sorted(set(got) - want, key=str)}")
blocks = (1 << 20) // 4096
for r in tuning:
    where = f"{r['workload']} {r['counter']} hint={r['hint']} threads={r['threads']}"
    if r["workload"] == "DRBZ" and r["io"] == "cache":
        # The whole file is cached; advised Hot, every page is in a Hot range.
        if r["hint"] == "hot":
            check(r["distributed_pages"] == blocks, f"{where}: distributed_pages {r}")
        if r["hint"] == "central":
            check(r["distributed_pages"] == 0 and r["promotions"] == 0,
                  f"{where}: central pages were distributed: {r}")
    if r["workload"] != "PHASE":
        continue
    phases = r["phases"]
    check(len(phases) == 3, f"{where}: {len(phases)} phases, want 3 (--phases 3, --repeat 1)")
    keys = {"phase", "workload", "start_s", "promotions", "demotions", "promoted_after_ms",
            "demoted_after_ms", "demoted_after_sweeps", "hot_block_distributed_at_end", "repeat"}
    for i, ph in enumerate(phases):
        check(isinstance(ph, dict) and set(ph) == keys, f"{where}: phase keys {sorted(ph)}")
        check(ph["phase"] == i and ph["repeat"] == 0, f"{where}: phase {i}: {ph}")
        check(ph["workload"] == ("DRBH" if i % 2 == 0 else "DRBM"), f"{where}: phase {i}: {ph}")
        check(abs(ph["start_s"] - 0.02 * i) < 1e-9, f"{where}: phase {i} start_s {ph['start_s']}")
        for k in ("promotions", "demotions"):
            check(isinstance(ph[k], int) and ph[k] >= 0, f"{where}: phase {i} {k} {ph[k]!r}")
        for k in ("promoted_after_ms", "demoted_after_ms", "demoted_after_sweeps"):
            v = ph[k]
            # Generous bound: the monitor may run late under a sanitizer.
            check(v is None or (is_num(v) and 0 <= v <= 20 + 1000), f"{where}: phase {i} {k} {v!r}")
        check(isinstance(ph["hot_block_distributed_at_end"], bool), f"{where}: phase {i}: {ph}")
        if ph["promoted_after_ms"] is not None:
            check(ph["promotions"] >= 1, f"{where}: phase {i} promoted without a promotion: {ph}")
        if ph["demoted_after_ms"] is not None:
            check(ph["demotions"] >= 1 and ph["demoted_after_sweeps"] is not None,
                  f"{where}: phase {i} demoted without a demotion: {ph}")
        if r["hint"] == "hot":  # advised Hot (atomic, paygo hot): always distributed
            check(ph["hot_block_distributed_at_end"] and ph["promotions"] == 0
                  and ph["demotions"] == 0, f"{where}: phase {i}: {ph}")
        if r["hint"] == "central":  # pinned central
            check(not ph["hot_block_distributed_at_end"] and ph["promotions"] == 0,
                  f"{where}: phase {i}: {ph}")
    if r["counter"] == TUNED:
        for k in ("promotions", "demotions"):
            check(sum(ph[k] for ph in phases) <= r[k],
                  f"{where}: the phases' {k} add up to more than the row's {r[k]}")

# ---- counting RRND: every io, a 128K cache, the file 4x ----
rconf, rrnd = load("rrnd", "counting")
check(rconf.get("cache_size_bytes") == 128 << 10 and rconf.get("rrnd_file_size_bytes") == 512 << 10
      and rconf.get("file_size_bytes") is None, f"rrnd: config {rconf}")
got = points(rrnd, ("workload", "threads", "counter", "io", "hint"))
want = set()
for t in (1, 2):
    want |= {("RRND", t, c, "cache", h) for c in ("atomic", "paygo")
             for h in hints_of(c, ["auto", "hot"])}
    want |= {("RRND", t, "kernel", "pread", None), ("RRND", t, "rocksdb-lru", "rocksdb-lru", None),
             ("RRND", t, "rocksdb-hcc", "rocksdb-hcc", None),
             ("RRND", t, "rocksdb-paygo", "rocksdb-paygo", None)}
check(set(got) == want, f"rrnd points: missing {sorted(want - set(got), key=str)}, "
                        f"unexpected {sorted(set(got) - want, key=str)}")
for r in rrnd:
    where = f"rrnd: {r['counter']} io={r['io']} hint={r['hint']} threads={r['threads']}"
    check(r["file_bytes"] == 512 << 10, f"{where}: file_bytes {r['file_bytes']}")
    if r["io"] == "pread":
        continue
    check(r["cache_bytes"] == 128 << 10, f"{where}: cache_bytes {r['cache_bytes']}")
    # A file four times the cache, read uniformly: mostly misses.
    check(r["misses"] > 0, f"{where}: no misses: {r}")
    check(r["misses"] > r["hits"], f"{where}: more hits than misses: {r}")
    if r["io"] == "cache":
        check(r["evictions"] > 0, f"{where}: no evictions: {r}")
    if r["hint"] == "hot":  # the whole file advised Hot: every cached page is in the range
        check(r["distributed_pages"] > 0, f"{where}: distributed_pages {r['distributed_pages']}")

# ---- RRND at the default sizes ----
dconf, rdef = load("rrnd-default", "counting")
check(dconf.get("cache_size_bytes") is None and dconf.get("rrnd_file_size_bytes") == 256 << 20,
      f"rrnd-default: config {dconf}")
check({(r["counter"], r["io"]) for r in rdef} == {("atomic", "cache"), ("kernel", "pread")},
      f"rrnd-default: points {[(r['counter'], r['io']) for r in rdef]}")
for r in rdef:
    check(r["file_bytes"] == 256 << 20, f"rrnd-default: file_bytes {r}")
    check(r["cache_bytes"] == (None if r["io"] == "pread" else 64 << 20),
          f"rrnd-default: cache_bytes {r}")

# ---- DRBZ and RRND over a 256K cache, a 1M file (one file for both) ----
sconf, small = load("small", "counting")
check(sconf.get("cache_size_bytes") == 256 << 10 and sconf.get("file_size_bytes") == 1 << 20
      and sconf.get("rrnd_file_size_bytes") == 1 << 20, f"small: config {sconf}")
check(len(small) == 2 * 3, f"small: {len(small)} points, want 6")
for r in small:
    where = f"small: {r['workload']} {r['counter']} io={r['io']} hint={r['hint']}"
    check(r["file_bytes"] == 1 << 20, f"{where}: file_bytes {r['file_bytes']}")
    if r["io"] == "cache":
        check(r["cache_bytes"] == 256 << 10, f"{where}: cache_bytes {r['cache_bytes']}")
        check(r["misses"] > 0 and r["evictions"] > 0, f"{where}: no misses: {r}")

# ---- query: every (workload, threads, distributed, counter) ----
_, query = load("query", "query")
for r in query:
    check(r["unit"] == "s" and r["io"] == "cache", f"query row {r}")
got = points(query, ("workload", "threads", "distributed_pct", "counter"))
want = {(w, 1, d, c) for w in ("drop", "reclaim-per-page") for d in (0, 100) for c in counters}
check(set(got) == want, f"query points: missing {sorted(want - set(got))}, "
                        f"unexpected {sorted(set(got) - want)}")

# ---- query --after DRBZ: every (workload, counter, hint) at 2 touch threads ----
aconf, after = load("after", "query")
check(aconf.get("after") == "DRBZ" and aconf.get("hints") == ["auto", "hot"],
      f"after: config {aconf}")
pages = (256 << 10) // 4096
for r in after:
    check(r["unit"] == "s" and r["io"] == "cache", f"after row {r}")
    check(r["after"] == "DRBZ" and r["distributed_pct"] is None, f"after row {r}")
    if r["hint"] == "hot":  # the whole file advised Hot
        check(r["distributed_pages"] == pages, f"after row: distributed_pages {r}")
got = points(after, ("workload", "threads", "counter", "hint"))
want = {(w, 2, c, h) for w in ("drop", "reclaim-per-page") for c in counters
        for h in hints_of(c, ["auto", "hot"])}
check(set(got) == want, f"after points: missing {sorted(want - set(got))}, "
                        f"unexpected {sorted(set(got) - want)}")

for r in query + after:
    check(r["readers_during_drop"] is None, f"readers_during_drop outside drop-under-misses: {r}")

# ---- query drop-under-misses: 3 drops per point, the readers' ratio ----
mconf, misses = load("misses", "query")
check(mconf.get("drops") == 3, f"misses: config {mconf}")
for r in misses:
    where = f"misses {r['counter']} {r['threads']}"
    check(r["workload"] == "drop-under-misses" and r["unit"] == "s" and r["hint"] == "auto"
          and r["distributed_pct"] is None, f"{where}: row {r}")
    check(is_num(r["readers_during_drop"]) and 0 <= r["readers_during_drop"] < 10,
          f"{where}: readers_during_drop {r['readers_during_drop']!r}")
    check(0 < r["min"] <= r["median"] <= r["max"], f"{where}: drop seconds {r}")
got = points(misses, ("workload", "threads", "counter"))
want = {("drop-under-misses", t, c) for t in (1, 2) for c in ("atomic", "paygo")}
check(set(got) == want, f"misses points: missing {sorted(want - set(got))}, "
                        f"unexpected {sorted(set(got) - want)}")

# ---- rocksdb: every (hot keys, threads, cache), the database's size, the metadata ----
ROCKS = ["rocksdb-lru", "rocksdb-hcc", "rocksdb-paygo"]
kconf, rocks = load("rocksdb", "rocksdb")
check(kconf.get("keys") == 2000 and kconf.get("key_bytes") == 16 and kconf.get("value_bytes") == 100
      and kconf.get("caches") == ROCKS and kconf.get("hot_keys") == [0, 16]
      and kconf.get("threads") == [1, 2] and kconf.get("repeat") == 2
      and kconf.get("cache_size_bytes") == 64 << 20, f"rocksdb: config {kconf}")
db_bytes = kconf.get("db_bytes")
check(isinstance(db_bytes, int) and 2000 * 116 <= db_bytes < 2000 * 116 * 2,
      f"rocksdb: db_bytes {db_bytes!r} for 2,000 keys of 16 + 100 bytes")
meta = kconf.get("metadata")
check(isinstance(meta, dict) and sorted(meta) == sorted(ROCKS), f"rocksdb: metadata {meta!r}")
for c, m in meta.items():
    check(isinstance(m, dict) and set(m) == {"bytes_per_entry", "entries", "how"}
          and isinstance(m["how"], str) and m["how"], f"rocksdb: metadata of {c}: {m!r}")
    # The whole database is in the cache: its data blocks, index and filter.
    check(isinstance(m["entries"], int) and m["entries"] >= 3, f"rocksdb: {c} entries {m!r}")
    b = m["bytes_per_entry"]
    check(is_num(b) and 0 < b < 1 << 20, f"rocksdb: {c} bytes_per_entry {b!r}")
for r in rocks:
    where = f"rocksdb: {r['counter']} hot_keys={r['hot_keys']} threads={r['threads']}"
    check(r["workload"] == "readrandom" and r["unit"] == "ops/s" and r["io"] == r["counter"]
          and r["distributed_pct"] is None, f"{where}: row {r}")
    check(r["cache_bytes"] == 64 << 20 and r["file_bytes"] == db_bytes, f"{where}: sizes {r}")
got = points(rocks, ("workload", "hot_keys", "threads", "counter", "io"))
want = {("readrandom", k, t, c, c) for k in (0, 16) for t in (1, 2) for c in ROCKS}
check(set(got) == want, f"rocksdb points: missing {sorted(want - set(got))}, "
                        f"unexpected {sorted(set(got) - want)}")


def check_rocksdb_table(name, results):
    """The rocksdb table: one line per row; /hcc and /lru the medians' ratios."""
    with open(f"{tmp}/{name}.out") as f:
        lines = f.read().split("\n")
    start = [i for i, l in enumerate(lines) if l.startswith("rocksdb / readrandom  (unit ops/s")]
    check(len(start) == 1, f"{name}: {len(start)} rocksdb tables printed, want 1")
    header = lines[start[0] + 1].split()
    check(header == ["hot_keys", "threads", "cache", "median", "min", "max", "/hcc", "/lru"],
          f"{name}: header {header}")
    printed = {}
    for l in lines[start[0] + 2:]:
        if not l.strip():
            break
        tok = l.split()
        key = (0 if tok[0] == "all" else int(tok[0]), int(tok[1]), tok[2])
        check(key not in printed, f"{name}: row printed twice: {key}")
        printed[key] = tok[-2:]
    check(len(printed) == len(results), f"{name}: {len(printed)} rows printed, "
                                        f"{len(results)} in the JSON")
    compared = 0
    for r in results:
        key = (r["hot_keys"], r["threads"], r["counter"])
        check(key in printed, f"{name}: no printed row for {key}")
        for text, base in zip(printed[key], ("rocksdb-hcc", "rocksdb-lru")):
            b = [x for x in results if x["counter"] == base and x["hot_keys"] == r["hot_keys"]
                 and x["threads"] == r["threads"]]
            compared += check_ratio(name, key, f"/{base}", text, b[0] if b else None, r)
    return compared


# ---- the printed ratios are the ratios of the JSON medians ----
def baseline(results, r, name):
    """The same rule as print_tables: same io if there is one, else any io."""
    cands = [b for b in results if b["counter"] == name and b["experiment"] == r["experiment"]
             and b["workload"] == r["workload"] and b["threads"] == r["threads"]
             and b["distributed_pct"] == r["distributed_pct"]]
    same = [b for b in cands if b["io"] == r["io"]]
    return (same or cands or [None])[0]


def hot_twin(results, r):
    """The row /hot divides by: the same counter's hint=hot row."""
    if r["hint"] in (None, "hot"):
        return None
    for b in results:
        if (b["counter"], b["experiment"], b["workload"], b["threads"], b["io"],
                b["distributed_pct"], b["slot_mode"], b["hint"]) == (
                    r["counter"], r["experiment"], r["workload"], r["threads"], r["io"],
                    r["distributed_pct"], r["slot_mode"], "hot"):
            return b
    return None


def check_ratio(name, key, what, text, b, r):
    if b is None:
        check(text == "-", f"{name}: {key} {what}: printed {text}, want '-'")
        return 0
    want = r["median"] / b["median"]
    check(text != "-", f"{name}: {key} {what}: printed '-', want {want:.3f}")
    check(abs(float(text) - want) <= 0.0015,
          f"{name}: {key} {what}: printed {text}, medians give {want:.4f}")
    return 1


def check_tables(name, results):
    with open(f"{tmp}/{name}.out") as f:
        lines = f.read().split("\n")
    printed = {}
    i = 0
    while i < len(lines):
        m = re.match(r"^(\S+) / (\S+)  \(unit ", lines[i])
        if not m:
            i += 1
            continue
        experiment, workload = m.groups()
        header = lines[i + 1].split()
        # A last column, misses/s, where some row of the table missed.
        has_miss = header[-1] == "miss/s"
        if has_miss:
            header = header[:-1]
        # Self-tuning columns (/hot, promo, dist) follow where some row has a hint.
        has_tune = header[-3:] == ["/hot", "promo", "dist"]
        ratios = header[-6:-3] if has_tune else header[-3:]
        check(ratios == ["/noop", "/atomic", "/pread"], f"{name}: header {header}")
        has_io, has_hint, has_pct = header[0] == "io", "hint" in header, "dist%" in header
        has_slot = "slot" in header
        # slot_mode's column where some row has one (PAYGO's, in counting).
        check(has_slot == any(r["slot_mode"] is not None for r in results
                              if (r["experiment"], r["workload"]) == (experiment, workload)),
              f"{name}: {experiment} / {workload}: header {header}")
        check(has_tune == has_hint, f"{name}: header {header}")
        i += 2
        while i < len(lines) and lines[i].strip():
            tok = lines[i].split()
            miss = None
            if has_miss:
                miss, tok = tok[-1], tok[:-1]
            j = 0
            io = hint = slot = dist = None
            if has_io:
                io, j = tok[j], j + 1
            if has_hint:
                hint, j = tok[j], j + 1
                hint = None if hint == "-" else hint
            if has_slot:
                slot, j = tok[j], j + 1
                slot = None if slot == "-" else slot
            if has_pct:
                dist, j = float(tok[j]), j + 1
            threads, counter = int(tok[j]), tok[j + 1]
            key = (experiment, workload, io, hint, slot, dist, threads, counter)
            check(key not in printed, f"{name}: row printed twice: {key}")
            printed[key] = ((tok[-6:-3], tok[-3:]) if has_tune else (tok[-3:], None)) + (miss,)
            i += 1
    check(len(printed) == len(results), f"{name}: {len(printed)} rows printed, "
                                        f"{len(results)} in the JSON")
    compared = 0
    for r in results:
        dist = None if r["distributed_pct"] is None else float(r["distributed_pct"])
        key = (r["experiment"], r["workload"], r["io"], r["hint"], r["slot_mode"], dist, r["threads"],
               r["counter"])
        check(key in printed, f"{name}: no printed row for {key}")
        ratios, tune, miss = printed[key]
        if miss is not None:  # "-" exactly where the JSON has no miss rate
            check((miss == "-") == (r["misses"] is None),
                  f"{name}: {key}: miss/s printed {miss}, JSON {r['misses']}")
        elif r["workload"] == "RRND" and r["io"] == "cache":
            check(False, f"{name}: {key}: RRND table without a miss/s column")
        for text, base in zip(ratios, ("noop", "atomic", "kernel")):
            compared += check_ratio(name, key, f"/{base}", text, baseline(results, r, base), r)
        if tune is not None:
            compared += check_ratio(name, key, "/hot", tune[0], hot_twin(results, r), r)
            for text, k in zip(tune[1:], ("promotions", "distributed_pages")):
                want = "-" if r[k] is None else f"{r[k]:g}"
                check(text == want, f"{name}: {key} {k}: printed {text}, JSON {r[k]}")
    return compared


def check_phase_table(name, results):
    """The per-phase table after the PHASE tables: one line per phase."""
    with open(f"{tmp}/{name}.out") as f:
        lines = f.read().split("\n")
    start = [i for i, l in enumerate(lines) if l.startswith("counting / PHASE per phase")]
    check(len(start) == 1, f"{name}: {len(start)} per-phase tables printed, want 1")
    body = []
    for l in lines[start[0] + 2:]:
        if not l.strip():
            break
        body.append(l.split())
    want = [(r["counter"], r["hint"], r["slot_mode"] or "-", r["threads"], ph["repeat"],
             ph["phase"], ph["workload"], ph["promotions"], ph["demotions"])
            for r in results if r["workload"] == "PHASE" for ph in r["phases"]]
    got = [(t[0], t[1], t[2], int(t[3]), int(t[4]), int(t[5]), t[6], int(t[7]), int(t[8]))
           for t in body]
    check(got == want, f"{name}: per-phase table {got} != JSON {want}")
    return len(got)


n = check_tables("counting", counting)
# pread and rocksdb rows must have been compared with noop/atomic too.
check(n >= len(counting) * 3 - len(counting), f"counting: only {n} ratios compared")
m = check_tables("query", query) + check_tables("tuning", tuning) + check_tables("after", after)
m += check_tables("rrnd", rrnd) + check_tables("small", small)
s = check_tables("slots", slots)
# /hot of each PAYGO auto row: over the hot row of the same slot mode.
check(s >= len(slots), f"slots: only {s} ratios compared")
m += s
k = check_rocksdb_table("rocksdb", rocks)
check(k == len(rocks) * 2, f"rocksdb: {k} ratios compared, want {len(rocks) * 2}")
m += k
p = check_phase_table("tuning", tuning)
print(f"ok: counting {len(counting)} points, DRBZ/PHASE {len(tuning)} points ({p} phases), "
      f"RRND {len(rrnd)} + {len(rdef)} points, DRBZ/RRND small cache {len(small)} points, "
      f"query {len(query)} points, query --after {len(after)} points, "
      f"rocksdb {len(rocks)} points, --slot-mode {len(slots)} points, "
      f"{n + m} printed ratios match the medians")
PY

echo "== tools/plot"
"$plot" --help >/dev/null || fail "tools/plot --help failed"
# expect_pngs DIR NAME...: tools/plot printed exactly DIR/NAME.png ..., and each is a PNG.
expect_pngs() {
  local dir=$1
  shift
  local f png magic
  for f in "$@"; do
    png="$dir/$f.png"
    [[ -s $png ]] || fail "tools/plot made no $f.png"
    magic=$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')
    [[ $magic == 89504e470d0a1a0a ]] || fail "$f.png is not a PNG (magic $magic)"
    grep -qx "$png" "$tmp/plot.out" || fail "tools/plot did not list $png"
  done
  local made
  made=$(find "$dir" -mindepth 1 | wc -l)
  (($# == made)) || fail "tools/plot made $made files in $dir, want $#: $(ls "$dir")"
  echo "ok: $made PNG files: $*"
}
"$plot" -o "$tmp/png" "$tmp/counting.json" "$tmp/tuning.json" "$tmp/rrnd.json" "$tmp/query.json" \
  "$tmp/after.json" "$tmp/misses.json" "$tmp/rocksdb.json" >"$tmp/plot.out" 2>&1 ||
  { cat "$tmp/plot.out" >&2; fail "tools/plot exited non-zero"; }
expect_pngs "$tmp/png" counting-DRBL counting-DRBM counting-DRBH counting-DRBZ counting-PHASE \
  counting-RRND counting-DRBZ-tuning counting-PHASE-tuning counting-RRND-misses query-threads \
  query-ratio query-after-DRBZ query-misses rocksdb-readrandom
"$plot" --help >"$tmp/plot-help" && grep -q 'query-misses.png' "$tmp/plot-help" || fail "tools/plot --help does not list query-misses"
"$plot" --help >"$tmp/plot-help" && grep -q 'rocksdb-readrandom.png' "$tmp/plot-help" || fail "tools/plot --help does not list rocksdb"
"$plot" --help >"$tmp/plot-help" && grep -q 'counting-RRND-misses.png' "$tmp/plot-help" || fail "tools/plot --help does not list RRND"

# Files of the first schema (the ten fields only, as docs/data/) still plot,
# and so do rows with fields tools/plot does not know (later additions).
python3 - "$tmp" <<'PY'
import json, sys
tmp = sys.argv[1]
TEN = ["experiment", "workload", "counter", "io", "threads", "distributed_pct",
       "median", "min", "max", "unit"]
for name in ("counting", "query"):
    doc = json.load(open(f"{tmp}/{name}.json"))
    doc["results"] = [{k: r[k] for k in TEN} for r in doc["results"]]
    json.dump(doc, open(f"{tmp}/old-{name}.json", "w"))
doc = json.load(open(f"{tmp}/after.json"))
for r in doc["results"]:
    r["some_later_field"] = {"nested": [1, 2]}
json.dump(doc, open(f"{tmp}/later-after.json", "w"))
PY
"$plot" -o "$tmp/png-old" "$tmp/old-counting.json" "$tmp/old-query.json" \
  "$tmp/later-after.json" >"$tmp/plot.out" 2>&1 ||
  { cat "$tmp/plot.out" >&2; fail "tools/plot on first-schema files exited non-zero"; }
expect_pngs "$tmp/png-old" counting-DRBL counting-DRBM counting-DRBH query-threads query-ratio \
  query-after-DRBZ

# The series: PAYGO once per hint, the other counters as before.
python3 - "$plot" "$tmp" "${counters[@]}" <<'PY' ||
import importlib.machinery, importlib.util, json, sys
sys.dont_write_bytecode = True  # no tools/__pycache__ in the source tree
loader = importlib.machinery.SourceFileLoader("plot", sys.argv[1])
spec = importlib.util.spec_from_loader("plot", loader)
plot = importlib.util.module_from_spec(spec)
loader.exec_module(plot)
tmp, counters = sys.argv[2], sys.argv[3:]


def labels(name, workload):
    rows = [r for r in json.load(open(f"{tmp}/{name}.json"))["results"]
            if r["workload"] == workload]
    label = plot.labeller(rows)
    return sorted({label(r) for r in rows})


for name, w, want in (
        ("tuning", "DRBZ", ["atomic", "kernel (pread)", "paygo (auto)", "paygo (central)",
                            "paygo (hot)"]),
        ("tuning", "PHASE", ["atomic", "paygo (auto)", "paygo (central)", "paygo (hot)"]),
        ("rrnd", "RRND", ["atomic", "kernel (pread)", "paygo (auto)", "paygo (hot)",
                          "rocksdb-hcc", "rocksdb-lru", "rocksdb-paygo"]),
        ("counting", "DRBH", sorted(set(counters) - {"paygo"} | {"paygo (auto)", "kernel (pread)",
                                                                 "rocksdb-lru", "rocksdb-hcc",
                                                                 "rocksdb-paygo"})),
        ("old-counting", "DRBH", sorted(set(counters) | {"kernel (pread)", "rocksdb-lru",
                                                         "rocksdb-hcc", "rocksdb-paygo"})),
        ("rocksdb", "readrandom", ["rocksdb-hcc", "rocksdb-lru", "rocksdb-paygo"]),
        ("slots", "DRBH", ["atomic", "kernel (pread)", "noop", "paygo (auto, slot=cpu)",
                           "paygo (auto, slot=thread)", "paygo (hot, slot=cpu)",
                           "paygo (hot, slot=thread)"])):
    got = labels(name, w)
    if got != want:
        sys.exit(f"FAIL: tools/plot series for {name} {w}: {got}, want {want}")
print("ok: tools/plot series: paygo per hint (and slot mode), old files as before")
PY
  fail "tools/plot's series are wrong"
# --suffix: a second run of one experiment beside the first (make eval's counting-oversub).
"$plot" -o "$tmp/png-suffix" --suffix oversub "$tmp/slots.json" >"$tmp/plot.out" 2>&1 ||
  { cat "$tmp/plot.out" >&2; fail "tools/plot --suffix exited non-zero"; }
expect_pngs "$tmp/png-suffix" counting-DRBH-oversub
rc=0
"$plot" -o "$tmp/png-bad" --suffix a/b "$tmp/slots.json" >"$tmp/plot.out" 2>&1 || rc=$?
((rc == 2)) || fail "tools/plot --suffix a/b exited $rc, want 2"
"$plot" --help >"$tmp/plot-help" && grep -q -- '--suffix' "$tmp/plot-help" || fail "tools/plot --help does not list --suffix"
echo '{"hello": 1}' >"$tmp/not-bench.json"
rc=0
"$plot" -o "$tmp/png2" "$tmp/not-bench.json" >"$tmp/plot.out" 2>&1 || rc=$?
((rc == 2)) || fail "tools/plot on a non-bench JSON exited $rc, want 2"
grep -q 'not a paygo-bench JSON' "$tmp/plot.out" || fail "tools/plot: no clear message: $(cat "$tmp/plot.out")"
echo "ok: tools/plot refuses a non-bench file: $(head -n1 "$tmp/plot.out")"
echo '{"machine": {}, "config": {}, "results": [{"experiment": "micro", "median": 1}]}' \
  >"$tmp/short-row.json"
rc=0
"$plot" -o "$tmp/png3" "$tmp/short-row.json" >"$tmp/plot.out" 2>&1 || rc=$?
((rc == 2)) || fail "tools/plot on a row without the ten fields exited $rc, want 2"
grep -q 'ten result fields' "$tmp/plot.out" || fail "tools/plot: no clear message: $(cat "$tmp/plot.out")"
echo "ok: tools/plot refuses a row without the ten fields: $(head -n1 "$tmp/plot.out")"
echo "PASS"
