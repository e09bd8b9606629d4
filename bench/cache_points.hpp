// bench/cache_points.hpp — what `counting` and `query` share about a point
// over paygo's page cache: the advice a --hint stands for, a capacity that
// holds a file, open and advise that fail the point, the first read of a
// run, and the self-tuning sample read from the cache after it.
#pragma once

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "common.hpp"
#include "paygo/cache/page_cache.hpp"
#include "zipf.hpp"

namespace paygo::bench {

/// The advice a point runs under: "auto" none (Normal: PAYGO tunes itself),
/// "central" Central, else Hot (PAYGO's hint "hot", and every other
/// counter's rows).
inline cache::Advice advice_for(const std::string& hint) {
  if (hint == "auto") return cache::Advice::Normal;
  if (hint == "central") return cache::Advice::Central;
  return cache::Advice::Hot;
}

/// A capacity that holds `pages` pages, plus a sixteenth and 64 frames for
/// those that concurrent missers of one page take and give back.
inline std::uint64_t holding_bytes(std::uint64_t pages) {
  return (pages + pages / 16 + 64) * cache::kPageSize;
}

/// pc.advise(file, offset, length, advice); a failure fails the point.
template <class C>
void advise_or_fail(cache::PageCache<C>& pc, cache::FileId file, std::uint64_t offset,
                    std::uint64_t length, cache::Advice advice) {
  if (auto r = pc.advise(file, offset, length, advice); !r) {
    throw PointFailed(fmt::format("advise{}: {}",
                                  advice == cache::Advice::WillNeed ? "(WillNeed)" : "",
                                  r.error().message()));
  }
}

/// pc.open(path); a failure fails the point.
template <class C>
cache::FileId open_or_fail(cache::PageCache<C>& pc, const std::string& path) {
  auto id = pc.open(path);
  if (!id) throw PointFailed(fmt::format("open {}: {}", path, id.error().message()));
  return *id;
}

/// The time of a run's first read (warm-up included), which
/// first_promotion_s counts from; the first mark() wins.
class FirstRead {
 public:
  void mark() noexcept {
    std::int64_t zero = 0;
    // Relaxed: a timestamp, read after the joins.
    ns_.compare_exchange_strong(zero, now_ns(), std::memory_order_relaxed);
  }
  /// 0 before the first mark().
  std::int64_t ns() const noexcept { return ns_.load(std::memory_order_relaxed); }
  static std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }

 private:
  std::atomic<std::int64_t> ns_{0};
};

/// What self-tuning did by the time of `st` (the cache's statistics after a
/// run whose first read was `first`); with `zipf`, also the share of its
/// reads that go to pages of `file` that are promoted now.
template <class C>
TuneSample tune_sample(const cache::PageCache<C>& pc, const cache::CacheStats& st,
                       const FirstRead& first, cache::FileId file, const Zipf* zipf) {
  TuneSample out;
  out.promotions = static_cast<double>(st.promotions);
  out.demotions = static_cast<double>(st.demotions);
  out.distributed_pages = static_cast<double>(st.distributed_pages);
  out.promoted_pages = static_cast<double>(st.promoted_pages);
  out.counter_table_bytes = static_cast<double>(st.counter_table_bytes);
  if (st.first_promotion_ns != 0 && first.ns() != 0) {
    out.first_promotion_s = static_cast<double>(st.first_promotion_ns - first.ns()) / 1e9;
  }
  if (zipf != nullptr) {
    double share = 0;
    for (std::uint64_t p = 0; p < zipf->prob.size(); ++p) {
      auto info = pc.page_info(file, p);
      if (info && info->promoted) share += zipf->prob[p];
    }
    out.promoted_read_share = share;
  }
  return out;
}

}  // namespace paygo::bench
