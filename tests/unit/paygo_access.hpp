// Test-only window into Paygo (declared a friend in paygo_counter.hpp) and the small
// options the PAYGO tests share (tests/unit/paygo_test.cpp, tune_test.cpp).
#pragma once

#include <cstdint>

#include "paygo/paygo_counter.hpp"

namespace paygo::detail {
struct PaygoTestAccess {
  static const PaygoEntry& entry(const Paygo::Token& t) {
    return *static_cast<const PaygoEntry*>(t.p_);
  }
  static std::uint32_t home_index(const Paygo::Token& t) { return t.x_->index; }
  static std::uint64_t mask(const Paygo::Object& o) {
    return o.mask_.load(std::memory_order_relaxed);
  }
  static std::uint64_t generation(const Paygo::Object& o) {
    return o.word_.load(std::memory_order_relaxed) & kGenMask;
  }
};
}  // namespace paygo::detail

namespace paygo::test {

/// 8 slots, 16-entry tables, a probe window of 4, one mask bit per slot (so
/// queries visit exactly the touched slots).
inline Paygo::Options small_options() {
  Paygo::Options o;
  o.max_slots = 8;
  o.table_entries = 16;
  o.probe = 4;
  o.group_size = 1;
  return o;
}

/// `base` as `change` edits it, for a test's own option values:
///   Paygo c(tweak(small_options(), [](Paygo::Options& opt) { opt.max_slots = 1; }));
template <class F>
Paygo::Options tweak(Paygo::Options base, F&& change) {
  change(base);
  return base;
}

}  // namespace paygo::test
