// Every syncobj operation against the kernel: create (signalled or not), signal,
// timeline signal, query, reset, transfer, syncobj fds and sync_files, and errors.
#include "cosched/drm/syncobj.hpp"

#include <poll.h>

#include <cerrno>
#include <stdexcept>
#include <system_error>
#include <type_traits>

#include "cosched/drm/sync_file.hpp"
#include "drm_fixture.hpp"
#include "raw_syncobj.hpp"

using namespace cosched;
using namespace cosched::drm::test;
using drm::binary_syncobj;
using drm::timeline_syncobj;

namespace {

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

template <class F>
std::system_error thrown_by(F&& f) {
  try {
    f();
  } catch (const std::system_error& e) {
    return e;
  }
  FAIL("no std::system_error thrown");
  return std::system_error(std::error_code());
}

const std::error_code einval(EINVAL, std::generic_category());

}  // namespace

static_assert(!std::is_copy_constructible_v<binary_syncobj> && !std::is_copy_assignable_v<binary_syncobj>);
static_assert(std::is_nothrow_move_constructible_v<binary_syncobj> &&
              std::is_nothrow_move_assignable_v<binary_syncobj>);
static_assert(!std::is_copy_constructible_v<timeline_syncobj> &&
              std::is_nothrow_move_constructible_v<timeline_syncobj>);

TEST_CASE("a binary syncobj is created and signalled and reset and moved", "[drm][syncobj]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  auto b = binary_syncobj::create(dev);
  REQUIRE(b.valid());
  CHECK(b.owns_handle());
  CHECK(b.get_device() == dev);
  CHECK_FALSE(b.is_signalled());
  b.signal();
  CHECK(b.is_signalled());
  b.reset();
  CHECK_FALSE(b.is_signalled());

  auto s = binary_syncobj::create(dev, true);
  CHECK(s.is_signalled());
  const auto handle = s.handle();
  auto moved = std::move(s);
  CHECK_FALSE(s.valid());  // NOLINT(bugprone-use-after-move): moved-from is empty
  CHECK(moved.handle() == handle);
  CHECK(moved.is_signalled());
  CHECK_THROWS_AS(s.signal(), std::logic_error);
}

TEST_CASE("an owning syncobj destroys its handle and a borrowing one leaves it", "[drm][syncobj]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  const std::uint32_t handle = raw::create(dev);
  {
    auto view = binary_syncobj::borrow(dev, handle);
    CHECK_FALSE(view.owns_handle());
    view.signal();
  }
  CHECK(raw::signal(dev, handle) == 0);  // still there
  { auto owner = binary_syncobj::adopt(dev, handle); }
  CHECK(raw::signal(dev, handle) == ENOENT);  // destroyed with its owner
}

TEST_CASE("a timeline syncobj signals points and queries the last one and resets", "[drm][syncobj]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  auto t = timeline_syncobj::create(dev);
  CHECK(t.query() == 0);
  CHECK_FALSE(t.is_signalled(1));
  t.signal(3);
  CHECK(t.query() == 3);
  CHECK(t.query_submitted() == 3);
  CHECK(t.is_signalled(2));  // earlier points are signalled with it
  CHECK(t.is_signalled(3));
  CHECK_FALSE(t.is_signalled(4));
  t.signal(7);
  CHECK(t.query() == 7);
  t.reset();
  CHECK(t.query() == 0);
  CHECK_FALSE(t.is_signalled(1));

  auto signalled = timeline_syncobj::create(dev, true);
  CHECK(signalled.is_signalled(0));
  CHECK(signalled.query() == 0);
}

TEST_CASE("transfers move fences point to point and between binary and timeline syncobjs", "[drm][syncobj]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  auto t = timeline_syncobj::create(dev);
  auto b = binary_syncobj::create(dev);
  t.signal(5);
  b.transfer_from(t, 5);  // timeline point -> binary
  CHECK(b.is_signalled());

  auto u = timeline_syncobj::create(dev);
  u.transfer_from(b, 2);  // binary -> timeline point
  CHECK(u.query() == 2);
  u.transfer_from(t, 5, 9);  // point -> point
  CHECK(u.query() == 9);

  auto c = binary_syncobj::create(dev);
  c.transfer_from(b);  // binary -> binary
  CHECK(c.is_signalled());

  const auto error = thrown_by([&] { c.transfer_from(t, 50); });  // no fence there yet
  CHECK(error.code() == einval);
  CHECK_THAT(error.what(), contains("binary_syncobj::transfer_from (DRM_IOCTL_SYNCOBJ_TRANSFER, point 50)"));
  auto elsewhere = timeline_syncobj::create(drm::device::open(dev.path()));
  CHECK_THROWS_AS(u.transfer_from(elsewhere, 1, 1), std::invalid_argument);
}

TEST_CASE("a syncobj fd is another handle to the same syncobj on any device", "[drm][syncobj]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  auto t = timeline_syncobj::create(dev);
  const auto fd = t.export_fd();
  REQUIRE(fd.valid());
  auto same = timeline_syncobj::import_fd(dev, fd.get());
  CHECK(same.handle() != t.handle());
  auto other_file = timeline_syncobj::import_fd(drm::device::open(dev.path()), fd.get());
  t.signal(4);
  CHECK(same.query() == 4);
  CHECK(other_file.query() == 4);
  auto b = binary_syncobj::create(dev);
  auto b_again = binary_syncobj::import_fd(dev, b.export_fd().get());
  b_again.signal();
  CHECK(b.is_signalled());

  const auto error = thrown_by([&] { timeline_syncobj::import_fd(dev, -1); });
  CHECK(error.code() == einval);
  CHECK_THAT(error.what(), contains("timeline_syncobj::import_fd"));
}

TEST_CASE("sync_files are exported from and imported into binary and timeline syncobjs", "[drm][syncobj]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  auto b = binary_syncobj::create(dev, true);
  const auto file = b.export_sync_file();
  REQUIRE(file.valid());
  CHECK(readable(file.get()));
  CHECK(drm::sync_file_status(file.get()) == 1);
  auto from_file = binary_syncobj::from_sync_file(dev, file.get());
  CHECK(from_file.is_signalled());
  auto c = binary_syncobj::create(dev);
  c.import_sync_file(file.get());
  CHECK(c.is_signalled());

  auto t = timeline_syncobj::create(dev);
  t.signal(6);
  const auto point_file = t.export_sync_file(6);
  CHECK(drm::sync_file_status(point_file.get()) == 1);
  auto u = timeline_syncobj::create(dev);
  u.import_sync_file(point_file.get(), 11);
  CHECK(u.query() == 11);

  auto empty = binary_syncobj::create(dev);
  const auto no_fence = thrown_by([&] { empty.export_sync_file(); });
  CHECK(no_fence.code() == einval);
  CHECK_THAT(no_fence.what(), contains("binary_syncobj::export_sync_file"));
  const auto no_point = thrown_by([&] { t.export_sync_file(100); });
  CHECK(no_point.code() == einval);
  CHECK_THAT(no_point.what(),
             contains("timeline_syncobj::export_sync_file (DRM_IOCTL_SYNCOBJ_TRANSFER, point 100)"));
  CHECK_THROWS_AS(drm::sync_file_status(t.export_fd().get()), std::system_error);  // not a sync_file
}
