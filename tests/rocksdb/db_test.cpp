// A real RocksDB database over each block cache: LRUCache and
// HyperClockCache (RocksDB's own, the reference) and, with
// -DPAYGO_TEST_PAYGO_CACHE, paygo::rocksdb::PaygoCache. Index, filter (bloom)
// and data blocks all go through the cache (cache_index_and_filter_blocks),
// which is made much smaller than the data so that blocks are evicted and
// read again all along. Several threads read every key back (Get into a
// PinnableSlice, MultiGet, iterators) while another writes more keys (SST
// files ingested) and compacts, and every value is checked against the one
// derived from its key. Iterators and PinnableSlices (which pin cache
// handles) are also made on one thread and finished and destroyed on
// another.
//
// Under ThreadSanitizer, run with TSAN_OPTIONS=suppressions=tests/rocksdb/
// tsan.supp (librocksdb is not instrumented; the file says what it hides and
// why this test writes by ingestion rather than through the memtable), and
// HyperClockCache is skipped (CacheKind::tsan_sees_its_sync).
#include <gtest/gtest.h>
#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/iterator.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/sst_file_writer.h>
#include <rocksdb/statistics.h>
#include <rocksdb/status.h>
#include <rocksdb/table.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <latch>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#ifdef PAYGO_TEST_PAYGO_CACHE
#include "paygo/rocksdb/paygo_cache.hpp"
#endif

#include "paygo/config.hpp"  // PAYGO_TSAN: built with ThreadSanitizer

namespace paygo::test {
namespace {

namespace fs = std::filesystem;
using ::rocksdb::Cache;
using ::rocksdb::PinnableSlice;
using ::rocksdb::Slice;
using ::rocksdb::Status;

/// The block cache: a quarter of the data or less, so that reads evict.
constexpr std::size_t kCacheCapacity = 256 << 10;
constexpr std::size_t kBlockSize = 4 << 10;
/// Keys written before the readers start, and by the writer while they run.
constexpr int kKeys = 6000;
constexpr int kMoreKeys = 3000;
constexpr int kReaders = 3;

struct CacheKind {
  const char* name;
  std::shared_ptr<Cache> (*make)();
  /// Whether ThreadSanitizer sees the synchronization of the cache (as
  /// kTsanSeesItsSync in cache_conformance_test.cpp): LRUCache takes a
  /// pthread mutex, which TSAN intercepts, and PaygoCache is built with TSAN.
  /// HyperClockCache synchronizes with atomics inside the uninstrumented
  /// librocksdb: TSAN sees no happens-before between the thread that reads
  /// a block in, those that read it from the cache and the one that frees
  /// it, and reports races in the test's own reads of block contents (and,
  /// where it cannot restore a stack, with no librocksdb frame to suppress).
  /// Such a kind is skipped under TSAN (the conformance test annotates it).
  bool tsan_sees_its_sync;
};

std::shared_ptr<Cache> MakeLru() {
  ::rocksdb::LRUCacheOptions o;
  o.capacity = kCacheCapacity;
  return ::rocksdb::NewLRUCache(o);
}

std::shared_ptr<Cache> MakeHcc() {
  // A block's charge: what RocksDB's documentation advises for
  // estimated_entry_charge (the larger of block_size and metadata_block_size).
  return ::rocksdb::HyperClockCacheOptions(kCacheCapacity, kBlockSize).MakeSharedCache();
}

#ifdef PAYGO_TEST_PAYGO_CACHE
std::shared_ptr<Cache> MakePaygo() {
  return paygo::rocksdb::NewPaygoCache({.capacity = kCacheCapacity});
}
#endif

constexpr CacheKind kKinds[] = {
    {"LRUCache", &MakeLru, true},
    {"HyperClockCache", &MakeHcc, false},
#ifdef PAYGO_TEST_PAYGO_CACHE
    {"PaygoCache", &MakePaygo, true},
#endif
};

/// Key i, in key order for i < 10^8.
std::string Key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "key%08d", i);
  return buf;
}

