// No heap allocation on get/put after warm-up, for every counter: every
// replaceable global operator new counts its calls (tests/common/count_new.hpp).
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <thread>
#include <vector>

#include "all_counters.hpp"

#include "../common/count_new.hpp"

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
