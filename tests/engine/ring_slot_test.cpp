// Ring slots on their own: the in-flight list and its credits, every call into
// the ring with exceptions turned into failed fences in one place, the
// timeout's generations; and, end to end, that in ring_per_entity mode a slot
// goes with its entity.
#include "engine/ring_slot.hpp"

#include <memory>
#include <stdexcept>
#include <system_error>
#include <vector>

#include <asio/io_context.hpp>

#include "catch.hpp"
#include "cosched/cosched.hpp"
#include "cosched/error.hpp"
#include "cosched/testing.hpp"

using namespace cosched;
using namespace cosched::detail;

namespace {

// A ring adapter that misbehaves in a chosen way.
struct scripted_ring final : ring_adapter {
  enum class how { ok, system_error, other_exception, empty_fence };
  how run_does = how::ok;
  bool reset_throws = false;
  bool on_timeout_throws = false;
  int cancels = 0;
  int resets = 0;

  fence answer() {
    switch (run_does) {
      case how::ok:
        return fence::make_signalled();
      case how::system_error:
        throw std::system_error(std::make_error_code(std::errc::io_error));
      case how::other_exception:
        throw std::runtime_error("ring failure");
      case how::empty_fence:
        return fence();
    }
    return fence();
  }
  fence run(job_promise_base&) override { return answer(); }
  fence replay(job_promise_base&) override { return answer(); }
  bool executes_in_order() const noexcept override { return true; }
  void cancel_all() noexcept override { ++cancels; }
  timeout_verdict on_timeout(job_promise_base&) override {
    if (on_timeout_throws) throw std::runtime_error("verdict failure");
    return timeout_verdict::progressing;
  }
  void reset() override {
    ++resets;
    if (reset_throws) throw std::runtime_error("reset failure");
  }
};

struct release_block {
  void operator()(job_block* block) const noexcept { block->release(); }
};

}  // namespace

TEST_CASE("ring_slot: the in-flight list keeps run order and holds the credits", "[engine][ring_slot]") {
  ring_slot slot(nullptr, 3);
  CHECK(slot.index() == 3);
  std::vector<std::unique_ptr<job_block, release_block>> jobs;
  for (std::uint32_t credits : {1u, 2u, 1u}) {
    jobs.emplace_back(new job_block(fence_point{1, jobs.size() + 1}));
    jobs.back()->credits = credits;
    slot.append(*jobs.back());
  }
  CHECK(slot.credits_in_flight() == 4);
  CHECK(slot.fits(1, 5));
  CHECK(!slot.fits(2, 5));
  slot.remove(*jobs[1]);
  CHECK(slot.credits_in_flight() == 2);
  CHECK(slot.in_flight() == std::vector<job_block*>{jobs[0].get(), jobs[2].get()});
  CHECK(slot.front() == jobs[0].get());
  slot.remove(*jobs[0]);
  slot.remove(*jobs[2]);
  CHECK(slot.idle());
  CHECK(slot.credits_in_flight() == 0);
}

