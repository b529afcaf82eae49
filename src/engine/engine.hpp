// The scheduler's engine: the pass loop that takes events from other threads
// and from itself, the path of a job from its entity's mailbox to retirement,
// timeouts and recovery, and the entities' registration and shutdown. The
// mechanisms it drives live beside it: the run queue and its policies
// (run_queue.hpp), the rings (ring_slot.hpp), entity lifecycle (entity_state.hpp,
// entity_record.hpp).
//
// Where each part is: pass.cpp (inbox, pass, dispatch), job_path.cpp (push to
// retirement), recovery.cpp (timeouts, reset and replay, pause),
// lifecycle.cpp (creation, registration, collection, shutdown, scopes).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "cosched/detail/scheduler_core.hpp"
#include "cosched/detail/spinlock.hpp"
#include "engine/entity_record.hpp"
#include "engine/ring_slot.hpp"
#include "engine/run_queue.hpp"

namespace cosched::detail {

/// The engine behind a scheduler<Command> (scheduler_core is its face).
///
/// @par Thread Safety
/// The face's any-thread operations, enqueue() and enqueue_job_node() may be
/// called from any thread; everything else runs on the scheduler's executor,
/// whose handlers must not run concurrently (a concurrent pass is diagnosed).
///
/// @par Ownership
/// Reference counted through scheduler_core. Owns the shared rings' slots, the
/// run queue, the jobs it took from mailboxes (until they signal) and one
/// reference to each registered entity.
///
/// @par Lifetime
/// Outlives every pass and timer callback (each holds a reference). After
/// shutdown it holds no entity and no job.
class engine final : public scheduler_core {
 public:
  engine(asio::any_io_executor executor, std::vector<std::unique_ptr<ring_adapter>> shared,
         const core_options& options);
  ~engine();

  static engine& of(scheduler_core& core) noexcept { return static_cast<engine&>(core); }
  static const engine& of(const scheduler_core& core) noexcept { return static_cast<const engine&>(core); }

  // ---- the face's operations (documented in scheduler_core.hpp) ----
  scheduler_statistics statistics() const noexcept;
  std::optional<job_ref> describe(fence_point point) const;
  entity_state* create_entity(priority p, std::string name, std::unique_ptr<ring_adapter> own_ring,
                              std::vector<std::size_t> rings);
  fence shutdown(std::chrono::nanoseconds bound);
  void stop_scope(std::uint64_t scope_id);
  void flush_entity(entity_state& entity, std::chrono::nanoseconds bound, const fence& drained) noexcept;
  void request_pause(std::function<void()> granted);
  void resume() noexcept;
  void visit_in_flight(const std::function<void(const in_flight_view&)>& visit) const;
  void reset_and_replay() noexcept;
  void enqueue(work_node& node) noexcept;
  void enqueue_job_node(job_block& block, work_node& node) noexcept;
  void enqueue_on_own_thread(work_node& node) noexcept;
  // Something threw for `block` (its body: job_threw; its ring: run_job,
  // replay), which fails with `error`: one log line, then options_.on_exception.
  void report_exception(job_block& block, std::exception_ptr thrown, job_exception::origin from,
                        std::error_code error) noexcept;

 private:
  // An allocated, one-off event for the pass (the kinds that have no node
  // embedded in a job or an entity).
  struct message;
  // How take_mailbox is called.
  enum class mailbox_take : std::uint8_t {
    early,        // a kill, ban, scope stop or shutdown takes the jobs before update_node is processed
    update_node,  // processing update_node: the node is no longer queued
  };

  // ---- the pass (pass.cpp) ----
  bool enqueue_added(entity_record& entity) noexcept;
  void request_pass() noexcept;
  void run_pass() noexcept;
  work_node* next_node() noexcept;
  static int incoming_phase(const work_node& node) noexcept;
  void dispatch(work_node& node) noexcept;
  void on_entity_updated(entity_record& entity, work_node& node) noexcept;
  void on_entity_pushed(entity_record& entity, work_node& node) noexcept;
  void on_entity_killed(entity_record& entity, work_node& node) noexcept;
  void on_message(message& msg) noexcept;
  void finish_job_node(job_block& block, bool held_ref) noexcept;

