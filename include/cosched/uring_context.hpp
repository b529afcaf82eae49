// An execution context whose run loop waits in io_uring: the io_uring-native
// alternative to running schedulers and the reactor on an asio::io_context.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

#include <asio/execution.hpp>
#include <asio/execution_context.hpp>

#include "cosched/detail/intrusive_list.hpp"
#include "cosched/detail/pool.hpp"
#include "cosched/timer.hpp"

namespace cosched {

namespace detail {
struct uring_loop;

/// A queued handler: one allocation from the job pool, intrusive.
struct uring_op {
  slist_hook<uring_op> queue_link;  // its place in the loop's handlers (uring_op_list), or on its stack
  void (*complete)(uring_op* self, bool invoke) = nullptr;  // runs (invoke) or only destroys
};

/// The loop's handlers, first in first out: front and back (intrusive_list's
/// singly linked shape).
using uring_op_list = intrusive_list<uring_op, &uring_op::queue_link>;

template <class F>
struct uring_fn_op final : uring_op {
  static void* operator new(std::size_t size) { return pool_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { pool_deallocate(p, size); }
  explicit uring_fn_op(F&& fn) : f(std::move(fn)) {
    complete = [](uring_op* base, bool invoke) {
      auto* self = static_cast<uring_fn_op*>(base);
      F local(std::move(self->f));
      delete self;
      if (invoke) local();
    };
  }
  F f;
};
}  // namespace detail

struct uring_context_options {
  /// Submission queue entries (shared with the reactor on this context).
  unsigned entries = 1024;
  /// Completion queue entries; 0: four times `entries`, at least 16384.
  unsigned completion_entries = 0;
};

/// A single-threaded execution context whose loop blocks in `io_uring_enter`:
/// handlers, timers and the completions of a cosched::reactor made on it share one
/// io_uring ring, and going idle submits pending requests and waits for the next
/// completion in one system call. Handlers posted from other threads wake it through
/// an eventfd read that the ring keeps armed (one write per sleep, coalesced).
///
/// It is an alternative to asio::io_context for the thread that runs schedulers
/// and their reactor: asio::post, co_spawn and cosched's schedulers accept its
/// executor. It does not host Asio I/O objects or asio::steady_timer (they need an
/// io_context); schedulers on it use its timers().
///
/// @par Thread Safety
/// run(), poll() and timers() from one thread: the first thread that runs the
/// loop becomes the ring's only submitter (SINGLE_ISSUER), and running it from
/// another thread later fails with a system_error (EEXIST);
/// the executor's execute(), stop() and stopped() from any thread.
///
/// @par Ownership and Lifetime
/// Immovable. Destroying it destroys the handlers still queued without running
/// them; objects that use it (schedulers, the reactor) must be gone first.
class uring_context : public asio::execution_context {
 public:
  class executor_type;

  explicit uring_context(uring_context_options options = {});
  uring_context(const uring_context&) = delete;
  uring_context& operator=(const uring_context&) = delete;
  ~uring_context();

  executor_type get_executor() noexcept;

  /// Runs handlers, timers and completions until stop() or until there is nothing
  /// left to wait for (no handler, no timer, no request in flight and no tracked
  /// work). Returns the number of handlers run.
  std::size_t run();
  /// Runs what is ready now without blocking. Returns the number of handlers run.
  std::size_t poll();
  /// Makes run() return as soon as possible; later calls return at once until restart().
  void stop() noexcept;
  bool stopped() const noexcept;
  void restart() noexcept;

  /// One-shot timers on this context's clock (steady), fired on the loop thread.
  /// start() and cancel() must be called on the loop thread.
  timer_service& timers() noexcept;

  /// io_uring_enter calls the loop made (for measuring).
  std::uint64_t enter_calls() const noexcept;

  /// The loop behind the context (used by cosched::reactor).
  detail::uring_loop& loop() noexcept { return *loop_; }

 private:
  friend class executor_type;
  void post_op(detail::uring_op* op) noexcept;
  void work_started() noexcept;
  void work_finished() noexcept;
  bool running_in_this_thread() const noexcept;

  std::unique_ptr<detail::uring_loop> loop_;
};

/// The executor of a uring_context: a standard (P0443-style) Asio executor,
/// never blocking, optionally tracking outstanding work.
class uring_context::executor_type {
 public:
  executor_type() = delete;
  executor_type(const executor_type& other) noexcept : ctx_(other.ctx_), tracked_(other.tracked_) {
    if (tracked_) ctx_->work_started();
  }
  executor_type(executor_type&& other) noexcept
      : ctx_(other.ctx_), tracked_(std::exchange(other.tracked_, false)) {}
  executor_type& operator=(const executor_type& other) noexcept {
    executor_type copy(other);
    swap(copy);
    return *this;
  }
  executor_type& operator=(executor_type&& other) noexcept {
    executor_type moved(std::move(other));
    swap(moved);
    return *this;
  }
  ~executor_type() {
    if (tracked_) ctx_->work_finished();
  }

  uring_context& query(asio::execution::context_t) const noexcept { return *ctx_; }
  static constexpr asio::execution::blocking_t query(asio::execution::blocking_t) noexcept {
    return asio::execution::blocking.never;
  }
  static constexpr asio::execution::relationship_t query(asio::execution::relationship_t) noexcept {
    return asio::execution::relationship.fork;
  }
  asio::execution::outstanding_work_t query(asio::execution::outstanding_work_t) const noexcept {
    return tracked_ ? asio::execution::outstanding_work_t(asio::execution::outstanding_work.tracked)
                    : asio::execution::outstanding_work_t(asio::execution::outstanding_work.untracked);
  }

  executor_type require(asio::execution::blocking_t::never_t) const noexcept { return *this; }
  executor_type require(asio::execution::relationship_t::fork_t) const noexcept { return *this; }
  executor_type require(asio::execution::relationship_t::continuation_t) const noexcept { return *this; }
  executor_type require(asio::execution::outstanding_work_t::tracked_t) const noexcept {
    return executor_type(ctx_, true);
  }
  executor_type require(asio::execution::outstanding_work_t::untracked_t) const noexcept {
    return executor_type(ctx_, false);
  }

  template <class F>
  void execute(F&& f) const {
    using fn = std::decay_t<F>;
    ctx_->post_op(new detail::uring_fn_op<fn>(fn(std::forward<F>(f))));
  }

  /// Whether the calling thread is running the context's loop.
  bool running_in_this_thread() const noexcept { return ctx_->running_in_this_thread(); }
  uring_context& context() const noexcept { return *ctx_; }

  friend bool operator==(const executor_type& a, const executor_type& b) noexcept {
    return a.ctx_ == b.ctx_ && a.tracked_ == b.tracked_;
  }
  friend bool operator!=(const executor_type& a, const executor_type& b) noexcept { return !(a == b); }

 private:
  friend class uring_context;
  executor_type(uring_context* ctx, bool tracked) noexcept : ctx_(ctx), tracked_(tracked) {
    if (tracked_) ctx_->work_started();
  }
  void swap(executor_type& other) noexcept {
    std::swap(ctx_, other.ctx_);
    std::swap(tracked_, other.tracked_);
  }

  uring_context* ctx_;
  bool tracked_ = false;
};

inline uring_context::executor_type uring_context::get_executor() noexcept {
  return executor_type(this, false);
}

}  // namespace cosched
