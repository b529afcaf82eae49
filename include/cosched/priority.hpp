// Entity priorities: strict between levels, FIFO (by push order) within a level.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace cosched {

/// Scheduling priority of an entity. Lower enumerator value = served first.
enum class priority : std::uint8_t { kernel = 0, high = 1, normal = 2, low = 3 };

inline constexpr int priority_count = 4;

constexpr std::string_view to_string(priority p) noexcept {
  switch (p) {
    case priority::kernel:
      return "kernel";
    case priority::high:
      return "high";
    case priority::normal:
      return "normal";
    case priority::low:
      return "low";
  }
  return "?";
}

constexpr std::optional<priority> priority_from_string(std::string_view name) noexcept {
  if (name == "kernel") return priority::kernel;
  if (name == "high") return priority::high;
  if (name == "normal") return priority::normal;
  if (name == "low") return priority::low;
  return std::nullopt;
}

}  // namespace cosched
