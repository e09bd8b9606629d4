// bench/counting.cpp — `paygo-bench counting`: the counting-overhead
// experiment (fxmark's DRBL/DRBM/DRBH, 4 KiB buffered reads).
//
//   DRBL  each thread reads block 0 of its own file
//   DRBM  all threads share one file, each reads its own block
//   DRBH  all threads read the same block of the same file
//   DRBZ  all threads read 4 KiB blocks of one file of --file-size drawn from
//         a Zipf distribution (theta 0.99; rank -> block scrambled), the
//         cache holding the whole file (loaded before the run)
//   PHASE one shared file, --phases phases of --phase-seconds each,
//         alternating DRBH (block 0) and DRBM (thread i: block i + 1);
//         promotions and demotions of the hot block reported per phase
//
// --io cache: through paygo::cache::PageCache<C> for each --counters entry.
//             PAYGO runs once per --hint value: auto (no advice: self-
//             tuning), hot (the whole file advised Hot, the seed's hot
//             section), central (advised Central); the other counters run
//             once, advised Hot (they honour it through set_distributed).
// --io pread: through the OS page cache (Linux's own atomic page count);
//             the counter column says `kernel`.
// --io rocksdb-lru, rocksdb-hcc: RocksDB's LRUCache / HyperClockCache
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
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "commands.hpp"
#include "common.hpp"
#include "paygo/cache/page_cache.hpp"
#include "paygo/counters/paygo.hpp"
#include "workfiles.hpp"
#include "zipf.hpp"

