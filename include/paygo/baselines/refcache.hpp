// paygo/baselines/refcache.hpp — Refcache (Clements et al., "RadixVM:
// Scalable address spaces for multithreaded applications", EuroSys'13).
//
// Contract
// --------
// Satisfies paygo::RefCounter. Every slot (thread, see Domain) owns a small
// direct-mapped cache of {object id, signed delta} entries; a distributed get
// adds +1 to the getter's entry for the object, a put adds -1 to the
// *putter's* entry, both with plain stores (one writer per entry). Objects
// get a dense id at construction (their central counts live in a table the
// counter owns, so a delta flushed after its object died lands in memory
// that still exists and simply carries over, summing to zero, to the id's
// next object). An owner flushes its nonzero deltas into the central counts
// when it notices that the global epoch advanced (checked on every get/put,
// one relaxed load) and flushes one entry when it evicts it for another
// object. The reclaimer never writes another slot's cache.
//
// Delayed zero, Refcache's defining property: try_reclaim() freezes (FROZEN
// CAS + heavy_fence(); gets do light_fence() and re-check the word, as in
// Paygo) and computes the exact count = central + every slot's cached delta.
// The first time it finds zero it only records the epoch in the object (the
// "review"), advances the global epoch, unfreezes and returns false; a later
// call that finds zero again after the epoch advanced past the recorded one,
// with no get of the object in between (a get clears the review), kills it.
// So an idle object needs two try_reclaim() calls (reclaim_calls<Refcache>
// == 2), as the original's review queue confirms a zero one epoch late.
// reclaim_batch() loops over try_reclaim().
//
// query() is exact only while frozen (and counts every reference then);
// unfrozen it is the racy approx(). set_distributed() is honoured as in
// Paygo: cold objects count on the word; threads without a slot and objects
// without an id (more than max_objects) use the central counts too.
//
// Memory: 16 bytes per cache entry per slot that got or put anything
// (cache_entries per slot, 4 KiB by default), 16 bytes per id in the
// central table (allocated up front: 1 MiB for 65536 ids), 32 bytes per
// object. A query reads one entry per slot.
//
// Debug checks (detail/contract.hpp; builds without NDEBUG, compiled out
// with it): reset() of an object that is not dead (a review in progress is
// not dead), unfreeze() of one that is not frozen (or is dead), and
// destroying the counter while a token it handed out is live abort with a
// message. Live tokens are counted per counter (get +1, put -1, relaxed;
// objects point at their counter); the destructor checks the count.
//
// When not to use: when a freed object must be reusable at once (a zero is
// confirmed only a call/epoch later), or when many hot objects collide in a
// small cache (every eviction is a shared write, which is what the cache was
// meant to avoid).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

#include "paygo/baselines/detail/cell_counter.hpp"
#include "paygo/baselines/detail/slot_cells.hpp"
#include "paygo/config.hpp"
#include "paygo/counter.hpp"
#include "paygo/detail/contract.hpp"
#include "paygo/detail/token.hpp"
#include "paygo/detail/word.hpp"
#include "paygo/domain.hpp"
#include "paygo/fence.hpp"

namespace paygo::baselines {

struct RefcacheOptions {
  std::uint32_t max_slots = 256;      ///< threads with their own cache
  std::uint32_t max_objects = 65536;  ///< objects with an id; later ones count centrally
  std::uint32_t cache_entries = 256;  ///< entries per slot cache (rounded up to a power of 2)
};

}  // namespace paygo::baselines

namespace paygo::detail {

/// One cache entry. Written only by the slot's owner, read by reclaimers.
struct RefcacheEntry {
  std::atomic<std::uint32_t> id{kNoId};
  std::atomic<std::int64_t> delta{0};
};

struct RefcacheCache {
  std::uint64_t seen_epoch = 0;  // owner only (handed over with the slot under the registry mutex)
  std::uint32_t mask = 0;
  RefcacheEntry* entries = nullptr;
};

/// Central count of one id, split so that both halves only grow: flushes of
/// positive deltas add to `pos`, of negative ones to `neg` (see refcache.cpp
/// for why the reclaimer's read order needs the split).
struct RefcacheCentral {
  std::atomic<std::int64_t> pos{0};
  std::atomic<std::int64_t> neg{0};
};

}  // namespace paygo::detail

