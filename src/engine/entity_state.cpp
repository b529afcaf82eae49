// Entity lifecycle: the transition function of entity_status's table and the
// operations an entity handle performs from any thread (push, close, kill,
// set_priority, set_rings, drain, release).
#include "cosched/detail/entity_state.hpp"

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "cosched/error.hpp"
#include "cosched/scope.hpp"
#include "engine/engine.hpp"
#include "engine/entity_record.hpp"
#include "probes.hpp"

namespace cosched::detail {

entity_state::entity_state(scheduler_core* home, std::uint32_t limit, std::size_t rings, priority p,
                           std::string entity_name)
    : home_core(home),
      fair_clock_runs(home && home->policy() == scheduling_policy::fair &&
                      home->mode() == ring_mode::shared_ring),
      finished_context(new_contexts(2)),  // and the scheduled one after it (job_block::scheduled_context_of)
      credit_limit(limit),
      single_producer(home && home->single_producer()),
      shared_rings(rings),
      name(std::move(entity_name)),
      prio(p),
      reached(finished_context) {}

void entity_state::release() noexcept {
  // acq_rel: the last releaser must see all writes made through other references.
  if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete &entity_record::of(*this);
}

// ------------------------------------------------------------------ the transition table

bool entity_state::become(entity_event event, std::optional<fence_point> cause) noexcept {
  // Rows killed, banned, shut_down: no event changes a dead entity.
  if (dead()) return false;
  // Every event leaves the open state (close included: a closed entity takes
  // no new jobs). release: see `accepting`.
  accepting.store(false, std::memory_order_release);
  switch (event) {
    case entity_event::close:  // open -> closed; closed stays closed
      if (status != entity_status::open) return false;
      status = entity_status::closed;
      dead_error = make_error_code(errc::cancelled);
      return true;
    case entity_event::kill:  // open, closed -> killed
      status = entity_status::killed;
      dead_error = make_error_code(errc::killed);
      dead_cause.reset();
      return true;
    case entity_event::ban:  // open, closed -> banned (cause: the guilty job)
      status = entity_status::banned;
      dead_error = make_error_code(errc::cancelled);
      dead_cause = cause;
      return true;
    case entity_event::shutdown:  // open, closed -> shut_down
      status = entity_status::shut_down;
      dead_error = make_error_code(errc::shutdown);
      dead_cause.reset();
      return true;
  }
  return false;
}

taken_jobs entity_state::take_mailbox() noexcept {
  taken_jobs taken;
  taken.jobs = std::move(mailbox);  // the whole mailbox, which is left empty
  taken.entity_dead = dead();
  taken.handle_alive = handle_alive;
  taken.error = dead_error;
  taken.cause = dead_cause;
  return taken;
}

bool entity_state::take_requested_rings(std::vector<std::size_t>& rings) noexcept {
  if (!rings_requested) return false;
  rings_requested = false;
  rings = std::move(requested_rings);
  requested_rings.clear();
  return true;
}

void entity_state::notify_update() noexcept {
  // One wake-up per batch, and none while the node is already queued.
  if (update_queued) return;
  update_queued = true;
  core->enqueue(update_node);
}

// ------------------------------------------------------------------ any-thread operations

std::vector<std::size_t> checked_ring_set(std::vector<std::size_t> rings, std::size_t ring_count,
                                          std::string_view entity_name) {
  const std::string of_entity = " (entity \"" + std::string(entity_name) + "\")";
  if (ring_count == 0) {
    const std::string why = "cosched: ring affinity needs shared_ring mode: in ring_per_entity mode ";
    throw std::invalid_argument(why + "each entity has its own ring" + of_entity);
  }
  // An empty set would leave the entity's jobs nowhere to run.
  if (rings.empty()) throw std::invalid_argument("cosched: an empty ring set" + of_entity);
  std::sort(rings.begin(), rings.end());
  if (rings.back() >= ring_count) {
    throw std::invalid_argument("cosched: ring " + std::to_string(rings.back()) +
                                " is out of range: the scheduler has " + std::to_string(ring_count) +
                                (ring_count == 1 ? " shared ring" : " shared rings") + of_entity);
  }
  // A ring named twice is most likely a mistake for another ring: refused rather than merged.
  if (const auto twice = std::adjacent_find(rings.begin(), rings.end()); twice != rings.end())
    throw std::invalid_argument("cosched: ring " + std::to_string(*twice) + " is named twice" + of_entity);
  return rings;
}

void entity_state::push(std::span<push_request> requests, scope* in_scope, push_result* results) {
  // Blocks are made outside the lock; seqnos are assigned inside it. A single
  // push (the common case) needs no heap buffer for them.
  job_block* inline_blocks[8];
  std::vector<job_block*> heap_blocks;
  if (requests.size() > std::size(inline_blocks)) heap_blocks.resize(requests.size());
  const std::span<job_block*> blocks = heap_blocks.empty()
                                           ? std::span<job_block*>(inline_blocks, requests.size())
                                           : std::span<job_block*>(heap_blocks);
  std::size_t made = 0;
  try {
    for (auto& request : requests) {
      auto* block = new job_block(fence_point{finished_context, 0});
      block->refs.store(2, std::memory_order_relaxed);  // scheduler + the returned finished fence
      blocks[made++] = block;
      block->promise = request.promise;
      block->credits = request.credits;
      // The cold record, where the job needs one (running must not allocate:
      // a job of a scheduler whose fair clock runs gets it here).
      if (request.deadline || in_scope || fair_clock_runs) block->make_cold().deadline = request.deadline;
      if (request.after && !request.after->empty()) {
        block->before_run.after.assign(*request.after);
        block->after_count = static_cast<std::uint32_t>(request.after->size());
      }
    }
  } catch (...) {
    for (std::size_t i = 0; i < made; ++i) delete blocks[i];
    throw;
  }
  for (std::size_t i = 0; i < blocks.size(); ++i) requests[i].promise->block = blocks[i];

  // One producer: its thread runs the executor, so while the entity is
  // attached (`core`, written on that thread) and open, the mailbox needs no
  // lock. Anything else (a dead or closed entity, a scope, a detached entity)
  // takes the locked path below.
  if (single_producer && core) {
#ifndef NDEBUG
    core->check_single_producer("a push");
#endif
    // acquire: see `accepting`.
    if (!in_scope && accepting.load(std::memory_order_acquire)) {
      push_single_producer(blocks, results);
      return;
    }
  }

  std::unique_lock guard(lock);
  if (!core) {
    // The scheduler is gone: nothing can run the jobs or order them any more.
    std::uint64_t last = last_seqno.load(std::memory_order_relaxed);
    for (auto* block : blocks) {
      block->finished.point.seqno = ++last;
      COSCHED_PROBE3(job_push, finished_context, last, name.c_str());
    }
    last_seqno.store(last, std::memory_order_relaxed);
    const auto ec = dead_error ? dead_error : make_error_code(errc::shutdown);
    const auto cause = dead_cause;
    guard.unlock();
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      auto* block = blocks[i];
      requests[i].frame.destroy();
      block->promise = nullptr;
      // Not shared yet: nobody can have asked for the scheduled fence.
      block->scheduled_word.store(job_block::scheduled_reached | job_block::scheduled_unrun,
                                  std::memory_order_relaxed);
      block->finished.signal(ec, cause);
      results[i].finished = fence::adopt(&block->finished);
      block->release();
    }
    reached.advance(last);
    return;
  }

