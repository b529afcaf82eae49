// A simulated device in real time: a thread that executes commands one after
// another, each for its duration. sim::real_ring and drm::host_ring's real-time
// engine are built on it; what a command's start and end mean (a run log entry,
// an eventfd write, a syncobj signal) is theirs, through two hooks.
#pragma once

#include <atomic>
#include <chrono>
#include <concepts>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>

#include "cosched/sim/sim_ring.hpp"

namespace cosched::sim {

/// What a device_thread queues: the command to execute, as a member `cmd`, and
/// whatever else its owner needs when that command starts and ends.
template <class Item>
concept device_item = std::movable<Item> && requires(const Item& item) {
  { item.cmd } -> std::convertible_to<const command&>;
};

/// The device's state, as seen under its lock (device_thread::locked()).
struct device_status {
  bool idle = false;  ///< it holds no command and none is queued
  bool hung = false;  ///< it holds a command that hangs (until cancelled or stopped)
};

namespace detail {

/// Commands at most this long spin instead of sleeping: a timed sleep costs
/// tens of microseconds to wake from.
inline constexpr time_us spin_limit_us = 200;

/// Sets the calling thread's timer slack to its minimum: commands last
/// microseconds, and the default 50 us slack would dominate their timing.
void use_fine_timer_slack() noexcept;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace detail

/// A device thread. Each queued item's command takes its duration (`slow`:
/// its slow duration), measured from when the device takes it, on the steady
/// clock; a `hang` never ends by itself. Short commands (up to
/// detail::spin_limit_us) spin, as hardware would simply be busy; longer ones
/// sleep until their deadline. Faults other than these (`error`) are the
/// owner's to report.
///
/// Hooks: `started(item, start)` runs when the device takes the item (may be
/// empty), `finished(item, start)` when its command has run to its end (not
/// when it is cancelled, stopped or hangs). Both run on the device thread with
/// the device's lock held, before the device is idle again. Hence whatever they
/// write is consistent with the device's state when read through locked(), and
/// once cancel_all() has returned no hook of a cancelled item runs any more.
/// They must not call into the device_thread.
///
/// Cancel: cancel_all() drops the queue and the command the device holds (a new
/// generation: the device notices it in its spin, its sleep or its hang), and
/// returns only once the device holds no command.
///
/// @par Thread Safety
/// push(), cancel_all(), locked() and now() may be called from any thread but
/// the device's; stop() (and the destructor) from one thread at a time, with
/// no other call in progress.
///
/// @par Lifetime
/// The constructor starts the thread: declare the device_thread after what its
/// hooks use, and call stop() first thing in the owner's destructor, so that no
/// hook runs while the owner is being destroyed.
template <device_item Item>
class device_thread {
 public:
  using hook = std::function<void(const Item& item, time_us start)>;

  /// Starts the device thread. Times are microseconds since `epoch`.
  device_thread(std::chrono::steady_clock::time_point epoch, hook started, hook finished)
      : epoch_(epoch), started_(std::move(started)), finished_(std::move(finished)) {
    device_ = std::thread([this] { device_loop(); });
  }
  device_thread(const device_thread&) = delete;
  device_thread& operator=(const device_thread&) = delete;
  ~device_thread() { stop(); }

  /// Queues `item`: the device takes it once it is done with those before.
  void push(Item item) {
    {
      std::lock_guard guard(lock_);
      queue_.push_back(std::move(item));
    }
    wake_.notify_one();
  }

  /// Drops the queue and the command the device holds, and returns once the
  /// device holds no command any more.
  void cancel_all() noexcept {
    cancel_all([] {});
  }

  /// The same, and runs `once_idle()` while the device is idle, under its lock
  /// (the owner drops there what the hooks have left for it).
  template <std::invocable Fn>
  void cancel_all(Fn&& once_idle) noexcept {
    std::unique_lock guard(lock_);
    queue_.clear();
    ++generation_;
    // release: the spinning device sees it without the lock.
    generation_seen_.store(generation_, std::memory_order_release);
    wake_.notify_all();
    // Returns only once the device holds no command any more.
    idle_.wait(guard, [this] { return !busy_; });
    std::forward<Fn>(once_idle)();
  }

