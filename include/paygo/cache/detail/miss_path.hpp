// paygo/cache/detail/miss_path.hpp — internal: PageCache<C>'s construction
// and miss path (load a page, take a frame, CLOCK eviction, batch reclaim).
// Included by paygo/cache/page_cache.hpp; never include it yourself.
#pragma once

#include <algorithm>
#include <cassert>
#include <thread>

#include "paygo/detail/wake.hpp"

namespace paygo::cache {

template <RefCounter C>
template <class... CounterArgs>
PageCache<C>::PageCache(CacheOptions options, CounterArgs&&... counter_args)
    : detail::PageCacheBase(options), counter_(std::forward<CounterArgs>(counter_args)...) {
  const std::size_t n = nframes_;
  std::vector<FrameBase*> all;
  std::vector<typename C::Object*> objs;
  all.reserve(n);
  objs.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    Frame& fr = frames_.emplace_back(counter_, memory_ + i * kPageSize);
    if (i == 0) {  // the same in every frame: where FrameBase lies after the counter's object
      set_frame_base_offset(reinterpret_cast<char*>(static_cast<FrameBase*>(&fr)) -
                            reinterpret_cast<char*>(&fr));
    }
    all.push_back(&fr);
    objs.push_back(&fr.ref);
  }
  // Free frames are dead: a reader holding a stale pointer fails its get.
  // One batch for all of them (for PAYGO one heavy fence, not one per
  // frame), repeated for a counter that confirms a zero on a later call
  // (Refcache); nobody else knows the frames yet, so every one dies.
  std::unique_ptr<bool[]> dead(new bool[n]);
  [[maybe_unused]] std::size_t killed = 0;
  for (int pass = 0; pass < reclaim_calls<C>; ++pass)
    killed += counter_.reclaim_batch(objs, std::span<bool>(dead.get(), n));
  assert(killed == n);
  seed_free_list(all);  // hand out frame 0 first
}

template <RefCounter C>
PageCache<C>::~PageCache() {
  check_no_live_pins();  // before counter_ and the frames die
}

template <RefCounter C>
Result<typename PageCache<C>::Frame*> PageCache<C>::load_page(File& f, Index& idx,
                                                              std::uint64_t page, Token& token,
                                                              bool& retry) {
  // seq_cst (both): the Dekker pair with close()'s closed store and io
  // load. The decrement's release (the guard) pairs with close()'s io load.
  f.io.fetch_add(1, std::memory_order_seq_cst);
  struct IoGuard {
    File& f;
    ~IoGuard() { f.io.fetch_sub(1, std::memory_order_release); }
  } io_guard{f};
  if (f.closed.load(std::memory_order_seq_cst)) return std::errc::bad_file_descriptor;
  Frame* fr = take_frame();
  if (fr == nullptr) return std::errc::no_buffer_space;  // every frame pinned or loading
  // Acquire: pairs with the release CAS below (another misser's); only
  // non-null is tested, so relaxed would do, but the pairing keeps it plain.
  if (idx.slots[page].load(std::memory_order_acquire) != nullptr) {
    // Another misser published this page meanwhile: give the frame back
    // untouched (still dead) and use theirs.
    FrameBase* b = fr;
    push_free({&b, 1});
    retry = true;
    return std::errc::resource_unavailable_try_again;
  }
  Advice advice = Advice::Normal;
  if (f.any_pinned.load(std::memory_order_relaxed)) {
    std::lock_guard lock(f.mu);
    advice = f.advice_locked(page);
  }
  // The frame is dead and ours alone: set it up, then revive it. reset()
  // releases, so a reader whose get succeeds on the new incarnation sees
  // the new key and state.
  fr->key.store(make_key(f.id, page), std::memory_order_relaxed);
  fr->len.store(0, std::memory_order_relaxed);
  fr->error.store(0, std::memory_order_relaxed);
  fr->referenced.store(false, std::memory_order_relaxed);
  fr->state.store(kLoading, std::memory_order_relaxed);
  apply_advice(*fr, advice);  // the mode for the new incarnation, kept by reset()
  counter_.reset(fr->ref);
  Token t = counter_.get(fr->ref);
  IndexedFrame* expected = nullptr;
  // Release: pairs with the acquire loads of the slot in try_hit(),
  // acquire_loop(), load_page(), grow_index(), cached_in_range(), refresh.
  if (!t || !idx.slots[page].compare_exchange_strong(
                expected, indexed(fr), std::memory_order_release, std::memory_order_relaxed)) {
    // Someone published this page first. Take the frame back at once if no
    // stale reader holds it; otherwise it goes idle and CLOCK reclaims it.
    // Loading: no reclaimer claims it (the state table), so it is ours.
    t.reset();
    if (counter_.try_reclaim(fr->ref)) {
      release_dead(*fr);  // not linked anywhere: just back to the free list
      FrameBase* b = fr;
      push_free({&b, 1});
    } else {
      paygo::detail::store_and_wake_all(fr->state, kIdle);
    }
    retry = true;
    return std::errc::resource_unavailable_try_again;
  }
  if (const std::error_code err = read_page(f, *fr, page)) {
    // Nothing wrong is cached: unlink, publish the error to the waiters,
    // and let the next read try again with a fresh frame.
    fr->error.store(err.value(), std::memory_order_relaxed);
    detail::unlink_slot(idx.slots[page], indexed(fr));
    // Release: pairs with the acquire loads of `state` in try_hit()/acquire_loop().
    paygo::detail::store_and_wake_all(fr->state, kError);
    return err;
  }
  // Release: pairs with the acquire loads of `state` in try_hit()/acquire_loop().
  paygo::detail::store_and_wake_all(fr->state, kReady);
  token = std::move(t);
  return fr;
}

