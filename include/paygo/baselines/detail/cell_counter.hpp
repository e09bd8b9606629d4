// paygo/baselines/detail/cell_counter.hpp — internal: what the counters
// built on detail::SlotCells (PerSlotArray, Sloppy, PercpuRef) share, and
// the re-check of every distributed get that takes its count in a per-slot
// cell or entry (those three and Refcache). Included by their headers; never
// include it yourself.
#pragma once

#include <atomic>
#include <concepts>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "paygo/baselines/detail/slot_cells.hpp"
#include "paygo/config.hpp"
#include "paygo/counter.hpp"
#include "paygo/detail/contract.hpp"
#include "paygo/detail/token.hpp"
#include "paygo/detail/word.hpp"
#include "paygo/fence.hpp"

namespace paygo::detail {

/// The part of a SlotCells counter's Object that the counter's shared
/// members (CellCounter) use: the word (detail/word.hpp layout), the cells
/// and the dense id allocated from them (returned when the object dies).
/// Each counter's Object derives from it and adds its own fields.
class CellObject {
 public:
  CellObject(const CellObject&) = delete;
  CellObject& operator=(const CellObject&) = delete;

 protected:
  explicit CellObject(SlotCells& cells) noexcept : cells_(&cells), id_(cells.allocate_id()) {}
  ~CellObject() { cells_->release_id(id_); }
  template <class D>
  friend class CellCounter;

  std::atomic<std::uint64_t> word_{0};
  SlotCells* cells_;
  std::uint32_t id_;
};

/// D's Object and Token, named only when a member template of
/// CellCounter<D> is used: D is complete by then, and the extra parameter X
/// (the template's own) keeps the name dependent, so that no compiler looks
/// it up while D is still incomplete (clang 14 checks requires-clauses of
/// member templates when the class is instantiated, g++ 12 does not).
template <class D, class X>
struct Lazy {
  using Object = typename D::Object;
  using Token = typename D::Token;
};

/// A distributed get's re-check, after its relaxed store to its own cell:
/// the light fence (pairs with heavy_fence() in try_freeze(): either the
/// reclaimer's scan sees the store, or this load sees FROZEN), then the
/// word again. True if the object is still the incarnation `w0` was read
/// from and not frozen: the get holds its reference; false: the caller
/// undoes its store and fails. `order`: relaxed, or acquire where the
/// caller must also see what a reclaimer recorded before unfreezing
/// (Refcache's review: pairs with the release in central_unfreeze()).
PAYGO_INLINE bool still_current(const std::atomic<std::uint64_t>& word, std::uint64_t w0,
                                std::memory_order order = std::memory_order_relaxed) noexcept {
  light_fence();
  const std::uint64_t w1 = word.load(order);
  return ((w1 ^ w0) & kGenMask) == 0 && (w1 & kFrozen) == 0;
}

/// The members that PerSlotArray, Sloppy and PercpuRef (D) would otherwise
/// each spell out: the cells, the debug token tally around D::get_untallied,
/// put, table_bytes, the destructor's token check, try_reclaim as freeze →
/// D::remaining() → kill or unfreeze, and the word's unfreeze, reset, hint
/// and approx = query (PercpuRef defines its own, which hide these). D
/// befriends this class.
template <class D>
class CellCounter {
 public:
  static constexpr bool kCounts = true;
  static constexpr bool kExact = true;  // PercpuRef: after a kill
  using Options = baselines::SlotCellsOptions;

  explicit CellCounter(baselines::SlotCellsOptions options = {}) : cells_(options) {}
  ~CellCounter() { cells_.tokens().check(D::kName); }
  CellCounter(const CellCounter&) = delete;
  CellCounter& operator=(const CellCounter&) = delete;

  // Templates only so that D is complete where they are used (D derives
  // from this class); each accepts exactly D's own type.
  template <class O>
  requires std::same_as<O, typename Lazy<D, O>::Object> PAYGO_INLINE auto get(O& o) noexcept {
    return cells_.tokens().counted([&] { return self().get_untallied(o); });
  }
  template <class T>
  requires std::same_as<T, typename Lazy<D, T>::Token>  // an rvalue: T is not a reference
  void put(T&& t) noexcept { t.reset(); }
  /// Freeze, then free the object if nothing is left counted where the
  /// freeze cannot see it (D::remaining(): the cells, or the whole query).
  template <class O>
  requires std::same_as<O, typename Lazy<D, O>::Object>
  bool try_reclaim(O& o) noexcept {
    if (!self().try_freeze(o)) return false;  // busy (or already dead)
    if (self().remaining(o) != 0) {
      self().unfreeze(o);
      return false;
    }
    central_kill(o.word_);
    return true;
  }
  template <class O>
  requires std::same_as<O, typename Lazy<D, O>::Object>
  void unfreeze(O& o) noexcept { checked_unfreeze(D::kName, o.word_); }
  template <class O>
  requires std::same_as<O, typename Lazy<D, O>::Object>
  void reset(O& o) noexcept {
    checked_reset(D::kName, o.word_, [&] { return self().approx(o); });
  }
  template <class O>
  requires std::same_as<O, typename Lazy<D, O>::Object> std::int64_t approx(const O& o)
  const noexcept { return static_cast<const D&>(*this).query(o); }
  /// The hint: pin the object distributed (on) or central (off).
  template <class O>
  requires std::same_as<O, typename Lazy<D, O>::Object>
  void set_distributed(O& o, bool on) noexcept { set_mode(o.word_, on); }
  /// No heavy fence or scan to share between objects: one try_reclaim each.
  template <class X = void>
  std::size_t reclaim_batch(std::span<typename Lazy<D, X>::Object* const> objs,
                            std::span<bool> dead) {
    return reclaim_each(self(), objs, dead);
  }
  /// Bytes held by the per-slot rows and chunks.
  std::size_t table_bytes() const noexcept { return cells_.bytes(); }
  SlotCells& cells() noexcept { return cells_; }

 protected:
  /// The calling thread's cell for dense id `id`; nullptr without a slot
  /// or an id (the caller takes its central path).
  PAYGO_INLINE static Cell* own_cell(SlotCells& cells, std::uint32_t id) noexcept {
    Slot* slot = cells.domain().current();
    return slot != nullptr ? cells.own(*slot, id) : nullptr;
  }

  /// The get of a counter whose distributed path counts in the caller's
  /// own cell (PerSlotArray, Sloppy; PercpuRef's own hides it): the word
  /// (acquire: pairs with the release in central_reset()/
  /// central_unfreeze()); a frozen object fails; a central one, or a thread
  /// without a cell, takes D::get_central(o); the rest D::get_cell(o, cell,
  /// w0), which must end with still_current(o.word_, w0).
  template <class O>
  PAYGO_INLINE auto get_untallied(O& o) noexcept {
    const std::uint64_t w0 = o.word_.load(std::memory_order_acquire);
    if ((w0 & (kFrozen | kDistributed)) != kDistributed)
      return (w0 & kFrozen) ? typename D::Token() : D::get_central(o);
    Cell* c = own_cell(cells_, o.id_);
    if (c == nullptr) [[unlikely]]
      return D::get_central(o);
    return self().get_cell(o, *c, w0);
  }

  SlotCells cells_;

 private:
  D& self() noexcept { return static_cast<D&>(*this); }
};

}  // namespace paygo::detail
