#!/usr/bin/env bash
# check_refs_test.sh [CHECKER] — tools/check-refs can fail: on a tiny fake
# tree (in a temporary directory, checked with --root) it must exit 0 while
# every reference resolves, also with the out-of-scope ones (seed material,
# build outputs, Linux and RocksDB names) present, and exit 1 naming each
# planted broken reference: a missing path, a file:line past the end, a
# renamed member, a broken Markdown link, a partial path that is no
# repository path's tail, an unknown function, a function placed in a file
# that does not have it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
checker=${1:-$here/../tools/check-refs}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

"$checker" --help >"$tmp/help" || fail "--help exited $?"
grep -q -- '--root' "$tmp/help" || fail "--help does not mention --root"

# The fake repository: a header with a class, a source file of 6 lines, a
# test, a doc. Every reference in it resolves.
tree=$tmp/tree
mkdir -p "$tree/include/paygo" "$tree/src" "$tree/tests/unit" "$tree/docs"
cat >"$tree/include/paygo/widget.hpp" <<'EOF'
// The widget (src/widget.cpp has the slow path; docs/widget.md the design).
#pragma once
namespace paygo {
class Widget {
 public:
  void spin() noexcept;  // Widget::turns_ counts the calls
  int turns_ = 0;
};
}  // namespace paygo
EOF
cat >"$tree/src/widget.cpp" <<'EOF'
// Widget::spin: see paygo/widget.hpp and include/paygo/widget.hpp:4-7;
// tests/unit/widget_test.cpp checks it.
#include "paygo/widget.hpp"
namespace paygo {
void Widget::spin() noexcept { ++turns_; }
}  // namespace paygo
EOF
cat >"$tree/tests/unit/widget_test.cpp" <<'EOF'
// Calls paygo::Widget::spin() (src/widget.cpp:5) twice.
#include "paygo/widget.hpp"
int main() { paygo::Widget w; w.spin(); w.spin(); return w.turns_ == 2 ? 0 : 1; }
EOF
cat >"$tree/docs/widget.md" <<'EOF'
# The widget

`paygo::Widget` (`include/paygo/widget.hpp`, [the source](../src/widget.cpp))
spins: `Widget::spin()` at `src/widget.cpp:5`, counted in `Widget::turns_`
(`src/widget.cpp:1-6`; `widget.cpp`; `unit/widget_test.cpp`; `spin()`;
`spin()` in `src/widget.cpp`).
Out of scope, never checked: `../shared/seed/paygo.patch`,
`build/release/bench/paygo-bench`, `results/1/summary.txt`,
`include/linux/page_ref.h`, `mm/filemap.c`, `kernel/sched/membarrier.c`,
`folio_try_get()`, `LRUCacheShard::Lookup`, `std::atomic::wait`,
`folly::SharedMutex`, `/proc/self/maps`, `out.json`,
https://github.com/torvalds/linux/blob/master/src/nothere.cpp.
EOF

echo "== a clean tree: exit 0"
"$checker" --root "$tree" >"$tmp/out" 2>"$tmp/err" ||
  { cat "$tmp/out" "$tmp/err" >&2; fail "clean tree: exit $?"; }
grep -Eq '^[0-9]+ references checked, all resolve$' "$tmp/out" ||
  { cat "$tmp/out" >&2; fail "clean tree: no summary line"; }
n=$(grep -Eo '^[0-9]+' "$tmp/out")
((n >= 15)) || fail "clean tree: only $n references checked"

echo "== planted broken references: exit 1, each named"
cat >>"$tree/docs/widget.md" <<'EOF'

Stale: `src/gone.cpp`, `src/widget.cpp:99`, `Widget::spin_old()`,
[the design](design.md), `unit/gone_test.cpp`, `unlink_locked()`,
`main()` in `src/widget.cpp`.
EOF
# A stale reference in a code comment, on a known line.
printf '%s\n' '// Renamed: see Widget::turns_old in include/paygo/widget.hpp:42.' >>"$tree/src/widget.cpp"
set +e
"$checker" --root "$tree" >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
cat "$tmp/out"
((rc == 1)) || fail "broken tree: exit $rc, expected 1"
expect() {
  grep -Fqx -- "$1" "$tmp/out" || fail "no line '$1'"
}
expect 'docs/widget.md:14: missing path: src/gone.cpp'
expect 'docs/widget.md:14: line out of range: src/widget.cpp:99 (src/widget.cpp has 7 lines)'
expect 'docs/widget.md:14: unknown name: Widget::spin_old (no `spin_old` there)'
expect 'docs/widget.md:15: broken link: design.md'
expect 'docs/widget.md:15: missing path: unit/gone_test.cpp'
expect 'docs/widget.md:15: unknown function: unlink_locked()'
expect 'docs/widget.md:16: not in that file: main in src/widget.cpp (src/widget.cpp)'
expect 'src/widget.cpp:7: unknown name: Widget::turns_old (no `turns_old` there)'
expect 'src/widget.cpp:7: line out of range: include/paygo/widget.hpp:42 (include/paygo/widget.hpp has 9 lines)'
lines=$(wc -l <"$tmp/out")
((lines == 9)) || fail "broken tree: $lines lines, expected 9 (a false positive?)"
grep -q 'do not resolve' "$tmp/err" || fail "broken tree: no count on stderr"

echo "PASS"
