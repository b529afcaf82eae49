// Unit tests for the sim backend's virtual clock (event order, cancel, settling the
// io_context between instants) and its virtual ring (start/end times, faults, cancel_all).
#include "cosched/sim/virtual_clock.hpp"

#include <cerrno>
#include <deque>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "catch.hpp"

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include "cosched/error.hpp"
#include "cosched/fence.hpp"
#include "cosched/sim/sim_ring.hpp"
#include "cosched/testing.hpp"

using cosched::sim::command;
using cosched::sim::fault;
using cosched::sim::phase;
using cosched::sim::run_record;
using cosched::sim::time_us;
using cosched::sim::virtual_clock;
using cosched::sim::virtual_ring;

namespace {

// An entry of a trace: what happened and at which virtual time.
struct step {
  std::string what;
  time_us at = 0;
  friend bool operator==(const step&, const step&) = default;
};

std::ostream& operator<<(std::ostream& os, const step& s) { return os << s.what << "@" << s.at; }

// How a fence ended, observed on the io_context (so at the virtual instant it signalled).
struct outcome {
  int calls = 0;
  time_us at = 0;
  std::error_code ec;
};

void observe(asio::io_context& ctx, virtual_clock& clock, const cosched::fence& f, outcome& out) {
  f.async_wait(ctx.get_executor(), [&clock, &out](std::error_code ec) {
    ++out.calls;
    out.at = clock.now();
    out.ec = ec;
  });
}

bool same_record(const run_record& a, const run_record& b) {
  return a.tag == b.tag && a.run_at == b.run_at && a.start == b.start && a.finishes == b.finishes &&
         (!a.finishes || a.end == b.end);
}

std::string describe(const run_record& r) {
  return "{tag " + std::to_string(r.tag) + ", run_at " + std::to_string(r.run_at) + ", start " +
         std::to_string(r.start) + ", finishes " + (r.finishes ? "yes" : "no") + ", end " +
         std::to_string(r.end) + "}";
}

// Checks a ring's run log against the expected records.
void check_log(const virtual_ring& ring, const std::vector<run_record>& expected) {
  REQUIRE(ring.log().size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("run " << i << ": got " << describe(ring.log()[i]) << ", expected " << describe(expected[i]));
    CHECK(same_record(ring.log()[i], expected[i]));
  }
}

const std::error_code broken = cosched::make_error_code(cosched::errc::broken);

}  // namespace

// ================================================================== virtual_clock

TEST_CASE("a new clock is idle at time 0", "[sim][clock]") {
  virtual_clock clock;
  CHECK(clock.now() == 0);
  CHECK(clock.idle());
  asio::io_context ctx;
  clock.run(ctx);  // nothing to do
  CHECK(clock.now() == 0);
}

TEST_CASE("events fire in (time, phase, scheduling order)", "[sim][clock]") {
  virtual_clock clock;
  asio::io_context ctx;
  std::vector<step> trace;
  auto record = [&](std::string what) {
    return [&trace, &clock, what = std::move(what)] { trace.push_back({what, clock.now()}); };
  };
  clock.at(20, phase::other, record("other@20"));
  clock.at(10, phase::push, record("push1@10"));
  clock.at(10, phase::completion, record("completion1@10"));
  clock.at(10, phase::push, record("push2@10"));
  clock.at(10, phase::kill, record("kill@10"));
  clock.at(10, phase::timeout, record("timeout@10"));
  clock.at(5, phase::other, record("other@5"));
  clock.at(20, phase::completion, record("completion@20"));
  clock.at(10, phase::completion, record("completion2@10"));
  clock.at(10, phase::other, record("other@10"));
  CHECK_FALSE(clock.idle());
  CHECK(trace.empty());  // nothing fires before run()

  clock.run(ctx);
  CHECK(trace == std::vector<step>{{"other@5", 5},
                                   {"completion1@10", 10},
                                   {"completion2@10", 10},
                                   {"timeout@10", 10},
                                   {"kill@10", 10},
                                   {"push1@10", 10},
                                   {"push2@10", 10},
                                   {"other@10", 10},
                                   {"completion@20", 20},
                                   {"other@20", 20}});
  CHECK(clock.now() == 20);
  CHECK(clock.idle());
}