namespace paygo::baselines {

class Refcache {
 public:
  static constexpr std::string_view kName = "refcache";
  static constexpr bool kCounts = true;
  static constexpr bool kExact = true;  // while frozen
  /// try_reclaim() calls an idle object at zero needs (the delayed zero).
  static constexpr int kReclaimCalls = 2;

  using Options = RefcacheOptions;

  class Object {
   public:
    explicit Object(Refcache& c) noexcept : c_(&c), id_(c.ids_.allocate()) {}
    ~Object() { c_->ids_.release(id_); }
    Object(const Object&) = delete;
    Object& operator=(const Object&) = delete;

   private:
    friend class Refcache;
    std::atomic<std::uint64_t> word_{0};  // detail/word.hpp layout; count = central tokens
    /// 0, or 1 + the epoch in which a reclaimer first found the object at
    /// zero. Set and cleared by reclaimers while frozen, cleared by gets.
    std::atomic<std::uint64_t> review_{0};
    Refcache* c_;
    std::uint32_t id_;
  };

  /// The token: where the count went and how to give it back (the put).
  struct TokenPolicy {
    using Owner = Refcache;
    using Ptr = Object*;
    using Extra = bool;  // central: the count went to the word, not a cache entry
    /*** put: fast path ***/
    PAYGO_INLINE static void release(Object* op, bool central) noexcept {
      Object& o = *op;
      // Debug builds only: the tally, before the put is published (TokenTally).
      if constexpr (detail::kDebugChecks) o.c_->tokens_.put();
      if (central) {
        detail::central_put(o.word_);
      } else {
        o.c_->put_delta(o.id_);
      }
    }
  };
  using Token = detail::BasicToken<TokenPolicy>;

  Refcache() : Refcache(Options{}) {}
  explicit Refcache(Options options);
  ~Refcache();
  Refcache(const Refcache&) = delete;
  Refcache& operator=(const Refcache&) = delete;

  PAYGO_INLINE Token get(Object& o) noexcept {
    return tokens_.counted([&] { return get_untallied(o); });
  }

  void put(Token&& t) noexcept { t.reset(); }

  bool try_freeze(Object& o) noexcept;
  std::int64_t query(const Object& o) const noexcept;
  void unfreeze(Object& o) noexcept { detail::checked_unfreeze(kName, o.word_); }
  bool try_reclaim(Object& o) noexcept;
  std::size_t reclaim_batch(std::span<Object* const> objs, std::span<bool> dead) {
    return detail::reclaim_each(*this, objs, dead);
  }
  void reset(Object& o) noexcept;
  std::int64_t approx(const Object& o) const noexcept { return query(o); }
  void set_distributed(Object& o, bool on) noexcept { detail::set_mode(o.word_, on); }

  /// Advances the global epoch: every owner flushes its deltas on its next
  /// get/put. try_reclaim() does this when it starts a review.
  void advance_epoch() noexcept;
  std::uint64_t epoch() const noexcept { return epoch_.load(std::memory_order_relaxed); }
  /// Bytes held by the slot caches and the central table.
  std::size_t table_bytes() const noexcept;
  Domain& domain() noexcept { return domain_; }

