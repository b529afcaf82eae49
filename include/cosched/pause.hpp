// Pausing a scheduler: while a pause guard lives, nothing is run or retired, and
// the in-flight jobs can be inspected or replayed, only through the guard.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "cosched/detail/scheduler_core.hpp"
#include "cosched/job.hpp"

namespace cosched {

template <class Command>
class scheduler;

/// A view of one in-flight job, valid during the visit.
template <class Command>
struct in_flight_job {
  Command& command;
  std::uint32_t attempts;
  std::uint64_t seqno;
  const std::string& entity;
  /// The ring it is on: in shared_ring mode its index among the scheduler's
  /// rings (0 with one ring); in ring_per_entity mode its entity's position in
  /// the order the entities were registered.
  std::size_t ring;
};

/// The guard of a granted pause. Immovable: it is handed over owned by a
/// std::unique_ptr, and "iterate only while stopped" is a type rule: the
/// in-flight list is reachable only through a guard.
///
/// @par Thread Safety
/// Use it on the scheduler's executor (the handler of async_pause runs there
/// when it has no executor of its own); destroy it on any thread.
///
/// @par Lifetime
/// Destroying the guard resumes the scheduler where it stopped: completions and
/// pushes that arrived meanwhile are processed, timeouts restart.
template <class Command>
class paused {
 public:
  paused(const paused&) = delete;
  paused& operator=(const paused&) = delete;
  ~paused() { core_->resume(); }

  /// Calls `visit(in_flight_job<Command>&)` for every job on a ring, ring by
  /// ring in run order.
  template <class Visitor>
  void for_each_in_flight(Visitor&& visit) const {
    core_->visit_in_flight([&](const detail::in_flight_view& view) {
      Command& command = *static_cast<detail::job_promise<Command>&>(view.promise).command_storage();
      in_flight_job<Command> job{command, view.attempts, view.seqno, view.entity_name, view.ring};
      visit(job);
    });
  }

  std::size_t in_flight() const {
    std::size_t count = 0;
    for_each_in_flight([&](const in_flight_job<Command>&) { ++count; });
    return count;
  }

  /// The backend's own recovery: resets every ring that has commands in flight
  /// and replays them in order with their original fences (attempts + 1). A
  /// command whose hardware fence had already signalled retires normally.
  void reset_and_replay() { core_->reset_and_replay(); }

  /// Internal.
  explicit paused(detail::core_ref core) noexcept : core_(std::move(core)) {}

 private:
  detail::core_ref core_;
};

}  // namespace cosched
