// Errors that a user can cause (bad config, missing or corrupt file, full disk) travel as a Status
// with a message that names the file, field or line, what was expected, what was found, and what
// to do. Programmer invariants use SKEIN_CHECK instead.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "base/check.h"

namespace skein {

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  static Status error(std::string message) { return Status(std::move(message)); }

  bool ok() const { return !message_.has_value(); }
  const std::string& message() const {
    static const std::string kOk = "OK";
    return message_ ? *message_ : kOk;
  }
  // Prefixes context ("loading checkpoint runs/x: ") to an error; OK stays OK.
  Status with_context(const std::string& context) const {
    return ok() ? *this : Status(context + ": " + *message_);
  }

 private:
  explicit Status(std::string m) : message_(std::move(m)) {}
  std::optional<std::string> message_;
};

// A value or an error.
template <typename T>
class [[nodiscard]] StatusOr {
 public:
  StatusOr(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  StatusOr(Status status) : status_(std::move(status)) {  // NOLINT
    SKEIN_CHECK(!status_.ok(), "StatusOr built from an OK status without a value");
  }
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() {
    SKEIN_CHECK(ok(), "value() of an error");
    return *value_;
  }
  const T& value() const {
    SKEIN_CHECK(ok(), "value() of an error");
    return *value_;
  }
  T& operator*() { return value(); }
  T* operator->() { return &value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace skein

// Returns early from a function returning Status (or StatusOr) when expr is an error.
#define SKEIN_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::skein::Status skein_status_ = (expr);        \
    if (!skein_status_.ok()) return skein_status_; \
  } while (0)
