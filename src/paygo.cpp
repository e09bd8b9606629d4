// PAYGO slow paths: table creation, entry claim, freeze/query, batch reclaim.
#include "paygo/paygo_counter.hpp"

#include <sched.h>
#include <sys/sysinfo.h>
#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h>  // glibc 2.35+: __rseq_offset, __rseq_size
#endif

#include <algorithm>
#include <bit>
#include <chrono>
#include <new>
#include <thread>
#include <vector>

namespace paygo {

using detail::PaygoEntry;
using detail::PaygoTable;

std::string_view to_string(SlotMode m) noexcept {
  switch (m) {
    case SlotMode::Thread:
      return "thread";
    case SlotMode::Cpu:
      return "cpu";
    case SlotMode::Spill:
      return "spill";
  }
  return "?";
}

namespace {
/// The CPU this thread runs on now (it may move right after): one load
/// from glibc's rseq area, which the kernel updates on every migration;
/// sched_getcpu() where rseq is not registered (glibc older than 2.35,
/// GLIBC_TUNABLES=glibc.pthread.rseq=0, valgrind).
std::uint32_t current_cpu() noexcept {
#ifdef RSEQ_SIG
  if (__rseq_size != 0) {
    const auto* rs = reinterpret_cast<const struct rseq*>(
        static_cast<const char*>(__builtin_thread_pointer()) + __rseq_offset);
    // Relaxed (a GCC builtin: the field is the kernel's, not a C++ atomic):
    // only this thread reads it, and any recent value names a CPU that
    // this thread ran on, which is all a get needs (a stale one costs a
    // remote line, never a wrong count).
    const auto cpu = static_cast<std::int32_t>(__atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED));
    if (cpu >= 0) return static_cast<std::uint32_t>(cpu);
  }
#endif
  const int cpu = ::sched_getcpu();
  return cpu < 0 ? 0 : static_cast<std::uint32_t>(cpu);
}

/// Possible CPUs (not online ones: a CPU brought up later needs a table
/// too): the kernel's count, at least the online count.
std::uint32_t possible_cpus() noexcept {
  const int conf = ::get_nprocs_conf();
  const int online = ::get_nprocs();
  return static_cast<std::uint32_t>(std::max({conf, online, 1}));
}

const void* strip_claim(const void* obj) noexcept {
  return reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(obj) & ~detail::kClaimTag);
}
}  // namespace

bool parse_slot_mode(std::string_view name, SlotMode& out) noexcept {
  for (SlotMode m : {SlotMode::Thread, SlotMode::Cpu, SlotMode::Spill}) {
    if (name == to_string(m)) {
      out = m;
      return true;
    }
  }
  return false;
}

Paygo::Paygo(Options options) : opt_(options), domain_(DomainOptions{options.max_slots}) {
  opt_.max_slots = domain_.max_slots();
  opt_.table_entries = std::bit_ceil(std::max<std::uint32_t>(opt_.table_entries, 1));
  opt_.probe = std::clamp<std::uint32_t>(opt_.probe, 1, opt_.table_entries);
  opt_.local_limit = std::clamp<std::int32_t>(opt_.local_limit, 1,
                                              static_cast<std::int32_t>(detail::kLocalCountMask));
  opt_.promote_events = std::max<std::uint32_t>(opt_.promote_events, 1);
  opt_.demote_sweeps = std::clamp<std::uint32_t>(opt_.demote_sweeps, 1, 255);
  opt_.inhibit_ms = std::min<std::uint32_t>(opt_.inhibit_ms, 999);
  // The mask's 64 bits: slot groups below cpu_group_base_, CPU groups from it.
  cpu_group_base_ = opt_.slot_mode == SlotMode::Thread ? 64
                    : opt_.slot_mode == SlotMode::Cpu  ? 0
                                                       : 32;
  const std::uint32_t slot_groups = std::max<std::uint32_t>(cpu_group_base_, 1);
  std::uint32_t gs = opt_.group_size;
  if (gs == 0) gs = (opt_.max_slots + slot_groups - 1) / slot_groups;
  gs = std::bit_ceil(std::max<std::uint32_t>(gs, 1));
  while (((opt_.max_slots - 1) >> std::countr_zero(gs)) >= slot_groups) gs <<= 1;
  opt_.group_size = gs;
  group_shift_ = static_cast<std::uint32_t>(std::countr_zero(gs));
  index_mask_ = opt_.table_entries - 1;
  fast_key_ = (static_cast<std::uintptr_t>(domain_.id()) << 1) | 1;
  cpu_key_ = fast_key_ ^ (std::uintptr_t{1} << 63);  // also unique and never 0
  if (opt_.slot_mode != SlotMode::Thread) {
    ncpus_ = possible_cpus();
    cpu_tables_ = std::make_unique<std::atomic<PaygoTable*>[]>(ncpus_);
    const std::uint32_t cpu_groups = 64 - cpu_group_base_;
    while (((ncpus_ - 1) >> cpu_group_shift_) >= cpu_groups) ++cpu_group_shift_;
  }
}

