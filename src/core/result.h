// Result<T>: a value or an Error. C++20 has no std::expected, so this is the small subset used
// here. Accessing value() of an error (or error() of a value) is a bug and aborts.
#pragma once

#include <cstdlib>
#include <utility>
#include <variant>

#include "core/error.h"

namespace steno {

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT: implicit by design

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    Check(true);
    return std::get<0>(v_);
  }
  const T& value() const& {
    Check(true);
    return std::get<0>(v_);
  }
  T&& value() && {
    Check(true);
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }

  const Error& error() const {
    Check(false);
    return std::get<1>(v_);
  }

 private:
  void Check(bool want_value) const {
    if (ok() != want_value) std::abort();
  }
  std::variant<T, Error> v_;
};

// Result<void>: success or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : err_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    if (ok_) std::abort();
    return err_;
  }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace steno
