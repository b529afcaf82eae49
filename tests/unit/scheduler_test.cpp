// Scheduler and entity semantics on the virtual clock: priorities, FIFO, credits,
// dependencies, kill/close/shutdown outcomes, order of signals.
#include "cosched/scheduler.hpp"

#include <stdexcept>
#include <thread>

#include "catch.hpp"
#include "sim_fixture.hpp"

using namespace cosched;
using namespace cosched::test;
using std::chrono::nanoseconds;

TEST_CASE("strict priority between entities, push order within a priority", "[scheduler][priority]") {
  sim_fixture f(1);
  auto low = f.sched.make_entity({.prio = priority::low, .name = "low"});
  auto normal_a = f.sched.make_entity({.prio = priority::normal, .name = "a"});
  auto kernel = f.sched.make_entity({.prio = priority::kernel, .name = "kernel"});
  auto normal_b = f.sched.make_entity({.prio = priority::normal, .name = "b"});
  // All pushed at time 0; one credit, so the ring takes one at a time.
  low.push(wait_then_run({}, {100, {}, 1}));
  normal_b.push(wait_then_run({}, {100, {}, 2}));
  normal_a.push(wait_then_run({}, {100, {}, 3}));
  kernel.push(wait_then_run({}, {100, {}, 4}));
  normal_b.push(wait_then_run({}, {100, {}, 5}));
  f.run();
  // kernel first; then normal entities by the push order of their heads: b(2), a(3), b(5); low last.
  CHECK(f.run_order() == std::vector<std::uint64_t>{4, 2, 3, 5, 1});
  CHECK(f.run_at(4) == 0);
  CHECK(f.run_at(2) == 100);
  CHECK(f.run_at(1) == 400);
}

TEST_CASE("set_priority takes effect at the next selection", "[scheduler][priority]") {
  sim_fixture f(1);
  auto a = f.sched.make_entity({.prio = priority::normal});
  auto b = f.sched.make_entity({.prio = priority::normal});
  promise gate;
  a.push(wait_then_run({gate.get_fence()}, {10, {}, 1}));
  a.push(wait_then_run({}, {10, {}, 2}));
  b.push(wait_then_run({}, {10, {}, 3}));
  b.push(wait_then_run({}, {10, {}, 4}));
  f.clock.at(5, sim::phase::other, [&] {
    a.set_priority(priority::high);
    gate.set_value();
  });
  f.run();
  // At 0 only b's head is ready: 3 runs. At 5 (gate open, a is high) a outranks b.
  CHECK(a.get_priority() == priority::high);
  CHECK(f.run_order() == std::vector<std::uint64_t>{3, 1, 2, 4});
}

TEST_CASE("commands reach the ring in push order while jobs wait concurrently", "[scheduler][fifo]") {
  sim_fixture f(4);
  auto e = f.sched.make_entity();
  promise slow_dependency;
  outcome first, second;
  auto j1 = e.push(wait_then_run({slow_dependency.get_fence()}, {100, {}, 1}));
  auto j2 = e.push(wait_then_run({}, {100, {}, 2}));  // prepared at once, but behind j1
  f.observe(j1.finished, first);
  f.observe(j2.finished, second);
  f.clock.at(1000, sim::phase::other, [&] { slow_dependency.set_value(); });
  f.run();
  CHECK(f.run_order() == std::vector<std::uint64_t>{1, 2});
  CHECK(f.run_at(1) == 1000);
  CHECK(f.run_at(2) == 1000);
  CHECK(first.at == 1100);
  CHECK(second.at == 1200);
  CHECK(j1.seqno() == 1);
  CHECK(j2.seqno() == 2);
}

