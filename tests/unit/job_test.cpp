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
  CHECK(locals_at_run == 0);     // died at co_return, before the GPU ran the command
  CHECK(params_at_run == 1);     // the frame lives until retirement
  CHECK(params_at_signal == 0);  // destroyed before finished signalled
  CHECK(checker.all_exactly_once());
}

namespace {

// A command that counts its live copies.
struct counted_command {
  testing::probe alive;
  int value = 0;
};

}  // namespace

TEST_CASE("a job's command lives in its promise from co_return until the frame goes, once",
          "[job][lifetime]") {
  testing::live_counter commands;
  auto body = [&commands](int value) -> job<counted_command> {
    co_return counted_command{testing::probe(commands), value};
  };
  SECTION("never run: no command") {
    { auto j = body(7); }
    CHECK(commands.alive() == 0);
    CHECK(commands.created.load() == 0);
  }
  SECTION(
      "run to co_return: the command is in the promise, where the ring adapter finds it, destroyed with the "
      "frame") {
    auto handle = body(7).release();
    auto& promised = handle.promise();
    detail::job_block block(fence_point{1, 1});  // as push gives it
    promised.block = &block;
    counted_command* storage = promised.command_storage();
    CHECK(block.body == detail::body_outcome::pending);
    CHECK(commands.alive() == 0);
    handle.resume();  // no co_await: the body runs to co_return
    CHECK(block.body == detail::body_outcome::prepared);
    CHECK(commands.alive() == 1);
    CHECK(storage->value == 7);
    handle.destroy();
    CHECK(commands.alive() == 0);
  }
  SECTION("failed: no command to destroy") {
    auto failing = [&commands](bool fail) -> job<counted_command> {
      if (fail) co_return cosched::fail(make_error_code(errc::killed));
      co_return counted_command{testing::probe(commands), 1};
    };
    auto handle = failing(true).release();
    detail::job_block block(fence_point{1, 1});  // receives the failure
    handle.promise().block = &block;
    handle.resume();
    CHECK(block.body == detail::body_outcome::failed);
    CHECK(block.finished.error() == make_error_code(errc::killed));
    handle.destroy();
    CHECK(commands.created.load() == 0);
  }
}

TEST_CASE(
    "a job's waits: one signalled before is not registered, a pending one is unlinked when the frame goes",
    "[job][lifetime]") {
  sim_fixture f(1);
  auto e = f.sched.make_entity();
  promise earlier, pending;
  const fence earlier_fence = earlier.get_fence(), pending_fence = pending.get_fence();
  earlier.set_value();
  testing::live_counter frames;
  int resumed_past_pending = 0;
  auto body = [&resumed_past_pending](testing::probe, fence a, fence b) -> sim_job {
    co_await a;  // signalled: no wait
    co_await b;  // pending: the job waits here until it is killed
    ++resumed_past_pending;
    co_return command{1, {}, 1};
  };
  auto pushed = e.push(body(testing::probe(frames), earlier_fence, pending_fence));
  f.clock.at(10, sim::phase::kill, [&] { e.kill(); });
  f.run();
  CHECK(frames.alive() == 0);
  // The body's wait was unlinked with the frame; one wait is left on the
  // fence: the job's signal waits for it (fence causality).
  CHECK(pending_fence.state()->waiters.front() != nullptr);
  CHECK(detail::waiter_list::next(*pending_fence.state()->waiters.front()) == nullptr);
  CHECK_FALSE(pushed.finished.signalled());
  pending.set_value();
  f.run();
  CHECK(pushed.finished.signalled());
  CHECK(pushed.finished.error() == make_error_code(errc::killed));
  CHECK(resumed_past_pending == 0);
  CHECK(f.run_order().empty());
}

TEST_CASE("try_wait yields a failed dependency's error, whether it failed before or during the wait",
          "[job]") {
  sim_fixture f(1);
  auto e = f.sched.make_entity();
  promise before, during;
  const fence before_fence = before.get_fence(), during_fence = during.get_fence();
  before.set_error(std::make_error_code(std::errc::io_error));
  std::vector<std::error_code> seen;
  auto body = [&seen](fence a, fence b) -> sim_job {
    seen.push_back(co_await try_wait(a));  // ready at once
    seen.push_back(co_await try_wait(b));  // waited for
    co_return command{1, {}, 1};
  };
  auto pushed = e.push(body(before_fence, during_fence));
  f.clock.at(20, sim::phase::other, [&] { during.set_error(make_error_code(errc::broken)); });
  f.run();
  CHECK(seen == std::vector<std::error_code>{std::make_error_code(std::errc::io_error),
                                             make_error_code(errc::broken)});
  CHECK(pushed.finished.signalled());
  CHECK_FALSE(pushed.finished.error());
  CHECK(f.run_order() == std::vector<std::uint64_t>{1});
}
