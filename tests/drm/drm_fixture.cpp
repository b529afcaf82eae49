// The DRM tests' device lookup with visible skips (and the run's skip summary),
// vgem's fence ioctls, and small helpers.
// Catch2 v2 declares its listener base class only with this (v3 always does).
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include "drm_fixture.hpp"

#include <fcntl.h>
#include <linux/dma-buf.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>  // program_invocation_short_name (glibc)
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <set>
#include <system_error>
#include <thread>

#if __has_include(<drm/drm.h>)
#include <drm/drm.h>
#else
#include <libdrm/drm.h>
#endif

namespace cosched::drm::test {

namespace {

// vgem's fence uAPI (the kernel's include/uapi/drm/vgem_drm.h; libdrm has no copy).
struct vgem_fence_attach {
  std::uint32_t handle;
  std::uint32_t flags;
  std::uint32_t out_fence;
  std::uint32_t pad;
};
struct vgem_fence_signal {
  std::uint32_t fence;
  std::uint32_t flags;
};
constexpr std::uint32_t vgem_fence_write = 1;
constexpr unsigned long ioctl_vgem_fence_attach = DRM_IOWR(DRM_COMMAND_BASE + 1, vgem_fence_attach);
constexpr unsigned long ioctl_vgem_fence_signal = DRM_IOW(DRM_COMMAND_BASE + 2, vgem_fence_signal);

std::mutex skip_lock;
std::set<std::string> skipped;  // test case names; guarded by skip_lock
std::string skip_reason;        // the first one; guarded by skip_lock

bool device_required() {
  // Read while tests run on one thread. NOLINTNEXTLINE(concurrency-mt-unsafe)
  const char* value = std::getenv("COSCHED_DRM_REQUIRED");
  return value && std::string(value) == "1";
}

// Reports a test that cannot run: SKIPPED, or FAILED when a device is required.
void report_missing(const std::string& reason) {
  if (device_required()) FAIL("no DRM device, but COSCHED_DRM_REQUIRED=1: " << reason);
  {
    std::lock_guard guard(skip_lock);
    if (skip_reason.empty()) skip_reason = reason;
    skipped.insert(Catch::getResultCapture().getCurrentTestName());
  }
  WARN("SKIPPED: no DRM device (" << reason << ")");
}

std::string driver_of(int fd) {
  char name[64] = {};
  drm_version version{};
  version.name = name;
  version.name_len = sizeof name - 1;
  if (::ioctl(fd, DRM_IOCTL_VERSION, &version) != 0) return {};
  return name;
}

// The first /dev/dri node whose name starts with `prefix` and whose driver is `driver`.
std::string find_node(const std::string& prefix, const std::string& driver) {
  std::string found;
  std::error_code ignored;  // no /dev/dri: nothing found
  for (const auto& entry : std::filesystem::directory_iterator("/dev/dri", ignored)) {
    const std::string path = entry.path().string();
    if (entry.path().filename().string().rfind(prefix, 0) != 0) continue;
    const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) continue;
    const bool match = driver_of(fd) == driver;
    ::close(fd);
    if (match && (found.empty() || path < found)) found = path;
  }
  return found;
}

// Catch2's run summary comes right after this line: how many cases skipped.
#if __has_include(<catch2/catch_all.hpp>)
using listener_base = Catch::EventListenerBase;
#else
using listener_base = Catch::TestEventListenerBase;
#endif
struct skip_summary : listener_base {
  using listener_base::listener_base;
  void testCaseStarting(const Catch::TestCaseInfo& info) override {
    listener_base::testCaseStarting(info);
    ++cases;
  }
  void testRunEnded(const Catch::TestRunStats& stats) override {
    listener_base::testRunEnded(stats);
    std::lock_guard guard(skip_lock);
    if (skipped.empty()) return;
    // The executable's name (drm_tests, drm_equivalence): glibc keeps it.
    std::cout << program_invocation_short_name << ": SKIPPED " << skipped.size() << " of " << cases
              << " test cases: no DRM device (" << skip_reason << ")\n";
  }
  int cases = 0;
};

}  // namespace

CATCH_REGISTER_LISTENER(skip_summary)

std::optional<device> device_or_skip() {
  try {
    return device::open();
  } catch (const std::system_error& e) {
    report_missing(e.what());
    return std::nullopt;
  }
}

std::optional<vgem> vgem::open_or_skip() {
  const std::string primary = find_node("card", "vgem");
  const std::string render = find_node("renderD", "vgem");
  if (primary.empty() || render.empty()) {
    report_missing("no vgem device (modprobe vgem) for fences that signal later");
    return std::nullopt;
  }
  const int fd = ::open(primary.c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  return vgem(fd, render);
}

vgem::vgem(vgem&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), render_path_(std::move(other.render_path_)) {}

vgem::~vgem() {
  if (fd_ >= 0) ::close(fd_);
}

vgem::pending_fence vgem::attach_fence() {
  drm_mode_create_dumb buffer{};
  buffer.width = 64;
  buffer.height = 64;
  buffer.bpp = 32;
  REQUIRE(::ioctl(fd_, DRM_IOCTL_MODE_CREATE_DUMB, &buffer) == 0);
  vgem_fence_attach attach{};
  attach.handle = buffer.handle;
  attach.flags = vgem_fence_write;
  REQUIRE(::ioctl(fd_, ioctl_vgem_fence_attach, &attach) == 0);
  drm_prime_handle prime{};
  prime.handle = buffer.handle;
  prime.flags = DRM_CLOEXEC | DRM_RDWR;
  prime.fd = -1;
  REQUIRE(::ioctl(fd_, DRM_IOCTL_PRIME_HANDLE_TO_FD, &prime) == 0);
  dma_buf_export_sync_file exported{};
  exported.flags = DMA_BUF_SYNC_RW;
  exported.fd = -1;
  const int rc = ::ioctl(prime.fd, DMA_BUF_IOCTL_EXPORT_SYNC_FILE, &exported);
  ::close(prime.fd);
  drm_gem_close close_buffer{};
  close_buffer.handle = buffer.handle;  // the fence lives on without the buffer
  ::ioctl(fd_, DRM_IOCTL_GEM_CLOSE, &close_buffer);
  REQUIRE(rc == 0);
  return {attach.out_fence, unique_fd(exported.fd)};
}

void vgem::signal(std::uint32_t fence_id) {
  vgem_fence_signal args{};
  args.fence = fence_id;
  REQUIRE(::ioctl(fd_, ioctl_vgem_fence_signal, &args) == 0);
}

void settle(asio::io_context& ctx) {
  for (int round = 0; round < 5; ++round) {
    ctx.restart();
    ctx.poll();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ctx.restart();
  ctx.poll();
}

std::size_t raise_fd_limit(std::size_t wanted) {
  rlimit limit{};
  ::getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_cur < wanted) {
    if (limit.rlim_max < wanted) {
      rlimit both{wanted, wanted};
      if (::setrlimit(RLIMIT_NOFILE, &both) == 0) return wanted;  // privileged: hard limit raised too
    }
    limit.rlim_cur = std::min<rlim_t>(wanted, limit.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  ::getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

}  // namespace cosched::drm::test
