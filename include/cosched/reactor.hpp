// The io_uring reactor: turns pollable file descriptors (eventfds, sync_file
// fds, DRM syncobj eventfds) into fence signals, on the thread of an io_context.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include <asio/any_io_executor.hpp>
#include <asio/io_context.hpp>

#include "cosched/fence.hpp"
#include "cosched/uring_context.hpp"

namespace cosched {

namespace detail {
class reactor_core;
}

struct reactor_options {
  /// Submission queue entries.
  unsigned entries = 1024;
  /// Completion queue entries; 0: four times `entries`, at least 16384.
  /// Completions beyond it are recovered from the kernel's overflow list.
  unsigned completion_entries = 0;
  /// Use IORING_SETUP_SINGLE_ISSUER (the ring is enabled on the io_context's
  /// thread). Only valid when exactly one thread runs the io_context; falls back
  /// to a shared ring when the kernel refuses.
  bool single_issuer = true;
};

/// One io_uring ring per io_context thread, shared by the schedulers on it.
///
/// Waits are POLL_ADD requests (multishot for watch()); requests made while a
/// handler runs are submitted together by one flush handler posted after it
/// (one io_uring_enter per batch, not per wait). Completions arrive through the
/// ring's registered eventfd, which the reactor waits for with the io_context's
/// own reactor: no special Asio build macros are needed, and the io_context may
/// serve other I/O at the same time. Every completion runs on the io_context's thread.
///
/// @par Thread Safety
/// wait_readable(), cancel(), watch() and unwatch() may be called from any
/// thread; requests from other threads are handed to the io_context's thread.
/// With `single_issuer` (the default) exactly one thread may run the io_context.
///
/// @par Ownership and Lifetime
/// Immovable. The io_context must outlive the reactor; the reactor must outlive
/// the schedulers and rings that use it. A file descriptor must stay open until
/// its wait completed or was cancelled. Destroying the reactor fails pending
/// waits with errc::broken; it must happen on the io_context's thread or while
/// the io_context is not running.
class reactor {
 public:
  using watch_id = std::uint64_t;

  explicit reactor(asio::io_context& ctx, reactor_options options = {});
  /// On a uring_context: the reactor uses the context's ring, whose loop reaps
  /// completions directly and submits requests as it goes idle (at most one
  /// reactor per uring_context).
  explicit reactor(uring_context& ctx);
  reactor(const reactor&) = delete;
  reactor& operator=(const reactor&) = delete;
  ~reactor();

  /// A fence that signals once `fd` is readable (POLLIN): an eventfd with a
  /// non-zero count, a signalled sync_file. An fd error fails it with that errno
  /// (EBADF for an invalid fd).
  fence wait_readable(int fd);

  /// Cancels the pending wait behind `f` (from wait_readable): it fails
  /// errc::cancelled, unless it completed first. Returns whether a wait was pending.
  bool cancel(const fence& f);

  /// Calls `on_ready` on the io_context's thread each time `fd` becomes readable
  /// (multishot poll), until unwatch(). The callback must make the fd not
  /// readable again (read the eventfd) or it is called again.
  watch_id watch(int fd, std::function<void()> on_ready);
  void unwatch(watch_id id);

  /// Waits submitted or queued and not yet completed (waits and watches).
  std::size_t pending() const noexcept;
  /// Whether the ring runs with SINGLE_ISSUER.
  bool single_issuer() const noexcept;
  /// io_uring_enter calls made to submit (for measuring batching).
  std::uint64_t submit_calls() const noexcept;

  /// The executor of the context the reactor runs on.
  asio::any_io_executor get_executor() const noexcept;

 private:
  // The requests, their completions and the loop of the context they run on;
  // the handlers posted for it hold it weakly.
  std::shared_ptr<detail::reactor_core> core_;
};

}  // namespace cosched
