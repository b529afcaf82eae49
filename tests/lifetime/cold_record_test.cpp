// A job's cold record (job_cold: its scope, its deadline, the fair clock's run
// time, its causal gate) exists only for the jobs that need one, and goes with
// the job's block on every path: completion, kill, scope stop, shutdown, a
// signal that waited for fences, a push after the scheduler is gone.
#include <chrono>
#include <optional>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "sim_fixture.hpp"

using namespace cosched;
using namespace cosched::test;
using std::chrono::microseconds;

namespace {

std::size_t cold_records() { return detail::job_cold::live(); }

/// A scheduler with a policy of the test's choice on a virtual-clock sim ring,
/// whose timers (ring time, deadlines) are the virtual clock's.
struct policy_fixture : virtual_run {
  explicit policy_fixture(scheduling_policy policy, std::uint32_t credits = 1)
      : ring(clock),
        timers(clock),
        sched(ctx.get_executor(), ring, {.credit_limit = credits, .timers = &timers, .policy = policy}) {}
  ~policy_fixture() {
    if (!sched.is_shut_down()) shut_down(sched);
  }

  sim::virtual_ring ring;
  sim::virtual_timers timers;
  scheduler<command> sched;
};

bool ok(const submitted& s) { return s.finished.signalled() && !s.finished.error(); }

}  // namespace

TEST_CASE("cold record: none for a plain job, one for a deadline or a scope, gone with the block",
          "[lifetime][job_block]") {
  const std::size_t before = cold_records();
  {
    policy_fixture f(scheduling_policy::deadline);
    auto e = f.sched.make_entity();
    scope s;
    std::vector<submitted> jobs;
    jobs.push_back(e.push(wait_then_run({}, {10, {}, 1})));
    CHECK(cold_records() == before);
    jobs.push_back(e.push(wait_then_run({}, {10, {}, 2}), {.deadline = microseconds(50)}));
    jobs.push_back(e.push(wait_then_run({}, {10, {}, 3}), {.in = &s}));
    CHECK(cold_records() == before + 2);
    const fence joined = s.join();
    f.run();
    for (const auto& j : jobs) CHECK(ok(j));
    CHECK(joined.signalled());
    CHECK(f.sched.statistics().deadlines_met == 1);
    CHECK(cold_records() == before + 2);  // the finished fences held keep the blocks
    jobs.clear();
    CHECK(cold_records() == before);
  }
  CHECK(cold_records() == before);
}

TEST_CASE("cold record: jobs killed, stopped with their scope or shut down let go of theirs",
          "[lifetime][job_block]") {
  const std::size_t before = cold_records();
  {
    policy_fixture f(scheduling_policy::deadline);
    auto a = f.sched.make_entity({.name = "a"});
    auto b = f.sched.make_entity({.name = "b"});
    scope s;
    promise never;
    std::vector<submitted> jobs;
    jobs.push_back(a.push(wait_then_run({}, {100, {}, 1}), {.deadline = microseconds(1000)}));  // runs
    jobs.push_back(a.push(wait_then_run({}, {100, {}, 2}), {.deadline = microseconds(1000)}));  // killed
    jobs.push_back(b.push(wait_then_run({}, {100, {}, 3}), {.in = &s}));  // stopped with its scope
    // Its body waits for `never`: shut down, its signal waits for that fence
    // until the shutdown's bound (a gate in its cold record).
    jobs.push_back(
        b.push(wait_then_run({never.get_fence()}, {100, {}, 4}), {.deadline = microseconds(1000)}));
    CHECK(cold_records() == before + 4);
    f.clock.at(10, sim::phase::kill, [&] { a.kill(); });
    f.clock.at(20, sim::phase::other, [&] { s.request_stop(); });
    f.run();
    const fence joined = s.join();
    CHECK(joined.signalled());
    CHECK_FALSE(jobs[3].finished.signalled());
    f.shut_down(f.sched);
    CHECK(ok(jobs[0]));
    CHECK(jobs[1].finished.error() == make_error_code(errc::killed));
    CHECK(jobs[2].finished.error() == make_error_code(errc::cancelled));
    CHECK(jobs[3].finished.error() == make_error_code(errc::shutdown));
    CHECK(f.tags_of(f.ring) == std::vector<std::uint64_t>{1});
    CHECK(cold_records() == before + 4);
    jobs.clear();
    CHECK(cold_records() == before);
    never.set_value();
  }
  CHECK(cold_records() == before);
}

TEST_CASE("cold record: a job decided while its body waits gets one for its causal gate, gone with the block",
          "[lifetime][job_block][causality]") {
  const std::size_t before = cold_records();
  {
    sim_fixture f(1);
    auto e = f.sched.make_entity();
    promise later;
    auto waiting = e.push(wait_then_run({later.get_fence()}, {10, {}, 1}));
    CHECK(cold_records() == before);
    f.clock.at(10, sim::phase::kill, [&] { e.kill(); });
    f.clock.at(50, sim::phase::other, [&] {
      CHECK(cold_records() == before + 1);  // killed at 10: its signal waits for `later`
      CHECK_FALSE(waiting.finished.signalled());
      later.set_value();
    });
    f.run();
    CHECK(waiting.finished.error() == make_error_code(errc::killed));
    CHECK(cold_records() == before + 1);
    waiting = submitted{};
    CHECK(cold_records() == before);
  }
  CHECK(cold_records() == before);
}

TEST_CASE("cold record: every job of a fair scheduler on shared rings has one, none on rings of their own",
          "[lifetime][job_block][fair]") {
  const std::size_t before = cold_records();
  {
    policy_fixture f(scheduling_policy::fair, 2);
    auto a = f.sched.make_entity({.name = "a"});
    auto b = f.sched.make_entity({.prio = priority::high, .name = "b"});
    std::vector<submitted> jobs;
    for (std::uint64_t tag = 1; tag <= 3; ++tag) jobs.push_back(a.push(wait_then_run({}, {10, {}, tag})));
    for (std::uint64_t tag = 4; tag <= 5; ++tag) jobs.push_back(b.push(wait_then_run({}, {10, {}, tag})));
    CHECK(cold_records() == before + 5);
    f.run();
    for (const auto& j : jobs) CHECK(ok(j));
    jobs.clear();
    CHECK(cold_records() == before);
  }
  {
    virtual_run run;
    sim::virtual_timers timers(run.clock);
    sim::virtual_ring own(run.clock);
    scheduler<command> sched(
        run.ctx.get_executor(),
        {.mode = ring_mode::ring_per_entity, .timers = &timers, .policy = scheduling_policy::fair});
    auto e = sched.make_entity({.own_ring = &own});
    auto j = e.push(wait_then_run({}, {10, {}, 1}));
    CHECK(cold_records() == before);  // entities do not compete: no fair clock
    run.run();
    CHECK(ok(j));
    run.shut_down(sched);
  }
  CHECK(cold_records() == before);
}

TEST_CASE("cold record: a push after the scheduler is gone makes one and lets go of it with the block",
          "[lifetime][job_block]") {
  const std::size_t before = cold_records();
  std::optional<entity<command>> kept;
  {
    policy_fixture f(scheduling_policy::deadline);
    kept.emplace(f.sched.make_entity());
  }
  auto late = kept->push(wait_then_run({}, {10, {}, 1}), {.deadline = microseconds(5)});
  CHECK(late.finished.error() == make_error_code(errc::shutdown));
  CHECK(cold_records() == before + 1);
  late = submitted{};
  CHECK(cold_records() == before);
  kept.reset();
}
