// paygo/counters/paygo.hpp — PAYGO: anchor-based distributed reference counts
// (Jung et al., FAST'19), with the freeze/query protocol and batch reclaim.
//
// Contract
// --------
// Satisfies paygo::RefCounter. Every slot (thread, see Domain) owns a table
// of entries {object, local, anchor}. A distributed get increments `local`
// of the entry for the object in the caller's own table with a plain store
// (no atomic read-modify-write, no shared cache line is written). The token
// remembers the entry and its home slot: a put on the home slot is a plain
// store to `local`; a put from any other thread pays the "migration tax",
// one fetch_sub on the entry's `anchor`. Entries never move while live
// (local + anchor != 0), so the token's pointer stays valid and a scan never
// misses one. The true count is central + sum(local + anchor).
//
// Objects start in the central mode (one atomic, like Linux's page count);
// set_distributed(obj, true) makes new gets distributed (a hot object). Gets
// fall back to the central count, never failing or blocking, when the caller
// has no slot (more threads than slots), when the probe window of its table
// is full, or when `local` would pass Options::local_limit.
//
// Freeze/query (docs/design.md has the proof): a reader publishes its entry,
// sets its group bit in the object's mask, runs light_fence(), then checks
// the word; a reclaimer CASes FROZEN into the word, runs heavy_fence(), then
// sums the entries of the groups in the mask (each entry's local + anchor,
// clamped at 0: a negative sum is another object's, docs/design.md point 4). Group bits are cleared
// only when the object is found dead. reclaim_batch() freezes many objects, pays one heavy fence
// and scans each live table once.
//
// When not to use: for objects that are rarely shared between threads, or
// that are reclaimed about as often as they are read — each reclaim costs a
// heavy fence and a scan, and the atomic counter is simpler and as fast.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string_view>

#include "paygo/config.hpp"
#include "paygo/counter.hpp"
#include "paygo/detail/token.hpp"
#include "paygo/detail/word.hpp"
#include "paygo/domain.hpp"
#include "paygo/fence.hpp"

namespace paygo {

namespace detail {

/// One table entry, 16 bytes, four to a cache line. `obj` and `local` are
/// written only by the slot's owner; `anchor` by any thread (fetch_sub).
struct PaygoEntry {
  std::atomic<const void*> obj{nullptr};
  std::atomic<std::int32_t> local{0};
  std::atomic<std::int32_t> anchor{0};
};

struct PaygoTestAccess;  // tests/unit/paygo_test.cpp looks inside

/// A slot's table: a 64-byte header followed, in the same allocation, by
/// index_mask + 1 entries. The owner's thread cache holds the table's
/// address and size, so the fast path goes thread cache -> entry.
struct alignas(64) PaygoTable {
  std::uint64_t group_bit;  // this slot's bit in every object's mask
  std::uint32_t index_mask;
  Slot* slot;  // the slot that owns this table, for ever
  PaygoEntry* entries() noexcept { return reinterpret_cast<PaygoEntry*>(this + 1); }
  const PaygoEntry* entries() const noexcept {
    return reinterpret_cast<const PaygoEntry*>(this + 1);
  }
};

}  // namespace detail

struct PaygoOptions {
  std::uint32_t max_slots = 256;      ///< threads with their own table
  std::uint32_t table_entries = 256;  ///< entries per table (rounded up to a power of 2)
  std::uint32_t probe = 8;            ///< probe window: entries an object may use
  std::uint32_t group_size = 0;       ///< slots per mask bit; 0: ceil(max_slots / 64)
  std::int32_t local_limit = std::numeric_limits<std::int32_t>::max();  ///< saturation point
};

class Paygo {
 public:
  static constexpr std::string_view kName = "paygo";
  static constexpr bool kCounts = true;
  static constexpr bool kExact = true;

  using Options = PaygoOptions;

  /// The per-object header: the word (detail/word.hpp), the group mask and
  /// the hash hint (24 bytes).
  class Object {
   public:
    Object() noexcept : hint_(hash(this)) {}
    explicit Object(Paygo&) noexcept : Object() {}
    Object(const Object&) = delete;
    Object& operator=(const Object&) = delete;

