// The rocksdb::Cache contract of RocksDB 7.8.3, checked on RocksDB's own
// caches (LRUCache, HyperClockCache) and on paygo::rocksdb::PaygoCache, which
// does what LRUCache does wherever the two differ
// (include/paygo/rocksdb/paygo_cache.hpp, "Contract"). One typed suite over
// cache kinds: each kind is a factory and a set of traits, and each trait
// says, with RocksDB 7.8.3's source as the witness (cache/lru_cache.cc,
// cache/clock_cache.cc), what that cache does where LRUCache and
// HyperClockCache differ. A test that cannot apply to a kind is skipped and
// names the trait. Every check here passes on LRUCache and HyperClockCache:
// a check that failed on one of them would be wrong about RocksDB.
//
// Every value the tests insert is a TestValue that knows its key, its serial
// number and a checksum; its deleter, DeleteTestValue, checks the value and
// the key it is given, marks the value dead and counts the deletion in the
// test's Tally (which owns the memory: a hit on a deleted value is then a
// certain failure, not undefined behaviour). After each test the fixture
// destroys the cache and requires every value to have been deleted exactly
// once (TearDown): a leak, a double deletion or a hit on a freed entry fails
// the test that caused it. The cache's own memory is ASAN's to watch.
//
// The capacities here are far below 1 MiB: with num_shard_bits = -1 every
// kind then has a single shard (LRUCache and PaygoCache: one per 512 KiB,
// rounded down; HyperClockCache: one per 32 MiB), so capacities and charges
// compare exactly.
//
// PaygoKind is compiled with -DPAYGO_TEST_PAYGO_CACHE (and the test linked
// with paygo::rocksdb).
#include <gtest/gtest.h>
#include <rocksdb/cache.h>
#include <rocksdb/slice.h>
#include <rocksdb/status.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <latch>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#ifdef PAYGO_TEST_PAYGO_CACHE
#include "paygo/rocksdb/paygo_cache.hpp"
#endif

#include "paygo/config.hpp"  // PAYGO_TSAN: built with ThreadSanitizer
#if PAYGO_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace paygo::test {
namespace {

using ::rocksdb::Cache;
using ::rocksdb::Slice;
using ::rocksdb::Status;
using Handle = Cache::Handle;
using Priority = Cache::Priority;

constexpr Priority kPriorities[] = {Priority::HIGH, Priority::LOW, Priority::BOTTOM};

const char* PriorityName(Priority p) {
  switch (p) {
    case Priority::HIGH:
      return "Priority::HIGH";
    case Priority::LOW:
      return "Priority::LOW";
    case Priority::BOTTOM:
      return "Priority::BOTTOM";
  }
  return "?";
}

/*** The cache kinds ***/

/// What LRUCache does where LRUCache and HyperClockCache differ; PaygoCache
/// promises the same (paygo_cache.hpp, "Contract").
struct LruTraits {
  /// Keys of any length: LRUCacheShard::Insert copies key.size() bytes.
  static constexpr bool kAnyKeyLength = true;
  /// Inserting a key that is present replaces the entry: Insert returns
  /// OkOverwritten, with or without a handle, Lookup finds the new value, and
  /// the old entry is freed at once if unpinned, else at its last Release
  /// (LRUCacheShard::InsertItem).
  static constexpr bool kOverwriteReplaces = true;
  /// An Insert without a handle that does not fit once every unpinned entry
  /// is evicted returns OK and frees the entry at once, strict limit or not
  /// ("as if the entry inserted into cache and get evicted immediately",
  /// LRUCacheShard::InsertItem).
  static constexpr bool kFullInsertWithoutHandleDrops = true;
  /// Releasing the last reference of an entry while the usage exceeds the
  /// capacity frees it (Release returns true; LRUCacheShard::Release).
  static constexpr bool kReleaseOverCapacityFrees = true;
  /// SetCapacity(smaller) evicts unpinned entries at once
  /// (LRUCacheShard::SetCapacity calls EvictFromLRU).
  static constexpr bool kSetCapacityEvictsAtOnce = true;
  /// A key has at most one entry in the table, whatever the threads do.
  static constexpr bool kOneEntryPerKey = true;
  /// ThreadSanitizer sees the synchronization the cache provides between a
  /// thread that inserts or releases and one that looks up or deletes:
  /// LRUCache takes a pthread mutex, which TSAN intercepts even in the
  /// uninstrumented librocksdb.
  static constexpr bool kTsanSeesItsSync = true;
};

struct LruKind : LruTraits {
  static std::shared_ptr<Cache> Make(std::size_t capacity, bool strict_capacity_limit) {
    ::rocksdb::LRUCacheOptions o;
    o.capacity = capacity;
    o.strict_capacity_limit = strict_capacity_limit;
    o.metadata_charge_policy = ::rocksdb::kDontChargeCacheMetadata;
    return ::rocksdb::NewLRUCache(o);
  }
};

struct HccKind {
  /// Only 16-byte keys (kCacheKeySize, a block cache key): the shard's
  /// ComputeHash asserts key.size() == 16 before anything else, and Debian's
  /// librocksdb keeps assertions, so any other length aborts (with NDEBUG,
  /// Insert returns NotSupported and Lookup nullptr).
  static constexpr bool kAnyKeyLength = false;
  /// Inserting a key that is present keeps the old entry in the table, and
  /// Lookup keeps finding the old value. With a handle, Insert returns
  /// OkOverwritten and a "detached" handle to the new value, which is freed at
  /// its last Release; without one it returns OK and frees the new value at
  /// once (ClockHandleTable::Insert).
  static constexpr bool kOverwriteReplaces = false;
  /// An Insert without a handle that does not fit: without a strict limit the
  /// entry goes in over the capacity (OK, Lookup finds it); with one, Insert
  /// returns MemoryLimit and does not free the value (the caller must, unlike
  /// cache.h's "In case of error value will be cleanup").
  static constexpr bool kFullInsertWithoutHandleDrops = false;
  /// Release never frees an entry for being over capacity: only a later
  /// Insert's eviction does ("In contrast with LRUCache's Release",
  /// ClockHandleTable::Release).
  static constexpr bool kReleaseOverCapacityFrees = false;
  /// SetCapacity only stores the capacity: "next Insert will take care of any
  /// necessary evictions", each freeing about its own charge.
  static constexpr bool kSetCapacityEvictsAtOnce = false;
  /// Two threads inserting one key at once may both put an entry in the
  /// table: ApplyToAllEntries then reports the key twice, Lookup finds either
  /// ("Could be multiple entries in rare cases. Erase them all.",
  /// ClockHandleTable::Erase). Seen in the stress tests below.
  static constexpr bool kOneEntryPerKey = false;
  /// The cache synchronizes with atomics inside the uninstrumented
  /// librocksdb, which TSAN cannot see: the tests then tell TSAN about the
  /// happens-before edges the cache provides (HappensBefore below).
  static constexpr bool kTsanSeesItsSync = false;

  /// The table is sized for capacity / estimated_entry_charge entries: 1
  /// makes room for an entry of every unit of capacity (the tests' charges
  /// are at least 1, but for a few zero-charge dummies), so the table's
  /// occupancy limit never binds before the capacity does.
  static constexpr std::size_t kEstimatedEntryCharge = 1;

