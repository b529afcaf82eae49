// Internal to the DRM backend: the state behind a device handle, the ioctl call
// every operation goes through, and the errors the backend throws.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace cosched::drm::detail {

struct device_state {
  device_state(int descriptor, bool owns, std::string where) noexcept
      : fd(descriptor), owns_fd(owns), path(std::move(where)) {}
  device_state(const device_state&) = delete;
  device_state& operator=(const device_state&) = delete;
  ~device_state();

  /// ioctl on the device, retried on EINTR/EAGAIN (as libdrm does). Returns 0
  /// or the errno.
  int ioctl(unsigned long request, void* arg) const noexcept;

  /// Destroys a syncobj handle of this device; errors are logged, not thrown.
  void destroy_syncobj(std::uint32_t handle) const noexcept;

  int fd;
  bool owns_fd;
  std::string path;
  std::string driver;
  // Set once the kernel refused a deadline hint (ENOTTY/EINVAL), so the hint is
  // not sent again and the refusal is logged once. relaxed: independent flags.
  std::atomic<bool> wait_deadline_unsupported{false};
  std::atomic<bool> sync_file_deadline_unsupported{false};
};

/// A syncobj handle the backend itself owns (its duplicate of a user's syncobj,
/// a scratch syncobj): destroyed with this object, on its device.
struct owned_handle {
  owned_handle(std::shared_ptr<device_state> on, std::uint32_t h) noexcept
      : device(std::move(on)), handle(h) {}
  owned_handle(const owned_handle&) = delete;
  owned_handle& operator=(const owned_handle&) = delete;
  ~owned_handle() { device->destroy_syncobj(handle); }
  std::shared_ptr<device_state> device;
  std::uint32_t handle;
};

/// "cosched::drm::<operation>: <strerror>"; out of file descriptors (EMFILE,
/// ENFILE), the message names the fd limit (RLIMIT_NOFILE) and its value.
[[noreturn]] void throw_error(int err, std::string_view operation);
std::string describe_error(int err, std::string_view operation);
/// For EMFILE/ENFILE, why the descriptor could not be made (naming the limit); else "".
std::string fd_limit_note(int err);

/// A new syncobj handle on `device` (CREATE, optionally signalled).
std::uint32_t create_syncobj(const device_state& device, bool signalled, std::string_view operation);
/// Exports `handle` as a syncobj fd (DRM_IOCTL_SYNCOBJ_HANDLE_TO_FD). Returns
/// the fd, or -errno: -ENOENT for a handle that names no syncobj, as every other
/// syncobj ioctl says (this one alone says EINVAL; see names_no_syncobj).
int export_syncobj_fd(const device_state& device, std::uint32_t handle) noexcept;
/// Whether `handle` names no syncobj on `device`: DRM_IOCTL_SYNCOBJ_QUERY, which
/// looks its handles up as signal, reset, wait and transfer do, says ENOENT.
bool names_no_syncobj(const device_state& device, std::uint32_t handle) noexcept;
/// Exports `handle` of `from` as a syncobj fd and imports it into `into`: a
/// second handle to the same kernel syncobj. ENOENT for a handle that names no
/// syncobj.
std::uint32_t duplicate_syncobj(const device_state& from, std::uint32_t handle, const device_state& into,
                                std::string_view operation);
/// Exports the fence of binary syncobj `handle` as a sync_file fd. Returns
/// the fd, or -errno.
int export_sync_file(const device_state& device, std::uint32_t handle) noexcept;
/// Moves the fence of (src, src_point) to (dst, dst_point); point 0 is the
/// binary syncobj's fence. Returns 0 or the errno.
int transfer(const device_state& device, std::uint32_t src, std::uint64_t src_point, std::uint32_t dst,
             std::uint64_t dst_point) noexcept;

}  // namespace cosched::drm::detail