namespace paygo::bench {
namespace {

constexpr std::size_t kBlock = 4096;
const std::vector<std::string> kWorkloads = {"DRBL", "DRBM", "DRBH", "DRBZ", "PHASE"};
const std::vector<std::string> kHints = {"auto", "hot", "central"};

const std::vector<std::string> kIoModes = {"cache", "pread", "rocksdb-lru", "rocksdb-hcc"};
constexpr unsigned kReadsPerCheck = 16;
/// RocksDB caches get a realistic block-cache size (so their default
/// sharding applies: 2^6 shards of 1 MiB), far more than the blocks read.
constexpr std::size_t kRocksCapacity = std::size_t{64} << 20;

/// Tells the compiler the bytes at `p` are used, so the copy into a buffer
/// nobody reads is not optimized away.
inline void keep(const void* p) {
  __asm__ __volatile__("" : : "r"(p) : "memory");
}

struct CountingOptions {
  std::string workloads = "DRBL,DRBM,DRBH";
  std::string hints = "auto";
  std::string file_size = "64M";
  double phase_seconds = 0.25;
  unsigned phases = 4;
  // PAYGO's self-tuning options (Paygo::Options defaults unless given).
  std::uint32_t promote_events = PaygoOptions{}.promote_events;
  std::uint32_t promote_window_us = PaygoOptions{}.promote_window_us;
  std::uint32_t demote_sweeps = PaygoOptions{}.demote_sweeps;
  std::uint32_t inhibit_ms = PaygoOptions{}.inhibit_ms;
  std::uint32_t sweep_every = cache::CacheOptions{}.sweep_every;
  std::string counters = "all";
  std::string io = "cache,pread,rocksdb-lru,rocksdb-hcc";
  std::string threads;
  double duration = 0.3;
  unsigned repeat = 3;
  std::string dir;
  std::string json, csv;
  CLI::Option* threads_opt = nullptr;
};

/// The files of one run, made once: per-thread files (DRBL), one file with
/// a block per thread (DRBM), one block (DRBH); DRBZ's file of --file-size
/// and PHASE's file (block 0 hot, then a block per thread) when selected.
struct Files {
  Files(const ScratchDir& dir, unsigned max_threads, std::uint64_t zipf_bytes, bool phase) {
    for (unsigned i = 0; i < max_threads; ++i) {
      private_files.push_back(dir.make_file("drbl-" + std::to_string(i), kBlock));
    }
    shared_blocks = dir.make_file("drbm", std::uint64_t{kBlock} * max_threads);
    hot_block = dir.make_file("drbh", kBlock);
    if (zipf_bytes != 0) zipf_file = dir.make_file("drbz", zipf_bytes);
    if (phase) phase_file = dir.make_file("phase", std::uint64_t{kBlock} * (max_threads + 1));
    zipf_blocks = (zipf_bytes + kBlock - 1) / kBlock;
  }
  /// (path, block) thread i reads in `workload` (DRBZ/PHASE: the file; the
  /// block is chosen per read).
  std::pair<const std::string*, std::uint64_t> target(const std::string& workload,
                                                      unsigned i) const {
    if (workload == "DRBL") return {&private_files[i], 0};
    if (workload == "DRBM") return {&shared_blocks, i};
    if (workload == "DRBZ") return {&zipf_file, 0};
    if (workload == "PHASE") return {&phase_file, 0};
    return {&hot_block, 0};
  }
  /// A number per file (thread i's private file: i; then the shared ones),
  /// the file-id half of a RocksDB key.
  std::uint64_t file_id(const std::string& workload, unsigned i) const {
    if (workload == "DRBL") return i;
    if (workload == "DRBM") return private_files.size();
    return private_files.size() + 1;
  }
  std::vector<std::string> private_files;
  std::string shared_blocks, hot_block, zipf_file, phase_file;
  std::uint64_t zipf_blocks = 0;
};

/// One repeat of a cache point: reads/s and what self-tuning did.
struct CacheRun {
  double ops = 0;
  TuneSample tune;
  nlohmann::json phases;  // PHASE only
};

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// The advice a point runs under: PAYGO per --hint, the others Hot.
cache::Advice advice_for(const std::string& hint) {
  if (hint == "auto") return cache::Advice::Normal;
  if (hint == "central") return cache::Advice::Central;
  return cache::Advice::Hot;
}

template <class C>
CacheRun cache_once(const Files& files, const Zipf* zipf, const std::string& workload,
                    unsigned threads, double seconds, const std::string& hint,
                    const CountingOptions& copt) {
  const bool drbz = workload == "DRBZ";
  const bool phase = workload == "PHASE";
  cache::CacheOptions opt;
  opt.capacity_bytes =
      drbz ? static_cast<std::size_t>((files.zipf_blocks + files.zipf_blocks / 16 + 64) * kBlock)
           : std::size_t{kBlock} * (threads + 16);
  opt.sweep_every = copt.sweep_every;
  auto make_cache = [&] {
    if constexpr (std::is_same_v<C, Paygo>) {
      PaygoOptions po;
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
    auto id = pc.open(*path);
    if (!id) throw PointFailed(fmt::format("open {}: {}", *path, id.error().message()));
    ids[i] = *id;
    if (advice != cache::Advice::Normal) {
      if (auto r = pc.advise(*id, 0, 0, advice); !r) {
        throw PointFailed(fmt::format("advise: {}", r.error().message()));
      }
    }
  }
  if (drbz) {  // the cache holds the whole file: load it before the run
    if (auto r = pc.advise(ids[0], 0, 0, cache::Advice::WillNeed); !r) {
      throw PointFailed(fmt::format("advise(WillNeed): {}", r.error().message()));
    }
  }
  // PHASE: the phase the readers follow (0, 1, ...; even: DRBH), set by the
  // monitor below. Relaxed: it only chooses which block to read.
  Padded<std::atomic<unsigned>> phase_now(0);
  std::atomic<std::int64_t> first_read_ns{0};
  auto mark_first_read = [&] {
    std::int64_t zero = 0;
    // Relaxed: a timestamp, read after the joins.
    first_read_ns.compare_exchange_strong(zero, steady_ns(), std::memory_order_relaxed);
  };
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
      while (first_read_ns.load(std::memory_order_relaxed) == 0 && !st.stop_requested())
        std::this_thread::sleep_for(std::chrono::microseconds(20));
      const auto t0 = std::chrono::steady_clock::time_point(
          std::chrono::nanoseconds(first_read_ns.load(std::memory_order_relaxed)));
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
          if (fp != 0)
            promoted_ms =
                static_cast<double>(fp - first_read_ns.load(std::memory_order_relaxed)) / 1e6;
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
        auto opt_json = [](const std::optional<double>& v) {
          return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
        };
        const cache::PageInfo end_info = hot_info();
        nlohmann::json ph;
        ph["phase"] = p;
        ph["workload"] = p % 2 == 0 ? "DRBH" : "DRBM";
        ph["start_s"] = ps * p;
        ph["promotions"] = s1.promotions - s0.promotions;
        ph["demotions"] = s1.demotions - s0.demotions;
        ph["promoted_after_ms"] = opt_json(promoted_ms);
        ph["demoted_after_ms"] = opt_json(demoted_ms);
        ph["demoted_after_sweeps"] = opt_json(demoted_sweeps);
        ph["hot_block_distributed_at_end"] = end_info.promoted || end_info.hinted;
        phase_log.push_back(std::move(ph));
      }
    });
  }
  const double timed = phase ? copt.phase_seconds * copt.phases : seconds;
  const TeamRun run = run_team(
      threads, timed,
      [&](unsigned i) {
        std::vector<char> buf(kBlock);
        mark_first_read();
        const std::uint64_t block = drbz ? zipf->draws[i][0] : blocks[i];
        auto n = pc.read(ids[i], buf.data(), kBlock, block * kBlock);
        if (!n || *n != kBlock) throw PointFailed("warm-up read failed");
      },
      [&](unsigned i, const std::atomic<bool>& stop) -> std::uint64_t {
        alignas(64) char buf[kBlock];
        std::uint64_t n = 0;
        if (drbz) {
          const std::uint32_t* draws = zipf->draws[i].data();
          std::size_t k = 0;
          while (!stop.load(std::memory_order_relaxed)) {  // relaxed: see below
            for (unsigned j = 0; j < kReadsPerCheck; ++j) {
              auto r = pc.read(ids[i], buf, kBlock, std::uint64_t{draws[k]} * kBlock);
              if (!r || *r != kBlock) [[unlikely]]
                throw PointFailed("a cached read failed");
              keep(buf);
              k = (k + 1) & (kZipfDraws - 1);
            }
            n += kReadsPerCheck;
          }
          return n;
        }
        std::uint64_t off = blocks[i] * kBlock;
        // Relaxed: the flag carries no data, only "stop soon".
        while (!stop.load(std::memory_order_relaxed)) {
          if (phase) {
            const unsigned p = phase_now.value.load(std::memory_order_relaxed);
            off = p % 2 == 0 ? 0 : std::uint64_t{i + 1} * kBlock;
          }
          for (unsigned k = 0; k < kReadsPerCheck; ++k) {
            auto r = pc.read(ids[i], buf, kBlock, off);
            if (!r || *r != kBlock) [[unlikely]]
              throw PointFailed("a cached read failed");
            keep(buf);
          }
          n += kReadsPerCheck;
        }
        return n;
      });
  if (monitor.joinable()) {
    monitor.request_stop();
    monitor.join();
  }
  CacheRun out;
  out.ops = run.ops_per_second();
  const cache::CacheStats st = pc.stats();
  out.tune.promotions = static_cast<double>(st.promotions);
  out.tune.demotions = static_cast<double>(st.demotions);
  out.tune.distributed_pages = static_cast<double>(st.distributed_pages);
  out.tune.promoted_pages = static_cast<double>(st.promoted_pages);
  const std::int64_t first = first_read_ns.load(std::memory_order_relaxed);
  if (st.first_promotion_ns != 0 && first != 0) {
    out.tune.first_promotion_s = static_cast<double>(st.first_promotion_ns - first) / 1e9;
  }
  if (drbz) {
    double share = 0;
    for (std::uint64_t b = 0; b < files.zipf_blocks; ++b) {
      auto info = pc.page_info(ids[0], b);
      if (info && info->promoted) share += zipf->prob[b];
    }
    out.tune.promoted_read_share = share;
  }
  out.phases = std::move(phase_log);
  return out;
}

