// bench/zipf.hpp — DRBZ's block draws, shared by `counting` and `query`.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

namespace paygo::bench {

inline constexpr double kZipfTheta = 0.99;
/// Each thread cycles through its own precomputed sequence of Zipf draws
/// (so a read costs one load for its block number, not a search).
inline constexpr std::size_t kZipfDraws = std::size_t{1} << 16;

/// DRBZ's draws: block numbers, Zipf(theta) over ranks 1..n, rank r mapped
/// to block perm[r - 1] (a fixed shuffle, so hot blocks are spread over the
/// file and its drop batches, as in a real file). The probability of each
/// block is kept to compute the share of reads that went to promoted ones.
struct Zipf {
  Zipf(std::uint64_t n, unsigned max_threads) : prob(n), draws(max_threads) {
    std::vector<double> cdf(n);
    double sum = 0;
    for (std::uint64_t r = 0; r < n; ++r) {
      sum += 1.0 / std::pow(static_cast<double>(r + 1), kZipfTheta);
      cdf[r] = sum;
    }
    std::vector<std::uint32_t> perm(n);
    std::iota(perm.begin(), perm.end(), 0U);
    std::mt19937_64 shuffle_rng(12345);
    std::shuffle(perm.begin(), perm.end(), shuffle_rng);
    for (std::uint64_t r = 0; r < n; ++r) {
      prob[perm[r]] = (cdf[r] - (r == 0 ? 0 : cdf[r - 1])) / sum;
    }
    for (unsigned t = 0; t < max_threads; ++t) {
      std::mt19937_64 rng(1000 + t);
      std::uniform_real_distribution<double> u(0, sum);
      draws[t].resize(kZipfDraws);
      for (auto& d : draws[t]) {
        const auto it = std::lower_bound(cdf.begin(), cdf.end(), u(rng));
        d = perm[std::min<std::uint64_t>(static_cast<std::uint64_t>(it - cdf.begin()), n - 1)];
      }
    }
  }
  std::vector<double> prob;                       // per block
  std::vector<std::vector<std::uint32_t>> draws;  // per thread: block numbers
};

/// One thread's draws, round and round: next() is its next block number.
class ZipfCursor {
 public:
  ZipfCursor(const Zipf& zipf, unsigned thread) : draws_(zipf.draws[thread].data()) {}
  std::uint64_t next() noexcept {
    const std::uint64_t block = draws_[k_];
    k_ = (k_ + 1) & (kZipfDraws - 1);
    return block;
  }

 private:
  const std::uint32_t* draws_;
  std::size_t k_ = 0;
};

}  // namespace paygo::bench
