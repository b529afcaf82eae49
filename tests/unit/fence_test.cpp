// Unit tests for cosched/fence.hpp: fences, promises, timelines and async_wait
// with Asio completion tokens (callbacks, coroutines, deferred, cancellation).
// Longer than the usual 800 lines: the tests mirror the headers one file each,
// and fence.hpp declares four things (fence and promise, timelines, the
// completion-token interop, fence_state's waiters); the sections below follow them.
#include "cosched/fence.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <latch>
#include <memory>
#include <optional>
#include <set>
#include <system_error>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "catch.hpp"

#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/bind_executor.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/version.hpp>

// as_tuple and deferred left asio::experimental in Asio 1.24; Debian ships 1.22.
#if ASIO_VERSION >= 102400
#include <asio/as_tuple.hpp>
#include <asio/deferred.hpp>
namespace asio_compat {
using asio::as_tuple;
inline constexpr auto deferred = asio::deferred;
}  // namespace asio_compat
#else
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/deferred.hpp>
namespace asio_compat {
using asio::experimental::as_tuple;
inline constexpr auto deferred = asio::experimental::deferred;
}  // namespace asio_compat
#endif

using cosched::errc;
using cosched::fence;
using cosched::fence_point;
using cosched::promise;
using cosched::timeline;
using cosched::detail::waiter_list;

namespace {

// What a completion handler saw.
struct wait_record {
  int calls = 0;
  std::error_code ec;
  std::thread::id thread;
};

// A plain callback (no associated executor) that records into `r`.
auto recorder(wait_record& r) {
  return [&r](std::error_code ec) {
    ++r.calls;
    r.ec = ec;
    r.thread = std::this_thread::get_id();
  };
}

// Runs every handler that is ready, without blocking: a test that expects a
// completion to have been posted fails (instead of hanging) when it was not.
std::size_t drain(asio::io_context& ctx) {
  ctx.restart();
  return ctx.poll();
}

// Busy-waits (yielding after a while) until `value` >= `at_least`: a hand-off
// between two racing threads, not a wait for time to pass.
void spin_until(const std::atomic<std::uint64_t>& value, std::uint64_t at_least) {
  // acquire: pairs with the release stores that publish data along with the value.
  for (unsigned spins = 0; value.load(std::memory_order_acquire) < at_least; ++spins) {
    if (spins > 1000) std::this_thread::yield();
  }
}

const std::error_code broken = cosched::make_error_code(errc::broken);
const std::error_code killed = cosched::make_error_code(errc::killed);
const std::error_code aborted = asio::error::operation_aborted;

}  // namespace

// ================================================================== fence / promise

TEST_CASE("a default fence is not valid", "[fence]") {
  fence f;
  CHECK_FALSE(f.valid());
  CHECK_FALSE(static_cast<bool>(f));
  CHECK(f.state() == nullptr);
  CHECK(f == fence{});
}

TEST_CASE("a promise's fence is pending, then signalled with success", "[fence]") {
  promise p;
  REQUIRE(p.valid());
  fence f = p.get_fence();
  REQUIRE(f.valid());
  CHECK(static_cast<bool>(f));
  CHECK_FALSE(f.signalled());
  CHECK_FALSE(f.error());
  CHECK_FALSE(f.cause().has_value());

  p.set_value();
  CHECK_FALSE(p.valid());
  CHECK(f.signalled());
  CHECK_FALSE(f.error());
  CHECK_FALSE(f.cause().has_value());
}

TEST_CASE("a promise signals an error, with and without a cause", "[fence]") {
  SECTION("set_error with a cause") {
    promise p;
    fence f = p.get_fence();
    p.set_error(errc::killed, fence_point{3, 4});
    CHECK_FALSE(p.valid());
    REQUIRE(f.signalled());
    CHECK(f.error() == killed);
    REQUIRE(f.cause().has_value());
    CHECK(*f.cause() == fence_point{3, 4});
  }
  SECTION("set_error without a cause") {
    promise p;
    fence f = p.get_fence();
    p.set_error(std::error_code(EIO, std::generic_category()));
    REQUIRE(f.signalled());
    CHECK(f.error() == std::error_code(EIO, std::generic_category()));
    CHECK_FALSE(f.cause().has_value());
  }
  SECTION("signal with an error and a cause") {
    promise p;
    fence f = p.get_fence();
    p.signal(errc::timed_out, fence_point{8, 1});
    CHECK(f.error() == std::error_code(errc::timed_out));
    CHECK(f.cause() == std::optional<fence_point>(fence_point{8, 1}));
  }
  SECTION("a cause is dropped on success") {
    promise p;
    fence f = p.get_fence();
    p.signal({}, fence_point{3, 4});
    REQUIRE(f.signalled());
    CHECK_FALSE(f.error());
    CHECK_FALSE(f.cause().has_value());
  }
}

TEST_CASE("set_error with an empty code signals broken", "[fence]") {
  promise p;
  fence f = p.get_fence();
  p.set_error(std::error_code{}, fence_point{1, 2});
  REQUIRE(f.signalled());
  CHECK(f.error() == broken);
  // The cause was given with a (replaced) failure, so it is kept.
  CHECK(f.cause() == std::optional<fence_point>(fence_point{1, 2}));
}

TEST_CASE("a promise signals once, later calls on it do nothing", "[fence]") {
  promise p;
  fence f = p.get_fence();
  p.set_error(errc::cancelled);
  p.set_value();
  p.signal(errc::killed);
  CHECK(f.error() == std::error_code(errc::cancelled));
}

TEST_CASE("the fence's point", "[fence]") {
  SECTION("an explicit point") {
    promise p(fence_point{7, 9});
    CHECK(p.get_fence().point() == fence_point{7, 9});
    CHECK(p.get_fence().point().context == 7);
    CHECK(p.get_fence().point().seqno == 9);
  }
  SECTION("a default promise gets a fresh context, seqno 1") {
    promise a;
    promise b;
    const fence_point pa = a.get_fence().point();
    const fence_point pb = b.get_fence().point();
    CHECK(pa.seqno == 1);
    CHECK(pb.seqno == 1);
    CHECK(pa.context != 0);
    CHECK(pa.context != pb.context);
  }
  SECTION("the point does not change when the fence signals") {
    promise p(fence_point{7, 9});
    fence f = p.get_fence();
    p.set_error(errc::killed, fence_point{1, 1});
    CHECK(f.point() == fence_point{7, 9});
  }
}

