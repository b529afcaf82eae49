// What the DRM tests share: the device (or a visible SKIPPED when there is none),
// vgem's pending fences, a reactor rig, and bounded run loops.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include "catch.hpp"
#include "cosched/drm.hpp"
#include "cosched/reactor.hpp"

namespace cosched::drm::test {

/// The DRM device for one test, or nothing after the test was reported: a
/// WARN "SKIPPED: no DRM device (...)" (counted in the run's summary), or,
/// with COSCHED_DRM_REQUIRED=1 in the environment, a FAIL.
std::optional<device> device_or_skip();

/// The device, or return from the test case (reported as device_or_skip() says).
#define COSCHED_DRM_TEST_DEVICE(name)                           \
  auto name##_or_skip = ::cosched::drm::test::device_or_skip(); \
  if (!name##_or_skip) return;                                  \
  const ::cosched::drm::device& name = *name##_or_skip

/// vgem (no syncobj, but fences that stay pending until signalled): its primary
/// node, which can create buffers, and its render node's path.
class vgem {
 public:
  /// vgem, or nothing after the test was reported as device_or_skip() does.
  static std::optional<vgem> open_or_skip();
  vgem(vgem&& other) noexcept;
  vgem& operator=(vgem&&) = delete;
  ~vgem();

  /// A fence that vgem signals when told to, exported as a sync_file.
  struct pending_fence {
    std::uint32_t id;
    unique_fd sync_file;
  };
  /// A new buffer with an unsignalled write fence: VGEM_FENCE_ATTACH, then the
  /// buffer's dma-buf (PRIME) exports the fence (DMA_BUF_IOCTL_EXPORT_SYNC_FILE).
  pending_fence attach_fence();
  /// VGEM_FENCE_SIGNAL.
  void signal(std::uint32_t fence_id);

  const std::string& render_path() const noexcept { return render_path_; }

 private:
  vgem(int fd, std::string render_path) noexcept : fd_(fd), render_path_(std::move(render_path)) {}
  int fd_;
  std::string render_path_;
};

/// Runs `ctx` one handler at a time until `done()` or `limit` (a guard against
/// a hang, not a measurement). Returns done().
template <class Done>
bool run_until(asio::io_context& ctx, Done done, std::chrono::milliseconds limit = std::chrono::seconds(60)) {
  asio::steady_timer guard(ctx, limit);
  bool expired = false;
  guard.async_wait([&](const std::error_code& ec) {
    if (!ec) expired = true;
  });
  ctx.restart();
  while (!done() && !expired) ctx.run_one();
  guard.cancel();
  ctx.poll();  // the guard's handler runs now, while `expired` exists
  return done();
}

/// Lets what is already on its way arrive: the kernel's eventfd writes, their
/// io_uring completions and the handlers they post (a few rounds of 10 ms).
void settle(asio::io_context& ctx);

/// An io_context, its reactor and a fence source on `dev`.
struct rig {
  explicit rig(const device& dev, fence_source_options options = {})
      : events(ctx), source(dev, events, std::move(options)) {}
  bool run_until_signalled(const fence& f) {
    return run_until(ctx, [&] { return f.signalled(); });
  }
  asio::io_context ctx{1};
  reactor events;
  fence_source source;
};

/// Raises the soft RLIMIT_NOFILE to at least `wanted` (and the hard one, when
/// allowed); returns the soft limit now in force.
std::size_t raise_fd_limit(std::size_t wanted);

/// A substring matcher for Catch2 v2 and v3.
#if __has_include(<catch2/catch_all.hpp>)
inline auto contains(const std::string& s) { return Catch::Matchers::ContainsSubstring(s); }
#else
inline auto contains(const std::string& s) { return Catch::Matchers::Contains(s); }
#endif

}  // namespace cosched::drm::test