template <RefCounter C>
typename PageCache<C>::Frame* PageCache<C>::take_frame() {
  if (FrameBase* fr = pop_free()) [[likely]]
    return frame(fr);
  return evict();
}

// CLOCK without a lock: each fetch_add of the hand gives this thread the
// next window of evict_batch frames to itself (other evictors get other
// windows; drop(), DontNeed and close() hold claims, which we skip).
// Referenced frames get their bit cleared and are skipped once; the others
// are claimed and reclaimed as one batch; one freed frame is ours, the rest
// go to the free list for the next misses. After three passes of the hand
// over the pool with nothing freed, ENOBUFS: everything is pinned or
// loading (the third pass ignores the referenced bits, which readers may
// keep setting again as fast as we clear them).
// Frames we could not claim (another reclaimer's claim lasts one batch, or
// the frame changed state as we looked) and Free frames (another batch
// freed them and is about to put them on the free list, or a loader has
// just taken them) do not count as pinned: if the last passes met any, we
// yield and go on.
template <RefCounter C>
typename PageCache<C>::Frame* PageCache<C>::evict() {
  const std::size_t n = frames_.size();
  const std::size_t window = std::min(opt_.evict_batch, n);
  ReclaimScratch& sc = scratch();
  std::size_t seen = 0, transient = 0;
  for (;;) {
    if (seen >= 3 * n) {
      if (transient == 0) return nullptr;
      std::this_thread::yield();  // wait for the other thread's batch
      seen = transient = 0;
    }
    const std::uint64_t start = clock_hand_.fetch_add(window, std::memory_order_relaxed);
    const bool second_chance = seen < 2 * n;  // the last pass takes referenced frames too
    seen += window;
    sc.cands.clear();
    for (std::size_t k = 0; k < window; ++k) {
      Frame& fr = frames_[(start + k) % n];
      const std::uint32_t st =
          fr.state.load(std::memory_order_relaxed);  // a hint; claim() re-reads
      if (st == kLoading) continue;
      if (st == kFree) {  // freed by a batch not yet on the free list, or a loader's now
        ++transient;
        continue;
      }
      if (fr.referenced.load(std::memory_order_relaxed)) {
        fr.referenced.store(false, std::memory_order_relaxed);  // CLOCK hint
        if (second_chance) continue;
      }
      if (claim(fr)) {
        sc.cands.push_back(&fr);
      } else {
        ++transient;  // another reclaimer's, or it changed state under us
      }
    }
    Frame* got = nullptr;
    reclaim(sc.cands, nullptr, &got);
    if (got != nullptr) return got;
    if (FrameBase* fr = pop_free()) return frame(fr);  // another thread freed some meanwhile
  }
}

template <RefCounter C>
void PageCache<C>::reclaim(std::vector<Frame*>& cands, DropReport* report, Frame** keep) {
  if (cands.empty()) return;
  ReclaimScratch& sc = scratch();
  if (sc.dead_size < cands.size()) {
    sc.dead.reset(new bool[cands.size()]);
    sc.dead_size = cands.size();
  }
  sc.freed.clear();
  std::size_t freed_pages = 0;
  // A counter with a delayed zero (Refcache) confirms an idle object only on
  // a later call: give the frames that are still busy that many passes.
  for (int pass = 0; pass < reclaim_calls<C> && !cands.empty(); ++pass) {
    sc.objs.resize(cands.size());
    for (std::size_t i = 0; i < cands.size(); ++i) sc.objs[i] = &cands[i]->ref;
    counter_.reclaim_batch(sc.objs, std::span<bool>(sc.dead.get(), cands.size()));
    std::size_t kept = 0;
    for (std::size_t i = 0; i < cands.size(); ++i) {
      if (sc.dead[i]) {
        // Count cached pages only: idle frames (a lost publish race, a
        // refresh) and failed reads are freed too, but were never pages.
        freed_pages += cands[i]->state.load(std::memory_order_relaxed) == kReady ? 1 : 0;
        release_dead(*cands[i]);
        unclaim(*cands[i]);
        sc.freed.push_back(cands[i]);
      } else {
        cands[kept++] = cands[i];
      }
    }
    cands.resize(kept);
    if (report != nullptr) ++report->batches;
  }
  std::size_t busy = 0;
  for (Frame* fr : cands) {
    busy += fr->state.load(std::memory_order_relaxed) == kReady ? 1 : 0;
    unclaim(*fr);
  }
  if (keep != nullptr && !sc.freed.empty()) {
    *keep = frame(sc.freed.back());
    sc.freed.pop_back();
  }
  push_free(sc.freed);
  count_reclaimed(freed_pages, busy);
  if (report != nullptr) {
    report->evicted += freed_pages;
    report->busy += busy;
  }
}

}  // namespace paygo::cache