  // relaxed: see queued_jobs.
  queued_jobs.fetch_add(static_cast<std::uint32_t>(blocks.size()), std::memory_order_relaxed);
  std::uint64_t seqno = last_seqno.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    auto* block = blocks[i];
    if (status != entity_status::open) {
      block->dead_on_arrival = true;
      block->finished.record(dead_error, dead_cause);
    } else if (in_scope) {
      if (in_scope->enter(core)) {
        block->cold->in_scope = in_scope;
      } else {
        block->dead_on_arrival = true;
        block->finished.record(make_error_code(errc::cancelled), std::nullopt);
      }
    }
    enter_mailbox(*block, ++seqno, results[i]);
  }
  last_seqno.store(seqno, std::memory_order_relaxed);
  notify_update();
}

void entity_state::enter_mailbox(job_block& block, std::uint64_t seqno, push_result& result) noexcept {
  block.finished.point.seqno = seqno;
  COSCHED_PROBE3(job_push, finished_context, seqno, name.c_str());
  block.push_order = core->next_push_order();
  block.entity = this;
  mailbox.push_back(block);
  result.finished = fence::adopt(&block.finished);
}

void entity_state::push_single_producer(std::span<job_block*> blocks, push_result* results) noexcept {
  // No read-modify-write: the one producer's thread is the only one that
  // changes queued_jobs (push, and the scheduler as jobs leave the queue).
  queued_jobs.store(queued_jobs.load(std::memory_order_relaxed) + static_cast<std::uint32_t>(blocks.size()),
                    std::memory_order_relaxed);
  std::uint64_t seqno = last_seqno.load(std::memory_order_relaxed);
  for (std::size_t i = 0; i < blocks.size(); ++i) enter_mailbox(*blocks[i], ++seqno, results[i]);
  last_seqno.store(seqno, std::memory_order_relaxed);
  if (!pushed_queued) {
    pushed_queued = true;
    core->enqueue_on_own_thread(pushed_node);
  }
}

