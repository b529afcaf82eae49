// What the threaded lifetime tests share: a counted command, a ring whose
// device thread signals the hardware fences, a thread that runs an
// io_context, and a watchdog wait.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <system_error>
#include <thread>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include "cosched/cosched.hpp"
#include "cosched/testing.hpp"

namespace cosched::lifetime_test {

/// A command that counts itself: its probe dies with the command.
struct counted_command {
  sim::command cmd;
  testing::probe alive;
};
using counted_job = job<counted_command>;

/// A ring with a device thread that signals the hardware fences, in run order,
/// from its own thread (a real cross-thread completion).
class device_ring final : public ring<counted_command> {
 public:
  device_ring() : device_([this] { serve(); }) {}
  device_ring(const device_ring&) = delete;
  device_ring& operator=(const device_ring&) = delete;
  ~device_ring() override { stop(); }

  /// Joins the device thread once it has signalled what it holds. Tests call it
  /// before the scheduler's io_context goes: a signal's wake-up posts to it.
  void stop() {
    if (!device_.joinable()) return;
    {
      std::lock_guard guard(lock_);
      stopping_ = true;
    }
    wake_.notify_one();
    device_.join();
  }

  fence run(counted_command&) override {
    promise done;
    fence hardware = done.get_fence();
    {
      std::lock_guard guard(lock_);
      queue_.push_back(std::move(done));
      ++runs_;
    }
    wake_.notify_one();  // the device may be waiting for work
    return hardware;
  }
  void cancel_all() noexcept override {
    std::deque<promise> dropped;  // signal `broken` as they go; nobody waits for them any more
    std::lock_guard guard(lock_);
    dropped.swap(queue_);
    ++cancels_;
  }

  std::uint64_t runs() {
    std::lock_guard guard(lock_);
    return runs_;
  }
  int cancels() {
    std::lock_guard guard(lock_);
    return cancels_;
  }

 private:
  void serve() {
    std::unique_lock guard(lock_);
    for (;;) {
      wake_.wait(guard, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      promise done = std::move(queue_.front());
      queue_.pop_front();
      guard.unlock();
      done.set_value();
      guard.lock();
    }
  }

  std::mutex lock_;
  std::condition_variable wake_;
  std::deque<promise> queue_;
  bool stopping_ = false;
  std::uint64_t runs_ = 0;
  int cancels_ = 0;
  std::thread device_;  // last: starts once the members it uses exist
};

/// One thread runs the io_context until stop().
class executor_thread {
 public:
  executor_thread() : runner_([this] { ctx_.run(); }) {}
  executor_thread(const executor_thread&) = delete;
  executor_thread& operator=(const executor_thread&) = delete;
  ~executor_thread() { stop(); }

  asio::io_context::executor_type executor() noexcept { return ctx_.get_executor(); }
  std::thread::id id() const noexcept { return runner_.get_id(); }
  /// Lets run() return once no work is left, and joins the thread.
  void stop() {
    if (!runner_.joinable()) return;
    work_.reset();
    runner_.join();
  }

 private:
  asio::io_context ctx_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{ctx_.get_executor()};
  std::thread runner_;
};

/// A watchdog, not a timing: a wake-up lost by the scheduler must fail the test
/// instead of hanging it. Healthy runs take about a second, under TSan too.
constexpr auto watchdog = std::chrono::seconds(60);

/// Blocks the calling thread until `f` has signalled (the handler runs on `ex`)
/// or `deadline` has passed. Returns the fence's error, or nothing at the deadline.
inline std::optional<std::error_code> wait_for(const fence& f, asio::io_context::executor_type ex,
                                               std::chrono::steady_clock::time_point deadline) {
  struct waiter {
    std::mutex lock;
    std::condition_variable done;
    std::optional<std::error_code> result;  // guarded by lock
  };
  auto w = std::make_shared<waiter>();  // the handler may outlive a wait that gave up
  f.async_wait(ex, [w](std::error_code ec) {
    std::lock_guard guard(w->lock);
    w->result = ec;
    w->done.notify_all();
  });
  std::unique_lock guard(w->lock);
  w->done.wait_until(guard, deadline, [&] { return w->result.has_value(); });
  return w->result;
}

inline std::optional<std::error_code> wait_for(const fence& f, asio::io_context::executor_type ex) {
  return wait_for(f, ex, std::chrono::steady_clock::now() + watchdog);
}

/// The scheduler did not finish shutting down within the watchdog: its thread
/// may be stuck inside a pass, so nothing can be joined or destroyed safely.
/// Terminates the test process with a message (the test has failed).
[[noreturn]] inline void shutdown_stuck() {
  std::fprintf(stderr,
               "lifetime_tests: FAILED: the scheduler's shutdown did not complete within the watchdog; "
               "its executor thread cannot be joined: terminating\n");
  std::fflush(stderr);
  std::abort();
}

}  // namespace cosched::lifetime_test
