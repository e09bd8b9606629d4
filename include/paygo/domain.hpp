// paygo/domain.hpp — slots: who owns which per-owner counter state.
//
// Contract
// --------
// A Domain hands each thread that asks a *slot*: an index in [0, max_slots)
// that the thread owns alone until it exits. Registration is lazy (the first
// current() call of a thread) and bounded: when every slot is owned,
// current() returns nullptr and callers fall back to a shared counter. When a
// thread exits, its slots are retired (owner cleared, index put on a free
// list) and the next thread to register adopts one; the slot's state (a
// counter's table, its live entries) stays where it is, so references taken
// by the exited thread are still counted and can still be released.
//
// Every counter in this library owns one Domain, so a slot's payload pointer
// belongs to exactly one counter.
//
// Memory: the slots are reserved as address space (max_slots * 64 bytes) and
// committed page by page as threads register, so a large max_slots costs
// only the slots used (the page cache's statistics domain has 2^20).
//
// Memory ordering: owner changes happen under the registry mutex, which gives
// the retiring thread's writes to the slot a happens-before edge to the
// adopting thread. Scanners read `owner` relaxed (only identity matters) and
// `payload` acquire (paired with the release store that published it).
//
// When not to use: with far more threads than cores, per-thread slots waste
// memory and run out; Paygo then counts in per-CPU tables instead
// (PaygoOptions::slot_mode, docs/design.md "Per-CPU tables").
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "paygo/config.hpp"

namespace paygo {

struct DomainOptions {
  /// Slots available; threads beyond this count use the fallback path.
  std::uint32_t max_slots = 256;
};

/// One slot of a Domain: what a counter's per-owner state hangs on. Part of
/// the public API (counters built on a Domain read `owner`, `payload` and
/// `index`); only the Domain writes `owner` and `index`. Padded: `owner`/`payload` are read by
/// every scanner and written only on registration, retirement and first use.
struct alignas(kDestructiveInterference) Slot {
  /// Identity of the owning thread (see this_thread_tag()), or nullptr while
  /// retired. Written under the registry mutex; read relaxed by put() to ask
  /// "am I the owner?", which only the owner can answer yes to.
  std::atomic<const void*> owner{nullptr};
  /// Counter-specific per-slot state. Published once with release by the
  /// owner (paired with acquire loads in scanners); kept across adoption.
  std::atomic<void*> payload{nullptr};
  std::uint32_t index = 0;
};

namespace detail {

struct Registry;

/// Per-thread direct-mapped cache of "my slot in domain `id`", indexed by
/// the low bits of the id (ids are sequential, so a program's few live
/// domains, such as a page cache's counter and its statistics, do not evict
/// each other). constinit and trivially destructible: a plain TLS access.
struct ThreadCache {
  std::uint64_t domain_id;
  Slot* slot;
  void* payload;  // slot->payload as last seen by this thread (its owner)
  /// Counter-private word cached beside the payload (Paygo: a key unique to
  /// the counter that says "slot and table cached, fast path on").
  /// Zero until the counter sets it; the Domain resets it on (re)binding.
  std::uintptr_t aux;
};
inline constexpr std::size_t kThreadCacheWays = 8;
inline constinit thread_local ThreadCache tls_cache[kThreadCacheWays] = {};

PAYGO_INLINE ThreadCache& tls_cache_for(std::uint64_t domain_id) noexcept {
  return tls_cache[domain_id % kThreadCacheWays];
}

/// A value unique to each live thread (the address of its cache).
PAYGO_INLINE const void* this_thread_tag() noexcept {
  return &tls_cache[0];
}

/// This process's copy of the core: the address of its domain id counter.
/// A process has one copy, also when it links libpaygo_rocksdb.so beside the
/// core (tests/rocksdb/one_core_test.cpp compares it with the library's).
const void* core_instance() noexcept;
}  // namespace detail

class Domain {
 public:
  explicit Domain(DomainOptions options = {});
  ~Domain();
  Domain(const Domain&) = delete;
  Domain& operator=(const Domain&) = delete;

  /// The calling thread's slot, registering it on first use; nullptr when all
  /// slots are owned by live threads.
  PAYGO_INLINE Slot* current() noexcept {
    const detail::ThreadCache& c = detail::tls_cache_for(id_);
    if (c.domain_id == id_ && c.slot != nullptr) [[likely]]
      return c.slot;
    return current_slow();
  }

  std::uint32_t max_slots() const noexcept { return max_slots_; }
  /// Slots handed out at least once: [0, high_water()) may hold state.
  /// Acquire: pairs with the release increment in registration, so the
  /// slot's index and payload pointer are visible to scanners.
  std::uint32_t high_water() const noexcept;
  Slot& slot(std::uint32_t i) noexcept { return slots_[i]; }
  const Slot& slot(std::uint32_t i) const noexcept { return slots_[i]; }
  std::uint64_t id() const noexcept { return id_; }
  /// Slots currently owned by a live thread (approximate; for statistics).
  std::uint32_t owned_slots() const noexcept;

 private:
  PAYGO_COLD Slot* current_slow() noexcept;

  std::uint64_t id_;
  std::uint32_t max_slots_;
  Slot* slots_;  // owned by registry_
  std::shared_ptr<detail::Registry> registry_;
};

}  // namespace paygo