template <class F>
void Paygo::for_each_table(F&& f) const {
  for (std::uint32_t i = 0, n = domain_.high_water(); i < n; ++i) {
    // Acquire: pairs with the release in make_table().
    if (auto* t = static_cast<PaygoTable*>(domain_.slot(i).payload.load(std::memory_order_acquire)))
      f(*t);
  }
  for (std::uint32_t c = 0; c < ncpus_; ++c) {
    // Acquire: pairs with the release CAS in make_cpu_table().
    if (PaygoTable* t = cpu_tables_[c].load(std::memory_order_acquire)) f(*t);
  }
}

Paygo::~Paygo() {
  // Tokens must not outlive the counter (documented precondition). Debug
  // builds check it: the central tokens are counted, the distributed ones
  // are the entries' local + anchor (exact: nothing runs any more).
  if constexpr (detail::kDebugChecks) {
    std::int64_t distributed = 0;
    for_each_table([&](const PaygoTable& t) {
      for (std::uint32_t j = 0; j <= t.index_mask; ++j) {
        const PaygoEntry& e = t.entries()[j];
        const std::int64_t v =
            std::int64_t{detail::local_count(e.local.load(std::memory_order_relaxed))} +
            e.anchor.load(std::memory_order_relaxed);
        distributed += v > 0 ? v : 0;
      }
    });
    central_tokens_.check(kName, distributed);
  }
  for_each_table(
      [](PaygoTable& t) { ::operator delete (&t, std::align_val_t{alignof(PaygoTable)}); });
}

namespace {
PaygoTable* new_table(std::uint32_t entries, std::uint64_t group_bit, Slot* slot) noexcept {
  void* mem = ::operator new (sizeof(PaygoTable) + sizeof(PaygoEntry) * entries,
                              std::align_val_t{alignof(PaygoTable)}, std::nothrow);
  if (mem == nullptr) return nullptr;
  auto* t = new (mem) PaygoTable;
  for (std::uint32_t i = 0; i < entries; ++i) new (t->entries() + i) PaygoEntry;
  t->index_mask = entries - 1;
  t->group_bit = group_bit;
  t->slot = slot;
  return t;
}
}  // namespace

PaygoTable* Paygo::make_table(Slot& slot) noexcept {
  PaygoTable* t = new_table(opt_.table_entries, 1ULL << (slot.index >> group_shift_), &slot);
  if (t == nullptr) return nullptr;
  // Release: pairs with the acquire loads of `payload` in the scans, so a
  // scanner that finds the table sees its initialised entries.
  slot.payload.store(t, std::memory_order_release);
  return t;
}

PaygoTable* Paygo::make_cpu_table(std::uint32_t cpu) noexcept {
  PaygoTable* t = new_table(opt_.table_entries,
                            1ULL << (cpu_group_base_ + (cpu >> cpu_group_shift_)), &cpu_home_);
  if (t == nullptr) return nullptr;
  PaygoTable* expected = nullptr;
  // Release on success: pairs with the acquire loads in get_cpu() and
  // for_each_table(), which then see the initialised entries. Acquire on
  // failure: the same for the winner's table, which we use instead.
  if (!cpu_tables_[cpu].compare_exchange_strong(expected, t, std::memory_order_release,
                                                std::memory_order_acquire)) {
    ::operator delete (t, std::align_val_t{alignof(PaygoTable)});
    return expected;
  }
  return t;
}

PaygoTable* Paygo::find_table() noexcept {
  Slot* slot = domain_.current();
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
    const std::uint32_t local = e.local.load(std::memory_order_relaxed);
    const std::int32_t count = detail::local_count(local);
    // Acquire: pairs with the release fetch_sub of remote puts.
    const std::int32_t anchor = e.anchor.load(std::memory_order_acquire);
    if (obj == &o) {
      if (count < opt_.local_limit) return &e;
      // Saturated: fold the migration tax paid so far back into `local`.
      // anchor first, then local (release): a scan reads local (acquire)
      // then anchor, so it never sees the new local with the old anchor,
      // which would undercount. count + anchor >= 0 (the live tokens), so
      // adding the negative anchor never borrows from the use bits.
      if (anchor < 0) {
        e.anchor.fetch_sub(anchor, std::memory_order_relaxed);
        e.local.store(local + static_cast<std::uint32_t>(anchor), std::memory_order_release);
        if (count + anchor < opt_.local_limit) return &e;
      }
      return nullptr;  // really that many references from this slot: go central
    }
    if (free_entry == nullptr && count + anchor == 0) free_entry = &e;
  }
  if (free_entry == nullptr) return nullptr;
  // Reuse a dead entry: no token points at it (local + anchor == 0). Fold the
  // anchor away first (anchor, then local with release, as above), then
  // retarget it. A scan for the old object sees 0 or a false positive; one
  // for the new object that runs before our get's fence may count a false
  // positive. Neither can undercount.
  if (const std::int32_t a = free_entry->anchor.load(std::memory_order_acquire); a != 0) {
    free_entry->anchor.fetch_sub(a, std::memory_order_relaxed);
    // Release: pairs with the acquire load of `local` in entry_count(), so a
    // scan that reads the folded local also sees the anchor fold before it.
    free_entry->local.store(
        free_entry->local.load(std::memory_order_relaxed) + static_cast<std::uint32_t>(a),
        std::memory_order_release);
  }
  free_entry->obj.store(&o, std::memory_order_relaxed);  // we are its only writer
  return free_entry;
}

