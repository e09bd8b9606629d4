// Tests specific to the baselines' own protocols (the typed suite in
// counter_test.cpp covers the common contract):
//  - a frozen query never undercounts while counts move between places
//    (Refcache flushes and evictions, Sloppy spare give-backs, PercpuRef
//    folds, cross-slot puts), checked against references pinned throughout;
//  - Refcache's delayed zero: two calls, restarted by a get in between.
#include <atomic>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "paygo/baselines/counter_list.hpp"

namespace paygo::test {

using namespace paygo::baselines;
namespace {

template <class C>
std::unique_ptr<C> make_counter() {
  if constexpr (std::is_same_v<C, Refcache>) {
    // Two entries per slot cache: eight objects evict each other constantly.
    RefcacheOptions o;
    o.cache_entries = 2;
    return std::make_unique<C>(o);
  } else {
    return std::make_unique<C>();
  }
}

template <class C>
class BaselineTest : public ::testing::Test {};
using Baselines = ::testing::Types<PerSlotArray, Sloppy, Refcache, PercpuRef>;
TYPED_TEST_SUITE(BaselineTest, Baselines);

// Each object carries `pins` references taken on worker threads (so the
// counts start in several slots) and held until the end. Churners get and
// put (the put often on another thread, through a mailbox, so deltas go
// negative in one slot and positive in another; Refcache also advances the
// epoch, forcing flushes). A reclaimer freezes objects over and over: every
// frozen query must be >= the pinned count, and the quiescent one exact.
TYPED_TEST(BaselineTest, FrozenQueryNeverUndercountsWhileCountsMove) {
  using C = TypeParam;
  constexpr int kObjects = 8, kPins = 3, kChurners = 3, kOps = 20000;
  auto counter = make_counter<C>();
  std::vector<std::unique_ptr<typename C::Object>> objs;
  for (int i = 0; i < kObjects; ++i) {
    objs.push_back(std::make_unique<typename C::Object>(*counter));
    counter->set_distributed(*objs.back(), true);
  }
  std::vector<typename C::Token> pinned;
  for (int p = 0; p < kPins; ++p) {
    std::thread([&] {
      for (auto& o : objs) {
        auto t = counter->get(*o);
        ASSERT_TRUE(t);
        pinned.push_back(std::move(t));  // joined before the next thread starts
      }
    }).join();
  }
  std::mutex mailbox_mu;
  std::vector<typename C::Token> mailbox;
  std::atomic<bool> stop{false};
  std::atomic<int> undercounts{0}, freezes{0};
  std::thread reclaimer([&] {
    std::mt19937 rng(7);
    while (!stop.load(std::memory_order_relaxed)) {
      auto& o = *objs[rng() % kObjects];
      if (!counter->try_freeze(o)) continue;
      freezes.fetch_add(1, std::memory_order_relaxed);
      if (counter->query(o) < kPins) undercounts.fetch_add(1, std::memory_order_relaxed);
      counter->unfreeze(o);
      if constexpr (std::is_same_v<C, Refcache>) {
        if (rng() % 4 == 0) counter->advance_epoch();
      }
    }
  });
  std::vector<std::thread> churners;
  for (int c = 0; c < kChurners; ++c) {
    churners.emplace_back([&, c] {
      // Start once the reclaimer is freezing, or a loaded machine may run
      // every churn before the reclaimer is scheduled (a vacuous run).
      while (freezes.load(std::memory_order_relaxed) == 0) std::this_thread::yield();
      std::mt19937 rng(100u + static_cast<unsigned>(c));
      std::vector<typename C::Token> held;
      for (int op = 0; op < kOps; ++op) {
        const auto r = rng() % 8;
        if (r < 3 || held.empty()) {
          if (auto t = counter->get(*objs[rng() % kObjects])) held.push_back(std::move(t));
        } else if (r < 5) {
          held.pop_back();  // put on the getter's thread
        } else if (r < 7) {
          std::lock_guard lock(mailbox_mu);
          mailbox.push_back(std::move(held.back()));
          held.pop_back();
        } else {
          typename C::Token t;
          {
            std::lock_guard lock(mailbox_mu);
            if (mailbox.empty()) continue;
            t = std::move(mailbox.back());
            mailbox.pop_back();
          }
          t.reset();  // put on another thread than the get
        }
      }
    });
  }
  for (auto& t : churners) t.join();
  stop.store(true, std::memory_order_relaxed);
  reclaimer.join();
  mailbox.clear();
  EXPECT_EQ(undercounts.load(), 0) << "a frozen query counted fewer references than are pinned";
  EXPECT_GT(freezes.load(), 0);
  for (auto& o : objs) {
    ASSERT_TRUE(counter->try_freeze(*o));
    EXPECT_EQ(counter->query(*o), kPins) << "quiescent frozen query is not exact";
    counter->unfreeze(*o);
  }
  pinned.clear();
  for (auto& o : objs) {
    bool dead = false;
    for (int i = 0; i < reclaim_calls<C> && !dead; ++i) dead = counter->try_reclaim(*o);
    EXPECT_TRUE(dead) << "count did not return to zero";
  }
}

TEST(RefcacheTest, ZeroIsConfirmedOneEpochLate) {
  Refcache c;
  Refcache::Object o{c};
  c.set_distributed(o, true);
  { auto t = c.get(o); }
  const auto e0 = c.epoch();
  EXPECT_FALSE(c.try_reclaim(o)) << "first zero must only start a review";
  EXPECT_GT(c.epoch(), e0) << "the review advances the epoch";
  EXPECT_TRUE(c.get(o)) << "a review does not freeze the object";  // (token put at once)
  EXPECT_FALSE(c.try_reclaim(o)) << "a get in between restarts the review";
  EXPECT_TRUE(c.try_reclaim(o)) << "zero for a whole epoch: dead";
  EXPECT_FALSE(c.get(o));
  EXPECT_FALSE(c.try_reclaim(o));
}

TEST(RefcacheTest, NonzeroCancelsTheReview) {
  Refcache c;
  Refcache::Object o{c};
  c.set_distributed(o, true);
  EXPECT_FALSE(c.try_reclaim(o));  // review started
  {
    auto t = c.get(o);
    EXPECT_FALSE(c.try_reclaim(o)) << "referenced";
  }
  EXPECT_FALSE(c.try_reclaim(o)) << "the nonzero count must have cancelled the review";
  EXPECT_TRUE(c.try_reclaim(o));
}

TEST(PercpuRefTest, KillFoldsAndResurrectUnfolds) {
  PercpuRef c;
  PercpuRef::Object o{c};
  std::vector<PercpuRef::Token> ts;
  for (int i = 0; i < 5; ++i) ts.push_back(c.get(o));
  ASSERT_TRUE(c.try_freeze(o));  // kill
  EXPECT_EQ(c.query(o), 5);
  EXPECT_FALSE(c.get(o)) << "tryget_live after kill";
  ts.pop_back();  // a put in atomic mode goes to the atomic
  EXPECT_EQ(c.query(o), 4);
  c.unfreeze(o);  // resurrect
  EXPECT_EQ(c.approx(o), 4);
  ts.clear();
  EXPECT_EQ(c.approx(o), 0);
  EXPECT_TRUE(c.try_reclaim(o));
}

}  // namespace
}  // namespace paygo::test