  // ---- a job, push to retirement (job_path.cpp) ----
  void take_mailbox(entity_record& entity, mailbox_take how) noexcept;
  // The entity leaves the scheduler (the end of shutdown, or registered after
  // it): pushes fail at once on their own thread from then on, so only once
  // every job pushed before has signalled. `shut_down`: it becomes shut down first.
  void detach_entity(entity_record& entity, bool shut_down) noexcept;
  void adopt_job(entity_record& entity, job_block& block) noexcept;
  void start_job(job_block& block) noexcept;
  void resume_job(job_block& block) noexcept;
  void record_body_progress(job_block& block) noexcept;
  // The entity's head becomes its first job from `first` on that still waits
  // to run (preparing or prepared); the run queue re-reads it.
  void set_head_from(entity_record& entity, job_block* first) noexcept {
    job_block* head = first;
    while (head && head->phase != job_phase::preparing && head->phase != job_phase::prepared)
      head = entity_job_list::next(*head);
    entity.queued.head = head;
    queue_.changed(entity.queued);
  }
  void select() noexcept;
  void run_job(job_block& block, ring_slot& slot) noexcept;
  void wait_declared(job_block& block) noexcept;
  // ---- pipelining (scheduler_options::pipeline) ----
  // The ring `block` will run on, when it is known before it runs (one shared
  // ring, or its entity's own ring); null otherwise.
  ring_slot* known_ring_of(const job_block& block) const noexcept;
  // Whether `block` may pass its declared dependency `dependency` unsignalled:
  // a job of this scheduler run on `block`'s ring, which executes in order,
  // and not decided as failed.
  bool passes_by_pipelining(const job_block& block, const fence_state& dependency) const noexcept;
  // Watches `block`'s declared dependency `index` that it passes by
  // pipelining (pipelined_wake when it signals). False when out of memory:
  // the dependency is then waited for.
  bool watch_pipelined(job_block& block, std::uint32_t index, const fence_state& dependency) noexcept;
  // `ran` was run for the first time: the jobs waiting for it as a declared
  // dependency that may pass it now go on.
  void pass_pipelined_dependents(job_block& ran) noexcept;
  // A dependency `block` passed by pipelining signalled (watch `index`).
  void on_pipelined_signal(job_block& block, std::uint32_t index) noexcept;
  // A job that ran takes the outcome of the first of its pipelined
  // dependencies that failed, if one did (at its signal: they have all signalled).
  static void take_pipelined_outcome(job_block& block) noexcept;
  void watch_hardware(job_block& block, bool may_retire = true) noexcept;
  void retire(job_block& block) noexcept;
  // The job's command leaves its ring's in-flight list and frees its credits.
  // `charged_until`: it ran until then (its ring time counts, policy fair);
  // null: it was cancelled.
  // Its hardware fence goes with it.
  void leave_ring(job_block& block, lazy_now* charged_until) noexcept {
    auto& entity = entity_record::of(block);
    ring_slot& slot = *entity.queued.ring;  // before the queue's update (entity_record::ring_of)
    if (charged_until)
      queue_.left_ring(entity.queued, block, *charged_until);
    else
      queue_.cancelled_on_ring(entity.queued);
    slot.remove(block);
    // relaxed: see entity_state::queued_jobs.
    entity.in_flight_jobs.fetch_sub(1, std::memory_order_relaxed);
  }
  // The job's frame (holding its promise and its command); null once decided.
  std::coroutine_handle<> frame_of(job_block& block) const noexcept {
    return block.promise ? options_.frame_of(*block.promise) : std::coroutine_handle<>();
  }
  void decide(job_block& block, std::error_code ec, std::optional<fence_point> cause) noexcept;
  // Returns how many jobs it decided.
  std::size_t fail_unrun(entity_record& entity, std::error_code ec, std::optional<fence_point> cause,
                         bool (*filter)(const job_block&, std::uint64_t), std::uint64_t arg) noexcept;
  void signal_in_order(entity_record& entity) noexcept;
  // Fence causality: whether decided `block` may signal now (every declared
  // dependency and its body's last awaited fence signalled); if not, arms a
  // wait whose wake-up (gate_wake) calls signal_in_order again.
  bool causally_clear(job_block& block) noexcept;
  const fence_state* first_pending_gate(const job_block& block) const noexcept;
  bool is_own_job_fence(const fence_state& state) const noexcept;
  void signal_job(job_block& block) noexcept;
  static void reach_scheduled(job_block& block, bool unrun) noexcept;
  void count_deadline(std::chrono::nanoseconds deadline) noexcept;
  void publish_reached() noexcept;

  // ---- timeouts and recovery (recovery.cpp) ----
  /// (Re)starts `slot`'s timeout, if the scheduler has one.
  void arm_timeout(ring_slot& slot) noexcept {
    if (options_.timeout.count() != 0) start_timeout(slot);
  }
  void start_timeout(ring_slot& slot) noexcept;
  void disarm_timeout(ring_slot& slot) noexcept { slot.disarm_timeout(*timers_); }
  void on_timeout(ring_slot& slot, std::uint64_t generation) noexcept;
  void recover_from_hang(ring_slot& slot, job_block& guilty) noexcept;
  void reset_ring_and_replay(ring_slot& slot, job_block* guilty,
                             std::vector<entity_record*>& touched) noexcept;
  void replay(job_block& block, ring_slot& slot, lazy_now& reset_at) noexcept;

