// The real-time simulated ring (device thread, eventfd, reactor watch): what it
// says at a timeout about a command whose completion is still on its way.
#include "cosched/sim/real_ring.hpp"

#include <chrono>
#include <thread>

#include <asio/io_context.hpp>

#include "catch.hpp"

using namespace cosched;

namespace {

// Waits (not running the io_context) until the device has queued `n` completions.
bool device_finished(const sim::real_ring& ring, std::size_t n) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (ring.completions_waiting() < n) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace

TEST_CASE("real_ring: a command that finished is never called hung, before or after the reactor saw it",
          "[sim][real_ring][reactor][threads]") {
  asio::io_context ctx(1);
  reactor events(ctx);
  {
    sim::real_ring ring(events);
    sim::command quick{10, sim::fault::none(), 1};
    sim::command stuck{10, sim::fault::hang(), 2};
    const fence done = ring.run(quick);
    // The device has finished it; the completion waits for the reactor, which
    // does not run (a loaded machine, a timer that fires first).
    REQUIRE(device_finished(ring, 1));
    CHECK_FALSE(done.signalled());
    CHECK(ring.on_timeout(quick) == timeout_verdict::progressing);
    ring.run(stuck);
    CHECK(ring.on_timeout(stuck) == timeout_verdict::hung);
    // Once the reactor has handled it, still not hung.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!done.signalled() && std::chrono::steady_clock::now() < give_up) {
      ctx.restart();
      ctx.poll();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    REQUIRE(done.signalled());
    CHECK_FALSE(done.error());
    CHECK(ring.on_timeout(quick) == timeout_verdict::progressing);
    CHECK(ring.on_timeout(stuck) == timeout_verdict::hung);
    ring.cancel_all();
  }
  ctx.poll();
}
