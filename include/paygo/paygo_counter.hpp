// paygo/paygo_counter.hpp — PAYGO: anchor-based distributed reference counts
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
// Modes. Objects start in the *automatic* mode, counted on their central
// atomic (one RMW, cheapest while nobody else touches the object). A central
// get that sees contention (its CAS had to retry, or the count it replaced
// shows another holder inside) records an event in the calling thread's own
// event cache; Options::promote_events such events within
// Options::promote_window_us *promote* the object: new gets go distributed,
// central tokens already out drain to the word (no freeze: a count may be
// split between the word and the tables at any time). Events from old
// counts alone (which a thread's own nested holds also produce) promote only
// when a second thread has voted within the window; a retry proves a second
// writer by itself. sweep(objs) *demotes* automatic objects whose entries
// saw no distributed get for Options::demote_sweeps consecutive sweeps:
// freeze, one heavy fence per batch, a scan that proves no distributed
// reference is live, then mask cleared, DISTRIBUTED cleared and the
// generation bumped in one CAS (docs/design.md, "Self-tuning"). A demoted
// object is not promoted again for Options::inhibit_ms.
// set_distributed(obj, on) is the hint: it *pins* the mode (distributed or
// central) and self-tuning leaves the object alone; set_mode(obj,
// Mode::Auto) hands it back, central. Gets fall back to the central count, never
// failing or blocking, when the caller has no slot (more threads than
// slots), when the probe window of its table is full, or when `local`
// would pass Options::local_limit (tune_stats().central_fallbacks).
//
// Slot modes (PaygoOptions::slot_mode, docs/design.md "Per-CPU tables"):
// Thread as above; Cpu: one table per possible CPU (made on the CPU's
// first get), shared by every thread that runs there. Its entries count in
// `anchor` only: a get is one seq_cst fetch_add on the anchor of the entry
// for the object in the current CPU's table, then a re-check that the entry
// still names the object, then the mask, fence and word re-check as above;
// every put, on that CPU or any other (threads migrate), is the anchor
// fetch_sub that a remote put is in the Thread mode, so the put path and
// raw tokens are unchanged. A free entry (anchor 0) is claimed by CAS of its
// `obj` to the old value tagged (kClaimTag), a seq_cst check that the anchor
// is still 0, then the new object. Spill: per-thread tables for the first
// max_slots threads, per-CPU tables for the rest (the default). The mask's
// bits are split: Thread gives all 64 to slot groups, Cpu all 64 to CPU
// groups, Spill 32 and 32.
//
// Freeze/query (docs/design.md has the proof): a reader publishes its entry,
// sets its group bit in the object's mask, runs light_fence(), then checks
// the word; a reclaimer CASes FROZEN into the word, runs heavy_fence(), then
// sums the entries of the groups in the mask (each entry's local + anchor,
// clamped at 0: a negative sum is another object's, docs/design.md point 4).
// Group bits are cleared only after a fenced scan found no distributed
// reference (a kill, or a quiet demotion, which also bumps the generation).
// reclaim_batch() freezes many objects, pays one heavy fence and scans each
// live table once; a candidate with an empty mask needs neither (point 8).
//
// Debug checks (detail/contract.hpp; builds without NDEBUG, compiled out
// with it): reset() of an object that is not dead, unfreeze() of one that is
// not frozen (or is dead), and destroying the counter while a token it
// handed out is live abort with a message. For the last one the destructor
// scans its tables (every live distributed token is in some entry's local +
// anchor, so this costs the get/put paths nothing) and checks a count of
// live central tokens (get +1, put -1, relaxed): a debug central token's
// home is that count's address with bit 0 set (a Slot is never at an odd
// address), where a release build has nullptr.
//
// When not to use: for objects that are rarely shared between threads, or
// that are reclaimed about as often as they are read — each reclaim costs a
// heavy fence and a scan, and the atomic counter is simpler and as fast.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <span>
#include <string_view>

#include "paygo/config.hpp"
#include "paygo/counter.hpp"
#include "paygo/detail/contract.hpp"
#include "paygo/detail/token.hpp"
#include "paygo/detail/word.hpp"
#include "paygo/domain.hpp"
#include "paygo/fence.hpp"

