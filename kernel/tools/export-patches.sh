#!/usr/bin/env bash
# kernel/tools/export-patches.sh VANILLA_TREE DEV_TREE
# Writes kernel/patches/*.patch from a development tree (a copy of the
# vanilla tree with the work applied and edited): one patch per group of
# files below, in order, each with a header. Edit the groups when a change
# touches a new file. Development loop (kernel/README.md, "Changing the
# patch"): cp -al the vanilla tree, apply the series, edit (break the hard
# link of a file first: cp --remove-destination), rebuild, then run this.
set -euo pipefail
van="$(realpath "$1")"; dev="$(realpath "$2")"
out="$(cd "$(dirname "${BASH_SOURCE[0]}")/../patches" && pwd)"
rm -f "$out"/*.patch
n=0
emit() {  # subject body files...
  local subject="$1" body="$2"; shift 2
  n=$((n + 1))
  local f="$out/$(printf %04d "$n")-$(echo "$subject" | tr 'A-Z' 'a-z' | tr -cs 'a-z0-9' '-' | sed 's/-$//' | cut -c1-60).patch"
  {
    echo "From: paygo developers"
    echo "Subject: [PATCH $n/4] $subject"
    echo
    echo "$body" | fold -s -w 72 | sed 's/ *$//'
    echo "---"
    local p
    for p in "$@"; do
      if [[ -f "$van/$p" ]]; then
        (cd / && diff -u --label "a/$p" --label "b/$p" "$van/$p" "$dev/$p") || true
      else
        (cd / && diff -u --label /dev/null --label "b/$p" /dev/null "$dev/$p") || true
      fi
    done
  } >"$f"
  echo "$f"
}
emit "mm: pgref, per-CPU reference counts for hot page-cache folios" \
"PAYGO (Jung et al., FAST'19) for the page cache: a hot folio's buffered-read references are counted in per-CPU tables of {folio, local, anchor} entries; a put on the home CPU is a plain store, elsewhere one atomic on the anchor. The hot state is a side bitmap by pfn (struct page is unchanged), changed only under a refcount freeze. An exact query (pgref_frozen_check) follows folio_ref_freeze(); folios that leave the page cache while hot keep one real reference until their entries drain (retire work). /proc/pgref shows the state. No user yet." \
  mm/pgref.h mm/pgref.c mm/Makefile
emit "mm/filemap: count buffered-read references of hot folios per CPU" \
"filemap_get_read_batch() takes a distributed reference on a hot folio and records where it went (entry and CPU) in an array beside the folio batch; filemap_read() releases each reference through it. Readahead and update get a central reference first. A distributed holder never takes a reference of its own (the folio may be frozen under it): it marks the folio referenced instead of folio_mark_accessed(), and splice, whose pipe keeps page references, reads centrally. Removal from the page cache (page_cache_delete, its batch form, replace_page_cache_page) hands a hot folio to the retire work." \
  mm/filemap.c
emit "mm: check distributed references after folio_ref_freeze()" \
"__remove_mapping() (reclaim, drop_caches, invalidation), folio_migrate_mapping() and collapse_file() freeze _refcount and then assume nobody holds the folio; a hot folio's readers are not in _refcount, so each of them now asks pgref_frozen_check() and backs off as for a raised count." \
  mm/vmscan.c mm/migrate.c mm/khugepaged.c
emit "mm/fadvise: POSIX_FADV_HOT marks a range hot; NORMAL and DONTNEED unmark" \
"POSIX_FADV_HOT (8) makes the cached, uptodate, order-0 folios of the range hot (not shmem or DAX: EOPNOTSUPP). POSIX_FADV_NORMAL and POSIX_FADV_DONTNEED take the range back to the central count first." \
  mm/fadvise.c include/uapi/linux/fadvise.h
