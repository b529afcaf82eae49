// The scheduler's record of one job: its finished fence and its bookkeeping, in
// one allocation that fence handles keep alive after the job itself is gone. The
// scheduled fence is made only when somebody asks for it; what only some jobs
// use is in a record of its own.
#pragma once

#include <cassert>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <system_error>

#include "cosched/detail/fence_state.hpp"
#include "cosched/detail/intrusive_list.hpp"
#include "cosched/detail/pool.hpp"
#include "cosched/fence.hpp"

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
/// they concern (a job, an entity), so queueing them never allocates; what a
/// node concerns derives from it, as its kind says (a job's block, a causal
/// gate, an entity's node, a message), so a node needs no pointer to it.
struct work_node {
  enum class kind : std::uint8_t {
    dependency_wake,  // a job's awaited fence signalled
    hardware_done,    // a job's hardware fence signalled
    entity_updated,   // an entity has new jobs in its mailbox, a new priority, or lost its handle
    entity_pushed,    // one producer: an entity has new jobs in its mailbox
    entity_killed,    // an entity was killed
    entity_added,     // an entity was created
    message,          // an allocated, one-off message (engine::message)
    gate_wake,        // a fence a decided job's signal waits for signalled (fence causality)
    pipelined_wake,   // a declared dependency the job passed by pipelining signalled
  };
  explicit work_node(kind k) noexcept : what(k) {}
  slist_hook<work_node> queue_link;  // its place in one of the engine's queues (work_queue)
  kind what;
  bool holds_ref = false;  // a job node queued from another thread holds a job reference
};

/// The engine's queues of nodes (its inbox, its local and incoming queues),
/// first in first out: front and back (intrusive_list's singly linked shape).
using work_queue = intrusive_list<work_node, &work_node::queue_link>;

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

/// How far a job's body got (job_block::body): still suspended (or not started),
/// its command returned (alive in the promise until the frame goes), or failed.
enum class body_outcome : std::uint8_t { pending, prepared, failed };

/// Pipelining (scheduler_options::pipeline): the watch on one declared
/// dependency the job passed because it had been run on the job's ring. Its
/// waiter (a base) is linked to the dependency's finished fence until it
/// signals; its node (a base) reports that (pipelined_wake). Its index in the
/// gate's array is the dependency's in job_block's declared list. It holds
/// the dependency: a job that runs lets go of its declared list
/// (job_block::enter_ring), and its signal still waits for a dependency it
/// passed this way (fence causality).
struct pipeline_watch final : fence_waiter, work_node {
  pipeline_watch() noexcept : work_node(kind::pipelined_wake) {}
  job_block* block = nullptr;  // the job that passed the dependency
  fence watched;               // the dependency; empty if not passed by pipelining (or once signalled)
  bool armed = false;          // the waiter is linked, or the node queued
};

/// What a decided job's signal waits for besides its entity predecessor (fence
/// causality): its declared dependencies (job_block::before_run) and the fence
/// its body was suspended on when it was decided. Allocated in their cold record
/// for the jobs that have to wait, and for those that passed a dependency by
/// pipelining; executor only. Its waiter (linked to a fence the signal waits
/// for) and its node (the wake-up, gate_wake) are its bases.
struct causal_gate final : fence_waiter, work_node {
  explicit causal_gate(job_block& waiting) noexcept : work_node(kind::gate_wake), block(waiting) {}
  job_block& block;  // the job whose signal waits
  // The fence the body was suspended on when the job was decided, if pending then.
  fence body;
  // While `armed`: linked to the first pending fence of the gate, or notified
  // with the node queued (it clears `armed` when processed).
  const fence_state* waiting_on = nullptr;  // the fence the waiter was linked to, while armed
  bool armed = false;
  // Pipelining: one watch per declared dependency (job_block::after_count),
  // made when the first one is passed by pipelining. A watched fence is a
  // job's of this scheduler, which signals on the executor before this job
  // does (causality), so every watch has been notified and its node processed
  // before the block goes.
  std::unique_ptr<pipeline_watch[]> pipelined;
  std::uint32_t pipelined_count = 0;
  // Its command completed on the ring (retired): only then does a failed
  // pipelined dependency's outcome replace its own (a job that timed out is the
  // root of its entity's ban, and keeps its outcome).
  bool completed = false;
};

/// What only some jobs use (a scope, a deadline, policy fair's clock, a
/// signal that waits for fences), in a record of its own (job_block::cold):
/// allocated at push for a job that joins a scope or has a deadline and for
/// every job of a scheduler whose fair clock runs (entity_state::fair_clock_runs),
/// lazily for a decided job whose signal has to wait (fence causality). 40
/// bytes, from the pool.
struct job_cold {
  static void* operator new(std::size_t size) { return pool_allocate(size); }
  static void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
    try {
      return pool_allocate(size);
    } catch (...) {
      return nullptr;
    }
  }
  static void operator delete(void* p, std::size_t size) noexcept { pool_deallocate(p, size); }

  job_cold() noexcept { count_live(1); }
  ~job_cold() { count_live(-1); }
  job_cold(const job_cold&) = delete;
  job_cold& operator=(const job_cold&) = delete;

  /// Records alive in the process (any thread; a count, for tests that check
  /// that a record goes with its job's block).
  static std::size_t live() noexcept;

  cosched::scope* in_scope = nullptr;                // joined scope, if any (left when signalled)
  std::optional<std::chrono::nanoseconds> deadline;  // since the scheduler's epoch
  // The fair clock's: when the current attempt was run or replayed.
  std::chrono::nanoseconds fair_run_at{0};
  // Fence causality: allocated when the job's signal has to wait (engine::causally_clear).
  std::unique_ptr<causal_gate> gate;

 private:
  static void count_live(int change) noexcept;
};