namespace paygo {

namespace detail {

/// One table entry, 16 bytes, four to a cache line. `obj` and `local` are
/// written only by the slot's owner; `anchor` by any thread (fetch_sub).
/// `local` packs two fields: bits 0..17 the count of gets on this slot less
/// its home puts (never negative), bits 18..31 a use counter that every
/// distributed get bumps and nothing lowers (it wraps): a sweep that finds
/// the uses of every entry of an object unchanged knows no distributed get
/// happened in between, with no shared write on the get path to tell it.
struct PaygoEntry {
  std::atomic<const void*> obj{nullptr};
  std::atomic<std::uint32_t> local{0};
  std::atomic<std::int32_t> anchor{0};
};
inline constexpr unsigned kLocalCountBits = 18;
/// Bit 0 of a per-CPU entry's `obj` while a thread claims the entry for
/// another object: the value still names the old object (scans strip the
/// tag), and getters that see it back off (claim_cpu() in src/paygo.cpp).
inline constexpr std::uintptr_t kClaimTag = 1;
inline constexpr std::uint32_t kLocalCountMask = (1U << kLocalCountBits) - 1;
/// What a distributed get adds to `local`: one reference and one use.
inline constexpr std::uint32_t kLocalGet = 1U + (1U << kLocalCountBits);
PAYGO_INLINE constexpr std::int32_t local_count(std::uint32_t local) noexcept {
  return static_cast<std::int32_t>(local & kLocalCountMask);
}
PAYGO_INLINE constexpr std::uint32_t local_uses(std::uint32_t local) noexcept {
  return local >> kLocalCountBits;
}

struct PaygoTestAccess;  // tests/unit/paygo_test.cpp looks inside

/// A slot's table: a 64-byte header followed, in the same allocation, by
/// index_mask + 1 entries. The owner's thread cache holds the table's
/// address and size, so the fast path goes thread cache -> entry. A CPU's
/// table (SlotMode::Cpu, Spill) has the same layout; its `slot` is the
/// counter's cpu_home_, a slot no thread ever owns.
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

/// Where a distributed get counts (docs/design.md "Per-CPU tables").
enum class SlotMode : std::uint8_t {
  /// One table per thread (a Domain slot): plain stores, no RMW; threads
  /// beyond max_slots count on the central word.
  Thread,
  /// One table per possible CPU, shared by the threads that run there: one
  /// locked RMW on a line that stays in this core's cache for the get and
  /// one for the put; memory and query cost grow with CPUs, not threads.
  Cpu,
  /// Per-thread tables while slots last, per-CPU tables for the threads
  /// beyond max_slots (the default: the cheapest get for the first
  /// max_slots threads, and no thread count that falls back to the word).
  Spill,
};
/// "thread", "cpu", "spill".
std::string_view to_string(SlotMode m) noexcept;
/// The inverse of to_string(); false (and `out` untouched) for other names.
bool parse_slot_mode(std::string_view name, SlotMode& out) noexcept;

struct PaygoOptions {
  /// Per-thread, per-CPU or spill tables (see SlotMode).
  SlotMode slot_mode = SlotMode::Spill;
  std::uint32_t max_slots = 256;      ///< threads with their own table
  std::uint32_t table_entries = 256;  ///< entries per table (rounded up to a power of 2)
  std::uint32_t probe = 8;            ///< probe window: entries an object may use
  std::uint32_t group_size = 0;       ///< slots per mask bit; 0: ceil(max_slots / 64)
  /// References one slot may hold on one object before its gets go central
  /// (at most detail::kLocalCountMask, 2^18 - 1).
  std::int32_t local_limit = static_cast<std::int32_t>(detail::kLocalCountMask);
  /// Self-tuning (docs/design.md "Self-tuning" says how the defaults were
  /// chosen). K: contended central gets one thread must see ...
  std::uint32_t promote_events = 8;
  /// ... within this many microseconds (from its first event) to promote.
  std::uint32_t promote_window_us = 2000;
  /// E: consecutive quiet sweeps (no distributed get between two sweeps)
  /// before sweep() demotes an automatic object.
  std::uint32_t demote_sweeps = 4;
  /// No promotion of a demoted object for this many milliseconds (< 1000).
  std::uint32_t inhibit_ms = 50;
};

class Paygo {
 public:
  static constexpr std::string_view kName = "paygo";
  static constexpr bool kCounts = true;
  static constexpr bool kExact = true;

