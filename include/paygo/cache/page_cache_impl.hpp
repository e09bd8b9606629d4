// paygo/cache/page_cache_impl.hpp — out-of-line members of PageCache<C>.
// Included by page_cache.hpp; not a public header on its own.
#pragma once

namespace paygo::cache {

template <RefCounter C>
template <class... CounterArgs>
PageCache<C>::PageCache(CacheOptions options, CounterArgs&&... counter_args)
    : counter_(std::forward<CounterArgs>(counter_args)...),
      opt_(options),
      stats_domain_(DomainOptions{options.max_threads}) {
  if (opt_.backend == nullptr) {
    own_backend_ = std::make_unique<PosixBackend>();
    backend_ = own_backend_.get();
  } else {
    backend_ = opt_.backend;
  }
  opt_.sweep_frames = std::max<std::uint32_t>(opt_.sweep_frames, 1);
  opt_.evict_batch = std::max<std::size_t>(opt_.evict_batch, 1);
  opt_.drop_batch = std::max<std::size_t>(opt_.drop_batch, 1);
  const std::size_t n = std::max<std::size_t>(opt_.capacity_bytes / kPageSize, 1);
  memory_ = static_cast<std::byte*>(std::aligned_alloc(kPageSize, n * kPageSize));
  if (memory_ == nullptr) throw std::bad_alloc();
  grow_files(std::max<std::size_t>(opt_.max_files, 16));
  for (FreeList& l : free_) l.frames.reserve(n);  // never grow again: push_free() cannot allocate
  std::vector<typename C::Object*> objs;
  objs.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    Frame& fr = frames_.emplace_back(counter_, memory_ + i * kPageSize);
    free_[0].frames.push_back(&fr);
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
  std::reverse(free_[0].frames.begin(), free_[0].frames.end());  // hand out frame 0 first
  free_[0].size.store(n, std::memory_order_relaxed);
}

template <RefCounter C>
PageCache<C>::~PageCache() {
#ifndef NDEBUG
  // Relaxed: the pins' releases happen before this destructor by whatever
  // joined their threads; a pin still live here is the bug we report.
  if (const long live = live_pins_.load(std::memory_order_relaxed); live != 0) {
    std::fprintf(stderr,
                 "paygo::cache::PageCache: destroyed with %ld PinnedPage(s) still live; a pin "
                 "must be released (reset or destroyed) before its cache\n",
                 live);
    std::abort();
  }
#endif
  for (auto& f : file_owner_)
    if (f->opens > 0) backend_->close(f->handle);
  std::free(memory_);
}

template <RefCounter C>
void PageCache<C>::grow_files(std::size_t min_size) {
  const FileTable* old = files_.load(std::memory_order_relaxed);  // we hold files_mu_
  if (old != nullptr && old->size >= min_size) return;
  auto bigger = std::make_unique<FileTable>(
      std::max(min_size, old == nullptr ? std::size_t{0} : old->size * 2));
  if (old != nullptr) {
    for (std::size_t i = 0; i < old->size; ++i) {
      // Relaxed: written under files_mu_, which we hold; published to
      // readers by the release store of files_ below.
      bigger->entries[i].open.store(old->entries[i].open.load(std::memory_order_relaxed),
                                    std::memory_order_relaxed);
      bigger->entries[i].file.store(old->entries[i].file.load(std::memory_order_relaxed),
                                    std::memory_order_relaxed);
    }
  }
  file_tables_.push_back(std::move(bigger));  // old tables stay alive: readers may hold them
  // Release: pairs with the acquire loads in file()/file_any().
  files_.store(file_tables_.back().get(), std::memory_order_release);
}

template <RefCounter C>
Result<FileId> PageCache<C>::open(const std::string& path) {
  auto h = backend_->open(path);
  if (!h) return h.error();
  auto sz = backend_->size(*h);
  if (!sz) {
    backend_->close(*h);
    return sz.error();
  }
  const auto ident = backend_->identity(*h);
  std::lock_guard lock(files_mu_);
  File* f = nullptr;
  if (ident) {
    if (auto it = by_identity_.find(*ident); it != by_identity_.end()) f = it->second;
  } else if (auto it = by_path_.find(path); it != by_path_.end()) {
    f = it->second;
  }
  if (f != nullptr && f->opens > 0) {  // open already: the same file, one more open
    backend_->close(*h);
    ++f->opens;
    return f->id;
  }
  if (f == nullptr) {
    if (file_owner_.size() >= kMaxFiles) {
      backend_->close(*h);
      return std::errc::too_many_files_open;
    }
    auto owned = std::make_unique<File>();
    f = owned.get();
    f->id = static_cast<FileId>(file_owner_.size());
    f->path = path;
    f->current_owner = std::make_unique<Index>(pages_for(*sz));
    f->index.store(f->current_owner.get(), std::memory_order_relaxed);
    file_owner_.push_back(std::move(owned));
    if (ident) {
      by_identity_.emplace(*ident, f);
    } else {
      by_path_.emplace(path, f);
    }
    grow_files(std::size_t{f->id} + 1);
    // Release: pairs with the acquire in file_any().
    files_.load(std::memory_order_relaxed)->entries[f->id].file.store(f, std::memory_order_release);
  }
  // New, or closed and now open again (its pages were dropped by close()).
  f->handle = *h;
  f->size.store(*sz, std::memory_order_relaxed);
  if (pages_for(*sz) > f->index.load(std::memory_order_relaxed)->npages)
    grow_index(*f, pages_for(*sz));
  // Release: a load that found this File before it was closed reads
  // `closed` (seq_cst) before the handle, so it sees the new handle.
  f->closed.store(false, std::memory_order_release);
  f->opens = 1;
  // Release: pairs with the acquire in file(), publishing the File.
  files_.load(std::memory_order_relaxed)->entries[f->id].open.store(f, std::memory_order_release);
  return f->id;
}

template <RefCounter C>
Result<void> PageCache<C>::close(FileId id) {
  std::lock_guard lock(files_mu_);
  File* f = file(id);
  if (f == nullptr) return std::errc::bad_file_descriptor;
  if (--f->opens > 0) return {};
  // New reads, pins and advice answer EBADF from here on; a reader that
  // found the File before is served or gets EBADF from load_page().
  files_.load(std::memory_order_relaxed)
      ->entries[id]
      .open.store(nullptr, std::memory_order_release);
  // seq_cst (both): the Dekker pair with load_page()'s io increment and
  // closed load; the io load also acquires each load's release decrement,
  // so every frame a load published is in the index we sweep next.
  f->closed.store(true, std::memory_order_seq_cst);
  while (f->io.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  evict_range(*f, 0, kPageMask, /*unlink_busy=*/true);
  backend_->close(f->handle);
  f->handle = -1;
  return {};
}

template <RefCounter C>
Result<std::uint64_t> PageCache<C>::size(FileId id) const {
  File* f = file(id);
  if (f == nullptr) return std::errc::bad_file_descriptor;
  return f->size.load(std::memory_order_relaxed);
}

/*** The read path ***/
// The hit path, inline in read(): look up, get, re-check, done; `out` is
// the frame and the token its reference. Anything unusual (no index slot
// yet, a miss, a frozen or recycled frame, a page still loading, an error)
// leaves `out` null and the token empty (a reference taken is dropped), and
// acquire_loop() starts over with the full loop below. The token is built
// in place (returned by NRVO): no moves on the hit path.
template <RefCounter C>
typename PageCache<C>::Token PageCache<C>::try_hit(File& f, std::uint64_t page,
                                                   Frame*& out) noexcept {
  // Acquire: pairs with the release store in grow_index().
  Index* idx = f.index.load(std::memory_order_acquire);
  if (page >= idx->npages) [[unlikely]]
    return {};
  std::atomic<Frame*>& slot = idx->slots[page];
  // Acquire: pairs with the release CAS that published the frame.
  Frame* fr = slot.load(std::memory_order_acquire);
  if (fr == nullptr) [[unlikely]]
    return {};
  Token t = counter_.get(fr->ref);
  if (!t) [[unlikely]]
    return t;
  // The same three checks as acquire_loop(), which says why each is needed;
  // the state's acquire pairs with the loader's release store of kReady.
  if (slot.load(std::memory_order_acquire) != fr ||
      fr->key.load(std::memory_order_relaxed) != make_key(f.id, page) ||
      fr->state.load(std::memory_order_acquire) != kReady) [[unlikely]] {
    t.reset();
    return t;
  }
  if (!fr->referenced.load(std::memory_order_relaxed)) [[unlikely]] {
    fr->referenced.store(true, std::memory_order_relaxed);  // CLOCK hint; written only if clear
  }
  count_hit();
  out = fr;
  return t;
}

template <RefCounter C>
Result<typename PageCache<C>::Frame*> PageCache<C>::acquire_loop(File& f, std::uint64_t page,
                                                                 Token& token) {
  const std::uint64_t key = make_key(f.id, page);
  for (;;) {
    // Acquire: pairs with the release store in grow_index().
    Index* idx = f.index.load(std::memory_order_acquire);
    if (page >= idx->npages) {
      grow_index(f, page + 1);
      continue;
    }
    std::atomic<Frame*>& slot = idx->slots[page];
    // Acquire: pairs with the release CAS that published the frame.
    Frame* fr = slot.load(std::memory_order_acquire);
    if (fr == nullptr) {
      bool retry = false;
      auto r = load_page(f, *idx, page, token, retry);
      if (retry) continue;
      count_miss();
      return r;
    }
    Token t = counter_.get(fr->ref);
    if (!t) continue;  // frozen or dead under us: look again
    // Re-check, as the kernel's folio != xas_reload(): the frame may have
    // been reclaimed and reused between our load and our get. Acquire:
    // pairs with the release CAS that published the frame (load_page()).
    if (slot.load(std::memory_order_acquire) != fr) continue;
    if (fr->key.load(std::memory_order_relaxed) != key) {
      // Recycled for another page while the slot still points at it (an
      // index copied during growth): drop the stale pointer, look again.
      Frame* expected = fr;
      slot.compare_exchange_strong(expected, nullptr, std::memory_order_relaxed);
      continue;
    }
    std::uint32_t st =
        fr->state.load(std::memory_order_acquire);  // pairs with the loader's release
    while (st == kLoading) {
      // Acquire (both): pair with the loader's seq_cst exchange in
      // detail::store_and_wake_all(), as the load above does.
      fr->state.wait(kLoading, std::memory_order_acquire);  // one read for all missers
      st = fr->state.load(std::memory_order_acquire);
    }
    if (st == kReady) [[likely]] {
      if (!fr->referenced.load(std::memory_order_relaxed)) {
        fr->referenced.store(true, std::memory_order_relaxed);  // CLOCK hint; written only if clear
      }
      count_hit();
      token = std::move(t);
      return fr;
    }
    if (st == kError) {
      return std::error_code(fr->error.load(std::memory_order_relaxed), std::generic_category());
    }
    // kIdle (unlinked by refresh or a lost publish race) or kFree: drop the
    // stale pointer so later readers do not find it, and look again.
    Frame* expected = fr;
    slot.compare_exchange_strong(expected, nullptr, std::memory_order_relaxed);
  }
}

template <RefCounter C>
Result<std::size_t> PageCache<C>::read(FileId id, void* buf, std::size_t len,
                                       std::uint64_t offset) {
  File* f = file(id);
  if (f == nullptr) return std::errc::bad_file_descriptor;
  if (buf == nullptr && len != 0) return std::errc::invalid_argument;
  return read_pages<true>(*f, static_cast<std::byte*>(buf), len, offset, 0);
}

// read()'s loop, page by page from `done`. kHitPath: only try_hit(), and at
// the first page it cannot serve, the rest of the read goes to the other
// instantiation (out of line), which runs the full acquire_loop() for every
// page. So the hit path's token is never reassigned: it is built in place,
// lives in registers and its put is inline.
template <RefCounter C>
template <bool kHitPath>
Result<std::size_t> PageCache<C>::read_pages(File& f, std::byte* out, std::size_t len,
                                             std::uint64_t offset, std::size_t done) {
  while (done < len) {
    const std::uint64_t size = f.size.load(std::memory_order_relaxed);
    const std::uint64_t pos = offset + done;
    if (pos >= size) break;  // end of file: a short read
    const std::uint64_t page = pos / kPageSize;
    const std::size_t in = static_cast<std::size_t>(pos % kPageSize);
    Frame* fr = nullptr;
    Token token = kHitPath ? try_hit(f, page, fr) : Token{};  // built in place
    if constexpr (kHitPath) {
      if (fr == nullptr) [[unlikely]]
        return read_pages_slow(f, out, len, offset, done);
    } else {
      auto r = acquire_loop(f, page, token);
      if (!r) {
        if (done != 0) break;  // pread semantics: report what was read
        return r.error();
      }
      fr = *r;
    }
    const std::size_t valid = fr->len.load(std::memory_order_relaxed);
    const std::uint64_t page_end = std::min<std::uint64_t>(size - page * kPageSize, valid);
    if (in >= page_end) break;  // the file shrank under us
    const std::size_t n =
        std::min<std::size_t>(len - done, static_cast<std::size_t>(page_end) - in);
    std::memcpy(out + done, fr->data + in, n);
    done += n;
    if (in + n < kPageSize && page_end < kPageSize) break;  // short page: end of file
  }
  return done;
}

template <RefCounter C>
Result<std::size_t> PageCache<C>::read_pages_slow(File& f, std::byte* out, std::size_t len,
                                                  std::uint64_t offset, std::size_t done) {
  return read_pages<false>(f, out, len, offset, done);
}

template <RefCounter C>
Result<typename PageCache<C>::PinnedPage> PageCache<C>::pin(FileId id, std::uint64_t page) {
  File* f = file(id);
  if (f == nullptr) return std::errc::bad_file_descriptor;
  if (page >= pages_for(f->size.load(std::memory_order_relaxed)))
    return std::errc::invalid_argument;
  Token token;
  auto fr = acquire_loop(*f, page, token);
  if (!fr) return fr.error();
  return PinnedPage(*this, std::move(token), (*fr)->data,
                    (*fr)->len.load(std::memory_order_relaxed));
}

/*** The miss path ***/
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
    push_free({&fr, 1});
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
  Frame* expected = nullptr;
  // Release: pairs with the acquire loads of the slot in try_hit(),
  // acquire_loop(), load_page(), grow_index(), cached_in_range(), refresh.
  if (!t || !idx.slots[page].compare_exchange_strong(expected, fr, std::memory_order_release,
                                                     std::memory_order_relaxed)) {
    // Someone published this page first. Take the frame back at once if no
    // stale reader holds it; otherwise it goes idle and CLOCK reclaims it.
    // Loading: no reclaimer claims it (the state table), so it is ours.
    t.reset();
    if (counter_.try_reclaim(fr->ref)) {
      release_dead(*fr);  // not linked anywhere: just back to the free list
      push_free({&fr, 1});
    } else {
      detail::store_and_wake_all(fr->state, kIdle);
    }
    retry = true;
    return std::errc::resource_unavailable_try_again;
  }
  const std::uint64_t size = f.size.load(std::memory_order_relaxed);
  const std::uint64_t start = page * kPageSize;
  const std::size_t want =
      start >= size ? 0
                    : static_cast<std::size_t>(std::min<std::uint64_t>(kPageSize, size - start));
  std::size_t got = 0;
  std::error_code err;
  while (got < want) {
    auto r = backend_->pread(f.handle, fr->data + got, want - got, start + got);
    if (!r) {
      err = r.error();
      break;
    }
    if (*r == 0) break;  // the file is shorter than we thought
    got += *r;
  }
  if (err) {
    // Nothing wrong is cached: unlink, publish the error to the waiters,
    // and let the next read try again with a fresh frame.
    fr->error.store(err.value(), std::memory_order_relaxed);
    Frame* self = fr;
    idx.slots[page].compare_exchange_strong(self, nullptr, std::memory_order_relaxed);
    // Release: pairs with the acquire loads of `state` in try_hit()/acquire_loop().
    detail::store_and_wake_all(fr->state, kError);
    return err;
  }
  if (got < want) {
    // Shrunk underneath: lower the bound we serve (never raise it here).
    std::uint64_t cur = f.size.load(std::memory_order_relaxed);
    while (cur > start + got &&
           !f.size.compare_exchange_weak(cur, start + got, std::memory_order_relaxed)) {
    }
  }
  fr->len.store(static_cast<std::uint32_t>(got), std::memory_order_relaxed);
  // Release: pairs with the acquire loads of `state` in try_hit()/acquire_loop().
  detail::store_and_wake_all(fr->state, kReady);
  token = std::move(t);
  return fr;
}

template <RefCounter C>
typename PageCache<C>::Frame* PageCache<C>::pop_free() noexcept {
  const std::size_t home = home_list();
  for (std::size_t k = 0; k < kFreeLists; ++k) {  // our own first, then steal
    FreeList& l = free_[(home + k) % kFreeLists];
    if (l.size.load(std::memory_order_relaxed) == 0) continue;  // a hint; checked under mu
    std::lock_guard lock(l.mu);
    if (l.frames.empty()) continue;
    Frame* fr = l.frames.back();
    l.frames.pop_back();
    l.size.store(l.frames.size(), std::memory_order_relaxed);
    return fr;
  }
  return nullptr;
}

template <RefCounter C>
void PageCache<C>::push_free(std::span<Frame* const> frames) noexcept {
  if (frames.empty()) return;
  FreeList& l = free_[home_list()];
  std::lock_guard lock(l.mu);
  // Never allocates: a frame is on one list at most once, and every list had
  // room for every frame from the start.
  assert(l.frames.size() + frames.size() <= l.frames.capacity());
  l.frames.insert(l.frames.end(), frames.begin(), frames.end());
  l.size.store(l.frames.size(), std::memory_order_relaxed);
}

template <RefCounter C>
typename PageCache<C>::Frame* PageCache<C>::take_frame() {
  if (Frame* fr = pop_free()) [[likely]]
    return fr;
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
    if (Frame* fr = pop_free()) return fr;  // another thread freed some meanwhile
  }
}