/// A job's declared dependencies (push_options::after), in order: up to two
/// inline (most jobs declare few), more in an array of their own. It holds a
/// reference to each fence's block. Trivial, so that it shares its storage
/// with what the job needs on a ring: its owner (the job block) keeps the
/// count and lets go of the references (release()).
class declared_fences {
 public:
  static constexpr std::uint32_t inline_capacity = 2;

  /// Takes a reference to each of `fences` (valid ones); empty before. Throws
  /// std::bad_alloc (then it is still empty).
  void assign(std::span<const fence> fences) {
    const fence_state** items = inline_;
    if (fences.size() > inline_capacity) items = heap_ = new const fence_state*[fences.size()];
    for (std::size_t i = 0; i < fences.size(); ++i) {
      items[i] = fences[i].state();
      items[i]->owner->add_ref();
    }
  }
  /// The i-th of the `count` fences assigned.
  const fence_state& at(std::uint32_t i, std::uint32_t count) const noexcept {
    return *(count > inline_capacity ? heap_[i] : inline_[i]);
  }
  /// Lets go of the `count` fences assigned; empty afterwards.
  void release(std::uint32_t count) noexcept {
    const fence_state** items = count > inline_capacity ? heap_ : inline_;
    for (std::uint32_t i = 0; i < count; ++i) items[i]->owner->release();
    if (count > inline_capacity) delete[] heap_;
  }

 private:
  union {
    const fence_state* inline_[inline_capacity];
    const fence_state** heap_;
  };
};

