// Scopes: structured concurrency for the user's own grouping (a frame, a batch,
// a client). Jobs pushed through a scope join it; join() waits for all of them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "cosched/detail/scheduler_core.hpp"
#include "cosched/fence.hpp"

namespace cosched {

/// A counting scope. `entity.push(job, {.in = &s})` makes the job join `s`; it
/// leaves when its fences have signalled (frame and command destroyed).
///
/// - close(): no more jobs join; later pushes through the scope fail `cancelled`.
/// - request_stop(): closes, and cancels (`cancelled`) the scope's jobs that have
///   not reached a ring; commands already running finish.
/// - join(): closes, and returns a fence that signals once every job that joined
///   has retired. Awaiting it resumes on the awaiter's executor, never inline.
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Safe.
///
/// @par Lifetime
/// Immovable. Destroying a scope whose join() fence has not signalled is a
/// programming error: the process terminates with a message (never a silent
/// leak or detach). A scope must outlive the jobs that joined it, which join enforces.
class scope {
 public:
  scope();
  scope(const scope&) = delete;
  scope& operator=(const scope&) = delete;
  ~scope();

  void close() noexcept;
  void request_stop();
  fence join();

  bool stop_requested() const noexcept;
  /// Jobs that joined and have not retired yet.
  std::size_t active() const noexcept;

  /// Internal (push): joins one job pushed to `core`. False when closed.
  bool enter(detail::scheduler_core* core);
  /// Internal (retirement): one job leaves.
  void leave() noexcept;
  std::uint64_t id() const noexcept { return id_; }

 private:
  mutable std::mutex lock_;
  const std::uint64_t id_;
  std::size_t active_ = 0;
  bool closed_ = false;
  bool stop_ = false;
  bool joined_ = false;
  std::optional<promise> join_promise_;
  std::vector<detail::core_ref> cores_;
};

}  // namespace cosched
