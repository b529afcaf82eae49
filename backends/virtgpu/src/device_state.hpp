// Internal to the virtgpu backend: the state behind a device handle.
#pragma once

#include <atomic>
#include <cstdint>

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

}  // namespace cosched::virtgpu::detail
