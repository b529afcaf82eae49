// Entities: client queues (a Vulkan queue, a context). A FIFO of jobs with a
// priority; its handle is the only way to push work.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cosched/detail/scheduler_core.hpp"
#include "cosched/entity_options.hpp"
#include "cosched/fence.hpp"
#include "cosched/job.hpp"
#include "cosched/priority.hpp"

namespace cosched {

/// What the caller keeps after push: fences only.
struct submitted {
  /// Signals after the job was retired: frame and command destroyed.
  fence finished;
  /// The job's scheduled fence: it signals when the command is first run on
  /// the ring, or, for a job that never runs, with the finished fence's outcome
  /// (no later than it). Its point is (the entity's scheduled context, seqno()).
  /// Made on the first request, from any thread, before or after the moment;
  /// every request returns the same fence. A job nobody asks about pays
  /// nothing for it. Throws std::bad_alloc, and std::invalid_argument when
  /// `finished` was replaced by a fence push did not return; an empty
  /// `finished` gives an empty fence.
  fence scheduled() const { return detail::scheduler_core::scheduled_fence(finished); }
  std::uint64_t seqno() const noexcept { return finished.point().seqno; }
};

/// A handle to an entity of a scheduler<Command>.
///
/// Push assigns the next seqno of the entity's timeline and links the job in
/// one atomic step, so timeline order is FIFO order; commands reach the ring in
/// push order, and the entity's finished fences signal in push order.
///
/// Push never throws for a dead entity: the returned fences fail, in order, with
/// `cancelled` after close(), `killed` after kill(), `shutdown` after scheduler
/// shutdown (and `cancelled` with the guilty job as cause after a ban). A job
/// whose credits exceed the ring's limit is a programming error: push throws
/// std::invalid_argument and the caller keeps the job.
///
/// @par Thread Safety
/// Distinct objects: Safe. Shared objects: Safe for push, close, kill,
/// set_priority, set_rings, drain and at(); move-assignment and destruction are
/// Unsafe.
///
/// @par Ownership
/// Movable. Destroying the handle closes the entity; the scheduler owns the
/// state until the entity's last job has retired.
///
/// @par Lifetime
/// A handle may outlive its scheduler: pushes then fail `shutdown` at once.
template <class Command>
class entity {
 public:
  entity() noexcept = default;
  entity(entity&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
  entity& operator=(entity&& other) noexcept {
    if (this != &other) {
      reset();
      state_ = std::exchange(other.state_, nullptr);
    }
    return *this;
  }
  entity(const entity&) = delete;
  entity& operator=(const entity&) = delete;
  ~entity() { reset(); }

  bool valid() const noexcept { return state_ != nullptr; }

  /// Pushes one job (moved in). Throws std::invalid_argument, leaving `j`
  /// untouched, when `j` is empty or its credits are 0 or above the limit.
  submitted push(job<Command>&& j, push_options options = {}) {
    check(j, options);
    auto handle = j.release();
    detail::push_request request{handle, &handle.promise(), options.credits, options.deadline,
                                 &options.after};
    detail::push_result result;
    state_->push(std::span(&request, 1), options.in, &result);
    return {std::move(result.finished)};
  }

  /// Pushes a batch in order with one wake-up of the scheduler. Every job is
  /// checked before any is taken; on std::invalid_argument nothing is pushed.
  std::vector<submitted> push(std::span<job<Command>> jobs, push_options options = {}) {
    for (auto& j : jobs) check(j, options);
    std::vector<detail::push_request> requests;
    requests.reserve(jobs.size());
    std::vector<detail::push_result> results(jobs.size());
    for (auto& j : jobs) {
      auto handle = j.release();
      requests.push_back({handle, &handle.promise(), options.credits, options.deadline, &options.after});
    }
    state_->push(requests, options.in, results.data());
    std::vector<submitted> out;
    out.reserve(results.size());
    for (auto& r : results) out.push_back({std::move(r.finished)});
    return out;
  }

  /// No more pushes (they fail `cancelled`); queued work still runs.
  void close() noexcept { state_->close(); }
  /// Jobs not yet run fail `killed`; commands already on the ring finish; later
  /// pushes fail `killed`.
  void kill() noexcept { state_->kill(); }
  /// Takes effect at the next selection.
  void set_priority(priority p) noexcept { state_->set_priority(p); }
  /// shared_ring mode: the scheduler's rings (by index, in any order) that the
  /// entity's commands may run on from now on, replacing the previous set
  /// (drm_sched's modify_sched). It takes effect at the entity's next
  /// placement: a head of an entity with no command in flight goes to the least
  /// loaded of these rings (ties: the lowest index); while commands are in
  /// flight, the next ones follow them on their ring, allowed or not, until
  /// they have all left it. On a closed entity it applies to the jobs still
  /// queued; on a dead one (killed, banned, shut down) nothing is placed again,
  /// so it changes nothing. Throws std::invalid_argument, changing nothing, for
  /// an empty handle, an empty set, a ring named twice, a ring past the
  /// scheduler's ring_count(), and in ring_per_entity mode.
  void set_rings(std::vector<std::size_t> rings) {
    if (!state_) throw std::invalid_argument("cosched: set_rings on an empty entity handle");
    state_->set_rings(std::move(rings));
  }
  priority get_priority() const noexcept { return state_->current_priority(); }
  /// A fence that signals, without error, once every job pushed before the call
  /// has signalled.
  fence drain() { return state_->drain(); }
  /// drain(); if that fence has not signalled `bound` from now (on the
  /// scheduler's timers), the entity is killed then: its jobs not yet run fail
  /// `killed`, commands on the ring finish (drm_sched's flush and kill).
  fence flush(std::chrono::nanoseconds bound) { return state_->flush(bound); }
  /// Any thread: a snapshot of the jobs pushed that have neither run nor been
  /// decided (`queued`), and of the entity's commands on a ring (`in_flight`).
  entity_pending pending() const noexcept { return state_->pending(); }
  /// A fence for point `seqno` of the entity's finished timeline (it may be
  /// requested before the job is pushed); it signals, without error, once the
  /// jobs up to `seqno` have signalled (before the scheduler's pass that
  /// signalled the last of them ends: the timeline advances once per batch).
  fence at(std::uint64_t seqno) { return state_->at(seqno); }

  /// Whether a ring reset involved the entity (guilty: one of its jobs hung;
  /// innocent: its work was replayed), and how many times.
  cosched::reset_status get_reset_status() const noexcept { return state_->reset_snapshot(); }

  /// The context of the entity's finished fences (scheduled fences use another).
  std::uint64_t context() const noexcept { return state_->finished_context; }
  const std::string& name() const noexcept { return state_->name; }
  std::uint32_t credit_limit() const noexcept { return state_->credit_limit; }

  /// Internal: adopts one reference.
  explicit entity(detail::entity_state* state) noexcept : state_(state) {}

 private:
  void check(const job<Command>& j, const push_options& options) const {
    if (!state_) throw std::invalid_argument("cosched: push on an empty entity handle");
    if (!j.valid()) throw std::invalid_argument("cosched: push of an empty job");
    if (options.credits == 0) throw std::invalid_argument("cosched: a job must cost at least 1 credit");
    for (const fence& f : options.after)
      if (!f.valid()) throw std::invalid_argument("cosched: push_options::after holds an empty fence");
    if (options.credits > state_->credit_limit) {
      throw std::invalid_argument("cosched: job costs " + std::to_string(options.credits) +
                                  " credits but the ring's credit limit is " +
                                  std::to_string(state_->credit_limit) + " (entity \"" + state_->name +
                                  "\")");
    }
  }
  void reset() noexcept {
    if (state_) std::exchange(state_, nullptr)->release_handle();
  }

  detail::entity_state* state_ = nullptr;
};

}  // namespace cosched