  static std::shared_ptr<Cache> Make(std::size_t capacity, bool strict_capacity_limit) {
    return ::rocksdb::HyperClockCacheOptions(capacity, kEstimatedEntryCharge,
                                             /*num_shard_bits=*/-1, strict_capacity_limit,
                                             /*memory_allocator=*/nullptr,
                                             ::rocksdb::kDontChargeCacheMetadata)
        .MakeSharedCache();
  }
};

#ifdef PAYGO_TEST_PAYGO_CACHE
/// PaygoCache keeps LRUCache's behaviour wherever LRUCache and
/// HyperClockCache differ, and is built with the sanitizers of the test.
struct PaygoKind : LruTraits {
  static std::shared_ptr<Cache> Make(std::size_t capacity, bool strict_capacity_limit) {
    return paygo::rocksdb::NewPaygoCache(
        {.capacity = capacity,
         .strict_capacity_limit = strict_capacity_limit,
         .metadata_charge_policy = ::rocksdb::kDontChargeCacheMetadata});
  }
};
using CacheKinds = ::testing::Types<LruKind, HccKind, PaygoKind>;
#else
using CacheKinds = ::testing::Types<LruKind, HccKind>;
#endif

class KindNames {
 public:
  template <class Kind>
  static std::string GetName(int) {
    if (std::is_same_v<Kind, LruKind>) return "LRUCache";
    if (std::is_same_v<Kind, HccKind>) return "HyperClockCache";
    return "PaygoCache";
  }
};

/*** ThreadSanitizer and the uninstrumented librocksdb ***/

// A kind whose synchronization TSAN cannot see (kTsanSeesItsSync false)
// gets the edges it provides annotated: a release on a value before it is
// inserted and before a handle to it is released (or an ApplyToAllEntries
// callback that read it returns), an acquire after a hit and in the deleter.
// Acquires are harmless where nothing released: only releases depend on the
// kind, so a cache built with TSAN (PaygoCache) gets no help.
void TsanRelease([[maybe_unused]] const void* p) {
#if PAYGO_TSAN
  if (p != nullptr) __tsan_release(const_cast<void*>(p));
#endif
}
void TsanAcquire([[maybe_unused]] const void* p) {
#if PAYGO_TSAN
  if (p != nullptr) __tsan_acquire(const_cast<void*>(p));
#endif
}
template <class Kind>
void HappensBefore(const void* p) {
  if constexpr (!Kind::kTsanSeesItsSync) TsanRelease(p);
}

/*** Values and their deletions ***/

class Tally;

/// A cached value: it knows its key and checks itself. Its memory belongs to
/// the test's Tally, not to the cache: the deleter only marks it dead, so a
/// hit that returns a deleted value, or a second deletion, is seen for
/// certain rather than being undefined behaviour.
struct TestValue {
  static constexpr std::uint64_t kAlive = 0x7061'7967'6f2d'7661;  // "paygo-va"
  static constexpr std::uint64_t kDead = 0xdead'dead'dead'dead;

  TestValue(Tally& t, std::uint32_t s, std::string k)
      : tally(&t), serial(s), key(std::move(k)), checksum(Sum()) {}

  std::uint64_t Sum() const {
    std::uint64_t h = 0xcbf2'9ce4'8422'2325 ^ serial;  // FNV-1a over the key
    for (char c : key) h = (h ^ static_cast<unsigned char>(c)) * 0x100'0000'01b3;
    return h ^ reinterpret_cast<std::uintptr_t>(tally);
  }
  /// Not deleted, not written over: what every hit must see.
  bool Intact() const { return magic == kAlive && checksum == Sum(); }

  std::uint64_t magic = kAlive;
  Tally* tally;
  std::uint32_t serial;
  std::string key;
  std::uint64_t checksum;
};

/// The values of one test, by serial number: how many times each was deleted,
/// and by which thread.
class Tally {
 public:
  static constexpr std::uint32_t kMaxValues = 1 << 17;

  TestValue* NewValue(std::string key) {
    const std::uint32_t s = next_.fetch_add(1, std::memory_order_relaxed);
    if (s >= kMaxValues) {
      ADD_FAILURE() << "more than Tally::kMaxValues values in one test";
      std::abort();
    }
    values_[s] = std::make_unique<TestValue>(*this, s, std::move(key));
    return values_[s].get();
  }
  void OnDelete(std::uint32_t serial) {
    deleted_on_[serial] = std::this_thread::get_id();
    deletions_[serial].fetch_add(1, std::memory_order_acq_rel);
  }
  std::uint32_t Deletions(const TestValue* v) const {
    return deletions_[v->serial].load(std::memory_order_acquire);
  }
  /// The thread that deleted the value (read once the deleter has returned).
  std::thread::id DeletedOn(const TestValue* v) const { return deleted_on_[v->serial]; }
  std::uint32_t Created() const { return next_.load(std::memory_order_relaxed); }
  /// Values deleted so far (once or more).
  std::uint32_t Deleted() const {
    std::uint32_t n = 0;
    for (std::uint32_t s = 0; s < Created(); ++s) n += deletions_[s].load() != 0 ? 1 : 0;
    return n;
  }
  void ExpectEachDeletedOnce() const {
    int reported = 0;
    for (std::uint32_t s = 0; s < Created() && reported < 10; ++s) {
      if (const std::uint32_t n = deletions_[s].load(); n != 1) {
        ADD_FAILURE() << "value #" << s << " (key " << values_[s]->key << ") was deleted " << n
                      << " times; every value must be deleted exactly once";
        ++reported;
      }
    }
  }

 private:
  std::atomic<std::uint32_t> next_{0};
  std::unique_ptr<std::unique_ptr<TestValue>[]> values_ {
    new std::unique_ptr<TestValue>[ kMaxValues ]()
  };
  std::unique_ptr<std::atomic<std::uint32_t>[]> deletions_ {
    new std::atomic<std::uint32_t>[ kMaxValues ]()
  };
  std::unique_ptr<std::thread::id[]> deleted_on_{new std::thread::id[kMaxValues]()};
};

/// The deleter of every TestValue: checks it and the key the cache passes,
/// marks it dead, counts the deletion.
void DeleteTestValue(const Slice& key, void* value) {
  TsanAcquire(value);
  auto* v = static_cast<TestValue*>(value);
  if (v == nullptr) {
    ADD_FAILURE() << "DeleteTestValue: called with a null value";
    return;
  }
  if (v->magic == TestValue::kDead) {
    ADD_FAILURE() << "DeleteTestValue: value #" << v->serial << " deleted a second time";
  } else {
    EXPECT_TRUE(v->Intact()) << "DeleteTestValue: value #" << v->serial << " is corrupt";
  }
  EXPECT_EQ(key.ToString(), v->key) << "the deleter must get the key of the entry";
  v->magic = TestValue::kDead;
  v->tally->OnDelete(v->serial);
}

/// A second deleter, the same but for its address (GetDeleter tests).
void DeleteTestValueToo(const Slice& key, void* value) {
  DeleteTestValue(key, value);
}

/// The deleter of null-valued entries that counts its calls.
std::atomic<int> g_null_value_deletions{0};
void CountNullValueDeletion(const Slice& /*key*/, void* value) {
  EXPECT_EQ(value, nullptr);
  g_null_value_deletions.fetch_add(1, std::memory_order_relaxed);
}

/// A 16-byte key (the only length HyperClockCache takes), distinct per i.
std::string Key(int i) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "key-%012d", i);
  return std::string(buf, 16);
}

/*** The fixture ***/

