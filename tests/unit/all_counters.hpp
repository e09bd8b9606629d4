// Every counter the typed suites run over.
#pragma once

#include <gtest/gtest.h>

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
using AllCounters = ToGTest<paygo::baselines::AllCounters>::type;
}  // namespace paygo::test
