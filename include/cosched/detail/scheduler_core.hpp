// The scheduler's engine, independent of the command type: entities, the
// inbox of cross-thread work, preparation, selection, the in-flight list and
// retirement. Internal; users hold cosched::scheduler<Command>.
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <asio/any_io_executor.hpp>

#include "cosched/detail/job_block.hpp"
#include "cosched/detail/spinlock.hpp"
#include "cosched/fence.hpp"
#include "cosched/priority.hpp"
#include "cosched/ring.hpp"
#include "cosched/timer.hpp"

namespace cosched {
class scope;
}

namespace cosched::detail {

/// The command-type-erased ring the core drives.
class ring_adapter {
 public:
  virtual ~ring_adapter() = default;
  virtual fence run(void* command) = 0;
  virtual void cancel_all() noexcept = 0;
  virtual timeout_verdict on_timeout(void* command) = 0;
  virtual void reset() = 0;
  virtual fence replay(void* command) = 0;
};

/// How entities map to rings.
enum class ring_mode : std::uint8_t {
  shared_ring,     ///< every entity on one ring (a hardware scheduler); a hang resets it and replays
  ring_per_entity  ///< one ring per entity (a firmware scheduler); a hang closes that ring
};

/// How the scheduler chooses among the ready heads of the entities that share
/// rings (scheduler_options::policy; the rules are in scheduler.hpp).
enum class scheduling_policy : std::uint8_t {
  fifo,     ///< strict priority, then push order
  rr,       ///< strict priority, then the entity served least recently
  fair,     ///< least weighted ring time (weights kernel 8, high 4, normal 2, low 1)
  deadline  ///< strict priority, then the earliest deadline, then push order
};

/// Whether an entity was involved in a ring reset (GL robustness / amdgpu context query model).
enum class reset_kind : std::uint8_t {
  untouched,  ///< no reset involved the entity
  innocent,   ///< a reset replayed its work (it was not the cause)
  guilty      ///< one of its jobs hung and caused a reset
};

/// The state of an entity after it stops accepting jobs.
enum class entity_status : std::uint8_t { open, closed, killed, banned, shut_down };

/// Shared between the entity handle (any thread) and the scheduler (executor).
/// Reference counted: one reference for the handle, one for the scheduler while
/// the entity is registered with it.
struct entity_state {
  entity_state(std::uint32_t credit_limit, priority p, std::string entity_name);

