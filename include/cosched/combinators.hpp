// Fence combinators: one fence for several, signalled when all of them have
// (when_all) or when the first of them has, saying which (when_any).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <limits>
#include <optional>
#include <span>
#include <system_error>
#include <utility>

#include <asio/associator.hpp>
#include <asio/async_result.hpp>
#include <asio/system_executor.hpp>

#include "cosched/fence.hpp"

namespace cosched {

class any_fence;

namespace detail {

/// How a combinator's fence names the cause of an input's failure.
enum class failure_cause : unsigned char {
  /// The input's root: its own cause if it has one, else the input itself
  /// (what a job that awaited the input would report).
  root,
  /// The input's own cause, none if it has none (the combinator is invisible:
  /// for backends whose fences combine kernel waits).
  as_is,
};

/// when_all with a choice of cause.
fence when_all(std::span<const fence> inputs, failure_cause cause);
/// when_any in which input i, winning, is reported as `indices[i]` (the same
/// size as `inputs`), with a choice of cause.
any_fence when_any(std::span<const fence> inputs, std::span<const std::size_t> indices, failure_cause cause);

}  // namespace detail

/// A fence that signals once every fence of `inputs` has signalled: with
/// success when all of them succeeded, else with the error of the first failed
/// input in argument order (whichever failed first in time), whose cause() is
/// that input's root: its own cause() if it has one, else its point. A job
/// awaiting it therefore fails as if it had awaited the inputs one after
/// another, and reports the same root. No inputs: fence::stub().
///
/// In a job, `co_await cosched::when_all({a, b})` (or try_wait of it); outside
/// jobs, `when_all(...).async_wait(token)` with any Asio completion token.
///
/// No thread and no polling: one intrusive waiter per input, on a block that
/// holds the returned fence's state. The fence signals on the thread that
/// signals the last input (inline when every input had signalled already);
/// fence::async_wait still resumes its waiters on their own executors.
///
/// @par Thread Safety
/// Safe from any thread; the inputs may signal concurrently from any threads.
///
/// @par Ownership and Lifetime
/// The result holds a reference to each input. Releasing the last handle to
/// the result before the inputs signal unlinks its waiters from every input
/// (destroying a combinator early leaves nothing behind on its inputs).
/// Precondition: the last handle to a combinator's fence must not be released
/// from inside a fence_waiter notification of one of its inputs (a notify runs
/// under that input's lock; cosched's own waiters only hand off).
///
/// Throws std::invalid_argument for an empty (not valid()) input, std::bad_alloc.
fence when_all(std::span<const fence> inputs);
inline fence when_all(std::initializer_list<fence> inputs) {
  return when_all(std::span<const fence>(inputs.begin(), inputs.size()));
}

/// The result of when_any: a fence that signals when the first of its inputs
/// has signalled, with that input's outcome (its error, and as cause() its
/// root, as when_all gives), and which input it was.
///
/// In a job: `auto first = cosched::when_any({a, b}); co_await first.get_fence();`
/// (or try_wait of it), then `*first.index()`. Outside jobs:
/// `first.async_wait(token)` completes with void(std::error_code, std::size_t).
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Safe for const members.
///
/// @par Ownership and Lifetime
/// Copyable: copies share one result. Lifetime as for when_all's fence.
class any_fence {
 public:
  /// The index reported when no input has won (yet).
  static constexpr std::size_t none = std::numeric_limits<std::size_t>::max();

  any_fence() noexcept = default;

  bool valid() const noexcept { return fence_.valid(); }
  explicit operator bool() const noexcept { return valid(); }

  /// The fence: awaitable in jobs, waitable with fence::async_wait.
  const fence& get_fence() const noexcept { return fence_; }
  bool signalled() const noexcept { return fence_.signalled(); }
  /// The winner's error; meaningful once signalled().
  std::error_code error() const noexcept { return fence_.error(); }
  /// Which input signalled first (its index in the argument list); empty
  /// while no input has. Final once it has a value. When inputs had signalled
  /// before when_any was called, the first of them in argument order wins.
  std::optional<std::size_t> index() const noexcept;

  /// Waits with any Asio completion token; the signature is
  /// void(std::error_code, std::size_t): the winner's error and index (or
  /// asio::error::operation_aborted and `none` when the wait was cancelled
  /// before an input won). Executors and cancellation as fence::async_wait.
  template <class Executor, class CompletionToken>
  auto async_wait(const Executor& ex, CompletionToken&& token) const;
  /// As above; a handler without an associated executor runs on asio::system_executor.
  template <class CompletionToken>
  auto async_wait(CompletionToken&& token) const {
    return async_wait(asio::system_executor(), std::forward<CompletionToken>(token));
  }

 private:
  friend any_fence detail::when_any(std::span<const fence>, std::span<const std::size_t>,
                                    detail::failure_cause);
  explicit any_fence(fence f) noexcept : fence_(std::move(f)) {}
  fence fence_;
};

/// An any_fence that signals when the first of `inputs` has signalled. Several
/// inputs signalled by one signal (the same fence twice): the first in
/// argument order. Inputs that have not signalled when the winner does keep no
/// waiter of it once the result is released.
///
/// Thread safety, ownership and lifetime as for when_all. Throws
/// std::invalid_argument for no inputs or an empty input, std::bad_alloc.
any_fence when_any(std::span<const fence> inputs);
inline any_fence when_any(std::initializer_list<fence> inputs) {
  return when_any(std::span<const fence>(inputs.begin(), inputs.size()));
}

// ------------------------------------------------------------------ async_wait

namespace detail {

// Adapts a void(std::error_code, std::size_t) handler to fence::async_wait,
// forwarding the handler's associated executor, allocator and cancellation slot.
template <class Handler>
struct any_wait_handler {
  Handler handler;
  any_fence result;
  void operator()(std::error_code ec) { std::move(handler)(ec, result.index().value_or(any_fence::none)); }
};

struct initiate_any_wait {
  template <class Handler, class Executor>
  void operator()(Handler&& handler, const Executor& ex, const any_fence& result) const {
    result.get_fence().async_wait(
        ex, any_wait_handler<std::decay_t<Handler>>{std::forward<Handler>(handler), result});
  }
};

}  // namespace detail

template <class Executor, class CompletionToken>
auto any_fence::async_wait(const Executor& ex, CompletionToken&& token) const {
  return asio::async_initiate<CompletionToken, void(std::error_code, std::size_t)>(
      detail::initiate_any_wait{}, token, ex, *this);
}

}  // namespace cosched

template <template <class, class> class Associator, class Handler, class DefaultCandidate>
struct asio::associator<Associator, cosched::detail::any_wait_handler<Handler>, DefaultCandidate> {
  using type = typename Associator<Handler, DefaultCandidate>::type;
  static type get(const cosched::detail::any_wait_handler<Handler>& h) noexcept {
    return Associator<Handler, DefaultCandidate>::get(h.handler);
  }
  static type get(const cosched::detail::any_wait_handler<Handler>& h, const DefaultCandidate& c) noexcept {
    return Associator<Handler, DefaultCandidate>::get(h.handler, c);
  }
};
