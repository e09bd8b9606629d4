// The installed-package check: builds against an installed paygo through
// find_package(paygo), takes and releases references, and reclaims, reads
// through the page cache, and uses PaygoCache (paygo::rocksdb).
// Exit code 0 on success, 1 with a message otherwise.
#include <cstdio>
#include <fstream>
#include <paygo/baselines/atomic.hpp>
#include <paygo/cache/page_cache.hpp>
#include <paygo/paygo.hpp>
#include <paygo/rocksdb/paygo_cache.hpp>
#include <string>
#include <thread>

namespace {
int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "paygo-consumer: FAIL: %s\n", what);
    ++failures;
  }
}
}  // namespace

int main() {
  paygo::Paygo counter;
  paygo::Paygo::Object obj{counter};
  counter.set_distributed(obj, true);

  paygo::Paygo::Token held = counter.get(obj);
  check(static_cast<bool>(held), "get on a live object returned no token");
  check(!counter.try_reclaim(obj), "try_reclaim succeeded while a reference was held");

  // A put from another thread (the migration path) must count too.
  std::thread([&] { counter.put(std::move(held)); }).join();
  check(!held, "the token still holds a reference after put");

  check(counter.try_reclaim(obj), "try_reclaim failed with no reference held");
  check(!counter.get(obj), "get succeeded on a reclaimed object");

  counter.reset(obj);
  paygo::Paygo::Token again = counter.get(obj);
  check(static_cast<bool>(again), "get failed after reset()");
  again.reset();
  check(counter.try_reclaim(obj), "try_reclaim failed after reset and release");

  // The page cache from the installed headers, as in the README.
  const std::string path = "paygo-consumer-blocks";
  std::ofstream(path, std::ios::binary) << std::string(3 * 4096, 'p');
  paygo::cache::PageCache<paygo::Paygo> cache({.capacity_bytes = 1 << 20});
  auto file = cache.open(path);
  check(file.ok(), "PageCache::open failed");
  if (file) {
    check(cache.advise(*file, 0, 0, paygo::cache::Advice::Hot).ok(), "advise(Hot) failed");
    char buf[4096];
    auto n = cache.read(*file, buf, sizeof buf, 8192);
    check(n.ok() && *n == 4096 && buf[4095] == 'p', "PageCache::read returned wrong bytes");
    auto page = cache.pin(*file, 2);
    check(page.ok() && page->size() == 4096, "PageCache::pin failed");
    if (page) page->reset();
    check(cache.drop().evicted == 1, "drop() did not evict the one cached page");
  }
  std::remove(path.c_str());

  // A baseline from its own target (paygo::baselines), as the benchmarks use it.
  paygo::baselines::Atomic atomic;
  paygo::baselines::Atomic::Object aobj{atomic};
  {
    paygo::baselines::Atomic::Token t = atomic.get(aobj);
    check(static_cast<bool>(t) && !atomic.try_reclaim(aobj), "Atomic counted no reference");
  }
  check(atomic.try_reclaim(aobj), "Atomic: try_reclaim failed with no reference held");

  // RocksDB's block cache on PAYGO (paygo::rocksdb, the shared library).
  {
    auto rc = paygo::rocksdb::NewPaygoCache({.capacity = 1 << 20});
    static int value = 42;
    rocksdb::Cache::Handle* h = nullptr;
    check(rc->Insert("key", &value, 1, nullptr, &h).ok() && h != nullptr,
          "PaygoCache::Insert failed");
    if (h != nullptr) rc->Release(h);
    h = rc->Lookup("key");
    check(h != nullptr && rc->Value(h) == &value, "PaygoCache::Lookup missed what was inserted");
    if (h != nullptr) check(rc->Release(h, true), "PaygoCache: Release(h, true) did not erase");
    check(rc->Lookup("key") == nullptr, "PaygoCache: an erased key was found");
  }

  if (failures == 0)
    std::printf("paygo-consumer: ok (membarrier %s)\n",
                paygo::membarrier_in_use() ? "in use" : "not in use");
  return failures == 0 ? 0 : 1;
}
