// Unit tests for cosched/combinators.hpp: when_all and when_any over any fences,
// their outcomes and causes, Asio completion tokens, jobs awaiting them, and their
// lifetime (released before their inputs signal; inputs signalled from other threads).
#include "cosched/combinators.hpp"

#include <atomic>
#include <cerrno>
#include <memory>
#include <optional>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "catch.hpp"

#include <asio/awaitable.hpp>
#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/version.hpp>

// as_tuple left asio::experimental in Asio 1.24; Debian ships 1.22.
#if ASIO_VERSION >= 102400
#include <asio/as_tuple.hpp>
namespace asio_compat {
using asio::as_tuple;
}  // namespace asio_compat
#else
#include <asio/experimental/as_tuple.hpp>
namespace asio_compat {
using asio::experimental::as_tuple;
}  // namespace asio_compat
#endif

#include "sim_fixture.hpp"

using namespace cosched;
using cosched::test::command;
using cosched::test::sim_fixture;
using cosched::test::sim_job;

namespace {

const std::error_code eio(EIO, std::generic_category());
const std::error_code ebusy(EBUSY, std::generic_category());

// Whether anything waits on `f` (its intrusive waiter list; read while no
// other thread signals or waits on it).
bool has_waiters(const fence& f) { return f.state()->waiters.front() != nullptr; }

}  // namespace

TEST_CASE("when_all signals once every input has, with success", "[combinators][when_all]") {
  promise a, b, c;
  const fence all = when_all({a.get_fence(), b.get_fence(), c.get_fence()});
  CHECK_FALSE(all.signalled());
  b.set_value();
  a.set_value();
  CHECK_FALSE(all.signalled());
  c.set_value();
  REQUIRE(all.signalled());
  CHECK_FALSE(all.error());
  CHECK_FALSE(all.cause());
}

TEST_CASE("when_all fails with the first failed input in argument order, cause its root",
          "[combinators][when_all]") {
  promise ok, first_failed, later_failed;
  const fence failed_itself = first_failed.get_fence();
  const fence all = when_all({ok.get_fence(), failed_itself, later_failed.get_fence()});
  later_failed.set_error(ebusy);  // fails first in time, but is later in argument order
  first_failed.set_error(eio);
  CHECK_FALSE(all.signalled());  // waits for every input
  ok.set_value();
  REQUIRE(all.signalled());
  CHECK(all.error() == eio);
  REQUIRE(all.cause());
  CHECK(*all.cause() == failed_itself.point());  // no cause of its own: the input is the root

  SECTION("an input that names its own root passes it on") {
    const fence_point root{new_context(), 7};
    promise caused;
    const fence with_root = when_all({caused.get_fence(), fence::make_signalled()});
    caused.set_error(eio, root);
    REQUIRE(with_root.signalled());
    CHECK(with_root.cause() == root);
  }
}

TEST_CASE("when_all of inputs that have signalled, or of none, is signalled at once",
          "[combinators][when_all]") {
  const fence none = when_all({});
  CHECK(none.signalled());
  CHECK_FALSE(none.error());
  const fence done = when_all({fence::make_signalled(), fence::stub(), fence::make_signalled(eio)});
  REQUIRE(done.signalled());
  CHECK(done.error() == eio);
  CHECK_THROWS_AS(when_all({fence::stub(), fence()}), std::invalid_argument);
}

TEST_CASE("when_any signals with the first input to signal and says which", "[combinators][when_any]") {
  promise a, b, c;
  const fence c_fence = c.get_fence();
  const any_fence first = when_any({a.get_fence(), b.get_fence(), c_fence});
  CHECK_FALSE(first.signalled());
  CHECK_FALSE(first.index());
  c.set_error(eio);
  REQUIRE(first.signalled());
  CHECK(first.index() == 2u);
  CHECK(first.error() == eio);
  CHECK(first.get_fence().cause() == c_fence.point());
  a.set_value();  // later signals change nothing
  CHECK(first.index() == 2u);
  CHECK(first.error() == eio);
}