TEST_CASE("fence copies share one state", "[fence]") {
  promise p;
  fence a = p.get_fence();
  fence b = a;  // copy
  fence c;
  c = b;  // copy assignment
  fence d = p.get_fence();
  CHECK(a == b);
  CHECK(b == c);
  CHECK(c == d);
  CHECK(a.state() == d.state());
  CHECK_FALSE(a == fence{});
  CHECK_FALSE(a == promise().get_fence());

  fence moved = std::move(b);
  CHECK_FALSE(b.valid());  // NOLINT(bugprone-use-after-move): moved-from is empty
  CHECK(moved == a);

  p.set_error(errc::shutdown);
  for (const fence* f : {&a, &c, &d, &moved}) {
    CHECK(f->signalled());
    CHECK(f->error() == std::error_code(errc::shutdown));
  }
}

TEST_CASE("a fence outlives its promise, a promise outlives its fences", "[fence][lifetime]") {
  fence kept;
  {
    promise p;
    kept = p.get_fence();
    p.set_value();
  }
  CHECK(kept.signalled());
  CHECK_FALSE(kept.error());

  promise p;
  { fence dropped = p.get_fence(); }
  p.set_error(errc::killed);  // no handle left: the state is freed here (ASan checks)
  CHECK_FALSE(p.valid());
}

TEST_CASE("a destroyed unsignalled promise signals broken", "[fence][lifetime]") {
  fence f;
  {
    promise p(fence_point{2, 3});
    f = p.get_fence();
    CHECK_FALSE(f.signalled());
  }
  REQUIRE(f.signalled());
  CHECK(f.error() == broken);
  CHECK_FALSE(f.cause().has_value());
  CHECK(f.point() == fence_point{2, 3});
}

TEST_CASE("moving a promise moves the obligation", "[fence][lifetime]") {
  SECTION("move construction") {
    promise a;
    fence f = a.get_fence();
    promise b(std::move(a));
    CHECK_FALSE(a.valid());  // NOLINT(bugprone-use-after-move)
    CHECK(b.valid());
    CHECK_FALSE(f.signalled());
    b.set_value();
    CHECK(f.signalled());
    CHECK_FALSE(f.error());
  }
  SECTION("move assignment over an unsignalled promise signals the old one broken") {
    promise target;
    promise source;
    fence old_fence = target.get_fence();
    fence new_fence = source.get_fence();
    target = std::move(source);
    CHECK_FALSE(source.valid());  // NOLINT(bugprone-use-after-move)
    REQUIRE(old_fence.signalled());
    CHECK(old_fence.error() == broken);
    CHECK_FALSE(new_fence.signalled());
    CHECK(target.get_fence() == new_fence);
    target.set_error(errc::killed);
    CHECK(new_fence.error() == killed);
  }
  SECTION("move assignment over a signalled promise signals nothing more") {
    promise target;
    fence old_fence = target.get_fence();
    target.set_value();
    promise source;
    fence new_fence = source.get_fence();
    target = std::move(source);
    CHECK_FALSE(old_fence.error());
    CHECK_FALSE(new_fence.signalled());
  }
  SECTION("a moved-from promise is destroyed without signalling") {
    fence f;
    promise b;
    {
      promise a;
      f = a.get_fence();
      b = std::move(a);
    }
    CHECK_FALSE(f.signalled());
    b.set_value();
    CHECK_FALSE(f.error());
  }
}

TEST_CASE("fence::make_signalled", "[fence]") {
  SECTION("success") {
    fence f = fence::make_signalled();
    REQUIRE(f.valid());
    CHECK(f.signalled());
    CHECK_FALSE(f.error());
    CHECK_FALSE(f.cause().has_value());
    CHECK(f.point().seqno == 1);
    CHECK(f.point().context != 0);
  }
  SECTION("an error with a cause") {
    fence f = fence::make_signalled(errc::cancelled, fence_point{4, 5});
    CHECK(f.signalled());
    CHECK(f.error() == std::error_code(errc::cancelled));
    CHECK(f.cause() == std::optional<fence_point>(fence_point{4, 5}));
  }
  SECTION("success drops the cause") {
    fence f = fence::make_signalled({}, fence_point{4, 5});
    CHECK_FALSE(f.error());
    CHECK_FALSE(f.cause().has_value());
  }
  SECTION("each call is a distinct fence on its own context") {
    fence a = fence::make_signalled();
    fence b = fence::make_signalled();
    CHECK_FALSE(a == b);
    CHECK(a.point().context != b.point().context);
  }
}

TEST_CASE("the stub fence: one signalled state, never counted or freed", "[fence][stub]") {
  fence a = fence::stub();
  REQUIRE(a.valid());
  CHECK(a.signalled());
  CHECK_FALSE(a.error());
  CHECK_FALSE(a.cause().has_value());
  CHECK(a.point() == fence_point{0, 0});
  CHECK(a.state() == fence::stub().state());  // one process-wide object
  const auto refs_before = a.state()->owner->refs.load();
  {
    std::vector<fence> copies(1000, a);
    fence moved = std::move(copies.back());
    CHECK(a.state()->owner->refs.load() == refs_before);  // copies are not counted
  }
  CHECK(a.state()->owner->refs.load() == refs_before);
  // Its deadline is everyone's: setting one records nothing.
  a.set_deadline(fence::clock::now());
  CHECK_FALSE(fence::stub().deadline().has_value());
  // Handed out and dropped from several threads at once (TSan sees no race).
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 10000; ++i) {
        fence f = fence::stub();
        fence g = f;
        // (valid() first: GCC 12 at -O2 otherwise warns about the null-handle path.)
        if (!g.valid() || !g.signalled()) std::abort();
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(fence::stub().signalled());
}