double pread_once(const Files& files, const Zipf* zipf, const std::string& workload,
                  unsigned threads, double seconds) {
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
        const auto off = static_cast<off_t>(blocks[i] * kBlock);
        const std::uint32_t* draws = zipf != nullptr ? zipf->draws[i].data() : nullptr;
        std::size_t d = 0;
        std::uint64_t n = 0;
        while (!stop.load(std::memory_order_relaxed)) {  // relaxed: see cache_once
          for (unsigned k = 0; k < kReadsPerCheck; ++k) {
            const off_t at = draws == nullptr ? off : static_cast<off_t>(draws[d] * kBlock);
            d = (d + 1) & (kZipfDraws - 1);
            if (::pread(fds[i], buf, kBlock, at) != static_cast<ssize_t>(kBlock)) [[unlikely]] {
              throw PointFailed("pread failed");
            }
          }
          n += kReadsPerCheck;
        }
        return n;
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
  rocksdb::Slice slice() const { return {bytes.data(), bytes.size()}; }
};

std::shared_ptr<rocksdb::Cache> make_rocksdb_cache(const std::string& io) {
  if (io == "rocksdb-lru") return rocksdb::NewLRUCache(kRocksCapacity);
  // The entries are all 4 KiB blocks: the estimate is exact.
  return rocksdb::HyperClockCacheOptions(kRocksCapacity, kBlock).MakeSharedCache();
}