   private:
    friend class Paygo;
    friend struct detail::PaygoTestAccess;
    std::atomic<std::uint64_t> word_{0};
    /// Bit g set: some slot of group g may hold an entry for this object.
    /// Set by readers (relaxed, ordered by their light fence); reset only by
    /// the reclaimer that found the object dead.
    std::atomic<std::uint64_t> mask_{0};
    /// hash(this), computed once (objects never move): the object's first
    /// probe position in every table is hint_ & index_mask.
    const std::uint32_t hint_;
  };

  /// The token: {entry, home slot} for a distributed get, {word,
  /// &kCentralHome} for a central one.
  struct TokenPolicy {
    using Owner = Paygo;
    using Ptr = void*;  // PaygoEntry* or the central word
    /// Home slot; &kCentralHome for a central token (its owner is always
    /// nullptr, so the home-put test below needs no separate null check).
    using Extra = detail::Slot*;
    /*** put: fast path ***/
    PAYGO_INLINE static void release(void* p, detail::Slot* home) noexcept {
      // Relaxed owner check: only the owner itself can read its own tag.
      if (home->owner.load(std::memory_order_relaxed) == detail::this_thread_tag()) [[likely]] {
        auto* e = static_cast<detail::PaygoEntry*>(p);
        // Home put: a plain store. Release: pairs with the acquire loads of
        // `local` in entry_count() (src/paygo.cpp) so this holder's use of
        // the object happens before a reclaim that counts it gone.
        e->local.store(e->local.load(std::memory_order_relaxed) - 1, std::memory_order_release);
      } else if (home != &kCentralHome) {
        // Migration tax. Release: pairs with the acquire loads of `anchor`
        // in entry_count() and in the owner's free-entry check (claim()).
        static_cast<detail::PaygoEntry*>(p)->anchor.fetch_sub(1, std::memory_order_release);
      } else {
        detail::central_put(*static_cast<std::atomic<std::uint64_t>*>(p));
      }
    }
    /// The home of every central token: never owned by any thread.
    static inline detail::Slot kCentralHome{};
  };
  class Token : public detail::BasicToken<TokenPolicy> {
   public:
    Token() = default;
    Token(Token&&) noexcept = default;
    Token& operator=(Token&&) noexcept = default;
    PAYGO_INLINE ~Token() = default;  // the put: keep it in the caller's fast path
    /// True if the count went to a per-slot entry (not the central word).
    bool distributed() const noexcept { return p_ != nullptr && x_ != &TokenPolicy::kCentralHome; }

   private:
    friend class Paygo;
    friend struct detail::PaygoTestAccess;
    Token(void* p, detail::Slot* home) noexcept : BasicToken(p, home) {}
  };

  Paygo() : Paygo(Options{}) {}
  explicit Paygo(Options options);
  ~Paygo();
  Paygo(const Paygo&) = delete;
  Paygo& operator=(const Paygo&) = delete;

  /*** get: fast path ***/
  PAYGO_INLINE Token get(Object& o) noexcept {
    // Acquire: pairs with the release in central_reset()/central_unfreeze():
    // a reader of a new incarnation sees its mask reset and its contents.
    const std::uint64_t w0 = o.word_.load(std::memory_order_acquire);
    // One test for "distributed and not frozen"; frozen and central gets
    // leave the inline path.
    if ((w0 & (detail::kFrozen | detail::kDistributed)) != detail::kDistributed) [[unlikely]]
      return get_other(o, w0);
    // This thread's table, from its cache of domain -> slot -> table.
    // tc.aux == fast_key_ says, in one compare, that the cache way holds
    // this counter's slot and table (find_table() sets it; the Domain
    // clears it whenever it rebinds the way).
    const detail::ThreadCache& tc = detail::tls_cache_for(domain_.id());
    if (tc.aux != fast_key_) [[unlikely]]
      return get_slow(o, w0);
    auto* table = static_cast<detail::PaygoTable*>(tc.payload);
    detail::PaygoEntry* e = &table->entries()[o.hint_ & index_mask_];
    const std::int32_t l = e->local.load(std::memory_order_relaxed);  // we are its only writer
    if (e->obj.load(std::memory_order_relaxed) != &o || l >= opt_.local_limit) [[unlikely]]
      return get_slow(o, w0);
    return publish(o, w0, *table, *e, l);
  }

  void put(Token&& t) noexcept { t.reset(); }

