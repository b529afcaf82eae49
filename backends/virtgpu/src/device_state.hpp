// Internal to the virtgpu backend: the state behind a device handle.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

#include "cosched/virtgpu/device.hpp"

namespace cosched::virtgpu::detail {

struct device_state {
  explicit device_state(drm::device d) noexcept : dev(std::move(d)) {}

  drm::device dev;
  device_info info;
  // relaxed: only uniqueness matters. Handle 0 means "none" in virgl.
  std::atomic<std::uint32_t> next_object{1};
};

/// "cosched::virtgpu::<operation>: <strerror>" as a std::system_error.
[[noreturn]] void throw_error(int err, const std::string& operation);

/// Blocks until `point` of timeline syncobj `handle` on `fd` has a fence and it
/// signalled, or `timeout` (DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT with
/// WAIT_FOR_SUBMIT). Returns 0 or the errno (ETIME on timeout). For set-up
/// work only: never on a scheduler's thread.
int wait_point(int fd, std::uint32_t handle, std::uint64_t point, std::chrono::nanoseconds timeout) noexcept;

}  // namespace cosched::virtgpu::detail
