// A scheduler on a virtual-clock sim ring, with helpers to push jobs and read
// back what happened; shared by the unit, lifetime and semantics tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include <asio/io_context.hpp>

#include "cosched/cosched.hpp"
#include "cosched/testing.hpp"

namespace cosched::test {

using sim::command;
using sim_job = job<sim::command>;

/// The common job body: waits for `deps` in order, then returns the command.
inline sim_job wait_then_run(std::vector<fence> deps, command cmd) {
  for (auto& dependency : deps) co_await dependency;
  co_return cmd;
}

/// When and how a fence signalled, seen from its waiter's executor.
struct outcome {
  std::optional<sim::time_us> at;
  std::error_code error;
};

/// What the fixtures share: an io_context driven by a virtual clock, and
/// readers of what happened. Constructed first, destroyed last.
struct virtual_run {
  /// Records when `f` signals (in virtual time) into `into`.
  void observe(const fence& f, outcome& into) {
    f.async_wait(ctx.get_executor(), [this, &into](std::error_code ec) {
      into.at = clock.now();
      into.error = ec;
    });
  }

  void run() { clock.run(ctx); }

  /// Shuts `sched` down now (bound 0) and runs until it completed.
  void shut_down(scheduler<command>& sched) {
    auto done = sched.shutdown(std::chrono::nanoseconds(0));
    clock.run(ctx);
    if (!done.signalled()) throw std::logic_error("shutdown did not complete");
  }

  /// Tags on `ring` in run order (replays included).
  static std::vector<std::uint64_t> tags_of(const sim::virtual_ring& ring) {
    std::vector<std::uint64_t> tags;
    for (const auto& r : ring.log()) tags.push_back(r.tag);
    return tags;
  }
  /// When the latest run of `tag` on `ring` started.
  static std::optional<sim::time_us> run_at_of(const sim::virtual_ring& ring, std::uint64_t tag) {
    std::optional<sim::time_us> at;
    for (const auto& r : ring.log())
      if (r.tag == tag) at = r.run_at;
    return at;
  }

  asio::io_context ctx;
  sim::virtual_clock clock;
};

struct sim_fixture : virtual_run {
  explicit sim_fixture(std::uint32_t credits = 1)
      : ring(clock), sched(ctx.get_executor(), ring, {.credit_limit = credits}) {}
  ~sim_fixture() {
    if (!sched.is_shut_down()) shutdown();
  }

  /// Shuts down now (bound 0) and runs until it completed.
  void shutdown() { shut_down(sched); }

  /// Run times of each tag on the ring, in run order.
  std::vector<std::uint64_t> run_order() const { return tags_of(ring); }
  std::optional<sim::time_us> run_at(std::uint64_t tag) const { return run_at_of(ring, tag); }

  sim::virtual_ring ring;
  scheduler<command> sched;
};

}  // namespace cosched::test
