// uring_context: handlers in order, posts from other threads wake the sleeping
// loop, work guards and timers keep run() going, stop() wakes it; the reactor,
// Asio's own algorithms and cosched's schedulers (with timeouts) run on it.
#include "cosched/uring_context.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/post.hpp>
#include <asio/use_awaitable.hpp>

#include "catch.hpp"
#include "cosched/cosched.hpp"
#include "cosched/reactor.hpp"
#include "event_fd.hpp"
#include "sim_fixture.hpp"

using namespace cosched;
using test::event_fd;
using namespace std::chrono_literals;

TEST_CASE("uring_context runs handlers in post order and returns when out of work", "[uring_context]") {
  uring_context ctx;
  std::vector<int> order;
  for (int i = 0; i < 5; ++i) asio::post(ctx.get_executor(), [&order, i] { order.push_back(i); });
  asio::post(ctx.get_executor(), [&] {
    // Posted from a handler: after the ones already queued.
    asio::post(ctx.get_executor(), [&] { order.push_back(99); });
    order.push_back(5);
  });
  CHECK(ctx.run() == 7);
  CHECK(order == std::vector<int>{0, 1, 2, 3, 4, 5, 99});
  CHECK(ctx.run() == 0);  // nothing left: returns at once
}

TEST_CASE("uring_context: running_in_this_thread only inside run", "[uring_context]") {
  uring_context ctx;
  auto ex = ctx.get_executor();
  CHECK_FALSE(ex.running_in_this_thread());
  bool inside = false;
  asio::post(ex, [&] { inside = ex.running_in_this_thread(); });
  ctx.run();
  CHECK(inside);
  bool other_thread = true;
  std::thread t([&] { other_thread = ex.running_in_this_thread(); });
  t.join();
  CHECK_FALSE(other_thread);
}

TEST_CASE("uring_context: posts from several threads wake the sleeping loop and all run",
          "[uring_context][threads]") {
  uring_context ctx;
  auto guard = asio::make_work_guard(ctx.get_executor());
  constexpr int producers = 4, per_producer = 5000;
  std::atomic<int> ran{0};
  std::vector<int> last_seen(producers, -1);
  bool in_order = true;
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      for (int i = 0; i < per_producer; ++i) {
        asio::post(ctx.get_executor(), [&, p, i] {
          // Per producer, FIFO.
          if (last_seen[p] != i - 1) in_order = false;
          last_seen[p] = i;
          if (ran.fetch_add(1) + 1 == producers * per_producer) guard.reset();
        });
        if (i % 512 == 0) std::this_thread::sleep_for(50us);  // let the loop fall asleep now and then
      }
    });
  }
  ctx.run();  // returns once the last handler released the guard
  for (auto& t : threads) t.join();
  CHECK(ran.load() == producers * per_producer);
  CHECK(in_order);
}

TEST_CASE("uring_context: a work guard keeps run() waiting until released from another thread",
          "[uring_context]") {
  uring_context ctx;
  auto guard = asio::make_work_guard(ctx.get_executor());
  std::atomic<bool> released{false};
  std::thread releaser([&] {
    std::this_thread::sleep_for(20ms);
    released = true;
    guard.reset();
  });
  ctx.run();
  CHECK(released.load());
  releaser.join();
}

TEST_CASE("uring_context: stop() from another thread wakes run()", "[uring_context]") {
  uring_context ctx;
  auto guard = asio::make_work_guard(ctx.get_executor());
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    ctx.stop();
  });
  ctx.run();
  CHECK(ctx.stopped());
  stopper.join();
  ctx.restart();
  CHECK_FALSE(ctx.stopped());
  guard.reset();
  ctx.run();  // the wake-up handler stop() posted runs now
}

TEST_CASE("uring_context: timers fire in deadline order, cancelled ones never", "[uring_context][timer]") {
  uring_context ctx;
  std::vector<int> fired;
  const auto start = std::chrono::steady_clock::now();
  asio::post(ctx.get_executor(), [&] {
    auto& timers = ctx.timers();
    timers.start(30ms, [&] { fired.push_back(30); });
    timers.start(10ms, [&] { fired.push_back(10); });
    const auto cancelled = timers.start(20ms, [&] { fired.push_back(20); });
    timers.cancel(cancelled);
    timers.cancel(12345);  // unknown: no effect
  });
  ctx.run();  // returns once both timers fired
  CHECK(fired == std::vector<int>{10, 30});
  CHECK(std::chrono::steady_clock::now() - start >= 30ms);
}

TEST_CASE("uring_context: co_spawn and fence::async_wait run on it", "[uring_context][asio]") {
  uring_context ctx;
  promise p;
  fence f = p.get_fence();
  std::error_code awaited = make_error_code(errc::broken);
  bool callback_ran = false;
  asio::co_spawn(
      ctx.get_executor(),
      [&]() -> asio::awaitable<void> {
        co_await f.async_wait(asio::use_awaitable);  // throws on a failed fence
        awaited = {};
      },
      asio::detached);
  f.async_wait(ctx.get_executor(), [&](std::error_code ec) { callback_ran = !ec; });
  std::thread signaller([&] {
    std::this_thread::sleep_for(5ms);
    p.signal({});
  });
  ctx.run();  // the pending waits are work: run() returns once both completed
  signaller.join();
  CHECK_FALSE(awaited);
  CHECK(callback_ran);
}

