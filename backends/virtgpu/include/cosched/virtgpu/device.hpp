// A virtio-gpu device with virgl 3D: the render node opened and probed for what
// real GPU work needs (3D features, a virgl capset, EXECBUFFER with syncobjs).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cosched/drm/device.hpp"

namespace cosched::virtgpu {

/// What the probe found.
struct device_info {
  std::uint64_t capset_ids = 0;  ///< DRM_VIRTGPU_PARAM_SUPPORTED_CAPSET_IDs (bit 1: VIRGL, bit 2: VIRGL2)
  bool context_init =
      false;             ///< DRM_VIRTGPU_PARAM_CONTEXT_INIT (without it, one implicit virgl context per fd)
  std::string renderer;  ///< the host renderer the VIRGL2 capset names ("LLVMPIPE (LLVM ...)"), or ""
};

namespace detail {
struct device_state;
}

/// An open virtio_gpu render node that runs virgl command streams.
///
/// Opening probes, in this order, and throws std::system_error naming the first
/// thing missing: a render node with timeline syncobjs and
/// DRM_IOCTL_SYNCOBJ_EVENTFD (drm::device::open), the virtio_gpu driver,
/// DRM_VIRTGPU_PARAM_3D_FEATURES (no virgl: QEMU's 2D `virtio-gpu-pci`; EOPNOTSUPP),
/// a VIRGL or VIRGL2 capset, and an EXECBUFFER that takes an out-syncobj (Linux
/// 6.4+) and whose point the driver signals: one empty submission, waited for
/// (at most 10 s). That first submission also creates the file's virgl context.
///
/// All submissions through one device share its virgl context, and the host
/// executes them one at a time, in submission order.
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Safe for const members (the kernel
/// serialises the ioctls); assignment is Unsafe.
///
/// @par Ownership
/// A shared handle: copies refer to the same open file and context. Textures,
/// commands and drivers keep a copy.
///
/// @par Lifetime
/// Nothing needs to outlive a device. A default-constructed device is empty.
class device {
 public:
  device() noexcept = default;
  /// Opens and probes the render node at `path`; empty: the first render node
  /// under /dev/dri that passes (the error names each node tried and what it lacks).
  static device open(const std::string& path = {});
  /// Probes a DRM device opened already.
  static device from(drm::device dev);

  bool valid() const noexcept { return state_ != nullptr; }
  explicit operator bool() const noexcept { return valid(); }

  const drm::device& drm() const noexcept;
  int fd() const noexcept;
  const device_info& info() const noexcept;
  /// A fresh handle for a virgl object (a surface) of the device's context. Thread-safe.
  std::uint32_t new_object_handle() const noexcept;

  /// Internal: the ioctl every operation goes through (retried on EINTR/EAGAIN);
  /// returns 0 or the errno.
  int ioctl(unsigned long request, void* arg) const noexcept;

  friend bool operator==(const device& a, const device& b) noexcept { return a.state_ == b.state_; }

 private:
  explicit device(std::shared_ptr<detail::device_state> s) noexcept : state_(std::move(s)) {}
  std::shared_ptr<detail::device_state> state_;
};

}  // namespace cosched::virtgpu
