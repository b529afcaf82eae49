// Pipelining (scheduler_options::pipeline): a declared dependency run on the
// dependent's in-order ring counts as satisfied, so the dependent is run at
// once instead of when the dependency signals; the failure rules; where it
// does not apply (external fences, rings that do not execute in order, several
// shared rings). All in virtual time, exact.
#include <cerrno>
#include <deque>
#include <optional>
#include <vector>

#include "catch.hpp"
#include "sim_fixture.hpp"

using namespace cosched;
using namespace cosched::test;

namespace {

/// A virtual ring that does not say it executes in order.
class unordered_ring final : public ring<command> {
 public:
  explicit unordered_ring(sim::virtual_clock& clock) : inner_(clock) {}
  fence run(command& cmd) override { return inner_.run(cmd); }
  void cancel_all() noexcept override { inner_.cancel_all(); }
  const sim::virtual_ring& inner() const noexcept { return inner_; }

 private:
  sim::virtual_ring inner_;
};

/// One shared virtual ring (or `ring`), with or without pipelining.
struct pipe_fixture : virtual_run {
  explicit pipe_fixture(bool pipeline, std::uint32_t credits, ring<command>* other = nullptr)
      : ring_(clock),
        sched(ctx.get_executor(), other ? *other : static_cast<ring<command>&>(ring_),
              {.credit_limit = credits, .pipeline = pipeline}) {}
  ~pipe_fixture() {
    if (!sched.is_shut_down()) shut_down(sched);
  }
  std::optional<sim::time_us> run_at(std::uint64_t tag) const { return run_at_of(ring_, tag); }

  sim::virtual_ring ring_;
  scheduler<command> sched;
};

}  // namespace

TEST_CASE("pipelining: a dependent is run as soon as its dependency has been run on the same in-order ring",
          "[scheduler][pipeline]") {
  for (const bool pipeline : {false, true}) {
    pipe_fixture f(pipeline, 2);
    auto a = f.sched.make_entity({.name = "a"});
    auto b = f.sched.make_entity({.name = "b"});
    auto first = a.push(wait_then_run({}, {100, {}, 1}));
    auto second = b.push(wait_then_run({}, {50, {}, 2}), {.after = {first.finished}});
    outcome first_done, second_done;
    f.observe(first.finished, first_done);
    f.observe(second.finished, second_done);
    f.run();
    // The ring runs them one after another either way; pipelined, the second
    // is on the ring behind the first from the start, with no gap at 100.
    CHECK(f.run_at(2) == (pipeline ? 0 : 100));
    CHECK(first_done.at == 100);
    CHECK(second_done.at == 150);
    CHECK_FALSE(second_done.error);
  }
}

TEST_CASE("pipelining: the check is made again when the awaited dependency is run", "[scheduler][pipeline]") {
  for (const bool pipeline : {false, true}) {
    pipe_fixture f(pipeline, 2);
    auto a = f.sched.make_entity({.name = "a"});
    auto b = f.sched.make_entity({.name = "b"});
    promise released;
    a.push(wait_then_run({}, {100, {}, 1}));
    // Run at 50, once its external declared dependency is set.
    auto dependency = a.push(wait_then_run({}, {100, {}, 2}), {.after = {released.get_fence()}});
    auto dependent = b.push(wait_then_run({}, {10, {}, 3}), {.after = {dependency.finished}});
    outcome done;
    f.observe(dependent.finished, done);
    f.clock.at(50, sim::phase::other, [&] { released.set_value(); });
    f.run();
    CHECK(f.run_at(2) == 50);
    // Pipelined it passes its dependency at 50 and waits for a credit (100);
    // otherwise it waits for the dependency's signal (200).
    CHECK(f.run_at(3) == (pipeline ? 100 : 200));
    CHECK(done.at == 210);
  }
}

TEST_CASE("pipelining: a dependent not run yet fails when its pipelined dependency fails, never running",
          "[scheduler][pipeline]") {
  pipe_fixture f(true, 1);
  auto a = f.sched.make_entity({.name = "a"});
  auto b = f.sched.make_entity({.name = "b"});
  auto failing = a.push(wait_then_run({}, {100, sim::fault::error(EIO), 1}));
  auto dependent = b.push(wait_then_run({}, {50, {}, 2}), {.after = {failing.finished}});
  outcome done;
  f.observe(dependent.finished, done);
  f.run();
  // It passed the dependency at 0 (prepared, waiting for the one credit) and
  // fails at 100 with the dependency's error and it as the cause.
  CHECK_FALSE(f.run_at(2));
  CHECK(done.at == 100);
  CHECK(done.error == std::error_code(EIO, std::generic_category()));
  CHECK(dependent.finished.cause() == failing.finished.point());
  CHECK(dependent.scheduled().error() == std::error_code(EIO, std::generic_category()));
}

