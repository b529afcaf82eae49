// What the engine does when a ring stops making progress, and the backend's own
// recovery through a pause: ring timeouts, the one reset-and-replay path both
// use, and pausing. Each of these is logged at warn (cosched/log.hpp) and
// fires a probe (probes.hpp).
#include <chrono>
#include <mutex>

#include <asio/post.hpp>

#include "cosched/error.hpp"
#include "engine/engine.hpp"
#include "logging.hpp"
#include "probes.hpp"

namespace cosched::detail {

namespace {

// Keeps an entity alive in a timer callback (copyable, as std::function needs).
class entity_ref {
 public:
  explicit entity_ref(entity_state* entity) noexcept : entity_(entity) {
    if (entity_) entity_->add_ref();
  }
  entity_ref(const entity_ref& other) noexcept : entity_ref(other.entity_) {}
  entity_ref& operator=(const entity_ref&) = delete;
  ~entity_ref() {
    if (entity_) entity_->release();
  }
  entity_state* get() const noexcept { return entity_; }

 private:
  entity_state* entity_;
};

// What becomes of an in-flight command at a ring reset, once the engine has
// stopped waiting for its hardware fence.
enum class at_reset : std::uint8_t {
  replay,         // its fence had not signalled
  retire_queued,  // it had signalled and its waiter was notified: the completion is queued
  retire,         // it signalled after the waiter was removed: nothing is queued for it
};

// A timeout as the log shows it, in milliseconds.
double milliseconds(std::chrono::nanoseconds d) noexcept {
  return std::chrono::duration<double, std::milli>(d).count();
}

at_reset stop_watching_hardware(job_block& block) noexcept {
  const fence& hardware = block.on_ring.hardware;
  if (!hardware.state()->remove_waiter(block.waiter())) return at_reset::retire_queued;
  return hardware.signalled() ? at_reset::retire : at_reset::replay;
}

}  // namespace

// ------------------------------------------------------------------ timeouts

void engine::start_timeout(ring_slot& slot) noexcept {
  slot.arm_timeout(*timers_, options_.timeout, [this, &slot](std::uint64_t generation) {
    add_ref();
    // The callback may run on any thread: it only hands a message to the pass.
    return [core = core_ref(this), owner = entity_ref(slot.owner()), target = &slot, generation] {
      // Not under start_timeout's noexcept: the timers call this later, and
      // std::bad_alloc leaves it to whoever runs them.
      // NOLINTNEXTLINE(bugprone-unhandled-exception-at-new): see above
      auto* msg = new message(message::type::timeout);
      msg->slot = target;
      msg->generation = generation;
      if (entity_state* entity = owner.get()) {
        entity->add_ref();  // the message's own reference (released with it)
        msg->slot_owner = entity;
      }
      core->enqueue(*msg);
    };
  });
}

void engine::on_timeout(ring_slot& slot, std::uint64_t generation) noexcept {
  if (!slot.take_timeout(generation)) return;  // stale: the ring moved on since
  job_block* front = slot.front();
  if (!front) return;
  if (front->on_ring.hardware.signalled()) {
    retire(*front);  // it finished; its wake-up is still queued
    return;
  }
  const timeout_verdict verdict = slot.on_timeout(*front->promise);
  const fence_point point = front->finished.point;
  COSCHED_PROBE4(job_timeout, point.context, point.seqno, slot.index(), static_cast<int>(verdict));
  const bool progressing = verdict == timeout_verdict::progressing;
  log_line(
      spdlog::level::warn,
      "cosched::scheduler: ring {} timed out after {:g} ms on job {} of entity '{}': the ring reports it {}",
      slot.index(), milliseconds(options_.timeout), point.seqno, entity_record::of(*front).name,
      progressing ? "progressing; the timeout is extended" : "hung; the ring is reset");
  if (progressing) {
    arm_timeout(slot);  // a false timeout: extend
    return;
  }
  recover_from_hang(slot, *front);
}

// ------------------------------------------------------------------ recovery after a hang

// `guilty`, at the front of `slot`, hung: its entity is banned, the ring reset,
// the innocent commands replayed (shared_ring) or the ring closed (ring_per_entity).
void engine::recover_from_hang(ring_slot& slot, job_block& guilty) noexcept {
  entity_record& guilty_entity = entity_record::of(guilty);
  const fence_point guilty_point = guilty.finished.point;
  bool banned_now;
  {
    std::lock_guard guard(guilty_entity.lock);
    banned_now = guilty_entity.become(entity_event::ban, guilty_point);
  }
  if (banned_now) {
    COSCHED_PROBE3(entity_ban, guilty_point.context, guilty_point.seqno, slot.index());
    log_line(
        spdlog::level::warn,
        "cosched::scheduler: entity '{}' is banned: its job {} hung ring {}; its other jobs fail `cancelled`",
        guilty_entity.name, guilty_point.seqno, slot.index());
  }
  // relaxed: independent snapshots for readers of the status.
  guilty_entity.reset_status.store(reset_kind::guilty, std::memory_order_relaxed);
  guilty_entity.resets.fetch_add(1, std::memory_order_relaxed);

  std::vector<entity_record*> touched{&guilty_entity};
  reset_ring_and_replay(slot, &guilty, touched);
  // Every other job of the guilty entity fails too (those still in its
  // mailbox included: they were pushed before the ban took effect), and so
  // will later pushes.
  take_mailbox(guilty_entity, mailbox_take::early);
  fail_unrun(guilty_entity, make_error_code(errc::cancelled), guilty_point, nullptr, 0);
  if (options_.mode == ring_mode::ring_per_entity) slot.close();
  for (auto* entity : touched) signal_in_order(*entity);
  // Watch the replayed commands; the timeout restarts now for the front one.
  const std::vector<job_block*> replayed = slot.in_flight();
  if (!slot.idle()) arm_timeout(slot);
  for (auto* block : replayed) {
    if (block->phase == job_phase::running) watch_hardware(*block);
  }
}

// ------------------------------------------------------------------ the one reset-and-replay path

// Resets `slot` and replays its innocent commands in order with their original
// fences (attempts + 1). Two callers:
// - a hang (`guilty` set; recover_from_hang): commands whose hardware fence had
//   signalled before the reset retire now as completed; `guilty` fails
//   `timed_out`; the other commands of its entity, and in ring_per_entity mode
//   every command of the ring, fail `cancelled` (cause: the guilty job); the
//   replayed commands are watched by the caller once every decision has been
//   signalled. The entities touched are appended to `touched`.
// - the backend's recovery during a pause (`guilty` null; reset_and_replay):
//   nothing retires during a pause, so commands that had finished retire after
//   it through their completion (queued here if none is); the replayed ones
//   are watched at once, without retiring.
void engine::reset_ring_and_replay(ring_slot& slot, job_block* guilty,
                                   std::vector<entity_record*>& touched) noexcept {
  const bool hang = guilty != nullptr;
  // No hardware fence from before the reset is waited for any more. (A
  // completion already queued finds its job decided, or its attempt old, and
  // is dropped.)
  std::vector<std::pair<job_block*, at_reset>> on_ring;
  for (job_block* block : slot.in_flight()) on_ring.emplace_back(block, stop_watching_hardware(*block));
  slot.reset();
  // Policy fair: the commands that finished, and the guilty one, used the ring
  // until now; the others are charged again from their replay.
  lazy_now reset_at = clock();
  const entity_record* guilty_entity = hang ? &entity_record::of(*guilty) : nullptr;
  const std::optional<fence_point> guilty_point =
      hang ? std::optional<fence_point>(guilty->finished.point) : std::nullopt;
  const bool close_ring = hang && options_.mode == ring_mode::ring_per_entity;
  std::size_t replayed = 0, cancelled = 0, completed = 0;
  for (auto [block, next] : on_ring) {
    entity_record& owner = entity_record::of(*block);
    if (block == guilty) {
      leave_ring(*block, &reset_at);
      decide(*block, make_error_code(errc::timed_out), std::nullopt);
    } else if (next != at_reset::replay) {
      ++completed;
      if (!hang) {
        // Armed for this attempt by watch_hardware.
        if (next == at_reset::retire) enqueue_job_node(*block, block->wake_node());
        continue;
      }
      const std::error_code ec = block->on_ring.hardware.error();
      COSCHED_PROBE4(job_hw_done, block->finished.point.context, block->finished.point.seqno, slot.index(),
                     ec.value());
      leave_ring(*block, &reset_at);
      decide(*block, ec, std::nullopt);
    } else if (hang && (&owner == guilty_entity || close_ring)) {
      ++cancelled;
      leave_ring(*block, nullptr);
      decide(*block, make_error_code(errc::cancelled), guilty_point);
    } else {
      ++replayed;
      replay(*block, slot, reset_at);
      if (!hang) watch_hardware(*block, false);
    }
    if (hang) touched.push_back(&owner);
  }
  queue_.ring_reset(slot, reset_at);
  COSCHED_PROBE4(ring_reset, slot.index(), replayed, cancelled, hang ? 1 : 0);
  log_line(spdlog::level::warn,
           "cosched::scheduler: ring {} reset {}: commands replayed: {}, cancelled: {}, completed before the "
           "reset: {}{}",
           slot.index(), hang ? "after a hang" : "by the backend's recovery", replayed, cancelled, completed,
           close_ring ? "; the ring is closed" : "");
}

// An innocent command runs again after a reset, with its original fences.
void engine::replay(job_block& block, ring_slot& slot, lazy_now& reset_at) noexcept {
  queue_.replayed(block, reset_at);
  ++block.attempts;
  COSCHED_PROBE4(job_run, block.finished.point.context, block.finished.point.seqno, slot.index(),
                 block.attempts);
  std::exception_ptr thrown;
  fence& hardware = block.on_ring.hardware;
  hardware = slot.replay(*block.promise, thrown);
  if (thrown) report_exception(block, thrown, job_exception::origin::ring, hardware.error());
  auto& owner = entity_record::of(block);
  // relaxed: independent snapshots for readers of the status.
  if (owner.reset_status.load(std::memory_order_relaxed) != reset_kind::guilty)
    owner.reset_status.store(reset_kind::innocent, std::memory_order_relaxed);
  owner.resets.fetch_add(1, std::memory_order_relaxed);
}

// ------------------------------------------------------------------ pause

void engine::request_pause(std::function<void()> granted) {
  auto* msg = new message(message::type::pause);
  msg->granted = std::move(granted);
  enqueue(*msg);
}

void engine::resume() noexcept {
  // seq_cst: see pauses_.
  pauses_.store(0, std::memory_order_seq_cst);
  // Whatever arrived during the pause waits in the queues: process it, and
  // restart the timeouts of the rings that have work.
  add_ref();
  asio::post(executor_, [core = core_ref(this)] {
    engine& self = of(*core.get());
    self.for_each_ring([&self](ring_slot& slot) {
      if (!slot.idle() && self.stage() == lifecycle::running) self.arm_timeout(slot);
    });
    self.run_pass();
  });
}

void engine::visit_in_flight(const std::function<void(const in_flight_view&)>& visit) const {
  for_each_ring([&visit](const ring_slot& slot) {
    for (job_block* block = slot.front(); block; block = ring_job_list::next(*block))
      visit(in_flight_view{*block->promise, block->attempts, block->finished.point.seqno, block->entity->name,
                           slot.index()});
  });
}

void engine::reset_and_replay() noexcept {
  std::vector<entity_record*> unused;
  for_each_ring([this, &unused](ring_slot& slot) {
    if (!slot.idle()) reset_ring_and_replay(slot, nullptr, unused);
  });
}

}  // namespace cosched::detail