TEST_CASE("reactor on a uring_context: kernel fences, cancellation, watches", "[uring_context][reactor]") {
  uring_context ctx;
  reactor r(ctx);
  event_fd a, b, w;
  fence fa = r.wait_readable(a.fd);
  fence fb = r.wait_readable(b.fd);
  int watched = 0;
  reactor::watch_id id = 0;
  id = r.watch(w.fd, [&] {
    std::uint64_t value;
    REQUIRE(::read(w.fd, &value, sizeof value) == sizeof value);
    watched += static_cast<int>(value);  // writes made before this read coalesce
    if (watched == 3) r.unwatch(id);
  });
  CHECK(r.pending() == 0);  // requested from outside the loop: handed to it
  ctx.poll();
  CHECK(r.pending() == 3);
  std::thread device([&] {
    a.signal();
    for (int i = 0; i < 3; ++i) {
      std::this_thread::sleep_for(2ms);
      w.signal();
    }
  });
  asio::post(ctx.get_executor(), [&] { CHECK(r.cancel(fb)); });
  ctx.run();  // returns once no wait is pending any more
  device.join();
  CHECK(fa.signalled());
  CHECK_FALSE(fa.error());
  CHECK(fb.error() == errc::cancelled);
  CHECK(watched == 3);
  CHECK(r.pending() == 0);
  CHECK(r.single_issuer());
}

TEST_CASE("a scheduler on a uring_context: jobs await kernel fences, timeouts use its timers",
          "[uring_context][scheduler]") {
  uring_context ctx;
  reactor r(ctx);
  // The ring's fences come from eventfds: `done` makes a command finish.
  struct eventfd_ring final : cosched::ring<test::command> {
    explicit eventfd_ring(reactor& re) : re_(re) {}
    fence run(test::command& cmd) override {
      ran.push_back(cmd.tag);
      fds.push_back(std::make_unique<event_fd>());
      return re_.wait_readable(fds.back()->fd);
    }
    void cancel_all() noexcept override {}
    reactor& re_;
    std::vector<std::uint64_t> ran;
    std::vector<std::unique_ptr<event_fd>> fds;
  } hardware(r);
  scheduler<test::command> sched(ctx.get_executor(), hardware, {.credit_limit = 2, .timeout = 50ms});
  auto e = sched.make_entity();
  event_fd gate;
  auto body = [](fence kernel, std::uint64_t tag) -> test::sim_job {
    co_await kernel;
    co_return test::command{.duration_us = 1, .effect = {}, .tag = tag};
  };
  auto first = e.push(body(r.wait_readable(gate.fd), 1));
  auto second = e.push(body(fence::make_signalled(), 2));  // never completed on the ring: times out
  std::thread device([&] {
    std::this_thread::sleep_for(5ms);
    gate.signal();
  });
  // Complete the first command as soon as it runs; leave the second hanging.
  std::error_code first_result = make_error_code(errc::broken), second_result;
  first.finished.async_wait(ctx.get_executor(), [&](std::error_code ec) { first_result = ec; });
  second.finished.async_wait(ctx.get_executor(), [&](std::error_code ec) {
    second_result = ec;
    ctx.stop();
  });
  // Signal the first command's fence from the loop once it ran.
  std::function<void()> poke;
  poke = [&] {
    if (!hardware.fds.empty()) {
      hardware.fds.front()->signal();
      return;
    }
    ctx.timers().start(1ms, poke);
  };
  asio::post(ctx.get_executor(), [&] { ctx.timers().start(1ms, poke); });
  ctx.run();
  device.join();
  CHECK_FALSE(first_result);
  CHECK(second_result == errc::timed_out);
  CHECK(hardware.ran == std::vector<std::uint64_t>{1, 2});
  ctx.restart();
  auto down = sched.shutdown(0ns);
  while (!down.signalled()) ctx.poll();
}

TEST_CASE("reactor on a uring_context: a destroyed reactor's waits end, the next reactor is not confused",
          "[uring_context][reactor]") {
  uring_context ctx;
  event_fd a;
  fence first;
  {
    reactor r(ctx);
    first = r.wait_readable(a.fd);
    ctx.poll();  // submitted: the kernel polls a.fd
  }
  CHECK(first.error() == errc::broken);  // the reactor went away with the wait pending
  reactor r2(ctx);
  event_fd b;
  fence second = r2.wait_readable(b.fd);
  ctx.poll();
  a.signal();  // had the first poll not been cancelled, its completion would arrive now
  ctx.poll();
  CHECK_FALSE(second.signalled());
  b.signal();
  ctx.run();  // returns once `second` completed
  CHECK(second.signalled());
  CHECK_FALSE(second.error());
}
