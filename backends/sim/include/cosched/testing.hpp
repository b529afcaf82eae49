// A kit for coroutine lifetime tests: live-object counters for job frames and
// commands, an exactly-once fence checker, plus the sim backend's virtual clock and ring.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cosched/fence.hpp"
#include "cosched/sim/sim_ring.hpp"
#include "cosched/sim/virtual_clock.hpp"

namespace cosched::testing {

/// Counts live instances of the probes that point at it.
///
/// @par Thread Safety
/// Safe: probes may be created and destroyed on any thread.
struct live_counter {
  std::atomic<long> live{0};
  std::atomic<long> created{0};  // constructions of any kind, copies and moves included

  long alive() const noexcept {
    // acquire: a test reads the count after the objects' destruction on another thread.
    return live.load(std::memory_order_acquire);
  }
};

/// An object that counts itself in a live_counter. Put one in a job's by-value
/// parameters to count live frames, or in a command to count live commands.
class probe {
 public:
  explicit probe(live_counter& counter) noexcept : counter_(&counter) { enter(); }
  probe(const probe& other) noexcept : counter_(other.counter_) { enter(); }
  probe(probe&& other) noexcept : counter_(other.counter_) { enter(); }
  // Self-assignment: the same counter, so the test below leaves it alone.
  // NOLINTNEXTLINE(bugprone-unhandled-self-assignment): handled, see above
  probe& operator=(const probe& other) noexcept {
    if (counter_ != other.counter_) {
      leave();
      counter_ = other.counter_;
      enter();
    }
    return *this;
  }
  ~probe() { leave(); }

 private:
  void enter() noexcept {
    // relaxed: the count is read with acquire after a happens-before edge (join, shutdown).
    counter_->created.fetch_add(1, std::memory_order_relaxed);
    counter_->live.fetch_add(1, std::memory_order_relaxed);
  }
  void leave() noexcept {
    // release: pairs with alive()'s acquire.
    counter_->live.fetch_sub(1, std::memory_order_release);
  }
  live_counter* counter_;
};

/// Watches fences and counts their signals, without an executor: the count is
/// taken inline when the fence signals (a test observer, not a resumption).
/// Fences abort the process when signalled twice; the checker adds that every
/// watched fence signalled exactly once by the time of the check.
///
/// @par Thread Safety
/// watch() and the queries may be called from any thread.
///
/// @par Lifetime
/// The checker must outlive the watched fences' signals, or unwatch them by
/// being destroyed first (destruction unlinks pending watches).
class fence_checker {
 public:
  fence_checker() = default;
  fence_checker(const fence_checker&) = delete;
  fence_checker& operator=(const fence_checker&) = delete;
  ~fence_checker() {
    for (auto& w : watches_) {
      if (w->f.state()) w->f.state()->remove_waiter(*w);
    }
  }

  /// Watches `f`. `at_signal`, if given, runs inline on the signalling thread at
  /// the moment the fence signals (for checks such as "nothing of the job is
  /// alive any more"); it must not block. A fence that has already signalled
  /// counts once and its check runs at once.
  void watch(const fence& f, std::string label = {}, std::function<void()> at_signal = {}) {
    auto w = std::make_unique<watch_entry>();
    w->f = f;
    w->label = std::move(label);
    w->at_signal = std::move(at_signal);
    w->notify = [](detail::fence_waiter& self, detail::fence_state&) noexcept {
      auto& entry = static_cast<watch_entry&>(self);
      if (entry.at_signal) entry.at_signal();
      // release: pairs with the acquire loads of the queries.
      entry.signals.fetch_add(1, std::memory_order_release);
    };
    if (!w->f.state()->add_waiter(*w)) {
      if (w->at_signal) w->at_signal();
      w->signals.store(1, std::memory_order_release);
    }
    std::lock_guard guard(lock_);
    watches_.push_back(std::move(w));
  }

  /// Watched fences that signalled exactly once / not at all / more than once.
  std::size_t signalled_once() const {
    return count([](long n) { return n == 1; });
  }
  std::size_t pending() const {
    return count([](long n) { return n == 0; });
  }
  std::size_t watched() const {
    std::lock_guard guard(lock_);
    return watches_.size();
  }
  /// Labels of the watched fences that have not signalled.
  std::vector<std::string> pending_labels() const {
    std::vector<std::string> out;
    std::lock_guard guard(lock_);
    for (auto& w : watches_)
      if (w->signals.load(std::memory_order_acquire) == 0) out.push_back(w->label);
    return out;
  }
  /// Every watched fence signalled exactly once.
  bool all_exactly_once() const { return signalled_once() == watched(); }

 private:
  // Its waiter base is linked to `f`.
  struct watch_entry : detail::fence_waiter {
    fence f;
    std::string label;
    std::function<void()> at_signal;
    std::atomic<long> signals{0};
  };
  template <class Pred>
  std::size_t count(Pred pred) const {
    std::lock_guard guard(lock_);
    std::size_t n = 0;
    for (auto& w : watches_)
      if (pred(w->signals.load(std::memory_order_acquire))) ++n;
    return n;
  }

  mutable std::mutex lock_;
  std::vector<std::unique_ptr<watch_entry>> watches_;
};

using sim::fault;
using sim::time_us;
using sim::virtual_clock;
using sim::virtual_ring;

}  // namespace cosched::testing
