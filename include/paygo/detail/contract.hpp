// paygo/detail/contract.hpp — debug checks for misuse of a counter's contract.
//
// Contract
// --------
// Active where assert() is (NDEBUG not defined), compiled out otherwise:
// every check is under `if constexpr (kDebugChecks)`, so a release build has
// no extra instruction on any path. A violation prints one line naming the
// counter and the misuse to stderr and aborts:
//
//   paygo: contract violation: <counter>: <what>
//
// The checks (docs/counters.md, "Debug checks"):
//   reset()      the object must be dead (try_reclaim() returned true for it,
//                or reclaim_batch() marked it dead) — not live, not merely
//                frozen, not reset twice;
//   unfreeze()   the object must be frozen (by the caller's try_freeze()) and
//                not dead (a dead object is revived by reset());
//   ~Counter()   no token it handed out may still be live.
//
// Layouts never depend on NDEBUG (the token tally below exists in every
// build, it is only never touched in release), so the library and the code
// using it may be built with and without NDEBUG. The tally is kept by the
// inline get()/put() of the headers alone; every translation unit of one
// program that uses a counter must agree on NDEBUG, as for any inline code.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <type_traits>

#include "paygo/config.hpp"
#include "paygo/detail/word.hpp"

namespace paygo::detail {

#ifdef NDEBUG
inline constexpr bool kDebugChecks = false;
#else
inline constexpr bool kDebugChecks = true;
#endif

/// Prints "paygo: contract violation: <counter>: <what>" and aborts.
[[noreturn]] PAYGO_COLD inline void contract_failure(std::string_view counter,
                                                     const char* what) noexcept {
  std::fprintf(stderr, "paygo: contract violation: %.*s: %s\n", static_cast<int>(counter.size()),
               counter.data(), what);
  std::fflush(stderr);
  std::abort();
}

/// The same with a count appended: "...: <what> (<n>)".
[[noreturn]] PAYGO_COLD inline void contract_failure(std::string_view counter, const char* what,
                                                     std::int64_t n) noexcept {
  std::fprintf(stderr, "paygo: contract violation: %.*s: %s (%lld)\n",
               static_cast<int>(counter.size()), counter.data(), what, static_cast<long long>(n));
  std::fflush(stderr);
  std::abort();
}

/// reset(obj): the object must be dead. `held()` is the counter's estimate
/// of the references held, asked only on a violation (nullptr: the counter
/// counts nothing). Relaxed: the owner resets an object it alone holds
/// (dead), and only a kill sets DEAD.
template <class Held>
PAYGO_INLINE void check_reset(std::string_view counter, const std::atomic<std::uint64_t>& word,
                              Held held) noexcept {
  if constexpr (kDebugChecks) {
    const std::uint64_t w = word.load(std::memory_order_relaxed);
    if ((w & kDead) != 0) [[likely]]
      return;
    if (w & kFrozen) {
      contract_failure(counter,
                       "reset() of a frozen object that is not dead: a freeze is not a reclaim "
                       "(unfreeze() it, or reset() only after try_reclaim() returned true)");
    }
    if constexpr (std::is_null_pointer_v<Held>) {
      contract_failure(counter,
                       "reset() of a live object: it is not dead (try_reclaim() has not returned "
                       "true for it since it was constructed or last reset)");
    } else {
      contract_failure(counter,
                       "reset() of a live object: it is not dead (try_reclaim() has not returned "
                       "true for it since it was constructed or last reset); references held",
                       held());
    }
  }
}

/// unfreeze(obj): the object must be frozen and not dead. Relaxed: only the
/// caller that froze the object changes FROZEN and DEAD.
PAYGO_INLINE void check_unfreeze(std::string_view counter,
                                 const std::atomic<std::uint64_t>& word) noexcept {
  if constexpr (kDebugChecks) {
    const std::uint64_t w = word.load(std::memory_order_relaxed);
    if ((w & (kFrozen | kDead)) == kFrozen) [[likely]]
      return;
    if (w & kDead) {
      contract_failure(counter,
                       "unfreeze() of a dead object: try_reclaim() returned true for it, only "
                       "reset() revives it");
    }
    contract_failure(counter,
                     "unfreeze() of an object that is not frozen (unfreeze() undoes a "
                     "try_freeze() that returned true, once)");
  }
}

/// The word-based counters' unfreeze(): checked, then central_unfreeze()
/// (release: pairs with the acquire of readers' central_tryget()).
PAYGO_INLINE void checked_unfreeze(std::string_view counter,
                                   std::atomic<std::uint64_t>& word) noexcept {
  check_unfreeze(counter, word);
  central_unfreeze(word);
}

/// The word-based counters' reset(): checked (`held` as in check_reset()),
/// then central_reset() (release: pairs with the acquire of the next get).
template <class Held>
PAYGO_INLINE void checked_reset(std::string_view counter, std::atomic<std::uint64_t>& word,
                                Held held) noexcept {
  check_reset(counter, word, held);
  central_reset(word);
}

/// The debug count of one counter instance's live tokens: got() where a
/// get hands out a token, put() in the token's release BEFORE the store or
/// RMW that publishes the put, check() in the counter's destructor. Relaxed:
/// the count is compared with zero only when the counter is destroyed, and
/// every put happens before that (the lifetime rule: usually through the
/// reclaim that saw the put's release, which is sequenced after put()
/// here; putting the tally after the release would let the owner destroy
/// the counter in between). In release builds the member is still there (8
/// bytes per counter, never per object) and nothing touches it.
class TokenTally {
 public:
  PAYGO_INLINE void got() noexcept {
    if constexpr (kDebugChecks) n_.fetch_add(1, std::memory_order_relaxed);
  }
  PAYGO_INLINE void put() noexcept {
    if constexpr (kDebugChecks) n_.fetch_sub(1, std::memory_order_relaxed);
  }
  /// A counter's get(): the token `get_untallied()` returns, counted when
  /// it holds a reference (debug builds; in release builds just the call).
  template <class Get>
  PAYGO_INLINE auto counted(Get&& get_untallied) noexcept {
    if constexpr (kDebugChecks) {
      auto t = get_untallied();
      if (t) got();
      return t;
    } else {
      return get_untallied();
    }
  }
  std::int64_t live() const noexcept { return n_.load(std::memory_order_relaxed); }
  /// The destructor's check; `more` adds tokens counted elsewhere (Paygo's
  /// distributed tokens, found in its tables).
  void check(std::string_view counter, std::int64_t more = 0) const noexcept {
    if constexpr (kDebugChecks) {
      if (const std::int64_t n = live() + more; n != 0) [[unlikely]] {
        contract_failure(counter,
                         "counter destroyed while tokens it handed out are still live "
                         "(every token must be put before its counter is destroyed); live tokens",
                         n);
      }
    }
  }

 private:
  std::atomic<std::int64_t> n_{0};
};

}  // namespace paygo::detail
