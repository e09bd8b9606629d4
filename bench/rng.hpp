// bench/rng.hpp — the per-thread generator of the random-read workloads
// (counting's RRND, rocksdb's readrandom): no shared state, seeded by
// (repeat, thread) so every point of a round reads the same sequence.
#pragma once

#include <cstdint>

namespace paygo::bench {

/// splitmix64, seeded by (repeat, thread).
struct Rng {
  std::uint64_t s;
  Rng(unsigned repeat, unsigned thread)
      : s(0x5eedf00d2024ULL ^ (std::uint64_t{repeat} << 32) ^ std::uint64_t{thread}) {}
  std::uint64_t next() noexcept {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, n) for n <= 2^32 (multiply-shift of 32 random bits;
  /// the bias, at most n / 2^32, is far below the noise).
  std::uint64_t below(std::uint64_t n) noexcept { return ((next() >> 32) * n) >> 32; }
};

}  // namespace paygo::bench