template <RefCounter C>
bool PageCache<C>::claim(Frame& fr) noexcept {
  // Relaxed test first: do not write a line someone else has claimed.
  if (fr.claimed.load(std::memory_order_relaxed) ||
      fr.claimed.exchange(true, std::memory_order_acquire))  // pairs with unclaim()'s release
    return false;
  // Acquire: pairs with the owner's release store of the state (the state
  // table), so a Ready frame's key and length are those of its page.
  const std::uint32_t st = fr.state.load(std::memory_order_acquire);
  if (st == kReady || st == kError || st == kIdle) return true;
  unclaim(fr);  // Free or Loading: its owner's, not ours
  return false;
}

template <RefCounter C>
void PageCache<C>::unclaim(Frame& fr) noexcept {
  // Release: pairs with the acquire exchange in claim(): the next claimant
  // sees what this one did to the frame.
  fr.claimed.store(false, std::memory_order_release);
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
    *keep = sc.freed.back();
    sc.freed.pop_back();
  }
  push_free(sc.freed);
  // Relaxed: statistics.
  if (freed_pages != 0) evictions_.fetch_add(freed_pages, std::memory_order_relaxed);
  if (busy != 0) busy_.fetch_add(busy, std::memory_order_relaxed);
  if (report != nullptr) {
    report->evicted += freed_pages;
    report->busy += busy;
  }
}

