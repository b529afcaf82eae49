// Waits on several syncobj points at once (the kernel's TIMELINE_WAIT with WAIT_ALL
// or not) built on when_all and when_any: outcomes, the index of the first, the
// kernel deciding at once, what costs a registration, timeouts and EINVAL.
#include "cosched/drm/fence_source.hpp"

#include <chrono>
#include <vector>

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
const std::error_code eio(EIO, std::generic_category());
const std::error_code timed_out = make_error_code(errc::timed_out);
}  // namespace

TEST_CASE("wait_all signals once every point has been reached", "[drm][fence_source][wait_many]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto t = timeline_syncobj::create(dev);
  auto u = timeline_syncobj::create(dev);
  auto b = binary_syncobj::create(dev);
  const fence all = r.source.wait_all({{t, 2}, {b}, {u, 5}, {t, 2}});
  // Three distinct points without a fence: three registrations, the same point twice is one.
  CHECK(r.source.registrations_made() == 3);
  t.signal(2);
  b.signal();
  settle(r.ctx);
  CHECK_FALSE(all.signalled());
  u.signal(5);
  REQUIRE(r.run_until_signalled(all));
  CHECK_FALSE(all.error());
  CHECK_FALSE(all.cause());
  const fence none = r.source.wait_all({});
  REQUIRE(r.run_until_signalled(none));
  CHECK_FALSE(none.error());
}

TEST_CASE("wait_any signals with the first point reached and says which", "[drm][fence_source][wait_many]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto t = timeline_syncobj::create(dev);
  auto b = binary_syncobj::create(dev);
  const any_fence first = r.source.wait_any({{t, 4}, {b}, {t, 9}});
  settle(r.ctx);
  CHECK_FALSE(first.signalled());
  b.signal();
  REQUIRE(r.run_until_signalled(first.get_fence()));
  CHECK(first.index() == 1u);
  CHECK_FALSE(first.error());

  std::optional<std::pair<std::error_code, std::size_t>> seen;
  const any_fence later = r.source.wait_any({{t, 4}, {t, 9}});
  later.async_wait(r.ctx.get_executor(), [&](std::error_code ec, std::size_t i) { seen.emplace(ec, i); });
  t.signal(9);  // reaches point 4 as well: the first reached in argument order
  REQUIRE(run_until(r.ctx, [&] { return seen.has_value(); }));
  CHECK_FALSE(seen->first);
  CHECK(seen->second == 0u);
  CHECK_THROWS_AS(r.source.wait_any({}), std::invalid_argument);
}

TEST_CASE("points reached at the call are decided by the kernel at once, with no registration",
          "[drm][fence_source][wait_many][registrations]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto t = timeline_syncobj::create(dev);
  auto b = binary_syncobj::create(dev, true);
  t.signal(3);
  const any_fence first = r.source.wait_any({{t, 8}, {t, 2}, {b}});
  const fence all = r.source.wait_all({{t, 1}, {b}, {t, 3}});
  CHECK(r.source.registrations_made() == 0);
  CHECK_FALSE(first.signalled());  // on the reactor's thread, never inline
  REQUIRE(run_until(r.ctx, [&] { return first.signalled() && all.signalled(); }));
  CHECK(first.index() == 1u);  // the kernel's first_signaled
  CHECK_FALSE(first.error());
  CHECK_FALSE(all.error());
  CHECK(r.source.registrations_made() == 0);
  CHECK(r.events.pending() == 0);
}