  void add_ref() noexcept {
    // relaxed: made from an existing reference.
    refs.fetch_add(1, std::memory_order_relaxed);
  }
  void release() noexcept {
    // acq_rel: the last releaser must see all writes made through other references.
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  std::atomic<std::uint32_t> refs{1};

  // Constant after construction.
  const std::uint64_t finished_context;  // its scheduled fences: job_block::scheduled_context_of()
  const std::uint32_t credit_limit;
  const std::string name;

  // Any thread. relaxed loads/stores: selection reads the latest value it sees;
  // a change also requests a pass, which orders it.
  std::atomic<priority> prio;
  timeline reached;  // finished points reached (every job up to N signalled)
  // Written by the scheduler, read by anyone. relaxed: independent snapshots.
  std::atomic<reset_kind> reset_status{reset_kind::untouched};
  std::atomic<std::uint32_t> resets{0};

  // Guarded by lock.
  spinlock lock;
  scheduler_core* core = nullptr;  // null once detached from its scheduler
  entity_status status = entity_status::open;
  std::error_code dead_error;
  std::optional<fence_point> dead_cause;
  std::uint64_t last_seqno = 0;
  job_block* mailbox_head = nullptr;
  job_block* mailbox_tail = nullptr;
  bool push_queued = false;  // push_node is queued to the core
  bool kill_queued = false;  // kill_node is queued to the core
  bool handle_alive = true;
  bool release_when_idle = false;  // detached after shutdown: release once no node is queued

  // The scheduler's executor only.
  job_block* jobs_head = nullptr;  // taken, not yet signalled, in push order
  job_block* jobs_tail = nullptr;
  job_block* next_to_run = nullptr;  // first job not yet run and not decided
  bool registered = false;
  struct ring_slot* ring = nullptr;            // the ring its commands go to (while in_flight > 0)
  std::unique_ptr<ring_adapter> own_ring;      // ring_per_entity: its ring, until registered
  std::uint32_t in_flight = 0;                 // its commands on the ring (run, not retired)
  std::uint64_t last_served = 0;               // policy rr: stamp of its latest run (0: never)
  std::uint64_t virtual_time = 0;              // policy fair: weighted ring time of commands that left
                                               // the ring, in ns x (8 / weight); see fair_time()
  std::uint64_t ring_time_estimate = 0;  // policy fair: its latest measured ring time (ns, >= 1; 0: none yet)
  bool fair_active = false;              // policy fair: active at the latest selection step
  // `reached` advances once per batch of signals, not once per job (see
  // scheduler_core::flush_reached): the latest finished seqno signalled, and
  // whether the entity is in the core's list of timelines to advance.
  std::uint64_t reached_pending = 0;
  bool reached_dirty = false;
  work_node push_node{work_node::kind::entity_pushed, this};
  work_node kill_node{work_node::kind::entity_killed, this};
  work_node added_node{work_node::kind::entity_added, this};
};

struct push_request {
  std::coroutine_handle<> frame;
  job_promise_base* promise = nullptr;
  std::uint32_t credits = 1;
  std::optional<std::chrono::nanoseconds> deadline;  // since the scheduler's epoch
};

struct push_result {
  fence finished;
};

struct core_options {
  std::uint32_t credit_limit = 1;
  ring_mode mode = ring_mode::shared_ring;
  std::chrono::nanoseconds timeout{0};  // 0: no timeout
  timer_service* timers = nullptr;      // null: a steady-clock timer on the executor
  scheduling_policy policy = scheduling_policy::fifo;
};

/// Counters readable from any thread (scheduler::statistics()).
struct scheduler_statistics {
  /// Jobs pushed with a deadline whose finished fence signalled after it
  /// (whatever their outcome), on the scheduler's clock.
  std::uint64_t deadline_misses = 0;
  /// Jobs pushed with a deadline whose finished fence signalled by then.
  std::uint64_t deadlines_met = 0;
};

/// A ring and what the scheduler keeps for it: credits, the in-flight list (in
/// run order), the timeout timer. The executor only.
struct ring_slot {
  std::unique_ptr<ring_adapter> ring;
  std::size_t index = 0;  // in the scheduler's rings (shared_ring: placement ties go to the lowest)
  std::uint32_t credits_in_flight = 0;
  job_block* in_flight_head = nullptr;
  job_block* in_flight_tail = nullptr;
  std::vector<entity_state*> entities;
  timer_service::timer_id timer = 0;
  std::uint64_t timer_generation = 0;  // a timeout message for an older generation is stale
  bool timer_armed = false;
  bool closed = false;  // ring_per_entity: closed after a hang
  // Policy fair: when the ring last finished a command or was reset (scheduler
  // clock); the next command's ring time starts no earlier.
  std::chrono::nanoseconds last_finish{0};
};

/// The engine. Reference counted: the scheduler handle, every posted pass and
/// every scope that saw one of its jobs hold a reference.
class scheduler_core {
 public:
  /// `shared` are the rings of shared_ring mode (at least one; empty in
  /// ring_per_entity mode).
  static scheduler_core* create(asio::any_io_executor executor,
                                std::vector<std::unique_ptr<ring_adapter>> shared, core_options options);

  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }  // relaxed: from an existing ref
  void release() noexcept;

  const asio::any_io_executor& executor() const noexcept { return executor_; }
  std::uint32_t credit_limit() const noexcept { return options_.credit_limit; }
  scheduling_policy policy() const noexcept { return options_.policy; }
  std::size_t ring_count() const noexcept { return ring_count_; }
  /// Time since the scheduler's epoch (its creation) on its timers' clock.
  std::chrono::nanoseconds now() const noexcept { return timers_->now() - epoch_; }
  /// Any thread: a snapshot of the counters.
  scheduler_statistics statistics() const noexcept;

  /// Any thread. The entity starts open with one reference for the caller.
  /// `own_ring` is its ring in ring_per_entity mode (required there, ignored otherwise).
  entity_state* create_entity(priority p, std::string name, std::unique_ptr<ring_adapter> own_ring);
  ring_mode mode() const noexcept { return options_.mode; }

  /// Any thread. Pushes jobs in order; `results` receives one entry per request.
  /// Never throws for a dead entity: its jobs fail in order with the entity's
  /// reason (and at once, on the caller's thread, when the scheduler is gone).
  static void push(entity_state& entity, std::span<push_request> requests, scope* in_scope,
                   push_result* results);

