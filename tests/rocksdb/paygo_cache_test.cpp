// PaygoCache's own promises, beyond the rocksdb::Cache contract that
// cache_conformance_test.cpp checks on all three caches: no allocation on a
// hit, handles that are PAYGO's raw tokens (one word per thread and entry),
// Priority::HIGH entries distributed from the start, exact frees of
// distributed entries released away from home, and its statistics.
#include <gtest/gtest.h>

#include <rocksdb/cache.h>

#include <atomic>
#include <barrier>
#include <cstdlib>
#include <new>
#include <string>
#include <thread>
#include <vector>

#include "paygo/rocksdb/paygo_cache.hpp"

// Every operator new counts its calls (tests/common/count_new.hpp): the
// cache's own code is linked into this program (paygo::rocksdb_static), so
// its allocations are counted too.
#include "../common/count_new.hpp"

namespace paygo::test {
namespace {

using ::rocksdb::Cache;
constexpr Cache::Priority kHigh = Cache::Priority::HIGH;
constexpr Cache::Priority kLow = Cache::Priority::LOW;

std::shared_ptr<Cache> make(std::size_t capacity = 1 << 20) {
  return paygo::rocksdb::NewPaygoCache(
      {.capacity = capacity, .metadata_charge_policy = ::rocksdb::kDontChargeCacheMetadata});
}

std::atomic<int> g_deleted{0};
void count_delete(const ::rocksdb::Slice&, void*) {
  g_deleted.fetch_add(1);
}

TEST(PaygoCache, HitsDoNotAllocate) {
  auto c = make();
  static int v[2];
  ASSERT_TRUE(c->Insert("hot-distributed", &v[0], 1, nullptr, nullptr, kHigh).ok());
  ASSERT_TRUE(c->Insert("central", &v[1], 1, nullptr, nullptr, kLow).ok());
  std::vector<std::thread> ts;
  long during[2] = {-1, -1};
  std::barrier warm(2);
  for (int t = 0; t < 2; ++t) {
    ts.emplace_back([&, t] {
      const ::rocksdb::Slice keys[2] = {"hot-distributed", "central"};
      for (const auto& k : keys) c->Release(c->Lookup(k));  // warm up: this thread's table
      warm.arrive_and_wait();  // both tables made before either thread counts
      const long before = g_allocations.load();
      for (int i = 0; i < 10000; ++i) {
        for (const auto& k : keys) {
          Cache::Handle* h = c->Lookup(k);
          if (h == nullptr || c->Value(h) == nullptr) std::abort();
          c->Release(h);
        }
      }
      // The other thread's allocations count too: both must be zero.
      during[t] = g_allocations.load() - before;
      warm.arrive_and_wait();  // neither thread exits (its slot retires) while the other counts
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(during[0], 0) << "allocations during 40,000 hits";
  EXPECT_EQ(during[1], 0) << "allocations during 40,000 hits";
}

TEST(PaygoCache, HandlesAreRawTokensOneWordPerThreadAndEntry) {
  auto c = make();
  static int v[2];
  ASSERT_TRUE(c->Insert("d", &v[0], 1, nullptr, nullptr, kHigh).ok());
  ASSERT_TRUE(c->Insert("c", &v[1], 1, nullptr, nullptr, kLow).ok());
  Cache::Handle* d1 = c->Lookup("d");
  Cache::Handle* d2 = c->Lookup("d");
  Cache::Handle* c1 = c->Lookup("c");
  ASSERT_NE(d1, nullptr);
  ASSERT_NE(c1, nullptr);
  EXPECT_EQ(d1, d2) << "a distributed entry's handles on one thread are its table entry";
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(d1) & Paygo::kRawCentral, 0U);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(c1) & Paygo::kRawCentral, Paygo::kRawCentral)
      << "a central handle is the entry's word, tagged";
  Cache::Handle* d3 = nullptr;
  std::thread([&] { d3 = c->Lookup("d"); }).join();
  EXPECT_NE(d3, d1) << "another thread counts in its own table";
  EXPECT_EQ(c->Value(d3), &v[0]);
  for (Cache::Handle* h : {d1, d2, c1, d3}) c->Release(h);
  const auto st = paygo::rocksdb::GetPaygoCacheStats(*c);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->entries, 2U);
  EXPECT_EQ(st->distributed, 1U) << "only the HIGH entry";
  EXPECT_GT(st->metadata_bytes_per_entry, 0U);
}

// A distributed entry erased while handles taken on three threads are out,
// released on other threads than their getters (anchors), some Ref()'d
// away from home: freed exactly at the last release.
TEST(PaygoCache, ErasedDistributedEntryIsFreedAtItsLastReleaseAwayFromHome) {
  auto c = make();
  static int v;
  g_deleted = 0;
  ASSERT_TRUE(c->Insert("k", &v, 1, count_delete, nullptr, kHigh).ok());
  std::vector<Cache::Handle*> hs(3);
  std::vector<std::thread> ts;
  for (int t = 0; t < 3; ++t) ts.emplace_back([&, t] { hs[t] = c->Lookup("k"); });
  for (auto& t : ts) t.join();
  ts.clear();
  for (Cache::Handle* h : hs) ASSERT_NE(h, nullptr);
  c->Erase("k");
  EXPECT_EQ(c->Lookup("k"), nullptr);
  EXPECT_EQ(g_deleted.load(), 0);
  std::thread([&] { c->Ref(hs[0]); }).join();  // a fourth reference, on hs[0]'s anchor
  for (int t = 0; t < 3; ++t) {
    ts.emplace_back([&, t] { c->Release(hs[(t + 1) % 3]); });  // each away from its getter
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(g_deleted.load(), 0) << "freed while the Ref()'d reference is live";
  EXPECT_TRUE(c->Release(hs[0])) << "the last release frees it and says so";
  EXPECT_EQ(g_deleted.load(), 1);
}

TEST(PaygoCache, RejectsOptionsItCannotHonour) {
  EXPECT_THROW(paygo::rocksdb::NewPaygoCache({.num_shard_bits = 20}), std::invalid_argument);
  auto lru = ::rocksdb::NewLRUCache(1 << 20);
  EXPECT_FALSE(paygo::rocksdb::GetPaygoCacheStats(*lru).has_value());
  EXPECT_STREQ(make()->Name(), "PaygoCache");
}

}  // namespace
}  // namespace paygo::test
