// A submitter's own timeline syncobj and the fences of its points: one
// EVENTFD registration at a time, for the lowest pending point.
#include "cosched/drm/submission_timeline.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "cosched/error.hpp"
#include "cosched/log.hpp"
#include "device_state.hpp"
#include "fence_source_impl.hpp"
#include "uapi.hpp"

namespace cosched::drm {

namespace detail {

/// Shared by the submission timeline and the reactor's watch of its eventfd,
/// which may outlive the timeline object (until the multishot poll has ended).
///
/// Invariant (under `lock`): while `pending` is not empty, a registration is
/// live (`registered` != 0) for a point no greater than its first point, so the
/// kernel will write the eventfd once that point is reached.
struct submission_timeline_state {
  struct slot {
    std::uint64_t point;
    const void* tag;
    promise done;
  };

  submission_timeline_state(std::shared_ptr<fence_source_impl> from, bool read_errors)
      : source(std::move(from)),
        syncobj(timeline_syncobj::create(source->device)),
        read_fence_errors(read_errors),
        context(new_context()) {
    const int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
      throw_error(errno, "submission_timeline (eventfd for its DRM_IOCTL_SYNCOBJ_EVENTFD registrations)");
    eventfd.reset(fd);
  }

  // Registers the eventfd for `point`. Requires the lock. Returns 0 or the errno.
  int register_point(std::uint64_t point) noexcept {
    uapi::syncobj_eventfd args{};
    args.handle = syncobj.handle();
    args.point = point;
    args.fd = eventfd.get();
    if (const int err = source->device.state()->ioctl(uapi::ioctl_syncobj_eventfd, &args)) return err;
    registered = point;
    // relaxed: a statistic; the lock orders the writes.
    made.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }

  // The timeline's value now (the last reached point), or -errno.
  std::int64_t query() const noexcept {
    std::uint32_t handle = syncobj.handle();
    std::uint64_t value = 0;
    drm_syncobj_timeline_array args{};
    args.handles = reinterpret_cast<std::uintptr_t>(&handle);
    args.points = reinterpret_cast<std::uintptr_t>(&value);
    args.count_handles = 1;
    if (const int err = source->device.state()->ioctl(DRM_IOCTL_SYNCOBJ_QUERY, &args)) return -err;
    return static_cast<std::int64_t>(value);
  }

  // The eventfd fired: completes every pending point the timeline has reached
  // and registers for the lowest one left. Reactor's thread.
  void on_ready() noexcept {
    std::uint64_t count = 0;
    // The live registration is the eventfd's only writer: a count means its
    // point has been reached. Reading makes the fd not readable again.
    const bool fired = ::read(eventfd.get(), &count, sizeof count) == sizeof count && count > 0;
    // relaxed: a statistic.
    woken.fetch_add(1, std::memory_order_relaxed);
    reached.clear();
    failed.clear();
    int failure = 0;
    const char* failed_operation = "DRM_IOCTL_SYNCOBJ_EVENTFD on a submission timeline";
    {
      std::lock_guard guard(lock);
      std::uint64_t now = fired ? registered : 0;
      // Only when points beyond the registered one are pending does it pay to
      // ask how far the timeline has got (one ioctl completes them all).
      if (!pending.empty() && pending.back().point > now) {
        const std::int64_t value = query();
        if (value < 0) {
          failure = static_cast<int>(-value);
          failed_operation = "DRM_IOCTL_SYNCOBJ_QUERY of a submission timeline";
        }
        if (value >= 0) now = std::max(now, static_cast<std::uint64_t>(value));
      }
      if (!failure) {
        if (registered != 0 && now >= registered) registered = 0;  // spent
        while (!pending.empty() && pending.front().point <= now) {
          reached.push_back(std::move(pending.front()));
          pending.pop_front();
        }
        if (!pending.empty() && registered == 0) failure = register_point(pending.front().point);
      }
      if (failure) {
        // Nothing will tell us about these points any more.
        for (auto& s : pending) failed.push_back(std::move(s));
        pending.clear();
      }
    }
    for (auto& s : reached)
      s.done.signal(read_fence_errors ? source->point_error(syncobj.handle(), s.point) : std::error_code{});
    if (failure) {
      logger()->error("cosched::drm::submission_timeline: {}; failing {} pending fences",
                      describe_error(failure, failed_operation), failed.size());
      for (auto& s : failed) s.done.set_error({failure, std::generic_category()});
    }
    reached.clear();
    failed.clear();
  }

