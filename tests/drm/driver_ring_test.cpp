// The driver ring and its submission timeline, with a driver part whose
// "hardware" is the test itself: it signals the ring's timeline points as a
// driver would (DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL), and fails submits on demand.
#include "cosched/drm/driver_ring.hpp"

#include <cerrno>
#include <deque>
#include <memory>
#include <stdexcept>
#include <vector>

#include <asio/io_context.hpp>

#include "cosched/cosched.hpp"
#include "drm_fixture.hpp"

using namespace cosched;
using namespace cosched::drm::test;

namespace {

struct fake_command {
  int id = 0;
};

// What the fake driver was asked to do, and what its next submits answer.
struct fake_hardware {
  struct submitted {
    int id;
    drm::syncobj_point out;
    std::vector<drm::syncobj_point> in;
  };
  std::vector<submitted> log;
  std::deque<std::error_code> answers;  // empty: success
  std::vector<timeout_verdict> verdicts;
  int resets = 0;
};

struct fake_driver {
  using command_type = fake_command;
  std::shared_ptr<fake_hardware> hw;

  std::error_code submit(fake_command& c, const drm::submission& s) {
    std::error_code answer;
    if (!hw->answers.empty()) {
      answer = hw->answers.front();
      hw->answers.pop_front();
    }
    if (!answer) hw->log.push_back({c.id, s.out, {s.in.begin(), s.in.end()}});
    return answer;
  }
  timeout_verdict on_timeout(fake_command&) {
    hw->verdicts.push_back(timeout_verdict::hung);
    return timeout_verdict::hung;
  }
  void reset() { ++hw->resets; }
};

using fake_ring = drm::driver_ring<fake_driver>;

const std::error_code cancelled = make_error_code(errc::cancelled);

// The "hardware" signals a point of the ring's timeline, as a driver does.
template <class Ring>
void hardware_signals(const Ring& ring, std::uint64_t point) {
  drm::timeline_syncobj::borrow(ring.timeline().get_device(), ring.timeline().handle()).signal(point);
}

}  // namespace

TEST_CASE(
    "driver_ring: each submission gets the next point of the ring's timeline, and its fence completes when "
    "the driver signals it",
    "[drm][driver_ring]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto hw = std::make_shared<fake_hardware>();
  fake_ring ring(r.source, fake_driver{hw});
  fake_command a{1}, b{2}, c{3};
  const fence fa = ring.run(a);
  const fence fb = ring.run(b);
  const fence fc = ring.run(c);
  REQUIRE(hw->log.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(hw->log[i].id == static_cast<int>(i + 1));
    CHECK(hw->log[i].out.handle == ring.timeline().handle());
    CHECK(hw->log[i].out.point == i + 1);
    CHECK(hw->log[i].in.empty());  // in order: no in points
  }
  CHECK(ring.last_point() == 3);
  CHECK(ring.in_flight() == 3);
  settle(r.ctx);
  CHECK_FALSE(fa.signalled());
  CHECK(fa.point().seqno == 1);
  CHECK(fc.point().seqno == 3);
  // One registration serves all three pending points.
  CHECK(ring.points().registrations_made() == 1);

  hardware_signals(ring, 1);
  REQUIRE(r.run_until_signalled(fa));
  CHECK_FALSE(fa.error());
  settle(r.ctx);
  CHECK_FALSE(fb.signalled());
  CHECK(ring.in_flight() == 2);

  // Two points reached together: one wake-up completes both.
  const auto wakeups = ring.points().wakeups();
  hardware_signals(ring, 3);
  REQUIRE(r.run_until_signalled(fc));
  CHECK(fb.signalled());
  CHECK_FALSE(fb.error());
  CHECK_FALSE(fc.error());
  CHECK(ring.points().wakeups() == wakeups + 1);
  CHECK(ring.points().registrations_made() == 2);
  CHECK(ring.in_flight() == 0);
}

