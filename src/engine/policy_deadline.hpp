// Policy deadline: strict priority, then the earliest deadline, then push order.
#pragma once

#include <cstdint>

#include "cosched/priority.hpp"
#include "engine/queue_entry.hpp"

namespace cosched::detail {

/// The highest priority first; within a priority, the head with the earliest
/// deadline (push_options::deadline); heads without one come after every head
/// with one. A job behind another in its entity waits for it, whatever their
/// deadlines (only heads compete). Stateless: any thread, no lifetime to keep.
struct deadline_policy {
  static order_key key(const queue_entry& entry, priority p) noexcept {
    const auto deadline = entry.head->deadline();
    const std::uint64_t rank = 2 * static_cast<std::uint64_t>(p) + (deadline ? 0 : 1);
    // Deadlines are signed; flipping the sign bit keeps their order as unsigned.
    const std::uint64_t time =
        deadline ? static_cast<std::uint64_t>(deadline->count()) ^ (std::uint64_t{1} << 63) : 0;
    return {0, rank, time};
  }
};

}  // namespace cosched::detail