/// Inserts each thread's block (read from its file) into a fresh RocksDB
/// cache, then times Lookup + memcpy 4 KiB + Release per read.
double rocksdb_once(const std::string& io, const Files& files, const std::string& workload,
                    unsigned threads, double seconds) {
  const std::shared_ptr<rocksdb::Cache> cache = make_rocksdb_cache(io);
  if (!cache) throw PointFailed(fmt::format("{}: no cache made", io));
  std::vector<BlockKey> keys;
  keys.reserve(threads);
  std::map<std::pair<std::uint64_t, std::uint64_t>, bool> inserted;
  for (unsigned i = 0; i < threads; ++i) {
    const auto [path, block] = files.target(workload, i);
    const std::uint64_t file = files.file_id(workload, i);
    keys.emplace_back(file, block);
    if (!inserted.emplace(std::pair{file, block}, true).second) continue;
    const int fd = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw PointFailed(fmt::format("open {} failed", *path));
    auto data = std::make_unique<char[]>(kBlock);
    const ssize_t got = ::pread(fd, data.get(), kBlock, static_cast<off_t>(block * kBlock));
    ::close(fd);
    if (got != static_cast<ssize_t>(kBlock)) throw PointFailed("reading a block to insert failed");
    const rocksdb::Status st = cache->Insert(
        keys.back().slice(), data.get(), kBlock,
        [](const rocksdb::Slice&, void* value) { delete[] static_cast<char*>(value); });
    if (!st.ok()) throw PointFailed(fmt::format("{} Insert: {}", io, st.ToString()));
    static_cast<void>(data.release());  // the cache owns it now (the deleter frees it)
  }
  rocksdb::Cache& c = *cache;
  const TeamRun run = run_team(
      threads, seconds,
      [&](unsigned i) {
        rocksdb::Cache::Handle* h = c.Lookup(keys[i].slice());
        if (h == nullptr) throw PointFailed(fmt::format("{}: warm-up lookup missed", io));
        c.Release(h);
      },
      [&](unsigned i, const std::atomic<bool>& stop) -> std::uint64_t {
        alignas(64) char buf[kBlock];
        const rocksdb::Slice key = keys[i].slice();
        std::uint64_t n = 0;
        while (!stop.load(std::memory_order_relaxed)) {  // relaxed: see cache_once
          for (unsigned k = 0; k < kReadsPerCheck; ++k) {
            rocksdb::Cache::Handle* h = c.Lookup(key);
            if (h == nullptr) [[unlikely]]
              throw PointFailed("a RocksDB lookup missed");
            std::memcpy(buf, c.Value(h), kBlock);
            c.Release(h);
            keep(buf);
          }
          n += kReadsPerCheck;
        }
        return n;
      });
  return run.ops_per_second();
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
          "demotion, sweep steps to the demotion)\n{:<14} {:<8} {:>7} {:>6} {:>5} {:<6} {:>6} "
          "{:>6} {:>10} {:>10} {:>7}\n",
          "counter", "hint", "threads", "repeat", "phase", "kind", "promo", "demo", "promo_ms",
          "demo_ms", "sweeps");
      header = true;
    }
    auto v = [](const nlohmann::json& j) {
      return j.is_null() ? std::string("-") : fmt::format("{:.3g}", j.get<double>());
    };
    for (const auto& ph : r.phases) {
      fmt::print("{:<14} {:<8} {:>7} {:>6} {:>5} {:<6} {:>6} {:>6} {:>10} {:>10} {:>7}\n",
                 r.counter, r.hint.value_or("-"), r.threads, ph.value("repeat", 0),
                 ph.value("phase", 0), ph.value("workload", ""), ph.value("promotions", 0),
                 ph.value("demotions", 0), v(ph["promoted_after_ms"]), v(ph["demoted_after_ms"]),
                 v(ph["demoted_after_sweeps"]));
    }
  }
  std::fflush(stdout);
}

