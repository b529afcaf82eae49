// The scheduler engine: takes pushed jobs from entity mailboxes, prepares them
// (runs their coroutines), selects what runs, and retires in one place.
#include "cosched/detail/scheduler_core.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <typeinfo>
#include <unordered_map>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include "cosched/error.hpp"
#include "cosched/job.hpp"
#include "cosched/scope.hpp"
#include "cosched/uring_context.hpp"

namespace cosched::detail {

namespace {

// The core whose pass is running on this thread: wake-ups it causes for itself
// go straight to its local queue instead of through the inbox.
thread_local scheduler_core* current_core = nullptr;

struct work_list {
  work_node* head = nullptr;
  work_node* tail = nullptr;
};

void list_push(work_node*& head, work_node*& tail, work_node& node) noexcept {
  node.next = nullptr;
  if (tail) tail->next = &node; else head = &node;
  tail = &node;
}

}  // namespace

[[noreturn]] void fatal(const char* what) noexcept {
  std::fprintf(stderr, "cosched: fatal programming error: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

// ------------------------------------------------------------------ messages

struct scheduler_core::message : work_node {
  enum class type : std::uint8_t { shutdown, shutdown_deadline, stop_scope, timeout, pause };
  explicit message(type t) : work_node(kind::message, nullptr), what_message(t) {}
  type what_message;
  std::chrono::nanoseconds bound{0};
  std::uint64_t scope_id = 0;
  std::optional<promise> done;
  ring_slot* slot = nullptr;
  std::uint64_t generation = 0;
  std::function<void()> granted;
};

namespace {

// The default timer service: steady timers on the scheduler's executor.
class steady_timers final : public timer_service {
 public:
  explicit steady_timers(asio::any_io_executor executor) : executor_(std::move(executor)) {}
  timer_id start(duration delay, std::function<void()> fn) override {
    prune();
    const timer_id id = next_++;
    auto timer = std::make_unique<asio::steady_timer>(executor_, delay);
    timer->async_wait([fn = std::move(fn)](std::error_code ec) {
      if (!ec) fn();
    });
    timers_.emplace(id, std::move(timer));
    return id;
  }
  void cancel(timer_id id) noexcept override {
    auto it = timers_.find(id);
    if (it == timers_.end()) return;
    it->second->cancel();
    timers_.erase(it);
  }

 private:
  // Fired timers stay in the map until the next start; drop the expired ones.
  void prune() {
    const auto now = asio::steady_timer::clock_type::now();
    for (auto it = timers_.begin(); it != timers_.end();) {
      if (it->second->expiry() < now) it = timers_.erase(it); else ++it;
    }
  }
  asio::any_io_executor executor_;
  timer_id next_ = 1;
  std::unordered_map<timer_id, std::unique_ptr<asio::steady_timer>> timers_;
};

}  // namespace

// ------------------------------------------------------------------ entity state

entity_state::entity_state(std::uint32_t limit, priority p, std::string entity_name)
    : finished_context(new_contexts(2)),  // and the scheduled one after it (job_block::scheduled_context_of)
      credit_limit(limit),
      name(std::move(entity_name)),
      prio(p),
      reached(finished_context) {}

// ------------------------------------------------------------------ creation

scheduler_core* scheduler_core::create(asio::any_io_executor executor,
                                       std::vector<std::unique_ptr<ring_adapter>> shared,
                                       core_options options) {
  if (options.credit_limit == 0) throw std::invalid_argument("cosched: credit_limit must be at least 1");
  if (options.timeout.count() < 0) throw std::invalid_argument("cosched: timeout must not be negative");
  const bool has_rings = !shared.empty();
  if ((options.mode == ring_mode::shared_ring) != has_rings)
    throw std::invalid_argument(options.mode == ring_mode::shared_ring
                                    ? "cosched: shared_ring mode needs the shared ring"
                                    : "cosched: ring_per_entity mode takes each entity's ring at make_entity");
  if (std::any_of(shared.begin(), shared.end(), [](const auto& r) { return !r; }))
    throw std::invalid_argument("cosched: a shared ring is null");
  return new scheduler_core(std::move(executor), std::move(shared), options);
}

scheduler_core::scheduler_core(asio::any_io_executor executor,
                               std::vector<std::unique_ptr<ring_adapter>> shared, core_options options)
    : executor_(std::move(executor)), options_(options) {
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
  for (auto& hardware : shared) {
    rings_.push_back(std::make_unique<ring_slot>());
    rings_.back()->ring = std::move(hardware);
    rings_.back()->index = rings_.size() - 1;
  }
  ring_count_ = rings_.size();
  blocked_.assign(ring_count_, 0);
  epoch_ = timers_->now();
}

scheduler_statistics scheduler_core::statistics() const noexcept {
  // relaxed: independent counters, a snapshot.
  return {deadline_misses_.load(std::memory_order_relaxed), deadlines_met_.load(std::memory_order_relaxed)};
}

scheduler_core::~scheduler_core() = default;

void scheduler_core::release() noexcept {
  // acq_rel: the last releaser must see every write made through other references.
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
}

entity_state* scheduler_core::create_entity(priority p, std::string name, std::unique_ptr<ring_adapter> own_ring) {
  if (options_.mode == ring_mode::ring_per_entity && !own_ring)
    throw std::invalid_argument("cosched: in ring_per_entity mode every entity needs its own ring");
  auto* entity = new entity_state(options_.credit_limit, p, std::move(name));
  entity->own_ring = std::move(own_ring);
  std::lock_guard guard(entity->lock);
  if (current_core == this) {
    if (lifecycle_.load(std::memory_order_relaxed) != lifecycle::shut_down) {
      entity->core = this;
      entity->add_ref();  // the scheduler's reference, released when it lets go of the entity
      list_push(local_head_, local_tail_, entity->added_node);
      return entity;
    }
  } else {
    // Checked under the inbox lock: finish_shutdown marks the scheduler shut
    // down, then drains the inbox under this lock, so a node queued here before
    // that is processed and a creation after it sees the scheduler shut down.
    std::unique_lock inbox(inbox_lock_);
    if (lifecycle_.load(std::memory_order_acquire) != lifecycle::shut_down) {
      entity->core = this;
      entity->add_ref();
      list_push(inbox_head_, inbox_tail_, entity->added_node);
      inbox.unlock();
      request_pass();
      return entity;
    }
  }
  // Created after shutdown: born dead, never registered.
  entity->status = entity_status::shut_down;
  entity->dead_error = make_error_code(errc::shutdown);
  return entity;
}

// ------------------------------------------------------------------ wake-ups

void scheduler_core::enqueue(work_node& node) noexcept {
  if (current_core == this) {
    list_push(local_head_, local_tail_, node);
    return;
  }
  {
    std::lock_guard guard(inbox_lock_);
    list_push(inbox_head_, inbox_tail_, node);
  }
  request_pass();
}

void scheduler_core::request_pass() noexcept {
  // acq_rel: only the caller that flips the flag posts; the pass clears it
  // before reading the inbox, so no enqueued node is left without a pass.
  if (pass_requested_.exchange(true, std::memory_order_acq_rel)) return;
  add_ref();
  asio::post(executor_, [core = core_ref(this)] { core->run_pass(); });
}

void scheduler_core::enqueue_job_node(job_block& block, work_node& node) noexcept {
  if (current_core == this) {
    // The executor's own thread: signalling defers the release instead (no atomics).
    node.holds_ref = false;
    ++block.local_nodes;
    list_push(local_head_, local_tail_, node);
    return;
  }
  block.add_ref();  // the node may outlive every other reference until processed
  node.holds_ref = true;
  {
    std::lock_guard guard(inbox_lock_);
    list_push(inbox_head_, inbox_tail_, node);
  }
  request_pass();
}

// `held_ref`: the node's holds_ref as it was when the node was taken from its
// queue. Processing may arm a new wait (the job's body awaits its next
// dependency), after which another thread can queue the same node again and
// rewrite the flag.
void scheduler_core::finish_job_node(job_block& block, bool held_ref) noexcept {
  if (held_ref) {
    block.release();
    return;
  }
  if (--block.local_nodes == 0 && block.release_deferred) block.release();
}

// The job's waiter was notified: its dependency or its hardware fence signalled
// (wake_node says which).
void on_job_signal(fence_waiter& waiter, fence_state&) noexcept {
  auto& block = *static_cast<job_block*>(waiter.owner);
  block.core->enqueue_job_node(block, block.wake_node);
}

bool job_wait_begin(job_promise_base& promise, const fence_state& awaited, bool yields_error) noexcept {
  auto& block = *promise.block;
  block.arm_wait(work_node::kind::dependency_wake, &on_job_signal);
  block.awaited_yields_error = yields_error;
  block.awaited = &awaited;
  if (awaited.add_waiter(block.waiter)) return true;
  block.awaited = nullptr;
  return false;
}

void job_wait_abandon(job_promise_base& promise) noexcept {
  auto& block = *promise.block;
  if (!block.awaited) return;
  // If the wake-up is already queued, processing it finds the job decided.
  block.awaited->remove_waiter(block.waiter);
  block.awaited = nullptr;
}

// ------------------------------------------------------------------ push

void scheduler_core::push(entity_state& entity, std::span<push_request> requests, scope* in_scope,
                          push_result* results) {
  // Blocks are made outside the lock; seqnos are assigned inside it. A single
  // push (the common case) needs no heap buffer for them.
  job_block* inline_blocks[8];
  std::vector<job_block*> heap_blocks;
  if (requests.size() > std::size(inline_blocks)) heap_blocks.resize(requests.size());
  const std::span<job_block*> blocks =
      heap_blocks.empty() ? std::span<job_block*>(inline_blocks, requests.size()) : std::span<job_block*>(heap_blocks);
  std::size_t made = 0;
  try {
    for (auto& request : requests) {
      auto* block = new job_block(fence_point{entity.finished_context, 0});
      block->refs.store(2, std::memory_order_relaxed);  // scheduler + the returned finished fence
      block->frame = request.frame;
      block->promise = request.promise;
      block->credits = request.credits;
      if (request.deadline) {
        block->has_deadline = true;
        block->deadline = *request.deadline;
      }
      blocks[made++] = block;
    }
  } catch (...) {
    for (std::size_t i = 0; i < made; ++i) delete blocks[i];
    throw;
  }
  for (std::size_t i = 0; i < blocks.size(); ++i) requests[i].promise->block = blocks[i];

  std::unique_lock guard(entity.lock);
  scheduler_core* core = entity.core;
  if (!core) {
    // The scheduler is gone: nothing can run the jobs or order them any more.
    std::uint64_t last = 0;
    for (auto* block : blocks) block->finished.point.seqno = last = ++entity.last_seqno;
    const auto ec = entity.dead_error ? entity.dead_error : make_error_code(errc::shutdown);
    const auto cause = entity.dead_cause;
    guard.unlock();
    for (std::size_t i = 0; i < blocks.size(); ++i) {
      auto* block = blocks[i];
      block->frame.destroy();
      // Not shared yet: nobody can have asked for the scheduled fence.
      block->scheduled_word.store(job_block::scheduled_reached | job_block::scheduled_unrun,
                                  std::memory_order_relaxed);
      block->finished.signal(ec, cause);
      results[i].finished = fence::adopt(&block->finished);
      block->release();
    }
    entity.reached.advance(last);
    return;
  }

  for (std::size_t i = 0; i < blocks.size(); ++i) {
    auto* block = blocks[i];
    block->finished.point.seqno = ++entity.last_seqno;
    // relaxed: the order between entities only has to be a total order; the
    // entity lock orders pushes of one entity.
    block->push_order = core->push_counter_.fetch_add(1, std::memory_order_relaxed);
    block->entity = &entity;
    block->core = core;
    if (entity.status != entity_status::open) {
      block->dead_on_arrival = true;
      block->finished.record(entity.dead_error, entity.dead_cause);
    } else if (in_scope) {
      if (in_scope->enter(core)) {
        block->in_scope = in_scope;
        block->scope_id = in_scope->id();
      } else {
        block->dead_on_arrival = true;
        block->finished.record(make_error_code(errc::cancelled), std::nullopt);
      }
    }
    block->entity_next = nullptr;
    if (entity.mailbox_tail) entity.mailbox_tail->entity_next = block; else entity.mailbox_head = block;
    entity.mailbox_tail = block;
    results[i].finished = fence::adopt(&block->finished);
  }
  // One wake-up per batch, and none while the entity's node is already queued.
  if (!entity.push_queued) {
    entity.push_queued = true;
    core->enqueue(entity.push_node);
  }
}

void scheduler_core::close(entity_state& entity) noexcept {
  std::lock_guard guard(entity.lock);
  if (entity.status == entity_status::open) {
    entity.status = entity_status::closed;
    entity.dead_error = make_error_code(errc::cancelled);
  }
}

void scheduler_core::kill(entity_state& entity) noexcept {
  std::lock_guard guard(entity.lock);
  if (entity.status != entity_status::open && entity.status != entity_status::closed) return;
  if (!entity.core) {
    entity.status = entity_status::killed;
    entity.dead_error = make_error_code(errc::killed);
    entity.dead_cause.reset();
    return;
  }
  // The kill takes effect in order with the scheduler's other events (a
  // timeout's ban queued before it wins); pushes until then reach the mailbox,
  // which the kill takes and fails.
  if (!entity.kill_queued) {
    entity.kill_queued = true;
    entity.core->enqueue(entity.kill_node);
  }
}

void scheduler_core::set_priority(entity_state& entity, priority p) noexcept {
  // relaxed: the pass requested below orders the change with selection.
  entity.prio.store(p, std::memory_order_relaxed);
  std::lock_guard guard(entity.lock);
  if (entity.core) entity.core->request_pass();
}

void scheduler_core::release_handle(entity_state& entity) noexcept {
  {
    std::lock_guard guard(entity.lock);
    if (entity.status == entity_status::open) {
      entity.status = entity_status::closed;
      entity.dead_error = make_error_code(errc::cancelled);
    }
    entity.handle_alive = false;
    // Let the scheduler notice that it may let go of the entity.
    if (entity.core && !entity.push_queued) {
      entity.push_queued = true;
      entity.core->enqueue(entity.push_node);
    }
  }
  entity.release();
}

fence scheduler_core::drain(entity_state& entity) {
  std::uint64_t last;
  {
    std::lock_guard guard(entity.lock);
    last = entity.last_seqno;
  }
  return entity.reached.at(last);
}

// ------------------------------------------------------------------ shutdown and scopes

fence scheduler_core::shutdown(std::chrono::nanoseconds bound) {
  auto* msg = new message(message::type::shutdown);
  msg->bound = bound;
  msg->done.emplace(fence_point{new_context(), 1});
  auto result = msg->done->get_fence();
  enqueue(*msg);
  return result;
}

void scheduler_core::stop_scope(std::uint64_t scope_id) {
  auto* msg = new message(message::type::stop_scope);
  msg->scope_id = scope_id;
  enqueue(*msg);
}

// ------------------------------------------------------------------ the pass

void scheduler_core::run_pass() noexcept {
  // acquire/release: a concurrent entry means the executor runs handlers of one
  // scheduler in parallel, which the design forbids (use a strand).
  if (in_pass_.exchange(true, std::memory_order_acquire)) {
    fatal("a scheduler's handlers ran concurrently: if several threads run its executor, "
          "the scheduler must be bound to a strand");
  }
  scheduler_core* outer = std::exchange(current_core, this);
  // acq_rel: clear before draining, so a node enqueued after the drain requests a new pass.
  pass_requested_.store(false, std::memory_order_seq_cst);
  last_incoming_phase_ = -1;

  // While paused nothing is processed: the nodes wait in their queues.
  while (pauses_.load(std::memory_order_seq_cst) == 0) {
    work_node* node = next_node();
    if (!node) {
      // Timelines first: their waiters may be jobs of this pass.
      flush_reached();
      if (local_head_) continue;
      if (lifecycle_.load(std::memory_order_relaxed) != lifecycle::running) break;
      select();
      flush_reached();
      if (!local_head_) break;
      continue;
    }
    process(*node);
    if (lifecycle_.load(std::memory_order_relaxed) == lifecycle::shutting_down) maybe_finish_shutdown();
  }

  flush_reached();  // a pause or a shutdown left the loop early
  current_core = outer;
  in_pass_.store(false, std::memory_order_release);
}

namespace {

// The phase of an event, in the order DESIGN.md gives for one instant; -1 for
// nodes that are not batched.
int phase_of(const work_node& node) noexcept {
  switch (node.what) {
    case work_node::kind::hardware_done: return 0;
    case work_node::kind::message: return -1;  // see scheduler_core::phase_of_message
    case work_node::kind::entity_killed: return 2;
    case work_node::kind::entity_pushed: return 3;
    default: return -1;
  }
}

}  // namespace

int scheduler_core::incoming_phase(const work_node& node) noexcept {
  if (node.what == work_node::kind::message &&
      static_cast<const message&>(node).what_message == message::type::timeout)
    return 1;
  return phase_of(node);
}

work_node* scheduler_core::next_node() noexcept {
  auto pop = [](work_node*& head, work_node*& tail) -> work_node* {
    work_node* node = head;
    if (!node) return nullptr;
    head = node->next;
    if (!head) tail = nullptr;
    node->next = nullptr;
    return node;
  };
  if (!incoming_head_) {
    std::lock_guard guard(inbox_lock_);
    incoming_head_ = std::exchange(inbox_head_, nullptr);
    incoming_tail_ = std::exchange(inbox_tail_, nullptr);
  }
  // The rest of a batch of one phase goes before the batch's consequences.
  if (incoming_head_ && (!local_head_ || (last_incoming_phase_ >= 0 &&
                                          incoming_phase(*incoming_head_) == last_incoming_phase_))) {
    work_node* node = pop(incoming_head_, incoming_tail_);
    last_incoming_phase_ = incoming_phase(*node);
    return node;
  }
  if (work_node* node = pop(local_head_, local_tail_)) {
    last_incoming_phase_ = -1;  // a batch ends with its consequences
    return node;
  }
  return nullptr;
}

void scheduler_core::process(work_node& node) noexcept {
  const bool down = lifecycle_.load(std::memory_order_relaxed) == lifecycle::shut_down;
  switch (node.what) {
    case work_node::kind::dependency_wake: {
      auto& block = *static_cast<job_block*>(node.owner);
      const bool held_ref = node.holds_ref;  // before resuming (see finish_job_node)
      // Valid only while the job is still suspended on it (see job_block::awaited).
      const fence_state* awaited = std::exchange(block.awaited, nullptr);
      if (block.phase == job_phase::preparing && awaited) {
        if (awaited->error && !block.awaited_yields_error) {
          record_dependency_failure(*block.promise, *awaited);
          after_resume(block);
        } else {
          resume_job(block);
        }
      }
      finish_job_node(block, held_ref);
      return;
    }
    case work_node::kind::hardware_done: {
      auto& block = *static_cast<job_block*>(node.owner);
      const bool held_ref = node.holds_ref;
      // Tagged with the attempt: a completion from before a reset is ignored.
      if (block.phase == job_phase::running && block.hardware.valid() &&
          block.wake_attempt == block.attempts)
        retire(block);
      finish_job_node(block, held_ref);
      return;
    }
    case work_node::kind::entity_added: {
      auto& entity = *static_cast<entity_state*>(node.owner);
      if (down) {
        // Created just before shutdown finished: fail what it holds, let go of it
        // once none of its own nodes is queued any more.
        job_block* taken;
        {
          std::lock_guard guard(entity.lock);
          shut_status(entity);
          entity.core = nullptr;
          taken = std::exchange(entity.mailbox_head, nullptr);
          entity.mailbox_tail = nullptr;
        }
        while (taken) {
          job_block* next = std::exchange(taken->entity_next, nullptr);
          append_job(entity, *taken);
          taken = next;
        }
        advance(entity);
        release_detached(entity, nullptr);
        return;
      }
      entity.registered = true;
      entities_.push_back(&entity);
      reached_dirty_.reserve(entities_.size());
      if (options_.mode == ring_mode::shared_ring) {
        // Placed for real when it is first selected (select_shared); shared
        // rings keep no entity list.
        entity.ring = rings_.front().get();
      } else {
        rings_.push_back(std::make_unique<ring_slot>());
        rings_.back()->ring = std::move(entity.own_ring);
        rings_.back()->index = rings_.size() - 1;
        entity.ring = rings_.back().get();
        entity.ring->entities.push_back(&entity);
      }
      if (lifecycle_.load(std::memory_order_relaxed) == lifecycle::shutting_down) {
        {
          std::lock_guard guard(entity.lock);
          shut_status(entity);
        }
        take_mailbox(entity, false);
        advance(entity);
      }
      return;
    }
    case work_node::kind::entity_pushed: {
      auto& entity = *static_cast<entity_state*>(node.owner);
      if (down) {
        release_detached(entity, &node);
        return;
      }
      take_mailbox(entity, true);
      advance(entity);
      maybe_collect(entity);
      return;
    }
    case work_node::kind::entity_killed: {
      auto& entity = *static_cast<entity_state*>(node.owner);
      if (down) {
        release_detached(entity, &node);
        return;
      }
      bool killed_now = false;
      {
        std::lock_guard guard(entity.lock);
        entity.kill_queued = false;
        if (entity.status == entity_status::open || entity.status == entity_status::closed) {
          entity.status = entity_status::killed;
          entity.dead_error = make_error_code(errc::killed);
          entity.dead_cause.reset();
          killed_now = true;
        }
      }
      // Jobs pushed before the kill took effect are in the mailbox: they fail too.
      take_mailbox(entity, false);
      if (killed_now) fail_unrun(entity, make_error_code(errc::killed), std::nullopt, nullptr, 0);
      advance(entity);
      maybe_collect(entity);
      return;
    }
    case work_node::kind::message: {
      std::unique_ptr<message> msg(static_cast<message*>(&node));
      switch (msg->what_message) {
        case message::type::shutdown:
          if (down) {
            msg->done->set_value();
            return;
          }
          shutdown_waiters_.push_back(std::move(*msg->done));
          begin_shutdown(msg->bound);
          return;
        case message::type::shutdown_deadline:
          if (lifecycle_.load(std::memory_order_relaxed) == lifecycle::shutting_down) cancel_in_flight();
          return;
        case message::type::timeout:
          if (lifecycle_.load(std::memory_order_relaxed) == lifecycle::running)
            on_timeout(*msg->slot, msg->generation);
          return;
        case message::type::pause:
          // Timeouts stop with the scheduler (as drm_sched_stop does) and
          // restart from the resume.
          for (auto& slot : rings_) disarm_timeout(*slot);
          pauses_.store(1, std::memory_order_seq_cst);
          msg->granted();
          return;
        case message::type::stop_scope:
          if (down) return;
          for (auto* entity : entities_) {
            take_mailbox(*entity, false);
            fail_unrun(
                *entity, make_error_code(errc::cancelled), std::nullopt,
                [](const job_block& b, std::uint64_t id) { return b.in_scope && b.scope_id == id; }, msg->scope_id);
          }
          for (auto* entity : entities_) advance(*entity);
          return;
      }
      return;
    }
  }
}

void scheduler_core::take_mailbox(entity_state& entity, bool processing_push_node) noexcept {
  job_block* taken;
  bool dead;
  std::error_code dead_error;
  std::optional<fence_point> dead_cause;
  {
    std::lock_guard guard(entity.lock);
    taken = std::exchange(entity.mailbox_head, nullptr);
    entity.mailbox_tail = nullptr;
    // Only the processing of push_node may say it is no longer queued: a kill,
    // a scope stop or shutdown taking the mailbox early leaves the node queued,
    // and a push must not queue it a second time.
    if (processing_push_node) entity.push_queued = false;
    dead = entity.status != entity_status::open && entity.status != entity_status::closed;
    dead_error = entity.dead_error;
    dead_cause = entity.dead_cause;
  }
  while (taken) {
    job_block* next = std::exchange(taken->entity_next, nullptr);
    // Taken after the entity died (a kill or ban took effect first): the job
    // fails with the entity's reason, without being started.
    if (dead && !taken->dead_on_arrival) {
      taken->dead_on_arrival = true;
      taken->finished.record(dead_error, dead_cause);
    }
    append_job(entity, *taken);
    taken = next;
  }
}

void scheduler_core::append_job(entity_state& entity, job_block& block) noexcept {
  if (entity.jobs_tail) entity.jobs_tail->entity_next = &block; else entity.jobs_head = &block;
  entity.jobs_tail = &block;
  if (block.dead_on_arrival) {
    decide(block, block.finished.error, block.finished.recorded_cause());
    return;
  }
  if (lifecycle_.load(std::memory_order_relaxed) != lifecycle::running) {
    decide(block, make_error_code(errc::shutdown), std::nullopt);
    return;
  }
  start_job(block);
}

void scheduler_core::start_job(job_block& block) noexcept {
  block.phase = job_phase::preparing;
  auto& entity = *block.entity;
  if (!entity.next_to_run) entity.next_to_run = &block;
  resume_job(block);
}

void scheduler_core::resume_job(job_block& block) noexcept {
  block.frame.resume();
  after_resume(block);
}

void scheduler_core::after_resume(job_block& block) noexcept {
  auto& promise = *block.promise;
  switch (promise.state) {
    case job_promise_base::outcome::pending:
      return;  // suspended on a dependency
    case job_promise_base::outcome::prepared:
      block.command = promise.command;
      block.phase = job_phase::prepared;
      return;
    case job_promise_base::outcome::failed:
      decide(block, block.finished.error, block.finished.recorded_cause());
      advance(*block.entity);
      return;
  }
}

void scheduler_core::normalize_next(entity_state& entity) noexcept {
  job_block* next = entity.next_to_run;
  while (next && next->phase != job_phase::preparing && next->phase != job_phase::prepared) {
    next = next->entity_next;
  }
  entity.next_to_run = next;
}

void scheduler_core::decide(job_block& block, std::error_code ec,
                            std::optional<fence_point> cause) noexcept {
  // Destroy first (frame, command, awaiter), then record; signalling follows in
  // entity order (advance), so nothing of the job is alive when its fence signals.
  if (block.frame) {
    block.frame.destroy();
    block.frame = nullptr;
  }
  block.command = nullptr;
  block.finished.record(ec, cause);
  block.phase = job_phase::decided;
  auto& entity = *block.entity;
  if (entity.next_to_run == &block) normalize_next(entity);
}

void scheduler_core::fail_unrun(entity_state& entity, std::error_code ec,
                                std::optional<fence_point> cause,
                                bool (*filter)(const job_block&, std::uint64_t),
                                std::uint64_t arg) noexcept {
  // Decide every matching job first, then signal (the caller advances): jobs of
  // one decision do not see each other's failure as a dependency failure.
  for (job_block* block = entity.jobs_head; block; block = block->entity_next) {
    if (block->phase != job_phase::preparing && block->phase != job_phase::prepared) continue;
    if (filter && !filter(*block, arg)) continue;
    decide(*block, ec, cause);
  }
}

void scheduler_core::advance(entity_state& entity) noexcept {
  while (entity.jobs_head && entity.jobs_head->phase == job_phase::decided) {
    job_block* block = entity.jobs_head;
    entity.jobs_head = block->entity_next;
    if (!entity.jobs_head) entity.jobs_tail = nullptr;
    block->entity_next = nullptr;
    signal_job(*block);
  }
}

void scheduler_core::count_deadline(const job_block& block) noexcept {
  // relaxed: independent counters (see statistics()).
  if (now() > block.deadline)
    deadline_misses_.fetch_add(1, std::memory_order_relaxed);
  else
    deadlines_met_.fetch_add(1, std::memory_order_relaxed);
}

void scheduler_core::signal_job(job_block& block) noexcept {
  block.phase = job_phase::signalled;
  if (block.has_deadline) count_deadline(block);
  // relaxed: only this thread sets scheduled_reached.
  if (!(block.scheduled_word.load(std::memory_order_relaxed) & job_block::scheduled_reached))
    reach_scheduled(block, true);
  block.finished.signal_recorded();
  // The entity's timeline follows at the end of the batch (flush_reached): one
  // atomic update for every job signalled in between, not one per job.
  auto& entity = *block.entity;
  entity.reached_pending = block.finished.point.seqno;
  if (!entity.reached_dirty) {
    entity.reached_dirty = true;
    reached_dirty_.push_back(&entity);
  }
  if (block.in_scope) block.in_scope->leave();
  if (block.local_nodes) block.release_deferred = true;
  else block.release();
}

// The job's scheduled moment: its command first ran (unrun false), or it was
// decided without running (unrun true: the scheduled fence takes the finished
// fence's outcome, recorded before). Signals the scheduled fence if somebody
// asked for it already; a later request finds the flags.
void scheduler_core::reach_scheduled(job_block& block, bool unrun) noexcept {
  // acq_rel: publishes the recorded outcome to a later request, and acquires a
  // requested fence's block.
  const std::uintptr_t old = block.scheduled_word.fetch_or(
      job_block::scheduled_reached | (unrun ? job_block::scheduled_unrun : 0), std::memory_order_acq_rel);
  if (auto* requested = job_block::scheduled_block(old)) block.signal_scheduled(requested->state, unrun);
}

fence scheduler_core::scheduled_fence(const fence& finished) {
  if (!finished.valid()) return {};
  ref_block* owner = finished.state()->owner;
  if (owner->destroy != &job_block::destroy_block || finished.state() != &static_cast<job_block*>(owner)->finished)
    throw std::invalid_argument("cosched: scheduled() needs the finished fence push returned, not another fence");
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
    auto* made = new single_fence_block(fence_point{job_block::scheduled_context_of(point.context), point.seqno});
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
// flush. Called before the pass hands control back (so that `reached` never
// lags a finished fence across passes) and before the scheduler lets go of an
// entity.
void scheduler_core::flush_reached() noexcept {
  // Index loop: advancing a timeline wakes waiters, which only enqueue nodes.
  for (std::size_t i = 0; i < reached_dirty_.size(); ++i) {
    entity_state& entity = *reached_dirty_[i];
    entity.reached_dirty = false;
    entity.reached.advance(entity.reached_pending);
  }
  reached_dirty_.clear();
}

// ------------------------------------------------------------------ selection and running

namespace {

// Policy fair: an entity's ring time is charged multiplied by 8 / weight, the
// weights being kernel 8, high 4, normal 2, low 1 (powers of two: exact).
std::uint64_t fair_multiplier(priority p) noexcept {
  switch (p) {
    case priority::kernel:
      return 1;
    case priority::high:
      return 2;
    case priority::normal:
      return 4;
    case priority::low:
      return 8;
  }
  return 8;
}

// Weighted times saturate instead of wrapping (ring times near 2^64 ns / 8 only
// come from absurd inputs, which must still not reorder everything).
constexpr std::uint64_t saturated = std::numeric_limits<std::uint64_t>::max();
std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) noexcept {
  return a > saturated - b ? saturated : a + b;
}
std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) noexcept {
  return b != 0 && a > saturated / b ? saturated : a * b;
}

}  // namespace

void scheduler_core::select() noexcept {
  if (options_.mode == ring_mode::shared_ring) {
    select_shared();
    return;
  }
  for (auto& slot : rings_) {
    if (!slot->closed) select(*slot);
  }
}

// Whether ready head `a` (of priority pa) goes before ready head `b` (of pb)
// under the scheduler's policy. Push orders are unique, so this is a strict
// total order: ties end at push order (jobs pushed at one instant count in
// push-call order), and never reach entity creation order.
bool scheduler_core::goes_before(const job_block& a, priority pa, const job_block& b,
                                 priority pb) const noexcept {
  switch (options_.policy) {
    case scheduling_policy::fifo:
      break;
    case scheduling_policy::rr:
      // Within a priority, the entity whose latest run is the oldest (never
      // served counts as oldest): every ready entity runs one command per round.
      if (pa == pb && a.entity->last_served != b.entity->last_served)
        return a.entity->last_served < b.entity->last_served;
      break;
    case scheduling_policy::deadline:
      // Within a priority, the earliest deadline; heads without one come after
      // every head with one.
      if (pa == pb && a.has_deadline != b.has_deadline) return a.has_deadline;
      if (pa == pb && a.has_deadline && a.deadline != b.deadline) return a.deadline < b.deadline;
      break;
    case scheduling_policy::fair: {
      // Weights replace strict priority: the least weighted ring time goes first.
      const std::uint64_t ta = fair_time(*a.entity), tb = fair_time(*b.entity);
      if (ta != tb) return ta < tb;
      return a.push_order < b.push_order;
    }
  }
  if (pa != pb) return pa < pb;
  return a.push_order < b.push_order;
}

// Policy fair: an entity's virtual time is the weighted ring time of its
// commands that left the ring, plus, for each command in flight (whose ring
// time is known only when it finishes), an estimate: the entity's latest
// measured ring time; before it has one, the mean of the ring times measured
// on the scheduler (1 ns before any; a mean, not the latest, so that commands
// finishing at one instant give the same estimate in any order). Estimates are
// taken at each comparison, so a measurement corrects the commands still in
// flight at once.
std::uint64_t scheduler_core::fair_time(const entity_state& entity) const noexcept {
  if (entity.in_flight == 0) return entity.virtual_time;
  const std::uint64_t estimate = entity.ring_time_estimate ? entity.ring_time_estimate
                                 : measured_count_
                                     ? std::max<std::uint64_t>(measured_total_ / measured_count_, 1)
                                     : 1;
  // relaxed: see entity_state::prio.
  const std::uint64_t multiplier = fair_multiplier(entity.prio.load(std::memory_order_relaxed));
  return saturating_add(entity.virtual_time,
                        saturating_mul(saturating_mul(estimate, multiplier), entity.in_flight));
}

// Policy fair, at every selection step: an entity that is active (a ready head,
// or commands on a ring) and was not at the previous step rejoins at no less
// than the floor, so time spent idle (or waiting for dependencies) is not
// credited to it as a burst; the floor then rises to the least virtual time of
// the active entities (it never decreases).
void scheduler_core::refresh_fair() noexcept {
  std::uint64_t least = saturated;
  bool any_active = false;
  for (auto* entity : entities_) {
    normalize_next(*entity);
    const bool ready = entity->next_to_run && entity->next_to_run->phase == job_phase::prepared;
    const bool active = ready || entity->in_flight > 0;
    if (active && !entity->fair_active) entity->virtual_time = std::max(entity->virtual_time, fair_floor_);
    entity->fair_active = active;
    if (active) {
      any_active = true;
      least = std::min(least, fair_time(*entity));
    }
  }
  if (any_active) fair_floor_ = std::max(fair_floor_, least);
}

// Policy fair, when a command leaves the ring having run (finished, or decided
// by a reset after it finished or hung; called before it is unlinked): its ring
// time is the time from when it could start (its run, or the end of the ring's
// previous command, whichever is later) to now.
void scheduler_core::charge_ring_time(job_block& block, std::chrono::nanoseconds at) noexcept {
  auto& slot = *block.ring;
  auto& entity = *block.entity;
  const auto start = std::max(block.run_at, slot.last_finish);
  const auto ring_time = static_cast<std::uint64_t>(at > start ? (at - start).count() : 0);
  slot.last_finish = std::max(slot.last_finish, at);
  entity.ring_time_estimate = std::max<std::uint64_t>(ring_time, 1);
  measured_total_ = saturating_add(measured_total_, ring_time);
  ++measured_count_;
  // relaxed: see entity_state::prio.
  const std::uint64_t multiplier = fair_multiplier(entity.prio.load(std::memory_order_relaxed));
  entity.virtual_time = saturating_add(entity.virtual_time, saturating_mul(ring_time, multiplier));
}

namespace {
constexpr auto any_entity = [](const entity_state&) { return true; };
}

template <class Eligible>
job_block* scheduler_core::best_ready(const std::vector<entity_state*>& among, Eligible eligible) noexcept {
  job_block* best = nullptr;
  priority best_priority = priority::low;
  for (auto* entity : among) {
    normalize_next(*entity);
    job_block* head = entity->next_to_run;
    if (!head || head->phase != job_phase::prepared || !eligible(*entity)) continue;
    // relaxed: see entity_state::prio.
    const priority p = entity->prio.load(std::memory_order_relaxed);
    if (!best || goes_before(*head, p, *best, best_priority)) {
      best = head;
      best_priority = p;
    }
  }
  return best;
}

void scheduler_core::select(ring_slot& slot) noexcept {
  while (slot.credits_in_flight < options_.credit_limit) {
    job_block* best = best_ready(slot.entities, any_entity);
    // The best ready head waits for credits; nothing is run past it.
    if (!best || best->credits > options_.credit_limit - slot.credits_in_flight) return;
    run_job(*best, slot);
  }
}

// Shared rings. Each step takes the ready heads in policy order. A head whose
// entity has commands in flight goes to that entity's ring (its commands stay
// in order on one ring); any other head goes to the least loaded ring (fewest
// credits in flight; ties: the lowest index) among the rings not blocked. The
// first head that a ring gets either runs (and the step ends) or, when it does
// not fit the ring's free credits, blocks the ring: nothing else runs on it
// until credits free up (the best head waits rather than being skipped). With
// one ring this is DESIGN.md's fifo selection exactly.
void scheduler_core::select_shared() noexcept {
  if (ring_count_ == 1) {
    // One ring: every head targets it and the best one either runs or waits
    // for credits (the steps below, without placement).
    ring_slot& slot = *rings_.front();
    for (;;) {
      if (options_.policy == scheduling_policy::fair) refresh_fair();
      job_block* best = best_ready(entities_, any_entity);
      if (!best || best->credits > options_.credit_limit - slot.credits_in_flight) return;
      run_job(*best, slot);
    }
  }
  for (;;) {
    if (options_.policy == scheduling_policy::fair) refresh_fair();
    std::fill(blocked_.begin(), blocked_.end(), static_cast<unsigned char>(0));
    for (;;) {
      ring_slot* least_loaded = nullptr;
      for (auto& slot : rings_) {
        if (blocked_[slot->index]) continue;
        if (!least_loaded || slot->credits_in_flight < least_loaded->credits_in_flight)
          least_loaded = slot.get();
      }
      if (!least_loaded) return;  // every ring waits for credits
      auto target_of = [least_loaded](const entity_state& entity) {
        return entity.in_flight > 0 ? entity.ring : least_loaded;
      };
      job_block* best =
          best_ready(entities_, [&](const entity_state& entity) { return !blocked_[target_of(entity)->index]; });
      if (!best) return;
      ring_slot* best_ring = target_of(*best->entity);
      if (best->credits > options_.credit_limit - best_ring->credits_in_flight) {
        blocked_[best_ring->index] = 1;
        continue;
      }
      run_job(*best, *best_ring);
      break;  // credits, placements and policy state changed: a new step
    }
  }
}

void scheduler_core::run_job(job_block& block, ring_slot& slot) noexcept {
  auto& entity = *block.entity;
  block.phase = job_phase::running;
  ++block.attempts;
  entity.next_to_run = block.entity_next;
  normalize_next(entity);
  // Placement: an entity with nothing in flight may move to another shared ring.
  entity.ring = &slot;
  block.ring = &slot;
  ++entity.in_flight;
  entity.last_served = ++serve_counter_;
  // Policy fair: its ring time counts from here (or from the end of the
  // ring's previous command); until it finishes, fair_time() estimates it.
  if (options_.policy == scheduling_policy::fair) block.run_at = now();
  slot.credits_in_flight += block.credits;
  const bool ring_was_idle = slot.in_flight_head == nullptr;
  block.in_flight_prev = slot.in_flight_tail;
  block.in_flight_next = nullptr;
  if (slot.in_flight_tail) slot.in_flight_tail->in_flight_next = &block; else slot.in_flight_head = &block;
  slot.in_flight_tail = &block;

  try {
    block.hardware = slot.ring->run(block.command);
  } catch (const std::system_error& e) {
    block.hardware = fence::make_signalled(e.code());
  } catch (...) {
    block.hardware = fence::make_signalled(make_error_code(errc::exception));
  }
  if (!block.hardware.valid()) block.hardware = fence::make_signalled(make_error_code(errc::broken));
  if (block.attempts == 1) reach_scheduled(block, false);
  // The timeout counts from the moment the ring had something to do.
  if (ring_was_idle) arm_timeout(slot);
  watch_hardware(block);
}

void scheduler_core::watch_hardware(job_block& block, bool may_retire) noexcept {
  block.wake_attempt = block.attempts;
  // A hardware fence that has already signalled (work the "hardware" finished
  // at once) retires now, and selection goes on with the credits it frees,
  // without touching the block's wait fields; during a pause its retirement
  // waits in the queue.
  if (may_retire && block.hardware.signalled()) {
    retire(block);
    return;
  }
  block.arm_wait(work_node::kind::hardware_done, &on_job_signal);
  if (!block.hardware.signalled() && block.hardware.state()->add_waiter(block.waiter)) return;
  if (may_retire) retire(block);
  else enqueue_job_node(block, block.wake_node);
}

void scheduler_core::unlink_in_flight(job_block& block) noexcept {
  auto& slot = *block.ring;
  if (block.in_flight_prev) block.in_flight_prev->in_flight_next = block.in_flight_next;
  else slot.in_flight_head = block.in_flight_next;
  if (block.in_flight_next) block.in_flight_next->in_flight_prev = block.in_flight_prev;
  else slot.in_flight_tail = block.in_flight_prev;
  block.in_flight_prev = block.in_flight_next = nullptr;
  slot.credits_in_flight -= block.credits;
  --block.entity->in_flight;
}

void scheduler_core::retire(job_block& block) noexcept {
  auto& slot = *block.ring;
  const std::error_code ec = block.hardware.error();
  block.hardware = fence();
  const bool was_front = slot.in_flight_head == &block;
  if (options_.policy == scheduling_policy::fair) charge_ring_time(block, now());
  unlink_in_flight(block);
  decide(block, ec, std::nullopt);
  advance(*block.entity);
  // Progress: the timeout restarts for the command now at the front.
  if (was_front) {
    if (slot.in_flight_head) arm_timeout(slot); else disarm_timeout(slot);
  }
}

// ------------------------------------------------------------------ timeouts and recovery

void scheduler_core::arm_timeout(ring_slot& slot) noexcept {
  if (options_.timeout.count() == 0) return;
  disarm_timeout(slot);
  const std::uint64_t generation = ++slot.timer_generation;
  slot.timer_armed = true;
  slot.timer = timers_->start(options_.timeout, [core = (add_ref(), core_ref(this)), &slot, generation] {
    auto* msg = new message(message::type::timeout);
    msg->slot = &slot;
    msg->generation = generation;
    core->enqueue(*msg);
  });
}

void scheduler_core::disarm_timeout(ring_slot& slot) noexcept {
  if (!slot.timer_armed) return;
  slot.timer_armed = false;
  ++slot.timer_generation;  // a message already queued for it is stale
  timers_->cancel(slot.timer);
}

void scheduler_core::on_timeout(ring_slot& slot, std::uint64_t generation) noexcept {
  if (generation != slot.timer_generation || !slot.timer_armed) return;
  slot.timer_armed = false;
  job_block* front = slot.in_flight_head;
  if (!front) return;
  if (front->hardware.signalled()) {
    retire(*front);  // it finished; its wake-up is still queued
    return;
  }
  timeout_verdict verdict = timeout_verdict::hung;
  try {
    verdict = slot.ring->on_timeout(front->command);
  } catch (...) {
    verdict = timeout_verdict::hung;
  }
  if (verdict == timeout_verdict::progressing) {
    arm_timeout(slot);  // a false timeout: extend
    return;
  }
  recover(slot, *front);
}

namespace {

// What becomes of an in-flight command at a ring reset, once the scheduler has
// stopped waiting for its hardware fence.
enum class at_reset : std::uint8_t {
  replay,         // its fence had not signalled
  retire_queued,  // it had signalled and its waiter was notified: the completion is queued
  retire,         // it signalled after the waiter was removed: nothing is queued for it
};

at_reset stop_watching_hardware(job_block& block) noexcept {
  if (!block.hardware.state()->remove_waiter(block.waiter)) return at_reset::retire_queued;
  return block.hardware.signalled() ? at_reset::retire : at_reset::replay;
}

}  // namespace

void scheduler_core::recover(ring_slot& slot, job_block& guilty) noexcept {
  entity_state& guilty_entity = *guilty.entity;
  const fence_point guilty_point = guilty.finished.point;
  const auto cancelled = make_error_code(errc::cancelled);
  {
    std::lock_guard guard(guilty_entity.lock);
    if (guilty_entity.status == entity_status::open || guilty_entity.status == entity_status::closed) {
      guilty_entity.status = entity_status::banned;
      guilty_entity.dead_error = cancelled;
      guilty_entity.dead_cause = guilty_point;
    }
  }
  // relaxed: independent snapshots for readers of the status.
  guilty_entity.reset_status.store(reset_kind::guilty, std::memory_order_relaxed);
  guilty_entity.resets.fetch_add(1, std::memory_order_relaxed);

  // Which commands had finished before the reset (they retire normally); no
  // hardware fence from before the reset is waited for any more.
  // (A completion already queued finds its job decided and is dropped.)
  std::vector<std::pair<job_block*, bool>> on_ring;
  for (job_block* block = slot.in_flight_head; block; block = block->in_flight_next)
    on_ring.emplace_back(block, stop_watching_hardware(*block) != at_reset::replay);
  try {
    slot.ring->reset();
  } catch (...) {
    slot.ring->cancel_all();
  }
  // Policy fair: the commands that finished, and the guilty one, used the ring
  // until now; the others are charged again from their replay.
  const bool fair = options_.policy == scheduling_policy::fair;
  const auto reset_at = fair ? now() : std::chrono::nanoseconds(0);
  const bool close_ring = options_.mode == ring_mode::ring_per_entity;
  std::vector<entity_state*> touched{&guilty_entity};
  for (auto [block, finished] : on_ring) {
    entity_state& owner = *block->entity;
    if (finished && block != &guilty) {
      const std::error_code ec = block->hardware.error();
      block->hardware = fence();
      if (fair) charge_ring_time(*block, reset_at);
      unlink_in_flight(*block);
      decide(*block, ec, std::nullopt);
    } else if (block == &guilty) {
      block->hardware = fence();
      if (fair) charge_ring_time(*block, reset_at);
      unlink_in_flight(*block);
      decide(*block, make_error_code(errc::timed_out), std::nullopt);
    } else if (&owner == &guilty_entity || close_ring) {
      block->hardware = fence();
      unlink_in_flight(*block);
      decide(*block, cancelled, guilty_point);
    } else {
      // Innocent: replayed in order, with its original fences (attempts + 1).
      block->run_at = reset_at;
      ++block->attempts;
      try {
        block->hardware = slot.ring->replay(block->command);
      } catch (const std::system_error& e) {
        block->hardware = fence::make_signalled(e.code());
      } catch (...) {
        block->hardware = fence::make_signalled(make_error_code(errc::exception));
      }
      if (!block->hardware.valid()) block->hardware = fence::make_signalled(make_error_code(errc::broken));
      if (owner.reset_status.load(std::memory_order_relaxed) != reset_kind::guilty)
        owner.reset_status.store(reset_kind::innocent, std::memory_order_relaxed);
      owner.resets.fetch_add(1, std::memory_order_relaxed);
    }
    touched.push_back(&owner);
  }
  if (fair) slot.last_finish = std::max(slot.last_finish, reset_at);
  // Every other job of the guilty entity fails too (those still in its
  // mailbox included: they were pushed before the ban took effect), and so
  // will later pushes.
  take_mailbox(guilty_entity, false);
  fail_unrun(guilty_entity, cancelled, guilty_point, nullptr, 0);
  if (close_ring) slot.closed = true;
  for (auto* entity : touched) advance(*entity);
  // Watch the replayed commands; the timeout restarts now for the front one.
  std::vector<job_block*> replayed;
  for (job_block* block = slot.in_flight_head; block; block = block->in_flight_next) replayed.push_back(block);
  if (slot.in_flight_head) arm_timeout(slot);
  for (auto* block : replayed) {
    if (block->phase == job_phase::running) watch_hardware(*block);
  }
}

// ------------------------------------------------------------------ pause

void scheduler_core::request_pause(std::function<void()> granted) {
  auto* msg = new message(message::type::pause);
  msg->granted = std::move(granted);
  enqueue(*msg);
}

void scheduler_core::resume() noexcept {
  pauses_.store(0, std::memory_order_seq_cst);
  // Whatever arrived during the pause waits in the queues: process it, and
  // restart the timeouts of the rings that have work.
  add_ref();
  asio::post(executor_, [core = core_ref(this)] {
    for (auto& slot : core->rings_) {
      if (slot->in_flight_head && core->lifecycle_.load(std::memory_order_relaxed) == lifecycle::running)
        core->arm_timeout(*slot);
    }
    core->run_pass();
  });
}

void scheduler_core::visit_in_flight(
    const std::function<void(void* command, const job_block&, std::size_t ring)>& visit) const {
  for (std::size_t r = 0; r < rings_.size(); ++r) {
    for (job_block* block = rings_[r]->in_flight_head; block; block = block->in_flight_next)
      visit(block->command, *block, r);
  }
}

void scheduler_core::reset_and_replay() noexcept {
  for (auto& slot : rings_) {
    if (!slot->in_flight_head) continue;
    // A command whose hardware fence signalled before the reset retires after
    // the pause, through its queued completion (queued here if there is none).
    // The others are replayed.
    std::vector<std::pair<job_block*, at_reset>> on_ring;
    for (job_block* block = slot->in_flight_head; block; block = block->in_flight_next)
      on_ring.emplace_back(block, stop_watching_hardware(*block));
    try {
      slot->ring->reset();
    } catch (...) {
      slot->ring->cancel_all();
    }
    // Policy fair: replayed commands use the ring from now.
    const auto reset_at = options_.policy == scheduling_policy::fair ? now() : std::chrono::nanoseconds(0);
    slot->last_finish = std::max(slot->last_finish, reset_at);
    for (auto [block, next] : on_ring) {
      if (next == at_reset::retire_queued) continue;
      if (next == at_reset::retire) {
        enqueue_job_node(*block, block->wake_node);  // armed for this attempt by watch_hardware
        continue;
      }
      block->run_at = reset_at;
      ++block->attempts;
      try {
        block->hardware = slot->ring->replay(block->command);
      } catch (const std::system_error& e) {
        block->hardware = fence::make_signalled(e.code());
      } catch (...) {
        block->hardware = fence::make_signalled(make_error_code(errc::exception));
      }
      if (!block->hardware.valid()) block->hardware = fence::make_signalled(make_error_code(errc::broken));
      auto& owner = *block->entity;
      if (owner.reset_status.load(std::memory_order_relaxed) != reset_kind::guilty)
        owner.reset_status.store(reset_kind::innocent, std::memory_order_relaxed);
      owner.resets.fetch_add(1, std::memory_order_relaxed);
      watch_hardware(*block, false);
    }
  }
}

// ------------------------------------------------------------------ shutdown

void scheduler_core::shut_status(entity_state& entity) noexcept {
  if (entity.status == entity_status::open || entity.status == entity_status::closed) {
    entity.status = entity_status::shut_down;
    entity.dead_error = make_error_code(errc::shutdown);
    entity.dead_cause.reset();
  }
}

void scheduler_core::begin_shutdown(std::chrono::nanoseconds bound) noexcept {
  if (lifecycle_.load(std::memory_order_relaxed) != lifecycle::running) return;
  lifecycle_.store(lifecycle::shutting_down, std::memory_order_release);
  const auto ec = make_error_code(errc::shutdown);
  for (auto* entity : entities_) {
    {
      std::lock_guard guard(entity->lock);
      shut_status(*entity);
    }
    take_mailbox(*entity, false);
    fail_unrun(*entity, ec, std::nullopt, nullptr, 0);
  }
  for (auto* entity : entities_) advance(*entity);
  const bool in_flight =
      std::any_of(rings_.begin(), rings_.end(), [](const auto& slot) { return slot->in_flight_head != nullptr; });
  if (!in_flight || bound.count() <= 0) {
    cancel_in_flight();
    return;  // the pass finishes shutdown once every job has signalled
  }
  shutdown_timer_armed_ = true;
  shutdown_timer_ = timers_->start(bound, [core = (add_ref(), core_ref(this))] {
    auto* msg = new message(message::type::shutdown_deadline);
    core->enqueue(*msg);
  });
}

void scheduler_core::cancel_in_flight() noexcept {
  const auto ec = make_error_code(errc::shutdown);
  std::vector<entity_state*> touched;
  for (auto& slot : rings_) {
    disarm_timeout(*slot);
    if (!slot->in_flight_head) continue;
    slot->ring->cancel_all();
    while (job_block* block = slot->in_flight_head) {
      // A hardware wake-up already queued finds the job decided and is dropped.
      if (block->hardware.valid()) {
        block->hardware.state()->remove_waiter(block->waiter);
        block->hardware = fence();
      }
      unlink_in_flight(*block);
      decide(*block, ec, std::nullopt);
      touched.push_back(block->entity);
    }
  }
  for (auto* entity : touched) advance(*entity);
}

void scheduler_core::maybe_finish_shutdown() noexcept {
  if (lifecycle_.load(std::memory_order_relaxed) != lifecycle::shutting_down) return;
  for (const auto& slot : rings_) {
    if (slot->in_flight_head) return;
  }
  for (auto* entity : entities_) {
    if (entity->jobs_head) return;
  }
  finish_shutdown();
}

void scheduler_core::finish_shutdown() noexcept {
  if (shutdown_timer_armed_) {
    shutdown_timer_armed_ = false;
    timers_->cancel(shutdown_timer_);
  }
  for (auto& slot : rings_) disarm_timeout(*slot);
  // Detach every entity: from here on a push fails at once on its own thread.
  // Jobs that arrived since the last drain are taken and failed in order.
  for (auto* entity : entities_) {
    job_block* taken;
    {
      std::lock_guard guard(entity->lock);
      entity->core = nullptr;
      taken = std::exchange(entity->mailbox_head, nullptr);
      entity->mailbox_tail = nullptr;
    }
    while (taken) {
      job_block* next = std::exchange(taken->entity_next, nullptr);
      append_job(*entity, *taken);
      taken = next;
    }
  }
  lifecycle_.store(lifecycle::shut_down, std::memory_order_release);
  for (auto* entity : entities_) advance(*entity);
  // No node can be enqueued for a detached entity any more; drop the ones that
  // are queued (stale wake-ups release their references when processed).
  while (work_node* node = next_node()) process(*node);
  flush_reached();
  for (auto* entity : entities_) {
    entity->registered = false;
    entity->release();
  }
  entities_.clear();
  auto waiters = std::move(shutdown_waiters_);
  for (auto& waiter : waiters) waiter.set_value();
}

void scheduler_core::release_detached(entity_state& entity, work_node* processed) noexcept {
  flush_reached();  // the list may name this entity
  bool release;
  {
    std::lock_guard guard(entity.lock);
    if (processed == &entity.push_node) entity.push_queued = false;
    if (processed == &entity.kill_node) entity.kill_queued = false;
    // The scheduler's reference goes only when no node of the entity is queued,
    // or the queue would hold a dangling node.
    if (!processed) entity.release_when_idle = true;
    release = entity.release_when_idle && !entity.push_queued && !entity.kill_queued;
    if (release) entity.release_when_idle = false;
  }
  if (release) entity.release();
}

void scheduler_core::maybe_collect(entity_state& entity) noexcept {
  if (!entity.registered || entity.jobs_head) return;
  {
    std::lock_guard guard(entity.lock);
    if (entity.handle_alive || entity.mailbox_head || entity.push_queued || entity.kill_queued) return;
    entity.core = nullptr;
  }
  flush_reached();  // the list may name this entity
  entity.registered = false;
  std::erase(entities_, &entity);
  // Its ring slot stays (with the ring adapter) until shutdown: a timeout
  // message may still name it.
  std::erase(entity.ring->entities, &entity);
  entity.release();
}

}  // namespace cosched::detail
