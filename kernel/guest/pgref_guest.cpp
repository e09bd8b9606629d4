// pgref-guest: the in-guest suite of `make kernel-test` (kernel/README.md).
//
// Runs inside the QEMU guest, statically linked, as /bin/pgref-guest. Every
// subcommand prints lines the host parses from the serial log:
//   CHECK <name> ok|FAIL|skip <details>      a functional test
//   RESULT <experiment> <workload> threads=N pct=P value=V unit=U
// and exits non-zero on a failed check. The kernel under test may be vanilla
// (POSIX_FADV_HOT = 8 is then EINVAL: the hot parts report "skip") or
// patched.
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "page_pattern.hpp"  // tests/common: the same page pattern as the user-space tests

namespace {

constexpr int kFadvHot = 8;  // POSIX_FADV_HOT in the patched uapi/linux/fadvise.h
constexpr std::size_t kPage = 4096;
using Clock = std::chrono::steady_clock;

using paygo::test_support::pattern;

/// The I/O buffer of make_file() and read_all(): static, so that the leak
/// test's measurements do not include malloc's heap growing or shrinking.
alignas(4096) std::uint8_t g_buf[1 << 20];

[[noreturn]] void die(const std::string& what) {
  std::printf("CHECK setup FAIL %s: %s\n", what.c_str(), std::strerror(errno));
  std::fflush(stdout);
  std::exit(2);
}

void pin_to_cpu(unsigned i) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(i % std::max(1u, std::thread::hardware_concurrency()), &set);
  sched_setaffinity(0, sizeof set, &set);  // best effort
}

/// Writes `bytes` of pattern `file_id` to `path` (if it is not already there
/// with that size) and fsyncs it. `cheap`: each 8-byte word holds its offset
/// instead (files whose bytes are not checked; the hash per byte is slow
/// under TCG).
void make_file(const std::string& path, std::uint32_t file_id, std::uint64_t bytes,
               bool cheap = false) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) == bytes) return;
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (fd < 0) die("open " + path);
  std::uint8_t* buf = g_buf;
  for (std::uint64_t off = 0; off < bytes; off += sizeof g_buf) {
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(sizeof g_buf, bytes - off));
    if (cheap) {
      for (std::size_t i = 0; i + 8 <= n; i += 8) {
        const std::uint64_t w = off + i;
        std::memcpy(&buf[i], &w, 8);
      }
    } else {
      for (std::size_t i = 0; i < n; ++i) buf[i] = pattern(file_id, off + i);
    }
    if (::pwrite(fd, buf, n, static_cast<off_t>(off)) != static_cast<ssize_t>(n))
      die("write " + path);
  }
  if (::fsync(fd) != 0) die("fsync " + path);
  ::close(fd);
}

int open_ro(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) die("open " + path);
  return fd;
}

/// Number of bytes in [off, off + n) that differ from the pattern.
std::uint64_t mismatches(const std::uint8_t* p, std::size_t n, std::uint32_t id,
                         std::uint64_t off) {
  std::uint64_t bad = 0;
  for (std::size_t i = 0; i < n; ++i) bad += p[i] != pattern(id, off + i);
  return bad;
}

/// Reads the whole file, 1 MiB at a time. Several threads may call it at
/// once (drop's touch threads): the data is not looked at, so they share
/// g_buf.
void read_all(int fd, std::uint64_t bytes) {
  for (std::uint64_t off = 0; off < bytes; off += sizeof g_buf) {
    if (::pread(fd, g_buf, sizeof g_buf, static_cast<off_t>(off)) < 0) die("pread");
  }
}

void write_proc(const char* path, const char* value) {
  const int fd = ::open(path, O_WRONLY);
  if (fd < 0) return;
  if (::write(fd, value, std::strlen(value)) < 0) { /* reported by the caller's checks */
  }
  ::close(fd);
}

void drop_caches() {
  ::sync();
  write_proc("/proc/sys/vm/drop_caches", "1");
}

/// A field of /proc/pgref (patched kernels), -1 when absent.
long pgref_stat(const std::string& key) {
  std::ifstream in("/proc/pgref");
  std::string k;
  long v = 0;
  while (in >> k >> v)
    if (k == key) return v;
  return -1;
}

