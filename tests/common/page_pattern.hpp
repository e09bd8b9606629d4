// The content of every test file the page-cache tests, the cache fuzzer and
// paygo-stress read: every byte depends on (file, page, position), so a frame
// holding the wrong page, another file's page or a recycled page shows up in
// any read.
#pragma once

#include <cstdint>

#include "paygo/cache/page_cache.hpp"

namespace paygo::test_support {

inline std::uint8_t pattern(std::uint32_t file, std::uint64_t offset) {
  constexpr std::uint64_t kPage = cache::kPageSize;
  std::uint64_t x = (std::uint64_t{file} << 48) ^ ((offset / kPage) << 16) ^ (offset % kPage / 8);
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  x ^= x >> 31;
  return static_cast<std::uint8_t>(x >> (8 * (offset % 8)));
}

}  // namespace paygo::test_support