/// The scheduler's record of a job, and the block of its finished fence.
///
/// 216 bytes on a 64-bit target (a 224-byte chunk of glibc's malloc, through
/// the pool's size classes): a run may hold a million of them. The fields
/// every job uses are here; what only some use is in the cold record; what a
/// job needs only before it runs (its declared dependencies, the fence it
/// waits for) shares its storage with what it needs only while its command is
/// on a ring (its place in the ring's in-flight list, its hardware fence).
/// Pointers that follow from others are not kept: the frame and the command
/// from the promise (core_options::frame_of, the ring adapter), the scheduler
/// from the entity (entity_state::home_core), the ring of a command in flight
/// from the entity's run-queue entry (every command of an entity in flight is
/// on one ring), the block from its waiter and its node (its bases).
///
/// The one fence the job waits for at a time is a dependency while it is being
/// prepared (before_run.awaited), then the hardware fence of its current
/// attempt (on_ring.hardware; a job runs only once prepared, so the two waits
/// never overlap). Its waiter (the fence_waiter base) is linked to that fence,
/// its wake node (the work_node base) reports that it signalled: kind
/// dependency_wake or hardware_done. arm_wait() sets both afresh for each wait;
/// never while the node is queued or the waiter linked. A job whose hardware
/// fence has signalled when run() returns never arms them.
struct job_block final : ref_block, fence_waiter, work_node {
  static void* operator new(std::size_t size) { return pool_allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { pool_deallocate(p, size); }

  explicit job_block(fence_point finished_point) noexcept
      : ref_block(block_kind::job),
        work_node(work_node::kind::dependency_wake),
        finished(this, finished_point),
        before_run{} {}
  ~job_block() {
    // relaxed: the last reference is gone; acq_rel release ordered everything before it.
    if (auto* requested = scheduled_block(scheduled_word.load(std::memory_order_relaxed)))
      requested->release();
    if (phase == job_phase::running)
      std::destroy_at(&on_ring);
    else
      release_declared();
  }

  fence_waiter& waiter() noexcept { return *this; }
  work_node& wake_node() noexcept { return *this; }

  // Small fields first: they fill the wake node's tail padding (offsets 42 to
  // 44). The executor's only, but for dead_on_arrival: the entity was dead at
  // push (push sets it, before the job is handed to the scheduler) or when the
  // scheduler took the job; it never starts (the finished fence's recorded
  // outcome says why).
  job_phase phase = job_phase::mailbox;
  bool dead_on_arrival : 1 = false;
  bool awaited_yields_error : 1 = false;
  // The wait armed is on a declared dependency (before_run.after, at
  // after_passed), not on a dependency of the body.
  bool waiting_after : 1 = false;
  bool release_deferred : 1 = false;
  // How far the body got (the promise writes it, on the executor).
  body_outcome body : 2 = body_outcome::pending;
  // Nodes of this job queued on the executor's own list (they hold no
  // reference); signalling defers the scheduler's release until they are processed.
  std::uint8_t local_nodes = 0;

  std::uint32_t credits = 1;
  std::uint32_t attempts = 0;
  std::uint32_t after_count = 0;
  std::uint32_t after_passed = 0;  // how many declared dependencies signalled without error so far
  std::uint32_t wake_attempt = 0;  // the attempt whose completion the wake node reports (hardware_done)

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
    // The address shares the word with the flags so that one fetch_or sets a
    // flag and reads the block (std::atomic<T*> has no fetch_or).
    // NOLINTNEXTLINE(performance-no-int-to-ptr): a tagged pointer, on purpose
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

  // Set by push before the job is handed to the scheduler; afterwards only the
  // scheduler's executor writes `promise` (null once the job is decided: the
  // frame, which holds the promise and the command, is gone).
  job_promise_base* promise = nullptr;
  entity_state* entity = nullptr;
  std::uint64_t push_order = 0;
  // Its place in its entity's jobs, in push order: the mailbox, then the jobs
  // the scheduler took (entity_job_list).
  slist_hook<job_block> entity_link;
  // What only some jobs use (see job_cold); null for the others.
  std::unique_ptr<job_cold> cold;

  // Before the command first runs (phases mailbox to prepared, and decided
  // for a job that never ran). `after`: `after_count` fences, let go of once
  // all have signalled without error (the body runs only then) or when the
  // job signals. `awaited`: the dependency the coroutine is suspended on (or,
  // with waiting_after, the declared dependency waited for), set when such a
  // wait is armed and null otherwise; a body's is borrowed from the suspended
  // frame, so it is valid only while the frame is.
  struct before_run_part {
    declared_fences after;
    const fence_state* awaited;
  };
  // While the command is on a ring (phase running): its place in the ring's
  // in-flight list, in run order (its base: ring_job_list links the jobs
  // through on_ring), and the hardware fence of its current attempt.
  struct on_ring_part : list_hook<job_block> {
    fence hardware;
  };
  // The two never overlap: a job runs only once its declared dependencies are
  // let go of and its body has returned its command. enter_ring() and
  // leave_ring() switch between them; phase running says which is in use.
  union {
    before_run_part before_run;
    on_ring_part on_ring;
  };
  /// The command is put on a ring (ring_slot::append).
  void enter_ring() noexcept {
    release_declared();  // none left by then
    std::construct_at(&on_ring);
  }
  /// The command leaves its ring (ring_slot::remove): its hardware fence goes.
  void leave_ring() noexcept {
    std::destroy_at(&on_ring);
    std::construct_at(&before_run);
  }
  /// Lets go of the declared dependencies (they have all signalled, or the
  /// job signals).
  void release_declared() noexcept {
    before_run.after.release(after_count);
    after_count = 0;
    after_passed = 0;
  }

  void arm_wait(work_node::kind wait, void (*on_signal)(fence_waiter&, fence_state&) noexcept) noexcept {
    assert(!waiter_list::linked(*this) && "a job's wait armed while its waiter is linked");
    notify = on_signal;
    what = wait;
  }

  /// The record of what only some jobs use, made if the job has none yet.
  /// Throws std::bad_alloc.
  job_cold& make_cold() {
    if (!cold) cold.reset(new job_cold);
    return *cold;
  }
  /// As make_cold(), null when memory runs out.
  job_cold* try_make_cold() noexcept {
    if (!cold) cold.reset(new (std::nothrow) job_cold);
    return cold.get();
  }
  std::optional<std::chrono::nanoseconds> deadline() const noexcept {
    return cold ? cold->deadline : std::nullopt;
  }
  cosched::scope* in_scope() const noexcept { return cold ? cold->in_scope : nullptr; }
  causal_gate* gate() const noexcept { return cold ? cold->gate.get() : nullptr; }
};

/// The part of a job's promise the scheduler sees, independent of the command
/// type. How far the body got is kept in the job's block (job_block::body),
/// not in every frame.
struct job_promise_base {
  job_block* block = nullptr;  // set by push; the body runs only afterwards

  /// The body failed: the outcome goes straight to the job's finished fence
  /// (published when it signals), not into the frame.
  void fail(std::error_code ec, std::optional<fence_point> cause) noexcept {
    block->body = body_outcome::failed;
    block->finished.record(ec, cause);
  }
};

/// An entity's jobs in push order: its mailbox (entity_state::mailbox), then
/// those its scheduler took (entity_record::jobs). Front and back
/// (intrusive_list's singly linked shape): jobs leave from the front only.
using entity_job_list = intrusive_list<job_block, &job_block::entity_link>;

#if defined(__x86_64__) || defined(__aarch64__)
// The layout above: a job block in the pool's size class of 216 bytes.
static_assert(sizeof(job_block) <= 216, "a job block fills a 224-byte chunk of malloc's");
// Its wake node: one link and two small fields, whose tail padding the job block fills.
static_assert(sizeof(work_node) == 16, "a work node is 16 bytes");
#endif

}  // namespace cosched::detail
