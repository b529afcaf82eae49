// Kernel fences as cosched fences and back: waits on syncobj points and sync_files
// through DRM_IOCTL_SYNCOBJ_EVENTFD and the io_uring reactor, and host signalling
// of syncobj points when cosched fences signal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

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
  /// The point has a fence and that fence signalled (it need not have a fence
  /// yet when the wait starts: wait-before-submit). The fence's error, if it
  /// has one, fails the cosched fence.
  signalled,
  /// The point has a fence, signalled or not (DRM_SYNCOBJ_WAIT_FLAGS_WAIT_AVAILABLE).
  available,
};

struct fence_source_options {
  /// Live EVENTFD registrations at most (a registration lives in the kernel
  /// until its point is reached and holds one eventfd here). A wait that needs
  /// one more is refused (see fence_source::wait). Each also holds a file
  /// descriptor, so the process's RLIMIT_NOFILE (often 1024) may bind first.
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
/// Waits use DRM_IOCTL_SYNCOBJ_EVENTFD: the kernel adds 1 to an eventfd when a
/// point is reached, and the reactor polls the eventfd with io_uring, so
/// thousands of waits cost one ring and no thread. A registration cannot be
/// cancelled in the kernel, hence three rules:
/// - identical waits (same syncobj object, point and mode, no fence replaced in
///   between through cosched) share one registration, one eventfd and one fence;
/// - live registrations are bounded (fence_source_options::max_registrations);
///   beyond the bound wait() throws instead of queueing, because a queued wait
///   could deadlock a producer that itself waits for cosched work;
/// - the source waits through its own handle to the syncobj (a duplicate made
///   through a syncobj fd), so the caller destroying or reusing their handle
///   number never makes the source look at another syncobj; destroying an
///   owning syncobj object fails its pending waits with errc::broken.
///
/// The EVENTFD path does not report fence errors: when a signalled-mode wait
/// completes, the point is exported as a sync_file and its SYNC_IOC_FILE_INFO
/// status read (fence_source_options::sync_file_status); a negative status
/// fails the cosched fence with that errno. A point that has collapsed to a
/// signalled stub fence (a later point was already signalled) has lost any
/// error the kernel had; it completes without error.
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

  /// A fence that signals when `point` of `s` is reached (see wait_mode).
  /// Throws std::system_error: EBUSY beyond max_registrations, EMFILE/ENFILE
  /// out of fds (the message names the limit), ENOENT when the syncobj's handle
  /// names no syncobj, or the kernel's errno.
  fence wait(const timeline_syncobj& s, std::uint64_t point, wait_mode mode = wait_mode::signalled);
  /// As above for a binary syncobj: its next fence (the current one if it has one).
  fence wait(const binary_syncobj& s, wait_mode mode = wait_mode::signalled);
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

  /// EVENTFD registrations made and not yet completed.
  std::size_t live_registrations() const noexcept;
  /// EVENTFD registrations made so far (identical waits share one).
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
