// paygo/baselines/percpu_ref.hpp — Linux's percpu_ref
// (include/linux/percpu-refcount.h, lib/percpu-refcount.c), per slot.
//
// Contract
// --------
// Satisfies paygo::RefCounter. While an object is live ("percpu mode") every
// slot owns a signed cell per object (detail/slot_cells.hpp, dense ids): a
// get adds 1 to the getter's own cell, a put subtracts 1 from the putter's
// own cell. Killing the object (try_freeze(): set FROZEN, which plays
// ATOMIC|DEAD) switches it to one signed atomic: the killer runs
// heavy_fence(), waits until no get/put is inside its percpu critical
// section (Linux waits for an RCU grace period; here every slot has a
// sequence that get/put make odd around their percpu step, with
// light_fence() between entering and checking the mode), then folds the sum
// of the cells into the atomic. Cells are never written in atomic mode, so
// the fold is exact. In atomic mode gets fail (percpu_ref_tryget_live()) and
// puts go to the atomic. unfreeze() resurrects (percpu_ref_resurrect()):
// subtracts the folded sum back and switches to percpu mode (release).
// try_reclaim() kills and succeeds iff the atomic is then 0.
//
// query() is the atomic: exact only after a kill has completed (after
// try_freeze() returned true), which is what the original offers
// (percpu_ref_is_zero() is meaningful only in atomic mode). approx() adds
// the cells in percpu mode. try_freeze() is never refused for references
// held (only if already frozen or dead): killing while referenced is normal.
//
// set_distributed() is ignored: objects are always percpu while live.
// Threads without a slot and objects without an id (more than max_objects)
// use the atomic directly (increment, light_fence(), mode check).
//
// Memory: 8 bytes per (slot, object) pair touched, in 4 KiB chunks (as
// PerSlotArray), plus 40 bytes per object.
//
// Debug checks (detail/contract.hpp; builds without NDEBUG, compiled out
// with it): reset() of an object that is not dead, unfreeze() (the
// resurrect) of one that is not killed (frozen) or is dead, and destroying
// the counter while a token it handed out is live abort with a message.
// Live tokens are counted per counter (get +1, put -1, relaxed, in
// detail::SlotCells).
//
// When not to use: when objects are killed often. A kill waits for every
// slot in a critical section and reads one cell per slot; the original is
// meant for objects killed once in their life (modules, cgroups, queues),
// and so is this one.
#pragma once

// cell_counter.hpp brings what every SlotCells counter uses: the concept,
// the cells, the token, the word, the fences, the contract checks.
#include "paygo/baselines/detail/cell_counter.hpp"

namespace paygo::baselines {

class PercpuRef : public detail::CellCounter<PercpuRef> {
 public:
  static constexpr std::string_view kName = "percpu_ref";
  // kCounts, kExact: detail::CellCounter (true); after a kill

  // Options (SlotCellsOptions): detail::CellCounter.

  /// The word (only FROZEN, for atomic mode, DEAD and the generation are
  /// used), the cells and the dense id: detail::CellObject.
  class Object : public detail::CellObject {
   public:
    explicit Object(PercpuRef& c) noexcept : CellObject(c.cells_) {}

   private:
    friend class PercpuRef;
    /// The atomic count: the whole count in atomic mode; in percpu mode the
    /// part not in the cells (slotless gets/puts, puts made while killed).
    std::atomic<std::int64_t> atomic_{0};
    /// The sum folded in by the last kill; written and read only by whoever
    /// holds the kill (relaxed: that ownership is handed over by the caller).
    std::atomic<std::int64_t> folded_{0};
  };

  /// The token: where the count went and how to give it back (the put).
  struct TokenPolicy {
    using Owner = PercpuRef;
    using Ptr = Object*;
    using Extra = bool;  // atomic: taken on the atomic (no slot), put back there
    /*** put: fast path ***/
    PAYGO_INLINE static void release(Object* op, bool atomic) noexcept {
      Object& o = *op;
      // Debug builds only: the tally, before the put is published (TokenTally).
      if constexpr (detail::kDebugChecks) o.cells_->tokens().put();
      if (atomic || !PercpuRef::put_percpu(o)) {
        // Release: pairs with the acquire load of the atomic in query()/
        // try_reclaim(), so this holder's use happens before the reclaim.
        o.atomic_.fetch_sub(1, std::memory_order_release);
      }
    }
  };
  using Token = detail::BasicToken<TokenPolicy>;

