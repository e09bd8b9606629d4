// paygo/cache/page_cache.hpp — a buffered-read page cache over real files,
// counting page references with any paygo::RefCounter.
//
// Contract
// --------
// PageCache<C> keeps a fixed pool of 4 KiB frames (CacheOptions::
// capacity_bytes of them, allocated once: frames are reused, never returned,
// so a reader may touch a frame that is being recycled and must re-check it,
// as the kernel's `folio != xas_reload()` does). It offers:
//   open(path)                     -> FileId; a file already open (same inode)
//                                     gets the same FileId and one more open
//   close(file)                    -> one open fewer; the last drops its pages
//   read(file, buf, len, offset)   -> bytes read, pread(2) semantics (short at EOF)
//   pin(file, page)                -> PinnedPage: zero-copy view of one page
//   advise(file, off, len, advice) -> Normal | Hot | Central | WillNeed | DontNeed
//   refresh(file)                  -> re-stat after the file changed underneath
//   drop()                         -> evict everything unpinned (drop_caches)
//   stats(), page_info(file, page) -> counters; one page's mode (a snapshot)
// Errors are values (Result<T>, [[nodiscard]]), never exceptions or crashes:
// ENOENT, EACCES, EISDIR, EBADF (unknown or closed FileId), EINVAL, ENOBUFS
// (every frame is pinned or loading: the cache is too small for the pins in
// flight; the call fails at once rather than wait), EMFILE (2^24 distinct
// files in one cache's life), or the backend's error for a failed read (the
// frame is discarded, nothing is cached, the next read tries again).
//
// Lifetimes. A PinnedPage keeps its bytes valid, even across close() of its
// file, until it is reset or destroyed, and it must not outlive its cache:
// debug builds count live pins and abort with a message if the cache dies
// with one. A closed FileId stays reserved for its file: opening the same
// inode again brings it back (memory for a file's index is kept until the
// cache dies, so it is bounded by the distinct files, not by the opens).
//
// Read path (as Linux's filemap_get_read_batch + filemap_read): look up the
// frame in the file's index → get a token → re-check that the index still
// maps the page to that frame and that the frame holds that page → copy →
// put. A miss takes a frame from the free list or by CLOCK eviction (which
// reclaims candidates in batches with the counter's freeze/query protocol,
// one heavy fence per batch, and skips busy frames), reads it with the
// backend's pread, and publishes it with a compare-and-swap; concurrent
// missers of one page wait for that one read.
//
// Counting modes. With no hint (Advice::Normal, the default, as
// POSIX_FADV_NORMAL means "no special treatment") a page's count tunes
// itself where the counter can (Paygo: central until several threads
// contend on it, distributed then, central again when it cools; other
// counters: central). advise(Hot) pins the range distributed (the seed's
// hot section: cached pages switch now, pages loaded into it later start
// distributed); advise(Central) pins it central; advise(Normal) hands it
// back to self-tuning. Demotion needs sweeps even when nothing misses: every
// CacheOptions::sweep_every hits a thread makes, it sweeps the next
// sweep_frames frames of the pool (skipped if another thread is sweeping).
// One step costs one relaxed load per frame and, when it finds promoted
// pages, one pass over the counter's tables (docs/cache.md measures it).
//
// Coherence: this is a read cache. If a file is changed by someone else,
// call refresh(): it re-reads the size, unlinks cached pages past the new
// end and the partial last page, and grows the index; reads never return
// bytes past the size the cache knows.
//
// When not to use: for data read once (use pread), or written through the
// cache (there is no write path).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "paygo/cache/backend.hpp"
#include "paygo/cache/detail/cache_base.hpp"
#include "paygo/cache/result.hpp"
#include "paygo/cache/types.hpp"
#include "paygo/config.hpp"
#include "paygo/counter.hpp"

namespace paygo::cache {

template <RefCounter C>
class PageCache : private detail::PageCacheBase {
  using Token = typename C::Token;

