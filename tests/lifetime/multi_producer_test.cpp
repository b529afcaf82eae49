// Several producer threads push to shared and own entities while one thread
// runs the scheduler's executor and others kill, reprioritise and change ring
// sets; pushes and set_rings race with shutdown. Race-free by design: CI runs
// this file under ThreadSanitizer.
#include "cosched/entity.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <future>
#include <latch>
#include <memory>
#include <mutex>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/post.hpp>

#include "catch.hpp"
#include "cosched/cosched.hpp"
#include "cosched/testing.hpp"
#include "threads_fixture.hpp"

using namespace cosched;
using namespace cosched::lifetime_test;

namespace {

/// A ring whose hardware fences have already signalled when run() returns.
class instant_ring final : public ring<counted_command> {
 public:
  fence run(counted_command&) override {
    ++runs;
    return fence::make_signalled();
  }
  void cancel_all() noexcept override { ++cancels; }
  void stop() noexcept {}  // no thread of its own (see device_ring::stop)

  // The scheduler's executor only; read by the test after that thread joined.
  std::uint64_t runs = 0;
  int cancels = 0;
};

/// What the test knows of one job.
struct mp_job {
  testing::live_counter frame;
  testing::live_counter command;
  // Written by the producer; read by the test after the producer joined.
  submitted fences;
  std::size_t entity = 0;
  bool after_shutdown = false;  // pushed once is_shut_down() was seen
  bool signalled_at_return = false;
  long frames_at_return = -1;
  // Taken inline, on the signalling thread, when the finished fence signals.
  std::atomic<long> frames_at_finish{-1};
  std::atomic<long> commands_at_finish{-1};
};

/// The order in which an entity's finished fences signalled.
struct signal_log {
  std::mutex lock;
  std::vector<std::uint64_t> seqnos;  // guarded by lock
  std::vector<bool> on_executor;      // false: it had signalled before it was watched
};

counted_job mp_body(testing::probe, testing::live_counter& commands, fence gate, fence dependency) {
  if (gate.valid()) co_await gate;
  if (dependency.valid()) co_await dependency;
  co_return counted_command{{}, testing::probe(commands)};
}

/// Watches both fences of `j`, recording the live counts and the signal order
/// at the moment `finished` signals.
void watch_job(testing::fence_checker& checker, mp_job& j, signal_log& log, std::thread::id executor) {
  checker.watch(j.fences.scheduled());
  checker.watch(j.fences.finished, {}, [&j, &log, executor, seqno = j.fences.seqno()] {
    // relaxed: read by the test after joining every thread.
    j.frames_at_finish.store(j.frame.alive(), std::memory_order_relaxed);
    j.commands_at_finish.store(j.command.alive(), std::memory_order_relaxed);
    std::lock_guard guard(log.lock);
    log.seqnos.push_back(seqno);
    log.on_executor.push_back(std::this_thread::get_id() == executor);
  });
}

std::vector<std::uint64_t> one_to(std::size_t n) {
  std::vector<std::uint64_t> v(n);
  std::iota(v.begin(), v.end(), 1);
  return v;
}

template <class Ring>
void run_multi_producer(Ring& hardware, std::uint64_t (*runs_of)(Ring&)) {
  constexpr std::size_t producers = 4;
  constexpr std::size_t jobs_per_producer = 2000;
  constexpr std::size_t round_size = 8;
  constexpr std::size_t shared_ok = 0;      // shared, never killed
  constexpr std::size_t shared_killed = 1;  // shared, killed midway
  constexpr std::size_t entity_count = 2 + producers;

  std::optional<executor_thread> executor(std::in_place);
  scheduler<counted_command> sched(executor->executor(), hardware, {.credit_limit = 4});
  std::vector<entity<counted_command>> entities;
  for (std::size_t i = 0; i < entity_count; ++i)
    entities.push_back(sched.make_entity({.name = "e" + std::to_string(i)}));
  std::vector<signal_log> logs(entity_count);
  testing::fence_checker checker;
  std::vector<std::unique_ptr<mp_job[]>> jobs;
  for (std::size_t p = 0; p < producers; ++p) jobs.push_back(std::make_unique<mp_job[]>(jobs_per_producer));
  const std::thread::id executor_id = executor->id();

  std::latch start(producers + 2);
  std::latch halfway(producers);  // every producer pushed half its jobs
  std::latch killed(1);           // the kill happened; producers hold there once

  auto produce = [&](std::size_t p) {
    start.arrive_and_wait();
    mp_job* mine = jobs[p].get();
    fence last_shared;  // the finished fence of this producer's last job on shared_ok
    std::size_t pushed = 0;
    for (std::size_t round = 0; pushed < jobs_per_producer; ++round) {
      const std::size_t target = round % 3 == 0 ? shared_ok : round % 3 == 1 ? shared_killed : 2 + p;
      // Jobs of the entities that are never killed wait on a gate opened only
      // once they are watched, so their finished fences cannot signal before
      // that: their whole signal order is recorded on the executor thread.
      const bool gated = target != shared_killed;
      const std::size_t n = std::min(round_size, jobs_per_producer - pushed);
      const push_options options{.credits = round % 4 == 3 ? 2u : 1u};
      std::vector<promise> gates(gated ? n : 0);
      std::vector<counted_job> batch;
      for (std::size_t i = 0; i < n; ++i) {
        mp_job& j = mine[pushed + i];
        j.entity = target;
        batch.push_back(mp_body(testing::probe(j.frame), j.command, gated ? gates[i].get_fence() : fence{},
                                target == 2 + p ? last_shared : fence{}));
      }
      if (round % 2 == 1) {
        auto fences = entities[target].push(std::span(batch), options);
        for (std::size_t i = 0; i < n; ++i) mine[pushed + i].fences = std::move(fences[i]);
      } else {
        for (std::size_t i = 0; i < n; ++i)
          mine[pushed + i].fences = entities[target].push(std::move(batch[i]), options);
      }
      for (std::size_t i = 0; i < n; ++i) watch_job(checker, mine[pushed + i], logs[target], executor_id);
      for (auto& gate : gates) gate.set_value();
      if (target == shared_ok) last_shared = mine[pushed + n - 1].fences.finished;
      const std::size_t before = pushed;
      pushed += n;
      if (before < jobs_per_producer / 2 && pushed >= jobs_per_producer / 2) halfway.count_down();
      if (before < jobs_per_producer * 3 / 4 && pushed >= jobs_per_producer * 3 / 4) killed.wait();
    }
  };
  auto kill_midway = [&] {
    start.arrive_and_wait();
    halfway.wait();
    // Wait until the entity's first job is done, so both outcomes occur.
    wait_for(entities[shared_killed].at(1), executor->executor());
    entities[shared_killed].kill();
    killed.count_down();
  };
  auto reprioritise = [&] {
    start.arrive_and_wait();
    for (int i = 0; i < 4000; ++i)
      entities[static_cast<std::size_t>(i) % entity_count].set_priority(
          static_cast<priority>(i % priority_count));
  };

  std::vector<std::thread> threads;
  for (std::size_t p = 0; p < producers; ++p) threads.emplace_back(produce, p);
  threads.emplace_back(kill_midway);
  threads.emplace_back(reprioritise);
  for (auto& t : threads) t.join();

  // Everything pushed is known; wait for every entity to drain, then shut down.
  const auto deadline = std::chrono::steady_clock::now() + watchdog;
  std::vector<std::size_t> stuck;  // entities whose jobs stopped making progress
  for (std::size_t e = 0; e < entity_count; ++e) {
    const auto drained = wait_for(entities[e].drain(), executor->executor(), deadline);
    if (!drained)
      stuck.push_back(e);
    else
      CHECK_FALSE(*drained);
  }
  CHECK(stuck == std::vector<std::size_t>{});
  // Nothing is on the ring unless a wake-up was lost; then the bound ends it.
  const auto down = wait_for(sched.shutdown(std::chrono::seconds(1)), executor->executor());
  if (!down) shutdown_stuck();
  hardware.stop();  // its last posts complete before the io_context goes
  executor->stop();
  CHECK_FALSE(*down);
  CHECK(sched.is_shut_down());

  // Every returned fence signalled exactly once.
  CHECK(checker.watched() == 2 * producers * jobs_per_producer);
  CHECK(checker.pending() == 0);
  CHECK(checker.all_exactly_once());

  // Nothing of a job was alive when its finished fence signalled, nor is now.
  std::size_t alive_at_finish = 0, alive_now = 0, ok = 0;
  std::vector<std::vector<std::uint64_t>> seqnos(entity_count);
  std::vector<std::vector<std::error_code>> errors(entity_count);  // by seqno - 1
  for (auto& e : errors) e.resize(producers * jobs_per_producer);
  for (std::size_t p = 0; p < producers; ++p) {
    for (std::size_t i = 0; i < jobs_per_producer; ++i) {
      const mp_job& j = jobs[p][i];
      if (j.frames_at_finish.load(std::memory_order_relaxed) != 0 ||
          j.commands_at_finish.load(std::memory_order_relaxed) != 0)
        ++alive_at_finish;
      if (j.frame.alive() != 0 || j.command.alive() != 0) ++alive_now;
      seqnos[j.entity].push_back(j.fences.seqno());
      errors[j.entity].at(j.fences.seqno() - 1) = j.fences.finished.error();
      if (!j.fences.finished.error()) ++ok;
    }
  }
  CHECK(alive_at_finish == 0);
  CHECK(alive_now == 0);
  CHECK(runs_of(hardware) == ok);  // every job that succeeded ran exactly once; no other did

  for (std::size_t e = 0; e < entity_count; ++e) {
    INFO("entity " << e);
    const std::size_t n = seqnos[e].size();
    CHECK(n > 0);
    // Seqnos 1..N without gaps.
    std::sort(seqnos[e].begin(), seqnos[e].end());
    CHECK(seqnos[e] == one_to(n));
    // Finished fences signalled in seqno order.
    std::lock_guard guard(logs[e].lock);
    CHECK(logs[e].seqnos.size() == n);
    if (e != shared_killed) {
      CHECK(std::count(logs[e].on_executor.begin(), logs[e].on_executor.end(), false) == 0);
      CHECK(logs[e].seqnos == one_to(n));
      CHECK(std::count_if(errors[e].begin(), errors[e].begin() + static_cast<long>(n),
                          [](std::error_code ec) { return static_cast<bool>(ec); }) == 0);
    } else {
      // Fences that had signalled before the producer watched them were counted
      // late, on the producer's thread; the order is exact for all others.
      std::vector<std::uint64_t> seen_on_executor;
      for (std::size_t i = 0; i < n; ++i)
        if (logs[e].on_executor[i]) seen_on_executor.push_back(logs[e].seqnos[i]);
      CHECK(std::is_sorted(seen_on_executor.begin(), seen_on_executor.end()));
      CHECK(std::adjacent_find(seen_on_executor.begin(), seen_on_executor.end()) == seen_on_executor.end());
      // Done or killed; once one is killed, every later one is too.
      std::size_t done = 0;
      while (done < n && !errors[e][done]) ++done;
      CHECK(done > 0);
      CHECK(done < n);
      std::size_t killed_jobs = 0;
      for (std::size_t i = done; i < n; ++i)
        if (errors[e][i] == make_error_code(errc::killed)) ++killed_jobs;
      CHECK(killed_jobs == n - done);
    }
  }
}

std::uint64_t instant_runs(instant_ring& r) { return r.runs; }
std::uint64_t device_runs(device_ring& r) { return r.runs(); }

}  // namespace