  /// Stops the device thread and joins it; the command it holds is dropped
  /// (no hook runs for it). Does nothing the second time.
  void stop() noexcept {
    if (!device_.joinable()) return;
    {
      std::lock_guard guard(lock_);
      stop_ = true;
      ++generation_;
      // release: the spinning device sees them without the lock.
      stop_flag_.store(true, std::memory_order_release);
      generation_seen_.store(generation_, std::memory_order_release);
    }
    wake_.notify_all();
    device_.join();
  }

  /// Calls `fn(status)` with the device's lock held and returns what it
  /// returns: `fn` sees the device's state together with what the hooks wrote.
  template <std::invocable<device_status> Fn>
  std::invoke_result_t<Fn, device_status> locked(Fn&& fn) const {
    std::lock_guard guard(lock_);
    return std::forward<Fn>(fn)(device_status{!busy_ && queue_.empty(), hung_});
  }

  /// Microseconds since the epoch.
  time_us now() const noexcept {
    return static_cast<time_us>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - epoch_)
            .count());
  }

 private:
  bool interrupted(std::uint64_t generation) const noexcept {
    // acquire: pairs with the release stores in cancel_all() and stop().
    return stop_flag_.load(std::memory_order_acquire) ||
           generation_seen_.load(std::memory_order_acquire) != generation;
  }

  void device_loop() {
    detail::use_fine_timer_slack();
    std::unique_lock guard(lock_);
    for (;;) {
      wake_.wait(guard, [this] { return stop_ || !queue_.empty(); });
      if (stop_) break;
      Item item = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
      const std::uint64_t generation = generation_;
      const time_us start = now();
      if (started_) started_(item, start);
      if (execute(guard, item.cmd, start, generation)) finished_(item, start);
      busy_ = false;
      idle_.notify_all();
    }
    busy_ = false;
    idle_.notify_all();
  }

  // With the lock held through `guard`: holds `cmd`, taken at `start` in
  // `generation`, for its duration. Returns whether it ran to its end (neither
  // cancelled nor stopped meanwhile).
  bool execute(std::unique_lock<std::mutex>& guard, const command& cmd, time_us start,
               std::uint64_t generation) {
    const auto dropped = [&] { return stop_ || generation_ != generation; };
    if (cmd.effect.what == fault::kind::hang) {
      // Never finishes: wait until cancelled or stopped.
      hung_ = true;
      wake_.wait(guard, dropped);
      hung_ = false;
      return false;
    }
    const time_us duration = cmd.effect.what == fault::kind::slow ? cmd.effect.slow_us : cmd.duration_us;
    const auto deadline = epoch_ + std::chrono::microseconds(start + duration);
    if (duration > detail::spin_limit_us) return !wake_.wait_until(guard, deadline, dropped);
    // Short: spin without the lock, as hardware would simply be busy.
    guard.unlock();
    while (std::chrono::steady_clock::now() < deadline && !interrupted(generation)) detail::cpu_relax();
    guard.lock();
    return !dropped();
  }

  const std::chrono::steady_clock::time_point epoch_;
  const hook started_;
  const hook finished_;

  // Shared with the device thread.
  mutable std::mutex lock_;
  std::condition_variable wake_;  // the device: an item, a cancel or stop
  std::condition_variable idle_;  // cancel_all(): the device holds no command
  std::deque<Item> queue_;
  std::uint64_t generation_ = 0;  // bumped by cancel_all() and stop(): the device drops its command
  bool busy_ = false;             // the device holds a command
  bool hung_ = false;             // ... and it hangs
  bool stop_ = false;
  // Copies of stop_ and generation_ for the device's spin without the lock.
  std::atomic<bool> stop_flag_{false};
  std::atomic<std::uint64_t> generation_seen_{0};

  std::thread device_;  // last: it starts once everything above is initialised
};

}  // namespace cosched::sim