TEST_CASE("a head that does not fit the free credits is never skipped", "[scheduler][credits]") {
  sim_fixture f(2);
  auto big = f.sched.make_entity({.prio = priority::high});
  auto small = f.sched.make_entity({.prio = priority::low});
  big.push(wait_then_run({}, {1000, {}, 1}));
  big.push(wait_then_run({}, {1000, {}, 2}), {.credits = 2});
  small.push(wait_then_run({}, {10, {}, 3}));
  f.run();
  // 1 runs (1 credit); 2 needs 2 credits and waits; 3 (low) does not overtake it.
  CHECK(f.run_order() == std::vector<std::uint64_t>{1, 2, 3});
  CHECK(f.run_at(2) == 1000);
  CHECK(f.run_at(3) == 2000);  // 2 holds both credits until it finishes
}

TEST_CASE("credits bound the commands on the ring", "[scheduler][credits]") {
  sim_fixture f(3);
  auto e = f.sched.make_entity();
  for (std::uint64_t tag = 1; tag <= 5; ++tag) e.push(wait_then_run({}, {100, {}, tag}));
  f.run();
  // Three run at 0 (and execute one after another), two more as credits free up.
  CHECK(f.run_at(1) == 0);
  CHECK(f.run_at(2) == 0);
  CHECK(f.run_at(3) == 0);
  CHECK(f.run_at(4) == 100);
  CHECK(f.run_at(5) == 200);
}

TEST_CASE("a job costing more credits than the limit is rejected at push", "[scheduler][credits]") {
  sim_fixture f(2);
  auto e = f.sched.make_entity({.name = "gfx"});
  testing::live_counter frames;
  auto body = [](testing::probe, command cmd) -> sim_job { co_return cmd; };
  auto j = body(testing::probe(frames), command{});
  REQUIRE(frames.alive() == 1);
  try {
    e.push(std::move(j), {.credits = 3});
    FAIL("push did not throw");
  } catch (const std::invalid_argument& error) {
    CHECK(std::string(error.what()) ==
          "cosched: job costs 3 credits but the ring's credit limit is 2 (entity \"gfx\")");
  }
  // The caller still owns the job; nothing was queued.
  CHECK(j.valid());
  CHECK(frames.alive() == 1);
  CHECK_THROWS_AS(e.push(std::move(j), {.credits = 0}), std::invalid_argument);
  CHECK(j.valid());
  f.run();
  CHECK(f.ring.log().empty());
  j = {};
  CHECK(frames.alive() == 0);
}

TEST_CASE("scheduled signals when the command is run, finished after retirement", "[scheduler][fence]") {
  sim_fixture f(1);
  auto e = f.sched.make_entity();
  outcome s1, f1, s2, f2;
  auto a = e.push(wait_then_run({}, {300, {}, 1}));
  auto b = e.push(wait_then_run({}, {200, {}, 2}));
  f.observe(a.scheduled(), s1);
  f.observe(a.finished, f1);
  f.observe(b.scheduled(), s2);
  f.observe(b.finished, f2);
  f.run();
  CHECK(s1.at == 0);
  CHECK(f1.at == 300);
  CHECK(s2.at == 300);
  CHECK(f2.at == 500);
  CHECK(!f2.error);
  CHECK(a.finished.point() == fence_point{e.context(), 1});
  CHECK(b.finished.point() == fence_point{e.context(), 2});
  CHECK(a.scheduled().point().seqno == 1);
  CHECK(a.scheduled().point().context != e.context());
}

