// The engine's face: each operation scheduler_core declares for the public
// templates is handed to the engine (the only type derived from it).
#include "cosched/detail/scheduler_core.hpp"

#include <cstdio>
#include <cstdlib>

#include "engine/engine.hpp"

namespace cosched::detail {

[[noreturn]] void fatal(const char* what) noexcept {
  std::fprintf(stderr, "cosched: fatal programming error: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

void scheduler_core::release() noexcept {
  // acq_rel: the last releaser must see every write made through other references.
  if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete &engine::of(*this);
}

scheduler_statistics scheduler_core::statistics() const noexcept { return engine::of(*this).statistics(); }

entity_state* scheduler_core::create_entity(priority p, std::string name,
                                            std::unique_ptr<ring_adapter> own_ring,
                                            std::vector<std::size_t> rings) {
  return engine::of(*this).create_entity(p, std::move(name), std::move(own_ring), std::move(rings));
}

std::optional<job_ref> scheduler_core::describe(fence_point point) const {
  return engine::of(*this).describe(point);
}

fence scheduler_core::shutdown(std::chrono::nanoseconds bound) { return engine::of(*this).shutdown(bound); }

void scheduler_core::stop_scope(std::uint64_t scope_id) { engine::of(*this).stop_scope(scope_id); }
void scheduler_core::flush_entity(entity_state& entity, std::chrono::nanoseconds bound,
                                  const fence& drained) noexcept {
  engine::of(*this).flush_entity(entity, bound, drained);
}

void scheduler_core::request_pause(std::function<void()> granted) {
  engine::of(*this).request_pause(std::move(granted));
}

void scheduler_core::resume() noexcept { engine::of(*this).resume(); }

void scheduler_core::visit_in_flight(const std::function<void(const in_flight_view&)>& visit) const {
  engine::of(*this).visit_in_flight(visit);
}

void scheduler_core::reset_and_replay() noexcept { engine::of(*this).reset_and_replay(); }

void scheduler_core::enqueue(work_node& node) noexcept { engine::of(*this).enqueue(node); }

void scheduler_core::enqueue_job_node(job_block& block, work_node& node) noexcept {
  engine::of(*this).enqueue_job_node(block, node);
}

}  // namespace cosched::detail
