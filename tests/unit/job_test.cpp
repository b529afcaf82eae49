// The job coroutine type: laziness, ownership before push, and what the
// scheduler does with the frame.
#include "cosched/job.hpp"

#include "catch.hpp"
#include "sim_fixture.hpp"

using namespace cosched;
using namespace cosched::test;

TEST_CASE("a job is lazy: its body runs only once the scheduler takes it", "[job]") {
  sim_fixture f(1);
  auto e = f.sched.make_entity();
  int body_runs = 0;
  auto body = [&body_runs]() -> sim_job {
    ++body_runs;
    co_return command{10, {}, 1};
  };
  auto j = body();
  CHECK(body_runs == 0);
  auto pushed = e.push(std::move(j));
  CHECK_FALSE(j.valid());
  CHECK(body_runs == 0);  // push only links it; the executor runs the body
  f.run();
  CHECK(body_runs == 1);
  CHECK(pushed.finished.signalled());
}

TEST_CASE("a job destroyed before push destroys its frame", "[job][lifetime]") {
  testing::live_counter frames;
  auto body = [](testing::probe) -> sim_job { co_return command{}; };
  {
    auto j = body(testing::probe(frames));
    CHECK(frames.alive() == 1);
    auto moved = std::move(j);
    CHECK_FALSE(j.valid());
    CHECK(moved.valid());
    CHECK(frames.alive() == 1);
  }
  CHECK(frames.alive() == 0);
}

TEST_CASE("locals die at co_return, the command lives until retirement", "[job][lifetime]") {
  sim_fixture f(1);
  auto e = f.sched.make_entity();
  testing::live_counter locals, params;
  // Probes in a by-value parameter (lives in the frame) and in a local (dies at co_return).
  auto body = [&locals](testing::probe param) -> sim_job {
    testing::probe local(locals);
    (void)param;
    co_return command{100, {}, 1};
  };
  auto pushed = e.push(body(testing::probe(params)));
  long params_at_run = -1, locals_at_run = -1;
  f.clock.at(50, sim::phase::other, [&] {
    params_at_run = params.alive();
    locals_at_run = locals.alive();
  });
  testing::fence_checker checker;
  long params_at_signal = -1;
  checker.watch(pushed.finished, "job", [&] { params_at_signal = params.alive(); });
  f.run();
  CHECK(locals_at_run == 0);  // died at co_return, before the GPU ran the command
  CHECK(params_at_run == 1);  // the frame lives until retirement
  CHECK(params_at_signal == 0);  // destroyed before finished signalled
  CHECK(checker.all_exactly_once());
}
