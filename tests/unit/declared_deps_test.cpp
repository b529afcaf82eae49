// Declared dependencies (push_options::after): waited for in order before the
// body first runs; a failed one fails the job as an in-body co_await would.
#include <stdexcept>
#include <vector>

#include "catch.hpp"
#include "sim_fixture.hpp"

using namespace cosched;
using namespace cosched::test;

namespace {

/// A body that counts its runs and may await one more fence itself.
sim_job counted(testing::probe, int& runs, fence more, command cmd) {
  ++runs;
  if (more.valid()) co_await more;
  co_return cmd;
}

}  // namespace

TEST_CASE("declared dependencies are waited for in order before the body first runs", "[scheduler][after]") {
  sim_fixture f(2);
  auto e = f.sched.make_entity();
  promise first, second, in_body;
  int runs = 0;
  testing::live_counter frame;
  outcome done;
  auto j = e.push(counted(testing::probe(frame), runs, in_body.get_fence(), {10, {}, 1}),
                  {.after = {first.get_fence(), second.get_fence()}});
  f.observe(j.finished, done);
  f.clock.at(100, sim::phase::other, [&] { second.set_value(); });
  f.clock.at(150, sim::phase::other, [&] {
    CHECK(runs == 0);  // the first declared one is still pending
    first.set_value();
  });
  f.clock.at(200, sim::phase::other, [&] {
    CHECK(runs == 1);  // resumed at 150, now waiting in its body
    in_body.set_value();
  });
  f.run();
  CHECK(runs == 1);
  CHECK(done.at == 210);
  CHECK_FALSE(done.error);
  CHECK(f.run_at(1) == 200);
  CHECK(frame.alive() == 0);
}

TEST_CASE(
    "a failed declared dependency fails the job with its error and its root as cause, and the body never "
    "runs",
    "[scheduler][after]") {
  sim_fixture f(1);
  auto upstream = f.sched.make_entity({.name = "upstream"});
  auto e = f.sched.make_entity({.name = "e"});
  // The root: a job that fails EIO on the ring; a second job fails because of it.
  auto root = upstream.push(wait_then_run({}, {50, sim::fault::error(EIO), 1}));
  auto middle = upstream.push(wait_then_run({root.finished}, {50, {}, 2}));
  promise fine;
  int runs = 0;
  testing::live_counter frame;
  outcome done;
  auto j = e.push(counted(testing::probe(frame), runs, {}, {10, {}, 3}),
                  {.after = {fine.get_fence(), middle.finished}});
  f.observe(j.finished, done);
  f.clock.at(20, sim::phase::other, [&] { fine.set_value(); });
  f.run();
  CHECK(runs == 0);
  CHECK(frame.alive() == 0);
  CHECK(done.at == 50);
  CHECK(done.error == std::make_error_code(std::errc::io_error));
  REQUIRE(j.finished.cause());
  CHECK(*j.finished.cause() == root.finished.point());
  CHECK(f.run_order() == std::vector<std::uint64_t>{1});
}

TEST_CASE(
    "a batch push gives every job the declared list, and jobs killed while they wait signal once it has",
    "[scheduler][after][causality]") {
  sim_fixture f(1);
  auto e = f.sched.make_entity();
  promise gate;
  int runs = 0;
  testing::live_counter frames;
  std::vector<sim_job> batch;
  for (std::uint64_t tag = 1; tag <= 3; ++tag)
    batch.push_back(counted(testing::probe(frames), runs, {}, {10, {}, tag}));
  auto jobs = e.push(std::span(batch), {.after = {gate.get_fence()}});
  std::vector<outcome> done(3);
  for (std::size_t i = 0; i < 3; ++i) f.observe(jobs[i].finished, done[i]);
  f.clock.at(100, sim::phase::kill, [&] {
    e.kill();
    f.clock.at(101, sim::phase::other, [&] {
      CHECK(frames.alive() == 0);  // decided at 100: frames destroyed, the signals wait
      CHECK_FALSE(jobs[0].finished.signalled());
    });
  });
  f.clock.at(200, sim::phase::other, [&] { gate.set_value(); });
  f.run();
  // Killed at 100, signalled once their declared dependency has (fence causality).
  for (const auto& d : done) {
    CHECK(d.at == 200);
    CHECK(d.error == make_error_code(errc::killed));
  }
  CHECK(runs == 0);
  CHECK(frames.alive() == 0);
  CHECK(f.run_order().empty());
}

