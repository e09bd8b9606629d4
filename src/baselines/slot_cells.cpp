// Dense per-slot cells: id allocation, lazy rows and chunks, id release.
#include "paygo/baselines/detail/slot_cells.hpp"

#include <algorithm>
#include <new>

namespace paygo::detail {

std::uint32_t IdAllocator::allocate() noexcept {
  std::lock_guard lock(mu_);
  if (!free_.empty()) {
    const std::uint32_t id = free_.back();
    free_.pop_back();
    return id;
  }
  return next_ < max_ ? next_++ : kNoId;
}

void IdAllocator::release(std::uint32_t id) noexcept {
  if (id == kNoId) return;
  std::lock_guard lock(mu_);
  try {
    free_.push_back(id);
  } catch (...) {
    // Out of memory: the id is leaked (later objects fall back to kNoId).
  }
}

SlotCells::SlotCells(baselines::SlotCellsOptions options)
    : dir_size_((std::max<std::uint32_t>(options.max_objects, 1) + kCellsPerChunk - 1) /
                kCellsPerChunk),
      ids_(std::max<std::uint32_t>(options.max_objects, 1)),
      domain_(DomainOptions{options.max_slots}) {}

SlotCells::~SlotCells() {
  // Objects and tokens must not outlive the counter (documented precondition).
  for (std::uint32_t s = 0, hw = domain_.high_water(); s < hw; ++s) {
    // Acquire: pairs with the release store in make().
    auto* r = static_cast<CellRow*>(domain_.slot(s).payload.load(std::memory_order_acquire));
    if (r == nullptr) continue;
    for (std::uint32_t k = 0; k < dir_size_; ++k) {
      delete r->dir[k].load(std::memory_order_acquire);  // pairs with make()
    }
    delete[] r->dir;
    delete r;
  }
}

Cell* SlotCells::make(Slot& slot, std::uint32_t id) noexcept {
  if (id == kNoId) return nullptr;
  CellRow* r = row(slot);
  if (r == nullptr) {
    r = new (std::nothrow) CellRow;
    if (r == nullptr) return nullptr;
    r->dir = new (std::nothrow) std::atomic<CellChunk*>[dir_size_];
    if (r->dir == nullptr) {
      delete r;
      return nullptr;
    }
    for (std::uint32_t k = 0; k < dir_size_; ++k)
      r->dir[k].store(nullptr, std::memory_order_relaxed);
    // Release: pairs with the acquire loads of `payload` in for_each_row()
    // and ~SlotCells(), so a scanner that finds the row sees its directory.
    slot.payload.store(r, std::memory_order_release);
  }
  std::atomic<CellChunk*>& d = r->dir[id / kCellsPerChunk];
  CellChunk* ch = d.load(std::memory_order_relaxed);  // we are its only writer
  if (ch == nullptr) {
    ch = new (std::nothrow) CellChunk;
    if (ch == nullptr) return nullptr;
    // Release: pairs with the acquire load in for_each_cell(), so a scanner
    // that finds the chunk sees its zeroed cells.
    d.store(ch, std::memory_order_release);
  }
  return &ch->cells[id % kCellsPerChunk];
}

void SlotCells::release_id(std::uint32_t id) noexcept {
  if (id == kNoId) return;
  // Relaxed: no access to this id can run concurrently (see the header); the
  // allocator mutex orders these stores before the id's next owner.
  for_each_row([&](const CellRow& r) {
    if (CellChunk* ch =
            r.dir[id / kCellsPerChunk].load(std::memory_order_acquire)) {  // as in for_each_cell()
      ch->cells[id % kCellsPerChunk].store(0, std::memory_order_relaxed);
    }
  });
  ids_.release(id);
}

std::size_t SlotCells::bytes() const noexcept {
  std::size_t n = 0;
  for_each_row([&](const CellRow& r) {
    n += sizeof(CellRow) + sizeof(std::atomic<CellChunk*>) * dir_size_;
    for (std::uint32_t k = 0; k < dir_size_; ++k) {
      if (r.dir[k].load(std::memory_order_relaxed) != nullptr)
        n += sizeof(CellChunk);  // statistics only
    }
  });
  return n;
}

}  // namespace paygo::detail
