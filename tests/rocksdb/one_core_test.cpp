// One copy of the core per process: a program that links the page cache
// (which brings the core, libpaygo.a) and libpaygo_rocksdb.so must run on
// one set of the core's globals: domain ids, and the inline thread caches
// that the get and put fast paths read. Two copies would let two Domains
// share an id (and a thread-cache way), and send the library's fast paths
// to caches the registry never fills. The shared library holds no core of
// its own (CMakeLists.txt): its references bind to the program's. This test
// fails if a copy creeps in (the core linked into the .so with -Bsymbolic,
// or with hidden visibility).
#include <gtest/gtest.h>

#include <rocksdb/cache.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "paygo/cache/page_cache.hpp"
#include "paygo/paygo.hpp"
#include "paygo/rocksdb/paygo_cache.hpp"

namespace paygo::test {
namespace {

TEST(OneCore, TheLibraryAndTheProgramShareTheCoresGlobals) {
  EXPECT_EQ(paygo::detail::core_instance(), paygo::rocksdb::detail::core_instance_in_library())
      << "libpaygo_rocksdb.so runs on its own copy of the core";
  EXPECT_EQ(paygo::detail::this_thread_tag(), paygo::rocksdb::detail::thread_tag_in_library())
      << "libpaygo_rocksdb.so has thread caches of its own";
  std::thread([] {
    EXPECT_EQ(paygo::detail::this_thread_tag(), paygo::rocksdb::detail::thread_tag_in_library());
  }).join();
}

// Both caches on the same threads, each with its own PAYGO counter: every
// read and every lookup must see its own data (with two copies of the
// core, the two counters' domains could share an id and so a thread-cache
// way, and one counter's get would land in the other's table).
TEST(OneCore, PageCacheAndPaygoCacheTogether) {
  const auto dir = std::filesystem::temp_directory_path() / "paygo_one_core_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "blocks").string();
  {
    std::ofstream out(path, std::ios::binary);
    for (int p = 0; p < 8; ++p) out << std::string(4096, static_cast<char>('a' + p));
  }
  cache::PageCache<Paygo> pc({.capacity_bytes = 1 << 20});
  auto f = pc.open(path);
  ASSERT_TRUE(f.ok());
  ASSERT_TRUE(pc.advise(*f, 0, 0, cache::Advice::Hot).ok());
  auto rc = paygo::rocksdb::NewPaygoCache(
      {.capacity = 1 << 20, .metadata_charge_policy = ::rocksdb::kDontChargeCacheMetadata});
  static int values[8];
  for (int i = 0; i < 8; ++i) {
    values[i] = i;
    ASSERT_TRUE(rc->Insert(std::to_string(i), &values[i], 1, nullptr, nullptr,
                           ::rocksdb::Cache::Priority::HIGH)  // pinned distributed
                    .ok());
  }
  std::vector<std::thread> ts;
  std::atomic<int> bad{0};
  for (int t = 0; t < 3; ++t) {
    ts.emplace_back([&, t] {
      char buf[4096];
      for (int k = 0; k < 20000; ++k) {
        const int p = (k + t) % 8;
        auto n = pc.read(*f, buf, sizeof buf, static_cast<std::uint64_t>(p) * 4096);
        if (!n.ok() || *n != 4096 || buf[0] != 'a' + p || buf[4095] != 'a' + p) ++bad;
        auto* h = rc->Lookup(std::to_string(p));
        if (h == nullptr || *static_cast<int*>(rc->Value(h)) != p) ++bad;
        if (h != nullptr) rc->Release(h);
      }
    });
  }
  for (auto& th : ts) th.join();
  EXPECT_EQ(bad.load(), 0);
  const auto st = paygo::rocksdb::GetPaygoCacheStats(*rc);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->distributed, 8U) << "Priority::HIGH entries start distributed";
  EXPECT_GT(st->table_bytes, 0U) << "distributed lookups used the PAYGO tables";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace paygo::test
