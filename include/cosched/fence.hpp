// Fences: one-shot completions with an optional std::error_code, the only objects
// cosched shares between parties. A promise signals; any number of fence handles wait.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>
#include <utility>

#include <asio/associated_cancellation_slot.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/cancellation_type.hpp>
#include <asio/error.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/system_executor.hpp>

#include "cosched/detail/fence_state.hpp"
#include "cosched/error.hpp"

namespace cosched {

class promise;

/// A reference-counted handle to a one-shot completion.
///
/// A fence is signalled exactly once, with success or an error, by its promise
/// (or by the scheduler for job fences). It may carry the point of the job where
/// a failure originated (`cause()`), so a chain of failed dependencies names its root.
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Safe for const members; the handle
/// itself (assignment) is Unsafe.
///
/// @par Ownership
/// Copyable; the shared state lives until the last handle and its promise are gone.
///
/// @par Lifetime
/// Nothing needs to outlive a fence. An empty (default-constructed) fence is not
/// valid(); every other member requires a valid fence.
class fence {
 public:
  using clock = std::chrono::steady_clock;

  fence() noexcept = default;
  fence(const fence& other) noexcept : state_(other.state_) {
    if (state_) state_->owner->add_ref();
  }
  fence(fence&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  fence& operator=(fence other) noexcept {
    std::swap(state_, other.state_);
    return *this;
  }
  ~fence() {
    if (state_) state_->owner->release();
  }

  /// A fence that is already signalled with `ec` (success when empty).
  static fence make_signalled(std::error_code ec = {}, std::optional<fence_point> cause = {});

  /// The stub fence: signalled with success, point (0, 0) (context 0 is never
  /// handed out by new_context()). It is one process-wide object that is never
  /// allocated, freed or reference counted, so a ring can return it for work
  /// that has completed already at no cost (the kernel's dma_fence_get_stub).
  /// set_deadline() on it records nothing.
  static fence stub() noexcept;

  bool valid() const noexcept { return state_ != nullptr; }
  explicit operator bool() const noexcept { return valid(); }

  /// Whether the fence has signalled. When true, error() and cause() are final.
  bool signalled() const noexcept { return state_->is_signalled(); }

  /// The outcome; meaningful once signalled() (empty while pending).
  std::error_code error() const noexcept {
    return state_->is_signalled() ? state_->error() : std::error_code{};
  }

  /// For a failed fence whose failure came from another job (a failed
  /// dependency, a ban), the point of the job where it originated.
  std::optional<fence_point> cause() const noexcept {
    return state_->is_signalled() ? state_->recorded_cause() : std::nullopt;
  }

  /// The fence's point on its timeline.
  fence_point point() const noexcept { return state_->point; }

  /// Deadline hint: the earliest deadline set so far is recorded, and forwarded
  /// to the hardware fence when the fence is backed by one.
  void set_deadline(clock::time_point when) const noexcept {
    if (state_->owner->immortal) return;  // the stub: shared by everyone, nothing to forward to
    state_->set_deadline(
        std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count());
  }
  std::optional<clock::time_point> deadline() const noexcept {
    // relaxed: a hint; no other data is published with it.
    const auto ns = state_->deadline_ns.load(std::memory_order_relaxed);
    if (ns == INT64_MAX) return std::nullopt;
    return clock::time_point(std::chrono::nanoseconds(ns));
  }

  /// Waits for the fence with any Asio completion token; the signature is
  /// void(std::error_code): the fence's error, or asio::error::operation_aborted
  /// when the wait was cancelled through the handler's cancellation slot
  /// (terminal, partial and total cancellation are all honoured).
  ///
  /// The handler runs on its associated executor (`ex` when it has none), never
  /// inline in async_wait and never on the signalling thread. The wait keeps
  /// outstanding work on that executor until it completes, so the executor's
  /// execution context must outlive the wait (it does when it is run to completion).
  template <class Executor, class CompletionToken>
  auto async_wait(const Executor& ex, CompletionToken&& token) const;

  /// As above; a handler without an associated executor runs on asio::system_executor.
  template <class CompletionToken>
  auto async_wait(CompletionToken&& token) const {
    return async_wait(asio::system_executor(), std::forward<CompletionToken>(token));
  }

  /// Internal: the shared state (for schedulers, reactors and backends).
  detail::fence_state* state() const noexcept { return state_; }
  /// Internal: adopts one reference to `state`.
  static fence adopt(detail::fence_state* state) noexcept {
    fence f;
    f.state_ = state;
    return f;
  }

  friend bool operator==(const fence& a, const fence& b) noexcept { return a.state_ == b.state_; }

 private:
  detail::fence_state* state_ = nullptr;
};

/// The signalling side of a fence: unique and move-only.
///
/// Destroying a promise that has not signalled signals its fence with
/// errc::broken, so no fence can be left pending forever by a lost owner.
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Unsafe. The fence may be waited for
/// from any thread while the promise signals.
class promise {
 public:
  /// A promise for a fence on a fresh timeline context, seqno 1.
  promise();
  /// A promise for a fence at the given point.
  explicit promise(fence_point point);
  promise(promise&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  promise& operator=(promise&& other) noexcept {
    if (this != &other) {
      reset();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  promise(const promise&) = delete;
  promise& operator=(const promise&) = delete;
  ~promise() { reset(); }

  bool valid() const noexcept { return state_ != nullptr; }

  /// A handle to the fence this promise signals. Requires valid().
  fence get_fence() const noexcept;

  /// Signals success. The promise becomes invalid.
  void set_value() noexcept { signal({}, std::nullopt); }
  /// Signals failure with `ec` (which must not be empty: an empty code signals
  /// errc::broken) and an optional root cause. The promise becomes invalid.
  void set_error(std::error_code ec, std::optional<fence_point> cause = std::nullopt) noexcept {
    signal(ec ? ec : make_error_code(errc::broken), cause);
  }
  /// Signals with `ec` (success when empty). The promise becomes invalid.
  void signal(std::error_code ec, std::optional<fence_point> cause = std::nullopt) noexcept;

 private:
  void reset() noexcept;
  detail::fence_state* state_ = nullptr;
};

/// A timeline: a context id and a 64-bit value that only grows. It hands out
/// fences for points it has not reached yet (wait-before-signal, as Vulkan
/// timeline semaphores need); such a fence signals, without error, once the
/// timeline reaches its point. Errors of work belong to that work's own fences.
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Safe.
///
/// @par Lifetime
/// Destroying a timeline fails the fences of points it has not reached with
/// errc::broken.
class timeline {
 public:
  timeline();
  explicit timeline(std::uint64_t context);
  timeline(const timeline&) = delete;
  timeline& operator=(const timeline&) = delete;
  ~timeline();

  std::uint64_t context() const noexcept;
  /// The value reached so far (0 initially).
  std::uint64_t value() const noexcept;
  /// A fence for `seqno`: already signalled when value() >= seqno.
  fence at(std::uint64_t seqno);
  /// Advances the timeline to `seqno` (no effect if it is not beyond value()),
  /// signalling every fence handed out for a point up to `seqno`.
  void advance(std::uint64_t seqno);

  struct state;

 private:
  std::unique_ptr<state> state_;
};

// ------------------------------------------------------------------ async_wait

namespace detail {

template <class Handler, class Executor>
class fence_wait_op final : public fence_waiter {
 public:
  using handler_executor = asio::associated_executor_t<Handler, Executor>;

  fence_wait_op(Handler&& handler, const Executor& ex, fence f)
      : handler_(std::move(handler)),
        work_(asio::get_associated_executor(handler_, ex)),
        fence_(std::move(f)) {
    notify = &on_signal;
  }

  // Called once: starts the wait. The op owns itself from here on.
  void start() {
    auto slot = asio::get_associated_cancellation_slot(handler_);
    if (slot.is_connected()) slot.template emplace<cancel_handler>(this);
    if (!fence_.state()->add_waiter(*this)) post_completion(fence_.state()->error());
  }

 private:
  struct cancel_handler {
    explicit cancel_handler(fence_wait_op* o) noexcept : op(o) {}
    fence_wait_op* op;
    void operator()(asio::cancellation_type type) const {
      if ((type & (asio::cancellation_type::terminal | asio::cancellation_type::partial |
                   asio::cancellation_type::total)) == asio::cancellation_type::none)
        return;
      // Whoever unlinks the waiter completes it: here the cancellation won.
      if (op->fence_.state()->remove_waiter(*op)) op->post_completion(asio::error::operation_aborted);
    }
  };

  static void on_signal(fence_waiter& self, fence_state& state) noexcept {
    static_cast<fence_wait_op&>(self).post_completion(state.error());
  }

  // Owns the op until it runs on the handler's executor; deletes it if the
  // executor is destroyed without running it.
  struct completion {
    fence_wait_op* op;
    std::error_code ec;
    completion(fence_wait_op* o, std::error_code e) noexcept : op(o), ec(e) {}
    completion(completion&& other) noexcept : op(std::exchange(other.op, nullptr)), ec(other.ec) {}
    completion(const completion&) = delete;
    ~completion() { delete op; }
    void operator()() {
      auto slot = asio::get_associated_cancellation_slot(op->handler_);
      if (slot.is_connected()) slot.clear();
      Handler handler(std::move(op->handler_));
      delete std::exchange(op, nullptr);
      std::move(handler)(ec);
    }
  };

  void post_completion(std::error_code ec) noexcept {
    asio::post(work_.get_executor(), completion(this, ec));
  }

  Handler handler_;
  asio::executor_work_guard<handler_executor> work_;  // on the executor the handler runs on
  fence fence_;
};

template <class Executor>
struct initiate_fence_wait {
  Executor ex;
  template <class Handler>
  void operator()(Handler&& handler, fence f) const {
    using op_type = fence_wait_op<std::decay_t<Handler>, Executor>;
    auto* op = new op_type(std::forward<Handler>(handler), ex, std::move(f));
    op->start();
  }
};

}  // namespace detail

template <class Executor, class CompletionToken>
auto fence::async_wait(const Executor& ex, CompletionToken&& token) const {
  return asio::async_initiate<CompletionToken, void(std::error_code)>(
      detail::initiate_fence_wait<Executor>{ex}, token, *this);
}

}  // namespace cosched
