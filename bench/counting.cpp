// bench/counting.cpp — `paygo-bench counting`: the counting-overhead
// experiment (fxmark's DRBL/DRBM/DRBH, 4 KiB buffered reads).
//
//   DRBL  each thread reads block 0 of its own file
//   DRBM  all threads share one file, each reads its own block
//   DRBH  all threads read the same block of the same file
//   DRBZ  all threads read 4 KiB blocks of one file of --file-size drawn from
//         a Zipf distribution (theta 0.99; rank -> block scrambled), the
//         cache holding the whole file (loaded before the run) unless
//         --cache-size is smaller (then it misses)
//   PHASE one shared file, --phases phases of --phase-seconds each,
//         alternating DRBH (block 0) and DRBM (thread i: block i + 1);
//         promotions and demotions of the hot block reported per phase
//   RRND  all threads read uniformly random 4 KiB blocks of one file of
//         --file-size (default 4x --cache-size, default 64 MiB): mostly
//         misses; each thread draws from its own generator, seeded by
//         (thread, repeat), so every counter and io reads the same blocks
//
// Every row records the cache and file sizes and, from the cache's
// statistics over the timed part, hits, misses and evictions per second.
// --io cache: through paygo::cache::PageCache<C> for each --counters entry.
//             PAYGO runs once per --hint value: auto (no advice: self-
//             tuning), hot (the whole file advised Hot, the seed's hot
//             section), central (advised Central); the other counters run
//             once, advised Hot (they honour it through set_distributed).
// --io pread: through the OS page cache (Linux's own atomic page count);
//             the counter column says `kernel`.
// --io rocksdb-lru, rocksdb-hcc, rocksdb-paygo: RocksDB's LRUCache /
//             HyperClockCache / PAYGO's rocksdb::Cache (paygo::rocksdb::
//             NewPaygoCache; bench/rocksdb_caches.hpp makes all three)
//             holding the 4 KiB blocks (key: file id + block, 16 bytes);
//             a read is Lookup + memcpy 4 KiB + Release; the counter column
//             is the cache's name. The virtual calls are RocksDB's own API.
#include <fcntl.h>
#include <fmt/core.h>
#include <rocksdb/cache.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "cache_points.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "paygo/cache/page_cache.hpp"
#include "paygo/paygo_counter.hpp"
#include "rng.hpp"
#include "rocksdb_caches.hpp"
#include "workfiles.hpp"
#include "zipf.hpp"