template <class Kind>
class CacheConformanceTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (cache_ != nullptr) {
      EXPECT_EQ(cache_->GetPinnedUsage(), 0u) << "the test left a handle unreleased";
      cache_.reset();  // deletes what is left: every value must now be deleted once
    }
    tally_.ExpectEachDeletedOnce();
  }

  Cache& Make(std::size_t capacity, bool strict_capacity_limit = false) {
    cache_ = Kind::Make(capacity, strict_capacity_limit);
    if (cache_ == nullptr) std::abort();
    return *cache_;
  }

  TestValue* NewValue(const std::string& key) { return tally_.NewValue(key); }

  /// Inserts v under v->key with DeleteTestValue (or `deleter`).
  Status Insert(TestValue* v, std::size_t charge, Handle** handle = nullptr,
                Priority priority = Priority::LOW, Cache::DeleterFn deleter = &DeleteTestValue) {
    HappensBefore<Kind>(v);
    return cache_->Insert(v->key, v, charge, deleter, handle, priority);
  }
  /// Inserts a new value under key, OK expected; returns it (the cache's).
  TestValue* InsertNew(const std::string& key, std::size_t charge, Handle** handle = nullptr,
                       Priority priority = Priority::LOW) {
    TestValue* v = NewValue(key);
    const Status s = Insert(v, charge, handle, priority);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return v;
  }
  /// The value of a handle: checked intact (a hit must never see a deleted
  /// or foreign value) and, for TSAN, acquired.
  TestValue* ValueOf(Handle* h) const {
    void* p = cache_->Value(h);
    TsanAcquire(p);
    auto* v = static_cast<TestValue*>(p);
    EXPECT_NE(v, nullptr) << "Value() of a real hit must not be null";
    if (v != nullptr) {
      EXPECT_TRUE(v->Intact()) << "a hit saw a deleted or corrupt value";
    }
    return v;
  }
  /// Lookup; a hit is checked to carry an intact value of this key.
  Handle* Lookup(const std::string& key) const {
    Handle* h = cache_->Lookup(key);
    if (h != nullptr) {
      TestValue* v = ValueOf(h);
      if (v != nullptr) {
        EXPECT_EQ(v->key, key) << "Lookup returned another key's value";
      }
    }
    return h;
  }
  /// Release (after the reads of the handle's value, for TSAN).
  bool Release(Handle* h, bool erase_if_last_ref = false) const {
    HappensBefore<Kind>(cache_->Value(h));
    return cache_->Release(h, erase_if_last_ref);
  }
  bool Present(const std::string& key) const {
    Handle* h = Lookup(key);
    if (h == nullptr) return false;
    Release(h);
    return true;
  }
  /// key -> charge of every entry ApplyToAllEntries reports, values checked.
  std::map<std::string, std::size_t> Entries() const {
    std::map<std::string, std::size_t> out;
    cache_->ApplyToAllEntries(
        [&](const Slice& key, void* value, std::size_t charge, Cache::DeleterFn deleter) {
          if (deleter == &DeleteTestValue) {
            TsanAcquire(value);
            EXPECT_TRUE(static_cast<TestValue*>(value)->Intact());
          }
          const bool first = out.emplace(key.ToString(), charge).second;
          if (Kind::kOneEntryPerKey) {
            EXPECT_TRUE(first) << "ApplyToAllEntries reported a key twice";
          }
        },
        {});
    return out;
  }

  void RunStress(bool strict_capacity_limit);

  Tally tally_;  // outlives the cache: declared first
  std::shared_ptr<Cache> cache_;
};

TYPED_TEST_SUITE(CacheConformanceTest, CacheKinds, KindNames);

/*** Identity ***/

TYPED_TEST(CacheConformanceTest, NameIsNonEmpty) {
  Cache& cache = this->Make(100);
  ASSERT_NE(cache.Name(), nullptr);
  EXPECT_GT(std::string(cache.Name()).size(), 0u);
}

TYPED_TEST(CacheConformanceTest, NewIdIsUniqueAcrossThreads) {
  Cache& cache = this->Make(100);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 1000;
  std::vector<std::vector<std::uint64_t>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) ids[t].push_back(cache.NewId());
    });
  }
  for (std::thread& t : threads) t.join();
  std::set<std::uint64_t> all;
  for (const auto& v : ids) all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), std::size_t{kThreads * kPerThread}) << "NewId returned an id twice";
}

/*** Insert, Lookup, Value, Release ***/

TYPED_TEST(CacheConformanceTest, InsertLookupValueRelease) {
  Cache& cache = this->Make(1000);
  for (Priority p : kPriorities) {
    SCOPED_TRACE(PriorityName(p));
    const std::string key = Key(static_cast<int>(p));
    TestValue* v = this->InsertNew(key, 10, nullptr, p);
    EXPECT_EQ(this->tally_.Deletions(v), 0u);
    for (int round = 0; round < 3; ++round) {  // a hit leaves the entry cached
      Handle* h = this->Lookup(key);
      ASSERT_NE(h, nullptr);
      EXPECT_EQ(this->ValueOf(h), v) << "a hit returns the value inserted";
      EXPECT_FALSE(this->Release(h)) << "an unerased entry under capacity stays cached";
    }
    EXPECT_EQ(this->tally_.Deletions(v), 0u);
  }
  EXPECT_EQ(cache.Lookup(Key(99)), nullptr) << "a key never inserted misses";
  EXPECT_EQ(cache.GetUsage(), 30u);
  EXPECT_EQ(cache.GetPinnedUsage(), 0u);
}

TYPED_TEST(CacheConformanceTest, InsertWithHandlePinsTheEntry) {
  Cache& cache = this->Make(1000);
  for (Priority p : kPriorities) {
    SCOPED_TRACE(PriorityName(p));
    Handle* h = nullptr;
    TestValue* v = this->InsertNew(Key(static_cast<int>(p)), 7, &h, p);
    ASSERT_NE(h, nullptr) << "Insert with a handle must return one";
    EXPECT_EQ(this->ValueOf(h), v);
    EXPECT_EQ(cache.GetPinnedUsage(), 7u);
    EXPECT_FALSE(this->Release(h));
    EXPECT_EQ(cache.GetPinnedUsage(), 0u);
    EXPECT_TRUE(this->Present(v->key));
  }
  EXPECT_EQ(cache.GetUsage(), 21u);
}

// RocksDB inserts entries with a null value and a null deleter to charge
// memory to the cache (CacheReservationManager's dummy entries).
TYPED_TEST(CacheConformanceTest, NullValueAndNullDeleterAreAccepted) {
  Cache& cache = this->Make(1000);
  for (Priority p : kPriorities) {
    SCOPED_TRACE(PriorityName(p));
    const std::string key = Key(10 + static_cast<int>(p));
    ASSERT_TRUE(cache.Insert(key, nullptr, 5, nullptr, nullptr, p).ok());
    Handle* h = cache.Lookup(key);
    ASSERT_NE(h, nullptr) << "a null-valued entry is an entry";
    EXPECT_EQ(cache.Value(h), nullptr);
    EXPECT_EQ(cache.GetDeleter(h), nullptr);
    EXPECT_EQ(cache.GetCharge(h), 5u);
    cache.Release(h);
    // With a handle, and with a deleter, which then gets the null value.
    const int before = g_null_value_deletions.load();
    Handle* h2 = nullptr;
    ASSERT_TRUE(
        cache.Insert(Key(20 + static_cast<int>(p)), nullptr, 0, &CountNullValueDeletion, &h2, p)
            .ok());
    ASSERT_NE(h2, nullptr);
    EXPECT_EQ(cache.Value(h2), nullptr);
    EXPECT_EQ(cache.GetDeleter(h2), &CountNullValueDeletion);
    EXPECT_TRUE(cache.Release(h2, /*erase_if_last_ref=*/true));
    EXPECT_EQ(g_null_value_deletions.load(), before + 1);
  }
  EXPECT_EQ(cache.GetUsage(), 15u) << "dummy entries are charged as any other";
  cache.Erase(Key(10));
  EXPECT_EQ(cache.Lookup(Key(10)), nullptr);
  EXPECT_EQ(cache.GetUsage(), 10u);
}

TYPED_TEST(CacheConformanceTest, GetDeleterReturnsTheDeleterGiven) {
  Cache& cache = this->Make(1000);
  Handle* a = nullptr;
  Handle* b = nullptr;
  ASSERT_TRUE(this->Insert(this->NewValue(Key(1)), 1, &a).ok());
  ASSERT_TRUE(
      this->Insert(this->NewValue(Key(2)), 1, &b, Priority::HIGH, &DeleteTestValueToo).ok());
  EXPECT_EQ(cache.GetDeleter(a), &DeleteTestValue);
  EXPECT_EQ(cache.GetDeleter(b), &DeleteTestValueToo);
  this->Release(a);
  this->Release(b);
  Handle* h = this->Lookup(Key(2));
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(cache.GetDeleter(h), &DeleteTestValueToo) << "and so does a later Lookup's handle";
  this->Release(h);
  std::map<std::string, Cache::DeleterFn> seen;
  cache.ApplyToAllEntries(
      [&](const Slice& key, void*, std::size_t, Cache::DeleterFn d) { seen[key.ToString()] = d; },
      {});
  EXPECT_EQ(seen[Key(1)], &DeleteTestValue);
  EXPECT_EQ(seen[Key(2)], &DeleteTestValueToo);
}

