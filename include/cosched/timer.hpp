// Timers for schedulers (timeouts, the shutdown bound): the steady clock by
// default; simulations supply virtual time.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

namespace cosched {

/// A source of one-shot timers.
///
/// @par Thread Safety
/// start() and cancel() are called from the scheduler's executor. The callback
/// may run on any thread; cosched's callbacks only hand a message to the scheduler.
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
};

}  // namespace cosched