/// Free memory in KiB counted the way a leak shows: pages in the buddy
/// allocator plus pages parked on the per-CPU lists (/proc/zoneinfo "pages
/// free" + every "count:"). MemFree leaves the per-CPU lists out, and a page
/// cache filled and dropped can live entirely on them.
long free_kib() {
  std::ifstream in("/proc/zoneinfo");
  std::string line;
  long pages = 0;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string a, b;
    ls >> a;
    if (a == "pages") {
      ls >> b;
      long v = 0;
      if (b == "free" && (ls >> v)) pages += v;
    } else if (a == "count:") {
      long v = 0;
      if (ls >> v) pages += v;
    }
  }
  return pages * 4;
}

long meminfo_kib(const std::string& key) {
  std::ifstream in("/proc/meminfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::atol(line.c_str() + key.size() + 1);
  }
  return -1;
}

/// fadvise(HOT): 1 marked, 0 unsupported by this kernel (EINVAL), else dies.
int advise_hot(int fd, off_t off, off_t len) {
  const int r = ::posix_fadvise(fd, off, len, kFadvHot);
  if (r == 0) return 1;
  if (r == EINVAL) return 0;
  errno = r;
  die("posix_fadvise(HOT)");
}

// ---- content -----------------------------------------------------------------

int cmd_content(const std::string& dir, std::uint64_t bytes) {
  const std::string path = dir + "/content.dat";
  make_file(path, 1, bytes);
  const int fd = open_ro(path);
  read_all(fd, bytes);
  const int hot = advise_hot(fd, 0, 0);
  const long hot_folios = pgref_stat("hot_folios");
  std::mt19937_64 rng(42);
  std::vector<std::uint8_t> buf(3 * kPage);
  std::uint64_t bad = 0, reads = 0, short_reads = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t off = rng() % (bytes + kPage);
    const std::size_t n = 1 + rng() % buf.size();
    const ssize_t got = ::pread(fd, buf.data(), n, static_cast<off_t>(off));
    const std::uint64_t want = off >= bytes ? 0 : std::min<std::uint64_t>(n, bytes - off);
    if (got < 0 || static_cast<std::uint64_t>(got) != want) ++short_reads;
    if (got > 0) bad += mismatches(buf.data(), static_cast<std::size_t>(got), 1, off);
    ++reads;
  }
  ::close(fd);
  // hot_folios is -1 without /proc/pgref (vanilla, or another patch)
  const bool ok = bad == 0 && short_reads == 0 && (!hot || hot_folios != 0);
  std::printf(
      "CHECK content %s reads=%llu bad_bytes=%llu wrong_lengths=%llu hot=%s hot_folios=%ld\n",
      ok ? "ok" : "FAIL", static_cast<unsigned long long>(reads),
      static_cast<unsigned long long>(bad), static_cast<unsigned long long>(short_reads),
      hot ? "yes" : "unsupported", hot_folios);
  return ok ? 0 : 1;
}

// ---- race --------------------------------------------------------------------