  bool try_freeze(Object& o) noexcept;
  std::int64_t query(const Object& o) const noexcept;
  void unfreeze(Object& o) noexcept { detail::central_unfreeze(o.word_); }
  bool try_reclaim(Object& o) noexcept;
  std::size_t reclaim_batch(std::span<Object* const> objs, std::span<bool> dead);
  void reset(Object& o) noexcept { detail::central_reset(o.word_); }
  std::int64_t approx(const Object& o) const noexcept;
  void set_distributed(Object& o, bool on) noexcept { detail::set_mode(o.word_, on); }
  bool distributed(const Object& o) const noexcept {
    return (o.word_.load(std::memory_order_relaxed) & detail::kDistributed) != 0;
  }
  bool frozen(const Object& o) const noexcept {
    return (o.word_.load(std::memory_order_relaxed) & detail::kFrozen) != 0;
  }

  /// Bytes held by the per-slot tables (grows by one table per slot used).
  std::size_t table_bytes() const noexcept;
  /// Bytes of counter state one distributed object may occupy per slot.
  static constexpr std::size_t bytes_per_entry() noexcept { return sizeof(detail::PaygoEntry); }
  const Options& options() const noexcept { return opt_; }
  Domain& domain() noexcept { return domain_; }

 private:
  friend struct detail::PaygoTestAccess;
  static std::uint32_t hash(const void* p) noexcept {
    const auto x = reinterpret_cast<std::uintptr_t>(p) >> 4;
    return static_cast<std::uint32_t>((x * 0x9E3779B97F4A7C15ULL) >> 32);
  }
  /// The second half of a distributed get, shared by the fast path and
  /// get_slow(): count +1 in entry `e` (local value `l`), announce the slot
  /// in the group mask, fence, and re-check the word.
  PAYGO_INLINE Token publish(Object& o, std::uint64_t w0, detail::PaygoTable& table,
                             detail::PaygoEntry& e, std::int32_t l) noexcept {
    // Release (a plain mov on x86): pairs with the acquire load of `local`
    // in entry_count() (src/paygo.cpp), so a scan that reads this value also
    // sees the anchor fold claim() may have done before it. Its order
    // against the word re-check below is the light fence's job.
    e.local.store(l + 1, std::memory_order_release);
    if (!(o.mask_.load(std::memory_order_relaxed) & table.group_bit)) [[unlikely]] {
      o.mask_.fetch_or(table.group_bit, std::memory_order_relaxed);  // ordered by the fence
    }
    light_fence();  // pairs with heavy_fence() in try_freeze()/reclaim_batch()
    const std::uint64_t w1 = o.word_.load(std::memory_order_relaxed);
    // Same generation and still not frozen (w0 had kFrozen clear).
    if (((w1 ^ w0) & (detail::kGenMask | detail::kFrozen)) != 0) [[unlikely]] {
      // Back off (a scan may have counted the +1: harmless). Release: as above.
      e.local.store(l, std::memory_order_release);
      return {};
    }
    return Token(&e, table.slot);
  }
  /// Frozen (fail) or central mode (the shared atomic).
  Token get_other(Object& o, std::uint64_t w0) noexcept;
  /// Distributed, but the entry is not at the object's first probe position
  /// (or the thread has no table yet, or `local` is saturated).
  Token get_slow(Object& o, std::uint64_t w0) noexcept;
  PAYGO_INLINE Token get_central(Object& o) noexcept {
    if (!detail::central_tryget(o.word_)) return {};
    return Token(&o.word_, &TokenPolicy::kCentralHome);
  }
  PAYGO_COLD detail::PaygoTable* find_table() noexcept;
  PAYGO_COLD detail::PaygoEntry* claim(detail::PaygoTable& t, const Object& o) noexcept;
  detail::PaygoTable* make_table(detail::Slot& slot) noexcept;
  std::int64_t sum_masked(const Object& o) const noexcept;
  void kill(Object& o) noexcept;

  Options opt_;
  std::uint32_t group_shift_;
  std::uint32_t index_mask_;  // opt_.table_entries - 1
  Domain domain_;
  /// The ThreadCache::aux value that enables the fast path: unique to this
  /// counter (it contains the domain id) and never 0.
  std::uintptr_t fast_key_;
};

static_assert(RefCounter<Paygo>);

}  // namespace paygo
