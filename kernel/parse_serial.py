#!/usr/bin/env python3
"""kernel/parse_serial.py - read the serial logs kernel/run.sh collected,
check them, print a summary table and write kernel.json / kernel.csv in the
benchmark schema (machine + results, as paygo-bench writes).

Usage: parse_serial.py --out DIR --boots N [--version V] KERNEL...

A kernel fails when a boot has no "SUITE-END status=0" line, a CHECK line
that is not "ok", or any kernel-warning line (BUG, WARNING, Oops, "sleeping
function called from invalid context", Bad page, panic, a QEMU timeout).
Exit status 1 if any kernel failed, 0 otherwise.
"""
import argparse
import csv
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys

BAD = re.compile(
    r"BUG:|WARNING:|Oops|sleeping function called|Bad page|general protection|"
    r"Kernel panic|kernel BUG|UBSAN|KASAN|RIP: |Call Trace:|QEMU-TIMEOUT|soft lockup|hung_task"
)
IO = {"vanilla": "kernel-vanilla", "patched": "kernel-paygo", "seed": "kernel-seed"}
# kernel.csv: the first ten columns of paygo-bench's CSV (bench/README.md), the
# ones a kernel result has. paygo-bench's writer (bench/common.cpp) cannot be
# used: `make kernel-test` builds no paygo-bench, and these rows are not its
# Result rows (io kernel-*, one sample per boot).
COLUMNS = ("experiment", "workload", "counter", "io", "threads", "distributed_pct", "median", "min", "max", "unit")


def parse_log(path):
    """-> dict(checks=[(name, status, rest)], results=[dict], bad=[lines], end=status|None)."""
    out = {"checks": [], "results": [], "bad": [], "end": None, "begin": None}
    counter = "kernel"
    try:
        text = open(path, errors="replace").read()
    except OSError:
        out["bad"].append(f"no serial log {path}")
        return out
    for raw in text.splitlines():
        line = raw.strip()
        # the kernel prefixes its own lines with a [time] stamp
        body = re.sub(r"^\[\s*\d+\.\d+\]\s*", "", line)
        if BAD.search(line):
            out["bad"].append(line)
        if body.startswith("SUITE-BEGIN"):
            out["begin"] = body
        elif body.startswith("SUITE-END"):
            m = re.search(r"status=(\d+)", body)
            out["end"] = int(m.group(1)) if m else 99
        elif body.startswith("BENCH "):
            counter = body.split("counter=", 1)[1].split()[0]
        elif body.startswith("CHECK "):
            parts = body.split(None, 3)
            out["checks"].append((parts[1], parts[2] if len(parts) > 2 else "?", parts[3] if len(parts) > 3 else ""))
        elif body.startswith("RESULT "):
            parts = body.split()
            kv = dict(p.split("=", 1) for p in parts[3:] if "=" in p)
            out["results"].append(
                {
                    "experiment": parts[1],
                    "workload": parts[2],
                    "counter": counter if parts[1] == "kernel-counting" else "kernel",
                    "threads": int(kv.get("threads", 0)),
                    "distributed_pct": int(kv.get("pct", 0)),
                    "value": float(kv["value"]),
                    "unit": kv.get("unit", ""),
                }
            )
    return out


