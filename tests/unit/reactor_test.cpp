// The io_uring reactor: readiness of eventfds becomes fence signals, waits can
// be cancelled, watches fire repeatedly, thousands of waits share one ring and
// are submitted in batches, and a job can co_await a kernel fence.
#include "cosched/reactor.hpp"

#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <latch>
#include <mutex>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "event_fd.hpp"
#include "sim_fixture.hpp"

using namespace cosched;
using test::event_fd;

namespace {

// Runs `ctx` until `done()`, one handler at a time. The context stops when it
// runs out of work (a reactor with nothing to wait for holds none); work
// posted after that needs a restart.
template <class Done>
void run_until(asio::io_context& ctx, Done done) {
  while (!done()) {
    if (ctx.stopped()) ctx.restart();
    ctx.run_one();
  }
}

}  // namespace

TEST_CASE("an eventfd signalled from another thread signals the fence on the reactor's thread", "[reactor]") {
  asio::io_context ctx(1);
  reactor r(ctx);
  event_fd device;
  auto f = r.wait_readable(device.fd);
  CHECK_FALSE(f.signalled());
  std::thread::id completed_on;
  std::error_code result = make_error_code(errc::broken);
  bool done = false;
  f.async_wait(ctx.get_executor(), [&](std::error_code ec) {
    completed_on = std::this_thread::get_id();
    result = ec;
    done = true;
  });
  std::thread signaller([&] { device.signal(); });
  run_until(ctx, [&] { return done; });
  signaller.join();
  CHECK(completed_on == std::this_thread::get_id());
  CHECK_FALSE(result);
  CHECK(f.signalled());
  CHECK(r.pending() == 0);
}

TEST_CASE("a cancelled wait fails cancelled, a completed one is not cancelled", "[reactor]") {
  asio::io_context ctx(1);
  reactor r(ctx);
  event_fd a, b;
  auto fa = r.wait_readable(a.fd);
  auto fb = r.wait_readable(b.fd);
  b.signal();
  run_until(ctx, [&] { return fb.signalled(); });
  CHECK(r.cancel(fa));
  CHECK_FALSE(r.cancel(fb));  // already signalled
  run_until(ctx, [&] { return fa.signalled(); });
  CHECK(fa.error() == make_error_code(errc::cancelled));
  CHECK_FALSE(fb.error());
  CHECK(r.pending() == 0);
}

TEST_CASE("an invalid fd fails the fence with EBADF", "[reactor]") {
  asio::io_context ctx(1);
  reactor r(ctx);
  auto f = r.wait_readable(1'000'000);
  run_until(ctx, [&] { return f.signalled(); });
  CHECK(f.error() == std::error_code(EBADF, std::generic_category()));
}

TEST_CASE("a watch fires on every readiness until unwatched", "[reactor]") {
  asio::io_context ctx(1);
  reactor r(ctx);
  event_fd device;
  int calls = 0;
  reactor::watch_id id = 0;
  id = r.watch(device.fd, [&] {
    std::uint64_t count;
    while (::read(device.fd, &count, sizeof count) == sizeof count) {
    }
    if (++calls == 3) r.unwatch(id);
  });
  for (int round = 1; round <= 3; ++round) {
    device.signal();
    run_until(ctx, [&] { return calls == round; });
  }
  run_until(ctx, [&] { return r.pending() == 0; });
  device.signal();  // unwatched: nothing more
  ctx.restart();
  ctx.poll();
  CHECK(calls == 3);
}

