// No heap allocation on get/put after warm-up, for every counter: the global
// operator new is replaced by one that counts calls.
#include <atomic>
#include <cstdlib>
#include <new>
#include <thread>
#include <vector>

#include "all_counters.hpp"

// Our operator new and delete are a matched malloc/free pair; GCC cannot see
// that through the replacement and warns at every inlined new/delete.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace {
std::atomic<long> g_allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);  // a statistic: no ordering needed
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  return operator new(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n, const std::nothrow_t& t) noexcept {
  return operator new(n, t);
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete[](void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  std::free(p);
}

namespace paygo::test {
namespace {

template <class C>
class AllocTest : public ::testing::Test {};
TYPED_TEST_SUITE(AllocTest, AllCounters);

TYPED_TEST(AllocTest, GetAndPutDoNotAllocateAfterWarmUp) {
  using C = TypeParam;
  C counter;
  typename C::Object hot{counter}, cold{counter};
  counter.set_distributed(hot, true);
  constexpr int kTokens = 64;
  std::vector<typename C::Token> tokens(kTokens);  // storage allocated before counting
  std::vector<typename C::Token> remote(kTokens);
  auto cycle = [&] {
    for (int i = 0; i < kTokens; ++i)
      tokens[static_cast<std::size_t>(i)] = counter.get(i % 2 ? hot : cold);
    for (auto& t : tokens) t.reset();
    for (int i = 0; i < kTokens; ++i) remote[static_cast<std::size_t>(i)] = counter.get(hot);
  };
  // Warm up: registers this thread's slot and creates its table, then the
  // remote puts from another thread (which registers that thread too).
  cycle();
  std::thread([&] {
    for (auto& t : remote) t.reset();
    { auto t = counter.get(hot); }
  }).join();

  const long before = g_allocations.load(std::memory_order_relaxed);
  for (int round = 0; round < 100; ++round) {
    cycle();
    for (auto& t : remote) t.reset();  // home puts here; the anchor path is below
  }
  const long after = g_allocations.load(std::memory_order_relaxed);
  EXPECT_EQ(after - before, 0) << C::kName << " allocated on get/put";
}

// The counting allocator itself works (so the test above can fail).
TEST(AllocCounter, CountsAllocations) {
  const long before = g_allocations.load(std::memory_order_relaxed);
  int* volatile p = new int(7);  // volatile: the pair cannot be elided
  delete p;
  EXPECT_EQ(g_allocations.load(std::memory_order_relaxed) - before, 1);
}

}  // namespace
}  // namespace paygo::test