  using Options = PaygoOptions;

  /// The per-object header: the word (detail/word.hpp), the group mask,
  /// the hash hint and the self-tuning state (32 bytes).
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
    /// Set by readers (seq_cst fetch_or, and ordered by their light fence);
    /// reset only after a fenced scan found no distributed reference: by the
    /// reclaimer that found the object dead, or by a quiet demotion.
    std::atomic<std::uint64_t> mask_{0};
    /// hash(this), computed once (objects never move): the object's first
    /// probe position in every table is hint_ & index_mask.
    const std::uint32_t hint_;
    /// Promotion vote or demotion mark: bits 0..11 the voter (a thread's
    /// id, or kInhibitVoter after a demotion), bits 12..31 the time in
    /// units of 2^14 ns. Written only on the contended central path (whose
    /// CAS just took the word's line, usually this line too) and by
    /// demotion; relaxed everywhere: a heuristic, never a correctness input.
    std::atomic<std::uint32_t> vote_{0};
    /// The sweeper's memory: bits 0..31 the use signature of the last
    /// sweep, bits 32..39 quiet sweeps in a row. Written only by sweep()
    /// (callers serialise sweeps of one object) and reset(); relaxed.
    std::atomic<std::uint64_t> tune_{0};
  };

  /// The token: {entry, home slot} for a distributed get, {word, nullptr}
  /// for a central one.
  struct TokenPolicy {
    using Owner = Paygo;
    using Ptr = void*;  // PaygoEntry* or the central word
    /// Home slot; nullptr for a central token (debug builds: the tagged
    /// address of the counter's central token tally, see central_tally()).
    using Extra = Slot*;
    /// A debug build's central token: home is a tagged TokenTally*. Always
    /// false in release builds, where a central token's home is nullptr.
    PAYGO_INLINE static bool tallied_central(const Slot* home) noexcept {
      if constexpr (detail::kDebugChecks) {
        return (reinterpret_cast<std::uintptr_t>(home) & 1) != 0;
      } else {
        return false;
      }
    }
    static Slot* tag(detail::TokenTally* t) noexcept {
      return reinterpret_cast<Slot*>(reinterpret_cast<std::uintptr_t>(t) | 1);
    }
    static detail::TokenTally* central_tally(Slot* home) noexcept {
      return reinterpret_cast<detail::TokenTally*>(reinterpret_cast<std::uintptr_t>(home) &
                                                   ~std::uintptr_t{1});
    }
    /*** put: fast path ***/
    PAYGO_INLINE static void release(void* p, Slot* home) noexcept {
      // Central first: with self-tuning most objects are central, and one
      // test of a register costs the distributed puts next to nothing.
      if (home == nullptr || tallied_central(home)) {
        // Debug builds only: the tally before the put is published (see
        // detail::TokenTally).
        if constexpr (detail::kDebugChecks) {
          if (home != nullptr) central_tally(home)->put();
        }
        detail::central_put(*static_cast<std::atomic<std::uint64_t>*>(p));
        // Relaxed owner check: only the owner itself can read its own tag.
      } else if (home->owner.load(std::memory_order_relaxed) == detail::this_thread_tag())
          [[likely]] {
        auto* e = static_cast<detail::PaygoEntry*>(p);
        // Home put: a plain store. Release: pairs with the acquire loads of
        // `local` in entry_count() (src/paygo.cpp) so this holder's use of
        // the object happens before a reclaim that counts it gone.
        e->local.store(e->local.load(std::memory_order_relaxed) - 1, std::memory_order_release);
      } else {
        // Migration tax. Release: pairs with the acquire loads of `anchor`
        // in entry_count() and in the owner's free-entry check (claim()).
        static_cast<detail::PaygoEntry*>(p)->anchor.fetch_sub(1, std::memory_order_release);
      }
    }
  };
  class Token : public detail::BasicToken<TokenPolicy> {
   public:
    Token() = default;
    Token(Token&&) noexcept = default;
    Token& operator=(Token&&) noexcept = default;
    PAYGO_INLINE ~Token() = default;  // the put: keep it in the caller's fast path
    /// True if the count went to a per-slot entry (not the central word).
    bool distributed() const noexcept {
      return p_ != nullptr && x_ != nullptr && !TokenPolicy::tallied_central(x_);
    }