TEST_CASE("ring_slot: what the ring throws or returns becomes a hardware fence", "[engine][ring_slot]") {
  auto ring = std::make_unique<scripted_ring>();
  scripted_ring& script = *ring;
  ring_slot slot(std::move(ring), 0);
  job_promise_base command;  // names the command (the adapter would find it in the promise)

  // What the ring threw is handed back, for the engine to report.
  std::exception_ptr thrown;
  auto run = [&] { return slot.run(command, thrown); };
  auto replay = [&] { return slot.replay(command, thrown); };

  script.run_does = scripted_ring::how::ok;
  fence f = run();
  CHECK((f.signalled() && !f.error()));
  CHECK(thrown == nullptr);

  script.run_does = scripted_ring::how::system_error;
  for (fence g : {run(), replay()}) {
    REQUIRE(g.signalled());
    CHECK(g.error() == std::make_error_code(std::errc::io_error));
  }
  CHECK(thrown != nullptr);
  thrown = nullptr;
  script.run_does = scripted_ring::how::other_exception;
  for (fence g : {run(), replay()}) {
    REQUIRE(g.signalled());
    CHECK(g.error() == make_error_code(errc::exception));
  }
  CHECK(thrown != nullptr);
  thrown = nullptr;
  script.run_does = scripted_ring::how::empty_fence;
  for (fence g : {run(), replay()}) {
    REQUIRE(g.signalled());
    CHECK(g.error() == make_error_code(errc::broken));
  }
  CHECK(thrown == nullptr);  // nothing was thrown

  CHECK(slot.on_timeout(command) == timeout_verdict::progressing);
  script.on_timeout_throws = true;
  CHECK(slot.on_timeout(command) == timeout_verdict::hung);

  slot.reset();
  CHECK((script.resets == 1 && script.cancels == 0));
  script.reset_throws = true;
  slot.reset();  // a reset that throws falls back to cancel_all
  CHECK((script.resets == 2 && script.cancels == 1));
}

TEST_CASE("ring_slot: a timeout message is current only for the armed generation", "[engine][ring_slot]") {
  testing::virtual_clock clock;
  sim::virtual_timers timers(clock);
  ring_slot slot(nullptr, 0);
  std::vector<std::uint64_t> fired;
  auto make = [&](std::uint64_t generation) { return [&fired, generation] { fired.push_back(generation); }; };
  slot.arm_timeout(timers, std::chrono::microseconds(10), make);
  slot.arm_timeout(timers, std::chrono::microseconds(10), make);  // re-armed: the first is cancelled
  asio::io_context io;
  clock.run(io);
  // Generations: 1 (first arm), 2 (its disarm), 3 (the second arm).
  REQUIRE(fired == std::vector<std::uint64_t>{3});
  CHECK(!slot.take_timeout(1));  // stale
  CHECK(slot.take_timeout(3));
  CHECK(!slot.take_timeout(3));                                   // taken: no longer armed
  slot.arm_timeout(timers, std::chrono::microseconds(10), make);  // 4
  slot.disarm_timeout(timers);                                    // 5
  clock.run(io);
  CHECK(fired.size() == 1);
  CHECK(!slot.take_timeout(4));
}

namespace {

cosched::job<sim::command> run_command(sim::command c) { co_return c; }

}  // namespace

TEST_CASE(
    "ring_per_entity: a slot goes with its entity, and 100k entities one after another leave none behind",
    "[engine][ring_slot][lifetime]") {
  const std::size_t before = ring_slot::live();
  {
    asio::io_context io;
    testing::virtual_clock clock;
    sim::virtual_timers timers(clock);
    testing::virtual_ring ring(clock);  // every entity's ring (one after another)
    scheduler<sim::command> sched(
        io.get_executor(),
        {.mode = ring_mode::ring_per_entity, .timeout = std::chrono::milliseconds(1), .timers = &timers});
    constexpr std::size_t entities = 100'000;
    std::size_t succeeded = 0;
    std::size_t most_live = 0;
    for (std::size_t i = 0; i < entities; ++i) {
      fence done;
      {
        auto e = sched.make_entity({.own_ring = &ring});
        most_live = std::max(most_live, ring_slot::live() - before);
        done = e.push(run_command({1, {}, i})).finished;
      }  // the handle goes: the entity is collected once its job has retired
      clock.run(io);
      succeeded += done.signalled() && !done.error();
      if (ring_slot::live() != before) {
        FAIL("entity " << i << ": " << (ring_slot::live() - before)
                       << " ring slots alive after its collection");
      }
    }
    CHECK(succeeded == entities);
    CHECK(most_live == 1);
    auto down = sched.shutdown(std::chrono::nanoseconds(0));
    clock.run(io);
    REQUIRE(down.signalled());
  }
  CHECK(ring_slot::live() == before);
}
