// Kernel fences as cosched fences and back: waits on syncobj points and sync_files
// through DRM_IOCTL_SYNCOBJ_EVENTFD and the io_uring reactor, and host signalling
// of syncobj points when cosched fences signal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>

#include "cosched/combinators.hpp"
#include "cosched/drm/device.hpp"
#include "cosched/drm/syncobj.hpp"
#include "cosched/fence.hpp"
#include "cosched/reactor.hpp"

namespace cosched::drm {

namespace detail {
struct fence_source_impl;
}

/// What a syncobj wait waits for.
enum class wait_mode : std::uint8_t {
  /// The fence the point holds at the moment of the wait has signalled; if it
  /// holds none then, the first fence it gets afterwards has (wait-before-submit).
  /// The fence's error, if it has one, fails the cosched fence.
  signalled,
  /// The point has a fence, signalled or not (DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE):
  /// at once if it holds one at the moment of the wait.
  available,
};

/// How a syncobj wait waits: the kernel's DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT flags
/// and timeout, as a fence.
struct wait_options {
  wait_mode mode = wait_mode::signalled;
  /// true: a point that holds no fence at the moment of the wait is waited for
  /// until one is submitted (DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT). false:
  /// such a wait fails at once with EINVAL, as the kernel's wait without that
  /// flag does (for wait_mode::available this makes the wait a check: it
  /// succeeds or fails at once).
  bool for_submit = true;
  /// An absolute time on fence::clock (CLOCK_MONOTONIC, as the kernel's
  /// timeout_nsec): the wait fails with errc::timed_out if the point has not
  /// been reached by then. When the time comes, the kernel's state is looked
  /// at once more, as the kernel's own wait does: a point reached by then
  /// completes normally even if its completion had not reached the reactor
  /// yet. A time already past decides at once (one ioctl, no registration).
  /// A registration the wait made stays (it cannot be cancelled) until its
  /// point gets a fence; a sync_file poll or timer it made is cancelled.
  std::optional<fence::clock::time_point> timeout{};
};

/// One point of a wait on several: a binary syncobj's fence, or a timeline
/// syncobj's point. Borrows the syncobj for the call only.
class wait_point {
 public:
  wait_point(const binary_syncobj& s) noexcept : object_(&s) {}  // NOLINT: implicit, for {b}
  wait_point(const timeline_syncobj& s, std::uint64_t point) noexcept : object_(&s), point_(point) {}
  const syncobj& object() const noexcept { return *object_; }
  /// 0 for a binary syncobj.
  std::uint64_t point() const noexcept { return point_; }