 private:
  /*** get: fast path ***/
  PAYGO_INLINE Token get_untallied(Object& o) noexcept {
    // Acquire: pairs with the release in central_reset()/central_unfreeze().
    const std::uint64_t w0 = o.word_.load(std::memory_order_acquire);
    if (w0 & detail::kFrozen) [[unlikely]]
      return {};
    if (!(w0 & detail::kDistributed) || o.id_ == detail::kNoId) return get_central(o);
    Slot* slot = domain_.current();
    detail::RefcacheEntry* e = slot != nullptr ? entry(*slot, o.id_) : nullptr;
    if (e == nullptr) [[unlikely]]
      return get_central(o);
    const std::int64_t d = e->delta.load(std::memory_order_relaxed);  // we are its only writer
    // Release: pairs with the acquire delta loads in sum(): a reclaimer that
    // reads this value also sees the entry's id (see refcache.cpp). Ordered
    // before the word re-check by still_current()'s light fence.
    e->delta.store(d + 1, std::memory_order_release);
    // Acquire: pairs with the release in central_unfreeze(), so a review
    // recorded by a reclaimer that unfroze before this load is seen below.
    if (!detail::still_current(o.word_, w0, std::memory_order_acquire)) [[unlikely]] {
      e->delta.store(d, std::memory_order_release);  // back off (release: as above)
      return {};
    }
    // The object was referenced: a pending review must start over. Relaxed:
    // the review only delays reclaim; safety rests on the frozen sum.
    if (o.review_.load(std::memory_order_relaxed) != 0) [[unlikely]] {
      o.review_.store(0, std::memory_order_relaxed);
    }
    return Token(&o, false);
  }
  PAYGO_INLINE Token get_central(Object& o) noexcept {
    // Clear a pending review before the CAS: a reclaimer whose freeze CAS
    // follows our put's release fetch_sub sees the clear (see refcache.cpp).
    if (o.review_.load(std::memory_order_relaxed) != 0) [[unlikely]] {
      o.review_.store(0, std::memory_order_relaxed);
    }
    if (!detail::central_tryget(o.word_)) return {};
    return Token(&o, true);
  }

  /// The calling owner's entry for `id`, after flushing for a new epoch or
  /// evicting another object if needed; nullptr if no cache can be made.
  PAYGO_INLINE detail::RefcacheEntry* entry(Slot& slot, std::uint32_t id) noexcept {
    // Relaxed: the owner (or the thread it adopted the slot from, under the
    // registry mutex) published the cache.
    auto* cache = static_cast<detail::RefcacheCache*>(slot.payload.load(std::memory_order_relaxed));
    // Relaxed epoch: a stale value only delays a flush, and flushes never
    // matter for exactness (reclaimers read the caches).
    if (cache != nullptr && cache->seen_epoch == epoch_.load(std::memory_order_relaxed))
        [[likely]] {
      detail::RefcacheEntry* e = &cache->entries[id & cache->mask];
      if (e->id.load(std::memory_order_relaxed) == id) [[likely]]
        return e;  // our own store
    }
    return entry_slow(slot, id);
  }

  PAYGO_INLINE void put_delta(std::uint32_t id) noexcept {
    Slot* slot = domain_.current();
    detail::RefcacheEntry* e = slot != nullptr ? entry(*slot, id) : nullptr;
    if (e != nullptr) [[likely]] {
      // Release: pairs with the acquire delta loads in sum(), so this
      // holder's use of the object happens before a reclaim that counts it
      // gone. A plain store: we are the entry's only writer.
      e->delta.store(e->delta.load(std::memory_order_relaxed) - 1, std::memory_order_release);
    } else {
      central_[id].neg.fetch_add(1, std::memory_order_release);  // pairs with sum()
    }
  }

  PAYGO_COLD detail::RefcacheEntry* entry_slow(Slot& slot, std::uint32_t id) noexcept;
  void flush_entry(detail::RefcacheEntry& e) noexcept;
  /// Central + cached deltas of every slot: exact while frozen.
  std::int64_t sum(const Object& o) const noexcept;

  std::uint32_t cache_entries_;
  detail::IdAllocator ids_;
  std::unique_ptr<detail::RefcacheCentral[]> central_;
  detail::TokenTally tokens_;  // debug builds only (see detail/contract.hpp)
  /// Global epoch, on its own line: read by every get/put, written per review.
  alignas(kDestructiveInterference) std::atomic<std::uint64_t> epoch_{1};
  alignas(kDestructiveInterference) Domain domain_;
};

static_assert(RefCounter<Refcache>);

}  // namespace paygo::baselines
