// Virtual time for simulations: events at microsecond instants, fired in a fixed
// order, with the executor run to idleness between instants. No sleeping.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <tuple>

#include <asio/io_context.hpp>

#include "cosched/timer.hpp"

namespace cosched::sim {

using time_us = std::uint64_t;

/// Order of events that share an instant (DESIGN.md, "Same instant"): ring
/// completions, then timeouts, then kills, then pushes; within a phase, in the
/// order they were scheduled.
enum class phase : std::uint8_t { completion = 0, timeout = 1, kill = 2, push = 3, other = 4 };

/// A deterministic clock. run() alternates between running the io_context until
/// no handler is ready (all effects of an instant, including the scheduler's
/// selection) and advancing to the next instant with pending events. The same
/// events always give the same interleaving.
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Unsafe; use it from the thread that
/// runs the io_context.
class virtual_clock {
 public:
  using event_id = std::uint64_t;

  time_us now() const noexcept { return now_; }

  /// Schedules `fn` at `when` (not before now()).
  event_id at(time_us when, phase p, std::function<void()> fn);
  /// Cancels an event that has not fired. Returns whether it was pending.
  bool cancel(event_id id) noexcept;
  bool idle() const noexcept { return events_.empty(); }

  /// Runs `ctx` to idleness, then instant after instant until no event is pending.
  void run(asio::io_context& ctx);
  /// Runs `ctx` until no handler is ready (restarting it if it had stopped).
  static void settle(asio::io_context& ctx);

 private:
  using key = std::tuple<time_us, std::uint8_t, event_id>;
  std::map<key, std::function<void()>> events_;
  std::map<event_id, key> keys_;
  time_us now_ = 0;
  event_id next_id_ = 1;
};

/// Timers on a virtual clock, in the timeout phase of their instant (so a ring
/// completion at the same instant is seen first). Durations round up to whole
/// microseconds.
///
/// @par Lifetime
/// The clock must outlive it; it must outlive the schedulers that use it.
class virtual_timers final : public timer_service {
 public:
  explicit virtual_timers(virtual_clock& clock) noexcept : clock_(clock) {}
  timer_id start(duration delay, std::function<void()> fn) override {
    const auto us = static_cast<time_us>((delay.count() + 999) / 1000);
    return clock_.at(clock_.now() + us, phase::timeout, std::move(fn));
  }
  void cancel(timer_id id) noexcept override { clock_.cancel(id); }
  /// Virtual time: a scheduler on these timers measures ring time and deadlines in it.
  duration now() const noexcept override { return std::chrono::microseconds(clock_.now()); }

 private:
  virtual_clock& clock_;
};

}  // namespace cosched::sim
