// The engine's pass: how events reach the scheduler's executor (the inbox from
// other threads, the local queue from within the pass), the order in which one
// pass takes them, and where each kind of event goes.
#include <cstdio>
#include <mutex>
#include <thread>

#include <asio/post.hpp>

#include "cosched/error.hpp"
#include "cosched/job.hpp"
#include "cosched/scope.hpp"
#include "engine/engine.hpp"

namespace cosched::detail {

namespace {

// The engine whose pass is running on this thread: wake-ups it causes for
// itself go straight to its local queue instead of through the inbox.
thread_local engine* current_engine = nullptr;

}  // namespace

// ------------------------------------------------------------------ handing events to the executor

void engine::enqueue(work_node& node) noexcept {
  if (current_engine == this) {
    local_.push_back(node);
    return;
  }
  {
    std::lock_guard guard(inbox_lock_);
    inbox_.push_back(node);
  }
  request_pass();
}

void scheduler_core::enqueue_on_own_thread(work_node& node) noexcept {
  engine::of(*this).enqueue_on_own_thread(node);
}

void engine::enqueue_on_own_thread(work_node& node) noexcept {
  // The local queue is touched by this thread only: within a pass, or between
  // passes (the one thread that runs the executor runs no pass now).
  local_.push_back(node);
  if (current_engine != this) request_pass();
}

void scheduler_core::check_single_producer(const char* what) noexcept {
  const std::thread::id self = std::this_thread::get_id();
  std::thread::id first{};
  // relaxed: only the identity of the first thread matters.
  if (producer_thread_.compare_exchange_strong(first, self, std::memory_order_relaxed) || first == self)
    return;
  char message[256];
  std::snprintf(message, sizeof message,
                "scheduler_options::single_producer: %s on a second thread (with one producer, every "
                "push and the scheduler's executor are on one thread)",
                what);
  fatal(message);
}

// A new entity's added_node goes to the pass, unless the scheduler is shut
// down (then false: nothing will register it). Under the entity's lock.
bool engine::enqueue_added(entity_record& entity) noexcept {
  if (current_engine == this) {
    if (stage() == lifecycle::shut_down) return false;
    entity.core = this;
    entity.add_ref();  // the scheduler's reference, released when it lets go of the entity
    local_.push_back(entity.added_node);
    return true;
  }
  // Checked under the inbox lock: finish_shutdown marks the scheduler shut
  // down, then drains the inbox under this lock, so a node queued here before
  // that is processed and a creation after it sees the scheduler shut down.
  std::unique_lock inbox(inbox_lock_);
  // acquire: pairs with the release stores of the lifecycle.
  if (lifecycle_.load(std::memory_order_acquire) == lifecycle::shut_down) return false;
  entity.core = this;
  entity.add_ref();
  inbox_.push_back(entity.added_node);
  inbox.unlock();
  request_pass();
  return true;
}

void engine::request_pass() noexcept {
  // acq_rel: only the caller that flips the flag posts; the pass clears it
  // before reading the inbox, so no enqueued node is left without a pass.
  if (pass_requested_.exchange(true, std::memory_order_acq_rel)) return;
  add_ref();
  asio::post(executor_, [self = core_ref(this)] { of(*self.get()).run_pass(); });
}

void engine::enqueue_job_node(job_block& block, work_node& node) noexcept {
  if (current_engine == this) {
    // The executor's own thread: signalling defers the release instead (no atomics).
    node.holds_ref = false;
    ++block.local_nodes;
    local_.push_back(node);
    return;
  }
  block.add_ref();  // the node may outlive every other reference until processed
  node.holds_ref = true;
  {
    std::lock_guard guard(inbox_lock_);
    inbox_.push_back(node);
  }
  request_pass();
}

// `held_ref`: the node's holds_ref as it was when the node was taken from its
// queue. Processing may arm a new wait (the job's body awaits its next
// dependency), after which another thread can queue the same node again and
// rewrite the flag.
void engine::finish_job_node(job_block& block, bool held_ref) noexcept {
  if (held_ref) {
    block.release();
    return;
  }
  if (--block.local_nodes == 0 && block.release_deferred) block.release();
}

// ------------------------------------------------------------------ the pass

void engine::run_pass() noexcept {
  // acquire: pairs with the release store at the end of the previous pass, so
  // this pass sees everything it did. A concurrent entry means the executor
  // runs handlers of one scheduler in parallel, which the design forbids.
  if (in_pass_.exchange(true, std::memory_order_acquire)) {
    fatal(
        "a scheduler's handlers ran concurrently: if several threads run its executor, "
        "the scheduler must be bound to a strand");
  }
#ifndef NDEBUG
  if (options_.single_producer) check_single_producer("a pass of the scheduler");
#endif
  engine* outer = std::exchange(current_engine, this);
  // seq_cst: cleared before the inbox is read, and ordered with the enqueuers'
  // exchange, so a node enqueued after the inbox was drained requests a new pass.
  pass_requested_.store(false, std::memory_order_seq_cst);
  last_incoming_phase_ = -1;

  // While paused nothing is processed: the nodes wait in their queues.
  // seq_cst: see pauses_.
  while (pauses_.load(std::memory_order_seq_cst) == 0) {
    work_node* node = next_node();
    if (!node) {
      // Timelines first: their waiters may be jobs of this pass.
      publish_reached();
      if (!local_.empty()) continue;
      if (stage() != lifecycle::running) break;
      select();
      if (!collectable_.empty()) collect_finished_entities();
      publish_reached();
      if (local_.empty()) break;
      continue;
    }
    dispatch(*node);
    // Entities are let go of between events, never while a loop walks them.
    if (!collectable_.empty()) collect_finished_entities();
    if (stage() == lifecycle::shutting_down) finish_shutdown_if_done();
  }

  publish_reached();  // a pause or a shutdown left the loop early
  current_engine = outer;
  // release: the next pass (acquire above) sees everything this one did.
  in_pass_.store(false, std::memory_order_release);
}

// The phase of an event that arrived through the inbox, in the order DESIGN.md
// gives for one instant: completions, timeouts, kills, pushes; -1 for events
// that are not batched.
int engine::incoming_phase(const work_node& node) noexcept {
  switch (node.what) {
    case work_node::kind::hardware_done:
      return 0;
    case work_node::kind::message:
      return static_cast<const message&>(node).what_message == message::type::timeout ? 1 : -1;
    case work_node::kind::entity_killed:
      return 2;
    case work_node::kind::entity_updated:
      return 3;
    default:
      return -1;
  }
}

work_node* engine::next_node() noexcept {
  if (incoming_.empty()) {
    std::lock_guard guard(inbox_lock_);
    incoming_ = std::move(inbox_);  // the whole inbox, which is left empty
  }
  // The rest of a batch of one phase goes before the batch's consequences.
  if (!incoming_.empty() &&
      (local_.empty() ||
       (last_incoming_phase_ >= 0 && incoming_phase(*incoming_.front()) == last_incoming_phase_))) {
    work_node* node = incoming_.pop_front();
    last_incoming_phase_ = incoming_phase(*node);
    return node;
  }
  if (work_node* node = local_.pop_front()) {
    last_incoming_phase_ = -1;  // a batch ends with its consequences
    return node;
  }
  return nullptr;
}

// ------------------------------------------------------------------ where each event goes

void engine::dispatch(work_node& node) noexcept {
  switch (node.what) {
    case work_node::kind::dependency_wake: {
      // A dependency the job's body waits for signalled: resume the body, or
      // fail the job with the dependency's error.
      auto& block = static_cast<job_block&>(node);
      const bool held_ref = node.holds_ref;  // before resuming (see finish_job_node)
      // Never for a job on a ring (it ran once its waits were over); its part
      // before running is the ring's then.
      if (block.phase == job_phase::running) {
        finish_job_node(block, held_ref);
        return;
      }
      // Valid only while the job is still suspended on it (see job_block::before_run).
      const fence_state* awaited = std::exchange(block.before_run.awaited, nullptr);
      const bool waiting_after = block.waiting_after;
      block.waiting_after = false;
      if (waiting_after) {
        // A declared dependency: go on through the list (or fail there).
        if (block.phase == job_phase::preparing && awaited) wait_declared(block);
      } else if (block.phase == job_phase::preparing && awaited) {
        if (awaited->error() && !block.awaited_yields_error) {
          record_dependency_failure(*block.promise, *awaited);
          record_body_progress(block);
        } else {
          resume_job(block);
        }
      }
      finish_job_node(block, held_ref);
      return;
    }
    case work_node::kind::hardware_done: {
      auto& block = static_cast<job_block&>(node);
      const bool held_ref = node.holds_ref;
      // Tagged with the attempt: a completion from before a reset is ignored.
      if (block.phase == job_phase::running && block.on_ring.hardware.valid() &&
          block.wake_attempt == block.attempts)
        retire(block);
      finish_job_node(block, held_ref);
      return;
    }
    case work_node::kind::gate_wake: {
      // A fence a decided job's signal waits for signalled.
      auto& gate = static_cast<causal_gate&>(node);
      job_block& block = gate.block;
      const bool held_ref = node.holds_ref;
      gate.armed = false;
      if (block.phase == job_phase::decided) signal_in_order(entity_record::of(block));
      finish_job_node(block, held_ref);
      return;
    }
    case work_node::kind::pipelined_wake: {
      // A declared dependency the job passed by pipelining signalled.
      auto& watch = static_cast<pipeline_watch&>(node);
      job_block& block = *watch.block;
      const bool held_ref = node.holds_ref;
      watch.armed = false;
      on_pipelined_signal(block, static_cast<std::uint32_t>(&watch - block.gate()->pipelined.get()));
      finish_job_node(block, held_ref);
      return;
    }
    case work_node::kind::entity_added:
      on_entity_added(entity_record::of(*static_cast<entity_node&>(node).entity));
      return;
    case work_node::kind::entity_updated:
      on_entity_updated(entity_record::of(*static_cast<entity_node&>(node).entity), node);
      return;
    case work_node::kind::entity_pushed:
      on_entity_pushed(entity_record::of(*static_cast<entity_node&>(node).entity), node);
      return;
    case work_node::kind::entity_killed:
      on_entity_killed(entity_record::of(*static_cast<entity_node&>(node).entity), node);
      return;
    case work_node::kind::message: {
      std::unique_ptr<message> msg(static_cast<message*>(&node));
      on_message(*msg);
      return;
    }
  }
}

// New jobs in the mailbox, a new priority, or the handle gone.
void engine::on_entity_updated(entity_record& entity, work_node& node) noexcept {
  if (stage() == lifecycle::shut_down) {
    release_after_shutdown(entity, &node);
    return;
  }
  take_mailbox(entity, mailbox_take::update_node);
  queue_.changed(entity.queued);  // its priority may have changed
  signal_in_order(entity);
  note_collectable(entity);  // its handle may be gone
}

// One producer: new jobs in the mailbox (push_single_producer).
void engine::on_entity_pushed(entity_record& entity, work_node& node) noexcept {
  entity.pushed_queued = false;
  if (stage() == lifecycle::shut_down) {
    release_after_shutdown(entity, &node);
    return;
  }
  take_mailbox(entity, mailbox_take::early);
  signal_in_order(entity);
}

// The kill takes effect here, in order with the scheduler's other events (a
// timeout's ban queued before it wins).
void engine::on_entity_killed(entity_record& entity, work_node& node) noexcept {
  if (stage() == lifecycle::shut_down) {
    release_after_shutdown(entity, &node);
    return;
  }
  bool killed_now;
  {
    std::lock_guard guard(entity.lock);
    entity.kill_queued = false;
    killed_now = entity.become(entity_event::kill);
  }
  // Jobs pushed before the kill took effect are in the mailbox: they fail too.
  take_mailbox(entity, mailbox_take::early);
  if (killed_now) fail_unrun(entity, make_error_code(errc::killed), std::nullopt, nullptr, 0);
  signal_in_order(entity);
  note_collectable(entity);
}

void engine::on_message(message& msg) noexcept {
  const bool down = stage() == lifecycle::shut_down;
  switch (msg.what_message) {
    case message::type::shutdown:
      if (down) {
        msg.done->set_value();
        return;
      }
      shutdown_waiters_.push_back(std::move(*msg.done));
      begin_shutdown(msg.bound);
      return;
    case message::type::shutdown_deadline:
      if (stage() == lifecycle::shutting_down) cancel_in_flight_for_shutdown();
      return;
    case message::type::timeout:
      if (stage() == lifecycle::running) on_timeout(*msg.slot, msg.generation);
      return;
    case message::type::pause:
      // Timeouts stop with the scheduler (as drm_sched_stop does) and restart
      // from the resume.
      for_each_ring([this](ring_slot& slot) { disarm_timeout(slot); });
      // seq_cst: see pauses_.
      pauses_.store(1, std::memory_order_seq_cst);
      msg.granted();
      return;
    case message::type::flush: {
      if (down || msg.drained.signalled()) return;
      // The timer keeps a reference to the entity; its callback may run on
      // any thread, and kill() may be called from any thread.
      msg.slot_owner->add_ref();
      std::shared_ptr<entity_state> entity(msg.slot_owner, [](entity_state* e) { e->release(); });
      try {
        timers_->start(msg.bound, [entity, drained = msg.drained] {
          if (!drained.signalled()) entity->kill();
        });
      } catch (...) {
        // Out of memory: no kill at the bound; the fence still signals.
      }
      return;
    }
    case message::type::stop_scope:
      if (down) return;
      for (entity_record& entity : registered_) {
        take_mailbox(entity, mailbox_take::early);
        fail_unrun(
            entity, make_error_code(errc::cancelled), std::nullopt,
            // A job's scope outlives it (join), so its id can be read.
            [](const job_block& b, std::uint64_t id) { return b.in_scope() && b.in_scope()->id() == id; },
            msg.scope_id);
      }
      for (entity_record& entity : registered_) signal_in_order(entity);
      return;
  }
}

}  // namespace cosched::detail