def machine(version):
    """The host's "machine" block: the fields and formats of paygo-bench's
    (bench/common.cpp machine_info(), `paygo-bench machine`) that describe
    this run, plus "guest". Collected here, not asked of paygo-bench, because
    `make kernel-test` builds no paygo-bench (only the kernels and the static
    guest tool); compiler, build_type and membarrier describe paygo-bench's
    own build and fences, so they are left out. Keep the two in step."""
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            # x86: "model name"; arm64: no model name, but "Hardware"/...
            if line.startswith(("model name", "Hardware", "cpu model", "Processor")) and ":" in line:
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def git(*args):
        try:
            r = subprocess.run(["git", *args], capture_output=True, text=True,
                               cwd=os.path.dirname(os.path.abspath(__file__)))
        except OSError:
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = commit != "unknown" and bool(git("status", "--porcelain", "--untracked-files=no"))
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "kernel": f"{platform.system()} {platform.release()}",
        "arch": platform.machine(),
        "guest": f"QEMU TCG (software emulation), -smp 2 -m 2G, Linux {version} (Debian linux-source-6.1)",
        "git_commit": commit,
        "git_dirty": dirty,
        "hostname": platform.node(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--boots", type=int, required=True)
    ap.add_argument("--version", default="6.1")
    ap.add_argument("kernels", nargs="+")
    a = ap.parse_args()

    failed = []
    samples = {}  # (experiment, workload, counter, io, threads, pct, unit) -> [values]
    print("\n== checks (serial logs in %s) ==" % a.out)
    for k in a.kernels:
        for n in range(1, a.boots + 1):
            log = parse_log(os.path.join(a.out, f"serial-{k}-{n}.log"))
            problems = []
            if log["end"] is None:
                problems.append("the suite did not finish (no SUITE-END)")
            elif log["end"] != 0:
                problems.append(f"SUITE-END status={log['end']}")
            for name, status, rest in log["checks"]:
                print(f"  {k:8} boot {n}  {name:8} {status:5} {rest}")
                if status != "ok":
                    problems.append(f"check {name} {status}")
            for line in log["bad"][:10]:
                problems.append(f"serial log: {line}")
            if len(log["bad"]) > 10:
                problems.append(f"... {len(log['bad']) - 10} more warning lines")
            print(f"  {k:8} boot {n}  warnings {len(log['bad'])}")
            if problems:
                failed.append((k, n, problems))
            for r in log["results"]:
                key = (r["experiment"], r["workload"], r["counter"], IO.get(k, k), r["threads"],
                       r["distributed_pct"], r["unit"])
                samples.setdefault(key, []).append(r["value"])

    results = []
    for key, vals in sorted(samples.items()):
        exp, wl, counter, io, threads, pct, unit = key
        results.append({
            "experiment": exp, "workload": wl, "counter": counter, "io": io, "threads": threads,
            "distributed_pct": pct, "median": statistics.median(vals), "min": min(vals), "max": max(vals),
            "unit": unit, "samples": vals,
        })
    doc = {"machine": machine(a.version), "config": {"boots": a.boots, "kernels": a.kernels}, "results": results}
    with open(os.path.join(a.out, "kernel.json"), "w") as f:
        json.dump(doc, f, indent=2)
    with open(os.path.join(a.out, "kernel.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        for r in results:
            w.writerow([r[c] for c in COLUMNS])

    def med(exp, wl, counter, io, threads, pct=0):
        for r in results:
            if (r["experiment"], r["workload"], r["counter"], r["io"], r["threads"], r["distributed_pct"]) == (
                    exp, wl, counter, io, threads, pct):
                return r["median"]
        return None

    def fmt(v, unit=""):
        if v is None:
            return "-"
        return f"{v / 1e6:.3f} M" if unit == "ops" else f"{v:.4f}"

    lines = []
    lines.append(f"== kernel-counting: 4 KiB preads, ops/s, median of {a.boots} boots (TCG: functionality and "
                 "medians, not scaling) ==")
    lines.append(f"{'workload':8} {'thr':>3}  {'vanilla':>10} {'paygo-patch':>12} {'patch+hot':>10}  "
                 f"{'patch/van':>9} {'hot/van':>8}")
    for wl in ("DRBL", "DRBM", "DRBH"):
        for t in sorted({r["threads"] for r in results if r["workload"] == wl}):
            v = med("kernel-counting", wl, "kernel", "kernel-vanilla", t)
            p = med("kernel-counting", wl, "kernel", "kernel-paygo", t)
            h = med("kernel-counting", wl, "paygo", "kernel-paygo", t)
            r1 = f"{p / v:.3f}x" if v and p else "-"
            r2 = f"{h / v:.3f}x" if v and h else "-"
            lines.append(f"{wl:8} {t:>3}  {fmt(v, 'ops'):>10} {fmt(p, 'ops'):>12} {fmt(h, 'ops'):>10}  {r1:>9} {r2:>8}")
    lines.append("")
    lines.append(f"== kernel-query: echo 1 > drop_caches, seconds, median of {a.boots} boots ==")
    lines.append(f"{'hot %':>5}  {'vanilla':>9} {'paygo-patch':>12}  {'patch/van':>9} {'vs 0% (patch)':>13}")
    pcts = sorted({r["distributed_pct"] for r in results if r["experiment"] == "kernel-query"})
    for pct in pcts:
        v = med("kernel-query", "drop", "kernel", "kernel-vanilla", 2, pct)
        p = med("kernel-query", "drop", "kernel", "kernel-paygo", 2, pct)
        p0 = med("kernel-query", "drop", "kernel", "kernel-paygo", 2, 0)
        r1 = f"{p / v:.3f}x" if v and p else "-"
        r2 = f"{p / p0:.3f}x" if p0 and p else "-"
        lines.append(f"{pct:>5}  {fmt(v):>9} {fmt(p):>12}  {r1:>9} {r2:>13}")
    summary = "\n".join(lines)
    print()
    print(summary)
    with open(os.path.join(a.out, "summary.txt"), "w") as f:
        f.write(summary + "\n")
    print(f"\nresults: {a.out}/kernel.json, kernel.csv, summary.txt, serial-*.log")
    if failed:
        print("\nFAILED:")
        for k, n, problems in failed:
            for p in problems:
                print(f"  {k} boot {n}: {p}")
        return 1
    print("\nall kernels: every check ok, no kernel warnings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
