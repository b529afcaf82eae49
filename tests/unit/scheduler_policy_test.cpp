// Scheduling policies (rr, fair, deadline) and several shared rings on the
// virtual clock: each selection rule on small cases with exact expected orders,
// placement on rings, deadline misses, and recovery and teardown with two rings.
#include "cosched/scheduler.hpp"

#include <deque>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include "catch.hpp"
#include "cosched/cosched.hpp"
#include "cosched/testing.hpp"
#include "sim_fixture.hpp"

using namespace cosched;
using namespace cosched::test;
using std::chrono::microseconds;

namespace {

/// A scheduler on `ring_count` shared virtual rings with virtual timers (the
/// clock of fair's ring time and of deadlines).
struct policy_fixture : virtual_run {
  explicit policy_fixture(scheduling_policy policy, std::uint32_t credits = 1, std::size_t ring_count = 1,
                          std::chrono::nanoseconds timeout = std::chrono::nanoseconds(0)) {
    for (std::size_t r = 0; r < ring_count; ++r) rings.emplace_back(clock);
    std::vector<ring<command>*> pointers;
    for (auto& r : rings) pointers.push_back(&r);
    sched.emplace(
        ctx.get_executor(), std::span<ring<command>* const>(pointers),
        scheduler_options{.credit_limit = credits, .timeout = timeout, .timers = &timers, .policy = policy});
  }
  ~policy_fixture() {
    if (sched && !sched->is_shut_down()) shutdown();
  }

  void shutdown() { shut_down(*sched); }

  /// Tags in run order on ring `r` (replays included).
  std::vector<std::uint64_t> run_order(std::size_t r = 0) const { return tags_of(rings[r]); }
  std::optional<sim::time_us> run_at(std::uint64_t tag, std::size_t r = 0) const {
    return run_at_of(rings[r], tag);
  }