int cmd_race(const std::string& dir, double seconds, unsigned readers, std::uint64_t bytes) {
  const std::string path = dir + "/race.dat";
  make_file(path, 2, bytes);
  const int fd = open_ro(path);
  read_all(fd, bytes);
  // A second file the toggler truncates and rewrites (same content) and
  // marks hot again: hot folios leave the cache while readers hold them
  // (the retire path). Reads of it may be short, never wrong.
  const std::string tpath = dir + "/race-trunc.dat";
  constexpr std::uint64_t kTruncBytes = 16 * kPage;
  std::vector<std::uint8_t> tcontent(kTruncBytes);
  for (std::uint64_t i = 0; i < kTruncBytes; ++i) tcontent[i] = pattern(5, i);
  const int tfd = ::open(tpath.c_str(), O_CREAT | O_TRUNC | O_RDWR, 0644);
  if (tfd < 0) die("open " + tpath);
  if (::pwrite(tfd, tcontent.data(), kTruncBytes, 0) != static_cast<ssize_t>(kTruncBytes))
    die("write " + tpath);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> reads{0}, bad{0}, errors{0}, truncated_reads{0};
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < readers; ++t) {
    ts.emplace_back([&, t] {
      pin_to_cpu(t);
      std::mt19937_64 rng(t + 1);
      std::vector<std::uint8_t> buf(2 * kPage);
      const std::uint64_t pages = bytes / kPage;
      std::uint64_t n = 0;
      // One pread of [off, off + len) of file `id`; every byte it returns
      // (a short read is fine) must be the pattern.
      auto checked_read = [&](int from, std::uint32_t id, std::uint64_t off, std::size_t len) {
        const ssize_t got = ::pread(from, buf.data(), len, static_cast<off_t>(off));
        if (got < 0) {
          errors.fetch_add(1, std::memory_order_relaxed);
          return;
        }
        bad.fetch_add(mismatches(buf.data(), static_cast<std::size_t>(got), id, off),
                      std::memory_order_relaxed);
        ++n;
      };
      while (!stop.load(std::memory_order_relaxed)) {
        if (rng() % 4 == 0) {  // the file being truncated: any prefix, right bytes
          checked_read(tfd, 5, (rng() % 16) * kPage, kPage);
          truncated_reads.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        // Mostly a few hot pages (the DRBH pattern), sometimes anywhere.
        const std::uint64_t page = (rng() % 4 != 0) ? rng() % 4 : rng() % pages;
        checked_read(fd, 2, page * kPage, (rng() % 2) ? kPage : 2 * kPage);
      }
      reads.fetch_add(n);
    });
  }
  // The toggler: hot, normal, drop, compact, dontneed, in a loop.
  std::uint64_t cycles = 0;
  int hot_ok = 0;
  const auto end = Clock::now() + std::chrono::duration<double>(seconds);
  while (Clock::now() < end) {
    if (::ftruncate(tfd, 0) != 0) die("ftruncate " + tpath);
    if (::pwrite(tfd, tcontent.data(), kTruncBytes, 0) != static_cast<ssize_t>(kTruncBytes))
      die("write " + tpath);
    advise_hot(tfd, 0, 0);
    hot_ok |= advise_hot(fd, 0, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    ::posix_fadvise(fd, 0, 2 * kPage, POSIX_FADV_NORMAL);
    advise_hot(fd, 0, 0);
    write_proc("/proc/sys/vm/drop_caches", "1");
    if (cycles % 8 == 0) write_proc("/proc/sys/vm/compact_memory", "1");
    if (cycles % 4 == 1) ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (cycles % 4 == 3) ::posix_fadvise(fd, 0, 0, POSIX_FADV_NORMAL);
    ++cycles;
  }
  stop = true;
  for (auto& t : ts) t.join();
  ::close(fd);
  ::close(tfd);
  const bool ok = bad.load() == 0 && errors.load() == 0 && reads.load() > 0;
  std::printf(
      "CHECK race %s seconds=%.0f readers=%u reads=%llu of_truncated_file=%llu bad_bytes=%llu "
      "errors=%llu cycles=%llu hot=%s pgref_busy_freezes=%ld\n",
      ok ? "ok" : "FAIL", seconds, readers, static_cast<unsigned long long>(reads.load()),
      static_cast<unsigned long long>(truncated_reads.load()),
      static_cast<unsigned long long>(bad.load()), static_cast<unsigned long long>(errors.load()),
      static_cast<unsigned long long>(cycles), hot_ok ? "yes" : "unsupported",
      pgref_stat("busy_freezes"));
  return ok ? 0 : 1;
}

// ---- leak --------------------------------------------------------------------

int cmd_leak(const std::string& dir, std::uint64_t mib) {
  const std::string path = dir + "/leak.dat";
  const std::uint64_t bytes = mib << 20;
  make_file(path, 3, bytes, true);
  {
    // Evict what the write left cached, so the reads below load the file.
    const int fd = open_ro(path);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
  drop_caches();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const long before = free_kib();
  const long cached_before = meminfo_kib("Cached");
  const long other_before = meminfo_kib("Slab") + meminfo_kib("Buffers") + cached_before;
  const int fd = open_ro(path);
  read_all(fd, bytes);
  const long cached = free_kib();
  const long loaded = meminfo_kib("Cached") - cached_before;
  const int hot = advise_hot(fd, 0, 0);
  const long hot_folios = pgref_stat("hot_folios");
  ::close(fd);
  if (::unlink(path.c_str()) != 0) die("unlink " + path);
  drop_caches();
  // Give the retire work (a jiffy or two) and RCU some time.
  long after = free_kib();
  for (int i = 0; i < 30 && before - after > 2048; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    drop_caches();
    after = free_kib();
  }
  const long left = pgref_stat("hot_folios");
  // Memory that is neither free nor in a cache the kernel accounts for
  // (slab, buffer heads, page cache): ext4 metadata and slab growth count
  // about 1 MiB here on vanilla too; leaked page-cache pages count fully.
  const long other_growth =
      meminfo_kib("Slab") + meminfo_kib("Buffers") + meminfo_kib("Cached") - other_before;
  const long lost = before - after - other_growth;
  // The test means something only if the reads really filled the cache.
  const bool loaded_ok = loaded >= static_cast<long>(bytes / 1024) * 3 / 4;
  const bool ok = loaded_ok && lost <= 1024 && left <= 0;
  std::printf(
      "CHECK leak %s mib=%llu free_before_kib=%ld free_used_by_reads_kib=%ld cache_loaded_kib=%ld "
      "after_kib=%ld slab_buffers_cache_growth_kib=%ld lost_kib=%ld hot=%s hot_folios=%ld "
      "hot_left=%ld%s\n",
      ok ? "ok" : "FAIL", static_cast<unsigned long long>(mib), before, before - cached, loaded,
      after, other_growth, lost, hot ? "yes" : "unsupported", hot_folios, left,
      loaded_ok ? "" : " (setup: the reads did not load the file into the cache)");
  return ok ? 0 : 1;
}

// ---- counting: fxmark DRBL / DRBM / DRBH --------------------------------------

double run_counting(const std::string& dir, const std::string& workload, unsigned threads,
                    double seconds, bool hot) {
  const bool own_file = workload == "DRBL";
  const bool own_block = workload == "DRBM";
  std::vector<int> fds;
  for (unsigned t = 0; t < (own_file ? threads : 1u); ++t) {
    const std::string path = dir + "/count" + std::to_string(t) + ".dat";
    make_file(path, 10 + t, 64 * kPage);
    const int fd = open_ro(path);
    read_all(fd, 64 * kPage);
    if (hot) advise_hot(fd, 0, 0);
    fds.push_back(fd);
  }
  std::atomic<unsigned> ready{0};
  std::atomic<bool> go{false}, stop{false};
  std::vector<std::uint64_t> ops(threads, 0);
  std::vector<std::thread> ts;
  for (unsigned t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      pin_to_cpu(t);
      const int fd = fds[own_file ? t : 0];
      const off_t off = own_block ? static_cast<off_t>(t * kPage) : 0;
      alignas(64) char buf[kPage];
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      std::uint64_t n = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        if (::pread(fd, buf, kPage, off) != static_cast<ssize_t>(kPage)) std::abort();
        ++n;
      }
      ops[t] = n;
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  const auto t0 = Clock::now();
  go.store(true, std::memory_order_release);
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& t : ts) t.join();
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  for (int fd : fds) {
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_NORMAL);
    ::close(fd);
  }
  std::uint64_t total = 0;
  for (auto n : ops) total += n;
  return static_cast<double>(total) / secs;
}

