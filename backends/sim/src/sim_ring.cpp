// The simulated ring on a virtual clock.
#include "cosched/sim/sim_ring.hpp"

#include <algorithm>

namespace cosched::sim {

fence virtual_ring::run(command& cmd) {
  const time_us now = clock_.now();
  run_record record{cmd.tag, now, std::max(now, busy_until_), true, 0};
  const std::uint64_t id = next_++;
  auto& slot = pending_[id];
  fence hardware = slot.done.get_fence();

  if (stuck_ || cmd.effect.what == fault::kind::hang) {
    // Nothing after a hang ever starts.
    stuck_ = true;
    record.finishes = false;
    keep(record);
    return hardware;
  }
  const time_us duration = cmd.effect.what == fault::kind::slow ? cmd.effect.slow_us : cmd.duration_us;
  record.end = record.start + duration;
  busy_until_ = record.end;
  keep(record);
  std::error_code ec;
  if (cmd.effect.what == fault::kind::error)
    ec = std::error_code(cmd.effect.errno_value, std::generic_category());
  slot.event = clock_.at(record.end, phase::completion, [this, id, ec] {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    promise done = std::move(it->second.done);
    pending_.erase(it);
    done.signal(ec);
  });
  return hardware;
}

timeout_verdict virtual_ring::on_timeout(command& cmd) {
  return cmd.effect.what == fault::kind::slow ? timeout_verdict::progressing : timeout_verdict::hung;
}

void virtual_ring::cancel_all() noexcept {
  auto dropped = std::move(pending_);
  pending_.clear();
  stuck_ = false;
  busy_until_ = clock_.now();
  for (auto& [id, slot] : dropped) {
    if (slot.event) clock_.cancel(slot.event);
  }
  // `dropped` goes out of scope here: its promises signal `broken`, with the
  // ring already empty; the scheduler no longer waits for them.
}

}  // namespace cosched::sim