void Paygo::dup_raw(std::uintptr_t r) noexcept {
  if (r & kRawCentral) {
    // Relaxed: the caller's reference already orders its use of the object;
    // this one is as old as that one. Every freeze needs a central count
    // of 0 (central_tryfreeze(), freeze_sc()), so with the caller's central
    // reference live the word is not frozen and cannot be.
    [[maybe_unused]] const std::uint64_t w =
        reinterpret_cast<std::atomic<std::uint64_t>*>(r & ~kRawCentral)
            ->fetch_add(1, std::memory_order_relaxed);
    if constexpr (detail::kDebugChecks) {
      if ((w & detail::kCountMask) == 0 || (w & detail::kFrozen) != 0)
        detail::contract_failure(kName, "dup_raw() of a central token that holds no reference");
      central_tokens_.got();
    }
    return;
  }
  auto* e = reinterpret_cast<PaygoEntry*>(r);
  Object& o = raw_object(r);
  for (;;) {
    // Relaxed: the light fence orders it before the re-check, as a get's
    // `local` store (publish()). The entry's group bit is in the mask: the
    // caller's reference on this entry keeps it there (bits go only after a
    // fenced scan found no distributed reference).
    e->anchor.fetch_add(1, std::memory_order_relaxed);
    light_fence();  // pairs with heavy_fence() in
                    // try_freeze()/try_reclaim()/reclaim_batch()/sweep()
    // seq_cst: as publish()'s re-check. No generation test: the object can
    // neither die nor be quietly demoted while the caller's reference lives.
    if (!(o.word_.load(std::memory_order_seq_cst) & detail::kFrozen)) return;
    // A reclaimer froze it and may have scanned our entry before the add.
    // Counting it now would give a frozen object a reference its query
    // did not see (the freeze contract: docs/design.md point 10). Take it
    // back (release: as a remote put) and wait for the unfreeze.
    e->anchor.fetch_sub(1, std::memory_order_release);
    while (o.word_.load(std::memory_order_relaxed) & detail::kFrozen) std::this_thread::yield();
  }
}

Paygo::Token Paygo::get_contended(Object& o, std::uint64_t w) noexcept {
  // central_tryget()'s loop; the CAS that sent us here failed because the
  // word changed (x86's CAS has no spurious failure; elsewhere a spurious
  // one is counted too: a promotion then needs promote_events of them).
  // Acquire on success: as in get_other().
  do {
    if (w & detail::kFrozen) return {};
  } while (!o.word_.compare_exchange_weak(w, w + 1, std::memory_order_acquire,
                                          std::memory_order_relaxed));
  if (!(w & detail::kPinned)) note_contention(o, true);
  return Token(&o.word_, nullptr);
}

Paygo::Token Paygo::get_fallback(Object& o) noexcept {
  // Striped by thread: a statistic must not become the shared line that the
  // fallback already is. Relaxed: a statistic.
  const auto t = reinterpret_cast<std::uintptr_t>(detail::this_thread_tag());
  fallbacks_[(t >> 6) % kStripes].n.fetch_add(1, std::memory_order_relaxed);
  return get_central(o);
}

Paygo::Token Paygo::get_slow(Object& o, std::uint64_t w0) noexcept {
  if (opt_.slot_mode != SlotMode::Cpu) {
    if (PaygoTable* table = find_table()) {  // registers the slot, makes the table
      PaygoEntry* e = claim(*table, o);
      if (e == nullptr) return get_fallback(o);  // window full or saturated
      return publish(o, w0, *table, *e, e->local.load(std::memory_order_relaxed));
    }
    // More threads than slots.
    if (opt_.slot_mode == SlotMode::Thread) return get_fallback(o);
  }
  // Cpu, or Spill without a slot: this thread counts per CPU from now on.
  // Mark its thread-cache way so the inline path goes to get_cpu() next
  // time, unless another domain holds the way just now (the mark then
  // waits for a later get; taking the way would cost that domain a rebind).
  detail::ThreadCache& tc = detail::tls_cache_for(domain_.id());
  if (tc.domain_id == 0 || tc.domain_id == domain_.id())
    tc = detail::ThreadCache{domain_.id(), nullptr, nullptr, cpu_key_};
  return get_cpu(o, w0);
}

