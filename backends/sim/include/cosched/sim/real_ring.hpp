// A simulated GPU ring in real time: a device thread executes commands one after
// another for their duration and reports completions through an eventfd that
// the io_uring reactor polls.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cosched/fence.hpp"
#include "cosched/reactor.hpp"
#include "cosched/ring.hpp"
#include "cosched/sim/device_thread.hpp"
#include "cosched/sim/sim_ring.hpp"

namespace cosched::sim {

/// A ring whose "hardware" is a device thread. Times in the run log are
/// microseconds since the ring's epoch (by default its creation), on the steady clock.
///
/// Completion path: the device thread appends the command's id to a done list
/// (published with a mutex) and writes the ring's eventfd; the reactor's
/// multishot poll on it runs on the io_context's thread, which signals the
/// hardware fences. TSan cannot see the eventfd, so the mutex carries the data.
///
/// @par Thread Safety
/// run() and cancel_all() are called by the scheduler, from its executor.
///
/// @par Lifetime
/// The reactor must outlive the ring; the ring must outlive its scheduler.
/// Destroy the ring on the reactor's thread (or while its io_context is not
/// running): that stops the device thread; pending fences fail `broken`.
class real_ring final : public cosched::ring<command> {
 public:
  /// Times are measured from `epoch` (rings of one run share it).
  explicit real_ring(reactor& r,
                     std::chrono::steady_clock::time_point epoch = std::chrono::steady_clock::now());
  real_ring(const real_ring&) = delete;
  real_ring& operator=(const real_ring&) = delete;
  ~real_ring() override;

  fence run(command& cmd) override;
  void cancel_all() noexcept override;
  /// A `slow` command reports progress, and so does a command that has
  /// finished (its completion is queued for the reactor, or was processed
  /// already); anything else still running at the timeout hung.
  timeout_verdict on_timeout(command& cmd) override;
  void reset() override { cancel_all(); }
  fence replay(command& cmd) override { return run(cmd); }
  /// Its device thread runs one command after another, in run order.
  bool executes_in_order() const noexcept override { return true; }

  /// Microseconds since the ring's epoch.
  time_us now() const noexcept;
  /// Whether the device can make no progress by itself: nothing queued and
  /// nothing executing, or stuck on a command that hangs.
  bool stalled() const;
  /// Every run, in run order (`start` is filled in when the device begins the
  /// command, `end` when it finished).
  std::vector<run_record> log() const;
  /// Completions the device has queued that the reactor has not handled yet.
  std::size_t completions_waiting() const;

 private:
  struct work {
    std::uint64_t id;
    command cmd;
  };
  struct done_item {
    std::uint64_t id;
    time_us start;
    time_us end;
    std::error_code error;
  };

  void on_started(const work& item, time_us start);
  void on_finished(const work& item, time_us start);
  void on_device_event();

  reactor& reactor_;
  int event_fd_ = -1;
  reactor::watch_id watch_ = 0;

  // Written by the device thread: guarded by the device's lock (device_.locked()).
  std::vector<done_item> done_;

  // The scheduler's executor only.
  std::uint64_t next_id_ = 0;
  struct running {
    promise done;
    const command* cmd;
  };
  std::unordered_map<std::uint64_t, running> in_flight_;
  std::unordered_map<const command*, std::uint64_t> run_ids_;  // the latest run of each command in flight
  // Guarded by log_lock_ (the device thread writes starts; lock order: the
  // device's lock, then log_lock_).
  std::unordered_map<std::uint64_t, std::size_t> log_index_;
  std::vector<run_record> log_;
  mutable std::mutex log_lock_;

  device_thread<work> device_;  // last: its thread starts once the rest is initialised
};

}  // namespace cosched::sim
