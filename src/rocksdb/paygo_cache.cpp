// PaygoCache: a rocksdb::Cache whose pins are PAYGO gets and puts
// (include/paygo/rocksdb/paygo_cache.hpp has the contract, docs/rocksdb.md
// the design and the correctness argument).
//
// Shape. 2^b shards by the key hash's top bits; each shard has a mutex for
// writers (insert, erase, evict, sweep), an open-addressing table of entry
// pointers that readers probe without the mutex, a CLOCK ring of its visible
// entries and a free list. Entries live in chunks that are never freed
// before the cache: a reader that loaded a pointer from a table may touch
// the entry after it was evicted and reused (type-stable memory, as the
// kernel's SLAB_TYPESAFE_BY_RCU pages); its PAYGO get fails on a dead entry
// and a successful one is re-checked (state, hash, key) before use.
//
// Entry states (written under the shard mutex, or by the last releaser of a
// zombie under the entry's zlock):
//   kFree     on the free list; its object is dead (or new)
//   kVisible  in the table and the CLOCK ring: Lookup finds it
//   kZombie   erased or overwritten while referenced: out of the table and
//             the ring; freed by whoever releases its last reference
//   kFreeing  a zombie whose last reference is gone, being freed
#include "paygo/rocksdb/paygo_cache.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "paygo/fence.hpp"

namespace paygo::rocksdb {
namespace {

using ::rocksdb::Cache;
using ::rocksdb::Slice;
using ::rocksdb::Status;
using DeleterFn = Cache::DeleterFn;
using Handle = Cache::Handle;

enum State : std::uint8_t { kFree, kVisible, kZombie, kFreeing };
constexpr std::size_t kInlineKey = 16;  // RocksDB's block cache keys are 16 bytes

/// Two cache lines: the first holds what a Lookup touches (the counter's
/// object, the hash, the state, the key), the second what the holder reads
/// next (Value, GetUsage) and what only writers touch.
struct alignas(64) Entry {
  /// First member: a raw token's object is the entry (entry_of()).
  Paygo::Object ref;
  /// The key hash; atomic because a reader compares it before its get
  /// (a filter only: the key is compared again once the get holds it).
  std::atomic<std::uint64_t> hash{0};
  /// See the state table at the top. Release stores, acquire loads: a
  /// reader that sees kVisible after its get sees the fields below.
  std::atomic<std::uint8_t> state{kFree};
  /// CLOCK's reference bit: set by a hit only if clear (no shared write on
  /// a steady hit), cleared by the hand. Relaxed: a heuristic.
  std::atomic<bool> referenced{false};
  /// Serialises the releasers of one zombie (release_zombie()).
  std::atomic<bool> zlock{false};
  bool high = false;  // inserted with Priority::HIGH
  // Written by the inserter while no reader can hold the entry (dead or
  // new), read by holders: ordered by the get's acquire of the word, which
  // pairs with reset()'s release (or, for a new entry, the table publish).
  std::uint32_t key_len = 0;
  char key_inline[kInlineKey];
  // Second line.
  void* value = nullptr;
  DeleterFn deleter = nullptr;
  std::size_t charge = 0;        // the caller's charge
  std::size_t total_charge = 0;  // charge + metadata (policy)
  char* key_heap = nullptr;      // keys longer than kInlineKey
  std::uint32_t key_heap_cap = 0;
  std::uint32_t clock_pos = 0;  // index in the shard's ring (mutex)
  Entry* next_free = nullptr;

