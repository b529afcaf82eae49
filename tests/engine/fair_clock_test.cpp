// Policy fair's clock on its own: weights, ring time from run or the ring's
// previous end, estimates for commands in flight, saturation, the floor.
#include "engine/fair_clock.hpp"

#include <chrono>

#include "catch.hpp"

using namespace cosched;
using namespace cosched::detail;
using std::chrono::nanoseconds;

TEST_CASE("fair_clock: ring time is charged times 8 / weight, from the run or the ring's previous end",
          "[engine][fair_clock]") {
  CHECK(fair_clock::multiplier(priority::kernel) == 1);
  CHECK(fair_clock::multiplier(priority::high) == 2);
  CHECK(fair_clock::multiplier(priority::normal) == 4);
  CHECK(fair_clock::multiplier(priority::low) == 8);

  fair_clock clock(2);
  job_block first(fence_point{1, 1}), second(fence_point{1, 2}), other_ring(fence_point{1, 3});
  for (job_block* job : {&first, &second, &other_ring}) job->make_cold();  // as push makes them under fair
  fair_entity a, b;
  fair_clock::started(first, nanoseconds(0));
  fair_clock::started(second, nanoseconds(10));  // queued behind `first` on ring 0
  fair_clock::started(other_ring, nanoseconds(10));
  clock.charge(a, priority::high, first, 0, nanoseconds(100));
  CHECK(a.virtual_time == 200);
  CHECK(a.ring_time_estimate == 100);
  // `second` could start only when `first` ended (100), not at its run (10).
  clock.charge(b, priority::low, second, 0, nanoseconds(130));
  CHECK(b.virtual_time == 30 * 8);
  CHECK(b.ring_time_estimate == 30);
  // Ring 1 has its own end: from the run.
  clock.charge(b, priority::low, other_ring, 1, nanoseconds(60));
  CHECK(b.virtual_time == 30 * 8 + 50 * 8);
  CHECK(clock.mean() == (100 + 30 + 50) / 3);
  // A reset moves the ring's end: a replay counts from there.
  clock.ring_reset(0, nanoseconds(500));
  job_block replayed(fence_point{1, 4});
  replayed.make_cold();
  fair_clock::started(replayed, nanoseconds(400));
  clock.charge(a, priority::high, replayed, 0, nanoseconds(520));
  CHECK(a.virtual_time == 200 + 20 * 2);
}

TEST_CASE("fair_clock: keys group entities whose estimate is the scheduler's mean", "[engine][fair_clock]") {
  fair_clock clock(1);
  queue_entry idle, own_estimate, mean_estimate;
  idle.fair.virtual_time = 700;
  const order_key k_idle = clock.key(idle, priority::normal);
  CHECK(k_idle.group == 0);
  CHECK(k_idle.time == 700);

  own_estimate.in_flight = 2;
  own_estimate.fair.virtual_time = 100;
  own_estimate.fair.ring_time_estimate = 30;
  const order_key k_own = clock.key(own_estimate, priority::high);
  CHECK(k_own.group == 0);
  CHECK(k_own.time == 100 + 30 * 2 * 2);

  mean_estimate.in_flight = 3;
  mean_estimate.fair.virtual_time = 50;
  const order_key k_mean = clock.key(mean_estimate, priority::low);
  CHECK(k_mean.group == 8 * 3);
  CHECK(k_mean.time == 50);
  CHECK(clock.effective_time(k_mean) == 50 + 1 * 24);  // 1 ns before any measurement
  job_block job(fence_point{1, 1});
  job.make_cold();
  fair_entity other;
  fair_clock::started(job, nanoseconds(0));
  clock.charge(other, priority::normal, job, 0, nanoseconds(1000));
  CHECK(clock.effective_time(k_mean) == 50 + 1000 * 24);
}

TEST_CASE("fair_clock: times saturate instead of wrapping", "[engine][fair_clock]") {
  fair_clock clock(1);
  queue_entry entry;
  entry.in_flight = 4;
  entry.fair.virtual_time = fair_clock::saturated - 10;
  entry.fair.ring_time_estimate = fair_clock::saturated / 2;
  CHECK(clock.key(entry, priority::low).time == fair_clock::saturated);
  entry.fair.ring_time_estimate = 0;
  CHECK(clock.effective_time(clock.key(entry, priority::low)) == fair_clock::saturated);
}

TEST_CASE("fair_clock: an entity turning active rejoins 1 ns below the floor, which never decreases",
          "[engine][fair_clock]") {
  fair_clock clock(1);
  fair_entity a, b;
  clock.note_activity(b, true);  // a floor of 0: nothing below it
  CHECK(b.virtual_time == 0);
  clock.note_activity(b, false);
  clock.raise_floor(500);
  clock.note_activity(a, true);
  CHECK(a.virtual_time == 499);
  a.virtual_time = 800;
  clock.note_activity(a, true);  // was active already: unchanged
  CHECK(a.virtual_time == 800);
  clock.raise_floor(300);
  CHECK(clock.floor() == 500);
  b.virtual_time = 900;
  clock.note_activity(b, true);  // above the floor: unchanged
  CHECK(b.virtual_time == 900);
  clock.note_activity(a, false);
  clock.raise_floor(850);
  clock.note_activity(a, true);
  CHECK(a.virtual_time == 849);
  fair_entity c;
  c.virtual_time = 849;
  clock.note_activity(c, true);  // already at floor - 1 ns: unchanged
  CHECK(c.virtual_time == 849);
}
