// A stress test of push order at fence-point level: producer threads push
// (single jobs and batches, some through a scope) while another thread kills
// and closes entities, stops the scope and shuts the scheduler down, and a
// device thread signals the hardware fences. At the moment any finished fence
// signals, every earlier job of its entity must have signalled already; each
// fence signals exactly once; nothing of a job outlives it. CI runs it under
// ThreadSanitizer too.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "catch.hpp"
#include "cosched/cosched.hpp"
#include "cosched/testing.hpp"
#include "threads_fixture.hpp"

using namespace cosched;
using namespace cosched::lifetime_test;

namespace {

/// Every finished fence handed out, by entity and seqno, with the order check.
///
/// A violation is recorded only when it is proven: a fence of seqno m was seen
/// signalled, and afterwards (in program order, acquire loads) a fence of a
/// lower seqno of the same entity was seen pending.
class order_registry {
 public:
  explicit order_registry(std::size_t entities) : entities_(entities) {}

  /// A fence push returned (on the pushing thread). Checks it against the ones
  /// already registered, then the caller watches it.
  void add(std::size_t e, const fence& f) {
    auto& ent = entities_[e];
    const std::uint64_t k = f.point().seqno;
    std::lock_guard guard(ent.lock);
    if (ent.slots.size() < k) ent.slots.resize(k);
    if (ent.slots[k - 1].valid()) record("seqno " + std::to_string(k) + " handed out twice", e);
    ent.slots[k - 1] = f;
    for (std::size_t m = k; m < ent.slots.size(); ++m) {
      const fence& later = ent.slots[m];
      // Order of the loads matters: the later one first.
      if (later.valid() && later.signalled() && !f.signalled())
        record("seqno " + std::to_string(m + 1) + " signalled while seqno " + std::to_string(k) +
                   " (registered after it) was pending",
               e);
    }
    check_earlier(ent, e, k);
  }

  /// Fence (e, k) signals: inline, on the signalling thread, or at watch time
  /// when it had signalled already.
  void signalled(std::size_t e, std::uint64_t k) {
    auto& ent = entities_[e];
    std::lock_guard guard(ent.lock);
    check_earlier(ent, e, k);
  }

  std::size_t violations() const noexcept { return violations_.load(); }
  std::string first_violation() {
    std::lock_guard guard(first_lock_);
    return first_;
  }
  /// Seqnos 1..N, each handed out once (called after every thread joined).
  bool contiguous(std::size_t e) {
    auto& ent = entities_[e];
    std::lock_guard guard(ent.lock);
    return std::all_of(ent.slots.begin(), ent.slots.end(), [](const fence& f) { return f.valid(); });
  }

 private:
  struct entity_slots {
    std::mutex lock;
    std::vector<fence> slots;  // guarded; index seqno - 1; empty while not registered
  };

  // Fence k has signalled (the caller knows): every registered earlier one must have.
  void check_earlier(entity_slots& ent, std::size_t e, std::uint64_t k) {
    if (!ent.slots[k - 1].signalled()) return;
    for (std::uint64_t j = 1; j < k; ++j) {
      const fence& earlier = ent.slots[j - 1];
      if (earlier.valid() && !earlier.signalled())
        record("seqno " + std::to_string(k) + " signalled (" + describe(ent.slots[k - 1]) + ") while seqno " +
                   std::to_string(j) + " was pending",
               e);
    }
  }

  static std::string describe(const fence& f) {
    const auto ec = f.error();
    return ec ? ec.message() : std::string("ok");
  }

  void record(const std::string& what, std::size_t e) {
    if (violations_.fetch_add(1) == 0) {
      std::lock_guard guard(first_lock_);
      first_ = "entity " + std::to_string(e) + ": " + what;
    }
  }

