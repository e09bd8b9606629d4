// paygo/baselines/per_slot_array.hpp — a dense counter per slot per object:
// the seed's "cache affinity" baseline.
//
// Contract
// --------
// Satisfies paygo::RefCounter. Each object gets a dense id at construction
// (Object(PerSlotArray&); the id is freed by its destructor) and every slot
// owns a signed cell per id (detail/slot_cells.hpp, slot-major). A
// distributed get adds 1 to the getter's own cell with a plain store, runs
// light_fence() and re-checks the word exactly like Paygo::get(); a put
// subtracts 1 from the *putter's* own cell, so every cell has one writer and
// only the sum over slots means anything. The true count is
//   central (word) + sum over slots of cell[id] + remote
// where `remote` takes the puts of threads that have no slot.
//
// set_distributed() is honoured as in Paygo: objects start central (one
// atomic in the word) and new gets of a distributed object use the cells.
// Gets also fall back to the central count when the caller has no slot, the
// object has no id (more than max_objects live objects), or a chunk cannot
// be allocated.
//
// Freeze = central_tryfreeze() (refused while central references are held)
// + heavy_fence(); query = central + remote + the sum of all slots' cells,
// exact while frozen; reclaim_batch() loops over try_reclaim().
//
// Memory: 8 bytes per (slot, object) pair that was touched, allocated in
// 4 KiB chunks of 512 consecutive ids per slot, plus 32 bytes per object and
// a directory of max_objects / 512 pointers per slot. A query reads one cell
// per slot that ever touched any object in the id's chunk.
//
// Debug checks (detail/contract.hpp; builds without NDEBUG, compiled out
// with it): reset() of an object that is not dead, unfreeze() of one that is
// not frozen (or is dead), and destroying the counter while a token it
// handed out is live abort with a message. Live tokens are counted per
// counter (get +1, put -1, relaxed, in detail::SlotCells, which every
// object points at).
//
// When not to use: with many objects and many threads: memory grows as
// slots x objects and every query walks every slot. It is the baseline that
// shows why Paygo hashes its entries.
#pragma once

// cell_counter.hpp brings what every SlotCells counter uses: the concept,
// the cells, the token, the word, the fences, the contract checks.
#include "paygo/baselines/detail/cell_counter.hpp"

namespace paygo::baselines {

class PerSlotArray : public detail::CellCounter<PerSlotArray> {
 public:
  static constexpr std::string_view kName = "per_slot_array";
  // kCounts, kExact: detail::CellCounter (true).

  // Options (SlotCellsOptions): detail::CellCounter.

  /// The word, the cells and the dense id: detail::CellObject.
  class Object : public detail::CellObject {
   public:
    explicit Object(PerSlotArray& c) noexcept : CellObject(c.cells_) {}

   private:
    friend class PerSlotArray;
    /// Puts of distributed tokens by threads without a slot. Release
    /// fetch_sub, paired with the acquire load in sum().
    std::atomic<std::int64_t> remote_{0};
  };

  /// The token: where the count went and how to give it back (the put).
  struct TokenPolicy {
    using Owner = PerSlotArray;
    using Ptr = Object*;
    using Extra = bool;  // central: the count went to the word, not a cell
    /*** put: fast path ***/
    PAYGO_INLINE static void release(Object* op, bool central) noexcept {
      Object& o = *op;
      // Debug builds only: the tally, before the put is published (TokenTally).
      if constexpr (detail::kDebugChecks) o.cells_->tokens().put();
      if (central) {
        detail::central_put(o.word_);
        return;
      }
      detail::Cell* c = own_cell(*o.cells_, o.id_);
      if (c != nullptr) [[likely]] {
        // Release: pairs with the acquire cell loads in PerSlotArray::sum(),
        // so this holder's use of the object happens before a reclaim that
        // counts it gone. A plain store: we are the cell's only writer.
        c->store(c->load(std::memory_order_relaxed) - 1, std::memory_order_release);
      } else {
        o.remote_.fetch_sub(1, std::memory_order_release);  // pairs with sum()
      }
    }
  };
  using Token = detail::BasicToken<TokenPolicy>;

  // get, put, try_reclaim, reclaim_batch, table_bytes, cells: detail::CellCounter.
  using CellCounter::CellCounter;

  bool try_freeze(Object& o) noexcept {
    if (!detail::central_tryfreeze(o.word_)) return false;  // central references held: busy
    heavy_fence();  // pairs with light_fence() in get_cell()
    return true;
  }
  std::int64_t query(const Object& o) const noexcept;
  // reset, unfreeze, approx, set_distributed: detail::CellCounter.

 private:
  friend class detail::CellCounter<PerSlotArray>;
  /*** get: fast path ***/
  // The word test and the cell lookup: CellCounter::get_untallied.
  PAYGO_INLINE static Token get_cell(Object& o, detail::Cell& c, std::uint64_t w0) noexcept {
    const std::int64_t v = c.load(std::memory_order_relaxed);  // we are its only writer
    // Relaxed: ordered before the word re-check by still_current()'s fence.
    c.store(v + 1, std::memory_order_relaxed);
    if (!detail::still_current(o.word_, w0)) [[unlikely]] {
      c.store(v, std::memory_order_relaxed);  // back off; a query may count it: harmless
      return {};
    }
    return Token(&o, false);
  }
  PAYGO_INLINE static Token get_central(Object& o) noexcept {
    if (!detail::central_tryget(o.word_)) return {};
    return Token(&o, true);
  }
  /// remote + the sum of every slot's cell: the distributed part of the count.
  std::int64_t sum(const Object& o) const noexcept;
  /// What a freeze leaves to check (try_reclaim): central references make
  /// the freeze fail, so only the distributed part.
  std::int64_t remaining(const Object& o) const noexcept { return sum(o); }
};

static_assert(RefCounter<PerSlotArray>);

}  // namespace paygo::baselines
