// paygo/detail/wake.hpp — store a value and wake the std::atomic::wait()ers
// of that atomic, without the lost wake-up of libstdc++ 12.
#pragma once

#include <atomic>
#include <type_traits>

namespace paygo::detail {

/// a.store(v) then a.notify_all(), with a seq_cst fence between them.
///
/// Why the fence: libstdc++ 12's notify_all() skips the futex wake when a
/// plain load of its waiter count reads 0, and on x86 that load may complete
/// while our store still sits in the store buffer. A waiter that registers
/// (a seq_cst increment of the count) and reads the old value in that window
/// then sleeps on the futex with nobody left to wake it. The standard says
/// such a waiter must be unblocked (the store happens before the notify), so
/// this is a library bug; it hung paygo-bench query three times in some
/// twenty 1 GiB runs, and a bare store + notify_all hand-off loop (the
/// disabled test in tests/unit/wake_test.cpp) hangs now and then. The
/// fence orders our store before that load, so either the notifier sees the
/// waiter registered (and wakes it) or the waiter, whose increment is a
/// full barrier, reads the new value.
///
/// Release store: pairs with the waiters' acquire loads of `a`.
template <class T>
inline void store_and_wake_all(std::atomic<T>& a, std::type_identity_t<T> v) noexcept {
  a.store(v, std::memory_order_release);
  std::atomic_thread_fence(std::memory_order_seq_cst);  // pairs with the waiter's count increment
  a.notify_all();
}

}  // namespace paygo::detail