TEST_CASE("event ids are unique", "[sim][clock]") {
  virtual_clock clock;
  const auto a = clock.at(1, phase::other, [] {});
  const auto b = clock.at(1, phase::other, [] {});
  const auto c = clock.at(0, phase::completion, [] {});
  CHECK(a != b);
  CHECK(b != c);
  CHECK(a != c);
  CHECK(a != 0);  // 0 means "no event" to the ring
}

TEST_CASE("cancel removes a pending event", "[sim][clock]") {
  virtual_clock clock;
  asio::io_context ctx;
  std::vector<int> fired;
  const auto keep = clock.at(10, phase::other, [&] { fired.push_back(1); });
  const auto drop = clock.at(10, phase::other, [&] { fired.push_back(2); });
  const auto only = clock.at(30, phase::other, [&] { fired.push_back(3); });

  CHECK(clock.cancel(drop));
  CHECK_FALSE(clock.cancel(drop));  // not pending any more
  CHECK_FALSE(clock.cancel(9999));  // never scheduled
  CHECK(clock.cancel(only));
  clock.run(ctx);
  CHECK(fired == std::vector<int>{1});
  CHECK(clock.now() == 10);         // the cancelled instant 30 is never reached
  CHECK_FALSE(clock.cancel(keep));  // fired already
  CHECK(clock.idle());
}

TEST_CASE("cancelling every event makes the clock idle", "[sim][clock]") {
  virtual_clock clock;
  const auto a = clock.at(5, phase::push, [] {});
  CHECK_FALSE(clock.idle());
  CHECK(clock.cancel(a));
  CHECK(clock.idle());
}

TEST_CASE("an event can cancel a later event of the same instant", "[sim][clock]") {
  virtual_clock clock;
  asio::io_context ctx;
  std::vector<int> fired;
  virtual_clock::event_id victim = 0;
  bool cancelled = false;
  clock.at(10, phase::completion, [&] {
    fired.push_back(1);
    cancelled = clock.cancel(victim);
  });
  victim = clock.at(10, phase::push, [&] { fired.push_back(2); });
  clock.at(10, phase::other, [&] { fired.push_back(3); });
  clock.run(ctx);
  CHECK(cancelled);
  CHECK(fired == std::vector<int>{1, 3});
}

TEST_CASE("an event in the past is rejected", "[sim][clock]") {
  virtual_clock clock;
  asio::io_context ctx;
  clock.at(20, phase::other, [] {});
  clock.run(ctx);
  REQUIRE(clock.now() == 20);
  CHECK_THROWS_AS(clock.at(19, phase::completion, [] {}), std::invalid_argument);
  CHECK(clock.idle());
  // The present is allowed, and fires at once on the next run.
  int fired = 0;
  clock.at(20, phase::other, [&] { ++fired; });
  clock.run(ctx);
  CHECK(fired == 1);
  CHECK(clock.now() == 20);
}

TEST_CASE("run() settles the io_context between instants", "[sim][clock]") {
  virtual_clock clock;
  asio::io_context ctx;
  std::vector<step> trace;
  auto note = [&](std::string what) { trace.push_back({std::move(what), clock.now()}); };

  clock.at(10, phase::other, [&] {
    note("event@10");
    asio::post(ctx, [&] {
      note("handler");
      asio::post(ctx, [&] {
        note("handler of handler");
        // Scheduled by a handler at the current instant: still this instant.
        clock.at(clock.now(), phase::push, [&] { note("event added by handler"); });
        clock.at(15, phase::other, [&] { note("event@15"); });
      });
    });
  });
  clock.at(20, phase::other, [&] { note("event@20"); });
  clock.at(10, phase::push, [&] { note("push@10"); });

  clock.run(ctx);
  // push (phase 3) goes before other (phase 4); the handlers run after both.
  CHECK(trace == std::vector<step>{{"push@10", 10},
                                   {"event@10", 10},
                                   {"handler", 10},
                                   {"handler of handler", 10},
                                   {"event added by handler", 10},
                                   {"event@15", 15},
                                   {"event@20", 20}});
}

