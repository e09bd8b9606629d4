// PAYGO-specific behaviour: anchors, slot retirement and adoption, the
// fallbacks to the central count, group bits, and the freeze/query race.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <chrono>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "paygo/paygo_counter.hpp"
#include "paygo_access.hpp"

namespace paygo::test {
namespace {

using Access = detail::PaygoTestAccess;

TEST(Paygo, HomePutIsLocalAndRemotePutPaysTheAnchor) {
  Paygo c(small_options());
  Paygo::Object o;
  c.set_distributed(o, true);
  Paygo::Token home = c.get(o);
  Paygo::Token away = c.get(o);
  ASSERT_TRUE(home.distributed());
  ASSERT_TRUE(away.distributed());
  const detail::PaygoEntry& e = Access::entry(home);
  ASSERT_EQ(&e, &Access::entry(away)) << "one entry per object per slot";
  EXPECT_EQ(detail::local_count(e.local.load()), 2);
  home.reset();  // same thread: a plain store on `local`
  EXPECT_EQ(detail::local_count(e.local.load()), 1);
  EXPECT_EQ(e.anchor.load(), 0);
  std::thread([&] { away.reset(); }).join();  // another thread: the migration tax
  EXPECT_EQ(detail::local_count(e.local.load()), 1);
  EXPECT_EQ(e.anchor.load(), -1);
  EXPECT_TRUE(c.try_reclaim(o));
}

// Raw tokens (RocksDB's handles): one word each way, put_raw() at home (the
// entry is in the caller's table) on `local` and away on the anchor,
// dup_raw() from any thread, and `local` never below 0.
TEST(Paygo, RawTokensRoundTripAndPutAtHomeOrAway) {
  for (const std::uint32_t entries : {16U, 256U, 1000U}) {
    Paygo c(tweak(small_options(), [&](Paygo::Options& opt) { opt.table_entries = entries; }));
    Paygo::Object dist, cent;
    c.set_distributed(dist, true);
    Paygo::Token t = c.get(dist);
    ASSERT_TRUE(t.distributed());
    const detail::PaygoEntry* e = &Access::entry(t);
    const std::uintptr_t r = c.into_raw(std::move(t));
    EXPECT_FALSE(t) << "into_raw empties the token";
    EXPECT_EQ(r, reinterpret_cast<std::uintptr_t>(e));
    EXPECT_EQ(&Paygo::raw_object(r), &dist);
    const std::uintptr_t r2 = c.into_raw(c.get(dist));
    EXPECT_EQ(r2, r) << "one thread's references to one object: one entry, one word";
    std::thread([&] { c.put_raw(r2); }).join();  // away: the anchor
    EXPECT_EQ(e->anchor.load(), -1) << entries << " entries";
    EXPECT_EQ(detail::local_count(e->local.load()), 2);
    const std::uintptr_t rc = c.into_raw(c.get(cent));
    EXPECT_EQ(rc & Paygo::kRawCentral, Paygo::kRawCentral);
    EXPECT_EQ(&Paygo::raw_object(rc), &cent);
    EXPECT_EQ(c.query(dist), 1);
    EXPECT_EQ(c.query(cent), 1);
    EXPECT_FALSE(c.try_reclaim(dist));
    EXPECT_FALSE(c.try_reclaim(cent));
    c.put_raw(r);  // home: `local`
    EXPECT_EQ(detail::local_count(e->local.load()), 1);
    EXPECT_EQ(e->anchor.load(), -1);
    c.put_raw(rc);
    EXPECT_TRUE(c.try_reclaim(dist));
    EXPECT_TRUE(c.try_reclaim(cent));
    EXPECT_EQ(c.into_raw(Paygo::Token{}), 0U);
  }
}

TEST(Paygo, DupFromAnotherThreadThenBothPutAtHomeKeepLocalNonNegative) {
  Paygo c(small_options());
  Paygo::Object o;
  c.set_distributed(o, true);
  const std::uintptr_t r = c.into_raw(c.get(o));
  ASSERT_EQ(r & Paygo::kRawCentral, 0U);
  const auto& e = *reinterpret_cast<const detail::PaygoEntry*>(r);
  std::thread([&] { c.dup_raw(r); }).join();  // on the anchor
  EXPECT_EQ(detail::local_count(e.local.load()), 1);
  EXPECT_EQ(e.anchor.load(), 1);
  EXPECT_EQ(c.query(o), 2);
  c.put_raw(r);  // home, with a home count: local
  EXPECT_EQ(detail::local_count(e.local.load()), 0);
  EXPECT_EQ(c.query(o), 1);
  EXPECT_FALSE(c.try_reclaim(o)) << "the dup'ed reference is still live";
  c.put_raw(r);  // home, but no home count left: the anchor pays
  EXPECT_EQ(detail::local_count(e.local.load()), 0) << "local must not wrap below 0";
  EXPECT_EQ(detail::local_uses(e.local.load()), 1U) << "the use bits are untouched";
  EXPECT_EQ(e.anchor.load(), 0);
  EXPECT_TRUE(c.try_reclaim(o));
}

TEST(Paygo, DupOfACentralTokenCountsOnTheWord) {
  Paygo c(small_options());
  Paygo::Object o;
  const std::uintptr_t r = c.into_raw(c.get(o));
  ASSERT_NE(r & Paygo::kRawCentral, 0U);
  std::thread([&] {
    c.dup_raw(r);
    c.dup_raw(r);
  }).join();
  EXPECT_EQ(c.query(o), 3);
  std::thread([&] { c.put_raw(r); }).join();
  c.put_raw(r);
  EXPECT_FALSE(c.try_reclaim(o));
  c.put_raw(r);
  EXPECT_TRUE(c.try_reclaim(o));
}

// Dups and puts from two threads while a third reclaims in a loop: a
// reclaim may succeed only when every reference is gone. The holder keeps
// one reference through the whole run, so a successful reclaim before the
// end is a lost reference (a dup the scan missed while a put it saw made
// the sum 0: what dup_raw's fence and frozen check rule out).
TEST(Paygo, DupRacingWithReclaimsNeverLetsTheObjectDie) {
  Paygo c(small_options());
  Paygo::Object o;
  c.set_distributed(o, true);
  const std::uintptr_t base = c.into_raw(c.get(o));  // held to the end
  ASSERT_EQ(base & Paygo::kRawCentral, 0U);
  std::atomic<bool> stop{false};
  std::atomic<long> early{0}, dups{0};
  std::thread reclaimer([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      if (c.try_reclaim(o)) {
        early.fetch_add(1);
        return;
      }
    }
  });
  auto worker = [&] {
    for (int i = 0; i < 20000; ++i) {
      c.dup_raw(base);  // from both threads: home (the getter) and away
      dups.fetch_add(1, std::memory_order_relaxed);
      c.put_raw(base);
    }
  };
  std::thread away(worker);
  worker();
  away.join();
  stop.store(true);
  reclaimer.join();
  EXPECT_EQ(early.load(), 0) << "reclaimed while a reference was live";
  EXPECT_EQ(dups.load(), 40000);
  EXPECT_EQ(c.query(o), 1);
  c.put_raw(base);
  EXPECT_TRUE(c.try_reclaim(o));
}

// Counters whose domains share a way of the thread cache (ids 8 apart)
// take turns in it: each get must land in its own counter's table, never in
// the table the way held a moment ago. The fast path trusts the way after
// one compare of its key; a key that two counters could share would send
// a's last get below into b's freed table (ASAN: heap-use-after-free).
TEST(Paygo, CountersSharingAThreadCacheWayKeepTheirOwnTables) {
  std::vector<std::unique_ptr<Paygo>> counters;
  for (std::size_t i = 0; i <= detail::kThreadCacheWays; ++i) {
    counters.push_back(std::make_unique<Paygo>(small_options()));
  }
  Paygo& a = *counters.front();
  Paygo& b = *counters.back();
  ASSERT_EQ(a.domain().id() % detail::kThreadCacheWays, b.domain().id() % detail::kThreadCacheWays);
  Paygo::Object oa;
  Paygo::Object ob;
  a.set_distributed(oa, true);
  b.set_distributed(ob, true);
  std::vector<Paygo::Token> ta;
  std::vector<Paygo::Token> tb;
  for (int round = 0; round < 3; ++round) {
    ta.push_back(a.get(oa));
    tb.push_back(b.get(ob));
    ta.push_back(a.get(oa));  // the fast path, right after b took the way
    ASSERT_TRUE(ta.back().distributed());
    ASSERT_TRUE(tb.back().distributed());
  }
  ASSERT_TRUE(a.try_freeze(oa));
  EXPECT_EQ(a.query(oa), 6);
  a.unfreeze(oa);
  ASSERT_TRUE(b.try_freeze(ob));
  EXPECT_EQ(b.query(ob), 3);
  b.unfreeze(ob);
  ta.clear();
  tb.clear();
  EXPECT_TRUE(a.try_reclaim(oa));
  EXPECT_TRUE(b.try_reclaim(ob));
  // b holds the way last, then dies with its table; a's next get must not
  // trust what the way still caches.
  a.reset(oa);
  b.reset(ob);
  b.get(ob).reset();
  counters.pop_back();
  Paygo::Token t = a.get(oa);
  ASSERT_TRUE(t.distributed());
  ASSERT_TRUE(a.try_freeze(oa));
  EXPECT_EQ(a.query(oa), 1);
  a.unfreeze(oa);
}

TEST(Paygo, CentralObjectsUseTheWordUntilMarkedHot) {
  Paygo c(small_options());
  Paygo::Object o;
  auto t = c.get(o);
  ASSERT_TRUE(t);
  EXPECT_FALSE(t.distributed());
  EXPECT_FALSE(c.try_freeze(o)) << "a central reference makes the freeze fail at once";
  c.set_distributed(o, true);
  auto d = c.get(o);
  EXPECT_TRUE(d.distributed());
  EXPECT_EQ(c.approx(o), 2);
  c.set_distributed(o, false);  // back to central: held tokens still count where they went
  EXPECT_EQ(c.approx(o), 2);
  t.reset();
  ASSERT_TRUE(c.try_freeze(o));
  EXPECT_EQ(c.query(o), 1);
  c.unfreeze(o);
  d.reset();
  EXPECT_TRUE(c.try_reclaim(o));
}

TEST(Paygo, ThreadExitKeepsTokensHeldByOthersCounted) {
  Paygo c(small_options());
  Paygo::Object o;
  c.set_distributed(o, true);
  std::vector<Paygo::Token> handed;
  std::uint32_t index = 0;
  std::thread([&] {
    for (int i = 0; i < 5; ++i) handed.push_back(c.get(o));
    index = Access::home_index(handed[0]);
  }).join();
  // The thread is gone; its slot is retired but its table and entries stay.
  EXPECT_EQ(c.domain().owned_slots(), 0u);
  EXPECT_FALSE(c.try_reclaim(o)) << "entries of an exited thread were not counted";
  ASSERT_TRUE(c.try_freeze(o));
  EXPECT_EQ(c.query(o), 5);
  c.unfreeze(o);
  for (auto& t : handed) {
    EXPECT_EQ(Access::home_index(t), index);
    t.reset();  // owner gone: every put pays the anchor
  }
  EXPECT_TRUE(c.try_reclaim(o));
}

TEST(Paygo, NewThreadAdoptsRetiredSlotWithItsLiveEntries) {
  Paygo c(tweak(small_options(), [](Paygo::Options& opt) { opt.max_slots = 1; }));
  Paygo::Object o;
  c.set_distributed(o, true);
  Paygo::Token from_a;
  std::thread([&] { from_a = c.get(o); }).join();
  ASSERT_TRUE(from_a.distributed());
  const detail::PaygoEntry& e = Access::entry(from_a);
  std::thread([&] {
    Paygo::Token mine = c.get(o);  // adopts the only slot, finds A's entry
    ASSERT_TRUE(mine.distributed());
    EXPECT_EQ(&Access::entry(mine), &e);
    EXPECT_EQ(detail::local_count(e.local.load()), 2);
    from_a.reset();  // the adopter is now the owner: a home put
    EXPECT_EQ(detail::local_count(e.local.load()), 1);
    EXPECT_EQ(e.anchor.load(), 0);
  }).join();
  EXPECT_TRUE(c.try_reclaim(o));
}

TEST(Paygo, FullProbeWindowFallsBackToCentral) {
  Paygo c(tweak(small_options(), [](Paygo::Options& opt) {
    opt.table_entries = 4;
    opt.probe = 2;
  }));
  constexpr int kObjects = 32;
  std::vector<std::unique_ptr<Paygo::Object>> objs;
  std::vector<Paygo::Token> tokens;
  int central = 0;
  for (int i = 0; i < kObjects; ++i) {
    objs.push_back(std::make_unique<Paygo::Object>());
    c.set_distributed(*objs.back(), true);
    tokens.push_back(c.get(*objs.back()));
    ASSERT_TRUE(tokens.back()) << "a get failed instead of falling back";
    central += tokens.back().distributed() ? 0 : 1;
  }
  EXPECT_GE(central, kObjects - 4) << "only 4 entries exist";
  for (int i = 0; i < kObjects; ++i) {
    EXPECT_EQ(c.approx(*objs[static_cast<std::size_t>(i)]), 1);
    EXPECT_FALSE(c.try_reclaim(*objs[static_cast<std::size_t>(i)]));
  }
  tokens.clear();
  for (auto& o : objs) EXPECT_TRUE(c.try_reclaim(*o));
}

TEST(Paygo, SaturatedLocalFallsBackAndFoldsTheAnchorBack) {
  Paygo c(tweak(small_options(), [](Paygo::Options& opt) { opt.local_limit = 4; }));
  Paygo::Object o;
  c.set_distributed(o, true);
  std::vector<Paygo::Token> tokens;
  for (int i = 0; i < 10; ++i) tokens.push_back(c.get(o));
  int dist = 0;
  for (auto& t : tokens) dist += t.distributed() ? 1 : 0;
  EXPECT_EQ(dist, 4) << "local passed its limit";
  EXPECT_EQ(c.approx(o), 10);
  // Release the distributed ones from another thread: local stays 4, anchor -4.
  std::thread([&] {
    for (auto& t : tokens)
      if (t.distributed()) t.reset();
  }).join();
  EXPECT_EQ(c.approx(o), 6);
  // local == limit, but the anchor can be folded back: distributed again.
  auto again = c.get(o);
  EXPECT_TRUE(again.distributed()) << "the anchor was not folded back into local";
  EXPECT_EQ(c.approx(o), 7);
  again.reset();
  tokens.clear();
  EXPECT_TRUE(c.try_reclaim(o));
}

// Threads beyond max_slots: central in the Thread mode, per CPU in the
// Spill mode (the default); every reference is counted either way.
void more_threads_than_slots(SlotMode mode) {
  Paygo c(tweak(small_options(), [&](Paygo::Options& opt) {
    opt.max_slots = 2;
    opt.slot_mode = mode;
  }));
  Paygo::Object o;
  c.set_distributed(o, true);
  constexpr int kThreads = 6;
  std::barrier all_hold(kThreads + 1), release(kThreads + 1);
  std::atomic<int> central{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      auto a = c.get(o);
      auto b = c.get(o);
      if (!a || !b) ADD_FAILURE() << "get failed with more threads than slots";
      central.fetch_add((a.distributed() ? 0 : 1) + (b.distributed() ? 0 : 1));
      all_hold.arrive_and_wait();
      release.arrive_and_wait();
    });
  }
  all_hold.arrive_and_wait();
  if (mode == SlotMode::Thread) {
    EXPECT_EQ(central.load(), 2 * (kThreads - 2)) << "threads without a slot go central";
  } else {
    EXPECT_EQ(central.load(), 0) << "threads without a slot count per CPU";
    const std::size_t table = sizeof(detail::PaygoTable) + 16 * sizeof(detail::PaygoEntry);
    EXPECT_EQ(c.table_bytes() % table, 0u);
    EXPECT_LE(c.table_bytes(), (2 + std::thread::hardware_concurrency()) * table)
        << "two slots' tables and at most one per CPU";
  }
  EXPECT_EQ(c.approx(o), 2 * kThreads);
  EXPECT_FALSE(c.try_reclaim(o));
  release.arrive_and_wait();
  for (auto& t : threads) t.join();
  EXPECT_TRUE(c.try_reclaim(o));
}

