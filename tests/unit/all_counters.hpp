// Every counter the typed suites run over, and the loops over both modes
// (central and distributed objects) that their tests share.
#pragma once

#include <gtest/gtest.h>

#include <type_traits>

#include "paygo/baselines/counter_list.hpp"
#include "paygo/paygo.hpp"

namespace paygo::test {

// The baselines are what the tests compare against: named unqualified here.
using namespace paygo::baselines;
template <class L>
struct ToGTest;
template <class... Cs>
struct ToGTest<CounterList<Cs...>> {
  using type = ::testing::Types<Cs...>;
};
/// PAYGO in a slot mode other than its default (Spill): the typed suites
/// run every mode. Same name and contract messages as Paygo.
template <SlotMode M>
struct PaygoIn : Paygo {
  PaygoIn() : PaygoIn(Options{}) {}
  explicit PaygoIn(Options o) : Paygo(with_mode(o)) {}
  static Options with_mode(Options o) {
    o.slot_mode = M;
    return o;
  }
};
using PaygoThread = PaygoIn<SlotMode::Thread>;
using PaygoCpu = PaygoIn<SlotMode::Cpu>;
static_assert(RefCounter<PaygoCpu>);

template <class L, class... More>
struct Append;
template <class... Cs, class... More>
struct Append<CounterList<Cs...>, More...> {
  using type = CounterList<Cs..., More...>;
};
/// The library's counters (Paygo in its default mode), then Paygo in the
/// other slot modes.
using AllCounters =
    ToGTest<Append<paygo::baselines::AllCounters, PaygoThread, PaygoCpu>::type>::type;

/// Both modes: central (cold) and distributed (hot) objects.
inline constexpr bool kModes[] = {false, true};

/// Runs f(hot) for each mode (central, then distributed) under a
/// SCOPED_TRACE that names it. A fatal failure (ASSERT_*) in f ends the loop,
/// as it ends the test in a loop written out.
template <class F>
void for_both_modes(F&& f) {
  for (bool hot : kModes) {
    SCOPED_TRACE(hot ? "distributed" : "central");
    f(hot);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

/// Runs body(o) or body(o, hot) for a fresh object of `c` in each mode, set
/// central or distributed (set_distributed(o, hot)) before the body.
template <class C, class Body>
void for_each_mode(C& c, Body&& body) {
  for_both_modes([&](bool hot) {
    typename C::Object o{c};
    c.set_distributed(o, hot);
    if constexpr (std::is_invocable_v<Body&, typename C::Object&, bool>) {
      body(o, hot);
    } else {
      body(o);
    }
  });
}

/// The same on a fresh counter too for each mode: body(c, o).
template <class C, class Body>
void for_each_mode_on_a_new_counter(Body&& body) {
  for_both_modes([&](bool hot) {
    C c;
    typename C::Object o{c};
    c.set_distributed(o, hot);
    body(c, o);
  });
}
}  // namespace paygo::test