template <RefCounter C>
void PageCache<C>::release_dead(Frame& fr) {
  // The frame is dead: no token, no successful get until reset().
  const std::uint64_t key = fr.key.load(std::memory_order_relaxed);
  if (key != kNoKey) {
    if (File* f = file_any(static_cast<FileId>(key >> kPageBits)))
      unlink_page(*f, key & kPageMask, &fr);
  }
  fr.key.store(kNoKey, std::memory_order_relaxed);
  fr.hot.store(false, std::memory_order_relaxed);
  // Every change of `state` wakes its waiters (a waiter holds a token, so
  // none should wait on a frame that gets here; if one did, it retries).
  detail::store_and_wake_all(fr.state, kFree);
}

template <RefCounter C>
bool PageCache<C>::unlink_page(File& f, std::uint64_t page, Frame* fr) {
  // Acquire: pairs with the release store in grow_index().
  Index* idx = f.index.load(std::memory_order_acquire);
  if (page >= idx->npages) return false;
  Frame* expected = fr;
  // Relaxed: readers that still load the old pointer fail their get or
  // their re-check; nothing is published by this store.
  return idx->slots[page].compare_exchange_strong(expected, nullptr, std::memory_order_relaxed);
}

template <RefCounter C>
void PageCache<C>::grow_index(File& f, std::uint64_t npages) {
  std::lock_guard lock(f.mu);
  Index* old = f.index.load(std::memory_order_relaxed);
  if (old->npages >= npages) return;
  auto bigger = std::make_unique<Index>(std::max(npages, old->npages * 2));
  for (std::uint64_t i = 0; i < old->npages; ++i) {
    // Acquire: pairs with the release CAS that published the frame; the
    // relaxed store into the new index is published, with everything the
    // acquire saw, by the release store of f.index below.
    bigger->slots[i].store(old->slots[i].load(std::memory_order_acquire),
                           std::memory_order_relaxed);
  }
  // A loader that publishes into the old index after this copy leaves an
  // orphan frame: its reader gets the right bytes, later readers miss and
  // load again, and CLOCK reclaims the orphan. Old indexes stay alive.
  f.retired.push_back(std::move(f.current_owner));
  f.current_owner = std::move(bigger);
  // Release: pairs with the acquire in try_hit()/acquire_loop().
  f.index.store(f.current_owner.get(), std::memory_order_release);
}

