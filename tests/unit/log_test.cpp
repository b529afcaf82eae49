// What the library logs, line by line, through the logger the application set
// (cosched/log.hpp): a ring's timeout and its verdict, a ban, a reset and what
// it replayed, a shutdown that had to cancel work, a wait the reactor could not
// arm; and that a run where nothing goes wrong logs nothing, even at debug.
#include "cosched/log.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <asio/io_context.hpp>

#include "captured_log.hpp"
#include "catch.hpp"
#include "cosched/cosched.hpp"
#include "cosched/pause.hpp"
#include "manual_timers.hpp"

using namespace cosched;
using testing::captured_log;
using testing::manual_timers;

namespace {

struct command {
  int id = 0;
};

/// A ring whose hardware fences the test signals; at a timeout it gives the
/// verdict the test chose.
class manual_ring final : public ring<command> {
 public:
  fence run(command& c) override {
    ran.push_back(c.id);
    return done.emplace_back().get_fence();
  }
  fence replay(command& c) override {
    replayed.push_back(c.id);
    return done.emplace_back().get_fence();
  }
  void cancel_all() noexcept override {}
  timeout_verdict on_timeout(command&) override { return verdict; }
  void reset() override {}

  timeout_verdict verdict = timeout_verdict::hung;
  std::vector<promise> done;
  std::vector<int> ran, replayed;
};

job<command> make(int id) { co_return command{id}; }

void run_ready(asio::io_context& ctx) {
  ctx.restart();
  ctx.poll();
}

}  // namespace

TEST_CASE("a hung ring logs the timeout with its verdict, the ban and the reset with what it replayed",
          "[log][timeout]") {
  captured_log log;
  asio::io_context ctx(1);
  manual_timers timers;
  manual_ring hardware;
  scheduler<command> sched(ctx.get_executor(), hardware,
                           {.credit_limit = 3, .timeout = std::chrono::milliseconds(250), .timers = &timers});
  auto render = sched.make_entity({.name = "render"});
  auto compute = sched.make_entity({.name = "compute"});
  auto hangs = render.push(make(1));
  run_ready(ctx);
  auto innocent = compute.push(make(2));
  run_ready(ctx);
  auto follower = render.push(make(3));
  run_ready(ctx);
  REQUIRE(hardware.ran == std::vector<int>{1, 2, 3});
  CHECK(log.text().empty());

  timers.fire_all();
  run_ready(ctx);
  CHECK(hangs.finished.error() == make_error_code(errc::timed_out));
  CHECK(follower.finished.error() == make_error_code(errc::cancelled));
  CHECK(hardware.replayed == std::vector<int>{2});
  CHECK(log.text() ==
        "cosched::scheduler: ring 0 timed out after 250 ms on job 1 of entity 'render': the ring reports it "
        "hung; "
        "the ring is reset\n"
        "cosched::scheduler: entity 'render' is banned: its job 1 hung ring 0; its other jobs fail "
        "`cancelled`\n"
        "cosched::scheduler: ring 0 reset after a hang: commands replayed: 1, cancelled: 1, "
        "completed before the reset: 0\n");

  hardware.done.back().set_value();
  run_ready(ctx);
  CHECK_FALSE(innocent.finished.error());
  auto down = sched.shutdown();
  run_ready(ctx);
  CHECK(down.signalled());
}

TEST_CASE("a false timeout logs the ring's verdict, progressing, and nothing else", "[log][timeout]") {
  captured_log log;
  asio::io_context ctx(1);
  manual_timers timers;
  manual_ring hardware;
  hardware.verdict = timeout_verdict::progressing;
  scheduler<command> sched(ctx.get_executor(), hardware,
                           {.timeout = std::chrono::microseconds(1500), .timers = &timers});
  auto render = sched.make_entity({.name = "render"});
  auto slow = render.push(make(1));
  run_ready(ctx);
  REQUIRE(timers.armed() == 1);
  timers.fire_all();
  run_ready(ctx);
  CHECK(timers.armed() == 1);  // extended
  CHECK(log.text() ==
        "cosched::scheduler: ring 0 timed out after 1.5 ms on job 1 of entity 'render': the ring reports it "
        "progressing; the timeout is extended\n");

  hardware.done.front().set_value();
  run_ready(ctx);
  CHECK_FALSE(slow.finished.error());
  auto down = sched.shutdown();
  run_ready(ctx);
  CHECK(down.signalled());
}

