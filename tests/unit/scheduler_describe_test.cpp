// scheduler::describe: a failed fence's cause (a context and a seqno) mapped back
// to the entity and the job it stands for, while the scheduler holds the entity.
#include <optional>
#include <thread>

#include "catch.hpp"
#include "sim_fixture.hpp"

using namespace cosched;
using namespace cosched::test;

TEST_CASE("describe maps a dependency failure's cause to the failing job's entity and seqno",
          "[scheduler][describe]") {
  sim_fixture f(1);
  auto upstream = f.sched.make_entity({.name = "upstream"});
  auto e = f.sched.make_entity({.name = "e"});
  auto fine = upstream.push(wait_then_run({}, {10, {}, 1}));
  auto root = upstream.push(wait_then_run({}, {50, sim::fault::error(EIO), 2}));
  auto middle = e.push(wait_then_run({root.finished}, {50, {}, 3}));
  auto last = e.push(wait_then_run({}, {10, {}, 4}), {.after = {middle.finished}});
  f.run();
  REQUIRE(last.finished.cause());
  const auto described = f.sched.describe(*last.finished.cause());
  REQUIRE(described);
  CHECK(described->entity_name == "upstream");
  CHECK(described->entity_context == upstream.context());
  CHECK(described->seqno == 2);
  // Any job's finished point, failed or not.
  const auto first = f.sched.describe(fine.finished.point());
  REQUIRE(first);
  CHECK(first->entity_name == "upstream");
  CHECK(first->seqno == 1);
  const auto second_of_e = f.sched.describe(last.finished.point());
  REQUIRE(second_of_e);
  CHECK(second_of_e->entity_name == "e");
  CHECK(second_of_e->entity_context == e.context());
  CHECK(second_of_e->seqno == 2);
  // From another thread too.
  std::optional<job_ref> elsewhere;
  std::thread([&] { elsewhere = f.sched.describe(root.finished.point()); }).join();
  REQUIRE(elsewhere);
  CHECK(elsewhere->entity_context == upstream.context());
  CHECK(elsewhere->seqno == 2);
}

TEST_CASE("describe gives nullopt for a point that is not a job of an entity it holds",
          "[scheduler][describe]") {
  sim_fixture f(1);
  auto e = f.sched.make_entity({.name = "e"});
  auto j = e.push(wait_then_run({}, {10, {}, 1}));
  f.run();
  CHECK(f.sched.describe(j.finished.point()));
  promise p;
  CHECK_FALSE(f.sched.describe(p.get_fence().point()));  // a promise's context
  CHECK_FALSE(f.sched.describe({e.context(), 0}));       // seqnos start at 1
  CHECK_FALSE(f.sched.describe({e.context(), 2}));       // not pushed (yet)
  CHECK_FALSE(f.sched.describe({e.context() + 1, 1}));   // the entity's scheduled fences
  // Another scheduler's entity.
  sim::virtual_ring other_ring(f.clock);
  scheduler<command> other(f.ctx.get_executor(), other_ring);
  auto stranger = other.make_entity({.name = "stranger"});
  auto s = stranger.push(wait_then_run({}, {10, {}, 2}));
  f.run();
  CHECK_FALSE(f.sched.describe(s.finished.point()));
  REQUIRE(other.describe(s.finished.point()));
  CHECK(other.describe(s.finished.point())->entity_name == "stranger");
  f.shut_down(other);
}

TEST_CASE("describe gives nullopt once the scheduler has let go of the entity", "[scheduler][describe]") {
  sim_fixture f(1);
  std::optional<entity<command>> gone(f.sched.make_entity({.name = "gone"}));
  auto kept = f.sched.make_entity({.name = "kept"});
  auto g = gone->push(wait_then_run({}, {10, {}, 1}));
  auto k = kept.push(wait_then_run({}, {10, {}, 2}));
  f.run();
  // Its handle lives: described although every job of it has signalled.
  REQUIRE(f.sched.describe(g.finished.point()));
  gone.reset();  // the handle goes; the scheduler lets go of the entity in its next pass
  f.run();
  CHECK_FALSE(f.sched.describe(g.finished.point()));
  REQUIRE(f.sched.describe(k.finished.point()));
  // After shutdown the scheduler holds no entity.
  f.shutdown();
  CHECK_FALSE(f.sched.describe(k.finished.point()));
}
