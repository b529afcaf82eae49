// A DRM device for syncobjs: a render node opened by path, found under /dev/dri,
// or an fd the user already has; probed at open for everything the backend needs.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace cosched::drm {

namespace detail {
struct device_state;
}

/// Whether a device adopted from an fd closes it.
enum class fd_ownership : unsigned char {
  borrow,  ///< the caller keeps the fd open for as long as the device (and every copy) lives
  adopt,   ///< the device owns the fd from the call on (even when the call throws)
};

/// An open DRM device with syncobj, timeline syncobj and DRM_IOCTL_SYNCOBJ_EVENTFD.
///
/// Opening probes DRM_CAP_SYNCOBJ, DRM_CAP_SYNCOBJ_TIMELINE and EVENTFD (a real
/// registration on a scratch syncobj), so a missing feature is reported at open
/// time as a std::system_error naming it (no device: ENOENT/ENODEV; no syncobj,
/// no timeline, a kernel older than 6.6: EOPNOTSUPP), never later by some wait.
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Safe for const members; assignment is Unsafe.
///
/// @par Ownership
/// A shared handle: copies refer to the same open file. Syncobjs and fence
/// sources keep a copy, so the file stays open until the last of them is gone
/// (then it is closed if the device opened or adopted it).
///
/// @par Lifetime
/// Nothing needs to outlive a device, except a borrowed fd (see fd_ownership).
/// A default-constructed device is empty (not valid()).
class device {
 public:
  device() noexcept = default;

  /// Opens the render node at `path` (for example "/dev/dri/renderD128").
  static device open(const std::string& path);

  /// Opens the first render node under /dev/dri, in numeric order, that has
  /// everything the backend needs. The error names each node tried and what it lacks.
  static device open();
  /// The render nodes under /dev/dri (/dev/dri/renderD<N>), in numeric order.
  static std::vector<std::string> render_nodes();

  /// Uses an fd the caller already has (a render or primary node).
  static device from_fd(int fd, fd_ownership ownership);

  bool valid() const noexcept { return state_ != nullptr; }
  explicit operator bool() const noexcept { return valid(); }

  /// The DRM fd; valid while this device (or a copy) lives.
  int fd() const noexcept;
  /// The path it was opened from, or "fd N" for an fd from the caller.
  const std::string& path() const noexcept;
  /// The kernel driver's name (DRM_IOCTL_VERSION), for example "virtio_gpu".
  const std::string& driver() const noexcept;

  /// Internal: the shared state (for syncobjs and fence sources).
  const std::shared_ptr<detail::device_state>& state() const noexcept { return state_; }

  friend bool operator==(const device& a, const device& b) noexcept { return a.state_ == b.state_; }

 private:
  explicit device(std::shared_ptr<detail::device_state> state) noexcept : state_(std::move(state)) {}
  std::shared_ptr<detail::device_state> state_;
};

}  // namespace cosched::drm
