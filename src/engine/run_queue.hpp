// The run queue: knows the competing entities and their ready heads and
// answers "what runs next, on which ring", placement across several rings and
// rings waiting for credits included. It never calls a ring. Each policy
// (policy_fifo.hpp, policy_rr.hpp, policy_deadline.hpp, fair_clock.hpp) only
// orders entries; the run queue keeps them in ordered sets so that a selection
// step costs O(log n) in the number of entities, not a scan.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "cosched/detail/scheduler_core.hpp"
#include "engine/fair_clock.hpp"
#include "engine/indexed_heap.hpp"
#include "engine/policy_deadline.hpp"
#include "engine/policy_fifo.hpp"
#include "engine/policy_rr.hpp"
#include "engine/queue_entry.hpp"
#include "engine/ring_slot.hpp"

namespace cosched::detail {

/// Orders entries of one candidate set: by their key, then their head's push order.
struct entry_order {
  bool operator()(const queue_entry& a, const queue_entry& b) const noexcept {
    if (a.key.rank != b.key.rank) return a.key.rank < b.key.rank;
    if (a.key.time != b.key.time) return a.key.time < b.key.time;
    if (a.key.tie != b.key.tie) return a.key.tie < b.key.tie;
    return a.key_push_order < b.key_push_order;
  }
};

/// Orders active entries of one fair group by their recorded virtual time.
struct active_order {
  bool operator()(const queue_entry& a, const queue_entry& b) const noexcept {
    return a.key.time < b.key.time;
  }
};

/// Orders ring_per_entity entries by registration (the order rings are served in).
struct registration_order {
  bool operator()(const queue_entry& a, const queue_entry& b) const noexcept { return a.ordinal < b.ordinal; }
};

/// The entries with a ready head that go to the same place (one ring, or the
/// least loaded ring of every ring or of one ring_set) and, under fair, have
/// the same group: ordered by key, which within one cell is their order under
/// the policy. Owned by the run queue (created on first use, kept until it
/// goes; a ring_set's until the set goes); the executor only.
struct queue_cell {
  ring_slot* placed_on = nullptr;     // the ring its heads go to; null: the least loaded ring of `allowed`
  const ring_set* allowed = nullptr;  // placed_on null: the rings its heads may go to (null: every ring)
  std::uint64_t group = 0;            // fair: the mean's coefficient of its entries
  indexed_heap<queue_entry, &queue_entry::cell_position, entry_order> heap;
  std::size_t nonempty_index = 0;  // its place in run_queue::nonempty_cells_ (while not empty)
};

/// Ring affinity (entity_options::rings, entity::set_rings): the shared rings
/// that the heads of some entries may be placed on, a proper subset of the
/// scheduler's rings (all of them is no restriction), with the cells of those
/// entries while they have nothing in flight. One per distinct subset in use:
/// created when a first entry is restricted to it, gone with its last entry.
/// Owned by the run queue; the executor only.
struct ring_set {
  std::vector<ring_slot*> rings;                   // by index, ascending
  std::vector<std::unique_ptr<queue_cell>> cells;  // by fair group, group 0 first
  std::size_t users = 0;                           // entries restricted to it
};

/// Policy fair: the active entries (a ready head or commands in flight) of one
/// group. Owned by the run queue like the cells; the executor only.
struct fair_group {
  std::uint64_t group = 0;
  indexed_heap<queue_entry, &queue_entry::group_position, active_order> heap;
  std::size_t nonempty_index = 0;  // its place in run_queue::nonempty_groups_ (while not empty)
};

/// What runs next: the head of `entry` on `ring`.
struct queue_choice {
  queue_entry* entry = nullptr;
  ring_slot* ring = nullptr;
  explicit operator bool() const noexcept { return entry != nullptr; }
};

/// The run queue of one scheduler.
///
/// The engine keeps each entry's head current and calls changed() after any
/// change of it or of the entity's priority; ran(), left_ring() and
/// cancelled_on_ring() report its commands' placement. Entries that changed
/// are re-keyed at the next selection step, so a step costs O(k log n) for k
/// changed entries, plus one comparison per non-empty candidate set (one per
/// ring and fair group in use), never a scan of the entities.
///
/// Selection (shared_ring), one step per next(): the heads are taken in the
/// policy's order. A head whose entity has commands in flight goes to the ring
/// they are on (its commands stay in order on one ring), whatever rings the
/// entity may use now; any other head is placed: it goes to the least loaded
/// of the rings its entity may use (restrict_to; default all), fewest credits
/// in flight, ties to the lowest index, among the rings not waiting for
/// credits, and is passed over in this step when every one of them waits. The
/// first head that a ring gets either runs, or, when it does not fit the
/// ring's free credits, makes the ring wait: nothing else runs on it until
/// credits free up (the best head waits rather than being skipped). With one
/// ring: the best head runs if it fits, else nothing runs.
///
/// Selection (ring_per_entity): entities do not compete; each ring is served
/// in registration order, running its entity's head while it fits.
///
/// @par Thread Safety
/// The scheduler's executor only.
///
/// @par Ownership
/// Borrows its entries (their entity records own them) and the shared rings.
///
/// @par Lifetime
/// Owned by the engine; the shared rings outlive it, and every entry is
/// removed before its entity record is destroyed.
class run_queue {
 public:
  /// `shared_rings`: the rings of shared_ring mode, by index (empty in
  /// ring_per_entity mode).
  run_queue(scheduling_policy policy, ring_mode mode, std::uint32_t credit_limit,
            std::span<ring_slot* const> shared_rings);
  ~run_queue();
  run_queue(const run_queue&) = delete;
  run_queue& operator=(const run_queue&) = delete;

