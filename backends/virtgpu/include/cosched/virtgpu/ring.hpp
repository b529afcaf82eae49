// virtio-gpu (virgl) as a cosched ring: the driver part of a drm::driver_ring,
// which submits a command's stream with DRM_IOCTL_VIRTGPU_EXECBUFFER.
#pragma once

#include <cstdint>
#include <system_error>
#include <vector>

#include "cosched/drm/driver_ring.hpp"
#include "cosched/virtgpu/command.hpp"
#include "cosched/virtgpu/device.hpp"

namespace cosched::virtgpu {

/// The driver part: submit() makes one DRM_IOCTL_VIRTGPU_EXECBUFFER of the
/// command's stream, listing its textures' buffer objects, with the ring's point
/// as the out-syncobj (and the ring's in points, if any, as in-syncobjs). The
/// virtio_gpu driver signals the point when the host has executed the stream.
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Unsafe (the ring calls it from the
/// scheduler's executor).
///
/// @par Ownership and Lifetime
/// Movable; the ring owns it. It keeps its device open.
class driver {
 public:
  using command_type = command;

  explicit driver(device dev);

  std::error_code submit(command& cmd, const drm::submission& s);

  const device& get_device() const noexcept { return device_; }
  /// The DRM device the ring's timeline syncobj must be on (the same open file).
  const drm::device& drm_device() const noexcept { return device_.drm(); }
  /// EXECBUFFERs made so far.
  std::uint64_t submissions() const noexcept { return submissions_; }

 private:
  device device_;
  std::vector<std::uint32_t> bo_handles_;  // reused from one submit to the next
  std::uint64_t submissions_ = 0;
};

/// A ring on a virtio-gpu device: the device's submissions run one at a time
/// in submission order (in_order) and virgl never fails a fence (no errors to
/// read). `source` must be on dev.drm().
using ring = drm::driver_ring<driver>;

inline constexpr drm::driver_ring_options ring_options{.in_order = true, .read_fence_errors = false};

}  // namespace cosched::virtgpu