namespace paygo::bench {
namespace {

constexpr std::size_t kBlock = 4096;
const std::vector<std::string> kWorkloads = {"DRBL", "DRBM", "DRBH", "DRBZ", "PHASE", "RRND"};
const std::vector<std::string> kHints = {"auto", "hot", "central"};

const std::vector<std::string> kIoModes = {"cache", "pread", "rocksdb-lru", "rocksdb-hcc",
                                           "rocksdb-paygo"};
constexpr unsigned kReadsPerCheck = 16;
/// RocksDB caches get a realistic block-cache size (so their default
/// sharding applies: 2^6 shards of 1 MiB), far more than the blocks read
/// by DRBL/DRBM/DRBH (unless --cache-size says otherwise).
constexpr std::size_t kRocksCapacity = std::size_t{64} << 20;
/// RRND's default cache (io cache and RocksDB); its file is kRrndFileFactor
/// times the cache unless --file-size is given.
constexpr std::uint64_t kRrndCache = std::uint64_t{64} << 20;
constexpr std::uint64_t kRrndFileFactor = 4;
/// DRBZ's default file.
constexpr std::uint64_t kDrbzFile = std::uint64_t{64} << 20;
/// The smallest --cache-size: this many pages plus one per thread (every
/// reader pins one page at a time; a cache of a few frames only measures
/// ENOBUFS).
constexpr std::uint64_t kMinCachePages = 16;

/// Tells the compiler the bytes at `p` are used, so the copy into a buffer
/// nobody reads is not optimized away.
inline void keep(const void* p) {
  __asm__ __volatile__("" : : "r"(p) : "memory");
}

/// A reader's timed loop: read_one() until `stop`, kReadsPerCheck calls per
/// look at the flag (relaxed: it carries no data, only "stop soon").
/// Returns the reads done.
template <class ReadOne>
std::uint64_t reads_until(const std::atomic<bool>& stop, ReadOne&& read_one) {
  std::uint64_t n = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    for (unsigned k = 0; k < kReadsPerCheck; ++k) read_one();
    n += kReadsPerCheck;
  }
  return n;
}

struct CountingOptions {
  std::vector<std::string> workloads = {"DRBL", "DRBM", "DRBH"};
  std::vector<std::string> hints = {"auto"};
  std::vector<std::string> slot_modes;  // add_slot_modes(): the library's default
  // 0: not given (a given size is at least 1), per workload: DRBZ's file 64M,
  // RRND's 4x the cache; the cache: see cache_bytes_for.
  std::uint64_t file_size = 0;
  std::uint64_t cache_size = 0;
  double phase_seconds = 0.25;
  unsigned phases = 4;
  // PAYGO's self-tuning options (Paygo::Options defaults unless given).
  std::uint32_t promote_events = PaygoOptions{}.promote_events;
  std::uint32_t promote_window_us = PaygoOptions{}.promote_window_us;
  std::uint32_t demote_sweeps = PaygoOptions{}.demote_sweeps;
  std::uint32_t inhibit_ms = PaygoOptions{}.inhibit_ms;
  std::uint32_t sweep_every = cache::CacheOptions{}.sweep_every;
  std::vector<std::string> counters = {"all"};
  std::vector<std::string> io = kIoModes;
  std::vector<std::string> threads;  // empty: 1..number of usable CPUs
  double duration = 0.3;
  unsigned repeat = 3;
  std::string dir;
  std::string json, csv;
};

/// The files of one run, made once: per-thread files (DRBL), one file with
/// a block per thread (DRBM), one block (DRBH); DRBZ's and RRND's files
/// (one file when both have the same size) and PHASE's file (block 0 hot,
/// then a block per thread) when selected. Sizes are multiples of kBlock.
struct Files {
  Files(const ScratchDir& dir, unsigned threads, std::uint64_t zipf_size, bool phase,
        std::uint64_t rrnd_size)
      : max_threads(threads), zipf_bytes(zipf_size), rrnd_bytes(rrnd_size) {
    for (unsigned i = 0; i < max_threads; ++i) {
      private_files.push_back(dir.make_file("drbl-" + std::to_string(i), kBlock));
    }
    shared_blocks = dir.make_file("drbm", std::uint64_t{kBlock} * max_threads);
    hot_block = dir.make_file("drbh", kBlock);
    if (zipf_bytes != 0) zipf_file = dir.make_file("drbz", zipf_bytes);
    if (phase) phase_file = dir.make_file("phase", std::uint64_t{kBlock} * (max_threads + 1));
    if (rrnd_bytes != 0) {
      rrnd_file = rrnd_bytes == zipf_bytes ? zipf_file : dir.make_file("rrnd", rrnd_bytes);
    }
    zipf_blocks = zipf_bytes / kBlock;
    rrnd_blocks = rrnd_bytes / kBlock;
  }
  /// (path, block) thread i reads in `workload` (DRBZ/PHASE/RRND: the file;
  /// the block is chosen per read, the one returned is the warm-up's).
  std::pair<const std::string*, std::uint64_t> target(const std::string& workload,
                                                      unsigned i) const {
    if (workload == "DRBL") return {&private_files[i], 0};
    if (workload == "DRBM") return {&shared_blocks, i};
    if (workload == "DRBZ") return {&zipf_file, 0};
    if (workload == "PHASE") return {&phase_file, 0};
    if (workload == "RRND") return {&rrnd_file, 0};
    return {&hot_block, 0};
  }
  /// A number per file (thread i's private file: i; then the shared ones),
  /// the file-id half of a RocksDB key.
  std::uint64_t file_id(const std::string& workload, unsigned i) const {
    if (workload == "DRBL") return i;
    if (workload == "DRBM") return private_files.size();
    if (workload == "RRND") return private_files.size() + 2;
    return private_files.size() + 1;
  }
  /// The size of the file `workload` reads (DRBL: each thread's own file).
  std::uint64_t bytes(const std::string& workload) const {
    if (workload == "DRBM") return std::uint64_t{kBlock} * max_threads;
    if (workload == "DRBZ") return zipf_bytes;
    if (workload == "PHASE") return std::uint64_t{kBlock} * (max_threads + 1);
    if (workload == "RRND") return rrnd_bytes;
    return kBlock;
  }
  unsigned max_threads;
  std::uint64_t zipf_bytes, rrnd_bytes;
  std::vector<std::string> private_files;
  std::string shared_blocks, hot_block, zipf_file, phase_file, rrnd_file;
  std::uint64_t zipf_blocks = 0, rrnd_blocks = 0;
};

/// One repeat of a point: reads/s, what self-tuning did (io cache), the
/// cache's size and its hits, misses and evictions per second over the
/// timed part (null where the io does not count them).
struct CacheRun {
  double ops = 0;
  TuneSample tune = {};
  nlohmann::json phases = nullptr;  // PHASE only
  std::optional<std::uint64_t> cache_bytes = std::nullopt;
  std::optional<double> hits = std::nullopt, misses = std::nullopt, evictions = std::nullopt;
};

/// One repeat of an io=cache point over a fresh cache of `cache_bytes`
/// (a multiple of kBlock). `repeat` seeds RRND's generators; `slot` is
/// PAYGO's slot mode (null for the other counters).
template <class C>
CacheRun cache_once(const Files& files, const Zipf* zipf, const std::string& workload,
                    unsigned threads, double seconds, const std::string& hint,
                    std::optional<SlotMode> slot, const CountingOptions& copt,
                    std::uint64_t cache_bytes, unsigned repeat) {
  const bool drbz = workload == "DRBZ";
  const bool phase = workload == "PHASE";
  const bool rrnd = workload == "RRND";
  cache::CacheOptions opt;
  opt.capacity_bytes = static_cast<std::size_t>(cache_bytes);
  opt.sweep_every = copt.sweep_every;
  auto make_cache = [&] {
    if constexpr (std::is_same_v<C, Paygo>) {
      PaygoOptions po;
      if (slot) po.slot_mode = *slot;
      po.promote_events = copt.promote_events;
      po.promote_window_us = copt.promote_window_us;
      po.demote_sweeps = copt.demote_sweeps;
      po.inhibit_ms = copt.inhibit_ms;
      return std::make_unique<cache::PageCache<C>>(opt, po);
    } else {
      return std::make_unique<cache::PageCache<C>>(opt);
    }
  };
  const auto pc_owner = make_cache();
  cache::PageCache<C>& pc = *pc_owner;
  std::vector<cache::FileId> ids(threads);
  std::vector<std::uint64_t> blocks(threads);
  const cache::Advice advice = advice_for(hint);
  for (unsigned i = 0; i < threads; ++i) {
    const auto [path, block] = files.target(workload, i);
    blocks[i] = block;
    if (workload != "DRBL" && i > 0) {  // one shared file: one FileId, as one inode
      ids[i] = ids[0];
      continue;
    }
    ids[i] = open_or_fail(pc, *path);
    if (advice != cache::Advice::Normal) advise_or_fail(pc, ids[i], 0, 0, advice);
  }
  if (drbz || rrnd) {
    // Fill the cache before the run (untimed): the whole file where it fits
    // (DRBZ by default), else its first pages, as many as there are frames,
    // so the timed part starts in steady state (every miss evicts).
    const std::uint64_t fill =
        std::min<std::uint64_t>(files.bytes(workload), std::uint64_t{pc.frame_count()} * kBlock);
    advise_or_fail(pc, ids[0], 0, fill, cache::Advice::WillNeed);
  }
  // PHASE: the phase the readers follow (0, 1, ...; even: DRBH), set by the
  // monitor below. Relaxed: it only chooses which block to read.
  Padded<std::atomic<unsigned>> phase_now(0);
  FirstRead first_read;
  nlohmann::json phase_log = nullptr;
  auto hot_info = [&] {
    auto r = pc.page_info(ids[0], 0);
    return r ? *r : cache::PageInfo{};
  };
  std::jthread monitor;
  if (phase) {
    phase_log = nlohmann::json::array();
    monitor = std::jthread([&](std::stop_token st) {
      // Watches the hot block every 200 us: when it became distributed and
      // central again in each phase, and what the counters say.
      // Phase 0 starts with the first read (warm-up included), as
      // first_promotion_s does.
      while (first_read.ns() == 0 && !st.stop_requested())
        std::this_thread::sleep_for(std::chrono::microseconds(20));
      const auto t0 =
          std::chrono::steady_clock::time_point(std::chrono::nanoseconds(first_read.ns()));
      const double ps = copt.phase_seconds;
      for (unsigned p = 0; p < copt.phases && !st.stop_requested(); ++p) {
        phase_now.value.store(p, std::memory_order_relaxed);
        // Phase 0 counts from the first read: a promotion before this
        // thread's first look is dated by the counter's first_promotion_ns.
        const cache::CacheStats s0 = p == 0 ? cache::CacheStats{} : pc.stats();
        std::optional<double> promoted_ms, demoted_ms, demoted_sweeps;
        bool was = p == 0 ? false : hot_info().promoted;
        if (p == 0 && hot_info().promoted) {
          const std::int64_t fp = pc.stats().first_promotion_ns;
          if (fp != 0) promoted_ms = static_cast<double>(fp - first_read.ns()) / 1e6;
          was = true;
        }
        const auto start = t0 + std::chrono::duration<double>(ps * p);
        const auto end = t0 + std::chrono::duration<double>(ps * (p + 1));
        while (std::chrono::steady_clock::now() < end && !st.stop_requested()) {
          const bool is = hot_info().promoted;
          const double ms =
              std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                  .count();
          if (is && !was && !promoted_ms) promoted_ms = ms;
          if (!is && was && !demoted_ms) {
            demoted_ms = ms;
            demoted_sweeps = static_cast<double>(pc.stats().sweeps - s0.sweeps);
          }
          was = is;
          std::this_thread::sleep_for(std::chrono::microseconds(200));
        }
        const cache::CacheStats s1 = pc.stats();
        const cache::PageInfo end_info = hot_info();
        nlohmann::json ph;
        ph["phase"] = p;
        ph["workload"] = p % 2 == 0 ? "DRBH" : "DRBM";
        ph["start_s"] = ps * p;
        ph["promotions"] = s1.promotions - s0.promotions;
        ph["demotions"] = s1.demotions - s0.demotions;
        ph["promoted_after_ms"] = or_null(promoted_ms);
        ph["demoted_after_ms"] = or_null(demoted_ms);
        ph["demoted_after_sweeps"] = or_null(demoted_sweeps);
        ph["hot_block_distributed_at_end"] = end_info.promoted || end_info.hinted;
        phase_log.push_back(std::move(ph));
      }
    });
  }
  const double timed = phase ? copt.phase_seconds * copt.phases : seconds;
  // The cache's counts over the timed part only: after every warm-up read,
  // and after the last timed read (run_team's before/after hooks).
  cache::CacheStats before, after;
  const TeamRun run = run_team(
      threads, timed,
      [&](unsigned i) {
        std::vector<char> buf(kBlock);
        first_read.mark();
        const std::uint64_t block = drbz ? zipf->draws[i][0] : blocks[i];
        auto n = pc.read(ids[i], buf.data(), kBlock, block * kBlock);
        if (!n || *n != kBlock) throw PointFailed("warm-up read failed");
      },
      [&](unsigned i, const std::atomic<bool>& stop) -> std::uint64_t {
        alignas(64) char buf[kBlock];
        auto read = [&](std::uint64_t b) {
          auto r = pc.read(ids[i], buf, kBlock, b * kBlock);
          if (!r || *r != kBlock) [[unlikely]]
            throw PointFailed(fmt::format("reading block {} failed: {}", b,
                                          r ? "short read" : r.error().message()));
          keep(buf);
        };
        if (rrnd) {
          Rng rng(repeat, i);
          const std::uint64_t nblocks = files.rrnd_blocks;
          return reads_until(stop, [&] { read(rng.below(nblocks)); });
        }
        if (drbz) {
          ZipfCursor draws(*zipf, i);
          return reads_until(stop, [&] { read(draws.next()); });
        }
        // DRBL/DRBM/DRBH: one block; PHASE: the phase's, looked up once per
        // kReadsPerCheck reads (relaxed: it only chooses the block).
        std::uint64_t block = blocks[i];
        std::uint64_t n = 0;
        while (!stop.load(std::memory_order_relaxed)) {  // relaxed: see reads_until
          if (phase) block = phase_now.value.load(std::memory_order_relaxed) % 2 == 0 ? 0 : i + 1;
          for (unsigned k = 0; k < kReadsPerCheck; ++k) read(block);
          n += kReadsPerCheck;
        }
        return n;
      },
      [&] { before = pc.stats(); }, [&] { after = pc.stats(); });
  if (monitor.joinable()) {
    monitor.request_stop();
    monitor.join();
  }
  CacheRun out;
  out.ops = run.ops_per_second();
  out.cache_bytes = std::uint64_t{pc.frame_count()} * kBlock;
  if (run.seconds > 0) {
    auto rate = [&](std::uint64_t a, std::uint64_t b) {
      return static_cast<double>(b - a) / run.seconds;
    };
    out.hits = rate(before.hits, after.hits);
    out.misses = rate(before.misses, after.misses);
    out.evictions = rate(before.evictions, after.evictions);
  }
  out.tune = tune_sample(pc, pc.stats(), first_read, ids[0], drbz ? zipf : nullptr);
  out.phases = std::move(phase_log);
  return out;
}

/// One repeat of an io=pread point (the OS page cache: no size of ours, no
/// hit counts). `zipf`: DRBZ's draws, else null; `repeat` seeds RRND.
double pread_once(const Files& files, const Zipf* zipf, const std::string& workload,
                  unsigned threads, double seconds, unsigned repeat) {
  const bool rrnd = workload == "RRND";
  std::vector<int> fds(threads, -1);
  std::vector<std::uint64_t> blocks(threads);
  for (unsigned i = 0; i < threads; ++i) {
    const auto [path, block] = files.target(workload, i);
    fds[i] = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
    blocks[i] = block;
    if (fds[i] < 0) throw PointFailed(fmt::format("open {} failed", *path));
  }
  struct Closer {
    std::vector<int>& fds;
    ~Closer() {
      for (int fd : fds) ::close(fd);
    }
  } closer{fds};
  const TeamRun run = run_team(
      threads, seconds,
      [&](unsigned i) {
        char buf[kBlock];
        if (::pread(fds[i], buf, kBlock, static_cast<off_t>(blocks[i] * kBlock)) !=
            static_cast<ssize_t>(kBlock)) {
          throw PointFailed("warm-up pread failed");
        }
      },
      [&](unsigned i, const std::atomic<bool>& stop) -> std::uint64_t {
        alignas(64) char buf[kBlock];
        auto read = [&](std::uint64_t b) {
          if (::pread(fds[i], buf, kBlock, static_cast<off_t>(b * kBlock)) !=
              static_cast<ssize_t>(kBlock)) [[unlikely]] {
            throw PointFailed("pread failed");
          }
        };
        if (rrnd) {
          Rng rng(repeat, i);
          const std::uint64_t nblocks = files.rrnd_blocks;
          return reads_until(stop, [&] { read(rng.below(nblocks)); });
        }
        if (zipf != nullptr) {
          ZipfCursor draws(*zipf, i);
          return reads_until(stop, [&] { read(draws.next()); });
        }
        return reads_until(stop, [&, block = blocks[i]] { read(block); });
      });
  return run.ops_per_second();
}

/// The 16-byte key HyperClockCache requires: file id, then block number.
struct BlockKey {
  std::array<char, 16> bytes{};
  BlockKey(std::uint64_t file, std::uint64_t block) {
    std::memcpy(bytes.data(), &file, sizeof file);
    std::memcpy(bytes.data() + sizeof file, &block, sizeof block);
  }
  ::rocksdb::Slice slice() const { return {bytes.data(), bytes.size()}; }
};

/// Reads `block` of `fd` into `buf` and inserts a copy under `key` (the
/// cache owns the copy): a block-cache fill.
void rocksdb_fill(::rocksdb::Cache& c, const std::string& io, const BlockKey& key, int fd,
                  std::uint64_t block, char* buf) {
  const ssize_t got = ::pread(fd, buf, kBlock, static_cast<off_t>(block * kBlock));
  if (got != static_cast<ssize_t>(kBlock)) [[unlikely]]
    throw PointFailed("reading a block to insert failed");
  auto data = std::make_unique<char[]>(kBlock);
  std::memcpy(data.get(), buf, kBlock);
  const ::rocksdb::Status st =
      c.Insert(key.slice(), data.get(), kBlock,
               [](const ::rocksdb::Slice&, void* value) { delete[] static_cast<char*>(value); });
  if (!st.ok()) throw PointFailed(fmt::format("{} Insert: {}", io, st.ToString()));
  static_cast<void>(data.release());  // the cache owns it now (the deleter frees it)
}

/// One repeat of a RocksDB point over a fresh cache of `cache_bytes`.
/// DRBL/DRBM/DRBH: inserts each thread's block (read from its file), then
/// times Lookup + memcpy 4 KiB + Release per read (a miss fails the point).
/// RRND: fills the cache with the file's first blocks (as many as fit),
/// then each read is a Lookup of a random block and, on a miss, pread +
/// Insert (RocksDB's own block-cache fill). Hits and misses are the bench's
/// own counts of Lookup results; evictions are not known (null).
CacheRun rocksdb_once(const std::string& io, const Files& files, const std::string& workload,
                      unsigned threads, double seconds, std::uint64_t cache_bytes,
                      unsigned repeat) {
  const bool rrnd = workload == "RRND";
  // The entries are all 4 KiB blocks: HyperClockCache's estimate is exact.
  const std::shared_ptr<::rocksdb::Cache> cache =
      make_rocksdb_cache(io, static_cast<std::size_t>(cache_bytes), kBlock);
  ::rocksdb::Cache& c = *cache;
  std::vector<BlockKey> keys;
  keys.reserve(threads);
  std::vector<int> fds(threads, -1);
  struct Closer {
    std::vector<int>& fds;
    ~Closer() {
      for (int fd : fds)
        if (fd >= 0) ::close(fd);
    }
  } closer{fds};
  std::map<std::pair<std::uint64_t, std::uint64_t>, bool> inserted;
  for (unsigned i = 0; i < threads; ++i) {
    const auto [path, block] = files.target(workload, i);
    const std::uint64_t file = files.file_id(workload, i);
    keys.emplace_back(file, block);
    fds[i] = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
    if (fds[i] < 0) throw PointFailed(fmt::format("open {} failed", *path));
    if (rrnd || !inserted.emplace(std::pair{file, block}, true).second) continue;
    char buf[kBlock];
    rocksdb_fill(c, io, keys.back(), fds[i], block, buf);
  }
  const std::uint64_t file_id = files.file_id(workload, 0);
  if (rrnd) {  // untimed: the cache full of the file's first blocks
    const std::uint64_t fill = std::min<std::uint64_t>(files.rrnd_blocks, cache_bytes / kBlock);
    char buf[kBlock];
    for (std::uint64_t b = 0; b < fill; ++b)
      rocksdb_fill(c, io, BlockKey(file_id, b), fds[0], b, buf);
  }
  std::vector<Padded<std::uint64_t>> misses(threads);
  const TeamRun run = run_team(
      threads, seconds,
      [&](unsigned i) {
        if (rrnd) return;  // the first read may miss: nothing to warm
        ::rocksdb::Cache::Handle* h = c.Lookup(keys[i].slice());
        if (h == nullptr) throw PointFailed(fmt::format("{}: warm-up lookup missed", io));
        c.Release(h);
      },
      [&](unsigned i, const std::atomic<bool>& stop) -> std::uint64_t {
        alignas(64) char buf[kBlock];
        if (rrnd) {
          Rng rng(repeat, i);
          const std::uint64_t nblocks = files.rrnd_blocks;
          std::uint64_t missed = 0;
          const std::uint64_t n = reads_until(stop, [&] {
            const std::uint64_t b = rng.below(nblocks);
            const BlockKey key(file_id, b);
            if (::rocksdb::Cache::Handle* h = c.Lookup(key.slice()); h != nullptr) {
              std::memcpy(buf, c.Value(h), kBlock);
              c.Release(h);
            } else {  // a miss: pread into buf, insert a copy
              rocksdb_fill(c, io, key, fds[i], b, buf);
              ++missed;
            }
            keep(buf);
          });
          misses[i].value = missed;  // read after the joins
          return n;
        }
        const ::rocksdb::Slice key = keys[i].slice();
        return reads_until(stop, [&] {
          ::rocksdb::Cache::Handle* h = c.Lookup(key);
          if (h == nullptr) [[unlikely]]
            throw PointFailed("a RocksDB lookup missed");
          std::memcpy(buf, c.Value(h), kBlock);
          c.Release(h);
          keep(buf);
        });
      });
  CacheRun out;
  out.ops = run.ops_per_second();
  out.cache_bytes = cache_bytes;
  if (run.seconds > 0) {
    std::uint64_t missed = 0;
    for (const auto& m : misses) missed += m.value;
    out.hits = static_cast<double>(run.ops - missed) / run.seconds;
    out.misses = static_cast<double>(missed) / run.seconds;
  }
  return out;
}

/// PHASE rows: one line per phase of every repeat (the hot block's
/// promotion and demotion), after the tables.
void print_phases(const std::vector<Result>& results) {
  bool header = false;
  for (const Result& r : results) {
    if (r.workload != "PHASE" || !r.phases.is_array()) continue;
    if (!header) {
      fmt::print(
          "\ncounting / PHASE per phase (hot block: ms from the phase start to its promotion / "
          "demotion, sweep steps to the demotion)\n{:<14} {:<8} {:<6} {:>7} {:>6} {:>5} {:<6} "
          "{:>6} {:>6} {:>10} {:>10} {:>7}\n",
          "counter", "hint", "slot", "threads", "repeat", "phase", "kind", "promo", "demo",
          "promo_ms", "demo_ms", "sweeps");
      header = true;
    }
    auto v = [](const nlohmann::json& j) {
      return j.is_null() ? std::string("-") : fmt::format("{:.3g}", j.get<double>());
    };
    for (const auto& ph : r.phases) {
      fmt::print("{:<14} {:<8} {:<6} {:>7} {:>6} {:>5} {:<6} {:>6} {:>6} {:>10} {:>10} {:>7}\n",
                 r.counter, r.hint.value_or("-"), r.slot_mode.value_or("-"), r.threads,
                 ph.value("repeat", 0), ph.value("phase", 0), ph.value("workload", ""),
                 ph.value("promotions", 0), ph.value("demotions", 0), v(ph["promoted_after_ms"]),
                 v(ph["demoted_after_ms"]), v(ph["demoted_after_sweeps"]));
    }
  }
  std::fflush(stdout);
}

int run_counting(const CountingOptions& opt) {
  const auto workloads = selected(opt.workloads, kWorkloads, "--workload");
  const auto counters = selected(opt.counters, all_counter_names(), "--counters");
  const auto io = selected(opt.io, kIoModes, "--io");
  const auto hints = selected(opt.hints, kHints, "--hint");
  const std::vector<SlotMode> slot_modes = selected_slot_modes(opt.slot_modes);
  const std::vector<unsigned> threads = threads_or_cpus(opt.threads);
  const double duration = opt.duration;
  auto has_workload = [&](std::string_view w) {
    return std::find(workloads.begin(), workloads.end(), w) != workloads.end();
  };
  const bool with_drbz = has_workload("DRBZ");
  const bool with_phase = has_workload("PHASE");
  const bool with_rrnd = has_workload("RRND");
  const unsigned max_threads = *std::max_element(threads.begin(), threads.end());
  // --cache-size and --file-size: given, or per workload (cache_bytes_for
  // below; DRBZ's file 64M, RRND's four times its cache).
  const long phys_pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGESIZE);
  const std::uint64_t memory =  // 0: unknown (no check)
      phys_pages > 0 && page_size > 0
          ? static_cast<std::uint64_t>(phys_pages) * static_cast<std::uint64_t>(page_size)
          : 0;
  std::optional<std::uint64_t> cache_arg, file_arg;
  if (opt.cache_size != 0) {
    const std::uint64_t c = opt.cache_size;
    const std::uint64_t min_pages = kMinCachePages + max_threads;
    if (c % kBlock != 0) {
      throw UsageError(
          fmt::format("--cache-size: {} is not a multiple of {} (the page size)", c, kBlock));
    }
    if (c / kBlock < min_pages) {
      throw UsageError(fmt::format(
          "--cache-size: {} bytes is too small: at least {} pages ({} bytes), {} plus one per "
          "thread for --threads up to {}",
          c, min_pages, min_pages * kBlock, kMinCachePages, max_threads));
    }
    if (memory != 0 && c > memory) {
      throw UsageError(
          fmt::format("--cache-size: {} bytes is more than this machine's memory ({})", c, memory));
    }
    cache_arg = c;
  }
  if (opt.file_size != 0) {
    const std::uint64_t f = opt.file_size;
    if (with_drbz || with_rrnd) {  // the other workloads read their own small files
      if (f < kBlock) {
        throw UsageError(fmt::format("--file-size: at least {} bytes for DRBZ and RRND", kBlock));
      }
      if (f % kBlock != 0) {
        throw UsageError(
            fmt::format("--file-size: {} is not a multiple of {} (DRBZ and RRND read whole blocks)",
                        f, kBlock));
      }
      if (f / kBlock > (std::uint64_t{1} << 32)) {
        throw UsageError("--file-size: at most 2^32 blocks");
      }
    }
    file_arg = f;
  }
  const std::uint64_t zipf_bytes = with_drbz ? file_arg.value_or(kDrbzFile) : 0;
  const std::uint64_t rrnd_cache = cache_arg.value_or(kRrndCache);
  const std::uint64_t rrnd_bytes = with_rrnd ? file_arg.value_or(kRrndFileFactor * rrnd_cache) : 0;
  // The cache of a point: --cache-size, else RRND's 64 MiB, else (io cache)
  // one that holds the file (DRBZ: the file and a sixteenth, DRBL/DRBM/DRBH
  // and PHASE: 16 pages and one per thread), else RocksDB's 64 MiB.
  auto cache_bytes_for = [&](const std::string& w, unsigned t, bool rocksdb) -> std::uint64_t {
    if (cache_arg) return *cache_arg;
    if (w == "RRND") return kRrndCache;
    if (rocksdb) return kRocksCapacity;
    if (w == "DRBZ") return holding_bytes(zipf_bytes / kBlock);
    return std::uint64_t{kBlock} * (t + kMinCachePages);
  };
  if (with_drbz && !cache_arg && memory != 0 && cache_bytes_for("DRBZ", 1, false) > memory) {
    throw UsageError(fmt::format(
        "--file-size: DRBZ's cache would hold the {}-byte file, more than this machine's memory "
        "({}); give a smaller --cache-size",
        zipf_bytes, memory));
  }
  Outputs outputs(opt.json, opt.csv);
  ScratchDir dir(opt.dir);
  {
    const std::uint64_t need = zipf_bytes + (rrnd_bytes == zipf_bytes ? 0 : rrnd_bytes);
    std::error_code ec;
    const auto space = std::filesystem::space(dir.path(), ec);
    if (!ec && need > space.available) {
      throw UsageError(fmt::format(
          "--file-size: the DRBZ/RRND files need {} bytes, {} has {} free (choose another "
          "--dir or a smaller size)",
          need, dir.path().parent_path().string(), space.available));
    }
  }
  const Files files(dir, max_threads, zipf_bytes, with_phase, rrnd_bytes);
  std::unique_ptr<Zipf> zipf;
  if (with_drbz) zipf = std::make_unique<Zipf>(files.zipf_blocks, max_threads);