std::uint64_t SplitMix(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e37'79b9'7f4a'7c15);
  z = (z ^ (z >> 30)) * 0xbf58'476d'1ce4'e5b9;
  z = (z ^ (z >> 27)) * 0x94d0'49bb'1331'11eb;
  return z ^ (z >> 31);
}

/// Key i's value: 100 to 299 pseudo-random (incompressible) bytes that
/// start with the key itself.
std::string ValueFor(int i) {
  std::string v = Key(i);
  std::uint64_t x = static_cast<std::uint64_t>(i);
  const std::size_t size = 100 + static_cast<std::size_t>(SplitMix(x) % 200);
  while (v.size() < size) {
    const std::uint64_t r = SplitMix(x);
    for (int b = 0; b < 8 && v.size() < size; ++b) v.push_back(static_cast<char>(r >> (8 * b)));
  }
  return v;
}

/// The key number of a key this test wrote, or -1.
int KeyIndex(const Slice& key) {
  if (key.size() != 11 || !key.starts_with("key")) return -1;
  int i = 0;
  for (std::size_t c = 3; c < key.size(); ++c) {
    if (key[c] < '0' || key[c] > '9') return -1;
    i = i * 10 + (key[c] - '0');
  }
  return i;
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "paygo-rocksdb-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

/// Things made on one thread for another to finish: iterators (with the key
/// they stand on) and values pinned in PinnableSlices. Each is taken by a
/// thread other than its maker whenever one can be.
class Handoff {
 public:
  struct Item {
    std::thread::id maker;
    int key = 0;
    std::unique_ptr<::rocksdb::Iterator> iterator;  // or
    std::unique_ptr<PinnableSlice> value;
  };
  void Put(Item item) {
    std::lock_guard<std::mutex> lock(mu_);
    items_.push_back(std::move(item));
  }
  /// An item made on another thread than this one, if there is one.
  bool TakeForeign(Item& out) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = items_.begin(); it != items_.end(); ++it) {
      if (it->maker != std::this_thread::get_id()) {
        out = std::move(*it);
        items_.erase(it);
        return true;
      }
    }
    return false;
  }
  std::deque<Item> TakeAll() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(items_, {});
  }

 private:
  std::mutex mu_;
  std::deque<Item> items_;
};

class DbTest : public ::testing::TestWithParam<CacheKind> {
 protected:
  void SetUp() override {
#if PAYGO_TSAN
    if (!GetParam().tsan_sees_its_sync) {
      GTEST_SKIP() << GetParam().name
                   << " synchronizes inside the uninstrumented librocksdb, where ThreadSanitizer "
                      "cannot see it (CacheKind::tsan_sees_its_sync)";
    }
#endif
    cache_ = GetParam().make();
    ASSERT_NE(cache_, nullptr);
    ::rocksdb::BlockBasedTableOptions table;
    table.block_cache = cache_;
    table.block_size = kBlockSize;
    table.cache_index_and_filter_blocks = true;
    table.filter_policy.reset(::rocksdb::NewBloomFilterPolicy(10));
    options_.create_if_missing = true;
    options_.table_factory.reset(::rocksdb::NewBlockBasedTableFactory(table));
    options_.statistics = ::rocksdb::CreateDBStatistics();
    // Small memtables and files: several flushes, files and compactions.
    options_.write_buffer_size = 256 << 10;
    options_.target_file_size_base = 256 << 10;
    options_.max_bytes_for_level_base = 1 << 20;
    options_.level0_file_num_compaction_trigger = 2;
    options_.max_background_jobs = 2;
    ::rocksdb::DB* db = nullptr;
    const Status s = ::rocksdb::DB::Open(options_, dir_.path(), &db);
    ASSERT_TRUE(s.ok()) << s.ToString();
    db_.reset(db);
  }

  void TearDown() override {
    if (db_ != nullptr) {
      EXPECT_TRUE(db_->Close().ok());
      db_.reset();
      // Closed, the database holds no block: nothing in the cache is pinned.
      EXPECT_EQ(cache_->GetPinnedUsage(), 0u);
    }
  }