int run_counting(const CountingOptions& opt) {
  const auto workloads = parse_name_list(opt.workloads, "--workload", kWorkloads);
  const auto counters = parse_name_list(opt.counters, "--counters", all_counter_names());
  const auto io = parse_name_list(opt.io, "--io", kIoModes);
  const auto hints = parse_name_list(opt.hints, "--hint", kHints);
  const unsigned ncpu = static_cast<unsigned>(allowed_cpus().size());
  std::vector<unsigned> threads;
  if (opt.threads_opt != nullptr && opt.threads_opt->count() > 0) {
    threads = parse_count_list(opt.threads, "--threads", 1024);
  } else {
    for (unsigned t = 1; t <= ncpu; ++t) threads.push_back(t);
  }
  const double duration = check_duration(opt.duration, "--duration");
  if (opt.repeat == 0 || opt.repeat > 1000) {
    throw UsageError(fmt::format("--repeat: {} is out of range [1, 1000]", opt.repeat));
  }
  const bool with_drbz = std::find(workloads.begin(), workloads.end(), "DRBZ") != workloads.end();
  const bool with_phase = std::find(workloads.begin(), workloads.end(), "PHASE") != workloads.end();
  const std::uint64_t file_size = parse_size(opt.file_size, "--file-size");
  const std::uint64_t zipf_bytes = with_drbz ? file_size : 0;
  if (with_drbz && zipf_bytes < kBlock) {
    throw UsageError(fmt::format("--file-size: at least {} bytes for DRBZ", kBlock));
  }
  if (with_drbz && zipf_bytes / kBlock > (std::uint64_t{1} << 32)) {
    throw UsageError("--file-size: at most 2^32 blocks");
  }
  check_duration(opt.phase_seconds, "--phase-seconds");
  if (opt.phases == 0 || opt.phases > 1000) {
    throw UsageError(fmt::format("--phases: {} is out of range [1, 1000]", opt.phases));
  }
  Outputs outputs(opt.json, opt.csv);
  ScratchDir dir(opt.dir);
  const unsigned max_threads = *std::max_element(threads.begin(), threads.end());
  const Files files(dir, max_threads, zipf_bytes, with_phase);
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
  // hint), pread (not PHASE), the RocksDB caches (DRBL/DRBM/DRBH only).
  std::size_t cache_points = 0;
  if (with_cache) {
    for_each_selected(counters, [&]<class C>() {
      cache_points += std::string_view(C::kName) == "paygo" ? hints.size() : 1;
    });
  }
  std::size_t total = 0;
  for (const auto& w : workloads) {
    const bool fx = w != "DRBZ" && w != "PHASE";
    total += threads.size() *
             (cache_points + (with_pread && w != "PHASE" ? 1 : 0) + (fx ? rocks.size() : 0));
  }
  if (total == 0) {
    throw UsageError(
        "nothing to measure: DRBZ runs on --io cache and pread, PHASE on --io cache only, "
        "RocksDB on DRBL/DRBM/DRBH");
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
    std::function<CacheRun()> once;
    std::vector<double> samples = {};
    std::vector<TuneSample> tune = {};
    nlohmann::json phases = nlohmann::json::array();  // PHASE: every repeat's phases
    bool failed = false;
  };
  auto label = [](const std::string& workload, const Point& p, unsigned t) {
    return fmt::format("counting {} io={} {}{} threads={}", workload, p.mode, p.counter,
                       p.hint ? " hint=" + *p.hint : std::string(), t);
  };
  auto run_group = [&](const std::string& workload, unsigned t, std::vector<Point>& points) {
    for (unsigned r = 0; r < opt.repeat; ++r) {
      for (auto& p : points) {
        if (p.failed) continue;
        try {
          CacheRun run = p.once();
          p.samples.push_back(run.ops);
          p.tune.push_back(run.tune);
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
      if (p.mode == "cache") set_tuning(res, p.tune, p.tunes);
      if (workload == "PHASE") res.phases = std::move(p.phases);
      progress.report(label(workload, p, t),
                      fmt::format("{} ops/s (median of {}){}", human(res.stats.median, "ops/s"),
                                  p.samples.size(),
                                  res.promotions ? fmt::format(", {:g} promotions, {:g} demotions",
                                                               *res.promotions, *res.demotions)
                                                 : std::string()));
      results.push_back(std::move(res));
    }
  };
  const Zipf* z = zipf.get();
  for (const auto& w : workloads) {
    const bool fx = w != "DRBZ" && w != "PHASE";
    for (unsigned t : threads) {
      std::vector<Point> points;
      if (with_cache) {
        for_each_selected(counters, [&]<class C>() {
          const bool paygo = std::string_view(C::kName) == "paygo";
          for (const std::string& h : paygo ? hints : std::vector<std::string>{"hot"}) {
            points.push_back({std::string(C::kName), "cache", h, kTunes<C>,
                              [&files, z, &w, t, duration, h, &opt] {
                                return cache_once<C>(files, z, w, t, duration, h, opt);
                              }});
          }
        });
      }
      if (with_pread && w != "PHASE") {
        points.push_back(
            {"kernel", "pread", std::nullopt, false, [&files, z, &w, t, duration] {
               return CacheRun{
                   pread_once(files, w == "DRBZ" ? z : nullptr, w, t, duration), {}, nullptr};
             }});
      }
      if (fx) {
        for (const auto& m : rocks) {
          points.push_back({m, m, std::nullopt, false, [&files, &w, &m, t, duration] {
                              return CacheRun{rocksdb_once(m, files, w, t, duration), {}, nullptr};
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
      {"threads", threads},
      {"duration_s", duration},
      {"repeat", opt.repeat},
      {"block_bytes", kBlock},
      {"file_size_bytes", with_drbz ? nlohmann::json(zipf_bytes) : nlohmann::json(nullptr)},
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
  const unsigned ncpu = static_cast<unsigned>(allowed_cpus().size());
  CLI::App* sub = app.add_subcommand(
      "counting",
      "Counting overhead: fxmark's buffered-read workloads, 4 KiB reads.\n"
      "  DRBL  each thread reads block 0 of its own file\n"
      "  DRBM  one shared file, each thread reads its own block\n"
      "  DRBH  one shared file, every thread reads the same block\n"
      "  DRBZ  every thread reads 4 KiB blocks of one file of --file-size drawn from a Zipf\n"
      "        distribution (theta 0.99, ranks shuffled over the file); the cache holds the\n"
      "        whole file, loaded before the run (io cache and pread only)\n"
      "  PHASE one shared file, --phases phases of --phase-seconds alternating DRBH (block 0)\n"
      "        and DRBM (thread i: block i+1); per phase, when the hot block was promoted and\n"
      "        demoted (io cache only; the timed part is the phases, not --duration)\n"
      "I/O modes:\n"
      "  cache  paygo's page cache with each --counters entry. PAYGO runs once per --hint:\n"
      "         auto (no advice: self-tuning), hot (the files advised Hot: the seed's hot\n"
      "         section), central (advised Central); the other counters run once, advised\n"
      "         Hot (hint column 'hot')\n"
      "  pread  the OS page cache through pread(2); the counter column is 'kernel'\n"
      "  rocksdb-lru, rocksdb-hcc  RocksDB's LRUCache / HyperClockCache (64 MiB, default\n"
      "         shards) holding the 4 KiB blocks, key = file id + block; a read is Lookup +\n"
      "         memcpy 4 KiB + Release; the counter column is the cache's name\n"
      "Threads are pinned round-robin to the usable CPUs, warmed up (one untimed read each),\n"
      "started together and stopped by a flag after --duration seconds; result: reads/s\n"
      "summed over threads. Each point runs --repeat times (a fresh cache each time); the\n"
      "repeats of all points with the same workload and threads are interleaved (round 1 of\n"
      "each, then round 2, ...), so drift hits them alike. Median, min and max are reported,\n"
      "with ratios to noop, atomic and kernel (pread) at the same threads.\n"
      "Exit code: 0 ok, 1 a point failed, 2 bad arguments.");
  sub->add_option("--workload,--workloads", opt->workloads,
                  "Comma-separated: DRBL, DRBM, DRBH, DRBZ, PHASE, or 'all'")
      ->capture_default_str();
  sub->add_option("--hint", opt->hints,
                  "Comma-separated hints for the paygo rows: auto, hot, central, or 'all'")
      ->capture_default_str();
  sub->add_option("--file-size", opt->file_size,
                  "DRBZ's file: 4096, 512K, 64M, 1G, ... (the cache holds all of it)")
      ->capture_default_str();
  sub->add_option("--phase-seconds", opt->phase_seconds, "PHASE: seconds per phase, > 0")
      ->capture_default_str();
  sub->add_option("--phases", opt->phases, "PHASE: phases per repeat (DRBH first), 1..1000")
      ->capture_default_str();
  sub->add_option("--promote-events", opt->promote_events,
                  "paygo rows: contended central gets one thread must see to promote (K)")
      ->check(CLI::Range(1U, 1000000U))
      ->capture_default_str();
  sub->add_option("--promote-window-us", opt->promote_window_us,
                  "paygo rows: ... within this many microseconds")
      ->capture_default_str();
  sub->add_option("--demote-sweeps", opt->demote_sweeps,
                  "paygo rows: quiet sweeps before a demotion (E), 1..255")
      ->check(CLI::Range(1U, 255U))
      ->capture_default_str();
  sub->add_option("--inhibit-ms", opt->inhibit_ms,
                  "paygo rows: no re-promotion this long after a demotion, 0..999")
      ->check(CLI::Range(0U, 999U))
      ->capture_default_str();
  sub->add_option("--sweep-every", opt->sweep_every,
                  "cache: hits per thread between sweep steps (0: no sweeps)")
      ->capture_default_str();
  sub->add_option("--counters", opt->counters,
                  "Comma-separated counter names for --io cache, or 'all'. Known: " +
                      join(all_counter_names(), ","))
      ->capture_default_str();
  sub->add_option("--io", opt->io,
                  "Comma-separated I/O modes: cache, pread, rocksdb-lru, rocksdb-hcc, or 'all'")
      ->capture_default_str();
  opt->threads_opt = sub->add_option(
      "--threads", opt->threads,
      "Thread counts: comma-separated, ranges allowed (1,2,4 or 1-8); may exceed the CPUs. "
      "Default: 1 to the number of usable CPUs (here 1-" +
          std::to_string(ncpu) + ")");
  sub->add_option("--duration", opt->duration, "Seconds each repeat runs (timed part), > 0")
      ->capture_default_str();
  sub->add_option("--repeat", opt->repeat, "Repeats per point, 1..1000")->capture_default_str();
  sub->add_option("--dir", opt->dir,
                  "Where to create the scratch files (removed at exit). Default: $TMPDIR or /tmp")
      ->option_text("DIR");
  sub->add_option("--json", opt->json, "Write {machine, config, results} as JSON to FILE")
      ->option_text("FILE");
  sub->add_option("--csv", opt->csv, "Write the results as CSV to FILE")->option_text("FILE");
  return {sub, [opt] { return run_counting(*opt); }};
}

}  // namespace paygo::bench