TEST_CASE("when_any: inputs signalled before the call, the same fence twice, no inputs",
          "[combinators][when_any]") {
  promise pending;
  const fence failed = fence::make_signalled(eio);
  const any_fence early = when_any({pending.get_fence(), fence::stub(), failed});
  REQUIRE(early.signalled());
  CHECK(early.index() == 1u);  // the first signalled one in argument order
  CHECK_FALSE(early.error());
  CHECK_FALSE(has_waiters(pending.get_fence()));  // decided without linking anything

  promise shared;
  const fence twice = shared.get_fence();
  promise other;
  const any_fence same = when_any({other.get_fence(), twice, twice});
  shared.set_value();
  CHECK(same.index() == 1u);

  CHECK_THROWS_AS(when_any({}), std::invalid_argument);
  CHECK_THROWS_AS(when_any({fence(), fence::stub()}), std::invalid_argument);
  const promise p;
  const any_fence failed_first = when_any({failed, p.get_fence()});
  CHECK(failed_first.error() == eio);
  CHECK(failed_first.get_fence().cause() == failed.point());
}

TEST_CASE("combinators with Asio completion tokens: callbacks, coroutines, cancellation",
          "[combinators][asio]") {
  asio::io_context ctx;
  promise a, b;
  const fence all = when_all({a.get_fence(), b.get_fence()});
  const any_fence first = when_any({a.get_fence(), b.get_fence()});

  std::optional<std::error_code> all_result;
  all.async_wait(ctx.get_executor(), [&](std::error_code ec) { all_result = ec; });
  std::optional<std::pair<std::error_code, std::size_t>> any_result;
  first.async_wait(ctx.get_executor(), [&](std::error_code ec, std::size_t i) { any_result.emplace(ec, i); });
  std::optional<std::pair<std::error_code, std::size_t>> in_coroutine;
  asio::co_spawn(
      ctx,
      [&]() -> asio::awaitable<void> {
        auto [ec, i] = co_await first.async_wait(asio_compat::as_tuple(asio::use_awaitable));
        in_coroutine.emplace(ec, i);
      },
      asio::detached);
  asio::cancellation_signal cancel;
  std::optional<std::pair<std::error_code, std::size_t>> cancelled;
  promise never;
  when_any({never.get_fence()})
      .async_wait(ctx.get_executor(),
                  asio::bind_cancellation_slot(
                      cancel.slot(), [&](std::error_code ec, std::size_t i) { cancelled.emplace(ec, i); }));
  ctx.poll();
  CHECK_FALSE(any_result);
  cancel.emit(asio::cancellation_type::terminal);
  ctx.poll();
  REQUIRE(cancelled);
  CHECK(cancelled->first == asio::error::operation_aborted);
  CHECK(cancelled->second == any_fence::none);

  std::thread other([&] { b.set_error(eio); });  // signalled from another thread
  other.join();
  CHECK_FALSE(all.signalled());
  CHECK_FALSE(any_result);  // never inline on the signalling thread
  while (ctx.poll() != 0) {
  }
  REQUIRE(any_result);
  CHECK(any_result->first == eio);
  CHECK(any_result->second == 1u);
  REQUIRE(in_coroutine);
  CHECK(*in_coroutine == *any_result);
  CHECK_FALSE(all_result);
  a.set_value();
  ctx.restart();
  ctx.run();
  CHECK(all_result == eio);
}

TEST_CASE("a job awaits when_all and when_any like the fences they combine", "[combinators][job]") {
  sim_fixture f(1);
  auto e = f.sched.make_entity();
  promise upload, textures, fallback;
  const fence upload_fence = upload.get_fence();
  f.clock.at(10, sim::phase::other, [&] { textures.set_value(); });
  f.clock.at(20, sim::phase::other, [&] { upload.set_error(eio); });
  f.clock.at(30, sim::phase::other, [&] { fallback.set_value(); });

  auto both = [](fence all) -> sim_job {
    co_await all;
    co_return command{10, {}, 1};
  };
  std::optional<std::size_t> winner;
  std::error_code winner_error = make_error_code(errc::broken);
  auto first = [&](any_fence any) -> sim_job {
    winner_error = co_await try_wait(any.get_fence());
    winner = any.index();
    co_return command{10, {}, 2};
  };
  auto failed = e.push(both(when_all({textures.get_fence(), upload_fence})));
  auto ran = e.push(first(when_any({fallback.get_fence(), upload_fence, textures.get_fence()})));
  f.run();
  REQUIRE(failed.finished.signalled());
  CHECK(failed.finished.error() == eio);
  CHECK(failed.finished.cause() == upload_fence.point());  // the root, as awaiting `upload` directly
  REQUIRE(ran.finished.signalled());
  CHECK_FALSE(ran.finished.error());
  CHECK(winner == 2u);  // textures, at 10
  CHECK_FALSE(winner_error);
}