  /// Writes keys begin, begin + step, ... below end, with their values.
  void Write(int begin, int end, int step = 1) {
    for (int i = begin; i < end; i += step) {
      const Status s = db_->Put(::rocksdb::WriteOptions(), Key(i), ValueFor(i));
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
  }
  /// Writes the same keys as Write, into an SST file that is then ingested
  /// (not through the memtable; see the test below).
  void Ingest(int begin, int end, int step = 1) {
    const std::string path = dir_.path() + "/ingest-" + std::to_string(ingested_++) + ".sst";
    ::rocksdb::SstFileWriter writer(::rocksdb::EnvOptions(), options_);
    Status s = writer.Open(path);
    ASSERT_TRUE(s.ok()) << s.ToString();
    for (int i = begin; i < end; i += step) {
      s = writer.Put(Key(i), ValueFor(i));
      ASSERT_TRUE(s.ok()) << s.ToString();
    }
    s = writer.Finish();
    ASSERT_TRUE(s.ok()) << s.ToString();
    s = db_->IngestExternalFile({path}, ::rocksdb::IngestExternalFileOptions());
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  void FlushAndCompact() {
    Status s = db_->Flush(::rocksdb::FlushOptions());
    ASSERT_TRUE(s.ok()) << s.ToString();
    s = db_->CompactRange(::rocksdb::CompactRangeOptions(), nullptr, nullptr);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  /// Checks what a read of key i returned; false on a mismatch.
  static bool Check(int i, const Status& s, const Slice& value) {
    EXPECT_TRUE(s.ok()) << Key(i) << ": " << s.ToString();
    EXPECT_EQ(value.ToString(), ValueFor(i)) << Key(i);
    return s.ok() && value == ValueFor(i);
  }
  /// Checks an iterator standing on a key this test wrote.
  static bool CheckIterator(const ::rocksdb::Iterator& it) {
    const int i = KeyIndex(it.key());
    EXPECT_GE(i, 0) << "a key this test did not write: " << it.key().ToString();
    return i >= 0 && Check(i, it.status(), it.value());
  }
  /// Next()s `steps` times (or to the end) from key i, checking each key and
  /// value; the base keys are all present, so the next key is i + 1.
  static bool Walk(::rocksdb::Iterator& it, int i, int steps) {
    for (int n = 0; n < steps && it.Valid(); ++n) {
      if (!CheckIterator(it)) return false;
      const int at = KeyIndex(it.key());
      if (at < kKeys) {
        EXPECT_EQ(at, i) << "the iterator skipped or repeated a key";
        if (at != i) return false;
      }
      ++i;
      it.Next();
    }
    EXPECT_TRUE(it.status().ok()) << it.status().ToString();
    return it.status().ok();
  }

  /// Finishes an item another thread made, and destroys it here.
  static bool Finish(Handoff::Item& item) {
    bool ok = true;
    if (item.iterator != nullptr) {
      EXPECT_TRUE(item.iterator->Valid());
      ok = item.iterator->Valid() && Walk(*item.iterator, item.key, 16);
      item.iterator.reset();
    }
    if (item.value != nullptr) {
      ok = Check(item.key, Status::OK(), *item.value) && ok;
      item.value.reset();
    }
    return ok;
  }

  /// One reader: passes over every base key in random order, each key read
  /// by Get, MultiGet or an iterator, until `stop` and at least two passes;
  /// `reads` counts the keys read. Returns at the first wrong read.
  void Read(int seed, const std::atomic<bool>& stop, Handoff& handoff, std::atomic<long>& reads) {
    std::mt19937 rng(static_cast<unsigned>(seed));
    std::vector<int> order(kKeys);
    for (int i = 0; i < kKeys; ++i) order[i] = i;
    const ::rocksdb::ReadOptions ro;
    for (int pass = 0; pass < 2 || !stop.load(); ++pass) {
      std::shuffle(order.begin(), order.end(), rng);
      for (std::size_t n = 0; n < order.size();) {
        const std::size_t before = n;
        const int i = order[n];
        const unsigned op = rng() % 16;
        if (op < 8) {  // Get into a PinnableSlice (pinning the block)
          PinnableSlice v;
          if (!Check(i, db_->Get(ro, db_->DefaultColumnFamily(), Key(i), &v), v)) return;
          ++n;
        } else if (op < 12) {  // MultiGet of up to 8 keys
          const std::size_t count = std::min<std::size_t>(8, order.size() - n);
          std::vector<std::string> keys;
          std::vector<Slice> slices;
          for (std::size_t k = 0; k < count; ++k) keys.push_back(Key(order[n + k]));
          for (const std::string& k : keys) slices.emplace_back(k);
          std::vector<PinnableSlice> values(count);
          std::vector<Status> statuses(count);
          db_->MultiGet(ro, db_->DefaultColumnFamily(), count, slices.data(), values.data(),
                        statuses.data());
          for (std::size_t k = 0; k < count; ++k) {
            if (!Check(order[n + k], statuses[k], values[k])) return;
          }
          n += count;
        } else if (op < 14) {  // an iterator from key i on
          std::unique_ptr<::rocksdb::Iterator> it(db_->NewIterator(ro));
          it->Seek(Key(i));
          EXPECT_TRUE(it->Valid());
          if (!it->Valid() || !Walk(*it, i, 1 + static_cast<int>(rng() % 32))) return;
          ++n;
        } else {  // made here, finished on another thread
          Handoff::Item item{std::this_thread::get_id(), i, nullptr, nullptr};
          if (op == 14) {
            item.iterator.reset(db_->NewIterator(ro));
            item.iterator->Seek(Key(i));
            EXPECT_TRUE(item.iterator->Valid());
            if (!item.iterator->Valid() || !CheckIterator(*item.iterator)) return;
          } else {
            item.value = std::make_unique<PinnableSlice>();
            if (!Check(i, db_->Get(ro, db_->DefaultColumnFamily(), Key(i), item.value.get()),
                       *item.value)) {
              return;
            }
          }
          handoff.Put(std::move(item));
          Handoff::Item other;
          if (handoff.TakeForeign(other) && !Finish(other)) return;
          ++n;
        }
        reads.fetch_add(static_cast<long>(n - before), std::memory_order_relaxed);
      }
    }
  }

  TempDir dir_;  // outlives the database
  int ingested_ = 0;
  std::shared_ptr<Cache> cache_;
  ::rocksdb::Options options_;
  std::unique_ptr<::rocksdb::DB> db_;
};

TEST_P(DbTest, ReadersSeeEveryValueWhileTheWriterCompacts) {
  Write(0, kKeys);
  FlushAndCompact();
  if (HasFatalFailure()) return;
  const std::uint64_t misses_before =
      options_.statistics->getTickerCount(::rocksdb::BLOCK_CACHE_MISS);

  std::atomic<bool> stop{false};
  std::atomic<long> reads{0};
  Handoff handoff;
  std::latch started(kReaders + 1);
  std::vector<std::thread> readers;
  for (int r = 0; r < kReaders; ++r) {
    readers.emplace_back([&, r] {
      started.count_down();
      Read(r, stop, handoff, reads);
    });
  }
  // The writer, while the readers read, in three rounds: a third of the keys
  // ingested again (the same values, in a file that overlaps the old ones, so
  // that the compaction rewrites them rather than moving files), more keys
  // ingested, and a full compaction.
  started.arrive_and_wait();
  const long reads_before_writer = reads.load();
  std::thread writer([&] {
    for (int round = 0; round < 3; ++round) {
      Ingest(round, kKeys, 3);
      const int b = kKeys + round * (kMoreKeys / 3);
      Ingest(b, b + kMoreKeys / 3);
      FlushAndCompact();
    }
  });
  writer.join();
  const long reads_while_writing = reads.load() - reads_before_writer;
  stop = true;
  for (std::thread& t : readers) t.join();
  // What is left over is finished here, on yet another thread.
  for (Handoff::Item& item : handoff.TakeAll()) EXPECT_TRUE(Finish(item));
  EXPECT_GE(reads.load(), 2L * kReaders * kKeys) << "two passes of each reader, at least";
  EXPECT_GT(reads_while_writing, 0) << "the reads overlapped the writes and compactions";

  // Every key, old and new, in order, with its value.
  std::unique_ptr<::rocksdb::Iterator> it(db_->NewIterator(::rocksdb::ReadOptions()));
  int n = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next(), ++n) {
    ASSERT_EQ(KeyIndex(it->key()), n);
    ASSERT_TRUE(CheckIterator(*it));
  }
  EXPECT_TRUE(it->status().ok());
  EXPECT_EQ(n, kKeys + kMoreKeys);
  it.reset();

  // The cache was too small for the blocks read: they were evicted and read
  // again (far more misses than the cache has blocks). Once the reads are
  // over it holds about its capacity (HyperClockCache may be a little over:
  // it only evicts when inserting).
  const std::uint64_t misses =
      options_.statistics->getTickerCount(::rocksdb::BLOCK_CACHE_MISS) - misses_before;
  EXPECT_GT(misses, 4 * kCacheCapacity / kBlockSize);
  EXPECT_GT(options_.statistics->getTickerCount(::rocksdb::BLOCK_CACHE_HIT), 0u);
  EXPECT_GT(options_.statistics->getTickerCount(::rocksdb::COMPACT_WRITE_BYTES), 0u);
  EXPECT_LE(cache_->GetUsage(), kCacheCapacity + 8 * kBlockSize);
}

// Iterators and pinned values outlive their thread and the compaction that
// replaced the files they read, and are released on another thread.
TEST_P(DbTest, IteratorsAndPinnedValuesReleasedOnAnotherThread) {
  Write(0, kKeys);
  FlushAndCompact();
  if (HasFatalFailure()) return;
  std::vector<std::unique_ptr<::rocksdb::Iterator>> iterators;
  std::vector<std::unique_ptr<PinnableSlice>> values;
  std::thread([&] {
    const ::rocksdb::ReadOptions ro;
    for (int k = 0; k < 20; ++k) {
      const int i = k * (kKeys / 20);
      iterators.emplace_back(db_->NewIterator(ro));
      iterators.back()->Seek(Key(i));
      ASSERT_TRUE(iterators.back()->Valid());
      values.push_back(std::make_unique<PinnableSlice>());
      ASSERT_TRUE(db_->Get(ro, db_->DefaultColumnFamily(), Key(i), values.back().get()).ok());
      EXPECT_TRUE(values.back()->IsPinned()) << "a value read from a block pins it";
    }
  }).join();
  ASSERT_EQ(values.size(), 20u);
  EXPECT_GT(cache_->GetPinnedUsage(), 0u) << "the pins outlive the thread that made them";
  // Every key written again (the same values) and compacted: the files the
  // pins point into are replaced. More keys churn the cache.
  const std::uint64_t compacted =
      options_.statistics->getTickerCount(::rocksdb::COMPACT_WRITE_BYTES);
  Write(0, kKeys);
  Write(kKeys, kKeys + kMoreKeys);
  FlushAndCompact();
  EXPECT_GT(options_.statistics->getTickerCount(::rocksdb::COMPACT_WRITE_BYTES), compacted);
  if (HasFatalFailure()) return;
  for (int i = 0; i < kKeys; i += 7) {
    PinnableSlice v;
    ASSERT_TRUE(
        Check(i, db_->Get(::rocksdb::ReadOptions(), db_->DefaultColumnFamily(), Key(i), &v), v));
  }
  // Finished and destroyed on two other threads.
  std::thread a([&] {
    for (std::size_t k = 0; k < iterators.size(); ++k) {
      EXPECT_TRUE(Walk(*iterators[k], static_cast<int>(k) * (kKeys / 20), 50));
      iterators[k].reset();
    }
  });
  std::thread b([&] {
    for (std::size_t k = 0; k < values.size(); ++k) {
      EXPECT_TRUE(Check(static_cast<int>(k) * (kKeys / 20), Status::OK(), *values[k]));
      values[k].reset();
    }
  });
  a.join();
  b.join();
}

INSTANTIATE_TEST_SUITE_P(Caches, DbTest, ::testing::ValuesIn(kKinds),
                         [](const ::testing::TestParamInfo<CacheKind>& kind) {
                           return std::string(kind.param.name);
                         });

}  // namespace
}  // namespace paygo::test
