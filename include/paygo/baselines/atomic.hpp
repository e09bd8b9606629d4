// paygo/baselines/atomic.hpp — one shared atomic count: vanilla Linux.
//
// Contract: satisfies paygo::RefCounter. get() is Linux's
// folio_try_get_rcu(): a CAS loop that refuses a frozen object; put() is one
// fetch_sub. Every get and put writes the object's cache line, so many
// threads reading one object serialise on it. query() is always exact.
//
// Debug checks (detail/contract.hpp; builds without NDEBUG, compiled out
// with it): reset() of an object that is not dead, unfreeze() of one that is
// not frozen (or is dead), and destroying the counter while a token it
// handed out is live abort with a message. The last one counts live tokens
// per counter (get +1, put -1, relaxed): the token's spare word names its
// counter in debug builds (nullptr in release, so the token is the same).
//
// When to use: objects shared by few threads, or reclaimed often. It is the
// baseline every other counter is measured against.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

#include "paygo/counter.hpp"
#include "paygo/detail/contract.hpp"
#include "paygo/detail/token.hpp"
#include "paygo/detail/word.hpp"

namespace paygo::baselines {

class Atomic {
 public:
  static constexpr std::string_view kName = "atomic";
  static constexpr bool kCounts = true;
  static constexpr bool kExact = true;

  class Object {
   public:
    Object() = default;
    explicit Object(Atomic&) noexcept {}
    Object(const Object&) = delete;
    Object& operator=(const Object&) = delete;

   private:
    friend class Atomic;
    std::atomic<std::uint64_t> word_{0};  // detail/word.hpp layout
  };

  struct TokenPolicy {
    using Owner = Atomic;
    using Ptr = std::atomic<std::uint64_t>*;  // the word
    /// The counter, for its debug token tally; nullptr in release builds.
    using Extra = Atomic*;
    static void release(Ptr word, Atomic* owner) noexcept {
      // Tally first: the put below may be the one that lets a reclaim, and
      // then the counter's destruction, proceed (see TokenTally).
      if constexpr (detail::kDebugChecks) {
        if (owner != nullptr) owner->tokens_.put();
      }
      detail::central_put(*word);
    }
  };
  using Token = detail::BasicToken<TokenPolicy>;

  Atomic() = default;
  ~Atomic() { tokens_.check(kName); }
  Atomic(const Atomic&) = delete;
  Atomic& operator=(const Atomic&) = delete;

  Token get(Object& o) noexcept {
    if constexpr (detail::kDebugChecks) {
      if (!detail::central_tryget(o.word_)) return Token();
      tokens_.got();
      return Token(&o.word_, this);
    } else {
      return detail::central_tryget(o.word_) ? Token(&o.word_, nullptr) : Token();
    }
  }
  void put(Token&& t) noexcept { t.reset(); }
  bool try_freeze(Object& o) noexcept { return detail::central_tryfreeze(o.word_); }
  std::int64_t query(const Object& o) const noexcept { return approx(o); }
  void unfreeze(Object& o) noexcept { detail::checked_unfreeze(kName, o.word_); }
  bool try_reclaim(Object& o) noexcept {
    if (!try_freeze(o)) return false;  // the freeze itself proves the count is zero
    detail::central_kill(o.word_);
    return true;
  }
  std::size_t reclaim_batch(std::span<Object* const> objs, std::span<bool> dead) {
    return detail::reclaim_each(*this, objs, dead);
  }
  void reset(Object& o) noexcept {
    detail::checked_reset(kName, o.word_, [&] { return approx(o); });
  }
  std::int64_t approx(const Object& o) const noexcept {
    // Acquire: pairs with central_put()'s release, like the freeze CAS.
    return static_cast<std::int64_t>(o.word_.load(std::memory_order_acquire) & detail::kCountMask);
  }
  void set_distributed(Object&, bool) noexcept {}

 private:
  detail::TokenTally tokens_;  // debug builds only (see detail/contract.hpp)
};

static_assert(RefCounter<Atomic>);

}  // namespace paygo::baselines