TEST_CASE("the scheduled fence is made on request, before or after its moment, and is one fence",
          "[scheduler][fence]") {
  sim_fixture f(1);
  auto up = f.sched.make_entity({.name = "upload"});
  auto e = f.sched.make_entity({.name = "draw"});
  // Runs, then fails on the hardware: scheduled succeeded all the same.
  auto u = up.push(wait_then_run({}, {100, testing::fault::error(EIO), 1}));
  // Asked for before it runs.
  auto ran = e.push(wait_then_run({}, {300, {}, 2}));
  // Never runs (its dependency fails): asked for only afterwards.
  auto unrun = e.push(wait_then_run({u.finished}, {50, {}, 3}));
  const fence early = ran.scheduled();
  CHECK_FALSE(early.signalled());
  CHECK(ran.scheduled() == early);
  outcome early_signal, ran_finished;
  f.observe(early, early_signal);
  f.observe(ran.finished, ran_finished);
  f.run();

  CHECK(f.run_order() == std::vector<std::uint64_t>{1, 2});
  CHECK(early_signal.at == 100);  // when the ring took it, after u
  CHECK_FALSE(early_signal.error);
  CHECK(ran_finished.at == 400);
  CHECK(ran.scheduled() == early);

  const fence late_ok = u.scheduled();
  CHECK(late_ok.signalled());
  CHECK_FALSE(late_ok.error());
  CHECK(u.finished.error() == std::error_code(EIO, std::generic_category()));
  CHECK(u.scheduled() == late_ok);

  const fence late_failed = unrun.scheduled();
  CHECK(late_failed.signalled());
  CHECK(late_failed.error() == std::error_code(EIO, std::generic_category()));
  CHECK(late_failed.cause() == u.finished.point());
  CHECK(unrun.finished.error() == late_failed.error());
  CHECK(unrun.scheduled() == late_failed);

  // Points: the entity's scheduled context (not its finished one), the job's seqno.
  CHECK(early.point().seqno == 1);
  CHECK(late_failed.point().seqno == 2);
  CHECK(early.point().context == late_failed.point().context);
  CHECK(early.point().context != e.context());
  CHECK(late_ok.point().context != early.point().context);
  CHECK(submitted{}.scheduled().valid() == false);
  // Only a job's finished fence has a scheduled fence.
  promise other;
  CHECK_THROWS_AS(submitted{other.get_fence()}.scheduled(), std::invalid_argument);
  CHECK_THROWS_AS(submitted{fence::stub()}.scheduled(), std::invalid_argument);
}

TEST_CASE("a failed dependency fails the job without resuming it", "[scheduler][job][dependency]") {
  sim_fixture f(2);
  auto up = f.sched.make_entity({.name = "upload"});
  auto draw = f.sched.make_entity({.name = "draw"});
  bool resumed_after_failure = false;
  auto body = [&resumed_after_failure](fence dep) -> sim_job {
    co_await dep;
    resumed_after_failure = true;
    co_return command{10, {}, 2};
  };
  auto u = up.push(wait_then_run({}, {100, testing::fault::error(EIO), 1}));
  auto d = draw.push(body(u.finished));
  outcome fd, sd;
  f.observe(d.finished, fd);
  f.observe(d.scheduled(), sd);
  f.run();
  CHECK_FALSE(resumed_after_failure);
  CHECK(fd.at == 100);
  CHECK(fd.error == std::error_code(EIO, std::generic_category()));
  CHECK(sd.error == fd.error);  // scheduled fails with the job
  REQUIRE(d.finished.cause().has_value());
  CHECK(*d.finished.cause() == u.finished.point());  // the root job
  CHECK_FALSE(u.finished.cause().has_value());       // its own failure
  CHECK(f.run_order() == std::vector<std::uint64_t>{1});
}

TEST_CASE("the cause of a chain of failed dependencies is its root", "[scheduler][dependency]") {
  sim_fixture f(3);
  auto a = f.sched.make_entity();
  auto b = f.sched.make_entity();
  auto c = f.sched.make_entity();
  auto root = a.push(wait_then_run({}, {100, testing::fault::error(ENOMEM), 1}));
  auto middle = b.push(wait_then_run({root.finished}, {100, {}, 2}));
  auto leaf = c.push(wait_then_run({middle.finished}, {100, {}, 3}));
  f.run();
  CHECK(leaf.finished.error() == std::error_code(ENOMEM, std::generic_category()));
  CHECK(leaf.finished.cause() == root.finished.point());
  CHECK(middle.finished.cause() == root.finished.point());
}

