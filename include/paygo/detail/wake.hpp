// paygo/detail/wake.hpp — store a value and wake the std::atomic::wait()ers
// of that atomic, without the lost wake-up of libstdc++ 12.
#pragma once

#include <atomic>
#include <type_traits>

namespace paygo::detail {

/// The store of `v` into `a` as a seq_cst exchange, then a.notify_all().
///
/// Why not a plain store: libstdc++ 12's notify_all() skips the futex wake
/// when a plain load of its waiter count reads 0, and on x86 that load may
/// complete while a plain store still sits in the store buffer. A waiter
/// that registers (a seq_cst increment of the count) and reads the old value
/// in that window then sleeps on the futex with nobody left to wake it. The
/// standard says such a waiter must be unblocked (the store happens before
/// the notify), so this is a library bug; it hung paygo-bench query three
/// times in some twenty 1 GiB runs, and a bare store + notify_all hand-off
/// loop (the disabled test in tests/unit/wake_test.cpp) hangs now and then.
///
/// The exchange is a seq_cst read-modify-write (xchg: a full barrier on
/// x86), so the waiter-count load cannot pass it: either notify_all() sees
/// the waiter registered and wakes it, or the waiter, whose increment is a
/// full barrier too, reads the new value. A seq_cst fence after a release
/// store would do the same, but ThreadSanitizer rejects thread fences.
/// Its release half pairs with the waiters' acquire loads of `a`.
template <class T>
inline void store_and_wake_all(std::atomic<T>& a, std::type_identity_t<T> v) noexcept {
  a.exchange(v, std::memory_order_seq_cst);  // pairs with the waiter's count increment
  a.notify_all();
}

}  // namespace paygo::detail