/*** Charges, usage, capacity ***/

TYPED_TEST(CacheConformanceTest, ChargeUsageAndPinnedUsageAreExact) {
  Cache& cache = this->Make(1000);
  EXPECT_EQ(cache.GetCapacity(), 1000u);
  EXPECT_FALSE(cache.HasStrictCapacityLimit());
  EXPECT_EQ(cache.GetUsage(), 0u);
  const std::size_t charges[] = {1, 2, 30, 0, 400};
  std::vector<Handle*> handles;
  std::size_t total = 0;
  for (std::size_t i = 0; i < std::size(charges); ++i) {
    Handle* h = nullptr;
    this->InsertNew(Key(static_cast<int>(i)), charges[i], &h, kPriorities[i % 3]);
    ASSERT_NE(h, nullptr);
    EXPECT_EQ(cache.GetCharge(h), charges[i]);
    EXPECT_EQ(cache.GetUsage(h), charges[i]) << "kDontChargeCacheMetadata: usage is the charge";
    handles.push_back(h);
    total += charges[i];
    EXPECT_EQ(cache.GetUsage(), total);
    EXPECT_EQ(cache.GetPinnedUsage(), total);
  }
  // Released one by one: the pinned usage falls by each charge.
  std::size_t pinned = total;
  for (std::size_t i = 0; i < handles.size(); ++i) {
    this->Release(handles[i]);
    pinned -= charges[i];
    EXPECT_EQ(cache.GetPinnedUsage(), pinned);
    EXPECT_EQ(cache.GetUsage(), total);
  }
  // A Lookup's handle pins as an Insert's does.
  Handle* h = this->Lookup(Key(4));
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(cache.GetCharge(h), 400u);
  EXPECT_EQ(cache.GetPinnedUsage(), 400u);
  this->Release(h);
  EXPECT_EQ(cache.GetPinnedUsage(), 0u);

  cache.SetCapacity(5000);
  EXPECT_EQ(cache.GetCapacity(), 5000u);
  cache.SetStrictCapacityLimit(true);
  EXPECT_TRUE(cache.HasStrictCapacityLimit());
  cache.SetStrictCapacityLimit(false);
  EXPECT_FALSE(cache.HasStrictCapacityLimit());
  EXPECT_EQ(cache.GetUsage(), total);
}

TYPED_TEST(CacheConformanceTest, OneThreadHoldingTwoHandlesOfOneEntry) {
  Cache& cache = this->Make(1000);
  for (Priority p : kPriorities) {
    SCOPED_TRACE(PriorityName(p));
    const std::string key = Key(static_cast<int>(p));
    Handle* first = nullptr;
    TestValue* v = this->InsertNew(key, 10, &first, p);
    Handle* second = this->Lookup(key);
    ASSERT_NE(second, nullptr);
    EXPECT_EQ(this->ValueOf(first), v);
    EXPECT_EQ(this->ValueOf(second), v);
    EXPECT_EQ(cache.GetPinnedUsage(), 10u) << "an entry pinned twice is charged once";
    EXPECT_FALSE(this->Release(first));
    EXPECT_EQ(cache.GetPinnedUsage(), 10u) << "still pinned by the second handle";
    EXPECT_EQ(this->ValueOf(second), v);
    EXPECT_FALSE(this->Release(second));
    EXPECT_EQ(cache.GetPinnedUsage(), 0u);
    EXPECT_EQ(this->tally_.Deletions(v), 0u);
    EXPECT_TRUE(this->Present(key));
  }
}

// Unpinned entries go when the cache is over capacity; pinned ones never do.
// (Priority::LOW: HyperClockCache's CLOCK needs more sweeps for HIGH ones,
// one Insert may then not free room in time; the rule is the same.)
TYPED_TEST(CacheConformanceTest, EvictsUnpinnedEntriesNeverPinnedOnes) {
  Cache& cache = this->Make(100);
  std::vector<Handle*> pinned(3);
  std::vector<TestValue*> pinned_values;
  for (int i = 0; i < 3; ++i) pinned_values.push_back(this->InsertNew(Key(i), 10, &pinned[i]));
  std::vector<TestValue*> unpinned;
  for (int i = 3; i < 60; ++i) {
    unpinned.push_back(this->InsertNew(Key(i), 10));
    EXPECT_LE(cache.GetUsage(), 100u) << "after inserting key " << i;
  }
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(this->tally_.Deletions(pinned_values[i]), 0u) << "a pinned entry was freed";
    EXPECT_EQ(this->ValueOf(pinned[i]), pinned_values[i]);
    EXPECT_TRUE(this->Present(Key(i))) << "a pinned entry was evicted";
  }
  // What is left is what the usage says, and what went was deleted.
  const std::map<std::string, std::size_t> entries = this->Entries();
  EXPECT_EQ(entries.size() * 10, cache.GetUsage());
  std::size_t evicted = 0;
  for (TestValue* v : unpinned) {
    const bool gone = this->tally_.Deletions(v) == 1;
    evicted += gone ? 1 : 0;
    EXPECT_NE(gone, entries.count(v->key) == 1) << v->key << ": deleted or cached, not both";
  }
  EXPECT_GE(evicted, unpinned.size() - 7) << "at most 7 unpinned entries of 10 fit beside 3 pinned";
  EXPECT_EQ(cache.GetPinnedUsage(), 30u);
  for (Handle* h : pinned) this->Release(h);
}

TYPED_TEST(CacheConformanceTest, SetCapacityShrinkingEvictsUnpinnedEntries) {
  Cache& cache = this->Make(200);
  Handle* pinned = nullptr;
  TestValue* pv = this->InsertNew(Key(0), 10, &pinned);
  for (int i = 1; i < 20; ++i) this->InsertNew(Key(i), 10);
  ASSERT_EQ(cache.GetUsage(), 200u);
  cache.SetCapacity(50);
  EXPECT_EQ(cache.GetCapacity(), 50u);
  if (TypeParam::kSetCapacityEvictsAtOnce) {
    EXPECT_LE(cache.GetUsage(), 50u) << "kSetCapacityEvictsAtOnce";
  } else {
    // HyperClockCache: each later Insert evicts a little more than its charge.
    int inserts = 0;
    for (; cache.GetUsage() > 50 && inserts < 100; ++inserts)
      this->InsertNew(Key(100 + inserts), 10);
    EXPECT_LE(cache.GetUsage(), 50u) << "after " << inserts << " inserts";
  }
  EXPECT_EQ(this->tally_.Deletions(pv), 0u);
  EXPECT_EQ(this->ValueOf(pinned), pv);
  EXPECT_TRUE(this->Present(Key(0))) << "a pinned entry was evicted";
  EXPECT_EQ(this->Entries().size() * 10, cache.GetUsage());
  this->Release(pinned);
}

/*** The strict capacity limit ***/

