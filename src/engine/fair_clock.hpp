// Policy fair: the fair-share clock. It owns every piece of fair state: each
// entity's virtual time and ring-time estimate (fair_entity, in its queue
// entry), each shared ring's end of its latest command, each job's ring-time
// start (job_cold::fair_run_at), and the scheduler-wide floor and mean.
#pragma once

#include <chrono>
#include <cstdint>
#include <limits>
#include <vector>

#include "cosched/detail/job_block.hpp"
#include "cosched/priority.hpp"
#include "engine/queue_entry.hpp"

namespace cosched::detail {

/// Weights instead of strict priority: kernel 8, high 4, normal 2, low 1. The
/// head of the entity with the least virtual time goes first (ties: push order).
///
/// An entity's virtual time is the ring time of its commands that left the
/// ring, times 8 / weight, plus, for each of its commands still in flight
/// (whose ring time is known only when it leaves), an estimate times 8 /
/// weight: the entity's latest measured ring time; before it has one, the mean
/// of the ring times measured on the scheduler (1 ns before any; a mean, not
/// the latest, so that commands finishing at one instant give the same
/// estimate in any order). Estimates are taken at each selection step, so a
/// measurement corrects the commands still in flight at once.
///
/// Ring time: from when a command could start (its run or replay, or the end
/// of its ring's previous command, whichever is later) until it leaves the
/// ring (retirement, or a reset after it finished or hung).
///
/// At each selection step, an entity that is active (a ready head, or commands
/// in flight) and was not at the previous step rejoins at no less than the
/// floor - 1 ns, so that time spent idle (or waiting for dependencies) is not
/// credited to it as a burst, yet its first command goes before the heads of
/// the entities already active at the floor (an interactive client beside a
/// saturating one waits only for what is on the ring, not also for the other's
/// older head); the floor then rises to the least virtual time of the active
/// entities (it never decreases).
///
/// Ordering without a scan: an entity's virtual time is either a number fixed
/// until one of its own events (no commands in flight, or an estimate of its
/// own), or its recorded time plus the scheduler-wide mean times a coefficient
/// (8 / weight x its commands in flight). key() puts entities with the same
/// coefficient in one group, ordered by their recorded time; within a group
/// that order holds whatever the mean, so the run queue compares only each
/// group's first entry, adding the current mean (effective_time()).
///
/// @par Thread Safety
/// The scheduler's executor only.
///
/// @par Ownership
/// A member of the run queue; the per-entity statistics it writes live in the
/// entities' queue entries and the per-job start in their jobs' cold records.
///
/// @par Lifetime
/// The run queue's.
class fair_clock {
 public:
  /// Times saturate instead of wrapping (ring times near 2^64 ns / 8 only come
  /// from absurd inputs, which must still not reorder everything).
  static constexpr std::uint64_t saturated = std::numeric_limits<std::uint64_t>::max();
  static std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) noexcept {
    return a > saturated - b ? saturated : a + b;
  }
  static std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) noexcept {
    return b != 0 && a > saturated / b ? saturated : a * b;
  }
  /// 8 / weight (powers of two: exact).
  static std::uint64_t multiplier(priority p) noexcept;

  /// `rings`: the shared rings (their ends of latest command are kept here).
  explicit fair_clock(std::size_t rings) : last_finish_(rings) {}

  /// The entry's place in the order (group: the mean's coefficient, 0 when
  /// its virtual time is fixed; time: its recorded or fixed virtual time).
  order_key key(const queue_entry& entry, priority p) const noexcept;
  /// The virtual time of an entry keyed with `key`, at the current mean.
  std::uint64_t effective_time(const order_key& key) const noexcept {
    return key.group == 0 ? key.time : saturating_add(key.time, saturating_mul(mean(), key.group));
  }

  /// At a selection step, for an entry whose activity may have changed: an
  /// entity turning active rejoins at no less than the floor - 1 ns.
  void note_activity(fair_entity& entity, bool active) noexcept;
  /// At a selection step, after note_activity: the least virtual time of the
  /// active entities (if any is active) raises the floor.
  void raise_floor(std::uint64_t least) noexcept;
  std::uint64_t floor() const noexcept { return floor_; }

  /// A command of the entity starts using ring `ring` at `at` (run or replay).
  /// Its job has a cold record (made at push while the fair clock runs).
  static void started(job_block& job, std::chrono::nanoseconds at) noexcept { job.cold->fair_run_at = at; }
  /// A command of `entity` (priority `p`) that ran on ring `ring` left it at `at`:
  /// its ring time is charged and measured.
  void charge(fair_entity& entity, priority p, const job_block& job, std::size_t ring,
              std::chrono::nanoseconds at) noexcept;
  /// Ring `ring` was reset at `at`: commands replayed on it count from there.
  void ring_reset(std::size_t ring, std::chrono::nanoseconds at) noexcept;

  /// The mean measured ring time (>= 1; 1 before any measurement).
  std::uint64_t mean() const noexcept {
    return measured_count_ ? std::max<std::uint64_t>(measured_total_ / measured_count_, 1) : 1;
  }

 private:
  std::uint64_t floor_ = 0;           // never-decreasing minimum of the active entities' virtual times
  std::uint64_t measured_total_ = 0;  // sum of the measured ring times (ns)
  std::uint64_t measured_count_ = 0;  // how many were measured
  // Per shared ring: when it last finished a command or was reset (scheduler
  // clock); the next command's ring time starts no earlier.
  std::vector<std::chrono::nanoseconds> last_finish_;
};

}  // namespace cosched::detail
