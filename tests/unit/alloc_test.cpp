// No heap allocation on get/put after warm-up, for every counter: every
// replaceable global operator new (plain, array, nothrow, and the aligned
// forms that PAYGO's tables and the slot-cell chunks use) counts its calls.
#include <atomic>
#include <cstdint>
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

void* counted_alloc(std::size_t n) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);  // a statistic: no ordering needed
  return std::malloc(n == 0 ? 1 : n);
}
void* counted_aligned_alloc(std::size_t n, std::align_val_t a) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  const auto al = static_cast<std::size_t>(a);
  // aligned_alloc wants a size that is a multiple of the alignment.
  return std::aligned_alloc(al, (n == 0 ? al : (n + al - 1) / al * al));
}
}  // namespace

void* operator new(std::size_t n) {
  if (void* p = counted_alloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  return operator new(n);
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return counted_alloc(n);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return counted_alloc(n);
}
void* operator new(std::size_t n, std::align_val_t a) {
  if (void* p = counted_aligned_alloc(n, a)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return operator new(n, a);
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_aligned_alloc(n, a);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counted_aligned_alloc(n, a);
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
void operator delete(void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  std::free(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
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
  constexpr int kRounds = 100;
  std::vector<typename C::Token> tokens(kTokens);  // storage allocated before counting
  std::vector<typename C::Token> remote(kTokens);
  auto cycle = [&] {
    for (int i = 0; i < kTokens; ++i)
      tokens[static_cast<std::size_t>(i)] = counter.get(i % 2 ? hot : cold);
    for (auto& t : tokens) t.reset();  // home puts
    for (int i = 0; i < kTokens; ++i) remote[static_cast<std::size_t>(i)] = counter.get(hot);
  };
  // A second thread, started (std::thread allocates) and registered in the
  // counter before counting begins: in each round it puts the tokens this
  // thread took (the anchor path for PAYGO, the putter's own cell for the
  // slot-array counters) and takes and puts one of its own. `turn` hands
  // the round back and forth: seq_cst, so each side's token work happens
  // before the other side's next step (pairs with itself on both sides).
  std::atomic<int> turn{0};  // even: this thread's move; odd: the helper's
  std::thread helper([&] {
    for (int r = 0; r <= kRounds; ++r) {  // round 0 is the warm-up
      while (turn.load(std::memory_order_seq_cst) != 2 * r + 1) std::this_thread::yield();
      for (auto& t : remote) t.reset();
      { auto t = counter.get(hot); }
      turn.store(2 * r + 2, std::memory_order_seq_cst);
    }
    // Stay alive until the count is read: thread exit retires the slot,
    // which may allocate (the registry's free list), and is not a put.
    while (turn.load(std::memory_order_seq_cst) != -1) std::this_thread::yield();
  });
  auto round = [&](int r) {
    cycle();
    turn.store(2 * r + 1, std::memory_order_seq_cst);
    while (turn.load(std::memory_order_seq_cst) != 2 * r + 2) std::this_thread::yield();
  };
  round(0);  // warm-up: both threads' slots, tables and cells exist now

  const long before = g_allocations.load(std::memory_order_relaxed);
  for (int r = 1; r <= kRounds; ++r) round(r);
  const long after = g_allocations.load(std::memory_order_relaxed);
  turn.store(-1, std::memory_order_seq_cst);
  helper.join();
  EXPECT_EQ(after - before, 0) << C::kName << " allocated on get/put";
}

// The counting allocator itself works (so the test above can fail), for the
// plain and the over-aligned forms.
TEST(AllocCounter, CountsAllocations) {
  const long before = g_allocations.load(std::memory_order_relaxed);
  int* volatile p = new int(7);  // volatile: the pair cannot be elided
  delete p;
  EXPECT_EQ(g_allocations.load(std::memory_order_relaxed) - before, 1);
}
TEST(AllocCounter, CountsAlignedAllocations) {
  struct alignas(128) Line {
    int x = 0;
  };
  const long before = g_allocations.load(std::memory_order_relaxed);
  Line* volatile p = new Line;
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % 128, 0u);
  delete p;
  void* q = ::operator new (100, std::align_val_t{64}, std::nothrow);
  ::operator delete (q, std::align_val_t{64});
  EXPECT_EQ(g_allocations.load(std::memory_order_relaxed) - before, 2);
}

}  // namespace
}  // namespace paygo::test