  // ---- entities and shutdown (lifecycle.cpp) ----
  void register_entity(entity_record& entity) noexcept;
  // Out of the directory: just before the scheduler's reference to it goes.
  void forget_entity(entity_record& entity) noexcept;
  void on_entity_added(entity_record& entity) noexcept;
  void note_collectable(entity_record& entity) noexcept;
  void collect_finished_entities() noexcept;
  void collect_if_done(entity_record& entity) noexcept;
  void release_after_shutdown(entity_record& entity, work_node* processed) noexcept;
  void begin_shutdown(std::chrono::nanoseconds bound) noexcept;
  void cancel_in_flight_for_shutdown() noexcept;
  void finish_shutdown_if_done() noexcept;
  void finish_shutdown() noexcept;
  /// Every ring: the shared ones by index, or the registered entities' own
  /// rings in registration order.
  template <class Visit>
  void for_each_ring(Visit&& visit) const;

  /// The scheduler's clock, read only if a policy asks.
  lazy_now clock() const noexcept { return lazy_now(*timers_, epoch_); }
  lifecycle stage() const noexcept {
    // relaxed: written only on this executor; other threads use is_shut_down().
    return lifecycle_.load(std::memory_order_relaxed);
  }

  std::unique_ptr<timer_service> own_timers_;  // the default timers (null when the options give some)

  // ---- any thread ----
  // The entities the scheduler holds, by finished context, for describe(): an
  // entity is in it from creation until the scheduler's reference to it goes
  // (forget_entity, just before that release), so an entity found under the
  // lock is alive while the lock is held. Lock order: this, then an entity's lock.
  mutable std::mutex directory_lock_;
  std::unordered_map<std::uint64_t, entity_record*> directory_;
  spinlock inbox_lock_;  // guards inbox_
  work_queue inbox_;     // nodes queued from outside the pass, in arrival order
  // Whether a pass is posted and has not yet started draining. acq_rel
  // exchange in request_pass; see run_pass for the clear.
  std::atomic<bool> pass_requested_{false};
  // A pass is running (a second, concurrent one is a misuse: diagnosed).
  std::atomic<bool> in_pass_{false};
  // Granted pauses (0 or 1). seq_cst: a pass that sees 0 may run; resume
  // lowers it and then requests a pass.
  std::atomic<std::uint32_t> pauses_{0};
  // Written on the executor, read from any thread. relaxed: independent counters.
  std::atomic<std::uint64_t> deadline_misses_{0};
  std::atomic<std::uint64_t> deadlines_met_{0};

  // ---- the executor only ----
  // `local` holds what the pass itself causes (wake-ups, pushes from job
  // bodies); `incoming` what arrived through the inbox. Events of one phase
  // that arrive together (completions, timeouts, kills, pushes) take effect as
  // a batch; then their consequences (in `local`) take effect, before the next
  // phase: a failure reaches its dependents before a kill, and two timeouts of
  // one instant both decide their victims first.
  work_queue local_;              // caused by the pass itself, in the order caused
  work_queue incoming_;           // the inbox, taken whole, in arrival order
  int last_incoming_phase_ = -1;  // the phase of the batch being taken from `incoming` (-1: none)
  registered_list registered_;    // the registered entities, in registration order
  std::size_t registered_count_ = 0;
  std::vector<entity_record*> reached_dirty_;  // entities whose `reached` lags their signalled jobs
  std::vector<entity_record*> collectable_;    // registered entities to check for collection after this event
  std::vector<std::unique_ptr<ring_slot>> rings_;  // shared_ring: the shared rings, by index
  run_queue queue_;                                // what runs next, on which ring
  std::vector<promise> shutdown_waiters_;          // signalled once shutdown completes
  timer_service::timer_id shutdown_timer_ = 0;     // the shutdown bound (valid while armed)
  bool shutdown_timer_armed_ = false;
  // Shutdown's bound has passed: signals no longer wait for fences from
  // outside the scheduler (only for other jobs' finished fences).
  bool external_gates_released_ = false;
};

template <class Visit>
void engine::for_each_ring(Visit&& visit) const {
  if (options_.mode == ring_mode::shared_ring) {
    for (const auto& slot : rings_) visit(*slot);
    return;
  }
  for (entity_record& entity : registered_) visit(*entity.own_ring);
}

struct engine::message : work_node {
  enum class type : std::uint8_t { shutdown, shutdown_deadline, stop_scope, timeout, pause, flush };
  explicit message(type t) noexcept : work_node(kind::message), what_message(t) {}
  ~message() {
    if (slot_owner) slot_owner->release();
  }
  message(const message&) = delete;
  message& operator=(const message&) = delete;

  type what_message;
  std::chrono::nanoseconds bound{0};  // shutdown: how long in-flight commands may still finish
  std::optional<promise> done;        // shutdown: signalled once it completed
  std::uint64_t scope_id = 0;         // stop_scope: the scope whose unrun jobs are cancelled
  ring_slot* slot = nullptr;          // timeout: the ring that timed out
  std::uint64_t generation = 0;       // timeout: the timer's generation (stale if the slot moved on)
  entity_state* slot_owner =
      nullptr;                    // timeout on an entity's own ring: a reference that keeps the slot alive
  std::function<void()> granted;  // pause: called once the pause is granted
  fence drained;                  // flush: the entity's drain fence (slot_owner: the entity)
};

}  // namespace cosched::detail
