// The run queue's record of one competing entity (its ready head, where its
// commands are, each policy's state of it) and the small types the run queue
// and its policies share.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

#include "cosched/detail/intrusive_list.hpp"
#include "cosched/detail/job_block.hpp"
#include "cosched/priority.hpp"
#include "cosched/timer.hpp"
#include "engine/indexed_heap.hpp"

namespace cosched::detail {

class ring_slot;

/// The scheduler's clock, read at most once and only when asked: the policies
/// that need time (fair) read it, the others cost no clock read.
///
/// @par Thread Safety
/// The scheduler's executor only; one lazy_now serves one event.
///
/// @par Lifetime
/// A local of the event it serves; the timers outlive it.
class lazy_now {
 public:
  /// Reads `timers`' clock relative to `epoch` on the first get().
  lazy_now(const timer_service& timers, std::chrono::nanoseconds epoch) noexcept
      : timers_(&timers), epoch_(epoch) {}
  /// A time already known.
  explicit lazy_now(std::chrono::nanoseconds at) noexcept : value_(at) {}
  std::chrono::nanoseconds get() noexcept {
    if (!value_) value_ = timers_->now() - epoch_;
    return *value_;
  }

 private:
  const timer_service* timers_ = nullptr;
  std::chrono::nanoseconds epoch_{0};
  std::optional<std::chrono::nanoseconds> value_;
};

/// The fair clock's statistics of one entity (written only by fair_clock, on
/// the executor; part of the entity's queue entry).
struct fair_entity {
  std::uint64_t virtual_time = 0;  // weighted ring time of its commands that left the ring, ns x (8 / weight)
  std::uint64_t ring_time_estimate = 0;  // its latest measured ring time (ns, >= 1; 0: none yet)
  bool active = false;                   // a ready head or commands in flight at the latest selection step
};

/// Where an entry goes in a policy's order: by group, then rank, then time,
/// then tie, then its head's push order (unique, so the order is total).
/// `group` is a coefficient the fair policy adds a scheduler-wide estimate with
/// (see fair_clock); `tie` is fair's priority (ties in virtual time go to the
/// higher priority); the other policies leave both 0.
struct order_key {
  std::uint64_t group = 0;
  std::uint64_t rank = 0;
  std::uint64_t time = 0;
  std::uint64_t tie = 0;
};

struct queue_cell;
struct fair_group;
struct ring_set;

/// The run queue's record of one entity, embedded in the engine's entity record.
///
/// @par Thread Safety
/// The scheduler's executor only.
///
/// @par Ownership
/// A member of the engine's entity record; the run queue borrows it.
///
/// @par Lifetime
/// Added to the run queue when the entity registers, removed when the scheduler
/// lets go of it (run_queue::remove), before it is destroyed.
struct queue_entry {
  // ---- the engine's: kept current, and run_queue::changed() called after a change ----
  job_block* head =
      nullptr;  // the entity's oldest job neither run nor decided (null: none); ready once prepared
  const std::atomic<priority>* prio = nullptr;  // the entity's priority, read when the entry is re-keyed

  // ---- placement: changed by run_queue::ran() / left_ring() / cancelled_on_ring() ----
  std::uint32_t in_flight = 0;  // its commands on a ring (run, not retired)
  ring_slot* ring =
      nullptr;  // shared_ring: the ring they are on (while in_flight > 0); ring_per_entity: its own

  // ---- ring affinity: changed by run_queue::restrict_to() ----
  ring_set* allowed = nullptr;  // shared_ring: the rings its heads may be placed on (null: every ring)

  // ---- the policies' state of the entity ----
  std::uint64_t last_served = 0;  // rr: stamp of its latest run (0: never)
  fair_entity fair;               // fair: the fair clock's statistics

  // ---- the run queue's bookkeeping ----
  std::uint64_t ordinal = 0;         // registration order (ring_per_entity: the order rings are served in)
  order_key key;                     // the key at the latest re-keying
  std::uint64_t key_push_order = 0;  // the head's push order at the latest re-keying
  queue_cell* cell = nullptr;        // the candidate set it is in (null: its head is not ready)
  heap_position cell_position;
  fair_group* group = nullptr;  // fair: the set of active entities it is in (null: inactive)
  heap_position group_position;
  heap_position own_ring_position;  // ring_per_entity: in the set of rings to serve
  // Its place among the entries to re-key at the next step (changed since the
  // latest): run_queue's dirty_list, while `dirty`.
  list_hook<queue_entry> dirty_link;
  bool dirty = false;
  bool registered = false;  // between run_queue::add and remove
};

/// The run queue's changed entries, latest first (doubly linked: an entry
/// leaves from anywhere when it goes), one pointer.
using dirty_list = intrusive_list<queue_entry, &queue_entry::dirty_link>;

}  // namespace cosched::detail