void entity_state::close() noexcept {
  std::lock_guard guard(lock);
  become(entity_event::close);
}

void entity_state::kill() noexcept {
  std::lock_guard guard(lock);
  if (dead()) return;
  if (!core) {
    become(entity_event::kill);
    return;
  }
  // The kill takes effect in order with the scheduler's other events (a
  // timeout's ban queued before it wins); pushes until then reach the mailbox,
  // which the kill takes and fails.
  if (!kill_queued) {
    kill_queued = true;
    core->enqueue(kill_node);
  }
}

void entity_state::set_priority(priority p) noexcept {
  // relaxed: update_node, queued below, orders the change before the next selection.
  prio.store(p, std::memory_order_relaxed);
  std::lock_guard guard(lock);
  if (core) notify_update();
}

void entity_state::set_rings(std::vector<std::size_t> rings) {
  rings = checked_ring_set(std::move(rings), shared_rings, name);
  std::vector<std::size_t> replaced;  // freed outside the lock
  std::lock_guard guard(lock);
  replaced = std::exchange(requested_rings, std::move(rings));
  rings_requested = true;
  // Detached (the scheduler is gone or going): nothing is placed any more, so
  // the set changes nothing. Otherwise the update node carries it to the
  // executor, in order with the entity's other events, before the next selection.
  if (core) notify_update();
}

fence entity_state::drain() {
  std::uint64_t last;
  {
    std::lock_guard guard(lock);
    last = last_seqno.load(std::memory_order_relaxed);
  }
  return reached.at(last);
}

fence entity_state::flush(std::chrono::nanoseconds bound) {
  fence drained = drain();
  if (drained.signalled()) return drained;
  std::lock_guard guard(lock);
  // Attached: the scheduler has not finished shutting down, so its executor is
  // there for the message (as for kill()).
  if (core) core->flush_entity(*this, bound, drained);
  return drained;
}

void entity_state::release_handle() noexcept {
  {
    std::lock_guard guard(lock);
    become(entity_event::close);
    handle_alive = false;
    // Let the scheduler notice that it may let go of the entity.
    if (core) notify_update();
  }
  release();
}

}  // namespace cosched::detail
