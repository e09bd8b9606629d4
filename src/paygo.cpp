// PAYGO slow paths: table creation, entry claim, freeze/query, batch reclaim.
#include "paygo/counters/paygo.hpp"

#include <algorithm>
#include <bit>
#include <new>
#include <vector>

namespace paygo {

using detail::PaygoEntry;
using detail::PaygoTable;

Paygo::Paygo(Options options) : opt_(options), domain_(DomainOptions{options.max_slots}) {
  opt_.max_slots = domain_.max_slots();
  opt_.table_entries = std::bit_ceil(std::max<std::uint32_t>(opt_.table_entries, 1));
  opt_.probe = std::clamp<std::uint32_t>(opt_.probe, 1, opt_.table_entries);
  if (opt_.local_limit < 1) opt_.local_limit = 1;
  std::uint32_t gs = opt_.group_size;
  if (gs == 0) gs = (opt_.max_slots + 63) / 64;
  gs = std::bit_ceil(std::max<std::uint32_t>(gs, 1));
  while (((opt_.max_slots - 1) >> std::countr_zero(gs)) >= 64) gs <<= 1;  // at most 64 groups
  opt_.group_size = gs;
  group_shift_ = static_cast<std::uint32_t>(std::countr_zero(gs));
  index_mask_ = opt_.table_entries - 1;
  fast_key_ = (static_cast<std::uintptr_t>(domain_.id()) << 1) | 1;
}

Paygo::~Paygo() {
  // Tokens must not outlive the counter (documented precondition).
  for (std::uint32_t i = 0, n = domain_.high_water(); i < n; ++i) {
    if (auto* t =
            static_cast<PaygoTable*>(domain_.slot(i).payload.load(std::memory_order_acquire))) {
      ::operator delete (t, std::align_val_t{alignof(PaygoTable)});
    }
  }
}

PaygoTable* Paygo::make_table(detail::Slot& slot) noexcept {
  void* mem = ::operator new (sizeof(PaygoTable) + sizeof(PaygoEntry) * opt_.table_entries,
                              std::align_val_t{alignof(PaygoTable)}, std::nothrow);
  if (mem == nullptr) return nullptr;
  auto* t = new (mem) PaygoTable;
  for (std::uint32_t i = 0; i < opt_.table_entries; ++i) new (t->entries() + i) PaygoEntry;
  t->index_mask = opt_.table_entries - 1;
  t->group_bit = 1ULL << (slot.index >> group_shift_);
  t->slot = &slot;
  // Release: pairs with the acquire loads of `payload` in the scans, so a
  // scanner that finds the table sees its initialised entries.
  slot.payload.store(t, std::memory_order_release);
  return t;
}

PaygoTable* Paygo::find_table() noexcept {
  detail::Slot* slot = domain_.current();
  if (slot == nullptr) return nullptr;
  // Relaxed: we own the slot; its table, if any, was made by us or by the
  // thread we adopted it from (handed over under the registry mutex).
  auto* t = static_cast<PaygoTable*>(slot->payload.load(std::memory_order_relaxed));
  if (t == nullptr && (t = make_table(*slot)) == nullptr) return nullptr;
  detail::ThreadCache& tc = detail::tls_cache_for(domain_.id());
  // Enable the inline fast path for this thread.
  if (tc.domain_id == domain_.id() && tc.slot == slot) {
    tc.payload = t;
    tc.aux = fast_key_;
  }
  return t;
}

PaygoEntry* Paygo::claim(PaygoTable& table, const Object& o) noexcept {
  PaygoTable* t = &table;
  const std::uint32_t h = o.hint_;
  PaygoEntry* free_entry = nullptr;
  for (std::uint32_t i = 0; i < opt_.probe; ++i) {
    PaygoEntry& e = t->entries()[(h + i) & t->index_mask];
    const void* obj = e.obj.load(std::memory_order_relaxed);  // we are its only writer
    const std::int32_t local = e.local.load(std::memory_order_relaxed);
    // Acquire: pairs with the release fetch_sub of remote puts.
    const std::int32_t anchor = e.anchor.load(std::memory_order_acquire);
    if (obj == &o) {
      if (local < opt_.local_limit) return &e;
      // Saturated: fold the migration tax paid so far back into `local`.
      // anchor first, then local (release): a scan reads local (acquire)
      // then anchor, so it never sees the new local with the old anchor,
      // which would undercount.
      if (anchor < 0) {
        e.anchor.fetch_sub(anchor, std::memory_order_relaxed);
        e.local.store(local + anchor, std::memory_order_release);
        if (local + anchor < opt_.local_limit) return &e;
      }
      return nullptr;  // really that many references from this slot: go central
    }
    if (free_entry == nullptr && local + anchor == 0) free_entry = &e;
  }
  if (free_entry == nullptr) return nullptr;
  // Reuse a dead entry: no token points at it (local + anchor == 0). Fold the
  // anchor away first (anchor, then local with release, as above), then
  // retarget it. A scan for the old object sees 0 or a false positive; one
  // for the new object that runs before our get's fence may count a false
  // positive. Neither can undercount.
  if (const std::int32_t a = free_entry->anchor.load(std::memory_order_acquire); a != 0) {
    free_entry->anchor.fetch_sub(a, std::memory_order_relaxed);
    free_entry->local.store(free_entry->local.load(std::memory_order_relaxed) + a,
                            std::memory_order_release);
  }
  free_entry->obj.store(&o, std::memory_order_relaxed);  // we are its only writer
  return free_entry;
}

Paygo::Token Paygo::get_other(Object& o, std::uint64_t w0) noexcept {
  if (w0 & detail::kFrozen) return {};
  return get_central(o);
}

Paygo::Token Paygo::get_slow(Object& o, std::uint64_t w0) noexcept {
  PaygoTable* table = find_table();             // registers the slot, makes the table
  if (table == nullptr) return get_central(o);  // more threads than slots
  PaygoEntry* e = claim(*table, o);
  if (e == nullptr) return get_central(o);  // window full or saturated
  return publish(o, w0, *table, *e, e->local.load(std::memory_order_relaxed));
}

bool Paygo::try_freeze(Object& o) noexcept {
  if (!detail::central_tryfreeze(o.word_)) return false;
  heavy_fence();  // pairs with light_fence() in get()
  return true;
}

namespace {
/// One entry's contribution to the count of the object its `obj` named when
/// the scan looked: local + anchor, read in that order (see the fold in
/// claim()), both acquire: pairs with the release stores of `local` (get,
/// back-off, home put, fold) and the release fetch_subs of remote puts.
///
/// Clamped at 0. The owner may retarget the entry after the scan read `obj`
/// (the entry was free: no token of the scanned object on it) and the new
/// object's get and remote put may then land between our two loads: local
/// read before that get, anchor after that put, a negative sum that belongs
/// to the other object. Subtracting it would hide a live reference held
/// elsewhere (paygo-stress found this). An entry that still holds the
/// scanned object never reads below its live tokens (docs/design.md), so
/// the clamp only ever removes the other object's share.
std::int64_t entry_count(const PaygoEntry& e) noexcept {
  const std::int64_t v = std::int64_t{e.local.load(std::memory_order_acquire)} +
                         e.anchor.load(std::memory_order_acquire);
  return v > 0 ? v : 0;
}
}  // namespace

std::int64_t Paygo::sum_masked(const Object& o) const noexcept {
  // Relaxed: after heavy_fence() every bit set before a reader's light fence
  // is visible; bits set later belong to readers that will see FROZEN.
  std::uint64_t mask = o.mask_.load(std::memory_order_relaxed);
  const std::uint32_t hw = domain_.high_water();
  const std::uint32_t h = o.hint_;
  std::int64_t sum = 0;
  while (mask != 0) {
    const auto g = static_cast<std::uint32_t>(std::countr_zero(mask));
    mask &= mask - 1;
    const std::uint32_t first = g << group_shift_;
    const std::uint32_t last = std::min(hw, first + opt_.group_size);
    for (std::uint32_t s = first; s < last; ++s) {
      // Acquire: pairs with the release in make_table().
      auto* t =
          static_cast<const PaygoTable*>(domain_.slot(s).payload.load(std::memory_order_acquire));
      if (t == nullptr) continue;
      for (std::uint32_t i = 0; i < opt_.probe; ++i) {
        const PaygoEntry& e = t->entries()[(h + i) & t->index_mask];
        if (e.obj.load(std::memory_order_relaxed) != &o) continue;
        sum += entry_count(e);
      }
    }
  }
  return sum;
}

std::int64_t Paygo::query(const Object& o) const noexcept {
  return static_cast<std::int64_t>(o.word_.load(std::memory_order_acquire) & detail::kCountMask) +
         sum_masked(o);
}

std::int64_t Paygo::approx(const Object& o) const noexcept {
  return query(o);
}

void Paygo::kill(Object& o) noexcept {
  // Only now, with the object dead, may its group bits go: a reader that saw
  // a bit set and skipped setting it again holds no reference any more. The
  // reset() that revives the object publishes this store (release there,
  // acquire at the start of get()).
  o.mask_.store(0, std::memory_order_relaxed);
  detail::central_kill(o.word_);
}

bool Paygo::try_reclaim(Object& o) noexcept {
  if (!try_freeze(o)) return false;
  if (sum_masked(o) != 0) {
    unfreeze(o);
    return false;
  }
  kill(o);
  return true;
}

namespace {
/// Per-thread scratch for reclaim_batch(): an open-addressing map from object
/// address to candidate index, reused so a warm reclaimer does not allocate.
struct BatchScratch {
  std::vector<const void*> keys;
  std::vector<std::uint32_t> vals;
  std::vector<std::int64_t> sums;
  std::vector<std::uint32_t> frozen;
};
thread_local BatchScratch t_scratch;
}  // namespace

std::size_t Paygo::reclaim_batch(std::span<Object* const> objs, std::span<bool> dead) {
  BatchScratch& sc = t_scratch;
  sc.frozen.clear();
  for (std::size_t i = 0; i < objs.size(); ++i) {
    dead[i] = false;
    if (detail::central_tryfreeze(objs[i]->word_))
      sc.frozen.push_back(static_cast<std::uint32_t>(i));
  }
  if (sc.frozen.empty()) return 0;
  heavy_fence();  // one for the whole batch; pairs with light_fence() in get()

  const std::size_t cap = std::bit_ceil(sc.frozen.size() * 2);
  sc.keys.assign(cap, nullptr);
  sc.vals.resize(cap);
  sc.sums.assign(sc.frozen.size(), 0);
  const std::size_t mask = cap - 1;
  auto slot_of = [&](const void* p) { return static_cast<std::size_t>(hash(p)) & mask; };
  for (std::uint32_t k = 0; k < sc.frozen.size(); ++k) {
    const void* p = objs[sc.frozen[k]];
    std::size_t i = slot_of(p);
    while (sc.keys[i] != nullptr) i = (i + 1) & mask;
    sc.keys[i] = p;
    sc.vals[i] = k;
  }
  // One pass over every live table: O(candidates + entries), not
  // O(candidates x slots). Every entry is looked at, whatever the masks say.
  const std::uint32_t hw = domain_.high_water();
  for (std::uint32_t s = 0; s < hw; ++s) {
    auto* t =
        static_cast<const PaygoTable*>(domain_.slot(s).payload.load(std::memory_order_acquire));
    if (t == nullptr) continue;
    for (std::uint32_t j = 0; j <= t->index_mask; ++j) {
      const PaygoEntry& e = t->entries()[j];
      const void* obj = e.obj.load(std::memory_order_relaxed);
      if (obj == nullptr) continue;
      for (std::size_t i = slot_of(obj); sc.keys[i] != nullptr; i = (i + 1) & mask) {
        if (sc.keys[i] != obj) continue;
        sc.sums[sc.vals[i]] += entry_count(e);
        break;
      }
    }
  }
  std::size_t n = 0;
  for (std::uint32_t k = 0; k < sc.frozen.size(); ++k) {
    Object& o = *objs[sc.frozen[k]];
    if (sc.sums[k] != 0) {
      unfreeze(o);
    } else {
      kill(o);
      dead[sc.frozen[k]] = true;
      ++n;
    }
  }
  return n;
}

std::size_t Paygo::table_bytes() const noexcept {
  std::size_t n = 0;
  for (std::uint32_t i = 0, hw = domain_.high_water(); i < hw; ++i) {
    if (domain_.slot(i).payload.load(std::memory_order_acquire) != nullptr) {
      n += sizeof(PaygoTable) + sizeof(PaygoEntry) * opt_.table_entries;
    }
  }
  return n;
}

}  // namespace paygo