TEST_CASE("try_wait yields the error and the job goes on, fail() fails it", "[scheduler][job]") {
  sim_fixture f(2);
  auto e = f.sched.make_entity();
  std::error_code seen;
  auto tolerant = [&seen](fence dep) -> sim_job {
    seen = co_await try_wait(dep);
    co_return command{50, {}, 7};
  };
  auto failing = [](fence dep) -> sim_job {
    if (auto ec = co_await try_wait(dep)) co_return fail(make_error_code(errc::cancelled));
    co_return command{50, {}, 8};
  };
  promise p;
  auto t = e.push(tolerant(p.get_fence()));
  auto g = e.push(failing(p.get_fence()));
  f.clock.at(10, sim::phase::other, [&] { p.set_error(std::make_error_code(std::errc::io_error)); });
  f.run();
  CHECK(seen == std::make_error_code(std::errc::io_error));
  CHECK_FALSE(t.finished.error());
  CHECK(g.finished.error() == make_error_code(errc::cancelled));
  CHECK_FALSE(g.finished.cause().has_value());
  CHECK(f.run_order() == std::vector<std::uint64_t>{7});
}

TEST_CASE("a job body that throws fails the job", "[scheduler][job]") {
  sim_fixture f(1);
  auto e = f.sched.make_entity();
  auto system_error = []() -> sim_job {
    throw std::system_error(std::make_error_code(std::errc::device_or_resource_busy));
    co_return command{};
  };
  auto other = []() -> sim_job {
    throw std::runtime_error("boom");
    co_return command{};
  };
  auto a = e.push(system_error());
  auto b = e.push(other());
  f.run();
  CHECK(a.finished.error() == std::make_error_code(std::errc::device_or_resource_busy));
  CHECK(b.finished.error() == make_error_code(errc::exception));
  CHECK(f.ring.log().empty());
}

TEST_CASE("a failure before the ring signals after the entity's earlier jobs", "[scheduler][order]") {
  sim_fixture f(2);
  auto e = f.sched.make_entity();
  promise bad;
  outcome o1, o2;
  auto first = e.push(wait_then_run({}, {1000, {}, 1}));
  auto second = e.push(wait_then_run({bad.get_fence()}, {10, {}, 2}));
  f.observe(first.finished, o1);
  f.observe(second.finished, o2);
  f.clock.at(200, sim::phase::other, [&] { bad.set_error(std::make_error_code(std::errc::io_error)); });
  f.run();
  // Known at 200, signalled at 1000 when its predecessor signals.
  CHECK(o1.at == 1000);
  CHECK(o2.at == 1000);
  CHECK(o2.error == std::make_error_code(std::errc::io_error));
}

TEST_CASE("kill fails the jobs not yet run, commands on the ring finish", "[scheduler][kill]") {
  sim_fixture f(1);
  auto e = f.sched.make_entity();
  auto other = f.sched.make_entity();
  auto running = e.push(wait_then_run({}, {500, {}, 1}));
  auto queued = e.push(wait_then_run({}, {500, {}, 2}));
  promise never;
  auto waiting = e.push(wait_then_run({never.get_fence()}, {500, {}, 3}));
  auto dependent = other.push(wait_then_run({queued.finished}, {10, {}, 4}));
  outcome o1, o2, o3, o4;
  f.observe(running.finished, o1);
  f.observe(queued.finished, o2);
  f.observe(waiting.finished, o3);
  f.observe(dependent.finished, o4);
  submitted late;
  f.clock.at(100, sim::phase::kill, [&] { e.kill(); });
  f.clock.at(100, sim::phase::push, [&] { late = e.push(wait_then_run({}, {10, {}, 5})); });
  f.clock.at(700, sim::phase::other, [&] { never.set_value(); });
  f.run();
  CHECK(!o1.error);
  CHECK(o1.at == 500);
  CHECK(o2.error == make_error_code(errc::killed));
  CHECK(o2.at == 500);  // after its predecessor
  CHECK(o3.error == make_error_code(errc::killed));
  CHECK(o3.at == 700);  // killed while its body waited for `never`: signals once it has
  CHECK_FALSE(queued.finished.cause().has_value());
  // Another entity's job fails through the killed one: cause is the killed job.
  CHECK(o4.error == make_error_code(errc::killed));
  CHECK(dependent.finished.cause() == queued.finished.point());
  CHECK(late.finished.error() == make_error_code(errc::killed));
  CHECK(f.run_order() == std::vector<std::uint64_t>{1});
}

