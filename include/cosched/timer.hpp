// Timers for schedulers (timeouts, the shutdown bound): the steady clock by
// default; simulations supply virtual time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace cosched {

/// A source of one-shot timers, and the clock they count on.
///
/// @par Thread Safety
/// start() and cancel() are called from the scheduler's executor. The callback
/// may run on any thread; cosched's callbacks only hand a message to the scheduler.
/// now() is called from the scheduler's executor (and from scheduler::now()).
///
/// @par Lifetime
/// Must outlive the schedulers that use it.
class timer_service {
 public:
  using duration = std::chrono::nanoseconds;
  using timer_id = std::uint64_t;

  virtual ~timer_service() = default;
  /// Calls `fn` once, `delay` from now, unless cancelled first.
  virtual timer_id start(duration delay, std::function<void()> fn) = 0;
  /// Cancels a timer that has not fired (no effect otherwise).
  virtual void cancel(timer_id id) noexcept = 0;
  /// The clock the timers count on, as time since its epoch: schedulers measure
  /// ring time (policy fair) and deadlines with it. The default is the steady
  /// clock; a simulation returns its virtual time.
  virtual duration now() const noexcept {
    return std::chrono::duration_cast<duration>(std::chrono::steady_clock::now().time_since_epoch());
  }
};

}  // namespace cosched