   private:
    friend class Paygo;
    friend struct detail::PaygoTestAccess;
    Token(void* p, Slot* home) noexcept : BasicToken(p, home) {}
  };

  Paygo() : Paygo(Options{}) {}
  explicit Paygo(Options options);
  ~Paygo();
  Paygo(const Paygo&) = delete;
  Paygo& operator=(const Paygo&) = delete;

  PAYGO_INLINE Token get(Object& o) noexcept {
    if constexpr (detail::kDebugChecks) {
      Token t = get_untallied(o);
      if (t && t.x_ == nullptr) {  // central: count it, and let its put find the count
        central_tokens_.got();
        t.x_ = TokenPolicy::tag(&central_tokens_);
      }
      return t;
    } else {
      return get_untallied(o);
    }
  }

  void put(Token&& t) noexcept { t.reset(); }

  bool try_freeze(Object& o) noexcept;
  std::int64_t query(const Object& o) const noexcept;
  void unfreeze(Object& o) noexcept { detail::checked_unfreeze(kName, o.word_); }
  bool try_reclaim(Object& o) noexcept;
  std::size_t reclaim_batch(std::span<Object* const> objs, std::span<bool> dead);
  /// Revive a dead object: next generation; an automatic object starts
  /// central again with its self-tuning state cleared; a pinned one keeps
  /// its mode.
  void reset(Object& o) noexcept;
  std::int64_t approx(const Object& o) const noexcept;
  /// The hint: pin the object distributed (on) or central (off).
  void set_distributed(Object& o, bool on) noexcept { detail::set_mode(o.word_, on); }
  /// Pin (Distributed, Central) or hand the object to self-tuning (Auto:
  /// central until promoted, as a new object).
  void set_mode(Object& o, Mode m) noexcept;
  Mode mode(const Object& o) const noexcept {
    const std::uint64_t w = o.word_.load(std::memory_order_relaxed);
    if (!(w & detail::kPinned)) return Mode::Auto;
    return (w & detail::kDistributed) ? Mode::Distributed : Mode::Central;
  }
  bool distributed(const Object& o) const noexcept {
    return (o.word_.load(std::memory_order_relaxed) & detail::kDistributed) != 0;
  }
  /// Distributed by self-tuning (automatic and promoted), not by a hint.
  bool promoted(const Object& o) const noexcept {
    return (o.word_.load(std::memory_order_relaxed) & (detail::kDistributed | detail::kPinned)) ==
           detail::kDistributed;
  }
  /// Demotion pass over candidates (any objects; only automatic distributed
  /// ones are looked at): updates each one's quiet count from the use
  /// counters of its entries and demotes those quiet for demote_sweeps
  /// sweeps, with one heavy fence for all of them. Returns the demoted
  /// count. Callers must not sweep one object from two threads at once;
  /// sweeps may run beside gets, puts and reclaims of the same objects.
  std::size_t sweep(std::span<Object* const> objs);
  TuneStats tune_stats() const noexcept;
  bool frozen(const Object& o) const noexcept {
    return (o.word_.load(std::memory_order_relaxed) & detail::kFrozen) != 0;
  }

