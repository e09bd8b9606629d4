// Refcache slow paths: caches, flushes, freeze/query, the delayed zero.
//
// Why a reclaimer summing central + deltas never undercounts
// ----------------------------------------------------------
// The count of id X is T = word + pos[X] - neg[X] + sum over slots of the
// delta of the slot's entry for X. An owner moves a delta d != 0 from its
// entry to the central table while a frozen reclaimer may be summing; the
// reclaimer cannot stop it (it never writes another slot's cache), so the
// order of the two writes and of the reclaimer's reads must make every
// interleaving count d once or more, never less. No single order of one
// signed central counter does that: "central first, then entry" loses a
// positive d to a reader that reads the entry first, and "entry first" loses
// a negative d to a reader that reads the central count first (it counts d
// twice: -2|d|). Hence the split into two counters that only grow:
//   flush d > 0:  pos.fetch_add(d, release)  THEN  delta.store(0, release)
//   flush d < 0:  delta.store(0, release)    THEN  neg.fetch_add(-d, release)
// and the reclaimer reads (all acquire)  neg  THEN  each entry  THEN  pos.
//  * d > 0: if the entry read sees the 0 (or any later value, all written
//    with release after it), the pos add happens before the pos read: d
//    counted once. If it sees d, pos may or may not include d: once or twice.
//  * d < 0: if the neg read sees the add, the 0-store happens before the
//    entry read, which sees 0 or later: counted once. If not, the entry read
//    sees d (counted once) or 0 (not counted: an overestimate by |d|).
// An entry is an {id, delta} pair. Reading delta first, then id: every
// delta store is a release and a retarget stores delta 0, then the new id
// (release), then the new object's deltas. A delta value written after the
// retarget therefore shows the new id (ignored); the old object's last d
// read with the new id is ignored, and was flushed before the retarget: its
// pos add (d > 0) happens before the id store we read, so the pos read that
// follows counts it; an ignored d < 0 only overestimates.
// Gets: the delta store precedes light_fence() and the word re-check, the
// reclaimer's reads follow FROZEN and heavy_fence(): either the get fails
// (and backs off) or its +1 is seen, in the entry or, once flushed, in pos.
// Puts store with release: a reclaimer that reads the -1 also sees
// everything the holder did before it. So a frozen sum is >= T, == T with
// nothing in flight, and 0 proves the object unreferenced.
// tests/unit/baselines_test.cpp (FrozenQueryNeverUndercountsWhileCountsMove,
// with a two-entry cache) checks this under evictions and epoch flushes.
#include "paygo/baselines/refcache.hpp"

#include <algorithm>
#include <bit>
#include <new>

