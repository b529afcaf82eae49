// The loop behind cosched::uring_context (internal): one io_uring ring shared by
// the context's wake-up read, its timers' wait and the reactor's requests.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <unordered_map>

#include <liburing.h>

#include "cosched/uring_context.hpp"

namespace cosched::detail {

/// Where the loop hands the completions that are not its own (the reactor).
struct uring_completion_sink {
  virtual void on_completion(std::uint64_t user_data, std::int32_t res, std::uint32_t flags) = 0;
  /// Requests in flight that should keep run() from returning.
  virtual bool has_pending() const noexcept = 0;

 protected:
  ~uring_completion_sink() = default;
};

struct uring_loop final : timer_service {
  explicit uring_loop(const uring_context_options& options);
  ~uring_loop() override;
  uring_loop(const uring_loop&) = delete;
  uring_loop& operator=(const uring_loop&) = delete;

  std::size_t run_loop(bool may_block);

  // Handlers.
  void post(uring_op* op) noexcept;
  bool on_loop_thread() const noexcept;

  // timer_service (loop thread only).
  timer_id start(duration delay, std::function<void()> fn) override;
  void cancel(timer_id id) noexcept override;

  /// The reactor that shares the ring (at most one at a time). Returns the tag
  /// (1..254) that the reactor's requests carry in the top byte of their user_data.
  std::uint8_t attach(uring_completion_sink* sink);
  void detach(uring_completion_sink* sink) noexcept;

  /// Submits what is queued now (when the submission queue is full).
  void submit_now();
  bool enabled() const noexcept { return enabled_; }

  static constexpr std::uint64_t wake_tag = ~std::uint64_t{0} - 1;

  io_uring ring{};
  std::atomic<std::uint64_t> enters{0};
  std::atomic<long> work{0};
  std::atomic<bool> stopped{false};

 private:
  using clock = std::chrono::steady_clock;

  void enable();
  void take_remote() noexcept;
  std::size_t run_ready();
  bool reap();
  bool fire_timers();
  bool has_work() const noexcept;
  void arm_wake();
  void block();
  int enter_submit();

  bool enabled_ = false;
  bool defer_taskrun_ = false;
  int wake_fd_ = -1;
  std::uint64_t wake_value_ = 0;
  bool wake_armed_ = false;
  uring_completion_sink* sink_ = nullptr;
  std::uint8_t last_tag_ = 0;

  // Handlers: `local_` is the loop thread's FIFO; other threads push onto `remote_` (LIFO), a
  // lock-free stack linked through the same hook (uring_op_list::set_next), which take_remote()
  // moves to the back of `local_`.
  uring_op_list local_;
  alignas(64) std::atomic<uring_op*> remote_{nullptr};
  alignas(64) std::atomic<bool> sleeping_{false};
  std::atomic<bool> wake_pending_{false};

  // Timers, by deadline; ids map to their place.
  struct timer {
    std::function<void()> fn;
  };
  std::multimap<clock::time_point, timer_id> deadlines_;
  std::unordered_map<timer_id, std::pair<std::multimap<clock::time_point, timer_id>::iterator, timer>>
      timers_;
  timer_id next_timer_ = 1;
};

}  // namespace cosched::detail
