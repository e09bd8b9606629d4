// paygo/baselines/sloppy.hpp — sloppy counters (Boyd-Wickizer et al., "An
// Analysis of Linux Scalability to Many Cores", OSDI'10).
//
// Contract
// --------
// Satisfies paygo::RefCounter. The central count in the object's word counts
// the true references *plus* every spare reference parked in a slot: each
// slot owns a cell per object (detail/slot_cells.hpp, dense ids) holding its
// spares. A distributed get takes one of the getter's spares with a plain
// store when it has one (then light_fence() and a re-check of the word, as
// in Paygo::get()); otherwise it takes kRefill references from the central
// count in one CAS and keeps kRefill - 1 as spares. A put adds a spare to
// the *putter's* cell; above kSpareMax spares it gives all but kSpareKeep
// back to the central count. True count = central - sum of spares.
//
// Cells carry the object's generation (word bits 40..63) next to the spare
// count (bits 0..31): spares of an earlier incarnation count as zero, so
// reset() needs no access to other slots' cells. A put that finds a stale
// cell simply returns its reference to the central count.
//
// set_distributed() is honoured: objects start central (plain atomic gets
// and puts on the word); threads without a slot and objects without an id
// (more than max_objects) always use the central count.
//
// Freeze: the central count is not 0 while spares exist, so try_freeze()
// sets FROZEN whenever the object is not frozen yet — unlike the other
// counters it is *not* refused while central references are held — and runs
// heavy_fence(). query() = central - spares, exact while frozen (see the
// proof in src/baselines/sloppy.cpp that it can only overestimate while puts race);
// approx() is the same sum, unfrozen. reclaim_batch() loops.
//
// Memory: 8 bytes per (slot, object) pair touched, in 4 KiB chunks (as
// PerSlotArray), plus 24 bytes per object. Up to kSpareMax references per
// slot per object are parked, not lost: they are counted centrally.
//
// Debug checks (detail/contract.hpp; builds without NDEBUG, compiled out
// with it): reset() of an object that is not dead, unfreeze() of one that is
// not frozen (or is dead), and destroying the counter while a token it
// handed out is live abort with a message. Live tokens are counted per
// counter (get +1, put -1, relaxed, in detail::SlotCells); spares are not
// tokens and are not counted.
//
// When not to use: for objects that are got and put by *different* threads
// (a producer/consumer hand-off): spares pile up on the putter and every get
// on the other side goes to the central count, which is then as contended as
// Atomic. Also not for many objects x many threads (memory as PerSlotArray).
#pragma once

// cell_counter.hpp brings what every SlotCells counter uses: the concept,
// the cells, the token, the word, the fences, the contract checks.
#include "paygo/baselines/detail/cell_counter.hpp"

namespace paygo::baselines {

class Sloppy : public detail::CellCounter<Sloppy> {
 public:
  static constexpr std::string_view kName = "sloppy";
  // kCounts, kExact: detail::CellCounter (true).

  /// References a refill takes from the central count (one used, the rest spare).
  static constexpr std::uint64_t kRefill = 4;
  /// A put that would leave more spares than this returns the excess...
  static constexpr std::uint64_t kSpareMax = 8;
  /// ...keeping this many.
  static constexpr std::uint64_t kSpareKeep = 4;

  // Options (SlotCellsOptions): detail::CellCounter.

  /// The word (its count includes the spares), the cells and the dense id:
  /// detail::CellObject.
  class Object : public detail::CellObject {
   public:
    explicit Object(Sloppy& c) noexcept : CellObject(c.cells_) {}

   private:
    friend class Sloppy;
  };

  /// The token: where the count went and how to give it back (the put).
  struct TokenPolicy {
    using Owner = Sloppy;
    using Ptr = Object*;
    using Extra = bool;  // central: a central get, put back on the word
    /*** put: fast path ***/
    PAYGO_INLINE static void release(Object* op, bool central) noexcept {
      Object& o = *op;
      // Debug builds only: the tally, before the put is published (TokenTally).
      if constexpr (detail::kDebugChecks) o.cells_->tokens().put();
      detail::Cell* c = central ? nullptr : own_cell(*o.cells_, o.id_);
      if (c == nullptr) {
        detail::central_put(o.word_);
        return;
      }
      const auto v = static_cast<std::uint64_t>(c->load(std::memory_order_relaxed));  // sole writer
      // Relaxed: the generation cannot change while we hold a reference (a
      // reset needs the object dead, i.e. no reference), and the get that
      // made this token read the word with acquire before handing it over.
      const std::uint64_t w = o.word_.load(std::memory_order_relaxed);
      if (((v ^ w) & detail::kGenMask) != 0 || (v & detail::kCountMask) >= kSpareMax) [[unlikely]] {
        Sloppy::put_slow(o, *c, v, w);
        return;
      }
      // Release: pairs with the acquire spare loads in Sloppy::query(), so
      // this holder's use of the object happens before a reclaim that counts
      // the reference gone. A plain store: we are the cell's only writer.
      c->store(static_cast<std::int64_t>(v + 1), std::memory_order_release);
    }
  };
  using Token = detail::BasicToken<TokenPolicy>;

  // get, put, try_reclaim, reclaim_batch, table_bytes, cells: detail::CellCounter.
  using CellCounter::CellCounter;

  bool try_freeze(Object& o) noexcept;
  std::int64_t query(const Object& o) const noexcept;
  // reset() (generation + 1, count 0: the old incarnation's spares become
  // stale), unfreeze, approx, set_distributed: detail::CellCounter.

 private:
  friend class detail::CellCounter<Sloppy>;
  /*** get: fast path ***/
  // The word test and the cell lookup: CellCounter::get_untallied; here
  // the spare, or a refill when there is none of this incarnation.
  PAYGO_INLINE static Token get_cell(Object& o, detail::Cell& c, std::uint64_t w0) noexcept {
    const auto v = static_cast<std::uint64_t>(c.load(std::memory_order_relaxed));  // sole writer
    if (((v ^ w0) & detail::kGenMask) != 0 || (v & detail::kCountMask) == 0) {
      return refill(o, c, v);
    }
    // Take a spare. Relaxed: ordered before the re-check by its fence.
    c.store(static_cast<std::int64_t>(v - 1), std::memory_order_relaxed);
    if (!detail::still_current(o.word_, w0)) [[unlikely]] {
      // Back off: put the spare back. A query that saw it taken overcounts
      // by one, which only makes that reclaim busy.
      c.store(static_cast<std::int64_t>(v), std::memory_order_relaxed);
      return {};
    }
    return Token(&o, false);
  }
  PAYGO_INLINE static Token get_central(Object& o) noexcept {
    if (!detail::central_tryget(o.word_)) return {};
    return Token(&o, true);
  }
  PAYGO_COLD static Token refill(Object& o, detail::Cell& c, std::uint64_t v) noexcept;
  PAYGO_COLD static void put_slow(Object& o, detail::Cell& c, std::uint64_t v,
                                  std::uint64_t w) noexcept;
  /// What a freeze leaves to check (try_reclaim): the whole count.
  std::int64_t remaining(const Object& o) const noexcept { return query(o); }
};

static_assert(RefCounter<Sloppy>);

}  // namespace paygo::baselines
