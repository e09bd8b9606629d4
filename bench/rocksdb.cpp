// bench/rocksdb.cpp — `paygo-bench rocksdb`: a real RocksDB database read
// through each block cache (db_bench's readrandom).
//
// Once per run: a database in a scratch directory (--dir; removed at exit
// unless --keep) is filled with --keys keys of 16 bytes (the key's index,
// 16 decimal digits, in order) and values of --value-size bytes (a pattern
// drawn from the key, so every read can be checked), flushed and compacted
// into its last level (no compression). Then, for each --hot-keys K and
// --threads T, each --caches entry in turn:
//   * the database is opened with a fresh block cache of --cache-size
//     (rocksdb-lru: NewLRUCache, rocksdb-hcc: HyperClockCacheOptions with
//     the 4 KiB block size as its estimated entry charge, rocksdb-paygo:
//     paygo::rocksdb::NewPaygoCache; bench/rocksdb_caches.hpp) in
//     BlockBasedTableOptions {block_cache, cache_index_and_filter_blocks,
//     a 10-bit Bloom filter}, and scanned once (untimed: every block of
//     the database in the cache; by default the cache holds it all);
//   * T pinned threads run readrandom for --duration seconds: DB::Get of a
//     uniformly random existing key (K = 0: any key; else one of the first
//     K, which lie in a few data blocks every thread shares) into a
//     PinnableSlice, the value checked against the key's pattern. A Get is
//     the block cache's hit path three times: the filter block, the index
//     block (both shared by every read) and the data block.
// Result: reads/s summed over threads; the repeats of one (K, T) group are
// interleaved across the caches (round 1 of each, then round 2, ...), so a
// drift in the machine hits every cache alike. The table gives each median
// over rocksdb-hcc's and rocksdb-lru's at the same K and T; after it, each
// cache's metadata bytes per entry (bench/rocksdb_caches.hpp says how each
// is had).
#include <fmt/core.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "commands.hpp"
#include "common.hpp"
#include "rng.hpp"
#include "rocksdb_caches.hpp"
#include "workfiles.hpp"

