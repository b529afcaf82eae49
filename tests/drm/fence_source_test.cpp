// Kernel fences as cosched fences: waits on timeline points, binary syncobjs and
// sync_files through EVENTFD and io_uring; dedup, the bound, destruction, thousands
// of points in flight, fd exhaustion and the fence error path.
#include "cosched/drm/fence_source.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <functional>
#include <system_error>
#include <thread>
#include <vector>

#include "cosched/cosched.hpp"
#include "cosched/drm/sync_file.hpp"
#include "drm_fixture.hpp"
#include "raw_syncobj.hpp"

using namespace cosched;
using namespace cosched::drm::test;
using drm::binary_syncobj;
using drm::timeline_syncobj;
using drm::wait_mode;

namespace {
const std::error_code eio(EIO, std::generic_category());
}  // namespace

TEST_CASE("a wait for a future timeline point fires when the point is signalled later",
          "[drm][fence_source]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto t = timeline_syncobj::create(dev);
  const fence at5 = r.source.wait(t, 5);
  const fence at3 = r.source.wait(t, 3);
  CHECK(r.source.live_registrations() == 2);
  settle(r.ctx);
  CHECK_FALSE(at3.signalled());
  CHECK_FALSE(at5.signalled());

  t.signal(3);
  REQUIRE(r.run_until_signalled(at3));
  CHECK_FALSE(at3.error());
  settle(r.ctx);
  CHECK_FALSE(at5.signalled());  // a lower point is not enough

  std::thread::id resumed_on;
  std::error_code result = make_error_code(errc::broken);
  at5.async_wait(r.ctx.get_executor(), [&](std::error_code ec) {
    resumed_on = std::this_thread::get_id();
    result = ec;
  });
  std::thread producer([&] { t.signal(5); });  // another party signals
  REQUIRE(run_until(r.ctx, [&] { return resumed_on != std::thread::id(); }));
  producer.join();
  CHECK(resumed_on == std::this_thread::get_id());
  CHECK_FALSE(result);
  CHECK(r.source.live_registrations() == 0);
  CHECK(r.events.pending() == 0);
}

TEST_CASE("an already signalled point signals asynchronously and never inline", "[drm][fence_source]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto t = timeline_syncobj::create(dev);
  t.signal(4);
  auto b = binary_syncobj::create(dev, true);
  const fence point = r.source.wait(t, 2);
  const fence binary = r.source.wait(b);
  CHECK_FALSE(point.signalled());
  CHECK_FALSE(binary.signalled());
  REQUIRE(r.run_until_signalled(point));
  REQUIRE(r.run_until_signalled(binary));
  CHECK_FALSE(point.error());
  CHECK_FALSE(binary.error());
  // The same from a handler on the reactor's thread.
  fence inside;
  bool signalled_inline = true;
  asio::post(r.ctx, [&] {
    inside = r.source.wait(t, 4);
    signalled_inline = inside.signalled();
  });
  REQUIRE(run_until(r.ctx, [&] { return inside.valid() && inside.signalled(); }));
  CHECK_FALSE(signalled_inline);
}

TEST_CASE("a wait for availability fires once the point has a fence", "[drm][fence_source]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto t = timeline_syncobj::create(dev);
  const fence available = r.source.wait(t, 7, wait_mode::available);
  settle(r.ctx);
  CHECK_FALSE(available.signalled());
  t.signal(7);
  REQUIRE(r.run_until_signalled(available));
  CHECK_FALSE(available.error());
  // A binary syncobj that has a fence is available at once.
  auto b = binary_syncobj::create(dev, true);
  const fence binary = r.source.wait(b, wait_mode::available);
  REQUIRE(r.run_until_signalled(binary));
  CHECK_FALSE(binary.error());
}

TEST_CASE("a binary syncobj wait fires on signal and after a reset waits for the next fence",
          "[drm][fence_source]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto b = binary_syncobj::create(dev);
  const fence first = r.source.wait(b);
  settle(r.ctx);
  CHECK_FALSE(first.signalled());
  b.signal();
  REQUIRE(r.run_until_signalled(first));
  CHECK_FALSE(first.error());

  b.reset();
  const fence second = r.source.wait(b);
  CHECK_FALSE(second == first);
  settle(r.ctx);
  CHECK_FALSE(second.signalled());
  b.signal();
  REQUIRE(r.run_until_signalled(second));

  SECTION("a reset outside cosched after the registration fired is not missed") {
    auto c = binary_syncobj::create(dev, true);
    const fence fired = r.source.wait(c);  // the kernel fires at once; not yet seen here
    REQUIRE(raw::reset(dev, c.handle()) == 0);
    const fence next = r.source.wait(c);
    CHECK_FALSE(next == fired);  // not joined to the spent registration
    REQUIRE(r.run_until_signalled(fired));
    settle(r.ctx);
    CHECK_FALSE(next.signalled());
    c.signal();
    REQUIRE(r.run_until_signalled(next));
  }
}