TEST_CASE("pipelining: a dependent already run completes, then takes its first failed dependency's outcome",
          "[scheduler][pipeline]") {
  pipe_fixture f(true, 3);
  auto a = f.sched.make_entity({.name = "a"});
  auto c = f.sched.make_entity({.name = "c"});
  auto b = f.sched.make_entity({.name = "b"});
  // Both run at 0; the first (in time) fails at 100 with EIO, the second at
  // 150 with ENOSPC. The dependent lists the second first.
  auto early = a.push(wait_then_run({}, {100, sim::fault::error(EIO), 1}));
  auto late = c.push(wait_then_run({}, {50, sim::fault::error(ENOSPC), 2}));
  auto dependent = b.push(wait_then_run({}, {10, {}, 3}), {.after = {late.finished, early.finished}});
  outcome done;
  f.observe(dependent.finished, done);
  f.run();
  CHECK(f.run_at(3) == 0);
  CHECK(done.at == 160);  // its own command ran 150 to 160, after both
  CHECK(done.error == std::error_code(ENOSPC, std::generic_category()));
  CHECK(dependent.finished.cause() == late.finished.point());
  CHECK_FALSE(dependent.scheduled().error());  // it did run
}

TEST_CASE(
    "pipelining: external fences, rings that do not execute in order and several shared rings are waited for",
    "[scheduler][pipeline]") {
  SECTION("a ring that does not say it executes in order") {
    virtual_run run;
    unordered_ring unordered(run.clock);
    scheduler<command> sched(run.ctx.get_executor(), unordered, {.credit_limit = 2, .pipeline = true});
    auto a = sched.make_entity({.name = "a"});
    auto b = sched.make_entity({.name = "b"});
    auto first = a.push(wait_then_run({}, {100, {}, 1}));
    b.push(wait_then_run({}, {50, {}, 2}), {.after = {first.finished}});
    run.run();
    CHECK(virtual_run::run_at_of(unordered.inner(), 2) == 100);
    run.shut_down(sched);
  }
  SECTION("two shared rings: the dependent's ring is chosen when it runs") {
    virtual_run run;
    std::deque<sim::virtual_ring> rings;
    rings.emplace_back(run.clock);
    rings.emplace_back(run.clock);
    std::vector<ring<command>*> pointers{&rings[0], &rings[1]};
    scheduler<command> sched(run.ctx.get_executor(), std::span<ring<command>* const>(pointers),
                             {.credit_limit = 2, .pipeline = true});
    auto a = sched.make_entity({.name = "a"});
    auto b = sched.make_entity({.name = "b"});
    auto first = a.push(wait_then_run({}, {100, {}, 1}));
    b.push(wait_then_run({}, {50, {}, 2}), {.after = {first.finished}});
    run.run();
    std::optional<sim::time_us> at = virtual_run::run_at_of(rings[0], 2);
    if (!at) at = virtual_run::run_at_of(rings[1], 2);
    CHECK(at == 100);
    run.shut_down(sched);
  }
}

TEST_CASE("pipelining: in ring_per_entity mode a dependency in the entity's own ring is passed once run",
          "[scheduler][pipeline]") {
  virtual_run run;
  sim::virtual_ring own(run.clock), other(run.clock);
  scheduler<command> sched(run.ctx.get_executor(),
                           {.credit_limit = 2, .mode = ring_mode::ring_per_entity, .pipeline = true});
  auto a = sched.make_entity({.name = "a", .own_ring = &own});
  auto b = sched.make_entity({.name = "b", .own_ring = &other});
  auto first = a.push(wait_then_run({}, {100, {}, 1}));
  a.push(wait_then_run({}, {50, {}, 2}), {.after = {first.finished}});  // the same ring
  b.push(wait_then_run({}, {50, {}, 3}), {.after = {first.finished}});  // another ring
  run.run();
  CHECK(virtual_run::run_at_of(own, 2) == 0);
  CHECK(virtual_run::run_at_of(other, 3) == 100);
  run.shut_down(sched);
}

TEST_CASE(
    "pipelining: a dependent passed but not run whose entity is killed signals no earlier than its "
    "dependency",
    "[scheduler][pipeline]") {
  pipe_fixture f(true, 1);
  auto a = f.sched.make_entity({.name = "a"});
  auto b = f.sched.make_entity({.name = "b"});
  auto dependency = a.push(wait_then_run({}, {100, {}, 1}));
  auto dependent = b.push(wait_then_run({}, {50, {}, 2}), {.after = {dependency.finished}});
  outcome dependency_done, dependent_done;
  f.observe(dependency.finished, dependency_done);
  f.observe(dependent.finished, dependent_done);
  f.clock.at(30, sim::phase::kill, [&] { b.kill(); });
  f.run();
  // It passed its dependency at 0 by pipelining and waits for the one
  // credit; the kill at 30 decides it, and its signal waits for the
  // dependency it passed (fence causality), which holds it no more once passed.
  CHECK_FALSE(f.run_at(2));
  CHECK(dependency_done.at == 100);
  CHECK_FALSE(dependency_done.error);
  CHECK(dependent_done.at == 100);
  CHECK(dependent_done.error == make_error_code(errc::killed));
}