TEST(Paygo, MoreThreadsThanSlotsStillCountEveryReference) {
  more_threads_than_slots(SlotMode::Thread);
}

TEST(Paygo, GroupBitsAreClearedOnlyWhenTheObjectIsDead) {
  Paygo c(small_options());
  Paygo::Object o;
  c.set_distributed(o, true);
  { auto t = c.get(o); }  // this thread: slot 0, touched, then released
  Paygo::Token held;
  std::thread([&] { held = c.get(o); }).join();  // slot 1, still held
  EXPECT_EQ(Access::mask(o), 0b11u);
  EXPECT_FALSE(c.try_reclaim(o));
  EXPECT_EQ(Access::mask(o), 0b11u) << "a failed reclaim must not clear group bits";
  held.reset();
  EXPECT_TRUE(c.try_reclaim(o));
  EXPECT_EQ(Access::mask(o), 0u) << "a dead object's mask is reset";
}

TEST(Paygo, BatchReclaimReportsBusyObjectsAndFreesTheRest) {
  Paygo c(small_options());
  constexpr int kObjects = 64;
  std::vector<std::unique_ptr<Paygo::Object>> objs;
  std::vector<Paygo::Object*> ptrs;
  for (int i = 0; i < kObjects; ++i) {
    objs.push_back(std::make_unique<Paygo::Object>());
    c.set_distributed(*objs.back(), i % 3 != 0);
    ptrs.push_back(objs.back().get());
  }
  std::vector<Paygo::Token> held;  // every 4th object held, from two threads
  std::mutex mu;
  auto take = [&](int first) {
    for (int i = first; i < kObjects; i += 8) {
      auto t = c.get(*ptrs[static_cast<std::size_t>(i)]);
      std::lock_guard lock(mu);
      held.push_back(std::move(t));
    }
  };
  std::thread a(take, 0), b(take, 4);
  a.join();
  b.join();
  for (auto* p : ptrs) {
    auto t = c.get(*p);
  }  // every object touched on this slot too
  std::unique_ptr<bool[]> dead(new bool[kObjects]);
  const std::size_t n = c.reclaim_batch(ptrs, std::span<bool>(dead.get(), kObjects));
  EXPECT_EQ(n, static_cast<std::size_t>(kObjects - kObjects / 4));
  for (int i = 0; i < kObjects; ++i) {
    EXPECT_EQ(dead[static_cast<std::size_t>(i)], i % 4 != 0) << "object " << i;
  }
  held.clear();
  for (int i = 0; i < kObjects; i += 4)
    EXPECT_TRUE(c.try_reclaim(*ptrs[static_cast<std::size_t>(i)]));
}

