// The host engine: simulated commands whose completions are kernel timeline
// syncobj points, in virtual time (exactly sim::virtual_ring's timing) and in
// real time (a device thread); faults, reset, replay and late signals.
#include "cosched/drm/host_ring.hpp"

#include <cerrno>
#include <chrono>
#include <optional>
#include <stdexcept>
#include <vector>

#include <asio/io_context.hpp>

#include "cosched/sim/sim_ring.hpp"
#include "cosched/sim/virtual_clock.hpp"
#include "drm_fixture.hpp"

using namespace cosched;
using namespace cosched::drm::test;
using drm::host_ring;
using sim::command;
using sim::fault;

namespace {

const std::error_code eio(EIO, std::generic_category());
const std::error_code broken = make_error_code(errc::broken);

// Virtual time: the "scheduler's" io_context, the clock, and the reactor on an
// io_context of its own that drm::virtual_time runs.
struct virtual_rig {
  explicit virtual_rig(const drm::device& dev) : events(reactor_context), source(dev, events) {}
  asio::io_context ctx{1};
  sim::virtual_clock clock;
  asio::io_context reactor_context{1};
  reactor events;
  drm::fence_source source;
  drm::virtual_time time{clock, reactor_context};
};

// Records the virtual instant at which a fence's waiter ran, and its error.
struct observed {
  std::optional<sim::time_us> at;
  std::error_code error;
};

void watch(const fence& f, asio::io_context& ctx, const sim::virtual_clock& clock, observed& out) {
  f.async_wait(ctx.get_executor(), [&out, &clock](std::error_code ec) {
    out.at = clock.now();
    out.error = ec;
  });
}

bool same_record(const sim::run_record& a, const sim::run_record& b) {
  return a.tag == b.tag && a.run_at == b.run_at && a.start == b.start && a.finishes == b.finishes &&
         a.end == b.end;
}

}  // namespace

TEST_CASE("virtual_time: a completion that never comes back is reported, not waited for forever",
          "[drm][host_ring][virtual]") {
  // No device needed: nothing ever signals this fence.
  sim::virtual_clock clock;
  asio::io_context reactor_context{1};
  drm::virtual_time time(clock, reactor_context, std::chrono::milliseconds(50));
  promise never;
  CHECK_THROWS_AS(time.await(never.get_fence(), "host_ring", 7), std::runtime_error);
  try {
    time.await(never.get_fence(), "host_ring", 7);
  } catch (const std::runtime_error& e) {
    CHECK_THAT(std::string(e.what()), contains("timeline point 7"));
  }
}

TEST_CASE(
    "virtual time: commands run one after another, as on sim::virtual_ring, each ending in a kernel signal",
    "[drm][host_ring][virtual]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  virtual_rig r(dev);
  host_ring ring(r.source, r.time);
  sim::virtual_clock reference_clock;
  sim::virtual_ring reference(reference_clock);

  std::vector<command> commands = {{100, fault::none(), 1}, {0, fault::none(), 2}, {50, fault::slow(70), 3}};
  std::vector<observed> seen(commands.size());
  for (std::size_t i = 0; i < commands.size(); ++i) {
    watch(ring.run(commands[i]), r.ctx, r.clock, seen[i]);
    reference.run(commands[i]);
  }
  CHECK(ring.last_point() == 3);
  CHECK(ring.timeline().query() == 0);  // nothing has executed at time 0
  CHECK_FALSE(ring.stalled());
  r.clock.run(r.ctx);

  CHECK(seen[0].at == sim::time_us{100});
  CHECK(seen[1].at == sim::time_us{100});
  CHECK(seen[2].at == sim::time_us{170});
  for (const auto& s : seen) CHECK_FALSE(s.error);
  CHECK(ring.timeline().query() == 3);  // every point was signalled in the kernel
  CHECK(r.source.registrations_made() == 3);
  CHECK(r.source.live_registrations() == 0);
  CHECK(ring.stalled());
  const auto log = ring.log();
  REQUIRE(log.size() == reference.log().size());
  for (std::size_t i = 0; i < log.size(); ++i) CHECK(same_record(log[i], reference.log()[i]));
}

TEST_CASE("virtual time: an error fault fails the ring's own fence with its errno when the point is reached",
          "[drm][host_ring][virtual]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  virtual_rig r(dev);
  host_ring ring(r.source, r.time);
  command failing{40, fault::error(EIO), 1};
  command fine{10, fault::none(), 2};
  observed first, second;
  watch(ring.run(failing), r.ctx, r.clock, first);
  watch(ring.run(fine), r.ctx, r.clock, second);
  r.clock.run(r.ctx);
  CHECK(first.at == sim::time_us{40});
  CHECK(first.error == eio);
  // The kernel point was signalled all the same (it cannot carry the error).
  CHECK(ring.timeline().is_signalled(1));
  CHECK(second.at == sim::time_us{50});
  CHECK_FALSE(second.error);
}