  const bool with_cache = std::find(io.begin(), io.end(), "cache") != io.end();
  const bool with_pread = std::find(io.begin(), io.end(), "pread") != io.end();
  std::vector<std::string> rocks;  // the RocksDB caches, in kIoModes order
  for (const auto& m : kIoModes) {
    if (m.rfind("rocksdb-", 0) == 0 && std::find(io.begin(), io.end(), m) != io.end()) {
      rocks.push_back(m);
    }
  }
  // Points per (workload, threads): the cache's counters (PAYGO once per
  // hint and slot mode), pread (not PHASE), the RocksDB caches (DRBL/DRBM/
  // DRBH and RRND).
  auto rocksdb_runs = [](const std::string& w) { return w != "DRBZ" && w != "PHASE"; };
  std::size_t cache_points = 0;
  if (with_cache) {
    for_each_selected(counters, [&]<class C>() {
      cache_points += (std::string_view(C::kName) == "paygo" ? hints.size() : 1) *
                      slot_modes_of<C>(slot_modes).size();
    });
  }
  std::size_t total = 0;
  for (const auto& w : workloads) {
    total += threads.size() * (cache_points + (with_pread && w != "PHASE" ? 1 : 0) +
                               (rocksdb_runs(w) ? rocks.size() : 0));
  }
  if (total == 0) {
    throw UsageError(
        "nothing to measure: DRBZ runs on --io cache and pread, PHASE on --io cache only, "
        "RocksDB on DRBL/DRBM/DRBH and RRND");
  }
  Progress progress(total);
  std::vector<Result> results;
  unsigned failures = 0;
  // The points of one (workload, threads) pair run their repeats
  // interleaved (round r of every point, then round r + 1), so a drift in the
  // machine's speed (another tenant, frequency) hits every counter alike and
  // the ratios between them stay fair.
  struct Point {
    std::string counter, mode;
    std::optional<std::string> hint;
    bool tunes;  // the counter tunes itself: its self-tuning fields are not null
    std::function<CacheRun(unsigned repeat)> once;
    std::optional<std::string> slot = {};  // PAYGO's slot mode; null for the others
    std::vector<double> samples = {};
    std::vector<TuneSample> tune = {};
    std::optional<std::uint64_t> cache_bytes = {};
    std::vector<double> hits = {}, misses = {}, evictions = {};  // per second, per repeat
    nlohmann::json phases = nlohmann::json::array();             // PHASE: every repeat's phases
    bool failed = false;
  };
  auto label = [](const std::string& workload, const Point& p, unsigned t) {
    return fmt::format("counting {} io={} {}{}{} threads={}", workload, p.mode, p.counter,
                       p.hint ? " hint=" + *p.hint : std::string(),
                       p.slot ? " slot=" + *p.slot : std::string(), t);
  };
  auto run_group = [&](const std::string& workload, unsigned t, std::vector<Point>& points) {
    for (unsigned r = 0; r < opt.repeat; ++r) {
      for (auto& p : points) {
        if (p.failed) continue;
        try {
          CacheRun run = p.once(r);
          p.samples.push_back(run.ops);
          p.tune.push_back(run.tune);
          p.cache_bytes = run.cache_bytes;
          if (run.hits) p.hits.push_back(*run.hits);
          if (run.misses) p.misses.push_back(*run.misses);
          if (run.evictions) p.evictions.push_back(*run.evictions);
          if (!run.phases.is_null()) {
            for (auto& ph : run.phases) {
              ph["repeat"] = r;
              p.phases.push_back(std::move(ph));
            }
          }
        } catch (const PointFailed& e) {
          p.failed = true;
          ++failures;
          progress.report(label(workload, p, t), fmt::format("FAILED: {}", e.what()));
        }
      }
    }
    for (auto& p : points) {
      if (p.failed) continue;
      Result res{"counting",           workload, p.counter, p.mode, t, std::nullopt,
                 summarize(p.samples), "ops/s"};
      res.hint = p.hint;
      res.slot_mode = p.slot;
      if (p.mode == "cache") set_tuning(res, p.tune, p.tunes);
      if (workload == "PHASE") res.phases = std::move(p.phases);
      res.cache_bytes = p.cache_bytes;
      res.file_bytes = files.bytes(workload);
      // Medians of the repeats' rates; null where no repeat had one.
      res.hits_per_s = median_or_null(p.hits);
      res.misses_per_s = median_or_null(p.misses);
      res.evictions_per_s = median_or_null(p.evictions);
      progress.report(
          label(workload, p, t),
          fmt::format("{} ops/s (median of {}){}{}", human(res.stats.median, "ops/s"),
                      p.samples.size(),
                      res.promotions ? fmt::format(", {:g} promotions, {:g} demotions",
                                                   *res.promotions, *res.demotions)
                                     : std::string(),
                      res.misses_per_s && *res.misses_per_s > 0
                          ? fmt::format(", {} misses/s", human(*res.misses_per_s, "ops/s"))
                          : std::string()));
      results.push_back(std::move(res));
    }
  };
  const Zipf* z = zipf.get();
  for (const auto& w : workloads) {
    for (unsigned t : threads) {
      std::vector<Point> points;
      if (with_cache) {
        const std::uint64_t cb = cache_bytes_for(w, t, false);
        for_each_selected(counters, [&]<class C>() {
          const bool paygo = std::string_view(C::kName) == "paygo";
          // PAYGO: once per hint and slot mode (the slot modes of one hint
          // side by side); the others once, advised Hot.
          for (const std::string& h : paygo ? hints : std::vector<std::string>{"hot"}) {
            for (const std::optional<SlotMode> m : slot_modes_of<C>(slot_modes)) {
              points.push_back({std::string(C::kName), "cache", h, kTunes<C>,
                                [&files, z, &w, t, duration, h, m, &opt, cb](unsigned r) {
                                  return cache_once<C>(files, z, w, t, duration, h, m, opt, cb, r);
                                },
                                slot_mode_field(m)});
            }
          }
        });
      }
      if (with_pread && w != "PHASE") {
        points.push_back(
            {"kernel", "pread", std::nullopt, false, [&files, z, &w, t, duration](unsigned r) {
               return CacheRun{pread_once(files, w == "DRBZ" ? z : nullptr, w, t, duration, r)};
             }});
      }
      if (rocksdb_runs(w)) {
        const std::uint64_t cb = cache_bytes_for(w, t, true);
        for (const auto& m : rocks) {
          points.push_back(
              {m, m, std::nullopt, false, [&files, &w, &m, t, duration, cb](unsigned r) {
                 return rocksdb_once(m, files, w, t, duration, cb, r);
               }});
        }
      }
      run_group(w, t, points);
    }
  }
  nlohmann::json config = {
      {"command", "counting"},
      {"workloads", workloads},
      {"counters", counters},
      {"io", io},
      {"hints", hints},
      {"slot_modes", names_of(slot_modes)},
      {"threads", threads},
      {"duration_s", duration},
      {"repeat", opt.repeat},
      {"block_bytes", kBlock},
      {"file_size_bytes", with_drbz ? nlohmann::json(zipf_bytes) : nlohmann::json(nullptr)},
      {"rrnd_file_size_bytes", with_rrnd ? nlohmann::json(rrnd_bytes) : nlohmann::json(nullptr)},
      {"cache_size_bytes", or_null(cache_arg)},
      {"zipf_theta", kZipfTheta},
      {"phase_seconds", opt.phase_seconds},
      {"phases", opt.phases},
      {"promote_events", opt.promote_events},
      {"promote_window_us", opt.promote_window_us},
      {"demote_sweeps", opt.demote_sweeps},
      {"inhibit_ms", opt.inhibit_ms},
      {"sweep_every", opt.sweep_every}};
  outputs.write(config, results);
  print_tables(results);
  print_phases(results);
  return outputs.finish(failures);
}

}  // namespace

