// The scheduler never acts on a timeout whose command has completed: a
// timeout that reaches the scheduler after the command's hardware fence
// signalled (its wake-up still queued behind the timeout) retires the job; the
// ring is not asked, nothing is banned or reset.
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include <asio/io_context.hpp>

#include "catch.hpp"
#include "cosched/cosched.hpp"
#include "manual_timers.hpp"

using namespace cosched;
using testing::manual_timers;

namespace {

struct command {
  int id = 0;
};

/// A ring whose hardware fences the test signals; at a timeout it says hung
/// (the default), so acting on a timeout would ban and reset.
class manual_ring final : public ring<command> {
 public:
  fence run(command& c) override {
    ran.push_back(c.id);
    return done.emplace_back().get_fence();
  }
  void cancel_all() noexcept override { ++cancels; }
  timeout_verdict on_timeout(command&) override {
    ++asked;
    return timeout_verdict::hung;
  }
  void reset() override { ++resets; }

  std::vector<promise> done;
  std::vector<int> ran;
  int asked = 0, cancels = 0, resets = 0;
};

job<command> make(int id) { co_return command{id}; }

}  // namespace

TEST_CASE("a timeout that arrives after the command's fence signalled retires the job: no ban, no reset",
          "[scheduler][timeout]") {
  asio::io_context ctx(1);
  manual_timers timers;
  manual_ring hardware;
  scheduler<command> sched(ctx.get_executor(), hardware,
                           {.credit_limit = 2, .timeout = std::chrono::milliseconds(2), .timers = &timers});
  auto queue = sched.make_entity({.name = "queue"});
  auto run_ready = [&] {
    ctx.restart();
    ctx.poll();
  };
  auto first = queue.push(make(1));
  auto second = queue.push(make(2));
  run_ready();
  REQUIRE(hardware.ran == std::vector<int>{1, 2});
  REQUIRE(timers.armed() == 1);  // the front command's timeout

  // The timeout fires, then the command completes: both reach the scheduler
  // before it runs again, the timeout first.
  timers.fire_all();
  hardware.done[0].set_value();

  run_ready();
  CHECK(hardware.asked == 0);  // the ring was not asked about a completed command
  CHECK(first.finished.signalled());
  CHECK_FALSE(first.finished.error());
  CHECK(queue.get_reset_status().kind == reset_kind::untouched);
  CHECK(hardware.resets == 0);
  CHECK(hardware.cancels == 0);
  REQUIRE(timers.armed() == 1);  // now for the second command

  // A timeout for a command that has not completed is acted on.
  timers.fire_all();
  run_ready();
  CHECK(hardware.asked == 1);
  CHECK(second.finished.error() == make_error_code(errc::timed_out));
  CHECK(queue.get_reset_status().kind == reset_kind::guilty);

  auto down = sched.shutdown();
  run_ready();
  CHECK(down.signalled());
}
