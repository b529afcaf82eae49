// Jobs: lazy C++20 coroutines that wait for their dependencies and co_return the
// command a ring runs. The scheduler owns a job from push until it retires it.
#pragma once

#include <concepts>
#include <coroutine>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <system_error>
#include <type_traits>
#include <utility>

#include "cosched/detail/job_block.hpp"
#include "cosched/detail/pool.hpp"
#include "cosched/error.hpp"
#include "cosched/fence.hpp"

namespace cosched {

template <class Command>
class job;

/// `co_return cosched::fail(ec);` fails the job with `ec` (its own failure: no cause).
struct failure {
  std::error_code error;
};
inline failure fail(std::error_code ec) noexcept { return failure{ec}; }

/// `co_await cosched::try_wait(f)` inside a job waits for `f` and yields its
/// std::error_code instead of failing the job when `f` failed.
struct try_wait {
  explicit try_wait(fence f) noexcept : awaited(std::move(f)) {}
  fence awaited;
};

namespace detail {

template <class>
inline constexpr bool always_false = false;

/// Registers the job's single dependency wait on `awaited`. Returns false when
/// the fence had already signalled (nothing is registered). Defined in the core.
bool job_wait_begin(job_promise_base& promise, const fence_state& awaited, bool yields_error) noexcept;
/// Called when a suspended job's frame is destroyed: unlinks the wait if the
/// fence has not signalled yet.
void job_wait_abandon(job_promise_base& promise) noexcept;
/// The job's body threw `thrown` (the job has failed already): the scheduler
/// logs it and reports it (scheduler_options::on_exception). Defined in the core.
void job_threw(job_promise_base& promise, std::exception_ptr thrown) noexcept;

/// Failure of a dependency seen by a job: the fence's error, and the root cause
/// (the dependency's own cause, else the dependency itself).
inline void record_dependency_failure(job_promise_base& promise, const fence_state& dependency) noexcept {
  promise.fail(dependency.error(), dependency.has_cause ? dependency.cause : dependency.point);
}

// The awaited fence is borrowed: the operand of `co_await` (a named fence or a
// temporary) lives until the end of the full-expression, across the suspension.
template <bool YieldsError>
class dependency_awaiter {
 public:
  dependency_awaiter(job_promise_base& promise, const fence& awaited) noexcept
      : promise_(promise), awaited_(awaited.state()) {}
  dependency_awaiter(const dependency_awaiter&) = delete;
  dependency_awaiter& operator=(const dependency_awaiter&) = delete;
  // Destroying a suspended job's frame destroys this awaiter: it unlinks its
  // wait, if one is registered (job_wait_abandon asks the job's block). The
  // awaited fence is cleared once the job resumes, so the awaiter, which lives
  // in every waiting frame, needs no flag of its own.
  ~dependency_awaiter() {
    if (awaited_) job_wait_abandon(promise_);
  }

  bool await_ready() const noexcept {
    if (!awaited_) return YieldsError;
    if (!awaited_->is_signalled()) return false;
    return YieldsError || !awaited_->error();
  }

  bool await_suspend(std::coroutine_handle<>) noexcept {
    if (!awaited_) {
      promise_.fail(make_error_code(errc::broken), std::nullopt);
      return true;
    }
    if (job_wait_begin(promise_, *awaited_, YieldsError)) return true;
    // Signalled in the meantime.
    if (YieldsError || !awaited_->error()) return false;
    record_dependency_failure(promise_, *awaited_);
    return true;  // stays suspended; the scheduler destroys the frame
  }

  auto await_resume() noexcept {
    const fence_state* awaited = std::exchange(awaited_, nullptr);
    if constexpr (YieldsError) {
      return awaited ? awaited->error() : make_error_code(errc::broken);
    } else {
      (void)awaited;
    }
  }

