// The wait rule against other parties: a wait waits for the fence the syncobj point
// holds at the moment of the wait, whoever replaced or reset it (a second handle, an
// exported fd in another open file, a raw ioctl on the same handle), and waits share
// a registration only while that is provably the same fence.
#include "cosched/drm/fence_source.hpp"

#include "cosched/drm/sync_file.hpp"
#include "drm_fixture.hpp"
#include "raw_syncobj.hpp"

using namespace cosched;
using namespace cosched::drm::test;
using drm::binary_syncobj;
using drm::timeline_syncobj;

namespace {

// How another party replaces the fence of a binary syncobj: reset, then the
// next frame's fence (a compositor reusing the syncobj frame after frame).
enum class replaced_by { second_handle, exported_fd_in_another_file, raw_ioctl_on_same_handle };

void replace_fence(const drm::device& dev, const binary_syncobj& b, replaced_by who, int next_sync_file) {
  switch (who) {
    case replaced_by::second_handle: {
      auto other = binary_syncobj::import_fd(dev, b.export_fd().get());
      other.reset();
      other.import_sync_file(next_sync_file);
      return;
    }
    case replaced_by::exported_fd_in_another_file: {
      const auto other_file = drm::device::open(dev.path());  // as another process would
      const std::uint32_t h = raw::fd_to_handle(other_file, b.export_fd().get());
      REQUIRE(h != 0);
      REQUIRE(raw::reset(other_file, h) == 0);
      REQUIRE(raw::import_sync_file(other_file, h, next_sync_file) == 0);
      REQUIRE(raw::destroy(other_file, h) == 0);
      return;
    }
    case replaced_by::raw_ioctl_on_same_handle:
      REQUIRE(raw::reset(dev, b.handle()) == 0);
      REQUIRE(raw::import_sync_file(dev, b.handle(), next_sync_file) == 0);
      return;
  }
}

}  // namespace

TEST_CASE("a wait waits for the fence a binary syncobj holds now, however it was replaced",
          "[drm][fence_source][wait_rule][vgem]") {
  auto vg = vgem::open_or_skip();
  if (!vg) return;
  COSCHED_DRM_TEST_DEVICE(dev);
  const auto who = GENERATE(replaced_by::second_handle, replaced_by::exported_fd_in_another_file,
                            replaced_by::raw_ioctl_on_same_handle);
  INFO("replaced by " << (who == replaced_by::second_handle ? "a second handle"
                          : who == replaced_by::exported_fd_in_another_file
                              ? "an exported fd in another file"
                              : "a raw ioctl on the same handle"));
  rig r(dev);
  auto b = binary_syncobj::create(dev);
  auto first = vg->attach_fence();
  b.import_sync_file(first.sync_file.get());
  const fence old_wait = r.source.wait(b);

  auto second = vg->attach_fence();
  replace_fence(dev, b, who, second.sync_file.get());
  const fence new_wait = r.source.wait(b);
  CHECK_FALSE(new_wait == old_wait);

  vg->signal(first.id);
  REQUIRE(r.run_until_signalled(old_wait));
  CHECK_FALSE(old_wait.error());
  settle(r.ctx);
  CHECK_FALSE(b.is_signalled());
  CHECK_FALSE(new_wait.signalled());  // it waits for the fence there at the wait, still pending

  vg->signal(second.id);
  REQUIRE(r.run_until_signalled(new_wait));
  CHECK_FALSE(new_wait.error());
  CHECK(b.is_signalled());
  CHECK(r.source.live_registrations() == 0);
}

TEST_CASE("a wait waits for the fence a timeline point holds now, after another party reset the timeline",
          "[drm][fence_source][wait_rule][vgem]") {
  auto vg = vgem::open_or_skip();
  if (!vg) return;
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto t = timeline_syncobj::create(dev);
  auto first = vg->attach_fence();
  t.import_sync_file(first.sync_file.get(), 1);
  const fence old_wait = r.source.wait(t, 1);

  // Another party (a second handle) starts the timeline again and submits point 1 anew.
  auto other = timeline_syncobj::import_fd(dev, t.export_fd().get());
  other.reset();
  auto second = vg->attach_fence();
  other.import_sync_file(second.sync_file.get(), 1);
  const fence new_wait = r.source.wait(t, 1);
  CHECK_FALSE(new_wait == old_wait);

  vg->signal(first.id);
  REQUIRE(r.run_until_signalled(old_wait));
  settle(r.ctx);
  CHECK_FALSE(t.is_signalled(1));
  CHECK_FALSE(new_wait.signalled());

  vg->signal(second.id);
  REQUIRE(r.run_until_signalled(new_wait));
  CHECK_FALSE(new_wait.error());
  CHECK(t.is_signalled(1));
}