 private:
  const syncobj* object_;
  std::uint64_t point_ = 0;
};

struct fence_source_options {
  /// Live EVENTFD registrations at most (waits for points that hold no fence
  /// yet; a registration lives in the kernel until its point is reached and
  /// holds one eventfd here, with one or two kernel entries on it). A wait that
  /// needs one more is refused (see fence_source::wait). Each wait in flight
  /// also holds a file descriptor (an eventfd or a sync_file), so the process's
  /// RLIMIT_NOFILE (often 1024) may bind first.
  std::size_t max_registrations = 16384;
  /// Reads a sync_file's status when a wait completed: 1 signalled, 0 pending,
  /// a negative errno for a fence that failed. Empty: drm::sync_file_status
  /// (SYNC_IOC_FILE_INFO). Tests inject errors here (no kernel in a VM can fail
  /// a fence); it may throw std::system_error, which fails the wait with its code.
  /// Called on the reactor's thread.
  std::function<int(int sync_file_fd)> sync_file_status{};
};

/// Turns kernel fences into cosched fences, and cosched fences into kernel
/// signals, for one DRM device and one reactor.
///
/// The wait rule: a wait on a syncobj point waits for the fence the point holds
/// at the moment of the wait, whoever put it there (cosched, another handle to
/// the syncobj, another process through an exported fd, a driver); when the
/// point holds none, for the first fence the point gets after that moment
/// (wait-before-submit). A fence replaced or reset later, by anyone, changes
/// nothing for a wait already made, and a wait made later never completes with
/// a fence the point no longer holds.
/// - A point that holds a fence: the fence is exported as a sync_file and the
///   reactor polls it (io_uring POLL_ADD). No registration is made; the poll
///   can be cancelled; the status read at the end is that fence's own.
/// - A point that holds no fence: DRM_IOCTL_SYNCOBJ_EVENTFD, whose registration
///   the kernel attaches to the first fence the point gets; the reactor polls
///   its eventfd, so thousands of waits cost one ring and no thread. Such a
///   registration cannot be cancelled in the kernel, hence:
///   - identical waits (same syncobj object, point and mode) share one
///     registration, one eventfd and one fence, but only while the point has
///     provably had no fence since the registration was made (the kernel says
///     so through a DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE entry on the same
///     eventfd, which fires the moment the point has a fence); "no fence now"
///     alone is not enough, since a fence may have come and gone in between and
///     the registration waits for that one;
///   - live registrations are bounded (fence_source_options::max_registrations);
///     beyond the bound wait() throws instead of queueing, because a queued wait
///     could deadlock a producer that itself waits for cosched work.
/// The source waits through its own handle to the syncobj (a duplicate made
/// through a syncobj fd), so the caller destroying or reusing their handle
/// number never makes the source look at another syncobj; destroying an
/// owning syncobj object fails its pending waits with errc::broken.
///
/// A signalled-mode wait completes with the fence's error: the polled
/// sync_file's SYNC_IOC_FILE_INFO status (fence_source_options::sync_file_status),
/// or, for a registration, the status of the point's fence read when it
/// completes (the EVENTFD path does not report errors); a negative status fails
/// the cosched fence with that errno. A point that has collapsed to a signalled
/// stub fence (a later point was already signalled) has lost any error the
/// kernel had; it completes without error.
///
/// Every fence from this source signals on the reactor's thread, never inline
/// in the call that made it (an already reached point too); its waiters resume
/// on their own executors as fence::async_wait says.
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Safe, except destruction.
///
/// @par Ownership
/// Immovable. The caller owns the source; fences it returns are shared handles.
///
/// @par Lifetime
/// The reactor (and its execution context) must outlive the source. Destroying the
/// source fails its pending waits with errc::broken; its registrations in the
/// kernel end when their points are reached or their syncobjs are freed, and
/// their eventfds are closed as soon as the reactor's thread has seen their
/// polls end. Pending host signals outlive it (they belong to the reactor's
/// execution context).
class fence_source {
 public:
  using clock = fence::clock;

  fence_source(const drm::device& dev, reactor& events, fence_source_options options = {});
  fence_source(const fence_source&) = delete;
  fence_source& operator=(const fence_source&) = delete;
  ~fence_source();