 private:
  job_promise_base& promise_;
  const fence_state* awaited_;
};

template <class Command>
class job_promise final : public job_promise_base {
 public:
  static void* operator new(std::size_t size) { return pool_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { pool_deallocate(p, size); }

  job_promise() noexcept {}
  job_promise(const job_promise&) = delete;
  job_promise& operator=(const job_promise&) = delete;
  ~job_promise() {
    // No block: never pushed, so the body never ran.
    if (block && block->body == body_outcome::prepared) std::destroy_at(&command_);
  }

  job<Command> get_return_object() noexcept;
  std::suspend_always initial_suspend() const noexcept { return {}; }
  std::suspend_always final_suspend() const noexcept { return {}; }

  void return_value(Command cmd) noexcept(std::is_nothrow_move_constructible_v<Command>) {
    std::construct_at(&command_, std::move(cmd));
    block->body = body_outcome::prepared;
  }
  void return_value(failure f) noexcept {
    fail(f.error ? f.error : make_error_code(errc::broken), std::nullopt);
  }
  void unhandled_exception() noexcept {
    try {
      throw;
    } catch (const std::system_error& e) {
      fail(e.code(), std::nullopt);
    } catch (const std::bad_alloc&) {
      fail(std::make_error_code(std::errc::not_enough_memory), std::nullopt);
    } catch (...) {
      fail(make_error_code(errc::exception), std::nullopt);
    }
    job_threw(*this, std::current_exception());
  }

  dependency_awaiter<false> await_transform(const fence& f) noexcept { return {*this, f}; }
  dependency_awaiter<true> await_transform(const try_wait& t) noexcept { return {*this, t.awaited}; }
  template <class Other>
  requires(!std::is_same_v<std::remove_cvref_t<Other>, fence> &&
           !std::is_same_v<std::remove_cvref_t<Other>, try_wait>) void await_transform(Other&&) {
    static_assert(always_false<Other>,
                  "a cosched job may only co_await cosched fences: `co_await f` or "
                  "`co_await cosched::try_wait(f)`; turn any other asynchronous operation "
                  "into a fence first");
  }

  /// Where the command is kept once the body returns it (the ring adapter
  /// finds it there; it is alive while the block's `body` is prepared).
  Command* command_storage() noexcept { return &command_; }

 private:
  // No std::optional: the block's `body` already says whether the command is
  // alive, and every waiting job's frame holds one.
  union {
    Command command_;
  };
};

}  // namespace detail

/// A job: a lazy coroutine whose body prepares one hardware submission. It waits
/// for what it needs (`co_await fence`) and `co_return`s the command.
///
/// Inside a job, `co_await f` is void: if `f` failed, the job is not resumed; the
/// scheduler destroys its frame and fails its fences with `f`'s error (cause: the
/// root job). `co_await cosched::try_wait(f)` yields the error instead, and
/// `co_return cosched::fail(ec)` fails the job. Any other awaitable is rejected
/// at compile time, so a suspended frame can always be destroyed safely.
///
/// @par Ownership
/// The caller owns the job until push moves it into the scheduler; afterwards the
/// caller holds only fences. A job destroyed before push destroys its frame.
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Unsafe. The body runs on the
/// scheduler's executor; its locals die at co_return, before the GPU runs the
/// command: what the GPU touches must be owned by the command (or a by-value
/// parameter, which lives in the frame until retirement).
template <class Command>
class job {
 public:
  using promise_type = detail::job_promise<Command>;
  using command_type = Command;

  job() noexcept = default;
  job(job&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  job& operator=(job&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  job(const job&) = delete;
  job& operator=(const job&) = delete;
  ~job() {
    if (handle_) handle_.destroy();
  }

  bool valid() const noexcept { return static_cast<bool>(handle_); }
  explicit operator bool() const noexcept { return valid(); }

  /// Internal: gives up ownership of the frame (push uses it).
  std::coroutine_handle<promise_type> release() noexcept { return std::exchange(handle_, nullptr); }

 private:
  friend class detail::job_promise<Command>;
  explicit job(std::coroutine_handle<promise_type> handle) noexcept : handle_(handle) {}
  std::coroutine_handle<promise_type> handle_;
};

template <class Command>
job<Command> detail::job_promise<Command>::get_return_object() noexcept {
  return job<Command>(std::coroutine_handle<job_promise>::from_promise(*this));
}

}  // namespace cosched
