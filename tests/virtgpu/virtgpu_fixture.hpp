// What the virtgpu tests share: the virgl device (or a visible SKIPPED when
// there is none), an io_context with its reactor and fence source, and a ring.
#pragma once

#include <optional>
#include <string>

#include <asio/io_context.hpp>

#include "catch.hpp"
#include "cosched/drm/fence_source.hpp"
#include "cosched/reactor.hpp"
#include "cosched/virtgpu/device.hpp"

namespace cosched::virtgpu::test {

/// The virgl device for one test, or nothing after the test was reported: a
/// WARN "SKIPPED: no virgl device (...)", or, with COSCHED_VIRTGPU_REQUIRED=1
/// in the environment (the GPU VM run sets it), a FAIL.
std::optional<device> device_or_skip();

#define COSCHED_VIRTGPU_TEST_DEVICE(name)                           \
  auto name##_or_skip = ::cosched::virtgpu::test::device_or_skip(); \
  if (!name##_or_skip) return;                                      \
  const ::cosched::virtgpu::device& name = *name##_or_skip

/// An io_context, its reactor and a fence source on the device.
struct rig {
  explicit rig(const device& dev) : events(ctx), source(dev.drm(), events) {}
  asio::io_context ctx{1};
  reactor events;
  drm::fence_source source;
};

/// The B8G8R8A8_UNORM texel a clear to (r, g, b, a) in 1/255 steps writes.
constexpr std::uint32_t texel(std::uint32_t r, std::uint32_t g, std::uint32_t b, std::uint32_t a) noexcept {
  return b | (g << 8) | (r << 16) | (a << 24);
}

/// Open file descriptors of this process now.
std::size_t open_fds();

}  // namespace cosched::virtgpu::test