TEST_CASE("set_deadline keeps the earliest deadline", "[fence][deadline]") {
  using clock = fence::clock;
  promise p;
  fence f = p.get_fence();
  CHECK_FALSE(f.deadline().has_value());

  const clock::time_point t100(std::chrono::microseconds(100));
  const clock::time_point t200(std::chrono::microseconds(200));
  const clock::time_point t300(std::chrono::microseconds(300));
  f.set_deadline(t200);
  CHECK(f.deadline() == std::optional(t200));
  f.set_deadline(t300);
  CHECK(f.deadline() == std::optional(t200));
  fence copy = f;
  copy.set_deadline(t100);  // shared state: the earliest across all handles
  CHECK(f.deadline() == std::optional(t100));
  f.set_deadline(t200);
  CHECK(copy.deadline() == std::optional(t100));

  // A deadline is a hint; it survives signalling.
  p.set_value();
  CHECK(f.deadline() == std::optional(t100));

  // Another fence is unaffected.
  CHECK_FALSE(promise().get_fence().deadline().has_value());
}

TEST_CASE("set_deadline from several threads keeps the minimum", "[fence][deadline][threads]") {
  using clock = fence::clock;
  promise p;
  fence f = p.get_fence();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([f, t]() mutable {
      for (int i = 1000; i >= 1; --i) f.set_deadline(clock::time_point(std::chrono::nanoseconds(i * 4 + t)));
    });
  }
  for (auto& t : threads) t.join();
  CHECK(f.deadline() == std::optional(clock::time_point(std::chrono::nanoseconds(4))));
}

