// Sloppy counter slow paths: refill, give-back, freeze, query.
//
// Why query() (central loaded FIRST, spares AFTER) never underestimates
// ---------------------------------------------------------------------
// Let C be the word's count and S_i slot i's spares for the current
// generation (stale cells count 0). The true count is T = C - sum S_i. The
// reclaimer computes V = C(r0) - sum S_i(r_i): C loaded at r0 (acquire)
// after its own FROZEN CAS and heavy_fence(), each S_i loaded later (acquire).
// Every operation changes C and S in a fixed order; compare V with T counted
// over the gets that succeed and the puts that have completed:
//  (a) get from a spare: S_i -= 1 (relaxed), light_fence(), re-check word.
//      If the getter did not see FROZEN, the Dekker pair with heavy_fence()
//      makes r_i see the decrement (or a later value): counted. If it saw
//      FROZEN, the get fails and its back-off in get_untallied() undoes it
//      (S_i += 1: the spare put back, relaxed); r_i seeing the decrement but
//      not the back-off overestimates by one.
//  (b) refill: C += kRefill (a CAS that refuses FROZEN, so it precedes the
//      freeze CAS in C's modification order and r0, which follows the freeze
//      in this thread, includes it), then S_i += kRefill - 1. r_i missing
//      the spares overestimates by kRefill - 1; it cannot see the spares
//      without C already including them.
//  (c) put: S_i += 1 (release). r_i missing it overestimates by one (the
//      put is simply not counted yet).
//  (e) give-back: S_i := keep (release store) FIRST, THEN C -= e (release
//      fetch_sub), with e = spares + 1 - keep. If r0 sees the fetch_sub (or
//      any later value: every later write to C is an RMW, which continues
//      the release sequence), r0 synchronises with it, so the spare store
//      happens before r_i and r_i sees it: exact. If r0 misses the
//      fetch_sub, C(r0) is e too high while S_i(r_i) is at most e - 1 too
//      low (old spares, or the new ones): an overestimate of at least one.
//  Stale cells: a refill/put that overwrites a stale cell adds at most the
//  new spares, covered by (b); reset() needs the object dead (T = 0).
// So every missed or reordered write can only make V larger than T, never
// smaller: V == 0 while frozen proves no reference is held, and a V read
// with nothing in flight is exact. Reading the spares first would break
// (e): spares read before the store, C after the fetch_sub, undercount.
#include "paygo/baselines/sloppy.hpp"

namespace paygo::baselines {

Sloppy::Token Sloppy::refill(Object& o, detail::Cell& c, std::uint64_t v) noexcept {
  std::uint64_t w = o.word_.load(std::memory_order_relaxed);
  do {
    if (w & detail::kFrozen) return {};
    // Acquire: pairs with the release in central_reset()/unfreeze(), as in
    // central_tryget(); refuses FROZEN, so it precedes any freeze (see (b)).
  } while (!o.word_.compare_exchange_weak(w, w + kRefill, std::memory_order_acquire,
                                          std::memory_order_relaxed));
  // The new spares belong to the generation the CAS saw; a stale cell's old
  // spares are dropped (they were counted in a dead incarnation's word).
  std::uint64_t spares = kRefill - 1;
  if (((v ^ w) & detail::kGenMask) == 0) spares += v & detail::kCountMask;
  // Relaxed: see (b) above; a query that sees these spares already sees the
  // CAS through the freeze it made, one that misses them overestimates.
  c.store(static_cast<std::int64_t>((w & detail::kGenMask) | spares), std::memory_order_relaxed);
  return Token(&o, false);
}

void Sloppy::put_slow(Object& o, detail::Cell& c, std::uint64_t v, std::uint64_t w) noexcept {
  if (((v ^ w) & detail::kGenMask) != 0) {
    detail::central_put(o.word_);  // stale cell: not worth reviving for one spare
    return;
  }
  const std::uint64_t give = (v & detail::kCountMask) + 1 - kSpareKeep;
  // Spares FIRST (release: pairs with the acquire spare loads in query(),
  // see (e)), THEN the central count.
  const auto spares = static_cast<std::int64_t>((v & detail::kGenMask) | kSpareKeep);
  c.store(spares, std::memory_order_release);
  // Release: pairs with the acquire word load in query() and the acquire
  // freeze CAS, so the spare store above and this holder's use of the object
  // happen before them.
  o.word_.fetch_sub(give, std::memory_order_release);
}

bool Sloppy::try_freeze(Object& o) noexcept {
  std::uint64_t w = o.word_.load(std::memory_order_relaxed);
  do {
    if (w & detail::kFrozen) return false;  // frozen or dead: someone else decides
    // Acquire: pairs with the release fetch_subs of central puts and
    // give-backs. The count is not required to be 0: it includes spares.
  } while (!o.word_.compare_exchange_weak(w, w | detail::kFrozen, std::memory_order_acquire,
                                          std::memory_order_relaxed));
  heavy_fence();  // pairs with light_fence() in get()
  return true;
}

std::int64_t Sloppy::query(const Object& o) const noexcept {
  // Central FIRST. Acquire: pairs with the release fetch_sub in put_slow()
  // and central_put() (see (e) in the comment at the top).
  const std::uint64_t w = o.word_.load(std::memory_order_acquire);
  std::int64_t spares = 0;
  cells_.for_each_cell(o.id_, [&](const detail::Cell& c) {
    // Spares AFTER. Acquire: pairs with the release spare stores of puts.
    const auto v = static_cast<std::uint64_t>(c.load(std::memory_order_acquire));
    if (((v ^ w) & detail::kGenMask) == 0)
      spares += static_cast<std::int64_t>(v & detail::kCountMask);
  });
  return static_cast<std::int64_t>(w & detail::kCountMask) - spares;
}

}  // namespace paygo::baselines
