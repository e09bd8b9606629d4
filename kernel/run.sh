#!/usr/bin/env bash
# kernel/run.sh — `make kernel-test`: build a vanilla and a PAYGO-patched
# Linux 6.1 from Debian's linux-source-6.1, boot each under QEMU (TCG), run
# the in-guest suite (kernel/guest/pgref_guest.cpp), parse the serial logs,
# print a summary table and write JSON in the benchmark schema.
# kernel/README.md explains the patch, the suite and the numbers.
#
# Usage: kernel/run.sh [--boots N] [--skip-deps] [--kernels "vanilla patched"]
#                      [--seed-patch FILE] [--out DIR] [--help]
# Environment:
#   PAYGO_KERNEL_WORK   work directory (default: build/kernel in the repo;
#                       holds the source trees, builds, images, logs)
#   PAYGO_CCACHE_DIR    ccache directory (default: ~/.cache/paygo-kernel-ccache)
#   PAYGO_KERNEL_JOBS   make -j (default: nproc)
#   PAYGO_QEMU_TIMEOUT  seconds per boot before it is killed (default 600)
#   PAYGO_RACE_SECONDS  length of the in-guest race test (default 20)
#   PAYGO_FIRST_MODE    suite of the first boot: full (default) or checks
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
work="${PAYGO_KERNEL_WORK:-$repo/build/kernel}"
ccache_dir="${PAYGO_CCACHE_DIR:-$HOME/.cache/paygo-kernel-ccache}"
jobs="${PAYGO_KERNEL_JOBS:-$(nproc)}"
qemu_timeout="${PAYGO_QEMU_TIMEOUT:-600}"
boots=3
skip_deps=0
kernels="vanilla patched"
seed_patch=""
out=""
tarball=/usr/src/linux-source-6.1.tar.xz
packages=(linux-source-6.1 busybox-static qemu-system-x86 ccache flex bison bc
  libelf-dev libssl-dev cpio e2fsprogs gzip python3 g++ make libcli11-dev)

usage() {
  sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat <<'EOF'

Options:
  --boots N          boots per kernel; the first runs the whole suite, every
                     boot runs the benchmarks; medians over boots (default 3)
  --skip-deps        do not apt-get install (the packages must be there)
  --kernels LIST     which kernels to build and boot (default "vanilla patched";
                     "seed" boots the kernel built with --seed-patch)
  --seed-patch FILE  the patch the "seed" kernel is built with, instead of
                     kernel/patches (to show the seed's defects; not in CI)
  --out DIR          where the JSON, logs and summary go
                     (default: results/kernel-<UTC time>)
Exit status: 0 when every check passed on every kernel and no serial log has
a BUG/WARNING/Oops/"sleeping function" line; 1 otherwise; 2 on a set-up error.
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --boots) boots="$2"; shift 2 ;;
    --skip-deps) skip_deps=1; shift ;;
    --kernels) kernels="$2"; shift 2 ;;
    --seed-patch) seed_patch="$(realpath "$2")"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "kernel/run.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$boots" =~ ^[1-9][0-9]*$ ]] || { echo "kernel/run.sh: --boots needs a positive number" >&2; exit 2; }
