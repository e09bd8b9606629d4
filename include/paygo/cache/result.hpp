// paygo/cache/result.hpp — errors as values.
//
// Contract: a Result<T> holds either a T or a std::error_code (never both,
// never an empty error). The page cache returns these instead of throwing or
// crashing; codes are std::errc values (ENOENT, EACCES, EISDIR, EINVAL,
// ENOBUFS for "every frame is pinned", EIO or the backend's own code).
// Why not a library: std::expected would do, but it is C++23 and g++ 12
// offers it only there. tl::expected (Debian's libexpected-dev 1.0) is the
// same shape for C++20, and we keep these 50 lines instead because its class
// is not [[nodiscard]]: here a Result that nobody looks at is a compiler
// warning (an error under -Werror, as in our builds), which is the point of
// errors as values. The error type is fixed (std::error_code, implicitly
// from std::errc), so callers write `return std::errc::...`. Moving to
// std::expected<T, std::error_code> once the compiler is C++23 changes the
// spelling of ok()/value() at the call sites, nothing else.
#pragma once

#include <cassert>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace paygo::cache {

inline std::error_code make_error(std::errc e) noexcept {
  return std::make_error_code(e);
}

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}                     // NOLINT: implicit by design
  Result(std::error_code error) : v_(error) { assert(error); }  // NOLINT
  Result(std::errc error) : v_(make_error(error)) {}            // NOLINT

  bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  std::error_code error() const noexcept { return ok() ? std::error_code{} : std::get<1>(v_); }

 private:
  std::variant<T, std::error_code> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(std::error_code error) : e_(error) {}        // NOLINT
  Result(std::errc error) : e_(make_error(error)) {}  // NOLINT
  bool ok() const noexcept { return !e_; }
  explicit operator bool() const noexcept { return ok(); }
  std::error_code error() const noexcept { return e_; }

 private:
  std::error_code e_;
};

}  // namespace paygo::cache