TEST_CASE("destroying a syncobj through cosched fails its pending waits with broken", "[drm][fence_source]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto t = timeline_syncobj::create(dev);
  auto b = binary_syncobj::create(dev);
  const auto shared = t.export_fd();  // another party keeps the kernel object alive
  const fence point = r.source.wait(t, 9);
  const fence available = r.source.wait(t, 9, wait_mode::available);
  const fence binary = r.source.wait(b);
  CHECK(r.source.live_registrations() == 3);
  t = timeline_syncobj();
  b = binary_syncobj();
  CHECK(point.signalled());  // at once, on the destroying thread
  CHECK(point.error() == make_error_code(errc::broken));
  CHECK(available.error() == make_error_code(errc::broken));
  CHECK(binary.error() == make_error_code(errc::broken));
  // Their eventfd polls end and the registrations are released.
  REQUIRE(run_until(r.ctx, [&] { return r.source.live_registrations() == 0 && r.events.pending() == 0; }));
  // The other party signals the point later: nothing is signalled twice.
  auto other = timeline_syncobj::import_fd(dev, shared.get());
  other.signal(9);
  settle(r.ctx);
  CHECK(point.error() == make_error_code(errc::broken));
  // A new wait on the surviving syncobj works.
  const fence again = r.source.wait(other, 9);
  REQUIRE(r.run_until_signalled(again));
  CHECK_FALSE(again.error());
}

TEST_CASE("the caller destroying and reusing their handle number changes nothing for a wait",
          "[drm][fence_source]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  const std::uint32_t handle = raw::create(dev);
  REQUIRE(handle != 0);
  fence waited;
  drm::unique_fd producer_fd;
  {
    auto view = timeline_syncobj::borrow(dev, handle);
    producer_fd = view.export_fd();  // the producer (a driver, a compositor) holds it too
    waited = r.source.wait(view, 5);
  }
  REQUIRE(raw::destroy(dev, handle) == 0);     // the caller destroys their handle
  auto reuse = timeline_syncobj::create(dev);  // the number is free again, and likely reused
  INFO("the new syncobj's handle is " << reuse.handle() << ", the destroyed one was " << handle);
  reuse.signal(5);
  settle(r.ctx);
  CHECK_FALSE(waited.signalled());  // the source waits on its own handle, not on the number
  auto producer = timeline_syncobj::import_fd(dev, producer_fd.get());
  producer.signal(5);
  REQUIRE(r.run_until_signalled(waited));
  CHECK_FALSE(waited.error());
}

TEST_CASE("identical waits share one registration and beyond the bound a wait is refused",
          "[drm][fence_source][registrations]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev, {.max_registrations = 2});
  auto t = timeline_syncobj::create(dev);
  const fence a = r.source.wait(t, 1);
  const fence same = r.source.wait(t, 1);
  CHECK(a == same);
  CHECK(r.source.registrations_made() == 1);
  CHECK(r.source.live_registrations() == 1);
  const fence available = r.source.wait(t, 1, wait_mode::available);
  CHECK_FALSE(available == a);
  CHECK(r.source.live_registrations() == 2);

  try {
    r.source.wait(t, 2);
    FAIL("a third registration was made");
  } catch (const std::system_error& e) {
    CHECK(e.code() == std::error_code(EBUSY, std::generic_category()));
    CHECK_THAT(e.what(), contains("2 DRM_IOCTL_SYNCOBJ_EVENTFD registrations are live"));
    CHECK_THAT(e.what(), contains("fence_source_options::max_registrations"));
  }
  CHECK(r.source.wait(t, 1) == a);  // joining is still fine
  CHECK(r.source.registrations_made() == 2);
  // sync_file polls can be cancelled: not bounded.
  auto signalled = binary_syncobj::create(dev, true);
  const auto file = signalled.export_sync_file();
  const fence polled = r.source.wait_sync_file(file.get());

  t.signal(1);
  REQUIRE(run_until(r.ctx, [&] { return a.signalled() && available.signalled() && polled.signalled(); }));
  CHECK(r.source.live_registrations() == 0);
  const fence later = r.source.wait(t, 2);  // room again
  CHECK(r.source.registrations_made() == 3);
  CHECK_FALSE(later == a);
  t.signal(2);
  REQUIRE(r.run_until_signalled(later));
}