TEST_CASE("new_context hands out unique contexts, also across threads", "[fence]") {
  constexpr int per_thread = 2000;
  std::vector<std::vector<std::uint64_t>> got(4);
  std::vector<std::thread> threads;
  for (auto& out : got) {
    threads.emplace_back([&out] {
      for (int i = 0; i < per_thread; ++i) out.push_back(cosched::new_context());
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::uint64_t> unique;
  for (const auto& out : got) unique.insert(out.begin(), out.end());
  CHECK(unique.size() == 4 * per_thread);
  CHECK(unique.count(0) == 0);
  // Increasing within one thread.
  const auto a = cosched::new_context();
  const auto b = cosched::new_context();
  CHECK(b > a);
}

// ================================================================== fence_state (internal)

namespace {

struct waiter_probe {
  struct probe_waiter : cosched::detail::fence_waiter {
    waiter_probe* probe = nullptr;
  } waiter;
  std::vector<int>* order = nullptr;
  int id = 0;
  int calls = 0;
  std::error_code seen;

  waiter_probe(std::vector<int>& o, int i) : order(&o), id(i) {
    waiter.probe = this;
    waiter.notify = [](cosched::detail::fence_waiter& self, cosched::detail::fence_state& state) noexcept {
      auto& probe = *static_cast<probe_waiter&>(self).probe;
      ++probe.calls;
      probe.seen = state.error();
      probe.order->push_back(probe.id);
    };
  }
};

}  // namespace

TEST_CASE("fence_state notifies linked waiters once, in link order", "[fence][detail]") {
  promise p;
  fence f = p.get_fence();
  auto* state = f.state();
  std::vector<int> order;
  waiter_probe w1(order, 1), w2(order, 2), w3(order, 3), w4(order, 4);
  CHECK(state->add_waiter(w1.waiter));
  CHECK(state->add_waiter(w2.waiter));
  CHECK(state->add_waiter(w3.waiter));
  CHECK(state->add_waiter(w4.waiter));
  CHECK(state->remove_waiter(w2.waiter));  // unlinked: not notified
  CHECK_FALSE(state->remove_waiter(w2.waiter));
  CHECK(state->remove_waiter(w4.waiter));  // the tail

  p.set_error(errc::killed);
  CHECK(order == std::vector<int>{1, 3});
  CHECK(w1.calls == 1);
  CHECK(w1.seen == killed);
  CHECK(w2.calls == 0);
  CHECK(w3.calls == 1);
  CHECK(w4.calls == 0);
  // After the signal nothing is linked, and nothing can be.
  CHECK(waiter_list::prev(w1.waiter) == nullptr);
  CHECK(waiter_list::next(w1.waiter) == nullptr);
  CHECK(state->waiters.front() == nullptr);
  CHECK_FALSE(state->remove_waiter(w1.waiter));
  waiter_probe late(order, 5);
  CHECK_FALSE(state->add_waiter(late.waiter));
  CHECK(late.calls == 0);
}

TEST_CASE("fence_state: removing the only waiter leaves an empty list", "[fence][detail]") {
  promise p;
  fence f = p.get_fence();
  std::vector<int> order;
  waiter_probe a(order, 1), b(order, 2);
  CHECK(f.state()->add_waiter(a.waiter));
  CHECK(f.state()->remove_waiter(a.waiter));
  CHECK(f.state()->waiters.front() == nullptr);
  CHECK(waiter_list::prev(a.waiter) == nullptr);
  CHECK(f.state()->add_waiter(b.waiter));
  CHECK(f.state()->waiters.front() == &b.waiter);
  CHECK(waiter_list::prev(b.waiter) == &b.waiter);  // the head's prev is the tail: itself, alone
  CHECK(waiter_list::next(b.waiter) == nullptr);
  p.set_value();
  CHECK(order == std::vector<int>{2});
}

TEST_CASE("fence_state: removing the head or the tail keeps the rest of the list in link order",
          "[fence][detail]") {
  promise p;
  fence f = p.get_fence();
  auto* state = f.state();
  std::vector<int> order;
  waiter_probe w1(order, 1), w2(order, 2), w3(order, 3), w4(order, 4), w5(order, 5);
  CHECK(state->add_waiter(w1.waiter));
  CHECK(state->add_waiter(w2.waiter));
  CHECK(state->add_waiter(w3.waiter));
  CHECK(state->remove_waiter(w1.waiter));  // the head: the next one heads, with the same tail
  CHECK(state->waiters.front() == &w2.waiter);
  CHECK(waiter_list::prev(w2.waiter) == &w3.waiter);
  CHECK(state->remove_waiter(w3.waiter));  // the tail: the one before it is the tail
  CHECK(waiter_list::prev(w2.waiter) == &w2.waiter);
  CHECK(state->add_waiter(w4.waiter));
  CHECK(state->add_waiter(w5.waiter));
  CHECK(waiter_list::prev(w2.waiter) == &w5.waiter);
  CHECK(waiter_list::prev(w5.waiter) == &w4.waiter);
  CHECK(state->remove_waiter(w2.waiter));  // the head again
  CHECK(state->remove_waiter(w5.waiter));  // the tail again: w4 waits alone
  CHECK(state->waiters.front() == &w4.waiter);
  CHECK(waiter_list::prev(w4.waiter) == &w4.waiter);
  CHECK(state->add_waiter(w1.waiter));
  p.set_value();
  CHECK(order == std::vector<int>{4, 1});
  for (const auto* w : {&w1, &w2, &w3, &w4, &w5}) {
    CHECK(waiter_list::prev(w->waiter) == nullptr);
    CHECK(waiter_list::next(w->waiter) == nullptr);
  }
}

TEST_CASE("fence_state: a waiter is linked only in the list it was added to, as its head or after another",
          "[fence][detail]") {
  promise p1, p2;
  fence f1 = p1.get_fence(), f2 = p2.get_fence();
  std::vector<int> order;
  waiter_probe a(order, 1), b(order, 2);
  CHECK_FALSE(f1.state()->remove_waiter(a.waiter));  // never added
  // Notified by one fence, then the only waiter of another: only that one unlinks it.
  CHECK(f1.state()->add_waiter(a.waiter));
  p1.set_value();
  CHECK(order == std::vector<int>{1});
  CHECK(f2.state()->add_waiter(a.waiter));
  CHECK_FALSE(f1.state()->remove_waiter(a.waiter));
  CHECK(f2.state()->waiters.front() == &a.waiter);
  CHECK(f2.state()->remove_waiter(a.waiter));
  CHECK(f2.state()->waiters.front() == nullptr);
  CHECK_FALSE(f2.state()->remove_waiter(a.waiter));
  // Second in a list (it has a prev): unlinked, the head keeps its place.
  CHECK(f2.state()->add_waiter(b.waiter));
  CHECK(f2.state()->add_waiter(a.waiter));
  CHECK(f2.state()->remove_waiter(a.waiter));
  CHECK_FALSE(f2.state()->remove_waiter(a.waiter));
  CHECK(f2.state()->waiters.front() == &b.waiter);
  CHECK(waiter_list::prev(b.waiter) == &b.waiter);  // the tail again
  p2.set_value();
  CHECK(order == std::vector<int>{1, 2});
}

// ================================================================== async_wait

TEST_CASE("async_wait never calls the handler inline, it runs when the io_context runs", "[fence][asio]") {
  asio::io_context ctx;
  wait_record r;

  SECTION("already signalled") {
    fence f = fence::make_signalled(errc::killed);
    f.async_wait(ctx.get_executor(), recorder(r));
    CHECK(r.calls == 0);
    CHECK(drain(ctx) == 1);
    CHECK(r.calls == 1);
    CHECK(r.ec == killed);
  }
  SECTION("signalled later: not inline in the signal either") {
    promise p;
    p.get_fence().async_wait(ctx.get_executor(), recorder(r));
    CHECK(ctx.poll() == 0);
    CHECK(r.calls == 0);
    p.set_error(errc::cancelled, fence_point{1, 1});
    CHECK(r.calls == 0);
    CHECK(drain(ctx) == 1);
    CHECK(r.calls == 1);
    CHECK(r.ec == std::error_code(errc::cancelled));
  }
  SECTION("success") {
    promise p;
    p.get_fence().async_wait(ctx.get_executor(), recorder(r));
    p.set_value();
    drain(ctx);
    CHECK(r.calls == 1);
    CHECK_FALSE(r.ec);
  }
  SECTION("the promise is destroyed: broken") {
    auto p = std::make_unique<promise>();
    p->get_fence().async_wait(ctx.get_executor(), recorder(r));
    p.reset();
    CHECK(r.calls == 0);
    drain(ctx);
    CHECK(r.calls == 1);
    CHECK(r.ec == broken);
  }
  SECTION("the fence handles are gone; the wait keeps the state") {
    promise p;
    { p.get_fence().async_wait(ctx.get_executor(), recorder(r)); }
    p.set_error(errc::timed_out);
    drain(ctx);
    CHECK(r.calls == 1);
    CHECK(r.ec == std::error_code(errc::timed_out));
  }
}

TEST_CASE("async_wait resumes on the waiter's executor, never on the signalling thread",
          "[fence][asio][threads]") {
  asio::io_context ctx;
  wait_record r;
  promise p;
  p.get_fence().async_wait(ctx.get_executor(), recorder(r));

  std::thread::id signaller_id;
  std::thread signaller([&signaller_id, p = std::move(p)]() mutable {
    signaller_id = std::this_thread::get_id();
    p.set_error(errc::killed);
  });
  ctx.run();  // returns once the handler ran: the wait keeps work on ctx
  const int calls_at_return = r.calls;
  signaller.join();

  CHECK(calls_at_return == 1);
  CHECK(r.ec == killed);
  CHECK(r.thread == std::this_thread::get_id());
  CHECK(r.thread != signaller_id);
}

TEST_CASE("a handler's associated executor is used", "[fence][asio]") {
  asio::io_context waiter_ctx;
  asio::io_context other_ctx;
  wait_record r;
  promise p;
  // Explicit executor other_ctx, handler bound to waiter_ctx: it runs on waiter_ctx.
  p.get_fence().async_wait(other_ctx.get_executor(), asio::bind_executor(waiter_ctx, recorder(r)));
  p.set_error(errc::queue_full);
  CHECK(other_ctx.poll() == 0);
  CHECK(r.calls == 0);
  CHECK(waiter_ctx.poll() == 1);
  CHECK(r.calls == 1);
  CHECK(r.ec == std::error_code(errc::queue_full));
}

TEST_CASE("async_wait without an executor runs a plain handler on the system executor",
          "[fence][asio][threads]") {
  promise p;
  std::promise<std::pair<std::thread::id, std::error_code>> seen;
  auto result = seen.get_future();
  p.get_fence().async_wait([&seen](std::error_code ec) { seen.set_value({std::this_thread::get_id(), ec}); });
  p.set_error(errc::shutdown);  // on this thread; the handler must not run here
  const auto [thread, ec] = result.get();
  CHECK(thread != std::this_thread::get_id());
  CHECK(ec == std::error_code(errc::shutdown));
}

TEST_CASE("outstanding work: run() waits for a pending wait signalled by another thread",
          "[fence][asio][threads]") {
  asio::io_context ctx;
  wait_record r;
  promise p;
  fence f = p.get_fence();
  f.async_wait(ctx.get_executor(), recorder(r));

  // poll() stops an io_context that has no outstanding work; a pending wait is work.
  CHECK(ctx.poll() == 0);
  CHECK_FALSE(ctx.stopped());

  std::thread signaller;
  // The signaller starts from inside run(), so run() is the one that must wait for it.
  asio::post(ctx, [&] { signaller = std::thread([p = std::move(p)]() mutable { p.set_value(); }); });
  ctx.run();
  const int calls_at_return = r.calls;
  signaller.join();
  CHECK(calls_at_return == 1);
  CHECK_FALSE(r.ec);
  CHECK(ctx.stopped());  // and the work is released once the handler ran
}

// async_wait's contract: "The handler runs on its associated executor (`ex` when it
// has none) ... The wait keeps outstanding work on that executor until it completes."
TEST_CASE("outstanding work is kept on the handler's associated executor", "[fence][asio]") {
  asio::io_context ctx;
  wait_record r;
  promise p;
  // No explicit executor: the handler's associated executor is ctx.
  p.get_fence().async_wait(asio::bind_executor(ctx, recorder(r)));
  ctx.poll();
  CHECK_FALSE(ctx.stopped());  // fails when the work is counted on system_executor instead

  p.set_value();
  drain(ctx);
  CHECK(r.calls == 1);
  CHECK_FALSE(r.ec);
}

TEST_CASE("a pending completion is destroyed with its io_context", "[fence][asio][lifetime]") {
  auto token = std::make_shared<int>(0);
  int calls = 0;
  {
    asio::io_context ctx;
    promise p;
    p.get_fence().async_wait(ctx.get_executor(), [token, &calls](std::error_code) { ++calls; });
    CHECK(token.use_count() == 2);
    p.set_value();  // posted, never run
  }
  CHECK(calls == 0);
  CHECK(token.use_count() == 1);  // the handler (and the operation) were freed
}

TEST_CASE("many waiters on one fence each complete exactly once", "[fence][asio]") {
  asio::io_context ctx;
  constexpr int n = 200;
  std::vector<int> calls(n, 0);
  std::vector<std::error_code> seen(n);
  promise p;
  fence f = p.get_fence();
  for (int i = 0; i < n; ++i) {
    f.async_wait(ctx.get_executor(), [i, &calls, &seen](std::error_code ec) {
      ++calls[i];
      seen[i] = ec;
    });
  }
  // Some more on an already signalled fence copy afterwards.
  p.set_error(errc::cancelled);
  std::vector<int> late_calls(n, 0);
  for (int i = 0; i < n; ++i)
    f.async_wait(ctx.get_executor(), [i, &late_calls](std::error_code) { ++late_calls[i]; });
  CHECK(drain(ctx) == 2 * n);
  CHECK(calls == std::vector<int>(n, 1));
  CHECK(late_calls == std::vector<int>(n, 1));
  CHECK(seen == std::vector<std::error_code>(n, std::error_code(errc::cancelled)));
}

TEST_CASE("many waiters, several runner threads, a signal from another thread", "[fence][asio][threads]") {
  asio::io_context ctx;
  constexpr int n = 1000;
  std::vector<std::atomic<int>> calls(n);
  std::atomic<int> errors{0};
  promise p;
  fence f = p.get_fence();
  for (int i = 0; i < n; ++i) {
    f.async_wait(ctx.get_executor(), [i, &calls, &errors](std::error_code ec) {
      // relaxed: read after the runner threads are joined.
      calls[i].fetch_add(1, std::memory_order_relaxed);
      if (ec != std::error_code(errc::killed)) errors.fetch_add(1, std::memory_order_relaxed);
    });
  }
  std::vector<std::thread> runners;
  for (int t = 0; t < 4; ++t) runners.emplace_back([&ctx] { ctx.run(); });
  std::thread signaller([p = std::move(p)]() mutable { p.set_error(errc::killed); });
  signaller.join();
  for (auto& t : runners) t.join();

  int exactly_once = 0;
  for (auto& c : calls) exactly_once += c.load(std::memory_order_relaxed) == 1;
  CHECK(exactly_once == n);
  CHECK(errors.load() == 0);
}

TEST_CASE("async_wait racing with the signal completes exactly once", "[fence][asio][threads]") {
  asio::io_context ctx;
  int exactly_once = 0;
  int right_error = 0;
  constexpr int rounds = 2000;
  for (int i = 0; i < rounds; ++i) {
    promise p;
    fence f = p.get_fence();
    wait_record r;
    std::latch start(2);
    std::thread signaller([&start, p = std::move(p)]() mutable {
      start.arrive_and_wait();
      p.set_error(errc::killed);
    });
    start.arrive_and_wait();
    f.async_wait(ctx.get_executor(), recorder(r));
    signaller.join();
    drain(ctx);
    exactly_once += r.calls == 1;
    right_error += r.ec == killed;
  }
  CHECK(exactly_once == rounds);
  CHECK(right_error == rounds);
}

// ------------------------------------------------------------------ cancellation

TEST_CASE("a cancellation slot aborts a pending wait", "[fence][asio][cancel]") {
  const auto type = GENERATE(asio::cancellation_type::terminal, asio::cancellation_type::partial,
                             asio::cancellation_type::total);
  CAPTURE(static_cast<unsigned>(type));
  asio::io_context ctx;
  asio::cancellation_signal sig;
  wait_record r;
  promise p;
  fence f = p.get_fence();
  f.async_wait(ctx.get_executor(), asio::bind_cancellation_slot(sig.slot(), recorder(r)));

  sig.emit(type);
  CHECK(r.calls == 0);  // not inline in emit either
  drain(ctx);
  CHECK(r.calls == 1);
  CHECK(r.ec == aborted);
  CHECK_FALSE(sig.slot().has_handler());  // the op cleared its slot

  // The fence is untouched; a later signal does not call the handler again.
  CHECK_FALSE(f.signalled());
  p.set_value();
  CHECK(drain(ctx) == 0);
  CHECK(r.calls == 1);
  CHECK(r.ec == aborted);
}

TEST_CASE("cancellation after the fence signalled has no effect", "[fence][asio][cancel]") {
  asio::io_context ctx;
  asio::cancellation_signal sig;
  wait_record r;
  promise p;
  p.get_fence().async_wait(ctx.get_executor(), asio::bind_cancellation_slot(sig.slot(), recorder(r)));

  SECTION("signalled, completion not run yet") {
    p.set_error(errc::killed);
    sig.emit(asio::cancellation_type::terminal);
    CHECK(drain(ctx) == 1);
    CHECK(r.calls == 1);
    CHECK(r.ec == killed);
  }
  SECTION("signalled and completed") {
    p.set_value();
    drain(ctx);
    sig.emit(asio::cancellation_type::terminal);
    CHECK(drain(ctx) == 0);
    CHECK(r.calls == 1);
    CHECK_FALSE(r.ec);
  }
}

TEST_CASE("cancellation_type::none is ignored", "[fence][asio][cancel]") {
  asio::io_context ctx;
  asio::cancellation_signal sig;
  wait_record r;
  promise p;
  p.get_fence().async_wait(ctx.get_executor(), asio::bind_cancellation_slot(sig.slot(), recorder(r)));
  sig.emit(asio::cancellation_type::none);
  CHECK(ctx.poll() == 0);
  CHECK(r.calls == 0);
  p.set_error(errc::killed);
  drain(ctx);
  CHECK(r.calls == 1);
  CHECK(r.ec == killed);
}

TEST_CASE("cancelling one waiter leaves the others waiting", "[fence][asio][cancel]") {
  asio::io_context ctx;
  asio::cancellation_signal sig;
  wait_record first, cancelled, last;
  promise p;
  fence f = p.get_fence();
  f.async_wait(ctx.get_executor(), recorder(first));
  f.async_wait(ctx.get_executor(), asio::bind_cancellation_slot(sig.slot(), recorder(cancelled)));
  f.async_wait(ctx.get_executor(), recorder(last));
  sig.emit(asio::cancellation_type::terminal);
  CHECK(ctx.poll() == 1);
  CHECK(cancelled.calls == 1);
  CHECK(cancelled.ec == aborted);
  CHECK(first.calls == 0);
  CHECK(last.calls == 0);
  p.set_error(errc::shutdown);
  CHECK(drain(ctx) == 2);
  CHECK(first.calls == 1);
  CHECK(last.calls == 1);
  CHECK(first.ec == std::error_code(errc::shutdown));
  CHECK(last.ec == std::error_code(errc::shutdown));
  CHECK(cancelled.calls == 1);
}

// ------------------------------------------------------------------ coroutines

TEST_CASE("use_awaitable: a successful fence resumes the coroutine on its executor",
          "[fence][asio][coroutine][threads]") {
  // With void(std::error_code), use_awaitable yields void (and throws on failure).
  STATIC_REQUIRE(std::is_same_v<decltype(std::declval<fence&>().async_wait(asio::use_awaitable)),
                                asio::awaitable<void>>);
  asio::io_context ctx;
  promise p;
  fence f = p.get_fence();
  int resumed = 0;
  std::thread::id resumed_on;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        co_await f.async_wait(asio::use_awaitable);
        ++resumed;
        resumed_on = std::this_thread::get_id();
      },
      asio::detached);
  CHECK(ctx.poll() > 0);  // the coroutine starts and suspends in the wait
  CHECK(resumed == 0);
  std::thread signaller([p = std::move(p)]() mutable { p.set_value(); });
  ctx.run();  // co_spawn keeps work until the coroutine finishes
  signaller.join();
  CHECK(resumed == 1);
  CHECK(resumed_on == std::this_thread::get_id());
}

TEST_CASE("use_awaitable: a failed fence makes co_await throw std::system_error",
          "[fence][asio][coroutine]") {
  asio::io_context ctx;
  promise p;
  fence f = p.get_fence();
  bool returned = false;
  std::error_code caught;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        try {
          co_await f.async_wait(asio::use_awaitable);
          returned = true;
        } catch (const std::system_error& e) {
          caught = e.code();
        }
      },
      asio::detached);
  ctx.poll();
  p.set_error(errc::killed, fence_point{1, 2});
  drain(ctx);
  CHECK_FALSE(returned);
  CHECK(caught == killed);
}