TEST_CASE("close: queued work still runs, later pushes fail cancelled", "[scheduler][close]") {
  sim_fixture f(1);
  auto e = f.sched.make_entity();
  auto a = e.push(wait_then_run({}, {100, {}, 1}));
  e.close();
  auto b = e.push(wait_then_run({}, {100, {}, 2}));
  f.run();
  CHECK_FALSE(a.finished.error());
  CHECK(a.finished.signalled());
  CHECK(b.finished.error() == make_error_code(errc::cancelled));
  CHECK(b.scheduled().error() == make_error_code(errc::cancelled));
  CHECK(f.run_order() == std::vector<std::uint64_t>{1});
}

TEST_CASE("a destroyed entity handle closes the entity, its jobs still run", "[scheduler][close]") {
  sim_fixture f(1);
  submitted a;
  {
    auto e = f.sched.make_entity();
    a = e.push(wait_then_run({}, {100, {}, 1}));
  }
  f.run();
  CHECK(a.finished.signalled());
  CHECK_FALSE(a.finished.error());
}

TEST_CASE("drain and at() signal when the timeline reaches the point", "[scheduler][timeline]") {
  sim_fixture f(1);
  auto e = f.sched.make_entity();
  auto early = e.at(2);  // before the job exists: wait-before-signal
  e.push(wait_then_run({}, {100, {}, 1}));
  e.push(wait_then_run({}, {100, testing::fault::error(EIO), 2}));
  auto drained = e.drain();
  e.push(wait_then_run({}, {100, {}, 3}));
  outcome o_early, o_drained;
  f.observe(early, o_early);
  f.observe(drained, o_drained);
  f.run();
  CHECK(o_early.at == 200);
  CHECK_FALSE(o_early.error);  // points carry no job error
  CHECK(o_drained.at == 200);
  CHECK(early.point() == fence_point{e.context(), 2});
}

TEST_CASE("a ring returning the stub fence: jobs retire at once, timelines follow within the pass",
          "[scheduler][timeline][stub]") {
  asio::io_context ctx;
  struct done_ring final : ring<command> {
    std::vector<std::uint64_t> ran;
    fence run(command& c) override {
      ran.push_back(c.tag);
      return fence::stub();
    }
    void cancel_all() noexcept override {}
  } hardware;
  scheduler<command> sched(ctx.get_executor(), hardware, {.credit_limit = 4});
  auto e = sched.make_entity();
  // Job 2 waits for the entity's own timeline to reach 1: job 1 retires in the
  // same pass, so the timeline must advance before the pass gives up.
  auto after_point = [](fence point, std::uint64_t tag) -> sim_job {
    co_await point;
    co_return command{0, {}, tag};
  };
  auto first = e.push(wait_then_run({}, {0, {}, 1}));
  auto second = e.push(after_point(e.at(1), 2));
  auto third = e.push(wait_then_run({second.finished}, {0, {}, 3}));
  auto drained = e.drain();
  ctx.run();  // one pass does everything: nothing else is posted
  CHECK(hardware.ran == std::vector<std::uint64_t>{1, 2, 3});
  for (auto* s : {&first, &second, &third}) {
    CHECK(s->scheduled().signalled());
    CHECK(s->finished.signalled());
    CHECK_FALSE(s->finished.error());
  }
  CHECK(drained.signalled());
  auto done = sched.shutdown(std::chrono::nanoseconds(0));
  ctx.restart();
  ctx.run();
  CHECK(done.signalled());
}