Subcommand add_counting_command(CLI::App& app) {
  auto opt = std::make_shared<CountingOptions>();
  CLI::App* sub = app.add_subcommand(
      "counting",
      "Counting overhead: fxmark's buffered-read workloads, 4 KiB reads.\n"
      "  DRBL  each thread reads block 0 of its own file\n"
      "  DRBM  one shared file, each thread reads its own block\n"
      "  DRBH  one shared file, every thread reads the same block\n"
      "  DRBZ  every thread reads 4 KiB blocks of one file of --file-size drawn from a Zipf\n"
      "        distribution (theta 0.99, ranks shuffled over the file); by default the cache\n"
      "        holds the whole file, loaded before the run (io cache and pread only)\n"
      "  PHASE one shared file, --phases phases of --phase-seconds alternating DRBH (block 0)\n"
      "        and DRBM (thread i: block i+1); per phase, when the hot block was promoted and\n"
      "        demoted (io cache only; the timed part is the phases, not --duration)\n"
      "  RRND  every thread reads uniformly random aligned 4 KiB blocks of one shared file\n"
      "        (default 4x the cache: mostly misses); each thread has its own generator,\n"
      "        seeded by (thread, repeat), so all points of a round read the same blocks. The\n"
      "        cache is filled with the file's first blocks before the run. pread reads\n"
      "        through the OS page cache, which is not limited by --cache-size\n"
      "Sizes (--cache-size, --file-size; multiples of 4096, K/M/G suffixes). Defaults:\n"
      "  DRBL, DRBM, DRBH, PHASE  a cache of 16 pages + one per thread (it holds the file);\n"
      "         RocksDB 64 MiB\n"
      "  DRBZ   a 64M file, a cache holding all of it (file + 1/16 + 64 pages), loaded\n"
      "         before the run; a --cache-size below the file makes DRBZ miss\n"
      "  RRND   a 64M cache (io cache and RocksDB), a file of 4x the cache\n"
      "  --cache-size applies to every workload and to the RocksDB caches; --file-size to\n"
      "  DRBZ and RRND. Each row records cache_bytes and file_bytes (cache_bytes null for\n"
      "  pread) and hits/misses/evictions per second over the timed part (from the\n"
      "  cache's statistics; null for pread; RocksDB: hits and misses of its Lookups)\n"
      "I/O modes:\n"
      "  cache  paygo's page cache with each --counters entry. PAYGO runs once per --hint:\n"
      "         auto (no advice: self-tuning), hot (the files advised Hot: the seed's hot\n"
      "         section), central (advised Central), and within each hint once per\n"
      "         --slot-mode (thread, cpu, spill; default: the library's; column 'slot');\n"
      "         the other counters run once, advised Hot (hint column 'hot', no slot mode)\n"
      "  pread  the OS page cache through pread(2); the counter column is 'kernel'\n"
      "  rocksdb-lru, rocksdb-hcc, rocksdb-paygo  RocksDB's LRUCache / HyperClockCache /\n"
      "         PAYGO's rocksdb::Cache (paygo::rocksdb::NewPaygoCache: pins are PAYGO gets\n"
      "         and puts) (64 MiB or --cache-size, default shards) holding the 4 KiB blocks,\n"
      "         key = file id + block; a read is Lookup + memcpy 4 KiB + Release (RRND: a\n"
      "         miss is pread + Insert); the counter column is the cache's name (not DRBZ,\n"
      "         PHASE)\n"
      "Threads are pinned round-robin to the usable CPUs, warmed up (one untimed read each),\n"
      "started together and stopped by a flag after --duration seconds; result: reads/s\n"
      "summed over threads. Each point runs --repeat times (a fresh cache each time); the\n"
      "repeats of all points with the same workload and threads are interleaved (round 1 of\n"
      "each, then round 2, ...), so drift hits them alike. Median, min and max are reported,\n"
      "with ratios to noop, atomic and kernel (pread) at the same threads.\n"
      "Exit code: 0 ok, 1 a point failed, 2 bad arguments.");
  add_names(sub, "--workload,--workloads", opt->workloads, kWorkloads, "Comma-separated workloads");
  add_names(sub, "--hint", opt->hints, kHints, "Comma-separated hints for the paygo rows");
  add_slot_modes(sub, opt->slot_modes, " of --io cache");
  size_option(sub->add_option(
      "--file-size", opt->file_size,
      "DRBZ's and RRND's file: 4096, 512K, 64M, 1G, ... (a multiple of 4096; K, M, G, T "
      "are powers of 1024, also written KB or KiB). Default: DRBZ 64M, RRND 4x the cache"));
  size_option(sub->add_option(
      "--cache-size", opt->cache_size,
      "Cache size (io cache and RocksDB), every workload: 64K, 64M, 1G, ... (as --file-size; a "
      "multiple of 4096, at least 16 pages + one per thread). Default: per workload (RRND 64M; "
      "DRBZ the file + 1/16; DRBL/DRBM/DRBH/PHASE 16 pages + one per thread, RocksDB 64M)"));
  sub->add_option("--phase-seconds", opt->phase_seconds, "PHASE: seconds per phase, > 0")
      ->check(seconds())
      ->capture_default_str();
  sub->add_option("--phases", opt->phases, "PHASE: phases per repeat (DRBH first), 1..1000")
      ->check(CLI::Range(1U, 1000U))
      ->capture_default_str();
  // PAYGO's self-tuning (its rows only) and the cache's sweep steps.
  auto knob = [&](const std::string& flag, std::uint32_t& value, const std::string& help) {
    return sub->add_option(flag, value, help)->capture_default_str();
  };
  knob("--promote-events", opt->promote_events,
       "paygo rows: contended central gets one thread must see to promote (K)")
      ->check(CLI::Range(1U, 1000000U));
  knob("--promote-window-us", opt->promote_window_us,
       "paygo rows: ... within this many microseconds");
  knob("--demote-sweeps", opt->demote_sweeps,
       "paygo rows: quiet sweeps before a demotion (E), 1..255")
      ->check(CLI::Range(1U, 255U));
  knob("--inhibit-ms", opt->inhibit_ms,
       "paygo rows: no re-promotion this long after a demotion, 0..999")
      ->check(CLI::Range(0U, 999U));
  knob("--sweep-every", opt->sweep_every,
       "cache: hits per thread between sweep steps (0: no sweeps)");
  add_counters(sub, opt->counters, " for --io cache");
  add_names(sub, "--io", opt->io, kIoModes, "Comma-separated I/O modes");
  add_threads(sub, opt->threads, 1024, "");
  add_duration(sub, opt->duration);
  add_repeat(sub, opt->repeat);
  add_dir(sub, opt->dir);
  add_outputs(sub, opt->json, opt->csv);
  return {sub, [opt] { return run_counting(*opt); }};
}

}  // namespace paygo::bench