TYPED_TEST(CacheConformanceTest, StrictLimitFailsAnInsertWithAHandleThatCannotFit) {
  Cache& cache = this->Make(100, /*strict_capacity_limit=*/true);
  EXPECT_TRUE(cache.HasStrictCapacityLimit());
  // Larger than the whole cache.
  {
    TestValue* v = this->NewValue(Key(0));
    Handle* h = nullptr;
    const Status s = this->Insert(v, 101, &h);
    EXPECT_TRUE(s.IsMemoryLimit()) << s.ToString();
    EXPECT_EQ(h, nullptr);
    EXPECT_EQ(this->tally_.Deletions(v), 0u) << "a failed Insert leaves the value to us";
    DeleteTestValue(v->key, v);
  }
  // Full of pinned entries.
  std::vector<Handle*> pinned(2);
  this->InsertNew(Key(1), 60, &pinned[0]);
  this->InsertNew(Key(2), 40, &pinned[1]);
  ASSERT_EQ(cache.GetUsage(), 100u);
  for (Priority p : kPriorities) {
    SCOPED_TRACE(PriorityName(p));
    TestValue* v = this->NewValue(Key(3));
    Handle* h = nullptr;
    const Status s = this->Insert(v, 1, &h, p);
    EXPECT_TRUE(s.IsMemoryLimit()) << s.ToString();
    EXPECT_EQ(h, nullptr);
    EXPECT_EQ(this->tally_.Deletions(v), 0u) << "a failed Insert leaves the value to us";
    DeleteTestValue(v->key, v);
    EXPECT_EQ(cache.GetUsage(), 100u);
    EXPECT_EQ(cache.Lookup(Key(3)), nullptr);
  }
  // Unpinned, the entries make room by eviction.
  this->Release(pinned[1]);
  Handle* h = nullptr;
  TestValue* v = this->NewValue(Key(3));
  const Status s = this->Insert(v, 30, &h);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(this->ValueOf(h), v);
  EXPECT_FALSE(this->Present(Key(2))) << "the unpinned entry was evicted for the new one";
  EXPECT_LE(cache.GetUsage(), 100u);
  this->Release(h);
  this->Release(pinned[0]);
}

TYPED_TEST(CacheConformanceTest, StrictLimitInsertWithoutAHandleIntoAFullCache) {
  Cache& cache = this->Make(100, /*strict_capacity_limit=*/true);
  Handle* pinned = nullptr;
  this->InsertNew(Key(1), 100, &pinned);
  TestValue* v = this->NewValue(Key(2));
  const Status s = this->Insert(v, 10);
  if (TypeParam::kFullInsertWithoutHandleDrops) {
    // LRUCache: accepted and dropped at once.
    EXPECT_TRUE(s.ok()) << "kFullInsertWithoutHandleDrops: " << s.ToString();
    EXPECT_EQ(this->tally_.Deletions(v), 1u) << "the entry is freed at once";
  } else {
    // HyperClockCache: refused, the value still ours.
    EXPECT_TRUE(s.IsMemoryLimit()) << s.ToString();
    EXPECT_EQ(this->tally_.Deletions(v), 0u);
    DeleteTestValue(v->key, v);
  }
  EXPECT_FALSE(this->Present(Key(2)));
  EXPECT_EQ(cache.GetUsage(), 100u);
  this->Release(pinned);
}

// Without a strict limit a full cache takes an entry with a handle over its
// capacity; without a handle, LRUCache drops it.
TYPED_TEST(CacheConformanceTest, NoStrictLimitAFullCacheGoesOverCapacityForAHandle) {
  Cache& cache = this->Make(100);
  Handle* pinned = nullptr;
  this->InsertNew(Key(1), 100, &pinned);
  Handle* h = nullptr;
  TestValue* over = this->InsertNew(Key(2), 10, &h);
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(this->ValueOf(h), over);
  EXPECT_EQ(cache.GetUsage(), 110u);
  EXPECT_EQ(cache.GetPinnedUsage(), 110u);

  TestValue* v = this->NewValue(Key(3));
  const Status s = this->Insert(v, 10);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (TypeParam::kFullInsertWithoutHandleDrops) {
    EXPECT_EQ(this->tally_.Deletions(v), 1u) << "kFullInsertWithoutHandleDrops";
    EXPECT_FALSE(this->Present(Key(3)));
    EXPECT_EQ(cache.GetUsage(), 110u);
  } else {
    EXPECT_EQ(this->tally_.Deletions(v), 0u);
    EXPECT_TRUE(this->Present(Key(3))) << "HyperClockCache inserts it over capacity";
    EXPECT_EQ(cache.GetUsage(), 120u);
  }

  // Released while the cache is over capacity.
  const bool freed = this->Release(h);
  EXPECT_EQ(freed, TypeParam::kReleaseOverCapacityFrees);
  EXPECT_EQ(this->tally_.Deletions(over), freed ? 1u : 0u);
  EXPECT_EQ(this->Present(Key(2)), !freed);
  this->Release(pinned);
}

/*** Overwrite ***/

// The old entry of an overwritten key stays valid while a handle holds it;
// which entry Lookup then finds is where LRUCache and HyperClockCache differ.
TYPED_TEST(CacheConformanceTest, OverwriteKeepsTheOldEntryValidUntilItsHandlesGo) {
  Cache& cache = this->Make(1000);
  for (Priority p : kPriorities) {
    SCOPED_TRACE(PriorityName(p));
    const std::string key = Key(static_cast<int>(p));
    Handle* h_old = nullptr;
    TestValue* old_v = this->InsertNew(key, 10, &h_old, p);
    Handle* h_old2 = this->Lookup(key);  // two handles on the old entry
    ASSERT_NE(h_old2, nullptr);

    // Overwritten without a handle.
    TestValue* new_v = this->NewValue(key);
    Status s = this->Insert(new_v, 20, nullptr, p);
    if (TypeParam::kOverwriteReplaces) {
      EXPECT_TRUE(s.IsOkOverwritten()) << s.ToString();
    } else {
      EXPECT_TRUE(s.ok()) << s.ToString();
      EXPECT_EQ(this->tally_.Deletions(new_v), 1u) << "HCC drops the new value";
    }
    EXPECT_EQ(this->ValueOf(h_old), old_v) << "the old value stays readable";
    EXPECT_EQ(this->tally_.Deletions(old_v), 0u) << "nor is it deleted";
    Handle* hit = this->Lookup(key);
    ASSERT_NE(hit, nullptr);
    EXPECT_EQ(this->ValueOf(hit), TypeParam::kOverwriteReplaces ? new_v : old_v);
    this->Release(hit);

    // Overwritten again, with a handle: OkOverwritten from both caches.
    Handle* h_newer = nullptr;
    TestValue* newer = this->NewValue(key);
    s = this->Insert(newer, 30, &h_newer, p);
    EXPECT_TRUE(s.IsOkOverwritten()) << s.ToString();
    ASSERT_NE(h_newer, nullptr);
    EXPECT_EQ(this->ValueOf(h_newer), newer);
    if (TypeParam::kOverwriteReplaces) {
      EXPECT_EQ(this->tally_.Deletions(new_v), 1u) << "unpinned, replaced: freed at once";
    }
    EXPECT_EQ(this->ValueOf(h_old2), old_v);
    EXPECT_EQ(this->tally_.Deletions(old_v), 0u);

    // The old entry goes with its last handle if it was replaced.
    EXPECT_FALSE(this->Release(h_old));
    EXPECT_EQ(this->tally_.Deletions(old_v), 0u);
    EXPECT_EQ(this->ValueOf(h_old2), old_v);
    EXPECT_EQ(this->Release(h_old2), TypeParam::kOverwriteReplaces);
    EXPECT_EQ(this->tally_.Deletions(old_v), TypeParam::kOverwriteReplaces ? 1u : 0u);
    // HyperClockCache frees its "detached" new entry at its last release.
    EXPECT_EQ(this->Release(h_newer), !TypeParam::kOverwriteReplaces);
    EXPECT_EQ(this->tally_.Deletions(newer), TypeParam::kOverwriteReplaces ? 0u : 1u);
    hit = this->Lookup(key);
    ASSERT_NE(hit, nullptr);
    EXPECT_EQ(this->ValueOf(hit), TypeParam::kOverwriteReplaces ? newer : old_v);
    EXPECT_EQ(cache.GetCharge(hit), TypeParam::kOverwriteReplaces ? 30u : 10u);
    this->Release(hit);
    cache.Erase(key);
  }
  EXPECT_EQ(cache.GetUsage(), 0u);
}

/*** Erase and Release(h, true) ***/