TEST_CASE("virtual time: a hang blocks the ring, a reset abandons its points and replays take new ones",
          "[drm][host_ring][virtual]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  virtual_rig r(dev);
  host_ring ring(r.source, r.time);
  command hung{100, fault::hang(), 1};
  command failing{10, fault::error(EIO), 2};
  command fine{20, fault::none(), 3};
  observed hung_seen, failing_seen, fine_seen;
  watch(ring.run(hung), r.ctx, r.clock, hung_seen);
  const fence failing_fence = ring.run(failing);
  watch(failing_fence, r.ctx, r.clock, failing_seen);
  watch(ring.run(fine), r.ctx, r.clock, fine_seen);
  CHECK(ring.on_timeout(hung) == timeout_verdict::hung);
  CHECK(ring.on_timeout(fine) == timeout_verdict::hung);
  command slow{10, fault::slow(500), 4};
  CHECK(ring.on_timeout(slow) == timeout_verdict::progressing);

  r.clock.run(r.ctx);
  CHECK(ring.stalled());
  CHECK_FALSE(hung_seen.at);
  CHECK_FALSE(failing_seen.at);
  CHECK_FALSE(fine_seen.at);  // nothing after a hang starts
  CHECK(ring.timeline().query() == 0);
  REQUIRE(ring.log().size() == 3);
  CHECK_FALSE(ring.log()[2].finishes);

  ring.reset();
  r.clock.run(r.ctx);
  CHECK(failing_seen.error == broken);  // the error command's own fence: dropped at the reset
  CHECK_FALSE(fine_seen.at);            // a kernel fence of an abandoned point: not waited for

  observed replayed;
  watch(ring.replay(fine), r.ctx, r.clock, replayed);
  CHECK(ring.last_point() == 4);  // a new point
  r.clock.run(r.ctx);
  CHECK(replayed.at == sim::time_us{20});
  CHECK_FALSE(replayed.error);
  CHECK(ring.timeline().query() == 4);
  // Reaching point 4 reached the abandoned points too: a late signal that
  // changes nothing for the error command's fence.
  CHECK(failing_fence.error() == broken);
}

TEST_CASE("real time: the device thread signals each point after the command's duration",
          "[drm][host_ring][real]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  host_ring ring(r.source, r.events);
  command fine{1000, fault::none(), 1};
  command failing{200, fault::error(EIO), 2};
  command slow{50, fault::slow(3000), 3};
  command quick{0, fault::none(), 4};
  const fence a = ring.run(fine), b = ring.run(failing), c = ring.run(slow), d = ring.run(quick);
  REQUIRE(run_until(r.ctx, [&] { return a.signalled() && b.signalled() && c.signalled() && d.signalled(); }));
  CHECK_FALSE(a.error());
  CHECK(b.error() == eio);
  CHECK_FALSE(c.error());
  CHECK_FALSE(d.error());
  CHECK(ring.timeline().query() == 4);
  REQUIRE(run_until(r.ctx, [&] { return ring.stalled(); }));
  const auto log = ring.log();
  REQUIRE(log.size() == 4);
  const sim::time_us durations[] = {1000, 200, 3000, 0};
  for (std::size_t i = 0; i < log.size(); ++i) {
    INFO("run " << i);
    CHECK(log[i].tag == i + 1);
    CHECK(log[i].finishes);
    CHECK(log[i].start >= log[i].run_at);
    CHECK(log[i].end >= log[i].start + durations[i]);
    if (i > 0) CHECK(log[i].start >= log[i - 1].end);  // one after another
  }
}

TEST_CASE(
    "real time: cancel_all stops a hang, the error fence fails broken and a late signal changes nothing",
    "[drm][host_ring][real]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  host_ring ring(r.source, r.events);
  command hung{0, fault::hang(), 1};
  command failing{100, fault::error(EIO), 2};
  const fence h = ring.run(hung);
  const fence e = ring.run(failing);
  REQUIRE(run_until(r.ctx, [&] { return ring.stalled(); }));  // stuck on the hang
  settle(r.ctx);
  CHECK_FALSE(h.signalled());
  CHECK_FALSE(e.signalled());

  const auto before = std::chrono::steady_clock::now();
  ring.cancel_all();
  CHECK(std::chrono::steady_clock::now() - before < std::chrono::seconds(5));  // a guard, not a measurement
  REQUIRE(run_until(r.ctx, [&] { return e.signalled(); }));
  CHECK(e.error() == broken);

  command fine{100, fault::none(), 3};
  const fence replayed = ring.replay(fine);
  CHECK(ring.last_point() == 3);
  REQUIRE(r.run_until_signalled(replayed));
  CHECK_FALSE(replayed.error());
  settle(r.ctx);
  CHECK(e.error() == broken);  // point 3 reached points 1 and 2 late: ignored
  CHECK(ring.timeline().query() == 3);
}

TEST_CASE("destroying a host ring fails its pending fences broken", "[drm][host_ring]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  SECTION("real time") {
    rig r(dev);
    std::optional<host_ring> ring(std::in_place, r.source, r.events);
    command hung{0, fault::hang(), 1};
    command failing{0, fault::error(EIO), 2};
    const fence h = ring->run(hung), e = ring->run(failing);
    settle(r.ctx);
    ring.reset();
    REQUIRE(run_until(r.ctx, [&] { return h.signalled() && e.signalled(); }));
    CHECK(h.error() == broken);
    CHECK(e.error() == broken);
  }
  SECTION("virtual time") {
    virtual_rig r(dev);
    std::optional<host_ring> ring(std::in_place, r.source, r.time);
    command hung{0, fault::hang(), 1};
    const fence h = ring->run(hung);
    r.clock.run(r.ctx);
    CHECK_FALSE(h.signalled());
    ring.reset();
    CHECK(h.error() == broken);
    CHECK(r.clock.idle());
  }
}
