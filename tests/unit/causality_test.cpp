// Fence causality: a job's finished fence never signals before its entity
// predecessor's, any of its declared dependencies, or the fence its body was
// waiting for when it failed, on every path; only after shutdown's bound do
// signals stop waiting for fences from outside the scheduler.
#include <chrono>
#include <vector>

#include "catch.hpp"
#include "sim_fixture.hpp"

using namespace cosched;
using namespace cosched::test;
using std::chrono::microseconds;

namespace {

/// A scheduler with virtual timers (timeouts and the shutdown bound in virtual time).
struct timed_fixture : virtual_run {
  explicit timed_fixture(scheduler_options options) : timers(clock), ring(clock), sched(make(options)) {}
  ~timed_fixture() {
    if (!sched.is_shut_down()) shut_down(sched);
  }
  scheduler<command> make(scheduler_options options) {
    options.timers = &timers;
    return scheduler<command>(ctx.get_executor(), ring, options);
  }
  sim::virtual_timers timers;
  sim::virtual_ring ring;
  scheduler<command> sched;
};

}  // namespace

TEST_CASE("a failed first declared dependency fails the job at once, but its signal waits for the second",
          "[scheduler][causality]") {
  sim_fixture f(2);
  auto a = f.sched.make_entity({.name = "a"});
  auto b = f.sched.make_entity({.name = "b"});
  auto c = f.sched.make_entity({.name = "c"});
  auto first = a.push(wait_then_run({}, {10, sim::fault::error(EIO), 1}));  // 0..10, fails
  auto second = b.push(wait_then_run({}, {500, {}, 2}));                    // 10..510
  auto x = c.push(wait_then_run({}, {10, {}, 3}), {.after = {first.finished, second.finished}});
  outcome o;
  f.observe(x.finished, o);
  f.run();
  CHECK(o.error == std::make_error_code(std::errc::io_error));
  REQUIRE(x.finished.cause());
  CHECK(*x.finished.cause() == first.finished.point());
  CHECK(o.at == 510);  // decided at 10, signalled once `second` has
  CHECK(f.run_order() == std::vector<std::uint64_t>{1, 2});
}

TEST_CASE("a ban does not signal the banned entity's jobs before their dependencies still on the ring",
          "[scheduler][causality][timeout]") {
  timed_fixture f({.credit_limit = 2, .timeout = microseconds(1000)});
  auto bad = f.sched.make_entity({.name = "bad"});
  auto worker = f.sched.make_entity({.name = "worker"});
  auto hung = bad.push(wait_then_run({}, {100, testing::fault::hang(), 1}));  // times out at 1000
  // Takes 3000 but reports progress (never timed out); replayed at the reset.
  auto long_job = worker.push(wait_then_run({}, {100, sim::fault::slow(3000), 2}));
  auto follower = bad.push(wait_then_run({}, {10, {}, 3}), {.after = {long_job.finished}});
  outcome o_hung, o_long, o_follower;
  f.observe(hung.finished, o_hung);
  f.observe(long_job.finished, o_long);
  f.observe(follower.finished, o_follower);
  f.run();
  CHECK(o_hung.error == make_error_code(errc::timed_out));
  CHECK(o_hung.at == 1000);
  CHECK_FALSE(o_long.error);
  CHECK(o_long.at == 4000);  // replayed at 1000, runs 3000
  CHECK(o_follower.error == make_error_code(errc::cancelled));
  CHECK(*follower.finished.cause() == hung.finished.point());
  CHECK(o_follower.at == 4000);  // banned at 1000, signalled once its dependency has
}

TEST_CASE("a ring closed by a hang (ring per entity) holds its entity's signals for their dependencies",
          "[scheduler][causality][timeout]") {
  asio::io_context ctx;
  sim::virtual_clock clock;
  sim::virtual_timers timers(clock);
  sim::virtual_ring ring_a(clock), ring_b(clock);
  scheduler<command> sched(ctx.get_executor(), {.credit_limit = 1,
                                                .mode = ring_mode::ring_per_entity,
                                                .timeout = microseconds(1000),
                                                .timers = &timers});
  auto a = sched.make_entity({.name = "a", .own_ring = &ring_a});
  auto b = sched.make_entity({.name = "b", .own_ring = &ring_b});
  auto slow = b.push(wait_then_run({}, {100, sim::fault::slow(2500), 1}));  // progresses: never timed out
  auto hung = a.push(wait_then_run({}, {100, testing::fault::hang(), 2}));
  auto after_slow = a.push(wait_then_run({}, {10, {}, 3}), {.after = {slow.finished}});
  std::optional<sim::time_us> at;
  after_slow.finished.async_wait(ctx.get_executor(), [&](std::error_code) { at = clock.now(); });
  clock.run(ctx);
  CHECK(hung.finished.error() == make_error_code(errc::timed_out));
  CHECK(after_slow.finished.error() == make_error_code(errc::cancelled));
  CHECK(at == 2500);  // its ring closed at 1000; signalled once `slow` has
  auto down = sched.shutdown(std::chrono::nanoseconds(0));
  clock.run(ctx);
  CHECK(down.signalled());
}

TEST_CASE("shutdown with chains across entities: every signal follows its dependencies",
          "[scheduler][causality]") {
  timed_fixture f({.credit_limit = 1});
  auto a = f.sched.make_entity({.name = "a"});
  auto b = f.sched.make_entity({.name = "b"});
  auto c = f.sched.make_entity({.name = "c"});
  auto a1 = a.push(wait_then_run({}, {1000, {}, 1}));
  auto b1 = b.push(wait_then_run({}, {10, {}, 2}), {.after = {a1.finished}});
  auto c1 = c.push(wait_then_run({}, {10, {}, 3}), {.after = {b1.finished}});
  outcome oa, ob, oc;
  f.observe(a1.finished, oa);
  f.observe(b1.finished, ob);
  f.observe(c1.finished, oc);
  fence down;
  f.clock.at(100, sim::phase::other, [&] { down = f.sched.shutdown(microseconds(5000)); });
  f.run();
  CHECK(down.signalled());
  CHECK_FALSE(oa.error);
  CHECK(oa.at == 1000);  // on the ring: finishes within the bound
  CHECK(ob.error == make_error_code(errc::shutdown));
  CHECK(ob.at == 1000);  // failed at 100, signalled after a1
  CHECK(oc.error == make_error_code(errc::shutdown));
  CHECK(oc.at == 1000);
}

TEST_CASE("signals held by a fence from outside the scheduler go at shutdown's bound, not before",
          "[scheduler][causality][shutdown]") {
  timed_fixture f({.credit_limit = 1});
  auto e = f.sched.make_entity();
  promise never;  // from outside the scheduler; never signalled
  auto held = e.push(wait_then_run({}, {10, {}, 1}), {.after = {never.get_fence()}});
  auto behind = e.push(wait_then_run({}, {10, {}, 2}));
  outcome o_held, o_behind;
  f.observe(held.finished, o_held);
  f.observe(behind.finished, o_behind);
  fence down;
  f.clock.at(100, sim::phase::kill, [&] { e.kill(); });
  f.clock.at(200, sim::phase::other, [&] { down = f.sched.shutdown(microseconds(300)); });
  f.run();
  CHECK(o_held.error == make_error_code(errc::killed));
  CHECK(o_held.at == 500);  // killed at 100; released at the bound (200 + 300)
  CHECK(o_behind.error == make_error_code(errc::killed));
  CHECK(o_behind.at == 500);
  CHECK(down.signalled());
}