  /*** Raw tokens: a token in one word ***/
  /// For clients whose handle is one pointer (RocksDB's Cache::Handle*). A
  /// distributed token's raw form is its entry's address (8-byte aligned);
  /// a central one's is the object's word with bit 0 set (kRawCentral). The
  /// home slot is not stored: put_raw() is at home exactly when the entry
  /// lies in the calling thread's own table of this counter (each entry is
  /// in one table, and a thread's cache names its own). into_raw()
  /// takes the reference out of the token (empty in, 0 out); a raw token is
  /// put with put_raw(), from any thread, never with a Token. Once one
  /// reference of an object has been dup_raw()'ed, every reference to it
  /// must be put with put_raw() (a Token's home put assumes its own count
  /// is in `local`, which a dup'ed reference coming home may have taken).
  static constexpr std::uintptr_t kRawCentral = 1;
  std::uintptr_t into_raw(Token&& t) noexcept {
    const std::uintptr_t r = !t                ? 0
                             : t.distributed() ? reinterpret_cast<std::uintptr_t>(t.p_)
                                               : reinterpret_cast<std::uintptr_t>(t.p_) |
                                                     kRawCentral;  // a debug token's tally
    t.p_ = nullptr;  // the count stays; its put is put_raw()'s (debug: tally still counts it)
    return r;
  }
  /// The object a live raw token counts. Reads the token's entry only (its
  /// `obj` cannot change while the entry holds a reference).
  static Object& raw_object(std::uintptr_t r) noexcept {
    if (r & kRawCentral) return *reinterpret_cast<Object*>(r & ~kRawCentral);  // word_ is first
    return *const_cast<Object*>(static_cast<const Object*>(
        reinterpret_cast<const detail::PaygoEntry*>(r)->obj.load(std::memory_order_relaxed)));
  }
  /// One more reference through the raw token r, taken by any thread that
  /// holds one through r (RocksDB's Cache::Ref); each is put by put_raw(r),
  /// from any thread. Central r: the word's count (a live central reference
  /// keeps every freeze out). Distributed r: the anchor of r's entry, with
  /// a get's protocol: add, light fence, re-check the word; a frozen word
  /// means a reclaimer may have scanned before the add, so take it back and
  /// wait for the unfreeze (the caller's reference keeps the object alive,
  /// so the reclaimer finds it and unfreezes). Never fails; must not be
  /// called on an object the calling thread itself holds frozen.
  /// docs/design.md "Raw tokens" has the argument, tests/model (-DDUP) the
  /// check.
  void dup_raw(std::uintptr_t r) noexcept;
  /*** put of a raw token: fast path ***/
  PAYGO_INLINE void put_raw(std::uintptr_t r) noexcept {
    if (r & kRawCentral) {
      if constexpr (detail::kDebugChecks) central_tokens_.put();
      detail::central_put(*reinterpret_cast<std::atomic<std::uint64_t>*>(r & ~kRawCentral));
      return;
    }
    auto* e = reinterpret_cast<detail::PaygoEntry*>(r);
    // At home iff the entry is in this thread's own table (the thread cache
    // says which, as on the get path). A thread whose cache way holds
    // another counter just now pays the anchor: correct from any thread.
    const detail::ThreadCache& tc = detail::tls_cache_for(domain_.id());
    if (tc.aux == fast_key_ && r - reinterpret_cast<std::uintptr_t>(
                                       static_cast<detail::PaygoTable*>(tc.payload)->entries()) <
                                   (std::uintptr_t{index_mask_} + 1) * sizeof(detail::PaygoEntry))
        [[likely]] {
      const std::uint32_t l = e->local.load(std::memory_order_relaxed);  // we are its only writer
      // A reference dup_raw() put on the anchor may come home: with no
      // home count left, it is paid on the anchor (local never goes below 0).
      if (detail::local_count(l) != 0) [[likely]] {
        // Release: as the home put in TokenPolicy::release().
        e->local.store(l - 1, std::memory_order_release);
        return;
      }
    }
    // Release: as the migration tax in TokenPolicy::release().
    e->anchor.fetch_sub(1, std::memory_order_release);
  }

  /// Bytes held by the tables: one per slot used, one per CPU used (the
  /// per-CPU modes' array of table pointers, 8 bytes per possible CPU, is
  /// not counted).
  std::size_t table_bytes() const noexcept;
  const Options& options() const noexcept { return opt_; }
  Domain& domain() noexcept { return domain_; }

