// The engine's record of an entity: the shared entity_state plus what only the
// scheduler's executor touches (its jobs in push order, its run-queue entry,
// its own ring in ring_per_entity mode, its place among the registered entities).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cosched/detail/entity_state.hpp"
#include "cosched/detail/intrusive_list.hpp"
#include "engine/queue_entry.hpp"
#include "engine/ring_slot.hpp"

namespace cosched::detail {

/// The executor-side part of an entity.
///
/// @par Thread Safety
/// The fields below are the scheduler's executor's only (entity_state's
/// document themselves).
///
/// @par Ownership
/// See entity_state: created by scheduler_core::create_entity, destroyed by the
/// last release. Owns its own ring's slot in ring_per_entity mode.
///
/// @par Lifetime
/// The scheduler lets go of it (unregister, release) once its handle is gone
/// and its last job has signalled; the slot goes with it.
struct entity_record final : entity_state {
  entity_record(scheduler_core* home, std::uint32_t credit_limit, std::size_t shared_rings, priority p,
                std::string entity_name, std::unique_ptr<ring_slot> own) noexcept
      : entity_state(home, credit_limit, shared_rings, p, std::move(entity_name)), own_ring(std::move(own)) {
    queued.prio = &prio;
  }

  entity_job_list jobs;                      // taken, not yet signalled, in push order
  queue_entry queued;                        // its head and its place in the run queue
  std::unique_ptr<ring_slot> own_ring;       // ring_per_entity: its ring (null in shared_ring mode)
  bool registered = false;                   // in the engine's list of registered entities
  bool handle_gone = false;                  // the handle let go (seen when the mailbox was taken)
  bool collect_queued = false;               // in the engine's list of entities to collect
  list_hook<entity_record> registered_link;  // its place in that list (registered_list)
  // `reached` advances once per batch of signals, not once per job (see
  // engine::publish_reached): the latest finished seqno signalled, and
  // whether the entity is in the engine's list of timelines to advance.
  std::uint64_t reached_pending = 0;
  bool reached_dirty = false;

  static entity_record& of(entity_state& entity) noexcept { return static_cast<entity_record&>(entity); }
  static entity_record& of(job_block& block) noexcept { return of(*block.entity); }
  /// The ring `block`'s command is on (phase running): its entity's commands
  /// in flight are all on one ring (run_queue::ran).
  static ring_slot& ring_of(job_block& block) noexcept { return *of(block).queued.ring; }
};

/// The engine's registered entities, in registration order (doubly linked: an
/// entity leaves from anywhere when it is collected), one pointer.
using registered_list = intrusive_list<entity_record, &entity_record::registered_link>;

}  // namespace cosched::detail