TEST_CASE("as_tuple(use_awaitable) and redirect_error yield the code without throwing",
          "[fence][asio][coroutine]") {
  asio::io_context ctx;
  const std::error_code eio(EIO, std::generic_category());
  std::vector<std::error_code> seen;
  bool finished = false;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        auto [failed] =
            co_await fence::make_signalled(eio).async_wait(asio_compat::as_tuple(asio::use_awaitable));
        seen.push_back(failed);
        auto [ok] = co_await fence::make_signalled().async_wait(asio_compat::as_tuple(asio::use_awaitable));
        seen.push_back(ok);

        std::error_code ec = make_error_code(errc::exception);  // must be overwritten
        co_await fence::make_signalled(errc::broken)
            .async_wait(asio::redirect_error(asio::use_awaitable, ec));
        seen.push_back(ec);
        co_await fence::make_signalled().async_wait(asio::redirect_error(asio::use_awaitable, ec));
        seen.push_back(ec);

        // With an explicit executor too.
        auto ex = co_await asio::this_coro::executor;
        auto [explicit_ex] = co_await fence::make_signalled(errc::timed_out)
                                 .async_wait(ex, asio_compat::as_tuple(asio::use_awaitable));
        seen.push_back(explicit_ex);
        finished = true;
      },
      asio::detached);
  drain(ctx);
  REQUIRE(finished);
  CHECK(seen == std::vector<std::error_code>{eio, {}, broken, {}, errc::timed_out});
}