  /// A registered entity starts competing. `own_ring`: its ring in
  /// ring_per_entity mode (null in shared_ring mode).
  void add(queue_entry& entry, ring_slot* own_ring);
  /// The scheduler lets go of the entity (no head, nothing in flight).
  void remove(queue_entry& entry) noexcept;
  /// shared_ring: from the entry's next placement on, its heads may go only to
  /// the rings `indices` (sorted, distinct, in range, at least one; all of
  /// them: no restriction). Its commands in flight keep their ring, and so does
  /// its next head while any is in flight. May come before add().
  void restrict_to(queue_entry& entry, std::span<const std::size_t> indices);
  /// The entry's head, or its entity's priority, changed (ignored before add:
  /// add re-reads the entry).
  void changed(queue_entry& entry) noexcept {
    if (entry.registered) mark_dirty(entry);
  }

  /// The entry's head `job` was run on `ring` (the engine moves the head on).
  void ran(queue_entry& entry, job_block& job, ring_slot& ring, lazy_now& now) noexcept {
    ++entry.in_flight;
    entry.ring = &ring;  // shared_ring placement (ring_per_entity: its own ring anyway)
    if (uses_fair_) fair_clock::started(job, now.get());
    if (policy_ == scheduling_policy::rr) rr_.served(entry);
    mark_dirty(entry);
  }
  /// `job` was replayed on its ring after a reset at `now`.
  void replayed(job_block& job, lazy_now& now) noexcept {
    if (uses_fair_) fair_clock::started(job, now.get());
  }
  /// A command of the entry that ran left its ring (finished, or failed by a
  /// reset after it finished or hung) at `now`: fair charges its ring time.
  void left_ring(queue_entry& entry, const job_block& job, lazy_now& now) noexcept {
    if (uses_fair_) charge(entry, job, now);
    --entry.in_flight;
    mark_dirty(entry);
  }
  /// A command of the entry left its ring without its ring time counting
  /// (cancelled by a reset or by shutdown).
  void cancelled_on_ring(queue_entry& entry) noexcept {
    --entry.in_flight;
    mark_dirty(entry);
  }
  /// `ring` was reset at `now` (after the commands on it were charged).
  void ring_reset(const ring_slot& ring, lazy_now& now) noexcept;

  /// One selection step: what runs next and on which ring, or nothing.
  queue_choice next() {
    if (!dirty_.empty()) rekey_changed();
    if (mode_ == ring_mode::ring_per_entity) return next_own_ring();
    if (rings_.size() != 1) return next_on_several_rings();
    // One ring: the best head runs if it fits; else it waits for credits.
    queue_entry* best = nonempty_cells_.size() == 1 && nonempty_cells_.front()->group == 0
                            ? nonempty_cells_.front()->heap.top()
                            : best_head(nullptr, nullptr);
    if (!best || !rings_.front()->fits(best->head->credits, credit_limit_)) return {};
    return {best, rings_.front()};
  }

  /// Policy fair: its clock (tests read its floor).
  const fair_clock& fair() const noexcept { return fair_; }

