// What the public templates (scheduler, entity, paused, scope) see of the
// scheduler's engine: the command-type-erased ring, the options it is made with,
// and scheduler_core, the engine's face: an interface of functions, no engine
// state. The engine itself (src/engine/) is not reachable from public headers;
// the vocabulary the API speaks (modes, policies, options, statistics) is public,
// in cosched/scheduler_options.hpp.
#pragma once

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>

#include "cosched/detail/entity_state.hpp"
#include "cosched/detail/job_block.hpp"
#include "cosched/fence.hpp"
#include "cosched/job_exception.hpp"
#include "cosched/priority.hpp"
#include "cosched/ring.hpp"
#include "cosched/scheduler_options.hpp"
#include "cosched/timer.hpp"

namespace cosched::detail {

/// The command-type-erased ring the engine drives (scheduler<Command>::adapter).
/// Called on the scheduler's executor only. A command is named by the promise
/// that keeps it (the adapter knows the promise's type).
class ring_adapter {
 public:
  virtual ~ring_adapter() = default;
  virtual fence run(job_promise_base& command) = 0;
  virtual void cancel_all() noexcept = 0;
  virtual timeout_verdict on_timeout(job_promise_base& command) = 0;
  virtual void reset() = 0;
  virtual fence replay(job_promise_base& command) = 0;
  virtual bool executes_in_order() const noexcept = 0;
};

struct core_options {
  std::uint32_t credit_limit = 1;
  ring_mode mode = ring_mode::shared_ring;
  std::chrono::nanoseconds timeout{0};  // 0: no timeout
  timer_service* timers = nullptr;      // null: a steady-clock timer on the executor
  scheduling_policy policy = scheduling_policy::fifo;
  job_exception_handler on_exception;  // may be empty
  // The frame of a job of the scheduler's command type, from its promise (a
  // job's block keeps only the promise).
  std::coroutine_handle<> (*frame_of)(job_promise_base& promise) noexcept = nullptr;
  bool pipeline = false;         // scheduler_options::pipeline
  bool single_producer = false;  // scheduler_options::single_producer
};

/// One in-flight job as a pause's visit sees it (paused::for_each_in_flight).
struct in_flight_view {
  job_promise_base& promise;       ///< keeps the job's command
  std::uint32_t attempts;          ///< 1, or more once replayed
  std::uint64_t seqno;             ///< its place in its entity
  const std::string& entity_name;  ///< entity_options::name
  /// shared_ring: the ring's position among the scheduler's rings;
  /// ring_per_entity: its entity's position in registration order.
  std::size_t ring;
};

/// The engine's face: what public templates, entity states and scopes call. The
/// engine (src/engine/engine.hpp) is its only derived class; every operation
/// declared here is defined there.
///
/// @par Thread Safety
/// Functions marked "any thread" may be called concurrently; the others run on
/// the scheduler's executor.
///
/// @par Ownership
/// Reference counted (core_ref): the scheduler handle, every posted pass and
/// timer callback, every entity attached to it and every scope that saw one of
/// its jobs hold a reference.
///
/// @par Lifetime
/// Destroyed by the last release(), on whichever thread makes it.
class scheduler_core {
 public:
  scheduler_core(const scheduler_core&) = delete;
  scheduler_core& operator=(const scheduler_core&) = delete;

  /// `shared` are the rings of shared_ring mode (at least one; empty in
  /// ring_per_entity mode). Throws std::invalid_argument for unusable options.
  static scheduler_core* create(asio::any_io_executor executor,
                                std::vector<std::unique_ptr<ring_adapter>> shared,
                                const core_options& options);

  void add_ref() noexcept {
    // relaxed: made from an existing reference.
    refs_.fetch_add(1, std::memory_order_relaxed);
  }
  /// Any thread. The last release destroys the engine.
  void release() noexcept;

  const asio::any_io_executor& executor() const noexcept { return executor_; }
  std::uint32_t credit_limit() const noexcept { return options_.credit_limit; }
  scheduling_policy policy() const noexcept { return options_.policy; }
  ring_mode mode() const noexcept { return options_.mode; }
  /// shared_ring mode: how many rings the entities share (0 in ring_per_entity mode).
  std::size_t ring_count() const noexcept { return ring_count_; }
  /// Time since the scheduler's epoch (its creation) on its timers' clock.
  std::chrono::nanoseconds now() const noexcept { return timers_->now() - epoch_; }
  /// Any thread: a snapshot of the counters.
  scheduler_statistics statistics() const noexcept;