template <RefCounter C>
std::vector<typename PageCache<C>::Frame*> PageCache<C>::cached_in_range(File& f,
                                                                         std::uint64_t first,
                                                                         std::uint64_t last) {
  std::vector<Frame*> out;
  // Acquire: pairs with the release store in grow_index(); the slot loads
  // with the release CAS that published each frame (load_page()).
  Index* idx = f.index.load(std::memory_order_acquire);
  last = std::min(last, idx->npages);
  for (std::uint64_t p = first; p < last; ++p) {
    if (Frame* fr = idx->slots[p].load(std::memory_order_acquire)) out.push_back(fr);
  }
  return out;
}

/*** Statistics, counting modes and sweeps ***/
template <RefCounter C>
typename PageCache<C>::Shard* PageCache<C>::new_shard(Slot& slot) {
  Shard* sh = nullptr;
  {
    std::lock_guard lock(shards_mu_);
    sh = &shard_store_.emplace_back();
  }
  sh->jitter ^= (std::uint64_t{slot.index} + 1) * 0xD1B54A32D192ED03ULL;  // a sequence per shard
  sh->next_sweep = opt_.sweep_every == 0 ? ~std::uint64_t{0} : opt_.sweep_every;
  sh->free_list = slot.index % kFreeLists;
  // Release: pairs with the acquire in stats(), which then sees the shard's
  // initialisation (the owner itself reads it relaxed, see shard()).
  slot.payload.store(sh, std::memory_order_release);
  return sh;
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
  fr.hot.store(a == Advice::Hot, std::memory_order_relaxed);
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

/*** Advice, refresh, drop, stats ***/
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
    {
      std::lock_guard lock(f->mu);
      // Subtract [first, range_end) from every range, then add it back
      // pinned (Normal leaves it to self-tuning: no range).
      std::vector<typename File::Range> next;
      for (const auto& r : f->pinned) {
        if (r.last <= first || r.first >= range_end) {
          next.push_back(r);
          continue;
        }
        if (r.first < first) next.push_back({r.first, first, r.advice});
        if (r.last > range_end) next.push_back({range_end, r.last, r.advice});
      }
      // Pages loaded into the range later get the same mode.
      if (advice != Advice::Normal) next.push_back({first, range_end, advice});
      f->pinned = std::move(next);
      f->any_pinned.store(!f->pinned.empty(), std::memory_order_relaxed);
    }
    // Switch the pages already cached; a token keeps each frame's identity
    // stable while we do it.
    for (Frame* fr : cached_in_range(*f, first, last)) {
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
      if ((key >> kPageBits) != f.id || !unlink_busy) continue;
      if (unlink_page(f, key & kPageMask, fr)) {
        std::uint32_t st = kReady;
        fr->state.compare_exchange_strong(st, kIdle, std::memory_order_relaxed);
      }
    }
    cands.clear();
  };
  for (Frame* fr : cached_in_range(f, first, last)) {
    if (!claim(*fr)) continue;  // not a page now, or another reclaimer's
    const std::uint64_t key = fr->key.load(std::memory_order_relaxed);
    if ((key >> kPageBits) != f.id) {  // recycled meanwhile
      unclaim(*fr);
      continue;
    }
    cands.push_back(fr);
    if (cands.size() == opt_.drop_batch) flush();
  }
  flush();
}

