// Policy fair: the fair-share clock (see fair_clock.hpp for the rules).
#include "engine/fair_clock.hpp"

#include <algorithm>

namespace cosched::detail {

std::uint64_t fair_clock::multiplier(priority p) noexcept {
  switch (p) {
    case priority::kernel:
      return 1;
    case priority::high:
      return 2;
    case priority::normal:
      return 4;
    case priority::low:
      return 8;
  }
  return 8;
}

order_key fair_clock::key(const queue_entry& entry, priority p) const noexcept {
  const fair_entity& fair = entry.fair;
  // Ties in virtual time go to the higher priority (kernel is 0).
  const auto tie = static_cast<std::uint64_t>(p);
  if (entry.in_flight == 0) return {0, 0, fair.virtual_time, tie};
  const std::uint64_t commands = saturating_mul(multiplier(p), entry.in_flight);
  // Before a measurement of its own, the estimate is the scheduler-wide mean,
  // which moves: the entry is grouped by the mean's coefficient. (Multiplying
  // by multiplier and then by in_flight saturates exactly when multiplying by
  // their product does.)
  if (fair.ring_time_estimate == 0) return {commands, 0, fair.virtual_time, tie};
  return {0, 0, saturating_add(fair.virtual_time, saturating_mul(fair.ring_time_estimate, commands)), tie};
}

void fair_clock::note_activity(fair_entity& entity, bool active) noexcept {
  // Just below the floor: ahead of the entities already active at it, by 1 ns
  // of virtual time, so its first command goes at the next free credit and
  // nothing more (its charge for it puts it past them).
  if (active && !entity.active && floor_ > 0) entity.virtual_time = std::max(entity.virtual_time, floor_ - 1);
  entity.active = active;
}

void fair_clock::raise_floor(std::uint64_t least) noexcept { floor_ = std::max(floor_, least); }

void fair_clock::charge(fair_entity& entity, priority p, const job_block& job, std::size_t ring,
                        std::chrono::nanoseconds at) noexcept {
  auto& last_finish = last_finish_[ring];
  const auto start = std::max(job.cold->fair_run_at, last_finish);
  const auto ring_time = static_cast<std::uint64_t>(at > start ? (at - start).count() : 0);
  last_finish = std::max(last_finish, at);
  entity.ring_time_estimate = std::max<std::uint64_t>(ring_time, 1);
  measured_total_ = saturating_add(measured_total_, ring_time);
  ++measured_count_;
  entity.virtual_time = saturating_add(entity.virtual_time, saturating_mul(ring_time, multiplier(p)));
}

void fair_clock::ring_reset(std::size_t ring, std::chrono::nanoseconds at) noexcept {
  last_finish_[ring] = std::max(last_finish_[ring], at);
}

}  // namespace cosched::detail