// The heart: readers get/put (some holding long, some migrating tokens to
// another thread) while a reclaimer freezes, queries and recycles objects in
// a loop. A shadow count of live tokens fails the test if a reclaim ever
// succeeds while a token is live; each incarnation's payload is poisoned on
// reclaim and checked by holders, so a recycled object under a reader shows.
// Run by the slot modes' tests below: `readers` reader threads (plus a long
// holder and the drainer), over kObjects objects.
void reclaim_race(const Paygo::Options& opt, unsigned readers, int kObjects = 4) {
  Paygo c(opt);
  struct Obj {
    Paygo::Object hdr;
    std::atomic<int> holders{0};
    int payload = 1;  // plain memory: TSAN checks the happens-before edges
  };
  std::vector<std::unique_ptr<Obj>> objs;
  for (int i = 0; i < kObjects; ++i) {
    objs.push_back(std::make_unique<Obj>());
    c.set_distributed(objs.back()->hdr, true);
  }
  std::atomic<bool> stop{false};
  std::atomic<long> violations{0}, reclaims{0}, busy{0}, gets{0};
  std::mutex mailbox_mu;
  std::vector<std::pair<Paygo::Token, Obj*>> mailbox;
  auto check_payload = [&](Obj& ob) {
    if (ob.payload <= 0) violations.fetch_add(1, std::memory_order_relaxed);
  };
  auto reader = [&](unsigned seed, bool long_holder) {
    std::mt19937 rng(seed);
    while (!stop.load(std::memory_order_relaxed)) {
      Obj& ob = *objs[rng() % static_cast<unsigned>(kObjects)];
      auto t = c.get(ob.hdr);
      if (!t) continue;  // frozen or dead: a cache would retry its lookup
      gets.fetch_add(1, std::memory_order_relaxed);
      ob.holders.fetch_add(1, std::memory_order_seq_cst);
      check_payload(ob);
      if (long_holder) {  // hold across several reclaim attempts
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
        while (std::chrono::steady_clock::now() < until) check_payload(ob);
      }
      check_payload(ob);
      ob.holders.fetch_sub(1, std::memory_order_seq_cst);
      if (rng() % 4 == 0) {  // migrate: another thread will put it
        std::lock_guard lock(mailbox_mu);
        mailbox.emplace_back(std::move(t), &ob);
      }
    }
  };
  auto drainer = [&] {  // puts tokens taken on other slots (anchor path)
    while (!stop.load(std::memory_order_relaxed)) {
      std::vector<std::pair<Paygo::Token, Obj*>> batch;
      {
        std::lock_guard lock(mailbox_mu);
        batch.swap(mailbox);
      }
      batch.clear();
      std::this_thread::yield();
    }
  };
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < readers; ++i) threads.emplace_back(reader, i + 1, false);
  threads.emplace_back(reader, readers + 1, true);
  threads.emplace_back(drainer);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  std::mt19937 rng(99);
  while (std::chrono::steady_clock::now() < deadline) {
    Obj& ob = *objs[rng() % static_cast<unsigned>(kObjects)];
    if (!c.try_reclaim(ob.hdr)) {
      busy.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (ob.holders.load(std::memory_order_seq_cst) != 0) violations.fetch_add(1);
    ob.payload = -1;  // poison the dead incarnation, as a cache reusing a frame would
    ob.payload = 1;
    c.reset(ob.hdr);  // release: the new incarnation is published
    reclaims.fetch_add(1, std::memory_order_relaxed);
  }
  stop.store(true);
  for (auto& t : threads) t.join();
  mailbox.clear();
  EXPECT_EQ(violations.load(), 0) << "a reclaim succeeded while a token was live";
  EXPECT_GT(reclaims.load(), 0);
  EXPECT_GT(busy.load(), 0) << "the reclaimer never met a live reference: the test is vacuous";
  EXPECT_GT(gets.load(), 1000);
  for (auto& ob : objs) EXPECT_TRUE(c.try_reclaim(ob->hdr));
}