TEST_CASE("a coroutine waiting on a pending fence, cancelled through co_spawn's slot",
          "[fence][asio][coroutine][cancel]") {
  asio::io_context ctx;
  asio::cancellation_signal sig;
  promise p;
  fence f = p.get_fence();
  std::error_code seen = make_error_code(errc::exception);
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        auto [ec] = co_await f.async_wait(asio_compat::as_tuple(asio::use_awaitable));
        seen = ec;
      },
      asio::bind_cancellation_slot(sig.slot(), asio::detached));
  ctx.poll();
  sig.emit(asio::cancellation_type::terminal);
  drain(ctx);
  CHECK(seen == aborted);
  CHECK_FALSE(f.signalled());
}

// ------------------------------------------------------------------ deferred

TEST_CASE("deferred: a lazy wait, started later", "[fence][asio]") {
  asio::io_context ctx;
  wait_record r;
  promise p;
  fence f = p.get_fence();
  auto op = f.async_wait(ctx.get_executor(), asio_compat::deferred);
  // Nothing started yet: the fence has no waiter.
  CHECK(f.state()->waiters.front() == nullptr);
  CHECK(ctx.poll() == 0);

  SECTION("started before the signal") {
    std::move(op)(recorder(r));
    CHECK(f.state()->waiters.front() != nullptr);
    p.set_error(errc::cancelled);
    CHECK(r.calls == 0);
    drain(ctx);
    CHECK(r.calls == 1);
    CHECK(r.ec == std::error_code(errc::cancelled));
  }
  SECTION("started after the signal") {
    p.set_value();
    CHECK(ctx.poll() == 0);
    CHECK(r.calls == 0);
    std::move(op)(recorder(r));
    CHECK(r.calls == 0);
    drain(ctx);
    CHECK(r.calls == 1);
    CHECK_FALSE(r.ec);
  }
}

