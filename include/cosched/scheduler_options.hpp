// The scheduler's public vocabulary: how entities map to rings, how the next
// command is chosen, the options a scheduler is made with, its statistics, and
// the name of a job behind a fence (scheduler::describe). Plain types, no engine.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "cosched/job_exception.hpp"
#include "cosched/timer.hpp"

namespace cosched {

/// How entities map to rings.
enum class ring_mode : std::uint8_t {
  shared_ring,     ///< every entity on one ring (a hardware scheduler); a hang resets it and replays
  ring_per_entity  ///< one ring per entity (a firmware scheduler); a hang closes that ring
};

/// How the scheduler chooses among the ready heads of the entities that share
/// rings (scheduler_options::policy; the rules are in scheduler.hpp).
enum class scheduling_policy : std::uint8_t {
  fifo,     ///< strict priority, then push order
  rr,       ///< strict priority, then the entity served least recently
  fair,     ///< least weighted ring time (weights kernel 8, high 4, normal 2, low 1)
  deadline  ///< strict priority, then the earliest deadline, then push order
};

struct scheduler_options {
  /// How many credits the in-flight commands of one ring may hold together.
  std::uint32_t credit_limit = 1;
  /// shared_ring: every entity on the ring given to the constructor (a hang
  /// resets it and replays the innocent commands). ring_per_entity: each entity
  /// brings its own ring to make_entity (a hang closes that ring).
  ring_mode mode = ring_mode::shared_ring;
  /// A ring that makes no progress for this long after a command started times
  /// out (zero: never).
  std::chrono::nanoseconds timeout{0};
  /// Timers for timeouts and the shutdown bound, and the clock of ring time
  /// (policy fair) and deadlines; null: steady timers on the scheduler's
  /// executor. Must outlive the scheduler.
  timer_service* timers = nullptr;
  /// How the next command is chosen among the ready heads of entities that
  /// share rings (see scheduler). ring_per_entity: entities do not compete, but
  /// deadline misses are still counted.
  scheduling_policy policy = scheduling_policy::fifo;
  /// Called on the executor for each job whose body (or whose command's
  /// ring run) threw, after the scheduler has logged it and before the job's
  /// finished fence signals (see job_exception). May be empty.
  job_exception_handler on_exception = {};
  /// Pipelining (drm_sched's): a declared dependency (push_options::after)
  /// that is a job of this scheduler counts as satisfied once it has been run
  /// on the ring the dependent will run on, if that ring executes in order
  /// (ring::executes_in_order) and the dependency's outcome is not a failure,
  /// so that dependent commands follow each other on the ring without an idle
  /// gap. The dependent's ring is known when the scheduler has one shared ring,
  /// or in ring_per_entity mode (its entity's ring); with several shared rings
  /// the ring is chosen when a command runs, so dependencies are waited for.
  /// The check is made as the dependent waits through its declared
  /// dependencies in order, and again when the one it waits for is run. A
  /// dependent not yet run when such a dependency fails fails at that moment
  /// with its error (cause: its root); a dependent already run completes on the
  /// ring, but its outcome is then the first failed dependency's (in `after`
  /// order) instead of its own, if its command completed (one that timed out
  /// keeps `timed_out`: it is the root of its entity's ban). Either way it
  /// signals no earlier than its dependencies (fence causality).
  bool pipeline = false;
  /// One producer (Asio's concurrency hint of 1): every push to the
  /// scheduler's entities is made on the one thread that runs its executor (in
  /// its handlers, in job bodies, or on that thread before it runs the
  /// executor), and no other thread runs the executor. A push then takes no lock
  /// and makes no atomic read-modify-write: no entity lock, no scheduler-wide
  /// push counter. Every other entity operation (close, kill, set_priority,
  /// set_rings, drain, flush, the handle's release) may still come from any
  /// thread. A push or a pass on another thread is a programming error: a
  /// build without NDEBUG terminates with a message the first time it happens;
  /// a release build does not check.
  bool single_producer = false;
};

/// Counters readable from any thread (scheduler::statistics()).
struct scheduler_statistics {
  /// Jobs pushed with a deadline whose finished fence signalled after it
  /// (whatever their outcome), on the scheduler's clock.
  std::uint64_t deadline_misses = 0;
  /// Jobs pushed with a deadline whose finished fence signalled by then.
  std::uint64_t deadlines_met = 0;
};

/// A job named by its entity and its place in it (scheduler::describe): what a
/// fence_point of a job's finished fence, such as a failed fence's cause(), stands for.
struct job_ref {
  std::string entity_name;       ///< entity_options::name (may be empty)
  std::uint64_t entity_context;  ///< entity::context(): tells entities of one name apart
  std::uint64_t seqno;           ///< the job's place among its entity's pushes, 1 for the first
};

}  // namespace cosched
