// paygo/fence.hpp — asymmetric fences.
//
// Contract
// --------
// light_fence() and heavy_fence() pair like two std::atomic_thread_fence(
// std::memory_order_seq_cst) calls: for a reader that does
//     store A; light_fence(); load B
// and a reclaimer that does
//     store B; heavy_fence(); load A
// at least one of the two loads sees the other side's store (Dekker).
//
// With membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) available (registered
// once per process, the first time a Domain is built), light_fence() is only
// a compiler barrier and heavy_fence() is one system call that makes every
// CPU running this process execute a full barrier. Without it (old kernels,
// seccomp, PAYGO_NO_MEMBARRIER=1 in the environment) both are seq_cst
// fences. ThreadSanitizer models neither membarrier nor fences, so in TSAN
// builds both sides are an acq_rel read-modify-write of one shared atomic:
// RMWs on one location are totally ordered and each reads the previous one,
// so the later side synchronizes with the earlier one — the same Dekker
// guarantee, stated in happens-before terms TSAN can check.
//
// When not to use: if the heavy side runs as often as the light side, plain
// seq_cst fences are cheaper; membarrier costs microseconds per call and
// interrupts every CPU that runs a thread of the process.
#pragma once

#include <atomic>

#include "paygo/config.hpp"

namespace paygo {
namespace detail {
// Set once, before the first Domain is handed out (see fence.cpp), never
// cleared: a reader that still sees `false` uses a real fence, which is only
// stronger. Relaxed loads are enough for that reason.
extern std::atomic<bool> g_membarrier_ready;
/// TSAN builds only: the location both fence sides synchronize through.
extern std::atomic<unsigned> g_tsan_fence;

PAYGO_INLINE void full_fence() noexcept {
#if PAYGO_TSAN
  // acq_rel: pairs with the same RMW on the other side of the fence pair.
  g_tsan_fence.fetch_add(1, std::memory_order_acq_rel);
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}
}  // namespace detail

/// Registers membarrier once. Returns whether the expedited path is in use.
bool init_asymmetric_fences() noexcept;

/// Whether heavy_fence() uses membarrier (false under TSAN or if disabled).
inline bool membarrier_in_use() noexcept {
  return !PAYGO_TSAN && detail::g_membarrier_ready.load(std::memory_order_relaxed);
}

/*** Light fence (reader side) ***/
PAYGO_INLINE void light_fence() noexcept {
  if (membarrier_in_use()) [[likely]] {
    std::atomic_signal_fence(std::memory_order_seq_cst);  // compiler barrier only
  } else {
    detail::full_fence();
  }
}

/*** Heavy fence (reclaimer side) ***/
void heavy_fence() noexcept;

}  // namespace paygo