TEST_CASE("multi-producer pushes with kill and set_priority, hardware fences already signalled",
          "[lifetime][threads]") {
  instant_ring hardware;
  run_multi_producer(hardware, &instant_runs);
  CHECK(hardware.cancels == 0);  // nothing was on the ring at shutdown
}

TEST_CASE("multi-producer pushes with kill and set_priority, a device thread signalling the ring",
          "[lifetime][threads]") {
  device_ring hardware;
  run_multi_producer(hardware, &device_runs);
  CHECK(hardware.cancels() == 0);
}

TEST_CASE("a job woken from another thread that then waits again holds and drops each reference once",
          "[lifetime][threads][fence]") {
  instant_ring hardware;
  std::optional<executor_thread> executor(std::in_place);
  scheduler<counted_command> sched(executor->executor(), hardware, {.credit_limit = 1});
  auto e = sched.make_entity();
  testing::live_counter frame, commands;
  promise first, second;
  auto pushed = e.push(mp_body(testing::probe(frame), commands, first.get_fence(), second.get_fence()));
  // Handlers run in order on the executor thread: one posted after a pass was
  // requested runs once that pass is over.
  auto after_pass = [&executor] {
    std::promise<void> done;
    asio::post(executor->executor(), [&done] { done.set_value(); });
    done.get_future().wait();
  };
  after_pass();  // the job has started and waits for `first`
  // Signalled from this thread: the wake-up crosses threads (it holds a
  // reference until processed); the pass resumes the job, which then waits for
  // `second` with the same node.
  first.set_value();
  after_pass();
  CHECK(frame.alive() == 1);
  CHECK_FALSE(pushed.finished.signalled());
  second.set_value();  // crosses threads again
  REQUIRE(wait_for(pushed.finished, executor->executor()) == std::error_code{});
  auto down = sched.shutdown();
  REQUIRE(wait_for(down, executor->executor()).has_value());
  hardware.stop();  // its last posts complete before the io_context goes
  executor->stop();
  CHECK(frame.alive() == 0);
  CHECK(commands.alive() == 0);
  CHECK(hardware.runs == 1);
  // Every reference but this handle's is gone: the block is freed with it.
  CHECK(pushed.finished.state()->owner->refs.load() == 1);
}

