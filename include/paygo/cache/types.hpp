// paygo/cache/types.hpp — the page cache's public value types: options,
// advice, reports and statistics (PageCache<C> is in page_cache.hpp).
#pragma once

#include <cstddef>
#include <cstdint>

namespace paygo::cache {

class Backend;

inline constexpr std::size_t kPageSize = 4096;

/// Normal: no hint, self-tuning (the default). Hot: pin distributed.
/// Central: pin central. WillNeed: load now. DontNeed: evict now.
enum class Advice { Normal, Hot, WillNeed, DontNeed, Central };

struct CacheOptions {
  std::size_t capacity_bytes = std::size_t{64} << 20;  ///< rounded down to pages, at least 1
  std::size_t evict_batch = 64;   ///< candidates per heavy fence when evicting on a miss
  std::size_t drop_batch = 1024;  ///< frames per heavy fence in drop()/DontNeed
  /// Initial size of the file table; it grows (at most 2^24 distinct files
  /// in a cache's life: open() then fails with EMFILE).
  std::uint32_t max_files = 1024;
  /// Threads alive at once with their own statistics shard (reserved as
  /// address space, committed per thread that reads; a thread beyond it
  /// counts with a shared atomic add).
  std::uint32_t max_threads = std::uint32_t{1} << 20;
  /// Hits a thread makes between two sweep steps, on average (each interval
  /// drawn from [3/4, 5/4] of it; 0: never sweep, so promoted pages stay
  /// distributed until evicted).
  std::uint32_t sweep_every = 4096;
  std::uint32_t sweep_frames = 256;  ///< frames one sweep step looks at
  Backend* backend = nullptr;        ///< nullptr: a PosixBackend owned by the cache
};

struct DropReport {
  std::size_t evicted = 0;  ///< cached pages freed (idle frames freed too are not counted)
  std::size_t busy = 0;     ///< cached pages still referenced (pinned or being read)
  std::size_t batches = 0;  ///< reclaim batches, one heavy fence each
  double seconds = 0;
};

struct CacheStats {
  std::uint64_t hits = 0, misses = 0, evictions = 0, busy_reclaims = 0;
  std::size_t frames = 0, free_frames = 0, cached_pages = 0;
  /// Cached pages counted distributed now: hinted_pages + promoted_pages.
  std::size_t distributed_pages = 0;
  std::size_t hinted_pages = 0;         ///< ... because they are in a Hot range
  std::size_t promoted_pages = 0;       ///< ... because self-tuning promoted them
  std::size_t counter_table_bytes = 0;  ///< bytes held by the counter's tables (per slot, per CPU)
  /// Self-tuning (zero for counters without it): pages promoted and demoted
  /// since the cache was made, sweep steps that looked at frames, and gets
  /// that wanted a per-thread entry and went central (more threads than
  /// slots, a full probe window, saturation).
  std::uint64_t promotions = 0, demotions = 0, sweeps = 0, central_fallbacks = 0;
  std::int64_t first_promotion_ns = 0;  ///< steady_clock ns of the first promotion; 0: none
};

using FileId = std::uint32_t;

/// A racy snapshot of one page, for statistics, benchmarks and tests.
struct PageInfo {
  bool cached = false;    ///< loaded and linked in the file's index
  bool hinted = false;    ///< counted distributed because of a Hot range
  bool promoted = false;  ///< counted distributed because self-tuning promoted it
};

}  // namespace paygo::cache