  std::shared_ptr<fence_source_impl> source;
  timeline_syncobj syncobj;
  unique_fd eventfd;
  const bool read_fence_errors;
  const std::uint64_t context;  // the timeline context of its fences (seqno = point)

  mutable std::mutex lock;
  std::deque<slot> pending;      // guarded; in increasing point order
  std::vector<slot> reached;     // on_ready's (reactor's thread): reused, not reallocated
  std::vector<slot> failed;      // likewise
  std::uint64_t registered = 0;  // guarded; the point of the live registration (0: none)
  // Written by the submitter only. relaxed: read by next_point() as a snapshot.
  std::atomic<std::uint64_t> last_tracked{0};
  // relaxed: statistics.
  std::atomic<std::uint64_t> made{0};
  std::atomic<std::uint64_t> woken{0};
};

}  // namespace detail

submission_timeline::submission_timeline(fence_source& source, submission_timeline_options options)
    : state_(std::make_shared<detail::submission_timeline_state>(source.impl_, options.read_fence_errors)),
      events_(source.get_reactor()) {
  // The watch owns the state (and so the eventfd) until its poll has ended.
  watch_ = events_.watch(state_->eventfd.get(), [state = state_] { state->on_ready(); });
}

submission_timeline::~submission_timeline() {
  abandon(make_error_code(errc::broken));
  events_.unwatch(watch_);
}

const timeline_syncobj& submission_timeline::syncobj() const noexcept { return state_->syncobj; }

std::uint64_t submission_timeline::next_point() const noexcept {
  // relaxed: written by the submitter, which is the caller that needs it exact.
  return state_->last_tracked.load(std::memory_order_relaxed) + 1;
}

fence submission_timeline::track(std::uint64_t point, const void* tag) {
  auto& s = *state_;
  if (point != next_point())
    throw std::invalid_argument("cosched::drm::submission_timeline::track: point " + std::to_string(point) +
                                " is not the next point, " + std::to_string(next_point()));
  promise done(fence_point{s.context, point});
  fence result = done.get_fence();
  // relaxed: see next_point().
  s.last_tracked.store(point, std::memory_order_relaxed);
  int err = 0;
  {
    std::lock_guard guard(s.lock);
    // By the invariant, no registration means nothing is pending.
    if (s.registered == 0) err = s.register_point(point);
    if (!err) {
      s.pending.push_back({point, tag, std::move(done)});
      return result;
    }
  }
  // Not registered: the point is not pending, and its fence fails here.
  logger()->error(
      "cosched::drm::submission_timeline: {}",
      detail::describe_error(err, "DRM_IOCTL_SYNCOBJ_EVENTFD for point " + std::to_string(point)));
  done.set_error({err, std::generic_category()});
  return result;
}

void submission_timeline::abandon(std::error_code ec) noexcept {
  std::deque<detail::submission_timeline_state::slot> dropped;
  {
    std::lock_guard guard(state_->lock);
    dropped.swap(state_->pending);
  }
  for (auto& s : dropped) s.done.set_error(ec);
}

bool submission_timeline::completed(const void* tag) const noexcept {
  std::lock_guard guard(state_->lock);
  for (const auto& s : state_->pending)
    if (s.tag == tag) return false;
  return true;
}

bool submission_timeline::reached(std::uint64_t point) const {
  const std::int64_t value = state_->query();
  if (value < 0)
    detail::throw_error(static_cast<int>(-value), "submission_timeline::reached (DRM_IOCTL_SYNCOBJ_QUERY)");
  return static_cast<std::uint64_t>(value) >= point;
}

std::size_t submission_timeline::pending() const noexcept {
  std::lock_guard guard(state_->lock);
  return state_->pending.size();
}

std::uint64_t submission_timeline::registrations_made() const noexcept {
  // relaxed: a snapshot.
  return state_->made.load(std::memory_order_relaxed);
}

std::uint64_t submission_timeline::wakeups() const noexcept {
  // relaxed: a snapshot.
  return state_->woken.load(std::memory_order_relaxed);
}

}  // namespace cosched::drm