TEST_CASE("push refuses an empty declared dependency and pushes nothing", "[scheduler][after]") {
  sim_fixture f(1);
  auto e = f.sched.make_entity();
  auto job = wait_then_run({}, {10, {}, 1});
  CHECK_THROWS_AS(e.push(std::move(job), {.after = {fence{}}}), std::invalid_argument);
  CHECK(job.valid());  // left untouched
  auto pushed = e.push(std::move(job));
  CHECK(pushed.seqno() == 1);  // nothing was pushed before
  f.run();
  CHECK_FALSE(pushed.finished.error());
}

TEST_CASE("declared dependencies already signalled let the body run at once", "[scheduler][after]") {
  sim_fixture f(1);
  auto e = f.sched.make_entity();
  int runs = 0;
  testing::live_counter frame;
  auto j = e.push(counted(testing::probe(frame), runs, {}, {10, {}, 1}),
                  {.after = {fence::make_signalled(), fence::make_signalled()}});
  outcome done;
  f.observe(j.finished, done);
  f.run();
  CHECK(runs == 1);
  CHECK(done.at == 10);
  CHECK_FALSE(done.error);
}

TEST_CASE("a job in a scope waiting on its declared dependencies is cancelled by the scope's stop",
          "[scheduler][after][scope][causality]") {
  sim_fixture f(1);
  auto e = f.sched.make_entity();
  scope group;
  promise gate;
  int runs = 0;
  testing::live_counter frame;
  auto j = e.push(counted(testing::probe(frame), runs, {}, {10, {}, 1}),
                  {.in = &group, .after = {gate.get_fence()}});
  auto other = e.push(counted(testing::probe(frame), runs, {}, {10, {}, 2}));
  outcome done, next;
  f.observe(j.finished, done);
  f.observe(other.finished, next);
  f.clock.at(100, sim::phase::other, [&] { group.request_stop(); });
  f.clock.at(300, sim::phase::other, [&] { gate.set_value(); });
  f.run();
  // Cancelled at 100; its signal waits for its declared dependency, and the
  // next job's (run 100 to 110) for it, in push order.
  CHECK(done.at == 300);
  CHECK(done.error == make_error_code(errc::cancelled));
  CHECK(runs == 1);  // only the job outside the scope ran
  CHECK(f.run_at(2) == 100);
  CHECK(next.at == 300);
  CHECK_FALSE(next.error);
  CHECK(frame.alive() == 0);
  auto joined = group.join();
  f.run();
  CHECK(joined.signalled());
}

