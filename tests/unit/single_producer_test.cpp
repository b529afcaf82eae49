// scheduler_options::single_producer: pushes made on the one thread that runs
// the executor take the lock-free path and keep every rule of the default
// (order, seqnos, outcomes of close, kill and shutdown, pending counts); a push
// from a second thread terminates a build without NDEBUG with a message.
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "sim_fixture.hpp"

using namespace cosched;
using namespace cosched::test;

namespace {

/// A scheduler on a virtual ring with the producer option as given.
struct producer_fixture : virtual_run {
  explicit producer_fixture(bool single, std::uint32_t credits = 1)
      : ring(clock), sched(ctx.get_executor(), ring, {.credit_limit = credits, .single_producer = single}) {}
  ~producer_fixture() {
    if (!sched.is_shut_down()) shut_down(sched);
  }
  sim::virtual_ring ring;
  scheduler<command> sched;
};

/// A body that, when it runs, pushes `next` to `to` (a push from within the
/// scheduler's pass), then returns its command.
sim_job pushes_then_runs(entity<command>& to, command next, std::vector<submitted>& pushed, command cmd) {
  pushed.push_back(to.push(wait_then_run({}, next)));
  co_return cmd;
}

struct scenario_result {
  std::vector<std::uint64_t> run_order;
  std::vector<sim::time_us> signalled_at;
  std::vector<std::uint64_t> seqnos;
};

// Two entities, pushes before the run, from a clock callback and from a job
// body; one credit: the ring runs one command at a time.
scenario_result run_scenario(bool single) {
  producer_fixture f(single);
  auto a = f.sched.make_entity({.name = "a"});
  auto b = f.sched.make_entity({.name = "b"});
  std::vector<submitted> pushed;
  pushed.push_back(a.push(wait_then_run({}, {10, {}, 1})));
  pushed.push_back(b.push(wait_then_run({}, {10, {}, 2})));
  pushed.push_back(a.push(pushes_then_runs(b, {10, {}, 5}, pushed, {10, {}, 3})));
  f.clock.at(15, sim::phase::other, [&] {
    std::vector<job<command>> batch;
    batch.push_back(wait_then_run({}, {10, {}, 6}));
    batch.push_back(wait_then_run({}, {10, {}, 7}));
    for (auto& s : a.push(std::span(batch))) pushed.push_back(std::move(s));
  });
  pushed.push_back(b.push(wait_then_run({}, {10, {}, 4})));
  f.run();
  scenario_result result;
  result.run_order = f.tags_of(f.ring);
  for (const auto& s : pushed) {
    REQUIRE(s.finished.signalled());
    CHECK_FALSE(s.finished.error());
    result.seqnos.push_back(s.seqno());
  }
  return result;
}

}  // namespace

TEST_CASE(
    "single producer: pushes before the run, from the clock and from a job body keep the default's order",
    "[scheduler][single_producer]") {
  const scenario_result shared = run_scenario(false);
  const scenario_result single = run_scenario(true);
  // fifo: push order across entities. Job 3's body runs when the scheduler
  // first takes it (the pass at 0) and pushes 5 then, before 6 and 7 (at 15).
  CHECK(single.run_order == std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6, 7});
  CHECK(single.run_order == shared.run_order);
  // Pushed: a1 b1 a2 b2 before the run, b3 from job 3's body, a3 a4 at 15.
  CHECK(single.seqnos == std::vector<std::uint64_t>{1, 1, 2, 2, 3, 3, 4});
  CHECK(single.seqnos == shared.seqnos);
}

TEST_CASE("single producer: pending() counts jobs pushed and not yet run", "[scheduler][single_producer]") {
  producer_fixture f(true);
  auto e = f.sched.make_entity();
  e.push(wait_then_run({}, {10, {}, 1}));
  e.push(wait_then_run({}, {10, {}, 2}));
  e.push(wait_then_run({}, {10, {}, 3}));
  CHECK(e.pending().queued == 3);
  CHECK(e.pending().in_flight == 0);
  f.run();
  CHECK(e.pending().queued == 0);
  CHECK(f.tags_of(f.ring) == std::vector<std::uint64_t>{1, 2, 3});
}

TEST_CASE("single producer: close and kill from another thread, push after shutdown",
          "[scheduler][single_producer][threads]") {
  producer_fixture f(true);
  auto closed = f.sched.make_entity({.name = "closed"});
  auto killed = f.sched.make_entity({.name = "killed"});
  auto before_close = closed.push(wait_then_run({}, {10, {}, 1}));
  auto before_kill = killed.push(wait_then_run({}, {10, {}, 2}));
  std::thread([&] {
    closed.close();
    killed.kill();
  }).join();
  // After close a push fails `cancelled`; the job pushed before still runs.
  auto after_close = closed.push(wait_then_run({}, {10, {}, 3}));
  f.run();
  CHECK_FALSE(before_close.finished.error());
  CHECK(after_close.finished.error() == make_error_code(errc::cancelled));
  CHECK(after_close.seqno() == 2);
  CHECK(before_kill.finished.error() == make_error_code(errc::killed));
  CHECK(f.tags_of(f.ring) == std::vector<std::uint64_t>{1});

  auto late = f.sched.make_entity({.name = "late"});
  f.shut_down(f.sched);
  // Detached: the push fails at once, on this thread.
  auto after_shutdown = late.push(wait_then_run({}, {10, {}, 4}));
  REQUIRE(after_shutdown.finished.signalled());
  CHECK(after_shutdown.finished.error() == make_error_code(errc::shutdown));
}

// The misuse is diagnosed in builds without NDEBUG. The child is forked from
// this process, which ThreadSanitizer does not support once threads have run
// (it is checked in the other builds).
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define COSCHED_TEST_UNDER_TSAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define COSCHED_TEST_UNDER_TSAN 1
#endif

#if !defined(NDEBUG) && !defined(COSCHED_TEST_UNDER_TSAN)
TEST_CASE("single producer: a push from a second thread terminates with a message (builds without NDEBUG)",
          "[scheduler][single_producer][threads]") {
  int out[2];
  REQUIRE(::pipe(out) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // The test framework's handlers stay out of the child: its abort is the outcome.
    std::signal(SIGABRT, SIG_DFL);
    ::dup2(out[1], STDERR_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    producer_fixture f(true);
    auto e = f.sched.make_entity({.name = "e"});
    e.push(wait_then_run({}, {10, {}, 1}));
    std::thread([&] { e.push(wait_then_run({}, {10, {}, 2})); }).join();
    ::_exit(0);  // not reached: the second push terminates the process
  }
  ::close(out[1]);
  std::string text;
  char buffer[512];
  for (ssize_t n; (n = ::read(out[0], buffer, sizeof buffer)) > 0;) text.append(buffer, std::size_t(n));
  ::close(out[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  if (WIFSIGNALED(status)) CHECK(WTERMSIG(status) == SIGABRT);
  CHECK(text.find("scheduler_options::single_producer: a push on a second thread") != std::string::npos);
}
#endif