Paygo::Token Paygo::get_cpu(Object& o, std::uint64_t w0) noexcept {
  const std::uint32_t cpu = current_cpu();
  if (cpu >= ncpus_) [[unlikely]]
    return get_fallback(o);  // a CPU the kernel did not count as possible
  // Acquire: pairs with the release CAS in make_cpu_table().
  PaygoTable* t = cpu_tables_[cpu].load(std::memory_order_acquire);
  if (t == nullptr && (t = make_cpu_table(cpu)) == nullptr) return get_fallback(o);
  for (std::uint32_t attempt = 0; attempt < opt_.probe; ++attempt) {
    PaygoEntry* e = &t->entries()[o.hint_ & index_mask_];
    // Relaxed: a guess; the seq_cst re-load below decides.
    if (e->obj.load(std::memory_order_relaxed) != &o && (e = claim_cpu(*t, o)) == nullptr) break;
    // seq_cst (lock xadd on x86): this add and the re-load of `obj` after it
    // are one half of a store-buffer pairing with claim_cpu()'s seq_cst tag
    // CAS and anchor load: either the claimer sees this count and gives the
    // entry back, or we see its tag (or its new object) and back off. Its
    // order against the word re-check is the light fence's job, as for
    // publish()'s store.
    const std::int32_t before = e->anchor.fetch_add(1, std::memory_order_seq_cst);
    if (e->obj.load(std::memory_order_seq_cst) != &o) [[unlikely]] {
      // Retargeted or being claimed. Release: as a put.
      e->anchor.fetch_sub(1, std::memory_order_release);
      continue;
    }
    if (before >= opt_.local_limit) [[unlikely]] {
      e->anchor.fetch_sub(1, std::memory_order_release);  // release: as a put
      break;
    }
    // One use, for the sweeps (entry_sig()). Relaxed load and store, not an
    // RMW: the threads of this CPU may lose each other's bumps, which can
    // only delay a demotion (a sweep needs the signature unchanged), and
    // the count bits of a CPU entry's `local` stay 0 whatever they store.
    e->local.store(e->local.load(std::memory_order_relaxed) + (1U << detail::kLocalCountBits),
                   std::memory_order_relaxed);
    if (!(o.mask_.load(std::memory_order_relaxed) & t->group_bit)) [[unlikely]] {
      // seq_cst: as in publish() (the empty-mask reclaim's pairing).
      o.mask_.fetch_or(t->group_bit, std::memory_order_seq_cst);
    }
    light_fence();  // pairs with heavy_fence() in try_freeze()/reclaim_batch()/sweep()
    // seq_cst: as in publish().
    const std::uint64_t w1 = o.word_.load(std::memory_order_seq_cst);
    if (((w1 ^ w0) & (detail::kGenMask | detail::kFrozen)) != 0) [[unlikely]] {
      e->anchor.fetch_sub(1, std::memory_order_release);  // back off; release: as a put
      return {};
    }
    return Token(e, &cpu_home_);
  }
  return get_fallback(o);  // window full, saturated, or claims kept losing
}

PaygoEntry* Paygo::claim_cpu(PaygoTable& t, const Object& o) noexcept {
  const std::uint32_t h = o.hint_;
  PaygoEntry* free_entry = nullptr;
  const void* old = nullptr;
  for (std::uint32_t i = 0; i < opt_.probe; ++i) {
    PaygoEntry& e = t.entries()[(h + i) & t.index_mask];
    // Relaxed: candidates only; the CAS and the seq_cst load below decide.
    const void* obj = e.obj.load(std::memory_order_relaxed);
    if (obj == &o) return &e;
    if (free_entry == nullptr && (reinterpret_cast<std::uintptr_t>(obj) & detail::kClaimTag) == 0 &&
        e.anchor.load(std::memory_order_relaxed) == 0) {
      free_entry = &e;
      old = obj;
    }
  }
  if (free_entry == nullptr) return nullptr;
  // Tag the old object's name instead of replacing it: a scan for the old
  // object still counts this entry (scans strip the tag) while we look
  // whether a getter of it is inside. seq_cst: the claimer's half of the
  // store-buffer pairing with get_cpu()'s add and re-load (see there).
  const void* tagged =
      reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(old) | detail::kClaimTag);
  if (!free_entry->obj.compare_exchange_strong(old, tagged, std::memory_order_seq_cst,
                                               std::memory_order_relaxed))
    return nullptr;  // another thread of this CPU claimed or tagged it first
  // seq_cst: the other half of the pairing. 0: every getter of the old
  // object that counts from now on sees the tag and backs off.
  if (free_entry->anchor.load(std::memory_order_seq_cst) != 0) {
    // A getter of the old object is inside: give the entry back. Relaxed:
    // only the tag holder writes a tagged `obj`; nothing is published.
    free_entry->obj.store(strip_claim(tagged), std::memory_order_relaxed);
    return nullptr;
  }
  // Relaxed: nothing but the name is published (getters re-check it with
  // seq_cst after their add; a scan that sees it counts a new object's
  // false positive at worst).
  free_entry->obj.store(&o, std::memory_order_relaxed);
  return free_entry;
}

