// Asymmetric fences: membarrier(2) registration and the heavy side.
#include "paygo/fence.hpp"

#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace paygo {
namespace detail {
std::atomic<bool> g_membarrier_ready{false};
std::atomic<unsigned> g_tsan_fence{0};
}  // namespace detail

namespace {
long membarrier(int cmd, unsigned flags) {
  return ::syscall(__NR_membarrier, cmd, flags, 0);
}

bool register_membarrier() noexcept {
  if (PAYGO_TSAN) return false;
  if (const char* env = std::getenv("PAYGO_NO_MEMBARRIER"); env && std::strcmp(env, "0") != 0) {
    return false;
  }
  const long mask = membarrier(MEMBARRIER_CMD_QUERY, 0);
  if (mask < 0 || (mask & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
  return membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0) == 0;
}
}  // namespace

bool init_asymmetric_fences() noexcept {
  // Function-local static: registered exactly once, thread-safe.
  static const bool ready = [] {
    const bool ok = register_membarrier();
    // Relaxed: readers that miss the update use a real fence (stronger).
    detail::g_membarrier_ready.store(ok, std::memory_order_relaxed);
    return ok;
  }();
  return ready;
}

void heavy_fence() noexcept {
  if (membarrier_in_use()) {
    // Pairs with light_fence() in every running thread of this process: the
    // kernel makes each of them execute a full barrier before returning.
    if (membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0) == 0) return;
    // The only documented failures are "not registered" and "not supported",
    // both excluded by init_asymmetric_fences(). Readers may be relying on a
    // compiler barrier alone, so no fallback here would be correct: stop.
    std::abort();
  }
  detail::full_fence();
}

}  // namespace paygo
