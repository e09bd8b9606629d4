// paygo/baselines/counter_list.hpp — the baselines' umbrella header: every
// counter of the library (the baselines and Paygo) as one type list, so tests
// and benchmarks instantiate the same set. For comparisons, not for users.
#pragma once

#include <string_view>

#include "paygo/baselines/atomic.hpp"
#include "paygo/baselines/noop.hpp"
#include "paygo/baselines/per_slot_array.hpp"
#include "paygo/baselines/percpu_ref.hpp"
#include "paygo/baselines/refcache.hpp"
#include "paygo/baselines/sloppy.hpp"
#include "paygo/paygo_counter.hpp"

namespace paygo::baselines {

template <class... Cs>
struct CounterList {
  /// Calls f.template operator()<C>() for each counter type, in order.
  template <class F>
  static void for_each(F&& f) {
    (f.template operator()<Cs>(), ...);
  }
};

/// Baselines first, then PAYGO; `noop` and `atomic` are the reference points.
using AllCounters = CounterList<Noop, Atomic, PerSlotArray, Sloppy, Refcache, PercpuRef, Paygo>;

}  // namespace paygo::baselines
