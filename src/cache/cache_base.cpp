// The counter-independent part of the page cache (paygo/cache/detail/
// cache_base.hpp): files, indexes, free lists, claims, statistics shards,
// refresh and the loader's read. Compiled once for every PageCache<C>.
#include "paygo/cache/detail/cache_base.hpp"

#include <algorithm>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <thread>

#include "paygo/detail/wake.hpp"

namespace paygo::cache::detail {

PageCacheBase::PageCacheBase(CacheOptions options)
    : opt_(options),
      nframes_(std::max<std::size_t>(options.capacity_bytes / kPageSize, 1)),
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
  memory_ = static_cast<std::byte*>(std::aligned_alloc(kPageSize, nframes_ * kPageSize));
  if (memory_ == nullptr) throw std::bad_alloc();
  grow_files(std::max<std::size_t>(opt_.max_files, 16));
}

PageCacheBase::~PageCacheBase() {
  for (auto& f : file_owner_)
    if (f->opens > 0) backend_->close(f->handle);
  std::free(memory_);
}

void PageCacheBase::check_no_live_pins() const noexcept {
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
}

/*** Files ***/
void PageCacheBase::grow_files(std::size_t min_size) {
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

Result<FileId> PageCacheBase::open_file(const std::string& path) {
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

Result<File*> PageCacheBase::begin_close(FileId id) {
  File* f = file(id);
  if (f == nullptr) return std::errc::bad_file_descriptor;
  if (--f->opens > 0) return static_cast<File*>(nullptr);
  // New reads, pins and advice answer EBADF from here on; a reader that
  // found the File before is served or gets EBADF from load_page().
  // Release: pairs with the acquire in file().
  files_.load(std::memory_order_relaxed)
      ->entries[id]
      .open.store(nullptr, std::memory_order_release);
  // seq_cst (both): the Dekker pair with load_page()'s io increment and
  // closed load; the io load also acquires each load's release decrement,
  // so every frame a load published is in the index the caller sweeps next.
  f->closed.store(true, std::memory_order_seq_cst);
  while (f->io.load(std::memory_order_seq_cst) != 0) std::this_thread::yield();
  return f;
}

void PageCacheBase::finish_close(File& f) {
  backend_->close(f.handle);
  f.handle = -1;
}

Result<std::uint64_t> PageCacheBase::file_size(FileId id) const {
  File* f = file(id);
  if (f == nullptr) return std::errc::bad_file_descriptor;
  return f->size.load(std::memory_order_relaxed);
}

Result<std::uint64_t> PageCacheBase::refresh_file(FileId id) {
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
    if (IndexedFrame* fr = idx->slots[p].load(std::memory_order_acquire))
      retire_linked(*f, p, base_of(fr));
  }
  if (pages_for(*sz) > idx->npages) grow_index(*f, pages_for(*sz));
  return *sz;
}

void PageCacheBase::set_range_advice(File& f, std::uint64_t first, std::uint64_t range_end,
                                     Advice advice) {
  std::lock_guard lock(f.mu);
  // Subtract [first, range_end) from every range, then add it back pinned
  // (Normal leaves it to self-tuning: no range).
  std::vector<File::Range> next;
  for (const auto& r : f.pinned) {
    if (r.last <= first || r.first >= range_end) {
      next.push_back(r);
      continue;
    }
    if (r.first < first) next.push_back({r.first, first, r.advice});
    if (r.last > range_end) next.push_back({range_end, r.last, r.advice});
  }
  // Pages loaded into the range later get the same mode.
  if (advice != Advice::Normal) next.push_back({first, range_end, advice});
  f.pinned = std::move(next);
  f.any_pinned.store(!f.pinned.empty(), std::memory_order_relaxed);
}

void PageCacheBase::grow_index(File& f, std::uint64_t npages) {
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

std::vector<FrameBase*> PageCacheBase::cached_in_range(File& f, std::uint64_t first,
                                                       std::uint64_t last) {
  std::vector<FrameBase*> out;
  // Acquire: pairs with the release store in grow_index(); the slot loads
  // with the release CAS that published each frame (load_page()).
  Index* idx = f.index.load(std::memory_order_acquire);
  last = std::min(last, idx->npages);
  for (std::uint64_t p = first; p < last; ++p) {
    if (IndexedFrame* fr = idx->slots[p].load(std::memory_order_acquire))
      out.push_back(base_of(fr));
  }
  return out;
}

bool PageCacheBase::unlink_page(File& f, std::uint64_t page, FrameBase* fr) {
  // Acquire: pairs with the release store in grow_index().
  Index* idx = f.index.load(std::memory_order_acquire);
  if (page >= idx->npages) return false;
  return unlink_slot(idx->slots[page], indexed(fr));
}

void PageCacheBase::retire_linked(File& f, std::uint64_t page, FrameBase* fr) {
  if (!unlink_page(f, page, fr)) return;
  std::uint32_t st = kReady;
  fr->state.compare_exchange_strong(st, kIdle, std::memory_order_relaxed);
}

void PageCacheBase::release_dead(FrameBase& fr) {
  // The frame is dead: no token, no successful get until reset().
  const std::uint64_t key = fr.key.load(std::memory_order_relaxed);
  if (key != kNoKey) {
    if (File* f = file_any(static_cast<FileId>(key >> kPageBits)))
      unlink_page(*f, key & kPageMask, &fr);
  }
  fr.key.store(kNoKey, std::memory_order_relaxed);
  fr.hinted.store(false, std::memory_order_relaxed);
  // Every change of `state` wakes its waiters (a waiter holds a token, so
  // none should wait on a frame that gets here; if one did, it retries).
  paygo::detail::store_and_wake_all(fr.state, kFree);
}

std::error_code PageCacheBase::read_page(File& f, FrameBase& fr, std::uint64_t page) {
  const std::uint64_t size = f.size.load(std::memory_order_relaxed);
  const std::uint64_t start = page * kPageSize;
  const std::size_t want =
      start >= size ? 0
                    : static_cast<std::size_t>(std::min<std::uint64_t>(kPageSize, size - start));
  std::size_t got = 0;
  while (got < want) {
    auto r = backend_->pread(f.handle, fr.data + got, want - got, start + got);
    if (!r) return r.error();
    if (*r == 0) break;  // the file is shorter than we thought
    got += *r;
  }
  if (got < want) {
    // Shrunk underneath: lower the bound we serve (never raise it here).
    std::uint64_t cur = f.size.load(std::memory_order_relaxed);
    while (cur > start + got &&
           !f.size.compare_exchange_weak(cur, start + got, std::memory_order_relaxed)) {
    }
  }
  fr.len.store(static_cast<std::uint32_t>(got), std::memory_order_relaxed);
  return {};
}

/*** Claims and free lists ***/
bool PageCacheBase::claim(FrameBase& fr) noexcept {
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

void PageCacheBase::seed_free_list(std::span<FrameBase* const> frames) {
  for (FreeList& l : free_) l.frames.reserve(nframes_);    // never grow again: no allocation
  free_[0].frames.assign(frames.rbegin(), frames.rend());  // popped from the back: in order
  free_[0].size.store(frames.size(), std::memory_order_relaxed);
}

FrameBase* PageCacheBase::pop_free() noexcept {
  const std::size_t home = home_list();
  for (std::size_t k = 0; k < kFreeLists; ++k) {  // our own first, then steal
    FreeList& l = free_[(home + k) % kFreeLists];
    if (l.size.load(std::memory_order_relaxed) == 0) continue;  // a hint; checked under mu
    std::lock_guard lock(l.mu);
    if (l.frames.empty()) continue;
    FrameBase* fr = l.frames.back();
    l.frames.pop_back();
    l.size.store(l.frames.size(), std::memory_order_relaxed);
    return fr;
  }
  return nullptr;
}

void PageCacheBase::push_free(std::span<FrameBase* const> frames) noexcept {
  if (frames.empty()) return;
  FreeList& l = free_[home_list()];
  std::lock_guard lock(l.mu);
  // Never allocates: a frame is on one list at most once, and every list had
  // room for every frame from the start.
  assert(l.frames.size() + frames.size() <= l.frames.capacity());
  l.frames.insert(l.frames.end(), frames.begin(), frames.end());
  l.size.store(l.frames.size(), std::memory_order_relaxed);
}

/*** Statistics ***/
Shard* PageCacheBase::new_shard(Slot& slot) {
  Shard* sh = nullptr;
  {
    std::lock_guard lock(shards_mu_);
    sh = &shard_store_.emplace_back();
  }
  sh->jitter ^= (std::uint64_t{slot.index} + 1) * 0xD1B54A32D192ED03ULL;  // a sequence per shard
  sh->next_sweep = opt_.sweep_every == 0 ? ~std::uint64_t{0} : opt_.sweep_every;
  sh->free_list = slot.index % kFreeLists;
  // Release: pairs with the acquire in base_stats(), which then sees the
  // shard's initialisation (the owner itself reads it relaxed, see shard()).
  slot.payload.store(sh, std::memory_order_release);
  return sh;
}

void PageCacheBase::count_miss() noexcept {
  if (Shard* sh = shard()) [[likely]] {
    auto& c = sh->misses;  // this thread is the only writer
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  } else {
    overflow_.misses.fetch_add(1, std::memory_order_relaxed);  // statistic only
  }
}

void PageCacheBase::count_overflow_hit() noexcept {
  overflow_.hits.fetch_add(1, std::memory_order_relaxed);  // statistic only
}

void PageCacheBase::base_stats(CacheStats& s) const {
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
  s.sweeps = sweep_steps_.load(std::memory_order_relaxed);
  s.frames = nframes_;
}

}  // namespace paygo::cache::detail