TEST_CASE("deferred without an executor, completed as an awaitable", "[fence][asio][coroutine]") {
  asio::io_context ctx;
  promise p;
  fence f = p.get_fence();
  std::error_code seen = make_error_code(errc::exception);
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        auto op = f.async_wait(asio_compat::deferred);
        auto [ec] = co_await std::move(op)(asio_compat::as_tuple(asio::use_awaitable));
        seen = ec;
      },
      asio::detached);
  ctx.poll();
  p.set_error(errc::queue_full);
  drain(ctx);
  CHECK(seen == std::error_code(errc::queue_full));
}

// ================================================================== timeline

TEST_CASE("a timeline starts at 0 with its context", "[fence][timeline]") {
  timeline t;
  CHECK(t.value() == 0);
  CHECK(t.context() != 0);
  timeline u;
  CHECK(u.context() != t.context());
  timeline explicit_ctx(42);
  CHECK(explicit_ctx.context() == 42);
  CHECK(explicit_ctx.value() == 0);
}

TEST_CASE("timeline points signal when the timeline reaches them, not before", "[fence][timeline]") {
  timeline t;
  fence f3 = t.at(3);
  fence f5 = t.at(5);
  fence f4 = t.at(4);
  fence f9 = t.at(9);
  CHECK(f3.point() == fence_point{t.context(), 3});
  CHECK(f9.point() == fence_point{t.context(), 9});
  CHECK_FALSE(f3.signalled());

  t.advance(2);
  CHECK(t.value() == 2);
  CHECK_FALSE(f3.signalled());

  t.advance(3);
  CHECK(t.value() == 3);
  CHECK(f3.signalled());
  CHECK_FALSE(f3.error());
  CHECK_FALSE(f4.signalled());

  t.advance(5);  // jumps over 4: both signal
  CHECK(f4.signalled());
  CHECK(f5.signalled());
  CHECK_FALSE(f4.error());
  CHECK_FALSE(f5.error());
  CHECK_FALSE(f9.signalled());

  t.advance(8);
  CHECK_FALSE(f9.signalled());
  t.advance(9);
  CHECK(f9.signalled());
}

TEST_CASE("timeline: several fences for one point all signal", "[fence][timeline]") {
  timeline t;
  fence a = t.at(2);
  fence b = t.at(2);
  CHECK_FALSE(a == b);
  CHECK(a.point() == b.point());
  t.advance(2);
  CHECK(a.signalled());
  CHECK(b.signalled());
}

TEST_CASE("timeline: advancing backwards has no effect", "[fence][timeline]") {
  timeline t;
  t.advance(5);
  fence f6 = t.at(6);
  t.advance(3);
  CHECK(t.value() == 5);
  t.advance(5);
  CHECK(t.value() == 5);
  CHECK_FALSE(f6.signalled());
  t.advance(0);
  CHECK(t.value() == 5);
}

TEST_CASE("timeline: a point already reached is signalled at once", "[fence][timeline]") {
  timeline t(77);
  fence zero = t.at(0);
  CHECK(zero.signalled());
  CHECK_FALSE(zero.error());
  t.advance(10);
  for (std::uint64_t n : {1u, 7u, 10u}) {
    fence f = t.at(n);
    CHECK(f.signalled());
    CHECK_FALSE(f.error());
    CHECK(f.point() == fence_point{77, n});
  }
  CHECK_FALSE(t.at(11).signalled());
}

TEST_CASE("timeline: async_wait on a point", "[fence][timeline][asio]") {
  asio::io_context ctx;
  timeline t;
  wait_record r;
  t.at(2).async_wait(ctx.get_executor(), recorder(r));
  t.advance(1);
  CHECK(ctx.poll() == 0);
  CHECK(r.calls == 0);
  t.advance(2);
  CHECK(r.calls == 0);
  drain(ctx);
  CHECK(r.calls == 1);
  CHECK_FALSE(r.ec);
}

