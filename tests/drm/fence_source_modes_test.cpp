// The kernel's other wait modes as fences: a wait that fails at once when no fence
// has been submitted for the point (no WAIT_FOR_SUBMIT), and a wait with an absolute
// timeout that fails timed_out.
#include "cosched/drm/fence_source.hpp"

#include <chrono>
#include <thread>

#include "cosched/cosched.hpp"
#include "cosched/drm/sync_file.hpp"
#include "drm_fixture.hpp"
#include "raw_syncobj.hpp"

using namespace cosched;
using namespace cosched::drm::test;
using namespace std::chrono_literals;
using drm::binary_syncobj;
using drm::timeline_syncobj;
using drm::wait_mode;

namespace {
const std::error_code einval(EINVAL, std::generic_category());
const std::error_code timed_out = make_error_code(errc::timed_out);
}  // namespace

TEST_CASE("a wait not for submit fails at once with EINVAL when the point has no fence",
          "[drm][fence_source][wait_modes]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto t = timeline_syncobj::create(dev);
  const fence unsubmitted = r.source.wait(t, 1, {.for_submit = false});
  const fence unavailable = r.source.wait(t, 1, {.mode = wait_mode::available, .for_submit = false});
  auto b = binary_syncobj::create(dev);
  const fence empty = r.source.wait(b, {.for_submit = false});
  CHECK_FALSE(unsubmitted.signalled());  // on the reactor's thread, never inline
  REQUIRE(run_until(r.ctx,
                    [&] { return unsubmitted.signalled() && unavailable.signalled() && empty.signalled(); }));
  CHECK(unsubmitted.error() == einval);
  CHECK(unavailable.error() == einval);
  CHECK(empty.error() == einval);
  CHECK(r.source.registrations_made() == 0);
  CHECK(t.query_submitted() == 0);  // failed without any fence being submitted

  // While a wait for submission of the point is pending, it still fails at once.
  const fence waiting = r.source.wait(t, 3);
  const fence not_waiting = r.source.wait(t, 3, {.for_submit = false});
  CHECK_FALSE(not_waiting == waiting);
  REQUIRE(r.run_until_signalled(not_waiting));
  CHECK(not_waiting.error() == einval);
  CHECK_FALSE(waiting.signalled());

  // A point that has a fence is waited for as usual.
  t.signal(2);
  const fence submitted = r.source.wait(t, 2, {.for_submit = false});
  const fence available = r.source.wait(t, 2, {.mode = wait_mode::available, .for_submit = false});
  REQUIRE(run_until(r.ctx, [&] { return submitted.signalled() && available.signalled(); }));
  CHECK_FALSE(submitted.error());
  CHECK_FALSE(available.error());
  t.signal(3);
  REQUIRE(r.run_until_signalled(waiting));
  CHECK_FALSE(waiting.error());
}

TEST_CASE("a wait not for submit on a pending fence waits for it", "[drm][fence_source][wait_modes][vgem]") {
  auto vg = vgem::open_or_skip();
  if (!vg) return;
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto b = binary_syncobj::create(dev);
  auto pending = vg->attach_fence();
  b.import_sync_file(pending.sync_file.get());
  const fence f = r.source.wait(b, {.for_submit = false});
  settle(r.ctx);
  CHECK_FALSE(f.signalled());
  vg->signal(pending.id);
  REQUIRE(r.run_until_signalled(f));
  CHECK_FALSE(f.error());
}

TEST_CASE("a wait with a timeout fails timed_out when the point is not reached by then",
          "[drm][fence_source][wait_modes][timeout][vgem]") {
  auto vg = vgem::open_or_skip();
  if (!vg) return;
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto t = timeline_syncobj::create(dev);
  auto b = binary_syncobj::create(dev);
  auto pending = vg->attach_fence();
  b.import_sync_file(pending.sync_file.get());
  // Far enough for the waits below to be made before it, even in an emulated VM.
  const auto soon = fence::clock::now() + 1s;
  const fence never_submitted = r.source.wait(t, 1, {.timeout = soon});
  const fence never_signalled = r.source.wait(b, {.timeout = soon});
  const fence never_available = r.source.wait(t, 1, {.mode = wait_mode::available, .timeout = soon});
  CHECK(r.source.set_deadline(never_signalled, soon));  // the hint reaches the vgem fence behind it
  REQUIRE(run_until(r.ctx, [&] {
    return never_submitted.signalled() && never_signalled.signalled() && never_available.signalled();
  }));
  CHECK(never_submitted.error() == timed_out);
  CHECK_FALSE(never_submitted.cause());
  CHECK(never_signalled.error() == timed_out);
  CHECK(never_available.error() == timed_out);
  // The timers are gone; the registrations for point 1 stay until it is submitted.
  REQUIRE(run_until(r.ctx, [&] { return r.events.pending() == r.source.live_registrations(); }));
  CHECK(r.source.live_registrations() == 2);

  vg->signal(pending.id);
  t.signal(1);
  REQUIRE(run_until(r.ctx, [&] { return r.source.live_registrations() == 0 && r.events.pending() == 0; }));
  CHECK(never_submitted.error() == timed_out);  // signalled once, for good
  CHECK(never_signalled.error() == timed_out);
}