TEST_CASE("the backend's reset during a pause logs what it replayed", "[log][pause]") {
  captured_log log;
  asio::io_context ctx(1);
  manual_ring hardware;
  scheduler<command> sched(ctx.get_executor(), hardware, {.credit_limit = 2});
  auto render = sched.make_entity({.name = "render"});
  auto a = render.push(make(1));
  auto b = render.push(make(2));
  run_ready(ctx);
  REQUIRE(hardware.ran == std::vector<int>{1, 2});
  bool was_paused = false;
  sched.async_pause([&](std::unique_ptr<paused<command>> guard) {
    was_paused = true;
    hardware.done[0].set_value();  // completed before the reset: it retires after the pause
    guard->reset_and_replay();
  });
  run_ready(ctx);
  REQUIRE(was_paused);
  CHECK(hardware.replayed == std::vector<int>{2});
  CHECK(log.text() ==
        "cosched::scheduler: ring 0 reset by the backend's recovery: commands replayed: 1, cancelled: 0, "
        "completed before the reset: 1\n");
  hardware.done.back().set_value();
  run_ready(ctx);
  CHECK_FALSE(a.finished.error());
  CHECK_FALSE(b.finished.error());
  auto down = sched.shutdown();
  run_ready(ctx);
  CHECK(down.signalled());
}

TEST_CASE("a shutdown that fails unrun jobs and cancels the rings' commands says how many",
          "[log][shutdown]") {
  captured_log log;
  asio::io_context ctx(1);
  manual_ring hardware;
  scheduler<command> sched(ctx.get_executor(), hardware, {.credit_limit = 2});
  auto render = sched.make_entity({.name = "render"});
  auto compute = sched.make_entity({.name = "compute"});
  std::vector<submitted> pushed;
  for (int id = 1; id <= 5; ++id) pushed.push_back((id % 2 ? render : compute).push(make(id)));
  run_ready(ctx);
  REQUIRE(hardware.ran == std::vector<int>{1, 2});
  auto down = sched.shutdown(std::chrono::nanoseconds(0));
  run_ready(ctx);
  REQUIRE(down.signalled());
  for (auto& p : pushed) CHECK(p.finished.error() == make_error_code(errc::shutdown));
  CHECK(log.text() ==
        "cosched::scheduler: shutdown failed 3 jobs that had not run with `shutdown`\n"
        "cosched::scheduler: shutdown cancelled 2 commands in flight on 1 ring: the jobs fail `shutdown`\n");
}

TEST_CASE("a shutdown with nothing left to do logs nothing, a run where nothing fails neither",
          "[log][shutdown]") {
  captured_log log;  // at debug
  asio::io_context ctx(1);
  manual_ring hardware;
  scheduler<command> sched(ctx.get_executor(), hardware, {.credit_limit = 2});
  auto render = sched.make_entity({.name = "render"});
  auto a = render.push(make(1));
  auto b = render.push(make(2), {.after = {a.finished}});
  run_ready(ctx);
  hardware.done[0].set_value();
  run_ready(ctx);
  hardware.done[1].set_value();
  run_ready(ctx);
  REQUIRE(b.finished.signalled());
  auto down = sched.shutdown(std::chrono::nanoseconds(0));
  run_ready(ctx);
  REQUIRE(down.signalled());
  CHECK(log.text().empty());
}

TEST_CASE("a wait the reactor cannot arm logs the fd and the errno at error level", "[log][reactor]") {
  captured_log log;
  asio::io_context ctx(1);
  reactor r(ctx);
  auto f = r.wait_readable(1'000'000);
  while (!f.signalled()) {
    if (ctx.stopped()) ctx.restart();
    ctx.run_one();
  }
  CHECK(f.error() == std::error_code(EBADF, std::generic_category()));
  CHECK(log.text() ==
        "cosched::reactor: could not wait for fd 1000000 to be readable: Bad file descriptor (errno 9); its "
        "fence "
        "fails\n");
  CHECK(log.sink->last_raw().back().level == spdlog::level::err);
}

TEST_CASE("a watch the reactor cannot arm is logged once and not re-armed until unwatched",
          "[log][reactor]") {
  captured_log log;
  asio::io_context ctx(1);
  reactor r(ctx);
  int calls = 0;
  const reactor::watch_id id = r.watch(1'000'000, [&] { ++calls; });
  // Re-arming a refused watch would fail again at once, forever: the line
  // would be logged without end (or, unlogged, the loop would spin).
  for (int round = 0; round < 50 && log.text().empty(); ++round) run_ready(ctx);
  for (int round = 0; round < 50; ++round) run_ready(ctx);
  CHECK(log.text() ==
        "cosched::reactor: could not watch fd 1000000: Bad file descriptor (errno 9); it is not watched "
        "until unwatch()\n");
  CHECK(calls == 0);
  CHECK(r.pending() == 1);
  r.unwatch(id);
  ctx.restart();
  ctx.run();  // once the watch is released nothing is left to wait for: returns
  CHECK(r.pending() == 0);
}