TEST_CASE("thousands of waits share one ring and are submitted in batches", "[reactor][scale]") {
  rlimit limit{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
  const std::size_t wanted = 4096;
  if (limit.rlim_cur < wanted + 64 && limit.rlim_max >= wanted + 64) {
    limit.rlim_cur = wanted + 64;
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  const std::size_t count = std::min<std::size_t>(wanted, limit.rlim_cur > 64 ? limit.rlim_cur - 64 : 0);
  REQUIRE(count >= 1024);
  asio::io_context ctx(1);
  // A completion queue smaller than the burst: the overflow must be recovered.
  reactor r(ctx, {.entries = 256, .completion_entries = 512, .single_issuer = true});
  std::vector<std::unique_ptr<event_fd>> fds;
  std::vector<fence> fences;
  // Requested from a handler: one batch, flushed by one handler after it.
  asio::post(ctx, [&] {
    for (std::size_t i = 0; i < count; ++i) {
      fds.push_back(std::make_unique<event_fd>());
      fences.push_back(r.wait_readable(fds.back()->fd));
    }
  });
  run_until(ctx, [&] { return fences.size() == count && r.submit_calls() >= 1; });
  CHECK(r.pending() == count);
  // With 256 submission entries, `count` waits need about count/256 submits.
  CHECK(r.submit_calls() <= count / 256 + 2);
  std::thread device([&] {
    for (std::size_t i = 0; i < count; i += 2) fds[i]->signal();
  });
  device.join();
  run_until(ctx, [&] {
    for (std::size_t i = 0; i < count; i += 2)
      if (!fences[i].signalled()) return false;
    return true;
  });
  for (std::size_t i = 1; i < count; i += 2) CHECK_FALSE(fences[i].signalled());
  CHECK(r.pending() == count / 2);
}

TEST_CASE("a job co_awaits a kernel fence through the reactor", "[reactor][job]") {
  asio::io_context ctx(1);
  reactor r(ctx);
  struct instant_ring final : cosched::ring<test::command> {
    fence run(test::command&) override { return fence::make_signalled(); }
    void cancel_all() noexcept override {}
  } hardware;
  scheduler<test::command> sched(ctx.get_executor(), hardware);
  auto e = sched.make_entity();
  event_fd device;
  bool resumed = false;
  auto body = [&](fence kernel) -> test::sim_job {
    co_await kernel;
    resumed = true;
    co_return test::command{};
  };
  auto pushed = e.push(body(r.wait_readable(device.fd)));
  ctx.restart();
  ctx.poll();
  CHECK_FALSE(resumed);
  std::thread signaller([&] { device.signal(); });
  run_until(ctx, [&] { return pushed.finished.signalled(); });
  signaller.join();
  CHECK(resumed);
  CHECK_FALSE(pushed.finished.error());
  auto done = sched.shutdown(std::chrono::nanoseconds(0));
  run_until(ctx, [&] { return done.signalled(); });
}

TEST_CASE("waits requested from another thread are handed to the reactor's thread", "[reactor][threads]") {
  asio::io_context ctx(1);
  reactor r(ctx);
  event_fd device;
  fence f;
  std::latch requested(1);
  std::thread other([&] {
    f = r.wait_readable(device.fd);
    requested.count_down();
    device.signal();
  });
  requested.wait();
  run_until(ctx, [&] { return f.signalled(); });
  other.join();
  CHECK_FALSE(f.error());
}

namespace {

// Runs ctx.run() and reports whether it returned by itself; a watchdog thread
// stops the context after `limit` otherwise (a guard, not a measurement).
bool run_returns_by_itself(asio::io_context& ctx, std::chrono::seconds limit = std::chrono::seconds(20)) {
  std::mutex lock;
  std::condition_variable finished;
  bool returned = false, stopped_by_watchdog = false;
  std::thread watchdog([&] {
    std::unique_lock held(lock);
    if (!finished.wait_for(held, limit, [&] { return returned; })) {
      stopped_by_watchdog = true;
      ctx.stop();
    }
  });
  ctx.run();
  {
    std::lock_guard held(lock);
    returned = true;
  }
  finished.notify_one();
  watchdog.join();
  return !stopped_by_watchdog;
}

}  // namespace

TEST_CASE("a reactor with nothing to wait for lets io_context::run() return", "[reactor]") {
  asio::io_context ctx(1);
  reactor r(ctx);
  CHECK(run_returns_by_itself(ctx));  // nothing was ever waited for
  event_fd device;
  auto f = r.wait_readable(device.fd);
  device.signal();
  ctx.restart();
  CHECK(run_returns_by_itself(ctx));  // the wait completed: nothing left
  CHECK(f.signalled());
  CHECK(r.pending() == 0);
  // A watch keeps it waiting until it is unwatched.
  reactor::watch_id id = 0;
  int seen = 0;
  id = r.watch(device.fd, [&] {
    std::uint64_t count;
    [[maybe_unused]] const auto got = ::read(device.fd, &count, sizeof count);
    ++seen;
    r.unwatch(id);
  });
  device.signal();
  ctx.restart();
  CHECK(run_returns_by_itself(ctx));
  CHECK(seen == 1);
  CHECK(r.pending() == 0);
}

TEST_CASE(
    "the README's flow: a scheduler and a reactor on an io_context, a job waiting for an eventfd, shutdown: "
    "run() returns",
    "[reactor][scheduler]") {
  // Hardware that has finished every command at once.
  struct done_ring final : ring<sim::command> {
    fence run(sim::command&) override { return fence::stub(); }
    void cancel_all() noexcept override {}
  };
  asio::io_context ctx(1);
  reactor r(ctx);
  done_ring ring;
  event_fd device;
  bool finished = false;
  {
    scheduler<sim::command> sched(ctx.get_executor(), ring, {.credit_limit = 2});
    auto queue = sched.make_entity();
    auto body = [](fence ready) -> job<sim::command> {
      co_await ready;
      co_return sim::command{};
    };
    auto done = queue.push(body(r.wait_readable(device.fd)));
    device.signal();
    done.finished.async_wait(ctx.get_executor(), [&](std::error_code ec) {
      finished = !ec;
      sched.shutdown();
    });
    CHECK(run_returns_by_itself(ctx));
    CHECK(finished);
    CHECK(sched.is_shut_down());
  }
  CHECK(r.pending() == 0);
}
