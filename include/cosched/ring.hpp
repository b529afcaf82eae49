// The backend's side of the scheduler: one ring per hardware queue. The scheduler
// borrows commands to it; the ring returns a hardware fence per run.
#pragma once

#include <cstdint>

#include "cosched/fence.hpp"

namespace cosched {

/// A hardware queue that runs commands of type `Command`.
///
/// @par Ownership
/// The scheduler owns every command. `run` borrows it: the reference stays valid
/// until the job's hardware fence has signalled and the scheduler retired it, or
/// until cancel_all() returned; the ring must not keep it beyond that.
///
/// @par Thread Safety
/// The scheduler calls a ring only from its executor, never concurrently.
///
/// @par Lifetime
/// A ring must outlive the scheduler that uses it.
template <class Command>
class ring {
 public:
  virtual ~ring() = default;

  /// Starts `cmd` on the hardware and returns the fence that signals when the
  /// hardware has finished it (its error, if any, fails the job). Rings execute
  /// commands in the order they were run.
  virtual fence run(Command& cmd) = 0;

  /// Stops the hardware from referencing any command. Returns only once no
  /// command is referenced any more; the hardware fences of commands that had
  /// not finished need not signal (the scheduler stops waiting for them).
  virtual void cancel_all() noexcept = 0;
};

}  // namespace cosched
