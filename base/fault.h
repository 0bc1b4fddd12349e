// Fault injection for crash-safety tests: kill_point("name") kills the process with SIGKILL when
// the environment variable SKEIN_TEST_KILL_AT equals "name", so a test can stop a process at an
// exact moment (e.g. between the two renames of a checkpoint re-save) instead of by chance.
// Unset (always, outside tests), it does nothing.
#pragma once

#include <csignal>
#include <cstdlib>
#include <cstring>

namespace skein {

inline void kill_point(const char* name) {
  const char* at = std::getenv("SKEIN_TEST_KILL_AT");
  if (at && std::strcmp(at, name) == 0) std::raise(SIGKILL);
}

}  // namespace skein
