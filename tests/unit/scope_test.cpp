// Scopes: jobs pushed through a scope join it; close, request_stop, join.
#include "cosched/scope.hpp"

#include "catch.hpp"
#include "sim_fixture.hpp"

using namespace cosched;
using namespace cosched::test;

TEST_CASE("join signals once every job that joined has retired", "[scope]") {
  sim_fixture f(1);
  auto e = f.sched.make_entity();
  testing::live_counter frames;
  auto body = [](testing::probe, sim::time_us d, std::uint64_t tag) -> sim_job {
    co_return command{d, {}, tag};
  };
  scope s;
  e.push(body(testing::probe(frames), 100, 1), {.in = &s});
  e.push(body(testing::probe(frames), 200, 2), {.in = &s});
  testing::live_counter outside_frames;
  auto outside = e.push(body(testing::probe(outside_frames), 50, 3));
  CHECK(s.active() == 2);
  auto joined = s.join();
  outcome o;
  long frames_at_join = -1;
  joined.async_wait(f.ctx.get_executor(), [&](std::error_code ec) {
    o.at = f.clock.now();
    o.error = ec;
    frames_at_join = frames.alive();
  });
  f.run();
  CHECK(o.at == 300);
  CHECK_FALSE(o.error);
  CHECK(frames_at_join == 0);
  CHECK(s.active() == 0);
  CHECK(outside.finished.signalled());
  CHECK(outside_frames.alive() == 0);
}

TEST_CASE("a closed scope refuses jobs: they fail cancelled", "[scope]") {
  sim_fixture f(1);
  auto e = f.sched.make_entity();
  scope s;
  s.close();
  auto refused = e.push(wait_then_run({}, {10, {}, 1}), {.in = &s});
  f.run();
  CHECK(refused.finished.error() == make_error_code(errc::cancelled));
  CHECK(f.ring.log().empty());
  CHECK(s.join().signalled());
}

TEST_CASE("request_stop cancels what has not reached the ring", "[scope]") {
  sim_fixture f(1);
  auto e = f.sched.make_entity();
  auto other = f.sched.make_entity();
  scope s;
  auto running = e.push(wait_then_run({}, {500, {}, 1}), {.in = &s});
  auto queued = e.push(wait_then_run({}, {500, {}, 2}), {.in = &s});
  promise never;
  auto waiting = other.push(wait_then_run({never.get_fence()}, {10, {}, 3}), {.in = &s});
  auto unrelated = other.push(wait_then_run({}, {10, {}, 4}));
  f.clock.at(100, sim::phase::other, [&] { s.request_stop(); });
  f.clock.at(800, sim::phase::other, [&] { never.set_value(); });
  auto joined = s.join();
  outcome waited;
  f.observe(waiting.finished, waited);
  f.run();
  CHECK(s.stop_requested());
  CHECK_FALSE(running.finished.error());
  CHECK(queued.finished.error() == make_error_code(errc::cancelled));
  CHECK(waiting.finished.error() == make_error_code(errc::cancelled));
  CHECK(waited.at == 800);  // cancelled at 100 while its body waited for `never`
  CHECK(joined.signalled());
  // `unrelated` is behind `waiting` on its entity but not in the scope: it runs.
  CHECK_FALSE(unrelated.finished.error());
  CHECK(f.run_order() == std::vector<std::uint64_t>{1, 4});
}
