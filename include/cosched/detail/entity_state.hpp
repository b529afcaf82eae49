// An entity's state shared between its handle (any thread) and its scheduler:
// the lifecycle status with its transition table, the mailbox of pushed jobs,
// and the operations a handle performs from any thread (push, close, kill,
// set_priority, set_rings, drain, release). The scheduler's own record of the
// entity (its jobs, its place in the run queue, its ring) derives from it in
// the engine.
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "cosched/detail/job_block.hpp"
#include "cosched/detail/spinlock.hpp"
#include "cosched/entity_options.hpp"
#include "cosched/fence.hpp"
#include "cosched/priority.hpp"

namespace cosched {
class scope;
}

namespace cosched::detail {

class scheduler_core;

/// Where an entity is in its life, as its pushes see it.
///
/// Every change is made by entity_state::become(event), under the entity's
/// lock, by this table (a blank is no change: the first death is final):
///
///   state \ event | close          kill           ban             shutdown
///   --------------+--------------------------------------------------------------
///   open          | closed         killed         banned          shut_down
///   closed        |                killed         banned          shut_down
///   killed        |
///   banned        |
///   shut_down     |
///
/// What a job pushed in each state fails with (entity_state::dead_error):
/// open: nothing (it runs); closed: `cancelled`; killed: `killed`; banned:
/// `cancelled`, cause the guilty job; shut_down: `shutdown`. Queued jobs of a
/// closed entity still run; those of a dead one (killed, banned, shut_down) fail
/// with its reason. Who raises each event: close() and the handle's release
/// (close); kill() directly when the entity is detached, else the scheduler when
/// it takes the kill in order with its other events (kill); timeout recovery
/// (ban); shutdown, and creation after shutdown (shutdown).
enum class entity_status : std::uint8_t { open, closed, killed, banned, shut_down };

/// The events of entity_status's table.
enum class entity_event : std::uint8_t { close, kill, ban, shutdown };

struct push_request {
  std::coroutine_handle<> frame;
  job_promise_base* promise = nullptr;  // in `frame`
  std::uint32_t credits = 1;
  std::optional<std::chrono::nanoseconds> deadline;  // since the scheduler's epoch
  const std::vector<fence>* after = nullptr;         // declared dependencies (copied at push)
};

struct push_result {
  fence finished;
};

/// What the scheduler takes from a mailbox in one go: the jobs in push order,
/// and the entity's death at that moment (jobs taken from a dead entity fail
/// with its reason without being started).
struct taken_jobs {
  entity_job_list jobs;  // in push order
  bool entity_dead = false;
  bool handle_alive = true;  // false once the handle let go (the scheduler may collect the entity)
  std::error_code error;
  std::optional<fence_point> cause;
};

/// A node of an entity's (its kind says which of the three).
struct entity_node final : work_node {
  entity_node(kind k, entity_state& owner) noexcept : work_node(k), entity(&owner) {}
  entity_state* entity;
};

/// entity_options::rings and entity::set_rings: `rings` sorted, once checked to
/// name at least one of the `ring_count` shared rings (0: ring_per_entity mode,
/// which has none), each at most once. Throws std::invalid_argument naming
/// `entity_name` otherwise.
std::vector<std::size_t> checked_ring_set(std::vector<std::size_t> rings, std::size_t ring_count,
                                          std::string_view entity_name);

/// The part of an entity that its handle and its scheduler share.
///
/// @par Thread Safety
/// push, close, kill, set_priority, set_rings, drain, release_handle, add_ref
/// and release may be called from any thread, concurrently. Fields are grouped
/// below by who may touch them.
///
/// @par Ownership
/// Reference counted: one reference for the handle (dropped by
/// release_handle), one for the scheduler while the entity is attached to it
/// (dropped when the scheduler lets go of it), one for each timer callback of
/// its own ring (ring_per_entity mode). Created by scheduler_core::create_entity
/// as the engine's entity_record, the only derived type.
///
/// @par Lifetime
/// May outlive its scheduler: `core` is then null and pushes fail at once.
struct entity_state {
  entity_state(const entity_state&) = delete;
  entity_state& operator=(const entity_state&) = delete;

  void add_ref() noexcept {
    // relaxed: made from an existing reference.
    refs.fetch_add(1, std::memory_order_relaxed);
  }
  /// The last reference destroys the entity (its engine record included).
  void release() noexcept;

  // ---- any-thread operations (the handle's) ----

  /// Pushes jobs in order; `results` receives one entry per request. Never
  /// throws for a dead entity: its jobs fail in order with the entity's reason
  /// (and at once, on the caller's thread, when the scheduler is gone).
  void push(std::span<push_request> requests, scope* in_scope, push_result* results);
  /// No more pushes (table: close).
  void close() noexcept;
  /// Jobs not yet run fail `killed` (table: kill, in order with the scheduler's
  /// other events when attached).
  void kill() noexcept;
  /// Takes effect at the scheduler's next selection.
  void set_priority(priority p) noexcept;
  /// The shared rings its heads may be placed on from the next placement on
  /// (checked_ring_set; throws std::invalid_argument, changing nothing).
  void set_rings(std::vector<std::size_t> rings);
  /// A fence that signals once every job pushed before the call has signalled.
  fence drain();
  /// drain(), and if that fence has not signalled `bound` from now, a kill then.
  fence flush(std::chrono::nanoseconds bound);
  /// The handle lets go: closes the entity and drops the handle's reference.
  void release_handle() noexcept;
  /// A fence for point `seqno` of the finished timeline (entity::at).
  fence at(std::uint64_t seqno) { return reached.at(seqno); }