template <RefCounter C>
Result<std::uint64_t> PageCache<C>::refresh(FileId id) {
  File* f = file(id);
  if (f == nullptr) return std::errc::bad_file_descriptor;
  auto sz = backend_->size(f->handle);
  if (!sz) return sz.error();
  const std::uint64_t old_size = f->size.exchange(*sz, std::memory_order_relaxed);
  if (*sz == old_size) return *sz;
  // Unlink every page that is past the new end or was a partial last page
  // under the old size. Holders keep their pin; nobody finds them again.
  const std::uint64_t keep = std::min(*sz, old_size) / kPageSize;  // whole pages that stay valid
  // Acquire: pairs with the release store in grow_index(); the slot load
  // with the release CAS that published the frame (load_page()).
  Index* idx = f->index.load(std::memory_order_acquire);
  for (std::uint64_t p = keep; p < idx->npages; ++p) {
    Frame* fr = idx->slots[p].load(std::memory_order_acquire);
    if (fr != nullptr && unlink_page(*f, p, fr)) {
      // Only the unlinker changes the state of a linked, loaded frame;
      // a frame still loading finishes and is simply never found again.
      std::uint32_t st = kReady;
      fr->state.compare_exchange_strong(st, kIdle, std::memory_order_relaxed);
    }
  }
  if (pages_for(*sz) > idx->npages) grow_index(*f, pages_for(*sz));
  return *sz;
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
  const Frame* fr = idx->slots[page].load(std::memory_order_acquire);
  // Relaxed: a snapshot; the frame may be recycled as we look (type-stable).
  if (fr == nullptr || fr->key.load(std::memory_order_relaxed) != make_key(id, page) ||
      fr->state.load(std::memory_order_relaxed) != kReady)
    return info;
  info.cached = true;
  info.hinted = fr->hot.load(std::memory_order_relaxed);
  if constexpr (kSweeps) info.promoted = !info.hinted && counter_.promoted(fr->ref);
  return info;
}

