// An entity's public vocabulary: the options of a push, the snapshot of its
// pending work, and its involvement in ring resets. Plain types, no engine.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "cosched/fence.hpp"

namespace cosched {

class scope;

struct push_options {
  /// Ring credits the job's command holds while it is on the ring (at least 1,
  /// at most the ring's credit limit).
  std::uint32_t credits = 1;
  /// A scope the job joins (optional; it must outlive the job, which its join enforces).
  scope* in = nullptr;
  /// When the job should have finished, as time since the scheduler's epoch
  /// (scheduler::now() is the current time). Policy deadline runs the earliest
  /// deadline first within a priority; every policy counts a job whose
  /// finished fence signals later as a miss (scheduler::statistics()).
  std::optional<std::chrono::nanoseconds> deadline{};
  /// Declared dependencies: fences the scheduler waits for, one after another
  /// in this order, before it first resumes the job's body (which may still
  /// `co_await` more). A failed one fails the job as an in-body `co_await` of it
  /// would: its error, and as cause its root. A batch push gives every job of
  /// the batch this list. Every fence must be valid (push throws
  /// std::invalid_argument otherwise, pushing nothing).
  std::vector<fence> after{};
};

/// Whether an entity was involved in a ring reset (GL robustness / amdgpu context query model).
enum class reset_kind : std::uint8_t {
  untouched,  ///< no reset involved the entity
  innocent,   ///< a reset replayed its work (it was not the cause)
  guilty      ///< one of its jobs hung and caused a reset
};

/// entity::pending(): a snapshot.
struct entity_pending {
  std::uint32_t queued = 0;     ///< pushed, neither run nor decided yet
  std::uint32_t in_flight = 0;  ///< commands on a ring
};

/// An entity's involvement in ring resets.
struct reset_status {
  reset_kind kind = reset_kind::untouched;  ///< the latest: guilty wins over innocent
  std::uint32_t resets = 0;                 ///< how many resets involved the entity
};

}  // namespace cosched