 public:
  /// A pinned page: the frame cannot be evicted or reused while this lives.
  /// Movable, not copyable; must not outlive its cache (checked in debug
  /// builds). bytes() is empty after reset().
  class PinnedPage {
   public:
    PinnedPage() = default;
    PinnedPage(PinnedPage&& o) noexcept
        : token_(std::move(o.token_)),
          data_(std::exchange(o.data_, nullptr)),
          size_(std::exchange(o.size_, 0)),
          cache_(std::exchange(o.cache_, nullptr)) {}
    PinnedPage& operator=(PinnedPage&& o) noexcept {
      if (this != &o) {
        reset();
        token_ = std::move(o.token_);
        data_ = std::exchange(o.data_, nullptr);
        size_ = std::exchange(o.size_, 0);
        cache_ = std::exchange(o.cache_, nullptr);
      }
      return *this;
    }
    ~PinnedPage() { reset(); }
    std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
    std::size_t size() const noexcept { return size_; }
    explicit operator bool() const noexcept { return static_cast<bool>(token_); }
    void reset() noexcept {
      if (cache_ != nullptr) {
        token_.reset();
        cache_->note_pin(-1);
        cache_ = nullptr;
      }
      data_ = nullptr;
      size_ = 0;
    }

   private:
    friend class PageCache;
    PinnedPage(PageCache& c, Token t, const std::byte* d, std::size_t n)
        : token_(std::move(t)), data_(d), size_(n), cache_(&c) {
      c.note_pin(+1);
    }
    Token token_;
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
    PageCache* cache_ = nullptr;  // set while token_ holds a reference
  };

  template <class... CounterArgs>
  explicit PageCache(CacheOptions options = {}, CounterArgs&&... counter_args);
  ~PageCache();
  PageCache(const PageCache&) = delete;
  PageCache& operator=(const PageCache&) = delete;

  Result<FileId> open(const std::string& path) { return open_file(path); }
  /// One open() fewer; the last one closes: new reads get EBADF, cached
  /// pages are dropped (pinned ones are unlinked and freed when released),
  /// the backend's handle is closed once loads in flight have finished.
  Result<void> close(FileId id);
  PAYGO_INLINE Result<std::size_t> read(FileId id, void* buf, std::size_t len,
                                        std::uint64_t offset);
  Result<PinnedPage> pin(FileId id, std::uint64_t page);
  Result<void> advise(FileId id, std::uint64_t offset, std::uint64_t len, Advice advice);
  Result<std::uint64_t> refresh(FileId id) { return refresh_file(id); }
  Result<std::uint64_t> size(FileId id) const { return file_size(id); }
  /// Evicts every unpinned page, `batch` frames per heavy fence (0: the
  /// option's drop_batch; 1 reclaims page by page, for comparison).
  DropReport drop(std::size_t batch = 0);
  [[nodiscard]] CacheStats stats() const;
  /// What the cache knows of `page` of `id` right now (EBADF: no such file).
  Result<PageInfo> page_info(FileId id, std::uint64_t page) const;

  C& counter() noexcept { return counter_; }
  [[nodiscard]] std::size_t frame_count() const noexcept { return frames_.size(); }

 private:
  // The frame state table and the counter-independent types (File, Index,
  // Shard) are in detail/cache_base.hpp.
  using FrameBase = detail::FrameBase;
  using File = detail::File;
  using Index = detail::Index;
  using Shard = detail::Shard;
  using detail::PageCacheBase::claim;
  using detail::PageCacheBase::unclaim;
  using enum detail::FrameState;
  static constexpr unsigned kPageBits = detail::kPageBits;
  static constexpr std::uint64_t kPageMask = detail::kPageMask;
  static std::uint64_t make_key(FileId f, std::uint64_t page) noexcept {
    return detail::make_key(f, page);
  }
  static std::uint64_t pages_for(std::uint64_t bytes) noexcept { return detail::pages_for(bytes); }