out="${out:-$repo/results/kernel-$(date -u +%Y%m%d-%H%M%S)}"
mkdir -p "$work" "$out" "$ccache_dir"
log() { printf '[kernel-test %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# ---- 1. packages --------------------------------------------------------------
if [[ $skip_deps == 0 ]]; then
  missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [[ ${#missing[@]} -gt 0 ]]; then
    log "installing ${missing[*]}"
    SUDO=""; [[ $(id -u) == 0 ]] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi
for tool in qemu-system-x86_64 ccache busybox mkfs.ext4 cpio python3 g++; do
  command -v "$tool" >/dev/null || { echo "kernel/run.sh: '$tool' not found (run without --skip-deps)" >&2; exit 2; }
done
[[ -f "$tarball" ]] || { echo "kernel/run.sh: $tarball missing (apt-get install linux-source-6.1)" >&2; exit 2; }

# ---- 2. source ------------------------------------------------------------------
# One tree and one object directory for every kernel: switching from vanilla
# to patched (patch -p1) or back (patch -R with the copies kept in
# $work/applied) touches only the patched files, so make rebuilds only those
# and their dependents. ccache keeps objects across runs.
tree="$work/src/linux"
obj="$work/obj"
applied="$work/applied"
if [[ ! -f "$tree/.paygo-unpacked" ]]; then
  log "unpacking $tarball"
  rm -rf "$work/src" "$applied"
  mkdir -p "$work/src/tmp"
  tar -xf "$tarball" -C "$work/src/tmp"
  mv "$work/src/tmp"/linux-source-6.1 "$tree"
  rmdir "$work/src/tmp"
  touch "$tree/.paygo-unpacked"
fi
version="$(make -s -C "$tree" kernelversion 2>/dev/null)"
log "source: Linux $version (Debian linux-source-6.1)"
[[ "$version" == 6.1.* ]] || { echo "kernel/run.sh: expected a 6.1.y source, found '$version'" >&2; exit 2; }

mapfile -t series < <(ls "$here"/patches/*.patch 2>/dev/null)
[[ ${#series[@]} -gt 0 ]] || { echo "kernel/run.sh: no patches in kernel/patches" >&2; exit 2; }
# Check the series before any build: a clear message if it does not apply.
check_applies() {  # patch-files...
  local scratch="$work/src/check" p
  rm -rf "$scratch"
  mkdir -p "$scratch"
  for p in "$@"; do
    # copy the files the patch touches, then dry-run the whole series there
    grep -E '^\+\+\+ b/' "$p" | sed 's|^+++ b/||; s|\t.*||' | while read -r f; do
      if [[ -f "$tree/$f" && ! -f "$scratch/$f" ]]; then mkdir -p "$scratch/$(dirname "$f")"; cp "$tree/$f" "$scratch/$f"; fi
    done
  done
  if [[ -s "$tree/.paygo-applied" ]]; then  # the tree holds another set: check against vanilla files
    for p in "$applied"/*.patch; do patch -d "$scratch" -p1 -R -s --no-backup-if-mismatch <"$p" >/dev/null 2>&1 || true; done
  fi
  for p in "$@"; do
    if ! patch -d "$scratch" -p1 --forward -s --no-backup-if-mismatch <"$p" >"$work/patch.log" 2>&1; then
      echo "kernel/run.sh: $(basename "$p") does not apply to Linux $version:" >&2
      cat "$work/patch.log" >&2
      echo "(the series is made for Debian's linux-source-6.1, 6.1.192; see kernel/README.md)" >&2
      exit 2
    fi
  done
  rm -rf "$scratch"
}
switch_to() {  # name patch-files...
  local name="$1"; shift
  local want cur p
  want="$name:$(cat /dev/null "$@" | sha256sum | cut -c1-16)"
  cur="$(cat "$tree/.paygo-applied" 2>/dev/null || echo "vanilla:$(sha256sum </dev/null | cut -c1-16)")"
  [[ "$cur" == "$want" ]] && return 0
  if [[ -d "$applied" ]]; then
    for p in $(ls -r "$applied"/*.patch 2>/dev/null); do patch -d "$tree" -p1 -R -s --no-backup-if-mismatch <"$p"; done
    rm -rf "$applied"
  fi
  mkdir -p "$applied"
  local i=0
  for p in "$@"; do
    patch -d "$tree" -p1 --forward -s --no-backup-if-mismatch <"$p"
    i=$((i + 1)); cp "$p" "$applied/$(printf %03d "$i").patch"
  done
  echo "$want" >"$tree/.paygo-applied"
}
for k in $kernels; do
  case "$k" in
    vanilla) ;;
    patched) check_applies "${series[@]}" ;;
    seed) [[ -n "$seed_patch" ]] || { echo "kernel/run.sh: --kernels seed needs --seed-patch" >&2; exit 2; }
          check_applies "$seed_patch" ;;
    *) echo "kernel/run.sh: unknown kernel '$k'" >&2; exit 2 ;;
  esac
done

# ---- 3. kernels -------------------------------------------------------------------
export CCACHE_DIR="$ccache_dir" CCACHE_MAXSIZE=5G CCACHE_BASEDIR="$work" CCACHE_NOHASHDIR=true
export KBUILD_BUILD_TIMESTAMP="2026-01-01" KBUILD_BUILD_USER=paygo KBUILD_BUILD_HOST=paygo
mkdir -p "$work/images"
build_kernel() {  # name
  local name="$1"
  case "$name" in
    vanilla) switch_to vanilla ;;
    patched) switch_to patched "${series[@]}" ;;
    seed) switch_to seed "$seed_patch" ;;
  esac
  mkdir -p "$obj"
  log "configuring $name (allnoconfig + kernel/config/guest.config)"
  make -s -C "$tree" O="$obj" KCONFIG_ALLCONFIG="$here/config/guest.config" allnoconfig >/dev/null
  local line missing=0
  while read -r line; do
    [[ "$line" =~ ^CONFIG_ ]] || continue
    grep -qx "$line" "$obj/.config" || { echo "kernel/run.sh: $name: '$line' did not make it into .config" >&2; missing=1; }
  done <"$here/config/guest.config"
  [[ $missing == 0 ]] || exit 2
  log "building $name bzImage (make -j$jobs, ccache in $CCACHE_DIR)"
  local t0=$SECONDS
  if ! make -s -C "$tree" O="$obj" -j"$jobs" CC="ccache gcc" bzImage >"$work/build-$name.log" 2>&1; then
    tail -40 "$work/build-$name.log" >&2
    echo "kernel/run.sh: $name build failed (log: $work/build-$name.log)" >&2
    exit 2
  fi
  # The series must add no compiler warning to the files it touches.
  local touched='mm/(pgref|filemap|vmscan|migrate|khugepaged|fadvise)\.[ch]:[0-9]+:[0-9]+: warning:'
  if [[ "$name" == patched ]] && grep -qE "$touched" "$work/build-$name.log"; then
    grep -E "$touched" "$work/build-$name.log" >&2
    echo "kernel/run.sh: $name: compiler warnings in the patched files" >&2
    exit 2
  fi
  cp "$obj/arch/x86/boot/bzImage" "$work/images/$name-bzImage"
  log "built $name in $((SECONDS - t0)) s"
}
for k in $kernels; do build_kernel "$k"; done

# ---- 4. guest tools, initramfs, disk ------------------------------------------------
guest="$work/guest"
mkdir -p "$guest"
log "building the guest tool (static)"
g++ -std=c++20 -O2 -static -pthread -Wall -Wextra -Werror -I"$repo/include" -I"$repo/tests/common" \
  "$here/guest/pgref_guest.cpp" -o "$guest/pgref-guest"
rootfs="$guest/rootfs"
rm -rf "$rootfs"
mkdir -p "$rootfs"/{bin,dev,proc,sys,mnt,tmp}
cp "$(command -v busybox)" "$rootfs/bin/busybox"
for applet in sh mount umount mkdir cat echo sleep sync reboot sed grep dmesg ls; do
  ln -s busybox "$rootfs/bin/$applet"
done
cp "$guest/pgref-guest" "$rootfs/bin/"
install -m 0755 "$here/guest/init" "$rootfs/init"
(cd "$rootfs" && find . | cpio -o -H newc --quiet | gzip -1) >"$guest/initramfs.cpio.gz"

# ---- 5. boots ------------------------------------------------------------------------
boot() {  # kernel mode boot-number: boots once, the serial log goes to $out
  local name="$1" mode="$2" n="$3"
  local img="$guest/disk-$name.img" logf="$out/serial-$name-$n.log"
  rm -f "$img"
  truncate -s 512M "$img"
  mkfs.ext4 -q -F "$img"
  log "boot $n of $name ($mode suite)"
  local t0=$SECONDS rc=0
  timeout "$qemu_timeout" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 2G \
    -kernel "$work/images/$name-bzImage" -initrd "$guest/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 pgref.mode=$mode pgref.race=${PAYGO_RACE_SECONDS:-20}" \
    -drive "file=$img,if=virtio,format=raw" \
    -display none -monitor none -serial "file:$logf" -no-reboot </dev/null >/dev/null 2>&1 || rc=$?
  rm -f "$img"
  [[ $rc == 124 ]] && echo "QEMU-TIMEOUT after ${qemu_timeout}s" >>"$logf"
  log "boot $n of $name: $((SECONDS - t0)) s, exit $rc"
}
# Boots alternate between kernels (vanilla 1, patched 1, vanilla 2, ...), so
# a slow spell of this shared machine hits both sides of a ratio.
for ((n = 1; n <= boots; n++)); do
  for k in $kernels; do
    if [[ $n == 1 ]]; then boot "$k" "${PAYGO_FIRST_MODE:-full}" "$n"; else boot "$k" bench "$n"; fi
  done
done

# ---- 6. parse the serial logs ------------------------------------------------------------
python3 "$here/parse_serial.py" --out "$out" --boots "$boots" --version "$version" $kernels