TEST(Paygo, ReclaimNeverSucceedsWhileATokenIsLive) {
  reclaim_race(tweak(small_options(), [](Paygo::Options& o) { o.slot_mode = SlotMode::Thread; }),
               2);
}

// Per-CPU tables: 12 readers on this machine's CPUs, unpinned, so they
// share entries, are preempted between their add and their re-check, and
// migrate between get and put; tiny tables (4 entries, a window of 2) for 8
// objects, so entries are claimed away from one object for another all
// the time (claim_cpu()'s tag against get_cpu()'s re-check).
TEST(PaygoCpu, ReclaimNeverSucceedsWhileATokenIsLive) {
  reclaim_race(tweak(small_options(),
                     [](Paygo::Options& o) {
                       o.slot_mode = SlotMode::Cpu;
                       o.table_entries = 4;
                       o.probe = 2;
                     }),
               12, 8);
}

// Spill: 2 slots for 9 threads: both kinds of table at once.
TEST(PaygoSpill, ReclaimNeverSucceedsWhileATokenIsLive) {
  reclaim_race(tweak(small_options(),
                     [](Paygo::Options& o) {
                       o.slot_mode = SlotMode::Spill;
                       o.max_slots = 2;
                       o.table_entries = 4;
                       o.probe = 2;
                     }),
               6, 8);
}

