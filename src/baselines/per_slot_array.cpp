// PerSlotArray slow paths: freeze, query, reclaim.
#include "paygo/baselines/per_slot_array.hpp"

namespace paygo::baselines {

std::int64_t PerSlotArray::sum(const Object& o) const noexcept {
  // Acquire: pairs with the release fetch_sub of slotless puts.
  std::int64_t s = o.remote_.load(std::memory_order_acquire);
  // Acquire: pairs with the release store of puts in Token::reset(). A get's
  // relaxed increment is ordered by light_fence()/heavy_fence() instead:
  // either the getter sees FROZEN and backs off, or this load sees it.
  cells_.for_each_cell(o.id_,
                       [&](const detail::Cell& c) { s += c.load(std::memory_order_acquire); });
  return s;
}

std::int64_t PerSlotArray::query(const Object& o) const noexcept {
  // Acquire: pairs with central_put()'s release.
  const auto central =
      static_cast<std::int64_t>(o.word_.load(std::memory_order_acquire) & detail::kCountMask);
  return central + sum(o);
}

}  // namespace paygo::baselines
