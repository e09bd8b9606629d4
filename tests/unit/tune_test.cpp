// Self-tuning PAYGO: promotion on evidence of concurrency, demotion by
// sweep(), pins, inhibit, and the empty-mask reclaim. The interleavings are
// forced (a held token makes every later get see "another holder"), so none
// of these depends on timing; the racy side is paygo-stress --phased and
// the SPIN model.
#include <gtest/gtest.h>

#include <array>
#include <memory>
#include <thread>
#include <vector>

#include "paygo/paygo_counter.hpp"
#include "paygo_access.hpp"

namespace paygo::test {
namespace {

using Access = detail::PaygoTestAccess;

Paygo::Options tune_options() {
  Paygo::Options o = small_options();
  o.promote_events = 4;
  o.promote_window_us = 60'000'000;  // a minute: no test here races the window
  o.demote_sweeps = 3;
  o.inhibit_ms = 0;
  return o;
}

/// `n` get+put pairs on `o` from a new thread (each sees the held token).
void gets_from_other_thread(Paygo& c, Paygo::Object& o, int n) {
  std::thread([&] {
    for (int i = 0; i < n; ++i) ASSERT_TRUE(c.get(o));
  }).join();
}

/// Two threads each see another holder K times: the second one promotes.
void promote(Paygo& c, Paygo::Object& o) {
  Paygo::Token held = c.get(o);
  ASSERT_TRUE(held);
  gets_from_other_thread(c, o, static_cast<int>(c.options().promote_events));  // votes
  ASSERT_FALSE(c.distributed(o)) << "one thread's evidence alone promoted";
  for (std::uint32_t i = 0; i < c.options().promote_events; ++i) ASSERT_TRUE(c.get(o));
  ASSERT_TRUE(c.promoted(o));
}

TEST(Tune, ObjectsStartAutomaticAndCentral) {
  Paygo c(tune_options());
  Paygo::Object o;
  EXPECT_EQ(c.mode(o), Mode::Auto);
  Paygo::Token t = c.get(o);
  EXPECT_FALSE(t.distributed());
  EXPECT_FALSE(c.distributed(o));
}

TEST(Tune, OneThreadWithNestedHoldsNeverPromotes) {
  Paygo c(tune_options());
  Paygo::Object o;
  std::vector<Paygo::Token> held;
  for (int i = 0; i < 1000; ++i) {
    held.push_back(c.get(o));  // every get sees this thread's own holds
    if (held.size() > 3) held.erase(held.begin());
  }
  EXPECT_FALSE(c.distributed(o));
  EXPECT_EQ(c.tune_stats().promotions, 0u);
}

TEST(Tune, TwoThreadsSeeingEachOtherPromote) {
  Paygo c(tune_options());
  Paygo::Object o;
  promote(c, o);
  EXPECT_EQ(c.tune_stats().promotions, 1u);
  EXPECT_NE(c.tune_stats().first_promotion_ns, 0);
  EXPECT_EQ(c.mode(o), Mode::Auto) << "a promotion is not a pin";
  Paygo::Token d = c.get(o);
  EXPECT_TRUE(d.distributed()) << "new gets of a promoted object go distributed";
  d.reset();
  EXPECT_TRUE(c.try_reclaim(o));
}

TEST(Tune, PromotionNeedsNoFreezeAndKeepsCentralTokensCounted) {
  Paygo c(tune_options());
  Paygo::Object o;
  Paygo::Token held = c.get(o);  // central, held across the promotion
  gets_from_other_thread(c, o, 4);
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(c.get(o));
  ASSERT_TRUE(c.distributed(o));
  Paygo::Token d = c.get(o);
  ASSERT_TRUE(d.distributed());
  EXPECT_EQ(c.approx(o), 2);
  EXPECT_FALSE(c.try_reclaim(o)) << "a central token held across the promotion";
  held.reset();
  EXPECT_FALSE(c.try_reclaim(o)) << "the distributed token";
  d.reset();
  EXPECT_TRUE(c.try_reclaim(o));
}

TEST(Tune, PinnedObjectsAreLeftAlone) {
  Paygo c(tune_options());
  Paygo::Object cold, hot;
  c.set_distributed(cold, false);
  c.set_distributed(hot, true);
  EXPECT_EQ(c.mode(cold), Mode::Central);
  EXPECT_EQ(c.mode(hot), Mode::Distributed);
  {
    Paygo::Token held = c.get(cold);
    gets_from_other_thread(c, cold, 16);
    for (int i = 0; i < 16; ++i) ASSERT_TRUE(c.get(cold));
  }
  EXPECT_FALSE(c.distributed(cold)) << "a central pin was promoted";
  std::array<Paygo::Object*, 2> objs{&cold, &hot};
  for (int i = 0; i < 10; ++i) c.sweep(objs);
  EXPECT_TRUE(c.distributed(hot)) << "a distributed pin was demoted";
  EXPECT_EQ(c.tune_stats().promotions + c.tune_stats().demotions, 0u);
  c.set_mode(cold, Mode::Auto);
  EXPECT_EQ(c.mode(cold), Mode::Auto);
  promote(c, cold);
}

TEST(Tune, QuietSweepsDemoteAndClearTheMask) {
  Paygo c(tune_options());
  Paygo::Object o;
  promote(c, o);
  ASSERT_TRUE(c.get(o).distributed());  // one distributed get: a group bit
  ASSERT_NE(Access::mask(o), 0u);
  const std::uint64_t gen = Access::generation(o);
  std::array<Paygo::Object*, 1> objs{&o};
  EXPECT_EQ(c.sweep(objs), 0u) << "first sweep: a new signature, not quiet";
  for (std::uint32_t i = 1; i < c.options().demote_sweeps; ++i) EXPECT_EQ(c.sweep(objs), 0u);
  EXPECT_TRUE(c.distributed(o)) << "demoted before demote_sweeps quiet sweeps";
  EXPECT_EQ(c.sweep(objs), 1u);
  EXPECT_FALSE(c.distributed(o));
  EXPECT_FALSE(c.frozen(o));
  EXPECT_EQ(Access::mask(o), 0u) << "a quiet demotion clears the group bits";
  EXPECT_NE(Access::generation(o), gen) << "a quiet demotion must change the generation";
  EXPECT_EQ(c.tune_stats().demotions, 1u);
  Paygo::Token t = c.get(o);
  EXPECT_FALSE(t.distributed());
  t.reset();
  EXPECT_TRUE(c.try_reclaim(o));
}

TEST(Tune, DistributedGetsBetweenSweepsKeepTheObjectDistributed) {
  Paygo c(tune_options());
  Paygo::Object o;
  promote(c, o);
  std::array<Paygo::Object*, 1> objs{&o};
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(c.get(o).distributed());
    EXPECT_EQ(c.sweep(objs), 0u) << "sweep " << i;
  }
  // Gets from another thread (another table) count as well.
  for (int i = 0; i < 20; ++i) {
    std::thread([&] { ASSERT_TRUE(c.get(o)); }).join();
    EXPECT_EQ(c.sweep(objs), 0u) << "sweep " << i;
  }
  EXPECT_TRUE(c.distributed(o));
}

TEST(Tune, DemotionWithLiveTokensKeepsTheirGroupBits) {
  Paygo c(tune_options());
  Paygo::Object o;
  promote(c, o);
  Paygo::Token d = c.get(o);  // held through the sweeps: no new gets, so "quiet"
  ASSERT_TRUE(d.distributed());
  const std::uint64_t mask = Access::mask(o);
  const std::uint64_t gen = Access::generation(o);
  std::array<Paygo::Object*, 1> objs{&o};
  std::size_t demoted = 0;
  for (std::uint32_t i = 0; i <= c.options().demote_sweeps; ++i) demoted += c.sweep(objs);
  EXPECT_EQ(demoted, 1u);
  EXPECT_FALSE(c.distributed(o)) << "new gets go central";
  EXPECT_EQ(Access::mask(o), mask) << "group bits cleared while a token is live";
  EXPECT_EQ(Access::generation(o), gen);
  EXPECT_FALSE(c.try_reclaim(o)) << "the live distributed token was lost";
  ASSERT_TRUE(c.try_freeze(o));
  EXPECT_EQ(c.query(o), 1);
  c.unfreeze(o);
  d.reset();  // drains from its entry
  EXPECT_TRUE(c.try_reclaim(o));
}

TEST(Tune, DemotedObjectsAreInhibited) {
  Paygo c(tweak(tune_options(), [](Paygo::Options& opt) { opt.inhibit_ms = 999; }));
  Paygo::Object o;
  promote(c, o);
  std::array<Paygo::Object*, 1> objs{&o};
  std::size_t demoted = 0;
  for (std::uint32_t i = 0; i <= c.options().demote_sweeps; ++i) demoted += c.sweep(objs);
  ASSERT_EQ(demoted, 1u);
  {
    Paygo::Token held = c.get(o);
    gets_from_other_thread(c, o, 8);
    for (int i = 0; i < 8; ++i) ASSERT_TRUE(c.get(o));
  }
  EXPECT_FALSE(c.distributed(o)) << "re-promoted inside the inhibit window";
  EXPECT_EQ(c.tune_stats().promotions, 1u);
}

TEST(Tune, ResetStartsAnAutomaticObjectCentralAndKeepsPins) {
  Paygo c(tune_options());
  Paygo::Object o, pinned;
  promote(c, o);
  ASSERT_TRUE(c.try_reclaim(o));
  c.reset(o);
  EXPECT_FALSE(c.distributed(o));
  EXPECT_EQ(c.mode(o), Mode::Auto);
  c.set_distributed(pinned, true);
  ASSERT_TRUE(c.try_reclaim(pinned));
  c.reset(pinned);
  EXPECT_EQ(c.mode(pinned), Mode::Distributed);
}

TEST(Tune, BatchOfCentralObjectsIsReclaimedWithoutTouchingTables) {
  Paygo c(tune_options());
  std::vector<std::unique_ptr<Paygo::Object>> objs;
  std::vector<Paygo::Object*> ptrs;
  for (int i = 0; i < 64; ++i) {
    objs.push_back(std::make_unique<Paygo::Object>());
    ptrs.push_back(objs.back().get());
  }
  Paygo::Token held = c.get(*ptrs[5]);  // central, busy
  c.set_distributed(*ptrs[9], true);    // distributed, busy
  Paygo::Token d = c.get(*ptrs[9]);
  ASSERT_TRUE(d.distributed());
  c.set_distributed(*ptrs[11], true);  // distributed once, now free
  c.get(*ptrs[11]).reset();
  std::unique_ptr<bool[]> dead(new bool[ptrs.size()]);
  std::span<bool> dead_span(dead.get(), ptrs.size());
  EXPECT_EQ(c.reclaim_batch(ptrs, dead_span), 62u);
  EXPECT_FALSE(dead_span[5]);
  EXPECT_FALSE(dead_span[9]);
  EXPECT_TRUE(dead_span[11]);
  EXPECT_FALSE(c.frozen(*ptrs[9]));
  EXPECT_EQ(Access::mask(*ptrs[0]), 0u);
}

TEST(Tune, FallbacksAreCounted) {
  Paygo c(tweak(tune_options(), [](Paygo::Options& opt) {
    opt.max_slots = 1;
    opt.slot_mode = SlotMode::Thread;  // threads without a slot go central
  }));
  Paygo::Object o;
  c.set_distributed(o, true);
  Paygo::Token mine = c.get(o);  // takes the only slot
  ASSERT_TRUE(mine.distributed());
  std::thread([&] {
    for (int i = 0; i < 5; ++i) EXPECT_FALSE(c.get(o).distributed());
  }).join();
  EXPECT_EQ(c.tune_stats().central_fallbacks, 5u);
}

}  // namespace
}  // namespace paygo::test