  // ---- any-thread snapshots (relaxed loads: each value is a snapshot) ----

  priority current_priority() const noexcept { return prio.load(std::memory_order_relaxed); }
  entity_pending pending() const noexcept {
    return {queued_jobs.load(std::memory_order_relaxed), in_flight_jobs.load(std::memory_order_relaxed)};
  }
  cosched::reset_status reset_snapshot() const noexcept {
    return {reset_status.load(std::memory_order_relaxed), resets.load(std::memory_order_relaxed)};
  }

  // ---- under `lock` ----

  /// Applies `event` by the table of entity_status; `cause` is the guilty
  /// job's point for a ban. Returns whether the status changed.
  bool become(entity_event event, std::optional<fence_point> cause = std::nullopt) noexcept;
  bool dead() const noexcept { return status != entity_status::open && status != entity_status::closed; }
  /// The scheduler takes every job in the mailbox (the only way jobs leave it).
  taken_jobs take_mailbox() noexcept;
  /// Queues update_node unless it is queued already.
  void notify_update() noexcept;
  /// The scheduler takes the latest ring set asked for (at make_entity or by
  /// set_rings) into `rings`, if one came since it last took one.
  bool take_requested_rings(std::vector<std::size_t>& rings) noexcept;

  std::atomic<std::uint32_t> refs{1};

  // Constant after construction.
  // The scheduler that created the entity: the only one it is ever attached to
  // (`core` is it while attached). Its jobs reach their scheduler through it
  // while they are live; it may be gone once the entity is detached.
  scheduler_core* const home_core;
  // That scheduler's fair clock runs (policy fair on shared rings): every job
  // keeps its ring time in its cold record, made at push.
  const bool fair_clock_runs;
  const std::uint64_t finished_context;  // its scheduled fences: job_block::scheduled_context_of()
  const std::uint32_t credit_limit;
  // scheduler_options::single_producer of that scheduler.
  const bool single_producer;
  const std::size_t shared_rings;  // the scheduler's shared rings (0 in ring_per_entity mode)
  const std::string name;

  // Any thread. relaxed loads/stores: selection reads the value it sees when it
  // re-reads the entity; a change also queues update_node, which orders it
  // before the next selection.
  std::atomic<priority> prio;
  timeline reached;  // finished points reached (every job up to N signalled)
  // Written by the scheduler, read by anyone. relaxed: independent snapshots.
  std::atomic<reset_kind> reset_status{reset_kind::untouched};
  std::atomic<std::uint32_t> resets{0};
  // entity::pending(): jobs pushed to the scheduler that have neither run nor
  // been decided, and commands on a ring. Written by push and the scheduler.
  // relaxed: a snapshot.
  std::atomic<std::uint32_t> queued_jobs{0};
  std::atomic<std::uint32_t> in_flight_jobs{0};
  // The latest seqno pushed. Written by push (under `lock`, or by the one
  // producer); relaxed: each writer is ordered with the previous one by the
  // lock or by being the same thread, and readers take a snapshot.
  std::atomic<std::uint64_t> last_seqno{0};
  // status == open, for the one producer's push, which does not take `lock`.
  // Written by become() under `lock`; release/acquire: a push that sees it
  // false sees why under the lock.
  std::atomic<bool> accepting{true};

  // Guarded by lock.
  spinlock lock;
  scheduler_core* core = nullptr;  // null once detached from its scheduler
  entity_status status = entity_status::open;
  std::error_code dead_error;             // what pushes fail with (entity_status's table)
  std::optional<fence_point> dead_cause;  // banned: the guilty job
  entity_job_list mailbox;                // pushed, not yet taken by the scheduler, in push order
  // The latest ring set asked for (sorted), for the scheduler to take with
  // update_node (or at registration); `rings_requested` until it is taken.
  std::vector<std::size_t> requested_rings;
  bool rings_requested = false;
  bool update_queued = false;  // update_node is queued to the core
  bool kill_queued = false;    // kill_node is queued to the core
  bool handle_alive = true;
  bool release_when_idle = false;  // detached after shutdown: release once no node is queued

  // Nodes the scheduler processes on its executor (never allocated).
  // New jobs, a new priority or ring set, or the handle gone.
  entity_node update_node{work_node::kind::entity_updated, *this};
  entity_node kill_node{work_node::kind::entity_killed, *this};
  entity_node added_node{work_node::kind::entity_added, *this};
  // One producer: new jobs in the mailbox, queued by push on the executor's
  // thread without the inbox; `pushed_queued` while it is queued. Both touched
  // only on that thread (by push and the scheduler), under no lock.
  entity_node pushed_node{work_node::kind::entity_pushed, *this};
  bool pushed_queued = false;

 protected:
  // push's fast path with one producer (attached, open, no scope): links the
  // jobs and queues pushed_node, on the executor's thread, under no lock.
  void push_single_producer(std::span<job_block*> blocks, push_result* results) noexcept;
  // Both pushes: gives `block` its seqno and push order and links it at the
  // mailbox's back (under `lock`, or by the one producer); `result` gets its
  // finished fence.
  void enter_mailbox(job_block& block, std::uint64_t seqno, push_result& result) noexcept;

  entity_state(scheduler_core* home, std::uint32_t credit_limit, std::size_t shared_rings, priority p,
               std::string entity_name);
  ~entity_state() = default;
};

}  // namespace cosched::detail