  /// Any thread: the scheduled fence of the job whose finished fence (from push)
  /// is `finished`, made on the first request; an empty fence for an empty one.
  static fence scheduled_fence(const fence& finished);

  /// Any thread: entity operations.
  static void close(entity_state& entity) noexcept;
  static void kill(entity_state& entity) noexcept;
  static void set_priority(entity_state& entity, priority p) noexcept;
  static void release_handle(entity_state& entity) noexcept;
  static fence drain(entity_state& entity);

  /// Any thread. Starts shutdown (once) and returns a fence that signals when it
  /// is complete: every job's fences signalled, every frame and command destroyed.
  fence shutdown(std::chrono::nanoseconds bound);
  bool is_shut_down() const noexcept {
    // acquire: pairs with the release store at the end of shutdown.
    return lifecycle_.load(std::memory_order_acquire) == lifecycle::shut_down;
  }

  /// Any thread: cancels the jobs of a scope that have not reached the ring.
  void stop_scope(std::uint64_t scope_id);

  /// Any thread: asks for a pause. Once granted (nothing runs or retires from
  /// then on), `granted` is called on the executor, from within a pass.
  void request_pause(std::function<void()> granted);
  /// Any thread: ends a granted pause.
  void resume() noexcept;
  /// While paused, on the executor: in-flight jobs, ring by ring in run order.
  void visit_in_flight(const std::function<void(void* command, const job_block&, std::size_t ring)>& visit) const;
  /// While paused, on the executor: resets every ring with commands in flight and
  /// replays them in order with their fences (attempts + 1); commands whose
  /// hardware fence had signalled retire normally after the pause.
  void reset_and_replay() noexcept;

  /// Hands `node` to the scheduler's executor: its own list when called there,
  /// else the inbox and a pass request.
  void enqueue(work_node& node) noexcept;
  /// Same for a node embedded in a job (a wake-up): keeps the job alive until
  /// the node is processed.
  void enqueue_job_node(job_block& block, work_node& node) noexcept;

 private:
  enum class lifecycle : std::uint8_t { running, shutting_down, shut_down };
  struct message;

  scheduler_core(asio::any_io_executor executor, std::vector<std::unique_ptr<ring_adapter>> shared,
                 core_options options);
  ~scheduler_core();

  void request_pass() noexcept;
  void finish_job_node(job_block& block, bool held_ref) noexcept;
  void run_pass() noexcept;
  void process(work_node& node) noexcept;
  void take_mailbox(entity_state& entity, bool processing_push_node) noexcept;
  work_node* next_node() noexcept;
  static int incoming_phase(const work_node& node) noexcept;
  void append_job(entity_state& entity, job_block& block) noexcept;
  void start_job(job_block& block) noexcept;
  void resume_job(job_block& block) noexcept;
  void after_resume(job_block& block) noexcept;
  void decide(job_block& block, std::error_code ec, std::optional<fence_point> cause) noexcept;
  void retire(job_block& block) noexcept;
  void advance(entity_state& entity) noexcept;
  void signal_job(job_block& block) noexcept;
  static void reach_scheduled(job_block& block, bool unrun) noexcept;
  void flush_reached() noexcept;
  void normalize_next(entity_state& entity) noexcept;
  void select() noexcept;
  void select(ring_slot& slot) noexcept;
  void select_shared() noexcept;
  /// The ready head (prepared, next to run) that goes first under the policy
  /// among the entities for which `eligible(entity)` holds, or null.
  template <class Eligible>
  job_block* best_ready(const std::vector<entity_state*>& among, Eligible eligible) noexcept;
  bool goes_before(const job_block& a, priority pa, const job_block& b, priority pb) const noexcept;
  std::uint64_t fair_time(const entity_state& entity) const noexcept;
  void refresh_fair() noexcept;
  void charge_ring_time(job_block& block, std::chrono::nanoseconds now) noexcept;
  void run_job(job_block& block, ring_slot& slot) noexcept;
  void count_deadline(const job_block& block) noexcept;
  void watch_hardware(job_block& block, bool may_retire = true) noexcept;
  void arm_timeout(ring_slot& slot) noexcept;
  void disarm_timeout(ring_slot& slot) noexcept;
  void on_timeout(ring_slot& slot, std::uint64_t generation) noexcept;
  void recover(ring_slot& slot, job_block& guilty) noexcept;
  void fail_unrun(entity_state& entity, std::error_code ec, std::optional<fence_point> cause,
                  bool (*filter)(const job_block&, std::uint64_t), std::uint64_t arg) noexcept;
  static void shut_status(entity_state& entity) noexcept;
  void begin_shutdown(std::chrono::nanoseconds bound) noexcept;
  void cancel_in_flight() noexcept;
  void maybe_finish_shutdown() noexcept;
  void finish_shutdown() noexcept;
  void maybe_collect(entity_state& entity) noexcept;
  void release_detached(entity_state& entity, work_node* processed) noexcept;
  void unlink_in_flight(job_block& block) noexcept;

