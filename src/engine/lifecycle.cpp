// The engine's own life and its entities': construction, entity creation,
// registration and collection, scope stops, and shutdown.
#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <typeinfo>

#include "cosched/error.hpp"
#include "cosched/uring_context.hpp"
#include "engine/engine.hpp"
#include "engine/steady_timers.hpp"
#include "logging.hpp"

namespace cosched::detail {

namespace {

std::vector<std::unique_ptr<ring_slot>> slots_of(std::vector<std::unique_ptr<ring_adapter>> shared) {
  std::vector<std::unique_ptr<ring_slot>> slots;
  slots.reserve(shared.size());
  for (auto& ring : shared) slots.push_back(std::make_unique<ring_slot>(std::move(ring), slots.size()));
  return slots;
}

std::vector<ring_slot*> pointers_to(const std::vector<std::unique_ptr<ring_slot>>& slots) {
  std::vector<ring_slot*> pointers;
  pointers.reserve(slots.size());
  for (const auto& slot : slots) pointers.push_back(slot.get());
  return pointers;
}

}  // namespace

// ------------------------------------------------------------------ the engine

scheduler_core* scheduler_core::create(asio::any_io_executor executor,
                                       std::vector<std::unique_ptr<ring_adapter>> shared,
                                       const core_options& options) {
  if (options.credit_limit == 0) throw std::invalid_argument("cosched: credit_limit must be at least 1");
  if (options.timeout.count() < 0) throw std::invalid_argument("cosched: timeout must not be negative");
  const bool has_rings = !shared.empty();
  if ((options.mode == ring_mode::shared_ring) != has_rings)
    throw std::invalid_argument(
        options.mode == ring_mode::shared_ring
            ? "cosched: shared_ring mode needs the shared ring"
            : "cosched: ring_per_entity mode takes each entity's ring at make_entity");
  if (std::any_of(shared.begin(), shared.end(), [](const auto& r) { return !r; }))
    throw std::invalid_argument("cosched: a shared ring is null");
  return new engine(std::move(executor), std::move(shared), options);
}

scheduler_core::scheduler_core(asio::any_io_executor executor, core_options options,
                               std::size_t ring_count) noexcept
    : executor_(std::move(executor)), options_(std::move(options)), ring_count_(ring_count) {}

engine::engine(asio::any_io_executor executor, std::vector<std::unique_ptr<ring_adapter>> shared,
               const core_options& options)
    : scheduler_core(std::move(executor), options, shared.size()),
      rings_(slots_of(std::move(shared))),
      queue_(options.policy, options.mode, options.credit_limit, pointers_to(rings_)) {
  if (options_.timers) {
    timers_ = options_.timers;
  } else if (executor_.target_type() == typeid(uring_context::executor_type)) {
    // asio::steady_timer needs an io_context; a uring_context has timers of its own.
    // (Asio 1.22's any_executor::target<T>() casts without checking the type,
    // so the type is compared first.)
    timers_ = &executor_.target<uring_context::executor_type>()->context().timers();
  } else {
    own_timers_ = std::make_unique<steady_timers>(executor_);
    timers_ = own_timers_.get();
  }
  epoch_ = timers_->now();
}

engine::~engine() = default;

scheduler_statistics engine::statistics() const noexcept {
  // relaxed: independent counters, a snapshot.
  return {deadline_misses_.load(std::memory_order_relaxed), deadlines_met_.load(std::memory_order_relaxed)};
}

// ------------------------------------------------------------------ entities

entity_state* engine::create_entity(priority p, std::string name, std::unique_ptr<ring_adapter> own_ring,
                                    std::vector<std::size_t> rings) {
  if (!rings.empty()) rings = checked_ring_set(std::move(rings), ring_count_, name);
  std::unique_ptr<ring_slot> slot;
  if (options_.mode == ring_mode::ring_per_entity) {
    if (!own_ring)
      throw std::invalid_argument("cosched: in ring_per_entity mode every entity needs its own ring");
    slot = std::make_unique<ring_slot>(std::move(own_ring), 0);  // its index is set at registration
  }
  auto* entity =
      new entity_record(this, options_.credit_limit, ring_count_, p, std::move(name), std::move(slot));
  if (entity->own_ring) entity->own_ring->set_owner(entity);
  // Taken at registration, as a later set_rings's set would be.
  entity->rings_requested = !rings.empty();
  entity->requested_rings = std::move(rings);
  try {
    std::lock_guard directory(directory_lock_);
    directory_.emplace(entity->finished_context,
                       entity);  // the caller's reference keeps it alive till enqueued
  } catch (...) {
    entity->release();
    throw;
  }
  bool born_dead = false;
  {
    std::lock_guard guard(entity->lock);
    // Created after shutdown: born dead, never registered.
    if (!enqueue_added(*entity)) {
      entity->become(entity_event::shutdown);
      born_dead = true;
    }
  }
  if (born_dead) forget_entity(*entity);
  return entity;
}

void engine::forget_entity(entity_record& entity) noexcept {
  std::lock_guard directory(directory_lock_);
  directory_.erase(entity.finished_context);
}

std::optional<job_ref> engine::describe(fence_point point) const {
  std::lock_guard directory(directory_lock_);
  const auto found = directory_.find(point.context);
  if (found == directory_.end()) return std::nullopt;
  entity_record& entity = *found->second;
  {
    std::lock_guard guard(entity.lock);
    if (point.seqno < 1 || point.seqno > entity.last_seqno.load(std::memory_order_relaxed))
      return std::nullopt;
  }
  return job_ref{entity.name, entity.finished_context, point.seqno};
}

void engine::on_entity_added(entity_record& entity) noexcept {
  if (stage() == lifecycle::shut_down) {
    // Created just before shutdown finished: fail what it holds, let go of it
    // once none of its own nodes is queued any more.
    detach_entity(entity, true);
    release_after_shutdown(entity, nullptr);
    return;
  }
  register_entity(entity);
  if (stage() == lifecycle::shutting_down) {
    {
      std::lock_guard guard(entity.lock);
      entity.become(entity_event::shutdown);
    }
    take_mailbox(entity, mailbox_take::early);
    signal_in_order(entity);
  }
}

void engine::register_entity(entity_record& entity) noexcept {
  entity.registered = true;
  registered_.push_back(entity);
  ++registered_count_;
  // signal_job and note_collectable append to them without allocating (they
  // run where nothing may throw).
  reached_dirty_.reserve(registered_count_);
  collectable_.reserve(registered_count_);
  queue_.add(entity.queued, entity.own_ring.get());
  if (entity.own_ring) entity.own_ring->set_index(entity.queued.ordinal);
  // The rings given to make_entity, or those of a set_rings made since.
  std::vector<std::size_t> rings;
  bool requested;
  {
    std::lock_guard guard(entity.lock);
    requested = entity.take_requested_rings(rings);
  }
  if (requested) queue_.restrict_to(entity.queued, rings);
}

// The entity may be done (handle gone, no job left): it is checked once the
// current event has been handled (collect_finished_entities).
void engine::note_collectable(entity_record& entity) noexcept {
  if (!entity.registered || entity.collect_queued) return;
  entity.collect_queued = true;
  collectable_.push_back(&entity);  // capacity reserved at registration
}

void engine::collect_finished_entities() noexcept {
  // Index loop: collecting publishes timelines, whose waiters only enqueue nodes.
  for (std::size_t i = 0; i < collectable_.size(); ++i) {
    entity_record& entity = *collectable_[i];
    entity.collect_queued = false;
    collect_if_done(entity);
  }
  collectable_.clear();
}

// Lets go of an entity whose handle is gone and whose last job has signalled:
// it leaves the run queue and the registered list, and the scheduler's
// reference goes (in ring_per_entity mode its ring's slot goes with it).
void engine::collect_if_done(entity_record& entity) noexcept {
  if (!entity.registered || !entity.jobs.empty()) return;
  {
    std::lock_guard guard(entity.lock);
    if (entity.handle_alive || !entity.mailbox.empty() || entity.update_queued || entity.kill_queued ||
        entity.pushed_queued)
      return;
    entity.core = nullptr;
  }
  publish_reached();  // the list may name this entity
  entity.registered = false;
  registered_.erase(entity);
  --registered_count_;
  queue_.remove(entity.queued);
  // A timeout message still queued for its ring holds a reference to the
  // entity, and finds the timeout disarmed.
  if (entity.own_ring) disarm_timeout(*entity.own_ring);
  forget_entity(entity);
  entity.release();
}

void engine::release_after_shutdown(entity_record& entity, work_node* processed) noexcept {
  publish_reached();  // the list may name this entity
  bool release;
  {
    std::lock_guard guard(entity.lock);
    if (processed == &entity.update_node) entity.update_queued = false;
    if (processed == &entity.kill_node) entity.kill_queued = false;
    // The scheduler's reference goes only when no node of the entity is queued,
    // or the queue would hold a dangling node.
    if (!processed) entity.release_when_idle = true;
    release =
        entity.release_when_idle && !entity.update_queued && !entity.kill_queued && !entity.pushed_queued;
    if (release) entity.release_when_idle = false;
  }
  if (release) {
    forget_entity(entity);
    entity.release();
  }
}

// ------------------------------------------------------------------ scopes

void engine::stop_scope(std::uint64_t scope_id) {
  auto* msg = new message(message::type::stop_scope);
  msg->scope_id = scope_id;
  enqueue(*msg);
}

// ------------------------------------------------------------------ flush

void engine::flush_entity(entity_state& entity, std::chrono::nanoseconds bound,
                          const fence& drained) noexcept {
  auto* msg = new (std::nothrow) message(message::type::flush);
  if (!msg) return;  // out of memory: no kill at the bound; the fence still signals
  msg->bound = bound;
  msg->drained = drained;
  entity.add_ref();  // the message's own reference (released with it)
  msg->slot_owner = &entity;
  enqueue(*msg);
}

// ------------------------------------------------------------------ shutdown

fence engine::shutdown(std::chrono::nanoseconds bound) {
  auto* msg = new message(message::type::shutdown);
  msg->bound = bound;
  msg->done.emplace(fence_point{new_context(), 1});
  auto result = msg->done->get_fence();
  enqueue(*msg);
  return result;
}

void engine::begin_shutdown(std::chrono::nanoseconds bound) noexcept {
  if (stage() != lifecycle::running) return;
  // release: pairs with the acquire in enqueue_added (entity creation).
  lifecycle_.store(lifecycle::shutting_down, std::memory_order_release);
  const auto ec = make_error_code(errc::shutdown);
  std::size_t unrun = 0;
  for (entity_record& entity : registered_) {
    {
      std::lock_guard guard(entity.lock);
      entity.become(entity_event::shutdown);
    }
    // The jobs taken from the mailbox now are decided as they are adopted
    // (shutdown has begun); the others that had not run, by fail_unrun.
    take_mailbox(entity, mailbox_take::early);
    for (const job_block& block : entity.jobs)
      if (block.phase == job_phase::decided && block.attempts == 0 && block.finished.error() == ec) ++unrun;
    unrun += fail_unrun(entity, ec, std::nullopt, nullptr, 0);
  }
  if (unrun != 0)
    log_line(spdlog::level::info,
             "cosched::scheduler: shutdown failed {} {} that had not run with `shutdown`", unrun,
             plural(unrun, "job", "jobs"));
  for (entity_record& entity : registered_) signal_in_order(entity);
  // What the bound waits for: commands on the rings, and signals held back
  // by fence causality.
  bool in_flight = false;
  for_each_ring([&in_flight](const ring_slot& slot) { in_flight = in_flight || !slot.idle(); });
  for (auto it = registered_.begin(); it != registered_.end() && !in_flight; ++it)
    in_flight = !it->jobs.empty();
  if (!in_flight || bound.count() <= 0) {
    cancel_in_flight_for_shutdown();
    return;  // the pass finishes shutdown once every job has signalled
  }
  shutdown_timer_armed_ = true;
  shutdown_timer_ = timers_->start(bound, [core = (add_ref(), core_ref(this))] {
    // Not under this function's noexcept: the callback runs later, from the
    // timers, and std::bad_alloc leaves it to whoever runs them.
    // NOLINTNEXTLINE(bugprone-unhandled-exception-at-new): see above
    auto* msg = new message(message::type::shutdown_deadline);
    core->enqueue(*msg);
  });
}

// The shutdown bound passed (or was zero): the rings are cancelled and their
// commands fail `shutdown`.
void engine::cancel_in_flight_for_shutdown() noexcept {
  const auto ec = make_error_code(errc::shutdown);
  std::vector<entity_record*> touched;
  std::size_t rings = 0;
  for_each_ring([&](ring_slot& slot) {
    disarm_timeout(slot);
    if (slot.idle()) return;
    ++rings;
    slot.cancel_all();
    while (job_block* block = slot.front()) {
      // A hardware wake-up already queued finds the job decided and is dropped.
      if (block->on_ring.hardware.valid()) block->on_ring.hardware.state()->remove_waiter(block->waiter());
      leave_ring(*block, nullptr);  // the hardware fence goes
      decide(*block, ec, std::nullopt);
      touched.push_back(&entity_record::of(*block));
    }
  });
  if (!touched.empty())
    log_line(spdlog::level::warn,
             "cosched::scheduler: shutdown cancelled {} {} in flight on {} {}: the jobs fail `shutdown`",
             touched.size(), plural(touched.size(), "command", "commands"), rings,
             plural(rings, "ring", "rings"));
  for (auto* entity : touched) signal_in_order(*entity);
  // Signals held back by fences from outside the scheduler go now.
  external_gates_released_ = true;
  for (entity_record& entity : registered_) signal_in_order(entity);
}

void engine::finish_shutdown_if_done() noexcept {
  if (stage() != lifecycle::shutting_down) return;
  bool in_flight = false;
  for_each_ring([&in_flight](const ring_slot& slot) { in_flight = in_flight || !slot.idle(); });
  if (in_flight) return;
  for (const entity_record& entity : registered_) {
    if (!entity.jobs.empty()) return;
  }
  finish_shutdown();
}

void engine::finish_shutdown() noexcept {
  if (shutdown_timer_armed_) {
    shutdown_timer_armed_ = false;
    timers_->cancel(shutdown_timer_);
  }
  for_each_ring([this](ring_slot& slot) { disarm_timeout(slot); });
  // Detach every entity: from here on a push fails at once on its own thread.
  // Jobs that arrived since the last drain are taken and failed in order first.
  for (entity_record& entity : registered_) detach_entity(entity, false);
  // release: pairs with is_shut_down()'s acquire and enqueue_added's.
  lifecycle_.store(lifecycle::shut_down, std::memory_order_release);
  for (entity_record& entity : registered_) signal_in_order(entity);
  // No node can be enqueued for a detached entity any more; drop the ones that
  // are queued (stale wake-ups release their references when processed).
  while (work_node* node = next_node()) dispatch(*node);
  publish_reached();
  for (entity_record* entity : collectable_) entity->collect_queued = false;
  collectable_.clear();  // every registered entity is let go of here
  registered_.unlink_each([this](entity_record& entity) noexcept {
    entity.registered = false;
    queue_.remove(entity.queued);
    forget_entity(entity);
    entity.release();
  });
  registered_count_ = 0;
  auto waiters = std::move(shutdown_waiters_);
  for (auto& waiter : waiters) waiter.set_value();
}

}  // namespace cosched::detail