  // get, put, try_reclaim, reclaim_batch, table_bytes, cells: detail::CellCounter.
  using CellCounter::CellCounter;

  /// Kill: FROZEN, heavy fence, wait for readers, fold. Refused only when
  /// already killed (or dead).
  bool try_freeze(Object& o) noexcept;
  /// The atomic: exact after try_freeze() returned true.
  std::int64_t query(const Object& o) const noexcept {
    // Acquire: pairs with the release fetch_sub of puts in atomic mode.
    return o.atomic_.load(std::memory_order_acquire);
  }
  /// Resurrect: back to percpu mode.
  void unfreeze(Object& o) noexcept;
  void reset(Object& o) noexcept;
  std::int64_t approx(const Object& o) const noexcept;
  void set_distributed(Object&, bool) noexcept {}

 private:
  friend class detail::CellCounter<PercpuRef>;
  /*** get: fast path (percpu_ref_tryget_live) ***/
  PAYGO_INLINE Token get_untallied(Object& o) noexcept {
    Slot* slot = cells_.domain().current();
    detail::Cell* c = slot != nullptr ? cells_.own(*slot, o.id_) : nullptr;
    if (c == nullptr) [[unlikely]]
      return get_atomic(o);
    std::atomic<std::uint64_t>& seq = cells_.row(*slot)->seq;
    const std::uint64_t s = seq.load(std::memory_order_relaxed);  // we are its only writer
    // Enter (odd). Release: pairs with the killer's acquire seq loads in
    // wait_for_readers(); a killer that reads this or any later value sees
    // everything we did before it.
    seq.store(s + 1, std::memory_order_release);
    light_fence();  // pairs with heavy_fence() in try_freeze()
    // Acquire: pairs with the release in unfreeze()/reset(), so a holder of
    // the revived object sees what the owner did before reviving it.
    const std::uint64_t w = o.word_.load(std::memory_order_acquire);
    const bool live = (w & detail::kFrozen) == 0;
    // Relaxed cell store: published to the killer by the exit store below.
    if (live) [[likely]]
      c->store(c->load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    seq.store(s + 2, std::memory_order_release);  // exit (even); release: as at the entry
    return live ? Token(&o, false) : Token();
  }
  /// The percpu put; false if the object is in atomic mode (or the putter
  /// has no cell), in which case the caller puts on the atomic.
  PAYGO_INLINE static bool put_percpu(Object& o) noexcept {
    Slot* slot = o.cells_->domain().current();
    detail::Cell* c = slot != nullptr ? o.cells_->own(*slot, o.id_) : nullptr;
    if (c == nullptr) [[unlikely]]
      return false;
    std::atomic<std::uint64_t>& seq = o.cells_->row(*slot)->seq;
    const std::uint64_t s = seq.load(std::memory_order_relaxed);  // we are its only writer
    seq.store(s + 1, std::memory_order_release);  // enter; pairs with wait_for_readers()
    light_fence();                                // pairs with heavy_fence() in try_freeze()
    // Relaxed: the mode only picks where the count goes; both are summed.
    const bool live = (o.word_.load(std::memory_order_relaxed) & detail::kFrozen) == 0;
    // Relaxed cell store: published (with this holder's use of the object)
    // to the killer by the release exit store below.
    if (live) [[likely]]
      c->store(c->load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
    seq.store(s + 2, std::memory_order_release);  // exit; pairs with wait_for_readers()
    return live;
  }
  PAYGO_COLD static Token get_atomic(Object& o) noexcept;
  /// Returns once no slot is inside a percpu critical section that began
  /// before our heavy fence (the "grace period").
  void wait_for_readers() const noexcept;
  std::int64_t sum_cells(const Object& o) const noexcept;
  /// What a kill leaves to check (try_reclaim): the atomic, exact now.
  std::int64_t remaining(const Object& o) const noexcept { return query(o); }
};

static_assert(RefCounter<PercpuRef>);

}  // namespace paygo::baselines