TYPED_TEST(CacheConformanceTest, EraseKeepsAPinnedEntryUntilItsLastRelease) {
  Cache& cache = this->Make(1000);
  for (Priority p : kPriorities) {
    SCOPED_TRACE(PriorityName(p));
    const std::string key = Key(static_cast<int>(p));
    Handle* h1 = nullptr;
    TestValue* v = this->InsertNew(key, 10, &h1, p);
    Handle* h2 = this->Lookup(key);
    ASSERT_NE(h2, nullptr);
    cache.Erase(key);
    EXPECT_EQ(cache.Lookup(key), nullptr) << "an erased key misses at once";
    EXPECT_EQ(this->tally_.Deletions(v), 0u) << "but its entry lives while pinned";
    EXPECT_EQ(this->ValueOf(h1), v);
    EXPECT_EQ(this->ValueOf(h2), v);
    EXPECT_EQ(cache.GetUsage(), 10u) << "and is charged";
    EXPECT_EQ(cache.GetPinnedUsage(), 10u);
    cache.Erase(key);  // erasing again is a no-op
    EXPECT_FALSE(this->Release(h1));
    EXPECT_EQ(this->tally_.Deletions(v), 0u);
    EXPECT_EQ(this->ValueOf(h2), v);
    EXPECT_TRUE(this->Release(h2)) << "the last release frees the erased entry";
    EXPECT_EQ(this->tally_.Deletions(v), 1u);
    EXPECT_EQ(cache.GetUsage(), 0u);
    EXPECT_EQ(cache.GetPinnedUsage(), 0u);
    // An unpinned entry goes at once.
    TestValue* w = this->InsertNew(key, 10, nullptr, p);
    cache.Erase(key);
    EXPECT_EQ(this->tally_.Deletions(w), 1u);
    EXPECT_EQ(cache.Lookup(key), nullptr);
  }
  cache.Erase(Key(99));  // absent: a no-op
}

TYPED_TEST(CacheConformanceTest, ReleaseEraseIfLastRef) {
  Cache& cache = this->Make(1000);
  for (Priority p : kPriorities) {
    SCOPED_TRACE(PriorityName(p));
    const std::string key = Key(static_cast<int>(p));
    // The last reference: erased, and Release says so.
    TestValue* v = this->InsertNew(key, 10, nullptr, p);
    Handle* h = this->Lookup(key);
    ASSERT_NE(h, nullptr);
    EXPECT_TRUE(this->Release(h, /*erase_if_last_ref=*/true));
    EXPECT_EQ(this->tally_.Deletions(v), 1u);
    EXPECT_EQ(cache.Lookup(key), nullptr);
    EXPECT_EQ(cache.GetUsage(), 0u);
    // Not the last: kept, and cached after the other release too.
    Handle* h1 = nullptr;
    v = this->InsertNew(key, 10, &h1, p);
    Handle* h2 = this->Lookup(key);
    ASSERT_NE(h2, nullptr);
    EXPECT_FALSE(this->Release(h1, /*erase_if_last_ref=*/true));
    EXPECT_EQ(this->tally_.Deletions(v), 0u);
    EXPECT_EQ(this->ValueOf(h2), v);
    EXPECT_TRUE(this->Present(key)) << "still in the cache";
    EXPECT_FALSE(this->Release(h2));
    EXPECT_EQ(this->tally_.Deletions(v), 0u);
    EXPECT_TRUE(this->Present(key));
    EXPECT_EQ(cache.GetUsage(), 10u);
    cache.Erase(key);
  }
}

/*** Handles across threads ***/

TYPED_TEST(CacheConformanceTest, RefOnTheSameThreadAndOnAnother) {
  Cache& cache = this->Make(1000);
  for (Priority p : kPriorities) {
    SCOPED_TRACE(PriorityName(p));
    const std::string key = Key(static_cast<int>(p));
    TestValue* v = this->InsertNew(key, 10, nullptr, p);
    Handle* h = this->Lookup(key);
    ASSERT_NE(h, nullptr);
    // The same thread: Ref, then two Releases.
    EXPECT_TRUE(cache.Ref(h));
    EXPECT_FALSE(this->Release(h));
    EXPECT_EQ(cache.GetPinnedUsage(), 10u) << "one reference left";
    EXPECT_EQ(this->ValueOf(h), v);
    // Another thread: Ref; both references released on a third.
    std::thread([&] { EXPECT_TRUE(cache.Ref(h)); }).join();
    EXPECT_FALSE(this->Release(h));
    EXPECT_EQ(cache.GetPinnedUsage(), 10u);
    EXPECT_EQ(this->ValueOf(h), v);
    std::thread([&] {
      EXPECT_EQ(this->ValueOf(h), v);
      EXPECT_FALSE(this->Release(h));
    }).join();
    EXPECT_EQ(cache.GetPinnedUsage(), 0u);
    EXPECT_EQ(this->tally_.Deletions(v), 0u);
    EXPECT_TRUE(this->Present(key));
    // A Ref'd, erased entry goes at the second release, on the other thread.
    h = this->Lookup(key);
    ASSERT_NE(h, nullptr);
    std::thread([&] { EXPECT_TRUE(cache.Ref(h)); }).join();
    cache.Erase(key);
    EXPECT_FALSE(this->Release(h));
    EXPECT_EQ(this->tally_.Deletions(v), 0u);
    std::thread::id releaser;
    std::thread([&] {
      releaser = std::this_thread::get_id();
      EXPECT_TRUE(this->Release(h));
    }).join();
    EXPECT_EQ(this->tally_.Deletions(v), 1u);
    EXPECT_EQ(this->tally_.DeletedOn(v), releaser) << "the last releaser deletes";
  }
}

TYPED_TEST(CacheConformanceTest, ReleaseOnAnotherThreadThanTheLookup) {
  Cache& cache = this->Make(1000);
  for (Priority p : kPriorities) {
    SCOPED_TRACE(PriorityName(p));
    const std::string key = Key(static_cast<int>(p));
    TestValue* v = this->InsertNew(key, 10, nullptr, p);
    Handle* h = nullptr;
    std::thread([&] { h = this->Lookup(key); }).join();
    ASSERT_NE(h, nullptr);
    EXPECT_EQ(this->ValueOf(h), v);
    std::thread([&] { EXPECT_FALSE(this->Release(h)); }).join();
    EXPECT_EQ(cache.GetPinnedUsage(), 0u);
    EXPECT_TRUE(this->Present(key));
    // Release(h, true) of the last reference on another thread frees there.
    std::thread([&] { h = this->Lookup(key); }).join();
    ASSERT_NE(h, nullptr);
    std::thread::id releaser;
    std::thread([&] {
      releaser = std::this_thread::get_id();
      EXPECT_TRUE(this->Release(h, /*erase_if_last_ref=*/true));
    }).join();
    EXPECT_EQ(this->tally_.Deletions(v), 1u);
    EXPECT_EQ(this->tally_.DeletedOn(v), releaser);
    EXPECT_FALSE(this->Present(key));
    // Inserted with a handle on one thread, erased on this one, released on a third.
    std::thread([&] { v = this->InsertNew(key, 10, &h, p); }).join();
    ASSERT_NE(h, nullptr);
    cache.Erase(key);
    std::thread([&] {
      releaser = std::this_thread::get_id();
      EXPECT_EQ(this->ValueOf(h), v);
      EXPECT_TRUE(this->Release(h));
    }).join();
    EXPECT_EQ(this->tally_.Deletions(v), 1u);
    EXPECT_EQ(this->tally_.DeletedOn(v), releaser);
  }
  EXPECT_EQ(cache.GetUsage(), 0u);
}

/*** Whole-cache operations ***/

TYPED_TEST(CacheConformanceTest, ApplyToAllEntriesReportsEveryEntry) {
  Cache& cache = this->Make(1000);
  std::map<std::string, std::size_t> want;
  for (int i = 0; i < 50; ++i) {
    this->InsertNew(Key(i), 1 + i % 5, nullptr, kPriorities[i % 3]);
    want[Key(i)] = 1 + i % 5;
  }
  Handle* pinned = this->Lookup(Key(7));  // pinned entries are entries too
  ASSERT_NE(pinned, nullptr);
  cache.Erase(Key(8));
  want.erase(Key(8));
  std::map<std::string, std::size_t> seen;
  cache.ApplyToAllEntries(
      [&](const Slice& key, void* value, std::size_t charge, Cache::DeleterFn deleter) {
        TsanAcquire(value);
        auto* v = static_cast<TestValue*>(value);
        EXPECT_TRUE(v->Intact());
        EXPECT_EQ(v->key, key.ToString()) << "the key and the value of one entry";
        EXPECT_EQ(deleter, &DeleteTestValue);
        EXPECT_TRUE(seen.emplace(key.ToString(), charge).second) << "reported twice";
      },
      {});
  EXPECT_EQ(seen, want);
  this->Release(pinned);
}