// A per-CPU get counts +1 on the anchor of the object's entry in a CPU's
// table (local's count bits stay 0); a put from any thread takes it back.
TEST(PaygoCpu, GetCountsOnTheCpuEntryAnchorAndAnyThreadPutsIt) {
  Paygo c(tweak(small_options(), [](Paygo::Options& o) { o.slot_mode = SlotMode::Cpu; }));
  Paygo::Object o;
  c.set_distributed(o, true);
  Paygo::Token a = c.get(o);
  ASSERT_TRUE(a.distributed());
  const detail::PaygoEntry& e = Access::entry(a);
  EXPECT_EQ(e.obj.load(), &o);
  EXPECT_EQ(detail::local_count(e.local.load()), 0) << "per-CPU entries count in the anchor";
  EXPECT_GE(e.anchor.load(), 1);
  EXPECT_GT(detail::local_uses(e.local.load()), 0u) << "the sweeps' use counter";
  EXPECT_EQ(c.approx(o), 1);
  EXPECT_FALSE(c.try_reclaim(o));
  std::thread([&] { a.reset(); }).join();  // another thread, maybe another CPU
  EXPECT_EQ(e.anchor.load(), 0);
  EXPECT_EQ(c.approx(o), 0);
  // Raw tokens work unchanged: put_raw() of a CPU entry pays the anchor.
  const std::uintptr_t r = c.into_raw(c.get(o));
  ASSERT_EQ(r & Paygo::kRawCentral, 0u);
  c.dup_raw(r);
  EXPECT_EQ(c.approx(o), 2);
  c.put_raw(r);
  std::thread([&] { c.put_raw(r); }).join();
  EXPECT_EQ(c.approx(o), 0);
  EXPECT_TRUE(c.try_reclaim(o));
}

