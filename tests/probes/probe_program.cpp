// A program with known jobs for the USDT probe test (bpftrace_check.cmake):
// two entities, a declared dependency that waits, a command that hangs, its
// entity's ban and the ring's reset and replay. Each probe fires a number of
// times, with arguments, that the test knows in advance:
//
//   render:  jobs 1 (hangs: times out), 2 and 3 (cancelled by the ban)
//   compute: jobs 1 to 5 (2 declares 1 as a dependency and waits for it; 1
//            completes before the hang, 2 to 5 are replayed and complete)
//
// Exits 0 when every job ended as above, 1 otherwise (saying which).
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <system_error>
#include <vector>

#include <asio/io_context.hpp>

#include "cosched/cosched.hpp"
#include "manual_timers.hpp"

using cosched::testing::manual_timers;

namespace {

struct command {
  int id = 0;
};

/// A ring whose hardware fences the program signals, by command id; at a
/// timeout it says hung.
class manual_ring final : public cosched::ring<command> {
 public:
  cosched::fence run(command& c) override { return done_[c.id].emplace_back().get_fence(); }
  cosched::fence replay(command& c) override { return run(c); }
  void cancel_all() noexcept override {}
  cosched::timeout_verdict on_timeout(command&) override { return cosched::timeout_verdict::hung; }
  void reset() override {}
  /// Completes the latest run of command `id`.
  void complete(int id) { done_[id].back().set_value(); }

 private:
  std::map<int, std::vector<cosched::promise>> done_;
};

cosched::job<command> make(int id) { co_return command{id}; }

int failures = 0;

void expect(const char* what, const cosched::fence& finished, std::error_code wanted) {
  if (finished.signalled() && finished.error() == wanted) return;
  std::fprintf(stderr, "probe_program: %s ended %s, not %s\n", what,
               finished.signalled() ? finished.error().message().c_str() : "unsignalled",
               wanted.message().c_str());
  ++failures;
}

}  // namespace

int main() {
  using cosched::errc;
  asio::io_context ctx(1);
  manual_timers timers;
  manual_ring hardware;
  cosched::scheduler<command> sched(
      ctx.get_executor(), hardware,
      {.credit_limit = 16, .timeout = std::chrono::seconds(1), .timers = &timers});
  auto run_ready = [&] {
    ctx.restart();
    ctx.poll();
  };
  auto render = sched.make_entity({.name = "render"});
  auto compute = sched.make_entity({.name = "compute"});
  // Ids: render 1 to 3, compute 11 to 15.
  auto hangs = render.push(make(1));
  run_ready();  // at the front of the ring
  auto c1 = compute.push(make(11));
  auto c2 = compute.push(make(12), {.after = {c1.finished}});
  auto c3 = compute.push(make(13));
  auto c4 = compute.push(make(14));
  auto c5 = compute.push(make(15));
  auto r2 = render.push(make(2));
  auto r3 = render.push(make(3));
  run_ready();
  hardware.complete(11);
  run_ready();  // c2 runs now
  timers.fire_all();
  run_ready();  // the hang: render is banned, the ring reset, c2 to c5 replayed
  for (int id = 12; id <= 15; ++id) hardware.complete(id);
  run_ready();
  auto down = sched.shutdown();
  run_ready();

  expect("render 1", hangs.finished, make_error_code(errc::timed_out));
  expect("render 2", r2.finished, make_error_code(errc::cancelled));
  expect("render 3", r3.finished, make_error_code(errc::cancelled));
  for (const auto* c : {&c1, &c2, &c3, &c4, &c5}) expect("a compute job", c->finished, {});
  if (!down.signalled()) {
    std::fprintf(stderr, "probe_program: shutdown did not complete\n");
    ++failures;
  }
  return failures == 0 ? 0 : 1;
}