TEST_CASE("waits from several threads at once share registrations", "[drm][fence_source][threads]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto t = timeline_syncobj::create(dev);
  std::vector<fence> seen[2];
  auto waiter = [&](std::vector<fence>& into) {
    for (std::uint64_t p = 1; p <= 64; ++p) into.push_back(r.source.wait(t, p));
  };
  std::thread first(waiter, std::ref(seen[0]));
  std::thread second(waiter, std::ref(seen[1]));
  first.join();
  second.join();
  CHECK(r.source.registrations_made() == 64);
  for (std::size_t i = 0; i < 64; ++i) CHECK(seen[0][i] == seen[1][i]);
  t.signal(64);
  REQUIRE(run_until(r.ctx, [&] { return r.source.live_registrations() == 0; }));
  for (const auto& f : seen[0]) CHECK_FALSE(f.error());
}

TEST_CASE("8192 points in flight at once all signal through the reactor", "[drm][fence_source][scale]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  constexpr std::uint64_t count = 8192;
  REQUIRE(raise_fd_limit(count + 512) >= count + 256);  // one eventfd per registration
  rig r(dev);
  auto t = timeline_syncobj::create(dev);
  std::vector<fence> points;
  points.reserve(count);
  for (std::uint64_t p = 1; p <= count; ++p) points.push_back(r.source.wait(t, p));
  CHECK(r.source.live_registrations() == count);
  REQUIRE(run_until(r.ctx, [&] { return r.events.pending() == count; }));

  t.signal(count / 2);
  REQUIRE(run_until(r.ctx, [&] { return points[count / 2 - 1].signalled(); }));
  REQUIRE(run_until(r.ctx, [&] { return r.source.live_registrations() == count / 2; }));
  std::size_t early = 0, failed = 0;
  for (std::uint64_t i = 0; i < count; ++i) {
    if (points[i].signalled() != (i < count / 2)) ++early;
    if (points[i].signalled() && points[i].error()) ++failed;
  }
  CHECK(early == 0);
  t.signal(count);
  REQUIRE(run_until(r.ctx, [&] { return r.source.live_registrations() == 0; }));
  for (const auto& f : points) {
    if (!f.signalled() || f.error()) ++failed;
  }
  CHECK(failed == 0);
  CHECK(r.events.pending() == 0);
}

TEST_CASE("running out of file descriptors is an error naming the fd limit", "[drm][fence_source][limits]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto t = timeline_syncobj::create(dev);
  rlimit saved{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &saved) == 0);
  // A few descriptors above the ones in use (the lowest free one is a lower bound).
  const int probe = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  REQUIRE(probe >= 0);
  ::close(probe);
  rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(probe) + 8;
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &low) == 0);
  std::vector<fence> made;
  std::system_error error(std::error_code{});
  try {
    for (std::uint64_t p = 1; p <= 4096; ++p) made.push_back(r.source.wait(t, p));
  } catch (const std::system_error& e) {
    error = e;
  }
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &saved) == 0);
  CHECK(error.code() == std::error_code(EMFILE, std::generic_category()));
  CHECK_THAT(error.what(), contains("out of file descriptors"));
  CHECK_THAT(error.what(), contains("RLIMIT_NOFILE soft limit " + std::to_string(low.rlim_cur)));
  CHECK_FALSE(made.empty());
  CHECK(made.size() < 4096);
  t.signal(4096);
  REQUIRE(run_until(r.ctx, [&] { return r.source.live_registrations() == 0; }));
  for (const auto& f : made) CHECK_FALSE(f.error());
}

