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

#include <algorithm>
#include <atomic>
#include <bit>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "paygo/cache/backend.hpp"
#include "paygo/cache/result.hpp"
#include "paygo/config.hpp"
#include "paygo/counter.hpp"
#include "paygo/detail/wake.hpp"
#include "paygo/domain.hpp"

namespace paygo::cache {

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
  std::size_t counter_table_bytes = 0;  ///< bytes held by the counter's per-slot tables
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

template <RefCounter C>
class PageCache {
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

  Result<FileId> open(const std::string& path);
  /// One open() fewer; the last one closes: new reads get EBADF, cached
  /// pages are dropped (pinned ones are unlinked and freed when released),
  /// the backend's handle is closed once loads in flight have finished.
  Result<void> close(FileId id);
  PAYGO_INLINE Result<std::size_t> read(FileId id, void* buf, std::size_t len,
                                        std::uint64_t offset);
  Result<PinnedPage> pin(FileId id, std::uint64_t page);
  Result<void> advise(FileId id, std::uint64_t offset, std::uint64_t len, Advice advice);
  Result<std::uint64_t> refresh(FileId id);
  Result<std::uint64_t> size(FileId id) const;
  /// Evicts every unpinned page, `batch` frames per heavy fence (0: the
  /// option's drop_batch; 1 reclaims page by page, for comparison).
  DropReport drop(std::size_t batch = 0);
  [[nodiscard]] CacheStats stats() const;
  /// What the cache knows of `page` of `id` right now (EBADF: no such file).
  Result<PageInfo> page_info(FileId id, std::uint64_t page) const;

  C& counter() noexcept { return counter_; }
  [[nodiscard]] std::size_t frame_count() const noexcept { return frames_.size(); }

 private:
  // Frame states, and who moves a frame from one to the next. A frame is
  // *dead* (the counter's sense: every get fails) exactly while Free.
  //
  //   from               to       by                                 how
  //   Free               Loading  the miss that took it off the      plain stores, then the
  //                               free list (its owner)              counter's reset() (release)
  //   Loading            Ready    that owner, after its pread        store_and_wake_all (release)
  //   Loading            Error    that owner, the pread failed       slot unlinked first
  //   Loading            Idle     that owner, lost the publish       a stale reader holds it
  //                               race
  //   Loading            Free     that owner, lost the race, and     try_reclaim, then as below
  //                               nobody held it
  //   Ready              Idle     refresh(), close() (a pin keeps    CAS, after unlinking the
  //                               it)                                slot
  //   Ready/Error/Idle   Free     the thread that claimed it, when   claim (Frame::claimed),
  //                               its reclaim batch found it dead    reclaim_batch, unlink,
  //                               (CLOCK, drop, DontNeed, close)     release the claim, free list
  //
  // Only the claimant frees a published frame, so two reclaimers never race
  // on one frame; claims are tried only on Ready/Error/Idle frames and the
  // state is re-read after the claim.
  enum State : std::uint32_t { kFree, kLoading, kReady, kError, kIdle };
  static constexpr std::uint64_t kNoKey = ~std::uint64_t{0};
  static constexpr unsigned kPageBits = 40;
  static constexpr std::uint64_t kPageMask = (std::uint64_t{1} << kPageBits) - 1;
  static constexpr std::uint64_t kMaxFiles = std::uint64_t{1} << (64 - kPageBits);
  static std::uint64_t make_key(FileId f, std::uint64_t page) noexcept {
    return (std::uint64_t{f} << kPageBits) | page;
  }

  /// Padded to its own lines: frames of pages that different threads read
  /// (DRBL, DRBM) must not share a line, or an atomic count written by one
  /// thread would slow the other down for nothing (false sharing).
  struct alignas(kDestructiveInterference) Frame {
    explicit Frame(C& c, std::byte* d) : ref(c), data(d) {}
    typename C::Object ref;
    /// (file, page) this frame holds, kNoKey when free. Written only by the
    /// thread that owns the frame while it is dead or loading; readers read
    /// it after a successful get, whose acquire pairs with the release in
    /// the counter's reset(), so relaxed suffices on both sides.
    std::atomic<std::uint64_t> key{kNoKey};
    /// Release store of kReady/kError after the data: pairs with the
    /// acquire loads in try_hit(), acquire_loop() and claim().
    std::atomic<std::uint32_t> state{kFree};
    std::atomic<std::uint32_t> len{0};    // valid bytes; published by `state`
    std::atomic<int> error{0};            // errno of a failed load; published by `state`
    std::atomic<bool> referenced{false};  // CLOCK bit; a hint, relaxed
    std::atomic<bool> hot{false};         // pinned distributed (a Hot range); a statistic, relaxed
    /// A reclaimer's exclusive right to free this frame (the state table).
    /// Acquire exchange in claim(), release store in unclaim().
    std::atomic<bool> claimed{false};
    std::byte* const data;
  };

