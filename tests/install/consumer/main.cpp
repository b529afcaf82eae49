// Pushes one job through an installed cosched, on the simulated ring, and waits
// for it in an Asio coroutine (asio::use_awaitable).
#include <cosched/cosched.hpp>
#include <cosched/sim/sim_ring.hpp>

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/use_awaitable.hpp>

#include <cstdio>

namespace {
cosched::job<cosched::sim::command> record(cosched::sim::command cmd) { co_return cmd; }

// Compiles only where Asio's co_await support is on: under clang with Asio 1.22,
// only with the definition that the installed package passes on.
asio::awaitable<void> await_finished(cosched::fence finished, bool& awaited) {
  co_await finished.async_wait(asio::use_awaitable);
  awaited = true;
}

const char* compiler() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "g++ " __VERSION__;
#else
  return "an unknown compiler";
#endif
}
}  // namespace

int main() {
  asio::io_context ctx;
  cosched::sim::virtual_clock clock;
  cosched::sim::virtual_ring ring(clock);
  cosched::scheduler<cosched::sim::command> sched(ctx.get_executor(), ring);
  auto queue = sched.make_entity({.prio = cosched::priority::normal, .name = "queue"});
  auto done = queue.push(record({250, {}, 1})).finished;
  bool awaited = false;
  asio::co_spawn(ctx, await_finished(done, awaited), asio::detached);
  clock.run(ctx);
  auto shut = sched.shutdown(std::chrono::nanoseconds(0));
  clock.run(ctx);
  if (!done.signalled() || done.error() || !awaited || !shut.signalled()) return 1;
  std::printf("consumer: 1 job, finished ok at %llu us, awaited with asio::use_awaitable; built with %s\n",
              static_cast<unsigned long long>(clock.now()), compiler());
  return 0;
}
