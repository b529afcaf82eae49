// Fences to the kernel: host signalling of syncobj points when cosched fences
// signal, and deadline hints forwarded to the kernel fences behind cosched fences.
#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "cosched/drm/fence_source.hpp"
#include "cosched/drm/sync_file.hpp"
#include "cosched/error.hpp"
#include "cosched/log.hpp"
#include "device_state.hpp"
#include "fence_source_impl.hpp"
#include "uapi.hpp"

namespace cosched::drm {

namespace detail {

namespace {

std::uint64_t as_user_pointer(const void* p) noexcept { return reinterpret_cast<std::uintptr_t>(p); }

// One pending host signal: the source's own handle to the syncobj and the
// point to signal. Shared by the copies of the completion handler.
struct host_signal_state {
  host_signal_state(std::shared_ptr<owned_handle> h, std::uint64_t p, bool b, fence_point w) noexcept
      : syncobj(std::move(h)), point(p), binary(b), waited(w) {}
  host_signal_state(const host_signal_state&) = delete;
  host_signal_state& operator=(const host_signal_state&) = delete;
  ~host_signal_state() {
    if (!done)
      logger()->warn(
          "cosched::drm::fence_source::host_signal: fence {}:{} never signalled before the reactor's "
          "execution context went away; syncobj point {} was not signalled",
          waited.context, waited.seqno, point);
  }

  void signal(std::error_code ec) noexcept {
    done = true;
    if (ec)
      logger()->warn(
          "cosched::drm::fence_source::host_signal: fence {}:{} failed ({}); signalling syncobj point {} "
          "anyway: the kernel cannot carry the error",
          waited.context, waited.seqno, error_name(ec), point);
    std::uint32_t h = syncobj->handle;
    int err;
    if (binary) {
      drm_syncobj_array args{};
      args.handles = as_user_pointer(&h);
      args.count_handles = 1;
      err = syncobj->device->ioctl(DRM_IOCTL_SYNCOBJ_SIGNAL, &args);
    } else {
      std::uint64_t p = point;
      drm_syncobj_timeline_array args{};
      args.handles = as_user_pointer(&h);
      args.points = as_user_pointer(&p);
      args.count_handles = 1;
      err = syncobj->device->ioctl(DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL, &args);
    }
    if (err)
      logger()->error("cosched::drm::fence_source::host_signal: signalling syncobj point {} failed: {}",
                      point, std::generic_category().message(err));
  }

  std::shared_ptr<owned_handle> syncobj;
  std::uint64_t point;
  bool binary;
  fence_point waited;
  bool done = false;  // touched only by the handler, on the reactor's thread
};

}  // namespace

void fence_source_impl::host_signal(const fence& f, const syncobj& s, std::uint64_t point, bool binary) {
  if (!f.valid()) throw std::invalid_argument("cosched::drm::fence_source::host_signal: empty fence");
  if (!s.valid()) throw std::logic_error("cosched::drm::fence_source::host_signal: empty syncobj");
  auto duplicate = std::make_shared<owned_handle>(
      device.state(), duplicate_syncobj(*s.get_device().state(), s.handle(), *device.state(),
                                        "fence_source::host_signal (duplicating the syncobj)"));
  auto state = std::make_shared<host_signal_state>(std::move(duplicate), point, binary, f.point());
  f.async_wait(executor, [state = std::move(state)](std::error_code ec) { state->signal(ec); });
}

bool fence_source_impl::set_deadline(const fence& f, fence::clock::time_point when) {
  if (!f.valid()) return false;
  f.set_deadline(when);
  std::vector<std::shared_ptr<registration>> targets;
  {
    std::lock_guard guard(lock);
    if (auto it = by_fence.find(f.state()); it != by_fence.end()) {
      if (it->second->done) targets.push_back(it->second);
    } else if (auto c = composites.find(f.state()); c != composites.end()) {
      for (const auto& part : c->second.parts)
        if (part->done) targets.push_back(part);
    }
  }
  const auto earliest = f.deadline().value_or(when);
  bool taken = false;
  for (const auto& r : targets) taken = forward_deadline(*r, earliest) || taken;
  return taken;
}

bool fence_source_impl::forward_deadline(const registration& r, fence::clock::time_point earliest) noexcept {
  auto& dev = *device.state();
  switch (r.what) {
    case registration::kind::immediate:
    case registration::kind::timer:
      return false;  // no kernel fence to hint
    case registration::kind::sync_file:
      // relaxed: an independent flag.
      if (dev.sync_file_deadline_unsupported.load(std::memory_order_relaxed)) return false;
      try {
        if (set_sync_file_deadline(r.fd, earliest)) return true;
      } catch (const std::system_error& e) {
        logger()->debug("cosched::drm::fence_source::set_deadline: {}", e.what());
        return false;
      }
      if (!dev.sync_file_deadline_unsupported.exchange(true, std::memory_order_relaxed))
        logger()->info(
            "cosched::drm: the kernel does not support SYNC_IOC_SET_DEADLINE; "
            "deadline hints for sync_file waits are not forwarded");
      return false;
    case registration::kind::eventfd:
      break;
  }
  // relaxed: an independent flag.
  if (dev.wait_deadline_unsupported.load(std::memory_order_relaxed)) return false;
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(earliest.time_since_epoch()).count();
  std::uint32_t h = r.syncobj->handle;
  std::uint64_t point = r.key.point;
  uapi::syncobj_timeline_wait args{};
  args.handles = as_user_pointer(&h);
  args.points = as_user_pointer(&point);
  args.count_handles = 1;
  args.timeout_nsec = 0;  // absolute, already past: sets the deadline and returns
  // WAIT_FOR_SUBMIT: a point without a fence yet is ETIME, not EINVAL.
  args.flags = uapi::wait_flag_for_submit | uapi::wait_flag_deadline;
  args.deadline_nsec = ns < 0 ? 0 : static_cast<std::uint64_t>(ns);
  const int err = dev.ioctl(uapi::ioctl_syncobj_timeline_wait, &args);
  if (err == 0 || err == ETIME) return true;
  if (err == EINVAL || err == ENOTTY) {
    if (!dev.wait_deadline_unsupported.exchange(true, std::memory_order_relaxed))
      logger()->info(
          "cosched::drm: the kernel does not support DRM_SYNCOBJ_WAIT_FLAGS_WAIT_DEADLINE; "
          "deadline hints for syncobj waits are not forwarded");
    return false;
  }
  logger()->debug("cosched::drm::fence_source::set_deadline: {}", std::generic_category().message(err));
  return false;
}

}  // namespace detail

void fence_source::host_signal(const fence& f, const timeline_syncobj& s, std::uint64_t point) {
  impl_->host_signal(f, s, point, false);
}

void fence_source::host_signal(const fence& f, const binary_syncobj& s) { impl_->host_signal(f, s, 0, true); }

bool fence_source::set_deadline(const fence& f, clock::time_point when) {
  return impl_->set_deadline(f, when);
}

}  // namespace cosched::drm