  std::atomic<std::uint32_t> refs_{1};
  asio::any_io_executor executor_;
  core_options options_;
  std::unique_ptr<timer_service> own_timers_;
  timer_service* timers_;

  // Cross-thread inbox.
  spinlock inbox_lock_;
  work_node* inbox_head_ = nullptr;
  work_node* inbox_tail_ = nullptr;
  std::atomic<bool> pass_requested_{false};
  std::atomic<bool> in_pass_{false};
  std::atomic<std::uint64_t> push_counter_{0};
  // Granted pauses (0 or 1). seq_cst: a pass that sees 0 may run; resume
  // lowers it and then requests a pass.
  std::atomic<std::uint32_t> pauses_{0};
  std::atomic<lifecycle> lifecycle_{lifecycle::running};

  // The executor only. `local` holds what the pass itself causes (wake-ups,
  // pushes from job bodies); `incoming` what arrived through the inbox. Events
  // of one phase that arrive together (completions, timeouts, kills, pushes)
  // take effect as a batch; then their consequences (in `local`) take effect,
  // before the next phase: a failure reaches its dependents before a kill,
  // and two timeouts of one instant both decide their victims first.
  work_node* local_head_ = nullptr;
  work_node* local_tail_ = nullptr;
  work_node* incoming_head_ = nullptr;
  work_node* incoming_tail_ = nullptr;
  int last_incoming_phase_ = -1;
  std::vector<entity_state*> entities_;
  std::vector<entity_state*> reached_dirty_;       // entities whose `reached` lags their signalled jobs
  std::vector<std::unique_ptr<ring_slot>> rings_;  // shared_ring: the shared rings, in index order
  std::size_t ring_count_ = 0;                     // shared_ring: rings_.size() (constant)
  std::vector<unsigned char> blocked_;             // select_shared: rings whose best head waits for credits
  std::chrono::nanoseconds epoch_{0};              // the timers' clock at creation
  std::uint64_t serve_counter_ = 0;                // policy rr: stamps runs
  std::uint64_t fair_floor_ = 0;                   // policy fair: never-decreasing minimum of active entities
  std::uint64_t measured_total_ = 0;               // policy fair: sum of the measured ring times (ns)
  std::uint64_t measured_count_ = 0;               // policy fair: how many were measured
  // Written on the executor, read from any thread. relaxed: independent counters.
  std::atomic<std::uint64_t> deadline_misses_{0};
  std::atomic<std::uint64_t> deadlines_met_{0};
  std::vector<promise> shutdown_waiters_;
  timer_service::timer_id shutdown_timer_ = 0;
  bool shutdown_timer_armed_ = false;

};

/// Intrusive pointer to a core.
class core_ref {
 public:
  core_ref() noexcept = default;
  explicit core_ref(scheduler_core* core) noexcept : core_(core) {}  // adopts a reference
  core_ref(const core_ref& other) noexcept : core_(other.core_) {
    if (core_) core_->add_ref();
  }
  core_ref(core_ref&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
  core_ref& operator=(core_ref other) noexcept {
    std::swap(core_, other.core_);
    return *this;
  }
  ~core_ref() {
    if (core_) core_->release();
  }
  scheduler_core* operator->() const noexcept { return core_; }
  scheduler_core* get() const noexcept { return core_; }
  explicit operator bool() const noexcept { return core_ != nullptr; }

 private:
  scheduler_core* core_ = nullptr;
};

/// Terminates the process with a message: for diagnosed programming errors.
[[noreturn]] void fatal(const char* what) noexcept;

}  // namespace cosched::detail