  sim::virtual_timers timers{clock};
  std::deque<sim::virtual_ring> rings;
  std::optional<scheduler<command>> sched;
};

/// Pushes `count` jobs of `duration_us` with tags first, first + 1, ...
void push_jobs(entity<command>& e, std::uint64_t first, std::size_t count, sim::time_us duration_us) {
  for (std::size_t i = 0; i < count; ++i) e.push(wait_then_run({}, {duration_us, {}, first + i}));
}

/// What `call` throws as std::invalid_argument ("" if nothing).
template <class Call>
std::string invalid_argument_of(Call call) {
  try {
    call();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("fifo on the span constructor with one ring is the single-ring scheduler",
          "[scheduler][policy][fifo]") {
  policy_fixture f(scheduling_policy::fifo);
  auto a = f.sched->make_entity();
  auto b = f.sched->make_entity();
  push_jobs(a, 1, 3, 100);
  push_jobs(b, 11, 2, 100);
  f.run();
  CHECK(f.run_order() == std::vector<std::uint64_t>{1, 2, 3, 11, 12});
  CHECK(f.sched->policy() == scheduling_policy::fifo);
  CHECK(f.sched->ring_count() == 1);
}

TEST_CASE("rr: one command per entity per round within a priority, strict priority between priorities",
          "[scheduler][policy][rr]") {
  policy_fixture f(scheduling_policy::rr);
  auto a = f.sched->make_entity({.name = "a"});
  auto b = f.sched->make_entity({.name = "b"});
  auto c = f.sched->make_entity({.name = "c"});
  auto high = f.sched->make_entity({.prio = priority::high, .name = "high"});
  push_jobs(a, 1, 3, 100);  // a1 a2 a3 pushed first
  push_jobs(b, 11, 2, 100);
  push_jobs(c, 21, 1, 100);
  push_jobs(high, 31, 2, 100);
  f.run();
  // high (strict priority) twice, then a, b, c in rotation; never-served ties
  // go by the push order of the heads (a1 < b1 < c1).
  CHECK(f.run_order() == std::vector<std::uint64_t>{31, 32, 1, 11, 21, 2, 12, 3});
}

TEST_CASE("rr: an entity that was idle joins the rotation once, as the least recently served",
          "[scheduler][policy][rr]") {
  policy_fixture f(scheduling_policy::rr);
  auto a = f.sched->make_entity();
  auto b = f.sched->make_entity();
  auto c = f.sched->make_entity();
  push_jobs(a, 1, 4, 100);
  push_jobs(b, 11, 3, 100);
  f.clock.at(250, sim::phase::push, [&] { push_jobs(c, 21, 2, 100); });
  f.run();
  // 0: a1, 100: b1, 200: a2; c arrives at 250 never served: c1 at 300; then
  // b (served at 100) before a (200) before c (300).
  CHECK(f.run_order() == std::vector<std::uint64_t>{1, 11, 2, 21, 12, 3, 22, 13, 4});
  CHECK(f.run_at(21) == 300);
}

TEST_CASE("deadline: earliest deadline among the heads of a priority, none after some, FIFO per entity",
          "[scheduler][policy][deadline]") {
  policy_fixture f(scheduling_policy::deadline);
  auto x = f.sched->make_entity({.name = "x"});
  auto y = f.sched->make_entity({.name = "y"});
  auto z = f.sched->make_entity({.name = "z"});
  auto w = f.sched->make_entity({.name = "w"});
  auto high = f.sched->make_entity({.prio = priority::high, .name = "high"});
  x.push(wait_then_run({}, {100, {}, 1}), {.deadline = microseconds(1000)});
  x.push(wait_then_run({}, {100, {}, 2}), {.deadline = microseconds(150)});  // behind x1: only heads compete
  y.push(wait_then_run({}, {100, {}, 3}), {.deadline = microseconds(500)});
  z.push(wait_then_run({}, {100, {}, 4}));  // no deadline: after all with one
  w.push(wait_then_run({}, {100, {}, 5}), {.deadline = microseconds(500)});      // ties y1: push order
  high.push(wait_then_run({}, {100, {}, 6}), {.deadline = microseconds(5000)});  // strict priority first
  f.run();
  CHECK(f.run_order() == std::vector<std::uint64_t>{6, 3, 5, 1, 2, 4});
  // Finished at 100 (6), 200 (3), 300 (5), 400 (1), 500 (2, deadline 150: a miss).
  const auto stats = f.sched->statistics();
  CHECK(stats.deadline_misses == 1);
  CHECK(stats.deadlines_met == 4);
}

TEST_CASE("deadline misses are counted under every policy, at the finished signal",
          "[scheduler][policy][deadline]") {
  for (const auto policy : {scheduling_policy::fifo, scheduling_policy::rr, scheduling_policy::fair}) {
    policy_fixture f(policy);
    auto e = f.sched->make_entity();
    promise gate;
    std::vector<submitted> jobs;
    jobs.push_back(e.push(wait_then_run({}, {100, {}, 1}), {.deadline = microseconds(100)}));  // on time: met
    jobs.push_back(
        e.push(wait_then_run({}, {100, {}, 2}), {.deadline = microseconds(199)}));  // at 200: a miss
    // Fails at 300, when its dependency fails: a failure after the deadline is a miss too.
    jobs.push_back(e.push(wait_then_run({gate.get_fence()}, {100, {}, 3}), {.deadline = microseconds(250)}));
    f.clock.at(300, sim::phase::other, [&] { gate.set_error(make_error_code(std::errc::io_error)); });
    // Runs behind job 3, 300-400: met.
    jobs.push_back(e.push(wait_then_run({}, {100, {}, 4}), {.deadline = microseconds(400)}));
    f.run();
    CHECK(jobs[2].finished.error() == make_error_code(std::errc::io_error));
    CHECK(f.sched->statistics().deadline_misses == 2);
    CHECK(f.sched->statistics().deadlines_met == 2);
    CHECK(f.sched->now() == microseconds(400));
  }
}

TEST_CASE("fair: equal weights share ring time, whatever the job lengths", "[scheduler][policy][fair]") {
  policy_fixture f(scheduling_policy::fair);
  auto a = f.sched->make_entity({.name = "a"});
  auto b = f.sched->make_entity({.name = "b"});
  push_jobs(a, 1, 3, 300);
  push_jobs(b, 11, 6, 100);
  f.run();
  // a1 runs first (tie at 0: push order) and costs 300 us; b catches up with
  // three 100 us jobs; at equal virtual time the head pushed first goes (a2).
  CHECK(f.run_order() == std::vector<std::uint64_t>{1, 11, 12, 13, 2, 14, 15, 16, 3});
  CHECK(f.run_at(2) == 600);
  CHECK(f.run_at(3) == 1200);
}

TEST_CASE("fair: weights, not strict priority: a low entity gets one job per four of a high one",
          "[scheduler][policy][fair]") {
  policy_fixture f(scheduling_policy::fair);
  auto high = f.sched->make_entity({.prio = priority::high, .name = "high"});
  auto low = f.sched->make_entity({.prio = priority::low, .name = "low"});
  push_jobs(high, 1, 10, 100);
  push_jobs(low, 101, 4, 100);
  f.run();
  // Weights high 4, low 1: 100 us of ring time weighs 4 times more for low.
  CHECK(f.run_order() == std::vector<std::uint64_t>{1, 101, 2, 3, 4, 5, 102, 6, 7, 8, 9, 103, 10, 104});
}

TEST_CASE("fair: an entity that was idle rejoins at the floor, without a burst",
          "[scheduler][policy][fair]") {
  policy_fixture f(scheduling_policy::fair);
  auto a = f.sched->make_entity({.name = "a"});
  auto b = f.sched->make_entity({.name = "b"});
  push_jobs(a, 1, 10, 100);
  f.clock.at(450, sim::phase::push, [&] { push_jobs(b, 11, 4, 100); });
  f.run();
  // a ran alone; b does not get 450 us of ring time in a row when it arrives: it
  // starts 1 ns below a's virtual time (a5, in flight, charged), so at 500 its
  // first job goes before a6, then they alternate.
  CHECK(f.run_order() == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 11, 6, 12, 7, 13, 8, 14, 9, 10});
}

TEST_CASE("fair: jobs waiting for a dependency do not earn a burst either", "[scheduler][policy][fair]") {
  policy_fixture f(scheduling_policy::fair);
  auto a = f.sched->make_entity({.name = "a"});
  auto b = f.sched->make_entity({.name = "b"});
  promise gate;
  push_jobs(a, 1, 8, 100);
  for (std::uint64_t tag = 11; tag <= 13; ++tag) b.push(wait_then_run({gate.get_fence()}, {100, {}, tag}));
  f.clock.at(350, sim::phase::other, [&] { gate.set_value(); });
  f.run();
  // b's jobs become ready at 350, while a4 is in flight: b starts 1 ns below
  // a's virtual time, so b11 goes at 400, then they alternate.
  CHECK(f.run_order() == std::vector<std::uint64_t>{1, 2, 3, 4, 11, 5, 12, 6, 13, 7, 8});
}

TEST_CASE("several rings: least loaded ring for an entity with nothing in flight, the same ring otherwise",
          "[scheduler][policy][rings]") {
  policy_fixture f(scheduling_policy::fifo, 2, 2);
  auto a = f.sched->make_entity({.name = "a"});
  auto b = f.sched->make_entity({.name = "b"});
  auto c = f.sched->make_entity({.name = "c"});
  a.push(wait_then_run({}, {100, {}, 1}));
  b.push(wait_then_run({}, {50, {}, 2}));
  c.push(wait_then_run({}, {300, {}, 3}));
  a.push(wait_then_run({}, {100, {}, 4}));
  f.run();
  // a1 -> ring 0 (both empty: lowest index); b1 -> ring 1 (less loaded); c1 ->
  // ring 0 (a tie again); a2 must follow a1 on ring 0, which is full. At 50
  // ring 1 is free but a1 is still in flight; at 100 a has nothing in flight
  // and ring 1 (0 credits) is less loaded than ring 0 (c1): a2 moves there.
  CHECK(f.run_order(0) == std::vector<std::uint64_t>{1, 3});
  CHECK(f.run_order(1) == std::vector<std::uint64_t>{2, 4});
  CHECK(f.run_at(4, 1) == 100);
  CHECK(f.sched->ring_count() == 2);
}

TEST_CASE("several rings: a head that does not fit blocks only its ring", "[scheduler][policy][rings]") {
  policy_fixture f(scheduling_policy::fifo, 2, 2);
  auto big = f.sched->make_entity({.prio = priority::high, .name = "big"});
  auto small = f.sched->make_entity({.prio = priority::low, .name = "small"});
  big.push(wait_then_run({}, {1000, {}, 1}));
  big.push(wait_then_run({}, {1000, {}, 2}), {.credits = 2});
  small.push(wait_then_run({}, {10, {}, 3}));
  small.push(wait_then_run({}, {10, {}, 4}));
  f.run();
  // big2 waits for ring 0 (big1 in flight there); small goes to ring 1 meanwhile.
  CHECK(f.run_order(0) == std::vector<std::uint64_t>{1, 2});
  CHECK(f.run_order(1) == std::vector<std::uint64_t>{3, 4});
  CHECK(f.run_at(2, 0) == 1000);
  CHECK(f.run_at(3, 1) == 0);
}

TEST_CASE("several rings: a hang resets only its ring, the other ring's commands are not replayed",
          "[scheduler][policy][rings][timeout]") {
  policy_fixture f(scheduling_policy::fifo, 2, 2, microseconds(1000));
  auto a = f.sched->make_entity({.name = "a"});
  auto hung = f.sched->make_entity({.name = "hung"});
  auto innocent = f.sched->make_entity({.name = "innocent"});
  outcome a1, a2, h1, h2, i1;
  f.observe(a.push(wait_then_run({}, {500, {}, 1})).finished, a1);
  f.observe(a.push(wait_then_run({}, {600, {}, 2})).finished, a2);
  f.observe(hung.push(wait_then_run({}, {100, sim::fault::hang(), 3})).finished, h1);
  f.observe(innocent.push(wait_then_run({}, {300, {}, 4})).finished, i1);
  f.observe(hung.push(wait_then_run({}, {100, {}, 5})).finished, h2);
  f.run();
  // Ring 0: a1 (0-500), a2 (500-1100); ring 1: the hang, then innocent's i1
  // behind it, then h2 (credits 2). The timeout at 1000 resets ring 1 only:
  // i1 is replayed from 1000; a2, running on ring 0, finishes once, at 1100.
  CHECK(f.run_order(0) == std::vector<std::uint64_t>{1, 2});
  CHECK(f.run_order(1) == std::vector<std::uint64_t>{3, 4, 4});
  CHECK(a1.at == 500);
  CHECK(a2.at == 1100);
  CHECK(!a2.error);
  CHECK(h1.at == 1000);
  CHECK(h1.error == make_error_code(errc::timed_out));
  CHECK(h2.error == make_error_code(errc::cancelled));
  CHECK(i1.at == 1300);
  CHECK(!i1.error);
  CHECK(a.get_reset_status().kind == reset_kind::untouched);
  CHECK(innocent.get_reset_status().kind == reset_kind::innocent);
  CHECK(hung.get_reset_status().kind == reset_kind::guilty);
}

TEST_CASE("several rings: shutdown with commands on both rings destroys everything, then signals",
          "[scheduler][policy][rings][shutdown][lifetime]") {
  policy_fixture f(scheduling_policy::rr, 1, 2);
  testing::live_counter frames;
  testing::fence_checker checker;
  auto body = [](testing::probe, command cmd) -> sim_job { co_return cmd; };
  auto a = f.sched->make_entity();
  auto b = f.sched->make_entity();
  std::vector<submitted> pushed;
  for (std::uint64_t tag = 1; tag <= 4; ++tag) {
    auto& e = tag % 2 ? a : b;
    // In a statement of its own: the temporary probe is gone before push.
    auto j = body(testing::probe(frames), {tag == 1 ? sim::time_us{100} : sim::time_us{1000},
                                           tag == 2 ? sim::fault::hang() : sim::fault::none(), tag});
    pushed.push_back(e.push(std::move(j)));
    checker.watch(pushed.back().finished, "job " + std::to_string(tag));
  }
  f.clock.at(500, sim::phase::other, [&] { f.sched->shutdown(microseconds(0)); });
  f.run();
  CHECK(f.sched->is_shut_down());
  CHECK(checker.all_exactly_once());
  CHECK(frames.alive() == 0);
  CHECK(!pushed[0].finished.error());
  for (std::size_t i = 1; i < pushed.size(); ++i)
    CHECK(pushed[i].finished.error() == make_error_code(errc::shutdown));
  CHECK(f.rings[0].in_flight() == 0);
  CHECK(f.rings[1].in_flight() == 0);
  // rr: 1 on ring 0, then b's 2 (never served) on ring 1, where it hangs; 3
  // follows 1 on ring 0 at 100; 4 waits behind the hang. Shutdown at 500 fails all.
  CHECK(f.run_order(0) == std::vector<std::uint64_t>{1, 3});
  CHECK(f.run_order(1) == std::vector<std::uint64_t>{2});
}

TEST_CASE("affinity: an entity's rings, placement among them, a new set at the next placement",
          "[scheduler][policy][rings][affinity]") {
  policy_fixture f(scheduling_policy::fifo, 2, 2);
  auto a = f.sched->make_entity({.name = "a", .rings = {1}});
  auto b = f.sched->make_entity({.name = "b"});
  outcome a2;
  a.push(wait_then_run({}, {100, {}, 1}));
  b.push(wait_then_run({}, {100, {}, 2}));
  f.clock.at(50, sim::phase::kill, [&] {
    a.set_rings({0});
    f.observe(a.push(wait_then_run({}, {100, {}, 3})).finished, a2);
  });
  f.clock.at(300, sim::phase::push, [&] { a.push(wait_then_run({}, {100, {}, 4})); });
  f.run();
  // a1 goes to ring 1, a's only ring, although ring 0 is empty and lower; b1
  // to ring 0, then the less loaded. At 50 a may use ring 0 only, but a1 is
  // still on ring 1: a2 follows it there (run at 50, started at 100). At 300
  // nothing of a is in flight: a4 is placed on ring 0.
  CHECK(f.run_order(0) == std::vector<std::uint64_t>{2, 4});
  CHECK(f.run_order(1) == std::vector<std::uint64_t>{1, 3});
  CHECK(f.run_at(3, 1) == 50);
  CHECK(a2.at == 200);
  CHECK(f.run_at(4, 0) == 300);
}

TEST_CASE("affinity: a head waits for its rings while another ring is free, until set_rings",
          "[scheduler][policy][rings][affinity]") {
  policy_fixture f(scheduling_policy::fifo, 1, 2);
  auto busy = f.sched->make_entity({.name = "busy", .rings = {0}});
  auto a = f.sched->make_entity({.prio = priority::high, .name = "a", .rings = {0}});
  busy.push(wait_then_run({}, {1000, {}, 1}));
  f.clock.at(10, sim::phase::push, [&] { a.push(wait_then_run({}, {100, {}, 2})); });
  f.clock.at(400, sim::phase::kill, [&] { a.set_rings({1, 0}); });  // any order
  f.run();
  // Ring 1 stays idle until a may use it: a1 runs there at 400, not at 10.
  CHECK(f.run_order(0) == std::vector<std::uint64_t>{1});
  CHECK(f.run_order(1) == std::vector<std::uint64_t>{2});
  CHECK(f.run_at(2, 1) == 400);
}

TEST_CASE("affinity: unusable ring sets are refused at the call, naming the entity",
          "[scheduler][policy][rings][affinity]") {
  policy_fixture f(scheduling_policy::fifo, 1, 2);
  using sched_type = scheduler<command>;
  CHECK(invalid_argument_of([&] { f.sched->make_entity({.name = "x", .rings = {2}}); }) ==
        "cosched: ring 2 is out of range: the scheduler has 2 shared rings (entity \"x\")");
  const auto twice = [&] { f.sched->make_entity({.name = "x", .rings = {1, 0, 1}}); };
  CHECK(invalid_argument_of(twice) == "cosched: ring 1 is named twice (entity \"x\")");
  auto a = f.sched->make_entity({.name = "a", .rings = {1}});
  CHECK(invalid_argument_of([&] { a.set_rings({}); }) == "cosched: an empty ring set (entity \"a\")");
  const auto out_of_range = [&] { a.set_rings({0, 5}); };
  CHECK(invalid_argument_of(out_of_range) ==
        "cosched: ring 5 is out of range: the scheduler has 2 shared rings (entity \"a\")");
  CHECK(invalid_argument_of([&] { a.set_rings({0, 0}); }) == "cosched: ring 0 is named twice (entity \"a\")");
  entity<command> empty;
  CHECK(invalid_argument_of([&] { empty.set_rings({0}); }) == "cosched: set_rings on an empty entity handle");
  // A refused set changes nothing: a still runs on ring 1 only.
  a.push(wait_then_run({}, {100, {}, 1}));
  f.run();
  CHECK(f.run_order(1) == std::vector<std::uint64_t>{1});
  CHECK(f.run_order(0).empty());

  // One ring: ring 0 is the whole set.
  policy_fixture one(scheduling_policy::fifo);
  auto solo = one.sched->make_entity({.name = "solo", .rings = {0}});
  solo.set_rings({0});
  CHECK(invalid_argument_of([&] { solo.set_rings({1}); }) ==
        "cosched: ring 1 is out of range: the scheduler has 1 shared ring (entity \"solo\")");

  // ring_per_entity: every entity has its own ring; affinity means nothing there.
  virtual_run per_entity;
  sim::virtual_ring own(per_entity.clock);
  sim::virtual_timers timers(per_entity.clock);
  sched_type firmware(per_entity.ctx.get_executor(),
                      scheduler_options{.mode = ring_mode::ring_per_entity, .timers = &timers});
  CHECK(invalid_argument_of([&] { firmware.make_entity({.name = "p", .own_ring = &own, .rings = {0}}); }) ==
        "cosched: ring affinity needs shared_ring mode: in ring_per_entity mode each entity has its own ring "
        "(entity \"p\")");
  auto p = firmware.make_entity({.name = "p", .own_ring = &own});
  CHECK_THROWS_AS(p.set_rings({0}), std::invalid_argument);
  per_entity.shut_down(firmware);
}

TEST_CASE("affinity: set_rings on a killed, closed or shut-down entity changes nothing and does not throw",
          "[scheduler][policy][rings][affinity]") {
  policy_fixture f(scheduling_policy::fifo, 1, 2);
  auto closed = f.sched->make_entity({.name = "closed", .rings = {0}});
  auto killed = f.sched->make_entity({.name = "killed"});
  closed.push(wait_then_run({}, {100, {}, 1}));
  closed.push(wait_then_run({}, {100, {}, 2}));
  closed.close();
  killed.kill();
  f.clock.at(50, sim::phase::kill, [&] {
    // A closed entity's queued jobs still run: the new set applies to them.
    closed.set_rings({1});
    killed.set_rings({1});
  });
  f.run();
  // 2 waits behind 1 on ring 0 (credit limit 1) and is placed once 1 has left
  // it, at 100: on ring 1, the set of 50.
  CHECK(f.run_order(0) == std::vector<std::uint64_t>{1});
  CHECK(f.run_order(1) == std::vector<std::uint64_t>{2});
  CHECK(f.run_at(2, 1) == 100);
  f.shutdown();
  closed.set_rings({0, 1});
  killed.set_rings({0});
  CHECK_THROWS_AS(killed.set_rings({2}), std::invalid_argument);  // still checked
  f.sched.reset();                                                // the handles outlive their scheduler
  closed.set_rings({1});
  CHECK(closed.push(wait_then_run({}, {1, {}, 3})).finished.error() == make_error_code(errc::shutdown));
}

TEST_CASE("the several-ring constructor checks its rings", "[scheduler][policy][rings]") {
  asio::io_context ctx;
  std::vector<ring<command>*> none;
  CHECK_THROWS_AS(scheduler<command>(ctx.get_executor(), std::span<ring<command>* const>(none)),
                  std::invalid_argument);
  std::vector<ring<command>*> with_null{nullptr};
  CHECK_THROWS_AS(scheduler<command>(ctx.get_executor(), std::span<ring<command>* const>(with_null)),
                  std::invalid_argument);

  // A braced list of rings works too.
  sim::virtual_clock clock;
  sim::virtual_ring r0(clock), r1(clock);
  scheduler<command> sched(ctx.get_executor(), {&r0, &r1},
                           {.credit_limit = 2, .policy = scheduling_policy::rr});
  CHECK(sched.ring_count() == 2);
  CHECK(sched.policy() == scheduling_policy::rr);
  auto done = sched.shutdown(std::chrono::nanoseconds(0));
  clock.run(ctx);
  CHECK(done.signalled());
}

namespace {

/// A client of the kernel scheduler's two-client tests: each cycle pushes
/// `jobs` jobs of `job_us`, waits for the last to finish, then sleeps
/// `sleep_us`; cycles start until `until_us`. Its latency in a cycle is the
/// cycle's time minus its work (jobs x job_us).
struct sync_client {
  policy_fixture& f;
  entity<command> e;
  std::size_t jobs;
  sim::time_us job_us, sleep_us, until_us;
  std::uint64_t tag;
  sim::time_us max_latency_us = 0;
  std::size_t cycles = 0;

  void cycle() {
    const sim::time_us start = f.clock.now();
    fence last;
    for (std::size_t i = 0; i < jobs; ++i) last = e.push(wait_then_run({}, {job_us, {}, tag++})).finished;
    last.async_wait(f.ctx.get_executor(), [this, start](std::error_code) {
      ++cycles;
      max_latency_us = std::max(max_latency_us, f.clock.now() - start - jobs * job_us);
      if (f.clock.now() + sleep_us < until_us)
        f.clock.at(f.clock.now() + sleep_us, sim::phase::push, [this] { cycle(); });
    });
  }
};

/// The kernel's "very heavy and interactive" case in virtual time: a client of
/// four 50 ms jobs per cycle beside one of a 1 ms job then 9 ms of sleep, both
/// normal, for one second. Returns the interactive client's worst latency.
sim::time_us interactive_latency_beside_heavy(std::uint32_t credits) {
  policy_fixture f(scheduling_policy::fair, credits);
  sync_client heavy{f, f.sched->make_entity({.name = "heavy"}), 4, 50'000, 1, 1'000'000, 1};
  sync_client interactive{f,      f.sched->make_entity({.name = "interactive"}), 1, 1'000, 9'000, 1'000'000,
                          100'001};
  f.clock.at(0, sim::phase::push, [&] { heavy.cycle(); });
  f.clock.at(0, sim::phase::push, [&] { interactive.cycle(); });
  f.run();
  return interactive.max_latency_us;
}

}  // namespace

TEST_CASE(
    "fair: an interactive client beside a very heavy one of its priority waits for the ring's committed work "
    "only",
    "[scheduler][policy][fair]") {
  // The interactive job goes at the next free credit: it waits at most for the
  // commands already on the ring (one 50 ms job with one credit, two with two),
  // never also for a heavy job queued behind them. When it rejoined at the
  // floor itself, it lost the tie to the heavy client's older head and waited
  // one more heavy job: 91 ms and 141 ms.
  CHECK(interactive_latency_beside_heavy(1) == 50'000);
  CHECK(interactive_latency_beside_heavy(2) == 91'000);
}