// ApplyToAllEntries is thread-safe: readers and writers run while it walks,
// and every entry that stays in the cache all along is reported, once.
TYPED_TEST(CacheConformanceTest, ApplyToAllEntriesWhileReadersRun) {
  Cache& cache = this->Make(1000);
  constexpr int kStable = 200;
  for (int i = 0; i < kStable; ++i) this->InsertNew(Key(i), 1);
  std::atomic<bool> stop{false};
  std::atomic<long> hits{0};
  constexpr int kReaders = 3;
  std::latch started(kReaders + 1);
  std::vector<std::thread> readers;
  for (int t = 0; t < kReaders; ++t) {
    readers.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      started.count_down();
      while (!stop.load(std::memory_order_relaxed)) {
        // The stable keys: always hit (the cache never fills).
        Handle* h = this->Lookup(Key(static_cast<int>(rng() % kStable)));
        EXPECT_NE(h, nullptr);
        if (h != nullptr) {
          hits.fetch_add(1, std::memory_order_relaxed);
          this->Release(h);
        }
        // This reader's own churn keys: inserted, pinned, erased.
        const std::string churn = Key(1000 + t * 8 + static_cast<int>(rng() % 8));
        switch (rng() % 3) {
          case 0:
            this->InsertNew(churn, 1);
            break;
          case 1:
            cache.Erase(churn);
            break;
          default:
            if (Handle* c = this->Lookup(churn)) this->Release(c, rng() % 2 == 0);
        }
      }
    });
  }
  started.arrive_and_wait();
  // At least 20 passes, and until the readers have hit 2000 times.
  for (int pass = 0; pass < 20 || hits.load() < 2000; ++pass) {
    std::vector<int> seen(kStable, 0);
    cache.ApplyToAllEntries(
        [&](const Slice& key, void* value, std::size_t charge, Cache::DeleterFn deleter) {
          TsanAcquire(value);
          auto* v = static_cast<TestValue*>(value);
          EXPECT_TRUE(v->Intact()) << "a walked entry's value must be alive";
          EXPECT_EQ(v->key, key.ToString());
          EXPECT_EQ(charge, 1u);
          EXPECT_EQ(deleter, &DeleteTestValue);
          const int i = std::stoi(key.ToString().substr(4));
          if (i < kStable) ++seen[i];
          HappensBefore<TypeParam>(value);
        },
        {});
    for (int i = 0; i < kStable; ++i) {
      EXPECT_EQ(seen[i], 1) << "pass " << pass << ": stable key " << i;
    }
    if (::testing::Test::HasFailure()) break;
  }
  stop = true;
  for (std::thread& t : readers) t.join();
  EXPECT_GT(hits.load(), 0);
}

// EraseUnRefEntries frees every unreferenced entry. (cache.h asks that none
// be referenced; both RocksDB caches keep a referenced one, and so must we.)
TYPED_TEST(CacheConformanceTest, EraseUnRefEntriesFreesEveryUnpinnedEntry) {
  Cache& cache = this->Make(1000);
  std::vector<TestValue*> unpinned;
  for (int i = 0; i < 20; ++i)
    unpinned.push_back(this->InsertNew(Key(i), 3, nullptr, kPriorities[i % 3]));
  Handle* pinned = nullptr;
  TestValue* pv = this->InsertNew(Key(100), 7, &pinned);
  cache.EraseUnRefEntries();
  for (TestValue* v : unpinned) EXPECT_EQ(this->tally_.Deletions(v), 1u);
  EXPECT_EQ(this->tally_.Deletions(pv), 0u);
  EXPECT_EQ(cache.GetUsage(), 7u);
  EXPECT_FALSE(this->Present(Key(0)));
  EXPECT_EQ(this->ValueOf(pinned), pv);
  EXPECT_TRUE(this->Present(Key(100))) << "the referenced entry stays cached";
  this->Release(pinned);
  cache.EraseUnRefEntries();
  EXPECT_EQ(this->tally_.Deletions(pv), 1u);
  EXPECT_EQ(cache.GetUsage(), 0u);
  EXPECT_TRUE(this->Entries().empty());
}

TYPED_TEST(CacheConformanceTest, EveryDeleterRunsOnceIncludingAtDestruction) {
  Cache& cache = this->Make(1000);
  std::vector<TestValue*> values;
  for (int i = 0; i < 30; ++i)
    values.push_back(this->InsertNew(Key(i), 2, nullptr, kPriorities[i % 3]));
  for (int i = 30; i < 40; ++i) {
    Handle* h = nullptr;
    values.push_back(this->InsertNew(Key(i), 2, &h, kPriorities[i % 3]));
    this->Release(h);
  }
  for (int i = 0; i < 5; ++i) cache.Erase(Key(i));
  for (int i = 5; i < 10; ++i) this->Insert(this->NewValue(Key(i)), 2);  // overwrites
  const int null_before = g_null_value_deletions.load();
  ASSERT_TRUE(cache.Insert(Key(50), nullptr, 1, &CountNullValueDeletion).ok());
  // 5 erased, 5 overwritten (LRUCache frees the old values, HyperClockCache
  // the new ones: either way one value per overwrite).
  EXPECT_EQ(this->tally_.Deleted(), 10u);
  this->cache_.reset();  // the cache's destructor frees the rest
  this->tally_.ExpectEachDeletedOnce();
  EXPECT_EQ(g_null_value_deletions.load(), null_before + 1);
  for (TestValue* v : values) {
    EXPECT_EQ(this->tally_.DeletedOn(v), std::this_thread::get_id());
  }
}

/*** The secondary-cache-compatible API ***/

// Without a secondary cache, Insert(key, value, helper, ...) is Insert with
// helper->del_cb, and the six-argument Lookup is Lookup.
TYPED_TEST(CacheConformanceTest, CacheItemHelperInsertAndSixArgumentLookup) {
  Cache& cache = this->Make(1000);
  static const Cache::CacheItemHelper kHelper(nullptr, nullptr, &DeleteTestValueToo);
  TestValue* v = this->NewValue(Key(1));
  HappensBefore<TypeParam>(v);
  Handle* h = nullptr;
  ASSERT_TRUE(cache.Insert(v->key, v, &kHelper, 12, &h, Priority::HIGH).ok());
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(this->ValueOf(h), v);
  EXPECT_EQ(cache.GetDeleter(h), &DeleteTestValueToo) << "the helper's del_cb is the deleter";
  EXPECT_EQ(cache.GetCharge(h), 12u);
  this->Release(h);

  // A null helper is an invalid argument, and the value is still ours.
  TestValue* orphan = this->NewValue(Key(2));
  EXPECT_TRUE(cache.Insert(orphan->key, orphan, nullptr, 1).IsInvalidArgument());
  EXPECT_EQ(this->tally_.Deletions(orphan), 0u);
  DeleteTestValue(orphan->key, orphan);
  EXPECT_FALSE(this->Present(Key(2)));

  bool created = false;
  const Cache::CreateCallback create = [&](const void*, std::size_t, void**, std::size_t*) {
    created = true;
    return Status::NotSupported();
  };
  for (bool wait : {true, false}) {
    h = cache.Lookup(Key(1), &kHelper, create, Priority::LOW, wait, nullptr);
    ASSERT_NE(h, nullptr);
    EXPECT_TRUE(cache.IsReady(h));
    cache.Wait(h);
    EXPECT_EQ(this->ValueOf(h), v);
    HappensBefore<TypeParam>(v);
    EXPECT_FALSE(cache.Release(h, /*useful=*/wait, /*erase_if_last_ref=*/false));
    EXPECT_EQ(cache.Lookup(Key(2), &kHelper, create, Priority::LOW, wait, nullptr), nullptr);
  }
  EXPECT_FALSE(created) << "no secondary cache: the create callback is never called";
  h = cache.Lookup(Key(1), &kHelper, create, Priority::LOW, true, nullptr);
  ASSERT_NE(h, nullptr);
  HappensBefore<TypeParam>(v);
  EXPECT_TRUE(cache.Release(h, /*useful=*/true, /*erase_if_last_ref=*/true));
  EXPECT_EQ(this->tally_.Deletions(v), 1u);
}