TEST_CASE("waits for a point without a fence share a registration only while it has had none since",
          "[drm][fence_source][wait_rule][registrations][vgem]") {
  auto vg = vgem::open_or_skip();
  if (!vg) return;
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);

  SECTION("binary: a fence came and went through a second handle") {
    auto b = binary_syncobj::create(dev);
    const fence waits_for_first = r.source.wait(b);
    CHECK(r.source.wait(b) == waits_for_first);  // provably the same: no fence yet
    CHECK(r.source.registrations_made() == 1);

    auto other = binary_syncobj::import_fd(dev, b.export_fd().get());
    auto first = vg->attach_fence();
    other.import_sync_file(first.sync_file.get());  // the registration finds this fence...
    other.reset();                                  // ...and keeps it after the reset
    const fence waits_for_next = r.source.wait(b);
    CHECK_FALSE(waits_for_next == waits_for_first);
    CHECK(r.source.wait(b) == waits_for_next);
    CHECK(r.source.registrations_made() == 2);

    vg->signal(first.id);
    REQUIRE(r.run_until_signalled(waits_for_first));
    settle(r.ctx);
    CHECK_FALSE(waits_for_next.signalled());  // the syncobj holds no fence
    auto second = vg->attach_fence();
    other.import_sync_file(second.sync_file.get());
    settle(r.ctx);
    CHECK_FALSE(waits_for_next.signalled());
    vg->signal(second.id);
    REQUIRE(r.run_until_signalled(waits_for_next));
    CHECK_FALSE(waits_for_next.error());
  }
  SECTION("timeline: a point was submitted and the timeline reset through a raw ioctl") {
    auto t = timeline_syncobj::create(dev);
    const fence waits_for_first = r.source.wait(t, 2);
    auto first = vg->attach_fence();
    t.import_sync_file(first.sync_file.get(), 2);
    REQUIRE(raw::reset(dev, t.handle()) == 0);
    const fence waits_for_next = r.source.wait(t, 2);
    CHECK_FALSE(waits_for_next == waits_for_first);

    vg->signal(first.id);
    REQUIRE(r.run_until_signalled(waits_for_first));
    settle(r.ctx);
    CHECK_FALSE(waits_for_next.signalled());
    t.signal(2);
    REQUIRE(r.run_until_signalled(waits_for_next));
    CHECK_FALSE(waits_for_next.error());
  }
  REQUIRE(run_until(r.ctx, [&] { return r.source.live_registrations() == 0; }));
}

TEST_CASE("a wait for a point that holds a fence costs no registration and reads that fence's status",
          "[drm][fence_source][wait_rule][registrations][vgem]") {
  auto vg = vgem::open_or_skip();
  if (!vg) return;
  COSCHED_DRM_TEST_DEVICE(dev);
  std::atomic<int> statuses{0};
  rig r(dev, {.max_registrations = 1, .sync_file_status = [&](int fd) {
                // relaxed: a counter read after the run, on this thread.
                statuses.fetch_add(1, std::memory_order_relaxed);
                return drm::sync_file_status(fd);
              }});
  auto t = timeline_syncobj::create(dev);
  auto pending = vg->attach_fence();
  t.import_sync_file(pending.sync_file.get(), 3);
  const fence a = r.source.wait(t, 3);
  const fence b = r.source.wait(t, 2);  // a lower point: the same chain link, its own wait
  CHECK(r.source.registrations_made() == 0);
  CHECK(r.source.live_registrations() == 0);
  const fence unsubmitted = r.source.wait(t, 4);  // the one registration the bound allows
  CHECK(r.source.live_registrations() == 1);
  vg->signal(pending.id);
  REQUIRE(run_until(r.ctx, [&] { return a.signalled() && b.signalled(); }));
  CHECK_FALSE(a.error());
  CHECK_FALSE(b.error());
  CHECK(statuses.load(std::memory_order_relaxed) == 2);
  settle(r.ctx);
  CHECK_FALSE(unsubmitted.signalled());
  t.signal(4);
  REQUIRE(r.run_until_signalled(unsubmitted));
}