TEST_CASE("a wait with a timeout that the point beats completes normally and ends its timer",
          "[drm][fence_source][wait_modes][timeout]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto t = timeline_syncobj::create(dev);
  const auto later = fence::clock::now() + std::chrono::hours(1);
  const fence a = r.source.wait(t, 1, {.timeout = later});
  const fence b = r.source.wait(t, 1, {.timeout = later});
  CHECK_FALSE(a == b);                        // each wait has its own timeout...
  CHECK(r.source.registrations_made() == 1);  // ...on one shared registration
  settle(r.ctx);
  CHECK_FALSE(a.signalled());
  t.signal(1);
  REQUIRE(run_until(r.ctx, [&] { return a.signalled() && b.signalled(); }));
  CHECK_FALSE(a.error());
  CHECK_FALSE(b.error());
  REQUIRE(run_until(r.ctx, [&] { return r.events.pending() == 0; }));  // timers cancelled, fds closed

  SECTION("a job awaiting a timed wait fails timed_out") {
    struct instant_ring final : cosched::ring<int> {
      fence run(int&) override { return fence::make_signalled(); }
      void cancel_all() noexcept override {}
    } hardware;
    scheduler<int> sched(r.ctx.get_executor(), hardware);
    auto queue = sched.make_entity();
    auto body = [](fence kernel) -> job<int> {
      co_await kernel;
      co_return 0;
    };
    auto pushed = queue.push(body(r.source.wait(t, 9, {.timeout = fence::clock::now() + 10ms})));
    REQUIRE(r.run_until_signalled(pushed.finished));
    CHECK(pushed.finished.error() == timed_out);
    auto down = sched.shutdown(std::chrono::nanoseconds(0));
    REQUIRE(r.run_until_signalled(down));
  }
}

TEST_CASE("a timeout that has passed decides at once, as the kernel's wait with that timeout",
          "[drm][fence_source][wait_modes][timeout]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto t = timeline_syncobj::create(dev);
  t.signal(2);
  const auto past = fence::clock::now() - 1ms;
  const fence reached = r.source.wait(t, 2, {.timeout = past});
  const fence not_reached = r.source.wait(t, 3, {.timeout = past});
  const fence not_submitted = r.source.wait(t, 3, {.for_submit = false, .timeout = past});
  const fence available = r.source.wait(t, 1, {.mode = wait_mode::available, .timeout = past});
  CHECK(r.source.registrations_made() == 0);
  CHECK(r.source.live_registrations() == 0);
  REQUIRE(run_until(r.ctx, [&] {
    return reached.signalled() && not_reached.signalled() && not_submitted.signalled() &&
           available.signalled();
  }));
  CHECK_FALSE(reached.error());
  CHECK(not_reached.error() == timed_out);
  CHECK(not_submitted.error() == einval);
  CHECK_FALSE(available.error());
  // The kernel's own wait agrees: 0 for point 2, ETIME for point 3.
  CHECK(raw::timeline_wait(dev, t.handle(), 2, 0) == 0);
  CHECK(raw::timeline_wait(dev, t.handle(), 3, 0) == ETIME);
}

TEST_CASE("a point reached before the timeout wins even if the timer is seen first",
          "[drm][fence_source][wait_modes][timeout]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto t = timeline_syncobj::create(dev);
  // Both are reached before the reactor runs, and both timers expire before it
  // runs too: whichever completion it sees first, the kernel says reached.
  t.signal(1);
  const fence pinned = r.source.wait(t, 1, {.timeout = fence::clock::now() + 1ms});
  const fence registered = r.source.wait(t, 2, {.timeout = fence::clock::now() + 1ms});
  t.signal(2);
  std::this_thread::sleep_for(20ms);  // sets the race up; nothing is measured
  REQUIRE(run_until(r.ctx, [&] { return pinned.signalled() && registered.signalled(); }));
  CHECK_FALSE(pinned.error());
  CHECK_FALSE(registered.error());
}
