// PercpuRef slow paths: kill (switch to atomic), grace period, resurrect.
//
// Why the fold is exact. A get/put in percpu mode does
//     seq := odd (release); light_fence(); load word; [cell +-= 1]; seq := even (release)
// and the killer does
//     word |= FROZEN; heavy_fence(); for each slot: wait while seq is the odd
//     value it read (acquire loads); then sum the cells.
// Dekker: for each critical section, either its word load sees FROZEN (it
// then writes no cell) or the killer's seq load sees its odd store or a
// later one (every seq store is a release, so reading any later value
// synchronises with everything the owner did before it). The killer waits
// until the value changes, i.e. until that section has exited, so its cell
// write happens before the killer's cell loads. Sections that start later
// see FROZEN. Hence after wait_for_readers() no cell changes until the
// object is resurrected, and the sum read is the cells' final value.
#include "paygo/baselines/percpu_ref.hpp"

#include <thread>

namespace paygo::baselines {

PercpuRef::Token PercpuRef::get_atomic(Object& o) noexcept {
  // Relaxed: ordered before the mode check by the light fence.
  o.atomic_.fetch_add(1, std::memory_order_relaxed);
  light_fence();  // pairs with heavy_fence() in try_freeze()
  // Acquire: pairs with the release in unfreeze()/reset(), as in get().
  if (o.word_.load(std::memory_order_acquire) & detail::kFrozen) {
    // Killed: back off. A query that saw the increment overcounts by one,
    // which only makes that reclaim busy. Relaxed: nothing to publish.
    o.atomic_.fetch_sub(1, std::memory_order_relaxed);
    return {};
  }
  return Token(&o, true);
}

void PercpuRef::wait_for_readers() const noexcept {
  cells_.for_each_row([](const detail::CellRow& r) {
    // Acquire: pairs with the release enter/exit stores in get()/put_percpu().
    const std::uint64_t s = r.seq.load(std::memory_order_acquire);
    if ((s & 1) == 0) return;
    while (r.seq.load(std::memory_order_acquire) == s) std::this_thread::yield();  // as above
  });
}

std::int64_t PercpuRef::sum_cells(const Object& o) const noexcept {
  std::int64_t sum = 0;
  // Relaxed: after wait_for_readers() the cells are published by the seq
  // acquire loads; in approx() a racy value is all that is promised.
  cells_.for_each_cell(o.id_,
                       [&](const detail::Cell& c) { sum += c.load(std::memory_order_relaxed); });
  return sum;
}

bool PercpuRef::try_freeze(Object& o) noexcept {
  std::uint64_t w = o.word_.load(std::memory_order_relaxed);
  do {
    if (w & detail::kFrozen) return false;  // already killed (or dead)
    // Relaxed: the ordering with readers is heavy_fence() below (Dekker with
    // their light fences) and the acquire seq loads in wait_for_readers().
  } while (!o.word_.compare_exchange_weak(w, w | detail::kFrozen, std::memory_order_relaxed,
                                          std::memory_order_relaxed));
  heavy_fence();  // pairs with light_fence() in get()/put_percpu()/get_atomic()
  wait_for_readers();
  const std::int64_t sum = sum_cells(o);
  o.folded_.store(sum, std::memory_order_relaxed);  // see Object::folded_
  // Relaxed: read by query() in this thread or one the caller synchronised
  // with; an RMW, so puts' release sequences on the atomic continue through it.
  o.atomic_.fetch_add(sum, std::memory_order_relaxed);
  return true;
}

void PercpuRef::unfreeze(Object& o) noexcept {
  detail::check_unfreeze(kName, o.word_);
  // Relaxed: cells start changing again only after the release below.
  o.atomic_.fetch_sub(o.folded_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  o.folded_.store(0, std::memory_order_relaxed);  // see Object::folded_
  detail::central_unfreeze(o.word_);              // release: pairs with the acquire in get()
}

void PercpuRef::reset(Object& o) noexcept {
  detail::check_reset(kName, o.word_, [&] { return approx(o); });
  // Dead: atomic == 0 and the cells hold `folded`. Unfold, so that the new
  // incarnation starts at 0 again, then switch to percpu mode.
  o.atomic_.fetch_sub(o.folded_.load(std::memory_order_relaxed),
                      std::memory_order_relaxed);  // as in unfreeze()
  o.folded_.store(0, std::memory_order_relaxed);
  detail::central_reset(o.word_);  // release: pairs with the acquire in get()
}

std::int64_t PercpuRef::approx(const Object& o) const noexcept {
  // Relaxed: a racy estimate by contract.
  if (o.word_.load(std::memory_order_relaxed) & detail::kFrozen) return query(o);
  return query(o) + sum_cells(o);
}

}  // namespace paygo::baselines