TEST_CASE("events added while an instant fires run before the executor", "[sim][clock]") {
  virtual_clock clock;
  asio::io_context ctx;
  std::vector<std::string> trace;
  clock.at(10, phase::push, [&] {
    trace.push_back("push1");
    asio::post(ctx, [&] { trace.push_back("handler"); });
    clock.at(10, phase::other, [&] { trace.push_back("added other"); });
    // An earlier phase of the same instant still goes before the remaining events.
    clock.at(10, phase::completion, [&] { trace.push_back("added completion"); });
  });
  clock.at(10, phase::push, [&] { trace.push_back("push2"); });
  clock.run(ctx);
  CHECK(trace == std::vector<std::string>{"push1", "added completion", "push2", "added other", "handler"});
}

TEST_CASE("run() first runs what is already posted, at time 0", "[sim][clock]") {
  virtual_clock clock;
  asio::io_context ctx;
  std::vector<step> trace;
  clock.at(3, phase::other, [&] { trace.push_back({"event", clock.now()}); });
  asio::post(ctx, [&] { trace.push_back({"posted", clock.now()}); });
  clock.run(ctx);
  CHECK(trace == std::vector<step>{{"posted", 0}, {"event", 3}});
}

TEST_CASE("settle restarts a stopped io_context and runs it until nothing is ready", "[sim][clock]") {
  asio::io_context ctx;
  ctx.stop();
  int ran = 0;
  asio::post(ctx, [&] {
    ++ran;
    asio::post(ctx, [&] { ++ran; });
  });
  virtual_clock::settle(ctx);
  CHECK(ran == 2);
}

TEST_CASE("run() returns when no event is pending, even with outstanding work", "[sim][clock]") {
  virtual_clock clock;
  asio::io_context ctx;
  auto work = asio::make_work_guard(ctx);
  int fired = 0;
  clock.at(7, phase::other, [&] { ++fired; });
  clock.run(ctx);  // must not block on the work guard
  CHECK(fired == 1);
  CHECK(clock.now() == 7);
}

// ================================================================== virtual_ring

TEST_CASE("ring: back-to-back commands start when the previous one ends", "[sim][ring]") {
  virtual_clock clock;
  asio::io_context ctx;
  virtual_ring ring(clock);
  std::deque<command> cmds{{100, fault::none(), 1}, {50, fault::none(), 2}, {30, {}, 3}};
  outcome out[3];
  for (int i = 0; i < 3; ++i) observe(ctx, clock, ring.run(cmds[i]), out[i]);
  CHECK(ring.in_flight() == 3);
  clock.run(ctx);

  for (int i = 0; i < 3; ++i) {
    CHECK(out[i].calls == 1);
    CHECK_FALSE(out[i].ec);
  }
  CHECK(out[0].at == 100);
  CHECK(out[1].at == 150);
  CHECK(out[2].at == 180);
  CHECK(ring.in_flight() == 0);
  check_log(ring, {{1, 0, 0, true, 100}, {2, 0, 100, true, 150}, {3, 0, 150, true, 180}});
}

TEST_CASE("ring: a command starts at max(its run time, the end of the previous one)", "[sim][ring]") {
  virtual_clock clock;
  asio::io_context ctx;
  virtual_ring ring(clock);
  std::deque<command> cmds{{100, {}, 1}, {50, {}, 2}, {10, {}, 3}, {0, {}, 4}};
  outcome out[4];
  auto run_at = [&](time_us when, int i) {
    clock.at(when, phase::push, [&, i] { observe(ctx, clock, ring.run(cmds[i]), out[i]); });
  };
  run_at(0, 0);
  run_at(50, 1);   // the ring is busy until 100
  run_at(400, 2);  // the ring is idle since 150
  run_at(405, 3);  // zero duration, queued behind 2
  clock.run(ctx);

  check_log(
      ring,
      {{1, 0, 0, true, 100}, {2, 50, 100, true, 150}, {3, 400, 400, true, 410}, {4, 405, 410, true, 410}});
  CHECK(out[0].at == 100);
  CHECK(out[1].at == 150);
  CHECK(out[2].at == 410);
  CHECK(out[3].at == 410);
  for (auto& o : out) CHECK(o.calls == 1);
}

