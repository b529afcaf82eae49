// A submitter's own timeline syncobj: one point per submission, handed to the
// kernel in increasing order, and a fence per point without a registration per point.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <system_error>

#include "cosched/drm/fence_source.hpp"
#include "cosched/drm/syncobj.hpp"
#include "cosched/fence.hpp"

namespace cosched::drm {

namespace detail {
struct submission_timeline_state;
}

struct submission_timeline_options {
  /// Read each completed point's fence status (a sync_file export and
  /// SYNC_IOC_FILE_INFO, three ioctls), so that a fence the driver failed
  /// fails the cosched fence with its errno. Drivers that never fail a fence
  /// (virtio-gpu's virgl) turn it off. The kernel keeps a point's own fence
  /// only until later points have signalled too; the error of a point that had
  /// collapsed into a later one by the time it is read is lost.
  bool read_fence_errors = true;
};

/// The problem: a ring submits thousands of commands, each signalling the next
/// point of a timeline syncobj when the hardware is done, and the scheduler
/// needs a fence per command. A DRM_IOCTL_SYNCOBJ_EVENTFD registration per
/// point (fence_source::wait) costs an eventfd, an ioctl and a poll per
/// command, and the kernel cannot cancel them.
///
/// A submission timeline owns its timeline syncobj, and only its submitter
/// puts fences on it, in increasing point order. Its fences then need one
/// registration at a time: for the lowest point not yet completed, on one
/// eventfd the reactor polls (multishot). When it fires, DRM_IOCTL_SYNCOBJ_QUERY
/// reads how far the timeline has got and every pending point up to there
/// completes; then the next lowest pending point is registered (if it has been
/// reached meanwhile, the kernel fires at once). Points that complete together
/// cost one wake-up. Sharing one registration is sound only because nobody but
/// the submitter resets the syncobj or replaces its fences: export it only for
/// others to wait on.
///
/// Completions signal on the reactor's thread (never inline in track()).
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: track(), abandon(), completed() and
/// the accessors are Safe (they take a lock shared with the reactor's
/// completions); the submitter numbers points from one thread at a time.
///
/// @par Ownership
/// Immovable. The submitter owns it.
///
/// @par Lifetime
/// The fence source and its reactor must outlive it. Destroying it fails the
/// pending fences with errc::broken. Its syncobj and eventfd live on until the
/// reactor's poll has ended (the kernel's registration ends with the syncobj).
class submission_timeline {
 public:
  explicit submission_timeline(fence_source& source, submission_timeline_options options = {});
  submission_timeline(const submission_timeline&) = delete;
  submission_timeline& operator=(const submission_timeline&) = delete;
  ~submission_timeline();

  /// The timeline syncobj (on the fence source's device).
  const timeline_syncobj& syncobj() const noexcept;
  /// The point the next submission signals: one past the last tracked point.
  std::uint64_t next_point() const noexcept;

  /// The kernel has taken a submission that signals `point` (which must be
  /// next_point()): returns the fence that signals when the point is reached,
  /// with the fence's error when read_fence_errors is on. `tag` identifies the
  /// submission for completed() (any address; the submitter's command).
  /// Throws std::invalid_argument for another point; if the registration for
  /// the point cannot be made, the returned fence fails with its errno.
  fence track(std::uint64_t point, const void* tag = nullptr);

  /// Fails every pending fence with `ec` (non-empty) and stops waiting for their
  /// points; the points stay taken (the next submission gets a higher one).
  /// A kernel signal that comes later changes nothing.
  void abandon(std::error_code ec) noexcept;

  /// Whether the submission tracked with `tag` is no longer pending: its point
  /// has completed (or it was abandoned). False while it is pending.
  bool completed(const void* tag) const noexcept;
  /// Whether `point` has been reached, as the kernel says now (DRM_IOCTL_SYNCOBJ_QUERY).
  bool reached(std::uint64_t point) const;

  /// Tracked points not yet completed or abandoned.
  std::size_t pending() const noexcept;
  /// DRM_IOCTL_SYNCOBJ_EVENTFD registrations made so far (at most one live at a time).
  std::uint64_t registrations_made() const noexcept;
  /// Wake-ups of the reactor's poll so far (each completes every reached point).
  std::uint64_t wakeups() const noexcept;

 private:
  std::shared_ptr<detail::submission_timeline_state> state_;
  reactor::watch_id watch_ = 0;
  reactor& events_;
};

}  // namespace cosched::drm