TEST_CASE("threads ask for scheduled fences while the scheduler reaches them", "[lifetime][threads][fence]") {
  constexpr std::size_t job_count = 600;
  constexpr std::size_t askers = 3;
  device_ring hardware;
  std::optional<executor_thread> executor(std::in_place);
  scheduler<counted_command> sched(executor->executor(), hardware, {.credit_limit = 4});
  auto e = sched.make_entity();
  std::deque<mp_job> jobs(job_count);
  promise gate;
  const fence opened = gate.get_fence();
  for (std::size_t i = 0; i < job_count; ++i) {
    // Every third job waits for the gate, so some are reached before, some during
    // and some after the askers' requests; every fifth fails before running.
    fence dependency = i % 5 == 4 ? fence::make_signalled(make_error_code(errc::killed)) : fence{};
    jobs[i].fences = e.push(mp_body(testing::probe(jobs[i].frame), jobs[i].command,
                                    i % 3 == 0 ? opened : fence{}, std::move(dependency)));
  }
  // Each asker requests every job's scheduled fence, in its own order.
  std::vector<std::vector<fence>> seen(askers, std::vector<fence>(job_count));
  std::latch start(askers + 1);
  std::vector<std::thread> threads;
  for (std::size_t a = 0; a < askers; ++a) {
    threads.emplace_back([&, a] {
      start.arrive_and_wait();
      for (std::size_t k = 0; k < job_count; ++k) {
        const std::size_t i = a % 2 == 0 ? k : job_count - 1 - k;
        seen[a][i] = jobs[i].fences.scheduled();
      }
    });
  }
  start.arrive_and_wait();
  gate.set_value();
  for (auto& t : threads) t.join();
  REQUIRE(wait_for(e.drain(), executor->executor()).has_value());
  for (std::size_t i = 0; i < job_count; ++i) {
    const fence mine = jobs[i].fences.scheduled();
    for (std::size_t a = 0; a < askers; ++a) CHECK(seen[a][i] == mine);
    REQUIRE(wait_for(mine, executor->executor()).has_value());
    CHECK(mine.point().seqno == jobs[i].fences.seqno());
    if (i % 5 == 4) {
      CHECK(mine.error() == make_error_code(errc::killed));
      CHECK(jobs[i].fences.finished.error() == make_error_code(errc::killed));
    } else {
      CHECK_FALSE(mine.error());
      CHECK_FALSE(jobs[i].fences.finished.error());
    }
    CHECK(jobs[i].frame.alive() == 0);
  }
  auto down = sched.shutdown();
  REQUIRE(wait_for(down, executor->executor()).has_value());
  hardware.stop();  // its last posts complete before the io_context goes
  executor->stop();
}