  const char* key_data() const noexcept { return key_len <= kInlineKey ? key_inline : key_heap; }
  Slice key() const noexcept { return {key_data(), key_len}; }
  ~Entry() { delete[] key_heap; }
};
static_assert(std::is_standard_layout_v<Entry>);
static_assert(offsetof(Entry, ref) == 0);
static_assert(offsetof(Entry, value) == 64, "the Lookup's fields fill the first line");

Entry* entry_of(Handle* h) noexcept {
  return reinterpret_cast<Entry*>(&Paygo::raw_object(reinterpret_cast<std::uintptr_t>(h)));
}

std::uint64_t hash_key(const Slice& k) noexcept {
  const std::uint64_t h = std::hash<std::string_view>{}(std::string_view(k.data(), k.size()));
  // Mix: the shard takes the top bits, the table the low ones.
  return (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ULL;
}

/// An open-addressing table of entry pointers (linear probing, deletion by
/// backward shift, so no tombstones pile up). Readers probe it without the
/// mutex; writers hold it. A reader racing with a shift may miss an entry
/// that is there (a cache miss: RocksDB reads the block and inserts it,
/// which overwrites) but never returns a wrong one: every hit is checked
/// after the get.
struct Table {
  explicit Table(std::size_t n) : mask(n - 1), slots(new std::atomic<Entry*>[n]) {
    for (std::size_t i = 0; i < n; ++i) slots[i].store(nullptr, std::memory_order_relaxed);
  }
  std::size_t mask;
  std::unique_ptr<std::atomic<Entry*>[]> slots;
};

struct alignas(64) Shard {
  mutable std::mutex mu;
  /// Readers' view. Acquire loads pair with the release store in grow().
  std::atomic<Table*> table{nullptr};
  /// Earlier tables, kept until the cache dies: a reader may still probe
  /// one. The table only grows (doubling), so they sum to less than it.
  std::vector<std::unique_ptr<Table>> tables;
  std::size_t live = 0;                          // entries in the table (mu)
  std::vector<Entry*> ring;                      // CLOCK ring of visible entries (mu)
  std::size_t hand = 0;                          // (mu)
  Entry* free_list = nullptr;                    // (mu)
  std::vector<std::unique_ptr<Entry[]>> chunks;  // (mu)
  std::uint32_t inserts_since_sweep = 0;         // (mu)
  /// Written under mu, read relaxed by GetUsage() and friends (statistics).
  std::atomic<std::size_t> usage{0};
  std::atomic<std::size_t> capacity{0};
  std::atomic<std::uint64_t> evictions{0}, passes{0};
};

/// What a pass freed, for running the deleters after the mutex is dropped.
struct Freed {
  std::vector<Entry*> entries;
};

class PaygoCache final : public Cache {
 public:
  explicit PaygoCache(const PaygoCacheOptions& o);
  ~PaygoCache() override;

  const char* Name() const override { return "PaygoCache"; }
  using Cache::Insert;
  Status Insert(const Slice& key, void* value, std::size_t charge, DeleterFn deleter,
                Handle** handle, Priority priority) override;
  using Cache::Lookup;
  Handle* Lookup(const Slice& key, ::rocksdb::Statistics* stats) override;
  bool Ref(Handle* handle) override {
    counter_.dup_raw(reinterpret_cast<std::uintptr_t>(handle));
    return true;
  }
  using Cache::Release;
  bool Release(Handle* handle, bool erase_if_last_ref) override;
  void* Value(Handle* handle) override { return entry_of(handle)->value; }
  void Erase(const Slice& key) override;
  std::uint64_t NewId() override { return next_id_.fetch_add(1, std::memory_order_relaxed) + 1; }
  void SetCapacity(std::size_t capacity) override;
  void SetStrictCapacityLimit(bool strict) override {
    strict_.store(strict, std::memory_order_relaxed);
  }
  bool HasStrictCapacityLimit() const override { return strict_.load(std::memory_order_relaxed); }
  std::size_t GetCapacity() const override { return capacity_.load(std::memory_order_relaxed); }
  std::size_t GetUsage() const override;
  std::size_t GetOccupancyCount() const override;
  std::size_t GetTableAddressCount() const override;
  std::size_t GetUsage(Handle* handle) const override { return entry_of(handle)->total_charge; }
  std::size_t GetPinnedUsage() const override;
  std::size_t GetCharge(Handle* handle) const override { return entry_of(handle)->charge; }
  DeleterFn GetDeleter(Handle* handle) const override { return entry_of(handle)->deleter; }
  void ApplyToAllEntries(const std::function<void(const Slice& key, void* value, std::size_t charge,
                                                  DeleterFn deleter)>& callback,
                         const ApplyToAllEntriesOptions& opts) override;
  void EraseUnRefEntries() override;
  std::string GetPrintableOptions() const override;

  PaygoCacheStats stats() const;

 private:
  Shard& shard_of(std::uint64_t h) noexcept {
    return shards_[shard_bits_ == 0 ? 0 : h >> (64 - shard_bits_)];
  }
  static Entry* find_locked(const Table& t, std::uint64_t h, const Slice& key) noexcept;
  void table_insert(Shard& s, Entry* e);
  static void table_remove(Shard& s, Entry* e) noexcept;
  void unlink(Shard& s, Entry* e) noexcept;  // out of table and ring (mu)
  Entry* alloc_entry(Shard& s);
  /// CLOCK: free unreferenced entries until usage + need <= capacity or a
  /// full turn found nothing more (mu held).
  void evict(Shard& s, std::size_t need, Freed& out);
  void sweep(Shard& s);
  /// The put of a release, and the zombie's free if it was the last.
  bool put_and_check(Entry* e, std::uintptr_t raw);
  /// Release(h, true), or any release while the shard is over capacity.
  bool release_and_erase(Shard& s, Entry* e, std::uintptr_t raw);
  void release_zombie(Entry* e, bool& freed);
  void run_deleters(Freed& f);
  void recycle(Shard& s, Freed& f) noexcept;  // onto the free list (mu)
  std::size_t metadata_bytes() const noexcept { return sizeof(Entry); }

  PaygoCacheOptions opt_;
  Paygo counter_;  // declared before the shards: outlives their entries
  int shard_bits_;
  std::unique_ptr<Shard[]> shards_;
  std::atomic<std::size_t> capacity_;
  std::atomic<bool> strict_;
  std::atomic<std::uint64_t> next_id_{0};
};

int pick_shard_bits(const PaygoCacheOptions& o) {
  if (o.num_shard_bits >= 20) throw std::invalid_argument("PaygoCache: num_shard_bits >= 20");
  if (o.num_shard_bits >= 0) return o.num_shard_bits;
  // As LRUCache: a shard per 512 KiB, at most 64.
  int bits = 0;
  for (std::size_t n = o.capacity / (512 * 1024); n > 1 && bits < 6; n >>= 1) ++bits;
  return bits;
}

PaygoCache::PaygoCache(const PaygoCacheOptions& o)
    : Cache(o.memory_allocator),
      opt_(o),
      counter_(o.counter),
      shard_bits_(pick_shard_bits(o)),
      shards_(new Shard[std::size_t{1} << shard_bits_]),
      capacity_(o.capacity),
      strict_(o.strict_capacity_limit) {
  const std::size_t n = std::size_t{1} << shard_bits_;
  for (std::size_t i = 0; i < n; ++i) {
    Shard& s = shards_[i];
    s.tables.push_back(std::make_unique<Table>(64));
    s.table.store(s.tables.back().get(), std::memory_order_release);
    s.capacity.store((o.capacity + n - 1) / n, std::memory_order_relaxed);
  }
}

PaygoCache::~PaygoCache() {
  // Handles must not outlive the cache (as for every rocksdb::Cache; a
  // debug build's Paygo destructor checks it). Every entry not yet freed
  // gets its deleter, visible or zombie.
  const std::size_t n = std::size_t{1} << shard_bits_;
  for (std::size_t i = 0; i < n; ++i) {
    Shard& s = shards_[i];
    for (auto& c : s.chunks) {
      for (std::size_t j = 0; j < 64; ++j) {
        Entry& e = c[j];
        const std::uint8_t st = e.state.load(std::memory_order_relaxed);
        if ((st == kVisible || st == kZombie) && e.deleter != nullptr) e.deleter(e.key(), e.value);
      }
    }
  }
}

/*** Lookup: the read path ***/

Handle* PaygoCache::Lookup(const Slice& key, ::rocksdb::Statistics*) {
  const std::uint64_t h = hash_key(key);
  Shard& s = shard_of(h);
  // Acquire: pairs with the release store of a grown table.
  const Table* t = s.table.load(std::memory_order_acquire);
  for (std::size_t i = h, n = 0; n <= t->mask; ++i, ++n) {
    // Acquire: pairs with the release store that published the entry.
    Entry* e = t->slots[i & t->mask].load(std::memory_order_acquire);
    if (e == nullptr) return nullptr;
    if (e->hash.load(std::memory_order_relaxed) != h) continue;
    // Raw at once: every put of this counter is put_raw() (a reference
    // that Ref() put on an anchor may be released through any handle).
    const std::uintptr_t raw = counter_.into_raw(counter_.get(e->ref));
    // Frozen (a reclaim or demotion deciding) or dead (evicted, maybe
    // reused): a miss, as if it had gone a moment earlier.
    if (raw == 0) return nullptr;
    // Re-check under the reference, which keeps this incarnation alive:
    // acquire pairs with the inserter's release store of kVisible.
    if (e->state.load(std::memory_order_acquire) != kVisible ||
        e->hash.load(std::memory_order_relaxed) != h || e->key_len != key.size() ||
        std::memcmp(e->key_data(), key.data(), key.size()) != 0) [[unlikely]] {
      // Reused for another key, or erased, under us: drop the reference
      // (if the entry became a zombie, ours may be its last) and look on.
      put_and_check(e, raw);
      continue;
    }
    if (!e->referenced.load(std::memory_order_relaxed)) {
      e->referenced.store(true, std::memory_order_relaxed);  // CLOCK hint; written only if clear
    }
    return reinterpret_cast<Handle*>(raw);
  }
  return nullptr;
}

/*** Release ***/

bool PaygoCache::Release(Handle* handle, bool erase_if_last_ref) {
  if (handle == nullptr) return false;
  const auto raw = reinterpret_cast<std::uintptr_t>(handle);
  Entry* e = entry_of(handle);
  Shard& s = shard_of(e->hash.load(std::memory_order_relaxed));
  // As LRUCache: over its capacity, a shard frees an entry at its last
  // release (relaxed: statistics; a stale read only delays that free to
  // the next insert's eviction).
  if (erase_if_last_ref || s.usage.load(std::memory_order_relaxed) >
                               s.capacity.load(std::memory_order_relaxed)) [[unlikely]]
    return release_and_erase(s, e, raw);
  return put_and_check(e, raw);
}

bool PaygoCache::put_and_check(Entry* e, std::uintptr_t raw) {
  counter_.put_raw(raw);
  // Pairs with the heavy fence of the eraser's reclaim (Erase(): the state
  // store, then freeze + heavy fence + scan): either we see the zombie
  // state, or its scan sees our put. seq_cst: a plain load on x86.
  light_fence();
  if (e->state.load(std::memory_order_seq_cst) != kZombie) [[likely]]
    return false;
  bool freed = false;
  release_zombie(e, freed);
  return freed;
}

bool PaygoCache::release_and_erase(Shard& s, Entry* e, std::uintptr_t raw) {
  {
    std::unique_lock lk(s.mu);
    if (e->state.load(std::memory_order_relaxed) == kVisible) {
      // Still ours to decide: nothing can evict, erase or reuse it while we
      // hold the mutex, and after our put only a reclaim can tell whether
      // it was the last reference (the freeze keeps new Lookups out).
      counter_.put_raw(raw);
      if (!counter_.try_reclaim(e->ref)) return false;
      unlink(s, e);
      e->state.store(kFreeing, std::memory_order_relaxed);
      s.usage.fetch_sub(e->total_charge, std::memory_order_relaxed);
      lk.unlock();
      Freed f;
      f.entries.push_back(e);
      run_deleters(f);
      lk.lock();
      recycle(s, f);
      return true;
    }
  }
  return put_and_check(e, raw);  // a zombie: its last releaser frees it
}

// Our put is done; if the entry is a zombie, try to free it. Releasers of
// one zombie take its zlock in turn, each after its own put, so the last
// one to take it happens after every put (the lock chain) and its reclaim
// counts 0. The entry may have been freed and even reused since our put
// (its memory is type-stable): a zombie found here is freed only if its
// reclaim proves it unreferenced, whichever incarnation it is.
void PaygoCache::release_zombie(Entry* e, bool& freed) {
  // Acquire: pairs with the release in the unlock below.
  while (e->zlock.exchange(true, std::memory_order_acquire)) std::this_thread::yield();
  bool mine = false;
  if (e->state.load(std::memory_order_acquire) == kZombie && counter_.try_reclaim(e->ref)) {
    e->state.store(kFreeing, std::memory_order_relaxed);
    mine = true;
  }
  e->zlock.store(false, std::memory_order_release);
  if (!mine) return;
  freed = true;
  Shard& s = shard_of(e->hash.load(std::memory_order_relaxed));
  s.usage.fetch_sub(e->total_charge, std::memory_order_relaxed);
  Freed f;
  f.entries.push_back(e);
  run_deleters(f);
  std::lock_guard lk(s.mu);
  recycle(s, f);
}

void PaygoCache::run_deleters(Freed& f) {
  for (Entry* e : f.entries) {
    if (e->deleter != nullptr) e->deleter(e->key(), e->value);
  }
}

void PaygoCache::recycle(Shard& s, Freed& f) noexcept {
  for (Entry* e : f.entries) {
    e->value = nullptr;
    e->deleter = nullptr;
    // Release: a stale reader's acquire of the state (after a get that can
    // only succeed after reset()) sees these stores.
    e->state.store(kFree, std::memory_order_release);
    e->next_free = s.free_list;
    s.free_list = e;
  }
  f.entries.clear();
}

/*** Insert ***/

Entry* PaygoCache::alloc_entry(Shard& s) {
  if (s.free_list == nullptr) {
    constexpr std::size_t kChunk = 64;
    s.chunks.push_back(std::make_unique<Entry[]>(kChunk));
    Entry* c = s.chunks.back().get();
    for (std::size_t j = kChunk; j-- > 0;) {
      // A new object is live with count 0; make it dead like the recycled
      // ones, so every entry taken from the list is revived by reset().
      const bool dead = counter_.try_reclaim(c[j].ref);
      (void)dead;  // nothing can hold a new object: always true
      c[j].next_free = s.free_list;
      s.free_list = &c[j];
    }
  }
  Entry* e = s.free_list;
  s.free_list = e->next_free;
  e->next_free = nullptr;
  return e;
}

Status PaygoCache::Insert(const Slice& key, void* value, std::size_t charge, DeleterFn deleter,
                          Handle** handle, Priority priority) {
  const std::uint64_t h = hash_key(key);
  Shard& s = shard_of(h);
  const std::size_t total =
      charge + (opt_.metadata_charge_policy == ::rocksdb::kFullChargeCacheMetadata
                    ? metadata_bytes() + (key.size() > kInlineKey ? key.size() : 0)
                    : 0);
  Freed freed;
  Status st;
  Entry* zombie = nullptr;
  {
    std::unique_lock lk(s.mu);
    const std::size_t cap = s.capacity.load(std::memory_order_relaxed);
    if (s.usage.load(std::memory_order_relaxed) + total > cap) evict(s, total, freed);
    if (s.usage.load(std::memory_order_relaxed) + total > cap &&
        (handle == nullptr || strict_.load(std::memory_order_relaxed))) {
      // As LRUCache: without a handle the entry is accepted and dropped at
      // once (its deleter runs); with one and a strict limit, MemoryLimit
      // (the caller keeps the value).
      lk.unlock();
      run_deleters(freed);
      {
        std::lock_guard relk(s.mu);
        recycle(s, freed);
      }
      if (handle != nullptr) {
        *handle = nullptr;
        return Status::MemoryLimit("Insert failed because the PaygoCache is full");
      }
      if (deleter != nullptr) deleter(key, value);
      return Status::OK();
    }
    Entry* e = alloc_entry(s);
    // The entry is dead: no reader can hold it, so these plain stores race
    // with nobody (a stale reader's get fails until reset() below).
    if (key.size() > kInlineKey && key.size() > e->key_heap_cap) {
      delete[] e->key_heap;
      e->key_heap = new char[key.size()];
      e->key_heap_cap = static_cast<std::uint32_t>(key.size());
    }
    e->key_len = static_cast<std::uint32_t>(key.size());
    if (key.size() != 0) std::memcpy(const_cast<char*>(e->key_data()), key.data(), key.size());
    e->value = value;
    e->deleter = deleter;
    e->charge = charge;
    e->total_charge = total;
    e->high = priority == Priority::HIGH;
    e->referenced.store(false, std::memory_order_relaxed);
    e->hash.store(h, std::memory_order_relaxed);
    // Release: a reader whose get succeeds on the new incarnation checks
    // the state with acquire and so sees the fields above.
    e->state.store(kVisible, std::memory_order_release);
    counter_.reset(e->ref);  // alive again, next generation (release)
    counter_.set_mode(e->ref,
                      e->high && opt_.high_priority_distributed ? Mode::Distributed : Mode::Auto);
    // An older entry of this key becomes a zombie (overwrite); it is freed
    // below, once the mutex is dropped, if nobody holds it.
    if ((zombie = find_locked(*s.table.load(std::memory_order_relaxed), h, key)) != nullptr) {
      unlink(s, zombie);
      zombie->state.store(kZombie, std::memory_order_seq_cst);  // as in Erase()
      st = Status::OkOverwritten();
    }
    table_insert(s, e);
    s.usage.fetch_add(total, std::memory_order_relaxed);
    if (handle != nullptr) {
      // Live and not frozen (only a holder of the mutex freezes a visible
      // entry), so the get succeeds; the loop is belt and braces.
      Paygo::Token tok;
      while (!(tok = counter_.get(e->ref))) std::this_thread::yield();
      *handle = reinterpret_cast<Handle*>(counter_.into_raw(std::move(tok)));
    }
    if (opt_.sweep_interval != 0 && ++s.inserts_since_sweep >= opt_.sweep_interval) {
      s.inserts_since_sweep = 0;
      sweep(s);
    }
  }
  if (zombie != nullptr) {
    bool gone = false;
    release_zombie(zombie, gone);
  }
  run_deleters(freed);
  if (!freed.entries.empty()) {
    std::lock_guard lk(s.mu);
    recycle(s, freed);
  }
  return st;
}

Entry* PaygoCache::find_locked(const Table& t, std::uint64_t h, const Slice& key) noexcept {
  for (std::size_t i = h, n = 0; n <= t.mask; ++i, ++n) {
    Entry* e = t.slots[i & t.mask].load(std::memory_order_relaxed);
    if (e == nullptr) return nullptr;
    if (e->hash.load(std::memory_order_relaxed) == h && e->key() == key) return e;
  }
  return nullptr;
}

void PaygoCache::table_insert(Shard& s, Entry* e) {
  Table* t = s.table.load(std::memory_order_relaxed);
  if ((s.live + 1) * 4 > (t->mask + 1) * 3) {
    // Grow: copy into a table twice the size and publish it; the old one
    // stays (readers may be in it) until the cache dies.
    auto bigger = std::make_unique<Table>((t->mask + 1) * 2);
    for (std::size_t i = 0; i <= t->mask; ++i) {
      if (Entry* x = t->slots[i].load(std::memory_order_relaxed)) {
        std::size_t j = x->hash.load(std::memory_order_relaxed) & bigger->mask;
        while (bigger->slots[j].load(std::memory_order_relaxed) != nullptr)
          j = (j + 1) & bigger->mask;
        bigger->slots[j].store(x, std::memory_order_relaxed);
      }
    }
    t = bigger.get();
    s.tables.push_back(std::move(bigger));
    // Release: pairs with the readers' acquire load of the table.
    s.table.store(t, std::memory_order_release);
  }
  std::size_t j = e->hash.load(std::memory_order_relaxed) & t->mask;
  while (t->slots[j].load(std::memory_order_relaxed) != nullptr) j = (j + 1) & t->mask;
  // Release: pairs with the readers' acquire load of the slot.
  t->slots[j].store(e, std::memory_order_release);
  ++s.live;
  e->clock_pos = static_cast<std::uint32_t>(s.ring.size());
  s.ring.push_back(e);
}

void PaygoCache::table_remove(Shard& s, Entry* e) noexcept {
  Table* t = s.table.load(std::memory_order_relaxed);
  std::size_t i = e->hash.load(std::memory_order_relaxed) & t->mask;
  while (t->slots[i].load(std::memory_order_relaxed) != e) i = (i + 1) & t->mask;
  // Backward shift: pull later entries of the probe run into the hole.
  for (std::size_t j = (i + 1) & t->mask;; j = (j + 1) & t->mask) {
    Entry* x = t->slots[j].load(std::memory_order_relaxed);
    if (x == nullptr) break;
    const std::size_t home = x->hash.load(std::memory_order_relaxed) & t->mask;
    // x may move to the hole i if its home is not in (i, j] (cyclically).
    const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (stays) continue;
    t->slots[i].store(x, std::memory_order_release);  // as in table_insert()
    i = j;
  }
  t->slots[i].store(nullptr, std::memory_order_relaxed);
  --s.live;
}

void PaygoCache::unlink(Shard& s, Entry* e) noexcept {
  table_remove(s, e);
  const std::uint32_t p = e->clock_pos;
  Entry* last = s.ring.back();
  s.ring[p] = last;
  last->clock_pos = p;
  s.ring.pop_back();
  if (s.hand >= s.ring.size()) s.hand = 0;
}

/*** Eviction: CLOCK with batch freeze/query ***/

void PaygoCache::evict(Shard& s, std::size_t need, Freed& out) {
  constexpr std::size_t kBatch = 32;
  const std::size_t cap = s.capacity.load(std::memory_order_relaxed);
  Paygo::Object* cand[kBatch];
  Entry* cand_e[kBatch];
  bool dead[kBatch];
  // At most two turns of the hand: the first may only clear reference bits.
  std::size_t budget = 2 * s.ring.size() + 1;
  while (s.usage.load(std::memory_order_relaxed) + need > cap && !s.ring.empty() && budget > 0) {
    std::size_t n = 0;
    std::size_t want = 0;
    while (n < kBatch && budget > 0 && !s.ring.empty()) {
      --budget;
      if (s.hand >= s.ring.size()) s.hand = 0;
      Entry* e = s.ring[s.hand++];
      if (e->referenced.load(std::memory_order_relaxed)) {
        e->referenced.store(false, std::memory_order_relaxed);
        continue;
      }
      if (std::find(cand_e, cand_e + n, e) != cand_e + n) break;  // wrapped onto ourselves
      cand[n] = &e->ref;
      cand_e[n] = e;
      ++n;
      want += e->total_charge;
      if (s.usage.load(std::memory_order_relaxed) + need <= cap + want) break;
    }
    if (n == 0) break;
    s.passes.fetch_add(1, std::memory_order_relaxed);
    counter_.reclaim_batch(std::span<Paygo::Object* const>(cand, n), std::span<bool>(dead, n));
    for (std::size_t k = 0; k < n; ++k) {
      if (!dead[k]) continue;  // pinned by a handle: stays
      Entry* e = cand_e[k];
      unlink(s, e);
      e->state.store(kFreeing, std::memory_order_relaxed);
      s.usage.fetch_sub(e->total_charge, std::memory_order_relaxed);
      s.evictions.fetch_add(1, std::memory_order_relaxed);
      out.entries.push_back(e);
    }
  }
}

void PaygoCache::sweep(Shard& s) {
  std::vector<Paygo::Object*> objs;
  for (Entry* e : s.ring) {
    if (counter_.promoted(e->ref)) objs.push_back(&e->ref);
  }
  if (!objs.empty()) counter_.sweep(objs);
}

/*** Erase and friends ***/

void PaygoCache::Erase(const Slice& key) {
  const std::uint64_t h = hash_key(key);
  Shard& s = shard_of(h);
  Entry* e = nullptr;
  {
    std::lock_guard lk(s.mu);
    e = find_locked(*s.table.load(std::memory_order_relaxed), h, key);
    if (e == nullptr) return;
    unlink(s, e);
    // seq_cst, then the reclaim's freeze and heavy fence: pairs with the
    // light fence between a releaser's put and its state load (Release()).
    e->state.store(kZombie, std::memory_order_seq_cst);
  }
  bool gone = false;
  release_zombie(e, gone);  // frees it now if nobody holds it
}

void PaygoCache::EraseUnRefEntries() {
  const std::size_t n = std::size_t{1} << shard_bits_;
  for (std::size_t i = 0; i < n; ++i) {
    Shard& s = shards_[i];
    Freed f;
    {
      std::lock_guard lk(s.mu);
      std::vector<Paygo::Object*> objs;
      std::vector<Entry*> ents(s.ring.begin(), s.ring.end());
      for (Entry* e : ents) objs.push_back(&e->ref);
      auto dead = std::make_unique<bool[]>(objs.size());
      counter_.reclaim_batch(objs, std::span<bool>(dead.get(), objs.size()));
      for (std::size_t k = 0; k < ents.size(); ++k) {
        if (!dead[k]) continue;
        unlink(s, ents[k]);
        ents[k]->state.store(kFreeing, std::memory_order_relaxed);
        s.usage.fetch_sub(ents[k]->total_charge, std::memory_order_relaxed);
        f.entries.push_back(ents[k]);
      }
    }
    run_deleters(f);
    std::lock_guard lk(s.mu);
    recycle(s, f);
  }
}

void PaygoCache::SetCapacity(std::size_t capacity) {
  capacity_.store(capacity, std::memory_order_relaxed);
  const std::size_t n = std::size_t{1} << shard_bits_;
  for (std::size_t i = 0; i < n; ++i) {
    Shard& s = shards_[i];
    Freed f;
    {
      std::lock_guard lk(s.mu);
      s.capacity.store((capacity + n - 1) / n, std::memory_order_relaxed);
      evict(s, 0, f);
    }
    run_deleters(f);
    std::lock_guard lk(s.mu);
    recycle(s, f);
  }
}

/*** Statistics and iteration ***/

std::size_t PaygoCache::GetUsage() const {
  std::size_t u = 0;
  for (std::size_t i = 0, n = std::size_t{1} << shard_bits_; i < n; ++i)
    u += shards_[i].usage.load(std::memory_order_relaxed);
  return u;
}

std::size_t PaygoCache::GetOccupancyCount() const {
  std::size_t c = 0;
  for (std::size_t i = 0, n = std::size_t{1} << shard_bits_; i < n; ++i) {
    std::lock_guard lk(shards_[i].mu);
    c += shards_[i].live;
  }
  return c;
}

std::size_t PaygoCache::GetTableAddressCount() const {
  std::size_t c = 0;
  for (std::size_t i = 0, n = std::size_t{1} << shard_bits_; i < n; ++i)
    c += shards_[i].table.load(std::memory_order_acquire)->mask + 1;
  return c;
}

std::size_t PaygoCache::GetPinnedUsage() const {
  // Exact when quiescent (RocksDB uses it for statistics only): approx()
  // sums the entry's counts without freezing it.
  std::size_t u = 0;
  for (std::size_t i = 0, n = std::size_t{1} << shard_bits_; i < n; ++i) {
    Shard& s = shards_[i];
    std::lock_guard lk(s.mu);
    for (Entry* e : s.ring) {
      if (counter_.approx(e->ref) > 0) u += e->total_charge;
    }
    for (auto& c : s.chunks) {
      for (std::size_t j = 0; j < 64; ++j) {
        if (c[j].state.load(std::memory_order_relaxed) == kZombie) u += c[j].total_charge;
      }
    }
  }
  return u;
}

void PaygoCache::ApplyToAllEntries(
    const std::function<void(const Slice& key, void* value, std::size_t charge, DeleterFn deleter)>&
        callback,
    const ApplyToAllEntriesOptions&) {
  for (std::size_t i = 0, n = std::size_t{1} << shard_bits_; i < n; ++i) {
    Shard& s = shards_[i];
    std::lock_guard lk(s.mu);  // no entry of this shard is freed meanwhile
    for (Entry* e : s.ring) callback(e->key(), e->value, e->charge, e->deleter);
  }
}

std::string PaygoCache::GetPrintableOptions() const {
  std::string r;
  r += "    capacity : " + std::to_string(GetCapacity()) + "\n";
  r += "    num_shard_bits : " + std::to_string(shard_bits_) + "\n";
  r += "    strict_capacity_limit : " + std::to_string(HasStrictCapacityLimit()) + "\n";
  r += "    high_priority_distributed : " + std::to_string(opt_.high_priority_distributed) + "\n";
  r += "    paygo max_slots : " + std::to_string(counter_.options().max_slots) + "\n";
  r += "    paygo table_entries : " + std::to_string(counter_.options().table_entries) + "\n";
  return r;
}

PaygoCacheStats PaygoCache::stats() const {
  PaygoCacheStats st;
  for (std::size_t i = 0, n = std::size_t{1} << shard_bits_; i < n; ++i) {
    Shard& s = shards_[i];
    std::lock_guard lk(s.mu);
    st.entries += s.live;
    for (Entry* e : s.ring) st.distributed += counter_.distributed(e->ref) ? 1 : 0;
    st.evictions += s.evictions.load(std::memory_order_relaxed);
    st.reclaim_passes += s.passes.load(std::memory_order_relaxed);
  }
  st.metadata_bytes_per_entry = metadata_bytes();
  st.table_bytes = counter_.table_bytes();
  st.tune = counter_.tune_stats();
  return st;
}

}  // namespace

std::shared_ptr<Cache> NewPaygoCache(const PaygoCacheOptions& options) {
  return std::make_shared<PaygoCache>(options);
}

const void* detail::core_instance_in_library() noexcept {
  return paygo::detail::core_instance();
}
const void* detail::thread_tag_in_library() noexcept {
  return paygo::detail::this_thread_tag();
}

std::optional<PaygoCacheStats> GetPaygoCacheStats(const Cache& cache) {
  if (const auto* p = dynamic_cast<const PaygoCache*>(&cache)) return p->stats();
  return std::nullopt;
}

}  // namespace paygo::rocksdb
