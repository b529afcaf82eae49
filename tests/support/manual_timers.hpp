// Timers a test fires by hand (a cosched::timer_service): what is armed waits
// until fire_all(), as if the timer thread ran then.
#pragma once

#include <functional>
#include <map>
#include <utility>

#include "cosched/timer.hpp"

namespace cosched::testing {

class manual_timers final : public timer_service {
 public:
  timer_id start(duration, std::function<void()> fn) override {
    armed_.emplace(++next_, std::move(fn));
    return next_;
  }
  void cancel(timer_id id) noexcept override { armed_.erase(id); }
  std::size_t armed() const noexcept { return armed_.size(); }
  /// Fires every armed timer, as the timer thread would.
  void fire_all() {
    auto firing = std::move(armed_);
    armed_.clear();
    for (auto& [id, fn] : firing) fn();
  }

 private:
  std::map<timer_id, std::function<void()>> armed_;
  timer_id next_ = 0;
};

}  // namespace cosched::testing