TEST_CASE("ring: a completion goes before other events of its instant", "[sim][ring]") {
  virtual_clock clock;
  asio::io_context ctx;
  virtual_ring ring(clock);
  command cmd{100, {}, 1};
  cosched::fence f;
  bool signalled_at_push = false;
  // Scheduled before the completion exists, yet it runs after it (phase push > completion).
  clock.at(100, phase::push, [&] { signalled_at_push = f.signalled(); });
  f = ring.run(cmd);
  clock.run(ctx);
  CHECK(signalled_at_push);
}

TEST_CASE("ring: the command leaves in_flight before its fence signals", "[sim][ring]") {
  virtual_clock clock;
  asio::io_context ctx;
  virtual_ring ring(clock);
  cosched::testing::fence_checker checker;
  command a{10, {}, 1};
  command b{10, {}, 2};
  std::vector<std::size_t> in_flight_at_signal;
  checker.watch(ring.run(a), "a", [&] { in_flight_at_signal.push_back(ring.in_flight()); });
  checker.watch(ring.run(b), "b", [&] { in_flight_at_signal.push_back(ring.in_flight()); });
  clock.run(ctx);
  CHECK(in_flight_at_signal == std::vector<std::size_t>{1, 0});
  CHECK(checker.all_exactly_once());
}

TEST_CASE("ring: an error fault fails the hardware fence with the errno", "[sim][ring][fault]") {
  const int value = GENERATE(EIO, ENOMEM, ETIMEDOUT);
  CAPTURE(value);
  virtual_clock clock;
  asio::io_context ctx;
  virtual_ring ring(clock);
  std::deque<command> cmds{{70, fault::error(value), 1}, {30, {}, 2}};
  outcome failed, next;
  observe(ctx, clock, ring.run(cmds[0]), failed);
  observe(ctx, clock, ring.run(cmds[1]), next);
  clock.run(ctx);

  CHECK(failed.calls == 1);
  CHECK(failed.at == 70);  // at the end of its duration
  CHECK(failed.ec == std::error_code(value, std::generic_category()));
  CHECK(&failed.ec.category() == &std::generic_category());
  CHECK(cosched::error_name(failed.ec) ==
        cosched::error_name(std::error_code(value, std::generic_category())));
  // The ring goes on.
  CHECK(next.calls == 1);
  CHECK_FALSE(next.ec);
  CHECK(next.at == 100);
  check_log(ring, {{1, 0, 0, true, 70}, {2, 0, 70, true, 100}});
}

TEST_CASE("ring: an EIO fault is named EIO", "[sim][ring][fault]") {
  virtual_clock clock;
  asio::io_context ctx;
  virtual_ring ring(clock);
  command cmd{5, fault::error(EIO), 9};
  cosched::fence f = ring.run(cmd);
  clock.run(ctx);
  REQUIRE(f.signalled());
  CHECK(cosched::error_name(f.error()) == "EIO");
}

