// A simulated GPU ring on a virtual clock: commands execute one after another,
// each for its duration, with injectable faults.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <system_error>
#include <vector>

#include "cosched/fence.hpp"
#include "cosched/ring.hpp"
#include "cosched/sim/virtual_clock.hpp"

namespace cosched::sim {

/// What a simulated command does on the ring.
struct fault {
  enum class kind : std::uint8_t { none, error, hang, slow };
  kind what = kind::none;
  int errno_value = 0;  // kind::error: the hardware fence fails with this errno
  time_us slow_us = 0;  // kind::slow: actual duration (progress is reported)

  static fault none() noexcept { return {}; }
  static fault error(int value) noexcept { return {kind::error, value, 0}; }
  static fault hang() noexcept { return {kind::hang, 0, 0}; }
  static fault slow(time_us us) noexcept { return {kind::slow, 0, us}; }
};

/// The command type of simulated rings.
struct command {
  time_us duration_us = 1000;
  fault effect;
  std::uint64_t tag = 0;  // the user's name for the command, kept in the run log
};

/// One run of a command on a ring.
struct run_record {
  std::uint64_t tag = 0;
  time_us run_at = 0;  // when the scheduler ran it
  time_us start = 0;   // when the ring began (or, behind a hang, would begin) executing it
  bool finishes = true;
  time_us end = 0;  // when it finishes (if it does)
};

/// A ring on a virtual clock. A command starts at max(its run time, the end of
/// the previous one) and takes its duration (`slow`: its slow duration); an
/// `error` fault fails the hardware fence with the errno at the end; a `hang`
/// never finishes, and nothing after it on the ring starts.
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Unsafe (used from the clock's thread).
///
/// @par Lifetime
/// The clock must outlive the ring; the ring must outlive its scheduler.
class virtual_ring final : public cosched::ring<command> {
 public:
  explicit virtual_ring(virtual_clock& clock) noexcept : clock_(clock) {}
  virtual_ring(const virtual_ring&) = delete;
  virtual_ring& operator=(const virtual_ring&) = delete;
  /// Removes its pending completions from the clock.
  ~virtual_ring() override { cancel_all(); }

  fence run(command& cmd) override;
  void cancel_all() noexcept override;
  /// A `slow` command reports progress (extended); anything else running at
  /// the timeout is treated as hung.
  timeout_verdict on_timeout(command& cmd) override;
  /// Drops every command (their fences fail `broken`); the ring is idle.
  void reset() override { cancel_all(); }
  /// Runs `cmd` again, from now, for its full duration.
  fence replay(command& cmd) override { return run(cmd); }
  /// One command after another, in run order.
  bool executes_in_order() const noexcept override { return true; }

  /// Every run, in run order (none of those handed to a log sink).
  const std::vector<run_record>& log() const noexcept { return log_; }
  /// From now on every run is handed to `sink`, complete, as it is made (in
  /// run order, on the clock's thread), instead of being kept in log(): for a
  /// user that keeps runs its own way (cosched-submit, in fewer bytes). An
  /// empty function keeps them in log() again.
  void set_log_sink(std::function<void(const run_record&)> sink) { sink_ = std::move(sink); }
  /// Commands run and not yet finished or cancelled.
  std::size_t in_flight() const noexcept { return pending_.size(); }

 private:
  struct pending_completion {
    virtual_clock::event_id event = 0;
    promise done;
  };

  virtual_clock& clock_;
  bool stuck_ = false;  // a hung command blocks the ring
  time_us busy_until_ = 0;
  std::uint64_t next_ = 0;
  std::map<std::uint64_t, pending_completion> pending_;
  std::vector<run_record> log_;
  std::function<void(const run_record&)> sink_;  // see set_log_sink()

  void keep(const run_record& record) {
    if (sink_)
      sink_(record);
    else
      log_.push_back(record);
  }
};

}  // namespace cosched::sim
