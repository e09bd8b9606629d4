// paygo/cache/detail/control.hpp — internal: PageCache<C>'s control
// paths (close, advice and counting modes, sweeps, drop, page_info, stats).
// Included by paygo/cache/page_cache.hpp; never include it yourself.
#pragma once

#include <chrono>
#include <mutex>
#include <vector>

namespace paygo::cache {

template <RefCounter C>
Result<void> PageCache<C>::close(FileId id) {
  std::lock_guard lock(files_mu_);
  auto f = begin_close(id);
  if (!f) return f.error();
  if (*f == nullptr) return {};  // other opens remain
  evict_range(**f, 0, kPageMask, /*unlink_busy=*/true);
  finish_close(**f);
  return {};
}

template <RefCounter C>
void PageCache<C>::apply_advice(Frame& fr, Advice a) noexcept {
  if constexpr (requires(C & c, typename C::Object & o) { c.set_mode(o, Mode::Auto); }) {
    counter_.set_mode(fr.ref, a == Advice::Hot       ? Mode::Distributed
                              : a == Advice::Central ? Mode::Central
                                                     : Mode::Auto);
  } else {
    counter_.set_distributed(fr.ref, a == Advice::Hot);
  }
  fr.hinted.store(a == Advice::Hot, std::memory_order_relaxed);
}

// The read path's sweep step (every sweep_every hits of a thread): the next
// sweep_frames frames of the pool, the promoted ones handed to the counter's
// sweep(), which demotes those that stayed quiet. A thread that finds
// another sweeping goes back to reading. Frames are type-stable, so looking
// at one being recycled is harmless: sweep() re-checks under its freeze.
template <RefCounter C>
void PageCache<C>::sweep_step(Shard& sh, std::uint64_t hits) noexcept {
  if constexpr (kSweeps) {
    // The next interval: sweep_every * [3/4, 5/4), from the shard's own
    // xorshift (no shared state).
    sh.jitter ^= sh.jitter << 13;
    sh.jitter ^= sh.jitter >> 7;
    sh.jitter ^= sh.jitter << 17;
    const std::uint64_t every = opt_.sweep_every;
    sh.next_sweep = hits + every - every / 4 + sh.jitter % (every / 2 + 1);
    std::unique_lock lock(sweep_mu_, std::try_to_lock);
    if (!lock.owns_lock()) return;
    sweep_steps_.fetch_add(1, std::memory_order_relaxed);  // statistic
    thread_local std::vector<typename C::Object*> objs;
    objs.clear();
    const std::size_t n = frames_.size();
    for (std::size_t i = 0; i < opt_.sweep_frames && i < n; ++i) {
      Frame& fr = frames_[sweep_hand_];
      sweep_hand_ = sweep_hand_ + 1 == n ? 0 : sweep_hand_ + 1;
      if (counter_.promoted(fr.ref)) objs.push_back(&fr.ref);
    }
    if (!objs.empty()) counter_.sweep(objs);
  }
}

template <RefCounter C>
Result<void> PageCache<C>::advise(FileId id, std::uint64_t offset, std::uint64_t len,
                                  Advice advice) {
  File* f = file(id);
  if (f == nullptr) return std::errc::bad_file_descriptor;
  // Like fadvise: len 0 means "to the end of the file".
  const std::uint64_t size = f->size.load(std::memory_order_relaxed);
  const std::uint64_t first = offset / kPageSize;
  const std::uint64_t end_byte = (len == 0 || offset + len < offset) ? size : offset + len;
  const std::uint64_t last = std::max(pages_for(std::min(end_byte, size)), first);
  if (advice == Advice::Hot || advice == Advice::Normal || advice == Advice::Central) {
    const std::uint64_t range_end = len == 0 ? kPageMask : pages_for(end_byte);
    set_range_advice(*f, first, range_end, advice);
    // Switch the pages already cached; a token keeps each frame's identity
    // stable while we do it.
    for (FrameBase* b : cached_in_range(*f, first, last)) {
      Frame* fr = frame(b);
      Token t = counter_.get(fr->ref);
      if (!t) continue;
      const std::uint64_t key = fr->key.load(std::memory_order_relaxed);
      if ((key >> kPageBits) != f->id || (key & kPageMask) < first || (key & kPageMask) >= last) {
        continue;
      }
      apply_advice(*fr, advice);
    }
    return {};
  }
  if (advice == Advice::WillNeed) {
    for (std::uint64_t p = first; p < last; ++p) {
      Token t;
      auto r = acquire_loop(*f, p, t);
      if (!r) return r.error();
    }
    return {};
  }
  // DontNeed: evict what is unpinned in the range, in batches.
  evict_range(*f, first, last, /*unlink_busy=*/false);
  return {};
}

template <RefCounter C>
void PageCache<C>::evict_range(File& f, std::uint64_t first, std::uint64_t last, bool unlink_busy) {
  std::vector<Frame*> cands;
  cands.reserve(opt_.drop_batch);
  auto flush = [&] {
    reclaim(cands, nullptr, nullptr);
    // Pinned pages of a closing file: nobody finds them again, and CLOCK
    // frees them once their pins are gone (the state table: Ready -> Idle).
    for (Frame* fr : cands) {
      const std::uint64_t key = fr->key.load(std::memory_order_relaxed);
      if ((key >> kPageBits) == f.id && unlink_busy) retire_linked(f, key & kPageMask, fr);
    }
    cands.clear();
  };
  for (FrameBase* fr : cached_in_range(f, first, last)) {
    if (!claim(*fr)) continue;  // not a page now, or another reclaimer's
    const std::uint64_t key = fr->key.load(std::memory_order_relaxed);
    if ((key >> kPageBits) != f.id) {  // recycled meanwhile
      unclaim(*fr);
      continue;
    }
    cands.push_back(frame(fr));
    if (cands.size() == opt_.drop_batch) flush();
  }
  flush();
}

template <RefCounter C>
DropReport PageCache<C>::drop(std::size_t batch) {
  if (batch == 0) batch = opt_.drop_batch;
  DropReport report;
  const auto t0 = std::chrono::steady_clock::now();
  // No lock: misses go on meanwhile (they skip what we have claimed, and
  // take the frames we free).
  std::vector<Frame*> cands;
  cands.reserve(batch);
  for (Frame& fr : frames_) {
    const std::uint32_t st = fr.state.load(std::memory_order_relaxed);  // a hint; claim() re-reads
    if (st == kFree) continue;
    if (st == kLoading || !claim(fr)) {
      ++report.busy;  // loading, or being reclaimed by someone else
      continue;
    }
    cands.push_back(&fr);
    if (cands.size() == batch) {
      reclaim(cands, &report, nullptr);
      cands.clear();
    }
  }
  reclaim(cands, &report, nullptr);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

template <RefCounter C>
Result<PageInfo> PageCache<C>::page_info(FileId id, std::uint64_t page) const {
  File* f = file(id);
  if (f == nullptr) return std::errc::bad_file_descriptor;
  PageInfo info;
  // Acquire: pairs with the release store in grow_index(); the slot load
  // with the release CAS that published the frame (load_page()).
  const Index* idx = f->index.load(std::memory_order_acquire);
  if (page >= idx->npages) return info;
  const Frame* fr = frame(idx->slots[page].load(std::memory_order_acquire));
  // Relaxed: a snapshot; the frame may be recycled as we look (type-stable).
  if (fr == nullptr || fr->key.load(std::memory_order_relaxed) != make_key(id, page) ||
      fr->state.load(std::memory_order_relaxed) != kReady)
    return info;
  info.cached = true;
  info.hinted = fr->hinted.load(std::memory_order_relaxed);
  if constexpr (kSweeps) info.promoted = !info.hinted && counter_.promoted(fr->ref);
  return info;
}

template <RefCounter C>
CacheStats PageCache<C>::stats() const {
  CacheStats s;
  base_stats(s);
  for (const Frame& fr : frames_) {
    const std::uint32_t st = fr.state.load(std::memory_order_relaxed);
    if (st == kFree) ++s.free_frames;
    if (st == kReady) {
      ++s.cached_pages;
      if (fr.hinted.load(std::memory_order_relaxed)) {
        ++s.hinted_pages;
      } else if constexpr (kSweeps) {
        if (counter_.promoted(fr.ref)) ++s.promoted_pages;
      }
    }
  }
  s.distributed_pages = s.hinted_pages + s.promoted_pages;
  if constexpr (kSweeps) {
    const TuneStats t = counter_.tune_stats();
    s.promotions = t.promotions;
    s.demotions = t.demotions;
    s.central_fallbacks = t.central_fallbacks;
    s.first_promotion_ns = t.first_promotion_ns;
  }
  if constexpr (requires(const C& c) { c.table_bytes(); }) {
    s.counter_table_bytes = counter_.table_bytes();
  }
  return s;
}

}  // namespace paygo::cache
