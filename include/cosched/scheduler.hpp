// The scheduler: owns entities, the in-flight list and credits; bound to one
// executor, on which it prepares jobs, selects what runs, and retires.
#pragma once

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/post.hpp>

#include "cosched/detail/scheduler_core.hpp"
#include "cosched/entity.hpp"
#include "cosched/fence.hpp"
#include "cosched/job.hpp"
#include "cosched/pause.hpp"
#include "cosched/priority.hpp"
#include "cosched/ring.hpp"
#include "cosched/scheduler_options.hpp"
#include "cosched/timer.hpp"

namespace cosched {

/// Schedules jobs of type job<Command> onto one ring, several shared rings, or
/// a ring per entity.
///
/// Selection: whenever credits are free, the first ready head (the oldest job
/// of an entity that has not run, prepared and its dependencies signalled) in
/// the policy's order runs. Only heads compete, so each entity's commands run
/// in push order. Push order breaks every tie (jobs pushed at one instant count
/// in the order of the push calls).
/// - fifo: the highest priority; within a priority, the head pushed earliest.
/// - rr: the highest priority; within a priority, the entity whose latest run
///   is the oldest (never served counts as oldest): one command per entity per
///   round.
/// - deadline: the highest priority; within a priority, the earliest deadline
///   (push_options::deadline), heads without one after every head with one.
/// - fair: no strict priority. Each entity has a virtual time: the ring time
///   of its commands that left the ring, times 8 / weight (kernel 8, high 4,
///   normal 2, low 1), plus an estimate for each command in flight (its
///   latest measured ring time; before it has one, the mean measured on the
///   scheduler; 1 ns before any), times 8 / weight; the least virtual time
///   goes first. Ring time: from a command's run (or replay), or the end of
///   the ring's previous command if later, until it leaves the ring. At each
///   selection step, an entity that is active (a ready head or commands in
///   flight) and was not at the previous step starts at no less than a floor
///   (the least virtual time of the active entities, never decreasing), so
///   idling earns no burst. Backlogged entities share ring time in proportion
///   to their weights: a low entity next to a saturating high one gets 1/5 of
///   it, never none.
/// A head that does not fit the free credits of its ring is never skipped:
/// nothing else runs on that ring until credits free up.
///
/// Several shared rings: an entity with commands in flight sends its next
/// command to the same ring (its commands stay in order); an entity with none
/// is placed: its head goes to the least loaded of the rings it may use
/// (entity_options::rings, entity::set_rings; default all), fewest credits in
/// flight, ties to the lowest index, among the rings whose best head is not
/// waiting for credits (when all of those wait, the head waits for a later
/// step). Credits, timeouts and recovery are per ring: a hang resets and
/// replays only its ring.
///
/// On retirement the scheduler destroys the command and the job's frame, then
/// signals `finished`, on its executor: on every path (success, failure, kill,
/// shutdown). A job with a deadline whose `finished` signals after it counts
/// as a deadline miss (statistics()).
///
/// @par Thread Safety
/// make_entity() and shutdown() may be called from any thread; entity handles
/// document theirs. The scheduler's handlers must not run concurrently: if its
/// executor is run by several threads, it must be a strand (concurrent entry is
/// detected and terminates with a message).
///
/// @par Ownership
/// Immovable. The caller owns the scheduler; the scheduler owns pushed jobs.
///
/// @par Lifetime
/// The ring and the executor's execution context must outlive the scheduler.
/// Destroying a scheduler whose shutdown() has not completed is a programming
/// error: the process terminates with a message (never a silent leak).
template <class Command>
class scheduler {
 public:
  struct entity_options {
    priority prio = priority::normal;
    std::string name{};
    /// ring_per_entity mode: the entity's own ring (must outlive the scheduler).
    ring<Command>* own_ring = nullptr;
    /// shared_ring mode: the rings the entity's commands may run on, by index
    /// (ring i of the constructor's span is i), in any order; empty: every
    /// ring. A copy engine, a compute engine. entity::set_rings changes it.
    std::vector<std::size_t> rings{};
  };

  /// shared_ring mode: every entity's commands go to `hardware`.
  scheduler(asio::any_io_executor executor, ring<Command>& hardware, const scheduler_options& options = {})
      : core_(detail::scheduler_core::create(std::move(executor), adapters_of(hardware),
                                             core_options_of(options))) {}
  /// shared_ring mode on several rings (at least one, none null; ring i is
  /// index i in placement ties, visit_in_flight and traces); each has
  /// `credit_limit` credits. Throws std::invalid_argument otherwise.
  scheduler(asio::any_io_executor executor, std::span<ring<Command>* const> rings,
            const scheduler_options& options = {})
      : core_(detail::scheduler_core::create(std::move(executor), adapters_of(rings),
                                             core_options_of(options))) {}
  scheduler(asio::any_io_executor executor, std::initializer_list<ring<Command>*> rings,
            const scheduler_options& options = {})
      : scheduler(std::move(executor), std::span<ring<Command>* const>(rings.begin(), rings.size()),
                  options) {}
  /// ring_per_entity mode (`options.mode` must say so): rings come with the entities.
  scheduler(asio::any_io_executor executor, const scheduler_options& options)
      : core_(detail::scheduler_core::create(std::move(executor), {}, core_options_of(options))) {}
  scheduler(const scheduler&) = delete;
  scheduler& operator=(const scheduler&) = delete;
  ~scheduler() {
    if (!core_->is_shut_down()) {
      detail::fatal(
          "cosched::scheduler destroyed before its shutdown() completed; "
          "await shutdown() first");
    }
  }

