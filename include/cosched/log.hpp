// Where cosched reports what it cannot return as an error: programming errors
// before it terminates, failures it absorbs (a job that threw), teardown notes.
#pragma once

#include <memory>

namespace spdlog {
class logger;
}

namespace cosched {

/// The logger cosched writes to: by default a logger named "cosched" with a
/// stderr sink at level warn. Thread-safe.
std::shared_ptr<spdlog::logger> logger();

/// Replaces the logger (for example with a null sink in tests). Thread-safe.
void set_logger(std::shared_ptr<spdlog::logger> replacement);

}  // namespace cosched