  std::deque<entity_slots> entities_;
  std::atomic<std::size_t> violations_{0};
  std::mutex first_lock_;
  std::string first_;
};

/// What the test knows of one job (addresses stable: kept in deques).
struct stress_job {
  testing::live_counter frame;
  testing::live_counter command;
  submitted fences;
  std::size_t entity = 0;
};

counted_job stress_body(testing::probe, testing::live_counter& commands, fence dependency) {
  if (dependency.valid()) co_await dependency;
  co_return counted_command{{}, testing::probe(commands)};
}

struct iteration_result {
  std::size_t jobs = 0, violations = 0, pending = 0, alive = 0, other_errors = 0, ok = 0, gaps = 0;
  std::uint64_t runs = 0;
  bool exactly_once = false, shut_down = false, joined = false;
  std::string first_violation;
};

iteration_result run_iteration(std::uint32_t seed) {
  constexpr std::size_t entity_count = 3;
  constexpr std::size_t producers = 3;
  constexpr std::size_t pushes_per_producer = 40;

  iteration_result out;
  device_ring hardware;
  std::optional<executor_thread> executor(std::in_place);
  scheduler<counted_command> sched(executor->executor(), hardware, {.credit_limit = 2});
  std::vector<entity<counted_command>> entities;
  for (std::size_t e = 0; e < entity_count; ++e) entities.push_back(sched.make_entity());
  scope group;
  order_registry registry(entity_count);
  testing::fence_checker checker;
  std::mutex checker_lock;  // fence_checker::watch is not meant for concurrent callers
  std::vector<std::deque<stress_job>> jobs(producers);
  std::atomic<std::size_t> pushed{0};
  std::mutex dependency_lock;
  std::vector<fence> recent(entity_count);  // guarded: the latest fence of each entity

  auto watch = [&](stress_job& j) {
    const fence f = j.fences.finished;
    registry.add(j.entity, f);
    std::lock_guard guard(checker_lock);
    checker.watch(j.fences.scheduled());
    checker.watch(f, {}, [&registry, e = j.entity, k = f.point().seqno] { registry.signalled(e, k); });
  };

  auto produce = [&](std::size_t p) {
    std::mt19937 rng(seed * 7919u + static_cast<std::uint32_t>(p));
    auto& mine = jobs[p];
    std::size_t done = 0;
    while (done < pushes_per_producer) {
      const std::size_t e = rng() % entity_count;
      const std::size_t n = std::min<std::size_t>(rng() % 3 + 1, pushes_per_producer - done);
      const bool in_scope = rng() % 3 == 0;
      const push_options options{.in = in_scope ? &group : nullptr};
      std::vector<counted_job> batch;
      std::vector<stress_job*> records;
      for (std::size_t i = 0; i < n; ++i) {
        auto& j = mine.emplace_back();
        j.entity = e;
        fence dependency;
        if (rng() % 4 == 0) {  // waits for another entity's latest job (another thread's)
          std::lock_guard guard(dependency_lock);
          dependency = recent[(e + 1) % entity_count];
        }
        batch.push_back(stress_body(testing::probe(j.frame), j.command, dependency));
        records.push_back(&j);
      }
      if (n == 1) {
        records[0]->fences = entities[e].push(std::move(batch[0]), options);
      } else {
        auto fences = entities[e].push(std::span(batch), options);
        for (std::size_t i = 0; i < n; ++i) records[i]->fences = std::move(fences[i]);
      }
      for (auto* j : records) watch(*j);
      {
        std::lock_guard guard(dependency_lock);
        recent[e] = records.back()->fences.finished;
      }
      done += n;
      pushed.fetch_add(n);
      if (rng() % 4 == 0) std::this_thread::yield();
    }
  };

  // Kills one entity, closes another, stops the scope and shuts down, each
  // once a number of pushes (drawn from the seed) has been made.
  std::optional<fence> down;
  auto disrupt = [&] {
    std::mt19937 rng(seed);
    const std::size_t total = producers * pushes_per_producer;
    std::vector<std::size_t> at{rng() % total, rng() % total, rng() % total, rng() % total};
    std::sort(at.begin(), at.end());
    const std::size_t killed = rng() % entity_count;
    const std::size_t closed = (killed + 1 + rng() % (entity_count - 1)) % entity_count;
    auto wait_pushes = [&](std::size_t n) {
      while (pushed.load() < n) std::this_thread::yield();
    };
    std::vector<int> order{0, 1, 2, 3};
    std::shuffle(order.begin(), order.end() - 1, rng);  // shutdown stays last
    for (std::size_t step = 0; step < order.size(); ++step) {
      wait_pushes(at[step]);
      switch (order[step]) {
        case 0:
          entities[killed].kill();
          break;
        case 1:
          entities[closed].close();
          break;
        case 2:
          group.request_stop();
          break;
        case 3:
          down = sched.shutdown(std::chrono::seconds(5));
          break;
      }
    }
  };

  std::vector<std::thread> threads;
  for (std::size_t p = 0; p < producers; ++p) threads.emplace_back(produce, p);
  threads.emplace_back(disrupt);
  for (auto& t : threads) t.join();
  const auto stopped = wait_for(*down, executor->executor());
  if (!stopped) shutdown_stuck();
  const auto joined = wait_for(group.join(), executor->executor());
  hardware.stop();  // its last posts complete before the io_context goes
  executor->stop();

  out.shut_down = sched.is_shut_down() && !*stopped;
  out.joined = joined.has_value() && !*joined;
  out.violations = registry.violations();
  out.first_violation = registry.first_violation();
  out.pending = checker.pending();
  out.exactly_once = checker.all_exactly_once();
  out.runs = hardware.runs();
  for (std::size_t e = 0; e < entity_count; ++e)
    if (!registry.contiguous(e)) ++out.gaps;
  for (auto& mine : jobs) {
    for (auto& j : mine) {
      ++out.jobs;
      if (j.frame.alive() != 0 || j.command.alive() != 0) ++out.alive;
      const auto ec = j.fences.finished.error();
      if (!ec)
        ++out.ok;
      else if (ec != make_error_code(errc::killed) && ec != make_error_code(errc::cancelled) &&
               ec != make_error_code(errc::shutdown))
        ++out.other_errors;
    }
  }
  return out;
}

}  // namespace

TEST_CASE(
    "push order holds at fence-point level while pushes from several threads race with kill, close, "
    "scope stop and shutdown",
    "[lifetime][threads][order][stress]") {
  constexpr std::uint32_t iterations = 600;
  for (std::uint32_t i = 0; i < iterations; ++i) {
    const iteration_result r = run_iteration(i + 1);
    INFO("iteration " << i << " (seed " << i + 1 << ")");
    CAPTURE(r.first_violation);
    REQUIRE(r.violations == 0);
    REQUIRE(r.shut_down);
    REQUIRE(r.joined);
    REQUIRE(r.pending == 0);
    REQUIRE(r.exactly_once);
    REQUIRE(r.alive == 0);
    REQUIRE(r.gaps == 0);
    REQUIRE(r.other_errors == 0);
    REQUIRE(r.jobs == 3 * 40);
    REQUIRE(r.runs == r.ok);  // every job that succeeded ran once; in-flight work finished within the bound
  }
}