TEST_CASE("a fence's error comes from its sync_file status (injected here)", "[drm][fence_source][errors]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  std::atomic<int> queried{0};
  rig r(dev, {.sync_file_status = [&](int fd) {
          // The real status of the exported point, then the injected error.
          // relaxed: a counter read after the run, on this thread.
          if (drm::sync_file_status(fd) == 1) queried.fetch_add(1, std::memory_order_relaxed);
          return -EIO;
        }});
  auto t = timeline_syncobj::create(dev);
  t.signal(2);
  auto b = binary_syncobj::create(dev, true);
  const auto file = b.export_sync_file();
  const fence point = r.source.wait(t, 2);
  const fence binary = r.source.wait(b);
  const fence polled = r.source.wait_sync_file(file.get());
  const fence available = r.source.wait(t, 2, wait_mode::available);  // no status for availability
  REQUIRE(run_until(r.ctx, [&] {
    return point.signalled() && binary.signalled() && polled.signalled() && available.signalled();
  }));
  CHECK(point.error() == eio);
  CHECK(error_name(point.error()) == "EIO");
  CHECK(binary.error() == eio);
  CHECK(polled.error() == eio);
  CHECK_FALSE(available.error());
  CHECK(queried.load(std::memory_order_relaxed) == 3);

  SECTION("a status query that throws fails the wait with its error") {
    rig throwing(dev, {.sync_file_status = [](int) -> int {
                   throw std::system_error(ENODEV, std::generic_category(), "injected");
                 }});
    const fence f = throwing.source.wait(t, 1);
    REQUIRE(throwing.run_until_signalled(f));
    CHECK(f.error() == std::error_code(ENODEV, std::generic_category()));
  }
  SECTION("the real status query: a signalled fence has no error") {
    rig real(dev);
    const fence f = real.source.wait(t, 2);
    REQUIRE(real.run_until_signalled(f));
    CHECK_FALSE(f.error());
  }
}

TEST_CASE("a failed kernel fence fails a job waiting for its syncobj point with its errno",
          "[drm][fence_source][job]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev, {.sync_file_status = [](int) { return -EIO; }});
  struct instant_ring final : cosched::ring<int> {
    fence run(int&) override { return fence::make_signalled(); }
    void cancel_all() noexcept override {}
  } hardware;
  scheduler<int> sched(r.ctx.get_executor(), hardware);
  auto queue = sched.make_entity();
  bool resumed = false;
  auto body = [&](fence kernel) -> job<int> {
    co_await kernel;
    resumed = true;
    co_return 0;
  };
  auto t = timeline_syncobj::create(dev);
  auto pushed = queue.push(body(r.source.wait(t, 3)));
  settle(r.ctx);
  CHECK_FALSE(pushed.finished.signalled());
  t.signal(3);
  REQUIRE(r.run_until_signalled(pushed.finished));
  CHECK_FALSE(resumed);
  CHECK(pushed.finished.error() == eio);
  auto down = sched.shutdown(std::chrono::nanoseconds(0));
  REQUIRE(r.run_until_signalled(down));
}

TEST_CASE("destroying the source fails its pending waits with broken", "[drm][fence_source]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  asio::io_context ctx(1);
  reactor events(ctx);
  auto t = timeline_syncobj::create(dev);
  fence point;
  {
    drm::fence_source source(dev, events);
    point = source.wait(t, 3);
  }
  CHECK(point.signalled());
  CHECK(point.error() == make_error_code(errc::broken));
  // The eventfd poll ends, so the reactor holds nothing of it.
  REQUIRE(run_until(ctx, [&] { return events.pending() == 0; }));
  t.signal(3);  // the kernel's registration fires into a closed eventfd, harmlessly
  settle(ctx);
  CHECK(point.error() == make_error_code(errc::broken));
}

TEST_CASE("a wait or host signal on a handle that names no syncobj fails with ENOENT",
          "[drm][fence_source][enoent]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  // A handle number that names nothing: one made and destroyed again.
  const std::uint32_t gone = raw::create(dev);
  REQUIRE(gone != 0);
  REQUIRE(raw::destroy(dev, gone) == 0);
  const std::error_code enoent(ENOENT, std::generic_category());
  auto timeline = timeline_syncobj::borrow(dev, gone);
  auto binary = binary_syncobj::borrow(dev, gone);
  const auto code_of = [](auto&& operation) {
    try {
      operation();
    } catch (const std::system_error& e) {
      return e.code();
    }
    return std::error_code();
  };
  // The kernel says ENOENT for such a handle everywhere but HANDLE_TO_FD.
  CHECK(code_of([&] { timeline.signal(1); }) == enoent);
  CHECK(code_of([&] { binary.reset(); }) == enoent);
  CHECK(code_of([&] { r.source.wait(timeline, 1); }) == enoent);
  CHECK(code_of([&] { r.source.wait(binary); }) == enoent);
  CHECK(code_of([&] { r.source.wait(binary, wait_mode::available); }) == enoent);
  CHECK(code_of([&] { r.source.host_signal(fence::make_signalled(), timeline, 1); }) == enoent);
  CHECK(code_of([&] { timeline.export_fd(); }) == enoent);
  CHECK(r.source.live_registrations() == 0);
}