TEST_CASE("pushes from other threads race with scheduler shutdown", "[lifetime][threads][shutdown]") {
  constexpr std::size_t producers = 2;
  constexpr std::size_t pushes_before_shutdown = 200;
  constexpr std::size_t pushes_after_shutdown = 50;
  constexpr std::size_t push_cap = 20000;  // bounds the work if shutdown is slow
  constexpr std::size_t churn_cap = 2000;

  device_ring hardware;
  std::optional<executor_thread> executor(std::in_place);
  scheduler<counted_command> sched(executor->executor(), hardware, {.credit_limit = 2});
  // Entity 0 is shared by the producers; producer p also owns entity 1 + p.
  std::vector<entity<counted_command>> entities;
  for (std::size_t i = 0; i < 1 + producers; ++i) entities.push_back(sched.make_entity());
  testing::fence_checker checker;
  std::vector<signal_log> logs(1 + producers);
  signal_log churn_log;  // entities made and dropped by the churn thread (order not checked)
  const std::thread::id executor_id = executor->id();
  // One deque per thread: stable addresses, each written by its own thread only.
  std::vector<std::deque<mp_job>> jobs(producers + 1);

  std::latch started(producers + 1);  // each has pushed before shutdown is called
  std::latch shutdown_done(1);

  auto push_one = [&](mp_job& j, entity<counted_command>& e, signal_log& log, std::size_t index) {
    j.entity = index;
    j.after_shutdown = sched.is_shut_down();
    auto body = mp_body(testing::probe(j.frame), j.command, {}, {});
    j.fences = e.push(std::move(body));
    j.signalled_at_return = j.fences.finished.signalled() && j.fences.scheduled().signalled();
    j.frames_at_return = j.frame.alive();
    watch_job(checker, j, log, executor_id);
  };
  auto produce = [&](std::size_t p) {
    auto& mine = jobs[p];
    std::size_t after = 0;
    bool counted_down = false, waited = false;
    for (std::size_t round = 0; after < pushes_after_shutdown; ++round) {
      if (!counted_down && mine.size() >= pushes_before_shutdown) {
        counted_down = true;
        started.count_down();
      }
      if (!waited && mine.size() >= push_cap) {
        waited = true;
        shutdown_done.wait();
      }
      const std::size_t target = round % 2 == 0 ? 0 : 1 + p;
      if (round % 4 < 2) {
        push_one(mine.emplace_back(), entities[target], logs[target], target);
      } else {
        // A batch of 4 (its jobs are watched after the batch push returns).
        const bool after_shutdown = sched.is_shut_down();
        std::vector<counted_job> batch;
        std::vector<mp_job*> records;
        for (int k = 0; k < 4; ++k) {
          auto& j = mine.emplace_back();
          j.entity = target;
          j.after_shutdown = after_shutdown;
          batch.push_back(mp_body(testing::probe(j.frame), j.command, {}, {}));
          records.push_back(&j);
        }
        auto fences = entities[target].push(std::span(batch));
        for (std::size_t k = 0; k < records.size(); ++k) {
          records[k]->fences = std::move(fences[k]);
          records[k]->signalled_at_return = records[k]->fences.finished.signalled();
          records[k]->frames_at_return = records[k]->frame.alive();
          watch_job(checker, *records[k], logs[target], executor_id);
        }
        if (after_shutdown) after += 3;
      }
      if (mine.back().after_shutdown) ++after;
    }
  };
  auto churn = [&] {
    // Entities made, used once and dropped while shutdown happens.
    auto& mine = jobs[producers];
    bool after = false;
    for (std::size_t i = 0; !after; ++i) {
      if (i == 1) started.count_down();
      if (i == churn_cap) shutdown_done.wait();
      after = sched.is_shut_down();
      auto e = sched.make_entity();
      push_one(mine.emplace_back(), e, churn_log, 0);
      mine.back().after_shutdown = after;
    }
  };

  std::vector<std::thread> threads;
  for (std::size_t p = 0; p < producers; ++p) threads.emplace_back(produce, p);
  threads.emplace_back(churn);
  started.wait();
  // The bound is far above what the commands on the ring need: they finish.
  const auto down = wait_for(sched.shutdown(std::chrono::seconds(5)), executor->executor());
  shutdown_done.count_down();
  for (auto& t : threads) t.join();
  if (!down) shutdown_stuck();
  hardware.stop();  // its last posts complete before the io_context goes
  executor->stop();
  CHECK_FALSE(*down);
  CHECK(sched.is_shut_down());

  std::size_t total = 0;
  for (auto& mine : jobs) total += mine.size();
  CHECK(checker.watched() == 2 * total);
  CHECK(checker.pending() == 0);
  CHECK(checker.all_exactly_once());

  std::size_t alive_at_finish = 0, alive_now = 0, late = 0, late_not_at_once = 0, other_errors = 0, ok = 0;
  std::vector<std::vector<std::pair<std::uint64_t, std::error_code>>> outcomes(1 + producers);
  for (std::size_t t = 0; t < jobs.size(); ++t) {
    for (const auto& j : jobs[t]) {
      if (j.frames_at_finish.load(std::memory_order_relaxed) != 0 ||
          j.commands_at_finish.load(std::memory_order_relaxed) != 0)
        ++alive_at_finish;
      if (j.frame.alive() != 0 || j.command.alive() != 0) ++alive_now;
      const auto ec = j.fences.finished.error();
      if (!ec)
        ++ok;
      else if (ec != make_error_code(errc::shutdown))
        ++other_errors;
      if (j.after_shutdown) {
        ++late;
        // Failed `shutdown` at once: signalled and the frame destroyed inside push.
        if (!j.signalled_at_return || j.frames_at_return != 0 || ec != make_error_code(errc::shutdown))
          ++late_not_at_once;
      }
      if (t < producers) outcomes[j.entity].emplace_back(j.fences.seqno(), ec);
    }
  }
  CHECK(alive_at_finish == 0);
  CHECK(alive_now == 0);
  CHECK(other_errors == 0);
  CHECK(late >= producers * pushes_after_shutdown + 1);
  CHECK(late_not_at_once == 0);
  CHECK(hardware.runs() == ok);
  CHECK(hardware.cancels() == 0);  // in-flight commands finished within the bound

  for (std::size_t e = 0; e < outcomes.size(); ++e) {
    INFO("entity " << e);
    auto& list = outcomes[e];
    std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::uint64_t> seqnos;
    for (const auto& [seqno, ec] : list) seqnos.push_back(seqno);
    CHECK(seqnos == one_to(list.size()));
    // Succeeded, then `shutdown` from some job on: never back.
    std::size_t done = 0;
    while (done < list.size() && !list[done].second) ++done;
    CHECK(std::all_of(list.begin() + static_cast<long>(done), list.end(),
                      [](const auto& o) { return o.second == make_error_code(errc::shutdown); }));
    std::lock_guard guard(logs[e].lock);
    std::vector<std::uint64_t> seen_on_executor;
    for (std::size_t i = 0; i < logs[e].seqnos.size(); ++i)
      if (logs[e].on_executor[i]) seen_on_executor.push_back(logs[e].seqnos[i]);
    CHECK(std::is_sorted(seen_on_executor.begin(), seen_on_executor.end()));
  }
}

