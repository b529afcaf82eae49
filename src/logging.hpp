// How the library's own code writes to the cosched logger (cosched/log.hpp):
// from noexcept completion and recovery paths, so a failure to log is dropped.
// Private to the library.
#pragma once

#include <cstddef>
#include <utility>

#include <spdlog/spdlog.h>

#include "cosched/log.hpp"

namespace cosched::detail {

/// Logs one line at `level` on the current cosched logger (formatting only when
/// the level is enabled). Logging is best effort: an exception (out of memory,
/// a sink that throws) is swallowed, as the callers report their outcome
/// elsewhere (a fence's error, a statistic).
template <class... Args>
void log_line(spdlog::level::level_enum level, spdlog::format_string_t<Args...> format,
              Args&&... args) noexcept {
  try {
    const auto current = logger();
    if (!current || !current->should_log(level)) return;
    current->log(level, format, std::forward<Args>(args)...);
  } catch (...) {
  }
}

/// `one` or `many`, after the count `n`, in a log line.
constexpr const char* plural(std::size_t n, const char* one, const char* many) noexcept {
  return n == 1 ? one : many;
}

}  // namespace cosched::detail