namespace paygo::bench {
namespace {

/// --caches names; the rows' io and counter are "rocksdb-" + name.
const std::vector<std::string> kCaches = {"lru", "hcc", "paygo"};
constexpr std::size_t kKeyBytes = 16;
/// BlockBasedTableOptions::block_size (RocksDB's default), also
/// HyperClockCache's estimated entry charge.
constexpr std::size_t kBlockBytes = 4096;
constexpr double kBloomBitsPerKey = 10;
constexpr unsigned kReadsPerCheck = 16;
constexpr std::uint64_t kMaxKeys = 1'000'000'000;  // Rng::below: at most 2^32

struct RocksOptions {
  // db_bench's sizes (16-byte keys, 100-byte values); 200,000 keys make a
  // database of about 25 MB, which the 64 MiB block cache holds.
  std::uint64_t keys = 200'000;
  std::uint32_t value_size = 100;
  std::uint64_t cache_size = std::uint64_t{64} << 20;
  std::vector<std::string> caches = kCaches;
  std::vector<std::uint64_t> hot_keys = {0};
  std::vector<std::string> threads;  // empty: 1..number of usable CPUs
  double duration = 0.3;
  unsigned repeat = 3;
  std::string dir;
  bool keep = false;
  std::string json, csv;
};

/// Key `i`: its 16 decimal digits (keys sort as their indices).
struct Key {
  char bytes[kKeyBytes];
  explicit Key(std::uint64_t i) {
    for (std::size_t k = kKeyBytes; k-- > 0; i /= 10) bytes[k] = static_cast<char>('0' + i % 10);
  }
  ::rocksdb::Slice slice() const { return {bytes, kKeyBytes}; }
};

/// The value of key `i`: `size` bytes of a pattern drawn from i.
void value_of(std::uint64_t i, char* out, std::size_t size) {
  std::uint64_t x = i * 0x9e3779b97f4a7c15ULL + 0x632be59bd9b4e019ULL;
  for (std::size_t k = 0; k < size; k += sizeof x) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    std::memcpy(out + k, &x, std::min(sizeof x, size - k));
  }
}

/// The options of every open: the block cache under test (null: RocksDB's
/// default, for the fill), index and filter blocks in it, a 10-bit Bloom
/// filter, no compression (the cache holds the blocks as they are on disk).
::rocksdb::Options db_options(const std::shared_ptr<::rocksdb::Cache>& cache) {
  ::rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.cache_index_and_filter_blocks = true;
  table.filter_policy.reset(::rocksdb::NewBloomFilterPolicy(kBloomBitsPerKey));
  table.block_size = kBlockBytes;
  ::rocksdb::Options o;
  o.table_factory.reset(::rocksdb::NewBlockBasedTableFactory(table));
  o.compression = ::rocksdb::kNoCompression;
  o.max_open_files = -1;  // every table reader open: no table-cache lookup per Get
  return o;
}

std::unique_ptr<::rocksdb::DB> open_db(const ::rocksdb::Options& o, const std::string& path) {
  ::rocksdb::DB* db = nullptr;
  const ::rocksdb::Status st = ::rocksdb::DB::Open(o, path, &db);
  if (!st.ok()) throw PointFailed(fmt::format("opening the database: {}", st.ToString()));
  return std::unique_ptr<::rocksdb::DB>(db);
}

void close_db(std::unique_ptr<::rocksdb::DB>& db) {
  const ::rocksdb::Status st = db->Close();
  db.reset();
  if (!st.ok()) throw PointFailed(fmt::format("closing the database: {}", st.ToString()));
}

/// The database of a run, made once.
struct Database {
  std::string path;
  std::uint64_t keys = 0;
  std::size_t value_size = 0;
  std::uint64_t sst_bytes = 0;  // its SST files, together
  std::size_t sst_files = 0;
  double fill_seconds = 0;
};

/// Fills `path` (keys in order, in batches, no WAL), flushes and compacts
/// it into the last level (one sorted run); std::runtime_error on failure.
Database make_database(const std::string& path, std::uint64_t keys, std::size_t value_size) {
  const auto t0 = std::chrono::steady_clock::now();
  ::rocksdb::Options o = db_options(nullptr);
  o.create_if_missing = true;
  o.error_if_exists = true;
  std::unique_ptr<::rocksdb::DB> db = open_db(o, path);
  auto check = [](const ::rocksdb::Status& st, const char* what) {
    if (!st.ok()) throw std::runtime_error(fmt::format("{}: {}", what, st.ToString()));
  };
  ::rocksdb::WriteOptions wo;
  wo.disableWAL = true;  // flushed below
  ::rocksdb::WriteBatch batch;
  std::vector<char> value(value_size);
  for (std::uint64_t i = 0; i < keys; ++i) {
    value_of(i, value.data(), value.size());
    check(batch.Put(Key(i).slice(), ::rocksdb::Slice(value.data(), value.size())), "Put");
    if (batch.Count() == 1000 || i + 1 == keys) {
      check(db->Write(wo, &batch), "Write");
      batch.Clear();
    }
  }
  check(db->Flush(::rocksdb::FlushOptions()), "Flush");
  ::rocksdb::CompactRangeOptions cro;
  cro.bottommost_level_compaction = ::rocksdb::BottommostLevelCompaction::kForce;
  check(db->CompactRange(cro, nullptr, nullptr), "CompactRange");
  std::vector<::rocksdb::LiveFileMetaData> files;
  db->GetLiveFilesMetaData(&files);
  Database d{path, keys, value_size};
  for (const auto& f : files) d.sst_bytes += f.size;
  d.sst_files = files.size();
  close_db(db);
  d.fill_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return d;
}

/// One reader's Gets: key i, its value checked; a failure fails the point.
class Reader {
 public:
  Reader(::rocksdb::DB& db, std::size_t value_size)
      : db_(db), cf_(db.DefaultColumnFamily()), expected_(value_size) {}
  void get(std::uint64_t i) {
    const Key key(i);
    const ::rocksdb::Status st = db_.Get(ro_, cf_, key.slice(), &value_);
    if (!st.ok()) [[unlikely]]
      throw PointFailed(fmt::format("Get(key {}): {}", i, st.ToString()));
    value_of(i, expected_.data(), expected_.size());
    if (value_.size() != expected_.size() ||
        std::memcmp(value_.data(), expected_.data(), expected_.size()) != 0) [[unlikely]]
      throw PointFailed(fmt::format("Get(key {}): a wrong value ({} bytes)", i, value_.size()));
    value_.Reset();  // releases the data block's pin
  }