namespace {

/// A ring whose hardware fences have signalled when run() returns, and which
/// records the tag of every command it ran.
class tagging_ring final : public ring<counted_command> {
 public:
  fence run(counted_command& c) override {
    tags.push_back(c.cmd.tag);
    return fence::make_signalled();
  }
  void cancel_all() noexcept override {}

  std::vector<std::uint64_t> tags;  // the scheduler's executor only; read once that thread joined
};

}  // namespace

TEST_CASE("set_rings from other threads races with pushes, kill, close and shutdown",
          "[lifetime][threads][affinity]") {
  constexpr std::size_t jobs_per_entity = 1500;
  constexpr std::uint64_t pinned_tag = 1'000'000;  // tags of the entity that may only use ring 1

  tagging_ring ring0, ring1;
  std::optional<executor_thread> executor(std::in_place);
  std::optional<scheduler<counted_command>> sched(
      std::in_place, executor->executor(), std::initializer_list<ring<counted_command>*>{&ring0, &ring1},
      scheduler_options{.credit_limit = 2});
  // moved: its rings change all the time; pinned: ring 1 only, never changed;
  // killed and closed: their rings change while they die.
  auto moved = sched->make_entity({.name = "moved"});
  auto pinned = sched->make_entity({.name = "pinned", .rings = {1}});
  auto killed = sched->make_entity({.name = "killed", .rings = {0}});
  auto closed = sched->make_entity({.name = "closed"});
  testing::fence_checker checker;
  std::vector<std::deque<mp_job>> jobs(4);
  // relaxed below: a flag and a count read by the thread that joins the writers.
  std::atomic<bool> pushing{true};
  std::atomic<std::size_t> refused{0};

  auto produce = [&](entity<counted_command>& e, std::size_t index, std::uint64_t first_tag) {
    for (std::size_t i = 0; i < jobs_per_entity; ++i) {
      mp_job& j = jobs[index].emplace_back();
      auto body = [](testing::probe, testing::live_counter& commands, std::uint64_t tag) -> counted_job {
        co_return counted_command{{0, {}, tag}, testing::probe(commands)};
      };
      auto made = body(testing::probe(j.frame), j.command, first_tag + i);
      j.fences = e.push(std::move(made));
      checker.watch(j.fences.finished);
    }
  };
  auto change_rings = [&] {
    const std::vector<std::vector<std::size_t>> sets = {{0}, {1}, {0, 1}, {1, 0}};
    for (std::size_t i = 0; pushing.load(std::memory_order_relaxed) || i < 100; ++i) {
      moved.set_rings(sets[i % sets.size()]);
      killed.set_rings(sets[(i + 1) % sets.size()]);
      closed.set_rings(sets[(i + 2) % sets.size()]);
      try {
        moved.set_rings({i % 2 ? 2u : 0u, 0});  // out of range or named twice: refused, nothing changes
      } catch (const std::invalid_argument&) {
        refused.fetch_add(1, std::memory_order_relaxed);
      }
    }
  };
  std::thread rings_thread(change_rings);
  std::thread producers[] = {
      std::thread(produce, std::ref(moved), 0, 0),
      std::thread(produce, std::ref(pinned), 1, pinned_tag),
      std::thread(produce, std::ref(killed), 2, 2 * pinned_tag),
      std::thread(produce, std::ref(closed), 3, 3 * pinned_tag),
  };
  std::thread killer([&] {
    killed.kill();
    closed.close();
  });
  for (auto& t : producers) t.join();
  killer.join();
  for (auto* e : {&moved, &pinned, &closed}) {
    const auto drained = wait_for(e->drain(), executor->executor());
    REQUIRE(drained);
    CHECK_FALSE(*drained);
  }
  // Shut down while set_rings goes on; it goes on after the scheduler is gone too.
  const auto down = wait_for(sched->shutdown(std::chrono::seconds(5)), executor->executor());
  if (!down) shutdown_stuck();
  CHECK_FALSE(*down);
  pushing.store(false, std::memory_order_relaxed);
  rings_thread.join();
  executor->stop();
  sched.reset();
  moved.set_rings({1});

  CHECK(refused.load(std::memory_order_relaxed) >= 100);
  CHECK(checker.all_exactly_once());
  std::size_t alive = 0;
  for (const auto& list : jobs)
    for (const auto& j : list) alive += j.frame.alive() + j.command.alive();
  CHECK(alive == 0);
  // Whatever the timing, the entity that may only use ring 1 never ran on ring 0,
  // and every job of the entities never killed or closed ran once.
  CHECK(std::none_of(ring0.tags.begin(), ring0.tags.end(),
                     [](std::uint64_t tag) { return tag >= pinned_tag && tag < 2 * pinned_tag; }));
  std::size_t ran_moved = 0, ran_pinned = 0;
  for (const auto* r : {&ring0, &ring1}) {
    for (const std::uint64_t tag : r->tags) {
      ran_moved += tag < pinned_tag;
      ran_pinned += tag >= pinned_tag && tag < 2 * pinned_tag;
    }
  }
  CHECK(ran_moved == jobs_per_entity);
  CHECK(ran_pinned == jobs_per_entity);
}
