// Always-on invariant checks for programmer errors (never for user input: those return errors
// that name the file, field or line). A failed check prints file:line, the expression and a
// message, then aborts.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace skein::detail {
[[noreturn]] inline void check_failed(const char* file, int line, const char* expr,
                                      const char* msg) {
  std::fprintf(stderr, "%s:%d: SKEIN_CHECK(%s) failed%s%s\n", file, line, expr, msg[0] ? ": " : "",
               msg);
  std::fflush(stderr);
  std::abort();
}
}  // namespace skein::detail

// SKEIN_CHECK(cond) or SKEIN_CHECK(cond, "message")
#define SKEIN_CHECK(cond, ...)                                                  \
  do {                                                                          \
    if (!(cond)) [[unlikely]]                                                   \
      ::skein::detail::check_failed(__FILE__, __LINE__, #cond, "" __VA_ARGS__); \
  } while (0)
