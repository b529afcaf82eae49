// The run queue: ordered sets of the entities with ready heads, re-keyed when
// they change, and the selection step over them (see run_queue.hpp).
#include "engine/run_queue.hpp"

#include <algorithm>
#include <utility>

namespace cosched::detail {

run_queue::run_queue(scheduling_policy policy, ring_mode mode, std::uint32_t credit_limit,
                     std::span<ring_slot* const> shared_rings)
    : policy_(policy),
      mode_(mode),
      credit_limit_(credit_limit),
      uses_fair_(policy == scheduling_policy::fair && mode == ring_mode::shared_ring),
      rings_(shared_rings.begin(), shared_rings.end()),
      fair_(shared_rings.size()) {
  // With one ring every head goes to it: one placement. With several, heads of
  // entities with commands in flight go to their ring, the others to the
  // least loaded one.
  const std::size_t placements = rings_.size() > 1 ? rings_.size() + 1 : 1;
  cells_.resize(placements);
  for (std::size_t p = 0; p < placements; ++p) {
    auto cell = std::make_unique<queue_cell>();
    cell->placed_on = p == 0 ? nullptr : rings_[p - 1];
    cells_[p].push_back(std::move(cell));
  }
  if (placements == 1) only_cell_ = cells_.front().front().get();
  blocked_.assign(rings_.size(), 0);
}

run_queue::~run_queue() = default;

// ------------------------------------------------------------------ entries and their events

void run_queue::add(queue_entry& entry, ring_slot* own_ring) {
  entry.registered = true;
  entry.ordinal = registrations_++;
  if (own_ring) entry.ring = own_ring;
  mark_dirty(entry);
}

void run_queue::remove(queue_entry& entry) noexcept {
  unlink_dirty(entry);
  move_to(entry, static_cast<queue_cell*>(nullptr));
  move_to(entry, static_cast<fair_group*>(nullptr));
  release_set(entry);
  if (entry.own_ring_position.linked()) own_rings_.erase(entry);
  entry.registered = false;
}

void run_queue::restrict_to(queue_entry& entry, std::span<const std::size_t> indices) {
  ring_set* set = nullptr;
  if (indices.size() < rings_.size()) {
    // Entries restricted to the same rings share one set, so that their heads
    // compete in one cell as unrestricted heads do.
    for (const auto& candidate : ring_sets_) {
      if (std::equal(candidate->rings.begin(), candidate->rings.end(), indices.begin(), indices.end(),
                     [](const ring_slot* ring, std::size_t index) { return ring->index() == index; })) {
        set = candidate.get();
        break;
      }
    }
    if (!set) {
      auto made = std::make_unique<ring_set>();
      for (const std::size_t index : indices) made->rings.push_back(rings_[index]);
      auto cell = std::make_unique<queue_cell>();
      cell->allowed = made.get();
      made->cells.push_back(std::move(cell));
      ring_sets_.push_back(std::move(made));
      set = ring_sets_.back().get();
    }
  }
  if (set == entry.allowed) return;
  if (set) ++set->users;
  release_set(entry);
  entry.allowed = set;
  if (entry.registered) mark_dirty(entry);  // its next placement uses the new set
}

void run_queue::release_set(queue_entry& entry) noexcept {
  ring_set* set = std::exchange(entry.allowed, nullptr);
  if (!set) return;
  // Its head leaves the set's cell now; a registered entry is re-placed at the
  // next step (restrict_to marked it), one that goes is not.
  if (entry.cell && entry.cell->allowed == set) move_to(entry, static_cast<queue_cell*>(nullptr));
  if (--set->users != 0) return;
  // No entry uses the set any more, so none is in its cells.
  for (auto& owned : ring_sets_) {
    if (owned.get() != set) continue;
    owned = std::move(ring_sets_.back());
    ring_sets_.pop_back();
    return;
  }
}

void run_queue::charge(queue_entry& entry, const job_block& job, lazy_now& now) noexcept {
  // relaxed: see entity_state::prio.
  // The job's ring: every command of the entity in flight is on entry.ring.
  fair_.charge(entry.fair, entry.prio->load(std::memory_order_relaxed), job, entry.ring->index(), now.get());
}

void run_queue::ring_reset(const ring_slot& ring, lazy_now& now) noexcept {
  if (uses_fair_) fair_.ring_reset(ring.index(), now.get());
}

void run_queue::unlink_dirty(queue_entry& entry) noexcept {
  if (!entry.dirty) return;
  dirty_.erase(entry);
  entry.dirty = false;
}

// ------------------------------------------------------------------ re-keying

// ring_per_entity mode, or policy fair: activity, the floor, the rings to serve.
void run_queue::rekey_changed_fair_or_own_rings() {
  // The order of the changed entries does not matter: each is re-read on its
  // own, and fair's activations all use the floor of the previous step.
  while (queue_entry* entry = pop_dirty()) {
    if (mode_ == ring_mode::ring_per_entity) {
      // Its ring may run something now: serve it in this step (in registration order).
      if (!entry->own_ring_position.linked()) own_rings_.push(*entry);
      continue;
    }
    const bool ready = entry->head && entry->head->phase == job_phase::prepared;
    fair_.note_activity(entry->fair, ready || entry->in_flight > 0);
    rekey_fair(*entry, ready);
  }
  if (uses_fair_) raise_fair_floor();
}

// Policy fair: a candidate cell if ready, an active group if active.
void run_queue::rekey_fair(queue_entry& entry, bool ready) {
  entry.key = key_of(entry);
  if (ready) entry.key_push_order = entry.head->push_order;
  move_to(entry, ready ? &cell_for(entry) : nullptr);
  fair_group* group = nullptr;
  if (entry.fair.active) {
    for (auto& g : groups_) {
      if (g->group == entry.key.group) {
        group = g.get();
        break;
      }
    }
    if (!group) {
      groups_.push_back(std::make_unique<fair_group>());
      group = groups_.back().get();
      group->group = entry.key.group;
    }
  }
  move_to(entry, group);
}

queue_cell& run_queue::cell_for(const queue_entry& entry) {
  // Commands in flight pin the head to their ring, whatever rings the entry may use now.
  auto& by_group = cells_.size() > 1 && entry.in_flight > 0 ? cells_[1 + entry.ring->index()]
                   : entry.allowed                          ? entry.allowed->cells
                                                            : cells_.front();
  if (entry.key.group == 0) return *by_group.front();
  for (auto& cell : by_group) {
    if (cell->group == entry.key.group) return *cell;
  }
  auto cell = std::make_unique<queue_cell>();
  cell->placed_on = by_group.front()->placed_on;
  cell->allowed = by_group.front()->allowed;
  cell->group = entry.key.group;
  by_group.push_back(std::move(cell));
  return *by_group.back();
}

// Keeps the list of non-empty sets as entries come and go (one comparison per
// non-empty set and step).
template <class Set>
static void link_nonempty(std::vector<Set*>& nonempty, Set& set) {
  set.nonempty_index = nonempty.size();
  nonempty.push_back(&set);
}
template <class Set>
static void unlink_nonempty(std::vector<Set*>& nonempty, Set& set) noexcept {
  Set* last = nonempty.back();
  nonempty[set.nonempty_index] = last;
  last->nonempty_index = set.nonempty_index;
  nonempty.pop_back();
}

void run_queue::move_to(queue_entry& entry, queue_cell* cell) {
  if (entry.cell == cell) {
    if (cell) cell->heap.update(entry);
    return;
  }
  if (queue_cell* old = entry.cell) {
    old->heap.erase(entry);
    if (old->heap.empty()) unlink_nonempty(nonempty_cells_, *old);
  }
  entry.cell = cell;
  if (cell) {
    if (cell->heap.empty()) link_nonempty(nonempty_cells_, *cell);
    cell->heap.push(entry);
  }
}

void run_queue::move_to(queue_entry& entry, fair_group* group) {
  if (entry.group == group) {
    if (group) group->heap.update(entry);
    return;
  }
  if (fair_group* old = entry.group) {
    old->heap.erase(entry);
    if (old->heap.empty()) unlink_nonempty(nonempty_groups_, *old);
  }
  entry.group = group;
  if (group) {
    if (group->heap.empty()) link_nonempty(nonempty_groups_, *group);
    group->heap.push(entry);
  }
}

void run_queue::raise_fair_floor() noexcept {
  if (nonempty_groups_.empty()) return;  // no entity is active: the floor stays
  std::uint64_t least = fair_clock::saturated;
  for (const fair_group* group : nonempty_groups_)
    least = std::min(least, fair_.effective_time(group->heap.top()->key));
  fair_.raise_floor(least);
}

// ------------------------------------------------------------------ selection

queue_entry* run_queue::first_of(const queue_cell& cell) const noexcept {
  queue_entry* first = cell.heap.top();
  if (cell.group == 0 || fair_.effective_time(first->key) != fair_clock::saturated) return first;
  // Every entry of the cell saturates (absurd ring times only): they tie, and
  // the tie goes to the higher priority, then push order.
  for (queue_entry* entry : cell.heap.items()) {
    if (entry->key.tie < first->key.tie ||
        (entry->key.tie == first->key.tie && entry->key_push_order < first->key_push_order))
      first = entry;
  }
  return first;
}

bool run_queue::goes_before(const queue_entry& a, const order_key& ka, const queue_entry& b,
                            const order_key& kb) const noexcept {
  if (ka.rank != kb.rank) return ka.rank < kb.rank;
  if (ka.time != kb.time) return ka.time < kb.time;
  if (ka.tie != kb.tie) return ka.tie < kb.tie;
  return a.key_push_order < b.key_push_order;
}

ring_slot* run_queue::target_of(const queue_cell& cell, ring_slot* least_loaded) const noexcept {
  if (cell.placed_on) return blocked_[cell.placed_on->index()] ? nullptr : cell.placed_on;
  if (!cell.allowed) return least_loaded;
  ring_slot* target = nullptr;  // by ascending index: a tie keeps the lowest
  for (ring_slot* ring : cell.allowed->rings) {
    if (blocked_[ring->index()]) continue;
    if (!target || ring->credits_in_flight() < target->credits_in_flight()) target = ring;
  }
  return target;
}

queue_entry* run_queue::best_head(ring_slot* least_loaded, ring_slot** target) const noexcept {
  queue_entry* best = nullptr;
  order_key best_key;
  for (queue_cell* cell : nonempty_cells_) {
    ring_slot* ring = least_loaded ? target_of(*cell, least_loaded) : nullptr;
    if (least_loaded && !ring) continue;  // every ring its heads may use waits for credits
    queue_entry* first = first_of(*cell);
    order_key key = first->key;
    if (cell->group != 0) key.time = fair_.effective_time(key);
    if (!best || goes_before(*first, key, *best, best_key)) {
      best = first;
      best_key = key;
      if (target) *target = ring;
    }
  }
  return best;
}

queue_choice run_queue::next_on_several_rings() {
  std::fill(blocked_.begin(), blocked_.end(), static_cast<unsigned char>(0));
  for (;;) {
    ring_slot* least_loaded = nullptr;
    for (ring_slot* ring : rings_) {
      if (blocked_[ring->index()]) continue;
      if (!least_loaded || ring->credits_in_flight() < least_loaded->credits_in_flight()) least_loaded = ring;
    }
    if (!least_loaded) return {};  // every ring waits for credits
    ring_slot* target = nullptr;
    queue_entry* best = best_head(least_loaded, &target);
    if (!best) return {};
    if (!target->fits(best->head->credits, credit_limit_)) {
      blocked_[target->index()] = 1;  // its best head waits for credits
      continue;
    }
    return {best, target};
  }
}

queue_choice run_queue::next_own_ring() {
  // Each ring whose entity changed since the latest step, in registration
  // order, runs its entity's head while it fits.
  while (!own_rings_.empty()) {
    queue_entry* entry = own_rings_.top();
    const job_block* head = entry->head;
    if (head && head->phase == job_phase::prepared && !entry->ring->closed() &&
        entry->ring->fits(head->credits, credit_limit_))
      return {entry, entry->ring};
    own_rings_.erase(*entry);
  }
  return {};
}

}  // namespace cosched::detail