/*** Self-tuning: promotion ***/
namespace {
std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// A thread's own record of contention events, direct-mapped by object
/// (no shared write: only this thread reads or writes it).
struct EventRecord {
  const void* obj = nullptr;
  std::int64_t first_ns = 0;  // time of the first event of the current window
  std::uint32_t events = 0;
  bool retried = false;  // one of them was a CAS retry
};
constexpr std::size_t kEventWays = 16;
thread_local EventRecord t_events[kEventWays];

// vote_ layout: bits 0..11 voter, bits 12..31 time in 2^14 ns units.
constexpr unsigned kVoterBits = 12;
constexpr std::uint32_t kVoterMask = (1U << kVoterBits) - 1;
constexpr std::uint32_t kInhibitVoter = kVoterMask;  // "demoted at <time>"
constexpr unsigned kVoteTimeShift = 14;              // ns -> vote units (16.4 us)
constexpr std::uint32_t kVoteTimeMask = (1U << (32 - kVoterBits)) - 1;  // wraps after 17.2 s

std::uint32_t vote_time(std::int64_t ns) noexcept {
  return static_cast<std::uint32_t>(ns >> kVoteTimeShift) & kVoteTimeMask;
}
/// Vote units elapsed since `v` was written (modulo the wrap).
std::uint32_t vote_age(std::uint32_t v, std::int64_t ns) noexcept {
  return (vote_time(ns) - (v >> kVoterBits)) & kVoteTimeMask;
}
std::atomic<std::uint32_t> g_next_voter{0};
std::uint32_t this_thread_voter() noexcept {
  // A small id per thread, in [1, kInhibitVoter): sequential, so the first
  // 4094 threads never collide; later ones that do count as one voter (a
  // promotion then waits for a third thread, never happens wrongly).
  // Relaxed: only uniqueness matters. Taken on the first vote only.
  thread_local const std::uint32_t id =
      g_next_voter.fetch_add(1, std::memory_order_relaxed) % (kInhibitVoter - 1) + 1;
  return id;
}
std::uint32_t units_of_us(std::uint32_t us) noexcept {
  return static_cast<std::uint32_t>((std::uint64_t{us} * 1000 + (1U << kVoteTimeShift) - 1) >>
                                    kVoteTimeShift);
}
}  // namespace

void Paygo::note_contention(Object& o, bool retried) noexcept {
  EventRecord& r = t_events[o.hint_ % kEventWays];
  const std::int64_t now = now_ns();
  const std::int64_t window = std::int64_t{opt_.promote_window_us} * 1000;
  if (r.obj != &o || now - r.first_ns > window) r = EventRecord{&o, now, 0, false};
  ++r.events;
  r.retried |= retried;
  if (r.events < opt_.promote_events) return;
  const bool proven = r.retried;
  r = EventRecord{};
  // Relaxed: a heuristic (see vote_).
  const std::uint32_t v = o.vote_.load(std::memory_order_relaxed);
  const std::uint32_t voter = v & kVoterMask;
  if (voter == kInhibitVoter && vote_age(v, now) < units_of_us(opt_.inhibit_ms * 1000)) return;
  const std::uint32_t me = this_thread_voter();
  if (!proven) {
    // Old counts alone: our own nested holds look the same, so ask for a
    // second thread's word. A recent vote by someone else promotes.
    const bool other = voter != 0 && voter != kInhibitVoter && voter != me &&
                       vote_age(v, now) <= units_of_us(opt_.promote_window_us);
    if (!other) {
      o.vote_.store((vote_time(now) << kVoterBits) | me, std::memory_order_relaxed);
      return;
    }
  }
  promote(o, now);
}

void Paygo::promote(Object& o, std::int64_t now) noexcept {
  // Relaxed: the mode is a hint for new gets; every query counts the word
  // and the tables alike, so no reference is lost whichever path a get
  // takes (the same argument as the fallback's mixed count).
  std::uint64_t w = o.word_.load(std::memory_order_relaxed);
  do {
    if (w & (detail::kPinned | detail::kDistributed | detail::kFrozen | detail::kDead)) return;
  } while (!o.word_.compare_exchange_weak(w, w | detail::kDistributed, std::memory_order_relaxed,
                                          std::memory_order_relaxed));
  o.vote_.store(0, std::memory_order_relaxed);
  promotions_.fetch_add(1, std::memory_order_relaxed);
  std::int64_t zero = 0;
  first_promotion_ns_.compare_exchange_strong(zero, now, std::memory_order_relaxed);
}

void Paygo::set_mode(Object& o, Mode m) noexcept {
  switch (m) {
    case Mode::Distributed:
      detail::set_mode(o.word_, true);
      break;
    case Mode::Central:
      detail::set_mode(o.word_, false);
      break;
    case Mode::Auto:
      // Relaxed: a hint, as in detail::set_mode(). Starts central, as a new
      // object does; clearing DISTRIBUTED is safe at any time.
      o.word_.fetch_and(~(detail::kPinned | detail::kDistributed), std::memory_order_relaxed);
      break;
  }
}

