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

// Calls `call` (a ring's run or replay) and turns what it may throw or return
// into a hardware fence the engine can wait for.
template <class Call>
fence hardware_fence_of(Call&& call) noexcept {
  fence hardware;
  try {
    hardware = call();
  } catch (const std::system_error& e) {
    hardware = fence::make_signalled(e.code());
  } catch (...) {
    hardware = fence::make_signalled(make_error_code(errc::exception));
  }
  if (!hardware.valid()) hardware = fence::make_signalled(make_error_code(errc::broken));
  return hardware;
}

}  // namespace

ring_slot::ring_slot(std::unique_ptr<ring_adapter> ring, std::size_t index) noexcept
    : ring_(std::move(ring)), index_(index) {
  live_slots.fetch_add(1, std::memory_order_relaxed);
}

ring_slot::~ring_slot() { live_slots.fetch_sub(1, std::memory_order_relaxed); }

std::size_t ring_slot::live() noexcept { return live_slots.load(std::memory_order_relaxed); }

void ring_slot::append(job_block& block) noexcept {
  block.in_flight_prev = in_flight_tail_;
  block.in_flight_next = nullptr;
  if (in_flight_tail_) in_flight_tail_->in_flight_next = &block; else in_flight_head_ = &block;
  in_flight_tail_ = &block;
  credits_in_flight_ += block.credits;
}

void ring_slot::remove(job_block& block) noexcept {
  if (block.in_flight_prev) block.in_flight_prev->in_flight_next = block.in_flight_next;
  else in_flight_head_ = block.in_flight_next;
  if (block.in_flight_next) block.in_flight_next->in_flight_prev = block.in_flight_prev;
  else in_flight_tail_ = block.in_flight_prev;
  block.in_flight_prev = block.in_flight_next = nullptr;
  credits_in_flight_ -= block.credits;
}

std::vector<job_block*> ring_slot::in_flight() const {
  std::vector<job_block*> jobs;
  for (job_block* block = in_flight_head_; block; block = block->in_flight_next) jobs.push_back(block);
  return jobs;
}

fence ring_slot::run(void* command) noexcept {
  return hardware_fence_of([&] { return ring_->run(command); });
}

fence ring_slot::replay(void* command) noexcept {
  return hardware_fence_of([&] { return ring_->replay(command); });
}

timeout_verdict ring_slot::on_timeout(void* command) noexcept {
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

void ring_slot::disarm_timeout(timer_service& timers) noexcept {
  if (!timer_armed_) return;
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
