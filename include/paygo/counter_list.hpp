// paygo/counter_list.hpp — every counter of the library as one type list, so
// tests and benchmarks instantiate the same set.
#pragma once

#include <string_view>
#include <tuple>

#include "paygo/counters/atomic.hpp"
#include "paygo/counters/noop.hpp"
#include "paygo/counters/paygo.hpp"
#include "paygo/counters/per_slot_array.hpp"
#include "paygo/counters/percpu_ref.hpp"
#include "paygo/counters/refcache.hpp"
#include "paygo/counters/sloppy.hpp"

namespace paygo {

template <class... Cs>
struct CounterList {
  using Tuple = std::tuple<Cs...>;
  static constexpr std::size_t size = sizeof...(Cs);
  /// Calls f.template operator()<C>() for each counter type, in order.
  template <class F>
  static void for_each(F&& f) {
    (f.template operator()<Cs>(), ...);
  }
};

/// Baselines first, then PAYGO; `noop` and `atomic` are the reference points.
using AllCounters = CounterList<Noop, Atomic, PerSlotArray, Sloppy, Refcache, PercpuRef, Paygo>;

}  // namespace paygo
