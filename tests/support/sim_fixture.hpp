// A scheduler on a virtual-clock sim ring, with helpers to push jobs and read
// back what happened; shared by the unit, lifetime and semantics tests.
#pragma once

#include <cstdint>
#include <optional>
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

struct sim_fixture {
  explicit sim_fixture(std::uint32_t credits = 1)
      : ring(clock), sched(ctx.get_executor(), ring, {.credit_limit = credits}) {}
  ~sim_fixture() {
    if (!sched.is_shut_down()) shutdown();
  }

  /// Records when `f` signals (in virtual time) into `into`.
  void observe(const fence& f, outcome& into) {
    f.async_wait(ctx.get_executor(), [this, &into](std::error_code ec) {
      into.at = clock.now();
      into.error = ec;
    });
  }

  void run() { clock.run(ctx); }

  /// Shuts down now (bound 0) and runs until it completed.
  void shutdown() {
    auto done = sched.shutdown(std::chrono::nanoseconds(0));
    clock.run(ctx);
    if (!done.signalled()) throw std::logic_error("shutdown did not complete");
  }

  /// Run times of each tag on the ring, in run order.
  std::vector<std::uint64_t> run_order() const {
    std::vector<std::uint64_t> tags;
    for (const auto& r : ring.log()) tags.push_back(r.tag);
    return tags;
  }
  std::optional<sim::time_us> run_at(std::uint64_t tag) const {
    std::optional<sim::time_us> at;
    for (const auto& r : ring.log())
      if (r.tag == tag) at = r.run_at;
    return at;
  }

  asio::io_context ctx;
  sim::virtual_clock clock;
  sim::virtual_ring ring;
  scheduler<command> sched;
};

}  // namespace cosched::test