/*** Keys ***/

TYPED_TEST(CacheConformanceTest, KeysOfAnyLength) {
  if (!TypeParam::kAnyKeyLength) {
    GTEST_SKIP() << "kAnyKeyLength is false: HyperClockCache takes only 16-byte keys";
  }
  Cache& cache = this->Make(1000);
  const std::string keys[] = {"",
                              "a",
                              "ab",
                              std::string("ab\0c", 4),
                              std::string("ab\0d", 4),
                              std::string(15, 'k'),
                              std::string(16, 'k'),
                              std::string(17, 'k'),
                              std::string(1000, 'x'),
                              std::string(1000, 'x') + "y"};
  std::map<std::string, TestValue*> values;
  for (const std::string& k : keys) values[k] = this->InsertNew(k, 1);
  ASSERT_EQ(values.size(), std::size(keys));
  for (const std::string& k : keys) {
    Handle* h = this->Lookup(k);
    ASSERT_NE(h, nullptr) << "key of " << k.size() << " bytes";
    EXPECT_EQ(this->ValueOf(h), values[k]);
    this->Release(h);
  }
  EXPECT_EQ(this->Entries().size(), std::size(keys));
  EXPECT_EQ(cache.GetUsage(), std::size(keys));
  cache.Erase(std::string("ab\0c", 4));
  EXPECT_FALSE(this->Present(std::string("ab\0c", 4)));
  EXPECT_TRUE(this->Present(std::string("ab\0d", 4)));
  EXPECT_TRUE(this->Present("ab"));
}

/*** Threads ***/

// Several threads Lookup, Insert (with and without a handle), Erase, Ref,
// Release (and Release(h, true)), and pass handles to each other, on a few
// keys in a cache that holds only some of them. Every hit checks its value;
// the fixture then checks that every value was deleted exactly once.
template <class Kind>
void CacheConformanceTest<Kind>::RunStress(bool strict) {
  constexpr std::size_t kCapacity = 16;
  constexpr int kKeys = 24;
  constexpr int kThreads = 4;
  constexpr int kIterations = 20000;
  Cache& cache = Make(kCapacity, strict);
  std::array<std::atomic<Handle*>, 8> mailbox{};
  std::atomic<long> hits{0};
  std::atomic<long> inserts{0};
  std::latch start(kThreads);
  auto worker = [&](int t) {
    std::mt19937 rng(static_cast<unsigned>(1234 + t));
    std::vector<Handle*> held;
    auto release_one = [&](bool maybe_erase) {
      const std::size_t i = rng() % held.size();
      Handle* h = held[i];
      held[i] = held.back();
      held.pop_back();
      ValueOf(h);
      Release(h, maybe_erase && rng() % 4 == 0);
    };
    start.arrive_and_wait();
    for (int it = 0; it < kIterations; ++it) {
      const std::string key = Key(static_cast<int>(rng() % kKeys));
      const unsigned op = rng() % 16;
      if (op < 6) {  // Lookup: hold the handle a while, or release it now
        if (Handle* h = Lookup(key)) {
          hits.fetch_add(1, std::memory_order_relaxed);
          if (held.size() < 6 && rng() % 2 == 0) {
            held.push_back(h);
          } else {
            Release(h, rng() % 8 == 0);
          }
        }
      } else if (op < 9) {  // Insert
        TestValue* v = NewValue(key);
        const bool with_handle = rng() % 2 == 0;
        Handle* h = nullptr;
        const Status s =
            Insert(v, 1 + rng() % 3, with_handle ? &h : nullptr, kPriorities[rng() % 3]);
        if (s.ok()) {
          inserts.fetch_add(1, std::memory_order_relaxed);
          if (with_handle) {
            EXPECT_EQ(ValueOf(h), v);
            held.push_back(h);
          }
        } else {
          // Only the strict limit fails an Insert; the value is then ours.
          EXPECT_TRUE(strict && s.IsMemoryLimit()) << s.ToString();
          EXPECT_EQ(h, nullptr);
          EXPECT_TRUE(with_handle || !Kind::kFullInsertWithoutHandleDrops)
              << "kFullInsertWithoutHandleDrops: an Insert without a handle never fails";
          DeleteTestValue(v->key, v);
        }
      } else if (op < 10) {
        cache.Erase(key);
      } else if (op < 11) {  // Ref a held handle: it needs one more Release
        if (!held.empty()) {
          Handle* h = held[rng() % held.size()];
          EXPECT_TRUE(cache.Ref(h));
          held.push_back(h);
        }
      } else if (op < 14) {
        if (!held.empty()) release_one(true);
      } else if (op < 15) {  // pass a handle to whichever thread comes next
        std::atomic<Handle*>& slot = mailbox[rng() % mailbox.size()];
        Handle* mine = nullptr;
        if (!held.empty()) {
          mine = held.back();
          held.pop_back();
        }
        if (Handle* got = slot.exchange(mine, std::memory_order_acq_rel)) {
          ValueOf(got);
          held.push_back(got);
        }
      } else {  // the whole-cache reads, concurrently with the rest
        const std::size_t usage = cache.GetUsage();
        if (strict) {
          EXPECT_LE(usage, kCapacity) << "a strict limit is never exceeded";
        }
        (void)cache.GetPinnedUsage();
        if (rng() % 64 == 0) {
          cache.ApplyToAllEntries(
              [&](const Slice& k, void* value, std::size_t, Cache::DeleterFn) {
                TsanAcquire(value);
                auto* v = static_cast<TestValue*>(value);
                EXPECT_TRUE(v->Intact());
                EXPECT_EQ(v->key, k.ToString());
                HappensBefore<Kind>(value);
              },
              {});
        }
      }
      if (::testing::Test::HasFailure()) break;
    }
    while (!held.empty()) release_one(false);
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (std::thread& t : threads) t.join();
  for (std::atomic<Handle*>& slot : mailbox) {
    if (Handle* h = slot.exchange(nullptr)) {
      ValueOf(h);
      Release(h);
    }
  }
  EXPECT_GT(hits.load(), 0);
  EXPECT_GT(inserts.load(), 0);
  EXPECT_EQ(cache.GetPinnedUsage(), 0u);
  if (strict || Kind::kReleaseOverCapacityFrees) {
    EXPECT_LE(cache.GetUsage(), kCapacity);
  }
  // What is left is intact and what the usage says.
  std::size_t charged = 0;
  std::uint32_t entries = 0;
  std::set<std::string> keys;
  cache.ApplyToAllEntries(
      [&](const Slice& key, void* value, std::size_t charge, Cache::DeleterFn) {
        EXPECT_TRUE(static_cast<TestValue*>(value)->Intact());
        charged += charge;
        ++entries;
        keys.insert(key.ToString());
      },
      {});
  EXPECT_EQ(charged, cache.GetUsage());
  EXPECT_EQ(tally_.Created() - tally_.Deleted(), entries)
      << "every value is either deleted or in the cache";
  if (Kind::kOneEntryPerKey) {
    EXPECT_EQ(keys.size(), entries) << "a key with two entries";
  }
}

TYPED_TEST(CacheConformanceTest, StressThreadsWithoutAStrictLimit) {
  this->RunStress(false);
}

TYPED_TEST(CacheConformanceTest, StressThreadsWithAStrictLimit) {
  this->RunStress(true);
}

}  // namespace
}  // namespace paygo::test
