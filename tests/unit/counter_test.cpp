// The typed suite: every counter must pass every test here (noop only the
// ones that do not need counting; those say so with GTEST_SKIP).
#include <atomic>
#include <barrier>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "all_counters.hpp"

namespace paygo::test {
namespace {

template <class C>
class CounterTest : public ::testing::Test {
 protected:
  C counter;

  // Exact count of `o` with `expected` references held: through a freeze
  // and query where the counter allows one while references are held,
  // through approx() where the freeze is refused (central references).
  void expect_count(typename C::Object& o, std::int64_t expected) {
    if (counter.try_freeze(o)) {
      EXPECT_EQ(counter.query(o), expected);
      counter.unfreeze(o);
    } else {
      EXPECT_NE(expected, 0) << "freeze refused with no reference held";
      EXPECT_EQ(counter.approx(o), expected);
    }
  }

  // try_reclaim() on an idle object at zero, as many times as the counter's
  // delayed zero needs (reclaim_calls<C>: 1 except Refcache). The earlier
  // calls must refuse (a zero confirmed early would not be delayed); the
  // last one's result is returned.
  bool reclaim(typename C::Object& o) {
    for (int i = 1; i < reclaim_calls<C>; ++i) {
      EXPECT_FALSE(counter.try_reclaim(o)) << "delayed zero confirmed on call " << i;
    }
    return counter.try_reclaim(o);
  }
};
#define SKIP_IF_NOT_COUNTING(C) \
  if (!C::kCounts) GTEST_SKIP() << C::kName << " counts nothing (the upper-bound baseline)"
TYPED_TEST_SUITE(CounterTest, AllCounters);

// Tests that loop over both modes use for_each_mode (all_counters.hpp): a
// fresh object of `counter`, central then distributed.

TYPED_TEST(CounterTest, GetReturnsTokenAndPutReleasesIt) {
  using C = TypeParam;
  for_each_mode(this->counter, [&](typename C::Object& o) {
    {
      typename C::Token a = this->counter.get(o);
      ASSERT_TRUE(a);
      typename C::Token b = this->counter.get(o);
      ASSERT_TRUE(b);
      typename C::Token moved = std::move(a);  // a move transfers, never duplicates
      EXPECT_FALSE(a);
      EXPECT_TRUE(moved);
      if (C::kCounts) {
        this->expect_count(o, 2);
        EXPECT_FALSE(this->counter.try_reclaim(o)) << "reclaimed with two tokens held";
      }
      this->counter.put(std::move(b));
      EXPECT_FALSE(b);
    }  // `moved` put by its destructor
    ASSERT_TRUE(this->reclaim(o));
  });
}

TYPED_TEST(CounterTest, FrozenObjectRefusesNewGets) {
  using C = TypeParam;
  for_each_mode(this->counter, [&](typename C::Object& o) {
    ASSERT_TRUE(this->counter.try_freeze(o));
    EXPECT_FALSE(this->counter.try_freeze(o)) << "frozen twice";
    EXPECT_FALSE(this->counter.get(o)) << "get succeeded on a frozen object";
    EXPECT_EQ(this->counter.query(o), 0);
    this->counter.unfreeze(o);
    typename C::Token t = this->counter.get(o);
    EXPECT_TRUE(t) << "get failed after unfreeze";
  });
}

TYPED_TEST(CounterTest, ReclaimSucceedsOnceAndResetRevives) {
  using C = TypeParam;
  for_each_mode(this->counter, [&](typename C::Object& o) {
    { auto t = this->counter.get(o); }
    ASSERT_TRUE(this->reclaim(o));
    EXPECT_FALSE(this->counter.try_reclaim(o)) << "the zero was observed twice";
    EXPECT_FALSE(this->counter.get(o)) << "get on a dead object";
    this->counter.reset(o);
    auto t = this->counter.get(o);
    EXPECT_TRUE(t) << "get failed on a revived object";
    if (C::kCounts) {
      EXPECT_FALSE(this->counter.try_reclaim(o));
    }
    t.reset();
    EXPECT_TRUE(this->reclaim(o));
  });
}

TYPED_TEST(CounterTest, QueryIsExactAfterCrossThreadPuts) {
  using C = TypeParam;
  SKIP_IF_NOT_COUNTING(C);
  for_each_mode(this->counter, [&](typename C::Object& o) {
    std::vector<typename C::Token> tokens;
    std::mutex mu;
    // Two threads take references; the main thread releases half of them
    // (a put away from home) and a third thread the other half.
    auto taker = [&] {
      for (int i = 0; i < 100; ++i) {
        auto t = this->counter.get(o);
        ASSERT_TRUE(t);
        std::lock_guard lock(mu);
        tokens.push_back(std::move(t));
      }
    };
    std::thread a(taker), b(taker);
    a.join();
    b.join();
    ASSERT_EQ(tokens.size(), 200u);
    this->expect_count(o, 200);
    EXPECT_EQ(this->counter.approx(o), 200) << "approx is exact when nothing moves";
    for (int i = 0; i < 100; ++i) tokens[static_cast<std::size_t>(i)].reset();
    std::thread c([&] {
      for (std::size_t i = 100; i < 200; ++i) tokens[i].reset();
    });
    c.join();
    this->expect_count(o, 0);
    EXPECT_TRUE(this->reclaim(o));
  });
}

// Thousands of random get/put interleavings across threads, with tokens
// handed between threads through a mailbox; at a barrier in the middle and
// at the end, every object's query must equal the shadow count.
TYPED_TEST(CounterTest, CountsSurviveRandomInterleavings) {
  using C = TypeParam;
  SKIP_IF_NOT_COUNTING(C);
  constexpr int kObjects = 8, kThreads = 4, kOps = 20000;
  struct Obj {
    explicit Obj(C& c) : hdr(c) {}
    typename C::Object hdr;
    std::atomic<std::int64_t> shadow{0};
  };
  std::vector<std::unique_ptr<Obj>> objs;
  for (int i = 0; i < kObjects; ++i) {
    objs.push_back(std::make_unique<Obj>(this->counter));
    this->counter.set_distributed(objs.back()->hdr, i % 2 == 0);
  }
  std::mutex mailbox_mu;
  std::vector<std::pair<typename C::Token, Obj*>> mailbox;
  std::atomic<int> mismatches{0};
  auto check = [&]() noexcept {
    for (auto& ob : objs) {
      if (!this->counter.try_freeze(ob->hdr)) {  // central refs held: approx is exact now
        if (this->counter.approx(ob->hdr) != ob->shadow.load(std::memory_order_relaxed)) {
          mismatches.fetch_add(1, std::memory_order_relaxed);
        }
        continue;
      }
      if (this->counter.query(ob->hdr) != ob->shadow.load(std::memory_order_relaxed)) {
        mismatches.fetch_add(1, std::memory_order_relaxed);
      }
      this->counter.unfreeze(ob->hdr);
    }
  };
  std::barrier sync(kThreads, check);
  auto worker = [&](unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::pair<typename C::Token, Obj*>> held;
    for (int op = 0; op < kOps; ++op) {
      if (op == kOps / 2) sync.arrive_and_wait();  // quiescent: check() runs here
      const auto r = rng() % 10;
      if (r < 4 || held.empty()) {
        Obj* ob = objs[rng() % kObjects].get();
        auto t = this->counter.get(ob->hdr);
        if (!t) {
          ADD_FAILURE() << "get failed on a live object";
          return;
        }
        ob->shadow.fetch_add(1, std::memory_order_relaxed);
        held.emplace_back(std::move(t), ob);
      } else if (r < 7) {
        const std::size_t i = rng() % held.size();
        held[i].second->shadow.fetch_sub(1, std::memory_order_relaxed);
        held[i].first.reset();
        held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
      } else if (r < 8) {
        std::lock_guard lock(mailbox_mu);
        mailbox.push_back(std::move(held.back()));
        held.pop_back();
      } else {
        std::lock_guard lock(mailbox_mu);
        if (!mailbox.empty()) {
          held.push_back(std::move(mailbox.back()));
          mailbox.pop_back();
        }
      }
    }
    sync.arrive_and_wait();  // second check, then release everything
    for (auto& [t, ob] : held) {
      ob->shadow.fetch_sub(1, std::memory_order_relaxed);
      t.reset();
    }
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back(worker, 1234u + static_cast<unsigned>(i));
  for (auto& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
  for (auto& [t, ob] : mailbox) {
    ob->shadow.fetch_sub(1, std::memory_order_relaxed);
    t.reset();
  }
  for (auto& ob : objs) {
    EXPECT_EQ(ob->shadow.load(), 0);
    EXPECT_TRUE(this->reclaim(ob->hdr)) << "count did not return to zero";
  }
}

// Readers get/put while two reclaimers race with try_reclaim: exactly one
// reclaim succeeds, never while a token is live, and only after every put.
TYPED_TEST(CounterTest, LastPutIsObservedExactlyOnce) {
  using C = TypeParam;
  SKIP_IF_NOT_COUNTING(C);
  for_each_mode(this->counter, [&](typename C::Object& o, bool hot) {
    std::atomic<int> live{0}, successes{0}, violations{0};
    std::atomic<bool> dead{false}, readers_done{false};
    constexpr int kReaders = 3;
    std::vector<std::thread> threads;
    std::atomic<int> finished{0};
    for (int r = 0; r < kReaders; ++r) {
      threads.emplace_back([&] {
        for (int i = 0; i < 20000; ++i) {
          auto t = this->counter.get(o);
          if (!t) break;  // reclaimed: no more gets
          live.fetch_add(1, std::memory_order_seq_cst);
          if (dead.load(std::memory_order_seq_cst)) violations.fetch_add(1);
          live.fetch_sub(1, std::memory_order_seq_cst);
        }
        if (finished.fetch_add(1) + 1 == kReaders) readers_done.store(true);
      });
    }
    for (int r = 0; r < 2; ++r) {
      threads.emplace_back([&] {
        // Keep trying until someone reclaims; readers stop once it is dead.
        while (successes.load() == 0) {
          if (this->counter.try_reclaim(o)) {
            dead.store(true, std::memory_order_seq_cst);
            if (live.load(std::memory_order_seq_cst) != 0) violations.fetch_add(1);
            successes.fetch_add(1);
          }
          if (!readers_done.load()) std::this_thread::yield();
        }
      });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(successes.load(), 1) << "hot=" << hot;
    EXPECT_EQ(violations.load(), 0) << "reclaimed while a token was live, hot=" << hot;
    EXPECT_FALSE(this->counter.try_reclaim(o));
  });
}

}  // namespace
}  // namespace paygo::test
