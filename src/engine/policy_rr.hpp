// Policy rr: strict priority, then the entity served least recently.
#pragma once

#include <cstdint>

#include "cosched/priority.hpp"
#include "engine/queue_entry.hpp"

namespace cosched::detail {

/// The highest priority first; within a priority, the entity whose latest
/// command was run the longest ago (never served counts as longest ago), so
/// every ready entity of a priority runs one command per round. Replays after a
/// reset are not runs.
///
/// @par Thread Safety
/// The scheduler's executor only.
///
/// @par Ownership and Lifetime
/// A member of the run queue; the stamps it writes live in the queue entries.
class rr_policy {
 public:
  static order_key key(const queue_entry& entry, priority p) noexcept {
    return {0, static_cast<std::uint64_t>(p), entry.last_served};
  }
  /// `entry`'s head was run: it becomes the most recently served.
  void served(queue_entry& entry) noexcept { entry.last_served = ++serve_counter_; }

 private:
  std::uint64_t serve_counter_ = 0;  // stamps of runs, increasing
};

}  // namespace cosched::detail
