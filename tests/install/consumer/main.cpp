// Pushes one job through an installed cosched, on the simulated ring.
#include <cosched/cosched.hpp>
#include <cosched/sim/sim_ring.hpp>

#include <cstdio>

namespace {
cosched::job<cosched::sim::command> record(cosched::sim::command cmd) { co_return cmd; }
}  // namespace

int main() {
  asio::io_context ctx;
  cosched::sim::virtual_clock clock;
  cosched::sim::virtual_ring ring(clock);
  cosched::scheduler<cosched::sim::command> sched(ctx.get_executor(), ring);
  auto queue = sched.make_entity({.prio = cosched::priority::normal, .name = "queue"});
  auto done = queue.push(record({250, {}, 1})).finished;
  clock.run(ctx);
  auto shut = sched.shutdown(std::chrono::nanoseconds(0));
  clock.run(ctx);
  if (!done.signalled() || done.error() || !shut.signalled()) return 1;
  std::printf("consumer: 1 job, finished ok at %llu us\n", static_cast<unsigned long long>(clock.now()));
  return 0;
}