void Paygo::reset(Object& o) noexcept {
  detail::check_reset(kName, o.word_, [&] { return approx(o); });
  // Only the owner resets a dead object: nobody else writes these now but a
  // sweep that raced with the kill, whose writes are heuristics. Relaxed:
  // published with the word's release store below.
  o.vote_.store(0, std::memory_order_relaxed);
  o.tune_.store(0, std::memory_order_relaxed);
  const std::uint64_t w = o.word_.load(std::memory_order_relaxed);
  const std::uint64_t mode =
      (w & detail::kPinned) ? (w & (detail::kDistributed | detail::kPinned)) : 0;
  // Release: pairs with the acquire word load at the start of every get, so
  // a reader that sees the new generation sees the mask reset of kill().
  o.word_.store(((w & detail::kGenMask) + detail::kGenOne) | mode, std::memory_order_release);
}

TuneStats Paygo::tune_stats() const noexcept {
  TuneStats s;
  s.promotions = promotions_.load(std::memory_order_relaxed);
  s.demotions = demotions_.load(std::memory_order_relaxed);
  s.sweeps = sweeps_.load(std::memory_order_relaxed);
  for (const Stripe& st : fallbacks_) s.central_fallbacks += st.n.load(std::memory_order_relaxed);
  s.first_promotion_ns = first_promotion_ns_.load(std::memory_order_relaxed);
  return s;
}

bool Paygo::try_freeze(Object& o) noexcept {
  if (!detail::central_tryfreeze(o.word_)) return false;
  heavy_fence();  // pairs with light_fence() in get()
  return true;
}

namespace {
/// central_tryfreeze() with a seq_cst CAS (lock cmpxchg on x86 either way):
/// the reclaim that then reads an empty mask and skips the heavy fence
/// relies on the freeze and that mask load being in the single total order
/// with the reader's seq_cst fetch_or of its bit and its seq_cst re-check
/// of the word (publish() in paygo_counter.hpp; docs/design.md point 8).
bool freeze_sc(std::atomic<std::uint64_t>& word, std::uint64_t bits = detail::kFrozen) noexcept {
  std::uint64_t w = word.load(std::memory_order_relaxed);
  if ((w & (detail::kFrozen | detail::kCountMask)) != 0) return false;
  return word.compare_exchange_strong(w, w | bits, std::memory_order_seq_cst,
                                      std::memory_order_relaxed);
}

/// The reclaims' freeze: FROZEN and DEAD in one CAS, the verdict for the
/// common case (an empty mask: dead, nothing more to write). A non-empty
/// mask takes DEAD back (undead()) before the fence and scan decide.
bool freeze_dead_sc(std::atomic<std::uint64_t>& word) noexcept {
  return freeze_sc(word, detail::kFrozen | detail::kDead);
}
void undead(std::atomic<std::uint64_t>& word) noexcept {
  // Relaxed: we froze the word; until we unfreeze or kill it nobody acts on
  // DEAD (a promotion refuses FROZEN; only the owner resets, after a kill).
  word.fetch_and(~detail::kDead, std::memory_order_relaxed);
}

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
std::int64_t entry_count(std::uint32_t local, const PaygoEntry& e) noexcept {
  const std::int64_t v =
      std::int64_t{detail::local_count(local)} + e.anchor.load(std::memory_order_acquire);
  return v > 0 ? v : 0;
}
std::int64_t entry_count(const PaygoEntry& e) noexcept {
  return entry_count(e.local.load(std::memory_order_acquire), e);
}

/// An entry's part of its object's use signature: its use counter, and its
/// presence (an entry claimed or given up changes the signature too).
std::uint32_t entry_sig(std::uint32_t local) noexcept {
  return detail::local_uses(local) + (1U << (32 - detail::kLocalCountBits));
}

/// Per-thread scratch for the batch scans: an open-addressing map from
/// object address to candidate index, reused so a warm reclaimer does not
/// allocate.
struct BatchScratch {
  std::vector<const void*> keys;
  std::vector<std::uint32_t> vals;
};
thread_local BatchScratch t_scratch;

struct CandidateScratch {
  std::vector<const void*> objs;
  std::vector<std::uint32_t> index;  // position in the caller's span
  std::vector<std::int64_t> sums;
  std::vector<std::uint32_t> sigs;
};
thread_local CandidateScratch t_reclaim, t_sweep, t_demote;
}  // namespace

std::int64_t Paygo::sum_masked(const Object& o) const noexcept {
  // Relaxed: after heavy_fence() every bit set before a reader's light fence
  // is visible; bits set later belong to readers that will see FROZEN.
  std::uint64_t mask = o.mask_.load(std::memory_order_relaxed);
  const std::uint32_t hw = domain_.high_water();
  const std::uint32_t h = o.hint_;
  std::int64_t sum = 0;
  auto scan = [&](const PaygoTable* t) {
    if (t == nullptr) return;
    for (std::uint32_t i = 0; i < opt_.probe; ++i) {
      const PaygoEntry& e = t->entries()[(h + i) & t->index_mask];
      // A CPU entry being claimed away still counts for its old object.
      if (strip_claim(e.obj.load(std::memory_order_relaxed)) != &o) continue;
      sum += entry_count(e);
    }
  };
  while (mask != 0) {
    const auto g = static_cast<std::uint32_t>(std::countr_zero(mask));
    mask &= mask - 1;
    if (g >= cpu_group_base_) {
      const std::uint32_t first = (g - cpu_group_base_) << cpu_group_shift_;
      const std::uint32_t last = std::min(ncpus_, first + (1U << cpu_group_shift_));
      // Acquire: pairs with the release CAS in make_cpu_table().
      for (std::uint32_t c = first; c < last; ++c)
        scan(cpu_tables_[c].load(std::memory_order_acquire));
      continue;
    }
    const std::uint32_t first = g << group_shift_;
    const std::uint32_t last = std::min(hw, first + opt_.group_size);
    for (std::uint32_t s = first; s < last; ++s) {
      // Acquire: pairs with the release in make_table().
      scan(static_cast<const PaygoTable*>(domain_.slot(s).payload.load(std::memory_order_acquire)));
    }
  }
  return sum;
}