  /// Creates an entity. Any thread. In ring_per_entity mode `own_ring` is
  /// required. Throws std::invalid_argument for a missing own ring, and for
  /// `rings` that name a ring twice, a ring past ring_count(), or any ring in
  /// ring_per_entity mode.
  entity<Command> make_entity(entity_options options = {}) {
    std::unique_ptr<detail::ring_adapter> own;
    if (options.own_ring) own = std::make_unique<adapter>(*options.own_ring);
    return entity<Command>(core_->create_entity(options.prio, std::move(options.name), std::move(own),
                                                std::move(options.rings)));
  }

  /// Closes every entity, fails jobs that have not been run with `shutdown`,
  /// waits up to `bound` for commands on the ring, then cancels the ring. The
  /// returned fence signals once every job's fences have signalled and every
  /// frame and command is destroyed. Any thread; calling it again returns a
  /// fence for the same completion.
  fence shutdown(std::chrono::nanoseconds bound = std::chrono::seconds(1)) { return core_->shutdown(bound); }
  bool is_shut_down() const noexcept { return core_->is_shut_down(); }

  /// Pauses the scheduler. Completes, with signature
  /// void(std::unique_ptr<paused<Command>>), once nothing runs or retires any
  /// more; the handler runs on its associated executor (the scheduler's when it
  /// has none). One pause at a time: a second waits for the first to end.
  template <class CompletionToken>
  auto async_pause(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(std::unique_ptr<paused<Command>>)>(
        [this](auto handler) {
          using handler_type = decltype(handler);
          auto ex = asio::get_associated_executor(handler, core_->executor());
          // std::function needs a copyable callable; the handler may be move-only.
          auto shared = std::make_shared<handler_type>(std::move(handler));
          core_->request_pause([core = core_, ex, shared] {
            auto guard = std::unique_ptr<paused<Command>>(new paused<Command>(core));
            asio::post(
                ex, [shared, guard = std::move(guard)]() mutable { std::move (*shared)(std::move(guard)); });
          });
        },
        token);
  }

  const asio::any_io_executor& get_executor() const noexcept { return core_->executor(); }
  std::uint32_t credit_limit() const noexcept { return core_->credit_limit(); }
  scheduling_policy policy() const noexcept { return core_->policy(); }
  /// shared_ring mode: how many rings the entities share (0 in ring_per_entity mode).
  std::size_t ring_count() const noexcept { return core_->ring_count(); }

  /// Time since the scheduler's epoch (its construction) on its timers' clock
  /// (scheduler_options::timers): the time base of push_options::deadline. From
  /// any thread with the default timers; with others, where their now() allows.
  std::chrono::nanoseconds now() const noexcept { return core_->now(); }
  /// Any thread: counters so far (a snapshot).
  scheduler_statistics statistics() const noexcept { return core_->statistics(); }

  /// Any thread: which job a point of a finished fence stands for, such as a
  /// failed fence's cause() (a context and seqno, opaque by themselves): the
  /// entity's name and context (entity::context()) and the job's seqno (1 for
  /// the entity's first push). std::nullopt when `point` is not a job of an
  /// entity this scheduler holds: another scheduler's, a promise's, a seqno the
  /// entity has not pushed, or an entity the scheduler has let go of (its
  /// handle gone and every job of it signalled, or the scheduler shut down).
  /// Thread-safe: takes the scheduler's lock of its entity directory (held by
  /// entity creation and by the scheduler letting go of an entity), never
  /// waits for the executor.
  std::optional<job_ref> describe(fence_point point) const { return core_->describe(point); }

 private:
  static detail::core_options core_options_of(const scheduler_options& options) {
    return {options.credit_limit, options.mode, options.timeout,  options.timers,         options.policy,
            options.on_exception, &frame_of,    options.pipeline, options.single_producer};
  }
  static detail::job_promise<Command>& promise_of(detail::job_promise_base& promise) noexcept {
    return static_cast<detail::job_promise<Command>&>(promise);
  }
  static std::coroutine_handle<> frame_of(detail::job_promise_base& promise) noexcept {
    return std::coroutine_handle<detail::job_promise<Command>>::from_promise(promise_of(promise));
  }
  static std::vector<std::unique_ptr<detail::ring_adapter>> adapters_of(ring<Command>& hardware) {
    std::vector<std::unique_ptr<detail::ring_adapter>> adapters;
    adapters.push_back(std::make_unique<adapter>(hardware));
    return adapters;
  }
  static std::vector<std::unique_ptr<detail::ring_adapter>> adapters_of(
      std::span<ring<Command>* const> rings) {
    std::vector<std::unique_ptr<detail::ring_adapter>> adapters;
    adapters.reserve(rings.size());
    for (ring<Command>* r : rings) {
      if (!r) throw std::invalid_argument("cosched::scheduler: a shared ring is null");
      adapters.push_back(std::make_unique<adapter>(*r));
    }
    return adapters;
  }

  class adapter final : public detail::ring_adapter {
   public:
    explicit adapter(ring<Command>& r) noexcept : ring_(r) {}
    fence run(detail::job_promise_base& command) override { return ring_.run(command_of(command)); }
    void cancel_all() noexcept override { ring_.cancel_all(); }
    timeout_verdict on_timeout(detail::job_promise_base& command) override {
      return ring_.on_timeout(command_of(command));
    }
    void reset() override { ring_.reset(); }
    fence replay(detail::job_promise_base& command) override { return ring_.replay(command_of(command)); }
    bool executes_in_order() const noexcept override { return ring_.executes_in_order(); }

   private:
    static Command& command_of(detail::job_promise_base& promise) noexcept {
      return *promise_of(promise).command_storage();
    }

    ring<Command>& ring_;
  };

  detail::core_ref core_;
};

}  // namespace cosched