  struct Index {
    explicit Index(std::uint64_t n) : npages(n), slots(new std::atomic<Frame*>[n]) {
      for (std::uint64_t i = 0; i < n; ++i) slots[i].store(nullptr, std::memory_order_relaxed);
    }
    const std::uint64_t npages;
    /// Published with release CAS by loaders; loaded with acquire by readers.
    std::unique_ptr<std::atomic<Frame*>[]> slots;
  };

  struct File {
    FileId id = 0;
    int handle = -1;  // the backend's; written under files_mu_ while closed
    std::string path;
    std::atomic<std::uint64_t> size{0};  // a bound for reads; relaxed (see refresh())
    /// Current index. Release store on growth, acquire load by readers. Old
    /// indexes stay alive in `retired` until the cache dies (type-stable).
    std::atomic<Index*> index{nullptr};
    /// Loads in flight (load_page()); with `closed`, Dekker-style: a load
    /// increments then reads closed, close() sets closed then waits for
    /// zero, all seq_cst, so either the load sees closed or close() sees it.
    std::atomic<std::uint32_t> io{0};
    std::atomic<bool> closed{false};
    std::uint32_t opens = 0;  // guarded by files_mu_
    std::mutex mu;            // guards pinned, retired, growth
    /// Pinned ranges: [first, last) pages advised Hot or Central.
    struct Range {
      std::uint64_t first, last;
      Advice advice;
    };
    std::vector<Range> pinned;
    std::atomic<bool> any_pinned{false};  // relaxed hint; `pinned` is read under mu
    std::vector<std::unique_ptr<Index>> retired;
    std::unique_ptr<Index> current_owner;
    Advice advice_locked(std::uint64_t page) const {
      for (const Range& r : pinned)
        if (page >= r.first && page < r.last) return r.advice;
      return Advice::Normal;
    }
  };

  /// FileId -> File. `open` is the file while it is open (nullptr when
  /// closed: read() and the rest answer EBADF with no extra test); `file`
  /// never changes once set (reclaimers find a frame's file through it).
  /// Both: release stores under files_mu_, acquire loads. The table grows
  /// by copy; old tables stay alive (readers may hold them).
  struct FileTable {
    explicit FileTable(std::size_t n) : size(n), entries(new Entry[n]) {}
    struct Entry {
      std::atomic<File*> open{nullptr};
      std::atomic<File*> file{nullptr};
    };
    const std::size_t size;
    std::unique_ptr<Entry[]> entries;
  };

  /// Per-thread statistics: one writer each, so plain load+store, no RMW on
  /// the read path. Padded: each shard is written by one thread. A thread
  /// finds its own through its slot of stats_domain_ (the slot's payload),
  /// and a thread that adopts a retired slot adopts its shard, sums and all.
  struct alignas(kDestructiveInterference) Shard {
    std::atomic<std::uint64_t> hits{0}, misses{0};
    /// The owner's own: the hit count of its next sweep step and its
    /// jitter generator (plain: nobody else reads them).
    std::uint64_t next_sweep = 0;
    std::uint64_t jitter = 0x9E3779B97F4A7C15ULL;
    std::size_t free_list = 0;  // the thread's own free list (its slot index mod kFreeLists)
  };

  /// Scratch of one thread's reclaims (no allocation under a lock, none in
  /// steady state at all).
  struct ReclaimScratch {
    std::vector<Frame*> cands, freed;
    std::vector<typename C::Object*> objs;
    std::unique_ptr<bool[]> dead;
    std::size_t dead_size = 0;
  };
  static ReclaimScratch& scratch() {
    thread_local ReclaimScratch s;
    return s;
  }

  static std::uint64_t pages_for(std::uint64_t bytes) noexcept {
    return (bytes + kPageSize - 1) / kPageSize;
  }
  /// The open file `id`, or nullptr (unknown or closed).
  File* file(FileId id) const noexcept {
    // Acquire (both): pair with the release stores in grow_files()/open().
    const FileTable* t = files_.load(std::memory_order_acquire);
    return id < t->size ? t->entries[id].open.load(std::memory_order_acquire) : nullptr;
  }
  /// The file `id` was, open or closed (for reclaimers).
  File* file_any(FileId id) const noexcept {
    // Acquire (both): pair with the release stores in grow_files()/open().
    const FileTable* t = files_.load(std::memory_order_acquire);
    return id < t->size ? t->entries[id].file.load(std::memory_order_acquire) : nullptr;
  }
  /// This thread's statistics shard; nullptr past max_threads live threads.
  PAYGO_INLINE Shard* shard() noexcept {
    Slot* s = stats_domain_.current();
    if (s == nullptr) [[unlikely]]
      return nullptr;
    // Relaxed: this thread owns the slot, and a payload set by a former
    // owner was handed over with the slot (the registry's mutex).
    auto* sh = static_cast<Shard*>(s->payload.load(std::memory_order_relaxed));
    if (sh == nullptr) [[unlikely]]
      sh = new_shard(*s);
    return sh;
  }
  [[gnu::noinline]] Shard* new_shard(Slot& s);
  void count_miss() noexcept {
    if (Shard* sh = shard()) [[likely]] {
      auto& c = sh->misses;  // this thread is the only writer
      c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    } else {
      overflow_.misses.fetch_add(1, std::memory_order_relaxed);  // statistic only
    }
  }