 private:
  friend struct detail::PaygoTestAccess;
  /*** get: fast path ***/
  PAYGO_INLINE Token get_untallied(Object& o) noexcept {
    // Acquire: pairs with the release in central_reset()/central_unfreeze():
    // a reader of a new incarnation sees its mask reset and its contents.
    const std::uint64_t w0 = o.word_.load(std::memory_order_acquire);
    // One test for "distributed and not frozen"; frozen and central gets
    // leave the inline path.
    if ((w0 & (detail::kFrozen | detail::kDistributed)) != detail::kDistributed)
      return get_other(o, w0);
    // This thread's table, from its cache of domain -> slot -> table.
    // tc.aux == fast_key_ says, in one compare, that the cache way holds
    // this counter's slot and table (find_table() sets it; the Domain
    // clears it whenever it rebinds the way).
    const detail::ThreadCache& tc = detail::tls_cache_for(domain_.id());
    if (tc.aux != fast_key_) [[unlikely]] {
      // A thread that counts per CPU (SlotMode::Cpu, or Spill without a
      // slot) goes straight there; cpu_key_ also names this counter.
      if (tc.aux == cpu_key_) return get_cpu(o, w0);
      return get_slow(o, w0);
    }
    auto* table = static_cast<detail::PaygoTable*>(tc.payload);
    detail::PaygoEntry* e = &table->entries()[o.hint_ & index_mask_];
    const std::uint32_t l = e->local.load(std::memory_order_relaxed);  // we are its only writer
    if (e->obj.load(std::memory_order_relaxed) != &o || detail::local_count(l) >= opt_.local_limit)
        [[unlikely]]
      return get_slow(o, w0);
    return publish(o, w0, *table, *e, l);
  }
  static std::uint32_t hash(const void* p) noexcept {
    const auto x = reinterpret_cast<std::uintptr_t>(p) >> 4;
    return static_cast<std::uint32_t>((x * 0x9E3779B97F4A7C15ULL) >> 32);
  }
  /// The second half of a distributed get, shared by the fast path and
  /// get_slow(): count +1 in entry `e` (local value `l`), announce the slot
  /// in the group mask, fence, and re-check the word.
  PAYGO_INLINE Token publish(Object& o, std::uint64_t w0, detail::PaygoTable& table,
                             detail::PaygoEntry& e, std::uint32_t l) noexcept {
    // One reference and one use. Release (a plain mov on x86): pairs with
    // the acquire load of `local` in entry_count() (src/paygo.cpp), so a
    // scan that reads this value also sees the anchor fold claim() may have
    // done before it. Its order against the word re-check below is the
    // light fence's job.
    e.local.store(l + detail::kLocalGet, std::memory_order_release);
    if (!(o.mask_.load(std::memory_order_relaxed) & table.group_bit)) [[unlikely]] {
      // seq_cst (a lock or on x86, as relaxed would be): pairs with the
      // seq_cst freeze CAS and mask load of a reclaim that skips the heavy
      // fence because it read an empty mask (reclaim_batch(), docs/design.md
      // point 8): either that load sees this bit, or the w1 load below
      // (seq_cst too) sees the freeze. Against a fenced scan the light
      // fence orders it, as before.
      o.mask_.fetch_or(table.group_bit, std::memory_order_seq_cst);
    }
    light_fence();  // pairs with heavy_fence() in try_freeze()/reclaim_batch()/sweep()
    // seq_cst: a plain mov on x86; the other half of the empty-mask pairing.
    const std::uint64_t w1 = o.word_.load(std::memory_order_seq_cst);
    // Same generation and still not frozen (w0 had kFrozen clear).
    if (((w1 ^ w0) & (detail::kGenMask | detail::kFrozen)) != 0) [[unlikely]] {
      // Back off (a scan may have counted the +1: harmless; the use goes
      // too). Release: as above.
      e.local.store(l, std::memory_order_release);
      return {};
    }
    return Token(&e, table.slot);
  }
  /// Frozen (fail) or central mode (the shared atomic): one CAS, inline,
  /// as Atomic's get. The CAS replaced `w`; a count above 0 in it means
  /// another holder is inside right now (or our own nested hold: see
  /// note_contention()). Acquire: pairs with the release in reset()/
  /// unfreeze()/demote(), as in central_tryget().
  PAYGO_INLINE Token get_other(Object& o, std::uint64_t w) noexcept {
    if (w & detail::kFrozen) [[unlikely]]
      return {};
    if (!o.word_.compare_exchange_strong(w, w + 1, std::memory_order_acquire,
                                         std::memory_order_relaxed)) [[unlikely]]
      return get_contended(o, w);
    if ((w & detail::kCountMask) != 0 && !(w & detail::kPinned)) [[unlikely]]
      note_contention(o, false);
    return Token(&o.word_, nullptr);
  }
  /// The central CAS failed: the word changed under us (another writer, a
  /// freeze). Loops like central_tryget() and reports the retry.
  PAYGO_COLD Token get_contended(Object& o, std::uint64_t w) noexcept;
  /// Distributed, but the entry is not at the object's first probe position
  /// (or the thread has no table yet, or `local` is saturated).
  Token get_slow(Object& o, std::uint64_t w0) noexcept;
  PAYGO_INLINE Token get_central(Object& o) noexcept {
    if (!detail::central_tryget(o.word_)) return {};
    return Token(&o.word_, nullptr);
  }
  /// A central get of a distributed object that wanted a slot entry.
  Token get_fallback(Object& o) noexcept;
  /// The contended central get's slow half: record the event, maybe vote or
  /// promote.
  PAYGO_COLD void note_contention(Object& o, bool retried) noexcept;
  void promote(Object& o, std::int64_t now_ns) noexcept;
  /// Takes a frozen object out of the distributed mode and unfreezes it;
  /// quiet: a fenced scan found no distributed reference (mask may go).
  /// False (just unfrozen) if it is no longer automatic and distributed.
  bool demote(Object& o, bool quiet) noexcept;
  bool clear_distributed(Object& o) noexcept;
  void mark_demoted(Object& o) noexcept;
  /// One pass over every table: for each of `objs`, the sum of its entries'
  /// counts (sums) and its use signature (sigs); either may be null.
  void scan_tables(std::span<const void* const> objs, std::int64_t* sums,
                   std::uint32_t* sigs) const;
  PAYGO_COLD detail::PaygoTable* find_table() noexcept;
  /// A get that counts in the current CPU's table (SlotMode::Cpu, and
  /// Spill for a thread without a slot).
  Token get_cpu(Object& o, std::uint64_t w0) noexcept;
  detail::PaygoTable* make_cpu_table(std::uint32_t cpu) noexcept;
  detail::PaygoEntry* claim_cpu(detail::PaygoTable& t, const Object& o) noexcept;
  /// Calls f(table) for every table: the slots' in [0, high_water), then
  /// the CPUs' made so far.
  template <class F>
  void for_each_table(F&& f) const;
  PAYGO_COLD detail::PaygoEntry* claim(detail::PaygoTable& t, const Object& o) noexcept;
  detail::PaygoTable* make_table(Slot& slot) noexcept;
  std::int64_t sum_masked(const Object& o) const noexcept;
  void kill(Object& o) noexcept;

