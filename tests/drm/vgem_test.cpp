// A genuinely pending kernel fence (vgem) as a cosched dependency: imported into a
// syncobj point and as a sync_file, it keeps a job waiting until vgem signals it.
#include "cosched/drm/fence_source.hpp"

#include <chrono>

#include "cosched/cosched.hpp"
#include "cosched/drm/sync_file.hpp"
#include "drm_fixture.hpp"

using namespace cosched;
using namespace cosched::drm::test;
using drm::timeline_syncobj;
using drm::wait_mode;

TEST_CASE("a vgem fence keeps a cosched job waiting until vgem signals it", "[drm][vgem][job]") {
  auto vg = vgem::open_or_skip();
  if (!vg) return;
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  struct instant_ring final : cosched::ring<int> {
    fence run(int&) override { return fence::make_signalled(); }
    void cancel_all() noexcept override {}
  } hardware;
  scheduler<int> sched(r.ctx.get_executor(), hardware);
  auto queue = sched.make_entity({.name = "after-vgem"});

  auto pending = vg->attach_fence();
  CHECK(drm::sync_file_status(pending.sync_file.get()) == 0);
  auto t = timeline_syncobj::create(dev);
  t.import_sync_file(pending.sync_file.get(), 1);
  CHECK(t.query_submitted() == 1);
  CHECK(t.query() == 0);

  const fence point = r.source.wait(t, 1);
  const fence available = r.source.wait(t, 1, wait_mode::available);
  const fence file = r.source.wait_sync_file(pending.sync_file.get());
  pending.sync_file.reset();  // the source polls its own copy
  bool resumed = false;
  auto body = [&](fence a, fence b) -> job<int> {
    co_await a;
    co_await b;
    resumed = true;
    co_return 1;
  };
  auto pushed = queue.push(body(point, file));

  // The point has a fence at once; it has not signalled.
  REQUIRE(r.run_until_signalled(available));
  CHECK_FALSE(available.error());
  settle(r.ctx);
  CHECK_FALSE(point.signalled());
  CHECK_FALSE(file.signalled());
  CHECK_FALSE(resumed);
  CHECK_FALSE(pushed.finished.signalled());

  // Deadline hints reach the pending kernel fence (6.5+ kernels take them).
  const auto soon = fence::clock::now() + std::chrono::milliseconds(2);
  CHECK(r.source.set_deadline(point, soon));
  CHECK(r.source.set_deadline(file, soon));
  CHECK(point.deadline() == soon);

  vg->signal(pending.id);
  REQUIRE(r.run_until_signalled(pushed.finished));
  CHECK(resumed);
  CHECK_FALSE(pushed.finished.error());
  CHECK_FALSE(point.error());
  CHECK_FALSE(file.error());
  CHECK(t.query() == 1);
  auto down = sched.shutdown(std::chrono::nanoseconds(0));
  REQUIRE(r.run_until_signalled(down));
}