  /// Any thread. The entity starts open with one reference for the caller.
  /// `own_ring` is its ring in ring_per_entity mode (required there, ignored
  /// otherwise); `rings` the shared rings it may use (empty: all; else checked
  /// by checked_ring_set). Throws std::invalid_argument for unusable arguments.
  entity_state* create_entity(priority p, std::string name, std::unique_ptr<ring_adapter> own_ring,
                              std::vector<std::size_t> rings);

  /// Any thread: the job of an entity of this scheduler whose finished fence is
  /// `point`, while the scheduler holds the entity (scheduler::describe).
  std::optional<job_ref> describe(fence_point point) const;

  /// Any thread: the scheduled fence of the job whose finished fence (from push)
  /// is `finished`, made on the first request; an empty fence for an empty one.
  static fence scheduled_fence(const fence& finished);

  /// Any thread. Starts shutdown (once) and returns a fence that signals when it
  /// is complete: every job's fences signalled, every frame and command destroyed.
  fence shutdown(std::chrono::nanoseconds bound);
  bool is_shut_down() const noexcept {
    // acquire: pairs with the release store at the end of shutdown.
    return lifecycle_.load(std::memory_order_acquire) == lifecycle::shut_down;
  }

  /// Any thread: cancels the jobs of a scope that have not reached the ring.
  void stop_scope(std::uint64_t scope_id);
  /// Any thread, under `entity`'s lock while it is attached: kills `entity`
  /// `bound` from now unless `drained` has signalled by then (entity::flush).
  void flush_entity(entity_state& entity, std::chrono::nanoseconds bound, const fence& drained) noexcept;

  /// Any thread: asks for a pause. Once granted (nothing runs or retires from
  /// then on), `granted` is called on the executor, from within a pass.
  void request_pause(std::function<void()> granted);
  /// Any thread: ends a granted pause.
  void resume() noexcept;
  /// While paused, on the executor: in-flight jobs, ring by ring in run order.
  void visit_in_flight(const std::function<void(const in_flight_view&)>& visit) const;
  /// While paused, on the executor: resets every ring with commands in flight and
  /// replays them in order with their fences (attempts + 1); commands whose
  /// hardware fence had signalled retire normally after the pause.
  void reset_and_replay() noexcept;

  /// Any thread: hands `node` to the scheduler's executor (its own queue when
  /// called from within its pass, else the inbox and a pass request).
  void enqueue(work_node& node) noexcept;
  /// Same for a node embedded in a job (a wake-up): keeps the job alive until
  /// the node is processed.
  void enqueue_job_node(job_block& block, work_node& node) noexcept;
  /// One producer, on the thread that runs the executor (within a pass or
  /// between passes): hands `node` to the pass's own queue, without the inbox
  /// and its lock, and requests a pass when none is running.
  void enqueue_on_own_thread(work_node& node) noexcept;

  /// Any thread (push, under the entity's lock): the job's place in the order
  /// of every push to this scheduler.
  std::uint64_t next_push_order() noexcept {
    // One producer: its thread alone pushes, so a plain increment (the atomic
    // is read and written by that thread only).
    if (options_.single_producer) {
      const std::uint64_t order = push_counter_.load(std::memory_order_relaxed);
      push_counter_.store(order + 1, std::memory_order_relaxed);
      return order;
    }
    // relaxed: the order between entities only has to be a total order; the
    // entity lock orders pushes of one entity.
    return push_counter_.fetch_add(1, std::memory_order_relaxed);
  }
  bool single_producer() const noexcept { return options_.single_producer; }
  /// One producer, builds without NDEBUG: terminates with a message when the
  /// calling thread is not the one that pushed or ran a pass first (`what`
  /// names the operation). Any thread.
  void check_single_producer(const char* what) noexcept;

 protected:
  enum class lifecycle : std::uint8_t { running, shutting_down, shut_down };

  scheduler_core(asio::any_io_executor executor, core_options options, std::size_t ring_count) noexcept;
  ~scheduler_core() = default;

  std::atomic<std::uint32_t> refs_{1};
  const asio::any_io_executor executor_;
  const core_options options_;
  const std::size_t ring_count_;     // shared_ring: the shared rings (constant); 0 in ring_per_entity mode
  timer_service* timers_ = nullptr;  // options_.timers, or the engine's own; set by the engine's constructor
  std::chrono::nanoseconds epoch_{0};  // the timers' clock at creation
  std::atomic<std::uint64_t> push_counter_{0};
  // One producer, builds without NDEBUG: the thread that pushed or ran a pass
  // first (check_single_producer).
  std::atomic<std::thread::id> producer_thread_{};
  // Written on the executor; read from any thread by is_shut_down() (acquire)
  // and by entity creation (under the inbox lock).
  std::atomic<lifecycle> lifecycle_{lifecycle::running};
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