int cmd_count(const std::string& dir, const std::vector<std::string>& workloads,
              const std::vector<unsigned>& threads, double seconds, bool hot) {
  for (const auto& w : workloads) {
    for (unsigned t : threads) {
      const double v = run_counting(dir, w, t, seconds, hot);
      std::printf("RESULT kernel-counting %s threads=%u pct=0 value=%.0f unit=ops/s\n", w.c_str(),
                  t, v);
      std::fflush(stdout);
    }
  }
  return 0;
}

// ---- query: drop_caches time vs hot share ---------------------------------------

int cmd_drop(const std::string& dir, std::uint64_t mib, const std::vector<unsigned>& pcts,
             unsigned touch_threads, unsigned repeat) {
  const std::string path = dir + "/drop.dat";
  const std::uint64_t bytes = mib << 20;
  make_file(path, 4, bytes, true);
  for (unsigned rep = 0; rep < repeat; ++rep)
    for (unsigned pct : pcts) {
      drop_caches();
      const int fd = open_ro(path);
      read_all(fd, bytes);
      const std::uint64_t hot_bytes = bytes / kPage * pct / 100 * kPage;
      if (hot_bytes > 0) advise_hot(fd, 0, static_cast<off_t>(hot_bytes));
      // Every touch thread reads every page once, so each CPU has entries.
      std::vector<std::thread> ts;
      for (unsigned t = 0; t < touch_threads; ++t) {
        ts.emplace_back([&, t] {
          pin_to_cpu(t);
          read_all(fd, bytes);
        });
      }
      for (auto& t : ts) t.join();
      ::close(fd);
      ::sync();
      const auto t0 = Clock::now();
      write_proc("/proc/sys/vm/drop_caches", "1");
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      std::printf(
          "RESULT kernel-query drop threads=%u pct=%u value=%.6f unit=s mib=%llu hot_left=%ld\n",
          touch_threads, pct, secs, static_cast<unsigned long long>(mib), pgref_stat("hot_folios"));
      std::fflush(stdout);
    }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  CLI::App app{"pgref-guest: the in-guest suite of make kernel-test (kernel/README.md)"};
  app.require_subcommand(1);
  std::string dir = "/mnt";
  app.add_option("--dir", dir, "directory on the disk under test")->capture_default_str();

  std::uint64_t content_kib = 1024 + 3;
  auto* content =
      app.add_subcommand("content", "bytes read after marking a file hot equal its content");
  content->add_option("--kib", content_kib, "file size in KiB")->capture_default_str();

  double race_s = 20;
  unsigned race_readers = 2;
  auto* race = app.add_subcommand("race",
                                  "readers on hot pages while another thread loops "
                                  "fadvise(hot/normal/dontneed), drop_caches, compaction");
  race->add_option("--seconds", race_s, "duration")->capture_default_str();
  race->add_option("--readers", race_readers, "reader threads")->capture_default_str();

  std::uint64_t leak_mib = 32;
  auto* leak = app.add_subcommand("leak",
                                  "mark a file hot, unlink it, drop caches: free memory (buddy + "
                                  "per-CPU lists) returns within 1 MiB");
  leak->add_option("--mib", leak_mib, "file size in MiB")->capture_default_str();

  std::vector<std::string> workloads = {"DRBL", "DRBM", "DRBH"};
  std::vector<unsigned> threads = {1, 2};
  double count_s = 1;
  bool hot = false;
  auto* count = app.add_subcommand("count", "fxmark DRBL/DRBM/DRBH: 4 KiB preads, ops/s");
  count->add_option("--workloads", workloads, "DRBL, DRBM, DRBH")->capture_default_str();
  count->add_option("--threads", threads, "thread counts")->capture_default_str();
  count->add_option("--seconds", count_s, "duration of each point")->capture_default_str();
  count->add_flag("--hot", hot, "fadvise(HOT) the files first (patched kernels)");

  std::uint64_t drop_mib = 256;
  std::vector<unsigned> pcts = {0, 100};
  unsigned touch = 2;
  unsigned drop_repeat = 1;
  auto* drop =
      app.add_subcommand("drop", "time echo 1 > /proc/sys/vm/drop_caches with pct% of a file hot");
  drop->add_option("--mib", drop_mib, "file size in MiB")->capture_default_str();
  drop->add_option("--pcts", pcts, "hot percentages")->capture_default_str();
  drop->add_option("--touch-threads", touch, "threads that read every page before the drop")
      ->capture_default_str();
  drop->add_option("--repeat", drop_repeat, "rounds over --pcts (each result is printed)")
      ->capture_default_str();

  CLI11_PARSE(app, argc, argv);
  if (*content) return cmd_content(dir, content_kib * 1024);
  if (*race) return cmd_race(dir, race_s, race_readers, 256 * kPage);
  if (*leak) return cmd_leak(dir, leak_mib);
  if (*count) return cmd_count(dir, workloads, threads, count_s, hot);
  if (*drop) return cmd_drop(dir, drop_mib, pcts, touch, drop_repeat);
  return 2;
}