  /// A hit: the thread's shard, and about every sweep_every hits a sweep
  /// step (jittered: a sweep interval that is a fixed number of one
  /// object's gets could alias with the wrap of its entries' use counters).
  void count_hit() noexcept {
    if (Shard* sh = shard()) [[likely]] {
      auto& c = sh->hits;  // this thread is the only writer
      const std::uint64_t n = c.load(std::memory_order_relaxed) + 1;
      c.store(n, std::memory_order_relaxed);
      if constexpr (kSweeps) {
        if (n >= sh->next_sweep) [[unlikely]]
          sweep_step(*sh, n);
      }
    } else {
      overflow_.hits.fetch_add(1, std::memory_order_relaxed);  // statistic only
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
  Frame* pop_free() noexcept;
  void push_free(std::span<Frame* const> frames) noexcept;
  /// The reclaim right on `fr` if it is Ready, Error or Idle and nobody
  /// else holds it (the state table).
  bool claim(Frame& fr) noexcept;
  static void unclaim(Frame& fr) noexcept;
  /// Reclaims the claimed frames `cands` in one batch (per the counter's
  /// reclaim_calls), frees the dead ones and releases every claim; the busy
  /// ones stay in `cands`. `keep`: hand one freed frame to the caller.
  void reclaim(std::vector<Frame*>& cands, DropReport* report, Frame** keep);
  /// The dead, claimed frame `fr` off its file's index, to state Free (the
  /// caller puts it on the free list or uses it).
  void release_dead(Frame& fr);
  bool unlink_page(File& f, std::uint64_t page, Frame* fr);
  void grow_index(File& f, std::uint64_t npages);
  void grow_files(std::size_t min_size);  // under files_mu_
  std::vector<Frame*> cached_in_range(File& f, std::uint64_t first, std::uint64_t last);
  /// Evicts the unpinned pages of `f` in [first, last) (DontNeed, close);
  /// `unlink_busy`: also unlink the pinned ones (they go Idle).
  void evict_range(File& f, std::uint64_t first, std::uint64_t last, bool unlink_busy);
  void note_pin(int delta) noexcept {
#ifndef NDEBUG
    live_pins_.fetch_add(delta, std::memory_order_relaxed);  // a debug check's count
#else
    (void)delta;
#endif
  }

  C counter_;
  CacheOptions opt_;
  std::unique_ptr<PosixBackend> own_backend_;
  Backend* backend_;
  std::byte* memory_ = nullptr;
  std::deque<Frame> frames_;  // stable addresses

  /// Free frames, in kFreeLists lists (a thread pushes to and pops from
  /// its own, by its statistics slot, and steals from the others when its
  /// own is empty), so two threads missing at once do not pass one lock's
  /// line back and forth on every miss. Each vector has room for every
  /// frame from the start, so the O(1) critical sections never allocate.
  static constexpr std::size_t kFreeLists = 4;
  struct alignas(kDestructiveInterference) FreeList {
    std::mutex mu;
    std::vector<Frame*> frames;        // guarded by mu
    std::atomic<std::size_t> size{0};  // relaxed hint: skip empty lists without the lock
  };
  std::size_t home_list() noexcept {
    const Shard* sh = shard();
    return sh == nullptr ? 0 : sh->free_list;
  }
  FreeList free_[kFreeLists];
  /// CLOCK hand: fetch_add hands each evictor its own window (relaxed: it
  /// only spreads the evictors; claims make frames exclusive).
  std::atomic<std::uint64_t> clock_hand_{0};
  std::atomic<std::uint64_t> evictions_{0}, busy_{0};  // statistics, relaxed

  std::mutex files_mu_;  // guards open/close, the tables' growth, identities
  std::atomic<FileTable*> files_{nullptr};
  std::vector<std::unique_ptr<FileTable>> file_tables_;  // the current one last
  std::vector<std::unique_ptr<File>> file_owner_;
  /// Open files by identity (device, inode; by path for backends without
  /// identity()), open or closed: the same file gets its old FileId back.
  std::map<FileIdentity, File*> by_identity_;
  std::map<std::string, File*> by_path_;

  Domain stats_domain_;
  std::mutex shards_mu_;           // guards shard_store_'s growth
  std::deque<Shard> shard_store_;  // stable addresses; a slot's payload points here
  Shard overflow_;
  std::atomic<long> live_pins_{0};  // live PinnedPages; counted in debug builds only

  std::mutex sweep_mu_;                        // one sweeper at a time (Paygo::sweep's rule)
  std::size_t sweep_hand_ = 0;                 // next frame to sweep; guarded by sweep_mu_
  std::atomic<std::uint64_t> sweep_steps_{0};  // statistic, relaxed
};

}  // namespace paygo::cache

#include "paygo/cache/page_cache_impl.hpp"
