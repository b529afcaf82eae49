// The cosched logger.
#include "cosched/log.hpp"

#include <mutex>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace cosched {
namespace {

std::mutex& logger_lock() {
  static std::mutex lock;
  return lock;
}

std::shared_ptr<spdlog::logger>& logger_slot() {
  static std::shared_ptr<spdlog::logger> slot = [] {
    auto made = std::make_shared<spdlog::logger>(
        "cosched", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    made->set_level(spdlog::level::warn);
    made->set_pattern("cosched: %l: %v");
    return made;
  }();
  return slot;
}

}  // namespace

std::shared_ptr<spdlog::logger> logger() {
  std::lock_guard guard(logger_lock());
  return logger_slot();
}

void set_logger(std::shared_ptr<spdlog::logger> replacement) {
  std::lock_guard guard(logger_lock());
  logger_slot() = std::move(replacement);
}

}  // namespace cosched