 private:
  void mark_dirty(queue_entry& entry) noexcept {
    if (entry.dirty) return;
    entry.dirty = true;
    dirty_.push_front(entry);
  }
  void unlink_dirty(queue_entry& entry) noexcept;
  void charge(queue_entry& entry, const job_block& job, lazy_now& now) noexcept;
  // Re-keys every changed entry: readiness, placement, the policy's key, and
  // (fair) activity and the floor. The common case (fifo, rr, deadline on
  // shared rings) is inline: it runs once per command.
  void rekey_changed() {
    if (mode_ != ring_mode::shared_ring || uses_fair_) {
      rekey_changed_fair_or_own_rings();
      return;
    }
    while (queue_entry* entry = pop_dirty()) rekey(*entry);
  }
  void rekey_changed_fair_or_own_rings();
  queue_entry* pop_dirty() noexcept {
    queue_entry* entry = dirty_.pop_front();
    if (!entry) return nullptr;
    entry->dirty = false;
    return entry;
  }
  // Policies fifo, rr, deadline: keys fixed until the entry changes.
  void rekey(queue_entry& entry) {
    const job_block* head = entry.head;
    if (!head || head->phase != job_phase::prepared) {
      if (entry.cell) move_to(entry, static_cast<queue_cell*>(nullptr));
      return;
    }
    entry.key = key_of(entry);
    entry.key_push_order = head->push_order;
    queue_cell* cell = only_cell_ ? only_cell_ : &cell_for(entry);
    if (entry.cell == cell)
      cell->heap.update(entry);
    else
      move_to(entry, cell);
  }
  void rekey_fair(queue_entry& entry, bool ready);
  order_key key_of(const queue_entry& entry) const noexcept {
    // relaxed: see entity_state::prio.
    const priority p = entry.prio->load(std::memory_order_relaxed);
    switch (policy_) {
      case scheduling_policy::fifo:
        return fifo_policy::key(entry, p);
      case scheduling_policy::rr:
        return rr_policy::key(entry, p);
      case scheduling_policy::deadline:
        return deadline_policy::key(entry, p);
      case scheduling_policy::fair:
        return fair_.key(entry, p);
    }
    return {};
  }
  queue_cell& cell_for(const queue_entry& entry);
  void move_to(queue_entry& entry, queue_cell* cell);
  void move_to(queue_entry& entry, fair_group* group);
  void raise_fair_floor() noexcept;
  // The entry stops using its ring_set (leaving the set's cell it is in); the
  // set goes with its last entry.
  void release_set(queue_entry& entry) noexcept;
  // Several rings, in this step: where the heads of `cell` go (its ring, or the
  // least loaded ring they may use among those not waiting for credits, which
  // is `least_loaded` when they may use every ring), or null when each of
  // those rings waits for credits.
  ring_slot* target_of(const queue_cell& cell, ring_slot* least_loaded) const noexcept;
  // The first head in the policy's order among the cells whose heads have a
  // ring in this step, with that ring in `*target`. `least_loaded` null: one
  // ring, where every head goes (and `target` is not written).
  queue_entry* best_head(ring_slot* least_loaded, ring_slot** target) const noexcept;
  // The first entry of `cell` in the policy's order at the current mean.
  queue_entry* first_of(const queue_cell& cell) const noexcept;
  bool goes_before(const queue_entry& a, const order_key& ka, const queue_entry& b,
                   const order_key& kb) const noexcept;
  queue_choice next_on_several_rings();
  queue_choice next_own_ring();

  const scheduling_policy policy_;
  const ring_mode mode_;
  const std::uint32_t credit_limit_;
  const bool
      uses_fair_;  // policy fair on shared rings (ring_per_entity keeps no fair clock: nothing competes)
  std::vector<ring_slot*> rings_;    // shared_ring: the rings, by index
  rr_policy rr_;                     // policy rr: its stamps
  fair_clock fair_;                  // policy fair: the clock
  std::uint64_t registrations_ = 0;  // ordinals handed out
  dirty_list dirty_;                 // entries changed since the latest step, latest first
  // Candidate cells by placement: [0] the least loaded ring, for entries that
  // may use every ring (with one ring: every head), [1 + i] ring i; each a list
  // by fair group (group 0 first). Restricted entries use their ring_set's.
  std::vector<std::vector<std::unique_ptr<queue_cell>>> cells_;
  std::vector<queue_cell*> nonempty_cells_;
  queue_cell* only_cell_ = nullptr;  // with one placement: its group-0 cell (the only one outside fair)
  std::vector<std::unique_ptr<fair_group>> groups_;  // policy fair: active entries by group
  std::vector<fair_group*> nonempty_groups_;
  indexed_heap<queue_entry, &queue_entry::own_ring_position, registration_order>
      own_rings_;                       // ring_per_entity
  std::vector<unsigned char> blocked_;  // next_on_several_rings: rings waiting for credits in this step
  std::vector<std::unique_ptr<ring_set>> ring_sets_;  // the restrictions entries use (restrict_to)
};

}  // namespace cosched::detail
