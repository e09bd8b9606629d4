// paygo/baselines/detail/slot_cells.hpp — dense per-slot, per-object cells, slot-major.
//
// Contract
// --------
// Storage shared by the dense baselines (PerSlotArray, Sloppy, PercpuRef).
// Every object gets a dense id in [0, max_objects) from an IdAllocator when
// it is constructed; the id goes back on a free list when it is destroyed.
// Every slot (thread, see Domain) owns one CellRow: a directory of chunks of
// kCellsPerChunk signed 64-bit cells, cell `id` of the row belonging to the
// object with that id. Storage is slot-major: one slot's cells for different
// objects are adjacent, and no two slots ever share a cache line (rows and
// chunks are separate, 128-byte aligned allocations). Rows and chunks are
// allocated lazily by their owner, so memory is spent only by slots that
// touch objects: 4 KiB per (slot, 512 consecutive ids) touched, plus one
// directory of max_objects / 512 pointers per slot that touched any.
//
// Only the owner writes its row's cells (one writer per cell); anybody may
// read them. The one exception is release_id(), which zeroes every slot's
// cell for an id whose object is gone (see there why that cannot race).
//
// Memory ordering: rows and chunks are published once with a release store
// (paired with the acquire loads in for_each_cell() and for_each_row()); the
// owner reads its own pointers relaxed (it, or a thread it adopted the slot
// from under the registry mutex, wrote them). The counters order the cell
// contents themselves.
//
// When not to use: this is O(slots x objects) memory in the worst case; with
// many objects each touched by many threads, use Paygo's hashed tables.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

#include "paygo/config.hpp"
#include "paygo/detail/contract.hpp"
#include "paygo/domain.hpp"

namespace paygo::baselines {

/// Shared by the dense counters' option structs.
struct SlotCellsOptions {
  std::uint32_t max_slots = 256;      ///< threads with their own row
  std::uint32_t max_objects = 65536;  ///< objects with a dense id; later ones use the central path
};

}  // namespace paygo::baselines

namespace paygo::detail {

/// "No dense id": the object was constructed while every id was taken.
inline constexpr std::uint32_t kNoId = 0xffff'ffffU;
/// Cells per chunk: 4 KiB of 64-bit cells, a multiple of the padding.
inline constexpr std::uint32_t kCellsPerChunk = 512;

using Cell = std::atomic<std::int64_t>;

struct alignas(kDestructiveInterference) CellChunk {
  Cell cells[kCellsPerChunk];  // value-initialised (zero) by std::atomic's C++20 constructor
};

/// One slot's row.
struct alignas(kDestructiveInterference) CellRow {
  /// PercpuRef's critical-section sequence (odd while inside); other counters
  /// leave it 0. On its own line: written on every PercpuRef get/put by the
  /// owner and read by killers, while `dir` is read-mostly.
  std::atomic<std::uint64_t> seq{0};
  /// Directory: max_objects / kCellsPerChunk chunk pointers (nullptr until
  /// the owner first touches an id of that chunk). Set at construction.
  alignas(kDestructiveInterference) std::atomic<CellChunk*>* dir = nullptr;
};

/// Dense object ids with a free list. Not on any get/put path: ids are taken
/// when an object is constructed and returned when it is destroyed.
class IdAllocator {
 public:
  explicit IdAllocator(std::uint32_t max_ids) noexcept : max_(max_ids) {}
  /// A free id, or kNoId when all max_ids are in use.
  std::uint32_t allocate() noexcept;
  void release(std::uint32_t id) noexcept;
  std::uint32_t max_ids() const noexcept { return max_; }

 private:
  std::mutex mu_;
  std::vector<std::uint32_t> free_;  // guarded by mu_
  std::uint32_t next_ = 0;           // guarded by mu_
  std::uint32_t max_;
};

class SlotCells {
 public:
  explicit SlotCells(baselines::SlotCellsOptions options);
  ~SlotCells();
  SlotCells(const SlotCells&) = delete;
  SlotCells& operator=(const SlotCells&) = delete;

  Domain& domain() noexcept { return domain_; }
  const Domain& domain() const noexcept { return domain_; }

  std::uint32_t allocate_id() noexcept { return ids_.allocate(); }
  /// Zeroes every slot's cell for `id`, then frees the id. Precondition: the
  /// object that had `id` is destroyed, so no get/put/query on it is running
  /// or can start, and every owner's last write to the cell happens before
  /// this call (the object's lifetime rule). The next object to get the id
  /// is constructed after the allocator mutex hands it over, so its owners'
  /// later writes come after these stores: the cells are never written
  /// concurrently, and a new object starts from all-zero cells.
  void release_id(std::uint32_t id) noexcept;

  /// The calling owner's row, or nullptr before its first cell.
  PAYGO_INLINE CellRow* row(Slot& slot) const noexcept {
    // Relaxed: the owner (or the thread it adopted the slot from, through
    // the registry mutex) published the row.
    return static_cast<CellRow*>(slot.payload.load(std::memory_order_relaxed));
  }

  /// The calling owner's cell for `id`, allocating its chunk on first use;
  /// nullptr if `id` is kNoId or the allocation failed.
  PAYGO_INLINE Cell* own(Slot& slot, std::uint32_t id) noexcept {
    if (CellRow* r = row(slot); r != nullptr && id != kNoId) [[likely]] {
      // Relaxed: this owner (or its predecessor, see row()) stored it.
      CellChunk* ch = r->dir[id / kCellsPerChunk].load(std::memory_order_relaxed);
      if (ch != nullptr) [[likely]]
        return &ch->cells[id % kCellsPerChunk];
    }
    return make(slot, id);
  }

  /// f(const CellRow&) for every row published so far.
  template <class F>
  void for_each_row(F&& f) const {
    for (std::uint32_t s = 0, hw = domain_.high_water(); s < hw; ++s) {
      // Acquire: pairs with the release store of the row in make().
      const auto* r =
          static_cast<const CellRow*>(domain_.slot(s).payload.load(std::memory_order_acquire));
      if (r != nullptr) f(*r);
    }
  }

  /// f(const Cell&) for every slot's cell of `id` that exists (a missing
  /// chunk holds zeros by definition).
  template <class F>
  void for_each_cell(std::uint32_t id, F&& f) const {
    if (id == kNoId) return;
    for_each_row([&](const CellRow& r) {
      // Acquire: pairs with the release store of the chunk in make().
      const CellChunk* ch = r.dir[id / kCellsPerChunk].load(std::memory_order_acquire);
      if (ch != nullptr) f(ch->cells[id % kCellsPerChunk]);
    });
  }

  /// Bytes held by rows and chunks.
  std::size_t bytes() const noexcept;
  std::uint32_t max_objects() const noexcept { return ids_.max_ids(); }

  /// The live tokens of the counter that owns these cells, counted in debug
  /// builds only (detail/contract.hpp); objects reach it through their
  /// cells pointer, so their tokens need no extra field.
  TokenTally& tokens() noexcept { return tokens_; }

 private:
  PAYGO_COLD Cell* make(Slot& slot, std::uint32_t id) noexcept;

  std::uint32_t dir_size_;
  IdAllocator ids_;
  Domain domain_;
  TokenTally tokens_;
};

}  // namespace paygo::detail
