// Slot registry: lazy registration, retirement at thread exit, adoption.
#include "paygo/domain.hpp"

#include <sys/mman.h>

#include <cstddef>
#include <mutex>
#include <new>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "paygo/fence.hpp"

namespace paygo {
namespace detail {

/// The slots live in one reservation of max_slots * sizeof(Slot) bytes of
/// address space (MAP_NORESERVE: memory is committed only for the pages of
/// slots handed out), so a domain sized for a million threads costs the
/// memory of the threads that came. Slot i is constructed when it is first
/// handed out, before the release store of high_water that lets scanners
/// see it; nothing reads past high_water.
struct Registry {
  explicit Registry(std::uint32_t n) : max_slots(n) {
    bytes = std::size_t{n} * sizeof(Slot);
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    slots = static_cast<Slot*>(p);
  }
  ~Registry() {
    // Slot is trivially destructible (two atomics of pointers, an index).
    static_assert(std::is_trivially_destructible_v<Slot>);
    ::munmap(slots, bytes);
  }
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;
  std::mutex mu;
  Slot* slots = nullptr;  // [0, high_water) constructed
  std::size_t bytes = 0;
  std::uint32_t max_slots;
  /// Release increment under `mu`; acquire load in Domain::high_water().
  std::atomic<std::uint32_t> high_water{0};
  std::vector<std::uint32_t> retired;  // guarded by mu
  std::uint32_t owned = 0;             // guarded by mu
  /// Bumped (relaxed; read under mu or as a hint) when a slot is retired, so
  /// a thread that found the domain full knows when to ask again.
  std::atomic<std::uint64_t> retire_gen{0};
  bool closed = false;  // guarded by mu: the Domain is being destroyed
};

namespace {

std::atomic<std::uint64_t> g_next_domain_id{1};

/// Everything one thread registered, retired when the thread exits.
struct ThreadSlots {
  struct Held {
    std::weak_ptr<Registry> registry;
    Slot* slot;  // nullptr: the domain was full when we asked
    std::uint64_t retire_gen;
  };
  std::unordered_map<std::uint64_t, Held> by_domain;
  bool exiting = false;

  ~ThreadSlots() {
    exiting = true;
    for (auto& c : tls_cache) c = ThreadCache{0, nullptr, nullptr, 0};
    for (auto& [id, held] : by_domain) {
      if (held.slot == nullptr) continue;
      if (auto reg = held.registry.lock()) {
        std::lock_guard lock(reg->mu);
        if (reg->closed) continue;
        // Relaxed: ownership is handed over through `mu`; put() only compares
        // against its own tag, which no other thread can hold.
        held.slot->owner.store(nullptr, std::memory_order_relaxed);
        reg->retired.push_back(held.slot->index);
        --reg->owned;
        reg->retire_gen.fetch_add(1, std::memory_order_relaxed);
      }
    }
  }
};

thread_local ThreadSlots t_slots;

}  // namespace

const void* core_instance() noexcept {
  return &g_next_domain_id;
}
}  // namespace detail

Domain::Domain(DomainOptions options)
    : id_(detail::g_next_domain_id.fetch_add(1, std::memory_order_relaxed)),  // unique only
      max_slots_(options.max_slots == 0 ? 1 : options.max_slots),
      registry_(std::make_shared<detail::Registry>(max_slots_)) {
  slots_ = registry_->slots;
  init_asymmetric_fences();
}

Domain::~Domain() {
  std::lock_guard lock(registry_->mu);
  registry_->closed = true;  // exiting threads must not touch the slots now
}

std::uint32_t Domain::high_water() const noexcept {
  // Acquire: pairs with the release store in current_slow().
  return registry_->high_water.load(std::memory_order_acquire);
}

std::uint32_t Domain::owned_slots() const noexcept {
  std::lock_guard lock(registry_->mu);
  return registry_->owned;
}

Slot* Domain::current_slow() noexcept {
  using namespace detail;
  ThreadSlots& ts = t_slots;
  if (ts.exiting) return nullptr;   // thread_local destructors run after retirement
  if (ts.by_domain.size() >= 64) {  // forget domains that no longer exist
    std::erase_if(ts.by_domain, [](const auto& kv) { return kv.second.registry.expired(); });
  }
  auto [it, inserted] = ts.by_domain.try_emplace(id_);
  auto& held = it->second;
  if (!inserted && held.slot != nullptr) {
    // Relaxed payload: this thread owns the slot (see below).
    tls_cache_for(id_) =
        ThreadCache{id_, held.slot, held.slot->payload.load(std::memory_order_relaxed), 0};
    return held.slot;
  }
  Registry& reg = *registry_;
  if (!inserted && held.retire_gen == reg.retire_gen.load(std::memory_order_relaxed)) {
    return nullptr;  // still full: nothing was retired since we last asked
  }
  std::lock_guard lock(reg.mu);
  held.registry = registry_;
  held.retire_gen = reg.retire_gen.load(std::memory_order_relaxed);
  Slot* s = nullptr;
  if (!reg.retired.empty()) {
    s = &reg.slots[reg.retired.back()];  // adopt: its table and live entries come along
    reg.retired.pop_back();
  } else if (const auto hw = reg.high_water.load(std::memory_order_relaxed); hw < reg.max_slots) {
    s = ::new (&reg.slots[hw]) Slot{};  // first hand-out: construct it (see Registry)
    s->index = hw;
    // Release: pairs with the acquire in Domain::high_water(); scanners that
    // see the new bound also see the slot's initialisation.
    reg.high_water.store(hw + 1, std::memory_order_release);
  }
  held.slot = s;
  if (s == nullptr) return nullptr;
  ++reg.owned;
  s->owner.store(this_thread_tag(), std::memory_order_relaxed);  // handed over via `mu`
  // Relaxed: an adopted slot's payload was published before its retirement,
  // which happens before this adoption through `mu`.
  tls_cache_for(id_) = ThreadCache{id_, s, s->payload.load(std::memory_order_relaxed), 0};
  return s;
}

}  // namespace paygo
