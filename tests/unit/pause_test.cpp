// Pausing a scheduler: nothing runs or retires while the guard lives; the
// in-flight list is reachable through the guard; reset_and_replay keeps fences.
#include "cosched/pause.hpp"

#include <memory>

#include "catch.hpp"
#include "sim_fixture.hpp"

using namespace cosched;
using namespace cosched::test;

TEST_CASE("while paused nothing is run or retired, resuming continues where it stopped", "[pause]") {
  sim_fixture f(2);
  auto e = f.sched.make_entity({.name = "gfx"});
  outcome o1, o2, o3;
  auto j1 = e.push(wait_then_run({}, {100, {}, 1}));
  auto j2 = e.push(wait_then_run({}, {100, {}, 2}));
  f.observe(j1.finished, o1);
  f.observe(j2.finished, o2);
  std::unique_ptr<paused<command>> guard;
  std::vector<std::uint64_t> seen_tags, seen_attempts;
  f.clock.at(50, sim::phase::other, [&] {
    f.sched.async_pause([&](std::unique_ptr<paused<command>> granted) {
      guard = std::move(granted);
      guard->for_each_in_flight([&](in_flight_job<command>& job) {
        seen_tags.push_back(job.command.tag);
        seen_attempts.push_back(job.attempts);
        CHECK(job.entity == "gfx");
        CHECK(job.ring == 0);
      });
    });
  });
  submitted j3;
  f.clock.at(60, sim::phase::push, [&] {
    j3 = e.push(wait_then_run({}, {100, {}, 3}));
    f.observe(j3.finished, o3);
  });
  f.clock.at(300, sim::phase::other, [&] {
    REQUIRE(guard);
    CHECK(guard->in_flight() == 2);
    guard.reset();  // resume
  });
  f.run();
  CHECK(seen_tags == std::vector<std::uint64_t>{1, 2});
  CHECK(seen_attempts == std::vector<std::uint64_t>{1, 1});
  // j1 and j2 finished on the "hardware" at 100 and 200, but retire only at 300.
  CHECK(o1.at == 300);
  CHECK(o2.at == 300);
  CHECK(f.run_at(3) == 300);
  CHECK(o3.at == 400);
}

TEST_CASE("reset_and_replay through the guard replays in order with the original fences", "[pause]") {
  sim_fixture f(2);
  auto e = f.sched.make_entity();
  auto other = f.sched.make_entity();
  outcome o1, o2;
  auto j1 = e.push(wait_then_run({}, {100, {}, 1}));
  auto j2 = other.push(wait_then_run({}, {100, {}, 2}));
  f.observe(j1.finished, o1);
  f.observe(j2.finished, o2);
  f.clock.at(50, sim::phase::other, [&] {
    f.sched.async_pause([&](std::unique_ptr<paused<command>> guard) {
      guard->reset_and_replay();
      std::vector<std::uint32_t> attempts;
      guard->for_each_in_flight([&](in_flight_job<command>& job) { attempts.push_back(job.attempts); });
      CHECK(attempts == std::vector<std::uint32_t>{2, 2});
    });  // the guard dies with the handler: the scheduler resumes at once
  });
  f.run();
  CHECK(o1.at == 150);
  CHECK(o2.at == 250);
  CHECK_FALSE(o1.error);
  CHECK(f.run_order() == std::vector<std::uint64_t>{1, 2, 1, 2});
  CHECK(e.get_reset_status().kind == reset_kind::innocent);
  CHECK(e.get_reset_status().resets == 1);
}

TEST_CASE("reset_and_replay after completions arrived during the pause retires them once, in order",
          "[pause]") {
  sim_fixture f(3);
  auto e = f.sched.make_entity();
  auto other = f.sched.make_entity();
  outcome o1, o2, o3;
  auto j1 = e.push(wait_then_run({}, {100, {}, 1}));
  auto j2 = other.push(wait_then_run({}, {100, {}, 2}));
  auto j3 = e.push(wait_then_run({}, {1000, {}, 3}));
  f.observe(j1.finished, o1);
  f.observe(j2.finished, o2);
  f.observe(j3.finished, o3);
  std::unique_ptr<paused<command>> guard;
  f.clock.at(50, sim::phase::other, [&] {
    f.sched.async_pause([&](std::unique_ptr<paused<command>> granted) { guard = std::move(granted); });
  });
  // The ring runs its commands one after another: j1 and j2 finish at 100 and
  // 200, during the pause, and their completions wait in the queue; j3 is
  // still running at 250.
  f.clock.at(250, sim::phase::other, [&] {
    REQUIRE(guard);
    CHECK(guard->in_flight() == 3);
    guard->reset_and_replay();
    std::vector<std::uint32_t> attempts;
    guard->for_each_in_flight([&](in_flight_job<command>& job) { attempts.push_back(job.attempts); });
    CHECK(attempts == std::vector<std::uint32_t>{1, 1, 2});  // only j3 is replayed
    guard.reset();
  });
  f.run();
  CHECK(o1.at == 250);
  CHECK(o2.at == 250);
  CHECK(o3.at == 1250);
  CHECK_FALSE(o1.error);
  CHECK_FALSE(o2.error);
  CHECK_FALSE(o3.error);
  CHECK(f.run_order() == std::vector<std::uint64_t>{1, 2, 3, 3});
  CHECK(other.get_reset_status().kind == reset_kind::untouched);
  // Each completion was handled once: the scheduler holds no job any more.
  for (const auto* pushed : {&j1, &j2, &j3}) CHECK(pushed->finished.state()->owner->refs.load() == 1);
}

TEST_CASE("entities report guilty, innocent and untouched after a timeout reset", "[pause][timeout]") {
  asio::io_context ctx;
  sim::virtual_clock clock;
  sim::virtual_timers timers(clock);
  sim::virtual_ring ring(clock);
  scheduler<command> sched(
      ctx.get_executor(), ring,
      {.credit_limit = 3, .timeout = std::chrono::microseconds(1000), .timers = &timers});
  auto bad = sched.make_entity({.name = "bad"});
  auto good = sched.make_entity({.name = "good"});
  auto idle = sched.make_entity({.name = "idle"});
  auto hung = bad.push(wait_then_run({}, {100, testing::fault::hang(), 1}));
  auto replayed = good.push(wait_then_run({}, {100, {}, 2}));
  clock.run(ctx);
  CHECK(hung.finished.error() == make_error_code(errc::timed_out));
  CHECK_FALSE(replayed.finished.error());
  CHECK(bad.get_reset_status().kind == reset_kind::guilty);
  CHECK(good.get_reset_status().kind == reset_kind::innocent);
  CHECK(idle.get_reset_status().kind == reset_kind::untouched);
  CHECK(idle.get_reset_status().resets == 0);
  auto late = bad.push(wait_then_run({}, {100, {}, 3}));
  clock.run(ctx);
  CHECK(late.finished.error() == make_error_code(errc::cancelled));
  CHECK(late.finished.cause() == hung.finished.point());
  auto done = sched.shutdown(std::chrono::nanoseconds(0));
  clock.run(ctx);
  CHECK(done.signalled());
}
