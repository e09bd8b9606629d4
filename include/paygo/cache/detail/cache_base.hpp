// paygo/cache/detail/cache_base.hpp — internal: the part of the page cache
// that does not depend on the counter, compiled once (src/cache/cache_base.cpp)
// instead of once per PageCache<C>. Include paygo/cache/page_cache.hpp, never
// this file: its types change without notice.
//
// What lives here: the frame fields every counter shares (FrameBase), files
// and their indexes (open/close bookkeeping, growth, unlinking), the free
// lists, the reclaim claims, the per-thread statistics shards, refresh()
// and the loader's read from the backend. What depends on the counter (the
// read path's get, the reclaim batches, counting modes, sweeps) is in
// PageCache<C> (page_cache.hpp and the detail/ headers it includes).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "paygo/cache/backend.hpp"
#include "paygo/cache/result.hpp"
#include "paygo/cache/types.hpp"
#include "paygo/config.hpp"
#include "paygo/domain.hpp"

namespace paygo::cache::detail {

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
//                               it)                                slot (retire_linked())
//   Ready/Error/Idle   Free     the thread that claimed it, when   claim (FrameBase::claimed),
//                               its reclaim batch found it dead    reclaim_batch, unlink,
//                               (CLOCK, drop, DontNeed, close)     release the claim, free list
//
// Only the claimant frees a published frame, so two reclaimers never race
// on one frame; claims are tried only on Ready/Error/Idle frames and the
// state is re-read after the claim.
enum FrameState : std::uint32_t { kFree, kLoading, kReady, kError, kIdle };

inline constexpr std::uint64_t kNoKey = ~std::uint64_t{0};
inline constexpr unsigned kPageBits = 40;
inline constexpr std::uint64_t kPageMask = (std::uint64_t{1} << kPageBits) - 1;
inline constexpr std::uint64_t kMaxFiles = std::uint64_t{1} << (64 - kPageBits);
inline constexpr std::uint64_t make_key(FileId f, std::uint64_t page) noexcept {
  return (std::uint64_t{f} << kPageBits) | page;
}
inline constexpr std::uint64_t pages_for(std::uint64_t bytes) noexcept {
  return (bytes + kPageSize - 1) / kPageSize;
}

/// A frame's fields that do not depend on the counter. PageCache<C>::Frame
/// derives from it, adds the counter's object after these fields, and pads
/// the whole to its own cache lines (this struct is not padded, so that the
/// object shares the line with `key` and `state`, which every hit reads).
struct FrameBase {
  explicit FrameBase(std::byte* d) : data(d) {}
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
  std::atomic<bool> hinted{false};      // pinned distributed (a Hot range); a statistic, relaxed
  /// A reclaimer's exclusive right to free this frame (the state table).
  /// Acquire exchange in claim(), release store in unclaim().
  std::atomic<bool> claimed{false};
  std::byte* const data;
};

/// A frame as an index slot points at it: the address of the whole frame,
/// which PageCache<C> lays out with the counter's object first, so that the
/// hit path's one pointer is both the frame and the object it counts with
/// (the counter's token stores it). Never dereferenced as such: the template
/// casts it back to its Frame, the base to the FrameBase part
/// (PageCacheBase::base_of(), at an offset the template records).
struct IndexedFrame;

struct Index {
  explicit Index(std::uint64_t n) : npages(n), slots(new std::atomic<IndexedFrame*>[n]) {
    for (std::uint64_t i = 0; i < n; ++i) slots[i].store(nullptr, std::memory_order_relaxed);
  }
  const std::uint64_t npages;
  /// Published with release CAS by loaders; loaded with acquire by readers.
  std::unique_ptr<std::atomic<IndexedFrame*>[]> slots;
};

/// Drops the pointer to `fr` from an index slot if it is still there: a
/// stale frame (recycled, idle, failed) or an unlink. Relaxed: readers that
/// still load the old pointer fail their get or their re-check; nothing is
/// published by this store. True if this call removed it.
inline bool unlink_slot(std::atomic<IndexedFrame*>& slot, IndexedFrame* fr) noexcept {
  IndexedFrame* expected = fr;
  return slot.compare_exchange_strong(expected, nullptr, std::memory_order_relaxed);
}

struct File {
  FileId id = 0;
  int handle = -1;                     // the backend's; written under files_mu_ while closed
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

/// The counter-independent state and operations of PageCache<C>, which
/// inherits from it privately. Not a public type.
class PageCacheBase {
 protected:
  /// Normalises the options, sets up the backend, the file table, and the
  /// frames' memory (`frame_count()` pages); PageCache<C> builds the frames.
  explicit PageCacheBase(CacheOptions options);
  ~PageCacheBase();
  PageCacheBase(const PageCacheBase&) = delete;
  PageCacheBase& operator=(const PageCacheBase&) = delete;