void Paygo::scan_tables(std::span<const void* const> objs, std::int64_t* sums,
                        std::uint32_t* sigs) const {
  BatchScratch& sc = t_scratch;
  const std::size_t cap = std::bit_ceil(objs.size() * 2);
  sc.keys.assign(cap, nullptr);
  sc.vals.resize(cap);
  const std::size_t mask = cap - 1;
  auto slot_of = [&](const void* p) { return static_cast<std::size_t>(hash(p)) & mask; };
  for (std::uint32_t k = 0; k < objs.size(); ++k) {
    std::size_t i = slot_of(objs[k]);
    while (sc.keys[i] != nullptr) i = (i + 1) & mask;
    sc.keys[i] = objs[k];
    sc.vals[i] = k;
    if (sums != nullptr) sums[k] = 0;
    if (sigs != nullptr) sigs[k] = 0;
  }
  // One pass over every live table: O(candidates + entries), not
  // O(candidates x slots). Every entry is looked at, whatever the masks say.
  for_each_table([&](const PaygoTable& t) {
    for (std::uint32_t j = 0; j <= t.index_mask; ++j) {
      const PaygoEntry& e = t.entries()[j];
      // A CPU entry being claimed away still counts for its old object.
      const void* obj = strip_claim(e.obj.load(std::memory_order_relaxed));
      if (obj == nullptr) continue;
      for (std::size_t i = slot_of(obj); sc.keys[i] != nullptr; i = (i + 1) & mask) {
        if (sc.keys[i] != obj) continue;
        // Acquire: see entry_count().
        const std::uint32_t local = e.local.load(std::memory_order_acquire);
        if (sums != nullptr) sums[sc.vals[i]] += entry_count(local, e);
        if (sigs != nullptr) sigs[sc.vals[i]] += entry_sig(local);
        break;
      }
    }
  });
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
  if (!freeze_dead_sc(o.word_)) return false;
  // seq_cst: pairs with the reader's seq_cst fetch_or of its group bit and
  // its seq_cst word re-check (publish()). An empty mask after the freeze
  // means no distributed reference, and every reader still on its way to
  // one sees FROZEN: no heavy fence, no scan, and the freeze already wrote
  // DEAD (docs/design.md point 8). A bit a backing-off reader sets later is
  // a harmless false positive for the next incarnation's scans.
  if (o.mask_.load(std::memory_order_seq_cst) == 0) return true;
  undead(o.word_);
  heavy_fence();  // pairs with light_fence() in get()
  if (sum_masked(o) != 0) {
    unfreeze(o);
    return false;
  }
  kill(o);
  return true;
}

std::size_t Paygo::reclaim_batch(std::span<Object* const> objs, std::span<bool> dead) {
  CandidateScratch& sc = t_reclaim;
  sc.objs.clear();
  sc.index.clear();
  std::size_t n = 0;
  for (std::size_t i = 0; i < objs.size(); ++i) {
    dead[i] = false;
    Object& o = *objs[i];
    if (!freeze_dead_sc(o.word_)) continue;
    // seq_cst: as in try_reclaim(). An empty mask: dead now, no fence.
    if (o.mask_.load(std::memory_order_seq_cst) == 0) {
      dead[i] = true;
      ++n;
      continue;
    }
    undead(o.word_);
    sc.objs.push_back(&o);
    sc.index.push_back(static_cast<std::uint32_t>(i));
  }
  if (sc.objs.empty()) return n;  // nothing distributed in the batch: no fence, no scan
  heavy_fence();                  // one for the whole batch; pairs with light_fence() in get()
  sc.sums.resize(sc.objs.size());
  scan_tables(sc.objs, sc.sums.data(), nullptr);
  for (std::size_t k = 0; k < sc.objs.size(); ++k) {
    Object& o = *objs[sc.index[k]];
    if (sc.sums[k] != 0) {
      unfreeze(o);
    } else {
      kill(o);
      dead[sc.index[k]] = true;
      ++n;
    }
  }
  return n;
}