TEST_CASE("destroying a timeline breaks the points it has not reached", "[fence][timeline][lifetime]") {
  fence reached, pending_a, pending_b;
  {
    timeline t;
    reached = t.at(1);
    pending_a = t.at(2);
    pending_b = t.at(3);
    t.advance(1);
    CHECK_FALSE(pending_a.signalled());
  }
  CHECK_FALSE(reached.error());
  REQUIRE(pending_a.signalled());
  REQUIRE(pending_b.signalled());
  CHECK(pending_a.error() == broken);
  CHECK(pending_b.error() == broken);
}

TEST_CASE("timeline: concurrent at() and advance() never lose a wake", "[fence][timeline][threads]") {
  SECTION("one point per round, two threads racing") {
    constexpr int rounds = 3000;
    int lost = 0;
    for (int i = 0; i < rounds; ++i) {
      timeline t;
      fence f;
      std::latch start(2);
      std::thread waiter([&] {
        start.arrive_and_wait();
        f = t.at(1);
      });
      start.arrive_and_wait();
      t.advance(1);
      waiter.join();
      lost += !(f.signalled() && !f.error());
    }
    CHECK(lost == 0);
  }
  SECTION("a stream of points against a stream of advances") {
    constexpr std::uint64_t n = 5000;
    timeline t;
    std::vector<fence> fences(n + 1);
    std::latch start(2);
    std::thread waiter([&] {
      start.arrive_and_wait();
      for (std::uint64_t i = 1; i <= n; ++i) fences[i] = t.at(i);
    });
    start.arrive_and_wait();
    for (std::uint64_t i = 1; i <= n; ++i) t.advance(i);
    waiter.join();
    std::uint64_t ok = 0;
    for (std::uint64_t i = 1; i <= n; ++i) ok += fences[i].signalled() && !fences[i].error();
    CHECK(ok == n);
    CHECK(t.value() == n);
  }
  SECTION("lock step: each advance races the at() for the same point") {
    // One point at a time: the waiter announces i, spins for a varying while,
    // then calls at(i); the advancer advances to i as soon as it sees the
    // announcement, so its advance lands before, inside and after the at() call.
    // Once both calls have returned, point i must be signalled; this is checked
    // before the next round, whose calls would otherwise pick up a missed point.
    constexpr std::uint64_t n = 20000;
    timeline t;
    std::vector<fence> fences(n + 1);
    std::atomic<std::uint64_t> announced{0};
    std::atomic<std::uint64_t> returned{0};
    std::atomic<std::uint64_t> checked{0};
    std::atomic<std::uint64_t> spin_sink{0};
    std::thread waiter([&] {
      for (std::uint64_t i = 1; i <= n; ++i) {
        spin_until(checked, i - 1);
        // relaxed: only the timing matters.
        announced.store(i, std::memory_order_relaxed);
        for (std::uint64_t k = 0; k < i % 97; ++k) spin_sink.fetch_add(1, std::memory_order_relaxed);
        fences[i] = t.at(i);
        // release: publishes fences[i] to the advancer.
        returned.store(i, std::memory_order_release);
      }
    });
    std::uint64_t missed = 0;
    for (std::uint64_t i = 1; i <= n; ++i) {
      spin_until(announced, i);
      t.advance(i);
      spin_until(returned, i);
      missed += !fences[i].signalled();
      checked.store(i, std::memory_order_release);
    }
    waiter.join();
    CHECK(missed == 0);
    std::uint64_t ok = 0;
    for (std::uint64_t i = 1; i <= n; ++i) ok += fences[i].signalled() && !fences[i].error();
    CHECK(ok == n);
  }
  SECTION("two advancing threads: the value is the maximum, every point up to it signals") {
    timeline t;
    std::vector<fence> fences;
    for (std::uint64_t i = 1; i <= 2000; ++i) fences.push_back(t.at(i));
    std::latch start(2);
    std::thread odd([&] {
      start.arrive_and_wait();
      for (std::uint64_t i = 1; i <= 1999; i += 2) t.advance(i);
    });
    start.arrive_and_wait();
    for (std::uint64_t i = 2; i <= 1000; i += 2) t.advance(i);
    odd.join();
    CHECK(t.value() == 1999);
    std::size_t signalled = 0;
    for (auto& f : fences) signalled += f.signalled();
    CHECK(signalled == 1999);
    CHECK_FALSE(fences.back().signalled());
  }
}

// timeline::advance documents that it signals "every fence handed out for a point
// up to seqno". A fence handed out before advance(n) was called must therefore be
// signalled when advance(n) returns, even while another thread calls at().
TEST_CASE("timeline: advance(n) returns after every earlier point up to n has signalled",
          "[fence][timeline][threads]") {
  constexpr std::uint64_t n = 20000;
  constexpr std::uint64_t ahead = 8;  // how far the waiter may run ahead of the advancer
  std::uint64_t unsignalled = 0;
  for (int round = 0; round < 5 && unsignalled == 0; ++round) {
    timeline t;
    std::vector<fence> fences(n + ahead + 1);
    std::atomic<std::uint64_t> returned{0};
    std::atomic<std::uint64_t> advanced{0};
    std::thread waiter([&] {
      for (std::uint64_t i = 1; i <= n + ahead; ++i) {
        spin_until(advanced, i > ahead ? i - ahead : 0);
        fences[i] = t.at(i);
        // release: publishes fences[i] to the advancer.
        returned.store(i, std::memory_order_release);
      }
    });
    for (std::uint64_t i = 1; i <= n; ++i) {
      spin_until(returned, i);  // fence i was handed out before advance(i) is called
      t.advance(i);
      unsignalled += !fences[i].signalled();
      advanced.store(i, std::memory_order_release);
    }
    t.advance(n + ahead);
    waiter.join();
  }
  // Fails when a concurrent at() took the reached points out of the pending set
  // and was still signalling them (outside the lock) when advance() returned.
  CHECK(unsignalled == 0);
}
