// A simulated GPU ring in real time: a device thread executes commands one after
// another for their duration and reports completions through an eventfd that
// the io_uring reactor polls.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "cosched/fence.hpp"
#include "cosched/reactor.hpp"
#include "cosched/ring.hpp"
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
  explicit real_ring(reactor& r, std::chrono::steady_clock::time_point epoch = std::chrono::steady_clock::now());
  real_ring(const real_ring&) = delete;
  real_ring& operator=(const real_ring&) = delete;
  ~real_ring() override;

  fence run(command& cmd) override;
  void cancel_all() noexcept override;
  /// A `slow` command reports progress; anything else running at the timeout hung.
  timeout_verdict on_timeout(command& cmd) override {
    return cmd.effect.what == fault::kind::slow ? timeout_verdict::progressing : timeout_verdict::hung;
  }
  void reset() override { cancel_all(); }
  fence replay(command& cmd) override { return run(cmd); }

  /// Microseconds since the ring's epoch.
  time_us now() const noexcept;
  /// Whether the device can make no progress by itself: nothing queued and
  /// nothing executing, or stuck on a command that hangs.
  bool stalled() const;
  /// Every run, in run order (`end` is filled in when the command finished).
  std::vector<run_record> log() const;

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

  void device_loop();
  void on_device_event();
  bool interrupted(std::uint64_t generation) const noexcept;

  reactor& reactor_;
  const std::chrono::steady_clock::time_point epoch_;
  int event_fd_ = -1;
  reactor::watch_id watch_ = 0;

  // Shared with the device thread.
  mutable std::mutex lock_;
  std::condition_variable wake_;
  std::deque<work> queue_;
  std::vector<done_item> done_;
  std::uint64_t generation_ = 0;  // bumped by cancel_all: the device drops its current command
  bool busy_ = false;             // the device holds a command
  bool hung_ = false;             // ... and it hangs
  bool stop_ = false;
  std::condition_variable idle_;
  // Copies of stop_ and generation_ for the device's spin without the lock.
  std::atomic<bool> stop_flag_{false};
  std::atomic<std::uint64_t> generation_seen_{0};

  // The scheduler's executor only.
  std::uint64_t next_id_ = 0;
  std::unordered_map<std::uint64_t, promise> in_flight_;
  std::unordered_map<std::uint64_t, std::size_t> log_index_;
  std::vector<run_record> log_;
  mutable std::mutex log_lock_;

  std::thread device_;
};

}  // namespace cosched::sim
