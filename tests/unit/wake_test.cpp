// detail::store_and_wake_all(): a waiter of std::atomic::wait() is never left
// asleep after the value it waits on has changed (the page cache's Loading
// -> Ready hand-off, docs/cache.md).
//
// Two threads hand a value back and forth many times, as a loader and a
// misser do: the "loader" stores kLoading, then kReady and wakes; the
// "misser" waits while it reads kLoading. A watchdog notices a hand-off that
// makes no progress for several seconds, records it, and wakes the sleeper
// itself so the test ends and fails instead of hanging.
//
// With a bare store + notify_all (libstdc++ 12) the hang is real: the
// DISABLED_ test below shows it (run it with
// --gtest_also_run_disabled_tests); on the 2-core development VM a program
// doing the same 2,000,000 hand-offs per run hung in 1 run of 48, so this
// test catches a plain store only now and then: it is a regression check
// that can fail, not a proof (docs/cache.md).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

#include "paygo/detail/wake.hpp"

namespace {

constexpr std::uint32_t kLoading = 1;
constexpr std::uint32_t kReady = 2;

/// Runs `rounds` hand-offs with `publish(state, kReady)` as the loader's
/// last step; returns how many hand-offs the watchdog had to rescue.
template <class Publish>
long handoffs(long rounds, Publish publish) {
  std::atomic<std::uint32_t> state{0};
  // round: the loader announces round r after storing kLoading; ack: the
  // misser is done with round r. Release/acquire pairs, both ways.
  std::atomic<long> round{0}, ack{0};
  std::atomic<long> progress{0};  // hand-offs done; read by the watchdog
  std::atomic<bool> finished{false};
  long rescued = 0;  // the watchdog's (this thread's) count
  std::thread loader([&] {
    for (long r = 1; r <= rounds; ++r) {
      while (ack.load(std::memory_order_acquire) != r - 1) {  // pairs with the misser's ack
      }
      state.store(kLoading, std::memory_order_relaxed);  // published by `round`
      round.store(r, std::memory_order_release);         // pairs with the misser's acquire
      for (long spin = r % 64; spin > 0; --spin) {
        std::atomic_signal_fence(std::memory_order_seq_cst);  // vary the window, not optimised out
      }
      publish(state, kReady);
    }
  });
  std::thread misser([&] {
    for (long r = 1; r <= rounds; ++r) {
      while (round.load(std::memory_order_acquire) != r) {  // pairs with the loader's release
      }
      // Acquire: pairs with the release store of kReady.
      while (state.load(std::memory_order_acquire) == kLoading) {
        state.wait(kLoading, std::memory_order_acquire);
      }
      progress.store(r, std::memory_order_relaxed);  // a statistic for the watchdog
      ack.store(r, std::memory_order_release);       // pairs with the loader's acquire
    }
    finished.store(true, std::memory_order_release);  // pairs with the watchdog's acquire
  });
  long last = -1;
  int still = 0;
  while (!finished.load(std::memory_order_acquire)) {  // pairs with the misser's release
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    const long now = progress.load(std::memory_order_relaxed);
    if (now != last) {
      last = now;
      still = 0;
    } else if (++still == 12) {  // 3 s without a hand-off: the misser sleeps for good
      ++rescued;
      state.notify_all();  // wake it so the test can end
      still = 0;
    }
  }
  loader.join();
  misser.join();
  return rescued;
}

TEST(Wake, StoreAndWakeAllNeverLeavesAWaiterAsleep) {
  const long rescued = handoffs(1'000'000, [](std::atomic<std::uint32_t>& a, std::uint32_t v) {
    paygo::detail::store_and_wake_all(a, v);
  });
  EXPECT_EQ(rescued, 0) << "a waiter slept through store_and_wake_all()";
}

// The libstdc++ 12 bug itself: expected to FAIL (a rescued hand-off) in some
// runs. Disabled: it is evidence, not a check of our code.
TEST(Wake, DISABLED_BareStoreAndNotifyAllCanLeaveAWaiterAsleep) {
  long rescued = 0;
  for (int run = 0; run < 10 && rescued == 0; ++run) {
    rescued = handoffs(2'000'000, [](std::atomic<std::uint32_t>& a, std::uint32_t v) {
      a.store(v, std::memory_order_release);
      a.notify_all();
    });
  }
  EXPECT_GT(rescued, 0) << "no lost wake-up in 10 runs (the library may be fixed)";
}

}  // namespace