 private:
  ::rocksdb::DB& db_;
  ::rocksdb::ColumnFamilyHandle* cf_;
  ::rocksdb::ReadOptions ro_;
  ::rocksdb::PinnableSlice value_;
  std::vector<char> expected_;
};

struct DbRun {
  double ops = 0;
  std::optional<CacheMetadata> metadata;
};

/// One repeat of a point: open `d` with a fresh `cache` of `capacity`, scan
/// it (untimed), then `threads` readers for `seconds` over the first
/// `hot_keys` keys (0: all). `repeat` seeds the readers' generators (every
/// cache of a round reads the same keys). `metadata`: read the cache's
/// metadata after the reads.
DbRun readrandom_once(const Database& d, const std::string& cache, std::size_t capacity,
                      unsigned threads, std::uint64_t hot_keys, double seconds, unsigned repeat,
                      bool metadata) {
  const std::shared_ptr<::rocksdb::Cache> block_cache =
      make_rocksdb_cache(cache, capacity, kBlockBytes);
  ::rocksdb::Options o = db_options(block_cache);
  o.disable_auto_compactions = true;  // nothing changes the database between points
  std::unique_ptr<::rocksdb::DB> db = open_db(o, d.path);
  {  // untimed: every block in the cache (where it fits), every key there
    std::unique_ptr<::rocksdb::Iterator> it(db->NewIterator(::rocksdb::ReadOptions()));
    std::uint64_t n = 0;
    for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
    if (!it->status().ok()) throw PointFailed(fmt::format("scan: {}", it->status().ToString()));
    if (n != d.keys) throw PointFailed(fmt::format("scan: {} keys, want {}", n, d.keys));
  }
  const std::uint64_t range = hot_keys == 0 ? d.keys : hot_keys;
  const TeamRun run = run_team(
      threads, seconds, [&](unsigned i) { Reader(*db, d.value_size).get(i % range); },
      [&](unsigned i, const std::atomic<bool>& stop) -> std::uint64_t {
        Reader reader(*db, d.value_size);
        Rng rng(repeat, i);
        std::uint64_t n = 0;
        while (!stop.load(std::memory_order_relaxed)) {  // relaxed: only "stop soon"
          for (unsigned k = 0; k < kReadsPerCheck; ++k) reader.get(rng.below(range));
          n += kReadsPerCheck;
        }
        return n;
      });
  DbRun out;
  out.ops = run.ops_per_second();
  if (metadata) out.metadata = rocksdb_cache_metadata(cache, *block_cache, kBlockBytes);
  close_db(db);
  return out;
}

std::string hot_text(std::uint64_t k) {
  return k == 0 ? std::string("all") : std::to_string(k);
}

/// One table: every row with its median over the rocksdb-hcc and the
/// rocksdb-lru row at the same hot keys and threads.
void print_rocksdb_tables(const std::vector<Result>& results, const Database& d,
                          std::uint64_t capacity) {
  if (results.empty()) return;
  std::vector<const Result*> rows;
  for (const auto& r : results) rows.push_back(&r);
  // Grouped by (hot keys, threads); the caches in measured order within.
  std::stable_sort(rows.begin(), rows.end(), [](const Result* a, const Result* b) {
    return std::tie(a->hot_keys, a->threads) < std::tie(b->hot_keys, b->threads);
  });
  auto ratio = [&](const Result& r, std::string_view name) -> std::string {
    for (const Result* b : rows) {
      if (b->io == name && b->hot_keys == r.hot_keys && b->threads == r.threads &&
          b->stats.median > 0)
        return fmt::format("{:.3f}", r.stats.median / b->stats.median);
    }
    return "-";
  };
  fmt::print(
      "\nrocksdb / readrandom  (unit ops/s, higher is better; {} keys of {} + {} bytes, a "
      "{:.1f} MB database, a {} MiB block cache; ratios = median / median of rocksdb-hcc, "
      "rocksdb-lru at the same hot keys and threads)\n",
      d.keys, kKeyBytes, d.value_size, static_cast<double>(d.sst_bytes) / 1e6,
      static_cast<double>(capacity) / (1 << 20));
  fmt::print("{:>8} {:>7}  {:<14} {:>10} {:>10} {:>10} {:>8} {:>8}\n", "hot_keys", "threads",
             "cache", "median", "min", "max", "/hcc", "/lru");
  for (const Result* r : rows) {
    fmt::print("{:>8} {:>7}  {:<14} {:>10} {:>10} {:>10} {:>8} {:>8}\n",
               hot_text(r->hot_keys.value_or(0)), r->threads, r->counter,
               human(r->stats.median, r->unit), human(r->stats.min, r->unit),
               human(r->stats.max, r->unit), ratio(*r, "rocksdb-hcc"), ratio(*r, "rocksdb-lru"));
  }
  std::fflush(stdout);
}

void print_metadata(const std::map<std::string, CacheMetadata>& metadata,
                    const std::vector<std::string>& caches) {
  if (metadata.empty()) return;
  fmt::print(
      "\nrocksdb: block-cache metadata, bytes per entry (each cache after its first point's "
      "reads, the database scanned into it)\n");
  for (const auto& name : caches) {
    const auto it = metadata.find(name);
    if (it == metadata.end()) continue;
    const CacheMetadata& m = it->second;
    fmt::print("  {:<14} {:>8}  {:>7} entries  {}\n", name,
               m.bytes_per_entry ? fmt::format("{:.1f} B", *m.bytes_per_entry) : "-", m.entries,
               m.how);
  }
  std::fflush(stdout);
}

nlohmann::json metadata_json(const std::map<std::string, CacheMetadata>& metadata) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, m] : metadata) {
    j[name] = {
        {"bytes_per_entry", or_null(m.bytes_per_entry)}, {"entries", m.entries}, {"how", m.how}};
  }
  return j;
}