  /// A fence that signals when `point` of `s` is reached (see wait_mode), by
  /// the wait rule above.
  /// Throws std::system_error: EBUSY beyond max_registrations, EMFILE/ENFILE
  /// out of fds (the message names the limit), ENOENT when the syncobj's handle
  /// names no syncobj, or the kernel's errno.
  fence wait(const timeline_syncobj& s, std::uint64_t point, wait_mode mode = wait_mode::signalled);
  /// As above for a binary syncobj: the fence it holds now, or, if none, the
  /// next one it gets.
  fence wait(const binary_syncobj& s, wait_mode mode = wait_mode::signalled);
  /// A wait with the kernel's other wait modes (see wait_options): failing at
  /// once when no fence has been submitted for the point, and an absolute
  /// timeout that fails the fence with errc::timed_out. The timed fence is the
  /// wait's own (waits may share a registration, never a timeout); it signals
  /// on the reactor's thread. A timeout costs a timerfd while it is pending.
  /// Throws as wait() above.
  fence wait(const timeline_syncobj& s, std::uint64_t point, const wait_options& options);
  fence wait(const binary_syncobj& s, const wait_options& options);
  /// A wait on several points at once, as the kernel's DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT
  /// with DRM_SYNCOBJ_WAIT_FLAGS_WAIT_ALL: a fence that signals once every point
  /// has been reached (each by the wait rule above, with `options`), failing
  /// with the error of the first failed point in argument order (no cause), or
  /// errc::timed_out at the timeout, or at once with EINVAL when a point holds
  /// no fence and `options.for_submit` is false. No points: success.
  ///
  /// Built on when_all over one wait per distinct point, and on the kernel
  /// where it lets a registration be avoided: one TIMELINE_WAIT with timeout 0
  /// first (all reached, or a point without a fence and no waiting for one,
  /// decide at once with no registration and no poll); a point that holds a
  /// fence costs a sync_file poll, not a registration; the same point twice is
  /// waited for once; a point with no fence shares a registration by the rule
  /// above. Only a point that holds no fence yet costs a registration: the
  /// kernel cannot tell which fence a later submission will be (a timeline may
  /// be reset between two submissions), so one registration cannot serve two
  /// such points. Throws as wait().
  fence wait_all(std::span<const wait_point> points, const wait_options& options = {});
  fence wait_all(std::initializer_list<wait_point> points, const wait_options& options = {}) {
    return wait_all(std::span<const wait_point>(points.begin(), points.size()), options);
  }
  /// A wait for the first of several points, as TIMELINE_WAIT without WAIT_ALL:
  /// an any_fence whose fence signals with the first point reached (its error,
  /// no cause) and whose index() is that point's index in `points`, or
  /// any_fence::none with errc::timed_out at the timeout; EINVAL at once as for
  /// wait_all. When points are reached already at the call, the first of them
  /// in argument order wins (the kernel's first_signaled), at once, with no
  /// registration and no poll. Otherwise built on when_any as wait_all is on
  /// when_all; once one point has won, the others' sync_file polls are
  /// cancelled. Throws std::invalid_argument for no points, else as wait().
  any_fence wait_any(std::span<const wait_point> points, const wait_options& options = {});
  any_fence wait_any(std::initializer_list<wait_point> points, const wait_options& options = {}) {
    return wait_any(std::span<const wait_point>(points.begin(), points.size()), options);
  }

  /// A fence that signals when the sync_file's fence has (failing with its
  /// error, if any). The source polls its own duplicate of the fd: the caller
  /// may close theirs at once. Polls can be cancelled, so these are not bounded
  /// by max_registrations.
  fence wait_sync_file(int sync_file_fd);

  /// When `f` signals, signals `point` of `s` (DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL),
  /// on the reactor's thread, through the source's own handle to `s`: the point
  /// is signalled even if `s` is destroyed first. A failed `f` still signals the
  /// point (the kernel cannot carry the error) and says so in the log.
  /// Throws std::system_error if `s` cannot be duplicated (ENOENT when its
  /// handle names no syncobj).
  void host_signal(const fence& f, const timeline_syncobj& s, std::uint64_t point);
  /// As above for a binary syncobj (DRM_IOCTL_SYNCOBJ_SIGNAL).
  void host_signal(const fence& f, const binary_syncobj& s);

  /// Records `when` on `f` (fence::set_deadline) and forwards the earliest
  /// deadline of `f` to the kernel fence behind it, if `f` came from this
  /// source and is pending: DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE for syncobj
  /// points (the point's fence must exist by now), SYNC_IOC_SET_DEADLINE for
  /// sync_files. Returns whether the kernel took the hint; a kernel that does
  /// not support it (ENOTTY/EINVAL) is noted once in the log and not asked again.
  bool set_deadline(const fence& f, clock::time_point when);

  /// EVENTFD registrations made whose eventfd poll has not ended yet.
  std::size_t live_registrations() const noexcept;
  /// EVENTFD registrations made so far (waits that may share one do).
  std::uint64_t registrations_made() const noexcept;
  std::size_t max_registrations() const noexcept;
  const drm::device& get_device() const noexcept;
  /// The reactor its waits complete on.
  reactor& get_reactor() const noexcept;

 private:
  friend class submission_timeline;  // shares the status reading of completed points
  std::shared_ptr<detail::fence_source_impl> impl_;
};

}  // namespace cosched::drm
