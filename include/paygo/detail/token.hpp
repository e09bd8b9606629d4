// paygo/detail/token.hpp — the move-only token every counting counter hands
// out: a pointer to where the count went (nullptr: empty) and one small
// extra word (the home slot, or which path the get took). Releasing it — by
// reset() or the destructor — is the put, done by the counter's policy:
//
//   struct Policy {
//     using Owner = TheCounter;  // may construct tokens
//     using Ptr = ...*;          // where the count went
//     using Extra = ...;         // trivially copyable
//     static void release(Ptr, Extra) noexcept;  // the put (fast path, inline)
//   };
#pragma once

#include <utility>

#include "paygo/config.hpp"

namespace paygo::detail {

template <class Policy>
class BasicToken {
 public:
  using Ptr = typename Policy::Ptr;
  using Extra = typename Policy::Extra;

  BasicToken() = default;
  BasicToken(BasicToken&& o) noexcept : p_(std::exchange(o.p_, nullptr)), x_(o.x_) {}
  BasicToken& operator=(BasicToken&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::exchange(o.p_, nullptr);
      x_ = o.x_;
    }
    return *this;
  }
  BasicToken(const BasicToken&) = delete;
  BasicToken& operator=(const BasicToken&) = delete;
  PAYGO_INLINE ~BasicToken() { reset(); }

  explicit operator bool() const noexcept { return p_ != nullptr; }

  /*** put ***/
  PAYGO_INLINE void reset() noexcept {
    if (p_ != nullptr) Policy::release(std::exchange(p_, nullptr), x_);
  }

 protected:
  friend typename Policy::Owner;
  BasicToken(Ptr p, Extra x) noexcept : p_(p), x_(x) {}
  Ptr p_ = nullptr;
  Extra x_{};
};

}  // namespace paygo::detail