TEST_CASE(
    "pending() counts queued and in-flight jobs, and flush(bound) drains or kills what is left at the bound",
    "[scheduler][entity][flush]") {
  asio::io_context ctx;
  sim::virtual_clock clock;
  sim::virtual_timers timers(clock);
  sim::virtual_ring ring(clock);
  scheduler<command> sched(ctx.get_executor(), ring, {.credit_limit = 1, .timers = &timers});
  auto e = sched.make_entity({.name = "e"});
  auto quick = sched.make_entity({.name = "quick"});
  CHECK(e.pending().queued == 0);
  CHECK(e.pending().in_flight == 0);
  auto a = e.push(wait_then_run({}, {1000, {}, 1}));
  auto b = e.push(wait_then_run({}, {1000, {}, 2}));
  auto c = e.push(wait_then_run({}, {1000, {}, 3}));
  CHECK(e.pending().queued == 3);  // pushed, not yet taken
  auto q = quick.push(wait_then_run({}, {10, {}, 4}));
  fence flushed_quick, flushed;
  std::vector<std::pair<std::uint32_t, std::uint32_t>> seen;
  auto look = [&] { seen.emplace_back(e.pending().queued, e.pending().in_flight); };
  clock.at(500, sim::phase::other, [&] {
    look();  // a on the ring, b and c queued
    flushed = e.flush(std::chrono::microseconds(1000));
  });
  clock.at(1200, sim::phase::other, look);  // b on the ring, c queued
  clock.at(1600, sim::phase::other, look);  // killed at 1500: c decided; b still on the ring
  clock.at(2500, sim::phase::other,
           [&] { flushed_quick = quick.flush(std::chrono::microseconds(1)); });  // q ran 2000..2010
  clock.run(ctx);
  CHECK(seen == std::vector<std::pair<std::uint32_t, std::uint32_t>>{{2, 1}, {1, 1}, {0, 1}});
  CHECK_FALSE(a.finished.error());
  CHECK_FALSE(b.finished.error());  // on the ring at the bound: it finishes
  CHECK(c.finished.error() == make_error_code(errc::killed));
  REQUIRE(flushed.signalled());
  CHECK_FALSE(flushed.error());
  CHECK(e.pending().queued == 0);
  CHECK(e.pending().in_flight == 0);
  // An entity with nothing left: flush signals at once, and kills nothing.
  CHECK(flushed_quick.signalled());
  CHECK_FALSE(q.finished.error());
  auto late = quick.push(wait_then_run({}, {10, {}, 5}));
  clock.run(ctx);
  CHECK_FALSE(late.finished.error());
  auto down = sched.shutdown(std::chrono::nanoseconds(0));
  clock.run(ctx);
  CHECK(down.signalled());
}

TEST_CASE(
    "a signalled job holds no other job: a long chain of declared dependencies is let go without recursion",
    "[scheduler][after]") {
  // Each job declares the one before. Were a signalled job's block to keep its
  // declared dependencies, dropping the last handle would destroy the chain
  // recursively, a stack frame or more per job: far beyond any stack here.
  constexpr std::size_t jobs = 200'000;
  sim_fixture f(8);
  auto e = f.sched.make_entity();
  std::vector<fence> finished;
  finished.reserve(jobs);
  for (std::size_t i = 0; i < jobs; ++i) {
    std::vector<fence> after;
    if (i > 0) after.push_back(finished.back());
    finished.push_back(e.push(wait_then_run({}, {1, {}, i}), {.after = std::move(after)}).finished);
  }
  f.run();
  std::size_t ok = 0;
  for (const auto& done : finished) ok += done.signalled() && !done.error();
  CHECK(ok == jobs);
  // First first: every job but the last is then held only by the job after it,
  // were the signalled jobs to keep what they declared.
  for (auto& done : finished) done = fence();
  CHECK(f.ring.log().size() == jobs);
}

TEST_CASE(
    "more declared dependencies than fit inline are waited for in order and let go of before the body runs",
    "[scheduler][after]") {
  // Each upstream job has a deadline, so a cold record that lives as long as
  // its block: the count says when the downstream job lets go of them.
  const std::size_t before = detail::job_cold::live();
  sim_fixture f(1);
  auto up = f.sched.make_entity({.name = "up"});
  auto down = f.sched.make_entity({.name = "down"});
  std::vector<fence> deps;
  for (std::uint64_t tag = 1; tag <= 5; ++tag)
    deps.push_back(
        up.push(wait_then_run({}, {10, {}, tag}), {.deadline = std::chrono::microseconds(1000)}).finished);
  promise in_body;
  int runs = 0;
  testing::live_counter frame;
  auto j = down.push(counted(testing::probe(frame), runs, in_body.get_fence(), {10, {}, 6}), {.after = deps});
  deps.clear();  // the downstream job's references are the last ones
  CHECK(detail::job_cold::live() == before + 5);
  f.clock.at(35, sim::phase::other, [&] {
    CHECK(runs == 0);  // three of five signalled
    CHECK(detail::job_cold::live() == before + 5);
  });
  f.clock.at(100, sim::phase::other, [&] {
    CHECK(runs == 1);  // resumed at 50, now waiting in its body
    CHECK(detail::job_cold::live() == before);
    in_body.set_value();
  });
  outcome done;
  f.observe(j.finished, done);
  f.run();
  CHECK(done.at == 110);
  CHECK_FALSE(done.error);
  CHECK(f.run_order() == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6});
  CHECK(frame.alive() == 0);
}