TEST_CASE("driver_ring: a point reached before its fence was asked for completes at once",
          "[drm][driver_ring]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto hw = std::make_shared<fake_hardware>();
  fake_ring ring(r.source, fake_driver{hw});
  hardware_signals(ring, 1);  // the "hardware" is faster than the submitter
  fake_command a{1};
  const fence fa = ring.run(a);
  CHECK_FALSE(fa.signalled());  // never inline: on the reactor's thread
  REQUIRE(r.run_until_signalled(fa));
  CHECK_FALSE(fa.error());
}

TEST_CASE(
    "driver_ring: a submit error fails that command's fence with the errno and the next command gets its "
    "point",
    "[drm][driver_ring]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto hw = std::make_shared<fake_hardware>();
  fake_ring ring(r.source, fake_driver{hw});
  hw->answers = {{}, std::error_code(EINVAL, std::generic_category())};
  fake_command a{1}, b{2}, c{3};
  const fence fa = ring.run(a);
  const fence fb = ring.run(b);
  REQUIRE(fb.signalled());
  CHECK(fb.error() == std::error_code(EINVAL, std::generic_category()));
  const fence fc = ring.run(c);
  REQUIRE(hw->log.size() == 2);
  CHECK(hw->log[1].id == 3);
  CHECK(hw->log[1].out.point == 2);  // b's point was not used
  CHECK_FALSE(ring.device_lost());
  hardware_signals(ring, 2);
  REQUIRE(r.run_until_signalled(fc));
  CHECK(fa.signalled());
  CHECK_FALSE(fa.error());
  CHECK_FALSE(fc.error());
}

TEST_CASE(
    "driver_ring: device loss fails every pending fence and every later run with the errno, without "
    "calling the driver again",
    "[drm][driver_ring]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto hw = std::make_shared<fake_hardware>();
  fake_ring ring(r.source, fake_driver{hw});
  const std::error_code gone(ENODEV, std::generic_category());
  fake_command a{1}, b{2}, c{3}, d{4};
  const fence fa = ring.run(a);
  const fence fb = ring.run(b);
  hw->answers = {gone};
  const fence fc = ring.run(c);
  // Settled at once, on the scheduler's thread: pending ones with the loss too.
  for (const fence* f : {&fa, &fb, &fc}) {
    REQUIRE(f->signalled());
    CHECK(f->error() == gone);
  }
  CHECK(ring.device_lost() == gone);
  const fence fd = ring.run(d);
  REQUIRE(fd.signalled());
  CHECK(fd.error() == gone);
  CHECK(hw->log.size() == 2);  // c failed, d never reached the driver
  // A late signal of the abandoned points changes nothing.
  hardware_signals(ring, 2);
  settle(r.ctx);
  CHECK(fa.error() == gone);
  CHECK(ring.in_flight() == 0);
}

TEST_CASE(
    "driver_ring: cancel_all settles every fence handed out as cancelled, and a late driver signal is "
    "ignored",
    "[drm][driver_ring]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto hw = std::make_shared<fake_hardware>();
  fake_ring ring(r.source, fake_driver{hw});
  fake_command a{1}, b{2}, c{3};
  const fence fa = ring.run(a);
  const fence fb = ring.run(b);
  hardware_signals(ring, 1);
  REQUIRE(r.run_until_signalled(fa));
  ring.cancel_all();
  REQUIRE(fb.signalled());
  CHECK(fb.error() == cancelled);
  CHECK_FALSE(fa.error());
  hardware_signals(ring, 2);  // the hardware finishes the cancelled work late
  settle(r.ctx);
  CHECK(fb.error() == cancelled);
  // The ring goes on: the next submission takes a higher point.
  const fence fc = ring.run(c);
  CHECK(hw->log.back().out.point == 3);
  hardware_signals(ring, 3);
  REQUIRE(r.run_until_signalled(fc));
  CHECK_FALSE(fc.error());
  // reset() settles the same way and tells the driver part.
  fake_command d{4};
  const fence fd = ring.run(d);
  ring.reset();
  REQUIRE(fd.signalled());
  CHECK(fd.error() == cancelled);
  CHECK(hw->resets == 1);
}