TEST(PaygoSpill, ThreadsBeyondTheSlotsCountPerCpu) {
  ASSERT_EQ(Paygo::Options{}.slot_mode, SlotMode::Spill) << "the default mode";
  more_threads_than_slots(SlotMode::Spill);
}

// Memory in the per-CPU mode: tables per CPU used, whatever the thread count.
TEST(PaygoCpu, TableBytesDoNotGrowWithThreads) {
  Paygo c(tweak(small_options(), [](Paygo::Options& o) { o.slot_mode = SlotMode::Cpu; }));
  Paygo::Object o;
  c.set_distributed(o, true);
  for (int round = 0; round < 4; ++round) {
    std::vector<std::thread> threads;
    for (int i = 0; i < 16; ++i) threads.emplace_back([&] { EXPECT_TRUE(c.get(o).distributed()); });
    for (auto& t : threads) t.join();
  }
  const std::size_t table = sizeof(detail::PaygoTable) + 16 * sizeof(detail::PaygoEntry);
  EXPECT_GE(c.table_bytes(), table);
  EXPECT_LE(c.table_bytes(), std::thread::hardware_concurrency() * table) << "64 threads came";
  EXPECT_TRUE(c.try_reclaim(o));
}

// A full window of a CPU's table falls back to the central word.
TEST(PaygoCpu, FullProbeWindowFallsBackToCentral) {
  Paygo c(tweak(small_options(), [](Paygo::Options& opt) {
    opt.slot_mode = SlotMode::Cpu;
    opt.table_entries = 4;
    opt.probe = 2;
  }));
  constexpr int kObjects = 32;
  std::vector<std::unique_ptr<Paygo::Object>> objs;
  std::vector<Paygo::Token> tokens;
  for (int i = 0; i < kObjects; ++i) {
    objs.push_back(std::make_unique<Paygo::Object>());
    c.set_distributed(*objs.back(), true);
    tokens.push_back(c.get(*objs.back()));
    ASSERT_TRUE(tokens.back()) << "a get failed instead of falling back";
  }
  for (auto& o : objs) EXPECT_EQ(c.approx(*o), 1);
  EXPECT_GT(c.tune_stats().central_fallbacks, 0u);
  tokens.clear();
  for (auto& o : objs) EXPECT_TRUE(c.try_reclaim(*o));
}

TEST(SlotMode, NamesRoundTrip) {
  for (SlotMode m : {SlotMode::Thread, SlotMode::Cpu, SlotMode::Spill}) {
    SlotMode back = SlotMode::Thread;
    ASSERT_TRUE(parse_slot_mode(to_string(m), back));
    EXPECT_EQ(back, m);
  }
  SlotMode untouched = SlotMode::Cpu;
  EXPECT_FALSE(parse_slot_mode("auto", untouched));
  EXPECT_EQ(untouched, SlotMode::Cpu);
}

}  // namespace
}  // namespace paygo::test