TEST_CASE("batched push keeps order and returns fences in order", "[scheduler][push]") {
  sim_fixture f(2);
  auto e = f.sched.make_entity();
  std::vector<sim_job> batch;
  for (std::uint64_t tag = 1; tag <= 4; ++tag) batch.push_back(wait_then_run({}, {10, {}, tag}));
  auto fences = e.push(std::span(batch), {.credits = 2});
  for (auto& j : batch) CHECK_FALSE(j.valid());
  f.run();
  REQUIRE(fences.size() == 4);
  for (std::size_t i = 0; i < 4; ++i) {
    CHECK(fences[i].seqno() == i + 1);
    CHECK(fences[i].finished.signalled());
  }
  CHECK(f.run_order() == std::vector<std::uint64_t>{1, 2, 3, 4});
  CHECK(f.run_at(4) == 30);  // 2 credits each: one at a time
}

TEST_CASE("shutdown fails queued and waiting jobs, cancels the ring, then completes",
          "[scheduler][shutdown]") {
  sim_fixture f(1);
  auto e = f.sched.make_entity();
  auto other = f.sched.make_entity();
  auto hung = e.push(wait_then_run({}, {100, testing::fault::hang(), 1}));
  auto queued = e.push(wait_then_run({}, {100, {}, 2}));
  promise never;
  auto waiting = other.push(wait_then_run({never.get_fence()}, {100, {}, 3}));
  f.run();
  CHECK(hung.scheduled().signalled());
  CHECK_FALSE(hung.finished.signalled());
  f.shutdown();
  CHECK(hung.finished.error() == make_error_code(errc::shutdown));
  CHECK(queued.finished.error() == make_error_code(errc::shutdown));
  CHECK(queued.scheduled().error() == make_error_code(errc::shutdown));
  CHECK(waiting.finished.error() == make_error_code(errc::shutdown));
  CHECK_FALSE(waiting.finished.cause().has_value());
  CHECK(f.ring.in_flight() == 0);
  // After shutdown a push fails at once, on the caller's thread.
  auto late = e.push(wait_then_run({}, {100, {}, 4}));
  CHECK(late.finished.error() == make_error_code(errc::shutdown));
  CHECK(late.seqno() == 3);
  CHECK(e.drain().signalled());
  // Asking again after completion gives a fence that signals through the executor.
  auto again = f.sched.shutdown(nanoseconds(0));
  f.run();
  CHECK(again.signalled());
  CHECK_FALSE(again.error());
}

TEST_CASE("shutdown waits for commands on the ring up to its bound", "[scheduler][shutdown]") {
  // Real time here: the bound is a steady-clock timer on the executor.
  asio::io_context ctx;
  struct manual_ring final : ring<command> {
    std::vector<promise> done;
    bool cancelled = false;
    fence run(command&) override {
      done.emplace_back();
      return done.back().get_fence();
    }
    void cancel_all() noexcept override { cancelled = true; }
  } hardware;
  scheduler<command> sched(ctx.get_executor(), hardware, {.credit_limit = 2});
  auto e = sched.make_entity();
  auto a = e.push(wait_then_run({}, {}));
  auto b = e.push(wait_then_run({}, {}));
  ctx.restart();
  ctx.poll();
  REQUIRE(hardware.done.size() == 2);
  auto done = sched.shutdown(std::chrono::hours(1));
  ctx.restart();
  ctx.poll();
  CHECK_FALSE(done.signalled());  // a and b are still on the ring
  hardware.done[0].set_value();
  hardware.done[1].set_error(std::make_error_code(std::errc::io_error));
  ctx.restart();
  ctx.run();  // the cancelled timer's handler runs too; nothing else is pending
  CHECK(done.signalled());
  CHECK_FALSE(hardware.cancelled);  // everything finished within the bound
  CHECK_FALSE(a.finished.error());
  CHECK(b.finished.error() == std::make_error_code(std::errc::io_error));
}