int run_rocksdb(const RocksOptions& opt) {
  std::vector<std::string> caches;  // rocksdb-<name>, in kCaches order
  {
    const auto given = selected(opt.caches, kCaches, "--caches");
    for (const auto& c : kCaches) {
      if (std::find(given.begin(), given.end(), c) != given.end()) caches.push_back("rocksdb-" + c);
    }
  }
  const std::vector<unsigned> threads = threads_or_cpus(opt.threads);
  require_distinct(opt.hot_keys, "--hot-keys");
  for (const std::uint64_t k : opt.hot_keys) {
    if (k > opt.keys)
      throw UsageError(
          fmt::format("--hot-keys: {} is more than the {} keys (--keys)", k, opt.keys));
  }
  const std::uint64_t capacity = opt.cache_size;
  {
    const long phys_pages = ::sysconf(_SC_PHYS_PAGES), page_size = ::sysconf(_SC_PAGESIZE);
    const std::uint64_t memory =
        phys_pages > 0 && page_size > 0
            ? static_cast<std::uint64_t>(phys_pages) * static_cast<std::uint64_t>(page_size)
            : 0;
    if (memory != 0 && capacity > memory) {
      throw UsageError(fmt::format("--cache-size: {} bytes is more than this machine's memory ({})",
                                   capacity, memory));
    }
  }
  Outputs outputs(opt.json, opt.csv);
  ScratchDir dir(opt.dir);
  if (opt.keep) dir.keep();
  {
    // The keys and values twice over (the compaction writes its output
    // before it deletes its input), and a megabyte for the rest.
    const std::uint64_t need = 2 * opt.keys * (kKeyBytes + opt.value_size) + (1 << 20);
    std::error_code ec;
    const auto space = std::filesystem::space(dir.path(), ec);
    if (!ec && need > space.available) {
      throw UsageError(
          fmt::format("--keys: the database needs about {} bytes, {} has {} free (choose another "
                      "--dir or fewer --keys)",
                      need, dir.path().parent_path().string(), space.available));
    }
  }
  const std::string db_path = (dir.path() / "db").string();
  fmt::print(stderr, "rocksdb: filling {} keys of {} + {} bytes into {}\n", opt.keys, kKeyBytes,
             opt.value_size, db_path);
  const Database d = make_database(db_path, opt.keys, opt.value_size);
  fmt::print(stderr, "rocksdb: {} bytes in {} SST file(s), filled and compacted in {:.2f} s\n",
             d.sst_bytes, d.sst_files, d.fill_seconds);
  if (d.sst_bytes > capacity) {
    fmt::print(stderr,
               "paygo-bench: warning: the database ({} bytes) is larger than the block cache "
               "({} bytes): reads will miss\n",
               d.sst_bytes, capacity);
  }

  Progress progress(opt.hot_keys.size() * threads.size() * caches.size());
  std::vector<Result> results;
  std::map<std::string, CacheMetadata> metadata;  // per cache, from its first point
  unsigned failures = 0;
  struct Point {
    std::string cache;
    std::vector<double> samples = {};
    bool failed = false;
  };
  for (const std::uint64_t k : opt.hot_keys) {
    for (const unsigned t : threads) {
      auto label = [&](const Point& p) {
        return fmt::format("rocksdb readrandom {} hot_keys={} threads={}", p.cache, hot_text(k), t);
      };
      std::vector<Point> points;
      for (const auto& c : caches) points.push_back({c});
      // Repeats interleaved: round r of every cache, then round r + 1.
      for (unsigned r = 0; r < opt.repeat; ++r) {
        for (auto& p : points) {
          if (p.failed) continue;
          try {
            const bool first = !metadata.contains(p.cache);
            DbRun run = readrandom_once(d, p.cache, static_cast<std::size_t>(capacity), t, k,
                                        opt.duration, r, first);
            p.samples.push_back(run.ops);
            if (run.metadata) metadata[p.cache] = *run.metadata;
          } catch (const PointFailed& e) {
            p.failed = true;
            ++failures;
            progress.report(label(p), fmt::format("FAILED: {}", e.what()));
          }
        }
      }
      for (auto& p : points) {
        if (p.failed) continue;
        Result res{"rocksdb",    "readrandom",         p.cache, p.cache, t,
                   std::nullopt, summarize(p.samples), "ops/s"};
        res.hot_keys = k;
        res.cache_bytes = capacity;
        res.file_bytes = d.sst_bytes;
        progress.report(label(p), fmt::format("{} reads/s (median of {})",
                                              human(res.stats.median, "ops/s"), p.samples.size()));
        results.push_back(std::move(res));
      }
    }
  }
  nlohmann::json config = {{"command", "rocksdb"},
                           {"workload", "readrandom"},
                           {"caches", caches},
                           {"threads", threads},
                           {"hot_keys", opt.hot_keys},
                           {"keys", opt.keys},
                           {"key_bytes", kKeyBytes},
                           {"value_bytes", opt.value_size},
                           {"cache_size_bytes", capacity},
                           {"block_bytes", kBlockBytes},
                           {"bloom_bits_per_key", kBloomBitsPerKey},
                           {"compression", "none"},
                           {"db_bytes", d.sst_bytes},
                           {"sst_files", d.sst_files},
                           {"fill_seconds", d.fill_seconds},
                           {"duration_s", opt.duration},
                           {"repeat", opt.repeat},
                           {"metadata", metadata_json(metadata)}};
  outputs.write(config, results);
  print_rocksdb_tables(results, d, capacity);
  print_metadata(metadata, caches);
  if (opt.keep) fmt::print(stderr, "rocksdb: kept the database in {}\n", db_path);
  return outputs.finish(failures);
}

}  // namespace

