// The virgl device lookup with visible skips, and small helpers.
#include "virtgpu_fixture.hpp"

#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace cosched::virtgpu::test {

std::optional<device> device_or_skip() {
  try {
    return device::open();
  } catch (const std::system_error& e) {
    // Read while tests run on one thread. NOLINTNEXTLINE(concurrency-mt-unsafe)
    const char* required = std::getenv("COSCHED_VIRTGPU_REQUIRED");
    if (required && std::string(required) == "1")
      FAIL("no virgl device, but COSCHED_VIRTGPU_REQUIRED=1: " << e.what());
    WARN("SKIPPED: no virgl device (" << e.what() << ")");
    return std::nullopt;
  }
}

std::size_t open_fds() {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

}  // namespace cosched::virtgpu::test
