// bench/counting.cpp — `paygo-bench counting`: the counting-overhead
// experiment (fxmark's DRBL/DRBM/DRBH, 4 KiB buffered reads).
//
//   DRBL  each thread reads block 0 of its own file
//   DRBM  all threads share one file, each reads its own block
//   DRBH  all threads read the same block of the same file
//
// --io cache: through paygo::cache::PageCache<C> for each --counters entry,
//             with the whole file advised Hot (the hot section, as the seed's
//             fxmark fork did with its fadvise call).
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
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "commands.hpp"
#include "common.hpp"
#include "paygo/cache/page_cache.hpp"
#include "workfiles.hpp"

namespace paygo::bench {
namespace {

constexpr std::size_t kBlock = 4096;
const std::vector<std::string> kWorkloads = {"DRBL", "DRBM", "DRBH"};
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
/// a block per thread (DRBM), one block (DRBH).
struct Files {
  Files(const ScratchDir& dir, unsigned max_threads) {
    for (unsigned i = 0; i < max_threads; ++i) {
      private_files.push_back(dir.make_file("drbl-" + std::to_string(i), kBlock));
    }
    shared_blocks = dir.make_file("drbm", std::uint64_t{kBlock} * max_threads);
    hot_block = dir.make_file("drbh", kBlock);
  }
  /// (path, block) thread i reads in `workload`.
  std::pair<const std::string*, std::uint64_t> target(const std::string& workload,
                                                      unsigned i) const {
    if (workload == "DRBL") return {&private_files[i], 0};
    if (workload == "DRBM") return {&shared_blocks, i};
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
  std::string shared_blocks, hot_block;
};

template <class C>
double cache_once(const Files& files, const std::string& workload, unsigned threads,
                  double seconds) {
  cache::CacheOptions opt;
  opt.capacity_bytes = std::size_t{kBlock} * (threads + 16);
  cache::PageCache<C> pc(opt);
  std::vector<cache::FileId> ids(threads);
  std::vector<std::uint64_t> blocks(threads);
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
    if (auto r = pc.advise(*id, 0, 0, cache::Advice::Hot); !r) {
      throw PointFailed(fmt::format("advise: {}", r.error().message()));
    }
  }
  const TeamRun run = run_team(
      threads, seconds,
      [&](unsigned i) {
        std::vector<char> buf(kBlock);
        auto n = pc.read(ids[i], buf.data(), kBlock, blocks[i] * kBlock);
        if (!n || *n != kBlock) throw PointFailed("warm-up read failed");
      },
      [&](unsigned i, const std::atomic<bool>& stop) -> std::uint64_t {
        alignas(64) char buf[kBlock];
        const std::uint64_t off = blocks[i] * kBlock;
        std::uint64_t n = 0;
        // Relaxed: the flag carries no data, only "stop soon".
        while (!stop.load(std::memory_order_relaxed)) {
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
  return run.ops_per_second();
}

double pread_once(const Files& files, const std::string& workload, unsigned threads,
                  double seconds) {
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
        std::uint64_t n = 0;
        while (!stop.load(std::memory_order_relaxed)) {  // relaxed: see cache_once
          for (unsigned k = 0; k < kReadsPerCheck; ++k) {
            if (::pread(fds[i], buf, kBlock, off) != static_cast<ssize_t>(kBlock)) [[unlikely]] {
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

int run_counting(const CountingOptions& opt) {
  const auto workloads = parse_name_list(opt.workloads, "--workload", kWorkloads);
  const auto counters = parse_name_list(opt.counters, "--counters", all_counter_names());
  const auto io = parse_name_list(opt.io, "--io", kIoModes);
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
  Outputs outputs(opt.json, opt.csv);
  ScratchDir dir(opt.dir);
  const Files files(dir, *std::max_element(threads.begin(), threads.end()));

  const bool with_cache = std::find(io.begin(), io.end(), "cache") != io.end();
  const bool with_pread = std::find(io.begin(), io.end(), "pread") != io.end();
  std::vector<std::string> rocks;  // the RocksDB caches, in kIoModes order
  for (const auto& m : kIoModes) {
    if (m.rfind("rocksdb-", 0) == 0 && std::find(io.begin(), io.end(), m) != io.end()) {
      rocks.push_back(m);
    }
  }
  Progress progress(workloads.size() * threads.size() *
                    ((with_cache ? counters.size() : 0) + (with_pread ? 1 : 0) + rocks.size()));
  std::vector<Result> results;
  unsigned failures = 0;
  // The points of one (workload, threads) pair run their repeats
  // interleaved (round r of every point, then round r + 1), so a drift in the
  // machine's speed (another tenant, frequency) hits every counter alike and
  // the ratios between them stay fair.
  struct Point {
    std::string counter, mode;
    std::function<double()> once;
    std::vector<double> samples;
    bool failed = false;
  };
  auto run_group = [&](const std::string& workload, unsigned t, std::vector<Point>& points) {
    for (unsigned r = 0; r < opt.repeat; ++r) {
      for (auto& p : points) {
        if (p.failed) continue;
        try {
          p.samples.push_back(p.once());
        } catch (const PointFailed& e) {
          p.failed = true;
          ++failures;
          progress.report(
              fmt::format("counting {} io={} {} threads={}", workload, p.mode, p.counter, t),
              fmt::format("FAILED: {}", e.what()));
        }
      }
    }
    for (auto& p : points) {
      if (p.failed) continue;
      Result res{"counting",           workload, p.counter, p.mode, t, std::nullopt,
                 summarize(p.samples), "ops/s"};
      progress.report(
          fmt::format("counting {} io={} {} threads={}", workload, p.mode, p.counter, t),
          fmt::format("{} ops/s (median of {})", human(res.stats.median, "ops/s"),
                      p.samples.size()));
      results.push_back(std::move(res));
    }
  };
  for (const auto& w : workloads) {
    for (unsigned t : threads) {
      std::vector<Point> points;
      if (with_cache) {
        for_each_selected(counters, [&]<class C>() {
          points.push_back(
              {std::string(C::kName),
               "cache",
               [&files, &w, t, duration] { return cache_once<C>(files, w, t, duration); },
               {}});
        });
      }
      if (with_pread) {
        points.push_back({"kernel",
                          "pread",
                          [&files, &w, t, duration] { return pread_once(files, w, t, duration); },
                          {}});
      }
      for (const auto& m : rocks) {
        points.push_back(
            {m,
             m,
             [&files, &w, &m, t, duration] { return rocksdb_once(m, files, w, t, duration); },
             {}});
      }
      run_group(w, t, points);
    }
  }
  nlohmann::json config = {{"command", "counting"}, {"workloads", workloads},
                           {"counters", counters},  {"io", io},
                           {"threads", threads},    {"duration_s", duration},
                           {"repeat", opt.repeat},  {"block_bytes", kBlock}};
  outputs.write(config, results);
  print_tables(results);
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
      "I/O modes:\n"
      "  cache  paygo's page cache with each --counters entry; the files are advised Hot\n"
      "         (the hot section covers them, as the seed's fxmark fork did)\n"
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
                  "Comma-separated: DRBL, DRBM, DRBH, or 'all'")
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