namespace paygo::baselines {

using detail::RefcacheCache;
using detail::RefcacheEntry;

Refcache::Refcache(Options options)
    : cache_entries_(std::bit_ceil(std::max<std::uint32_t>(options.cache_entries, 1))),
      ids_(std::max<std::uint32_t>(options.max_objects, 1)),
      central_(new detail::RefcacheCentral[std::max<std::uint32_t>(options.max_objects, 1)]),
      domain_(DomainOptions{options.max_slots}) {}

Refcache::~Refcache() {
  // Objects and tokens must not outlive the counter (documented precondition;
  // debug builds check the tokens).
  tokens_.check(kName);
  for (std::uint32_t s = 0, hw = domain_.high_water(); s < hw; ++s) {
    // Acquire: pairs with the release store in entry_slow().
    if (auto* c =
            static_cast<RefcacheCache*>(domain_.slot(s).payload.load(std::memory_order_acquire))) {
      delete[] c->entries;
      delete c;
    }
  }
}

void Refcache::flush_entry(RefcacheEntry& e) noexcept {
  // Relaxed: we are the entry's only writer.
  const std::int64_t d = e.delta.load(std::memory_order_relaxed);
  if (d == 0) return;
  detail::RefcacheCentral& c = central_[e.id.load(std::memory_order_relaxed)];
  // The orders below are the heart of the proof at the top of this file.
  // Every release pairs with the acquire loads of the same variable in sum().
  if (d > 0) {
    c.pos.fetch_add(d, std::memory_order_release);  // FIRST the central count...
    e.delta.store(0, std::memory_order_release);    // ...THEN the entry
  } else {
    e.delta.store(0, std::memory_order_release);     // FIRST the entry...
    c.neg.fetch_add(-d, std::memory_order_release);  // ...THEN the central count
  }
}

RefcacheEntry* Refcache::entry_slow(Slot& slot, std::uint32_t id) noexcept {
  auto* cache =
      static_cast<RefcacheCache*>(slot.payload.load(std::memory_order_relaxed));  // see entry()
  // Relaxed: see entry(); a late epoch only delays the flush.
  const std::uint64_t epoch = epoch_.load(std::memory_order_relaxed);
  if (cache == nullptr) {
    cache = new (std::nothrow) RefcacheCache;
    if (cache == nullptr) return nullptr;
    cache->entries = new (std::nothrow) RefcacheEntry[cache_entries_];
    if (cache->entries == nullptr) {
      delete cache;
      return nullptr;
    }
    cache->mask = cache_entries_ - 1;
    cache->seen_epoch = epoch;
    // Release: pairs with the acquire payload loads in sum() and the
    // destructor, so a reader that finds the cache sees initialised entries.
    slot.payload.store(cache, std::memory_order_release);
  } else if (cache->seen_epoch != epoch) {
    // A new epoch: flush everything (Refcache's per-epoch flush).
    for (std::uint32_t i = 0; i <= cache->mask; ++i) flush_entry(cache->entries[i]);
    cache->seen_epoch = epoch;
  }
  RefcacheEntry& e = cache->entries[id & cache->mask];
  if (e.id.load(std::memory_order_relaxed) != id) {  // our own store
    flush_entry(e);  // evict: the old object's delta goes central, the entry reads 0
    // Release: pairs with the acquire id load in sum(): after the flush
    // above (see the proof at the top).
    e.id.store(id, std::memory_order_release);
  }
  return &e;
}

void Refcache::advance_epoch() noexcept {
  // Relaxed: the epoch is a hint to flush; no data is published through it
  // (reviews compare epochs only to decide *when* to confirm a zero).
  epoch_.fetch_add(1, std::memory_order_relaxed);
}

bool Refcache::try_freeze(Object& o) noexcept {
  if (!detail::central_tryfreeze(o.word_)) return false;  // central references held
  heavy_fence();                                          // pairs with light_fence() in get()
  return true;
}

std::int64_t Refcache::sum(const Object& o) const noexcept {
  const std::uint32_t id = o.id_;
  if (id == detail::kNoId) return 0;
  const detail::RefcacheCentral& c = central_[id];
  // neg FIRST, entries, pos LAST (see the top of this file). Acquire on all:
  // pairs with the release writes in flush_entry(), put_delta(), get().
  std::int64_t s = -c.neg.load(std::memory_order_acquire);
  for (std::uint32_t i = 0, hw = domain_.high_water(); i < hw; ++i) {
    // Acquire: pairs with the release store in entry_slow().
    const auto* cache =
        static_cast<const RefcacheCache*>(domain_.slot(i).payload.load(std::memory_order_acquire));
    if (cache == nullptr) continue;
    const RefcacheEntry& e = cache->entries[id & cache->mask];
    const std::int64_t d = e.delta.load(std::memory_order_acquire);  // delta, THEN id
    if (e.id.load(std::memory_order_acquire) == id) s += d;
  }
  s += c.pos.load(std::memory_order_acquire);
  return s;
}

std::int64_t Refcache::query(const Object& o) const noexcept {
  // Acquire: pairs with central_put()'s release.
  const auto central =
      static_cast<std::int64_t>(o.word_.load(std::memory_order_acquire) & detail::kCountMask);
  return central + sum(o);
}

bool Refcache::try_reclaim(Object& o) noexcept {
  if (!try_freeze(o)) return false;
  // Relaxed review accesses: we hold the freeze, so no other reclaimer
  // touches the review; a get that clears it concurrently only restarts the
  // review (a later confirmation), and the decision to kill rests on the
  // exact frozen sum, never on the review alone. A get+put pair between two
  // calls is seen: its put's release (entry store, or central fetch_sub
  // before our freeze CAS) is read by this sum or freeze, and the get's
  // clear was sequenced before that put.
  if (sum(o) != 0) {
    o.review_.store(0, std::memory_order_relaxed);  // referenced: the zero must be new next time
    unfreeze(o);
    return false;
  }
  const std::uint64_t review = o.review_.load(std::memory_order_relaxed);
  const std::uint64_t now = epoch_.load(std::memory_order_relaxed);  // see advance_epoch()
  if (review != 0 && now >= review) {  // zero since an epoch that has ended: dead
    o.review_.store(0, std::memory_order_relaxed);
    detail::central_kill(o.word_);
    return true;
  }
  o.review_.store(now + 1, std::memory_order_relaxed);  // first zero: review it
  advance_epoch();
  unfreeze(o);  // release: pairs with the acquire re-check in get(), which then sees the review
  return false;
}

void Refcache::reset(Object& o) noexcept {
  detail::check_reset(kName, o.word_, [&] { return approx(o); });
  // Relaxed: published by central_reset()'s release below.
  o.review_.store(0, std::memory_order_relaxed);
  detail::central_reset(o.word_);
}

std::size_t Refcache::table_bytes() const noexcept {
  std::size_t n = sizeof(detail::RefcacheCentral) * ids_.max_ids();
  for (std::uint32_t i = 0, hw = domain_.high_water(); i < hw; ++i) {
    if (domain_.slot(i).payload.load(std::memory_order_acquire) != nullptr) {  // as in sum()
      n += sizeof(RefcacheCache) + sizeof(RefcacheEntry) * cache_entries_;
    }
  }
  return n;
}

}  // namespace paygo::baselines
