// Diagnosed programming errors: each mode commits one, which cosched must
// report on stderr and terminate for. ctest checks the message and the exit.
//
// The program never prints the expected messages itself. If cosched does not
// diagnose the error, the program says so and exits 0, so the test that expects
// a failing exit fails; an abort() (how cosched terminates) becomes exit status
// 3 through a SIGABRT handler, because ctest counts a death by signal as a
// failure whatever WILL_FAIL says.
#include "cosched/scheduler.hpp"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <latch>
#include <thread>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>

#include "cosched/cosched.hpp"

namespace {

constexpr int aborted_exit_status = 3;

extern "C" void on_abort(int) {
  static const char note[] = "lifetime_diagnosed: the process called abort()\n";
  // Only async-signal-safe calls here.
  (void)!write(STDERR_FILENO, note, sizeof note - 1);
  _exit(aborted_exit_status);
}

struct plain_command {
  int value = 0;
};

class instant_ring final : public cosched::ring<plain_command> {
 public:
  cosched::fence run(plain_command&) override { return cosched::fence::make_signalled(); }
  void cancel_all() noexcept override {}
};

cosched::job<plain_command> plain_body() { co_return plain_command{1}; }

cosched::job<plain_command> blocking_body(std::latch& entered, std::latch& release) {
  entered.count_down();
  release.wait();  // holds the pass that runs this body
  co_return plain_command{2};
}

cosched::job<plain_command> marker_body(std::latch& ran) {
  ran.count_down();
  co_return plain_command{3};
}

[[noreturn]] void not_diagnosed(const char* what) {
  std::fprintf(stderr, "lifetime_diagnosed: NOT diagnosed: %s\n", what);
  std::fflush(stderr);
  std::_Exit(0);
}

// A scheduler destroyed with a queued job and without shutdown().
void scheduler_not_shut_down() {
  asio::io_context ctx;
  instant_ring hardware;
  {
    cosched::scheduler<plain_command> sched(ctx.get_executor(), hardware);
    auto e = sched.make_entity();
    e.push(plain_body());
  }
  not_diagnosed("scheduler destroyed without shutdown()");
}

// A scheduler destroyed after shutdown() was requested but before it completed
// (nobody ran the executor).
void scheduler_shutdown_not_completed() {
  asio::io_context ctx;
  instant_ring hardware;
  {
    cosched::scheduler<plain_command> sched(ctx.get_executor(), hardware);
    auto e = sched.make_entity();
    e.push(plain_body());
    auto pending = sched.shutdown();
  }
  not_diagnosed("scheduler destroyed while its shutdown was pending");
}

// A scope destroyed without join().
void scope_not_joined() {
  { cosched::scope s; }
  not_diagnosed("scope destroyed without join()");
}

// A scope destroyed while a job that joined it is still queued.
void scope_with_active_job() {
  asio::io_context ctx;
  instant_ring hardware;
  cosched::scheduler<plain_command> sched(ctx.get_executor(), hardware);
  auto e = sched.make_entity();
  {
    cosched::scope s;
    e.push(plain_body(), {.in = &s});
  }
  not_diagnosed("scope destroyed with an active job");
}

// Two threads run the scheduler's io_context without a strand. The first pass
// blocks inside a job body until a second pass has run; the second pass starts
// on the other thread while the first is still inside the body, deterministically.
void handlers_run_concurrently() {
  asio::io_context ctx;
  auto work = asio::make_work_guard(ctx);
  instant_ring hardware;
  cosched::scheduler<plain_command> sched(ctx.get_executor(), hardware);
  auto e = sched.make_entity();
  std::latch entered(1), release(1), second_ran(1);
  e.push(blocking_body(entered, release));
  std::thread first([&] { ctx.run(); });
  std::thread second([&] { ctx.run(); });
  entered.wait();  // one thread is inside a pass, blocked in the body
  // This push requests a new pass; the idle thread runs it while the first pass
  // is still running: cosched must detect the concurrent entry.
  e.push(marker_body(second_ran));
  second_ran.wait();
  not_diagnosed("two passes of one scheduler ran concurrently");
}

}  // namespace

int main(int argc, char* argv[]) {
  struct sigaction action {};
  action.sa_handler = on_abort;
  sigemptyset(&action.sa_mask);
  sigaction(SIGABRT, &action, nullptr);

  const char* mode = argc == 2 ? argv[1] : "";
  if (std::strcmp(mode, "scheduler") == 0) scheduler_not_shut_down();
  if (std::strcmp(mode, "scheduler_shutting_down") == 0) scheduler_shutdown_not_completed();
  if (std::strcmp(mode, "scope") == 0) scope_not_joined();
  if (std::strcmp(mode, "scope_active") == 0) scope_with_active_job();
  if (std::strcmp(mode, "concurrent") == 0) handlers_run_concurrently();
  // Exit 0: a mistyped mode must not look like a diagnosis.
  std::fprintf(stderr,
               "usage: lifetime_diagnosed scheduler|scheduler_shutting_down|scope|scope_active|concurrent\n");
  return 0;
}