  /// The counter's object, first in the frame (see detail::IndexedFrame).
  struct FrameRef {
    explicit FrameRef(C& c) : ref(c) {}
    typename C::Object ref;
  };
  /// Padded to its own lines: frames of pages that different threads read
  /// (DRBL, DRBM) must not share a line, or an atomic count written by one
  /// thread would slow the other down for nothing (false sharing). The
  /// base's fields follow the counter's object on the same line.
  struct alignas(kDestructiveInterference) Frame : FrameRef, FrameBase {
    explicit Frame(C& c, std::byte* d) : FrameRef(c), FrameBase(d) {}
  };
  using IndexedFrame = detail::IndexedFrame;
  static Frame* frame(FrameBase* fr) noexcept { return static_cast<Frame*>(fr); }
  static Frame* frame(IndexedFrame* p) noexcept { return reinterpret_cast<Frame*>(p); }
  static IndexedFrame* indexed(Frame* fr) noexcept { return reinterpret_cast<IndexedFrame*>(fr); }

  /// Scratch of one thread's reclaims (no allocation under a lock, none in
  /// steady state at all).
  struct ReclaimScratch {
    std::vector<Frame*> cands;
    std::vector<FrameBase*> freed;
    std::vector<typename C::Object*> objs;
    std::unique_ptr<bool[]> dead;
    std::size_t dead_size = 0;
  };
  static ReclaimScratch& scratch() {
    thread_local ReclaimScratch s;
    return s;
  }

  /// A hit: the thread's shard, and about every sweep_every hits a sweep
  /// step (jittered: a sweep interval that is a fixed number of one
  /// object's gets could alias with the wrap of its entries' use counters).
  PAYGO_INLINE void count_hit() noexcept {
    if (Shard* sh = shard()) [[likely]] {
      auto& c = sh->hits;  // this thread is the only writer
      const std::uint64_t n = c.load(std::memory_order_relaxed) + 1;
      c.store(n, std::memory_order_relaxed);
      if constexpr (kSweeps) {
        if (n >= sh->next_sweep) [[unlikely]]
          sweep_step(*sh, n);
      }
    } else {
      count_overflow_hit();
    }
  }
  /// Counters that tune themselves (Paygo): set_mode() and sweep().
  static constexpr bool kSweeps =
      requires(C & c, typename C::Object& o, std::span<typename C::Object* const> objs) {
    c.sweep(objs);
    c.promoted(o);
  };
  /// The counting mode of advice Normal / Hot / Central on frame `fr`.
  void apply_advice(Frame& fr, Advice a) noexcept;
  [[gnu::noinline]] void sweep_step(Shard& sh, std::uint64_t hits) noexcept;
  PAYGO_INLINE Token try_hit(File& f, std::uint64_t page, Frame*& out) noexcept;
  /// read()'s loop from byte `done`: kHitPath serves hits inline and hands
  /// the rest of the read to read_pages_slow() at the first page it cannot.
  template <bool kHitPath>
  Result<std::size_t> read_pages(File& f, std::byte* out, std::size_t len, std::uint64_t offset,
                                 std::size_t done);
  [[gnu::noinline]] Result<std::size_t> read_pages_slow(File& f, std::byte* out, std::size_t len,
                                                        std::uint64_t offset, std::size_t done);
  /// The whole lookup: hit, miss (load), wait for a loader, retry; used by
  /// pin(), advise(WillNeed) and read_pages<false>().
  Result<Frame*> acquire_loop(File& f, std::uint64_t page, Token& token);
  Result<Frame*> load_page(File& f, Index& idx, std::uint64_t page, Token& token, bool& retry);
  /// A free frame, dead and ours: the free list, else CLOCK (evict()).
  Frame* take_frame();
  [[gnu::noinline]] Frame* evict();
  /// Reclaims the claimed frames `cands` in one batch (per the counter's
  /// reclaim_calls), frees the dead ones and releases every claim; the busy
  /// ones stay in `cands`. `keep`: hand one freed frame to the caller.
  void reclaim(std::vector<Frame*>& cands, DropReport* report, Frame** keep);
  /// Evicts the unpinned pages of `f` in [first, last) (DontNeed, close);
  /// `unlink_busy`: also unlink the pinned ones (they go Idle).
  void evict_range(File& f, std::uint64_t first, std::uint64_t last, bool unlink_busy);

  C counter_;
  std::deque<Frame> frames_;  // stable addresses
};

}  // namespace paygo::cache

#include "paygo/cache/detail/control.hpp"
#include "paygo/cache/detail/miss_path.hpp"
#include "paygo/cache/detail/read_path.hpp"
