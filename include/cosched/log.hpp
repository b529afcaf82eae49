// Where cosched reports what it cannot return as an error: programming errors
// before it terminates, failures it absorbs (a job that threw), teardown notes.
#pragma once

#include <memory>
#include <string_view>

namespace spdlog {
class logger;
}

namespace cosched {

/// The logger cosched writes to: by default a logger named "cosched" with a
/// stderr sink at level warn, or at the level the environment variable
/// COSCHED_LOG_LEVEL names when it is set (trace, debug, info, warn, error,
/// critical or off; any other value leaves warn, and says so once on the
/// logger). Thread-safe.
std::shared_ptr<spdlog::logger> logger();

/// Sets the current logger's level by name (trace, debug, info, warn, error,
/// critical, off). Returns false, changing nothing, for any other name.
/// Thread-safe.
bool set_log_level(std::string_view name);

/// Whether `name` is one of the level names set_log_level() takes.
bool is_log_level(std::string_view name) noexcept;

/// The level names set_log_level() and COSCHED_LOG_LEVEL take, for messages.
inline constexpr std::string_view log_level_names = "trace, debug, info, warn, error, critical, off";

/// Replaces the logger (for example with a null sink in tests). Thread-safe.
void set_logger(std::shared_ptr<spdlog::logger> replacement);

}  // namespace cosched
