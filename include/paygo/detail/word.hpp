// paygo/detail/word.hpp — the one-word object header shared by the counters.
//
// Layout of the 64-bit word (one load picks the path, as percpu_ref keeps
// its mode in pointer bits):
//   bits  0..31  central count: references taken on the shared atomic
//   bit     32   FROZEN       : a reclaimer is deciding; new gets fail
//   bit     33   DISTRIBUTED  : new gets should use per-slot counts (a hint)
//   bit     34   DEAD         : reclaimed; only reset() revives it
//   bit     35   PINNED       : the mode was set by a hint (set_distributed);
//                               without it a self-tuning counter (Paygo) may
//                               switch DISTRIBUTED by itself
//   bits 40..63  generation   : bumped by reset(), so a reader can tell that
//                               the object was reclaimed and reused under it
// The central count cannot overflow in practice: 2^32 live tokens would need
// 64 GiB of tokens alone.
#pragma once

#include <atomic>
#include <cstdint>

#include "paygo/config.hpp"

namespace paygo::detail {

inline constexpr std::uint64_t kCountMask = 0xffff'ffffULL;
inline constexpr std::uint64_t kFrozen = 1ULL << 32;
inline constexpr std::uint64_t kDistributed = 1ULL << 33;
inline constexpr std::uint64_t kDead = 1ULL << 34;
inline constexpr std::uint64_t kPinned = 1ULL << 35;
inline constexpr unsigned kGenShift = 40;
inline constexpr std::uint64_t kGenOne = 1ULL << kGenShift;
inline constexpr std::uint64_t kGenMask = ~((1ULL << kGenShift) - 1);

/// Central get, the way Linux's folio_try_get_rcu() does it: a CAS loop that
/// refuses a frozen object, so a failed get never writes the word (a plain
/// fetch_add + undo could land on an object already reclaimed and reused).
/// Acquire: pairs with the release in reset()/unfreeze(), so whatever the
/// owner set up before reviving the object is visible to the new holder.
PAYGO_INLINE bool central_tryget(std::atomic<std::uint64_t>& word) noexcept {
  std::uint64_t w = word.load(std::memory_order_relaxed);
  do {
    if (w & kFrozen) [[unlikely]]
      return false;
  } while (
      !word.compare_exchange_weak(w, w + 1, std::memory_order_acquire, std::memory_order_relaxed));
  return true;
}

/// Central put. Release: pairs with the acquire CAS in central_tryfreeze(),
/// so everything the holder did with the object happens before the reclaim.
PAYGO_INLINE void central_put(std::atomic<std::uint64_t>& word) noexcept {
  word.fetch_sub(1, std::memory_order_release);
}

/// Freeze if no central reference is held and nobody else froze it.
/// Acquire on success: pairs with central_put()'s release (see above).
inline bool central_tryfreeze(std::atomic<std::uint64_t>& word) noexcept {
  std::uint64_t w = word.load(std::memory_order_relaxed);
  if ((w & (kFrozen | kCountMask)) != 0) return false;
  return word.compare_exchange_strong(w, w | kFrozen, std::memory_order_acquire,
                                      std::memory_order_relaxed);
}

/// Unfreeze. Release: pairs with the acquire of readers' central_tryget() and
/// the reader's word load in distributed gets.
inline void central_unfreeze(std::atomic<std::uint64_t>& word) noexcept {
  word.fetch_and(~kFrozen, std::memory_order_release);
}

/// Mark a frozen object dead (it stays frozen). Relaxed: only the reclaimer
/// that froze it writes the word now; the caller publishes by other means.
inline void central_kill(std::atomic<std::uint64_t>& word) noexcept {
  word.fetch_or(kDead, std::memory_order_relaxed);
}

/// Revive a dead object as a new incarnation: count 0, not frozen, next
/// generation, mode bits (DISTRIBUTED, PINNED) kept. Release: pairs with the acquire word load at
/// the start of every get, so a reader that sees the new generation also sees
/// everything done before the reset (in Paygo: the group-mask reset).
inline void central_reset(std::atomic<std::uint64_t>& word) noexcept {
  const std::uint64_t w = word.load(std::memory_order_relaxed);
  word.store(((w & kGenMask) + kGenOne) | (w & (kDistributed | kPinned)),
             std::memory_order_release);
}

/// The hint: pin the mode distributed or central (PINNED set, so a
/// self-tuning counter leaves it alone).
inline void set_mode(std::atomic<std::uint64_t>& word, bool distributed) noexcept {
  // Relaxed: the mode is a hint for new gets; every query counts both paths.
  if (distributed) {
    word.fetch_or(kDistributed | kPinned, std::memory_order_relaxed);
  } else {
    // Pin first: a self-tuning promotion (a CAS that refuses PINNED) that
    // landed between the two would otherwise set DISTRIBUTED again.
    word.fetch_or(kPinned, std::memory_order_relaxed);
    word.fetch_and(~kDistributed, std::memory_order_relaxed);
  }
}

}  // namespace paygo::detail
