// The default timer service of a scheduler on an Asio executor: steady timers
// on that executor (a uring_context brings timers of its own).
#pragma once

#include <functional>
#include <memory>
#include <unordered_map>

#include <asio/any_io_executor.hpp>
#include <asio/steady_timer.hpp>

#include "cosched/timer.hpp"

namespace cosched::detail {

/// Steady-clock timers whose callbacks run on the scheduler's executor.
///
/// @par Thread Safety
/// The scheduler's executor only.
///
/// @par Lifetime
/// Owned by the engine; pending timers are cancelled (their callbacks
/// destroyed unrun) when it is destroyed with the executor's context still alive.
class steady_timers final : public timer_service {
 public:
  explicit steady_timers(asio::any_io_executor executor) : executor_(std::move(executor)) {}
  timer_id start(duration delay, std::function<void()> fn) override {
    prune();
    const timer_id id = next_++;
    auto timer = std::make_unique<asio::steady_timer>(executor_, delay);
    timer->async_wait([fn = std::move(fn)](std::error_code ec) {
      if (!ec) fn();
    });
    timers_.emplace(id, std::move(timer));
    return id;
  }
  void cancel(timer_id id) noexcept override {
    auto it = timers_.find(id);
    if (it == timers_.end()) return;
    it->second->cancel();
    timers_.erase(it);
  }

 private:
  // Fired timers stay in the map until the next start; drop the expired ones.
  void prune() {
    const auto now = asio::steady_timer::clock_type::now();
    for (auto it = timers_.begin(); it != timers_.end();) {
      if (it->second->expiry() < now)
        it = timers_.erase(it);
      else
        ++it;
    }
  }
  asio::any_io_executor executor_;
  timer_id next_ = 1;                                                         // ids handed out
  std::unordered_map<timer_id, std::unique_ptr<asio::steady_timer>> timers_;  // started, not yet pruned
};

}  // namespace cosched::detail