TEST_CASE("ring: a hang never finishes and blocks later commands", "[sim][ring][fault]") {
  virtual_clock clock;
  asio::io_context ctx;
  virtual_ring ring(clock);
  std::deque<command> cmds{{50, {}, 1}, {100, fault::hang(), 2}, {10, {}, 3}, {10, {}, 4}};
  outcome out[4];
  for (int i = 0; i < 2; ++i) observe(ctx, clock, ring.run(cmds[i]), out[i]);
  // Run the third after the hang started, the fourth much later.
  clock.at(60, phase::push, [&] { observe(ctx, clock, ring.run(cmds[2]), out[2]); });
  clock.at(5000, phase::push, [&] { observe(ctx, clock, ring.run(cmds[3]), out[3]); });
  clock.run(ctx);

  CHECK(out[0].calls == 1);  // before the hang: finishes
  CHECK(out[0].at == 50);
  CHECK(out[1].calls == 0);
  CHECK(out[2].calls == 0);
  CHECK(out[3].calls == 0);
  CHECK(ring.in_flight() == 3);
  CHECK(clock.idle());         // no completion is scheduled for them
  CHECK(clock.now() == 5000);  // the last event was the last run
  REQUIRE(ring.log().size() == 4);
  CHECK(ring.log()[0].finishes);
  CHECK(ring.log()[0].end == 50);
  CHECK_FALSE(ring.log()[1].finishes);
  CHECK(ring.log()[1].start == 50);
  CHECK_FALSE(ring.log()[2].finishes);
  CHECK_FALSE(ring.log()[3].finishes);
  CHECK(ring.log()[2].run_at == 60);
  CHECK(ring.log()[3].run_at == 5000);
}

TEST_CASE("ring: slow uses slow_us instead of the duration", "[sim][ring][fault]") {
  virtual_clock clock;
  asio::io_context ctx;
  virtual_ring ring(clock);
  std::deque<command> cmds{{100, fault::slow(500), 1}, {20, {}, 2}};
  outcome slow, next;
  observe(ctx, clock, ring.run(cmds[0]), slow);
  observe(ctx, clock, ring.run(cmds[1]), next);
  clock.run(ctx);
  CHECK(slow.calls == 1);
  CHECK_FALSE(slow.ec);  // slow is not an error
  CHECK(slow.at == 500);
  CHECK(next.at == 520);
  check_log(ring, {{1, 0, 0, true, 500}, {2, 0, 500, true, 520}});
}

TEST_CASE("ring: cancel_all stops pending completions, their fences signal broken", "[sim][ring][cancel]") {
  virtual_clock clock;
  asio::io_context ctx;
  virtual_ring ring(clock);
  std::deque<command> cmds{{100, {}, 1}, {100, {}, 2}, {100, {}, 3}, {30, {}, 4}};
  outcome out[4];
  for (int i = 0; i < 3; ++i) observe(ctx, clock, ring.run(cmds[i]), out[i]);
  clock.at(150, phase::kill, [&] {
    CHECK(ring.in_flight() == 2);
    ring.cancel_all();
    CHECK(ring.in_flight() == 0);
    // The ring is free at once: a new command starts now, not at 300.
    observe(ctx, clock, ring.run(cmds[3]), out[3]);
  });
  clock.run(ctx);

  CHECK(out[0].calls == 1);
  CHECK_FALSE(out[0].ec);
  CHECK(out[0].at == 100);
  for (int i = 1; i < 3; ++i) {
    CHECK(out[i].calls == 1);
    CHECK(out[i].ec == broken);
    CHECK(out[i].at == 150);
  }
  CHECK(out[3].calls == 1);
  CHECK_FALSE(out[3].ec);
  CHECK(out[3].at == 180);
  CHECK(clock.now() == 180);  // the cancelled completions at 200 and 300 never fire
  CHECK(ring.in_flight() == 0);
  check_log(ring,
            {{1, 0, 0, true, 100}, {2, 0, 100, true, 200}, {3, 0, 200, true, 300}, {4, 150, 150, true, 180}});
}

TEST_CASE("ring: cancel_all unblocks a hung ring", "[sim][ring][cancel][fault]") {
  virtual_clock clock;
  asio::io_context ctx;
  virtual_ring ring(clock);
  std::deque<command> cmds{{10, fault::hang(), 1}, {10, {}, 2}, {10, {}, 3}};
  outcome out[3];
  observe(ctx, clock, ring.run(cmds[0]), out[0]);
  observe(ctx, clock, ring.run(cmds[1]), out[1]);
  clock.at(1000, phase::timeout, [&] {
    ring.cancel_all();
    observe(ctx, clock, ring.run(cmds[2]), out[2]);
  });
  clock.run(ctx);
  CHECK(out[0].ec == broken);
  CHECK(out[1].ec == broken);
  CHECK(out[0].at == 1000);
  CHECK(out[2].calls == 1);
  CHECK_FALSE(out[2].ec);
  CHECK(out[2].at == 1010);
  CHECK(ring.log().back().finishes);
  CHECK(ring.log().back().start == 1000);
}

