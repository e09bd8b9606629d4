#!/usr/bin/env bash
# bench_experiments_test.sh BENCH PLOT — smoke test of `paygo-bench counting`
# and `paygo-bench query` and of tools/plot:
#   * bad arguments exit 2 with a message on stderr;
#   * a tiny run of each (counting with every io, query with both workloads)
#     writes JSON with exactly the ten result fields, every requested point,
#     positive values;
#   * the ratios printed on stdout (/noop, /atomic, /pread) equal the ratios
#     of the medians in the JSON;
#   * tools/plot turns the JSON into PNG files, and refuses a non-bench file.
# About 15 s on a 2-core machine.
set -euo pipefail

bench=${1:?usage: bench_experiments_test.sh PATH/TO/paygo-bench PATH/TO/tools/plot}
plot=${2:?usage: bench_experiments_test.sh PATH/TO/paygo-bench PATH/TO/tools/plot}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

mapfile -t counters < <("$bench" counters)
((${#counters[@]} >= 2)) || fail "'paygo-bench counters' listed ${#counters[@]} counters"

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
  esac
  # Scratch files under $tmp: removed by the trap even if a run is killed.
  base+=(--dir "$tmp")
  local rc=0
  timeout 60 "$bench" "$cmd" "${base[@]}" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  ((rc == 2)) || fail "'$cmd $*' exited $rc, want 2 (bad arguments)"
  [[ -s $tmp/err ]] || fail "'$cmd $*' printed no message on stderr"
  if grep -q 'terminate called\|Aborted' "$tmp/err"; then fail "'$cmd $*' crashed"; fi
  echo "ok: $cmd $* -> exit $rc: $(head -n1 "$tmp/err")"
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
expect_usage_error query --touch-threads 1,,2
expect_usage_error query --workloads no-such-workload
expect_usage_error query --repeat 0

echo "== counting: every io, all counters: ${counters[*]}"
ios=cache,pread,rocksdb-lru,rocksdb-hcc
timeout 120 "$bench" counting --io "$ios" --duration 0.02 --repeat 1 --threads 1,2 --dir "$tmp" \
  --json "$tmp/counting.json" --csv "$tmp/counting.csv" >"$tmp/counting.out" 2>"$tmp/counting.err" ||
  { cat "$tmp/counting.err" >&2; fail "paygo-bench counting exited non-zero"; }

echo "== query: drop and reclaim-per-page"
timeout 120 "$bench" query --file-size 256K --distributed 0,100 --touch-threads 1 --repeat 1 --dir "$tmp" \
  --json "$tmp/query.json" --csv "$tmp/query.csv" >"$tmp/query.out" 2>"$tmp/query.err" ||
  { cat "$tmp/query.err" >&2; fail "paygo-bench query exited non-zero"; }

python3 - "$tmp" "${counters[@]}" <<'PY'
import csv, json, re, sys

tmp, counters = sys.argv[1], sys.argv[2:]
FIELDS = ["experiment", "workload", "counter", "io", "threads", "distributed_pct",
          "median", "min", "max", "unit"]


def check(cond, msg):
    if not cond:
        sys.exit(f"FAIL: {msg}")


def load(name):
    with open(f"{tmp}/{name}.json") as f:
        doc = json.load(f)
    for key in ("machine", "config", "results"):
        check(key in doc, f"{name}: no top-level {key!r}")
    for key in ("cpu_model", "cores", "git_commit"):
        check(key in doc["machine"], f"{name}: machine lacks {key!r}")
    results = doc["results"]
    check(isinstance(results, list) and results, f"{name}: no results")
    for r in results:
        check(set(r) == set(FIELDS) and len(r) == 10, f"{name}: fields {sorted(r)}")
        check(r["experiment"] == name, f"{name}: experiment {r['experiment']!r}")
        check(isinstance(r["threads"], int) and r["threads"] >= 1, f"{name}: threads {r}")
        for k in ("median", "min", "max"):
            check(isinstance(r[k], (int, float)) and r[k] > 0, f"{name}: {k} not positive: {r}")
        check(r["min"] <= r["median"] <= r["max"], f"{name}: min <= median <= max: {r}")
    with open(f"{tmp}/{name}.csv") as f:
        rows = list(csv.reader(f))
    check(rows and rows[0] == FIELDS, f"{name}: CSV header {rows[:1]}")
    check(len(rows) - 1 == len(results), f"{name}: CSV rows {len(rows) - 1} != {len(results)}")
    return results


def points(results, keys):
    seen = {}
    for r in results:
        k = tuple(r[x] for x in keys)
        check(k not in seen, f"duplicate point {k}")
        seen[k] = r
    return seen


# ---- counting: every (workload, threads, counter/io) ----
counting = load("counting")
for r in counting:
    check(r["unit"] == "ops/s" and r["distributed_pct"] is None, f"counting row {r}")
got = points(counting, ("workload", "threads", "counter", "io"))
want = set()
for w in ("DRBL", "DRBM", "DRBH"):
    for t in (1, 2):
        want |= {(w, t, c, "cache") for c in counters}
        want |= {(w, t, "kernel", "pread"), (w, t, "rocksdb-lru", "rocksdb-lru"),
                 (w, t, "rocksdb-hcc", "rocksdb-hcc")}
check(set(got) == want, f"counting points: missing {sorted(want - set(got))}, "
                        f"unexpected {sorted(set(got) - want)}")

# ---- query: every (workload, threads, distributed, counter) ----
query = load("query")
for r in query:
    check(r["unit"] == "s" and r["io"] == "cache", f"query row {r}")
got = points(query, ("workload", "threads", "distributed_pct", "counter"))
want = {(w, 1, d, c) for w in ("drop", "reclaim-per-page") for d in (0, 100) for c in counters}
check(set(got) == want, f"query points: missing {sorted(want - set(got))}, "
                        f"unexpected {sorted(set(got) - want)}")


# ---- the printed ratios are the ratios of the JSON medians ----
def baseline(results, r, name):
    """The same rule as print_tables: same io if there is one, else any io."""
    cands = [b for b in results if b["counter"] == name and b["experiment"] == r["experiment"]
             and b["workload"] == r["workload"] and b["threads"] == r["threads"]
             and b["distributed_pct"] == r["distributed_pct"]]
    same = [b for b in cands if b["io"] == r["io"]]
    return (same or cands or [None])[0]


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
        check(header[-3:] == ["/noop", "/atomic", "/pread"], f"{name}: header {header}")
        has_io, has_pct = header[0] == "io", "dist%" in header
        i += 2
        while i < len(lines) and lines[i].strip():
            tok = lines[i].split()
            j = 0
            io = dist = None
            if has_io:
                io, j = tok[j], j + 1
            if has_pct:
                dist, j = float(tok[j]), j + 1
            threads, counter = int(tok[j]), tok[j + 1]
            key = (experiment, workload, io, dist, threads, counter)
            check(key not in printed, f"{name}: row printed twice: {key}")
            printed[key] = tok[-3:]
            i += 1
    check(len(printed) == len(results), f"{name}: {len(printed)} rows printed, "
                                        f"{len(results)} in the JSON")
    compared = 0
    for r in results:
        dist = None if r["distributed_pct"] is None else float(r["distributed_pct"])
        key = (r["experiment"], r["workload"], r["io"], dist, r["threads"], r["counter"])
        check(key in printed, f"{name}: no printed row for {key}")
        for text, base in zip(printed[key], ("noop", "atomic", "kernel")):
            b = baseline(results, r, base)
            if b is None:
                check(text == "-", f"{name}: {key} /{base}: printed {text}, want '-'")
                continue
            want = r["median"] / b["median"]
            check(text != "-", f"{name}: {key} /{base}: printed '-', want {want:.3f}")
            check(abs(float(text) - want) <= 0.0015,
                  f"{name}: {key} /{base}: printed {text}, medians give {want:.4f}")
            compared += 1
    return compared


n = check_tables("counting", counting)
# pread and rocksdb rows must have been compared with noop/atomic too.
check(n >= len(counting) * 3 - len(counting), f"counting: only {n} ratios compared")
m = check_tables("query", query)
print(f"ok: counting {len(counting)} points, query {len(query)} points, "
      f"{n + m} printed ratios match the medians")
PY

echo "== tools/plot"
"$plot" --help >/dev/null || fail "tools/plot --help failed"
"$plot" -o "$tmp/png" "$tmp/counting.json" "$tmp/query.json" >"$tmp/plot.out" 2>&1 ||
  { cat "$tmp/plot.out" >&2; fail "tools/plot exited non-zero"; }
for f in counting-DRBL counting-DRBM counting-DRBH query-threads query-ratio; do
  png="$tmp/png/$f.png"
  [[ -s $png ]] || fail "tools/plot made no $f.png"
  magic=$(head -c 8 "$png" | od -An -tx1 | tr -d ' \n')
  [[ $magic == 89504e470d0a1a0a ]] || fail "$f.png is not a PNG (magic $magic)"
done
echo "ok: $(ls "$tmp/png" | wc -l) PNG files"
echo '{"hello": 1}' >"$tmp/not-bench.json"
rc=0
"$plot" -o "$tmp/png2" "$tmp/not-bench.json" >"$tmp/plot.out" 2>&1 || rc=$?
((rc == 2)) || fail "tools/plot on a non-bench JSON exited $rc, want 2"
grep -q 'not a paygo-bench JSON' "$tmp/plot.out" || fail "tools/plot: no clear message: $(cat "$tmp/plot.out")"
echo "ok: tools/plot refuses a non-bench file: $(head -n1 "$tmp/plot.out")"
echo "PASS"