template <RefCounter C>
CacheStats PageCache<C>::stats() const {
  CacheStats s;
  for (std::uint32_t i = 0, n = stats_domain_.high_water(); i < n; ++i) {
    // Acquire: pairs with the release store in new_shard().
    if (const auto* sh = static_cast<const Shard*>(
            stats_domain_.slot(i).payload.load(std::memory_order_acquire))) {
      s.hits += sh->hits.load(std::memory_order_relaxed);
      s.misses += sh->misses.load(std::memory_order_relaxed);
    }
  }
  s.hits += overflow_.hits.load(std::memory_order_relaxed);
  s.misses += overflow_.misses.load(std::memory_order_relaxed);
  s.evictions = evictions_.load(std::memory_order_relaxed);
  s.busy_reclaims = busy_.load(std::memory_order_relaxed);
  s.frames = frames_.size();
  for (const Frame& fr : frames_) {
    const std::uint32_t st = fr.state.load(std::memory_order_relaxed);
    if (st == kFree) ++s.free_frames;
    if (st == kReady) {
      ++s.cached_pages;
      if (fr.hot.load(std::memory_order_relaxed)) {
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
  s.sweeps = sweep_steps_.load(std::memory_order_relaxed);
  if constexpr (requires(const C& c) { c.table_bytes(); }) {
    s.counter_table_bytes = counter_.table_bytes();
  }
  return s;
}

}  // namespace paygo::cache