TEST_CASE("a combinator released before its inputs signal leaves no waiter on them",
          "[combinators][lifetime]") {
  promise a, b;
  const fence a_fence = a.get_fence(), b_fence = b.get_fence();
  {
    const fence all = when_all({a.get_fence(), b.get_fence()});
    const any_fence first = when_any({a.get_fence(), b.get_fence()});
    const fence nested = when_all({first.get_fence(), when_any({b.get_fence()}).get_fence()});
    CHECK(has_waiters(a.get_fence()));
    CHECK(has_waiters(b.get_fence()));
  }
  CHECK_FALSE(has_waiters(a.get_fence()));
  CHECK_FALSE(has_waiters(b.get_fence()));
  a.set_value();
  b.set_error(eio);
  CHECK(a_fence.signalled());
  CHECK(b_fence.signalled());

  SECTION("a when_any's losers are unlinked once it is released") {
    promise winner, loser;
    {
      const any_fence first = when_any({winner.get_fence(), loser.get_fence()});
      winner.set_value();
      CHECK(has_waiters(loser.get_fence()));
    }
    CHECK_FALSE(has_waiters(loser.get_fence()));
  }
  SECTION("an inner combinator held only by an outer one, sharing an input with it") {
    promise x, y;
    std::optional<fence> outer;
    {
      const any_fence inner = when_any({x.get_fence(), y.get_fence()});
      y.set_value();  // decided; its waiter on x stays linked while it lives
      outer = when_all({x.get_fence(), inner.get_fence()});
    }
    x.set_value();  // completes the outer one; the inner one is still held by it
    REQUIRE(outer->signalled());
    CHECK_FALSE(outer->error());
    outer.reset();  // frees both, unlinking nothing from inside a notification
  }
}

TEST_CASE("combinators whose inputs signal on other threads while they are waited on or released",
          "[combinators][lifetime][threads]") {
  constexpr int rounds = 200;
  constexpr int inputs = 8;
  for (int round = 0; round < rounds; ++round) {
    std::vector<promise> promises(inputs);
    std::vector<fence> fences;
    for (auto& p : promises) fences.push_back(p.get_fence());
    std::optional<fence> all = when_all(fences);
    // On the heap, not in a std::optional: GCC 12 at -O2 warns falsely that an
    // optional's any_fence may be destroyed uninitialized.
    auto first = std::make_unique<any_fence>(when_any(fences));
    std::atomic<int> notified{0};
    asio::io_context ctx;
    all->async_wait(ctx.get_executor(),
                    [&](std::error_code) { notified.fetch_add(1, std::memory_order_relaxed); });
    std::vector<std::thread> signallers;
    for (int t = 0; t < 4; ++t) {
      signallers.emplace_back([&, t] {
        for (int i = t; i < inputs; i += 4) {
          if (i == 5)
            promises[i].set_error(eio);
          else
            promises[i].set_value();
        }
      });
    }
    // Released while the inputs signal (every other round), or kept to the end.
    if (round % 2 == 0) {
      first.reset();
    }
    const fence kept_all = *all;
    all.reset();
    for (auto& t : signallers) t.join();
    ctx.run();
    // relaxed: read after the run, on this thread.
    CHECK(notified.load(std::memory_order_relaxed) == 1);
    REQUIRE(kept_all.signalled());
    CHECK(kept_all.error() == eio);
    CHECK(kept_all.cause() == fences[5].point());
    if (first) {
      REQUIRE(first->signalled());
      const auto i = first->index();
      REQUIRE(i);
      REQUIRE(*i < static_cast<std::size_t>(inputs));
      CHECK(first->error() == fences[*i].error());
    }
  }
}

TEST_CASE("combinators released on one thread while their inputs signal on another",
          "[combinators][lifetime][threads]") {
  for (int round = 0; round < 500; ++round) {
    promise a, b;
    const fence a_fence = a.get_fence(), b_fence = b.get_fence();
    std::optional<fence> all = when_all({a_fence, b_fence});
    auto first = std::make_unique<any_fence>(when_any({a_fence, b_fence}));  // see above
    std::thread signaller([&] {
      a.set_value();
      b.set_value();
    });
    all.reset();
    first.reset();
    signaller.join();
    CHECK_FALSE(has_waiters(a_fence));
    CHECK_FALSE(has_waiters(b_fence));
  }
}
