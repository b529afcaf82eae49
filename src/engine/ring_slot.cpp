// A ring as the engine drives it: in-flight list, credits, timeout, and the
// one place where calls into the ring turn exceptions into failed fences.
#include "engine/ring_slot.hpp"

#include <atomic>
#include <system_error>

#include "cosched/error.hpp"

namespace cosched::detail {

namespace {

// relaxed: a count read by tests after the work that changed it (same thread,
// or ordered by the scheduler's shutdown).
std::atomic<std::size_t> live_slots{0};

}  // namespace

fence ring_slot::failed_fence(const std::exception_ptr& thrown) noexcept {
  if (!thrown) return fence::make_signalled(make_error_code(errc::broken));
  try {
    std::rethrow_exception(thrown);
  } catch (const std::system_error& e) {
    return fence::make_signalled(e.code());
  } catch (...) {
    return fence::make_signalled(make_error_code(errc::exception));
  }
}

ring_slot::ring_slot(std::unique_ptr<ring_adapter> ring, std::size_t index) noexcept
    : ring_(std::move(ring)), index_(index) {
  live_slots.fetch_add(1, std::memory_order_relaxed);
}

ring_slot::~ring_slot() { live_slots.fetch_sub(1, std::memory_order_relaxed); }

std::size_t ring_slot::live() noexcept { return live_slots.load(std::memory_order_relaxed); }

std::vector<job_block*> ring_slot::in_flight() const {
  std::vector<job_block*> jobs;
  for (job_block& block : in_flight_) jobs.push_back(&block);
  return jobs;
}

timeout_verdict ring_slot::on_timeout(job_promise_base& command) noexcept {
  try {
    return ring_->on_timeout(command);
  } catch (...) {
    return timeout_verdict::hung;
  }
}

void ring_slot::reset() noexcept {
  try {
    ring_->reset();
  } catch (...) {
    ring_->cancel_all();
  }
}

void ring_slot::cancel_all() noexcept { ring_->cancel_all(); }

void ring_slot::cancel_timeout(timer_service& timers) noexcept {
  timer_armed_ = false;
  ++timer_generation_;  // a message already queued for it is stale
  timers.cancel(timer_);
}

bool ring_slot::take_timeout(std::uint64_t generation) noexcept {
  if (generation != timer_generation_ || !timer_armed_) return false;
  timer_armed_ = false;
  return true;
}

}  // namespace cosched::detail