TEST_CASE("ring: cancel_all on an idle ring does nothing", "[sim][ring][cancel]") {
  virtual_clock clock;
  asio::io_context ctx;
  virtual_ring ring(clock);
  ring.cancel_all();
  CHECK(ring.in_flight() == 0);
  CHECK(clock.idle());
  CHECK(ring.log().empty());
}

TEST_CASE("ring: the same input gives the same run log", "[sim][ring]") {
  auto scenario = [] {
    virtual_clock clock;
    asio::io_context ctx;
    virtual_ring ring(clock);
    std::deque<command> cmds{{40, {}, 1}, {10, fault::error(EIO), 2}, {25, fault::slow(60), 3}, {5, {}, 4}};
    std::vector<std::pair<std::uint64_t, time_us>> signals;
    for (std::size_t i = 0; i < cmds.size(); ++i) {
      clock.at(i * 20, phase::push, [&, i] {
        ring.run(cmds[i]).async_wait(
            ctx.get_executor(), [&, i](std::error_code) { signals.emplace_back(cmds[i].tag, clock.now()); });
      });
    }
    clock.run(ctx);
    std::vector<std::string> log;
    for (const auto& r : ring.log()) log.push_back(describe(r));
    return std::pair(log, signals);
  };
  const auto first = scenario();
  const auto second = scenario();
  CHECK(first == second);
  CHECK(first.second == std::vector<std::pair<std::uint64_t, time_us>>{{1, 40}, {2, 50}, {3, 110}, {4, 115}});
}

// The clock must outlive the ring (sim_ring.hpp, Lifetime), so a ring destroyed
// with commands in flight must take its completion events off the clock: they
// capture the ring and would run on a destroyed object.
TEST_CASE("ring: destroying a ring removes its pending completions from the clock", "[sim][ring][lifetime]") {
  virtual_clock clock;
  asio::io_context ctx;
  command cmd{100, {}, 1};
  cosched::fence f;
  {
    virtual_ring ring(clock);
    f = ring.run(cmd);
  }
  REQUIRE(f.signalled());
  CHECK(f.error() == broken);
  CHECK(clock.idle());  // otherwise clock.run() would call into the destroyed ring
  // (The clock is deliberately not run here: with the bug that would be a use-after-free.)
}

TEST_CASE("ring: a log sink gets every run, complete and in run order, instead of log()", "[sim][ring]") {
  virtual_clock clock;
  asio::io_context ctx;
  virtual_ring ring(clock);
  std::vector<run_record> sunk;
  ring.set_log_sink([&sunk](const run_record& r) { sunk.push_back(r); });
  std::deque<command> cmds{{100, {}, 1}, {50, fault::error(EIO), 2}, {10, fault::hang(), 3}, {10, {}, 4}};
  outcome out[4];
  for (int i = 0; i < 4; ++i) observe(ctx, clock, ring.run(cmds[i]), out[i]);
  clock.run(ctx);
  CHECK(ring.log().empty());
  const std::vector<run_record> expected{
      {1, 0, 0, true, 100}, {2, 0, 100, true, 150}, {3, 0, 150, false, 0}, {4, 0, 150, false, 0}};
  REQUIRE(sunk.size() == expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    INFO("run " << i << ": got " << describe(sunk[i]) << ", expected " << describe(expected[i]));
    CHECK(same_record(sunk[i], expected[i]));
  }
  // Without a sink the ring keeps its runs again.
  ring.set_log_sink({});
  ring.reset();
  command later{5, {}, 5};
  observe(ctx, clock, ring.run(later), out[0]);
  clock.run(ctx);
  check_log(ring, {{5, 150, 150, true, 155}});
}
