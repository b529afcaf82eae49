// The scheduler's record of one job: its finished fence and its bookkeeping, in
// one allocation that fence handles keep alive after the job itself is gone. The
// scheduled fence is made only when somebody asks for it.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <optional>
#include <system_error>

#include "cosched/detail/fence_state.hpp"
#include "cosched/fence.hpp"
#include "cosched/detail/pool.hpp"

namespace cosched {
class scope;
}

namespace cosched::detail {

class scheduler_core;
struct entity_state;
struct job_block;
class ring_slot;
struct job_promise_base;

/// A unit of work for the scheduler's pass. Nodes are embedded in the objects
/// they concern (a job, an entity), so queueing them never allocates.
struct work_node {
  enum class kind : std::uint8_t {
    dependency_wake,  // a job's awaited fence signalled
    hardware_done,    // a job's hardware fence signalled
    entity_updated,   // an entity has new jobs in its mailbox, a new priority, or lost its handle
    entity_killed,    // an entity was killed
    entity_added,     // an entity was created
    message,          // an allocated, one-off message (engine::message)
    gate_wake,        // a fence a decided job's signal waits for signalled (fence causality)
  };
  work_node(kind k, void* owner_object) noexcept : what(k), owner(owner_object) {}
  work_node* next = nullptr;
  kind what;
  bool holds_ref = false;  // a job node queued from another thread holds a job reference
  void* owner;  // the job_block or entity_state the node is embedded in
};

/// Where a job is in its life. Transitions (all on the scheduler's executor,
/// except `mailbox`, which push sets):
///
///   mailbox --take--> preparing --co_return--> prepared --run--> running
///      |                  |                        |                |
///      +------------------+------------------------+----------------+--> decided --> signalled
///
/// `decided`: the outcome is known and the frame (with the command) has been
/// destroyed; the fences signal once every earlier job of the entity has signalled.
enum class job_phase : std::uint8_t { mailbox, preparing, prepared, running, decided, signalled };

/// What a decided job's signal waits for besides its entity predecessor (fence
/// causality): its declared dependencies (job_block::after) and the fence its
/// body was suspended on when it was decided. Allocated for the jobs that have
/// to wait; executor only.
struct causal_gate {
  explicit causal_gate(void* block) noexcept : node(work_node::kind::gate_wake, block) {}
  // The fence the body was suspended on when the job was decided, if pending then.
  fence body;
  // While `armed`: linked to the first pending fence of the gate, or notified
  // with `node` queued (it clears `armed` when processed).
  fence_waiter waiter;
  const fence_state* waiting_on = nullptr;  // the fence `waiter` was linked to, while armed
  work_node node;
  bool armed = false;
};

struct job_block final : ref_block {
  static void* operator new(std::size_t size) { return pool_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { pool_deallocate(p, size); }

  explicit job_block(fence_point finished_point) noexcept : finished(this, finished_point) {
    destroy = &destroy_block;
  }
  // Also tells a job's block from other fence blocks (scheduler_core::scheduled_fence).
  static void destroy_block(ref_block* self) noexcept { delete static_cast<job_block*>(self); }
  ~job_block() {
    // relaxed: the last reference is gone; acq_rel release ordered everything before it.
    if (auto* requested = scheduled_block(scheduled_word.load(std::memory_order_relaxed))) requested->release();
  }

  // The finished fence. Its outcome (error, cause) is recorded when the job is
  // decided (or at push, for a job dead on arrival) and published when it signals.
  fence_state finished;

  // The scheduled fence (its point: the entity's scheduled context, same seqno),
  // made on request by submitted::scheduled(). Bits: scheduled_reached once the
  // command first ran or the job was decided without running (then also
  // scheduled_unrun: the scheduled fence takes the finished fence's outcome);
  // above them, the block of the requested fence, if any, which this block
  // holds one reference to.
  static constexpr std::uintptr_t scheduled_reached = 1;
  static constexpr std::uintptr_t scheduled_unrun = 2;
  static constexpr std::uintptr_t scheduled_flags = 7;
  static single_fence_block* scheduled_block(std::uintptr_t word) noexcept {
    return reinterpret_cast<single_fence_block*>(word & ~scheduled_flags);
  }
  std::atomic<std::uintptr_t> scheduled_word{0};
  /// An entity reserves two consecutive contexts: its finished fences' and its
  /// scheduled fences'.
  static constexpr std::uint64_t scheduled_context_of(std::uint64_t finished_context) noexcept {
    return finished_context + 1;
  }
  /// Signals this job's requested scheduled fence `state`: success once the
  /// command ran, the finished fence's recorded outcome for a job that never ran.
  void signal_scheduled(fence_state& state, bool unrun) const noexcept {
    if (unrun)
      state.signal(finished.error(), finished.recorded_cause());
    else
      state.signal({}, std::nullopt);
  }

  // The fields every job uses come first, the ones only some jobs use last: a
  // block is cold when push writes it and when the scheduler comes back to it,
  // so every cache line a job touches costs, and the last lines are touched
  // only by jobs that wait, join a scope, carry a deadline or run under fair.

  // Set by push before the job is handed to the scheduler; afterwards only the
  // scheduler's executor writes two of them: `frame` (null once the job is
  // decided) and `dead_on_arrival` (when it is taken from a dead entity).
  std::coroutine_handle<> frame;
  job_promise_base* promise = nullptr;
  entity_state* entity = nullptr;
  scheduler_core* core = nullptr;      // the scheduler it was pushed to (which owns it once taken)
  cosched::scope* in_scope = nullptr;  // joined scope, if any (left when signalled)
  std::uint64_t push_order = 0;
  std::uint32_t credits = 1;
  bool has_deadline = false;
  bool dead_on_arrival = false;  // the entity was dead at push or when the job was taken: never
                                 // started (the finished fence's recorded outcome says why)
  // Executor only from here on.
  job_phase phase = job_phase::mailbox;
  bool awaited_yields_error = false;
  std::uint32_t attempts = 0;
  std::uint32_t wake_attempt = 0;  // the attempt whose completion wake_node reports (hardware_done)
  // Nodes of this job queued on the executor's own list (they hold no
  // reference); signalling defers the scheduler's release until they are processed.
  std::uint8_t local_nodes = 0;
  bool release_deferred = false;
  job_block* entity_next = nullptr;    // the entity's jobs, in push order
  job_block* in_flight_prev = nullptr; // the ring's in-flight list, in run order
  job_block* in_flight_next = nullptr;
  // Where the promise keeps the command (set by push; the command is alive
  // from the job's preparation until it is decided).
  void* command = nullptr;
  // The ring the command was run on (set by engine::run_job, kept for replays).
  ring_slot* ring = nullptr;
  // The hardware fence of the current attempt.
  fence hardware;

  // Written only by the jobs that use them; not initialised before.
  std::chrono::nanoseconds deadline;  // since the scheduler's epoch; valid when has_deadline
  std::chrono::nanoseconds fair_run_at;  // the fair clock's: when the current attempt was run or replayed

  // Declared dependencies (push_options::after), waited for in order before
  // the body first runs; null for a job that declares none. `after_passed`:
  // how many have signalled without error so far.
  std::unique_ptr<fence[]> after;
  std::uint32_t after_count = 0;
  std::uint32_t after_passed = 0;
  // The wait armed is on after[after_passed], not on a dependency of the body.
  bool waiting_after = false;
  // Fence causality: allocated when the job's signal has to wait (engine::causally_clear).
  std::unique_ptr<causal_gate> gate;

  // The one fence the job waits for at a time: a dependency of its coroutine
  // while it is prepared, then the hardware fence of its current attempt (a job
  // runs only once prepared, so the two waits never overlap). arm_wait()
  // constructs both afresh for each wait; wake_node says which wait it reports
  // (dependency_wake or hardware_done). Never re-armed while the node is queued
  // or the waiter linked. A job whose hardware fence has signalled when run()
  // returns never arms them.
  union {
    fence_waiter waiter;
  };
  union {
    work_node wake_node;
  };
  // The dependency the coroutine is suspended on (or, with waiting_after, the
  // declared dependency waited for), set when such a wait is armed and null
  // otherwise. A body's is borrowed from the suspended frame, so it is valid
  // only while the frame is.
  const fence_state* awaited = nullptr;

  void arm_wait(work_node::kind what, void (*notify)(fence_waiter&, fence_state&) noexcept) noexcept {
    std::construct_at(&waiter);
    waiter.notify = notify;
    waiter.owner = this;
    std::construct_at(&wake_node, what, this);
  }
};

/// The part of a job's promise the scheduler sees, independent of the command type.
struct job_promise_base {
  enum class outcome : std::uint8_t { pending, prepared, failed };
  job_block* block = nullptr;  // set by push; the body runs only afterwards
  outcome state = outcome::pending;  // prepared: the promise's command is alive

  /// The body failed: the outcome goes straight to the job's finished fence
  /// (published when it signals), not into the frame.
  void fail(std::error_code ec, std::optional<fence_point> cause) noexcept {
    state = outcome::failed;
    block->finished.record(ec, cause);
  }
};

}  // namespace cosched::detail
