// Opening DRM devices: by path, by search, from the caller's fd (borrowed or
// adopted), and the errors that name what is missing.
#include "cosched/drm/device.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "cosched/drm/syncobj.hpp"
#include "drm_fixture.hpp"

using namespace cosched;
using namespace cosched::drm::test;
using drm::device;
using drm::fd_ownership;

namespace {
bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }
}  // namespace

TEST_CASE("open() finds a render node with syncobj and timeline syncobj and EVENTFD", "[drm][device]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  CHECK(dev.valid());
  CHECK(dev.fd() >= 0);
  CHECK(dev.path().rfind("/dev/dri/renderD", 0) == 0);
  CHECK_FALSE(dev.driver().empty());
  const device copy = dev;  // a shared handle: the same open file
  CHECK(copy == dev);
  CHECK(copy.fd() == dev.fd());
  // The same node by path is another open file.
  const device again = device::open(dev.path());
  CHECK_FALSE(again == dev);
  CHECK(again.driver() == dev.driver());
}

TEST_CASE("a path without a DRM device fails at open and names the path", "[drm][device]") {
  try {
    device::open("/nonexistent/dri/renderD200");
    FAIL("opened a device that does not exist");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::error_code(ENOENT, std::generic_category()));
    CHECK_THAT(e.what(), contains("cosched::drm::device: no DRM device at /nonexistent/dri/renderD200"));
  }
}

TEST_CASE("an fd that is not a DRM device is refused and an adopted one is closed even then",
          "[drm][device]") {
  const int fd = ::eventfd(0, EFD_CLOEXEC);
  REQUIRE(fd >= 0);
  CHECK_THROWS_WITH(device::from_fd(fd, fd_ownership::borrow), contains("is not a DRM device"));
  CHECK(is_open(fd));
  CHECK_THROWS_AS(device::from_fd(fd, fd_ownership::adopt), std::system_error);
  CHECK_FALSE(is_open(fd));
}

TEST_CASE("a borrowed device fd stays open and an adopted one closes with its last user", "[drm][device]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  const int fd = ::open(dev.path().c_str(), O_RDWR | O_CLOEXEC);
  REQUIRE(fd >= 0);
  {
    const auto borrowed = device::from_fd(fd, fd_ownership::borrow);
    CHECK(borrowed.fd() == fd);
    CHECK(borrowed.path() == "fd " + std::to_string(fd));
    CHECK(borrowed.driver() == dev.driver());
  }
  CHECK(is_open(fd));
  {
    auto adopted = device::from_fd(fd, fd_ownership::adopt);
    auto timeline = drm::timeline_syncobj::create(adopted);
    adopted = device();  // the syncobj keeps the file open
    CHECK(is_open(fd));
    timeline.signal(1);
    CHECK(timeline.query() == 1);
  }
  CHECK_FALSE(is_open(fd));
}

TEST_CASE("a node without syncobj (vgem) is refused at open with what it lacks", "[drm][device][vgem]") {
  auto vg = vgem::open_or_skip();
  if (!vg) return;
  try {
    device::open(vg->render_path());
    FAIL("vgem was accepted");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::error_code(EOPNOTSUPP, std::generic_category()));
    CHECK_THAT(e.what(),
               contains(vg->render_path() + " (vgem): no DRM syncobj support (DRM_CAP_SYNCOBJ = 0)"));
  }
}