/*** Self-tuning: demotion ***/
std::size_t Paygo::sweep(std::span<Object* const> objs) {
  sweeps_.fetch_add(1, std::memory_order_relaxed);
  CandidateScratch& sc = t_sweep;
  sc.objs.clear();
  for (Object* o : objs) {
    // Relaxed: which objects to look at is a heuristic; the demotion below
    // re-checks under its freeze.
    const std::uint64_t w = o->word_.load(std::memory_order_relaxed);
    if ((w & (detail::kDistributed | detail::kPinned | detail::kFrozen)) == detail::kDistributed)
      sc.objs.push_back(o);
  }
  if (sc.objs.empty()) return 0;
  // The use signatures, without a fence: a get this pass misses changes the
  // signature the next pass sees, so it only delays a demotion.
  sc.sigs.resize(sc.objs.size());
  scan_tables(sc.objs, nullptr, sc.sigs.data());
  CandidateScratch& dc = t_demote;
  dc.objs.clear();
  std::size_t n = 0;
  for (std::size_t k = 0; k < sc.objs.size(); ++k) {
    auto& o = *static_cast<Object*>(const_cast<void*>(sc.objs[k]));
    // Relaxed: only sweeps (serialised by the caller) and reset() write tune_.
    const std::uint64_t t = o.tune_.load(std::memory_order_relaxed);
    std::uint64_t quiet = (t >> 32) & 0xff;
    quiet =
        static_cast<std::uint32_t>(t) == sc.sigs[k] ? std::min<std::uint64_t>(quiet + 1, 255) : 0;
    o.tune_.store((quiet << 32) | sc.sigs[k], std::memory_order_relaxed);
    if (quiet < opt_.demote_sweeps) continue;
    if (freeze_sc(o.word_)) {
      dc.objs.push_back(&o);
    } else if (clear_distributed(o)) {
      ++n;  // central references held: new gets go central, the mask stays
    }
  }
  if (dc.objs.empty()) return n;
  heavy_fence();  // one for the batch; pairs with light_fence() in get()
  dc.sums.resize(dc.objs.size());
  scan_tables(dc.objs, dc.sums.data(), nullptr);
  for (std::size_t k = 0; k < dc.objs.size(); ++k) {
    auto& o = *static_cast<Object*>(const_cast<void*>(dc.objs[k]));
    n += demote(o, dc.sums[k] == 0) ? 1 : 0;
  }
  return n;
}

bool Paygo::clear_distributed(Object& o) noexcept {
  // Relaxed: the same mode change as set_distributed(o, false) without the
  // pin, safe at any time (every query counts the word and the tables).
  std::uint64_t w = o.word_.load(std::memory_order_relaxed);
  do {
    if ((w & (detail::kDistributed | detail::kPinned)) != detail::kDistributed) return false;
  } while (!o.word_.compare_exchange_weak(w, w & ~detail::kDistributed, std::memory_order_relaxed,
                                          std::memory_order_relaxed));
  mark_demoted(o);
  return true;
}

void Paygo::mark_demoted(Object& o) noexcept {
  o.vote_.store((vote_time(now_ns()) << kVoterBits) | kInhibitVoter, std::memory_order_relaxed);
  o.tune_.store(0, std::memory_order_relaxed);
  demotions_.fetch_add(1, std::memory_order_relaxed);
}

bool Paygo::demote(Object& o, bool quiet) noexcept {
  // We froze `o` (count 0, so no central token exists, and none can be
  // taken until we unfreeze); others may still flip mode bits (a hint, a
  // promotion attempt refuses FROZEN), so the word changes by CAS.
  // quiet: the scan after the heavy fence found no distributed reference,
  // so no live token sits behind any group bit and the mask may go. The
  // same CAS bumps the generation: a reader that published after the fence
  // (so the scan missed it) and skipped its fetch_or because it saw its bit
  // still set fails its re-check (w1's generation differs from w0's) instead
  // of holding a reference no mask names (docs/design.md point 9).
  // Not quiet: only DISTRIBUTED goes (new gets central, tokens drain), the
  // mask stays, no generation change needed.
  std::uint64_t w = o.word_.load(std::memory_order_relaxed);
  if ((w & (detail::kDistributed | detail::kPinned)) != detail::kDistributed) {
    // Pinned meanwhile, or the sweep's pick was reclaimed and revived as a
    // new, central incarnation before we froze it: not ours to demote.
    unfreeze(o);
    return false;
  }
  if (quiet) o.mask_.store(0, std::memory_order_relaxed);  // published by the release CAS
  std::uint64_t next;
  do {
    next = w & ~(detail::kFrozen | (w & detail::kPinned ? 0 : detail::kDistributed));
    if (quiet) next += detail::kGenOne;
    // Release: pairs with the acquire word load at the start of get() (a
    // reader of the new generation sees the cleared mask) and with the
    // acquire of the central get's CAS, as central_unfreeze() does.
  } while (!o.word_.compare_exchange_weak(w, next, std::memory_order_release,
                                          std::memory_order_relaxed));
  mark_demoted(o);
  return true;
}

std::size_t Paygo::table_bytes() const noexcept {
  std::size_t n = 0;
  for_each_table([&](const PaygoTable& t) {
    n += sizeof(PaygoTable) + sizeof(PaygoEntry) * (t.index_mask + 1);
  });
  return n;  // not the per-CPU pointer array: 8 bytes per possible CPU, fixed
}

}  // namespace paygo