Subcommand add_rocksdb_command(CLI::App& app) {
  auto opt = std::make_shared<RocksOptions>();
  CLI::App* sub = app.add_subcommand(
      "rocksdb",
      "A real RocksDB database read through each block cache (db_bench's readrandom).\n"
      "Once per run, a database in a scratch directory (--dir; removed at exit unless --keep)\n"
      "is filled with --keys keys of 16 bytes (the index in 16 decimal digits) and values of\n"
      "--value-size bytes (a pattern drawn from the key), flushed and compacted into its last\n"
      "level (no compression). Then, for each --hot-keys K and --threads T, for each cache of\n"
      "--caches, the database is opened with a fresh block cache of --cache-size in\n"
      "BlockBasedTableOptions {block_cache, cache_index_and_filter_blocks = true, a 10-bit\n"
      "Bloom filter, 4 KiB blocks}, scanned once (untimed: every block in the cache), and T\n"
      "threads, pinned round-robin to the usable CPUs, run readrandom for --duration seconds:\n"
      "DB::Get of a uniformly random existing key (K = 0: any key; else one of the first K,\n"
      "which lie in a few data blocks every thread shares), each value checked. A Get pins\n"
      "the filter, the index and a data block in the block cache.\n"
      "Caches (rows: io and counter rocksdb-<name>):\n"
      "  lru    rocksdb::NewLRUCache(capacity)\n"
      "  hcc    rocksdb::HyperClockCacheOptions(capacity, 4096).MakeSharedCache()\n"
      "  paygo  paygo::rocksdb::NewPaygoCache({.capacity = capacity}): pins are PAYGO gets/puts\n"
      "all with default sharding and metadata charge policy. Result: reads/s summed over\n"
      "threads; each point runs --repeat times (a fresh cache each time), the repeats of one\n"
      "(K, T) interleaved across the caches (round 1 of each, then round 2, ...), so drift\n"
      "hits them alike. Median, min and max are reported, with ratios to rocksdb-hcc and\n"
      "rocksdb-lru at the same K and T, then each cache's metadata bytes per entry.\n"
      "Exit code: 0 ok, 1 a point failed, 2 bad arguments.");
  sub->add_option("--keys", opt->keys, "Keys in the database, 1..1000000000")
      ->check(CLI::Range(std::uint64_t{1}, kMaxKeys))
      ->capture_default_str();
  sub->add_option("--value-size", opt->value_size, "Bytes per value, 1..1048576")
      ->check(CLI::Range(1U, 1U << 20))
      ->capture_default_str();
  size_option(sub->add_option(
      "--cache-size", opt->cache_size,
      "The block cache's capacity: 64M, 1G, ... (K, M, G, T are powers of 1024, also written "
      "KB or KiB). Default: 64M (the default database takes about 25 MB)"));
  add_names(sub, "--caches", opt->caches, kCaches, "Comma-separated block caches");
  add_list(sub, "--hot-keys", opt->hot_keys,
           "Comma-separated key counts K: the reads go to the first K keys (a few blocks every "
           "thread shares); 0: to every key. At most --keys")
      ->check(CLI::Range(std::uint64_t{0}, kMaxKeys));
  add_threads(sub, opt->threads, 1024, " (readers)");
  add_duration(sub, opt->duration);
  add_repeat(sub, opt->repeat);
  add_dir(sub, opt->dir)
      ->description(
          "Where to create the database's scratch directory (removed at exit unless --keep). "
          "Default: $TMPDIR or /tmp");
  sub->add_flag("--keep", opt->keep,
                "Keep the database's directory (its path is printed on stderr) instead of "
                "removing it");
  add_outputs(sub, opt->json, opt->csv);
  return {sub, [opt] { return run_rocksdb(*opt); }};
}

}  // namespace paygo::bench
