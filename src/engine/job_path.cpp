// The path of one job through the engine, in the order it takes: taken from
// its entity's mailbox, prepared (its coroutine runs until it co_returns its
// command), selected and run on a ring, retired when its hardware fence
// signals, decided, and signalled in its entity's push order. (Push itself is
// entity_state::push, in entity_state.cpp; recovery.cpp holds the paths a
// reset takes instead of retirement.)
#include <atomic>
#include <cassert>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>

#include <spdlog/spdlog.h>

#include "cosched/error.hpp"
#include "cosched/job.hpp"
#include "cosched/log.hpp"
#include "cosched/scope.hpp"
#include "engine/engine.hpp"
#include "probes.hpp"

namespace cosched::detail {

namespace {

// relaxed: a count read by tests after the work that changed it (same thread,
// or ordered by the scheduler's shutdown).
std::atomic<std::size_t> live_cold_records{0};

}  // namespace

void job_cold::count_live(int change) noexcept {
  live_cold_records.fetch_add(static_cast<std::size_t>(change), std::memory_order_relaxed);
}

std::size_t job_cold::live() noexcept { return live_cold_records.load(std::memory_order_relaxed); }

// ------------------------------------------------------------------ taken from the mailbox

void engine::take_mailbox(entity_record& entity, mailbox_take how) noexcept {
  taken_jobs taken;
  std::vector<std::size_t> rings;
  bool rings_requested = false;
  {
    std::lock_guard guard(entity.lock);
    switch (how) {
      case mailbox_take::early:
        // A kill, a ban, a scope stop or shutdown taking the mailbox leaves
        // update_node queued: a push must not queue it a second time.
        break;
      case mailbox_take::update_node:
        entity.update_queued = false;
        // A set_rings travels with update_node too (under the same lock).
        rings_requested = entity.take_requested_rings(rings);
        break;
    }
    taken = entity.take_mailbox();
  }
  if (rings_requested) queue_.restrict_to(entity.queued, rings);
  if (!taken.handle_alive) entity.handle_gone = true;
  while (job_block* block = taken.jobs.pop_front()) {
    // Taken after the entity died (a kill, ban or shutdown took effect first):
    // the job fails with the entity's reason, without being started.
    if (taken.entity_dead && !block->dead_on_arrival) {
      block->dead_on_arrival = true;
      block->finished.record(taken.error, taken.cause);
    }
    adopt_job(entity, *block);
  }
}

// A push that finds the entity detached signals its fences at once, on its
// own thread. Were the entity detached while jobs pushed before waited in its
// mailbox (or taken, not yet signalled), such a push would signal ahead of
// them. So the mailbox is taken and its jobs signalled until a look under the
// entity's lock finds it empty, and the entity is detached under that lock.
void engine::detach_entity(entity_record& entity, bool shut_down) noexcept {
  for (;;) {
    signal_in_order(entity);
    publish_reached();
    {
      std::lock_guard guard(entity.lock);
      if (shut_down) entity.become(entity_event::shutdown);
      if (entity.mailbox.empty() && entity.jobs.empty()) {
        entity.core = nullptr;  // from here on a push fails at once on its own thread
        return;
      }
    }
    take_mailbox(entity, mailbox_take::early);
  }
}

void engine::adopt_job(entity_record& entity, job_block& block) noexcept {
  entity.jobs.push_back(block);
  if (block.dead_on_arrival) {
    decide(block, block.finished.error(), block.finished.recorded_cause());
    return;
  }
  if (stage() != lifecycle::running) {
    decide(block, make_error_code(errc::shutdown), std::nullopt);
    return;
  }
  start_job(block);
}

// ------------------------------------------------------------------ preparation

void engine::start_job(job_block& block) noexcept {
  block.phase = job_phase::preparing;
  auto& entity = entity_record::of(block);
  if (!entity.queued.head) set_head_from(entity, &block);
  wait_declared(block);
}

void on_job_signal(fence_waiter& waiter, fence_state&) noexcept;

// Waits through the job's declared dependencies in order, then resumes the
// body; a failed one fails the job as an in-body co_await of it would.
void engine::wait_declared(job_block& block) noexcept {
  while (block.after_passed < block.after_count) {
    const fence_state& dependency = block.before_run.after.at(block.after_passed, block.after_count);
    if (!dependency.is_signalled()) {
      COSCHED_PROBE4(job_wait_dep, block.finished.point.context, block.finished.point.seqno,
                     dependency.point.context, dependency.point.seqno);
      if (options_.pipeline && passes_by_pipelining(block, dependency) &&
          watch_pipelined(block, block.after_passed, dependency)) {
        ++block.after_passed;
        continue;
      }
      block.arm_wait(work_node::kind::dependency_wake, &on_job_signal);
      block.awaited_yields_error = false;
      block.before_run.awaited = &dependency;
      block.waiting_after = true;
      if (dependency.add_waiter(block.waiter())) return;  // dispatch() comes back here
      block.before_run.awaited = nullptr;
      block.waiting_after = false;
      continue;  // it signalled meanwhile
    }
    if (dependency.error()) {
      record_dependency_failure(*block.promise, dependency);
      record_body_progress(block);  // decided, failed
      return;
    }
    ++block.after_passed;
  }
  // All signalled without error (or passed by pipelining: their watches hold
  // them): nothing waits for them any more (fence causality counts only
  // pending ones), so they go now.
  block.release_declared();
  resume_job(block);
}

// ------------------------------------------------------------------ pipelining

ring_slot* engine::known_ring_of(const job_block& block) const noexcept {
  if (options_.mode == ring_mode::ring_per_entity) return entity_record::of(*block.entity).own_ring.get();
  return rings_.size() == 1 ? rings_.front().get() : nullptr;
}

bool engine::passes_by_pipelining(const job_block& block, const fence_state& dependency) const noexcept {
  if (!is_own_job_fence(dependency)) return false;
  const auto& ran = *static_cast<const job_block*>(dependency.owner);
  if (&ran.finished != &dependency || ran.attempts == 0) return false;  // not run (yet)
  // Decided as failed: its failure is known, so it is waited for (and fails the job when it signals).
  if (ran.phase == job_phase::decided && ran.finished.error()) return false;
  // Where the ring is known before a job runs (one shared ring, or the
  // entity's own), a job that ran ran there; a decided job keeps its entity
  // (and a ring of its own) until it signals.
  ring_slot* ring = known_ring_of(block);
  return ring && known_ring_of(ran) == ring && ring->executes_in_order();
}

void on_pipelined_fence_signal(fence_waiter& waiter, fence_state&) noexcept {
  auto& watch = static_cast<pipeline_watch&>(waiter);
  engine::of(*watch.block->entity->home_core).enqueue_job_node(*watch.block, watch);
}

bool engine::watch_pipelined(job_block& block, std::uint32_t index, const fence_state& dependency) noexcept {
  causal_gate* gate = block.gate();
  if (!gate) {
    job_cold* cold = block.try_make_cold();
    if (!cold) return false;
    cold->gate.reset(new (std::nothrow) causal_gate(block));
    gate = block.gate();
    if (!gate) return false;
  }
  if (!gate->pipelined) {
    gate->pipelined.reset(new (std::nothrow) pipeline_watch[block.after_count]);
    if (!gate->pipelined) return false;
    gate->pipelined_count = block.after_count;
  }
  auto& watch = gate->pipelined[index];
  assert(!waiter_list::linked(watch) && "a pipelined dependency watched twice");
  watch.notify = &on_pipelined_fence_signal;
  watch.block = &block;
  dependency.owner->add_ref();
  watch.watched = fence::adopt(const_cast<fence_state*>(&dependency));
  watch.armed = true;
  // A job's finished fence signals on this executor: it cannot have signalled meanwhile.
  if (!dependency.add_waiter(watch)) enqueue_job_node(block, watch);
  return true;
}

namespace {

// A job of `core` waiting in its declared list for `ran`'s finished fence.
bool waits_declared_for(const job_block& candidate, const job_block& ran,
                        const scheduler_core* core) noexcept {
  return candidate.entity->home_core == core && candidate.waiting_after &&
         candidate.before_run.awaited == &ran.finished;
}

}  // namespace

void engine::pass_pipelined_dependents(job_block& ran) noexcept {
  // The jobs waiting in their declared lists for `ran` are collected in one
  // look under the fence's lock, then let go one at a time without it: going
  // on may resume a body, which may wait on other fences. One that changed
  // meanwhile (it no longer waits here) is left alone. If memory runs out
  // while collecting, the rest are collected in another look.
  bool more = true;
  while (more) {
    more = false;
    std::vector<job_block*> waiting;
    {
      std::lock_guard guard(ran.finished.lock);
      for (fence_waiter& w : ran.finished.waiters) {
        if (w.notify != &on_job_signal) continue;  // not a job's own wait
        auto* candidate = static_cast<job_block*>(&w);
        if (!waits_declared_for(*candidate, ran, this) || !passes_by_pipelining(*candidate, ran.finished))
          continue;
        try {
          waiting.push_back(candidate);
        } catch (const std::bad_alloc&) {
          more = true;
          break;
        }
      }
    }
    for (job_block* candidate : waiting) {
      if (!waits_declared_for(*candidate, ran, this) || !ran.finished.remove_waiter(candidate->waiter()))
        continue;
      candidate->before_run.awaited = nullptr;
      candidate->waiting_after = false;
      wait_declared(*candidate);  // passes `ran` now, and goes on
    }
  }
}

void engine::on_pipelined_signal(job_block& block, std::uint32_t index) noexcept {
  // Already run: its outcome is settled at its signal (take_pipelined_outcome);
  // once it has signalled, it no longer holds the dependency.
  if (block.phase != job_phase::preparing && block.phase != job_phase::prepared) return;
  // Not run yet: it fails now if the dependency failed, as a job waiting for it would.
  const fence_state& dependency = *block.gate()->pipelined[index].watched.state();
  if (!dependency.error()) return;
  decide(block, dependency.error(), dependency.has_cause ? dependency.cause : dependency.point);
  signal_in_order(entity_record::of(block));
}

// (Only for a job whose command completed: see causal_gate::completed.)
void engine::take_pipelined_outcome(job_block& block) noexcept {
  const causal_gate& gate = *block.gate();
  for (std::uint32_t i = 0; i < gate.pipelined_count; ++i) {
    const fence_state* dependency = gate.pipelined[i].watched.state();
    if (dependency && dependency->is_signalled() && dependency->error()) {
      block.finished.record(dependency->error(),
                            dependency->has_cause ? dependency->cause : dependency->point);
      return;
    }
  }
}

void engine::resume_job(job_block& block) noexcept {
  frame_of(block).resume();
  record_body_progress(block);
}

// Where the body got to: suspended on a dependency, prepared (co_returned its
// command), or failed.
void engine::record_body_progress(job_block& block) noexcept {
  switch (block.body) {
    case body_outcome::pending:
      return;  // suspended on a dependency (job_wait_begin)
    case body_outcome::prepared: {
      block.phase = job_phase::prepared;
      auto& entity = entity_record::of(block);
      if (entity.queued.head == &block) queue_.changed(entity.queued);  // a ready head now
      return;
    }
    case body_outcome::failed:
      decide(block, block.finished.error(), block.finished.recorded_cause());
      signal_in_order(entity_record::of(block));
      return;
  }
}

// The job's waiter was notified: its dependency or its hardware fence signalled
// (its wake node's kind says which).
void on_job_signal(fence_waiter& waiter, fence_state&) noexcept {
  auto& block = static_cast<job_block&>(waiter);
  engine::of(*block.entity->home_core).enqueue_job_node(block, block.wake_node());
}

bool job_wait_begin(job_promise_base& promise, const fence_state& awaited, bool yields_error) noexcept {
  auto& block = *promise.block;
  COSCHED_PROBE4(job_wait_dep, block.finished.point.context, block.finished.point.seqno,
                 awaited.point.context, awaited.point.seqno);
  block.arm_wait(work_node::kind::dependency_wake, &on_job_signal);
  block.awaited_yields_error = yields_error;
  block.before_run.awaited = &awaited;
  if (awaited.add_waiter(block.waiter())) return true;
  block.before_run.awaited = nullptr;
  return false;
}

void job_threw(job_promise_base& promise, std::exception_ptr thrown) noexcept {
  auto& block = *promise.block;
  engine::of(*block.entity->home_core)
      .report_exception(block, std::move(thrown), job_exception::origin::body, block.finished.error());
}

void engine::report_exception(job_block& block, std::exception_ptr thrown, job_exception::origin from,
                              std::error_code error) noexcept {
  std::string what;
  try {
    std::rethrow_exception(thrown);
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "(an exception not derived from std::exception)";
  }
  const auto& entity = entity_record::of(block);
  const fence_point point = block.finished.point;
  const char* source = from == job_exception::origin::body ? "its body" : "its ring, running its command,";
  try {
    logger()->error("cosched::scheduler: job {} of entity '{}': {} threw: {}; the job fails `{}`",
                    point.seqno, entity.name, source, what, error.message());
  } catch (...) {
    // Logging is best effort: the job's outcome carries the failure.
  }
  if (!options_.on_exception) return;
  try {
    options_.on_exception(job_exception{from, entity.name, point, error, what, std::move(thrown)});
  } catch (const std::exception& e) {
    try {
      logger()->error("cosched::scheduler: scheduler_options::on_exception threw: {}", e.what());
    } catch (...) {
    }
  } catch (...) {
    try {
      logger()->error("cosched::scheduler: scheduler_options::on_exception threw");
    } catch (...) {
    }
  }
}

void job_wait_abandon(job_promise_base& promise) noexcept {
  auto& block = *promise.block;
  const fence_state*& awaited = block.before_run.awaited;  // a suspended body: the job has not run
  if (!awaited) return;
  // If the wake-up is already queued, processing it finds the job decided.
  awaited->remove_waiter(block.waiter());
  awaited = nullptr;
}

// ------------------------------------------------------------------ selection and running

void engine::select() noexcept {
  // One command per step, in the run queue's order, until nothing more runs
  // (no ready head, or the best head of every ring waits for credits).
  while (const queue_choice next = queue_.next()) run_job(*next.entry->head, *next.ring);
}

void engine::run_job(job_block& block, ring_slot& slot) noexcept {
  auto& entity = entity_record::of(block);
  block.phase = job_phase::running;
  ++block.attempts;
  COSCHED_PROBE4(job_run, block.finished.point.context, block.finished.point.seqno, slot.index(),
                 block.attempts);
  lazy_now now = clock();
  queue_.ran(entity.queued, block, slot, now);
  set_head_from(entity, entity_job_list::next(block));
  const bool ring_was_idle = slot.idle();
  slot.append(block);  // its declared dependencies are gone: the storage is the ring's part now
  // relaxed: see entity_state::queued_jobs.
  if (block.attempts == 1) entity.queued_jobs.fetch_sub(1, std::memory_order_relaxed);
  entity.in_flight_jobs.fetch_add(1, std::memory_order_relaxed);
  std::exception_ptr thrown;
  fence& hardware = block.on_ring.hardware;
  hardware = slot.run(*block.promise, thrown);
  if (thrown) report_exception(block, thrown, job_exception::origin::ring, hardware.error());
  if (block.attempts == 1) reach_scheduled(block, false);
  // The timeout counts from the moment the ring had something to do.
  if (ring_was_idle) arm_timeout(slot);
  watch_hardware(block);
  if (options_.pipeline && block.attempts == 1 && slot.executes_in_order()) pass_pipelined_dependents(block);
}

void engine::watch_hardware(job_block& block, bool may_retire) noexcept {
  block.wake_attempt = block.attempts;
  // A hardware fence that has already signalled (work the "hardware" finished
  // at once) retires now, and selection goes on with the credits it frees,
  // without touching the block's wait fields; during a pause its retirement
  // waits in the queue.
  const fence& hardware = block.on_ring.hardware;
  if (may_retire && hardware.signalled()) {
    retire(block);
    return;
  }
  block.arm_wait(work_node::kind::hardware_done, &on_job_signal);
  if (!hardware.signalled() && hardware.state()->add_waiter(block.waiter())) return;
  if (may_retire)
    retire(block);
  else
    enqueue_job_node(block, block.wake_node());
}

// ------------------------------------------------------------------ retirement

void engine::retire(job_block& block) noexcept {
  auto& slot = entity_record::ring_of(block);
  const std::error_code ec = block.on_ring.hardware.error();
  COSCHED_PROBE4(job_hw_done, block.finished.point.context, block.finished.point.seqno, slot.index(),
                 ec.value());
  const bool was_front = slot.front() == &block;
  lazy_now now = clock();
  leave_ring(block, &now);  // the hardware fence goes
  // Pipelining: its command completed (see causal_gate::completed).
  if (causal_gate* gate = block.gate(); gate && gate->pipelined) gate->completed = true;
  decide(block, ec, std::nullopt);
  signal_in_order(entity_record::of(block));
  // Progress: the timeout restarts for the command now at the front.
  if (was_front) {
    if (slot.idle())
      disarm_timeout(slot);
    else
      arm_timeout(slot);
  }
}

void engine::decide(job_block& block, std::error_code ec, std::optional<fence_point> cause) noexcept {
  // Destroy first (frame, command, awaiter), then record; signalling follows in
  // entity order (signal_in_order), so nothing of the job is alive when its
  // fence signals.
  // A job that ran is off its ring by now: its part before running is back, empty.
  const fence_state*& awaited = block.before_run.awaited;
  if (block.waiting_after) {
    // A declared dependency's wait is the block's, not the frame's: unlink it
    // (a wake-up already queued finds the job decided).
    if (awaited) awaited->remove_waiter(block.waiter());
    awaited = nullptr;
    block.waiting_after = false;
  } else if (block.promise && awaited && !awaited->is_signalled()) {
    // Decided while its body waits for a fence: the signal waits for that
    // fence too (causality). A reference is taken before the frame, which
    // holds the awaited fence, is destroyed.
    if (job_cold* cold = block.try_make_cold(); cold && !cold->gate)
      cold->gate.reset(new (std::nothrow) causal_gate(block));
    if (causal_gate* gate = block.gate()) {
      awaited->owner->add_ref();
      gate->body = fence::adopt(const_cast<fence_state*>(awaited));
    }
  }
  if (block.promise) {
    frame_of(block).destroy();
    block.promise = nullptr;
  }
  block.finished.record(ec, cause);
  block.phase = job_phase::decided;
  auto& entity = entity_record::of(block);
  // relaxed: see entity_state::queued_jobs. A job that ran left the count then.
  if (block.attempts == 0) entity.queued_jobs.fetch_sub(1, std::memory_order_relaxed);
  if (entity.queued.head == &block) set_head_from(entity, entity_job_list::next(block));
}

std::size_t engine::fail_unrun(entity_record& entity, std::error_code ec, std::optional<fence_point> cause,
                               bool (*filter)(const job_block&, std::uint64_t), std::uint64_t arg) noexcept {
  // Decide every matching job first, then signal (the caller calls
  // signal_in_order): jobs of one decision do not see each other's failure as
  // a dependency failure.
  std::size_t decided = 0;
  for (job_block& block : entity.jobs) {
    if (block.phase != job_phase::preparing && block.phase != job_phase::prepared) continue;
    if (filter && !filter(block, arg)) continue;
    decide(block, ec, cause);
    ++decided;
  }
  return decided;
}

// ------------------------------------------------------------------ signalling, in push order

// Signals the entity's decided jobs from the front of its list, in push order,
// up to the first job not decided yet.
void engine::signal_in_order(entity_record& entity) noexcept {
  while (job_block* block = entity.jobs.front()) {
    if (block->phase != job_phase::decided) break;
    if (!causally_clear(*block)) break;  // it and the jobs behind it wait
    entity.jobs.pop_front();
    signal_job(*block);
  }
  // Its last job signalled after its handle let go: the scheduler lets go of it.
  if (entity.jobs.empty() && entity.handle_gone) note_collectable(entity);
}

// ------------------------------------------------------------------ fence causality

bool engine::is_own_job_fence(const fence_state& state) const noexcept {
  // A pending job's entity is alive (let go of only once its jobs signalled).
  return state.owner && state.owner->type == block_kind::job &&
         static_cast<const job_block*>(state.owner)->entity->home_core == this;
}

// The first fence `block` must not signal before that has not signalled yet:
// its declared dependencies in order, then its body's. Once shutdown's bound
// has passed, only other jobs' finished fences still count (they signal in
// the same shutdown: a job's dependencies were pushed before it).
const fence_state* engine::first_pending_gate(const job_block& block) const noexcept {
  auto holds = [this](const fence_state& s) {
    return !s.is_signalled() && (!external_gates_released_ || is_own_job_fence(s));
  };
  for (std::uint32_t i = 0; i < block.after_count; ++i) {
    const fence_state& s = block.before_run.after.at(i, block.after_count);
    if (holds(s)) return &s;
  }
  const causal_gate* gate = block.gate();
  if (!gate) return nullptr;
  if (gate->body.valid() && holds(*gate->body.state())) return gate->body.state();
  // Dependencies passed by pipelining (a job that ran no longer has its declared list).
  for (std::uint32_t i = 0; i < gate->pipelined_count; ++i) {
    const fence& watched = gate->pipelined[i].watched;
    if (watched.valid() && holds(*watched.state())) return watched.state();
  }
  return nullptr;
}

void on_gate_signal(fence_waiter& waiter, fence_state&) noexcept {
  auto& gate = static_cast<causal_gate&>(waiter);
  engine::of(*gate.block.entity->home_core).enqueue_job_node(gate.block, gate);
}

bool engine::causally_clear(job_block& block) noexcept {
  for (;;) {
    const fence_state* pending = first_pending_gate(block);
    causal_gate* existing = block.gate();
    if (!pending) {
      // A wait still linked (on a fence no longer counted) goes; one already
      // notified has its wake-up queued, which finds nothing to do.
      if (existing && existing->armed && existing->waiting_on->remove_waiter(*existing))
        existing->armed = false;
      return true;
    }
    if (existing && existing->armed) return false;  // woken when that fence signals
    if (!existing) {
      job_cold* cold = block.try_make_cold();
      if (cold) cold->gate.reset(new (std::nothrow) causal_gate(block));
      existing = block.gate();
      if (!existing) return true;  // out of memory: the signal cannot wait
    }
    auto& gate = *existing;
    assert(!waiter_list::linked(gate) && "a causal gate armed while its waiter is linked");
    gate.notify = &on_gate_signal;
    gate.waiting_on = pending;
    gate.armed = true;
    if (pending->add_waiter(gate)) return false;
    gate.armed = false;  // it signalled meanwhile: look again
  }
}

void engine::count_deadline(std::chrono::nanoseconds deadline) noexcept {
  // relaxed: independent counters (see statistics()).
  if (now() > deadline)
    deadline_misses_.fetch_add(1, std::memory_order_relaxed);
  else
    deadlines_met_.fetch_add(1, std::memory_order_relaxed);
}

namespace {

// A signalled job lets go of the fences its signal waited for (every one has
// signalled by then: a wake-up still queued finds the job signalled).
void release_gate_fences(causal_gate& gate) noexcept {
  gate.body = fence();
  for (std::uint32_t i = 0; i < gate.pipelined_count; ++i) {
    auto& watch = gate.pipelined[i];
    if (watch.watched.valid() && watch.watched.state()->remove_waiter(watch)) watch.armed = false;
    watch.watched = fence();
  }
}

}  // namespace

void engine::signal_job(job_block& block) noexcept {
  if (const causal_gate* gate = block.gate(); gate && gate->completed) take_pipelined_outcome(block);
  block.phase = job_phase::signalled;
  COSCHED_PROBE3(job_signal, block.finished.point.context, block.finished.point.seqno,
                 block.finished.error_value);
  if (const auto deadline = block.deadline()) count_deadline(*deadline);
  // relaxed: only this thread sets scheduled_reached.
  if (!(block.scheduled_word.load(std::memory_order_relaxed) & job_block::scheduled_reached))
    reach_scheduled(block, true);
  block.finished.signal_recorded();
  // The entity's timeline follows at the end of the batch (publish_reached):
  // one atomic update for every job signalled in between, not one per job.
  auto& entity = entity_record::of(block);
  entity.reached_pending = block.finished.point.seqno;
  if (!entity.reached_dirty) {
    entity.reached_dirty = true;
    reached_dirty_.push_back(&entity);  // capacity reserved at registration
  }
  if (cosched::scope* joined = block.in_scope()) joined->leave();
  // The fences the signal waited for (declared dependencies, the body's) go
  // now: a signalled job holds no other job's block, so that a long chain of
  // dependent jobs is not destroyed recursively, one stack frame per job, when
  // its last reference goes.
  block.release_declared();
  if (causal_gate* gate = block.gate()) release_gate_fences(*gate);
  if (block.local_nodes)
    block.release_deferred = true;
  else
    block.release();
}

// The job's scheduled moment: its command first ran (unrun false), or it was
// decided without running (unrun true: the scheduled fence takes the finished
// fence's outcome, recorded before). Signals the scheduled fence if somebody
// asked for it already; a later request finds the flags.
void engine::reach_scheduled(job_block& block, bool unrun) noexcept {
  // acq_rel: publishes the recorded outcome to a later request, and acquires a
  // requested fence's block.
  const std::uintptr_t old = block.scheduled_word.fetch_or(
      job_block::scheduled_reached | (unrun ? job_block::scheduled_unrun : 0), std::memory_order_acq_rel);
  if (auto* requested = job_block::scheduled_block(old)) block.signal_scheduled(requested->state, unrun);
}

fence scheduler_core::scheduled_fence(const fence& finished) {
  if (!finished.valid()) return {};
  ref_block* owner = finished.state()->owner;
  if (owner->type != block_kind::job || finished.state() != &static_cast<job_block*>(owner)->finished)
    throw std::invalid_argument(
        "cosched: scheduled() needs the finished fence push returned, not another fence");
  auto& block = *static_cast<job_block*>(owner);
  // acquire: pairs with reach_scheduled (the outcome) and with another
  // request's installation (the fence's block).
  std::uintptr_t word = block.scheduled_word.load(std::memory_order_acquire);
  for (;;) {
    if (auto* made = job_block::scheduled_block(word)) {
      made->add_ref();  // the job block's reference keeps it alive meanwhile
      return fence::adopt(&made->state);
    }
    const fence_point point = block.finished.point;
    auto* made =
        new single_fence_block(fence_point{job_block::scheduled_context_of(point.context), point.seqno});
    made->refs.store(2, std::memory_order_relaxed);  // the job block's and the caller's
    if (word & job_block::scheduled_reached)
      block.signal_scheduled(made->state, (word & job_block::scheduled_unrun) != 0);
    // acq_rel: publishes the new block; on failure, acquires the current word.
    if (block.scheduled_word.compare_exchange_strong(word, word | reinterpret_cast<std::uintptr_t>(made),
                                                     std::memory_order_acq_rel, std::memory_order_acquire))
      return fence::adopt(&made->state);
    delete made;
  }
}

// Advances the timelines of the entities whose jobs signalled since the last
// call. Called before the pass hands control back (so that `reached` never
// lags a finished fence across passes) and before the scheduler lets go of an
// entity.
void engine::publish_reached() noexcept {
  // Index loop: advancing a timeline wakes waiters, which only enqueue nodes.
  for (std::size_t i = 0; i < reached_dirty_.size(); ++i) {
    entity_record& entity = *reached_dirty_[i];
    entity.reached_dirty = false;
    entity.reached.advance(entity.reached_pending);
  }
  reached_dirty_.clear();
}

}  // namespace cosched::detail
