// paygo/baselines/noop.hpp — no count at all: the upper bound.
//
// Contract: satisfies the *shape* of paygo::RefCounter but counts nothing
// (kCounts == false): get() only checks, with one load of a line nobody
// writes, that the object is not frozen; put() does nothing; query() is
// always 0, so try_reclaim() succeeds whenever nobody else froze the object.
//
// Debug checks (detail/contract.hpp; builds without NDEBUG): reset() of an
// object that is not dead and unfreeze() of one that is not frozen (or is
// dead) abort with a message, as for every counter. The third check, "no
// token live when the counter is destroyed", does not apply: noop counts no
// tokens (a token is a flag that points at nothing), so there is nothing to
// find, and nothing a late put could touch.
//
// When to use: only as the benchmark ceiling ("what would the cache do with
// free reference counting?"). Never to protect memory: an object can be
// reclaimed while a token for it is held.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "paygo/counter.hpp"
#include "paygo/detail/contract.hpp"
#include "paygo/detail/word.hpp"

namespace paygo::baselines {

class Noop {
 public:
  static constexpr std::string_view kName = "noop";
  static constexpr bool kCounts = false;
  static constexpr bool kExact = false;

  class Object {
   public:
    Object() = default;
    explicit Object(Noop&) noexcept {}
    Object(const Object&) = delete;
    Object& operator=(const Object&) = delete;

   private:
    friend class Noop;
    std::atomic<std::uint64_t> word_{0};  // only FROZEN/DEAD/generation are used
  };

  class Token {
   public:
    Token() = default;
    Token(Token&& o) noexcept : held_(std::exchange(o.held_, false)) {}
    Token& operator=(Token&& o) noexcept {
      held_ = std::exchange(o.held_, false);
      return *this;
    }
    ~Token() = default;
    explicit operator bool() const noexcept { return held_; }
    void reset() noexcept { held_ = false; }

   private:
    friend class Noop;
    explicit Token(bool h) noexcept : held_(h) {}
    bool held_ = false;
  };

  Token get(Object& o) noexcept {
    // Acquire: pairs with the release in central_reset()/central_unfreeze().
    return Token((o.word_.load(std::memory_order_acquire) & detail::kFrozen) == 0);
  }
  void put(Token&& t) noexcept { t.reset(); }
  bool try_freeze(Object& o) noexcept { return detail::central_tryfreeze(o.word_); }
  std::int64_t query(const Object&) const noexcept { return 0; }
  void unfreeze(Object& o) noexcept { detail::checked_unfreeze(kName, o.word_); }
  bool try_reclaim(Object& o) noexcept {
    if (!try_freeze(o)) return false;
    detail::central_kill(o.word_);
    return true;
  }
  std::size_t reclaim_batch(std::span<Object* const> objs, std::span<bool> dead) {
    return detail::reclaim_each(*this, objs, dead);
  }
  void reset(Object& o) noexcept {
    detail::checked_reset(kName, o.word_, nullptr);  // counts nothing: no estimate to print
  }
  std::int64_t approx(const Object&) const noexcept { return 0; }
  void set_distributed(Object&, bool) noexcept {}
};

static_assert(RefCounter<Noop>);

}  // namespace paygo::baselines
