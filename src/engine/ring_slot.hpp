// A ring as the engine drives it: the backend's ring, the commands run on it
// and not retired yet (the in-flight list, in run order), the credits they
// hold, and the ring's timeout. Every call into the ring goes through here, and
// an exception from the ring becomes a failed hardware fence in one place.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <vector>

#include "cosched/detail/entity_state.hpp"
#include "cosched/detail/intrusive_list.hpp"
#include "cosched/detail/job_block.hpp"
#include "cosched/detail/scheduler_core.hpp"
#include "cosched/fence.hpp"
#include "cosched/ring.hpp"
#include "cosched/timer.hpp"

namespace cosched::detail {

/// A ring's jobs in flight, in run order: linked through job_block::on_ring
/// (doubly linked: a job leaves from anywhere when it retires), one pointer.
using ring_job_list = intrusive_list<job_block, &job_block::on_ring>;

/// One ring of a scheduler: shared_ring mode has one per shared ring, owned by
/// the engine; ring_per_entity mode has one per entity, owned by its entity
/// record and destroyed with it.
///
/// @par Thread Safety
/// The scheduler's executor only (the construction of a ring_per_entity slot
/// excepted: make_entity builds it on the caller's thread, before the entity
/// is shared).
///
/// @par Ownership
/// Owns the ring adapter. Borrows the commands of the jobs in its in-flight
/// list (their blocks are linked through job_block::on_ring).
///
/// @par Lifetime
/// Outlives its in-flight jobs (a slot is destroyed only once its list is
/// empty and its timeout disarmed). A timer callback that may still fire names
/// the slot: the engine holds a reference to its owner (the core, or the
/// entity) in the callback.
class ring_slot {
 public:
  /// `ring` may be null only where the slot is never asked to call its ring
  /// (tests of the run queue).
  ring_slot(std::unique_ptr<ring_adapter> ring, std::size_t index) noexcept;
  ~ring_slot();
  ring_slot(const ring_slot&) = delete;
  ring_slot& operator=(const ring_slot&) = delete;

  /// ring_per_entity: the entity that owns the slot (a timer callback of the
  /// slot keeps it alive through a reference to it); null for shared rings.
  entity_state* owner() const noexcept { return owner_; }
  void set_owner(entity_state* owner) noexcept { owner_ = owner; }

  /// The ring's index: in shared_ring mode its position among the scheduler's
  /// rings (placement ties go to the lowest); in ring_per_entity mode its
  /// entity's position in registration order.
  std::size_t index() const noexcept { return index_; }
  void set_index(std::size_t index) noexcept { index_ = index; }

  // ---- credits ----
  std::uint32_t credits_in_flight() const noexcept { return credits_in_flight_; }
  /// Whether a command of `credits` fits next to the ones in flight.
  bool fits(std::uint32_t credits, std::uint32_t credit_limit) const noexcept {
    return credits <= credit_limit - credits_in_flight_;
  }

  // ---- the in-flight list (run order) ----
  bool idle() const noexcept { return in_flight_.empty(); }
  job_block* front() const noexcept { return in_flight_.front(); }
  /// Links `block` at the back (its part on a ring begins: job_block::enter_ring);
  /// its credits are held from now on.
  void append(job_block& block) noexcept {
    block.enter_ring();
    in_flight_.push_back(block);
    credits_in_flight_ += block.credits;
  }
  /// Unlinks `block` (its part on a ring ends, its hardware fence with it:
  /// job_block::leave_ring); its credits are free from now on.
  void remove(job_block& block) noexcept {
    in_flight_.erase(block);
    credits_in_flight_ -= block.credits;
    block.leave_ring();
  }
  /// The jobs in flight, in run order (a copy: the caller may unlink them).
  std::vector<job_block*> in_flight() const;

  // ---- calling the ring (an exception becomes a failed hardware fence) ----
  /// ring.run(command): its hardware fence; a std::system_error becomes a fence
  /// failed with its code, any other exception `exception`, an empty fence
  /// `broken`. What the ring threw is left in `thrown` (else it is left as is).
  fence run(job_promise_base& command, std::exception_ptr& thrown) noexcept {
    return hardware_fence_of([this, &command] { return ring_->run(command); }, thrown);
  }
  /// ring.executes_in_order() (false for a slot without a ring).
  bool executes_in_order() const noexcept { return ring_ && ring_->executes_in_order(); }
  /// ring.replay(command), with the same conversions as run().
  fence replay(job_promise_base& command, std::exception_ptr& thrown) noexcept {
    return hardware_fence_of([this, &command] { return ring_->replay(command); }, thrown);
  }
  /// ring.on_timeout(command); an exception counts as `hung`.
  timeout_verdict on_timeout(job_promise_base& command) noexcept;
  /// ring.reset(); if it throws, ring.cancel_all().
  void reset() noexcept;
  void cancel_all() noexcept;

  /// ring_per_entity: closed after a hang (nothing runs on it any more).
  bool closed() const noexcept { return closed_; }
  void close() noexcept { closed_ = true; }

  // ---- the timeout ----
  /// (Re)starts the timeout: `make(generation)` builds the timer's callback,
  /// which hands a message naming this slot and `generation` to the engine.
  template <class MakeCallback>
  void arm_timeout(timer_service& timers, timer_service::duration delay, MakeCallback make) {
    disarm_timeout(timers);
    const std::uint64_t generation = ++timer_generation_;
    timer_armed_ = true;
    timer_ = timers.start(delay, make(generation));
  }
  void disarm_timeout(timer_service& timers) noexcept {
    if (timer_armed_) cancel_timeout(timers);
  }
  /// The timeout message of `generation` arrived: true (and the timeout is no
  /// longer armed) when it is the current one, false when it is stale.
  bool take_timeout(std::uint64_t generation) noexcept;

  /// Slots alive in the process (any thread; relaxed: a count, for tests that
  /// check that slots go with their entities).
  static std::size_t live() noexcept;

 private:
  // Calls into the ring (run or replay) and turns what it throws or returns
  // into a hardware fence the engine can wait for: the one place where that
  // conversion is written.
  template <class Call>
  static fence hardware_fence_of(Call call, std::exception_ptr& thrown) noexcept {
    try {
      fence hardware = call();
      if (hardware.valid()) return hardware;
    } catch (...) {
      thrown = std::current_exception();
      return failed_fence(thrown);
    }
    return failed_fence(nullptr);
  }
  // The fence of a call that threw `thrown` (a std::system_error: its code;
  // anything else: `exception`) or, for null, returned an empty fence (`broken`).
  static fence failed_fence(const std::exception_ptr& thrown) noexcept;
  void cancel_timeout(timer_service& timers) noexcept;

  std::unique_ptr<ring_adapter> ring_;   // the backend's ring, command type erased
  std::size_t index_;                    // see index()
  entity_state* owner_ = nullptr;        // see owner()
  std::uint32_t credits_in_flight_ = 0;  // sum of the credits of the in-flight jobs
  ring_job_list in_flight_;              // run, not retired, oldest first (the front's prev: the latest)
  timer_service::timer_id timer_ = 0;    // the armed timeout (valid while timer_armed_)
  std::uint64_t timer_generation_ = 0;   // a timeout message for an older generation is stale
  bool timer_armed_ = false;
  bool closed_ = false;  // see closed()
};

}  // namespace cosched::detail