TEST_CASE(
    "driver_ring: a completed command is never called hung, a pending one is the driver part's to judge",
    "[drm][driver_ring]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto hw = std::make_shared<fake_hardware>();
  fake_ring ring(r.source, fake_driver{hw});
  fake_command a{1}, b{2};
  const fence fa = ring.run(a);
  ring.run(b);
  hardware_signals(ring, 1);
  REQUIRE(r.run_until_signalled(fa));
  CHECK(ring.on_timeout(a) == timeout_verdict::progressing);
  CHECK(hw->verdicts.empty());
  CHECK(ring.on_timeout(b) == timeout_verdict::hung);
  CHECK(hw->verdicts.size() == 1);
  ring.cancel_all();
}

TEST_CASE("driver_ring: on an out-of-order engine each submission waits for the previous point",
          "[drm][driver_ring]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto hw = std::make_shared<fake_hardware>();
  fake_ring ring(r.source, fake_driver{hw}, {.in_order = false});
  fake_command a{1}, b{2}, c{3};
  ring.run(a);
  ring.run(b);
  ring.run(c);
  REQUIRE(hw->log.size() == 3);
  CHECK(hw->log[0].in.empty());
  for (std::size_t i = 1; i < 3; ++i) {
    REQUIRE(hw->log[i].in.size() == 1);
    CHECK(hw->log[i].in[0].handle == ring.timeline().handle());
    CHECK(hw->log[i].in[0].point == i);
  }
  ring.cancel_all();
}

TEST_CASE("driver_ring: destroying the ring fails its pending fences broken", "[drm][driver_ring]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto hw = std::make_shared<fake_hardware>();
  fence pending;
  {
    fake_ring ring(r.source, fake_driver{hw});
    fake_command a{1};
    pending = ring.run(a);
  }
  REQUIRE(pending.signalled());
  CHECK(pending.error() == make_error_code(errc::broken));
  settle(r.ctx);  // the watch ends on the reactor's thread
  CHECK(r.events.pending() == 0);
}

TEST_CASE("driver_ring: a scheduler runs jobs on it, each finished fence signals once the driver's point has",
          "[drm][driver_ring][scheduler]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  auto hw = std::make_shared<fake_hardware>();
  fake_ring ring(r.source, fake_driver{hw});
  scheduler<fake_command> sched(r.ctx.get_executor(), ring, {.credit_limit = 4});
  auto queue = sched.make_entity();
  auto body = [](int id) -> job<fake_command> { co_return fake_command{id}; };
  std::vector<fence> done;
  for (int i = 1; i <= 6; ++i) done.push_back(queue.push(body(i)).finished);
  REQUIRE(run_until(r.ctx, [&] { return hw->log.size() == 4; }));  // the credit limit
  settle(r.ctx);
  CHECK(hw->log.size() == 4);
  CHECK_FALSE(done[0].signalled());
  hardware_signals(ring, 4);  // four commands done at once
  REQUIRE(run_until(r.ctx, [&] { return done[3].signalled() && hw->log.size() == 6; }));
  hardware_signals(ring, 6);
  REQUIRE(run_until(r.ctx, [&] { return done[5].signalled(); }));
  for (std::size_t i = 0; i < done.size(); ++i) {
    INFO("job " << i);
    CHECK_FALSE(done[i].error());
    CHECK(hw->log[i].id == static_cast<int>(i + 1));
  }
  auto stopped = sched.shutdown();
  REQUIRE(r.run_until_signalled(stopped));
}

TEST_CASE("driver_ring: a fence source on another open file of the device is refused", "[drm][driver_ring]") {
  COSCHED_DRM_TEST_DEVICE(dev);
  rig r(dev);
  struct checked_driver : fake_driver {
    drm::device on;
    const drm::device& drm_device() const noexcept { return on; }
  };
  auto other = drm::device::open(dev.path());
  auto hw = std::make_shared<fake_hardware>();
  using checked_ring = drm::driver_ring<checked_driver>;
  CHECK_THROWS_AS(checked_ring(r.source, checked_driver{{hw}, other}), std::invalid_argument);
  checked_ring same(r.source, checked_driver{{hw}, dev});
  CHECK(same.last_point() == 0);
}