TEST_CASE("points that hold a fence cost no registration, and once one has won, the others' polls end",
          "[drm][fence_source][wait_many][registrations][vgem]") {
  auto vg = vgem::open_or_skip();
  if (!vg) return;
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev, {.max_registrations = 1});
  auto t = timeline_syncobj::create(dev);
  auto b = binary_syncobj::create(dev);
  auto slow = vg->attach_fence();
  auto fast = vg->attach_fence();
  t.import_sync_file(slow.sync_file.get(), 1);
  b.import_sync_file(fast.sync_file.get());
  const any_fence first = r.source.wait_any({{t, 1}, {b}, {t, 2}});  // point 2: the one registration
  CHECK(r.source.registrations_made() == 1);
  const fence all = r.source.wait_all({{t, 1}, {b}});
  CHECK(r.source.registrations_made() == 1);
  // Each wait's own sync_file polls (2 + 2) and the one eventfd.
  REQUIRE(run_until(r.ctx, [&] { return r.events.pending() == 5; }));
  vg->signal(fast.id);
  REQUIRE(r.run_until_signalled(first.get_fence()));
  CHECK(first.index() == 1u);
  // wait_any's poll of its loser (point 1) ends; wait_all's poll of point 1
  // and the registration for point 2 stay.
  REQUIRE(run_until(r.ctx, [&] { return r.events.pending() == 2; }));
  CHECK_FALSE(all.signalled());
  vg->signal(slow.id);
  REQUIRE(r.run_until_signalled(all));
  CHECK_FALSE(all.error());
  t.signal(2);
  REQUIRE(run_until(r.ctx, [&] { return r.events.pending() == 0 && r.source.live_registrations() == 0; }));
}

TEST_CASE("wait_all fails with the first failed point in argument order",
          "[drm][fence_source][wait_many][errors]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  // Injected statuses, in the order they are read: the points reached at the
  // call are read in argument order, the first failure ends the reading.
  const std::error_code ebusy(EBUSY, std::generic_category());
  std::vector<int> statuses{1, -EIO, -EBUSY};
  std::size_t read = 0;
  rig r(dev, {.sync_file_status = [&](int) { return read < statuses.size() ? statuses[read++] : 1; }});
  auto t = timeline_syncobj::create(dev);
  auto b = binary_syncobj::create(dev, true);
  t.signal(2);
  const fence all = r.source.wait_all({{t, 1}, {b}, {t, 2}});
  REQUIRE(r.run_until_signalled(all));
  CHECK(all.error() == eio);
  CHECK_FALSE(all.cause());
  CHECK(read == 2);

  // Points reached later: each wait's status is its own; the first failed in
  // argument order decides, whichever completed first.
  statuses = {-EBUSY, -EBUSY};
  read = 0;
  auto u = timeline_syncobj::create(dev);
  const fence later = r.source.wait_all({{u, 1}, {u, 2}});
  u.signal(2);
  REQUIRE(r.run_until_signalled(later));
  CHECK(later.error() == ebusy);
}

TEST_CASE("wait_all and wait_any with a timeout, and not for submit",
          "[drm][fence_source][wait_many][timeout]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto t = timeline_syncobj::create(dev);
  auto b = binary_syncobj::create(dev);
  t.signal(1);
  const auto soon = fence::clock::now() + 1s;
  const fence all = r.source.wait_all({{t, 1}, {b}}, {.timeout = soon});
  const any_fence first = r.source.wait_any({{t, 5}, {b}}, {.timeout = soon});
  const fence past = r.source.wait_all({{t, 1}, {b}}, {.timeout = fence::clock::now() - 1ms});
  const fence not_submitted = r.source.wait_all({{t, 1}, {b}}, {.for_submit = false});
  const any_fence any_not_submitted = r.source.wait_any({{t, 1}, {b}}, {.for_submit = false});
  REQUIRE(run_until(r.ctx, [&] {
    return all.signalled() && first.signalled() && past.signalled() && not_submitted.signalled() &&
           any_not_submitted.signalled();
  }));
  CHECK(all.error() == timed_out);
  CHECK(first.error() == timed_out);
  CHECK(first.index() == any_fence::none);
  CHECK(past.error() == timed_out);
  CHECK(not_submitted.error() == einval);  // as the kernel: a point without a fence fails the wait
  CHECK(any_not_submitted.error() == einval);
  // Reached before its timeout: completes, and its timer ends.
  const any_fence in_time =
      r.source.wait_any({{t, 7}, {b}}, {.timeout = fence::clock::now() + std::chrono::hours(1)});
  t.signal(7);
  REQUIRE(r.run_until_signalled(in_time.get_fence()));
  CHECK(in_time.index() == 0u);
  CHECK_FALSE(in_time.error());
  b.signal();
  REQUIRE(run_until(r.ctx, [&] { return r.events.pending() == 0; }));
}
