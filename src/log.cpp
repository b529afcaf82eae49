// The cosched logger.
#include "cosched/log.hpp"

#include <array>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace cosched {
namespace {

std::mutex& logger_lock() {
  static std::mutex lock;
  return lock;
}

// Exact names only (spdlog's own parser maps anything unknown to off, which
// would silence the logger on a typo).
std::optional<spdlog::level::level_enum> level_named(std::string_view name) {
  using spdlog::level::level_enum;
  constexpr std::array<std::pair<std::string_view, level_enum>, 7> levels{{{"trace", level_enum::trace},
                                                                           {"debug", level_enum::debug},
                                                                           {"info", level_enum::info},
                                                                           {"warn", level_enum::warn},
                                                                           {"error", level_enum::err},
                                                                           {"critical", level_enum::critical},
                                                                           {"off", level_enum::off}}};
  for (const auto& [level_name, level] : levels)
    if (name == level_name) return level;
  return std::nullopt;
}

// Printable ASCII as it is, every other byte as \xNN.
std::string escaped(std::string_view text) {
  std::string out;
  for (const unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::shared_ptr<spdlog::logger>& logger_slot() {
  static std::shared_ptr<spdlog::logger> slot = [] {
    auto made =
        std::make_shared<spdlog::logger>("cosched", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    made->set_level(spdlog::level::warn);
    made->set_pattern("cosched: %l: %v");
    // getenv races only with changes to the environment (setenv, putenv), which
    // cosched never makes; the variable is read once, at the logger's first use.
    // NOLINTNEXTLINE(concurrency-mt-unsafe): see above
    if (const char* env = std::getenv("COSCHED_LOG_LEVEL"); env && *env) {
      if (const auto level = level_named(env))
        made->set_level(*level);
      else
        made->warn("COSCHED_LOG_LEVEL='{}' is not a level ({}): the level stays warn", escaped(env),
                   log_level_names);
    }
    return made;
  }();
  return slot;
}

}  // namespace

std::shared_ptr<spdlog::logger> logger() {
  std::lock_guard guard(logger_lock());
  return logger_slot();
}

bool is_log_level(std::string_view name) noexcept { return level_named(name).has_value(); }

bool set_log_level(std::string_view name) {
  const auto level = level_named(name);
  if (!level) return false;
  logger()->set_level(*level);
  return true;
}

void set_logger(std::shared_ptr<spdlog::logger> replacement) {
  std::lock_guard guard(logger_lock());
  logger_slot() = std::move(replacement);
}

}  // namespace cosched
