// Every counter the typed suites run over.
#pragma once

#include <gtest/gtest.h>

#include "paygo/counter_list.hpp"
#include "paygo/paygo.hpp"

namespace paygo::test {
template <class L>
struct ToGTest;
template <class... Cs>
struct ToGTest<CounterList<Cs...>> {
  using type = ::testing::Types<Cs...>;
};
using AllCounters = ToGTest<paygo::AllCounters>::type;
}  // namespace paygo::test
