// Raw syncobj ioctls for the tests: what another party (a driver, a compositor)
// does with a syncobj, outside cosched.
#pragma once

#include <sys/ioctl.h>

#include <cerrno>
#include <cstdint>
#include <ctime>

#if __has_include(<drm/drm.h>)
#include <drm/drm.h>
#else
#include <libdrm/drm.h>
#endif

#include "cosched/drm/device.hpp"

namespace cosched::drm::test::raw {

inline int call(const device& dev, unsigned long request, void* arg) {
  int rc;
  do {
    rc = ::ioctl(dev.fd(), request, arg);
  } while (rc == -1 && (errno == EINTR || errno == EAGAIN));
  return rc == -1 ? errno : 0;
}

inline std::uint32_t create(const device& dev) {
  drm_syncobj_create args{};
  return call(dev, DRM_IOCTL_SYNCOBJ_CREATE, &args) == 0 ? args.handle : 0;
}

inline int destroy(const device& dev, std::uint32_t handle) {
  drm_syncobj_destroy args{};
  args.handle = handle;
  return call(dev, DRM_IOCTL_SYNCOBJ_DESTROY, &args);
}

inline int signal(const device& dev, std::uint32_t handle) {
  drm_syncobj_array args{};
  args.handles = reinterpret_cast<std::uintptr_t>(&handle);
  args.count_handles = 1;
  return call(dev, DRM_IOCTL_SYNCOBJ_SIGNAL, &args);
}

inline int reset(const device& dev, std::uint32_t handle) {
  drm_syncobj_array args{};
  args.handles = reinterpret_cast<std::uintptr_t>(&handle);
  args.count_handles = 1;
  return call(dev, DRM_IOCTL_SYNCOBJ_RESET, &args);
}

/// A handle on `dev` to the syncobj behind `syncobj_fd` (0 on failure).
inline std::uint32_t fd_to_handle(const device& dev, int syncobj_fd) {
  drm_syncobj_handle args{};
  args.fd = syncobj_fd;
  return call(dev, DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &args) == 0 ? args.handle : 0;
}

/// Replaces the fence of binary syncobj `handle` with the sync_file's.
inline int import_sync_file(const device& dev, std::uint32_t handle, int sync_file_fd) {
  drm_syncobj_handle args{};
  args.handle = handle;
  args.flags = DRM_SYNCOBJ_FD_TO_HANDLE_FLAGS_IMPORT_SYNC_FILE;
  args.fd = sync_file_fd;
  return call(dev, DRM_IOCTL_SYNCOBJ_FD_TO_HANDLE, &args);
}

inline std::int64_t monotonic_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

/// The kernel's own DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT (WAIT_FOR_SUBMIT) for
/// `point`, blocking up to `timeout_ns`: 0 once signalled, ETIME if not by then.
inline int timeline_wait(const device& dev, std::uint32_t handle, std::uint64_t point,
                         std::int64_t timeout_ns) {
  drm_syncobj_timeline_wait args{};
  args.handles = reinterpret_cast<std::uintptr_t>(&handle);
  args.points = reinterpret_cast<std::uintptr_t>(&point);
  args.count_handles = 1;
  args.flags = DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT;
  args.timeout_nsec = monotonic_ns() + timeout_ns;
  int rc;
  do {
    rc = ::ioctl(dev.fd(), DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT, &args);
  } while (rc == -1 && errno == EINTR);
  return rc == -1 ? errno : 0;
}

}  // namespace cosched::drm::test::raw