  /// Where the FrameBase part of every frame lies from its start (set by
  /// PageCache<C>'s constructor before any frame is indexed).
  void set_frame_base_offset(std::ptrdiff_t off) noexcept { base_offset_ = off; }
  FrameBase* base_of(IndexedFrame* p) const noexcept {
    return reinterpret_cast<FrameBase*>(reinterpret_cast<char*>(p) + base_offset_);
  }
  IndexedFrame* indexed(FrameBase* b) const noexcept {
    return reinterpret_cast<IndexedFrame*>(reinterpret_cast<char*>(b) - base_offset_);
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

  Result<FileId> open_file(const std::string& path);
  /// close()'s first half: one open fewer; on the last, the file answers
  /// EBADF from now on and loads in flight have finished. Returns the File
  /// whose pages the caller must now evict (then finish_close()), nullptr
  /// if other opens remain. Called and finished under files_mu_.
  Result<File*> begin_close(FileId id);
  void finish_close(File& f);
  Result<std::uint64_t> file_size(FileId id) const;
  Result<std::uint64_t> refresh_file(FileId id);
  /// Replaces the pinned ranges of `f` over [first, range_end) by one of
  /// `advice` (none for Normal: back to self-tuning).
  void set_range_advice(File& f, std::uint64_t first, std::uint64_t range_end, Advice advice);
  void grow_index(File& f, std::uint64_t npages);
  /// The frames linked in `f`'s index for pages [first, last).
  std::vector<FrameBase*> cached_in_range(File& f, std::uint64_t first, std::uint64_t last);
  bool unlink_page(File& f, std::uint64_t page, FrameBase* fr);
  /// Unlinks `fr` from page `page` of `f` and, if this call unlinked it and
  /// it was Ready, makes it Idle (a pin keeps it; nobody finds it again;
  /// CLOCK frees it once unpinned). Only the unlinker changes the state of
  /// a linked, loaded frame; a frame still loading finishes and is simply
  /// never found again.
  void retire_linked(File& f, std::uint64_t page, FrameBase* fr);
  /// The dead, claimed frame `fr` off its file's index, to state Free (the
  /// caller puts it on the free list or uses it).
  void release_dead(FrameBase& fr);
  /// The loader's read of `page` of `f` into `fr` (fr->len set); the error
  /// of a failed read, or none. A short file lowers the bound served.
  std::error_code read_page(File& f, FrameBase& fr, std::uint64_t page);

  /// The reclaim right on `fr` if it is Ready, Error or Idle and nobody
  /// else holds it (the state table).
  static bool claim(FrameBase& fr) noexcept;
  static void unclaim(FrameBase& fr) noexcept {
    // Release: pairs with the acquire exchange in claim(): the next
    // claimant sees what this one did to the frame.
    fr.claimed.store(false, std::memory_order_release);
  }

  /// The constructor's free list: every frame, on list 0, handed out in
  /// the order given.
  void seed_free_list(std::span<FrameBase* const> frames);
  FrameBase* pop_free() noexcept;
  void push_free(std::span<FrameBase* const> frames) noexcept;

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
  void count_miss() noexcept;
  /// A hit of a thread past max_threads: the shared overflow counter.
  [[gnu::noinline]] void count_overflow_hit() noexcept;
  /// The counter-independent statistics: hits, misses, evictions, busy
  /// reclaims, sweep steps.
  void base_stats(CacheStats& s) const;
  void count_reclaimed(std::size_t freed_pages, std::size_t busy) noexcept {
    // Relaxed: statistics.
    if (freed_pages != 0) evictions_.fetch_add(freed_pages, std::memory_order_relaxed);
    if (busy != 0) busy_.fetch_add(busy, std::memory_order_relaxed);
  }

  /// Debug builds: abort with a message if a PinnedPage is still live.
  /// ~PageCache() calls it first, before its counter dies (whose own check
  /// would report the pin's token less clearly).
  void check_no_live_pins() const noexcept;
  void note_pin(int delta) noexcept {
#ifndef NDEBUG
    live_pins_.fetch_add(delta, std::memory_order_relaxed);  // a debug check's count
#else
    (void)delta;
#endif
  }

  CacheOptions opt_;
  std::size_t nframes_;
  std::ptrdiff_t base_offset_ = 0;  // of FrameBase in the template's Frame
  std::byte* memory_ = nullptr;     // nframes_ pages
  Backend* backend_;
  /// CLOCK hand: fetch_add hands each evictor its own window (relaxed: it
  /// only spreads the evictors; claims make frames exclusive).
  std::atomic<std::uint64_t> clock_hand_{0};
  std::mutex files_mu_;                        // guards open/close, the tables' growth, identities
  std::mutex sweep_mu_;                        // one sweeper at a time (Paygo::sweep's rule)
  std::size_t sweep_hand_ = 0;                 // next frame to sweep; guarded by sweep_mu_
  std::atomic<std::uint64_t> sweep_steps_{0};  // statistic, relaxed

 private:
  [[gnu::noinline]] Shard* new_shard(Slot& s);
  void grow_files(std::size_t min_size);  // under files_mu_
  std::size_t home_list() noexcept {
    const Shard* sh = shard();
    return sh == nullptr ? 0 : sh->free_list;
  }

  std::unique_ptr<PosixBackend> own_backend_;

  /// Free frames, in kFreeLists lists (a thread pushes to and pops from
  /// its own, by its statistics slot, and steals from the others when its
  /// own is empty), so two threads missing at once do not pass one lock's
  /// line back and forth on every miss. Each vector has room for every
  /// frame from the start, so the O(1) critical sections never allocate.
  static constexpr std::size_t kFreeLists = 4;
  struct alignas(kDestructiveInterference) FreeList {
    std::mutex mu;
    std::vector<FrameBase*> frames;    // guarded by mu
    std::atomic<std::size_t> size{0};  // relaxed hint: skip empty lists without the lock
  };
  FreeList free_[kFreeLists];
  std::atomic<std::uint64_t> evictions_{0}, busy_{0};  // statistics, relaxed

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
};

}  // namespace paygo::cache::detail