  Options opt_;
  std::uint32_t group_shift_;
  std::uint32_t index_mask_;  // opt_.table_entries - 1
  Domain domain_;
  /// The ThreadCache::aux value that enables the fast path: unique to this
  /// counter (it contains the domain id) and never 0.
  std::uintptr_t fast_key_;
  /// The aux value of a thread that counts per CPU (Cpu mode, or Spill
  /// without a slot): the inline get goes straight to get_cpu().
  std::uintptr_t cpu_key_;
  /// Per-CPU tables: possible CPUs, one pointer each, made on first use
  /// (release CAS in make_cpu_table(), acquire loads in get_cpu() and the
  /// scans). Empty in the Thread mode.
  std::uint32_t ncpus_ = 0;
  std::unique_ptr<std::atomic<detail::PaygoTable*>[]> cpu_tables_;
  /// Mask bits [cpu_group_base_, 64) name CPU groups of 2^cpu_group_shift_
  /// CPUs; bits below it name slot groups (group_shift_).
  std::uint32_t cpu_group_base_ = 64;
  std::uint32_t cpu_group_shift_ = 0;
  /// The home of every per-CPU token: never owned by a thread, so its put
  /// is always the anchor's fetch_sub (TokenPolicy::release()).
  Slot cpu_home_;
  /// Self-tuning statistics: written on slow paths only (promotion,
  /// demotion, sweep; the fallbacks in striped lines), relaxed.
  std::atomic<std::uint64_t> promotions_{0}, demotions_{0}, sweeps_{0};
  std::atomic<std::int64_t> first_promotion_ns_{0};
  /// Live central tokens, counted in debug builds only (detail/contract.hpp);
  /// the destructor adds the distributed ones it finds in the tables.
  detail::TokenTally central_tokens_;
  struct alignas(kDestructiveInterference) Stripe {
    std::atomic<std::uint64_t> n{0};
  };
  static constexpr std::size_t kStripes = 16;
  Stripe fallbacks_[kStripes];
};

static_assert(RefCounter<Paygo>);

}  // namespace paygo
