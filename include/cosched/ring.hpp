// The backend's side of the scheduler: one ring per hardware queue. The scheduler
// borrows commands to it; the ring returns a hardware fence per run.
#pragma once

#include <cstdint>

#include "cosched/fence.hpp"

namespace cosched {

/// What a ring says when the command at its front has run for the timeout.
enum class timeout_verdict : std::uint8_t {
  progressing,  ///< a false timeout: still running and making progress; the timer is extended
  hung,         ///< no progress: the scheduler recovers (reset and replay, or the ring closes)
};

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

  /// The command at the front of the ring (`cmd`, the oldest unfinished one)
  /// has run for the scheduler's timeout. The default says it hung.
  virtual timeout_verdict on_timeout(Command& cmd) {
    (void)cmd;
    return timeout_verdict::hung;
  }

  /// Resets the hardware after a hang: afterwards it references no command and
  /// will not signal the hardware fences it returned before (waits for them are
  /// abandoned). The default is cancel_all().
  virtual void reset() { cancel_all(); }

  /// Runs `cmd` again after a reset (commands are replayed in their original
  /// order) and returns its new hardware fence. The default is run().
  virtual fence replay(Command& cmd) { return run(cmd); }
  /// Whether the ring executes its commands one after another in the order
  /// they were run, each starting once the previous one has finished (a GPU
  /// queue with an implicit barrier between submissions). Only such a ring
  /// lets scheduler_options::pipeline count a dependency run on it as
  /// satisfied. The default says no.
  virtual bool executes_in_order() const noexcept { return false; }
};

}  // namespace cosched
