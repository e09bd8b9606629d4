// paygo/counter.hpp — the one interface every reference counter satisfies.
//
// Contract
// --------
// A counter `C` counts references to objects that embed a `C::Object`
// header. The object's owner holds an implicit *base* reference for as long
// as the object is live; everything below counts references beyond it.
//
//   C::Token t = c.get(obj);   // take a reference; `!t` if obj is frozen/dead
//   t.reset();                 // release it (the put); also on destruction
//   c.put(std::move(t));       // the same, spelled out
//
// A token is move-only and remembers where its count went (a per-slot entry,
// a per-slot cell, or the central word), so a put is O(1) from any thread.
//
// Exact zero detection is the reclaimer's job, never the put's (that is what
// lets the fast paths avoid shared writes):
//
//   c.try_freeze(obj)   stop new gets: succeeds only if no central reference
//                       is held and nobody else froze it; after it returns
//                       true, every get either fails or is counted by query.
//                       (Sloppy and PercpuRef freeze whatever is held: their
//                       query counts central references too.)
//   c.query(obj)        references held, exact while frozen (see kExact).
//   c.unfreeze(obj)     let gets in again.
//   c.try_reclaim(obj)  freeze + query; at zero the object becomes dead (it
//                       stays frozen, the counter forgets it) and true is
//                       returned — to exactly one caller; otherwise it
//                       unfreezes and returns false ("busy").
//                       Counters with a *delayed zero* (Refcache) confirm
//                       a zero only on a later call: reclaim_calls<C> says
//                       how many calls an idle object at zero needs (1 for
//                       all others); the earlier ones return false.
//   c.reclaim_batch(objs, dead)  the same for many objects; counters that
//                       can share one heavy fence and one scan do so.
//   c.reset(obj)        revive a dead object as a new incarnation.
//   c.approx(obj)       a racy estimate, safe any time (statistics).
//   c.set_distributed(obj, on)  mode hint: distributed counts for new gets
//                       (a hot object) or the central count (a cold one);
//                       counters without modes ignore it. A self-tuning
//                       counter (Paygo) takes it as a pin: it stops
//                       choosing the mode by itself until set_mode(obj,
//                       Mode::Auto).
//
// Memory ordering: everything a holder did with the object before its put
// happens before a try_reclaim() that returns true for it; everything an
// owner did before reset() happens before any get() of the new incarnation
// that succeeds. docs/memory-ordering.md pairs every fence and release.
//
// Each counter names itself (`kName`), says whether it counts at all
// (`kCounts`: false only for `noop`, the no-counting upper bound) and
// whether query() is exact while frozen (`kExact`).
//
// Preconditions (the caller's side of the contract; breaking one is
// undefined behaviour, as with a use after free):
//   1. A token must not outlive its counter, nor an Object its counter:
//      put every token (reset or destroy it) before the counter dies.
//   2. reset(obj) only of a dead object (after try_reclaim() returned true
//      for it), by its owner, with no get racing on the old incarnation's
//      behalf that the owner has not accounted for (gets of a dead object
//      fail, so racing gets are harmless; a token cannot exist).
//   3. unfreeze(obj) only to undo a try_freeze(obj) that returned true,
//      once, and never on a dead object.
//   4. Count limits: at most 2^32 - 1 references held on one object at once
//      (the central count is 32 bits; that many tokens would need 64 GiB).
//      Per-slot counts saturate and fall back to the central count by
//      themselves (Paygo: local_limit; Sloppy: kSpareMax), so they are not
//      the caller's concern.
// Debug builds (NDEBUG not defined, as for assert) check 1 (the token part:
// no token live when its counter is destroyed, not for noop, which counts
// nothing), 2 (reset() only of a dead object) and 3, and abort with a
// message naming the counter. Release builds compile the checks out
// (detail/contract.hpp, docs/counters.md "Debug checks"). 4 is not checked.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

namespace paygo {

template <class C>
concept RefCounter = requires {
  typename C::Object;
  typename C::Token;
  { C::kName } -> std::convertible_to<std::string_view>;
  { C::kCounts } -> std::convertible_to<bool>;
  { C::kExact } -> std::convertible_to<bool>;
}
&&std::movable<typename C::Token> && !std::copyable<typename C::Token> &&
    std::default_initializable<typename C::Token> &&
    std::constructible_from<typename C::Object, C&> &&
    requires(C & c, typename C::Object& o, const typename C::Object& co, typename C::Token t,
             std::span<typename C::Object* const> objs, std::span<bool> dead) {
  { c.get(o) } -> std::same_as<typename C::Token>;
  { static_cast<bool>(t) }
  noexcept;
  { t.reset() }
  noexcept;
  { c.put(std::move(t)) }
  noexcept;
  { c.try_freeze(o) } -> std::same_as<bool>;
  { c.query(co) } -> std::same_as<std::int64_t>;
  {c.unfreeze(o)};
  { c.try_reclaim(o) } -> std::same_as<bool>;
  { c.reclaim_batch(objs, dead) } -> std::same_as<std::size_t>;
  {c.reset(o)};
  { c.approx(co) } -> std::same_as<std::int64_t>;
  {c.set_distributed(o, true)};
};

/// How a self-tuning counter (Paygo) chooses the path of new gets on an
/// object: set_mode(obj, m). set_distributed(obj, on) is the pinned form.
enum class Mode : std::uint8_t {
  Auto,         ///< self-tuning (the default): central until contended
  Distributed,  ///< pinned distributed (the hot-section hint)
  Central,      ///< pinned central
};

/// Counts of a self-tuning counter's machinery (tune_stats(); relaxed
/// snapshots, statistics).
struct TuneStats {
  std::uint64_t promotions = 0;         ///< automatic objects made distributed
  std::uint64_t demotions = 0;          ///< ... and taken back to central by sweep()
  std::uint64_t central_fallbacks = 0;  ///< gets of a distributed object that went central
  std::uint64_t sweeps = 0;             ///< sweep() calls
  /// steady_clock time of the first promotion (ns since its epoch), 0: none.
  std::int64_t first_promotion_ns = 0;
};

/// try_reclaim() calls an idle, unreferenced object needs before one returns
/// true: C::kReclaimCalls where a counter declares it (a delayed zero), else 1.
template <class C>
inline constexpr int reclaim_calls = [] {
  if constexpr (requires { C::kReclaimCalls; }) {
    return static_cast<int>(C::kReclaimCalls);
  } else {
    return 1;
  }
}();

namespace detail {
/// reclaim_batch() for counters with nothing to share between objects.
template <class C>
std::size_t reclaim_each(C& c, std::span<typename C::Object* const> objs, std::span<bool> dead) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < objs.size(); ++i) {
    dead[i] = c.try_reclaim(*objs[i]);
    n += dead[i] ? 1 : 0;
  }
  return n;
}
}  // namespace detail

}  // namespace paygo
